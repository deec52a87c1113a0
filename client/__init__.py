"""fedchain client package."""

"""fedchain frontend package."""

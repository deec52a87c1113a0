"""fedchain fedchain package."""

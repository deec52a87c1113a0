"""fedchain backend package."""

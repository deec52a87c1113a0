"""fedchain aggregator package."""

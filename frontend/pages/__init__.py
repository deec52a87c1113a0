"""One module per dashboard page; each exposes `async render(ctx)`."""

"""Routes, one module per group: `pages` (HTML), `review` (the review form), `api` (JSON)."""

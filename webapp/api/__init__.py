"""The REST API under /api/v1/: routes, shared helpers (pagination, query parameters), schema and docs."""

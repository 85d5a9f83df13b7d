"""The HTTP API's routers, one module per subject, all under /api/v1."""

"""`shipyard server`: the HTTP API, webhooks, workers and controllers in one process."""

"""HTTP API views, Prometheus metrics and (later) the dashboard."""

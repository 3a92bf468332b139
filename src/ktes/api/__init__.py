"""The HTTP API: the five TES 1.1 endpoints under ``/ga4gh/tes/v1`` and ``/healthz``."""

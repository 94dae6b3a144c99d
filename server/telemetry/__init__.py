"""Cross-cutting observability plumbing: request ids (contextvars) and OpenTelemetry tracing.

It imports nothing else of `server/`, so every layer may use it (the api sets a request id, clients get a tracing
hook for their HTTP sessions) without an outward arrow.
"""

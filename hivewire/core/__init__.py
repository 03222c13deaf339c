"""The small core shared by the SDK and the services: the Redis Streams wire contract, tracing,
event names, conversions, logging, telemetry, the /metrics endpoint, backoff, and the workflow
and hooks file formats. It imports nothing from the rest of the SDK."""

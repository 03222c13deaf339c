"""Hivewire: coordinate work across many agents over gRPC and Redis Streams."""

__version__ = "0.1.0"

"""Hivewire's gRPC services: registry, coordinator, gateway, and what they share."""

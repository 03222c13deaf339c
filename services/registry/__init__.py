"""The registry service: agent registration, leases renewed by heartbeats, membership changes."""

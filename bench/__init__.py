"""Benchmarks: Hivewire end to end against a bare Redis Streams loop on the same machine."""

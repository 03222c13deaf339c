"""The gateway: the one public endpoint, fronting the coordinator and registry, streaming events."""

"""WatchStats: state counts read from Redis and the counters the gateway keeps from events."""

"""The events stream for dashboards: one shared reader, bounded subscriptions, snapshots."""

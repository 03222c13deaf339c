"""What every Hivewire service shares: config, server bootstrap, Redis, keys, errors."""

"""`make chaos`: the stack as real processes under kill -9, then an offline proof of delivery."""

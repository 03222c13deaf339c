import os

# Command hooks fork; the children never use gRPC, so gRPC's fork handlers are not needed.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

from hivewire_services.hooks.server import main

if __name__ == "__main__":
    main()

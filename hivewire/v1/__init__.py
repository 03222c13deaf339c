"""Generated protobuf and gRPC code for hivewire.v1."""

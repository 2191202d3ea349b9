"""Generated protobuf modules: edit proto/ and run `make protos`."""

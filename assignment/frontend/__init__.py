"""The frontend: the Lambda-compatible HTTP API and the gRPC API, function registry, invoke path, async events."""

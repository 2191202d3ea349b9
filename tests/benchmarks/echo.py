"""The floor of the gRPC benchmarks: a bare grpc.aio echo server, run in a process of its own.

``python -c ECHO_SERVER [HOST:PORT]`` serves ``/bench.Echo/Echo`` (it returns the request) on the address
(default ``127.0.0.1:0``) and prints the bound port on its first line.
"""

from __future__ import annotations

__all__ = ["ECHO_SERVER"]

ECHO_SERVER = """
import asyncio, grpc, sys
async def main():
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler}),))
    port = server.add_insecure_port(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()
async def _echo(req, ctx):
    return req
asyncio.run(main())
"""

"""The Runtime API server against raw HTTP: endpoints, headers and status codes of the AWS documentation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from workers.runtime_api import MAX_RESPONSE_BYTES, Invocation, RuntimeApi

Headers = dict[str, str]


class Client:
    """A raw HTTP/1.1 client on one keep-alive connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send_raw(self, data: bytes) -> tuple[int, Headers, bytes]:
        self.writer.write(data)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: Headers | None = None
    ) -> tuple[int, Headers, bytes]:
        lines = [f"{method} /2018-06-01{path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return await self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def run(test: Callable[[RuntimeApi, Client], Awaitable[None]]) -> None:
    async def main() -> None:
        api = RuntimeApi()
        port = await api.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.wait_for(test(api, Client(reader, writer)), 30)
        finally:
            writer.close()
            await api.close()

    asyncio.run(main())


def invocation(request_id: str = "r1") -> Invocation:
    return Invocation(request_id, b'{"k": 1}', 1_700_000_000_123, "arn:aws:lambda:x", "Root=1", '{"c":1}', '{"i":2}')


def test_next_delivers_the_event_with_every_header() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        result = api.submit(invocation())
        status, headers, body = await client.request("GET", "/runtime/invocation/next")
        assert status == 200
        assert body == b'{"k": 1}'
        assert headers["lambda-runtime-aws-request-id"] == "r1"
        assert headers["lambda-runtime-deadline-ms"] == "1700000000123"
        assert headers["lambda-runtime-invoked-function-arn"] == "arn:aws:lambda:x"
        assert headers["lambda-runtime-trace-id"] == "Root=1"
        assert headers["lambda-runtime-client-context"] == '{"c":1}'
        assert headers["lambda-runtime-cognito-identity"] == '{"i":2}'
        assert api.ready.is_set()
        status, _, _ = await client.request("POST", "/runtime/invocation/r1/response", b'"done"')
        assert status == 202
        assert (await result).payload == b'"done"'

    run(test)


def test_next_long_polls_until_an_invocation_arrives() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        pending = asyncio.ensure_future(client.request("GET", "/runtime/invocation/next"))
        await asyncio.wait_for(api.ready.wait(), 10)
        assert not pending.done()
        api.submit(invocation("late"))
        status, headers, _ = await pending
        assert (status, headers["lambda-runtime-aws-request-id"]) == (200, "late")

    run(test)


def test_error_with_wrong_or_stale_request_id_is_403() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        result = api.submit(invocation())
        await client.request("GET", "/runtime/invocation/next")
        body = json.dumps({"errorMessage": "x", "errorType": "E"}).encode()
        status, _, answer = await client.request("POST", "/runtime/invocation/other/error", body)
        assert status == 403
        assert json.loads(answer)["errorType"] == "InvalidRequestID"
        status, _, _ = await client.request("POST", "/runtime/invocation/other/response", b"1")
        assert status == 403
        status, _, _ = await client.request(
            "POST", "/runtime/invocation/r1/error", body, {"Lambda-Runtime-Function-Error-Type": "Unhandled"}
        )
        assert status == 202
        error = (await result).error
        assert error is not None
        assert (error.error_type, error.error_message) == ("E", "x")
        # Answered already: a second answer is refused.
        status, _, _ = await client.request("POST", "/runtime/invocation/r1/response", b"1")
        assert status == 403

    run(test)


def test_bad_error_bodies_are_400_and_the_invocation_stays_open() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        result = api.submit(invocation())
        await client.request("GET", "/runtime/invocation/next")
        for bad in (b"{not json", b"[1, 2]", b'{"errorMessage": 5}', b'{"stackTrace": [1]}'):
            status, _, answer = await client.request("POST", "/runtime/invocation/r1/error", bad)
            assert status == 400, bad
            assert json.loads(answer)["errorType"] == "InvalidRequest"
        assert not result.done()
        status, _, _ = await client.request(
            "POST", "/runtime/invocation/r1/error", b"", {"Lambda-Runtime-Function-Error-Type": "Custom.Thing"}
        )
        assert status == 202
        error = (await result).error
        assert error is not None
        assert error.error_type == "Custom.Thing"

    run(test)


def test_oversized_response_is_413_and_the_connection_stays_usable() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        result = api.submit(invocation())
        await client.request("GET", "/runtime/invocation/next")
        status, _, answer = await client.request(
            "POST", "/runtime/invocation/r1/response", b"x" * (MAX_RESPONSE_BYTES + 1)
        )
        assert status == 413
        assert json.loads(answer)["errorType"] == "RequestEntityTooLarge"
        assert (await result).too_large
        result = api.submit(invocation("r2"))
        status, _, _ = await client.request("GET", "/runtime/invocation/next")
        assert status == 200
        status, _, _ = await client.request("POST", "/runtime/invocation/r2/response", b"x" * MAX_RESPONSE_BYTES)
        assert status == 202
        assert len((await result).payload) == MAX_RESPONSE_BYTES

    run(test)


def test_chunked_bodies_are_accepted() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        result = api.submit(invocation())
        await client.request("GET", "/runtime/invocation/next")
        raw = (
            b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        status, _, _ = await client.send_raw(raw)
        assert status == 202
        assert (await result).payload == b"abcde"

    run(test)


def test_init_error_before_and_after_init() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        body = json.dumps({"errorMessage": "no config", "errorType": "Runtime.InitError", "stackTrace": []})
        status, _, _ = await client.request("POST", "/runtime/init/error", body.encode())
        assert status == 202
        assert api.init_error is not None
        assert api.init_error.error_message == "no config"
        assert (await client.request("POST", "/runtime/init/error", b"{bad"))[0] == 400
        api.submit(invocation())
        await client.request("GET", "/runtime/invocation/next")
        status, _, answer = await client.request("POST", "/runtime/init/error", body.encode())
        assert status == 403
        assert json.loads(answer)["errorType"] == "InvalidStateTransition"

    run(test)


def test_unknown_paths_methods_and_malformed_requests() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        assert (await client.request("GET", "/runtime/nothing"))[0] == 404
        assert (await client.request("POST", "/runtime/invocation/next"))[0] == 405
        assert (await client.request("GET", "/runtime/invocation/r1/response"))[0] == 405
        assert (await client.request("GET", "/runtime/init/error"))[0] == 405
        status, headers, _ = await client.send_raw(
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: x\r\n\r\n"
        )
        assert status == 400
        assert headers["connection"] == "close"

    run(test)


def test_abandoned_invocation_then_late_answer_is_403() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        result = api.submit(invocation())
        await client.request("GET", "/runtime/invocation/next")
        api.abandon()
        assert result.done()
        assert (await client.request("POST", "/runtime/invocation/r1/response", b"1"))[0] == 403

    run(test)


def test_closing_answers_500_so_the_runtime_exits() -> None:
    async def test(api: RuntimeApi, client: Client) -> None:
        pending = asyncio.ensure_future(client.request("GET", "/runtime/invocation/next"))
        await asyncio.wait_for(api.ready.wait(), 10)
        closing = asyncio.ensure_future(api.close())
        status, _, answer = await pending
        assert status == 500
        assert json.loads(answer)["errorType"] == "ServiceException"
        await closing

    run(test)

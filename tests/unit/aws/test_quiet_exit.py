"""A script that ends without closing its client is not followed by aiohttp's "Unclosed ..." noise."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio
    from taskiq_sqs_http.aws import SQSClient

    async def serve(reader, writer):
        await reader.readuntil(b"\\r\\n\\r\\n")
        body = b'{"QueueUrl":"http://x/1/q"}'
        head = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/x-amz-json-1.0\\r\\n"
        head += b"Content-Length: %d\\r\\n\\r\\n"
        writer.write(head % len(body) + body)
        await writer.drain()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = SQSClient(
            endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-a-secret",
        )
        print(await client.get_queue_url("q"))
        global forgotten
        forgotten = client  # never closed: the script "forgot" aclose()/shutdown()

    asyncio.run(main())
    """
)


def test_an_unclosed_client_exits_quietly() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "http://x/1/q"
    assert "Unclosed" not in done.stderr, done.stderr

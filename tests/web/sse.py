"""Reading a page's server-sent event stream in a test (aiohttp's TestClient)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp.test_utils import TestClient


async def server_events(client: TestClient, path: str) -> AsyncIterator[tuple[str, str]]:
    """The events of the stream at ``path``, as (kind, data), each within 30 s of the last."""
    stream = await client.get(path)
    event, data = "", []
    try:
        while True:
            line = (await asyncio.wait_for(stream.content.readline(), 30)).decode().rstrip("\r\n")
            if line.startswith("event: "):
                event, data = line[len("event: "):], []
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
            elif not line and event:
                yield event, "\n".join(data)
                event, data = "", []
    finally:
        stream.close()

"""Hold N Server-Sent Event inbox streams open for S seconds (bench/request_path.py's soak).

    python bench/sse_clients.py --seconds 60 --port 8012 --tokens FILE

One stream per access token in FILE (one a line: a person each). Each stream asks to stay open for the whole run and reconnects if the server closes it.
Prints one JSON line: streams, opened, events, failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx


async def stream(client: httpx.AsyncClient, url: str, token: str, until: float, tally: dict[str, int]) -> None:
    last = None
    while time.monotonic() < until:
        headers = {"Authorization": f"Bearer {token}"} | ({"Last-Event-ID": last} if last else {})
        try:
            async with client.stream("GET", url, headers=headers,
                                     params={"max_s": max(1.0, until - time.monotonic())}) as r:  # fmt: skip
                if r.status_code != 200:
                    tally["failed"] += 1
                    await asyncio.sleep(1)
                    continue
                tally["opened"] += 1
                async for line in r.aiter_lines():
                    if line.startswith("id: "):
                        last = line[4:]
                        tally["events"] += 1
        except httpx.HTTPError:
            tally["failed"] += 1
            await asyncio.sleep(1)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--tokens", required=True, help="a file of access tokens, one per line")
    args = parser.parse_args()
    tokens = Path(args.tokens).read_text().split()  # noqa: ASYNC240 - once, before any stream opens
    tally = {"streams": len(tokens), "opened": 0, "events": 0, "failed": 0}
    until = time.monotonic() + args.seconds
    limits = httpx.Limits(max_connections=len(tokens) + 10, max_keepalive_connections=len(tokens) + 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=args.seconds + 30), limits=limits) as client:
        url = f"http://127.0.0.1:{args.port}/api/v1/me/inbox/stream"
        await asyncio.gather(*(stream(client, url, token, until, tally) for token in tokens))
    print(json.dumps(tally))


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""A line-based chat client on asyncio: every line typed is sent as a text message, every
message received is printed. Ctrl-D or Ctrl-C quits.

    chat_client.py ws://127.0.0.1:9001/ [--name alice]

Try it against the echo server: `build/bin/echo_server_py --port 9001` in another terminal.
"""

import argparse
import asyncio
import sys

import tidewire
import tidewire.asyncio


async def read_lines(queue: "asyncio.Queue[str | None]") -> None:
    loop = asyncio.get_running_loop()

    def on_stdin() -> None:
        line = sys.stdin.readline()
        queue.put_nowait(line.rstrip("\n") if line else None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)


async def main(url: str, name: str) -> int:
    try:
        ws = await tidewire.asyncio.connect(url)
    except (tidewire.InvalidHandshake, tidewire.InvalidURI, OSError, TimeoutError) as exc:
        print(f"cannot connect to {url}: {exc}", file=sys.stderr)
        return 1
    print(f"connected to {url} (Ctrl-D to quit)", file=sys.stderr)
    lines: "asyncio.Queue[str | None]" = asyncio.Queue()
    await read_lines(lines)

    async def printer() -> None:
        async for message in ws:
            print(message if isinstance(message, str) else f"<{len(message)} bytes>", flush=True)

    receiving = asyncio.create_task(printer())
    try:
        while True:
            reading = asyncio.create_task(lines.get())
            done, _ = await asyncio.wait({reading, receiving}, return_when=asyncio.FIRST_COMPLETED)
            if receiving in done:
                reading.cancel()
                break
            line = reading.result()
            if line is None:
                break
            await ws.send(f"{name}: {line}" if name else line)
    except tidewire.ConnectionClosed:
        pass
    finally:
        asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
        await ws.close()
        receiving.cancel()
        try:
            await receiving
        except (asyncio.CancelledError, tidewire.ConnectionClosed):
            pass
    print(f"closed: {ws.close_code} {ws.close_reason or ''}".rstrip(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="tidewire chat client (asyncio)")
    parser.add_argument("url")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(main(args.url, args.name)))
    except KeyboardInterrupt:
        sys.exit(0)

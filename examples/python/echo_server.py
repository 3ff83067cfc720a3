#!/usr/bin/env python3
"""Echo server (the docs/DESIGN.md contract): echoes every message with its own type, answers
pings, negotiates permessage-deflate when offered, exits 0 on SIGINT/SIGTERM.

    echo_server.py --host 127.0.0.1 --port 9001 [--tls-cert cert.pem --tls-key key.pem]
                   [--blocking]

With the asyncio API by default; ``--blocking`` serves with the blocking API, a thread per
connection (``build/bin/echo_server_pysync``).
"""

import argparse
import asyncio
import signal
import sys
import threading

import tidewire
import tidewire.asyncio


# Back-pressure: `send` waits while the connection's output buffer is over its high water
# mark (a peer that does not read), and meanwhile the connection queues at most `max_queue`
# received messages (16 by default) before it stops reading: TCP slows the peer down, and
# no echo is lost or buffered without bound.
async def echo(ws: tidewire.asyncio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(args: argparse.Namespace) -> None:
    ssl = tidewire.ServerTLS(args.tls_cert, args.tls_key) if args.tls_cert else None
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with tidewire.asyncio.serve(
        echo,
        args.host,
        args.port,
        ssl=ssl,
        compression="deflate",
        max_size=16 * 2**20,  # Autobahn sends messages of up to 16 MiB
        # Keepalive as the library sets it: a peer silent for 20 s is pinged, and dropped if
        # nothing comes back within 20 s more (never in the middle of an Autobahn case).
    ) as server:
        scheme = "wss" if ssl else "ws"
        print(f"echo_server_py listening on {scheme}://{server.address[0]}:{server.port}/", flush=True)
        await stop


def echo_blocking(ws: tidewire.ServerConnection) -> None:
    for message in ws:
        ws.send(message)  # blocks over the high water mark, as `await ws.send` waits above


def main_blocking(args: argparse.Namespace) -> None:
    ssl = tidewire.ServerTLS(args.tls_cert, args.tls_key) if args.tls_cert else None
    with tidewire.serve(
        echo_blocking,
        args.host,
        args.port,
        ssl=ssl,
        compression="deflate",
        max_size=16 * 2**20,
    ) as server:
        # serve_forever returns once shutdown() ran; signals end it from the main thread.
        def stop(*_: object) -> None:
            threading.Thread(target=server.shutdown).start()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
        scheme = "wss" if ssl else "ws"
        print(f"echo_server_py listening on {scheme}://{server.address[0]}:{server.port}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="tidewire echo server (Python)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve wss://")
    parser.add_argument("--tls-key", help="PEM private key (default: in --tls-cert)")
    parser.add_argument("--blocking", action="store_true", help="use the blocking API")
    args = parser.parse_args()
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    if args.blocking:
        main_blocking(args)
    else:
        asyncio.run(main(args))
    sys.exit(0)

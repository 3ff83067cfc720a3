"""Stand-in for the project's echo_server, built on the `websockets` package.

Same command line and behaviour as the echo_server of the docs/DESIGN.md contract (no TLS), so
that run_server.sh can be tested before the project's programs exist:

    echo_server.py --host 127.0.0.1 --port 9001

Echoes every message with its own type, negotiates permessage-deflate when offered, exits 0 on
SIGINT/SIGTERM. websockets is not fully strict in the suite's sense, so some cases come out
NON-STRICT against it; that is the stand-in's verdict, not the harness's.
"""

import argparse
import asyncio
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

# Case 9.1.6 sends a 16 MiB message; leave room above it.
MAX_MESSAGE = 32 * 1024 * 1024


async def echo(websocket):
    try:
        async for message in websocket:
            await websocket.send(message)
    except ConnectionClosed:
        # The suite breaks connections on purpose; the verdict is in its report, not here.
        pass


async def serve_until_signal(host, port):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    async with serve(
        echo,
        host,
        port,
        max_size=MAX_MESSAGE,
        compression="deflate",
        ping_interval=None,  # no pings of our own in the middle of the suite's cases
    ):
        print(f"echo_server (websockets stand-in) listening on ws://{host}:{port}", flush=True)
        await stop


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve_until_signal(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

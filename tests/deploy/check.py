"""Clients of the chat cluster, through nginx (tests/deploy/run.sh).

    check.py URL N    connect N clients to the lobby at ws URL (nginx), let each send one
                      line, and check that every client receives every line exactly once,
                      whichever chat_server process each of them landed on.

Exit status 0 on success; every failure says what it was.
"""

import contextlib
import sys

from websockets.sync.client import connect


def main(url, n):
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(connect(url + "/chat/lobby", open_timeout=10, close_timeout=5))
            for _ in range(n)
        ]
        lines = [f"line {i} from client {i}" for i in range(n)]
        for ws, line in zip(clients, lines):
            ws.send(line)
        for i, ws in enumerate(clients):
            got = sorted(ws.recv(timeout=10) for _ in range(n))
            if got != sorted(lines):
                sys.exit(f"client {i} got {got}, expected every line once")
            try:
                extra = ws.recv(timeout=0.3)
            except TimeoutError:
                continue
            sys.exit(f"client {i} got {extra!r} twice")
    print(f"deploy: {n} clients through nginx, every line once everywhere", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]))

"""The Python `websockets` package as a peer of tidewire, with permessage-deflate.

    peer.py client URL    connect, check that permessage-deflate was negotiated, send a set
                          of messages (compressible text, binary, a fragmented message) and
                          check that each comes back unchanged
    peer.py server        serve on 127.0.0.1, port 0; print `listening PORT`, then for every
                          connection `open extensions=...`; echo every message
    peer.py chat URL      against chat_server at http://HOST:PORT: the page is served, and a
                          line reaches every member of its room (deflate on) and no one else

Exit status 0 on success; every failure says what it was.
"""

import contextlib
import sys
import urllib.request

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.sync.client import connect
from websockets.sync.server import serve


def messages():
    text = "tidewire interop, compressible text. " * 2000  # ~74 KB
    return [
        text,
        "short",
        "κόσμε 𝄞",
        bytes(range(256)) * 400,
        b"",
    ]


def deflate_params(ws):
    found = [e for e in ws.protocol.extensions if isinstance(e, PerMessageDeflate)]
    return found[0] if found else None


def run_client(url):
    with connect(url, compression="deflate", open_timeout=10, close_timeout=5) as ws:
        ext = deflate_params(ws)
        if ext is None:
            sys.exit(f"client: permessage-deflate was not negotiated: {ws.protocol.extensions}")
        print(f"client: negotiated {ext!r}", flush=True)
        for i, m in enumerate(messages()):
            ws.send(m)
            got = ws.recv(timeout=10)
            if got != m:
                sys.exit(f"client: message {i} came back different ({len(got)} vs {len(m)})")
        # One message in fragments: the server reassembles and echoes it whole.
        parts = ["frag-" * 1000, "ment-" * 1000, "ed"]
        ws.send(iter(parts))
        got = ws.recv(timeout=10)
        if got != "".join(parts):
            sys.exit("client: the fragmented message came back different")
        print(f"client: {len(messages()) + 1} messages echoed", flush=True)


def run_server():
    def echo(ws):
        ext = deflate_params(ws)
        print(f"open extensions={ext!r}", flush=True)
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 0, compression="deflate") as server:
        port = server.socket.getsockname()[1]
        print(f"listening {port}", flush=True)
        server.serve_forever()


def chat_checks(a, b, c):
    """a and b are in the lobby, c in another room."""
    line = "hello lobby, a compressible line " * 20
    a.send(line)
    for name, ws in (("a", a), ("b", b)):
        got = ws.recv(timeout=10)
        if got != line:
            sys.exit(f"chat: {name} got {got[:40]!r}, not the lobby line")
    c.send("only the other room")
    if c.recv(timeout=10) != "only the other room":
        sys.exit("chat: c did not get its own room's line")
    for name, ws in (("a", a), ("b", b)):
        try:
            got = ws.recv(timeout=0.5)
        except TimeoutError:
            continue
        sys.exit(f"chat: {name} got {got[:40]!r} from another room")
    try:
        got = c.recv(timeout=0.5)
        sys.exit(f"chat: c got {got[:40]!r} from the lobby")
    except TimeoutError:
        pass
    for i in range(100):
        b.send(f"burst {i}")
    for i in range(100):
        for name, ws in (("a", a), ("b", b)):
            got = ws.recv(timeout=10)
            if got != f"burst {i}":
                sys.exit(f"chat: {name} got {got!r}, expected burst {i} (order, once)")


def run_chat(base):
    page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
    if "tidewire" not in page or "WebSocket" not in page:
        sys.exit("chat: the page was not served")
    ws_base = base.replace("http://", "ws://")

    with contextlib.ExitStack() as stack:

        def join(path):
            ws = stack.enter_context(
                connect(ws_base + path, compression="deflate", open_timeout=10, close_timeout=5)
            )
            if deflate_params(ws) is None:
                sys.exit(f"chat: no permessage-deflate on {path}")
            return ws

        a, b, c = join("/chat"), join("/chat/lobby"), join("/chat/other")
        chat_checks(a, b, c)
    print("chat: rooms deliver to their members once, in order", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"] and len(sys.argv) == 3:
        run_client(sys.argv[2])
    elif sys.argv[1:2] == ["chat"] and len(sys.argv) == 3:
        run_chat(sys.argv[2])
    elif sys.argv[1:] == ["server"]:
        run_server()
    else:
        sys.exit(__doc__)

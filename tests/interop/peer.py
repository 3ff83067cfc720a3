"""The Python `websockets` package as a peer of tidewire, with permessage-deflate.

    peer.py client URL    connect, check that permessage-deflate was negotiated, send a set
                          of messages (compressible text, binary, a fragmented message) and
                          check that each comes back unchanged
    peer.py server        serve on 127.0.0.1, port 0; print `listening PORT`, then for every
                          connection `open extensions=...`; echo every message

Exit status 0 on success; every failure says what it was.
"""

import sys

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


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"] and len(sys.argv) == 3:
        run_client(sys.argv[2])
    elif sys.argv[1:] == ["server"]:
        run_server()
    else:
        sys.exit(__doc__)

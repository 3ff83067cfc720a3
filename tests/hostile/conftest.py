import os
import resource
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wsraw  # noqa: E402
from wsraw import FACES, rss_kib, start_server  # noqa: E402

# The attacks open many sockets at once (slowloris on every face).
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))


# HOSTILE_FACES=rust,c limits a run to some faces.
@pytest.fixture(params=os.environ.get("HOSTILE_FACES", ",".join(FACES)).split(","))
def face(request):
    return request.param


# The hostile-peer table: one row per attack and face (what the attacker got, how long the
# test took, the server's peak resident memory above its level at the start), written to
# $TIDEWIRE_HOSTILE_REPORT (Markdown) at the end of the run.
ROWS = []

# No attack may grow a server's resident memory by more than this. The largest legitimate
# use is the Python examples' 64 MiB max_size, which a decompression bomb fills.
RSS_BOUND_KIB = 96 * 1024


@pytest.fixture
def server(face, request):
    srv = start_server(face)
    base = rss_kib(srv.pid)
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], rss_kib(srv.pid) - base)
            except (OSError, RuntimeError):
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wsraw.ANSWERS.clear()
    started = time.monotonic()
    try:
        yield srv
    finally:
        took = time.monotonic() - started
        done.set()
        watcher.join()
        alive = srv.alive()
        srv.stop()
        srv.log.unlink(missing_ok=True)
        attack = request.node.name.split("[")[0].removeprefix("test_").replace("_", " ")
        params = getattr(request.node, "callspec", None)
        detail = params and (params.params.get("name") or params.params.get("seed"))
        ROWS.append((face, attack + (f" ({detail})" if detail else ""),
                     ", ".join(dict.fromkeys(wsraw.ANSWERS)) or "-", took, peak[0]))
        assert alive, f"{face} echo server died during the test"
        assert peak[0] <= RSS_BOUND_KIB, f"{face}: +{peak[0]} KiB during {attack}"


def pytest_sessionfinish(session):
    path = os.environ.get("TIDEWIRE_HOSTILE_REPORT")
    if not path or not ROWS:
        return
    lines = ["| face | attack | answer | time (s) | peak RSS growth (KiB) |", "|---|---|---|---|---|"]
    for face, attack, answer, took, peak in sorted(ROWS, key=lambda r: (r[1], r[0])):
        lines.append(f"| {face} | {attack} | {answer} | {took:.1f} | {peak} |")
    Path(path).write_text("\n".join(lines) + "\n")

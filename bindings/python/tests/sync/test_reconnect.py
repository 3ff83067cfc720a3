"""``for ws in connect(uri, reconnect=...)``: a server process killed and restarted on the
same port, a 4xx raised at once, a 503's Retry-After honoured, ``stop()`` mid-backoff, and the
runtime's schedule and classification as the bindings expose them."""

import threading
import time

import pytest

import tidewire
from tidewire import ReconnectPolicy, connect

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)


def test_reconnects_after_the_server_process_is_killed_and_restarted(reconnect_kit):
    port = reconnect_kit.free_port()
    server = reconnect_kit.ServerProcess(port)
    seen = []
    restarted = []

    def restart():
        time.sleep(0.6)
        restarted.append(reconnect_kit.ServerProcess(port))

    try:
        for ws in connect(f"ws://127.0.0.1:{port}/", reconnect=FAST, open_timeout=2):
            ws.send(f"hello {len(seen)}")
            seen.append(ws.recv(timeout=5))
            if len(seen) == 2:
                break
            server.kill()
            threading.Thread(target=restart).start()
            with pytest.raises(tidewire.ConnectionClosed):
                ws.recv(timeout=5)
    finally:
        server.kill()
        for s in restarted:
            s.kill()
    assert seen == ["hello 0", "hello 1"]


def test_a_4xx_is_raised_without_retrying(reconnect_kit):
    port, seen, stop = reconnect_kit.http_server(lambda n: reconnect_kit.status(403))
    try:
        with pytest.raises(tidewire.InvalidStatus) as e:
            for _ in connect(f"ws://127.0.0.1:{port}/", reconnect=FAST):
                pytest.fail("should not open")
        assert e.value.response.status_code == 403
        assert len(seen) == 1
    finally:
        stop()


def test_a_503_retry_after_is_honoured(reconnect_kit):
    kit = reconnect_kit
    port, seen, stop = kit.http_server(lambda n: kit.status(503, 1) if n == 1 else kit.status(404))
    try:
        with pytest.raises(tidewire.InvalidStatus) as e:
            for _ in connect(f"ws://127.0.0.1:{port}/", reconnect=FAST):
                pytest.fail("should not open")
        assert e.value.response.status_code == 404
        assert len(seen) == 2
        assert seen[1] - seen[0] >= 0.95  # Retry-After: 1, over a 50 ms ceiling
    finally:
        stop()


def test_stop_mid_backoff_ends_the_loop_without_another_attempt(reconnect_kit):
    port, seen, stop = reconnect_kit.http_server(lambda n: reconnect_kit.status(503, 30))
    try:
        loop = connect(f"ws://127.0.0.1:{port}/", reconnect=True)
        assert isinstance(loop, tidewire.sync.Reconnecting)
        threading.Timer(0.3, loop.stop).start()
        t0 = time.monotonic()
        assert list(loop) == []
        assert time.monotonic() - t0 < 5
        time.sleep(0.2)
        assert len(seen) == 1
    finally:
        stop()


def test_max_attempts_raises_the_last_failure(reconnect_kit):
    port = reconnect_kit.free_port()  # nothing listens: refused every time
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=2)
    with pytest.raises(ConnectionRefusedError):
        for _ in connect(f"ws://127.0.0.1:{port}/", reconnect=policy):
            pytest.fail("should not open")


def test_the_schedule_is_the_runtimes(reconnect_kit):
    policy = ReconnectPolicy(initial_delay=0.1, max_delay=1.0, max_attempts=None, reset_after=5)
    a, b = policy.backoff(seed=7), policy.backoff(seed=7)
    for n in range(1, 30):
        d = a.next_delay()
        assert d == b.next_delay()
        assert a.attempt == n
        assert 0 <= d <= min(0.1 * 2 ** (n - 1), 1.0) + 1e-9
    assert a.next_delay(ValueError("not from the runtime")) is None
    assert a.next_delay(TimeoutError("open_timeout")) is not None
    for bad in [
        dict(initial_delay=0),
        dict(initial_delay=2, max_delay=1),
        dict(max_attempts=0),
        dict(reset_after=-1),
    ]:
        with pytest.raises(ValueError):
            ReconnectPolicy(**bad)
    with pytest.raises(TypeError):
        connect("ws://127.0.0.1:1/", reconnect="yes")  # type: ignore[call-overload]

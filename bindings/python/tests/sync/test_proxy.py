"""``connect(..., proxy=...)`` of the blocking API through real proxies (tests/proxies.py):
ws:// and wss:// through tinyproxy, the HTTPS proxy (stunnel in front of tinyproxy) and
danted; each failure a ``ProxyError`` saying what failed, within the timeout."""

import time
from pathlib import Path

import pytest

import tidewire
from tidewire import ClientTLS, ServerTLS, connect, serve


def with_wrong_password(url):
    """The proxy URL with its password replaced by ``wrong``."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split(':', 1)[0]}:wrong@{rest.split('@', 1)[1]}"


ROUTES = [
    "TW_PROXY_HTTP",
    "TW_PROXY_HTTP_AUTH",
    "TW_PROXY_HTTPS",
    "TW_PROXY_SOCKS",
    "TW_PROXY_SOCKS_AUTH",
]


def echo(ws):
    for message in ws:
        ws.send(message)


def client_tls(certs, proxies):
    """Trusts the origin's test CA and the HTTPS proxy's."""
    return ClientTLS(
        cadata=Path(certs[0]).read_text() + Path(proxies["TW_PROXY_HTTPS_CA"]).read_text()
    )


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_echo_through_each_proxy(proxies, certs, route, secure):
    if route not in proxies:
        pytest.skip(f"{route}: not root, no system user for dante")
    ca, cert, key = certs
    with serve(echo, "127.0.0.1", 0, ssl=ServerTLS(cert, key) if secure else None) as server:
        uri = f"{'wss' if secure else 'ws'}://127.0.0.1:{server.port}/p"
        with connect(uri, proxy=proxies[route], ssl=client_tls(certs, proxies)) as ws:
            ws.send("through")
            assert ws.recv(timeout=5) == "through"


def failure(uri_secure, proxy, certs, open_timeout=5.0, ssl=None):
    ca, cert, key = certs
    with serve(echo, "127.0.0.1", 0, ssl=ServerTLS(cert, key) if uri_secure else None) as server:
        uri = f"{'wss' if uri_secure else 'ws'}://127.0.0.1:{server.port}/p"
        started = time.monotonic()
        with pytest.raises(tidewire.ProxyError) as info:
            connect(uri, proxy=proxy, ssl=ssl or ClientTLS(cafile=ca), open_timeout=open_timeout)
        return info.value, time.monotonic() - started


def test_wrong_http_credentials_carry_the_status(proxies, certs):
    e, took = failure(True, with_wrong_password(proxies["TW_PROXY_HTTP_AUTH"]), certs)
    assert e.kind == "refused" and e.status in (401, 407), e
    assert "wrong" not in str(e)
    assert isinstance(e, OSError) and isinstance(e, tidewire.InvalidHandshake)
    assert took < 4


def test_no_http_credentials_carry_the_challenge(proxies, certs):
    url = proxies["TW_PROXY_HTTP_AUTH"]
    bare = "http://" + url.split("@", 1)[1]
    e, _ = failure(False, bare, certs)
    assert e.status == 407 and e.authenticate and e.authenticate.startswith("Basic"), e


def test_wrong_socks_credentials(proxies, certs):
    if "TW_PROXY_SOCKS_AUTH" not in proxies:
        pytest.skip("not root: no system user for dante")
    e, took = failure(False, with_wrong_password(proxies["TW_PROXY_SOCKS_AUTH"]), certs)
    assert e.kind == "auth" and e.status == 1, e
    assert took < 4


def test_a_refusing_proxy_gives_403(proxies, certs):
    e, _ = failure(False, proxies["TW_PROXY_REFUSING"], certs)
    assert e.kind == "refused" and e.status == 403, e
    assert e.proxy == proxies["TW_PROXY_REFUSING"]


def test_a_proxy_answering_garbage(proxies, certs):
    e, _ = failure(False, proxies["TW_PROXY_GARBAGE"], certs)
    assert e.kind == "malformed", e
    socks = "socks5://" + proxies["TW_PROXY_GARBAGE"].split("://", 1)[1]
    e, _ = failure(False, socks, certs)
    assert e.kind == "malformed" and e.field, e


def test_an_untrusted_https_proxy_is_a_tls_proxy_error(proxies, certs):
    # Trusts the origin's CA only.
    e, took = failure(True, proxies["TW_PROXY_HTTPS"], certs)
    assert e.kind == "tls" and "TLS to the proxy failed" in str(e), e
    assert took < 4


def test_a_silent_proxy_times_out_within_open_timeout(proxies, certs):
    e, took = failure(True, proxies["TW_PROXY_SILENT"], certs, open_timeout=0.7)
    assert isinstance(e, tidewire.ProxyTimeoutError) and isinstance(e, TimeoutError), repr(e)
    assert e.kind == "timeout"
    assert 0.6 <= took < 2.7, took


def test_an_unreachable_proxy(certs):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    e, _ = failure(False, f"socks5h://127.0.0.1:{port}", certs)
    assert e.kind == "unreachable", e


def test_proxy_argument_values(monkeypatch, certs):
    # None: direct, even with a (dead) proxy in the environment.
    monkeypatch.setenv("ws_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with serve(echo, "127.0.0.1", 0) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", proxy=None) as ws:
            ws.send("direct")
            assert ws.recv(timeout=5) == "direct"
        # True (the default): the environment's proxy, which is not there.
        with pytest.raises(tidewire.ProxyError) as info:
            connect(f"ws://127.0.0.1:{server.port}/", open_timeout=3)
        assert info.value.kind == "unreachable"
    with pytest.raises(ValueError):
        connect("ws://127.0.0.1:1/", proxy="ftp://127.0.0.1:21")
    with pytest.raises(TypeError):
        connect("ws://127.0.0.1:1/", proxy=3)  # type: ignore[arg-type]


def test_low_level_context_connect_takes_proxy(proxies):
    ctx = tidewire.Context()
    try:
        with serve(echo, "127.0.0.1", 0) as server:
            conn = ctx.connect(f"ws://127.0.0.1:{server.port}/", proxy=proxies["TW_PROXY_SOCKS"])
            deadline = time.monotonic() + 5
            opened = False
            while not opened and time.monotonic() < deadline:
                for ev in ctx.poll(0.05):
                    assert not isinstance(ev, tidewire.ErrorEvent), ev.error
                    opened = opened or (isinstance(ev, tidewire.OpenEvent) and ev.conn == conn)
            assert opened
            bad = ctx.connect(f"ws://127.0.0.1:{server.port}/", proxy=proxies["TW_PROXY_REFUSING"])
            error = None
            while error is None and time.monotonic() < deadline + 5:
                for ev in ctx.poll(0.05):
                    if isinstance(ev, tidewire.ErrorEvent) and ev.conn == bad:
                        error = ev.error
            assert isinstance(error, tidewire.ProxyError) and error.status == 403, error
    finally:
        ctx.free()

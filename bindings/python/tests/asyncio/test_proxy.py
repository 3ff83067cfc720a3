"""``await connect(..., proxy=...)`` of the asyncio API through real proxies
(tests/proxies.py): ws:// and wss:// through tinyproxy, the HTTPS proxy and danted; each
failure a ``ProxyError`` saying what failed, within the timeout."""

import time
from pathlib import Path

import pytest

import tidewire
from tidewire import ClientTLS, ServerTLS
from tidewire.asyncio import connect, serve


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


async def echo(ws):
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_echo_through_each_proxy(proxies, certs, route, secure):
    if route not in proxies:
        pytest.skip(f"{route}: not root, no system user for dante")
    ca, cert, key = certs
    cadata = Path(ca).read_text() + Path(proxies["TW_PROXY_HTTPS_CA"]).read_text()
    async with serve(echo, "127.0.0.1", 0, ssl=ServerTLS(cert, key) if secure else None) as server:
        uri = f"{'wss' if secure else 'ws'}://127.0.0.1:{server.port}/p"
        async with connect(uri, proxy=proxies[route], ssl=ClientTLS(cadata=cadata)) as ws:
            await ws.send("through")
            assert await ws.recv() == "through"


async def failure(secure, proxy, certs, open_timeout=5.0):
    ca, cert, key = certs
    async with serve(echo, "127.0.0.1", 0, ssl=ServerTLS(cert, key) if secure else None) as server:
        uri = f"{'wss' if secure else 'ws'}://127.0.0.1:{server.port}/p"
        started = time.monotonic()
        with pytest.raises(tidewire.ProxyError) as info:
            await connect(uri, proxy=proxy, ssl=ClientTLS(cafile=ca), open_timeout=open_timeout)
        return info.value, time.monotonic() - started


async def test_wrong_credentials(proxies, certs):
    e, took = await failure(True, with_wrong_password(proxies["TW_PROXY_HTTP_AUTH"]), certs)
    assert e.kind == "refused" and e.status in (401, 407), e
    assert took < 4
    if "TW_PROXY_SOCKS_AUTH" in proxies:
        e, _ = await failure(False, with_wrong_password(proxies["TW_PROXY_SOCKS_AUTH"]), certs)
        assert e.kind == "auth", e


async def test_refusing_garbage_and_untrusted(proxies, certs):
    e, _ = await failure(False, proxies["TW_PROXY_REFUSING"], certs)
    assert e.status == 403, e
    e, _ = await failure(False, proxies["TW_PROXY_GARBAGE"], certs)
    assert e.kind == "malformed", e
    e, _ = await failure(True, proxies["TW_PROXY_HTTPS"], certs)
    assert e.kind == "tls" and "TLS to the proxy failed" in str(e), e


async def test_a_silent_proxy_times_out_within_open_timeout(proxies, certs):
    e, took = await failure(True, proxies["TW_PROXY_SILENT"], certs, open_timeout=0.7)
    assert isinstance(e, tidewire.ProxyTimeoutError) and isinstance(e, TimeoutError), repr(e)
    assert 0.6 <= took < 2.7, took


async def test_none_is_direct(monkeypatch):
    monkeypatch.setenv("ws_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/", proxy=None) as ws:
            await ws.send("direct")
            assert await ws.recv() == "direct"
        with pytest.raises(tidewire.ProxyError):
            await connect(f"ws://127.0.0.1:{server.port}/", open_timeout=3)

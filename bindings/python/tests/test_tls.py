"""wss:// with rustls on both sides, for both APIs, and certificate verification."""

import ssl

import pytest

import tidewire
import tidewire.asyncio as tw
from tidewire import ClientTLS, ServerTLS


def test_sync_wss_round_trip(certs):
    ca, cert, key = certs
    with tidewire.serve(
        lambda ws: [ws.send(m) for m in ws], "127.0.0.1", 0, ssl=ServerTLS(cert, key)
    ) as server:
        with tidewire.connect(f"wss://127.0.0.1:{server.port}/", ssl=ClientTLS(cafile=ca)) as ws:
            ws.send("secure")
            assert ws.recv(timeout=5) == "secure"


async def test_asyncio_wss_round_trip(certs):
    ca, cert, key = certs

    async def echo(ws):
        async for m in ws:
            await ws.send(m)

    async with tw.serve(echo, "127.0.0.1", 0, ssl=(cert, key)) as server:
        with open(ca) as f:
            cadata = f.read()
        async with tw.connect(
            f"wss://localhost:{server.port}/", ssl=ClientTLS(cadata=cadata)
        ) as ws:
            await ws.send(b"secure")
            assert await ws.recv() == b"secure"


def test_unknown_certificate_authority_raises_ssl_error(certs):
    _, cert, key = certs
    with tidewire.serve(lambda ws: None, "127.0.0.1", 0, ssl=ServerTLS(cert, key)) as server:
        with pytest.raises(ssl.SSLError):
            tidewire.connect(f"wss://127.0.0.1:{server.port}/", ssl=ClientTLS(cafile=certs[1]))


def test_verification_can_be_disabled_for_tests(certs):
    _, cert, key = certs
    with tidewire.serve(
        lambda ws: ws.send("in"), "127.0.0.1", 0, ssl=ServerTLS(cert, key)
    ) as server:
        with tidewire.connect(f"wss://127.0.0.1:{server.port}/", ssl=False) as ws:
            assert ws.recv(timeout=5) == "in"


def test_bad_certificate_files_raise_ssl_error(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        tidewire.serve(lambda ws: None, "127.0.0.1", 0, ssl=ServerTLS(str(bad), str(bad)))

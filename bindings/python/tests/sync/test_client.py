"""The blocking client: handshake options, failures and their exceptions."""

import socket
import time

import pytest

import tidewire
from tidewire import connect, serve


def test_request_and_response_describe_the_handshake():
    seen = {}

    def handler(ws):
        seen["path"] = ws.request.path
        seen["token"] = ws.request.headers["X-Token"]
        seen["origin"] = ws.request.headers.get("Origin")
        ws.send("ok")

    with serve(handler, "127.0.0.1", 0, subprotocols=["v2", "v1"]) as server:
        with connect(
            f"ws://127.0.0.1:{server.port}/path?q=1",
            subprotocols=["v1", "v2"],
            additional_headers={"X-Token": "t"},
            origin="https://a.example",
        ) as ws:
            assert ws.recv(timeout=5) == "ok"
            assert ws.subprotocol == "v2"
            assert ws.remote_address == ("127.0.0.1", server.port)
            assert ws.request.path == "/path?q=1"
            assert ws.response.status_code == 101
            assert ws.response.headers["Sec-WebSocket-Protocol"] == "v2"
            # The headers as the server sent them, not rebuilt from the negotiation.
            assert ws.response.headers["Upgrade"].lower() == "websocket"
            assert len(ws.response.headers["Sec-WebSocket-Accept"]) == 28
    assert seen == {"path": "/path?q=1", "token": "t", "origin": "https://a.example"}


def test_invalid_uri():
    with pytest.raises(tidewire.InvalidURI):
        connect("http://127.0.0.1/")
    with pytest.raises(tidewire.InvalidURI):
        connect("not a uri")


@pytest.mark.parametrize(
    "ssl",
    [None, False, tidewire.ClientTLS(cafile="/nonexistent")],
    ids=["default", "no-verify", "cafile"],
)
def test_multibyte_uri_with_tls_options_raises_invalid_uri(ssl):
    with pytest.raises(tidewire.InvalidURI):
        connect("wsséé://127.0.0.1:1/", ssl=ssl)


def test_refused_connection_raises_connection_refused_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionRefusedError):
        connect(f"ws://127.0.0.1:{port}/")


def test_open_timeout_raises_timeout_error(raw_server):
    port = raw_server(lambda conn: time.sleep(2))  # accepts, never answers
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        connect(f"ws://127.0.0.1:{port}/", open_timeout=0.3)
    assert time.monotonic() - start < 2


def test_http_error_status_raises_invalid_status(raw_server):
    def script(conn):
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.5)

    port = raw_server(script)
    with pytest.raises(tidewire.InvalidStatus) as info:
        connect(f"ws://127.0.0.1:{port}/")
    assert info.value.status_code == 404


def test_garbage_response_raises_invalid_message(raw_server):
    def script(conn):
        conn.recv(4096)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")
        time.sleep(0.5)

    port = raw_server(script)
    with pytest.raises(tidewire.InvalidMessage):
        connect(f"ws://127.0.0.1:{port}/")


def test_server_closing_during_handshake_raises_invalid_handshake(raw_server):
    port = raw_server(lambda conn: conn.recv(4096))
    with pytest.raises(tidewire.InvalidHandshake):
        connect(f"ws://127.0.0.1:{port}/")


def test_wrong_accept_key_raises_invalid_header(raw_server):
    def script(conn):
        conn.recv(4096)
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n"
        )
        time.sleep(0.5)

    port = raw_server(script)
    with pytest.raises(tidewire.InvalidHeader) as info:
        connect(f"ws://127.0.0.1:{port}/")
    assert info.value.name == "Sec-WebSocket-Accept"


def test_unoffered_subprotocol_raises_negotiation_error(raw_server, handshake):
    port = raw_server(
        lambda conn: (handshake(conn, "Sec-WebSocket-Protocol: evil\r\n"), time.sleep(0.5))
    )
    with pytest.raises(tidewire.NegotiationError):
        connect(f"ws://127.0.0.1:{port}/", subprotocols=["good"])


def test_too_big_message_fails_the_connection_with_payload_too_big(raw_server, handshake):
    def script(conn):
        handshake(conn)
        conn.sendall(bytes([0x82, 126]) + (2000).to_bytes(2, "big") + b"x" * 2000)
        time.sleep(0.5)

    port = raw_server(script)
    with connect(f"ws://127.0.0.1:{port}/", max_size=1000, close_timeout=0.5) as ws:
        with pytest.raises(tidewire.ConnectionClosedError) as info:
            ws.recv(timeout=5)
    assert info.value.code == 1009
    assert isinstance(info.value.__cause__, tidewire.PayloadTooBig)


def test_protocol_violation_fails_the_connection_with_protocol_error(raw_server, handshake):
    def script(conn):
        handshake(conn)
        conn.sendall(bytes([0xF2, 0]))  # reserved bits set, no extension negotiated
        time.sleep(0.5)

    port = raw_server(script)
    with connect(f"ws://127.0.0.1:{port}/", compression=None, close_timeout=0.5) as ws:
        with pytest.raises(tidewire.ConnectionClosedError) as info:
            ws.recv(timeout=5)
    assert info.value.code == 1002
    assert isinstance(info.value.__cause__, tidewire.ProtocolError)


def test_invalid_close_code_raises_protocol_error():
    with serve(lambda ws: ws.recv(), "127.0.0.1", 0) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            with pytest.raises(tidewire.ProtocolError):
                ws.close(1006)


def test_ssl_argument_refuses_ssl_module_contexts():
    import ssl

    with pytest.raises(TypeError):
        connect("wss://127.0.0.1:1/", ssl=ssl.create_default_context())

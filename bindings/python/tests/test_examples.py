"""The example programs of examples/python (the docs/DESIGN.md contract), run as processes."""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tidewire
import tidewire.asyncio as tw

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"


def start_echo_server(*args):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "echo_server.py"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, line.strip().rsplit(" ", 1)[1]


@pytest.mark.parametrize("api", [[], ["--blocking"]], ids=["asyncio", "blocking"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_echo_server_echoes_with_types_and_exits_0_on_signal(signum, api):
    proc, url = start_echo_server(*api)
    try:
        with tidewire.connect(url) as ws:
            assert "permessage-deflate" in (ws.extensions or "")
            ws.send("text")
            assert ws.recv(timeout=5) == "text"
            ws.send(b"bin")
            assert ws.recv(timeout=5) == b"bin"
            assert ws.ping().wait(5)
    finally:
        proc.send_signal(signum)
        assert proc.wait(10) == 0
        proc.stdout.close()


def test_echo_server_serves_wss(certs):
    ca, cert, key = certs
    proc, url = start_echo_server("--tls-cert", cert, "--tls-key", key)
    try:
        assert url.startswith("wss://")
        with tidewire.connect(url, ssl=tidewire.ClientTLS(cafile=ca)) as ws:
            ws.send("secure")
            assert ws.recv(timeout=5) == "secure"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        proc.stdout.close()


def test_chat_client_sends_lines_and_prints_messages():
    proc, url = start_echo_server()
    try:
        chat = subprocess.run(
            [sys.executable, str(EXAMPLES / "chat_client.py"), url, "--name", "ann"],
            input="hello\nworld\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert chat.returncode == 0, chat.stderr
        assert "ann: hello" in chat.stdout
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@pytest.mark.parametrize("api", [[], ["--blocking"]], ids=["asyncio", "blocking"])
async def test_autobahn_client_runs_every_case_and_updates_reports(api):
    seen = []
    echoed = []
    failures = []  # the server logs what its handler raises: failures are kept for the test

    async def fuzzing_server(ws):
        try:
            path = ws.request.path
            seen.append(path.split("?")[0])
            if path.startswith("/getCaseCount"):
                await ws.send("2")
            elif path.startswith("/runCase"):
                await ws.send("case payload")
                echoed.append(await ws.recv())
        except Exception as exc:
            failures.append(exc)
            raise

    async with tw.serve(fuzzing_server, "127.0.0.1", 0) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / "autobahn_client.py"),
            f"ws://127.0.0.1:{server.port}",
            "--agent",
            "pytest",
            *api,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert not failures, failures
    assert proc.returncode == 0
    assert b"2 cases" in out
    assert seen == ["/getCaseCount", "/runCase", "/runCase", "/updateReports"]
    assert echoed == ["case payload", "case payload"]

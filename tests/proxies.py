#!/usr/bin/env python3
"""Real proxies for the faces' proxy tests (C, C++, Python), started on free loopback ports
and stopped by PID: the same programs and configurations as crates/net/tests/proxy.rs.

    tinyproxy                     HTTP CONNECT, no auth           TW_PROXY_HTTP
    tinyproxy + BasicAuth         alice:s3cret                    TW_PROXY_HTTP_AUTH (URL with them)
    tinyproxy ConnectPort 443     refuses other ports (403)       TW_PROXY_REFUSING
    stunnel -> tinyproxy          HTTPS proxy, cert made here     TW_PROXY_HTTPS, TW_PROXY_HTTPS_CA (PEM file)
    danted                        SOCKS5, no auth                 TW_PROXY_SOCKS (socks5h://host:port)
    danted socksmethod username   twproxytest:tw-s0cks-pass       TW_PROXY_SOCKS_AUTH (URL with them;
                                                                  only as root: the user is a system one)
    a Python thread               answers garbage                 TW_PROXY_GARBAGE (http://...)
    a Python thread               accepts and never answers       TW_PROXY_SILENT (http://...)

Two ways to use it:

* `python3 tests/proxies.py --serve`: prints `NAME=VALUE` lines, then `READY`, and keeps
  the proxies up until SIGTERM/SIGINT or until its parent process is gone; then stops them
  by PID and exits. The C and C++ tests start it with popen and end it with kill(PID) (the
  `TW_PROXIES_PID` line).
* `import proxies; p = proxies.Proxies(); env = p.start(); ...; p.stop()` (pytest fixture).

A missing program (tinyproxy, danted, stunnel4, openssl) is an error naming it; `make
proxy-tools` installs them.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOCKS_USER = "twproxytest"
SOCKS_PASS = "tw-s0cks-pass"
HTTP_USER = "alice"
HTTP_PASS = "s3cret"


def _binary(*names):
    for name in names:
        for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin", "/usr/local/sbin"]:
            p = os.path.join(d, name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
    raise RuntimeError(f"{names[0]} is not installed (`make proxy-tools` installs it)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(proc, port, log, what):
    end = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            pass
        if proc.poll() is not None:
            text = open(log).read() if os.path.exists(log) else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {text}")
        if time.monotonic() > end:
            raise RuntimeError(f"{what} did not listen on {port}")
        time.sleep(0.02)


def _socks_user():
    """dante checks usernames against the system's users: creates one (root only)."""
    if os.geteuid() != 0:
        return False
    if subprocess.run(["id", SOCKS_USER], capture_output=True).returncode != 0:
        if subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SOCKS_USER]).returncode != 0:
            return False
    r = subprocess.run(["chpasswd"], input=f"{SOCKS_USER}:{SOCKS_PASS}\n".encode())
    return r.returncode == 0


class _Fake:
    """A listener whose connections get `answer` after their first bytes (or nothing), and
    are then held open until stop()."""

    def __init__(self, answer):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.held = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.answer is not None:
                try:
                    c.settimeout(5)
                    c.recv(512)
                    c.sendall(self.answer)
                except OSError:
                    pass
            self.held.append(c)

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.held:
            c.close()


class Proxies:
    def __init__(self):
        self.dir = None
        self.procs = []
        self.fakes = []
        self.env = {}

    def _spawn(self, argv, port, log, what):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.procs.append(p)
        _wait_listening(p, port, log, what)
        return p

    def _tinyproxy(self, tag, extra=""):
        port = _free_port()
        log = os.path.join(self.dir, f"{tag}.log")
        conf = os.path.join(self.dir, f"{tag}.conf")
        with open(conf, "w") as f:
            f.write(f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 100\nLogLevel Info\n"
                    f"LogFile \"{log}\"\nPidFile \"{self.dir}/{tag}.pid\"\nAllow 127.0.0.1\n"
                    f"DisableViaHeader Yes\n{extra}")
        self._spawn([_binary("tinyproxy"), "-d", "-c", conf], port, log, "tinyproxy")
        return port

    def _danted(self, tag, method):
        port = _free_port()
        log = os.path.join(self.dir, f"{tag}.log")
        conf = os.path.join(self.dir, f"{tag}.conf")
        with open(conf, "w") as f:
            f.write(f"logoutput: {log}\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n"
                    f"socksmethod: {method}\nuser.privileged: root\nuser.unprivileged: nobody\n"
                    "client pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}\n"
                    "socks pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n}\n")
        self._spawn([_binary("danted"), "-f", conf, "-p", f"{self.dir}/{tag}.pid", "-N", "1"],
                    port, log, "danted")
        return port

    def _pki(self):
        """A CA and a certificate for 127.0.0.1 and localhost signed by it (openssl)."""
        openssl = _binary("openssl")
        d = self.dir
        run = lambda *a: subprocess.run([openssl, *a], check=True, capture_output=True)
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "2",
            "-subj", "/CN=tidewire test HTTPS proxy CA")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{d}/proxy.key", "-out", f"{d}/proxy.csr", "-subj", "/CN=127.0.0.1")
        with open(f"{d}/ext.cnf", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        run("x509", "-req", "-in", f"{d}/proxy.csr", "-CA", f"{d}/ca.pem", "-CAkey",
            f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/proxy.pem", "-days", "2",
            "-extfile", f"{d}/ext.cnf")
        return f"{d}/ca.pem", f"{d}/proxy.pem", f"{d}/proxy.key"

    def _stunnel(self, upstream):
        ca, cert, key = self._pki()
        port = _free_port()
        log = os.path.join(self.dir, "stunnel.log")
        conf = os.path.join(self.dir, "stunnel.conf")
        with open(conf, "w") as f:
            f.write(f"foreground = yes\npid = {self.dir}/stunnel.pid\noutput = {log}\ndebug = 4\n"
                    f"[https-proxy]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{upstream}\n"
                    f"cert = {cert}\nkey = {key}\n")
        self._spawn([_binary("stunnel4", "stunnel"), conf], port, log, "stunnel")
        return port, ca

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="tidewire-proxies-")
        try:
            e = self.env
            http = self._tinyproxy("tinyproxy")
            e["TW_PROXY_HTTP"] = f"http://127.0.0.1:{http}"
            auth = self._tinyproxy("tinyproxy-auth", f"BasicAuth {HTTP_USER} {HTTP_PASS}\n")
            e["TW_PROXY_HTTP_AUTH"] = f"http://{HTTP_USER}:{HTTP_PASS}@127.0.0.1:{auth}"
            refusing = self._tinyproxy("tinyproxy-403", "ConnectPort 443\n")
            e["TW_PROXY_REFUSING"] = f"http://127.0.0.1:{refusing}"
            https, ca = self._stunnel(http)
            e["TW_PROXY_HTTPS"] = f"https://127.0.0.1:{https}"
            e["TW_PROXY_HTTPS_CA"] = ca
            socks = self._danted("danted", "none")
            e["TW_PROXY_SOCKS"] = f"socks5h://127.0.0.1:{socks}"
            if _socks_user():
                socks_auth = self._danted("danted-auth", "username")
                e["TW_PROXY_SOCKS_AUTH"] = f"socks5h://{SOCKS_USER}:{SOCKS_PASS}@127.0.0.1:{socks_auth}"
            garbage = _Fake(b"\x00\x01garbage that is not HTTP\r\n\r\n")
            silent = _Fake(None)
            self.fakes += [garbage, silent]
            e["TW_PROXY_GARBAGE"] = f"http://127.0.0.1:{garbage.port}"
            e["TW_PROXY_SILENT"] = f"http://127.0.0.1:{silent.port}"
        except BaseException:
            self.stop()
            raise
        return dict(self.env)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)  # by PID: danted takes its children along
        end = time.monotonic() + 3
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []
        for f in self.fakes:
            f.stop()
        self.fakes = []
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _serve():
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    p = Proxies()
    try:
        env = p.start()
    except Exception as e:  # noqa: BLE001 - reported to the test, which fails
        print(f"ERROR={e}".replace("\n", " "), flush=True)
        return 1
    print(f"TW_PROXIES_PID={os.getpid()}")
    for k, v in env.items():
        print(f"{k}={v}")
    print("READY", flush=True)
    try:
        while not stop.wait(0.2):
            if os.getppid() != parent:
                break  # the test is gone
    finally:
        p.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        sys.exit(_serve())
    print(__doc__)
    sys.exit(2)

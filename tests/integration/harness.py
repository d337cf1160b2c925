"""harness.py — start real ringserve processes on loopback for integration tests.

Stdlib only. Every process started through Harness is killed when the test
ends (also on failure), and its stderr is kept in a log file that is printed
when a test fails, so a failing CI run shows what the server said.

Environment (set by tests/meson.build): RINGSERVE_BIN, RINGSERVE_SRC,
RINGSERVE_BUILD.
"""
import http.client
import json
import re
import shutil
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("RINGSERVE_BIN", "build/ringserve")
SRC = os.environ.get("RINGSERVE_SRC", os.getcwd())
BUILD = os.environ.get("RINGSERVE_BUILD", os.path.join(SRC, "build"))

sys.path.insert(0, os.path.join(SRC, "clients", "python"))


def free_port():
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digits_rows(n=None):
    """The rows of tests/data/digits_test.csv as (64 pixel floats, label),
    the first n of them or all."""
    rows = []
    with open(os.path.join(SRC, "tests", "data", "digits_test.csv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            v = line.strip().split(",")
            rows.append(([float(x) for x in v[:64]], int(v[64])))
            if len(rows) == n:
                break
    return rows


def wait_for(pred, timeout_s=20.0, interval_s=0.05, what="condition"):
    """Polls pred() until it returns a truthy value; raises on timeout.
    Timeouts here bound a test's run time; they assert nothing about speed."""
    deadline = time.monotonic() + timeout_s
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the condition may raise while starting
            last_exc = e
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_exc})")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_request(port, method, path, body=None, headers=None, timeout_s=10.0):
    """One HTTP request; returns (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


class Proc:
    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=env, start_new_session=True)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def wait(self, timeout_s=20.0):
        return self.p.wait(timeout=timeout_s)

    def stop(self, timeout_s=10.0):
        """SIGTERM, then SIGKILL for the whole process group."""
        if self.alive():
            try:
                os.killpg(self.p.pid, signal.SIGCONT)
                os.kill(self.p.pid, signal.SIGTERM)
                self.p.wait(timeout=timeout_s)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Harness:
    """Context manager owning a temp dir and every process started in it."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"rs-{name}-")
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        for p in self.procs:
            p.stop()
        self._remove_cache_segments()
        if exc_type is not None:
            for p in self.procs:
                sys.stderr.write(f"---- log of {' '.join(p.args)}\n{p.output()[-6000:]}\n")
        elif not os.environ.get("RS_KEEP_TMP"):  # RS_KEEP_TMP=1 keeps logs for debugging
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def _remove_cache_segments(self):
        """A cache segment outlives its processes by design (warm restarts);
        a test's must not outlive the test: /dev/shm is memory."""
        for name in os.listdir(self.dir) if os.path.isdir(self.dir) else []:
            if not name.endswith(".yaml"):
                continue
            with open(os.path.join(self.dir, name)) as f:
                text = f.read()
            for m in re.finditer(r"^cache:\s*\n(?:[ \t]+.*\n)*?[ \t]+name:\s*([A-Za-z0-9._-]+)", text, re.M):
                try:
                    os.unlink(os.path.join("/dev/shm", m.group(1)))
                except OSError:
                    pass

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def start(self, *args, env=None, log_name=None):
        """Starts `ringserve <args>`; returns a Proc."""
        n = log_name or f"p{len(self.procs)}-{args[0]}.log"
        e = dict(os.environ)
        if env:
            e.update(env)
        p = Proc([BIN, *args], self.path(n), env=e)
        self.procs.append(p)
        return p

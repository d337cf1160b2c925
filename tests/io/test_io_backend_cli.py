"""`ringserve --io-backend=...` selects the event-loop backend of a real process.

Starts `ringserve --io-backend=<b> --log-level=info worker` for uring and
epoll, checks the process says which backend its loops run on, and that the
worker answers PING over the framed protocol on that backend. A bad value is
refused at start with a message naming it."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import BIN, SRC, Harness, free_port, port_open, wait_for  # noqa: E402

import ringserve_client as rc  # noqa: E402


def run_backend(backend):
    with Harness(f"io-backend-{backend}") as h:
        cfg = h.write("worker.yaml", f"models: {{repository: {SRC}/models}}\n")
        port = free_port()
        p = h.start(f"--io-backend={backend}", "--log-level=info", "worker", "--config", cfg,
                    "--port", str(port), "--model", "identity")
        wait_for(lambda: port_open(port) or not p.alive(), what="worker listening")
        assert p.alive(), p.output()
        with rc.FramedClient("127.0.0.1", port) as c:
            for i in range(20):
                assert c.ping(1000 + i) == 1000 + i
        out = p.output()
        assert f"io: event loop backend: {backend}" in out, out


def test_bad_backend():
    r = subprocess.run([BIN, "--io-backend=kqueue", "worker"], capture_output=True, text=True)
    assert r.returncode == 2, r
    assert "'kqueue'" in r.stderr and "uring" in r.stderr, r.stderr


if __name__ == "__main__":
    run_backend("uring")
    run_backend("epoll")
    test_bad_backend()
    print("ok")

"""Integration: failover across three real workers (router, load balancer, health).

A real coordinator and three real `ringserve worker` processes serving
`identity`, registered over the framed protocol. Under steady HTTP load:
one worker is frozen with SIGSTOP (it hangs: its connection stays open and
answers nothing) and one is killed with SIGKILL. Checks that
  - both leave the rotation (/v2/workers shows them not up, and no new
    request is sent to them) — detection is by the health checker
    (health.interval_ms x failure_threshold, unit-tested exactly with a fake
    clock in tests/router) and, under load, by the circuit breaker; the wait
    here is only bounded, never timed;
  - no request is lost: every request of the load gets its correct result
    (the coordinator retries on another worker);
  - after SIGCONT the frozen worker passes its pings and gets traffic again.
Stdlib only."""
import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Harness, free_port, wait_for  # noqa: E402

SRC = harness.SRC

INTERVAL_MS = 300
TIMEOUT_MS = 200
THRESHOLD = 3
CLIENTS = 3


def config(worker_ports):
    cache = f"rs-failover-{os.getpid()}-{random.randint(0, 1 << 30)}"
    return f"""
server:
  host: 127.0.0.1
  http_port: 0
  framed_port: 0
  io_threads: 1
  worker_timeout_ms: 1000
  drain_timeout_ms: 2000
models:
  repository: [{SRC}/models]
  load: [identity]
cache:
  name: {cache}
  capacity_mb: 16
cluster:
  heartbeat_timeout_ms: 60000
load_balancer:
  strategy: round_robin
health:
  interval_ms: {INTERVAL_MS}
  timeout_ms: {TIMEOUT_MS}
  failure_threshold: {THRESHOLD}
  success_threshold: 1
  breaker_cooldown_ms: 1000
retry:
  max_attempts: 3
  budget_percent: 100
"""


_admin = {}


def admin_get(http_port, path):
    """GET on one keep-alive connection (polling must not open a connection
    per call)."""
    conn = _admin.get(http_port)
    try:
        if conn is None:
            conn = _admin[http_port] = http.client.HTTPConnection("127.0.0.1", http_port,
                                                                  timeout=5)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
    except Exception:
        if conn is not None:
            conn.close()
        _admin.pop(http_port, None)
        raise
    if r.status != 200:
        raise AssertionError(f"{path}: {r.status} {body[:200]!r}")
    return body


def workers_by_id(http_port):
    return {w["id"]: w for w in json.loads(admin_get(http_port, "/v2/workers"))["workers"]}


def worker_metric(http_port, name, worker):
    """The value of `name{worker="<worker>",...}` in /metrics, or None."""
    for line in admin_get(http_port, "/metrics").decode().splitlines():
        if line.startswith(name + "{") and f'worker="{worker}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def sent(w):
    """Requests ever sent to a worker: ended ones plus those in flight."""
    return w["requests"] + w["in_flight"]


class Load:
    """CLIENTS threads sending distinct identity requests (no cache hits)
    over HTTP until stopped; every answer is checked against its input."""

    def __init__(self, http_port):
        self.port = http_port
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(CLIENTS)]

    def run(self, i):
        rng = random.Random(i)
        conn = None  # one keep-alive connection per client, reopened after an error
        while not self.stop_ev.is_set():
            data = [round(rng.uniform(-1000, 1000), 3) for _ in range(16)]
            body = {"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32", "data": data}]}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/v2/models/identity/infer", body=json.dumps(body),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                out = r.read()
                if r.status != 200:
                    raise AssertionError(f"status {r.status}: {out[:200]!r}")
                got = json.loads(out)["outputs"][0]["data"]
                if [round(v, 3) for v in got] != data:
                    raise AssertionError(f"wrong result {got[:4]} for {data[:4]}")
                with self.lock:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is recorded and asserted on
                with self.lock:
                    self.failures.append(repr(e))
                if conn is not None:
                    conn.close()
                    conn = None
        if conn is not None:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=60)
        return False

    def wait_answers(self, n):
        start = self.ok
        wait_for(lambda: self.ok >= start + n, timeout_s=60, what=f"{n} more answers")


class FailoverTest(unittest.TestCase):
    def test_stop_kill_and_return(self):
        with Harness("failover") as h:
            cfg = h.write("cluster.yaml", config([]))
            coord = h.start("coordinator", "--config", cfg)
            m = wait_for(lambda: re.search(r"http (\d+), framed (\d+)", coord.output()),
                         timeout_s=30, what="coordinator listening")
            http_port, framed_port = int(m.group(1)), int(m.group(2))
            workers = {}
            for i in range(3):
                wid = f"fw{i}"
                workers[wid] = h.start("worker", "--config", cfg, "--port", str(free_port()),
                                       "--id", wid, "--model", "identity", "--coordinator",
                                       f"127.0.0.1:{framed_port}", log_name=f"{wid}.log")
            wait_for(lambda: sum(w["state"] == "up" for w in workers_by_id(http_port).values())
                     == 3, timeout_s=30, what="three workers registered and up")

            with Load(http_port) as load:
                load.wait_answers(30)
                before = workers_by_id(http_port)
                for wid in workers:  # round robin: everyone serves
                    self.assertGreater(sent(before[wid]), 0, wid)

                workers["fw1"].signal(signal.SIGSTOP)
                workers["fw2"].signal(signal.SIGKILL)
                t0 = time.monotonic()
                # (the breaker may take them out sooner; "down" is the health checker's verdict)
                wait_for(lambda: all(workers_by_id(http_port)[w]["health"] == "down"
                                     for w in ("fw1", "fw2")),
                         timeout_s=INTERVAL_MS * THRESHOLD / 1000 * 10,
                         what="the stopped and the killed worker out of rotation")
                left_s = time.monotonic() - t0
                # Out of rotation: while they stay out, nothing new is sent to them.
                gone = workers_by_id(http_port)
                load.wait_answers(60)
                after = workers_by_id(http_port)
                for wid in ("fw1", "fw2"):
                    self.assertEqual(after[wid]["health"], "down", wid)
                    self.assertEqual(sent(after[wid]), sent(gone[wid]), wid)
                self.assertGreater(sent(after["fw0"]), sent(gone["fw0"]))

                # SIGCONT: its pings pass again, and traffic comes back to it.
                workers["fw1"].signal(signal.SIGCONT)
                wait_for(lambda: workers_by_id(http_port)["fw1"]["state"] == "up",
                         timeout_s=30, what="the resumed worker up again")
                back = sent(workers_by_id(http_port)["fw1"])
                load.wait_answers(30)
                wait_for(lambda: sent(workers_by_id(http_port)["fw1"]) > back, timeout_s=30,
                         what="traffic back on the resumed worker")

            print(f"failover: {load.ok} answers, out of rotation after {left_s:.2f} s "
                  f"(interval x threshold = {INTERVAL_MS * THRESHOLD / 1000:.2f} s)")
            self.assertEqual(load.failures, [], "every request gets its result")
            self.assertGreaterEqual(load.ok, 120)
            # The killed worker stays out; the survivors carried the load.
            final = workers_by_id(http_port)
            self.assertNotEqual(final["fw2"]["state"], "up")
            self.assertEqual(final["fw0"]["state"], "up")
            # /metrics carries the same figures as /v2/workers.
            self.assertEqual(worker_metric(http_port, "ringserve_worker_up", "fw0"), 1)
            self.assertEqual(worker_metric(http_port, "ringserve_worker_up", "fw2"), 0)
            self.assertIsNotNone(
                worker_metric(http_port, "ringserve_worker_failures_total", "fw2"))
            self.assertGreaterEqual(
                worker_metric(http_port, "ringserve_worker_requests_total", "fw0"),
                final["fw0"]["requests"])

    def test_static_worker_by_host_name(self):
        # A worker named in the coordinator's config (no registration), by a
        # host name: resolved once at start-up, dialled, pinged, served.
        with Harness("failover-static") as h:
            cfg = h.write("cluster.yaml", config([]))
            port = free_port()
            worker = h.start("worker", "--config", cfg, "--port", str(port), "--model", "identity",
                             log_name="static-worker.log")
            wait_for(lambda: harness.port_open(port) or not worker.alive(), what="worker listening")
            self.assertTrue(worker.alive(), worker.output())
            coord = h.start("coordinator", "--config", cfg, "--worker", f"localhost:{port}")
            m = wait_for(lambda: re.search(r"http (\d+), framed (\d+)", coord.output()) or
                         (not coord.alive() and "exited"), timeout_s=30, what="coordinator listening")
            self.assertNotEqual(m, "exited", coord.output())
            http_port = int(m.group(1))
            w = wait_for(lambda: workers_by_id(http_port).get(f"127.0.0.1:{port}"), what="the static worker")
            self.assertTrue(w["static"])
            self.assertEqual(w["address"], f"127.0.0.1:{port}")
            wait_for(lambda: harness.http_request(http_port, "GET", "/v2/health/ready")[0] == 200,
                     what="readiness through the static worker")
            body = {"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32", "data": [2.5] * 16}]}
            st, _, data = harness.http_request(http_port, "POST", "/v2/models/identity/infer", body=body)
            self.assertEqual(st, 200, data)
            self.assertEqual(json.loads(data)["outputs"][0]["data"], [2.5] * 16)
            self.assertTrue(coord.alive())


if __name__ == "__main__":
    unittest.main(verbosity=2)

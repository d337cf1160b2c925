"""Integration: the all-in-one node (`ringserve serve`) on loopback.

Starts a real coordinator with two real worker processes serving `digits`
and `identity`, then checks the request path end to end over HTTP (KServe
v2) and the framed protocol: results, the cache, batching, accuracy, every
bad input, overload, a worker killed under load, and SIGTERM draining.
Stdlib only (plus clients/python/ringserve_client.py)."""
import concurrent.futures
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Harness, digits_rows, http_request, wait_for  # noqa: E402
import ringserve_client as rc  # noqa: E402

SRC = harness.SRC


def consecutive_free_ports(n):
    for _ in range(200):
        base = random.randint(20000, 40000)
        ok = True
        for p in range(base, base + n):
            import socket
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def serve_config(h, extra="", workers=2, identity_queue=None):
    base = consecutive_free_ports(workers)
    cache_name = f"rs-test-{os.getpid()}-{random.randint(0, 1 << 30)}"
    text = f"""
server:
  host: 127.0.0.1
  http_port: 0
  framed_port: 0
  io_threads: 2
  drain_timeout_ms: 5000
  worker_timeout_ms: 3000
models:
  repository: [{SRC}/models]
  load: [digits, identity]
cache:
  name: {cache_name}
  capacity_mb: 16
workers:
  count: {workers}
  base_port: {base}
  models: [digits, identity]
  restart_backoff_ms: 100
health:
  interval_ms: 500
  timeout_ms: 400
  failure_threshold: 3
  success_threshold: 1
cluster:
  heartbeat_timeout_ms: 15000
retry:
  max_attempts: 3
  budget_percent: 100
{extra}
"""
    return h.write("serve.yaml", text), cache_name


def start_serve(h, cfg):
    p = h.start("serve", "--config", cfg)
    m = wait_for(lambda: re.search(r"http (\d+), framed (\d+)", p.output()), timeout_s=30,
                 what="coordinator listening")
    http_port, framed_port = int(m.group(1)), int(m.group(2))
    wait_for(lambda: http_request(http_port, "GET", "/v2/health/ready")[0] == 200, timeout_s=30,
             what="readiness (workers registered and healthy)")
    return p, http_port, framed_port


def start_class_serve(cls, name, write_config):
    """For setUpClass: a Harness kept on the class (cls.h; tearDownClass
    closes it, which also removes the cache segment its config names) and a
    serve node started from the config write_config(h) writes (cls.proc,
    cls.http, cls.framed). If the start fails, the Harness is closed, printing
    the logs, and the error raised."""
    cls.h = Harness(name)
    try:
        cls.proc, cls.http, cls.framed = start_serve(cls.h, write_config(cls.h))
    except Exception:
        cls.h.__exit__(*sys.exc_info())
        raise


def infer_body(pixels_rows, id=None, params=None):
    body = {"inputs": [{"name": "pixels", "shape": [len(pixels_rows), 64], "datatype": "FP32",
                        "data": [float(v) for r in pixels_rows for v in r]}]}
    if id:
        body["id"] = id
    if params:
        body["parameters"] = params
    return body


def metric(text, name, labels):
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start_class_serve(cls, "serve", lambda h: serve_config(h)[0])

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def post(self, path, body, headers=None):
        return http_request(self.http, "POST", path, body=body, headers=headers)

    def test_port_in_use_refused(self):
        """A second node on this node's framed or HTTP port is refused at start
        with one line naming the field (SO_REUSEPORT alone would let it share
        the port silently); this node keeps serving."""
        for field, port in (("framed_port", self.framed), ("http_port", self.http)):
            ports = {"http_port": 0, "framed_port": 0, field: port}
            cfg = self.h.write(f"inuse-{field}.yaml", f"""
server: {{host: 127.0.0.1, http_port: {ports['http_port']}, framed_port: {ports['framed_port']}}}
models: {{repository: [{SRC}/models], load: [identity]}}
workers: {{count: 1, base_port: {consecutive_free_ports(1)}, models: [identity]}}
""")
            with self.subTest(field=field):
                r = subprocess.run([harness.BIN, "serve", "--config", cfg], capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stderr.strip().splitlines()[-1],
                                 f"ringserve coordinator: server.{field}: 127.0.0.1:{port} is already in use "
                                 "(another ringserve or service listens there)")
                self.assertEqual(http_request(self.http, "GET", "/v2/health/ready")[0], 200)

    def test_health_and_metadata(self):
        self.assertEqual(http_request(self.http, "GET", "/v2/health/live")[0], 200)
        st, _, body = http_request(self.http, "GET", "/v2")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["name"], "ringserve")
        st, _, body = http_request(self.http, "GET", "/v2/models/digits")
        self.assertEqual(st, 200)
        meta = json.loads(body)
        self.assertEqual(meta["name"], "digits")
        self.assertEqual(meta["inputs"][0]["name"], "pixels")
        self.assertEqual(http_request(self.http, "GET", "/v2/models/digits/ready")[0], 200)
        self.assertEqual(http_request(self.http, "GET", "/v2/models/digits/versions/1")[0], 200)
        self.assertEqual(http_request(self.http, "GET", "/v2/models/nope")[0], 404)
        st, _, body = http_request(self.http, "GET", "/v2/workers")
        self.assertEqual(st, 200)
        self.assertGreaterEqual(len(json.loads(body)["workers"]), 2)
        # the placement plan and its effective binding are in /metrics
        st, _, m = http_request(self.http, "GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertIn('ringserve_placement_pinned{role="io"', m.decode())
        self.assertIn("rs_request_stage_seconds_bucket", m.decode())

    def test_identity_http_and_framed(self):
        values = [float(i) * 0.5 for i in range(32)]
        body = {"id": "req-1", "inputs": [{"name": "x", "shape": [2, 16], "datatype": "FP32", "data": values}]}
        st, hdrs, data = self.post("/v2/models/identity/infer", body)
        self.assertEqual(st, 200, data)
        out = json.loads(data)
        self.assertEqual(out["id"], "req-1")
        self.assertEqual(out["model_name"], "identity")
        self.assertEqual(out["outputs"][0]["name"], "y")
        self.assertEqual(out["outputs"][0]["shape"], [2, 16])
        self.assertEqual(out["outputs"][0]["data"], values)
        with rc.FramedClient("127.0.0.1", self.framed) as c:
            res = c.infer("identity", [rc.Tensor.from_list("x", "FP32", [1, 16], values[:16])])
            y = res.outputs[0] if isinstance(res.outputs, list) else res.outputs["y"]
            self.assertEqual(y.to_list(), values[:16])

    def test_binary_extension(self):
        import struct
        values = [float(i) for i in range(16)]
        header = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                         "parameters": {"binary_data_size": 64}}],
                             "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}).encode()
        body = header + struct.pack("<16f", *values)
        st, hdrs, data = http_request(self.http, "POST", "/v2/models/identity/infer", body=body,
                                      headers={"Inference-Header-Content-Length": str(len(header))})
        self.assertEqual(st, 200, data)
        n = int(hdrs["inference-header-content-length"])
        meta = json.loads(data[:n])
        self.assertEqual(meta["outputs"][0]["parameters"]["binary_data_size"], 64)
        self.assertEqual(list(struct.unpack("<16f", data[n:n + 64])), values)

    def test_cache_hit_visible_in_metrics(self):
        rows = digits_rows()[:1]
        body = infer_body([rows[0][0]])
        st1, h1, d1 = self.post("/v2/models/digits/infer", body)
        self.assertEqual(st1, 200, d1)
        st2, h2, d2 = self.post("/v2/models/digits/infer", body)
        self.assertEqual(st2, 200, d2)
        self.assertEqual(h2.get("x-ringserve-cache"), "hit")
        self.assertEqual(d1, d2)  # the repeat is the same answer, byte for byte
        # the same inputs under another id: a hit (tensor cache) answered with that id
        body3 = infer_body([rows[0][0]], id="other-id")
        st3, h3, d3 = self.post("/v2/models/digits/infer", body3)
        self.assertEqual(st3, 200, d3)
        self.assertEqual(h3.get("x-ringserve-cache"), "hit")
        self.assertEqual(json.loads(d3)["id"], "other-id")
        self.assertEqual(json.loads(d3)["outputs"], json.loads(d1)["outputs"])
        # asking for one output only: a hit with just that output
        body4 = dict(infer_body([rows[0][0]]), outputs=[{"name": "label"}])
        st4, h4, d4 = self.post("/v2/models/digits/infer", body4)
        self.assertEqual(st4, 200, d4)
        self.assertEqual([o["name"] for o in json.loads(d4)["outputs"]], ["label"])
        self.assertNotIn("id", json.loads(d1))  # no id asked, none made up
        _, _, m = http_request(self.http, "GET", "/metrics")
        hits = metric(m.decode(), "rs_cache_hits_total", {"model": "digits"})
        self.assertIsNotNone(hits)
        self.assertGreaterEqual(hits, 1)
        # framed: a hit is the stored answer restamped for the new request (no
        # id, every output), or rebuilt when it must echo an id or select
        x = [rc.Tensor.from_list("pixels", "FP32", [1, 64], [7.0] * 64)]
        with rc.FramedClient("127.0.0.1", self.framed) as c:
            r1 = c.infer("digits", x)
            r2 = c.infer("digits", x)
            r3 = c.infer("digits", x, id="framed-id")
            r4 = c.infer("digits", x, outputs=["label"])
        self.assertFalse(r1.cache_hit)
        self.assertTrue(r2.cache_hit and r3.cache_hit and r4.cache_hit)
        self.assertEqual((r2.model, r2.version, r2.id, r2.outputs), (r1.model, r1.version, "", r1.outputs))
        self.assertNotEqual(r2.request_id, r1.request_id)
        self.assertEqual((r3.id, r3.outputs), ("framed-id", r1.outputs))
        self.assertEqual(list(r4.outputs), ["label"])

    def test_digits_accuracy_equals_reference(self):
        rows = digits_rows()
        with open(os.path.join(SRC, "tests", "data", "digits_reference.json")) as f:
            ref = json.load(f)
        correct = 0
        for i in range(0, len(rows), 60):
            chunk = rows[i:i + 60]
            st, _, data = self.post("/v2/models/digits/infer", infer_body([r[0] for r in chunk]))
            self.assertEqual(st, 200, data)
            outs = {o["name"]: o for o in json.loads(data)["outputs"]}
            labels = outs["label"]["data"]
            self.assertEqual(len(labels), len(chunk))
            correct += sum(1 for (px, lab), got in zip(chunk, labels) if got == lab)
        self.assertEqual(correct, ref["correct"])
        self.assertGreaterEqual(correct / len(rows), 0.95)

    def test_concurrent_requests_are_batched(self):
        _, _, m0 = http_request(self.http, "GET", "/metrics")
        c0 = metric(m0.decode(), "rs_batch_size_count", {"model": "identity"}) or 0
        s0 = metric(m0.decode(), "rs_batch_size_sum", {"model": "identity"}) or 0
        n = 200
        with rc.FramedClient("127.0.0.1", self.framed) as c:
            futs = [c.infer_async("identity", [rc.Tensor.from_list("x", "FP32", [1, 16], [float(i)] * 16)])
                    for i in range(n)]
            for f in futs:
                c.result(f)
        _, _, m1 = http_request(self.http, "GET", "/metrics")
        c1 = metric(m1.decode(), "rs_batch_size_count", {"model": "identity"})
        s1 = metric(m1.decode(), "rs_batch_size_sum", {"model": "identity"})
        batches, items = c1 - c0, s1 - s0
        self.assertEqual(items, n)
        self.assertLess(batches, n, "200 pipelined requests should share batches")

    def test_connections_spread_evenly_over_io_threads(self):
        # The kernel's SO_REUSEPORT hash alone splits 80 connections unevenly
        # most of the time (within 2 of each other: p = 0.18); the
        # coordinator keeps every io thread within RS_BALANCE_SLACK + 1 of
        # the least loaded (balance.h).
        import http.client
        import socket
        # one keep-alive connection for the polls (81 in all), so that no
        # short-lived poll connection is counted on one side
        poll = http.client.HTTPConnection("127.0.0.1", self.http, timeout=10)
        socks = [socket.create_connection(("127.0.0.1", self.framed)) for _ in range(80)]

        def per_core():
            poll.request("GET", "/metrics")
            m = poll.getresponse().read().decode()
            return [float(v) for v in re.findall(r'^rs_io_connections\{core="\d+"\} (\S+)', m, re.M)]
        try:
            counts = wait_for(lambda: (lambda c: c if len(c) == 2 and sum(c) >= 81 else None)(per_core()),
                              timeout_s=10, what="81 connections counted")
            self.assertLessEqual(max(counts) - min(counts), 2, counts)
            # and every connection is served
            for s in socks:
                s.sendall(rc.encode_frame("PING", 5, rc.u64_payload(7)))
            for s in socks:
                s.settimeout(10)
                buf = b""
                while len(buf) < 32:
                    chunk = s.recv(64)
                    self.assertTrue(chunk, "connection closed")
                    buf += chunk
                self.assertEqual(rc.decode_frame(buf).type, "PONG")
        finally:
            poll.close()
            for s in socks:
                s.close()

    def test_bad_inputs_get_precise_errors(self):
        cases = [
            (b"{not json", 400, "JSON"),
            ({"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP64", "data": [0.0] * 64}]}, 400, "FP64"),
            ({"inputs": [{"name": "pixels", "shape": [1, 63], "datatype": "FP32", "data": [0.0] * 63}]}, 400, "shape"),
            ({"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 10}]}, 400, "64"),
            ({"inputs": [{"name": "other", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}, 400, "pixels"),
        ]
        for body, status, needle in cases:
            st, _, data = self.post("/v2/models/digits/infer", body)
            self.assertEqual(st, status, (body if isinstance(body, bytes) else json.dumps(body)[:80], data))
            err = json.loads(data)["error"]
            self.assertIn(needle, err)
        st, _, data = self.post("/v2/models/unknown-model/infer", infer_body([[0] * 64]))
        self.assertEqual(st, 404)
        self.assertIn("unknown-model", json.loads(data)["error"])
        # A body over server.max_body_bytes is refused from its Content-Length,
        # before the server reads it: 413, then close.
        import socket
        with socket.create_connection(("127.0.0.1", self.http), timeout=10) as s:
            s.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 9437184\r\n\r\n")
            resp = s.recv(4096)
        self.assertTrue(resp.startswith(b"HTTP/1.1 413"), resp[:80])
        with rc.FramedClient("127.0.0.1", self.framed) as c:
            with self.assertRaises(rc.ServerError) as cm:
                c.infer("identity", [rc.Tensor.from_list("x", "FP32", [1, 8], [0.0] * 8)])
            self.assertIn("shape", str(cm.exception))
        # ...and the server keeps serving
        st, _, _ = self.post("/v2/models/identity/infer",
                             {"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16}]})
        self.assertEqual(st, 200)

    def test_async_submit_and_poll(self):
        body = infer_body([digits_rows()[3][0]], params={"async": True})
        st, hdrs, data = self.post("/v2/models/digits/infer", body)
        self.assertEqual(st, 202, data)
        rid = json.loads(data)["id"]
        res = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
            http_request(self.http, "GET", f"/v2/requests/{rid}")), what="async result")
        self.assertIn("outputs", json.loads(res[2]))
        self.assertEqual(http_request(self.http, "GET", "/v2/requests/999999")[0], 404)

    def test_traceparent_and_deadline(self):
        st, _, data = self.post("/v2/models/identity/infer",
                                {"parameters": {"timeout": 1},
                                 "inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32", "data": [2.0] * 16}]},
                                headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
        self.assertIn(st, (200, 504), data)
        if st == 504:
            self.assertIn("deadline", json.loads(data)["error"])


class OverloadAndFailureTest(unittest.TestCase):
    def test_queue_limit_answers_429(self):
        """With the only worker stopped (SIGSTOP), requests pile up: the first
        server.max_pending wait, every one past the limit is answered
        overloaded at once (429 + Retry-After over HTTP), memory stays
        bounded, and the waiting ones complete once the worker resumes."""
        import subprocess
        with Harness("serve-flood") as h:
            cfg, cache = serve_config(h, workers=1)
            with open(cfg) as f:
                text = f.read()
            text = text.replace("io_threads: 2", "io_threads: 1\n  max_pending: 16")
            text = text.replace("failure_threshold: 3", "failure_threshold: 1000")
            text = text.replace("worker_timeout_ms: 3000", "worker_timeout_ms: 20000")
            with open(cfg, "w") as f:
                f.write(text)
            p, http_port, framed = start_serve(h, cfg)
            worker = int(subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                        text=True).stdout.split()[0])

            def rss_kib(pid):
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1])
                return 0
            rss0 = rss_kib(p.pid)
            # framed: 40 distinct requests while the worker is stopped
            os.kill(worker, signal.SIGSTOP)
            statuses = []
            try:
                with rc.FramedClient("127.0.0.1", framed) as c:
                    futs = [c.infer_async("identity", [rc.Tensor.from_list("x", "FP32", [1, 16], [float(i)] * 16)])
                            for i in range(40)]
                    time.sleep(0.5)
                    os.kill(worker, signal.SIGCONT)
                    for f in futs:
                        try:
                            c.result(f)
                            statuses.append("ok")
                        except rc.ServerError as e:
                            self.assertIn("overloaded", str(e))
                            statuses.append(e.code)
            finally:
                os.kill(worker, signal.SIGCONT)
            # at most max_pending (16) were accepted; the rest were refused at once
            self.assertTrue(1 <= statuses.count("ok") <= 16, statuses)
            self.assertEqual(statuses.count("ok") + statuses.count(22), 40)  # 22 = OVERLOADED

            # HTTP: the same flood answers 429 with Retry-After
            def one(i):
                return http_request(http_port, "POST", "/v2/models/identity/infer",
                                    body={"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                                      "data": [float(i + 1000)] * 16}]}, timeout_s=30)
            os.kill(worker, signal.SIGSTOP)
            try:
                with concurrent.futures.ThreadPoolExecutor(40) as ex:
                    futs = [ex.submit(one, i) for i in range(40)]
                    time.sleep(1.0)
                    os.kill(worker, signal.SIGCONT)
                    res = [f.result() for f in futs]
            finally:
                os.kill(worker, signal.SIGCONT)
            codes = [r[0] for r in res]
            self.assertTrue(set(codes) <= {200, 429}, [(r[0], r[2]) for r in res if r[0] not in (200, 429)])
            self.assertTrue(1 <= codes.count(200) <= 16, codes)
            for r in res:
                if r[0] == 429:
                    self.assertIn("retry-after", r[1])
                    self.assertIn("overloaded", json.loads(r[2])["error"])
            # refused, not queued: memory stays bounded
            self.assertLess(rss_kib(p.pid) - rss0, 64 * 1024)
            self.assertEqual(http_request(http_port, "GET", "/v2/health/live")[0], 200)
            os.unlink(f"/dev/shm/{cache}") if os.path.exists(f"/dev/shm/{cache}") else None

    def test_worker_killed_under_load_loses_nothing(self):
        with Harness("serve-kill") as h:
            cfg, cache = serve_config(h)
            p, http_port, framed = start_serve(h, cfg)
            import subprocess
            out = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
            self.assertGreaterEqual(len(out), 2, "two workers")
            victim = int(out[0])
            results = []
            lock = threading.Lock()

            def client(k):
                with rc.FramedClient("127.0.0.1", framed) as c:
                    for i in range(60):
                        vals = [float(k * 1000 + i)] * 16
                        res = c.infer("identity", [rc.Tensor.from_list("x", "FP32", [1, 16], vals)])
                        y = res.outputs[0] if isinstance(res.outputs, list) else res.outputs["y"]
                        with lock:
                            results.append(y.to_list() == vals)

            threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.3)
            os.kill(victim, signal.SIGKILL)
            for t in threads:
                t.join(60)
            self.assertEqual(len(results), 240)
            self.assertTrue(all(results))
            os.unlink(f"/dev/shm/{cache}") if os.path.exists(f"/dev/shm/{cache}") else None

    def test_sigterm_drains_and_exits_zero(self):
        with Harness("serve-drain") as h:
            cfg, cache = serve_config(h)
            p, http_port, framed = start_serve(h, cfg)
            outcomes = []
            with rc.FramedClient("127.0.0.1", framed) as c:
                first = c.infer("identity", [rc.Tensor.from_list("x", "FP32", [1, 16], [0.5] * 16)])
                self.assertIsNotNone(first)
                futs = [c.infer_async("identity", [rc.Tensor.from_list("x", "FP32", [1, 16], [float(i)] * 16)])
                        for i in range(100)]
                p.signal(signal.SIGTERM)
                for f in futs:
                    try:
                        c.result(f)
                        outcomes.append("ok")
                    except rc.ServerError as e:
                        # Requests that arrive after the drain began get an explicit
                        # answer, never silence.
                        self.assertTrue(any(w in str(e) for w in ("draining", "shutting down", "OVERLOADED")),
                                        str(e))
                        outcomes.append("refused")
            self.assertEqual(p.wait(30), 0, p.output()[-2000:])
            self.assertEqual(len(outcomes), 100)
            self.assertIn("drained", p.output())
            os.unlink(f"/dev/shm/{cache}") if os.path.exists(f"/dev/shm/{cache}") else None


if __name__ == "__main__":
    unittest.main(verbosity=2)

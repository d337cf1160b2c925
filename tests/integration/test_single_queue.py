"""Integration: `batching.single_queue` and `batching.max_batches_out`.

A coordinator with two io threads takes connections on both (SO_REUSEPORT).
A single_queue model's requests are handed to its home io thread, so one
batcher sees all of them: results must come back to the right client on the
right thread, errors raised on the home thread (a full queue) must reach the
client too, and batches must form across connections of both threads.
Stdlib only (plus clients/python/ringserve_client.py)."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Harness, http_request, wait_for  # noqa: E402
import ringserve_client as rc  # noqa: E402
from test_serve import consecutive_free_ports, metric, start_class_serve, start_serve  # noqa: E402

SRC, BUILD = harness.SRC, harness.BUILD
MLP = os.path.join(BUILD, "models", "mlp-bench", "1")
CONNS = 24  # single requests sent while the big batch runs
QUEUE = 8   # mlp-shared's max_queue_size


def write_models(h):
    root = h.path("models")
    ident = os.path.join(root, "identity-shared", "1")
    os.makedirs(ident)
    with open(os.path.join(SRC, "models", "identity", "1", "model.yaml")) as f:
        text = f.read()
    text = text.replace("name: identity\n", "name: identity-shared\n")
    text = text.replace("  max_queue_size: 4096\n", "  max_queue_size: 4096\n  single_queue: true\n")
    assert "single_queue: true" in text
    with open(os.path.join(ident, "model.yaml"), "w") as f:
        f.write(text)
    mlp = os.path.join(root, "mlp-shared", "1")
    os.makedirs(mlp)
    os.symlink(os.path.join(MLP, "model.safetensors"), os.path.join(mlp, "model.safetensors"))
    with open(os.path.join(MLP, "model.yaml")) as f:
        text = f.read()
    text = text.replace("name: mlp-bench\n", "name: mlp-shared\n")
    # no delay and one batch out at a time: while a batch runs, requests can
    # only wait in the (single, bounded) queue
    text = re.sub(r"batching:\n(  .*\n)+",
                  "batching:\n  max_queue_delay_us: 0\n  max_queue_size: %d\n"
                  "  single_queue: true\n  max_batches_out: 1\n" % QUEUE, text)
    assert "max_batches_out: 1" in text
    with open(os.path.join(mlp, "model.yaml"), "w") as f:
        f.write(text)
    return root


def single_queue_config(h):
    """serve.yaml for SingleQueueTest: both models on one worker, two io threads."""
    models = write_models(h)
    base = consecutive_free_ports(1)
    return h.write("serve.yaml", f"""
server:
  host: 127.0.0.1
  http_port: 0
  framed_port: 0
  io_threads: 2
  worker_timeout_ms: 20000
  request_arena_bytes: 1048576  # the big request: 128 x 1024 FP32
models:
  repository: [{models}]
  load: [identity-shared, mlp-shared]
cache:
  name: rs-test-sq-{os.getpid()}
  capacity_mb: 16
workers:
  count: 1
  base_port: {base}
  models: [identity-shared, mlp-shared]
""")


class SingleQueueTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start_class_serve(cls, "single_queue", single_queue_config)

    @classmethod
    def tearDownClass(cls):
        cls.h.__exit__(None, None, None)

    def batches(self, model):
        _, _, body = http_request(self.http, "GET", "/metrics")
        text = body.decode()
        return (metric(text, "rs_batch_size_count", {"model": model}) or 0,
                metric(text, "rs_batch_size_sum", {"model": model}) or 0)

    def test_results_reach_their_clients_on_both_threads(self):
        # many connections (spread over both io threads by the kernel), every
        # request unique: each answer must be its own input, over both
        # protocols
        errors = []

        def framed_client(k):
            try:
                with rc.FramedClient("127.0.0.1", self.framed) as c:
                    vals = [[float(k * 1000 + i * 16 + j) for j in range(16)] for i in range(40)]
                    futs = [c.infer_async("identity-shared", [rc.Tensor.from_list("x", "FP32", [1, 16], v)])
                            for v in vals]
                    for v, fu in zip(vals, futs):
                        out = c.result(fu).outputs["y"]
                        got = list(struct.unpack("<16f", bytes(out.data)))
                        if got != v:
                            errors.append(f"framed client {k}: sent {v[:2]}.., got {got[:2]}..")
            except Exception as e:  # noqa: BLE001
                errors.append(f"framed client {k}: {e!r}")

        def http_client(k):
            try:
                for i in range(10):
                    v = [float(-k * 1000 - i * 16 - j) for j in range(16)]
                    body = {"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32", "data": v}]}
                    st, _, resp = http_request(self.http, "POST", "/v2/models/identity-shared/infer", body=body)
                    got = json.loads(resp)["outputs"][0]["data"] if st == 200 else None
                    if got != v:
                        errors.append(f"http client {k}: status {st}, {resp[:200]!r}")
            except Exception as e:  # noqa: BLE001
                errors.append(f"http client {k}: {e!r}")

        c0, s0 = self.batches("identity-shared")
        threads = [threading.Thread(target=framed_client, args=(k,)) for k in range(12)]
        threads += [threading.Thread(target=http_client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        c1, s1 = self.batches("identity-shared")
        self.assertEqual(s1 - s0, 12 * 40 + 4 * 10)
        self.assertLess(c1 - c0, s1 - s0, "concurrent requests should share batches")

    def test_one_queue_for_both_threads(self):
        # The model runs one batch at a time (max_batches_out: 1) from one
        # queue of QUEUE requests. A big request starts a batch; CONNS single
        # requests on CONNS fresh connections arrive while it runs: QUEUE of
        # them wait and go out together as the second batch, the rest are
        # refused "queue full" by the home thread. With a queue per io thread
        # the other thread would send its first request at once (a third
        # batch) and accept up to 2 x QUEUE.
        socks = [socket.create_connection(("127.0.0.1", self.framed)) for _ in range(CONNS)]
        try:
            frames = [rc.encode_frame("INFER_REQUEST", 1, rc.infer_request_payload(
                "mlp-shared", [rc.Tensor.from_list("x", "FP32", [1, 1024], [float(i)] * 1024)]))
                for i in range(CONNS)]
            c0, s0 = self.batches("mlp-shared")
            with rc.FramedClient("127.0.0.1", self.framed, timeout_s=60) as big:
                fut = big.infer_async("mlp-shared", [rc.Tensor.from_list("x", "FP32", [128, 1024],
                                                                         [0.5] * (128 * 1024))])
                # the big batch is out once the batch count moves
                wait_for(lambda: self.batches("mlp-shared")[0] > c0, timeout_s=10, what="the big batch")
                for s, f in zip(socks, frames):
                    s.sendall(f)
                self.assertEqual(big.result(fut).outputs["y"].shape, [128, 1024])
            ok, refused = 0, []
            for s in socks:
                s.settimeout(60)
                buf = b""
                while len(buf) < 24 or len(buf) < struct.unpack_from("<I", buf, 16)[0] + 24:
                    chunk = s.recv(1 << 16)
                    self.assertTrue(chunk, "connection closed without an answer")
                    buf += chunk
                fr = rc.decode_frame(buf)
                if fr.type == "INFER_RESPONSE":
                    ok += 1
                else:
                    self.assertEqual(fr.type, "ERROR")
                    refused.append(fr.message["message"])
        finally:
            for s in socks:
                s.close()
        self.assertEqual(ok, QUEUE, refused[:3])
        self.assertEqual(len(refused), CONNS - QUEUE)
        for msg in refused:
            self.assertIn(f"model 'mlp-shared' is overloaded: its queue is full (max_queue_size {QUEUE})", msg)
        c1, s1 = self.batches("mlp-shared")
        self.assertEqual((c1 - c0, s1 - s0), (2, 1 + QUEUE))


class SingleQueueFailoverTest(unittest.TestCase):
    """A worker SIGKILLed while the home thread has batches of lent requests
    out: they are retried on the other worker and every client still gets
    its own answer."""

    def test_worker_killed_under_load(self):
        with Harness("single_queue_kill") as h:
            models = write_models(h)
            base = consecutive_free_ports(2)
            cfg = h.write("serve.yaml", f"""
server:
  host: 127.0.0.1
  http_port: 0
  framed_port: 0
  io_threads: 2
  worker_timeout_ms: 3000
models:
  repository: [{models}]
  load: [identity-shared]
workers:
  count: 2
  base_port: {base}
  models: [identity-shared]
  restart_backoff_ms: 100
health:
  interval_ms: 300
  timeout_ms: 200
  failure_threshold: 2
retry:
  max_attempts: 3
  budget_percent: 100
""")
            proc, _, framed = start_serve(h, cfg)
            wrong, errors = [], []

            def client(k):
                try:
                    with rc.FramedClient("127.0.0.1", framed, timeout_s=15) as c:
                        for i in range(3000):
                            v = [float(k * 100000 + i)] * 16
                            out = c.infer("identity-shared", [rc.Tensor.from_list("x", "FP32", [1, 16], v)])
                            if list(struct.unpack("<16f", bytes(out.outputs["y"].data))) != v:
                                wrong.append((k, i))
                except Exception as e:  # noqa: BLE001
                    errors.append(f"client {k}: {e!r}")

            threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
            for t in threads:
                t.start()
            time.sleep(0.2)  # the clients are under way
            workers = wait_for(lambda: [int(p) for p in subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()],
                what="worker processes")
            os.kill(workers[0], signal.SIGKILL)
            self.assertTrue(any(t.is_alive() for t in threads), "the clients finished before the kill")
            for t in threads:
                t.join(60)
            self.assertEqual((wrong, errors), ([], []))


if __name__ == "__main__":
    unittest.main(verbosity=2)

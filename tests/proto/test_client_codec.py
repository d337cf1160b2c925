#!/usr/bin/env python3
"""The Python client against the protocol: every vector in tests/data/frames
(decode result or error code, re-encoding), the generator's output matches
the committed vectors, and the framed and HTTP clients against small
in-process servers (pipelining out of order, errors, async, binary tensors).
Stdlib only."""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SRC = os.environ.get("RINGSERVE_SRC") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "clients", "python"))

import ringserve_client as rc  # noqa: E402
from ringserve_client import Tensor  # noqa: E402

VEC_DIR = os.path.join(SRC, "tests", "data", "frames")


def load_vectors():
    out = []
    for path in sorted(glob.glob(os.path.join(VEC_DIR, "*.hex"))):
        meta, hexs = {}, []
        with open(path) as f:
            for line in f:
                if line.startswith("#"):
                    k, _, v = line[1:].strip().partition(": ")
                    meta[k] = v
                else:
                    hexs.append(line.strip())
        meta["bytes"] = bytes.fromhex("".join(hexs))
        out.append(meta)
    return out


class Vectors(unittest.TestCase):
    def test_every_vector(self):
        vecs = load_vectors()
        self.assertGreaterEqual(len(vecs), 40)
        seen, seen_bad = set(), set()
        for v in vecs:
            with self.subTest(v["name"]):
                maxp = int(v["max_payload"])
                if v["expect"] == "ok":
                    f = rc.decode_frame(v["bytes"], maxp)
                    self.assertEqual(f.size, len(v["bytes"]))
                    want = json.loads(v["decoded"])
                    self.assertEqual(rc.to_json(f.to_dict()), want)
                    self.assertEqual(rc.encode_message(rc.from_json(want)), v["bytes"])
                    seen.add(f.type)
                    for k in range(len(v["bytes"])):  # every truncation
                        with self.assertRaises(rc.ProtocolError) as cm:
                            rc.decode_frame(v["bytes"][:k], maxp)
                        self.assertEqual(cm.exception.status, "TRUNCATED")
                else:
                    _, name, code = v["expect"].split()
                    with self.assertRaises(rc.ProtocolError) as cm:
                        rc.decode_frame(v["bytes"], maxp)
                    self.assertEqual(cm.exception.code, int(code), str(cm.exception))
                    self.assertEqual(cm.exception.status, name)
                    seen_bad.add(v["type"])
        self.assertEqual(seen, set(rc.MSG_TYPES))
        self.assertEqual(seen_bad - {"-"}, set(rc.MSG_TYPES))  # an invalid vector per type

    def test_generator_matches_committed_vectors(self):
        r = subprocess.run([sys.executable, os.path.join(SRC, "tools", "gen_frame_vectors.py"),
                            "--check", VEC_DIR], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class Tensors(unittest.TestCase):
    def test_round_trips(self):
        cases = [("FP32", [1.5, -2.0]), ("INT64", [-2**63, 5]), ("UINT8", [0, 255]),
                 ("BOOL", [True, False]), ("FP16", [0.5, -4.0]), ("BF16", [1.0, -3.0]),
                 ("BYTES", [b"ab", b""]), ("FP64", [1e300, 0.0])]
        for dt, vals in cases:
            t = Tensor.from_list("t", dt, [2], vals)
            self.assertEqual(t.to_list(), vals, dt)
        t = Tensor.from_list("m", "INT32", [2, 2], [[1, 2], [3, 4]])
        self.assertEqual(t.to_list(), [1, 2, 3, 4])
        with self.assertRaises(ValueError):
            Tensor.from_list("x", "FP32", [3], [1.0])
        with self.assertRaises(ValueError):
            Tensor.from_list("x", "FP8", [1], [1.0])


# ---- a small framed server: identity model, answers pipelined requests in
# reverse order of arrival to prove the client matches by request id.

class FakeFramedServer:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.polls = 0
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def reply(self, f):
        m = f.message
        if f.type == "PING":
            return rc.encode_frame("PONG", f.request_id, rc.u64_payload(m["value"]))
        if f.type == "SUBMIT":
            return rc.encode_frame("SUBMIT_ACK", f.request_id, rc.u64_payload(500))
        if f.type == "POLL":
            self.polls += 1
            if m["value"] != 500:
                return rc.encode_frame("ERROR", f.request_id, rc.error_payload("NOT_FOUND", "no such id"))
            if self.polls == 1:
                return rc.encode_frame("ERROR", f.request_id, rc.error_payload("PENDING", "running"))
            outs = [Tensor.from_list("y", "FP32", [1], [7.0])]
            return rc.encode_frame("INFER_RESPONSE", f.request_id, rc.infer_response_payload("identity", outs))
        if f.type == "INFER_REQUEST":
            if m["model"] != "identity":
                return rc.encode_frame("ERROR", f.request_id,
                                       rc.error_payload("UNKNOWN_MODEL", f"model '{m['model']}' is not served"))
            outs = [Tensor("y", t.datatype, t.shape, bytes(t.data)) for t in m["inputs"]]
            return rc.encode_frame("INFER_RESPONSE", f.request_id,
                                   rc.infer_response_payload("identity", outs, "1", m["id"]),
                                   rc.FLAG_CACHE_HIT if f.flags & rc.FLAG_NO_CACHE == 0 else 0)
        return rc.encode_frame("ERROR", f.request_id, rc.error_payload("BAD_TYPE", "unexpected"))

    def handle(self, conn):
        buf = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                frames = []
                while True:
                    try:
                        f = rc.decode_frame(buf)
                    except rc.ProtocolError as e:
                        if e.status == "TRUNCATED":
                            break
                        conn.sendall(rc.encode_frame("ERROR", 0, rc.error_payload(e.code, e.message)))
                        return
                    buf = buf[f.size:]
                    frames.append(f)
                for f in reversed(frames):  # out of order on purpose
                    conn.sendall(self.reply(f))

    def close(self):
        self.sock.close()


class Framed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = FakeFramedServer()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_one_call_ping_errors(self):
        with rc.FramedClient("127.0.0.1", self.srv.port, timeout_s=10) as c:
            self.assertEqual(c.ping(42), 42)
            x = Tensor.from_list("x", "FP32", [1, 3], [1, 2, 3])
            r = c.infer("identity", [x], id="abc")
            self.assertEqual(r.outputs["y"].to_list(), [1.0, 2.0, 3.0])
            self.assertEqual(r.id, "abc")
            self.assertTrue(r.cache_hit)
            self.assertFalse(c.infer("identity", [x], no_cache=True).cache_hit)
            with self.assertRaises(rc.ServerError) as cm:
                c.infer("nope", [x])
            self.assertEqual(cm.exception.status, "UNKNOWN_MODEL")
            self.assertEqual(cm.exception.http_status, 404)
            self.assertEqual(c.ping(1), 1)  # the connection survived the error

    def test_pipelined_and_threads(self):
        with rc.FramedClient("127.0.0.1", self.srv.port, timeout_s=10) as c:
            reqs = [("identity", [Tensor.from_list("x", "INT32", [1], [i])]) for i in range(50)]
            res = c.infer_many(reqs)
            self.assertEqual([r.outputs["y"].to_list()[0] for r in res], list(range(50)))
            out = {}

            def worker(k):
                for j in range(20):
                    v = k * 100 + j
                    out[v] = c.infer("identity", [Tensor.from_list("x", "INT64", [1], [v])]).outputs["y"].to_list()[0]

            ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(len(out), 160)
            self.assertTrue(all(k == v for k, v in out.items()))

    def test_submit_poll(self):
        with rc.FramedClient("127.0.0.1", self.srv.port, timeout_s=10) as c:
            aid = c.submit("identity", [Tensor.from_list("x", "FP32", [1], [1])])
            self.assertEqual(aid, 500)
            self.assertIsNone(c.poll(aid))  # pending
            self.assertEqual(c.poll(aid).outputs["y"].to_list(), [7.0])
            with self.assertRaises(rc.ServerError) as cm:
                c.poll(1)
            self.assertEqual(cm.exception.status, "NOT_FOUND")

    def test_server_fatal_error_fails_waiters(self):
        with rc.FramedClient("127.0.0.1", self.srv.port, timeout_s=10) as c:
            with c._send_lock:
                c._sock.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"\0" * 8)  # not a frame
            with self.assertRaises((rc.ServerError, ConnectionError)):
                c.ping(1)


# ---- a small KServe v2 HTTP server: identity, JSON and binary extension.

class _H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body, headers=None):
        self.send_response(status)
        for k, v in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/v2/health/live":
            return self.send(200, b"")
        if self.path == "/v2/requests/r1":
            return self.send(202, b'{"id":"r1"}')
        return self.send(404, b'{"error":"unknown model"}')

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not self.path.startswith("/v2/models/identity"):
            return self.send(404, json.dumps({"error": "model 'x' not found"}).encode())
        hl = self.headers.get("Inference-Header-Content-Length")
        head = json.loads(body[:int(hl)] if hl else body)
        if (head.get("parameters") or {}).get("async"):
            return self.send(202, b'{"id":"r1"}')
        blobs = memoryview(body)[int(hl):] if hl else b""
        outs, bins, off = [], [], 0
        want_bin = any((o.get("parameters") or {}).get("binary_data") for o in head.get("outputs", []))
        for i in head["inputs"]:
            if "parameters" in i and "binary_data_size" in i["parameters"]:
                n = i["parameters"]["binary_data_size"]
                t = Tensor(i["name"], i["datatype"], i["shape"], bytes(blobs[off:off + n]))
                off += n
            else:
                t = Tensor.from_list(i["name"], i["datatype"], i["shape"], i["data"])
            if want_bin:
                outs.append({"name": "y", "datatype": t.datatype, "shape": t.shape,
                             "parameters": {"binary_data_size": len(t.data)}})
                bins.append(bytes(t.data))
            else:
                outs.append({"name": "y", "datatype": t.datatype, "shape": t.shape, "data": t.to_list()})
        resp = json.dumps({"model_name": "identity", "model_version": "1", "id": head.get("id", ""),
                           "outputs": outs}).encode()
        if want_bin:
            return self.send(200, resp + b"".join(bins),
                             {"Content-Type": "application/octet-stream",
                              "Inference-Header-Content-Length": str(len(resp))})
        return self.send(200, resp)


class Http(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        cls.t = threading.Thread(target=cls.srv.serve_forever, daemon=True)
        cls.t.start()
        cls.c = rc.HttpClient("127.0.0.1", cls.srv.server_address[1], timeout_s=10)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.srv.shutdown()
        cls.srv.server_close()

    def test_json_and_binary(self):
        self.assertTrue(self.c.live())
        x = Tensor.from_list("x", "FP32", [1, 4], [1, 2, 3, 4.5])
        r = self.c.infer("identity", [x], id="q1")
        self.assertEqual(r.outputs["y"].to_list(), [1, 2, 3, 4.5])
        self.assertEqual(r.id, "q1")
        r = self.c.infer("identity", [x], binary=True, binary_outputs=True, outputs=["y"])
        self.assertEqual(r.outputs["y"].to_list(), [1, 2, 3, 4.5])
        self.assertEqual(r.outputs["y"].shape, [1, 4])

    def test_errors_async_many(self):
        with self.assertRaises(rc.ServerError) as cm:
            self.c.infer("other", [Tensor.from_list("x", "FP32", [1], [1])])
        self.assertEqual(cm.exception.http_status, 404)
        self.assertIn("not found", cm.exception.message)
        rid = self.c.infer_submit("identity", [Tensor.from_list("x", "FP32", [1], [1])])
        self.assertEqual(rid, "r1")
        self.assertIsNone(self.c.get_request(rid))
        reqs = [("identity", [Tensor.from_list("x", "INT32", [1], [i])]) for i in range(20)]
        res = self.c.infer_many(reqs, concurrency=4)
        self.assertEqual([r.outputs["y"].to_list()[0] for r in res], list(range(20)))


if __name__ == "__main__":
    unittest.main(verbosity=1)

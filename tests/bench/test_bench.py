"""`ringserve bench` end to end, short runs (about 1 s each):

- memcache `get` against a real memcached: a non-zero rate, zero errors, sane
  percentiles, on both I/O backends; a missing key is counted as misses;
- HTTP against a stdlib keep-alive server: 2xx counted as requests, a 503
  path counted by status (responses parsed by http_parser);
- framed against a stub framed server (Python client codec): INFER_RESPONSE
  counted, CACHE_HIT flags counted, ERROR frames counted by status name;
- open loop (--rate): the offered rate is honoured, latency measured;
- bad arguments and an unreachable target: exit codes and messages.

Nothing here asserts speed: only counts, shapes and exit codes.
"""
import http.server
import json
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import unittest

SRC = os.environ.get("RINGSERVE_SRC", os.getcwd())
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, os.path.join(SRC, "clients", "python"))
import harness  # noqa: E402
import ringserve_client as rc  # noqa: E402

BIN = harness.BIN


def bench(*args, io_backend=None, timeout_s=30):
    cmd = [BIN] + ([f"--io-backend={io_backend}"] if io_backend else []) + ["bench", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)


def bench_json(*args, **kw):
    p = bench(*args, "--json", **kw)
    try:
        return p.returncode, json.loads(p.stdout), p
    except json.JSONDecodeError as e:
        raise AssertionError(f"not JSON: {p.stdout!r} / {p.stderr!r}") from e


class Memcached:
    def __init__(self):
        self.port = harness.free_port()
        args = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-t", "1"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        harness.wait_for(lambda: harness.port_open(self.port), what="memcached listening")

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=10)


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        req = json.loads(body)
        self.server.answers += 1
        if self.path == "/v2/models/closing/infer" and self.server.answers % 5 == 0:
            self.close_connection = True  # sends "Connection: close" below
        if self.path == "/v2/models/down/infer":
            out, code = b'{"error": "no healthy worker"}', 503
        else:
            out = json.dumps({"model_name": "identity", "outputs": [
                dict(req["inputs"][0], name="y")]}).encode()
            code = 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)


class FramedStub(socketserver.ThreadingTCPServer):
    """Answers INFER_REQUEST with its inputs (flagged CACHE_HIT for model
    'cached'), or an OVERLOADED ERROR frame for model 'busy'."""
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # the client exits with requests in flight

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FramedStub.Handler)
        self.port = self.server_address[1]
        self.lock = threading.Lock()
        self.seen = []  # first 8 bytes of the first input of every request

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            buf = b""
            while True:
                try:
                    data = self.request.recv(65536)
                except ConnectionResetError:  # the client exits with requests in flight
                    return
                if not data:
                    return
                buf += data
                while len(buf) >= 24:
                    _, _, mtype, _, rid, plen = struct.unpack_from("<IBBHQI", buf)
                    if len(buf) < 24 + plen:
                        break
                    m = rc.decode_payload(rc.MSG_NAMES[mtype], buf[24:24 + plen])
                    buf = buf[24 + plen:]
                    with self.server.lock:
                        self.server.seen.append(bytes(m["inputs"][0].data[:8]))
                    if m["model"] == "silent":
                        continue  # never answers
                    if m["model"] == "busy":
                        out = rc.encode_frame("ERROR", rid, rc.error_payload("OVERLOADED", "queue full"))
                    else:
                        flags = 1 if m["model"] == "cached" else 0
                        out = rc.encode_frame("INFER_RESPONSE", rid,
                                              rc.infer_response_payload(m["model"], m["inputs"]), flags)
                    self.request.sendall(out)


class BenchMemcache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("memcached"):
            raise AssertionError("memcached is not installed (run.sh installs it)")
        cls.mc = Memcached()

    @classmethod
    def tearDownClass(cls):
        cls.mc.stop()

    def addr(self):
        return f"127.0.0.1:{self.mc.port}"

    def check_ok(self, r, proto):
        self.assertEqual(r["protocol"], proto)
        self.assertGreater(r["requests"], 0)
        self.assertGreater(r["rps"], 0)
        self.assertEqual(r["errors"]["total"], 0, r["errors"])
        lat = r["latency_us"]
        self.assertGreater(lat["p50"], 0)
        self.assertTrue(lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat)

    def test_closed_loop_both_backends(self):
        for backend in ("uring", "epoll"):
            with self.subTest(backend=backend):
                code, r, p = bench_json("--protocol", "memcache", "--addr", self.addr(), "--key", "k64",
                                        "--value-bytes", "64", "--duration", "1", "--warmup", "0.2",
                                        "--concurrency", "4", io_backend=backend)
                self.assertEqual(code, 0, p.stderr)
                self.check_ok(r, "memcache")
                self.assertEqual(r["io_backend"], backend)
                self.assertEqual(r["mode"], "closed")
                # every answer carried the 64-byte value: VALUE line + data + END
                self.assertGreater(r["bytes_in"], r["requests"] * 64)

    def test_two_threads_plain_table(self):
        p = bench("--memcache", self.addr(), "--key", "k2", "--value-bytes", "1000", "--duration", "1",
                  "--warmup", "0", "--concurrency", "4", "--threads", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("closed loop, 4 connections, 2 threads", p.stdout)
        for row in ("req/s", "p50", "p99.9", "max", "errors"):
            self.assertIn(row, p.stdout)
        self.assertNotIn("\r", p.stdout)  # no progress line when stdout is not a terminal

    def test_open_loop_rate(self):
        code, r, p = bench_json("--memcache", self.addr(), "--key", "kr", "--value-bytes", "10",
                                "--rate", "500", "--concurrency", "2", "--duration", "1",
                                "--warmup", "0.2")
        self.assertEqual(code, 0, p.stderr)
        self.check_ok(r, "memcache")
        self.assertEqual(r["mode"], "open")
        # 500/s for 1 s: ~500 complete in the window (a slow machine sends late,
        # not more; +1 per connection for a request sent just before the window)
        self.assertGreater(r["requests"], 250)
        self.assertLessEqual(r["requests"], 504)

    def test_missing_key_counts_misses(self):
        code, r, p = bench_json("--memcache", self.addr(), "--key", "never-set", "--duration", "0.5",
                                "--warmup", "0", "--concurrency", "2")
        self.assertEqual(code, 1)  # nothing succeeded
        self.assertEqual(r["requests"], 0)
        self.assertGreater(r["errors"]["miss"], 0)
        self.assertEqual(r["errors"]["total"], r["errors"]["miss"])


class BenchHttp(unittest.TestCase):
    def setUp(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
        self.srv.daemon_threads = True
        self.srv.answers = 0
        self.srv.handle_error = lambda *a: None  # a client that exits mid-answer is expected
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()
        self.addr = f"127.0.0.1:{self.srv.server_address[1]}"

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()

    def test_generated_input(self):
        code, r, p = bench_json("--http", self.addr, "--shape", "1,16", "--fill", "random",
                                "--duration", "1", "--warmup", "0", "--concurrency", "2")
        self.assertEqual(code, 0, p.stderr)
        self.assertGreater(r["requests"], 0)
        self.assertEqual(r["errors"]["total"], 0, r["errors"])

    def test_connection_close_is_not_an_error(self):
        for extra in ((), ("--rate", "200")):
            with self.subTest(extra=extra):
                code, r, p = bench_json("--http", self.addr, "--model", "closing", "--duration", "0.5",
                                        "--warmup", "0", "--concurrency", "2", *extra)
                self.assertEqual(code, 0, p.stderr)
                self.assertGreater(r["requests"], 10)
                self.assertEqual(r["errors"]["total"], 0, r["errors"])

    def test_input_file_and_status_errors(self):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"rs-bench-{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                   "data": [1, 2, 3, 4]}]}, f)
        try:
            code, r, p = bench_json("--http", self.addr, "--model", "down", "--input", path,
                                    "--duration", "0.5", "--warmup", "0", "--concurrency", "2")
        finally:
            os.unlink(path)
        self.assertEqual(code, 1)
        self.assertEqual(r["requests"], 0)
        self.assertGreater(r["errors"]["status"], 0)
        self.assertEqual(r["errors"]["by_status"]["503"], r["errors"]["status"])


class BenchFramed(unittest.TestCase):
    def setUp(self):
        self.srv = FramedStub()
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.addr = f"127.0.0.1:{self.srv.port}"

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()

    def test_responses_and_cache_hits(self):
        code, r, p = bench_json("--framed", self.addr, "--model", "cached", "--duration", "0.5",
                                "--warmup", "0", "--concurrency", "2")
        self.assertEqual(code, 0, p.stderr)
        self.assertGreater(r["requests"], 0)
        self.assertEqual(r["errors"]["total"], 0, r["errors"])
        self.assertEqual(r["cache_hits"], r["requests"])

    def test_same_input_by_default(self):
        code, r, p = bench_json("--framed", self.addr, "--duration", "0.3", "--warmup", "0",
                                "--concurrency", "2")
        self.assertEqual(code, 0, p.stderr)
        self.assertEqual(len(set(self.srv.seen)), 1)

    def test_input_file(self):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"rs-bench-framed-{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                   "data": [[1.5, 2.5, 3.5, 4.5]]}]}, f)
        try:
            code, r, p = bench_json("--framed", self.addr, "--input", path, "--duration", "0.3",
                                    "--warmup", "0", "--concurrency", "1")
        finally:
            os.unlink(path)
        self.assertEqual(code, 0, p.stderr)
        self.assertEqual(set(self.srv.seen), {struct.pack("<2f", 1.5, 2.5)})

    def test_bad_input_file(self):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"rs-bench-bad-{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2]}]}, f)
        try:
            p = bench("--framed", self.addr, "--input", path)
        finally:
            os.unlink(path)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--input " + path, p.stderr)
        self.assertIn("needs 4 elements", p.stderr)

    def test_unique_inputs(self):
        code, r, p = bench_json("--framed", self.addr, "--unique", "--duration", "0.3", "--warmup", "0",
                                "--concurrency", "3", "--threads", "3")
        self.assertEqual(code, 0, p.stderr)
        self.assertEqual(r["errors"]["total"], 0, r["errors"])
        self.assertGreater(len(self.srv.seen), 10)
        self.assertEqual(len(set(self.srv.seen)), len(self.srv.seen))  # every input differs

    def test_timeout(self):
        code, r, p = bench_json("--framed", self.addr, "--model", "silent", "--timeout-ms", "100",
                                "--duration", "0.6", "--warmup", "0", "--concurrency", "2")
        self.assertEqual(code, 1)
        self.assertEqual(r["requests"], 0)
        self.assertGreaterEqual(r["errors"]["timeout"], 4)  # 2 connections, ~6 timeouts each
        self.assertEqual(r["errors"]["closed"], 0)  # our own closes are not the server's
        self.assertEqual(r["errors"]["total"], r["errors"]["timeout"])

    def test_error_frames_by_status(self):
        code, r, p = bench_json("--framed", self.addr, "--model", "busy", "--duration", "0.5",
                                "--warmup", "0", "--concurrency", "2")
        self.assertEqual(code, 1)
        self.assertGreater(r["errors"]["by_status"]["OVERLOADED"], 0)
        self.assertEqual(r["errors"]["by_status"]["OVERLOADED"], r["errors"]["status"])
        self.assertEqual(r["first_error"], "OVERLOADED: queue full")


class CompareScript(unittest.TestCase):
    """bench/compare.sh's command line (the comparison itself is a benchmark,
    run by hand: docs/perf.md)."""
    SCRIPT = os.path.join(SRC, "bench", "compare.sh")

    def run_script(self, *args):
        return subprocess.run(["bash", self.SCRIPT, *args], capture_output=True, text=True, timeout=30)

    def test_help(self):
        p = self.run_script("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        for what in ("nginx", "memcached", "--repeat", "--json", "--layout split",
                     "as many threads/workers as it has CPUs."):  # the whole header
            self.assertIn(what, p.stdout)

    def test_bad_options(self):
        for args, msg in ((("--bogus",), "unknown option '--bogus'"),
                          (("--repeat", "0"), "--repeat '0'"),
                          (("--only", "6"), "--only '6'"),
                          (("--pin", "maybe"), "--pin 'maybe'"),
                          (("--io-sched", "fifo"), "--io-sched 'fifo'"),
                          (("--layout", "apart"), "--layout 'apart'")):
            with self.subTest(args=args):
                p = self.run_script(*args)
                self.assertEqual(p.returncode, 2)
                self.assertIn(msg, p.stderr)

    def test_split_needs_two_cpus(self):
        """--layout split on a one-CPU cpuset is refused before anything starts."""
        cpu = min(os.sched_getaffinity(0))
        p = subprocess.run(["bash", self.SCRIPT, "--layout", "split"], capture_output=True, text=True, timeout=30,
                           preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"--layout split needs 2 CPUs or more (cpuset {cpu})", p.stderr)


class BenchArgs(unittest.TestCase):
    def test_refused_connections_are_counted(self):
        port = harness.free_port()  # nothing listens there
        code, r, p = bench_json("--memcache", f"127.0.0.1:{port}", "--key", "k", "--duration", "0.3",
                                "--warmup", "0", "--concurrency", "2")
        self.assertEqual(code, 1)
        self.assertGreater(r["errors"]["connect"], 0)

    def test_bad_arguments(self):
        cases = [
            ((), "no target"),
            (("--memcache", "127.0.0.1:1"), "needs --key"),
            (("--http", "nocolon"), "expected HOST:PORT"),
            (("--http", "127.0.0.1:1", "--concurrency", "0"), "--concurrency '0'"),
            (("--http", "127.0.0.1:1", "--shape", "1,x"), "--shape '1,x'"),
            (("--http", "127.0.0.1:1", "--dtype", "FP33"), "--dtype 'FP33'"),
            (("--http", "127.0.0.1:1", "--threads", "4", "--concurrency", "2"), "less than --threads"),
            (("--http", "127.0.0.1:1", "--input", "/nonexistent.json"), "/nonexistent.json"),
            (("--framed", "127.0.0.1:1", "--bogus", "1"), "unknown option '--bogus'"),
            (("--memcache", "127.0.0.1:1", "--key", "k", "--unique"), "--unique needs --framed"),
            (("--framed", "127.0.0.1:1", "--shape", "1", "--unique"), "at least 8 bytes"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                p = bench(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(msg, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

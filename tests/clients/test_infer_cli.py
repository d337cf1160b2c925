"""Integration tests for `ringserve infer` and examples/example_client.py.

Against a real node (`ringserve serve`: coordinator + two workers): infer over
HTTP and framed, cache miss then hit then --no-cache, .npy over HTTP, 404 and
400 with exit 1; example_client.py over both protocols (digits accuracy equal
to the reference, the second pass answered from the cache, seen in the
responses and in /metrics).
Framed: against a real `ringserve worker` on 127.0.0.1 (workers serve
INFER_REQUEST themselves): the example JSON bodies, .npy inputs (good and
refused), --json output, --id, server errors (unknown model, wrong input) with
exit 1, connection refused with exit 3, usage errors with exit 2.
HTTP: against an in-test KServe v2 server (stdlib http.server) that checks
what the CLI sends (binary tensor extension, Cache-Control: no-cache) and
answers binary outputs, chunked JSON outputs, and {"error"} bodies.
"""
import json
import os
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import BIN, SRC, Harness, digits_rows, free_port, port_open, wait_for  # noqa: E402

import ringserve_client as rc  # noqa: E402  (harness put clients/python on the path)
from test_serve import serve_config, start_serve  # noqa: E402  (the coordinator tests' node)

EX = os.path.join(SRC, "examples")


def infer(*args):
    p = subprocess.run([BIN, "infer", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def npy_bytes(descr, shape, data, fortran=False, version=1, header=None):
    """A .npy image written the way numpy.save writes it (or a given header)."""
    if header is None:
        dims = "(%d,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(map(str, shape))
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, dims)
    pre = 10 if version == 1 else 12
    h = header.encode() + b" " * (-(pre + len(header) + 1) % 64) + b"\n"
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


def start_worker(h, port):
    cfg = h.write("worker.yaml", f"models: {{repository: {SRC}/models}}\n")
    p = h.start("worker", "--config", cfg, "--port", str(port), "--model", "digits", "--model", "identity")
    wait_for(lambda: port_open(port) or not p.alive(), what="worker listening")
    assert p.alive(), p.output()
    return p


def output_values(stdout, name):
    for line in stdout.splitlines():
        if line.startswith(f"output {name} "):
            return line.split(":", 1)[1].split()
    raise AssertionError(f"no output {name} in {stdout!r}")


def test_framed_against_worker():
    with Harness("infer-framed") as h:
        port = free_port()
        start_worker(h, port)
        ep = f"127.0.0.1:{port}"
        # the example bodies
        code, out, err = infer("--model", "identity", "--framed", ep, "--input", f"{EX}/identity_input.json")
        assert code == 0, err
        assert "model identity version 1 id identity0 cache miss" in out, out
        assert output_values(out, "y") == ["0", "0.5", "1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5",
                                           "5.5", "6", "6.5", "7", "7.5"], out
        assert "output y FP32 [1,16]:" in out, out
        code, out, err = infer("--model", "digits", "--version", "1", "--framed", ep, "--input",
                               f"{EX}/digit0.json", "--id", "mine")
        assert code == 0, err
        assert output_values(out, "label") == ["0"], out
        assert " id mine " in out, out
        # --json prints a KServe v2 response body
        code, out, err = infer("--model", "digits", "--framed", ep, "--input", f"{EX}/digit0.json", "--json",
                               "--no-cache")
        assert code == 0, err
        body = json.loads(out)
        assert body["model_name"] == "digits" and body["id"] == "digit0", body
        outs = {o["name"]: o for o in body["outputs"]}
        assert outs["label"]["data"] == [0] and outs["label"]["datatype"] == "INT64", body
        assert outs["probabilities"]["shape"] == [1, 10], body
        # a few digits rows from .npy files, labels as the reference model says
        for i, (px, label) in enumerate(digits_rows(5)):
            f = h.write(f"d{i}.npy", "")
            with open(f, "wb") as fh:
                fh.write(npy_bytes("<f4", [1, 64], struct.pack("<64f", *px)))
            code, out, err = infer("--model", "digits", "--framed", ep, "--npy", f"pixels={f}")
            assert code == 0, err
            assert output_values(out, "label") == [str(label)], (i, out)
        # .npy: version 2 header, two rows, FP64 refused by the model (server error)
        f2 = h.path("x2.npy")
        with open(f2, "wb") as fh:
            fh.write(npy_bytes("<f4", [2, 16], struct.pack("<32f", *range(32)), version=2))
        code, out, err = infer("--model", "identity", "--framed", ep, "--npy", f"x={f2}")
        assert code == 0, err
        assert "output y FP32 [2,16]:" in out and output_values(out, "y") == [str(i) for i in range(32)], out
        f8 = h.path("x8.npy")
        with open(f8, "wb") as fh:
            fh.write(npy_bytes("<f8", [1, 16], struct.pack("<16d", *range(16))))
        code, out, err = infer("--model", "identity", "--framed", ep, "--npy", f"x={f8}")
        assert code == 1 and "server error INVALID_INPUT (400)" in err and "FP64" in err, err
        # server errors: exit 1 with the server's sentence
        code, out, err = infer("--model", "nope", "--framed", ep, "--input", f"{EX}/digit0.json")
        assert code == 1 and "UNKNOWN_MODEL (404)" in err and "nope" in err, err
        code, out, err = infer("--model", "digits", "--framed", ep, "--input", f"{EX}/identity_input.json")
        assert code == 1 and "INVALID_INPUT (400)" in err, err
        # the worker kept serving
        code, out, err = infer("--model", "identity", "--framed", ep, "--input", f"{EX}/identity_input.json")
        assert code == 0, err


def test_against_serve():
    with Harness("infer-serve") as h:
        cfg, cache = serve_config(h)
        p, http_port, framed_port = start_serve(h, cfg)
        hp, fp = f"127.0.0.1:{http_port}", f"127.0.0.1:{framed_port}"
        try:
            d0 = f"{EX}/digit0.json"
            code, out, err = infer("--model", "digits", "--http", hp, "--input", d0)
            assert code == 0 and output_values(out, "label") == ["0"] and " cache miss" in out, (out, err)
            code, out, err = infer("--model", "digits", "--http", hp, "--input", d0)
            assert code == 0 and " cache hit" in out, (out, err)
            code, out, err = infer("--model", "digits", "--http", hp, "--input", d0, "--no-cache")
            assert code == 0 and " cache miss" in out and output_values(out, "label") == ["0"], (out, err)
            code, out, err = infer("--model", "digits", "--version", "1", "--framed", fp, "--input", d0)
            assert code == 0 and " cache hit" in out and output_values(out, "label") == ["0"], (out, err)
            code, out, err = infer("--model", "digits", "--framed", fp, "--input", d0, "--no-cache", "--id", "z")
            assert code == 0 and " cache miss" in out and " id z " in out, (out, err)
            x = h.path("x.npy")
            with open(x, "wb") as fh:
                fh.write(npy_bytes("<f4", [2, 16], struct.pack("<32f", *range(32))))
            code, out, err = infer("--model", "identity", "--http", hp, "--npy", f"x={x}", "--json")
            assert code == 0, err
            y = json.loads(out)["outputs"][0]
            assert y["shape"] == [2, 16] and y["data"] == list(map(float, range(32))), out
            code, out, err = infer("--model", "nope", "--http", hp, "--input", d0)
            assert code == 1 and "server error HTTP 404" in err and "nope" in err, err
            code, out, err = infer("--model", "digits", "--http", hp, "--input", f"{EX}/identity_input.json")
            assert code == 1 and "server error HTTP 400" in err, err
            code, out, err = infer("--model", "nope", "--framed", fp, "--input", d0)
            assert code == 1 and "UNKNOWN_MODEL (404)" in err, err
            # the example client: whole split twice over HTTP, then framed
            with open(os.path.join(SRC, "tests", "data", "digits_reference.json")) as f:
                ref = json.load(f)
            ex = subprocess.run([sys.executable, f"{EX}/example_client.py", "--http-port", str(http_port),
                                 "--framed-port", str(framed_port), "--show", "3"],
                                capture_output=True, text=True, timeout=120)
            assert ex.returncode == 0, ex.stdout + ex.stderr
            n = 2 * ref["rows"]
            assert f"requests: {n}, answered: {n}, errors: 0" in ex.stdout, ex.stdout
            assert f"accuracy: {2 * ref['correct']}/{n} " in ex.stdout, ex.stdout
            hits = int(ex.stdout.split("cache hits (responses): ")[1].split()[0])
            assert hits >= ref["rows"], ex.stdout  # the second pass at least
            metric_hits = int(ex.stdout.split("rs_cache_hits_total): +")[1].split()[0])
            assert metric_hits >= ref["rows"], ex.stdout
            assert "latency ms: p50 " in ex.stdout and " p99 " in ex.stdout, ex.stdout
            ex = subprocess.run([sys.executable, f"{EX}/example_client.py", "--framed", "--http-port",
                                 str(http_port), "--framed-port", str(framed_port), "--passes", "1",
                                 "--limit", "100", "--no-cache", "--show", "-1"],
                                capture_output=True, text=True, timeout=120)
            assert ex.returncode == 0, ex.stdout + ex.stderr
            assert "requests: 100, answered: 100, errors: 0" in ex.stdout, ex.stdout
            assert ex.stdout.count(" cache miss") == 100, ex.stdout
            assert "over framed 127.0.0.1:" in ex.stdout, ex.stdout
        finally:
            p.stop()
            if os.path.exists(f"/dev/shm/{cache}"):
                os.unlink(f"/dev/shm/{cache}")


def test_bad_inputs_and_usage():
    with Harness("infer-bad") as h:
        ep = f"127.0.0.1:{free_port()}"  # nothing listens: inputs are checked before connecting
        cases = [
            (npy_bytes(">f4", [1, 16], b"\0" * 64), "big-endian"),
            (npy_bytes("<f4", [16, 1], b"\0" * 64, fortran=True), "fortran_order is True"),
            (npy_bytes("<c8", [1], b"\0" * 8), "descr '<c8' is not supported"),
            (npy_bytes("<f4", [1, 16], b"\0" * 60), "needs 16 elements of FP32 = 64 bytes, the file has 60"),
            (npy_bytes("", [], b"", header="{'descr': '<f4', 'fortran_order': False, 'shape': (4), }"),
             "a 1-dim shape needs its comma"),
            (npy_bytes("", [], b"", header="{'descr': '<f4', 'fortran_order': False}"), "key 'shape' is missing"),
            (npy_bytes("", [], b"", header="{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}"),
             "unknown key 'x'"),
            (b"PK\x03\x04 not npy", "not a .npy file"),
        ]
        for i, (data, want) in enumerate(cases):
            f = h.path(f"bad{i}.npy")
            with open(f, "wb") as fh:
                fh.write(data)
            code, out, err = infer("--model", "identity", "--framed", ep, "--npy", f"x={f}")
            assert code == 2 and want in err and f in err, (i, err)
        bad_json = h.write("bad.json", '{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", '
                                       '"data": [1, 2]}]}')
        code, _, err = infer("--model", "identity", "--framed", ep, "--input", bad_json)
        assert code == 2 and "shape [1,3] needs 3 elements, data has 2" in err, err
        code, _, err = infer("--model", "identity", "--framed", ep, "--input", h.path("missing.json"))
        assert code == 2 and "No such file" in err, err
        # usage
        for args, want in [
            (["--framed", ep, "--input", f"{EX}/digit0.json"], "--model is required"),
            (["--model", "m", "--input", f"{EX}/digit0.json"], "exactly one of --framed"),
            (["--model", "m", "--framed", ep, "--http", ep, "--input", "x"], "exactly one of --framed"),
            (["--model", "m", "--framed", ep], "either --input"),
            (["--model", "m", "--framed", "nohost", "--input", f"{EX}/digit0.json"], "must be HOST:PORT"),
            (["--model", "m", "--framed", "h:99999", "--input", f"{EX}/digit0.json"], "1..65535"),
            (["--model", "m", "--framed", ep, "--npy", "noequals", ], "NAME=FILE.npy"),
            (["--model", "m", "--bogus"], "unknown or incomplete option"),
        ]:
            code, _, err = infer(*args)
            assert code == 2 and want in err, (args, err)
        # nothing listening: transport error
        code, _, err = infer("--model", "identity", "--framed", ep, "--input", f"{EX}/identity_input.json")
        assert code == 3 and "Connection refused" in err, err
        code, _, err = infer("--model", "identity", "--http", ep, "--input", f"{EX}/identity_input.json")
        assert code == 3 and "Connection refused" in err, err


class KServeHandler(BaseHTTPRequestHandler):
    """A KServe v2 server for the HTTP half: identity (binary outputs when
    asked), 'chunky' (JSON outputs, chunked body), anything else 404."""
    protocol_version = "HTTP/1.1"
    seen = []  # (path, headers, json head, binary bytes)
    cache = set()

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        body = self.rfile.read(n)
        hl = self.headers.get("Inference-Header-Content-Length")
        jl = int(hl) if hl is not None else n
        head = json.loads(body[:jl])
        KServeHandler.seen.append((self.path, dict(self.headers), head, body[jl:]))
        model = self.path.split("/")[3]
        if model == "identity":
            x = head["inputs"][0]
            data = body[jl:jl + x["parameters"]["binary_data_size"]]
            no_cache = "no-cache" in self.headers.get("Cache-Control", "")
            hit = (data in KServeHandler.cache) and not no_cache
            KServeHandler.cache.add(data)
            out = {"name": "y", "datatype": x["datatype"], "shape": x["shape"]}
            resp = {"model_name": "identity", "model_version": "1", "id": head.get("id", "gen-1"), "outputs": [out]}
            binary = head.get("parameters", {}).get("binary_data_output", False)
            if binary:
                out["parameters"] = {"binary_data_size": len(data)}
                js = json.dumps(resp).encode()
                payload = js + data
            else:
                out["data"] = list(struct.unpack(f"<{len(data) // 4}f", data))
                js = payload = json.dumps(resp).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream" if binary else "application/json")
            if binary:
                self.send_header("Inference-Header-Content-Length", str(len(js)))
            self.send_header("X-Ringserve-Cache", "hit" if hit else "miss")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif model == "chunky":
            resp = json.dumps({"model_name": "chunky", "outputs": [
                {"name": "labels", "datatype": "INT64", "shape": [2], "data": [7, -3]},
                {"name": "words", "datatype": "BYTES", "shape": [2], "data": ["hi", "a\"b"]}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(resp), 7):
                part = resp[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            msg = json.dumps({"error": f"unknown model '{model}'"}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)


def test_http_against_kserve_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), KServeHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ep = f"127.0.0.1:{srv.server_address[1]}"
    try:
        code, out, err = infer("--model", "identity", "--http", ep, "--input", f"{EX}/identity_input.json")
        assert code == 0, err
        assert "model identity version 1 id identity0 cache miss" in out, out
        assert output_values(out, "y")[:4] == ["0", "0.5", "1", "1.5"], out
        path, hdrs, head, binary = KServeHandler.seen[-1]
        assert path == "/v2/models/identity/infer", path
        assert head["inputs"][0]["parameters"]["binary_data_size"] == 64 and len(binary) == 64, head
        assert head["parameters"]["binary_data_output"] is True and head["id"] == "identity0", head
        assert struct.unpack("<16f", binary)[1] == 0.5
        assert "Cache-Control" not in hdrs
        # a repeat is a hit; --no-cache sends Cache-Control: no-cache and misses
        code, out, err = infer("--model", "identity", "--http", ep, "--input", f"{EX}/identity_input.json")
        assert code == 0 and " cache hit" in out, (out, err)
        code, out, err = infer("--model", "identity", "--version", "1", "--http", ep, "--input",
                               f"{EX}/identity_input.json", "--no-cache", "--id", "abc")
        assert code == 0 and " cache miss" in out and " id abc " in out, (out, err)
        path, hdrs, head, _ = KServeHandler.seen[-1]
        assert path == "/v2/models/identity/versions/1/infer" and hdrs["Cache-Control"] == "no-cache", hdrs
        # JSON outputs in a chunked body: INT64 and BYTES converted by the KServe parser
        code, out, err = infer("--model", "chunky", "--http", ep, "--input", f"{EX}/identity_input.json")
        assert code == 0, err
        assert output_values(out, "labels") == ["7", "-3"], out
        assert 'output words BYTES [2]: "hi" "a\\"b"' in out, out
        code, out, err = infer("--model", "chunky", "--http", ep, "--input", f"{EX}/identity_input.json",
                               "--json")
        assert code == 0, err
        outs = {o["name"]: o for o in json.loads(out)["outputs"]}
        assert outs["words"]["data"] == ["hi", 'a"b'] and outs["labels"]["data"] == [7, -3], out
        # an error body: exit 1 with its sentence
        code, out, err = infer("--model", "nope", "--http", ep, "--input", f"{EX}/identity_input.json")
        assert code == 1 and "server error HTTP 404: unknown model 'nope'" in err, err
    finally:
        srv.shutdown()
        srv.server_close()


def recv_frame(conn):
    buf = b""
    while True:
        h = rc.check_header(buf)
        if h is not None and len(buf) >= h[4]:
            assert len(buf) == h[4], "one frame expected"
            return buf
        chunk = conn.recv(1 << 16)
        assert chunk, "peer closed"
        buf += chunk


def test_python_client_timeout_forgets_request():
    """A request that times out is dropped from the pending table (no leak
    on a long-lived connection); a late reply is ignored."""
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = rc.FramedClient("127.0.0.1", srv.getsockname()[1], timeout_s=0.2)
    conn, _ = srv.accept()
    try:
        x = rc.Tensor.from_list("x", "FP32", [1, 1], [1.0])
        try:
            c.infer("identity", [x])
            raise AssertionError("a silent server must time out")
        except TimeoutError:
            pass
        assert c._pending == {}, c._pending
        first = rc.decode_frame(recv_frame(conn))
        assert first.type == "INFER_REQUEST" and first.request_id == 1, first
        # the late reply arrives: ignored; the connection goes on
        conn.sendall(rc.encode_frame("INFER_RESPONSE", 1, rc.infer_response_payload("identity", [x])))
        fut = c.infer_async("identity", [x])
        frame = rc.decode_frame(recv_frame(conn))
        conn.sendall(rc.encode_frame("INFER_RESPONSE", frame.request_id,
                                     rc.infer_response_payload("identity", [x], id="late-ok")))
        assert c.result(fut).id == "late-ok"
    finally:
        c.close()
        conn.close()
        srv.close()


if __name__ == "__main__":
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    for t in tests:
        print(f"-- {t.__name__}", flush=True)
        t()
    print(f"ok: {len(tests)} tests")

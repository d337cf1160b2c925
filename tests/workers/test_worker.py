"""Integration tests for `ringserve worker` (and its `ringserve stage` pool).

Real worker processes on 127.0.0.1, driven with the stdlib client
(clients/python/ringserve_client.py) and a fake coordinator (a socket that
answers REGISTER and records what the worker sends). Covers: a batch with
good and bad items, INFER_REQUEST straight to the worker (same bytes as the
batch path), served digits accuracy equal to the reference, PING, unknown
model/version, requested outputs, registration/heartbeat/deregistration
(and re-registration after the coordinator link drops), a
backend failure (the worker stays up), overload, SIGTERM drain of an
in-flight batch, SIGHUP reload (new version, in-flight kept, removed version
retired), stages in the pool giving the same bytes as inline, a bad config.

argv[1]: the folder holding the test backend plugin (--backend-dir)."""
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import SRC, Harness, digits_rows, free_port, port_open, wait_for  # noqa: E402

import ringserve_client as rc  # noqa: E402  (harness put clients/python on the path)

PLUGIN_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.getcwd(), "plugins")

SLOW_YAML = """name: slow
backend: slow
inputs:
  - {name: x, dtype: FP32, shape: [-1, 4]}
outputs:
  - {name: y, dtype: FP32, shape: [-1, 4]}
batchable: true
max_batch_size: 16
instances: 1
stages: inline
"""


def pixels(values, rows=1, dtype="FP32", name="pixels", width=64):
    return rc.Tensor.from_list(name, dtype, [rows, width], values)


class FakeCoordinator:
    """Accepts worker connections; answers REGISTER with REGISTER_ACK (or
    UNAUTHORIZED for a wrong token) and records every frame."""

    def __init__(self, token="", heartbeat_ms=50):
        self.token, self.heartbeat_ms = token, heartbeat_ms
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.frames = []
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = bytearray()
        with c:
            while True:
                try:
                    chunk = c.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while True:
                    hdr = rc.check_header(buf)
                    if hdr is None or hdr[4] > len(buf):
                        break
                    f = rc.decode_frame(bytes(buf[:hdr[4]]))
                    del buf[:hdr[4]]
                    with self.lock:
                        self.frames.append(f)
                    if f.type == "REGISTER":
                        if self.token and f.message["token"] != self.token:
                            c.sendall(rc.encode_frame("ERROR", f.request_id,
                                                      rc.error_payload("UNAUTHORIZED", "bad token")))
                        else:
                            c.sendall(rc.encode_frame("REGISTER_ACK", f.request_id,
                                                      rc.u64_payload(self.heartbeat_ms)))

    def of(self, typ):
        with self.lock:
            return [f for f in self.frames if f.type == typ]

    def drop(self):
        """Closes every worker connection (a coordinator restart, seen from the worker)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopped = True
        self.sock.close()


def start_worker(h, port, config_text, *extra):
    cfg = h.write("worker.yaml", config_text)
    p = h.start("worker", "--config", cfg, "--port", str(port), *extra)
    wait_for(lambda: port_open(port) or not p.alive(), what="worker listening")
    assert p.alive(), p.output()
    return p


def batch(client, model, items, version=""):
    return client._call("BATCH_REQUEST", rc.batch_request_payload(model, items, version=version))


def make_repo(h, models):
    """A model repository in the harness dir: {name: {version: yaml text}};
    digits weights are symlinked from the committed model."""
    repo = h.path("repo")
    for name, versions in models.items():
        for v, text in versions.items():
            d = os.path.join(repo, name, str(v))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "model.yaml"), "w") as f:
                f.write(text)
            if "backend: dense" in text:
                os.symlink(os.path.join(SRC, "models", "digits", "1", "model.safetensors"),
                           os.path.join(d, "model.safetensors"))
    return repo


# ---------------------------------------------------------------- tests

def test_batch_infer_register_drain():
    rows = digits_rows()
    coord = FakeCoordinator(token="s3cret")
    with Harness("worker-batch") as h:
        port = free_port()
        w = start_worker(h, port, f"models: {{repository: {SRC}/models}}\ncluster: {{token: s3cret}}\n"
                         "worker: {id: w-test, drain_timeout_ms: 5000}\n",
                         "--model", "digits", "--model", "identity",
                         "--coordinator", f"127.0.0.1:{coord.port}")
        reg = wait_for(lambda: coord.of("REGISTER"), what="REGISTER")[0].message
        assert reg["worker_id"] == "w-test" and reg["port"] == port and reg["token"] == "s3cret", reg
        assert {(m["name"], m["version"]) for m in reg["models"]} == {("digits", "1"), ("identity", "1")}
        assert reg["capacity"] >= 2
        hb = wait_for(lambda: coord.of("HEARTBEAT"), what="HEARTBEAT")[0].message
        assert hb["worker_id"] == "w-test"

        with rc.FramedClient("127.0.0.1", port) as c:
            assert c.ping(1234) == 1234
            # a batch: 6 good items (one of 2 rows), and one bad item of each kind
            items = [(100 + i, [pixels(rows[i][0])]) for i in range(5)]
            items.append((105, [pixels(rows[5][0] + rows[6][0], rows=2)]))
            items.append((200, [pixels([0] * 64, dtype="INT32")]))             # wrong dtype
            items.append((201, [pixels([0.0] * 65, width=65)]))               # wrong shape
            items.append((202, [pixels([0.0] * 64, name="image")]))           # wrong input name
            items.append((203, [rc.Tensor.from_list("pixels", "FP32", [1, 8, 8], [0.0] * 64)]))  # rank
            f = batch(c, "digits", items)
            assert f.type == "BATCH_RESPONSE", f
            got = {it["item_id"]: it for it in f.message["items"]}
            assert len(got) == len(items)
            assert got[200]["status"] == "INVALID_INPUT" and "is INT32, model digits/1 takes FP32" in got[200]["message"]
            assert got[201]["status"] == "INVALID_INPUT" and "has shape [1, 65], model digits/1 takes [-1, 64]" in got[201]["message"]
            assert got[202]["status"] == "INVALID_INPUT" and "unexpected input 'image'" in got[202]["message"]
            assert got[203]["status"] == "INVALID_INPUT" and "has shape [1, 8, 8]" in got[203]["message"]
            for i in range(5):
                it = got[100 + i]
                assert it["status"] == "OK", it
                outs = {t.name: t for t in it["outputs"]}
                assert outs["probabilities"].shape == [1, 10] and outs["label"].shape == [1]
                probs = outs["probabilities"].to_list()
                assert abs(sum(probs) - 1.0) < 1e-4
                assert outs["label"].to_list()[0] == max(range(10), key=lambda k: probs[k])
                # straight to the worker: the same bytes as a one-item batch
                # (a bigger batch may round differently inside sgemm)
                r = c.infer("digits", [pixels(rows[i][0])], id=f"req-{i}")
                assert r.model == "digits" and r.version == "1" and r.id == f"req-{i}"
                single = batch(c, "digits", [(9, [pixels(rows[i][0])])]).message["items"][0]
                so = {t.name: t for t in single["outputs"]}
                assert bytes(r.outputs["probabilities"].data) == bytes(so["probabilities"].data)
                assert bytes(r.outputs["label"].data) == bytes(so["label"].data) == bytes(outs["label"].data)
                assert all(abs(p - q) < 1e-5 for p, q in zip(r.outputs["probabilities"].to_list(), probs))
            two = {t.name: t for t in got[105]["outputs"]}
            assert two["probabilities"].shape == [2, 10] and two["label"].shape == [2]

            # served accuracy over the held-out split equals the reference
            ref = json.load(open(os.path.join(SRC, "tests", "data", "digits_reference.json")))
            correct = 0
            for start in range(0, len(rows), 128):
                chunk = rows[start:start + 128]
                f = batch(c, "digits", [(start + k, [pixels(x)]) for k, (x, _) in enumerate(chunk)])
                for it in f.message["items"]:
                    label = {t.name: t for t in it["outputs"]}["label"].to_list()[0]
                    correct += label == rows[it["item_id"]][1]
            assert correct == ref["correct"] and len(rows) == ref["rows"], (correct, ref)

            # requested outputs, unknown model / version / output
            r = c.infer("digits", [pixels(rows[0][0])], outputs=["label"])
            assert list(r.outputs) == ["label"]
            for kw, code in (({"model": "nope"}, "UNKNOWN_MODEL"), ({"version": "7"}, "UNKNOWN_MODEL"),
                             ({"outputs": ["logits"]}, "INVALID_INPUT")):
                args = dict({"model": "digits"}, **kw)
                try:
                    c.infer(args.pop("model"), [pixels(rows[0][0])], **args)
                    raise AssertionError(f"{kw}: no error")
                except rc.ServerError as e:
                    assert e.code == rc.STATUS[code], (kw, e)
            f = batch(c, "nope", [(1, [pixels(rows[0][0])])])
            assert f.type == "ERROR" and f.message["status"] == "UNKNOWN_MODEL"
            # identity next to digits in the same worker
            r = c.infer("identity", [rc.Tensor.from_list("x", "FP32", [1, 16], list(range(16)))])
            assert r.outputs["y"].to_list() == list(range(16))

        w.signal(signal.SIGTERM)
        assert w.wait(20) == 0, w.output()
        dereg = wait_for(lambda: coord.of("DEREGISTER"), what="DEREGISTER")
        assert dereg[0].message["value"] == 5000
    coord.close()


def test_wrong_token_is_logged():
    coord = FakeCoordinator(token="right")
    with Harness("worker-token") as h:
        port = free_port()
        w = start_worker(h, port, f"models: {{repository: {SRC}/models}}\ncluster: {{token: wrong}}\n",
                         "--model", "identity", "--coordinator", f"127.0.0.1:{coord.port}")
        wait_for(lambda: "refused: UNAUTHORIZED: bad token" in w.output(), what="refusal logged")
        with rc.FramedClient("127.0.0.1", port) as c:  # still serving direct clients
            assert c.ping(7) == 7
    coord.close()


def test_reconnects_and_registers_again():
    coord = FakeCoordinator(heartbeat_ms=50)
    with Harness("worker-reconnect") as h:
        port = free_port()
        start_worker(h, port, f"models: {{repository: {SRC}/models}}\n",
                     "--model", "identity", "--coordinator", f"127.0.0.1:{coord.port}")
        wait_for(lambda: coord.of("REGISTER"), what="REGISTER")
        coord.drop()
        wait_for(lambda: len(coord.of("REGISTER")) >= 2, what="REGISTER after the link dropped")
        n = len(coord.of("HEARTBEAT"))
        wait_for(lambda: len(coord.of("HEARTBEAT")) > n, what="heartbeats resume")
    coord.close()


def test_backend_failure_overload_drain():
    coord = FakeCoordinator(heartbeat_ms=20)
    with Harness("worker-slow") as h:
        repo = make_repo(h, {"slow": {1: SLOW_YAML}})
        port = free_port()
        w = start_worker(h, port, f"models: {{repository: {repo}}}\nworker: {{queue_depth: 1}}\n",
                         "--backend-dir", PLUGIN_DIR, "--coordinator", f"127.0.0.1:{coord.port}")
        wait_for(lambda: coord.of("REGISTER"), what="REGISTER")
        x = lambda v: [rc.Tensor.from_list("x", "FP32", [1, 4], [v, 1, 2, 3])]  # noqa: E731
        with rc.FramedClient("127.0.0.1", port) as c:
            # the backend fails: an error item, and the worker keeps serving
            f = batch(c, "slow", [(1, x(-1.0))])
            it = f.message["items"][0]
            assert it["status"] == "BACKEND" and "backend slow failed: slow: refusing" in it["message"], it
            try:
                c.infer("slow", x(-1.0))
                raise AssertionError("no error")
            except rc.ServerError as e:
                assert e.code == rc.STATUS["BACKEND"]
            f = batch(c, "slow", [(2, x(0.0))])
            assert f.message["items"][0]["status"] == "OK"

            # one job slot: a batch held for 4 s takes it; the next one is overloaded
            held = c._send("BATCH_REQUEST", rc.batch_request_payload("slow", [(3, x(4000.0))]))
            f = batch(c, "slow", [(4, x(0.0)), (5, x(0.0))])
            assert [i["status"] for i in f.message["items"]] == ["OVERLOADED", "OVERLOADED"], f.message
            assert "at capacity" in f.message["items"][0]["message"]

            # SIGTERM while it is in flight: it is still answered, then exit 0
            wait_for(lambda: any(hb.message["in_flight"] + hb.message["queued"] >= 1
                                 for hb in coord.of("HEARTBEAT")), what="batch in flight")
            w.signal(signal.SIGTERM)
            wait_for(lambda: coord.of("DEREGISTER"), what="DEREGISTER")
            f = held.result(20)
            assert f.type == "BATCH_RESPONSE" and f.message["items"][0]["status"] == "OK", f
            assert f.message["items"][0]["outputs"][0].to_list() == [4000.0, 1, 2, 3]
        assert w.wait(20) == 0, w.output()
        assert "draining: 1 batch(es) in flight" in w.output()
    coord.close()


def test_sighup_reload():
    coord = FakeCoordinator(heartbeat_ms=20)
    with Harness("worker-reload") as h:
        repo = make_repo(h, {"slow": {1: SLOW_YAML}})
        port = free_port()
        w = start_worker(h, port, f"models: {{repository: {repo}}}\n",
                         "--backend-dir", PLUGIN_DIR, "--coordinator", f"127.0.0.1:{coord.port}")
        wait_for(lambda: coord.of("REGISTER"), what="REGISTER")
        x = lambda v: [rc.Tensor.from_list("x", "FP32", [1, 4], [v, 1, 2, 3])]  # noqa: E731
        with rc.FramedClient("127.0.0.1", port) as c:
            assert c.infer("slow", x(0.0)).version == "1"
            held = c.infer_async("slow", x(3000.0), version="1")
            wait_for(lambda: any(hb.message["in_flight"] + hb.message["queued"] >= 1
                                 for hb in coord.of("HEARTBEAT")), what="request in flight")
            make_repo(h, {"slow": {2: SLOW_YAML}})
            w.signal(signal.SIGHUP)
            wait_for(lambda: len(coord.of("REGISTER")) >= 2, what="REGISTER after reload")
            reg = coord.of("REGISTER")[-1].message
            assert {m["version"] for m in reg["models"]} == {"1", "2"}, reg
            assert c.infer("slow", x(0.0)).version == "2"          # latest is now 2
            assert c.infer("slow", x(0.0), version="1").version == "1"
            r = c.result(held)                                     # not dropped by the reload
            assert r.version == "1" and r.outputs["y"].to_list() == [3000.0, 1, 2, 3]

            shutil.rmtree(os.path.join(repo, "slow", "1"))
            w.signal(signal.SIGHUP)
            wait_for(lambda: len(coord.of("REGISTER")) >= 3, what="REGISTER after removal")
            assert [m["version"] for m in coord.of("REGISTER")[-1].message["models"]] == ["2"]
            try:
                c.infer("slow", x(0.0), version="1")
                raise AssertionError("version 1 still served")
            except rc.ServerError as e:
                assert e.code == rc.STATUS["UNKNOWN_MODEL"]
            assert c.infer("slow", x(0.0)).version == "2"
        assert "1 retired" in w.output()
        w.signal(signal.SIGTERM)
        assert w.wait(20) == 0, w.output()
    coord.close()


def test_pool_stages_same_bytes():
    with open(os.path.join(SRC, "models", "digits", "1", "model.yaml")) as f:
        digits = f.read()
    pooled = digits.replace("name: digits", "name: digitspool").replace("stages: inline", "stages: pool")
    assert "stages: pool" in pooled
    rows = digits_rows()
    with Harness("worker-pool") as h:
        repo = make_repo(h, {"digits": {1: digits}, "digitspool": {1: pooled}})
        port = free_port()
        w = start_worker(h, port, f"models: {{repository: {repo}}}\n"
                         "worker: {stage_pool: {processes: 1}}\n")
        wait_for(lambda: "stage process" in w.output(), what="stage process started")
        with rc.FramedClient("127.0.0.1", port) as c:
            items = [(k, [pixels(rows[k][0])]) for k in range(32)]
            a = batch(c, "digits", items).message["items"]
            b = batch(c, "digitspool", items).message["items"]
            assert len(a) == len(b) == 32
            for x, y in zip(a, b):
                assert x["status"] == y["status"] == "OK"
                for tx, ty in zip(x["outputs"], y["outputs"]):
                    assert (tx.name, tx.datatype, tx.shape) == (ty.name, ty.datatype, ty.shape)
                    assert bytes(tx.data) == bytes(ty.data)
            bad = batch(c, "digitspool", [(1, [pixels([0] * 64, dtype="INT32")])]).message["items"][0]
            assert bad["status"] == "INVALID_INPUT"
        w.signal(signal.SIGTERM)
        assert w.wait(20) == 0, w.output()


def test_bad_config_refused():
    with Harness("worker-badcfg") as h:
        cfg = h.write("bad.yaml", f"models: {{repository: {SRC}/models}}\nworker:\n  queue_dept: 4\n")
        p = h.start("worker", "--config", cfg, "--port", str(free_port()), "--model", "digits")
        assert p.wait(20) == 2
        assert "worker.queue_dept: unknown field" in p.output(), p.output()
        p = h.start("worker", "--config", cfg.replace("bad", "none"), "--model", "digits")
        assert p.wait(20) == 2
        p = h.start("worker", "--port", str(free_port()), "--model", "nosuchmodel",
                    "--config", h.write("ok.yaml", f"models: {{repository: {SRC}/models}}\n"))
        assert p.wait(20) == 2 and "nosuchmodel" in p.output(), p.output()


if __name__ == "__main__":
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    for t in tests:
        t0 = time.monotonic()
        t()
        print(f"ok {t.__name__} ({time.monotonic() - t0:.1f}s)")

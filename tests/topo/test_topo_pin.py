#!/usr/bin/env python3
"""Integration test: `ringserve topo` pins real threads on this machine and
the kernel agrees.

The binary applies every plan entry in a thread of its own, prints the plan
as JSON (with each thread's tid) and, with --hold, keeps the threads until
stdin closes. Meanwhile this test reads each thread's affinity from the
kernel (/proc/<pid>/task/<tid>/status and sched_getaffinity) and compares it
with the plan. Also: a taskset-like restriction is respected, and a config
naming a CPU outside it is refused with one line. Stdlib only.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("RINGSERVE_BIN", "build/ringserve")
SRC = os.environ.get("RINGSERVE_SRC", os.getcwd())
DATA = os.path.join(SRC, "tests", "data", "topo")
LIMIT_S = 30  # bounds the test's run time; asserts nothing about speed


def cpulist(text):
    cpus = set()
    for item in text.strip().split(","):
        lo, _, hi = item.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def kernel_affinity(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return cpulist(line.split(":", 1)[1])
    raise AssertionError("no Cpus_allowed_list")


def write_config(text):
    fd, path = tempfile.mkstemp(suffix=".yaml", prefix="topo-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class TopoPinTest(unittest.TestCase):
    def setUp(self):
        self.allowed = sorted(os.sched_getaffinity(0))
        self.files = []

    def tearDown(self):
        for p in self.files:
            os.unlink(p)

    def config(self, text):
        path = write_config(text)
        self.files.append(path)
        return path

    def hold(self, args, preexec=None):
        """Starts `ringserve topo --json --hold`, returns (proc, plan json)."""
        proc = subprocess.Popen([BIN, "topo", "--json", "--hold"] + args, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=preexec)
        lines = []
        try:
            for line in proc.stdout:  # pretty JSON: the root closes with "}" alone
                lines.append(line)
                if line.rstrip("\n") == "}":
                    break
            doc = json.loads("".join(lines))
        except Exception:
            proc.kill()
            proc.wait()
            raise AssertionError("no JSON from ringserve topo: " + proc.stderr.read())
        return proc, doc

    def release(self, proc):
        proc.stdin.close()
        rc = proc.wait(timeout=LIMIT_S)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        self.assertEqual(rc, 0, err)

    def check_pinned(self, proc, doc):
        entries = doc["plan"]["entries"]
        self.assertGreater(len(entries), 0)
        for e in entries:
            eff = e["effective"]
            self.assertIsNotNone(eff, e)
            self.assertTrue(eff["pinned"], e)
            self.assertEqual(set(eff["cpus"]), set(e["cpus"]))
            # What the kernel reports, read from outside the process.
            self.assertEqual(kernel_affinity(proc.pid, eff["tid"]), set(e["cpus"]))
            self.assertEqual(os.sched_getaffinity(eff["tid"]), set(e["cpus"]))

    def test_io_loop_and_worker_pinned(self):
        if len(self.allowed) >= 2:
            io, worker = self.allowed[0], self.allowed[1]
            cfg = self.config("topology:\n  io_cores: \"%d\"\n  worker_cores: \"%d\"\n"
                              "  placement:\n    digits: {instances: 1}\n" % (io, worker))
        else:
            io = worker = self.allowed[0]
            cfg = self.config("topology:\n  placement:\n    digits: {}\n")
        proc, doc = self.hold(["--config", cfg])
        try:
            self.assertEqual(doc["pid"], proc.pid)
            roles = {e["role"]: e for e in doc["plan"]["entries"]}
            self.assertEqual(roles["io"]["cpus"], [io])
            self.assertEqual(roles["worker"]["cpus"], [worker])
            self.assertEqual(roles["worker"]["model"], "digits")
            self.check_pinned(proc, doc)
        finally:
            self.release(proc)

    def test_default_plan_one_io_loop_per_core(self):
        proc, doc = self.hold([])
        try:
            cores = [c for c in doc["machine"]["cores"]
                     if set(c["cpus"]) & set(doc["machine"]["allowed"])]
            ios = [e for e in doc["plan"]["entries"] if e["role"] == "io"]
            self.assertEqual(len(ios), len(cores))
            self.check_pinned(proc, doc)
        finally:
            self.release(proc)

    def test_pin_off_leaves_threads_floating(self):
        # topology.pin: false plans the same CPUs but binds no thread to them
        cfg = self.config("topology:\n  pin: false\n  placement:\n    digits: {}\n")
        proc, doc = self.hold(["--config", cfg])
        try:
            entries = doc["plan"]["entries"]
            self.assertGreater(len(entries), 1)
            for e in entries:
                eff = e["effective"]
                self.assertFalse(eff["pinned"], e)
                self.assertEqual(set(eff["cpus"]), set(self.allowed))
                self.assertEqual(kernel_affinity(proc.pid, eff["tid"]), set(self.allowed))
        finally:
            self.release(proc)

    def test_io_sched_batch(self):
        # topology.io_sched: batch: io loop threads run as SCHED_BATCH (the
        # kernel says so), worker shards keep SCHED_OTHER
        cfg = self.config("topology:\n  io_sched: batch\n  placement:\n    digits: {}\n")
        proc, doc = self.hold(["--config", cfg])
        try:
            entries = doc["plan"]["entries"]
            self.assertIn("worker", [e["role"] for e in entries])
            for e in entries:
                want = "batch" if e["role"] == "io" else "normal"
                self.assertEqual(e["sched"], want, e)
                self.assertEqual(e["effective"]["sched"], want, e)
                self.assertEqual(os.sched_getscheduler(e["effective"]["tid"]),
                                 os.SCHED_BATCH if want == "batch" else os.SCHED_OTHER, e)
            self.check_pinned(proc, doc)
        finally:
            self.release(proc)

    def test_io_sched_batch_in_serve(self):
        """A real `ringserve serve`: its 2 io loops and its worker's io loop run
        as SCHED_BATCH, every other thread of both processes as SCHED_OTHER."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            worker_port = s.getsockname()[1]
        cache = "rs-test-io-sched-%d" % os.getpid()
        cfg = self.config(
            "server: {host: 127.0.0.1, http_port: 0, framed_port: 0, io_threads: 2}\n"
            "topology: {io_sched: batch}\n"
            "models: {repository: [%s], load: [identity]}\n"
            "cache: {name: %s, capacity_mb: 16}\n"
            "workers: {count: 1, base_port: %d, models: [identity]}\n"
            % (os.path.join(SRC, "models"), cache, worker_port))
        log = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen([BIN, "serve", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)

        def policies(pid):
            return sorted(os.sched_getscheduler(int(t)) for t in os.listdir(f"/proc/{pid}/task"))

        try:
            deadline = time.monotonic() + LIMIT_S
            while True:  # until the worker has registered: both processes are up
                log.seek(0)
                text = log.read()
                if "registered at 127.0.0.1:%d" % worker_port in text:
                    break
                self.assertIsNone(proc.poll(), text)
                self.assertLess(time.monotonic(), deadline, text)
                time.sleep(0.05)
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                worker = int(f.read().split()[0])
            co, wk = policies(proc.pid), policies(worker)
            self.assertEqual(co.count(os.SCHED_BATCH), 2, co)
            self.assertEqual(wk.count(os.SCHED_BATCH), 1, wk)
            self.assertEqual(set(co + wk), {os.SCHED_OTHER, os.SCHED_BATCH})
        finally:
            proc.terminate()
            proc.wait(timeout=LIMIT_S)
            log.close()
            try:
                os.unlink("/dev/shm/" + cache)
            except OSError:
                pass

    def test_restricted_affinity_is_respected(self):
        last = self.allowed[-1]
        only_last = lambda: os.sched_setaffinity(0, {last})  # noqa: E731 - like taskset -c
        proc, doc = self.hold([], preexec=only_last)
        try:
            self.assertEqual(doc["machine"]["allowed"], [last])
            self.assertEqual(doc["plan"]["usable"], [last])
            self.check_pinned(proc, doc)
        finally:
            self.release(proc)
        if len(self.allowed) >= 2:
            first = self.allowed[0]
            cfg = self.config("topology:\n  io_cores: \"%d\"\n" % first)
            r = subprocess.run([BIN, "topo", "--config", cfg], capture_output=True, text=True,
                               preexec_fn=only_last, timeout=LIMIT_S)
            self.assertEqual(r.returncode, 2)
            self.assertEqual(r.stdout, "")
            self.assertEqual(
                r.stderr,
                "ringserve topo: %s:2: topology.io_cores: '%d': cpu %d is outside the allowed "
                "cpuset %d\n" % (cfg, first, first, last))

    def test_registry_models_pinned(self):
        """`models:` loads model.yaml files through the registry; topology.placement
        overrides their instances."""
        cfg = self.config("models:\n  repository: %s\n  load: [identity]\n"
                          "topology:\n  placement:\n    identity: {instances: 2}\n"
                          % os.path.join(SRC, "models"))
        proc, doc = self.hold(["--config", cfg])
        try:
            workers = [e for e in doc["plan"]["entries"] if e["role"] == "worker"]
            self.assertEqual([(w["model"], w["instance"]) for w in workers],
                             [("identity", 0), ("identity", 1)])
            self.check_pinned(proc, doc)
        finally:
            self.release(proc)
        cfg = self.config("models:\n  repository: %s\n  load: [identity]\n"
                          "topology:\n  placement:\n    idnetity: {}\n"
                          % os.path.join(SRC, "models"))
        r = subprocess.run([BIN, "topo", "--config", cfg], capture_output=True, text=True,
                           timeout=LIMIT_S)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "ringserve topo: %s:6: topology.placement.idnetity: "
                                   "'idnetity': no such model is loaded\n" % cfg)

    def test_bad_config_refused_with_one_line(self):
        cfg = self.config("topology:\n  smt: sometimes\n")
        r = subprocess.run([BIN, "topo", "--config", cfg], capture_output=True, text=True,
                           timeout=LIMIT_S)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "ringserve topo: %s:2: topology.smt: 'sometimes': expected "
                                   "one of avoid|share\n" % cfg)

    def test_command_line_errors(self):
        for args, msg in [
            (["--topology-xml", "a.xml", "--synthetic", "package:1 pu:2"],
             "ringserve topo: --topology-xml and --synthetic exclude each other\n"),
            (["--synthetic"], "ringserve topo: --synthetic needs a value\n"),
            (["--synthetic", "bananas:2"],
             "ringserve topo: --synthetic: 'bananas:2': not a valid hwloc synthetic "
             "description\n"),
            (["--config", "/nonexistent/ringserve.yaml"], None),
        ]:
            r = subprocess.run([BIN, "topo"] + args, capture_output=True, text=True,
                               timeout=LIMIT_S)
            self.assertEqual(r.returncode, 2, args)
            if msg:
                self.assertEqual(r.stderr, msg)
            else:
                self.assertIn("/nonexistent/ringserve.yaml", r.stderr)
        r = subprocess.run([BIN, "topo", "--bogus"], capture_output=True, text=True,
                           timeout=LIMIT_S)
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith("ringserve topo: unknown option '--bogus'\nusage:"))

    def test_synthetic_plan(self):
        r = subprocess.run([BIN, "topo", "--synthetic", "package:2 numa:1 core:4 pu:2", "--json"],
                           capture_output=True, text=True, timeout=LIMIT_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(len(doc["machine"]["numa_nodes"]), 2)
        self.assertEqual(doc["plan"]["numa"], "local")
        ios = [e for e in doc["plan"]["entries"] if e["role"] == "io"]
        self.assertEqual(len(ios), 8)  # one per physical core, not per PU
        self.assertTrue(all(e["effective"] is None for e in ios))

    def test_xml_host_plan_text_and_json(self):
        cfg = self.config("topology:\n  placement:\n    resnet: {device: gpu, gpus: [3]}\n")
        xml = os.path.join(DATA, "2s-2numa-smt-4gpu.xml")
        r = subprocess.run([BIN, "topo", "--config", cfg, "--topology-xml", xml],
                           capture_output=True, text=True, timeout=LIMIT_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("machine: 2 packages, 2 NUMA nodes, 2 L3, 16 cores, 32 cpus (SMT 2), 4 GPUs",
                      r.stdout)
        self.assertIn("gpu 3 0000:ca:00.0 [10de:20b2]", r.stdout)
        shard = [l for l in r.stdout.splitlines() if l.startswith("worker shard of resnet")]
        self.assertEqual(len(shard), 1)
        self.assertIn("n/a (not this machine)", shard[0])
        r = subprocess.run([BIN, "topo", "--config", cfg, "--topology-xml", xml, "--json"],
                           capture_output=True, text=True, timeout=LIMIT_S)
        doc = json.loads(r.stdout)
        node1 = set(doc["machine"]["numa_nodes"][1]["cpus"])
        w = [e for e in doc["plan"]["entries"] if e["role"] == "worker"][0]
        self.assertEqual(w["gpu"], 3)
        self.assertTrue(set(w["cpus"]) <= node1)
        self.assertIsNone(w["effective"])


if __name__ == "__main__":
    unittest.main(verbosity=2)

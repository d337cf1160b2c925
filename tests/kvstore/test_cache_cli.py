"""`ringserve cache stats|get|set|del|clear|save|destroy` against a real segment.

Stdlib only. Each run uses its own segment name and temporary directory and
destroys the segment at the end (also on failure).
"""
import json
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("RINGSERVE_BIN", "build/ringserve")
KEY = "00112233445566778899aabbccddeeff"
OTHER = "ffeeddccbbaa99887766554433221100"


class CacheCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="rs-cache-cli-")
        self.name = f"rs-test-cli-{os.getpid()}"
        self.snap = os.path.join(self.tmp.name, "cache.snap")
        self.cfg = self.config(capacity_mb=8, max_value_kb=1)

    def tearDown(self):
        self.run_cache("destroy")
        self.tmp.cleanup()

    def config(self, name="cfg.yaml", **fields):
        cache = {"name": self.name, "persist": self.snap, "default_ttl_s": 0}
        cache.update(fields)
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write("server: {}\ncache:\n")
            for k, v in cache.items():
                f.write(f"  {k}: {v}\n")
        return path

    def run_cache(self, *args, config=None):
        cmd = [BIN, "cache", *args, "--config", config or self.cfg]
        return subprocess.run(cmd, capture_output=True, timeout=30)

    def stats(self):
        r = self.run_cache("stats")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = {}
        for line in r.stdout.decode().splitlines():
            k, v = line.split(None, 1)
            out[k] = v.strip()
        return out

    def test_operations(self):
        r = self.run_cache("stats")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"no such segment", r.stderr)

        self.assertEqual(self.run_cache("set", KEY, "hello").returncode, 0)
        r = self.run_cache("get", KEY)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"bytes    5", r.stdout)
        self.assertIn(b"68 65 6c 6c 6f", r.stdout)
        self.assertIn(b"ttl_ms   never", r.stdout)
        r = self.run_cache("get", KEY, "--raw")
        self.assertEqual(r.stdout, b"hello")
        r = self.run_cache("get", OTHER)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not found", r.stderr)

        s = self.stats()
        self.assertEqual(s["segment"], "/" + self.name)
        self.assertEqual(s["items"], "1")
        self.assertEqual(s["hits"], "2")
        self.assertEqual(s["misses"], "1")
        self.assertEqual(s["hit_rate"], "0.6667")
        self.assertEqual(s["max_value_bytes"], "1024")
        # the same counters as JSON, for tools
        r = self.run_cache("stats", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["segment"], "/" + self.name)
        self.assertEqual((j["items"], j["hits"], j["misses"], j["max_value_bytes"]), (1, 2, 1, 1024))
        self.assertAlmostEqual(j["hit_rate"], 2 / 3, places=4)
        self.assertEqual(set(s) - {"segment"}, set(j) - {"segment"})

        r = self.run_cache("set", OTHER, "x" * 1025)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"exceeds max_value_kb", r.stderr)
        self.assertEqual(self.stats()["oversize"], "1")

        r = self.run_cache("set", OTHER, "soon", "--ttl", "100")
        self.assertEqual(r.returncode, 0)
        r = self.run_cache("get", OTHER)
        self.assertRegex(r.stdout.decode(), r"ttl_ms   \d+")

        self.assertEqual(self.run_cache("del", OTHER).returncode, 0)
        self.assertEqual(self.run_cache("del", OTHER).returncode, 1)

        # Persist: save, drop the segment, and a new one is warmed from the file.
        r = self.run_cache("save")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"saved 1 entries", r.stdout)
        self.assertEqual(self.run_cache("destroy").returncode, 0)
        self.assertEqual(self.run_cache("set", OTHER, "new").returncode, 0)
        r = self.run_cache("get", KEY, "--raw")
        self.assertEqual(r.stdout, b"hello")

        r = self.run_cache("clear")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(self.stats()["items"], "0")
        self.assertEqual(self.run_cache("get", KEY).returncode, 1)

    def test_refusals(self):
        r = self.run_cache("get", "xyz")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"key 'xyz': expected 32 hex digits", r.stderr)
        r = self.run_cache("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"unknown command 'frobnicate'", r.stderr)
        r = subprocess.run([BIN, "cache", "stats"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--config FILE is required", r.stderr)
        r = self.run_cache("get", KEY, OTHER)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"expected 1 argument(s), got 2", r.stderr)

        bad = self.config("bad.yaml", capacity_mb="lots")
        r = self.run_cache("stats", config=bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"bad.yaml:6: cache.capacity_mb: 'lots': expected", r.stderr)
        unknown = self.config("unknown.yaml", colour="blue")
        r = self.run_cache("stats", config=unknown)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"cache.colour: unknown field", r.stderr)

        # A segment created with one capacity refuses a config with another.
        self.assertEqual(self.run_cache("set", KEY, "v").returncode, 0)
        bigger = self.config("bigger.yaml", capacity_mb=16, max_value_kb=1)
        r = self.run_cache("set", KEY, "v", config=bigger)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"capacity_bytes", r.stderr)
        self.assertIn(b"ringserve cache destroy", r.stderr)
        self.assertEqual(self.run_cache("destroy").returncode, 0)
        self.assertFalse(os.path.exists("/dev/shm/" + self.name))
        r = self.run_cache("destroy")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"no such segment", r.stderr)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""example_client.py — send the digits test split to a ringserve node.

Start the demo node first (`./run.sh`, i.e. `ringserve serve --config
examples/demo.yaml`: HTTP on 127.0.0.1:8000, framed protocol on
127.0.0.1:9000), then:

    python3 examples/example_client.py            # HTTP (KServe v2 JSON)
    python3 examples/example_client.py --framed   # the framed binary protocol

Each row of tests/data/digits_test.csv is one request to the `digits` model
(input `pixels`, FP32 [1, 64], raw 0..16). The split is sent --passes times
(default 2: the second pass is answered from the response cache). Prints a
few predictions, then accuracy, client-side latency p50/p99 and cache hits
(the X-Ringserve-Cache header or the framed CACHE_HIT flag, and the
coordinator's rs_cache_hits_total counter from /metrics).

Standard library only (clients/python/ringserve_client.py).
"""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "clients", "python"))

import ringserve_client as rc  # noqa: E402


def load_split(path, limit):
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            v = line.strip().split(",")
            rows.append(([float(x) for x in v[:64]], int(v[64])))
            if limit and len(rows) == limit:
                break
    return rows


def percentile(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    k = min(len(sorted_ms) - 1, max(0, int(round(p / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[k]


def cache_hits_metric(host, port):
    """Sum of rs_cache_hits_total over its label sets, or None when /metrics
    cannot be read (framed-only endpoint, metrics off)."""
    try:
        with rc.HttpClient(host, port, timeout_s=5.0) as h:
            text = h.metrics()
    except Exception:  # noqa: BLE001 - best effort: the numbers above still stand
        return None
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith("rs_cache_hits_total"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def predicted_label(result):
    if "label" in result.outputs:
        return int(result.outputs["label"].to_list()[0])
    probs = result.outputs["probabilities"].to_list()
    return max(range(len(probs)), key=probs.__getitem__)


def main(argv=None):
    ap = argparse.ArgumentParser(description="send the digits test split to ringserve")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--framed-port", type=int, default=9000)
    ap.add_argument("--framed", action="store_true", help="use the framed protocol (default: HTTP)")
    ap.add_argument("--model", default="digits")
    ap.add_argument("--data", default=os.path.join(SRC, "tests", "data", "digits_test.csv"))
    ap.add_argument("--limit", type=int, default=0, help="rows to send (default: all)")
    ap.add_argument("--passes", type=int, default=2, help="times the split is sent (default 2)")
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    ap.add_argument("--show", type=int, default=10, help="predictions printed (default 10; -1: all)")
    ap.add_argument("--no-cache", action="store_true", help="ask the server to bypass its cache")
    a = ap.parse_args(argv)
    if a.passes < 1 or a.concurrency < 1:
        ap.error("--passes and --concurrency must be >= 1")

    rows = load_split(a.data, a.limit)
    if not rows:
        ap.error(f"no rows in {a.data}")
    hits_before = cache_hits_metric(a.host, a.http_port)

    if a.framed:
        client = rc.FramedClient(a.host, a.framed_port)

        def call(px):
            t = rc.Tensor.from_list("pixels", "FP32", [1, 64], px)
            return client.infer(a.model, [t], no_cache=a.no_cache)
    else:
        client = rc.HttpClient(a.host, a.http_port)
        hdrs = {"Cache-Control": "no-cache"} if a.no_cache else None

        def call(px):
            t = rc.Tensor.from_list("pixels", "FP32", [1, 64], px)
            return client.infer(a.model, [t], headers=hdrs)

    def one(job):
        i, px = job
        t0 = time.perf_counter()
        try:
            r = call(px)
        except (rc.ServerError, rc.ProtocolError, OSError) as e:
            return i, None, (time.perf_counter() - t0) * 1e3, e
        return i, r, (time.perf_counter() - t0) * 1e3, None

    proto = f"framed {a.host}:{a.framed_port}" if a.framed else f"HTTP {a.host}:{a.http_port}"
    print(f"sending {len(rows)} digits x {a.passes} pass(es) to model '{a.model}' over {proto}, "
          f"{a.concurrency} in flight")
    shown, failures, correct, total = 0, 0, 0, 0
    latencies, hits_seen = [], 0
    try:
        with ThreadPoolExecutor(max_workers=a.concurrency) as ex:
            for p in range(a.passes):
                jobs = [(i, px) for i, (px, _) in enumerate(rows)]
                for i, r, ms, err in ex.map(one, jobs):
                    label = rows[i][1]
                    latencies.append(ms)
                    total += 1
                    if err is not None:
                        failures += 1
                        print(f"  pass {p + 1} row {i}: error: {err}")
                        continue
                    pred = predicted_label(r)
                    correct += pred == label
                    hits_seen += bool(r.cache_hit)
                    if a.show < 0 or shown < a.show:
                        shown += 1
                        mark = "ok" if pred == label else "WRONG"
                        print(f"  pass {p + 1} row {i:3d}: predicted {pred} label {label} {mark:5s} "
                              f"{ms:7.2f} ms  cache {'hit' if r.cache_hit else 'miss'}")
    finally:
        client.close()

    lat = sorted(latencies)
    ok = total - failures
    print(f"requests: {total}, answered: {ok}, errors: {failures}")
    if ok:
        print(f"accuracy: {correct}/{ok} = {correct / ok:.4f}")
    print(f"latency ms: p50 {percentile(lat, 50):.2f}  p99 {percentile(lat, 99):.2f}  "
          f"max {lat[-1]:.2f}  (client side, {a.concurrency} in flight)")
    print(f"cache hits (responses): {hits_seen} of {ok}")
    hits_after = cache_hits_metric(a.host, a.http_port)
    if hits_before is not None and hits_after is not None:
        print(f"cache hits (/metrics rs_cache_hits_total): +{hits_after - hits_before:.0f} "
              f"(now {hits_after:.0f})")
    else:
        print(f"cache hits (/metrics): unavailable at {a.host}:{a.http_port}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

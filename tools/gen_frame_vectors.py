#!/usr/bin/env python3
"""Generates the framed-protocol test vectors in tests/data/frames/.

    python3 tools/gen_frame_vectors.py [OUT_DIR]      (default tests/data/frames)
    python3 tools/gen_frame_vectors.py --check DIR    exit 1 when DIR differs

One file per vector (format: docs/protocol.md §7). Valid frames come from
the reference codec in clients/python/ringserve_client.py; invalid ones are
valid frames with one thing broken, so each error vector tests one rule.
Deterministic: the same generator always writes the same bytes.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import ringserve_client as rc  # noqa: E402
from ringserve_client import Tensor, Writer  # noqa: E402

MAXP = rc.MAX_PAYLOAD_DEFAULT


def f32(name, shape, values):
    return Tensor.from_list(name, "FP32", shape, values)


X = f32("x", [1, 4], [1.0, 2.0, 3.0, 4.0])


def frame(t, rid, payload, flags=0):
    return rc.encode_frame(t, rid, payload, flags)


def with_header(f: bytes, off: int, new: bytes, fix_crc: bool = True) -> bytes:
    b = bytearray(f)
    b[off:off + len(new)] = new
    if fix_crc:
        b[20:24] = struct.pack("<I", zlib.crc32(bytes(b[:20])))
    return bytes(b)


def reframe(f: bytes, payload: bytes) -> bytes:
    """Same header fields, new payload (length and CRC follow)."""
    _, _, typ, flags, rid, _, _ = struct.unpack_from("<IBBHQII", f)
    return rc.encode_frame(typ, rid, payload, flags)


def tensor_raw(name, dtype_value, dims, data, byte_len=None, pad_byte=0, w=None):
    """A tensor written field by field, so any field can lie."""
    w = w or Writer()
    w.str(name).u8(dtype_value).u8(len(dims))
    for d in dims:
        w.u64(d)
    w.u64(len(data) if byte_len is None else byte_len)
    pad = -len(w.buf) % 8
    w.raw(bytes([pad_byte] * pad))
    w.raw(data)
    return w


def req_prefix(model="m", outputs=()):
    w = Writer().str(model).str("").str("").str("").str("").u32(0).i32(0).u16(len(outputs))
    for o in outputs:
        w.str(o)
    return w


VECTORS: list[tuple[str, str, bytes, str, int]] = []  # name, expect, bytes, why, max_payload


def ok(name, f, why):
    VECTORS.append((name, "ok", f, why, MAXP))


def err(name, status, f, why, max_payload=MAXP):
    VECTORS.append((name, f"error {status} {rc.STATUS[status]}", f, why, max_payload))


def build():
    # ---- valid: one or more per message type
    ir = rc.infer_request_payload("identity", [X])
    ok("infer_request_basic", frame("INFER_REQUEST", 1, ir), "one FP32 [1,4] input, defaults")
    full = rc.infer_request_payload(
        "digits", [f32("pixels", [2, 3], [0.5] * 6), Tensor.from_list("mask", "BOOL", [3], [1, 0, 1])],
        version="2", id="req-42", routing_key="user-7", traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        timeout_us=250000, priority=1, outputs=["probs", "label"])
    ok("infer_request_full", frame("INFER_REQUEST", 0x0102030405060708, full, rc.FLAG_NO_CACHE),
       "every field set, two inputs, two requested outputs, NO_CACHE flag")
    all_dt = []
    samples = {"BOOL": [1, 0], "UINT8": [0, 255], "UINT16": [1, 65535], "UINT32": [1, 2**32 - 1],
               "UINT64": [1, 2**64 - 1], "INT8": [-128, 127], "INT16": [-1, 2], "INT32": [-7, 7],
               "INT64": [-2**63, 2**63 - 1], "FP16": [0.5, -2.0], "FP32": [1.5, -0.25],
               "FP64": [3.25, -1e300], "BYTES": [b"ab", b""], "BF16": [1.0, -2.0]}
    for dt, vals in samples.items():
        all_dt.append(Tensor.from_list("t_" + dt.lower(), dt, [2], vals))
    ok("infer_request_all_dtypes", frame("INFER_REQUEST", 3, rc.infer_request_payload("m", all_dt)),
       "one [2] tensor of each of the 14 dtypes; tensor data 8-aligned")
    ok("infer_request_scalar_and_empty",
       frame("INFER_REQUEST", 4, rc.infer_request_payload(
           "m", [Tensor.from_list("s", "INT32", [], [5]), Tensor.from_list("e", "FP32", [0, 4], [])])),
       "a rank-0 scalar (1 element) and a [0,4] tensor with no data")
    ok("infer_request_no_inputs", frame("INFER_REQUEST", 5, rc.infer_request_payload("m", [])),
       "zero tensors is well-formed (the model decides)")
    ok("submit_basic", frame("SUBMIT", 6, ir), "async request: INFER_REQUEST payload")
    ok("infer_response_basic",
       frame("INFER_RESPONSE", 1, rc.infer_response_payload("identity", [f32("y", [1, 4], [1, 2, 3, 4])], "1", "req-42"),
             rc.FLAG_CACHE_HIT), "one output, CACHE_HIT flag")
    ok("infer_response_bytes",
       frame("INFER_RESPONSE", 2, rc.infer_response_payload(
           "m", [Tensor.from_list("label", "BYTES", [1, 2], [b"seven", b"\xe2\x82\xac"])])),
       "a BYTES output: u32 length + bytes per element")
    items = [(10 + i, [f32("x", [1, 4], [i, i + 1, i + 2, i + 3])]) for i in range(3)]
    ok("batch_request_basic",
       frame("BATCH_REQUEST", 7, rc.batch_request_payload("identity", items, "1", 0, "00-ab-cd-01")),
       "three items of one input each")
    ok("batch_response_mixed",
       frame("BATCH_RESPONSE", 7, rc.batch_response_payload([
           {"item_id": 10, "outputs": [f32("y", [1, 4], [0, 1, 2, 3])]},
           {"item_id": 11, "status": "INVALID_INPUT", "message": "input 'x' has shape [1,5], model wants [-1,4]"},
           {"item_id": 12, "outputs": [f32("y", [1, 4], [2, 3, 4, 5])]}])),
       "per-item status: ok, error, ok")
    ok("register_basic",
       frame("REGISTER", 1, rc.register_payload("worker-1", "127.0.0.1", 9101,
                                                [("digits", "1", 0), ("identity", "", 0)],
                                                token="s3cret", capacity=4, numa_node=0, gpu=-1)),
       "worker registration with two models")
    ok("register_ack", frame("REGISTER_ACK", 1, rc.u64_payload(1000)), "heartbeat every 1000 ms")
    ok("heartbeat_basic", frame("HEARTBEAT", 2, rc.heartbeat_payload("worker-1", 3, 1)), "load report")
    ok("deregister", frame("DEREGISTER", 3, rc.u64_payload(5000)), "drain for 5000 ms")
    ok("ping", frame("PING", 9, rc.u64_payload(1234567890123)), "timestamp")
    ok("pong", frame("PONG", 9, rc.u64_payload(1234567890123)), "echo of the ping value")
    ok("error_overloaded", frame("ERROR", 5, rc.error_payload("OVERLOADED", "queue of model 'digits' is full (256 requests)")),
       "request-level error: connection stays open")
    ok("error_checksum", frame("ERROR", 0, rc.error_payload("CHECKSUM", "header checksum mismatch")),
       "frame-level error: sent before closing")
    ok("submit_ack", frame("SUBMIT_ACK", 6, rc.u64_payload(77)), "async id 77")
    ok("poll", frame("POLL", 8, rc.u64_payload(77)), "poll async id 77")

    base = frame("INFER_REQUEST", 1, ir)
    ping = frame("PING", 9, rc.u64_payload(1))

    # ---- invalid header
    err("truncated_header", "TRUNCATED", base[:10], "10 of 24 header bytes")
    err("truncated_header_23", "TRUNCATED", base[:23], "23 of 24 header bytes")
    err("truncated_payload", "TRUNCATED", base[:-1], "payload one byte short of payload_len")
    err("bad_magic", "BAD_MAGIC", with_header(base, 0, b"HTTP"), "an HTTP client on the framed port")
    err("bad_version", "BAD_VERSION", with_header(base, 4, b"\x02"), "version 2")
    err("bad_checksum", "CHECKSUM", with_header(base, 8, b"\x02", fix_crc=False), "request id changed, CRC not")
    err("bad_checksum_field", "CHECKSUM", with_header(base, 20, b"\0\0\0\0", fix_crc=False), "zero CRC")
    err("bad_type_0", "BAD_TYPE", with_header(ping, 5, b"\x00"), "type 0")
    err("bad_type_99", "BAD_TYPE", with_header(ping, 5, b"\x63"), "type 99")
    err("too_large", "TOO_LARGE", base, "payload over a receiver maximum of 64 bytes", max_payload=64)
    err("too_large_default", "TOO_LARGE",
        with_header(ping[:24], 16, struct.pack("<I", MAXP + 1)),
        "header alone announcing 64 MiB + 1: refused before any payload arrives")

    # ---- invalid payloads: tensors
    def ireq(tensor_writer_bytes, count=1, prefix=None):
        w = prefix or req_prefix()
        w.u32(count).raw(tensor_writer_bytes)
        return frame("INFER_REQUEST", 1, bytes(w.buf))

    fdata = struct.pack("<4f", 1, 2, 3, 4)
    # the tensor's alignment depends on where it starts: build it in place
    def ireq_t(name, dt, dims, data, byte_len=None, pad_byte=0, count=1, extra=b""):
        w = req_prefix().u32(count)
        tensor_raw(name, dt, dims, data, byte_len, pad_byte, w)
        w.raw(extra)
        return frame("INFER_REQUEST", 1, bytes(w.buf))

    err("bad_dtype_0", "BAD_DTYPE", ireq_t("x", 0, [1, 4], fdata), "dtype 0 (INVALID)")
    err("bad_dtype_15", "BAD_DTYPE", ireq_t("x", 15, [1, 4], fdata), "dtype 15 (past BF16)")
    err("shape_mismatch", "SHAPE_MISMATCH", ireq_t("x", 11, [2, 4], fdata), "[2,4] FP32 = 32 bytes, 16 given")
    err("shape_overflow", "SHAPE_MISMATCH", ireq_t("x", 11, [2**62, 8], fdata), "element count overflows")
    err("bytes_bad_tiling", "SHAPE_MISMATCH",
        ireq_t("s", 13, [2], struct.pack("<I", 2) + b"ab" + struct.pack("<I", 5) + b"x"),
        "second BYTES element says 5 bytes, 1 left")
    err("bytes_extra", "SHAPE_MISMATCH",
        ireq_t("s", 13, [1], struct.pack("<I", 2) + b"abcd"), "BYTES elements leave 2 bytes over")
    err("data_past_payload", "TRUNCATED", ireq_t("x", 11, [1, 4], fdata, byte_len=1 << 32),
        "byte_len 4 GiB in a small payload")
    err("rank_over_limit", "MALFORMED", ireq_t("x", 11, [1] * 9 + [4], fdata), "rank 10 (limit 8)")
    err("negative_dim", "MALFORMED", ireq_t("x", 11, [2**64 - 1, 4], fdata), "dim -1")
    err("nonzero_padding", "MALFORMED", ireq_t("x", 11, [1, 4], fdata, pad_byte=0xAA), "padding must be zero")
    err("tensor_count_over_limit", "MALFORMED", ireq_t("x", 11, [1, 4], fdata, count=17),
        "17 tensors (limit 16)")
    err("tensor_count_past_data", "TRUNCATED", ireq_t("x", 11, [1, 4], fdata, count=2),
        "count says 2, one tensor present")
    err("tensor_name_empty", "MALFORMED", ireq_t("", 11, [1, 4], fdata), "tensor name must not be empty")
    err("tensor_name_too_long", "MALFORMED", ireq_t("n" * 65, 11, [1, 4], fdata), "65-byte name (limit 64)")
    w = req_prefix().u32(2)
    tensor_raw("x", 11, [1, 4], fdata, w=w)
    tensor_raw("x", 11, [1, 4], fdata, w=w)
    err("tensor_name_duplicate", "MALFORMED", frame("INFER_REQUEST", 1, bytes(w.buf)), "two inputs named 'x'")

    # ---- invalid payloads: messages
    err("model_name_empty", "MALFORMED", frame("INFER_REQUEST", 1, rc.infer_request_payload("", [X])),
        "model name is required")
    err("model_name_too_long", "MALFORMED", frame("INFER_REQUEST", 1, rc.infer_request_payload("m" * 65, [X])),
        "65-byte model name")
    err("string_past_payload", "TRUNCATED", frame("INFER_REQUEST", 1, Writer().u16(50).raw(b"abc").buf),
        "model name length 50, 3 bytes present")
    err("outputs_over_limit", "MALFORMED",
        frame("INFER_REQUEST", 1, bytes(req_prefix(outputs=[f"o{i}" for i in range(17)]).u32(0).buf)),
        "17 requested outputs (limit 16)")
    err("trailing_bytes", "MALFORMED", reframe(base, ir + b"\0" * 8), "8 bytes after the last field")
    err("empty_payload_infer", "TRUNCATED", reframe(base, b""), "INFER_REQUEST with no payload")
    err("ping_short", "TRUNCATED", reframe(ping, b"\1\2\3\4"), "U64 payload of 4 bytes")
    err("ping_long", "MALFORMED", reframe(ping, b"\0" * 9), "U64 payload of 9 bytes")
    err("error_code_zero", "MALFORMED", frame("ERROR", 1, bytes(Writer().u32(0).str("x").buf)), "ERROR with OK")
    err("error_code_unknown", "MALFORMED", frame("ERROR", 1, bytes(Writer().u32(99).str("x").buf)), "code 99")
    err("error_message_too_long", "MALFORMED", frame("ERROR", 1, bytes(Writer().u32(25).str("e" * 1025).buf)),
        "1025-byte message (limit 1024)")
    bpre = Writer().str("identity").str("").u32(0).str("")
    err("batch_zero_items", "MALFORMED", frame("BATCH_REQUEST", 1, bytes(Writer().raw(bpre.buf).u32(0).buf)),
        "a batch needs at least one item")
    err("batch_too_many_items", "MALFORMED", frame("BATCH_REQUEST", 1, bytes(Writer().raw(bpre.buf).u32(1025).buf)),
        "1025 items (limit 1024)")
    err("batch_item_missing", "TRUNCATED",
        frame("BATCH_REQUEST", 1, rc.batch_request_payload("identity", items)[:-1] + b""),
        "last item's data one byte short")
    bi = Writer().str("identity").str("").u32(0).str("").u32(1).u64(1).u32(1)
    tensor_raw("x", 11, [1, 4], fdata, byte_len=12, w=bi)
    err("batch_item_shape_mismatch", "SHAPE_MISMATCH", frame("BATCH_REQUEST", 1, bytes(bi.buf)),
        "item 0: [1,4] FP32 with 12 bytes")
    err("batch_response_unknown_status", "MALFORMED",
        frame("BATCH_RESPONSE", 1, bytes(Writer().u32(1).u64(1).u32(12).str("x").buf)), "status 12 is not a code")
    err("register_too_many_models", "MALFORMED",
        frame("REGISTER", 1, rc.register_payload("w", "h", 1, [(f"m{i}", "", 0) for i in range(33)])),
        "33 models (limit 32)")
    err("register_worker_id_empty", "MALFORMED", frame("REGISTER", 1, rc.register_payload("", "h", 1, [])),
        "worker id is required")
    err("heartbeat_short", "TRUNCATED", frame("HEARTBEAT", 1, rc.heartbeat_payload("w", 1, 2)[:-2]),
        "queued field cut")
    err("infer_response_model_empty", "MALFORMED",
        frame("INFER_RESPONSE", 1, rc.infer_response_payload("", [X])), "a response names its model")
    w = Writer().str("m").str("").str("").u32(1)
    tensor_raw("y", 99, [1, 4], fdata, w=w)
    err("infer_response_bad_dtype", "BAD_DTYPE", frame("INFER_RESPONSE", 1, bytes(w.buf)), "output dtype 99")
    err("submit_trailing_bytes", "MALFORMED", frame("SUBMIT", 1, ir + b"\1"), "1 byte after the last field")
    err("register_ack_short", "TRUNCATED", frame("REGISTER_ACK", 1, b"\0" * 7), "U64 payload of 7 bytes")
    err("deregister_empty", "TRUNCATED", frame("DEREGISTER", 1, b""), "U64 payload missing")
    err("pong_long", "MALFORMED", frame("PONG", 1, b"\0" * 16), "U64 payload of 16 bytes")
    err("submit_ack_short", "TRUNCATED", frame("SUBMIT_ACK", 1, b"\0" * 3), "U64 payload of 3 bytes")
    err("poll_long", "MALFORMED", frame("POLL", 1, b"\0" * 12), "U64 payload of 12 bytes")


def render(name, expect, data, why, max_payload) -> str:
    lines = [f"# name: {name}"]
    typ = rc.MSG_NAMES.get(data[5], "-") if len(data) > 5 else "-"
    lines.append(f"# type: {typ}")
    lines.append(f"# expect: {expect}")
    lines.append(f"# max_payload: {max_payload}")
    lines.append(f"# why: {why}")
    if expect == "ok":
        f = rc.decode_frame(data, max_payload)
        assert f.size == len(data), name
        assert rc.encode_message(rc.from_json(rc.to_json(f.to_dict()))) == data, name
        lines.append("# decoded: " + json.dumps(rc.to_json(f.to_dict()), sort_keys=True, separators=(",", ":")))
    else:
        code = int(expect.split()[2])
        try:
            rc.decode_frame(data, max_payload)
        except rc.ProtocolError as e:
            assert e.code == code, (name, e)
        else:
            raise AssertionError(f"{name}: decoded but should fail")
    h = data.hex()
    lines += [h[i:i + 64] for i in range(0, len(h), 64)] or [""]
    return "\n".join(lines) + "\n"


def generate() -> dict[str, str]:
    VECTORS.clear()
    build()
    out = {}
    for v in VECTORS:
        assert v[0] + ".hex" not in out, v[0]
        out[v[0] + ".hex"] = render(*v)
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    out_dir = args[0] if args else os.path.join(ROOT, "tests", "data", "frames")
    files = generate()
    if check:
        have = {f for f in os.listdir(out_dir) if f.endswith(".hex")}
        bad = sorted(have ^ set(files))
        for f in sorted(set(files) & have):
            with open(os.path.join(out_dir, f)) as fh:
                if fh.read() != files[f]:
                    bad.append(f)
        if bad:
            print("out of date (run tools/gen_frame_vectors.py):", " ".join(bad))
            return 1
        print(f"{len(files)} vectors up to date")
        return 0
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        if f.endswith(".hex") and f not in files:
            os.remove(os.path.join(out_dir, f))
    for f, text in files.items():
        with open(os.path.join(out_dir, f), "w") as fh:
            fh.write(text)
    print(f"wrote {len(files)} vectors to {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""ringserve_client.py — a stdlib-only Python 3.11 client for ringserve.

Two protocols:
  * the framed binary protocol (docs/protocol.md): `FramedClient`, one
    persistent socket, pipelined: many requests in flight, matched by
    request id, safe to share between threads;
  * HTTP/1.1 KServe v2 (JSON, and the binary tensor data extension with
    Inference-Header-Content-Length): `HttpClient`.

Tensors are `Tensor(name, datatype, shape, data)` where data is the raw
little-endian row-major bytes; build them from plain lists with
`Tensor.from_list` (or from numpy arrays with `Tensor.from_numpy`, when numpy
is installed: it is never required) and read them back with `to_list()`.

The codec functions (`encode_*`, `decode_frame`) are the reference the test
vectors in tests/data/frames/ are generated with and checked against.

Example:
    c = FramedClient("127.0.0.1", 9000)
    x = Tensor.from_list("x", "FP32", [1, 16], [0.0] * 16)
    r = c.infer("identity", [x])
    print(r.outputs["y"].to_list(), r.cache_hit)
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

# ---------------------------------------------------------------- constants

MAGIC = 0x31565352  # b"RSV1"
VERSION = 1
HEADER_BYTES = 24
MAX_PAYLOAD_DEFAULT = 64 << 20
MAX_TENSORS = 16
MAX_RANK = 8
MAX_NAME_BYTES = 64
MAX_STR_BYTES = 256
MAX_ERROR_MSG_BYTES = 1024
MAX_BATCH_ITEMS = 1024
MAX_WORKER_MODELS = 32

FLAG_CACHE_HIT = 1 << 0
FLAG_NO_CACHE = 1 << 1

MSG_TYPES = {
    "INFER_REQUEST": 1, "INFER_RESPONSE": 2, "BATCH_REQUEST": 3, "BATCH_RESPONSE": 4,
    "REGISTER": 5, "REGISTER_ACK": 6, "HEARTBEAT": 7, "DEREGISTER": 8, "PING": 9,
    "PONG": 10, "ERROR": 11, "SUBMIT": 12, "SUBMIT_ACK": 13, "POLL": 14,
}
MSG_NAMES = {v: k for k, v in MSG_TYPES.items()}
U64_TYPES = {"REGISTER_ACK", "DEREGISTER", "PING", "PONG", "SUBMIT_ACK", "POLL"}

# wire value -> (name, element bytes or 0 for BYTES, struct code or None)
DTYPES = {
    1: ("BOOL", 1, "?"), 2: ("UINT8", 1, "B"), 3: ("UINT16", 2, "H"),
    4: ("UINT32", 4, "I"), 5: ("UINT64", 8, "Q"), 6: ("INT8", 1, "b"),
    7: ("INT16", 2, "h"), 8: ("INT32", 4, "i"), 9: ("INT64", 8, "q"),
    10: ("FP16", 2, "e"), 11: ("FP32", 4, "f"), 12: ("FP64", 8, "d"),
    13: ("BYTES", 0, None), 14: ("BF16", 2, None),
}
DTYPE_VALUES = {v[0]: k for k, v in DTYPES.items()}

STATUS = {
    "OK": 0, "BAD_MAGIC": 1, "BAD_VERSION": 2, "TOO_LARGE": 3, "TRUNCATED": 4,
    "CHECKSUM": 5, "BAD_TYPE": 6, "BAD_DTYPE": 7, "SHAPE_MISMATCH": 8, "MALFORMED": 9,
    "INVALID_INPUT": 20, "UNKNOWN_MODEL": 21, "OVERLOADED": 22, "UNAVAILABLE": 23,
    "DEADLINE": 24, "INTERNAL": 25, "BACKEND": 26, "PENDING": 27, "NOT_FOUND": 28,
    "UNAUTHORIZED": 29, "TRANSIENT": 30,
}
STATUS_NAMES = {v: k for k, v in STATUS.items()}
STATUS_HTTP = {
    0: 200, 1: 400, 2: 400, 3: 413, 4: 400, 5: 400, 6: 400, 7: 400, 8: 400, 9: 400,
    20: 400, 21: 404, 22: 429, 23: 503, 24: 504, 25: 500, 26: 500, 27: 202, 28: 404,
    29: 401, 30: 503,
}


def status_is_fatal(code: int) -> bool:
    """Frame-level codes: the connection is closed after the ERROR."""
    return 1 <= code <= 9


class ProtocolError(Exception):
    """A frame that does not decode: code is a status (BAD_MAGIC, ...)."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{STATUS_NAMES.get(code, code)}: {message}")
        self.code = code
        self.status = STATUS_NAMES.get(code, str(code))
        self.message = message


class ServerError(Exception):
    """The server answered with an ERROR frame or an HTTP error."""

    def __init__(self, code: int, message: str, http_status: int | None = None):
        name = STATUS_NAMES.get(code, str(code))
        super().__init__(f"{name}: {message}")
        self.code = code
        self.status = name
        self.message = message
        self.http_status = http_status if http_status is not None else STATUS_HTTP.get(code)


# ---------------------------------------------------------------- tensors

def _bf16_pack(values: Iterable[float]) -> bytes:
    out = bytearray()
    for v in values:
        (bits,) = struct.unpack("<I", struct.pack("<f", float(v)))
        if (bits & 0x7F800000) == 0x7F800000 and bits & 0x007FFFFF:
            h = (bits >> 16) | 0x40  # keep NaN a NaN
        else:
            h = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
        out += struct.pack("<H", h & 0xFFFF)
    return bytes(out)


def _bf16_unpack(data: bytes) -> list[float]:
    n = len(data) // 2
    return [struct.unpack("<f", struct.pack("<I", h << 16))[0]
            for h in struct.unpack(f"<{n}H", data)]


def _elements(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass
class Tensor:
    """A named tensor: raw little-endian row-major bytes plus dtype and shape."""

    name: str
    datatype: str
    shape: list[int]
    data: bytes | memoryview = b""

    @classmethod
    def from_list(cls, name: str, datatype: str, shape: Sequence[int], values: Iterable[Any]) -> "Tensor":
        """values: a flat list (row-major), or nested lists; BYTES: bytes/str items."""
        flat = list(_flatten(values))
        if datatype not in DTYPE_VALUES:
            raise ValueError(f"unknown datatype {datatype!r}")
        if len(flat) != _elements(shape):
            raise ValueError(f"tensor {name!r}: shape {list(shape)} needs {_elements(shape)} "
                             f"values, got {len(flat)}")
        if datatype == "BYTES":
            out = bytearray()
            for v in flat:
                b = v.encode() if isinstance(v, str) else bytes(v)
                out += struct.pack("<I", len(b)) + b
            data = bytes(out)
        elif datatype == "BF16":
            data = _bf16_pack(flat)
        else:
            code = DTYPES[DTYPE_VALUES[datatype]][2]
            data = struct.pack(f"<{len(flat)}{code}", *flat)
        return cls(name, datatype, list(shape), data)

    @classmethod
    def from_numpy(cls, name: str, array: Any) -> "Tensor":
        import numpy as np  # optional

        names = {"bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32",
                 "uint64": "UINT64", "int8": "INT8", "int16": "INT16", "int32": "INT32",
                 "int64": "INT64", "float16": "FP16", "float32": "FP32", "float64": "FP64"}
        a = np.ascontiguousarray(array)
        dt = names.get(a.dtype.name)
        if dt is None:
            raise ValueError(f"numpy dtype {a.dtype} has no ringserve datatype")
        return cls(name, dt, list(a.shape), a.astype(a.dtype.newbyteorder("<")).tobytes())

    def to_list(self) -> list[Any]:
        """Flat row-major values (BYTES: a list of bytes)."""
        data = bytes(self.data)
        if self.datatype == "BYTES":
            out, off = [], 0
            while off < len(data):
                (n,) = struct.unpack_from("<I", data, off)
                out.append(data[off + 4:off + 4 + n])
                off += 4 + n
            return out
        if self.datatype == "BF16":
            return _bf16_unpack(data)
        _, size, code = DTYPES[DTYPE_VALUES[self.datatype]]
        return list(struct.unpack(f"<{len(data) // size}{code}", data))

    def to_numpy(self) -> Any:
        import numpy as np  # optional

        m = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
             "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
             "FP32": "<f4", "FP64": "<f8"}
        if self.datatype not in m:
            return np.array(self.to_list(), dtype=object).reshape(self.shape)
        return np.frombuffer(bytes(self.data), dtype=m[self.datatype]).reshape(self.shape)


def _flatten(values: Any) -> Iterable[Any]:
    if isinstance(values, (list, tuple)):
        for v in values:
            yield from _flatten(v)
    else:
        yield values


# ---------------------------------------------------------------- encoding

class Writer:
    """Payload writer. Offsets are relative to the payload start, which is
    8-aligned relative to the frame (the header is 24 bytes)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, v: int) -> "Writer":
        self.buf += struct.pack("<B", v)
        return self

    def u16(self, v: int) -> "Writer":
        self.buf += struct.pack("<H", v)
        return self

    def u32(self, v: int) -> "Writer":
        self.buf += struct.pack("<I", v & 0xFFFFFFFF)
        return self

    def i32(self, v: int) -> "Writer":
        self.buf += struct.pack("<i", v)
        return self

    def u64(self, v: int) -> "Writer":
        self.buf += struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)
        return self

    def raw(self, b: bytes) -> "Writer":
        self.buf += b
        return self

    def str(self, s: str | bytes) -> "Writer":
        b = s.encode() if isinstance(s, str) else bytes(s)
        if len(b) > 0xFFFF:
            raise ValueError("string over 65535 bytes")
        return self.u16(len(b)).raw(b)

    def pad8(self) -> "Writer":
        self.buf += b"\0" * (-len(self.buf) % 8)
        return self

    def tensor(self, t: Tensor) -> "Writer":
        self.str(t.name).u8(DTYPE_VALUES[t.datatype]).u8(len(t.shape))
        for d in t.shape:
            self.u64(d)
        self.u64(len(t.data)).pad8().raw(bytes(t.data))
        return self

    def tensors(self, ts: Sequence[Tensor]) -> "Writer":
        self.u32(len(ts))
        for t in ts:
            self.tensor(t)
        return self


def encode_frame(msg_type: int | str, request_id: int, payload: bytes, flags: int = 0) -> bytes:
    if isinstance(msg_type, str):
        msg_type = MSG_TYPES[msg_type]
    head = struct.pack("<IBBHQI", MAGIC, VERSION, msg_type, flags, request_id, len(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def infer_request_payload(model: str, inputs: Sequence[Tensor], version: str = "", id: str = "",
                          routing_key: str = "", traceparent: str = "", timeout_us: int = 0,
                          priority: int = 0, outputs: Sequence[str] = ()) -> bytes:
    w = Writer().str(model).str(version).str(id).str(routing_key).str(traceparent)
    w.u32(timeout_us).i32(priority).u16(len(outputs))
    for o in outputs:
        w.str(o)
    return bytes(w.tensors(inputs).buf)


def infer_response_payload(model: str, outputs: Sequence[Tensor], version: str = "",
                           id: str = "") -> bytes:
    return bytes(Writer().str(model).str(version).str(id).tensors(outputs).buf)


def batch_request_payload(model: str, items: Sequence[tuple[int, Sequence[Tensor]]],
                          version: str = "", shard: int = 0, traceparent: str = "") -> bytes:
    w = Writer().str(model).str(version).u32(shard).str(traceparent).u32(len(items))
    for item_id, inputs in items:
        w.u64(item_id).tensors(inputs)
    return bytes(w.buf)


def batch_response_payload(items: Sequence[dict]) -> bytes:
    """items: {"item_id", "outputs"} or {"item_id", "status", "message"}."""
    w = Writer().u32(len(items))
    for it in items:
        status = it.get("status", 0)
        status = STATUS[status] if isinstance(status, str) else status
        w.u64(it["item_id"]).u32(status)
        if status == 0:
            w.tensors(it["outputs"])
        else:
            w.str(_cut_utf8(it.get("message", ""), MAX_ERROR_MSG_BYTES))
    return bytes(w.buf)


def register_payload(worker_id: str, host: str, port: int, models: Sequence[tuple[str, str, int]],
                     token: str = "", capacity: int = 1, numa_node: int = -1, gpu: int = -1) -> bytes:
    w = Writer().str(worker_id).str(host).u16(port).str(token).u32(capacity)
    w.i32(numa_node).i32(gpu).u16(len(models))
    for name, version, shard in models:
        w.str(name).str(version).u32(shard)
    return bytes(w.buf)


def heartbeat_payload(worker_id: str, in_flight: int, queued: int) -> bytes:
    return bytes(Writer().str(worker_id).u32(in_flight).u32(queued).buf)


def error_payload(code: int | str, message: str) -> bytes:
    code = STATUS[code] if isinstance(code, str) else code
    return bytes(Writer().u32(code).str(_cut_utf8(message, MAX_ERROR_MSG_BYTES)).buf)


def u64_payload(value: int) -> bytes:
    return struct.pack("<Q", value)


def _cut_utf8(s: str | bytes, limit: int) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) <= limit:
        return b
    n = limit
    while n > 0 and (b[n] & 0xC0) == 0x80:
        n -= 1
    return b[:n]


def encode_infer_request(request_id: int, model: str, inputs: Sequence[Tensor], flags: int = 0,
                         submit: bool = False, **kw: Any) -> bytes:
    return encode_frame("SUBMIT" if submit else "INFER_REQUEST", request_id,
                        infer_request_payload(model, inputs, **kw), flags)


def encode_message(msg: dict) -> bytes:
    """The inverse of decode_frame(...).to_dict(): {"type", "flags", "request_id", "message"}."""
    t, m = msg["type"], msg["message"]
    if t in ("INFER_REQUEST", "SUBMIT"):
        p = infer_request_payload(m["model"], m["inputs"], m["version"], m["id"], m["routing_key"],
                                  m["traceparent"], m["timeout_us"], m["priority"], m["outputs"])
    elif t == "INFER_RESPONSE":
        p = infer_response_payload(m["model"], m["outputs"], m["version"], m["id"])
    elif t == "BATCH_REQUEST":
        p = batch_request_payload(m["model"], [(i["item_id"], i["inputs"]) for i in m["items"]],
                                  m["version"], m["shard"], m["traceparent"])
    elif t == "BATCH_RESPONSE":
        p = batch_response_payload(m["items"])
    elif t == "REGISTER":
        p = register_payload(m["worker_id"], m["host"], m["port"],
                             [(x["name"], x["version"], x["shard"]) for x in m["models"]],
                             m["token"], m["capacity"], m["numa_node"], m["gpu"])
    elif t == "HEARTBEAT":
        p = heartbeat_payload(m["worker_id"], m["in_flight"], m["queued"])
    elif t == "ERROR":
        p = error_payload(m["code"], m["message"])
    else:
        p = u64_payload(m["value"])
    return encode_frame(t, msg["request_id"], p, msg.get("flags", 0))


# ---------------------------------------------------------------- decoding

class _Reader:
    def __init__(self, payload: memoryview):
        self.b = payload
        self.off = 0

    def need(self, n: int, what: str) -> None:
        left = len(self.b) - self.off
        if left < n:
            raise ProtocolError(STATUS["TRUNCATED"], f"payload truncated: {what} needs {n} bytes "
                                f"at payload offset {self.off} but only {left} remain")

    def u8(self, what: str) -> int:
        self.need(1, what)
        v = self.b[self.off]
        self.off += 1
        return v

    def unpack(self, fmt: str, size: int, what: str) -> int:
        self.need(size, what)
        (v,) = struct.unpack_from(fmt, self.b, self.off)
        self.off += size
        return v

    def u16(self, what: str) -> int:
        return self.unpack("<H", 2, what)

    def u32(self, what: str) -> int:
        return self.unpack("<I", 4, what)

    def i32(self, what: str) -> int:
        return self.unpack("<i", 4, what)

    def u64(self, what: str) -> int:
        return self.unpack("<Q", 8, what)

    def str(self, what: str, lo: int, hi: int) -> str:
        n = self.u16(what)
        if n < lo:
            raise ProtocolError(STATUS["MALFORMED"], f"{what} is empty (at payload offset {self.off - 2})")
        if n > hi:
            raise ProtocolError(STATUS["MALFORMED"], f"{what} is {n} bytes long, over the limit of "
                                f"{hi} (at payload offset {self.off - 2})")
        self.need(n, what)
        s = bytes(self.b[self.off:self.off + n]).decode("utf-8", "replace")
        self.off += n
        return s

    def end(self, msg: str) -> None:
        if self.off != len(self.b):
            raise ProtocolError(STATUS["MALFORMED"], f"{len(self.b) - self.off} trailing bytes "
                                f"after the {msg} payload (at offset {self.off})")

    def tensor(self, lst: str, idx: int) -> Tensor:
        name = self.str(f"{lst} tensor {idx} name", 1, MAX_NAME_BYTES)
        dt = self.u8(f"{lst} tensor '{name}' header")
        if dt not in DTYPES:
            raise ProtocolError(STATUS["BAD_DTYPE"], f"{lst} tensor '{name}': unknown dtype {dt} "
                                f"(valid: 1..{len(DTYPES)})")
        rank = self.u8(f"{lst} tensor '{name}' header")
        if rank > MAX_RANK:
            raise ProtocolError(STATUS["MALFORMED"], f"{lst} tensor '{name}': rank {rank} is over "
                                f"the limit of {MAX_RANK}")
        shape = []
        for i in range(rank):
            d = self.u64(f"{lst} tensor '{name}' dims")
            if d >= 1 << 63:
                raise ProtocolError(STATUS["MALFORMED"], f"{lst} tensor '{name}': dim {i} is "
                                    f"{d - (1 << 64)}; dims must be >= 0")
            shape.append(d)
        blen = self.u64(f"{lst} tensor '{name}' byte length")
        pad = -self.off % 8
        self.need(pad, f"{lst} tensor '{name}' alignment padding")
        for i in range(pad):
            if self.b[self.off + i]:
                raise ProtocolError(STATUS["MALFORMED"], f"{lst} tensor '{name}': padding byte at "
                                    f"payload offset {self.off + i} is not 0")
        self.off += pad
        left = len(self.b) - self.off
        if left < blen:
            raise ProtocolError(STATUS["TRUNCATED"], f"payload truncated: {lst} tensor '{name}' data "
                                f"needs {blen} bytes at payload offset {self.off} but only {left} remain")
        data = self.b[self.off:self.off + blen]
        self.off += blen
        t = Tensor(name, DTYPES[dt][0], shape, data)
        _check_tensor(t, lst)
        return t

    def tensors(self, lst: str) -> list[Tensor]:
        n = self.u32(f"{lst} tensor count")
        if n > MAX_TENSORS:
            raise ProtocolError(STATUS["MALFORMED"], f"{lst} tensor count {n} is over the limit "
                                f"of {MAX_TENSORS}")
        out: list[Tensor] = []
        for i in range(n):
            t = self.tensor(lst, i)
            if any(o.name == t.name for o in out):
                raise ProtocolError(STATUS["MALFORMED"], f"{lst} tensor name '{t.name}' appears twice")
            out.append(t)
        return out


def _check_tensor(t: Tensor, lst: str) -> None:
    n = _elements(t.shape)
    size = DTYPES[DTYPE_VALUES[t.datatype]][1]
    if n >= 1 << 63:
        raise ProtocolError(STATUS["SHAPE_MISMATCH"], f"{lst} tensor '{t.name}': shape {t.shape} "
                            "has a negative dim or its element count overflows")
    if size:
        if n * size != len(t.data):
            raise ProtocolError(STATUS["SHAPE_MISMATCH"], f"{lst} tensor '{t.name}': shape "
                                f"{t.shape} has {n} {t.datatype} elements = {n * size} bytes but "
                                f"its byte length is {len(t.data)}")
        return
    off, blen = 0, len(t.data)
    for i in range(n):
        if blen - off < 4:
            raise ProtocolError(STATUS["SHAPE_MISMATCH"], f"{lst} tensor '{t.name}': BYTES element "
                                f"{i} of {n} has no room for its 4-byte length")
        (el,) = struct.unpack_from("<I", t.data, off)
        off += 4
        if blen - off < el:
            raise ProtocolError(STATUS["SHAPE_MISMATCH"], f"{lst} tensor '{t.name}': BYTES element "
                                f"{i} says {el} bytes but only {blen - off} remain")
        off += el
    if off != blen:
        raise ProtocolError(STATUS["SHAPE_MISMATCH"], f"{lst} tensor '{t.name}': {n} BYTES elements "
                            f"take {off} bytes but its byte length is {blen}")


@dataclass
class Frame:
    type: str
    flags: int
    request_id: int
    message: dict = field(default_factory=dict)
    size: int = 0

    def to_dict(self) -> dict:
        return {"type": self.type, "flags": self.flags, "request_id": self.request_id,
                "message": self.message}


def _tensor_json(t: Tensor) -> dict:
    return {"name": t.name, "datatype": t.datatype, "shape": list(t.shape),
            "data_hex": bytes(t.data).hex()}


def to_json(obj: Any) -> Any:
    """Decoded messages as JSON-able values (tensors as data_hex), the
    `decoded` form of tests/data/frames/."""
    if isinstance(obj, Tensor):
        return _tensor_json(obj)
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    return obj


def from_json(obj: Any) -> Any:
    if isinstance(obj, dict) and "data_hex" in obj:
        return Tensor(obj["name"], obj["datatype"], list(obj["shape"]), bytes.fromhex(obj["data_hex"]))
    if isinstance(obj, dict):
        return {k: from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json(v) for v in obj]
    return obj


def check_header(buf: bytes | memoryview, max_payload: int = MAX_PAYLOAD_DEFAULT) -> tuple[int, int, int, int, int] | None:
    """None when fewer than 24 bytes; else (type, flags, request_id,
    payload_len, frame_size); raises ProtocolError for a bad header."""
    if len(buf) < HEADER_BYTES:
        return None
    magic, ver, typ, flags, rid, plen, crc = struct.unpack_from("<IBBHQII", buf, 0)
    if magic != MAGIC:
        raise ProtocolError(STATUS["BAD_MAGIC"], f"bad magic 0x{magic:08x} (expected 0x{MAGIC:08x}, "
                            "the bytes \"RSV1\"): not a ringserve frame")
    if ver != VERSION:
        raise ProtocolError(STATUS["BAD_VERSION"], f"unsupported protocol version {ver} "
                            f"(this client speaks {VERSION})")
    want = zlib.crc32(bytes(buf[:20]))
    if want != crc:
        raise ProtocolError(STATUS["CHECKSUM"], f"header checksum mismatch: header says 0x{crc:08x}, "
                            f"CRC-32 of bytes 0..19 is 0x{want:08x}")
    if typ not in MSG_NAMES:
        raise ProtocolError(STATUS["BAD_TYPE"], f"unknown message type {typ} (valid: 1..{len(MSG_NAMES)})")
    if plen > max_payload:
        raise ProtocolError(STATUS["TOO_LARGE"], f"payload length {plen} is over the maximum of "
                            f"{max_payload} bytes")
    return typ, flags, rid, plen, HEADER_BYTES + plen


def decode_payload(msg_type: str, payload: bytes | memoryview) -> dict:
    r = _Reader(memoryview(payload))
    if msg_type in ("INFER_REQUEST", "SUBMIT"):
        m: dict[str, Any] = {
            "model": r.str("model name", 1, MAX_NAME_BYTES),
            "version": r.str("model version", 0, MAX_NAME_BYTES),
            "id": r.str("request id", 0, MAX_STR_BYTES),
            "routing_key": r.str("routing key", 0, MAX_STR_BYTES),
            "traceparent": r.str("traceparent", 0, MAX_STR_BYTES),
            "timeout_us": r.u32("timeout_us"),
            "priority": r.i32("priority"),
        }
        n = r.u16("requested output count")
        if n > MAX_TENSORS:
            raise ProtocolError(STATUS["MALFORMED"], f"requested output count {n} is over the limit of {MAX_TENSORS}")
        m["outputs"] = [r.str(f"requested output {i} name", 1, MAX_NAME_BYTES) for i in range(n)]
        m["inputs"] = r.tensors("input")
        r.end("INFER_REQUEST")
    elif msg_type == "INFER_RESPONSE":
        m = {"model": r.str("model name", 1, MAX_NAME_BYTES),
             "version": r.str("model version", 0, MAX_NAME_BYTES),
             "id": r.str("request id", 0, MAX_STR_BYTES)}
        m["outputs"] = r.tensors("output")
        r.end("INFER_RESPONSE")
    elif msg_type == "ERROR":
        code = r.u32("error code")
        if code == 0 or code not in STATUS_NAMES:
            raise ProtocolError(STATUS["MALFORMED"], f"ERROR frame carries code {code}, which is not an error code")
        m = {"code": code, "status": STATUS_NAMES[code],
             "message": r.str("error message", 0, MAX_ERROR_MSG_BYTES)}
        r.end("ERROR")
    elif msg_type == "BATCH_REQUEST":
        m = {"model": r.str("model name", 1, MAX_NAME_BYTES),
             "version": r.str("model version", 0, MAX_NAME_BYTES),
             "shard": r.u32("shard"), "traceparent": r.str("traceparent", 0, MAX_STR_BYTES)}
        n = _item_count(r)
        m["items"] = []
        for i in range(n):
            item_id = r.u64(f"batch item {i} id")
            m["items"].append({"item_id": item_id, "inputs": r.tensors(f"item {i} input")})
        r.end("BATCH_REQUEST")
    elif msg_type == "BATCH_RESPONSE":
        n = _item_count(r)
        items = []
        for i in range(n):
            item_id = r.u64(f"batch item {i} header")
            status = r.u32(f"batch item {i} header")
            if status == 0:
                items.append({"item_id": item_id, "status": "OK", "outputs": r.tensors(f"item {i} output")})
                continue
            if status not in STATUS_NAMES:
                raise ProtocolError(STATUS["MALFORMED"], f"batch item {i} has unknown status code {status}")
            items.append({"item_id": item_id, "status": STATUS_NAMES[status],
                          "message": r.str(f"batch item {i} error message", 0, MAX_ERROR_MSG_BYTES)})
        m = {"items": items}
        r.end("BATCH_RESPONSE")
    elif msg_type == "REGISTER":
        m = {"worker_id": r.str("worker id", 1, MAX_NAME_BYTES),
             "host": r.str("worker host", 0, MAX_STR_BYTES), "port": r.u16("worker port"),
             "token": r.str("cluster token", 0, MAX_STR_BYTES), "capacity": r.u32("capacity"),
             "numa_node": r.i32("numa node"), "gpu": r.i32("gpu")}
        n = r.u16("model count")
        if n > MAX_WORKER_MODELS:
            raise ProtocolError(STATUS["MALFORMED"], f"model count {n} is over the limit of {MAX_WORKER_MODELS}")
        m["models"] = [{"name": r.str(f"model {i} name", 1, MAX_NAME_BYTES),
                        "version": r.str(f"model {i} version", 0, MAX_NAME_BYTES),
                        "shard": r.u32(f"model {i} shard")} for i in range(n)]
        r.end("REGISTER")
    elif msg_type == "HEARTBEAT":
        m = {"worker_id": r.str("worker id", 1, MAX_NAME_BYTES), "in_flight": r.u32("in_flight"),
             "queued": r.u32("queued")}
        r.end("HEARTBEAT")
    else:
        m = {"value": r.u64("u64 value")}
        r.end("u64")
    return m


def _item_count(r: _Reader) -> int:
    n = r.u32("batch item count")
    if n == 0 or n > MAX_BATCH_ITEMS:
        raise ProtocolError(STATUS["MALFORMED"], f"batch item count {n} is outside 1..{MAX_BATCH_ITEMS}")
    return n


def decode_frame(buf: bytes | bytearray | memoryview, max_payload: int = MAX_PAYLOAD_DEFAULT) -> Frame:
    """Decodes the frame at the start of buf (tensor data: memoryviews into
    buf). Raises ProtocolError; a buffer shorter than its frame is TRUNCATED."""
    mv = memoryview(buf)
    if len(mv) < HEADER_BYTES:
        raise ProtocolError(STATUS["TRUNCATED"], f"truncated header: {len(mv)} of {HEADER_BYTES} bytes")
    typ, flags, rid, plen, size = check_header(mv, max_payload)  # type: ignore[misc]
    if size > len(mv):
        raise ProtocolError(STATUS["TRUNCATED"], f"truncated frame: header announces {plen} payload "
                            f"bytes, {len(mv) - HEADER_BYTES} present")
    name = MSG_NAMES[typ]
    return Frame(name, flags, rid, decode_payload(name, mv[HEADER_BYTES:size]), size)


# ---------------------------------------------------------------- framed client

@dataclass
class InferResult:
    model: str
    version: str
    id: str
    outputs: dict[str, Tensor]
    cache_hit: bool = False
    request_id: int = 0


class FramedClient:
    """One persistent TCP connection speaking the framed protocol.

    Thread-safe and pipelined: any number of threads may call infer() at
    once; requests go out as they come, a reader thread matches replies by
    request id (the server may answer out of order)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, timeout_s: float = 30.0,
                 max_payload: int = MAX_PAYLOAD_DEFAULT):
        self.timeout_s = timeout_s
        self.max_payload = max_payload
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(None)  # the reader blocks; callers time out on their futures
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._next_id = 1
        self._pending: dict[int, Future] = {}
        self._closed: Exception | None = None
        self._reader = threading.Thread(target=self._read_loop, name="ringserve-reader", daemon=True)
        self._reader.start()

    # -- plumbing
    def _call(self, msg_type: str, payload: bytes, flags: int = 0) -> Frame:
        return self._wait(self._send(msg_type, payload, flags))

    def _wait(self, fut: Future) -> Frame:
        """The reply; on timeout the request is forgotten (a late reply is dropped)."""
        try:
            return fut.result(self.timeout_s)
        except TimeoutError:
            with self._lock:
                self._pending.pop(getattr(fut, "rs_request_id", None), None)
            raise

    def _send(self, msg_type: str, payload: bytes, flags: int = 0) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise ConnectionError(f"connection closed: {self._closed}")
            rid = self._next_id
            self._next_id += 1
            self._pending[rid] = fut
        fut.rs_request_id = rid  # type: ignore[attr-defined]  (to forget it on timeout)
        frame = encode_frame(msg_type, rid, payload, flags)
        try:
            with self._send_lock:
                self._sock.sendall(frame)
        except OSError as e:
            self._fail(e)
        return fut

    def _read_loop(self) -> None:
        buf = bytearray()
        try:
            while True:
                chunk = self._sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                buf += chunk
                off = 0  # frames are cut at offsets; the buffer is compacted once per recv
                while True:
                    hdr = check_header(bytes(buf[off:off + HEADER_BYTES]), self.max_payload)
                    if hdr is None or off + hdr[4] > len(buf):
                        break
                    size = hdr[4]
                    frame = decode_frame(bytes(buf[off:off + size]), self.max_payload)
                    off += size
                    with self._lock:
                        fut = self._pending.pop(frame.request_id, None)
                    if fut is not None:
                        fut.set_result(frame)
                    elif frame.type == "ERROR":  # a fatal error not tied to a request
                        raise ServerError(frame.message["code"], frame.message["message"])
                del buf[:off]
        except Exception as e:  # noqa: BLE001 — every waiter must learn why
            self._fail(e)

    def _fail(self, e: Exception) -> None:
        with self._lock:
            if self._closed is None:
                self._closed = e
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection failed: {e}") if not isinstance(e, ServerError) else e)

    def close(self) -> None:
        with self._lock:
            if self._closed is None:
                self._closed = ConnectionError("closed by the client")
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(self.timeout_s)

    def __enter__(self) -> "FramedClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @staticmethod
    def _result(frame: Frame) -> InferResult:
        if frame.type == "ERROR":
            raise ServerError(frame.message["code"], frame.message["message"])
        if frame.type != "INFER_RESPONSE":
            raise ProtocolError(STATUS["BAD_TYPE"], f"expected INFER_RESPONSE, got {frame.type}")
        m = frame.message
        outs = {t.name: Tensor(t.name, t.datatype, t.shape, bytes(t.data)) for t in m["outputs"]}
        return InferResult(m["model"], m["version"], m["id"], outs,
                           bool(frame.flags & FLAG_CACHE_HIT), frame.request_id)

    # -- API
    def infer_async(self, model: str, inputs: Sequence[Tensor], no_cache: bool = False,
                    **kw: Any) -> Future:
        """Sends now; the Future gives the Frame (pass it to result())."""
        return self._send("INFER_REQUEST", infer_request_payload(model, inputs, **kw),
                          FLAG_NO_CACHE if no_cache else 0)

    def result(self, fut: Future) -> InferResult:
        return self._result(self._wait(fut))

    def infer(self, model: str, inputs: Sequence[Tensor], no_cache: bool = False, **kw: Any) -> InferResult:
        """kw: version, id, routing_key, traceparent, timeout_us, priority, outputs."""
        return self.result(self.infer_async(model, inputs, no_cache, **kw))

    def infer_many(self, requests: Sequence[tuple[str, Sequence[Tensor]]], **kw: Any) -> list[InferResult | ServerError]:
        """Pipelines every request on this connection, then waits for all.
        Each entry is its InferResult or the ServerError it got."""
        futs = [self.infer_async(m, ins, **kw) for m, ins in requests]
        out: list[InferResult | ServerError] = []
        for f in futs:
            try:
                out.append(self.result(f))
            except ServerError as e:
                out.append(e)
        return out

    def submit(self, model: str, inputs: Sequence[Tensor], **kw: Any) -> int:
        """Async inference: returns the id to poll()."""
        f = self._call("SUBMIT", infer_request_payload(model, inputs, **kw))
        if f.type == "ERROR":
            raise ServerError(f.message["code"], f.message["message"])
        if f.type != "SUBMIT_ACK":
            raise ProtocolError(STATUS["BAD_TYPE"], f"expected SUBMIT_ACK, got {f.type}")
        return f.message["value"]

    def poll(self, async_id: int) -> InferResult | None:
        """The result, or None while it is pending; ServerError NOT_FOUND for an unknown id."""
        f = self._call("POLL", u64_payload(async_id))
        if f.type == "ERROR" and f.message["code"] == STATUS["PENDING"]:
            return None
        return self._result(f)

    def ping(self, value: int = 0) -> int:
        f = self._call("PING", u64_payload(value))
        if f.type != "PONG":
            raise ProtocolError(STATUS["BAD_TYPE"], f"expected PONG, got {f.type}")
        return f.message["value"]


# ---------------------------------------------------------------- HTTP client

class HttpClient:
    """KServe v2 over HTTP/1.1 keep-alive. One connection per thread, so an
    instance can be shared by threads (infer_many)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, timeout_s: float = 30.0):
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._all_lock = threading.Lock()

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self._local.conn = c
            with self._all_lock:
                self._all.append(c)
        return c

    def close(self) -> None:
        """Closes every connection this client opened (all threads)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Raw request on the keep-alive connection (reconnects once if the
        server closed it). Returns (status, headers lower-cased, body)."""
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.request(method, path, body=body, headers=headers or {})
                r = c.getresponse()
                data = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    c.close()
                    self._local.conn = None
                return r.status, hdrs, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                c.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, ok: Iterable[int] = (200,)) -> Any:
        st, _, body = self.request(method, path)
        if st not in ok:
            raise _http_error(st, body)
        return json.loads(body) if body else None

    def live(self) -> bool:
        return self.request("GET", "/v2/health/live")[0] == 200

    def ready(self) -> bool:
        return self.request("GET", "/v2/health/ready")[0] == 200

    def server_metadata(self) -> Any:
        return self._json("GET", "/v2")

    def model_metadata(self, model: str, version: str | None = None) -> Any:
        return self._json("GET", _model_path(model, version))

    def model_ready(self, model: str, version: str | None = None) -> bool:
        return self.request("GET", _model_path(model, version) + "/ready")[0] == 200

    def metrics(self) -> str:
        st, _, body = self.request("GET", "/metrics")
        if st != 200:
            raise _http_error(st, body)
        return body.decode()

    def infer(self, model: str, inputs: Sequence[Tensor], version: str | None = None,
              outputs: Sequence[str] = (), binary: bool = False, binary_outputs: bool = False,
              id: str | None = None, parameters: dict | None = None,
              headers: dict[str, str] | None = None) -> InferResult:
        """binary: inputs as the binary tensor extension; binary_outputs: ask
        for outputs the same way."""
        body, hdrs = encode_http_infer(inputs, outputs, binary, binary_outputs, id, parameters)
        hdrs.update(headers or {})
        st, rh, data = self.request("POST", _model_path(model, version) + "/infer", body, hdrs)
        if st != 200:
            raise _http_error(st, data)
        return decode_http_infer(data, rh)

    def infer_submit(self, model: str, inputs: Sequence[Tensor], **kw: Any) -> str:
        """Asynchronous mode: 202 with the request id to get_request()."""
        params = dict(kw.pop("parameters", None) or {})
        params["async"] = True
        body, hdrs = encode_http_infer(inputs, kw.pop("outputs", ()), kw.pop("binary", False),
                                       False, kw.pop("id", None), params)
        st, _, data = self.request("POST", _model_path(model, kw.pop("version", None)) + "/infer",
                                   body, hdrs)
        if st != 202:
            raise _http_error(st, data)
        return json.loads(data)["id"]

    def get_request(self, request_id: str) -> InferResult | None:
        """None while pending (202); ServerError 404 when unknown or expired."""
        st, rh, data = self.request("GET", f"/v2/requests/{request_id}")
        if st == 202:
            return None
        if st != 200:
            raise _http_error(st, data)
        return decode_http_infer(data, rh)

    def infer_many(self, requests: Sequence[tuple[str, Sequence[Tensor]]], concurrency: int = 8,
                   **kw: Any) -> list[InferResult | ServerError]:
        def one(req: tuple[str, Sequence[Tensor]]) -> InferResult | ServerError:
            try:
                return self.infer(req[0], req[1], **kw)
            except ServerError as e:
                return e

        with ThreadPoolExecutor(max_workers=concurrency) as ex:
            return list(ex.map(one, requests))


def _model_path(model: str, version: str | None) -> str:
    return f"/v2/models/{model}" + (f"/versions/{version}" if version else "")


_HTTP_STATUS = {400: "INVALID_INPUT", 404: "UNKNOWN_MODEL", 413: "TOO_LARGE", 429: "OVERLOADED",
                503: "UNAVAILABLE", 504: "DEADLINE", 500: "INTERNAL"}


def _http_error(status: int, body: bytes) -> ServerError:
    try:
        msg = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        msg = body.decode("utf-8", "replace")
    return ServerError(STATUS[_HTTP_STATUS.get(status, "INTERNAL")], msg, status)


def encode_http_infer(inputs: Sequence[Tensor], outputs: Sequence[str] = (), binary: bool = False,
                      binary_outputs: bool = False, id: str | None = None,
                      parameters: dict | None = None) -> tuple[bytes, dict[str, str]]:
    """The KServe v2 request body and headers (JSON or binary extension)."""
    req: dict[str, Any] = {"inputs": []}
    if id is not None:
        req["id"] = id
    if parameters:
        req["parameters"] = parameters
    blobs = []
    for t in inputs:
        d: dict[str, Any] = {"name": t.name, "shape": list(t.shape), "datatype": t.datatype}
        if binary:
            d["parameters"] = {"binary_data_size": len(t.data)}
            blobs.append(bytes(t.data))
        else:
            vals = t.to_list()
            if t.datatype == "BYTES":
                vals = [v.decode("utf-8", "replace") for v in vals]
            d["data"] = vals
        req["inputs"].append(d)
    if outputs or binary_outputs:
        names = list(outputs)
        req["outputs"] = [{"name": n, **({"parameters": {"binary_data": True}} if binary_outputs else {})}
                          for n in names]
        if binary_outputs and not names:
            req.setdefault("parameters", {})["binary_data_output"] = True
            del req["outputs"]
    head = json.dumps(req, separators=(",", ":")).encode()
    hdrs = {"Content-Type": "application/json"}
    if binary:
        hdrs = {"Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(head))}
        return head + b"".join(blobs), hdrs
    return head, hdrs


def decode_http_infer(body: bytes, headers: dict[str, str]) -> InferResult:
    """A KServe v2 response, JSON or with binary outputs."""
    hlen = headers.get("inference-header-content-length")
    if hlen is not None:
        n = int(hlen)
        head, rest = json.loads(body[:n]), memoryview(body)[n:]
    else:
        head, rest = json.loads(body), memoryview(b"")
    outs: dict[str, Tensor] = {}
    off = 0
    for o in head.get("outputs", []):
        p = o.get("parameters") or {}
        if "binary_data_size" in p:
            size = int(p["binary_data_size"])
            if off + size > len(rest):
                raise ProtocolError(STATUS["TRUNCATED"], f"output {o['name']!r}: binary data "
                                    f"needs {size} bytes, {len(rest) - off} left")
            t = Tensor(o["name"], o["datatype"], list(o["shape"]), bytes(rest[off:off + size]))
            off += size
        else:
            vals = o.get("data", [])
            if o["datatype"] == "BYTES":
                vals = [v.encode() if isinstance(v, str) else bytes(v) for v in _flatten(vals)]
            t = Tensor.from_list(o["name"], o["datatype"], o["shape"], vals)
        outs[t.name] = t
    params = head.get("parameters") or {}
    # the coordinator says it in a header (X-Ringserve-Cache: hit|miss)
    hit = headers.get("x-ringserve-cache", "").lower() == "hit" or bool(params.get("cache_hit", False))
    return InferResult(head.get("model_name", ""), head.get("model_version", ""), head.get("id", ""),
                       outs, hit)


# ---------------------------------------------------------------- command line

def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="ringserve client (framed or HTTP)")
    ap.add_argument("--framed", metavar="HOST:PORT", help="framed protocol endpoint")
    ap.add_argument("--http", metavar="HOST:PORT", help="HTTP endpoint")
    ap.add_argument("--model", default="identity")
    ap.add_argument("--input", default="x", help="input tensor name")
    ap.add_argument("--datatype", default="FP32")
    ap.add_argument("--shape", default="1,16")
    ap.add_argument("--values", default=None, help="comma-separated values (default 0..n-1)")
    ap.add_argument("--ping", action="store_true")
    a = ap.parse_args(argv)
    shape = [int(x) for x in a.shape.split(",") if x]
    vals = ([float(v) for v in a.values.split(",")] if a.values
            else list(range(_elements(shape))))
    if a.datatype not in ("FP16", "FP32", "FP64", "BF16"):
        vals = [int(v) for v in vals]
    t = Tensor.from_list(a.input, a.datatype, shape, vals)
    if a.framed:
        host, port = a.framed.rsplit(":", 1)
        with FramedClient(host, int(port)) as c:
            if a.ping:
                print("pong", c.ping(1))
                return 0
            r = c.infer(a.model, [t])
    elif a.http:
        host, port = a.http.rsplit(":", 1)
        r = HttpClient(host, int(port)).infer(a.model, [t])
    else:
        ap.error("give --framed or --http")
    for name, o in r.outputs.items():
        print(f"{name} {o.datatype} {o.shape} {o.to_list()}")
    print(f"cache_hit={r.cache_hit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())

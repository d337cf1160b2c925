/* frame.h — the framed binary protocol (docs/protocol.md is the spec).
 *
 * Every message is a 24-byte little-endian header followed by a payload:
 *   off size field
 *     0    4 magic          0x31565352 ("RSV1" as bytes 'R' 'S' 'V' '1')
 *     4    1 version        1
 *     5    1 type           rs_msg_type
 *     6    2 flags          rs_frame_flags
 *     8    8 request_id     chosen by the requester, echoed in the reply
 *    16    4 payload_len    bytes after the header (<= configured max)
 *    20    4 header_crc     CRC-32 (zlib / IEEE) of bytes 0..19
 * Strings are u16 length + bytes, tensors are 8-byte aligned relative to the
 * start of the frame (docs/protocol.md gives every payload byte by byte).
 *
 * Decoding never copies tensor data: views point into the receive buffer and
 * are valid as long as that buffer is (the on_data call). Encoding writes
 * into a caller-supplied buffer (a send buffer) through rs_fw. */
#ifndef RS_FRAME_H
#define RS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/tensor.h"

#define RS_FRAME_MAGIC 0x31565352u
#define RS_FRAME_VERSION 1
#define RS_FRAME_HEADER_BYTES 24
#define RS_FRAME_MAX_PAYLOAD_DEFAULT (64u << 20)
#define RS_MAX_BATCH_ITEMS 1024
#define RS_MAX_WORKER_MODELS 32
#define RS_MAX_ERROR_MSG_BYTES 1024
#define RS_MAX_STR_BYTES 256      /* ids, routing keys, traceparent, host, token */

typedef enum rs_msg_type {
    RS_MSG_INFER_REQUEST = 1,  /* client -> coordinator (or straight to a worker) */
    RS_MSG_INFER_RESPONSE = 2,
    RS_MSG_BATCH_REQUEST = 3,  /* coordinator -> worker */
    RS_MSG_BATCH_RESPONSE = 4,
    RS_MSG_REGISTER = 5,       /* worker -> coordinator */
    RS_MSG_REGISTER_ACK = 6,
    RS_MSG_HEARTBEAT = 7,
    RS_MSG_DEREGISTER = 8,
    RS_MSG_PING = 9,
    RS_MSG_PONG = 10,
    RS_MSG_ERROR = 11,
    RS_MSG_SUBMIT = 12,        /* async inference: answered by SUBMIT_ACK */
    RS_MSG_SUBMIT_ACK = 13,
    RS_MSG_POLL = 14,          /* answered by INFER_RESPONSE, or ERROR PENDING/NOT_FOUND */
    RS_MSG_TYPE_COUNT_
} rs_msg_type;

typedef enum rs_frame_flags {
    RS_FRAME_F_CACHE_HIT = 1u << 0, /* response served from the cache */
    RS_FRAME_F_NO_CACHE = 1u << 1,  /* request: bypass the cache */
} rs_frame_flags;

/* Status / error codes: on the wire in ERROR frames and batch items. */
typedef enum rs_status {
    RS_OK = 0,
    /* frame-level: the connection is closed after the ERROR frame */
    RS_E_BAD_MAGIC = 1,
    RS_E_BAD_VERSION = 2,
    RS_E_TOO_LARGE = 3,
    RS_E_TRUNCATED = 4,
    RS_E_CHECKSUM = 5,
    RS_E_BAD_TYPE = 6,
    RS_E_BAD_DTYPE = 7,
    RS_E_SHAPE_MISMATCH = 8,
    RS_E_MALFORMED = 9,
    /* request-level: the connection stays open */
    RS_E_INVALID_INPUT = 20,   /* HTTP 400 */
    RS_E_UNKNOWN_MODEL = 21,   /* 404 */
    RS_E_OVERLOADED = 22,      /* 429 */
    RS_E_UNAVAILABLE = 23,     /* 503: no healthy worker, draining */
    RS_E_DEADLINE = 24,        /* 504 */
    RS_E_INTERNAL = 25,        /* 500 */
    RS_E_BACKEND = 26,         /* 500: the model failed */
    RS_E_PENDING = 27,         /* async result not ready (202) */
    RS_E_NOT_FOUND = 28,       /* 404: unknown async id */
    RS_E_UNAUTHORIZED = 29,    /* registration refused */
    RS_E_TRANSIENT = 30,       /* worker-side transient: retry elsewhere */
} rs_status;

const char *rs_status_name(rs_status st);
int rs_status_http(rs_status st);
/* True for codes after which the connection must be closed. */
bool rs_status_is_fatal(rs_status st);

typedef struct rs_frame_header {
    uint32_t magic;
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint64_t request_id;
    uint32_t payload_len;
    uint32_t header_crc;
} rs_frame_header;

/* Inspects the start of a byte stream. Returns:
 *   0                 fewer than 24 bytes: need more;
 *   > 0               the whole frame's size (header + payload), which may be
 *                     more than len (need more); hdr is filled;
 *   -(rs_status)      invalid header (bad magic/version/type/crc, too large). */
int64_t rs_frame_peek(const uint8_t *buf, size_t len, uint32_t max_payload_bytes,
                      rs_frame_header *hdr);
/* rs_frame_peek with a sentence in why on error. hdr is filled as soon as 24
 * bytes are there, even when invalid (to echo request_id in the ERROR). */
int64_t rs_frame_check_header(const uint8_t *buf, size_t len, uint32_t max_payload_bytes,
                              rs_frame_header *hdr, char *why, size_t why_bytes);

/* ---- decoded messages (views into the frame) ---- */

typedef struct rs_infer_request {
    rs_str model;
    rs_str version;      /* empty: latest */
    rs_str id;           /* client's request id string (may be empty) */
    rs_str routing_key;  /* empty: hash of the inputs */
    rs_str traceparent;  /* W3C trace context, may be empty */
    uint32_t timeout_us; /* 0: server default */
    int32_t priority;    /* 0 default, 1 highest, larger = lower */
    rs_tensor_list inputs;
    uint32_t n_outputs;  /* requested outputs; 0 = all */
    rs_str outputs[RS_MAX_TENSORS];
} rs_infer_request;

typedef struct rs_infer_response {
    rs_str model;
    rs_str version;
    rs_str id;
    rs_tensor_list outputs;
} rs_infer_response;

typedef struct rs_error_msg {
    uint32_t code; /* rs_status */
    rs_str message;
} rs_error_msg;

/* A batch: items decoded lazily after a full validation pass. */
typedef struct rs_batch_request {
    rs_str model;
    rs_str version;
    uint32_t shard;
    rs_str traceparent;
    uint32_t item_count;
    const uint8_t *items; /* validated region; walk with rs_batch_iter */
    size_t items_len;
    const uint8_t *base;  /* payload start: alignment is relative to it */
} rs_batch_request;

typedef struct rs_batch_response {
    uint32_t item_count;
    const uint8_t *items;
    size_t items_len;
    const uint8_t *base;
} rs_batch_response;

typedef struct rs_batch_iter {
    const uint8_t *p;
    const uint8_t *end;
    uint32_t remaining;
    const uint8_t *base;
} rs_batch_iter;

/* One response item: status RS_OK with outputs, or an error message. */
typedef struct rs_batch_item_result {
    uint64_t item_id;
    uint32_t status;
    rs_str message;
    rs_tensor_list outputs;
} rs_batch_item_result;

typedef struct rs_model_ref {
    rs_str name;
    rs_str version;
    uint32_t shard;
} rs_model_ref;

typedef struct rs_register_msg {
    rs_str worker_id;
    rs_str host;          /* where the worker serves batches */
    uint16_t port;
    rs_str token;         /* cluster.token, may be empty */
    uint32_t capacity;    /* concurrent batches it accepts */
    int32_t numa_node;    /* -1 unknown */
    int32_t gpu;          /* -1 none */
    uint32_t n_models;
    rs_model_ref models[RS_MAX_WORKER_MODELS];
} rs_register_msg;

typedef struct rs_heartbeat_msg {
    rs_str worker_id;
    uint32_t in_flight;
    uint32_t queued;
} rs_heartbeat_msg;

/* Decoders: 0 on success, else -(rs_status) with a sentence in why. They
 * check every length against the payload, dims against byte lengths, dtypes,
 * ranks and counts against the limits above. */
int rs_decode_infer_request(const uint8_t *payload, size_t len, rs_infer_request *out, char *why,
                            size_t why_bytes);
int rs_decode_infer_response(const uint8_t *payload, size_t len, rs_infer_response *out,
                             char *why, size_t why_bytes);
int rs_decode_error(const uint8_t *payload, size_t len, rs_error_msg *out, char *why,
                    size_t why_bytes);
int rs_decode_batch_request(const uint8_t *payload, size_t len, rs_batch_request *out, char *why,
                            size_t why_bytes);
int rs_decode_batch_response(const uint8_t *payload, size_t len, rs_batch_response *out,
                             char *why, size_t why_bytes);
int rs_decode_register(const uint8_t *payload, size_t len, rs_register_msg *out, char *why,
                       size_t why_bytes);
int rs_decode_heartbeat(const uint8_t *payload, size_t len, rs_heartbeat_msg *out, char *why,
                        size_t why_bytes);
/* PING/PONG/POLL/SUBMIT_ACK/DEREGISTER carry one u64 (timestamp or id). */
int rs_decode_u64(const uint8_t *payload, size_t len, uint64_t *out, char *why, size_t why_bytes);

/* REGISTER_ACK and SUBMIT carry, respectively, one u64 and an infer request:
 * decode them with rs_decode_u64 / rs_decode_infer_request. */

/* Any message, by header type (one decoded view; see rs_frame_msg.u). */
typedef struct rs_frame_msg {
    rs_frame_header hdr;
    const uint8_t *frame;   /* header + payload */
    const uint8_t *payload;
    size_t frame_len;
    union {
        rs_infer_request infer_req;   /* INFER_REQUEST, SUBMIT */
        rs_infer_response infer_resp; /* INFER_RESPONSE */
        rs_error_msg error;           /* ERROR */
        rs_batch_request batch_req;   /* BATCH_REQUEST */
        rs_batch_response batch_resp; /* BATCH_RESPONSE */
        rs_register_msg reg;          /* REGISTER */
        rs_heartbeat_msg heartbeat;   /* HEARTBEAT */
        uint64_t u64;                 /* PING PONG POLL SUBMIT_ACK REGISTER_ACK DEREGISTER */
    } u;
} rs_frame_msg;

/* Decodes the payload of a frame whose header rs_frame_peek accepted. */
int rs_decode_payload(const rs_frame_header *hdr, const uint8_t *payload, rs_frame_msg *out,
                      char *why, size_t why_bytes);
/* Header + payload of the frame at buf: the frame size (> 0, may be < len:
 * the rest is the next frame), or -(rs_status) with a sentence; a buffer
 * shorter than the frame is RS_E_TRUNCATED. */
int64_t rs_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload_bytes,
                        rs_frame_msg *out, char *why, size_t why_bytes);
/* "INFER_REQUEST"...; "UNKNOWN" for other values. */
const char *rs_msg_type_name(uint32_t type);
/* Name -> status ("CHECKSUM" or "RS_E_CHECKSUM"); -1 when unknown. */
int rs_status_parse(const char *name);
bool rs_status_valid(uint32_t code);

void rs_batch_request_iter(const rs_batch_request *b, rs_batch_iter *it);
/* Next request item: 1 with item_id and inputs, 0 at the end. */
int rs_batch_request_next(rs_batch_iter *it, uint64_t *item_id, rs_tensor_list *inputs);
void rs_batch_response_iter(const rs_batch_response *b, rs_batch_iter *it);
int rs_batch_response_next(rs_batch_iter *it, rs_batch_item_result *out);

/* ---- encoding ---- */

/* A writer over a caller buffer. Overflow is sticky: every put after it is a
 * no-op and rs_fw_finish returns 0. */
typedef struct rs_fw {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow;
    size_t frame_start; /* offset of the current frame (rs_fw_begin) */
} rs_fw;

/* buf NULL: counting mode, nothing is written and len is the exact size
 * (how the *_size functions work). Several frames may be written in a row. */
void rs_fw_init(rs_fw *w, uint8_t *buf, size_t cap);
void rs_fw_begin(rs_fw *w, rs_msg_type type, uint16_t flags, uint64_t request_id);
void rs_fw_u8(rs_fw *w, uint8_t v);
void rs_fw_u16(rs_fw *w, uint16_t v);
void rs_fw_u32(rs_fw *w, uint32_t v);
void rs_fw_u64(rs_fw *w, uint64_t v);
void rs_fw_bytes(rs_fw *w, const void *p, size_t n);
void rs_fw_str(rs_fw *w, rs_str s);
void rs_fw_pad8(rs_fw *w);
void rs_fw_tensor_list(rs_fw *w, const rs_tensor_list *l);
/* Fills payload_len and header_crc; returns the frame size, 0 on overflow. */
size_t rs_fw_finish(rs_fw *w);
/* Gives a whole encoded frame another request_id and flags, and so a new
 * header_crc: a stored answer sent as is to a new requester. */
void rs_frame_restamp(uint8_t *frame, uint64_t request_id, uint16_t flags);

/* Whole messages. Each returns the frame size, or 0 when cap is too small;
 * the *_size functions give the exact size to reserve. */
size_t rs_encode_infer_request(uint8_t *buf, size_t cap, uint64_t request_id, uint16_t flags,
                               const rs_infer_request *r);
size_t rs_encode_infer_response(uint8_t *buf, size_t cap, uint64_t request_id, uint16_t flags,
                                const rs_infer_response *r);
size_t rs_encode_error(uint8_t *buf, size_t cap, uint64_t request_id, rs_status code,
                       const char *message);
size_t rs_encode_register(uint8_t *buf, size_t cap, uint64_t request_id,
                          const rs_register_msg *m);
size_t rs_encode_heartbeat(uint8_t *buf, size_t cap, uint64_t request_id,
                           const rs_heartbeat_msg *m);
size_t rs_encode_u64(uint8_t *buf, size_t cap, rs_msg_type type, uint64_t request_id,
                     uint64_t value);
size_t rs_infer_request_size(const rs_infer_request *r);
size_t rs_infer_response_size(const rs_infer_response *r);
/* Exact for a list that starts 8-aligned relative to its frame (as in the
 * messages above: its padding depends on where it starts). */
size_t rs_tensor_list_size(const rs_tensor_list *l);

/* Batch request: begin, add items, finish. */
void rs_fw_batch_request_begin(rs_fw *w, uint64_t request_id, rs_str model, rs_str version,
                               uint32_t shard, rs_str traceparent, uint32_t item_count);
void rs_fw_batch_request_item(rs_fw *w, uint64_t item_id, const rs_tensor_list *inputs);
void rs_fw_batch_response_begin(rs_fw *w, uint64_t request_id, uint32_t item_count);
void rs_fw_batch_response_ok(rs_fw *w, uint64_t item_id, const rs_tensor_list *outputs);
void rs_fw_batch_response_err(rs_fw *w, uint64_t item_id, rs_status code, const char *message);
void rs_fw_infer_request_payload(rs_fw *w, const rs_infer_request *r);
void rs_fw_infer_response_payload(rs_fw *w, const rs_infer_response *r);
/* SUBMIT carries an INFER_REQUEST payload. */
size_t rs_encode_submit(uint8_t *buf, size_t cap, uint64_t request_id, uint16_t flags,
                        const rs_infer_request *r);

static inline rs_str rs_str_c(const char *s);
#include <string.h>
static inline rs_str rs_str_c(const char *s) {
    rs_str r = {s, s ? (uint32_t)strlen(s) : 0};
    return r;
}
static inline bool rs_str_eq(rs_str a, const char *b) {
    size_t n = strlen(b);
    return a.len == n && memcmp(a.ptr, b, n) == 0;
}

#endif

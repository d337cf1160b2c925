/* frame.c — the framed protocol codec (io/frame.h, docs/protocol.md).
 *
 * Decoding walks the payload with a bounds-checked reader: every field is
 * checked against the bytes that remain before it is read, so a hostile
 * frame can at worst produce an error, never a read past the buffer. Views
 * (strings, tensor data) point into the buffer: nothing is copied.
 * Encoding goes through rs_fw, which either writes into a caller buffer or
 * (buf == NULL) only counts, so sizes and bytes come from the same code. */
#include "io/frame.h"

#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "engine/common/log.h"

/* ---- status codes and names ---- */

static const char *const status_names[] = {
    [RS_OK] = "OK",
    [RS_E_BAD_MAGIC] = "BAD_MAGIC",
    [RS_E_BAD_VERSION] = "BAD_VERSION",
    [RS_E_TOO_LARGE] = "TOO_LARGE",
    [RS_E_TRUNCATED] = "TRUNCATED",
    [RS_E_CHECKSUM] = "CHECKSUM",
    [RS_E_BAD_TYPE] = "BAD_TYPE",
    [RS_E_BAD_DTYPE] = "BAD_DTYPE",
    [RS_E_SHAPE_MISMATCH] = "SHAPE_MISMATCH",
    [RS_E_MALFORMED] = "MALFORMED",
    [RS_E_INVALID_INPUT] = "INVALID_INPUT",
    [RS_E_UNKNOWN_MODEL] = "UNKNOWN_MODEL",
    [RS_E_OVERLOADED] = "OVERLOADED",
    [RS_E_UNAVAILABLE] = "UNAVAILABLE",
    [RS_E_DEADLINE] = "DEADLINE",
    [RS_E_INTERNAL] = "INTERNAL",
    [RS_E_BACKEND] = "BACKEND",
    [RS_E_PENDING] = "PENDING",
    [RS_E_NOT_FOUND] = "NOT_FOUND",
    [RS_E_UNAUTHORIZED] = "UNAUTHORIZED",
    [RS_E_TRANSIENT] = "TRANSIENT",
};
#define N_STATUS (sizeof(status_names) / sizeof(status_names[0]))

bool rs_status_valid(uint32_t code) { return code < N_STATUS && status_names[code] != NULL; }

const char *rs_status_name(rs_status st) {
    return rs_status_valid((uint32_t)st) ? status_names[st] : "UNKNOWN";
}

int rs_status_parse(const char *name) {
    if (!name) return -1;
    if (strncmp(name, "RS_E_", 5) == 0) name += 5;
    for (size_t i = 0; i < N_STATUS; i++)
        if (status_names[i] && strcmp(status_names[i], name) == 0) return (int)i;
    return -1;
}

bool rs_status_is_fatal(rs_status st) { return st >= RS_E_BAD_MAGIC && st <= RS_E_MALFORMED; }

int rs_status_http(rs_status st) {
    switch (st) {
    case RS_OK: return 200;
    case RS_E_TOO_LARGE: return 413;
    case RS_E_BAD_MAGIC:
    case RS_E_BAD_VERSION:
    case RS_E_TRUNCATED:
    case RS_E_CHECKSUM:
    case RS_E_BAD_TYPE:
    case RS_E_BAD_DTYPE:
    case RS_E_SHAPE_MISMATCH:
    case RS_E_MALFORMED:
    case RS_E_INVALID_INPUT: return 400;
    case RS_E_UNKNOWN_MODEL: return 404;
    case RS_E_OVERLOADED: return 429;
    case RS_E_UNAVAILABLE: return 503;
    case RS_E_DEADLINE: return 504;
    case RS_E_INTERNAL:
    case RS_E_BACKEND: return 500;
    case RS_E_PENDING: return 202;
    case RS_E_NOT_FOUND: return 404;
    case RS_E_UNAUTHORIZED: return 401;
    case RS_E_TRANSIENT: return 503;
    }
    return 500;
}

static const char *const type_names[RS_MSG_TYPE_COUNT_] = {
    [RS_MSG_INFER_REQUEST] = "INFER_REQUEST",   [RS_MSG_INFER_RESPONSE] = "INFER_RESPONSE",
    [RS_MSG_BATCH_REQUEST] = "BATCH_REQUEST",   [RS_MSG_BATCH_RESPONSE] = "BATCH_RESPONSE",
    [RS_MSG_REGISTER] = "REGISTER",             [RS_MSG_REGISTER_ACK] = "REGISTER_ACK",
    [RS_MSG_HEARTBEAT] = "HEARTBEAT",           [RS_MSG_DEREGISTER] = "DEREGISTER",
    [RS_MSG_PING] = "PING",                     [RS_MSG_PONG] = "PONG",
    [RS_MSG_ERROR] = "ERROR",                   [RS_MSG_SUBMIT] = "SUBMIT",
    [RS_MSG_SUBMIT_ACK] = "SUBMIT_ACK",         [RS_MSG_POLL] = "POLL",
};

const char *rs_msg_type_name(uint32_t type) {
    return (type > 0 && type < RS_MSG_TYPE_COUNT_) ? type_names[type] : "UNKNOWN";
}

/* ---- little-endian loads (unaligned-safe) ---- */

static uint16_t ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return le16toh(v);
}
static uint32_t ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}
static uint64_t ld64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static void why_set(char *why, size_t why_bytes, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t why_bytes, const char *fmt, ...) {
    if (!why || !why_bytes) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_bytes, fmt, ap);
    va_end(ap);
}

/* ---- header ---- */

int64_t rs_frame_check_header(const uint8_t *buf, size_t len, uint32_t max_payload_bytes,
                              rs_frame_header *hdr, char *why, size_t why_bytes) {
    if (len < RS_FRAME_HEADER_BYTES) return 0;
    rs_frame_header h = {
        .magic = ld32(buf),
        .version = buf[4],
        .type = buf[5],
        .flags = ld16(buf + 6),
        .request_id = ld64(buf + 8),
        .payload_len = ld32(buf + 16),
        .header_crc = ld32(buf + 20),
    };
    if (hdr) *hdr = h;
    if (h.magic != RS_FRAME_MAGIC) {
        why_set(why, why_bytes,
                "bad magic 0x%08x (expected 0x%08x, the bytes \"RSV1\"): not a ringserve frame",
                h.magic, RS_FRAME_MAGIC);
        return -RS_E_BAD_MAGIC;
    }
    if (h.version != RS_FRAME_VERSION) {
        why_set(why, why_bytes, "unsupported protocol version %u (this server speaks %d)",
                h.version, RS_FRAME_VERSION);
        return -RS_E_BAD_VERSION;
    }
    uint32_t crc = (uint32_t)crc32(0L, buf, 20);
    if (crc != h.header_crc) {
        why_set(why, why_bytes,
                "header checksum mismatch: header says 0x%08x, CRC-32 of bytes 0..19 is 0x%08x",
                h.header_crc, crc);
        return -RS_E_CHECKSUM;
    }
    if (h.type == 0 || h.type >= RS_MSG_TYPE_COUNT_) {
        why_set(why, why_bytes, "unknown message type %u (valid: 1..%d)", h.type,
                RS_MSG_TYPE_COUNT_ - 1);
        return -RS_E_BAD_TYPE;
    }
    if (h.payload_len > max_payload_bytes) {
        why_set(why, why_bytes, "payload length %u is over the maximum of %u bytes",
                h.payload_len, max_payload_bytes);
        return -RS_E_TOO_LARGE;
    }
    return (int64_t)RS_FRAME_HEADER_BYTES + h.payload_len;
}

int64_t rs_frame_peek(const uint8_t *buf, size_t len, uint32_t max_payload_bytes,
                      rs_frame_header *hdr) {
    return rs_frame_check_header(buf, len, max_payload_bytes, hdr, NULL, 0);
}

/* ---- payload reader ----
 *
 * Errors name where they happened ("batch item 3: input tensor 1 'x': ...")
 * from a small context kept in the reader; the sentence is only formatted
 * when something is wrong, so a valid frame costs no string work. */

typedef struct rd {
    const uint8_t *base; /* payload start (8-aligned relative to the frame) */
    const uint8_t *p;
    const uint8_t *end;
    char *why;
    size_t why_bytes;
    int32_t item;     /* batch item index, -1: none */
    const char *list; /* "input" / "output" inside a tensor list, else NULL */
    int32_t tensor;   /* tensor index in the list, -1: none */
    rs_str tname;     /* the tensor's name once read */
} rd;

#define OFF(r) ((size_t)((r)->p - (r)->base))
#define TRY(expr)                  \
    do {                           \
        int rc_ = (expr);          \
        if (rc_ < 0) return rc_;   \
    } while (0)

static int fail(rd *r, rs_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(rd *r, rs_status code, const char *fmt, ...) {
    if (!r->why || !r->why_bytes) return -(int)code;
    size_t off = 0;
    char *w = r->why;
    size_t n = r->why_bytes;
#define ADD(...)                                                     \
    do {                                                             \
        if (off < n) off += (size_t)snprintf(w + off, n - off, __VA_ARGS__); \
    } while (0)
    if (r->item >= 0) ADD("batch item %d: ", r->item);
    if (r->list && r->tensor >= 0) {
        ADD("%s tensor %d", r->list, r->tensor);
        if (r->tname.len) ADD(" '%.*s'", (int)r->tname.len, r->tname.ptr);
        ADD(": ");
    }
#undef ADD
    if (off < n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w + off, n - off, fmt, ap);
        va_end(ap);
    }
    return -(int)code;
}

static int rd_need(rd *r, size_t n, const char *what) {
    size_t left = (size_t)(r->end - r->p);
    if (left < n)
        return fail(r, RS_E_TRUNCATED,
                    "payload truncated: %s needs %zu bytes at payload offset %zu but only %zu "
                    "remain",
                    what, n, OFF(r), left);
    return 0;
}

static int rd_u8(rd *r, uint8_t *v, const char *what) {
    TRY(rd_need(r, 1, what));
    *v = *r->p++;
    return 0;
}
static int rd_u16(rd *r, uint16_t *v, const char *what) {
    TRY(rd_need(r, 2, what));
    *v = ld16(r->p);
    r->p += 2;
    return 0;
}
static int rd_u32(rd *r, uint32_t *v, const char *what) {
    TRY(rd_need(r, 4, what));
    *v = ld32(r->p);
    r->p += 4;
    return 0;
}
static int rd_u64(rd *r, uint64_t *v, const char *what) {
    TRY(rd_need(r, 8, what));
    *v = ld64(r->p);
    r->p += 8;
    return 0;
}

/* A string field: u16 length + bytes, min_len..max_len. Errors call it
 * "<what> <idx> <what2>" ("model 3 name"; idx < 0: just what). */
static int rd_str_i(rd *r, rs_str *s, const char *what, int idx, const char *what2,
                    uint32_t min_len, uint32_t max_len) {
    size_t left = (size_t)(r->end - r->p);
    uint16_t n = left >= 2 ? ld16(r->p) : 0;
    if (left >= 2 && n >= min_len && n <= max_len && left - 2 >= n) {
        s->ptr = (const char *)r->p + 2;
        s->len = n;
        r->p += 2 + n;
        return 0;
    }
    char w[96];
    if (idx >= 0) snprintf(w, sizeof(w), "%s %d %s", what, idx, what2);
    else snprintf(w, sizeof(w), "%s", what);
    if (left < 2) return rd_need(r, 2, w);
    if (n < min_len) return fail(r, RS_E_MALFORMED, "%s is empty (at payload offset %zu)", w, OFF(r));
    if (n > max_len)
        return fail(r, RS_E_MALFORMED,
                    "%s is %u bytes long, over the limit of %u (at payload offset %zu)", w, n,
                    max_len, OFF(r));
    r->p += 2;
    return rd_need(r, n, w);
}

static int rd_str(rd *r, rs_str *s, const char *what, uint32_t min_len, uint32_t max_len) {
    return rd_str_i(r, s, what, -1, NULL, min_len, max_len);
}

static int rd_end(rd *r, const char *msg) {
    if (r->p != r->end)
        return fail(r, RS_E_MALFORMED, "%zu trailing bytes after the %s payload (at offset %zu)",
                    (size_t)(r->end - r->p), msg, OFF(r));
    return 0;
}

static int rd_tensor(rd *r, rs_tensor_view *t) {
    r->tname = (rs_str){"", 0};
    TRY(rd_str(r, &t->name, "name", 1, RS_MAX_NAME_BYTES));
    r->tname = t->name;
    uint8_t dt, rank;
    TRY(rd_u8(r, &dt, "dtype"));
    if (!rs_dtype_valid(dt))
        return fail(r, RS_E_BAD_DTYPE, "unknown dtype %u (valid: 1..%d)", dt, RS_DT_COUNT_ - 1);
    t->dtype = (rs_dtype)dt;
    TRY(rd_u8(r, &rank, "rank"));
    if (rank > RS_MAX_RANK)
        return fail(r, RS_E_MALFORMED, "rank %u is over the limit of %d", rank, RS_MAX_RANK);
    t->rank = rank;
    for (uint32_t i = 0; i < rank; i++) {
        uint64_t d;
        TRY(rd_u64(r, &d, "dims"));
        if ((int64_t)d < 0)
            return fail(r, RS_E_MALFORMED, "dim %u is %lld; dims must be >= 0", i,
                        (long long)(int64_t)d);
        t->dims[i] = (int64_t)d;
    }
    for (uint32_t i = rank; i < RS_MAX_RANK; i++) t->dims[i] = 0;
    TRY(rd_u64(r, &t->byte_len, "byte length"));
    size_t pad = (8 - OFF(r) % 8) % 8;
    TRY(rd_need(r, pad, "alignment padding"));
    for (size_t i = 0; i < pad; i++)
        if (r->p[i] != 0)
            return fail(r, RS_E_MALFORMED, "padding byte at payload offset %zu is 0x%02x, not 0",
                        OFF(r) + i, r->p[i]);
    r->p += pad;
    if ((uint64_t)(r->end - r->p) < t->byte_len)
        return fail(r, RS_E_TRUNCATED,
                    "payload truncated: data needs %llu bytes at payload offset %zu but only %zu "
                    "remain",
                    (unsigned long long)t->byte_len, OFF(r), (size_t)(r->end - r->p));
    t->data = r->p;
    r->p += t->byte_len;
    if (rs_tensor_check(t, NULL, 0) < 0) {
        /* rs_tensor_check's sentence names the tensor: keep only the item prefix */
        char tw[256];
        rs_tensor_check(t, tw, sizeof(tw));
        const char *list = r->list;
        r->list = NULL;
        return fail(r, RS_E_SHAPE_MISMATCH, "%s %s", list, tw);
    }
    return 0;
}

static int rd_tensor_list(rd *r, rs_tensor_list *l, const char *list) {
    uint32_t n;
    if (r->end - r->p < 4) {
        char what[32];
        snprintf(what, sizeof(what), "%s tensor count", list);
        return rd_need(r, 4, what);
    }
    TRY(rd_u32(r, &n, "tensor count"));
    r->list = list;
    r->tensor = -1;
    if (n > RS_MAX_TENSORS) {
        r->list = NULL;
        return fail(r, RS_E_MALFORMED, "%s tensor count %u is over the limit of %d", list, n,
                    RS_MAX_TENSORS);
    }
    l->count = n;
    for (uint32_t i = 0; i < n; i++) {
        r->tensor = (int32_t)i;
        TRY(rd_tensor(r, &l->t[i]));
        for (uint32_t j = 0; j < i; j++) {
            if (l->t[j].name.len == l->t[i].name.len &&
                memcmp(l->t[j].name.ptr, l->t[i].name.ptr, l->t[i].name.len) == 0) {
                r->list = NULL;
                return fail(r, RS_E_MALFORMED, "%s tensor name '%.*s' appears twice", list,
                            (int)l->t[i].name.len, l->t[i].name.ptr);
            }
        }
    }
    r->list = NULL;
    r->tensor = -1;
    return 0;
}

static void rd_init(rd *r, const uint8_t *payload, size_t len, char *why, size_t why_bytes) {
    *r = (rd){.base = payload, .p = payload, .end = payload + len, .why = why,
              .why_bytes = why_bytes, .item = -1, .tensor = -1};
}

/* ---- message decoders ---- */

static int rd_infer_request(rd *r, rs_infer_request *out) {
    memset(out, 0, offsetof(rs_infer_request, inputs));
    TRY(rd_str(r, &out->model, "model name", 1, RS_MAX_NAME_BYTES));
    TRY(rd_str(r, &out->version, "model version", 0, RS_MAX_NAME_BYTES));
    TRY(rd_str(r, &out->id, "request id", 0, RS_MAX_STR_BYTES));
    TRY(rd_str(r, &out->routing_key, "routing key", 0, RS_MAX_STR_BYTES));
    TRY(rd_str(r, &out->traceparent, "traceparent", 0, RS_MAX_STR_BYTES));
    TRY(rd_u32(r, &out->timeout_us, "timeout_us"));
    uint32_t prio;
    TRY(rd_u32(r, &prio, "priority"));
    out->priority = (int32_t)prio;
    uint16_t n_out;
    TRY(rd_u16(r, &n_out, "requested output count"));
    if (n_out > RS_MAX_TENSORS)
        return fail(r, RS_E_MALFORMED, "requested output count %u is over the limit of %d", n_out,
                    RS_MAX_TENSORS);
    out->n_outputs = n_out;
    for (uint32_t i = 0; i < n_out; i++)
        TRY(rd_str_i(r, &out->outputs[i], "requested output", (int)i, "name", 1,
                     RS_MAX_NAME_BYTES));
    TRY(rd_tensor_list(r, &out->inputs, "input"));
    return rd_end(r, "INFER_REQUEST");
}

int rs_decode_infer_request(const uint8_t *payload, size_t len, rs_infer_request *out, char *why,
                            size_t why_bytes) {
    rd r;
    rd_init(&r, payload, len, why, why_bytes);
    return rd_infer_request(&r, out);
}

int rs_decode_infer_response(const uint8_t *payload, size_t len, rs_infer_response *out,
                             char *why, size_t why_bytes) {
    rd r;
    rd_init(&r, payload, len, why, why_bytes);
    TRY(rd_str(&r, &out->model, "model name", 1, RS_MAX_NAME_BYTES));
    TRY(rd_str(&r, &out->version, "model version", 0, RS_MAX_NAME_BYTES));
    TRY(rd_str(&r, &out->id, "request id", 0, RS_MAX_STR_BYTES));
    TRY(rd_tensor_list(&r, &out->outputs, "output"));
    return rd_end(&r, "INFER_RESPONSE");
}

int rs_decode_error(const uint8_t *payload, size_t len, rs_error_msg *out, char *why,
                    size_t why_bytes) {
    rd r;
    rd_init(&r, payload, len, why, why_bytes);
    TRY(rd_u32(&r, &out->code, "error code"));
    if (out->code == RS_OK || !rs_status_valid(out->code))
        return fail(&r, RS_E_MALFORMED, "ERROR frame carries code %u, which is not an error code",
                    out->code);
    TRY(rd_str(&r, &out->message, "error message", 0, RS_MAX_ERROR_MSG_BYTES));
    return rd_end(&r, "ERROR");
}

static int rd_item_count(rd *r, uint32_t *n, const char *what) {
    TRY(rd_u32(r, n, what));
    if (*n == 0 || *n > RS_MAX_BATCH_ITEMS)
        return fail(r, RS_E_MALFORMED, "%s %u is outside 1..%d", what, *n, RS_MAX_BATCH_ITEMS);
    return 0;
}

int rs_decode_batch_request(const uint8_t *payload, size_t len, rs_batch_request *out, char *why,
                            size_t why_bytes) {
    rd r;
    rd_init(&r, payload, len, why, why_bytes);
    TRY(rd_str(&r, &out->model, "model name", 1, RS_MAX_NAME_BYTES));
    TRY(rd_str(&r, &out->version, "model version", 0, RS_MAX_NAME_BYTES));
    TRY(rd_u32(&r, &out->shard, "shard"));
    TRY(rd_str(&r, &out->traceparent, "traceparent", 0, RS_MAX_STR_BYTES));
    TRY(rd_item_count(&r, &out->item_count, "batch item count"));
    out->base = payload;
    out->items = r.p;
    /* Full validation pass now, so that iterating later cannot fail. */
    rs_tensor_list scratch;
    for (uint32_t i = 0; i < out->item_count; i++) {
        uint64_t id;
        r.item = (int32_t)i;
        TRY(rd_u64(&r, &id, "item id"));
        TRY(rd_tensor_list(&r, &scratch, "input"));
    }
    r.item = -1;
    out->items_len = (size_t)(r.p - out->items);
    return rd_end(&r, "BATCH_REQUEST");
}

static int rd_response_item(rd *r, rs_batch_item_result *out) {
    TRY(rd_u64(r, &out->item_id, "item id"));
    TRY(rd_u32(r, &out->status, "item status"));
    out->message = (rs_str){"", 0};
    out->outputs.count = 0;
    if (out->status == RS_OK) return rd_tensor_list(r, &out->outputs, "output");
    if (!rs_status_valid(out->status))
        return fail(r, RS_E_MALFORMED, "unknown status code %u", out->status);
    return rd_str(r, &out->message, "error message", 0, RS_MAX_ERROR_MSG_BYTES);
}

int rs_decode_batch_response(const uint8_t *payload, size_t len, rs_batch_response *out,
                             char *why, size_t why_bytes) {
    rd r;
    rd_init(&r, payload, len, why, why_bytes);
    TRY(rd_item_count(&r, &out->item_count, "batch item count"));
    out->base = payload;
    out->items = r.p;
    rs_batch_item_result scratch;
    for (uint32_t i = 0; i < out->item_count; i++) {
        r.item = (int32_t)i;
        TRY(rd_response_item(&r, &scratch));
    }
    r.item = -1;
    out->items_len = (size_t)(r.p - out->items);
    return rd_end(&r, "BATCH_RESPONSE");
}

int rs_decode_register(const uint8_t *payload, size_t len, rs_register_msg *out, char *why,
                       size_t why_bytes) {
    rd r;
    rd_init(&r, payload, len, why, why_bytes);
    TRY(rd_str(&r, &out->worker_id, "worker id", 1, RS_MAX_NAME_BYTES));
    TRY(rd_str(&r, &out->host, "worker host", 0, RS_MAX_STR_BYTES));
    TRY(rd_u16(&r, &out->port, "worker port"));
    TRY(rd_str(&r, &out->token, "cluster token", 0, RS_MAX_STR_BYTES));
    TRY(rd_u32(&r, &out->capacity, "capacity"));
    uint32_t v;
    TRY(rd_u32(&r, &v, "numa node"));
    out->numa_node = (int32_t)v;
    TRY(rd_u32(&r, &v, "gpu"));
    out->gpu = (int32_t)v;
    uint16_t n;
    TRY(rd_u16(&r, &n, "model count"));
    if (n > RS_MAX_WORKER_MODELS)
        return fail(&r, RS_E_MALFORMED, "model count %u is over the limit of %d", n,
                    RS_MAX_WORKER_MODELS);
    out->n_models = n;
    for (uint32_t i = 0; i < n; i++) {
        TRY(rd_str_i(&r, &out->models[i].name, "model", (int)i, "name", 1, RS_MAX_NAME_BYTES));
        TRY(rd_str_i(&r, &out->models[i].version, "model", (int)i, "version", 0,
                     RS_MAX_NAME_BYTES));
        TRY(rd_u32(&r, &out->models[i].shard, "model shard"));
    }
    return rd_end(&r, "REGISTER");
}

int rs_decode_heartbeat(const uint8_t *payload, size_t len, rs_heartbeat_msg *out, char *why,
                        size_t why_bytes) {
    rd r;
    rd_init(&r, payload, len, why, why_bytes);
    TRY(rd_str(&r, &out->worker_id, "worker id", 1, RS_MAX_NAME_BYTES));
    TRY(rd_u32(&r, &out->in_flight, "in_flight"));
    TRY(rd_u32(&r, &out->queued, "queued"));
    return rd_end(&r, "HEARTBEAT");
}

int rs_decode_u64(const uint8_t *payload, size_t len, uint64_t *out, char *why,
                  size_t why_bytes) {
    rd r;
    rd_init(&r, payload, len, why, why_bytes);
    TRY(rd_u64(&r, out, "u64 value"));
    return rd_end(&r, "u64");
}

void rs_batch_request_iter(const rs_batch_request *b, rs_batch_iter *it) {
    it->p = b->items;
    it->end = b->items + b->items_len;
    it->remaining = b->item_count;
    it->base = b->base;
}

int rs_batch_request_next(rs_batch_iter *it, uint64_t *item_id, rs_tensor_list *inputs) {
    if (it->remaining == 0) return 0;
    rd r;
    rd_init(&r, it->base, 0, NULL, 0);
    r.p = it->p;
    r.end = it->end;
    /* The region was validated by rs_decode_batch_request. */
    RS_ASSERT(rd_u64(&r, item_id, "item id") == 0);
    RS_ASSERT(rd_tensor_list(&r, inputs, "input") == 0);
    it->p = r.p;
    it->remaining--;
    return 1;
}

void rs_batch_response_iter(const rs_batch_response *b, rs_batch_iter *it) {
    it->p = b->items;
    it->end = b->items + b->items_len;
    it->remaining = b->item_count;
    it->base = b->base;
}

int rs_batch_response_next(rs_batch_iter *it, rs_batch_item_result *out) {
    if (it->remaining == 0) return 0;
    rd r;
    rd_init(&r, it->base, 0, NULL, 0);
    r.p = it->p;
    r.end = it->end;
    RS_ASSERT(rd_response_item(&r, out) == 0);
    it->p = r.p;
    it->remaining--;
    return 1;
}

int rs_decode_payload(const rs_frame_header *hdr, const uint8_t *payload, rs_frame_msg *out,
                      char *why, size_t why_bytes) {
    size_t len = hdr->payload_len;
    out->hdr = *hdr;
    out->payload = payload;
    out->frame = payload - RS_FRAME_HEADER_BYTES;
    out->frame_len = RS_FRAME_HEADER_BYTES + len;
    switch ((rs_msg_type)hdr->type) {
    case RS_MSG_INFER_REQUEST:
    case RS_MSG_SUBMIT:
        return rs_decode_infer_request(payload, len, &out->u.infer_req, why, why_bytes);
    case RS_MSG_INFER_RESPONSE:
        return rs_decode_infer_response(payload, len, &out->u.infer_resp, why, why_bytes);
    case RS_MSG_BATCH_REQUEST:
        return rs_decode_batch_request(payload, len, &out->u.batch_req, why, why_bytes);
    case RS_MSG_BATCH_RESPONSE:
        return rs_decode_batch_response(payload, len, &out->u.batch_resp, why, why_bytes);
    case RS_MSG_REGISTER: return rs_decode_register(payload, len, &out->u.reg, why, why_bytes);
    case RS_MSG_HEARTBEAT:
        return rs_decode_heartbeat(payload, len, &out->u.heartbeat, why, why_bytes);
    case RS_MSG_ERROR: return rs_decode_error(payload, len, &out->u.error, why, why_bytes);
    case RS_MSG_REGISTER_ACK:
    case RS_MSG_DEREGISTER:
    case RS_MSG_PING:
    case RS_MSG_PONG:
    case RS_MSG_SUBMIT_ACK:
    case RS_MSG_POLL: return rs_decode_u64(payload, len, &out->u.u64, why, why_bytes);
    case RS_MSG_TYPE_COUNT_: break;
    }
    why_set(why, why_bytes, "unknown message type %u", hdr->type);
    return -RS_E_BAD_TYPE;
}

int64_t rs_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload_bytes,
                        rs_frame_msg *out, char *why, size_t why_bytes) {
    if (len < RS_FRAME_HEADER_BYTES) {
        why_set(why, why_bytes, "truncated header: %zu of %d bytes", len, RS_FRAME_HEADER_BYTES);
        return -RS_E_TRUNCATED;
    }
    int64_t n = rs_frame_check_header(buf, len, max_payload_bytes, &out->hdr, why, why_bytes);
    if (n < 0) return n;
    if ((uint64_t)n > len) {
        why_set(why, why_bytes, "truncated frame: header announces %u payload bytes, %zu present",
                out->hdr.payload_len, len - RS_FRAME_HEADER_BYTES);
        return -RS_E_TRUNCATED;
    }
    rs_frame_header h = out->hdr;
    int rc = rs_decode_payload(&h, buf + RS_FRAME_HEADER_BYTES, out, why, why_bytes);
    return rc < 0 ? rc : n;
}

/* ---- writer ---- */

void rs_fw_init(rs_fw *w, uint8_t *buf, size_t cap) {
    w->buf = buf;
    w->cap = buf ? cap : SIZE_MAX;
    w->len = 0;
    w->overflow = false;
    w->frame_start = 0;
}

static uint8_t *fw_room(rs_fw *w, size_t n) {
    if (w->overflow) return NULL;
    if (w->cap - w->len < n) {
        w->overflow = true;
        return NULL;
    }
    uint8_t *p = w->buf ? w->buf + w->len : NULL;
    w->len += n;
    return p;
}

void rs_fw_bytes(rs_fw *w, const void *p, size_t n) {
    uint8_t *d = fw_room(w, n);
    if (d && n) memcpy(d, p, n);
}
void rs_fw_u8(rs_fw *w, uint8_t v) { rs_fw_bytes(w, &v, 1); }
void rs_fw_u16(rs_fw *w, uint16_t v) {
    v = htole16(v);
    rs_fw_bytes(w, &v, 2);
}
void rs_fw_u32(rs_fw *w, uint32_t v) {
    v = htole32(v);
    rs_fw_bytes(w, &v, 4);
}
void rs_fw_u64(rs_fw *w, uint64_t v) {
    v = htole64(v);
    rs_fw_bytes(w, &v, 8);
}

void rs_fw_str(rs_fw *w, rs_str s) {
    if (s.len > UINT16_MAX) { /* not encodable: fail the frame */
        w->overflow = true;
        return;
    }
    rs_fw_u16(w, (uint16_t)s.len);
    rs_fw_bytes(w, s.ptr, s.len);
}

void rs_fw_pad8(rs_fw *w) {
    size_t pad = (8 - (w->len - w->frame_start) % 8) % 8;
    uint8_t *d = fw_room(w, pad);
    if (d) memset(d, 0, pad);
}

void rs_fw_begin(rs_fw *w, rs_msg_type type, uint16_t flags, uint64_t request_id) {
    w->frame_start = w->len;
    rs_fw_u32(w, RS_FRAME_MAGIC);
    rs_fw_u8(w, RS_FRAME_VERSION);
    rs_fw_u8(w, (uint8_t)type);
    rs_fw_u16(w, flags);
    rs_fw_u64(w, request_id);
    rs_fw_u32(w, 0); /* payload_len, set by rs_fw_finish */
    rs_fw_u32(w, 0); /* header_crc */
}

size_t rs_fw_finish(rs_fw *w) {
    if (w->overflow) return 0;
    size_t size = w->len - w->frame_start;
    RS_ASSERT(size >= RS_FRAME_HEADER_BYTES);
    size_t payload = size - RS_FRAME_HEADER_BYTES;
    if (payload > UINT32_MAX) {
        w->overflow = true;
        return 0;
    }
    if (w->buf) {
        uint8_t *h = w->buf + w->frame_start;
        uint32_t v = htole32((uint32_t)payload);
        memcpy(h + 16, &v, 4);
        v = htole32((uint32_t)crc32(0L, h, 20));
        memcpy(h + 20, &v, 4);
    }
    return size;
}

void rs_frame_restamp(uint8_t *frame, uint64_t request_id, uint16_t flags) {
    uint16_t f = htole16(flags);
    uint64_t id = htole64(request_id);
    memcpy(frame + 6, &f, 2);
    memcpy(frame + 8, &id, 8);
    uint32_t crc = htole32((uint32_t)crc32(0L, frame, 20));
    memcpy(frame + 20, &crc, 4);
}

/* Truncates a message to max bytes without splitting a UTF-8 sequence. */
static rs_str msg_str(const char *message, uint32_t max) {
    rs_str s = rs_str_c(message ? message : "");
    if (s.len > max) {
        s.len = max;
        while (s.len > 0 && ((uint8_t)s.ptr[s.len] & 0xC0) == 0x80) s.len--;
    }
    return s;
}

void rs_fw_tensor_list(rs_fw *w, const rs_tensor_list *l) {
    RS_ASSERT(l->count <= RS_MAX_TENSORS);
    rs_fw_u32(w, l->count);
    for (uint32_t i = 0; i < l->count; i++) {
        const rs_tensor_view *t = &l->t[i];
        RS_ASSERT(t->rank <= RS_MAX_RANK);
        rs_fw_str(w, t->name);
        rs_fw_u8(w, (uint8_t)t->dtype);
        rs_fw_u8(w, (uint8_t)t->rank);
        for (uint32_t d = 0; d < t->rank; d++) rs_fw_u64(w, (uint64_t)t->dims[d]);
        rs_fw_u64(w, t->byte_len);
        rs_fw_pad8(w);
        rs_fw_bytes(w, t->data, t->byte_len);
    }
}

void rs_fw_infer_request_payload(rs_fw *w, const rs_infer_request *r) {
    RS_ASSERT(r->n_outputs <= RS_MAX_TENSORS);
    rs_fw_str(w, r->model);
    rs_fw_str(w, r->version);
    rs_fw_str(w, r->id);
    rs_fw_str(w, r->routing_key);
    rs_fw_str(w, r->traceparent);
    rs_fw_u32(w, r->timeout_us);
    rs_fw_u32(w, (uint32_t)r->priority);
    rs_fw_u16(w, (uint16_t)r->n_outputs);
    for (uint32_t i = 0; i < r->n_outputs; i++) rs_fw_str(w, r->outputs[i]);
    rs_fw_tensor_list(w, &r->inputs);
}

void rs_fw_infer_response_payload(rs_fw *w, const rs_infer_response *r) {
    rs_fw_str(w, r->model);
    rs_fw_str(w, r->version);
    rs_fw_str(w, r->id);
    rs_fw_tensor_list(w, &r->outputs);
}

static size_t encode_request(uint8_t *buf, size_t cap, rs_msg_type type, uint64_t request_id,
                             uint16_t flags, const rs_infer_request *r) {
    rs_fw w;
    rs_fw_init(&w, buf, cap);
    rs_fw_begin(&w, type, flags, request_id);
    rs_fw_infer_request_payload(&w, r);
    return rs_fw_finish(&w);
}

size_t rs_encode_infer_request(uint8_t *buf, size_t cap, uint64_t request_id, uint16_t flags,
                               const rs_infer_request *r) {
    return encode_request(buf, cap, RS_MSG_INFER_REQUEST, request_id, flags, r);
}

size_t rs_encode_submit(uint8_t *buf, size_t cap, uint64_t request_id, uint16_t flags,
                        const rs_infer_request *r) {
    return encode_request(buf, cap, RS_MSG_SUBMIT, request_id, flags, r);
}

size_t rs_encode_infer_response(uint8_t *buf, size_t cap, uint64_t request_id, uint16_t flags,
                                const rs_infer_response *r) {
    rs_fw w;
    rs_fw_init(&w, buf, cap);
    rs_fw_begin(&w, RS_MSG_INFER_RESPONSE, flags, request_id);
    rs_fw_infer_response_payload(&w, r);
    return rs_fw_finish(&w);
}

size_t rs_infer_request_size(const rs_infer_request *r) {
    return rs_encode_infer_request(NULL, 0, 0, 0, r);
}

size_t rs_infer_response_size(const rs_infer_response *r) {
    return rs_encode_infer_response(NULL, 0, 0, 0, r);
}

size_t rs_tensor_list_size(const rs_tensor_list *l) {
    rs_fw w;
    rs_fw_init(&w, NULL, 0);
    rs_fw_tensor_list(&w, l);
    return w.len;
}

size_t rs_encode_error(uint8_t *buf, size_t cap, uint64_t request_id, rs_status code,
                       const char *message) {
    rs_fw w;
    rs_fw_init(&w, buf, cap);
    rs_fw_begin(&w, RS_MSG_ERROR, 0, request_id);
    rs_fw_u32(&w, (uint32_t)code);
    rs_fw_str(&w, msg_str(message, RS_MAX_ERROR_MSG_BYTES));
    return rs_fw_finish(&w);
}

size_t rs_encode_register(uint8_t *buf, size_t cap, uint64_t request_id,
                          const rs_register_msg *m) {
    RS_ASSERT(m->n_models <= RS_MAX_WORKER_MODELS);
    rs_fw w;
    rs_fw_init(&w, buf, cap);
    rs_fw_begin(&w, RS_MSG_REGISTER, 0, request_id);
    rs_fw_str(&w, m->worker_id);
    rs_fw_str(&w, m->host);
    rs_fw_u16(&w, m->port);
    rs_fw_str(&w, m->token);
    rs_fw_u32(&w, m->capacity);
    rs_fw_u32(&w, (uint32_t)m->numa_node);
    rs_fw_u32(&w, (uint32_t)m->gpu);
    rs_fw_u16(&w, (uint16_t)m->n_models);
    for (uint32_t i = 0; i < m->n_models; i++) {
        rs_fw_str(&w, m->models[i].name);
        rs_fw_str(&w, m->models[i].version);
        rs_fw_u32(&w, m->models[i].shard);
    }
    return rs_fw_finish(&w);
}

size_t rs_encode_heartbeat(uint8_t *buf, size_t cap, uint64_t request_id,
                           const rs_heartbeat_msg *m) {
    rs_fw w;
    rs_fw_init(&w, buf, cap);
    rs_fw_begin(&w, RS_MSG_HEARTBEAT, 0, request_id);
    rs_fw_str(&w, m->worker_id);
    rs_fw_u32(&w, m->in_flight);
    rs_fw_u32(&w, m->queued);
    return rs_fw_finish(&w);
}

size_t rs_encode_u64(uint8_t *buf, size_t cap, rs_msg_type type, uint64_t request_id,
                     uint64_t value) {
    rs_fw w;
    rs_fw_init(&w, buf, cap);
    rs_fw_begin(&w, type, 0, request_id);
    rs_fw_u64(&w, value);
    return rs_fw_finish(&w);
}

void rs_fw_batch_request_begin(rs_fw *w, uint64_t request_id, rs_str model, rs_str version,
                               uint32_t shard, rs_str traceparent, uint32_t item_count) {
    rs_fw_begin(w, RS_MSG_BATCH_REQUEST, 0, request_id);
    rs_fw_str(w, model);
    rs_fw_str(w, version);
    rs_fw_u32(w, shard);
    rs_fw_str(w, traceparent);
    rs_fw_u32(w, item_count);
}

void rs_fw_batch_request_item(rs_fw *w, uint64_t item_id, const rs_tensor_list *inputs) {
    rs_fw_u64(w, item_id);
    rs_fw_tensor_list(w, inputs);
}

void rs_fw_batch_response_begin(rs_fw *w, uint64_t request_id, uint32_t item_count) {
    rs_fw_begin(w, RS_MSG_BATCH_RESPONSE, 0, request_id);
    rs_fw_u32(w, item_count);
}

void rs_fw_batch_response_ok(rs_fw *w, uint64_t item_id, const rs_tensor_list *outputs) {
    rs_fw_u64(w, item_id);
    rs_fw_u32(w, RS_OK);
    rs_fw_tensor_list(w, outputs);
}

void rs_fw_batch_response_err(rs_fw *w, uint64_t item_id, rs_status code, const char *message) {
    RS_ASSERT(code != RS_OK);
    rs_fw_u64(w, item_id);
    rs_fw_u32(w, (uint32_t)code);
    rs_fw_str(w, msg_str(message, RS_MAX_ERROR_MSG_BYTES));
}

/* http.c — HTTP/1.1 request parsing (http_parser), pipelining in order, and
 * the response writer. Behaviour and limits are described in http.h.
 *
 * Per connection (all carved from one mapping at server creation):
 *   buf    URL, header names/values and the de-chunked body of the request
 *          being parsed, appended in arrival order (so split callbacks only
 *          ever extend the last string);
 *   hdrs   offsets of the current request's headers;
 *   ring   max_pipeline slots for requests awaiting their answer;
 *   hold   answers that arrived before an earlier request's, compacted as
 *          they leave.
 * Once a request is complete it is dispatched at once (the handler copies
 * what it needs), and buf is reused for the next pipelined request. */
#include "engine/http/http.h"

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "engine/http/router.h"

#define HDR_LINE_BYTES 1024       /* status line + our headers */
#define FINAL_BYTES 1024          /* the closing error response of a connection */
#define BIG_BODY_BYTES (1u << 20) /* buf pages beyond this are returned after use */

typedef enum { SLOT_FREE = 0, SLOT_PENDING, SLOT_HELD } slot_state;

typedef struct slot {
    uint8_t state;
    uint8_t head_only;   /* HEAD request: no body */
    uint8_t close_after; /* the request asked to close (or HTTP/1.0) */
    uint8_t http10_keep; /* HTTP/1.0 keep-alive: say so */
    uint32_t hold_off, hold_len;
    uint64_t seq;
} slot;

typedef struct hdr_off {
    uint32_t name_off, name_len, value_off, value_len;
} hdr_off;

struct rs_http_conn {
    rs_http_server *s;
    uint32_t index;
    uint32_t gen;
    bool open;
    bool closing;    /* no more parsing; close once everything is written */
    bool close_sent; /* transport close requested */
    bool in_feed;
    const rs_http_transport *t;
    void *io;
    http_parser parser;
    /* request being parsed */
    uint8_t *buf;
    size_t buf_len;
    uint32_t url_off, url_len;
    hdr_off *hdrs;
    uint32_t header_count, header_bytes;
    bool last_was_value;
    uint32_t body_off;
    uint64_t body_len;
    bool message_done;
    bool expect_continue;
    int error_status; /* raised while parsing: 400, 413, 414, 431 */
    char error_msg[256];
    /* pipeline */
    slot *ring;
    uint64_t head_seq, next_seq;
    uint8_t *hold;
    uint32_t hold_used;
    /* the last response: an error raised by this layer, sent after every
     * pending answer, then the connection closes */
    bool final_pending;
    uint32_t final_len;
    char final_buf[FINAL_BYTES];
};

struct rs_http_server {
    rs_http_config cfg;
    const rs_http_router *router;
    void *user;
    rs_http_conn *conns;
    uint32_t *free_stack;
    uint32_t free_top;
    uint8_t *map;
    size_t map_bytes;
    size_t buf_cap;
    bool draining;
    rs_http_server_stats st;
};

/* ---- config --------------------------------------------------------------- */

void rs_http_config_default(rs_http_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_conns = 1024;
    cfg->max_pipeline = 32;
    cfg->max_url_bytes = 4096;
    cfg->max_header_bytes = 16384;
    cfg->max_headers = 64;
    cfg->max_body_bytes = 8u << 20;
    cfg->hold_bytes = 256u << 10;
    cfg->server_name = "ringserve";
}

int rs_http_config_check(const rs_http_config *cfg, rs_err *err) {
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            rs_err_set(err, __VA_ARGS__);                                                          \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    CHECK(cfg->max_conns >= 1 && cfg->max_conns <= (1u << 20),
          "http: max_conns: %u: must be 1..1048576", cfg->max_conns);
    CHECK(cfg->max_pipeline >= 1 && cfg->max_pipeline <= 1024,
          "http: max_pipeline: %u: must be 1..1024", cfg->max_pipeline);
    CHECK(cfg->max_url_bytes >= 16 && cfg->max_url_bytes <= (1u << 20),
          "http: max_url_bytes: %u: must be 16..1048576", cfg->max_url_bytes);
    CHECK(cfg->max_header_bytes >= 64 && cfg->max_header_bytes <= (1u << 20),
          "http: max_header_bytes: %u: must be 64..1048576", cfg->max_header_bytes);
    CHECK(cfg->max_headers >= 1 && cfg->max_headers <= 1024,
          "http: max_headers: %u: must be 1..1024", cfg->max_headers);
    CHECK(cfg->max_body_bytes >= 1 && cfg->max_body_bytes < (1ull << 31),
          "http: max_body_bytes: %llu: must be 1..2147483647",
          (unsigned long long)cfg->max_body_bytes);
    CHECK(cfg->hold_bytes >= 1024 && cfg->hold_bytes <= (1u << 30),
          "http: hold_bytes: %u: must be 1024..1073741824", cfg->hold_bytes);
    return 0;
#undef CHECK
}

const char *rs_http_method_name(rs_http_method m) {
    switch (m) {
    case RS_HTTP_GET: return "GET";
    case RS_HTTP_HEAD: return "HEAD";
    case RS_HTTP_POST: return "POST";
    case RS_HTTP_PUT: return "PUT";
    case RS_HTTP_DELETE: return "DELETE";
    default: return "OTHER";
    }
}

const char *rs_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

size_t rs_http_json_escape(const char *s, size_t len, char *out, size_t out_bytes) {
    size_t n = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n + 1 < out_bytes) out[n] = (c);                                                       \
        n++;                                                                                       \
    } while (0)
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c == '\n') {
            PUT('\\');
            PUT('n');
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        } else {
            PUT((char)c);
        }
    }
#undef PUT
    if (out_bytes) out[n < out_bytes ? n : out_bytes - 1] = 0;
    return n;
}

/* ---- server ------------------------------------------------------------- */

static size_t align_up(size_t v) {
    return (v + 63) & ~(size_t)63;
}

rs_http_server *rs_http_server_create(const rs_http_config *cfg, const rs_http_router *router,
                                      rs_err *err) {
    if (rs_http_config_check(cfg, err) != 0) return NULL;
    rs_http_server *s = calloc(1, sizeof(*s));
    if (!s) goto oom;
    s->cfg = *cfg;
    s->router = router;
    s->buf_cap = (size_t)cfg->max_url_bytes + cfg->max_header_bytes + cfg->max_body_bytes;
    size_t per_conn = align_up(s->buf_cap) + align_up(sizeof(hdr_off) * cfg->max_headers) +
                      align_up(sizeof(slot) * cfg->max_pipeline) + align_up(cfg->hold_bytes);
    s->map_bytes = per_conn * cfg->max_conns;
    /* Reserved, not committed: pages are touched only by requests that use them. */
    s->map = mmap(NULL, s->map_bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        rs_err_set(err, "http: cannot reserve %zu bytes for %u connections: %s", s->map_bytes,
                   cfg->max_conns, strerror(errno));
        rs_http_server_destroy(s);
        return NULL;
    }
    s->conns = calloc(cfg->max_conns, sizeof(rs_http_conn));
    s->free_stack = calloc(cfg->max_conns, sizeof(uint32_t));
    if (!s->conns || !s->free_stack) goto oom;
    uint8_t *p = s->map;
    for (uint32_t i = 0; i < cfg->max_conns; i++) {
        rs_http_conn *c = &s->conns[i];
        c->s = s;
        c->index = i;
        c->buf = p;
        p += align_up(s->buf_cap);
        c->hdrs = (hdr_off *)p;
        p += align_up(sizeof(hdr_off) * cfg->max_headers);
        c->ring = (slot *)p;
        p += align_up(sizeof(slot) * cfg->max_pipeline);
        c->hold = p;
        p += align_up(cfg->hold_bytes);
        s->free_stack[i] = cfg->max_conns - 1 - i;
    }
    s->free_top = cfg->max_conns;
    return s;
oom:
    rs_http_server_destroy(s);
    rs_err_set(err, "http: out of memory");
    return NULL;
}

void rs_http_server_destroy(rs_http_server *s) {
    if (!s) return;
    if (s->map) munmap(s->map, s->map_bytes);
    free(s->conns);
    free(s->free_stack);
    free(s);
}

void rs_http_server_set_user(rs_http_server *s, void *user) {
    s->user = user;
}
void *rs_http_server_user(const rs_http_server *s) {
    return s->user;
}
void rs_http_server_stats_get(const rs_http_server *s, rs_http_server_stats *out) {
    *out = s->st;
}

/* ---- parser callbacks ---------------------------------------------------- */

static rs_http_conn *conn_of(http_parser *p) {
    return p->data;
}

static int conn_raise(rs_http_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int conn_raise(rs_http_conn *c, int status, const char *fmt, ...) {
    if (c->error_status) return 1;
    c->error_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error_msg, sizeof(c->error_msg), fmt, ap);
    va_end(ap);
    http_parser_pause(&c->parser, 1);
    return 1;
}

static int append(rs_http_conn *c, const char *at, size_t len) {
    RS_ASSERT(c->buf_len + len <= c->s->buf_cap); /* every part is limited before */
    memcpy(c->buf + c->buf_len, at, len);
    c->buf_len += len;
    return 0;
}

static int on_message_begin(http_parser *p) {
    rs_http_conn *c = conn_of(p);
    c->buf_len = 0;
    c->url_off = c->url_len = 0;
    c->header_count = c->header_bytes = 0;
    c->last_was_value = false;
    c->body_off = 0;
    c->body_len = 0;
    c->expect_continue = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    rs_http_conn *c = conn_of(p);
    if ((uint64_t)c->url_len + len > c->s->cfg.max_url_bytes)
        return conn_raise(c, 414, "request URL is longer than %u bytes", c->s->cfg.max_url_bytes);
    if (c->url_len == 0) c->url_off = (uint32_t)c->buf_len;
    c->url_len += (uint32_t)len;
    return append(c, at, len);
}

static int header_budget(rs_http_conn *c, size_t len) {
    c->header_bytes += (uint32_t)len;
    if (c->header_bytes > c->s->cfg.max_header_bytes)
        return conn_raise(c, 431, "request headers are larger than %u bytes",
                          c->s->cfg.max_header_bytes);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    rs_http_conn *c = conn_of(p);
    if (header_budget(c, len)) return 1;
    if (c->header_count == 0 || c->last_was_value) {
        if (c->header_count == c->s->cfg.max_headers)
            return conn_raise(c, 431, "more than %u request headers", c->s->cfg.max_headers);
        hdr_off *h = &c->hdrs[c->header_count++];
        h->name_off = (uint32_t)c->buf_len;
        h->name_len = 0;
        h->value_off = h->value_len = 0;
        c->last_was_value = false;
    }
    c->hdrs[c->header_count - 1].name_len += (uint32_t)len;
    return append(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    rs_http_conn *c = conn_of(p);
    if (header_budget(c, len)) return 1;
    hdr_off *h = &c->hdrs[c->header_count - 1];
    if (!c->last_was_value) {
        h->value_off = (uint32_t)c->buf_len;
        h->value_len = 0;
        c->last_was_value = true;
    }
    h->value_len += (uint32_t)len;
    return append(c, at, len);
}

static bool hdr_is(const rs_http_conn *c, const hdr_off *h, const char *name) {
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp((const char *)c->buf + h->name_off, name, n) == 0;
}

static int on_headers_complete(http_parser *p) {
    rs_http_conn *c = conn_of(p);
    bool chunked = (p->flags & F_CHUNKED) != 0;
    if (!chunked && p->content_length != ULLONG_MAX &&
        p->content_length > c->s->cfg.max_body_bytes) {
        conn_raise(c, 413, "request body of %llu bytes is over the %llu-byte limit",
                   (unsigned long long)p->content_length,
                   (unsigned long long)c->s->cfg.max_body_bytes);
        return 0; /* paused: the error is handled after http_parser_execute */
    }
    for (uint32_t i = 0; i < c->header_count; i++) {
        const hdr_off *h = &c->hdrs[i];
        if (hdr_is(c, h, "expect") && h->value_len == 12 &&
            strncasecmp((const char *)c->buf + h->value_off, "100-continue", 12) == 0)
            c->expect_continue = true;
    }
    c->body_off = (uint32_t)c->buf_len;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    rs_http_conn *c = conn_of(p);
    if (c->body_len + len > c->s->cfg.max_body_bytes)
        return conn_raise(c, 413, "request body is over the %llu-byte limit",
                          (unsigned long long)c->s->cfg.max_body_bytes);
    c->body_len += len;
    return append(c, at, len);
}

static int on_message_complete(http_parser *p) {
    rs_http_conn *c = conn_of(p);
    c->message_done = true;
    http_parser_pause(p, 1); /* dispatch before parsing the next pipelined request */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connections ---------------------------------------------------------- */

rs_http_conn *rs_http_conn_open(rs_http_server *s, const rs_http_transport *t, void *io) {
    if (s->free_top == 0) {
        s->st.conns_refused++;
        return NULL;
    }
    rs_http_conn *c = &s->conns[s->free_stack[--s->free_top]];
    uint32_t gen = c->gen;
    uint32_t index = c->index;
    uint8_t *buf = c->buf, *hold = c->hold;
    hdr_off *hdrs = c->hdrs;
    slot *ring = c->ring;
    memset(c, 0, sizeof(*c));
    c->s = s;
    c->index = index;
    c->gen = gen + 1;
    c->buf = buf;
    c->hold = hold;
    c->hdrs = hdrs;
    c->ring = ring;
    memset(ring, 0, sizeof(slot) * s->cfg.max_pipeline);
    c->open = true;
    c->t = t;
    c->io = io;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    s->st.conns_open++;
    return c;
}

void rs_http_conn_closed(rs_http_conn *c) {
    RS_ASSERT(c->open);
    rs_http_server *s = c->s;
    c->open = false;
    c->gen++; /* every handle of this connection is stale now */
    s->st.conns_open--;
    s->free_stack[s->free_top++] = c->index;
}

static void conn_close(rs_http_conn *c) {
    c->closing = true;
    if (c->close_sent) return;
    c->close_sent = true;
    c->t->close(c->io);
}

static int conn_sendv(rs_http_conn *c, const struct iovec *iov, int n) {
    if (c->close_sent) return -EPIPE;
    int rc = c->t->sendv(c->io, iov, n);
    if (rc != 0) conn_close(c); /* the peer does not read: give up on it */
    return rc;
}

/* Sends one whole response. When the transport has no room for it
 * (-ENOBUFS: the loop's send buffers are taken), the client gets a short 503
 * in its place instead of a silent close; if even that does not fit, the
 * connection closes. */
static void send_response(rs_http_conn *c, const struct iovec *iov, int n, bool keep_open) {
    if (c->close_sent) return;
    int rc = c->t->sendv(c->io, iov, n);
    if (rc == -ENOBUFS) {
        static const char over[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            "Content-Length: 60\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            "{\"error\":\"overloaded: no send buffer room for the response\"}";
        c->s->st.send_overflows++;
        struct iovec o = {(void *)over, sizeof(over) - 1};
        c->t->sendv(c->io, &o, 1);
        keep_open = false;
    } else if (rc != 0) {
        keep_open = false;
    }
    if (!keep_open) conn_close(c);
}

static slot *slot_of(rs_http_conn *c, uint64_t seq) {
    return &c->ring[seq % c->s->cfg.max_pipeline];
}

/* Appends into a fixed buffer (response heads are built per request, so no
 * printf: this is about 40% of a small keep-alive answer otherwise). */
typedef struct hbuf {
    char *p;
    size_t cap, len;
} hbuf;

static void hb_put(hbuf *b, const char *s, size_t n) {
    RS_ASSERT(b->len + n <= b->cap); /* callers reserve room */
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void hb_str(hbuf *b, const char *s) {
    hb_put(b, s, strlen(s));
}

static void hb_u64(hbuf *b, uint64_t v) {
    char t[20];
    int i = 20;
    do
        t[--i] = (char)('0' + v % 10);
    while (v /= 10);
    hb_put(b, t + i, (size_t)(20 - i));
}

/* Status line and our headers for one response. Our part needs well under
 * 256 bytes (server_name and content_type are short constants); an extra
 * header that would not fit with the final CRLF is left out. */
static size_t format_head(const rs_http_server *s, const rs_http_response *r, const slot *sl,
                          uint64_t body_len, char *out, size_t cap) {
    RS_ASSERT(cap >= 256);
    hbuf b = {out, cap, 0};
    hb_str(&b, "HTTP/1.1 ");
    hb_u64(&b, (uint64_t)(r->status >= 100 && r->status <= 999 ? r->status : 500));
    hb_put(&b, " ", 1);
    hb_str(&b, rs_http_reason(r->status));
    if (s->cfg.server_name) {
        hb_str(&b, "\r\nServer: ");
        hb_put(&b, s->cfg.server_name, strnlen(s->cfg.server_name, 48));
    }
    if (body_len > 0 || r->content_type) {
        hb_str(&b, "\r\nContent-Type: ");
        const char *ct = r->content_type ? r->content_type : "application/json";
        hb_put(&b, ct, strnlen(ct, 64));
    }
    hb_str(&b, "\r\nContent-Length: ");
    hb_u64(&b, body_len);
    if (r->retry_after_s) {
        hb_str(&b, "\r\nRetry-After: ");
        hb_u64(&b, r->retry_after_s);
    }
    if (r->close || sl->close_after)
        hb_str(&b, "\r\nConnection: close");
    else if (sl->http10_keep)
        hb_str(&b, "\r\nConnection: keep-alive");
    hb_put(&b, "\r\n", 2);
    for (uint32_t i = 0; i < r->header_count; i++) {
        const rs_http_header *h = &r->headers[i];
        if (b.len + h->name.len + h->value.len + 4 + 2 > cap) continue;
        hb_put(&b, h->name.ptr, h->name.len);
        hb_put(&b, ": ", 2);
        hb_put(&b, h->value.ptr, h->value.len);
        hb_put(&b, "\r\n", 2);
    }
    hb_put(&b, "\r\n", 2);
    return b.len;
}

static void send_final_if_due(rs_http_conn *c) {
    if (!c->final_pending || c->head_seq != c->next_seq || c->close_sent) return;
    c->final_pending = false;
    struct iovec iov = {c->final_buf, c->final_len};
    conn_sendv(c, &iov, 1);
    conn_close(c);
}

/* Moves the held answers still waiting to the front of the hold buffer. */
static void hold_compact(rs_http_conn *c) {
    uint32_t at = 0;
    for (uint64_t q = c->head_seq; q < c->next_seq; q++) {
        slot *sl = slot_of(c, q);
        if (sl->state != SLOT_HELD) continue;
        if (sl->hold_off != at) memmove(c->hold + at, c->hold + sl->hold_off, sl->hold_len);
        sl->hold_off = at;
        at += sl->hold_len;
    }
    c->hold_used = at;
}

/* Writes every answered request at the head of the pipeline, in order. */
static void flush_head(rs_http_conn *c) {
    bool released = false;
    while (c->head_seq < c->next_seq) {
        slot *sl = slot_of(c, c->head_seq);
        if (sl->state != SLOT_HELD) break;
        struct iovec iov = {c->hold + sl->hold_off, sl->hold_len};
        bool close_after = sl->close_after;
        sl->state = SLOT_FREE;
        c->head_seq++;
        released = true;
        send_response(c, &iov, 1, !close_after);
        if (c->close_sent) break;
    }
    if (released) hold_compact(c);
    send_final_if_due(c);
}

static bool handle_live(const rs_http_server *s, rs_http_handle h, rs_http_conn **out) {
    if (h.slot >= s->cfg.max_conns) return false;
    rs_http_conn *c = &s->conns[h.slot];
    if (!c->open || c->gen != h.gen || h.seq < c->head_seq || h.seq >= c->next_seq) return false;
    if (slot_of(c, h.seq)->state != SLOT_PENDING) return false;
    *out = c;
    return true;
}

bool rs_http_pending(const rs_http_server *s, rs_http_handle h) {
    rs_http_conn *c;
    return handle_live(s, h, &c);
}

int rs_http_respond(rs_http_server *s, rs_http_handle h, const rs_http_response *resp) {
    rs_http_conn *c;
    if (!handle_live(s, h, &c)) return -ENOENT;
    slot *sl = slot_of(c, h.seq);
    if (resp->close || s->draining) sl->close_after = 1;
    uint64_t body_len = 0;
    for (int i = 0; i < resp->body_iovcnt; i++)
        body_len += resp->body[i].iov_len;
    char head[HDR_LINE_BYTES];
    size_t head_len = format_head(s, resp, sl, body_len, head, sizeof(head));
    bool send_body = !sl->head_only;
    s->st.responses++;

    if (h.seq == c->head_seq) {
        int body_n = send_body ? resp->body_iovcnt : 0;
        struct iovec iov[1 + body_n];
        int n = 0;
        iov[n++] = (struct iovec){head, head_len};
        for (int i = 0; i < body_n; i++)
            iov[n++] = resp->body[i];
        bool close_after = sl->close_after;
        sl->state = SLOT_FREE;
        c->head_seq++;
        send_response(c, iov, n, !close_after);
        if (!c->close_sent) flush_head(c);
        return 0;
    }

    /* An earlier request is still pending: keep this answer until its turn. */
    uint64_t need = head_len + (send_body ? body_len : 0);
    if (c->hold_used + need > s->cfg.hold_bytes) {
        s->st.hold_overflows++;
        static const char body[] =
            "{\"error\":\"response held behind an earlier pipelined request is over hold_bytes\"}";
        rs_http_response over = {.status = 503,
                                 .body = &(struct iovec){(void *)body, sizeof(body) - 1},
                                 .body_iovcnt = 1};
        head_len = format_head(s, &over, sl, sizeof(body) - 1, head, sizeof(head));
        need = head_len + (sl->head_only ? 0 : sizeof(body) - 1);
        if (c->hold_used + need > s->cfg.hold_bytes) { /* not even that fits: give up the peer */
            conn_close(c);
            return 0;
        }
        memcpy(c->hold + c->hold_used, head, head_len);
        if (!sl->head_only) memcpy(c->hold + c->hold_used + head_len, body, sizeof(body) - 1);
    } else {
        uint8_t *p = c->hold + c->hold_used;
        memcpy(p, head, head_len);
        p += head_len;
        for (int i = 0; send_body && i < resp->body_iovcnt; i++) {
            memcpy(p, resp->body[i].iov_base, resp->body[i].iov_len);
            p += resp->body[i].iov_len;
        }
    }
    sl->state = SLOT_HELD;
    sl->hold_off = c->hold_used;
    sl->hold_len = (uint32_t)need;
    c->hold_used += (uint32_t)need;
    return 0;
}

int rs_http_respond_json(rs_http_server *s, rs_http_handle h, int status, const char *json,
                         size_t len) {
    struct iovec iov = {(void *)json, len};
    rs_http_response r = {.status = status, .body = &iov, .body_iovcnt = len ? 1 : 0};
    return rs_http_respond(s, h, &r);
}

static size_t error_body(const char *msg, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "{\"error\":\"");
    if (n < cap) n += rs_http_json_escape(msg, strlen(msg), out + n, cap - n);
    if (n < cap) n += (size_t)snprintf(out + n, cap - n, "\"}");
    return n < cap ? n : cap - 1;
}

int rs_http_respond_error(rs_http_server *s, rs_http_handle h, int status, uint32_t retry_after_s,
                          const char *msg) {
    char body[RS_ERR_MSG_BYTES * 2 + 32];
    size_t len = error_body(msg, body, sizeof(body));
    struct iovec iov = {body, len};
    rs_http_response r = {
        .status = status, .body = &iov, .body_iovcnt = 1, .retry_after_s = retry_after_s};
    return rs_http_respond(s, h, &r);
}

/* ---- requests ---------------------------------------------------------- */

static rs_http_method method_of(unsigned m) {
    switch (m) {
    case HTTP_GET: return RS_HTTP_GET;
    case HTTP_HEAD: return RS_HTTP_HEAD;
    case HTTP_POST: return RS_HTTP_POST;
    case HTTP_PUT: return RS_HTTP_PUT;
    case HTTP_DELETE: return RS_HTTP_DELETE;
    default: return RS_HTTP_OTHER;
    }
}

const rs_str *rs_http_header_get(const rs_http_request *req, const char *name) {
    size_t n = strlen(name);
    for (uint32_t i = 0; i < req->header_count; i++)
        if (req->headers[i].name.len == n && strncasecmp(req->headers[i].name.ptr, name, n) == 0)
            return &req->headers[i].value;
    return NULL;
}

const rs_str *rs_http_param_get(const rs_http_request *req, const char *name) {
    size_t n = strlen(name);
    for (uint32_t i = 0; i < req->param_count; i++)
        if (req->params[i].name.len == n && memcmp(req->params[i].name.ptr, name, n) == 0)
            return &req->params[i].value;
    return NULL;
}

/* A complete request: give it a pipeline slot and run its handler. */
static void dispatch(rs_http_conn *c) {
    rs_http_server *s = c->s;
    http_parser *p = &c->parser;
    bool keep_alive = http_should_keep_alive(p) != 0;
    uint64_t seq = c->next_seq++;
    slot *sl = slot_of(c, seq);
    RS_ASSERT(sl->state == SLOT_FREE);
    *sl = (slot){.state = SLOT_PENDING,
                 .seq = seq,
                 .head_only = p->method == HTTP_HEAD,
                 .close_after = !keep_alive,
                 .http10_keep = keep_alive && p->http_major == 1 && p->http_minor == 0};
    s->st.requests++;
    if (!keep_alive) c->closing = true; /* nothing after this request is read */

    rs_http_header headers[c->header_count ? c->header_count : 1];
    for (uint32_t i = 0; i < c->header_count; i++) {
        const hdr_off *h = &c->hdrs[i];
        headers[i].name = (rs_str){(const char *)c->buf + h->name_off, h->name_len};
        headers[i].value = (rs_str){(const char *)c->buf + h->value_off, h->value_len};
    }
    const char *url = (const char *)c->buf + c->url_off;
    const char *q = memchr(url, '?', c->url_len);
    uint32_t path_len = q ? (uint32_t)(q - url) : c->url_len;
    const char *mname = http_method_str((enum http_method)p->method);
    rs_http_request req = {
        .handle = {.slot = c->index, .gen = c->gen, .seq = seq},
        .method = method_of(p->method),
        .method_name = {mname, (uint32_t)strlen(mname)},
        .path = {url, path_len},
        .query = {q ? q + 1 : url + c->url_len, q ? c->url_len - path_len - 1 : 0},
        .header_count = c->header_count,
        .headers = headers,
        .body = c->buf + c->body_off,
        .body_len = c->body_len,
        .keep_alive = keep_alive,
        .recv_ns = c->t->now_ns ? c->t->now_ns(c->io) : rs_now_ns(),
    };
    const rs_http_route *route = NULL;
    rs_http_match m = s->router ? rs_http_router_match(s->router, req.method, req.path, &route,
                                                       req.params, &req.param_count)
                                : RS_HTTP_MATCH_NO_ROUTE;
    char msg[256];
    if (m == RS_HTTP_MATCH_FOUND) {
        route->fn(s, &req, route->arg);
    } else if (m == RS_HTTP_MATCH_BAD_METHOD) {
        char allow[64];
        rs_http_router_allowed(s->router, req.path, allow, sizeof(allow));
        snprintf(msg, sizeof(msg), "method %.*s is not allowed on %.*s (allowed: %s)",
                 (int)req.method_name.len, req.method_name.ptr, (int)req.path.len, req.path.ptr,
                 allow);
        char body[512];
        size_t len = error_body(msg, body, sizeof(body));
        rs_http_header hdr = {{"Allow", 5}, {allow, (uint32_t)strlen(allow)}};
        struct iovec iov = {body, len};
        rs_http_response r = {
            .status = 405, .body = &iov, .body_iovcnt = 1, .headers = &hdr, .header_count = 1};
        s->st.errors_4xx++;
        rs_http_respond(s, req.handle, &r);
    } else {
        snprintf(msg, sizeof(msg), "no route for %.*s %.*s", (int)req.method_name.len,
                 req.method_name.ptr, (int)req.path.len, req.path.ptr);
        s->st.errors_4xx++;
        rs_http_respond_error(s, req.handle, 404, 0, msg);
    }
    if (c->buf_len > BIG_BODY_BYTES) /* give a big body's pages back */
        madvise(c->buf + BIG_BODY_BYTES, c->buf_len - BIG_BODY_BYTES, MADV_DONTNEED);
}

/* An error this layer raised: answered after every pending request, then close. */
static void fail_conn(rs_http_conn *c, int status, const char *msg) {
    rs_http_server *s = c->s;
    s->st.errors_4xx++;
    char body[400];
    size_t len = error_body(msg, body, sizeof(body));
    slot none = {0};
    rs_http_response r = {.status = status, .close = true};
    size_t n = format_head(s, &r, &none, len, c->final_buf, sizeof(c->final_buf) - len);
    memcpy(c->final_buf + n, body, len);
    c->final_len = (uint32_t)(n + len);
    c->final_pending = true;
    c->closing = true;
    send_final_if_due(c);
}

void rs_http_server_drain(rs_http_server *s) {
    s->draining = true;
    for (uint32_t i = 0; i < s->cfg.max_conns; i++) {
        rs_http_conn *c = &s->conns[i];
        if (c->open && !c->in_feed && c->head_seq == c->next_seq) conn_close(c);
    }
}

ssize_t rs_http_conn_feed(rs_http_conn *c, const uint8_t *data, size_t len) {
    if (c->closing) return (ssize_t)len; /* everything after the last request is ignored */
    size_t off = 0;
    c->in_feed = true;
    while (off < len && !c->closing) {
        size_t n = http_parser_execute(&c->parser, &settings, (const char *)data + off, len - off);
        off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->error_status) {
            fail_conn(c, c->error_status, c->error_msg);
            break;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
        } else if (e != HPE_OK) {
            char msg[160];
            if (e == HPE_HEADER_OVERFLOW) {
                snprintf(msg, sizeof(msg), "request headers are too large");
                fail_conn(c, 431, msg);
            } else {
                snprintf(msg, sizeof(msg), "malformed HTTP request: %s", http_errno_description(e));
                fail_conn(c, 400, msg);
            }
            break;
        }
        if (c->expect_continue && !c->message_done) {
            c->expect_continue = false;
            if (c->head_seq == c->next_seq) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                struct iovec iov = {(void *)cont, sizeof(cont) - 1};
                conn_sendv(c, &iov, 1);
            }
        }
        if (c->message_done) {
            c->message_done = false;
            if (c->next_seq - c->head_seq == c->s->cfg.max_pipeline) {
                /* Every slot awaits an answer: the client pipelines deeper than
                 * we allow. Answer that (after the pending ones) and close. */
                char msg[96];
                snprintf(msg, sizeof(msg), "more than %u pipelined requests awaiting answers",
                         c->s->cfg.max_pipeline);
                fail_conn(c, 503, msg);
                break;
            }
            dispatch(c);
        } else if (n == 0) {
            break; /* nothing consumed without a reason: wait for more */
        }
    }
    c->in_feed = false;
    return (ssize_t)len;
}

/* http.h — HTTP/1.1 server connections on the event loop (parsed by http_parser).
 *
 * Why a module: the front door must speak HTTP/1.1 the way load generators and
 * proxies do (keep-alive, pipelining, chunked bodies) while staying bounded
 * and letting inference answer later, after a batch returns from a worker.
 *
 * Shape:
 *   - rs_http_server: one per io loop (shared-nothing). Created with a fixed
 *     number of connection slots; every slot's buffers are allocated at
 *     creation (lazily touched pages), nothing is allocated per request.
 *   - A connection parses requests with http_parser. For each complete
 *     request the router (engine/http/router.h) picks a handler, which is
 *     called with an rs_http_request valid only during the call. The handler
 *     answers now or later with rs_http_respond(server, req->handle, ...).
 *   - Pipelining: up to max_pipeline requests per connection may be awaiting
 *     an answer; responses are written in request order. An answer that
 *     arrives for a later request while an earlier one is pending is held in
 *     the connection's hold buffer (hold_bytes) until its turn; when it does
 *     not fit, the client gets a 503 for that request instead (bounded memory,
 *     never silence). When max_pipeline requests are pending the connection
 *     stops reading until one is answered.
 *   - Limits answered with an error response and a close: URL over
 *     max_url_bytes -> 414, header bytes over max_header_bytes or more than
 *     max_headers headers -> 431, body over max_body_bytes -> 413, anything
 *     http_parser rejects -> 400 naming the parser's reason.
 *   - An answer the transport has no room for (-ENOBUFS from rs_conn_sendv:
 *     the loop's send buffers are taken) is replaced by a short 503
 *     "overloaded" with Retry-After, and the connection closes after it.
 *   - Connection: close (or HTTP/1.0 without keep-alive) closes after that
 *     response is written; the server does the same after an error it raised.
 *   - "Expect: 100-continue" gets "100 Continue" when nothing is pending ahead.
 *
 * Transport: the protocol state machine talks to its connection through
 * rs_http_transport, so tests feed bytes without sockets and the loop glue
 * (rs_http_server_listen) maps it onto io/loop.h. */
#ifndef RS_HTTP_H
#define RS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "engine/common/err.h"
#include "io/tensor.h" /* rs_str */

typedef struct rs_http_server rs_http_server;
typedef struct rs_http_conn rs_http_conn;
typedef struct rs_http_router rs_http_router;
typedef struct rs_loop rs_loop;

#define RS_HTTP_MAX_PARAMS 4 /* {name} captures per route */

typedef enum rs_http_method {
    RS_HTTP_OTHER = 0,
    RS_HTTP_GET,
    RS_HTTP_HEAD,
    RS_HTTP_POST,
    RS_HTTP_PUT,
    RS_HTTP_DELETE,
} rs_http_method;

const char *rs_http_method_name(rs_http_method m);

typedef struct rs_http_config {
    uint32_t max_conns;        /* connection slots per server (per loop) */
    uint32_t max_pipeline;     /* requests awaiting an answer per connection */
    uint32_t max_url_bytes;    /* -> 414 */
    uint32_t max_header_bytes; /* names + values of one request -> 431 */
    uint32_t max_headers;      /* header count of one request -> 431 */
    uint64_t max_body_bytes;   /* decoded body of one request -> 413 */
    uint32_t hold_bytes;       /* per connection: answers waiting for their turn */
    const char *server_name;   /* "Server:" header value; NULL for none */
} rs_http_config;

/* Defaults: 1024 conns, pipeline 32, URL 4 KiB, headers 16 KiB / 64, body
 * 8 MiB, hold 256 KiB, server "ringserve". */
void rs_http_config_default(rs_http_config *cfg);
/* Checks ranges (every limit >= 1, pipeline <= 1024). 0 or -1 with err. */
int rs_http_config_check(const rs_http_config *cfg, rs_err *err);

/* Identifies one request for a later answer: stale handles (the connection
 * closed, or the slot was reused) are detected, never misdelivered. */
typedef struct rs_http_handle {
    uint32_t slot; /* connection slot in the server */
    uint32_t gen;  /* slot generation at the time of the request */
    uint64_t seq;  /* request number on that connection */
} rs_http_handle;

typedef struct rs_http_header {
    rs_str name;
    rs_str value;
} rs_http_header;

typedef struct rs_http_param {
    rs_str name;  /* route pattern name, e.g. "model" */
    rs_str value; /* path segment, not decoded */
} rs_http_param;

/* A complete request, valid only while the handler runs (strings point into
 * the connection's buffer). Copy what must outlive the call. */
typedef struct rs_http_request {
    rs_http_handle handle;
    rs_http_method method;
    rs_str method_name; /* e.g. "PATCH" when method is OTHER */
    rs_str path;        /* without the query */
    rs_str query;       /* after '?', may be empty */
    uint32_t header_count;
    const rs_http_header *headers;
    const uint8_t *body; /* decoded (de-chunked) */
    uint64_t body_len;
    bool keep_alive;
    uint32_t param_count; /* filled by the router */
    rs_http_param params[RS_HTTP_MAX_PARAMS];
    uint64_t recv_ns; /* when the request was complete (transport clock) */
} rs_http_request;

/* Case-insensitive header lookup; NULL when absent. */
const rs_str *rs_http_header_get(const rs_http_request *req, const char *name);
/* Route capture by name; NULL when absent. */
const rs_str *rs_http_param_get(const rs_http_request *req, const char *name);

typedef struct rs_http_response {
    int status;                    /* 200, 202, 400, ... */
    const char *content_type;      /* NULL: "application/json" when there is a body */
    const rs_http_header *headers; /* extra headers, may be NULL */
    uint32_t header_count;
    const struct iovec *body; /* copied before rs_http_respond returns */
    int body_iovcnt;
    uint32_t retry_after_s; /* > 0: adds "Retry-After: N" (use with 429/503) */
    bool close;             /* adds "Connection: close" and closes after it */
} rs_http_response;

/* "Not Found" for 404, ...; "Unknown" otherwise. */
const char *rs_http_reason(int status);

/* Answers the request identified by h. Returns 0, or -ENOENT when the
 * connection is gone or h was already answered (the answer is dropped). May be
 * called from inside the handler or any time later on the server's thread. */
int rs_http_respond(rs_http_server *s, rs_http_handle h, const rs_http_response *resp);
/* Answers with {"error": "<msg>"} (msg JSON-escaped). retry_after_s as above. */
int rs_http_respond_error(rs_http_server *s, rs_http_handle h, int status, uint32_t retry_after_s,
                          const char *msg);
/* Answers with a JSON body given as text (len bytes). */
int rs_http_respond_json(rs_http_server *s, rs_http_handle h, int status, const char *json,
                         size_t len);
/* True while h is awaiting an answer (its connection is alive). */
bool rs_http_pending(const rs_http_server *s, rs_http_handle h);

/* Escapes s (len bytes) as a JSON string body (without quotes) into out.
 * Returns the length needed (may exceed out_bytes: then out is truncated but
 * NUL-terminated). Control bytes become \u00XX. */
size_t rs_http_json_escape(const char *s, size_t len, char *out, size_t out_bytes);

/* ---- server ----------------------------------------------------------- */

/* The router must outlive the server. Allocates every slot's state. */
rs_http_server *rs_http_server_create(const rs_http_config *cfg, const rs_http_router *router,
                                      rs_err *err);
void rs_http_server_destroy(rs_http_server *s);
/* Opaque pointer handed to route handlers as ctx->user (see router.h). */
void rs_http_server_set_user(rs_http_server *s, void *user);
void *rs_http_server_user(const rs_http_server *s);

/* Shutdown: from now on every response says "Connection: close" and its
 * connection closes after it; connections with nothing pending (idle
 * keep-alive) are closed now. Requests already pending are still answered. */
void rs_http_server_drain(rs_http_server *s);

typedef struct rs_http_server_stats {
    uint64_t conns_open;
    uint64_t requests;
    uint64_t responses;
    uint64_t errors_4xx;     /* raised by this layer (400/404/405/413/414/431) */
    uint64_t hold_overflows; /* answers replaced by 503 because the hold buffer was full */
    uint64_t send_overflows; /* answers replaced by 503 because the transport had no room */
    uint64_t conns_refused;  /* no free slot */
} rs_http_server_stats;
void rs_http_server_stats_get(const rs_http_server *s, rs_http_server_stats *out);

/* ---- transport (tests and the loop glue) ------------------------------- */

typedef struct rs_http_transport {
    /* Queue bytes for the peer; 0 or -errno (the connection is then closed). */
    int (*sendv)(void *io, const struct iovec *iov, int iovcnt);
    /* Flush queued bytes, then close; rs_http_conn_closed follows later. */
    void (*close)(void *io);
    void (*pause_read)(void *io);
    void (*resume_read)(void *io);
    uint64_t (*now_ns)(void *io); /* may be NULL: rs_now_ns() */
} rs_http_transport;

/* Takes a free slot for a new connection; NULL when all max_conns are used. */
rs_http_conn *rs_http_conn_open(rs_http_server *s, const rs_http_transport *t, void *io);
/* Feeds received bytes. Returns the count consumed (the rest must be fed
 * again, after rs_http_transport.resume_read, with whatever follows), or -1
 * when the connection must be closed now. */
ssize_t rs_http_conn_feed(rs_http_conn *c, const uint8_t *data, size_t len);
/* The transport closed: frees the slot; pending handles become stale. */
void rs_http_conn_closed(rs_http_conn *c);

/* ---- on the event loop (io/loop.h) --------------------------------------- */

/* Listens on host:port (SO_REUSEPORT when reuseport) on loop and serves every
 * accepted connection with s. Returns the listener id (rs_loop_listen_port
 * gives the port) or -1 with err. */
int rs_http_server_listen(rs_http_server *s, rs_loop *loop, const char *host, uint16_t port,
                          bool reuseport, rs_err *err);

#endif

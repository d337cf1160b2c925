/* rs_client.h — a small blocking C client for ringserve.
 *
 * Why a module: `ringserve infer`, the load generator in bench/ and tests
 * all talk to a server the same way, so the socket plumbing, the bounded
 * buffers and the error sentences live in one place.
 *
 * Two endpoints:
 *   - framed (docs/protocol.md): one TCP connection, blocking I/O, frames
 *     encoded and decoded with io/frame.h. One call at a time
 *     (rs_client_infer, rs_client_ping), or pipelined: queue many requests
 *     with rs_client_send_infer, rs_client_flush, then read the replies in
 *     arrival order with rs_client_recv (the server may answer out of order:
 *     match them by request_id);
 *   - HTTP/1.1 KServe v2 (rs_client_http_*): keep-alive connection, POST a
 *     body, the response parsed with http_parser (libhttp-parser).
 *
 * Memory: both buffers are allocated once at connect time and never grow.
 * A request frame larger than send_buf_bytes, or a reply whose payload is
 * over max_payload_bytes, is refused with a sentence (not buffered).
 *
 * Results: decoded views (strings, tensors) point into the client's receive
 * buffer and stay valid until the next call on the same client.
 *
 * Errors: functions return 0 on success and -1 with a sentence in err on a
 * transport or protocol failure (connection refused, timeout, peer closed,
 * malformed reply). A server-side error (an ERROR frame, an HTTP 4xx/5xx) is
 * a successful exchange: the reply carries its status and message. After a
 * transport failure the connection is unusable (rs_client_broken). */
#ifndef RS_CLIENT_H
#define RS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"
#include "io/frame.h"
#include "io/tensor.h"

typedef struct rs_client_config {
    uint32_t connect_timeout_ms; /* 0: 5000 */
    uint32_t io_timeout_ms;      /* each wait for the socket; 0: 30000 */
    uint32_t send_buf_bytes; /* largest request (or pipelined batch of them); 0: 1 MiB; >= 256 */
    uint32_t
        max_payload_bytes; /* largest reply payload (framed) or body (HTTP); 0: 4 MiB; >= 256 */
} rs_client_config;

void rs_client_config_default(rs_client_config *cfg);

/* "host:port" -> host (NUL-terminated, cut to host_bytes) and port 1..65535.
 * -1 with err naming the value otherwise. "[::1]:9000" is accepted. */
int rs_client_parse_endpoint(const char *endpoint, char *host, size_t host_bytes, uint16_t *port,
                             rs_err *err);

/* ---- framed protocol ---------------------------------------------------- */

typedef struct rs_client rs_client;

/* One reply frame. type is RS_MSG_INFER_RESPONSE (status RS_OK, response
 * filled), RS_MSG_ERROR (status + message), or RS_MSG_PONG / other u64
 * messages (value). request_id 0 with a frame-level status (rs_status_is_fatal)
 * means the server rejected the stream and closed the connection. */
typedef struct rs_client_reply {
    uint8_t type;   /* rs_msg_type */
    uint16_t flags; /* RS_FRAME_F_CACHE_HIT ... */
    uint64_t request_id;
    rs_status status; /* RS_OK unless type is ERROR */
    rs_str message;   /* ERROR: the server's sentence */
    rs_infer_response response;
    uint64_t value; /* PONG, SUBMIT_ACK */
} rs_client_reply;

/* Connects (TCP_NODELAY) and allocates the buffers. cfg NULL: defaults. */
rs_client *rs_client_connect(const char *host, uint16_t port, const rs_client_config *cfg,
                             rs_err *err);
void rs_client_close(rs_client *c);
/* True after a transport or protocol failure, or after the server sent a
 * frame-level ERROR: reconnect to go on. */
bool rs_client_broken(const rs_client *c);
/* Requests sent (or queued) whose replies have not been received yet. */
uint32_t rs_client_in_flight(const rs_client *c);
int rs_client_fd(const rs_client *c);

/* One request, one reply (no pipelined requests may be outstanding).
 * flags: RS_FRAME_F_NO_CACHE to bypass the cache. */
int rs_client_infer(rs_client *c, const rs_infer_request *req, uint16_t flags, rs_client_reply *out,
                    rs_err *err);
/* PING value -> PONG value (0, or -1 with err; an ERROR reply is an error). */
int rs_client_ping(rs_client *c, uint64_t value, uint64_t *pong, rs_err *err);

/* Pipelining. send_infer encodes the request into the send buffer (flushing
 * first when it does not fit) and gives the request_id chosen for it;
 * nothing goes out until the buffer fills or rs_client_flush. While a flush
 * waits for the socket it also drains replies into the receive buffer, so a
 * large window cannot deadlock both sides as long as the replies fit. */
int rs_client_send_infer(rs_client *c, const rs_infer_request *req, uint16_t flags,
                         uint64_t *request_id, rs_err *err);
int rs_client_flush(rs_client *c, rs_err *err);
/* Flushes, then blocks for the next reply frame, whatever its request. */
int rs_client_recv(rs_client *c, rs_client_reply *out, rs_err *err);

/* ---- HTTP / KServe v2 --------------------------------------------------- */

typedef struct rs_client_http rs_client_http;

#define RS_CLIENT_HTTP_HEADER_VALUE_BYTES 128

typedef struct rs_client_http_response {
    int status;          /* 200, 400, ... */
    const uint8_t *body; /* de-chunked; valid until the next call */
    size_t body_len;
    /* The headers a ringserve client looks at (empty when absent). */
    char content_type[RS_CLIENT_HTTP_HEADER_VALUE_BYTES];
    char cache[RS_CLIENT_HTTP_HEADER_VALUE_BYTES];       /* X-Ringserve-Cache: hit|miss */
    char retry_after[RS_CLIENT_HTTP_HEADER_VALUE_BYTES]; /* Retry-After (429) */
    bool has_inference_header_len;
    size_t inference_header_len; /* Inference-Header-Content-Length */
} rs_client_http_response;

/* Connects lazily: the first request opens the connection, a later one
 * reconnects once when the server had closed the kept-alive connection. */
rs_client_http *rs_client_http_create(const char *host, uint16_t port, const rs_client_config *cfg,
                                      rs_err *err);
void rs_client_http_destroy(rs_client_http *h);

/* One request. extra_headers: NULL or complete "Name: value\r\n" lines.
 * The response is read whole (up to max_payload_bytes of body). */
int rs_client_http_request(rs_client_http *h, const char *method, const char *path,
                           const char *content_type, const char *extra_headers, const void *body,
                           size_t body_len, rs_client_http_response *out, rs_err *err);

/* POST /v2/models/{model}[/versions/{version}]/infer. json_len < body_len:
 * the binary tensor data extension (Inference-Header-Content-Length). With
 * no_cache, "Cache-Control: no-cache" asks the server to bypass its cache. */
int rs_client_http_infer(rs_client_http *h, const char *model, const char *version,
                         const void *body, size_t body_len, size_t json_len, bool no_cache,
                         rs_client_http_response *out, rs_err *err);

/* Builds a KServe v2 request body for the binary tensor data extension from
 * a framed-style request (inputs, id, requested outputs, priority and
 * timeout_us as parameters): the JSON head (json-c) with binary_data_size
 * per input, then the raw tensor bytes. binary_outputs asks for binary
 * outputs. Returns 0 with *body_len and *json_len, or -1 with err when out
 * is too small. */
int rs_client_kserve_binary_request(const rs_infer_request *req, bool binary_outputs, uint8_t *out,
                                    size_t out_bytes, size_t *body_len, size_t *json_len,
                                    rs_err *err);

/* Parses a KServe v2 infer response body (JSON outputs, or binary ones
 * with binary_data_size after a json_len-byte head) into tensors: the
 * "outputs" array is handed to engine/kserve's rs_kserve_parse_infer, so
 * every datatype converts exactly as the server's own parser does. Tensor
 * bytes and names go into arena. -1 with err on a malformed response. */
typedef struct rs_client_kserve_result {
    char model_name[RS_MAX_NAME_BYTES + 1];
    char model_version[RS_MAX_NAME_BYTES + 1];
    char id[RS_MAX_STR_BYTES + 1];
    rs_tensor_list outputs;
} rs_client_kserve_result;
struct rs_kserve_arena;
int rs_client_kserve_parse_response(const uint8_t *body, size_t body_len, size_t json_len,
                                    rs_client_kserve_result *out, struct rs_kserve_arena *arena,
                                    rs_err *err);

/* The "error" string of a {"error": "..."} body, copied into out (the raw
 * body, cut, when it is not such a JSON object). */
void rs_client_http_error_message(const rs_client_http_response *r, char *out, size_t out_bytes);

#endif

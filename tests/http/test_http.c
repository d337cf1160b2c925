/* Tests for engine/http: parsing through http_parser with a fake transport —
 * keep-alive, pipelining answered out of order but written in order, chunked
 * bodies, every split point of a request stream, limits (413/414/431),
 * malformed input (400 + close), Connection: close, HTTP/1.0, routing
 * (404/405/captures), late answers to closed connections, Retry-After,
 * the pipeline and hold bounds, and 100-continue. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "engine/http/http.h"
#include "engine/http/router.h"

/* ---- fake transport ------------------------------------------------------ */

typedef struct fake_io {
    char out[65536];
    size_t out_len;
    int closes;
    int fail_send;
} fake_io;

static int f_sendv(void *io, const struct iovec *iov, int n) {
    fake_io *f = io;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    if (f->fail_send == 1 || (f->fail_send == 2 && total > 200)) return -ENOBUFS;
    if (f->fail_send == 3) return -EPIPE;
    for (int i = 0; i < n; i++) {
        assert_true(f->out_len + iov[i].iov_len < sizeof(f->out));
        memcpy(f->out + f->out_len, iov[i].iov_base, iov[i].iov_len);
        f->out_len += iov[i].iov_len;
    }
    f->out[f->out_len] = 0;
    return 0;
}
static void f_close(void *io) { ((fake_io *)io)->closes++; }
static void f_nop(void *io) { (void)io; }
static uint64_t f_now(void *io) {
    (void)io;
    return 42;
}
static const rs_http_transport fake_transport = {f_sendv, f_close, f_nop, f_nop, f_now};

/* ---- handlers ------------------------------------------------------------ */

typedef struct deferred {
    uint32_t n;
    rs_http_handle h[64];
    char model[64][32];
    char version[64][8];
} deferred;
static deferred later;

static void h_hello(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    struct iovec iov = {"hi", 2};
    rs_http_response r = {.status = 200, .content_type = "text/plain", .body = &iov, .body_iovcnt = 1};
    assert_int_equal(req->recv_ns, 42);
    assert_int_equal(rs_http_respond(s, req->handle, &r), 0);
    /* a second answer to the same request is refused */
    assert_int_equal(rs_http_respond(s, req->handle, &r), -ENOENT);
}

static void h_echo(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    struct iovec iov = {(void *)req->body, req->body_len};
    const rs_str *ct = rs_http_header_get(req, "content-TYPE");
    rs_http_header extra = {{"X-Query", 7}, req->query};
    rs_http_response r = {.status = 200, .content_type = "application/octet-stream", .body = &iov,
                          .body_iovcnt = req->body_len ? 1 : 0, .headers = &extra,
                          .header_count = req->query.len ? 1 : 0};
    if (ct) assert_memory_equal(ct->ptr, "text/x", 6);
    rs_http_respond(s, req->handle, &r);
}

static void h_infer(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)s;
    (void)arg;
    uint32_t i = later.n++;
    later.h[i] = req->handle;
    const rs_str *m = rs_http_param_get(req, "model"), *v = rs_http_param_get(req, "version");
    snprintf(later.model[i], 32, "%.*s", (int)m->len, m->ptr);
    snprintf(later.version[i], 8, "%.*s", v ? (int)v->len : 0, v ? v->ptr : "");
}

static void h_busy(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_http_respond_error(s, req->handle, 429, 2, "queue of model 'm' is full");
}

static rs_http_router *make_router(void) {
    rs_err err;
    rs_http_router *r = rs_http_router_create(16, &err);
    assert_non_null(r);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "/hello", h_hello, NULL, &err), 0);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_POST, "/echo", h_echo, NULL, &err), 0);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_POST, "/v2/models/{model}/infer", h_infer, NULL, &err), 0);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_POST, "/v2/models/{model}/versions/{version}/infer",
                                        h_infer, NULL, &err), 0);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "/busy", h_busy, NULL, &err), 0);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_PUT, "/hello", h_hello, NULL, &err), 0);
    return r;
}

typedef struct fixture {
    rs_http_router *router;
    rs_http_server *server;
    fake_io io;
    rs_http_conn *conn;
} fixture;

static fixture *fx_new(void (*tune)(rs_http_config *)) {
    static fixture fx;
    memset(&fx, 0, sizeof(fx));
    memset(&later, 0, sizeof(later));
    rs_http_config cfg;
    rs_http_config_default(&cfg);
    cfg.max_conns = 4;
    cfg.server_name = NULL;
    cfg.max_body_bytes = 64;
    cfg.max_url_bytes = 64;
    cfg.max_header_bytes = 256;
    cfg.max_headers = 8;
    cfg.max_pipeline = 4;
    cfg.hold_bytes = 4096;
    if (tune) tune(&cfg);
    rs_err err;
    fx.router = make_router();
    fx.server = rs_http_server_create(&cfg, fx.router, &err);
    if (!fx.server) fail_msg("%s", err.msg);
    fx.conn = rs_http_conn_open(fx.server, &fake_transport, &fx.io);
    assert_non_null(fx.conn);
    return &fx;
}

static void fx_free(fixture *fx) {
    if (fx->conn) rs_http_conn_closed(fx->conn);
    rs_http_server_destroy(fx->server);
    rs_http_router_destroy(fx->router);
}

static void feed(fixture *fx, const char *s) {
    assert_int_equal(rs_http_conn_feed(fx->conn, (const uint8_t *)s, strlen(s)), (ssize_t)strlen(s));
}

#define OK_HI "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"

/* ---- tests ---------------------------------------------------------------- */

static void test_keep_alive(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    feed(fx, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_string_equal(fx->io.out, OK_HI);
    feed(fx, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_string_equal(fx->io.out, OK_HI OK_HI);
    assert_int_equal(fx->io.closes, 0);
    rs_http_server_stats st;
    rs_http_server_stats_get(fx->server, &st);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.responses, 2);
    fx_free(fx);
}

static void test_pipelining_in_order(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    feed(fx, "POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
             "GET /hello HTTP/1.1\r\n\r\n"
             "POST /v2/models/identity/versions/3/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(later.n, 2);
    assert_string_equal(later.model[0], "digits");
    assert_string_equal(later.version[0], "");
    assert_string_equal(later.model[1], "identity");
    assert_string_equal(later.version[1], "3");
    assert_int_equal(fx->io.out_len, 0); /* /hello was answered but waits its turn */
    assert_true(rs_http_pending(fx->server, later.h[1]));
    assert_int_equal(rs_http_respond_json(fx->server, later.h[1], 200, "{\"b\":2}", 7), 0);
    assert_int_equal(fx->io.out_len, 0);
    assert_int_equal(rs_http_respond_json(fx->server, later.h[0], 200, "{\"a\":1}", 7), 0);
    assert_string_equal(fx->io.out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        OK_HI
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"b\":2}");
    assert_false(rs_http_pending(fx->server, later.h[1]));
    fx_free(fx);
}

static void test_chunked_body(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    feed(fx, "POST /echo?a=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: text/x\r\n\r\n"
             "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n");
    assert_string_equal(fx->io.out, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                    "Content-Length: 9\r\nX-Query: a=1\r\n\r\nWikipedia");
    fx_free(fx);
}

static const char *stream =
    "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
    "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nX-Long-Header-Name: some value\r\n\r\n12345"
    "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"
    "GET /hello HTTP/1.1\r\n\r\n"; /* after close: never answered */

static void run_split(const size_t *cuts, size_t ncuts, char *out, size_t out_bytes, int *closes) {
    fixture *fx = fx_new(NULL);
    size_t len = strlen(stream), prev = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_int_equal(rs_http_conn_feed(fx->conn, (const uint8_t *)stream + prev, end - prev),
                         (ssize_t)(end - prev));
        prev = end;
    }
    snprintf(out, out_bytes, "%s", fx->io.out);
    *closes = fx->io.closes;
    fx_free(fx);
}

static void test_split_at_every_byte(void **state) {
    (void)state;
    static char whole[4096], part[4096];
    int closes_whole, closes;
    run_split(NULL, 0, whole, sizeof(whole), &closes_whole);
    assert_string_equal(whole,
        OK_HI
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nabcde"
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n12345"
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
    assert_int_equal(closes_whole, 1);
    size_t len = strlen(stream);
    for (size_t i = 1; i < len; i++) {
        run_split(&i, 1, part, sizeof(part), &closes);
        if (strcmp(part, whole) != 0) fail_msg("split at byte %zu differs", i);
        assert_int_equal(closes, 1);
    }
    /* one byte at a time */
    static size_t cuts[4096];
    for (size_t i = 1; i < len; i++) cuts[i - 1] = i;
    run_split(cuts, len - 1, part, sizeof(part), &closes);
    assert_string_equal(part, whole);
}

static void expect_fail(void (*tune)(rs_http_config *), const char *input, const char *want) {
    fixture *fx = fx_new(tune);
    feed(fx, input);
    assert_string_equal(fx->io.out, want);
    assert_int_equal(fx->io.closes, 1);
    /* nothing more is read after the error */
    feed(fx, "GET /hello HTTP/1.1\r\n\r\n");
    assert_string_equal(fx->io.out, want);
    fx_free(fx);
}

static void expect_fail_json(void (*tune)(rs_http_config *), const char *input, const char *status,
                             const char *reason, const char *json) {
    char want[1024];
    snprintf(want, sizeof(want),
             "HTTP/1.1 %s %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s", status, reason, strlen(json), json);
    expect_fail(tune, input, want);
}

static void test_limits(void **state) {
    (void)state;
    expect_fail_json(NULL, "POST /echo HTTP/1.1\r\nContent-Length: 65\r\n\r\n", "413", "Content Too Large",
                     "{\"error\":\"request body of 65 bytes is over the 64-byte limit\"}");
    char chunked[512];
    snprintf(chunked, sizeof(chunked), "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "40\r\n%064d\r\n1\r\nx\r\n0\r\n\r\n", 0);
    expect_fail_json(NULL, chunked, "413", "Content Too Large",
                     "{\"error\":\"request body is over the 64-byte limit\"}");
    char url[256];
    snprintf(url, sizeof(url), "GET /%070d HTTP/1.1\r\n\r\n", 0);
    expect_fail_json(NULL, url, "414", "URI Too Long",
                     "{\"error\":\"request URL is longer than 64 bytes\"}");
    expect_fail_json(NULL, "GET /hello HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\nf: 6\r\n"
                     "g: 7\r\nh: 8\r\ni: 9\r\n\r\n", "431", "Request Header Fields Too Large",
                     "{\"error\":\"more than 8 request headers\"}");
    char big[512];
    snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nX: %0300d\r\n\r\n", 0);
    expect_fail_json(NULL, big, "431", "Request Header Fields Too Large",
                     "{\"error\":\"request headers are larger than 256 bytes\"}");
}

static void test_malformed(void **state) {
    (void)state;
    expect_fail_json(NULL, "BLAH /hello HTTP/1.1\r\n\r\n", "400", "Bad Request",
                     "{\"error\":\"malformed HTTP request: invalid HTTP method\"}");
    expect_fail_json(NULL, "GET /hello HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400", "Bad Request",
                     "{\"error\":\"malformed HTTP request: invalid character in content-length header\"}");
    expect_fail_json(NULL, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400",
                     "Bad Request", "{\"error\":\"malformed HTTP request: invalid character in chunk size header\"}");
    /* An error after a pending request is written after that request's answer. */
    fixture *fx = fx_new(NULL);
    feed(fx, "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\nGARBAGE\r\n\r\n");
    assert_int_equal(fx->io.out_len, 0);
    assert_int_equal(fx->io.closes, 0);
    rs_http_respond_json(fx->server, later.h[0], 200, "{}", 2);
    assert_non_null(strstr(fx->io.out, "Content-Length: 2\r\n\r\n{}HTTP/1.1 400 Bad Request\r\n"));
    assert_int_equal(fx->io.closes, 1);
    fx_free(fx);
}

static void test_connection_close_and_http10(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    feed(fx, "GET /hello HTTP/1.0\r\n\r\n");
    assert_string_equal(fx->io.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                                    "Connection: close\r\n\r\nhi");
    assert_int_equal(fx->io.closes, 1);
    fx_free(fx);
    fx = fx_new(NULL);
    feed(fx, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_string_equal(fx->io.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                                    "Connection: keep-alive\r\n\r\nhi");
    assert_int_equal(fx->io.closes, 0);
    fx_free(fx);
}

static void test_routing(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    feed(fx, "GET /nope HTTP/1.1\r\n\r\n");
    const char *nf = "{\"error\":\"no route for GET /nope\"}";
    char want[512];
    snprintf(want, sizeof(want), "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(nf), nf);
    assert_string_equal(fx->io.out, want);
    fx->io.out_len = 0;
    feed(fx, "DELETE /hello HTTP/1.1\r\n\r\n");
    const char *na = "{\"error\":\"method DELETE is not allowed on /hello (allowed: GET, PUT)\"}";
    snprintf(want, sizeof(want), "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nAllow: GET, PUT\r\n\r\n%s", strlen(na), na);
    assert_string_equal(fx->io.out, want);
    fx->io.out_len = 0;
    /* A capture never matches an empty segment. */
    feed(fx, "POST /v2/models//infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_non_null(strstr(fx->io.out, "404 Not Found"));
    assert_int_equal(later.n, 0);
    fx_free(fx);

    rs_err err;
    rs_http_router *r = rs_http_router_create(2, &err);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "v2", h_hello, NULL, &err), -1);
    assert_string_equal(err.msg, "router: 'v2': a pattern starts with '/' and is under 128 bytes");
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "/a/{x", h_hello, NULL, &err), -1);
    assert_string_equal(err.msg, "router: '/a/{x': a capture is a whole segment '{name}'");
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "/a/b{x}", h_hello, NULL, &err), -1);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "/{a}/{b}/{c}/{d}/{e}", h_hello, NULL, &err), -1);
    assert_string_equal(err.msg, "router: '/{a}/{b}/{c}/{d}/{e}': more than 4 captures");
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "/v2/requests/{id}", h_hello, NULL, &err), 0);
    const rs_http_route *route;
    rs_http_param params[RS_HTTP_MAX_PARAMS];
    uint32_t n;
    assert_int_equal(rs_http_router_match(r, RS_HTTP_GET, (rs_str){"/v2/requests/r-9", 16}, &route,
                                          params, &n), RS_HTTP_MATCH_FOUND);
    assert_int_equal(n, 1);
    assert_memory_equal(params[0].value.ptr, "r-9", 3);
    assert_int_equal(rs_http_router_match(r, RS_HTTP_GET, (rs_str){"/v2/requests/r-9/x", 18}, &route,
                                          params, &n), RS_HTTP_MATCH_NO_ROUTE);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "/b", h_hello, NULL, &err), 0);
    assert_int_equal(rs_http_router_add(r, RS_HTTP_GET, "/c", h_hello, NULL, &err), -1);
    assert_string_equal(err.msg, "router: /c: more than 2 routes");
    rs_http_router_destroy(r);
}

static void test_late_answer_after_close(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    feed(fx, "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    rs_http_handle h = later.h[0];
    rs_http_conn_closed(fx->conn);
    assert_false(rs_http_pending(fx->server, h));
    assert_int_equal(rs_http_respond_json(fx->server, h, 200, "{}", 2), -ENOENT);
    /* The slot is reused by a new connection: the old handle stays stale. */
    fx->conn = rs_http_conn_open(fx->server, &fake_transport, &fx->io);
    feed(fx, "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(rs_http_respond_json(fx->server, h, 200, "{}", 2), -ENOENT);
    assert_int_equal(rs_http_respond_json(fx->server, later.h[1], 200, "{}", 2), 0);
    assert_int_equal(fx->io.out_len, strlen("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                            "Content-Length: 2\r\n\r\n{}"));
    fx_free(fx);
}

static void test_retry_after(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    feed(fx, "GET /busy HTTP/1.1\r\n\r\n");
    const char *body = "{\"error\":\"queue of model 'm' is full\"}";
    char want[512];
    snprintf(want, sizeof(want), "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nRetry-After: 2\r\n\r\n%s", strlen(body), body);
    assert_string_equal(fx->io.out, want);
    fx_free(fx);
}

static void test_pipeline_bound(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL); /* max_pipeline 4 */
    for (int i = 0; i < 5; i++) feed(fx, "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(later.n, 4);
    assert_int_equal(fx->io.out_len, 0);
    for (int i = 3; i >= 0; i--) rs_http_respond_json(fx->server, later.h[i], 200, "{}", 2);
    const char *tail = "{\"error\":\"more than 4 pipelined requests awaiting answers\"}";
    assert_non_null(strstr(fx->io.out, "HTTP/1.1 503 Service Unavailable"));
    assert_int_equal(strcmp(fx->io.out + fx->io.out_len - strlen(tail), tail), 0);
    assert_int_equal(fx->io.closes, 1);
    fx_free(fx);
}

static void small_hold(rs_http_config *cfg) { cfg->hold_bytes = 1024; }

static void test_hold_bound(void **state) {
    (void)state;
    fixture *fx = fx_new(small_hold);
    feed(fx, "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
             "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    static char big[2000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(rs_http_respond_json(fx->server, later.h[1], 200, big, sizeof(big)), 0);
    rs_http_respond_json(fx->server, later.h[0], 200, "{}", 2);
    assert_non_null(strstr(fx->io.out, "{}HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(fx->io.out, "over hold_bytes"));
    rs_http_server_stats st;
    rs_http_server_stats_get(fx->server, &st);
    assert_int_equal(st.hold_overflows, 1);
    assert_int_equal(fx->io.closes, 0);
    fx_free(fx);
}

static void test_conn_slots_and_send_failure(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL); /* max_conns 4, one open */
    fake_io extra[3];
    rs_http_conn *c[3];
    for (int i = 0; i < 3; i++) assert_non_null(c[i] = rs_http_conn_open(fx->server, &fake_transport, &extra[i]));
    assert_null(rs_http_conn_open(fx->server, &fake_transport, &extra[0]));
    rs_http_server_stats st;
    rs_http_server_stats_get(fx->server, &st);
    assert_int_equal(st.conns_refused, 1);
    assert_int_equal(st.conns_open, 4);
    for (int i = 0; i < 3; i++) rs_http_conn_closed(c[i]);
    /* No room even for the 503: the connection closes. */
    fx->io.fail_send = 1;
    feed(fx, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(fx->io.closes, 1);
    fx_free(fx);
    /* No room for a big answer: a short 503 takes its place, then close. */
    fx = fx_new(NULL);
    fx->io.fail_send = 2;
    feed(fx, "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    static char big[300];
    memset(big, 'x', sizeof(big));
    rs_http_respond_json(fx->server, later.h[0], 200, big, sizeof(big));
    const char *body = "{\"error\":\"overloaded: no send buffer room for the response\"}";
    char want[512];
    snprintf(want, sizeof(want), "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s", strlen(body), body);
    assert_string_equal(fx->io.out, want);
    assert_int_equal(fx->io.closes, 1);
    rs_http_server_stats_get(fx->server, &st);
    assert_int_equal(st.send_overflows, 1);
    fx_free(fx);
    /* Any other send error closes at once. */
    fx = fx_new(NULL);
    fx->io.fail_send = 3;
    feed(fx, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(fx->io.closes, 1);
    assert_int_equal(fx->io.out_len, 0);
    fx_free(fx);
}

static void test_expect_continue(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    feed(fx, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert_string_equal(fx->io.out, "HTTP/1.1 100 Continue\r\n\r\n");
    feed(fx, "abc");
    assert_string_equal(fx->io.out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                        "Content-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\nabc");
    fx_free(fx);
}

static void test_drain(void **state) {
    (void)state;
    fixture *fx = fx_new(NULL);
    fake_io idle = {0};
    rs_http_conn *ic = rs_http_conn_open(fx->server, &fake_transport, &idle);
    feed(fx, "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    rs_http_server_drain(fx->server);
    assert_int_equal(idle.closes, 1);    /* idle keep-alive: closed now */
    assert_int_equal(fx->io.closes, 0);  /* a request is pending: answered first */
    rs_http_respond_json(fx->server, later.h[0], 200, "{}", 2);
    assert_string_equal(fx->io.out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                    "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
    assert_int_equal(fx->io.closes, 1);
    rs_http_conn_closed(ic);
    fx_free(fx);
}

static void test_config_and_escape(void **state) {
    (void)state;
    rs_http_config cfg;
    rs_err err;
    rs_http_config_default(&cfg);
    assert_int_equal(rs_http_config_check(&cfg, &err), 0);
    cfg.max_pipeline = 0;
    assert_null(rs_http_server_create(&cfg, NULL, &err));
    assert_string_equal(err.msg, "http: max_pipeline: 0: must be 1..1024");
    char out[32];
    assert_int_equal(rs_http_json_escape("a\"b\\\n\x01", 6, out, sizeof(out)), 14);
    assert_string_equal(out, "a\\\"b\\\\\\n\\u0001");
    assert_string_equal(rs_http_reason(504), "Gateway Timeout");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelining_in_order),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_split_at_every_byte),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_connection_close_and_http10),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_late_answer_after_close),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_pipeline_bound),
        cmocka_unit_test(test_hold_bound),
        cmocka_unit_test(test_conn_slots_and_send_failure),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_config_and_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

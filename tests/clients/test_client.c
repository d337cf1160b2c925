/* test_client.c — the blocking C client (clients/c/rs_client.h) against an
 * in-test server on the real io loop, run on its own thread:
 *   framed: identity echo (CACHE_HIT unless NO_CACHE), an ERROR answer, a
 *           reply over the client's limit, a close without answer, silence;
 *   HTTP:   canned responses (JSON, chunked, error, too large, Connection:
 *           close, a dropped keep-alive) and a KServe v2 identity endpoint
 *           that uses engine/kserve's own parser and renderer.
 * Timeouts here only bound the test (the silent server); nothing is timed. */
#include <http_parser.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "clients/c/rs_client.h"
#include "engine/kserve/kserve.h"
#include "io/framed.h"

static pthread_t g_thread;
static rs_loop *_Atomic g_loop;
static _Atomic uint16_t g_framed_port, g_http_port;
static atomic_int g_http_accepts;

/* ---- framed server ---- */

static int srv_frame(rs_conn *c, const rs_frame_msg *m, void *arg) {
    (void)arg;
    if (m->hdr.type == RS_MSG_PING) {
        rs_framed_send_u64(c, RS_MSG_PONG, m->hdr.request_id, m->u.u64 + 1);
        return RS_FRAMED_CONTINUE;
    }
    if (m->hdr.type != RS_MSG_INFER_REQUEST) return rs_framed_reject_type(c, m);
    const rs_infer_request *r = &m->u.infer_req;
    if (rs_str_eq(r->model, "bad")) {
        rs_framed_send_error(c, m->hdr.request_id, RS_E_INVALID_INPUT,
                             "input 'x': shape [%d] is wrong", 3);
        return RS_FRAMED_CONTINUE;
    }
    if (rs_str_eq(r->model, "close")) return RS_FRAMED_CLOSE;
    if (rs_str_eq(r->model, "silent")) return RS_FRAMED_CONTINUE;
    static uint8_t big[8192];
    rs_infer_response resp = {
        .model = r->model, .version = rs_str_c("1"), .id = r->id, .outputs = r->inputs};
    if (rs_str_eq(r->model, "big")) {
        resp.outputs.count = 1;
        resp.outputs.t[0] = (rs_tensor_view){.name = rs_str_c("y"),
                                             .dtype = RS_DT_UINT8,
                                             .rank = 1,
                                             .dims = {sizeof(big)},
                                             .data = big,
                                             .byte_len = sizeof(big)};
    }
    uint16_t flags = (m->hdr.flags & RS_FRAME_F_NO_CACHE) ? 0 : RS_FRAME_F_CACHE_HIT;
    rs_framed_send_infer_response(c, m->hdr.request_id, flags, &resp);
    return RS_FRAMED_CONTINUE;
}

static const rs_framed_cfg srv_cfg = {.on_frame = srv_frame, .max_payload_bytes = 1u << 20};
static ssize_t srv_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    return rs_framed_on_data(c, d, n, &srv_cfg);
}
static const rs_conn_ops framed_ops = {.on_data = srv_on_data};

/* ---- HTTP server (requests parsed with http_parser) ---- */

typedef struct hconn {
    http_parser p;
    rs_conn *c;
    char url[256];
    size_t url_len;
    char field[64];
    bool ihcl_next;
    size_t ihcl;
    bool has_ihcl;
    uint8_t body[65536];
    size_t body_len;
    bool done;
} hconn;

static int h_url(http_parser *p, const char *at, size_t len) {
    hconn *h = p->data;
    if (h->url_len + len < sizeof(h->url)) {
        memcpy(h->url + h->url_len, at, len);
        h->url_len += len;
        h->url[h->url_len] = '\0';
    }
    return 0;
}
static int h_field(http_parser *p, const char *at, size_t len) {
    hconn *h = p->data;
    h->ihcl_next = len == 31 && strncasecmp(at, "Inference-Header-Content-Length", 31) == 0;
    return 0;
}
static int h_value(http_parser *p, const char *at, size_t len) {
    hconn *h = p->data;
    if (h->ihcl_next) {
        char v[32];
        snprintf(v, sizeof(v), "%.*s", (int)len, at);
        h->ihcl = strtoul(v, NULL, 10);
        h->has_ihcl = true;
    }
    return 0;
}
static int h_body(http_parser *p, const char *at, size_t len) {
    hconn *h = p->data;
    if (h->body_len + len > sizeof(h->body)) return -1;
    memcpy(h->body + h->body_len, at, len);
    h->body_len += len;
    return 0;
}
static int h_done(http_parser *p) {
    ((hconn *)p->data)->done = true;
    http_parser_pause(p, 1);
    return 0;
}
static http_parser_settings h_settings = {.on_url = h_url,
                                          .on_header_field = h_field,
                                          .on_header_value = h_value,
                                          .on_body = h_body,
                                          .on_message_complete = h_done};

static void send_str(rs_conn *c, const char *s) {
    rs_conn_send(c, s, strlen(s));
}

static void kserve_identity(hconn *h) {
    static uint8_t arena_mem[65536], out[65536];
    rs_kserve_arena arena;
    rs_kserve_arena_init(&arena, arena_mem, sizeof(arena_mem));
    rs_kserve_request req;
    rs_err err;
    char head[256];
    size_t jl = h->has_ihcl ? h->ihcl : h->body_len;
    if (rs_kserve_parse_infer(h->body, h->body_len, jl, &req, &arena, &err) != 0) {
        char body[600];
        size_t n = rs_kserve_render_error(err.msg, body, sizeof(body));
        snprintf(head, sizeof(head), "HTTP/1.1 400 Bad Request\r\nContent-Length: %zu\r\n\r\n", n);
        send_str(h->c, head);
        rs_conn_send(h->c, body, n);
        return;
    }
    /* y = x, binary as asked */
    rs_tensor_list outs = req.inputs;
    outs.t[0].name = rs_str_c("y");
    bool binary[RS_MAX_TENSORS];
    if (rs_kserve_output_binary(&req, &outs, binary, &err) != 0) abort();
    rs_kserve_response kr = {.model_name = "identity",
                             .model_version = "1",
                             .id = req.has_id ? req.id : NULL,
                             .outputs = &outs,
                             .binary = binary};
    size_t json_len, total;
    if (rs_kserve_render_response(&kr, out, sizeof(out), &json_len, &total, &err) != 0) abort();
    snprintf(
        head, sizeof(head),
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Ringserve-Cache: miss\r\n"
        "Inference-Header-Content-Length: %zu\r\nContent-Length: %zu\r\n\r\n",
        json_len, total);
    send_str(h->c, head);
    rs_conn_send(h->c, out, total);
}

static bool respond(hconn *h) {
    const char *u = h->url;
    if (strcmp(u, "/ok") == 0) {
        send_str(h->c,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Ringserve-Cache: hit\r\n"
                 "Retry-After: 3\r\nContent-Length: 11\r\n\r\n");
        if (h->p.method != HTTP_HEAD) send_str(h->c, "{\"ok\":true}");
    } else if (strcmp(u, "/chunked") == 0) {
        send_str(h->c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\n\r\n");
    } else if (strcmp(u, "/err") == 0) {
        send_str(h->c, "HTTP/1.1 400 Bad Request\r\nContent-Type: "
                       "application/json\r\nContent-Length: 27\r\n\r\n"
                       "{\"error\": \"bad input 'x'\"}\n");
    } else if (strcmp(u, "/plain") == 0) {
        send_str(h->c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 8\r\n\r\ndraining");
    } else if (strcmp(u, "/big") == 0) {
        send_str(h->c, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
        static char zeros[5000];
        rs_conn_send(h->c, zeros, sizeof(zeros));
    } else if (strcmp(u, "/close") == 0) {
        send_str(h->c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
        return false;
    } else if (strcmp(u, "/drop") == 0) { /* keep-alive promised, then dropped */
        send_str(h->c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        return false;
    } else if (strcmp(u, "/garbage") == 0) {
        send_str(h->c, "SSH-2.0-OpenSSH_9.2\r\n");
        return false;
    } else if (strncmp(u, "/v2/models/identity", 19) == 0) {
        kserve_identity(h);
    } else {
        send_str(h->c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    return true;
}

static int http_open(rs_conn *c) {
    hconn *h = calloc(1, sizeof(*h));
    if (!h) return -1;
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    h->c = c;
    rs_conn_set_udata(c, h);
    atomic_fetch_add(&g_http_accepts, 1);
    return 0;
}
static ssize_t http_data(rs_conn *c, const uint8_t *d, size_t n) {
    hconn *h = rs_conn_udata(c);
    size_t off = 0;
    while (off < n) {
        off += http_parser_execute(&h->p, &h_settings, (const char *)d + off, n - off);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
        if (e != HPE_OK && e != HPE_PAUSED) return -1;
        if (!h->done) break;
        bool keep = respond(h);
        if (!keep) return -1; /* flush, then close */
        http_parser_init(&h->p, HTTP_REQUEST);
        h->url_len = h->body_len = 0;
        h->has_ihcl = h->done = false;
    }
    return (ssize_t)n;
}
static void http_close(rs_conn *c, int err) {
    (void)err;
    free(rs_conn_udata(c));
}
static const rs_conn_ops http_ops = {
    .on_open = http_open, .on_data = http_data, .on_close = http_close};

/* ---- the server thread ---- */

static void *server_main(void *arg) {
    (void)arg;
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    rs_err err;
    /* RS_TEST_IO_BACKEND=uring|epoll (tests/clients/meson.build runs both) */
    rs_io_backend want = RS_IO_AUTO;
    const char *b = getenv("RS_TEST_IO_BACKEND");
    if (b && rs_io_backend_parse(b, &want) != 0) abort();
    if (rs_io_backend_resolve(want, &cfg.backend, &err) != 0) abort();
    rs_loop *loop = rs_loop_create(&cfg, &err);
    if (!loop) {
        fprintf(stderr, "rs_loop_create: %s\n", err.msg);
        abort();
    }
    int f = rs_loop_listen(loop, "127.0.0.1", 0, false, &framed_ops, NULL, &err);
    int h = rs_loop_listen(loop, "127.0.0.1", 0, false, &http_ops, NULL, &err);
    if (f < 0 || h < 0) abort();
    g_framed_port = rs_loop_listen_port(loop, f);
    g_http_port = rs_loop_listen_port(loop, h);
    g_loop = loop;
    rs_loop_run(loop);
    rs_loop_destroy(loop);
    return NULL;
}

static int group_setup(void **state) {
    (void)state;
    rs_kserve_global_init();
    if (pthread_create(&g_thread, NULL, server_main, NULL) != 0) return -1;
    while (!g_loop)
        sched_yield();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    rs_loop_stop(g_loop);
    pthread_join(g_thread, NULL);
    return 0;
}

static rs_client *connect_framed(const rs_client_config *cfg) {
    rs_err err;
    rs_client *c = rs_client_connect("127.0.0.1", g_framed_port, cfg, &err);
    if (!c) fail_msg("connect: %s", err.msg);
    return c;
}

static rs_infer_request request(const char *model, const float *x, uint32_t n) {
    rs_infer_request r;
    memset(&r, 0, sizeof(r));
    r.model = rs_str_c(model);
    r.id = rs_str_c("req-1");
    r.inputs.count = 1;
    r.inputs.t[0] = (rs_tensor_view){.name = rs_str_c("x"),
                                     .dtype = RS_DT_FP32,
                                     .rank = 2,
                                     .dims = {1, n},
                                     .data = (const uint8_t *)x,
                                     .byte_len = n * sizeof(float)};
    return r;
}

/* ---- framed tests ---- */

static void test_framed_infer_and_errors(void **state) {
    (void)state;
    rs_client *c = connect_framed(NULL);
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i * 0.5f;
    rs_infer_request req = request("identity", x, 16);
    rs_client_reply r;
    rs_err err;
    assert_int_equal(rs_client_infer(c, &req, 0, &r, &err), 0);
    assert_int_equal(r.type, RS_MSG_INFER_RESPONSE);
    assert_int_equal(r.status, RS_OK);
    assert_true(r.flags & RS_FRAME_F_CACHE_HIT);
    assert_true(rs_str_eq(r.response.model, "identity") && rs_str_eq(r.response.id, "req-1"));
    assert_int_equal(r.response.outputs.count, 1);
    assert_int_equal(r.response.outputs.t[0].byte_len, sizeof(x));
    assert_memory_equal(r.response.outputs.t[0].data, x, sizeof(x));
    /* NO_CACHE goes out in the flags */
    assert_int_equal(rs_client_infer(c, &req, RS_FRAME_F_NO_CACHE, &r, &err), 0);
    assert_false(r.flags & RS_FRAME_F_CACHE_HIT);
    /* an ERROR reply is a successful exchange; the connection goes on */
    rs_infer_request bad = request("bad", x, 16);
    assert_int_equal(rs_client_infer(c, &bad, 0, &r, &err), 0);
    assert_int_equal(r.type, RS_MSG_ERROR);
    assert_int_equal(r.status, RS_E_INVALID_INPUT);
    assert_true(rs_str_eq(r.message, "input 'x': shape [3] is wrong"));
    assert_false(rs_client_broken(c));
    uint64_t pong = 0;
    assert_int_equal(rs_client_ping(c, 41, &pong, &err), 0);
    assert_int_equal(pong, 42);
    /* requests refused before they go out: the connection stays usable */
    rs_infer_request noname = request("", x, 16);
    assert_int_equal(rs_client_infer(c, &noname, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "model name must be 1..64 bytes"));
    rs_infer_request wrong = request("identity", x, 16);
    wrong.inputs.t[0].byte_len = 60;
    assert_int_equal(rs_client_infer(c, &wrong, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "input 'x'"));
    assert_false(rs_client_broken(c));
    assert_int_equal(rs_client_infer(c, &req, 0, &r, &err), 0);
    rs_client_close(c);
}

static void test_framed_pipelined(void **state) {
    (void)state;
    /* a small send buffer: the 600 requests flush many times while the
     * replies pile up, and the flush drains them (no deadlock) */
    rs_client_config cfg;
    rs_client_config_default(&cfg);
    cfg.send_buf_bytes = 4096;
    rs_client *c = connect_framed(&cfg);
    enum { N = 600 };
    static float vals[N];
    static uint64_t ids[N];
    static bool seen[N];
    rs_err err;
    for (int i = 0; i < N; i++) {
        vals[i] = (float)i;
        rs_infer_request req = request("identity", &vals[i], 1);
        assert_int_equal(rs_client_send_infer(c, &req, 0, &ids[i], &err), 0);
    }
    assert_int_equal(rs_client_in_flight(c), N);
    assert_int_equal(rs_client_infer(c, &(rs_infer_request){.model = rs_str_c("identity")}, 0,
                                     &(rs_client_reply){0}, &err),
                     -1);
    assert_non_null(strstr(err.msg, "pipelined requests are still outstanding"));
    for (int k = 0; k < N; k++) {
        rs_client_reply r;
        assert_int_equal(rs_client_recv(c, &r, &err), 0);
        assert_int_equal(r.type, RS_MSG_INFER_RESPONSE);
        int i = (int)(r.request_id - ids[0]);
        assert_true(i >= 0 && i < N && !seen[i]);
        seen[i] = true;
        float y;
        memcpy(&y, r.response.outputs.t[0].data, 4);
        assert_true(y == vals[i]);
    }
    assert_int_equal(rs_client_in_flight(c), 0);
    /* a sliding window, as the load generator uses it */
    for (int i = 0; i < 8; i++) {
        rs_infer_request req = request("identity", &vals[i], 1);
        assert_int_equal(rs_client_send_infer(c, &req, 0, NULL, &err), 0);
    }
    for (int i = 8; i < 200; i++) {
        rs_client_reply r;
        assert_int_equal(rs_client_recv(c, &r, &err), 0);
        rs_infer_request req = request("identity", &vals[i], 1);
        assert_int_equal(rs_client_send_infer(c, &req, 0, NULL, &err), 0);
    }
    for (int i = 0; i < 8; i++) {
        rs_client_reply r;
        assert_int_equal(rs_client_recv(c, &r, &err), 0);
    }
    assert_int_equal(rs_client_in_flight(c), 0);
    rs_client_close(c);
}

static void test_framed_limits_and_failures(void **state) {
    (void)state;
    rs_client_config cfg;
    rs_client_config_default(&cfg);
    cfg.max_payload_bytes = 1024;
    cfg.send_buf_bytes = 512;
    cfg.io_timeout_ms = 200;
    rs_err err;
    rs_client_reply r;
    float x[256] = {0};
    /* a request bigger than the send buffer: refused locally */
    rs_client *c = connect_framed(&cfg);
    rs_infer_request large = request("identity", x, 256);
    assert_int_equal(rs_client_infer(c, &large, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "over the send buffer (send_buf_bytes 512)"));
    assert_false(rs_client_broken(c));
    /* a reply over max_payload_bytes */
    rs_infer_request big = request("big", x, 4);
    assert_int_equal(rs_client_infer(c, &big, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "reply rejected (TOO_LARGE)"));
    assert_true(rs_client_broken(c));
    assert_int_equal(rs_client_ping(c, 1, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "broken"));
    rs_client_close(c);
    /* a request over the server's limit: its ERROR TOO_LARGE reaches the
     * caller, as a reply or (when the send broke first) in the error */
    rs_client_config big_cfg;
    rs_client_config_default(&big_cfg);
    big_cfg.send_buf_bytes = 24u << 20;
    c = connect_framed(&big_cfg);
    static float huge[(20u << 20) / sizeof(float)];
    rs_infer_request over = request("identity", huge, sizeof(huge) / sizeof(float));
    int rc = rs_client_infer(c, &over, 0, &r, &err);
    print_message("TOO_LARGE came back as %s\n", rc == 0 ? "a reply" : err.msg);
    if (rc == 0) {
        assert_int_equal(r.type, RS_MSG_ERROR);
        assert_int_equal(r.status, RS_E_TOO_LARGE);
    } else {
        if (!strstr(err.msg, "the server had answered TOO_LARGE")) fail_msg("got '%s'", err.msg);
    }
    assert_true(rs_client_broken(c));
    rs_client_close(c);
    /* the server closes without answering */
    c = connect_framed(&cfg);
    rs_infer_request closing = request("close", x, 4);
    assert_int_equal(rs_client_infer(c, &closing, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "server closed the connection (1 replies outstanding)"));
    assert_true(rs_client_broken(c));
    rs_client_close(c);
    /* the server never answers: the io timeout ends the wait */
    c = connect_framed(&cfg);
    rs_infer_request silent = request("silent", x, 4);
    assert_int_equal(rs_client_infer(c, &silent, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "no reply from the server within 200 ms"));
    rs_client_close(c);
    /* buffers too small to be useful are refused up front */
    rs_client_config tiny = cfg;
    tiny.send_buf_bytes = 16;
    assert_null(rs_client_connect("127.0.0.1", g_framed_port, &tiny, &err));
    assert_non_null(
        strstr(err.msg, "send_buf_bytes 16 and max_payload_bytes 1024 must be at least 256"));
    /* nobody listens */
    assert_null(rs_client_connect("127.0.0.1", 1, &cfg, &err));
    assert_non_null(strstr(err.msg, "cannot connect to 127.0.0.1:1: Connection refused"));
}

static void test_parse_endpoint(void **state) {
    (void)state;
    char host[64];
    uint16_t port;
    rs_err err;
    assert_int_equal(rs_client_parse_endpoint("127.0.0.1:9000", host, sizeof(host), &port, &err),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9000);
    assert_int_equal(rs_client_parse_endpoint("[::1]:8000", host, sizeof(host), &port, &err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8000);
    const char *bad[] = {"9000", ":9000", "h:", "h:0", "h:65536", "h:-1", "h:12x", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(rs_client_parse_endpoint(bad[i], host, sizeof(host), &port, &err), -1);
    assert_int_equal(rs_client_parse_endpoint("h:12x", host, sizeof(host), &port, &err), -1);
    assert_non_null(strstr(err.msg, "port '12x' must be a number 1..65535"));
    assert_int_equal(rs_client_parse_endpoint("averyveryverylonghostname:1", host, 8, &port, &err),
                     -1);
    assert_non_null(strstr(err.msg, "host must be 1..7 bytes"));
}

/* ---- HTTP tests ---- */

static rs_client_http *http_client(uint32_t max_payload) {
    rs_client_config cfg;
    rs_client_config_default(&cfg);
    if (max_payload) cfg.max_payload_bytes = max_payload;
    rs_err err;
    rs_client_http *h = rs_client_http_create("127.0.0.1", g_http_port, &cfg, &err);
    if (!h) fail_msg("http create: %s", err.msg);
    return h;
}

static void test_http_requests(void **state) {
    (void)state;
    rs_client_http *h = http_client(4096);
    rs_client_http_response r;
    rs_err err;
    int before = atomic_load(&g_http_accepts);
    assert_int_equal(rs_client_http_request(h, "GET", "/ok", NULL, NULL, NULL, 0, &r, &err), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "{\"ok\":true}", 11);
    assert_string_equal(r.cache, "hit");
    assert_string_equal(r.retry_after, "3");
    assert_string_equal(r.content_type, "application/json");
    assert_false(r.has_inference_header_len);
    /* chunked, de-chunked into the body buffer; same connection (keep-alive) */
    assert_int_equal(rs_client_http_request(h, "GET", "/chunked", NULL, NULL, NULL, 0, &r, &err),
                     0);
    assert_int_equal(r.body_len, 12);
    assert_memory_equal(r.body, "hello, world", 12);
    assert_string_equal(r.cache, "");
    /* errors: the {"error"} sentence, or the raw body */
    char msg[128];
    assert_int_equal(
        rs_client_http_request(h, "POST", "/err", "application/json", NULL, "{}", 2, &r, &err), 0);
    assert_int_equal(r.status, 400);
    rs_client_http_error_message(&r, msg, sizeof(msg));
    assert_string_equal(msg, "bad input 'x'");
    assert_int_equal(rs_client_http_request(h, "GET", "/plain", NULL, NULL, NULL, 0, &r, &err), 0);
    assert_int_equal(r.status, 503);
    rs_client_http_error_message(&r, msg, sizeof(msg));
    assert_string_equal(msg, "draining");
    assert_int_equal(atomic_load(&g_http_accepts), before + 1);
    /* HEAD: headers only, although they announce a body */
    assert_int_equal(rs_client_http_request(h, "HEAD", "/ok", NULL, NULL, NULL, 0, &r, &err), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(r.cache, "hit");
    assert_int_equal(rs_client_http_request(h, "GET", "/ok", NULL, NULL, NULL, 0, &r, &err), 0);
    assert_int_equal(r.body_len, 11);
    assert_int_equal(atomic_load(&g_http_accepts), before + 1);
    /* Connection: close, then a fresh connection */
    assert_int_equal(rs_client_http_request(h, "GET", "/close", NULL, NULL, NULL, 0, &r, &err), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rs_client_http_request(h, "GET", "/ok", NULL, NULL, NULL, 0, &r, &err), 0);
    assert_int_equal(atomic_load(&g_http_accepts), before + 2);
    /* a kept-alive connection the server dropped: retried once, transparently */
    assert_int_equal(rs_client_http_request(h, "GET", "/drop", NULL, NULL, NULL, 0, &r, &err), 0);
    assert_int_equal(rs_client_http_request(h, "GET", "/ok", NULL, NULL, NULL, 0, &r, &err), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(atomic_load(&g_http_accepts), before + 3);
    /* a body over max_payload_bytes, and a response that is not HTTP */
    assert_int_equal(rs_client_http_request(h, "GET", "/big", NULL, NULL, NULL, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "over max_payload_bytes (4096)"));
    assert_int_equal(rs_client_http_request(h, "GET", "/garbage", NULL, NULL, NULL, 0, &r, &err),
                     -1);
    assert_non_null(strstr(err.msg, "malformed HTTP response"));
    /* headers that do not fit the request head */
    static char huge[5000];
    memset(huge, 'a', sizeof(huge) - 1);
    assert_int_equal(rs_client_http_request(h, "GET", huge, NULL, NULL, NULL, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "over 4096 bytes"));
    rs_client_http_destroy(h);
    /* nobody listens */
    rs_client_http *none = rs_client_http_create("127.0.0.1", 1, NULL, &err);
    assert_non_null(none);
    assert_int_equal(rs_client_http_request(none, "GET", "/", NULL, NULL, NULL, 0, &r, &err), -1);
    assert_non_null(strstr(err.msg, "Connection refused"));
    rs_client_http_destroy(none);
}

static void test_http_kserve_roundtrip(void **state) {
    (void)state;
    rs_client_http *h = http_client(0);
    int32_t x[6] = {1, -2, 3, -4, 5, -6};
    rs_infer_request req;
    memset(&req, 0, sizeof(req));
    req.model = rs_str_c("identity");
    req.id = rs_str_c("kid");
    req.priority = 1;
    req.timeout_us = 5000;
    req.inputs.count = 1;
    req.inputs.t[0] = (rs_tensor_view){.name = rs_str_c("x"),
                                       .dtype = RS_DT_INT32,
                                       .rank = 2,
                                       .dims = {2, 3},
                                       .data = (const uint8_t *)x,
                                       .byte_len = sizeof(x)};
    static uint8_t body[8192], arena_mem[8192];
    size_t body_len, json_len;
    rs_err err;
    for (int binary_out = 0; binary_out <= 1; binary_out++) {
        assert_int_equal(rs_client_kserve_binary_request(&req, binary_out, body, sizeof(body),
                                                         &body_len, &json_len, &err),
                         0);
        assert_int_equal(body_len - json_len, sizeof(x));
        rs_client_http_response r;
        assert_int_equal(
            rs_client_http_infer(h, "identity", "1", body, body_len, json_len, true, &r, &err), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.cache, "miss");
        assert_true(r.has_inference_header_len);
        /* binary outputs leave bytes after the JSON head; JSON ones none */
        assert_int_equal(r.body_len - r.inference_header_len, binary_out ? sizeof(x) : 0);
        rs_kserve_arena arena;
        rs_kserve_arena_init(&arena, arena_mem, sizeof(arena_mem));
        rs_client_kserve_result kr;
        assert_int_equal(rs_client_kserve_parse_response(r.body, r.body_len, r.inference_header_len,
                                                         &kr, &arena, &err),
                         0);
        assert_string_equal(kr.model_name, "identity");
        assert_string_equal(kr.model_version, "1");
        assert_string_equal(kr.id, "kid");
        assert_int_equal(kr.outputs.count, 1);
        const rs_tensor_view *y = &kr.outputs.t[0];
        assert_true(rs_str_eq(y->name, "y"));
        assert_int_equal(y->dtype, RS_DT_INT32);
        assert_int_equal(y->rank, 2);
        assert_int_equal(y->dims[1], 3);
        assert_memory_equal(y->data, x, sizeof(x));
    }
    /* the server's 400 for a bad body comes back as a status, not a failure */
    rs_client_http_response r;
    assert_int_equal(
        rs_client_http_infer(h, "identity", NULL, "{\"inputs\": 3}", 13, 13, false, &r, &err), 0);
    assert_int_equal(r.status, 400);
    char msg[256];
    rs_client_http_error_message(&r, msg, sizeof(msg));
    assert_non_null(strstr(msg, "'inputs' must be a non-empty array"));
    /* too small a buffer for the request body */
    assert_int_equal(
        rs_client_kserve_binary_request(&req, true, body, 40, &body_len, &json_len, &err), -1);
    assert_non_null(strstr(err.msg, "over the 40-byte buffer"));
    rs_client_http_destroy(h);
}

static void test_kserve_parse_response_errors(void **state) {
    (void)state;
    static uint8_t arena_mem[4096];
    rs_kserve_arena arena;
    rs_client_kserve_result kr;
    rs_err err;
    struct {
        const char *body;
        const char *want;
    } cases[] = {
        {"{\"outputs\": [", "not valid JSON"},
        {"[1]", "must be a JSON object"},
        {"{\"model_name\": \"m\"}", "no 'outputs' array"},
        {"{\"outputs\": [{\"name\": \"y\", \"datatype\": \"FP32\", \"shape\": [2], \"data\": "
         "[1]}]}",
         "response outputs: input 'y': shape [2] needs 2 elements, data has 1"},
        {"{\"outputs\": [{\"name\": \"y\", \"datatype\": \"FP32\", \"shape\": [1], "
         "\"parameters\": {\"binary_data_size\": 4}}]}",
         "binary_data_size 4 but only 0 binary bytes remain"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rs_kserve_arena_init(&arena, arena_mem, sizeof(arena_mem));
        size_t n = strlen(cases[i].body);
        assert_int_equal(rs_client_kserve_parse_response((const uint8_t *)cases[i].body, n, n, &kr,
                                                         &arena, &err),
                         -1);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, err.msg, cases[i].want);
    }
    const char *ok = "{\"model_name\": \"m\", \"outputs\": []}";
    rs_kserve_arena_init(&arena, arena_mem, sizeof(arena_mem));
    assert_int_equal(rs_client_kserve_parse_response((const uint8_t *)ok, strlen(ok), strlen(ok),
                                                     &kr, &arena, &err),
                     0);
    assert_int_equal(kr.outputs.count, 0);
    assert_int_equal(rs_client_kserve_parse_response((const uint8_t *)ok, 4, 5, &kr, &arena, &err),
                     -1);
    assert_non_null(
        strstr(err.msg, "Inference-Header-Content-Length 5 is over the body's 4 bytes"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_endpoint),
        cmocka_unit_test(test_framed_infer_and_errors),
        cmocka_unit_test(test_framed_pipelined),
        cmocka_unit_test(test_framed_limits_and_failures),
        cmocka_unit_test(test_http_requests),
        cmocka_unit_test(test_http_kserve_roundtrip),
        cmocka_unit_test(test_kserve_parse_response_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

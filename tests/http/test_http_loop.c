/* HTTP served on the real io loop over loopback sockets (epoll, and io_uring
 * where the kernel allows it): pipelined requests answered now and later
 * (from a loop timer), a chunked body, and Connection: close ending the
 * connection. The loop is driven with rs_loop_run_once; no timing is
 * asserted. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/http/http.h"
#include "engine/http/router.h"
#include "io/loop.h"

static rs_loop *g_loop;
static rs_timer g_timer;
static rs_http_handle g_pending;
static rs_http_server *g_server;

static void h_hello(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_http_respond_json(s, req->handle, 200, "{\"hi\":1}", 8);
}

static void h_echo(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_http_respond_json(s, req->handle, 200, (const char *)req->body, req->body_len);
}

static void answer_later(rs_loop *loop, rs_timer *t, void *arg) {
    (void)loop;
    (void)t;
    (void)arg;
    assert_int_equal(rs_http_respond_json(g_server, g_pending, 200, "{\"late\":true}", 13), 0);
}

static void h_infer(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)s;
    (void)arg;
    g_pending = req->handle;
    assert_int_equal(rs_loop_timer_arm(g_loop, &g_timer, 1000), 0);
}

/* Reads until want bytes arrived or the peer closed; returns bytes read. */
static size_t pump(int fd, char *buf, size_t cap, size_t want, bool *eof) {
    size_t got = 0;
    *eof = false;
    for (int i = 0; i < 2000 && got < want && !*eof; i++) {
        rs_loop_run_once(g_loop, 5);
        for (;;) {
            ssize_t n = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT);
            if (n > 0) {
                got += (size_t)n;
                continue;
            }
            if (n == 0) *eof = true;
            break;
        }
    }
    buf[got] = 0;
    return got;
}

static void run_backend(rs_io_backend backend) {
    rs_err err = {0};
    rs_loop_config lc;
    rs_loop_config_default(&lc);
    lc.backend = backend;
    lc.max_conns = 16;
    g_loop = rs_loop_create(&lc, &err);
    if (!g_loop) fail_msg("loop: %s", err.msg);
    rs_timer_init(&g_timer, answer_later, NULL);

    rs_http_router *router = rs_http_router_create(8, &err);
    rs_http_router_add(router, RS_HTTP_GET, "/hello", h_hello, NULL, &err);
    rs_http_router_add(router, RS_HTTP_POST, "/echo", h_echo, NULL, &err);
    rs_http_router_add(router, RS_HTTP_POST, "/v2/models/{model}/infer", h_infer, NULL, &err);
    rs_http_config hc;
    rs_http_config_default(&hc);
    hc.max_conns = 8;
    hc.server_name = NULL;
    hc.max_body_bytes = 1 << 16;
    g_server = rs_http_server_create(&hc, router, &err);
    assert_non_null(g_server);
    int lid = rs_http_server_listen(g_server, g_loop, "127.0.0.1", 0, true, &err);
    if (lid < 0) fail_msg("listen: %s", err.msg);
    uint16_t port = rs_loop_listen_port(g_loop, lid);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *req =
        "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
        "GET /hello HTTP/1.1\r\n\r\n"
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":2}\r\n0\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    const char *want =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"late\":true}"
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"hi\":1}"
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":2}";
    static char buf[8192];
    bool eof;
    pump(fd, buf, sizeof(buf), strlen(want), &eof);
    assert_string_equal(buf, want);
    assert_false(eof);

    const char *last = "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, last, strlen(last), 0), (ssize_t)strlen(last));
    pump(fd, buf, sizeof(buf), sizeof(buf), &eof);
    assert_string_equal(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n"
                             "Connection: close\r\n\r\n{\"hi\":1}");
    assert_true(eof);
    close(fd);
    for (int i = 0; i < 20; i++) rs_loop_run_once(g_loop, 1);
    rs_http_server_stats st;
    rs_http_server_stats_get(g_server, &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.conns_open, 0);

    rs_loop_destroy(g_loop); /* closes what is left (on_close needs the server) */
    rs_http_server_destroy(g_server);
    rs_http_router_destroy(router);
}

static void test_epoll(void **state) {
    (void)state;
    run_backend(RS_IO_EPOLL);
}

static void test_uring(void **state) {
    (void)state;
    rs_err err = {0};
    rs_io_backend got;
    /* AUTO resolves to io_uring where the kernel allows it, else epoll:
     * either way the HTTP layer must behave the same. */
    assert_int_equal(rs_io_backend_resolve(RS_IO_AUTO, &got, &err), 0);
    run_backend(got);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoll),
        cmocka_unit_test(test_uring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

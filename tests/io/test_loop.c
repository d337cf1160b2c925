/* test_loop.c — the event loop on both backends (every test runs twice).
 *
 * Tests drive one loop from the test thread with rs_loop_run_once and stop
 * on a condition, with an iteration cap so a bug fails instead of hanging.
 * Nothing here asserts on time. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/loop.h"

static rs_io_backend g_uring = RS_IO_URING;
static rs_io_backend g_epoll = RS_IO_EPOLL;

static rs_loop *new_loop(void **state, rs_loop_config *cfg_override) {
    rs_loop_config cfg;
    if (cfg_override) cfg = *cfg_override;
    else rs_loop_config_default(&cfg);
    cfg.backend = *(rs_io_backend *)*state;
    rs_err err = {{0}};
    rs_loop *loop = rs_loop_create(&cfg, &err);
    if (!loop) fail_msg("rs_loop_create: %s", err.msg);
    assert_int_equal(rs_loop_backend(loop), cfg.backend);
    return loop;
}

#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        int it_ = 0;                                                                               \
        while (!(cond) && it_++ < 20000) rs_loop_run_once((loop), 50);                             \
        assert_true(cond);                                                                         \
    } while (0)

/* ---- echo ---------------------------------------------------------------- */

static ssize_t echo_on_data(rs_conn *c, const uint8_t *data, size_t len) {
    return rs_conn_send(c, data, len) == 0 ? (ssize_t)len : 0;
}
static const rs_conn_ops echo_ops = {.on_data = echo_on_data};

typedef struct client {
    uint8_t msg[1000];
    size_t got;
    bool ok;
    bool closed;
    int connect_err;
    int close_err;
} client;

static int g_done;

static void cl_on_connect(rs_conn *c, int err) {
    client *cl = rs_conn_udata(c);
    cl->connect_err = err;
    if (err == 0) assert_int_equal(rs_conn_send(c, cl->msg, sizeof(cl->msg)), 0);
}
static ssize_t cl_on_data(rs_conn *c, const uint8_t *data, size_t len) {
    client *cl = rs_conn_udata(c);
    assert_true(cl->got + len <= sizeof(cl->msg));
    assert_memory_equal(data, cl->msg + cl->got, len);
    cl->got += len;
    if (cl->got == sizeof(cl->msg)) {
        cl->ok = true;
        rs_conn_close(c);
    }
    return (ssize_t)len;
}
static void cl_on_close(rs_conn *c, int err) {
    client *cl = rs_conn_udata(c);
    cl->closed = true;
    cl->close_err = err;
    g_done++;
}
static const rs_conn_ops client_ops = {
    .on_connect = cl_on_connect, .on_data = cl_on_data, .on_close = cl_on_close};

static void test_echo_many(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    rs_err err;
    int lid = rs_loop_listen(loop, "127.0.0.1", 0, false, &echo_ops, NULL, &err);
    assert_true(lid >= 0);
    uint16_t port = rs_loop_listen_port(loop, lid);
    assert_true(port != 0);
    enum { N = 300 };
    client *cls = calloc(N, sizeof(client));
    g_done = 0;
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < sizeof(cls[i].msg); k++) cls[i].msg[k] = (uint8_t)(i * 7 + k);
        assert_non_null(rs_loop_connect(loop, "127.0.0.1", port, &client_ops, &cls[i], &err));
    }
    RUN_UNTIL(loop, g_done == N);
    for (int i = 0; i < N; i++) {
        assert_true(cls[i].ok);
        assert_int_equal(cls[i].connect_err, 0);
        assert_int_equal(cls[i].close_err, 0);
    }
    rs_loop_stats st;
    rs_loop_get_stats(loop, &st);
    assert_int_equal(st.conns_accepted, N);
    /* the server side closes when the clients do */
    RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.conns_open == 0));
    assert_int_equal(st.conns_closed, 2 * N);
    rs_loop_destroy(loop);
    free(cls);
}

int main(void) {
#define BOTH(fn)                                                                                   \
    {#fn "/uring", fn, NULL, NULL, &g_uring}, { #fn "/epoll", fn, NULL, NULL, &g_epoll }
    const struct CMUnitTest tests[] = {
        BOTH(test_echo_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_framed.c — io/framed on a real loop, both backends: a framed server
 * (PING -> PONG, INFER_REQUEST -> identity INFER_RESPONSE sent by gather,
 * anything else rejected) and framed clients over loopback. Pipelined
 * frames; bad magic, a rejected type and an oversized header each get one
 * ERROR frame with their code, then the server closes. No timing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <endian.h>
#include <zlib.h>

#include "io/framed.h"

static rs_io_backend g_uring = RS_IO_URING;
static rs_io_backend g_epoll = RS_IO_EPOLL;

#define RUN_UNTIL(loop, cond)                                                 \
    do {                                                                      \
        int it_ = 0;                                                          \
        while (!(cond) && it_++ < 20000) rs_loop_run_once((loop), 50);        \
        assert_true(cond);                                                    \
    } while (0)

/* ---- server ---- */

static int srv_frame(rs_conn *c, const rs_frame_msg *m, void *arg) {
    (void)arg;
    switch (m->hdr.type) {
    case RS_MSG_PING:
        assert_int_equal(rs_framed_send_u64(c, RS_MSG_PONG, m->hdr.request_id, m->u.u64), 0);
        return RS_FRAMED_CONTINUE;
    case RS_MSG_INFER_REQUEST: {
        const rs_infer_request *r = &m->u.infer_req;
        rs_infer_response resp = {.model = r->model, .version = rs_str_c("1"), .id = r->id,
                                  .outputs = r->inputs};
        assert_int_equal(rs_framed_send_infer_response(c, m->hdr.request_id, 0, &resp), 0);
        return RS_FRAMED_CONTINUE;
    }
    default: return rs_framed_reject_type(c, m);
    }
}

static const rs_framed_cfg srv_cfg = {.on_frame = srv_frame, .max_payload_bytes = 4096};
static int g_srv_closed;
static int g_srv_close_err;

static ssize_t srv_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    return rs_framed_on_data(c, d, n, &srv_cfg);
}
static void srv_on_close(rs_conn *c, int err) {
    (void)c;
    g_srv_closed++;
    g_srv_close_err = err;
}
static const rs_conn_ops srv_ops = {.on_data = srv_on_data, .on_close = srv_on_close};

/* ---- client ---- */

typedef struct client {
    const uint8_t *send;
    size_t send_len;
    int want_frames; /* close after this many replies (0: wait for the server) */
    int frames;
    uint8_t types[8];
    uint64_t ids[8];
    uint32_t error_code;
    char error_msg[256];
    float y[4];
    bool closed;
} client;

static int cl_frame(rs_conn *c, const rs_frame_msg *m, void *arg) {
    (void)arg;
    client *cl = rs_conn_udata(c);
    assert_true(cl->frames < 8);
    cl->types[cl->frames] = m->hdr.type;
    cl->ids[cl->frames] = m->hdr.request_id;
    cl->frames++;
    if (m->hdr.type == RS_MSG_ERROR) {
        cl->error_code = m->u.error.code;
        snprintf(cl->error_msg, sizeof(cl->error_msg), "%.*s", (int)m->u.error.message.len,
                 m->u.error.message.ptr);
    }
    if (m->hdr.type == RS_MSG_INFER_RESPONSE) {
        const rs_tensor_view *y = rs_tensor_find(&m->u.infer_resp.outputs, "x", 1);
        assert_non_null(y);
        assert_int_equal(y->byte_len, sizeof(cl->y));
        memcpy(cl->y, y->data, sizeof(cl->y));
    }
    if (cl->want_frames && cl->frames == cl->want_frames) return RS_FRAMED_CLOSE;
    return RS_FRAMED_CONTINUE;
}
static const rs_framed_cfg cl_cfg = {.on_frame = cl_frame};

static void cl_on_connect(rs_conn *c, int err) {
    client *cl = rs_conn_udata(c);
    assert_int_equal(err, 0);
    assert_int_equal(rs_conn_send(c, cl->send, cl->send_len), 0);
}
static ssize_t cl_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    return rs_framed_on_data(c, d, n, &cl_cfg);
}
static void cl_on_close(rs_conn *c, int err) {
    (void)err;
    client *cl = rs_conn_udata(c);
    cl->closed = true;
}
static const rs_conn_ops cl_ops = {
    .on_connect = cl_on_connect, .on_data = cl_on_data, .on_close = cl_on_close};

static rs_loop *setup(void **state, uint16_t *port) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.backend = *(rs_io_backend *)*state;
    rs_err err = {{0}};
    rs_loop *loop = rs_loop_create(&cfg, &err);
    if (!loop) fail_msg("rs_loop_create: %s", err.msg);
    int lid = rs_loop_listen(loop, "127.0.0.1", 0, false, &srv_ops, NULL, &err);
    assert_true(lid >= 0);
    *port = rs_loop_listen_port(loop, lid);
    g_srv_closed = 0;
    g_srv_close_err = 0;
    return loop;
}

static void run_client(rs_loop *loop, uint16_t port, client *cl) {
    rs_err err;
    assert_non_null(rs_loop_connect(loop, "127.0.0.1", port, &cl_ops, cl, &err));
    RUN_UNTIL(loop, cl->closed);
    RUN_UNTIL(loop, g_srv_closed == 1);
}

static const float xs[4] = {1.5f, -2, 3, 4};

static void test_pipelined(void **state) {
    uint16_t port;
    rs_loop *loop = setup(state, &port);
    static uint8_t out[1024];
    size_t n = rs_encode_u64(out, sizeof(out), RS_MSG_PING, 1, 7);
    rs_infer_request r = {.model = rs_str_c("identity"), .id = rs_str_c("q")};
    r.inputs.count = 1;
    r.inputs.t[0] = (rs_tensor_view){.name = rs_str_c("x"), .dtype = RS_DT_FP32, .rank = 2,
                                     .dims = {1, 4}, .data = (const uint8_t *)xs,
                                     .byte_len = 16};
    n += rs_encode_infer_request(out + n, sizeof(out) - n, 2, 0, &r);
    n += rs_encode_u64(out + n, sizeof(out) - n, RS_MSG_PING, 3, 9);
    client cl = {.send = out, .send_len = n, .want_frames = 3};
    run_client(loop, port, &cl);
    assert_int_equal(cl.frames, 3);
    assert_int_equal(cl.types[0], RS_MSG_PONG);
    assert_int_equal(cl.ids[0], 1);
    assert_int_equal(cl.types[1], RS_MSG_INFER_RESPONSE);
    assert_int_equal(cl.ids[1], 2);
    assert_memory_equal(cl.y, xs, sizeof(xs));
    assert_int_equal(cl.types[2], RS_MSG_PONG);
    assert_int_equal(cl.ids[2], 3);
    assert_int_equal(g_srv_close_err, 0); /* the client closed, cleanly */
    rs_loop_destroy(loop);
}

static void expect_error_then_close(void **state, const uint8_t *send, size_t len,
                                    rs_status code, uint64_t rid, const char *words) {
    uint16_t port;
    rs_loop *loop = setup(state, &port);
    client cl = {.send = send, .send_len = len};
    run_client(loop, port, &cl);
    assert_int_equal(cl.frames, 1);
    assert_int_equal(cl.types[0], RS_MSG_ERROR);
    assert_int_equal(cl.ids[0], rid);
    assert_int_equal(cl.error_code, code);
    if (!strstr(cl.error_msg, words)) fail_msg("'%s' lacks '%s'", cl.error_msg, words);
    assert_int_not_equal(g_srv_close_err, 0); /* closed by the server: a protocol error */
    rs_loop_destroy(loop);
}

static void test_bad_magic(void **state) {
    static const char http[] = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_error_then_close(state, (const uint8_t *)http, sizeof(http) - 1, RS_E_BAD_MAGIC, 0,
                            "magic");
}

static void test_rejected_type(void **state) {
    uint8_t f[64];
    rs_fw w;
    rs_fw_init(&w, f, sizeof(f));
    rs_fw_batch_response_begin(&w, 44, 1);
    rs_fw_batch_response_err(&w, 1, RS_E_BACKEND, "x");
    size_t n = rs_fw_finish(&w);
    expect_error_then_close(state, f, n, RS_E_BAD_TYPE, 44, "BATCH_RESPONSE is not accepted");
}

static void test_too_large_from_header(void **state) {
    /* only a header announcing 1 MiB: refused without waiting for the payload */
    uint8_t f[32];
    size_t n = rs_encode_u64(f, sizeof(f), RS_MSG_PING, 5, 0);
    assert_int_equal(n, 32);
    uint32_t v = htole32(1u << 20);
    memcpy(f + 16, &v, 4);
    v = htole32((uint32_t)crc32(0L, f, 20));
    memcpy(f + 20, &v, 4);
    rs_frame_header h;
    assert_int_equal(rs_frame_peek(f, 24, 4096, &h), -RS_E_TOO_LARGE);
    expect_error_then_close(state, f, 24, RS_E_TOO_LARGE, 5, "maximum of 4096");
}

int main(void) {
#define BOTH(fn) {#fn "/uring", fn, NULL, NULL, &g_uring}, {#fn "/epoll", fn, NULL, NULL, &g_epoll}
    const struct CMUnitTest tests[] = {
        BOTH(test_pipelined),
        BOTH(test_bad_magic),
        BOTH(test_rejected_type),
        BOTH(test_too_large_from_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

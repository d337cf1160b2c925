/* test_framed_scan.c — frame assembly and dispatch (rs_framed_scan) as a
 * framed connection sees it: streams split at every byte, pipelined frames,
 * a bad frame after good ones, handler stop/close; gather encoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/framed.h"

typedef struct seen {
    int count;
    uint64_t ids[64];
    uint8_t types[64];
    int stop_at;  /* return RS_FRAMED_STOP after this many frames (0: never) */
    int close_at; /* return RS_FRAMED_CLOSE at this frame (0: never) */
} seen;

static int on_frame(void *ctx, const rs_frame_msg *m) {
    seen *s = ctx;
    s->ids[s->count] = m->hdr.request_id;
    s->types[s->count] = m->hdr.type;
    s->count++;
    if (m->hdr.type == RS_MSG_INFER_REQUEST) {
        const rs_tensor_view *x = rs_tensor_find(&m->u.infer_req.inputs, "x", 1);
        assert_non_null(x);
        assert_int_equal(x->byte_len, 16);
        float last;
        memcpy(&last, x->data + 12, 4);
        assert_true(last == 4.0f);
    }
    if (s->close_at && s->count == s->close_at) return RS_FRAMED_CLOSE;
    if (s->stop_at && s->count == s->stop_at) return RS_FRAMED_STOP;
    return RS_FRAMED_CONTINUE;
}

static const float xs[4] = {1, 2, 3, 4};

/* ping(1), infer request(2), heartbeat(3), pong(4), all in one stream */
static size_t make_stream(uint8_t *out, size_t cap) {
    size_t n = rs_encode_u64(out, cap, RS_MSG_PING, 1, 11);
    rs_infer_request r = {.model = rs_str_c("identity")};
    r.inputs.count = 1;
    r.inputs.t[0] = (rs_tensor_view){.name = rs_str_c("x"), .dtype = RS_DT_FP32, .rank = 2,
                                     .dims = {1, 4}, .data = (const uint8_t *)xs,
                                     .byte_len = 16};
    n += rs_encode_infer_request(out + n, cap - n, 2, 0, &r);
    rs_heartbeat_msg hb = {.worker_id = rs_str_c("w"), .in_flight = 1};
    n += rs_encode_heartbeat(out + n, cap - n, 3, &hb);
    n += rs_encode_u64(out + n, cap - n, RS_MSG_PONG, 4, 11);
    return n;
}

/* Feeds stream in chunks of chunk bytes the way the loop does: unconsumed
 * bytes are presented again together with the next chunk. */
static void feed(const uint8_t *stream, size_t len, size_t chunk, seen *s) {
    uint8_t pending[4096];
    size_t have = 0, pos = 0;
    while (pos < len) {
        size_t k = len - pos < chunk ? len - pos : chunk;
        memcpy(pending + have, stream + pos, k);
        have += k;
        pos += k;
        size_t consumed;
        rs_framed_fault f;
        ssize_t r = rs_framed_scan(pending, have, 0, on_frame, s, &consumed, &f);
        assert_true(r >= 0);
        assert_int_equal((size_t)r, consumed);
        memmove(pending, pending + consumed, have - consumed);
        have -= consumed;
    }
    assert_int_equal(have, 0);
}

static void test_split_at_every_boundary(void **state) {
    (void)state;
    uint8_t stream[2048];
    size_t len = make_stream(stream, sizeof(stream));
    for (size_t chunk = 1; chunk <= len; chunk++) {
        seen s = {0};
        feed(stream, len, chunk, &s);
        assert_int_equal(s.count, 4);
        for (int i = 0; i < 4; i++) assert_int_equal(s.ids[i], (uint64_t)i + 1);
        assert_int_equal(s.types[1], RS_MSG_INFER_REQUEST);
    }
    /* one cut anywhere, two pieces */
    for (size_t cut = 0; cut <= len; cut++) {
        seen s = {0};
        uint8_t pending[2048];
        size_t consumed;
        rs_framed_fault f;
        memcpy(pending, stream, cut);
        assert_true(rs_framed_scan(pending, cut, 0, on_frame, &s, &consumed, &f) >= 0);
        memmove(pending, pending + consumed, cut - consumed);
        size_t have = cut - consumed;
        memcpy(pending + have, stream + cut, len - cut);
        have += len - cut;
        assert_int_equal(rs_framed_scan(pending, have, 0, on_frame, &s, &consumed, &f),
                         (ssize_t)have);
        assert_int_equal(s.count, 4);
    }
}

static void test_bad_frame_after_good_ones(void **state) {
    (void)state;
    uint8_t stream[2048];
    size_t len = make_stream(stream, sizeof(stream));
    size_t first = 32; /* the ping */
    stream[first + 9] ^= 0x40; /* corrupt the infer request's id: CRC fails */
    seen s = {0};
    size_t consumed;
    rs_framed_fault f;
    assert_int_equal(rs_framed_scan(stream, len, 0, on_frame, &s, &consumed, &f), -1);
    assert_int_equal(s.count, 1); /* the ping was dispatched, nothing after the bad frame */
    assert_int_equal(consumed, first);
    assert_int_equal(f.code, RS_E_CHECKSUM);
    assert_int_equal(f.request_id, 0); /* the header cannot be trusted */
    assert_non_null(strstr(f.why, "checksum"));

    /* a frame over the maximum is refused from its header alone */
    len = make_stream(stream, sizeof(stream));
    s = (seen){0};
    assert_int_equal(rs_framed_scan(stream, 32 + 24, 40, on_frame, &s, &consumed, &f), -1);
    assert_int_equal(f.code, RS_E_TOO_LARGE);
    assert_int_equal(f.request_id, 2);
    assert_int_equal(s.count, 1);

    /* a payload error keeps the request id for the ERROR reply */
    uint8_t bad[64];
    size_t n = rs_encode_u64(bad, sizeof(bad), RS_MSG_POLL, 99, 5);
    rs_fw w;
    rs_fw_init(&w, bad, sizeof(bad));
    rs_fw_begin(&w, RS_MSG_POLL, 0, 99);
    rs_fw_u32(&w, 5); /* a U64 message with 4 bytes */
    n = rs_fw_finish(&w);
    s = (seen){0};
    assert_int_equal(rs_framed_scan(bad, n, 0, on_frame, &s, &consumed, &f), -1);
    assert_int_equal(f.code, RS_E_TRUNCATED);
    assert_int_equal(f.request_id, 99);
    assert_int_equal(s.count, 0);
}

static void test_handler_stop_and_close(void **state) {
    (void)state;
    uint8_t stream[2048];
    size_t len = make_stream(stream, sizeof(stream));
    seen s = {.stop_at = 2};
    size_t consumed;
    rs_framed_fault f;
    ssize_t r = rs_framed_scan(stream, len, 0, on_frame, &s, &consumed, &f);
    assert_int_equal(s.count, 2);
    assert_true(r > 32 && (size_t)r < len);
    assert_int_equal((size_t)r, consumed);
    /* the rest on the next call */
    s.stop_at = 0;
    assert_int_equal(rs_framed_scan(stream + r, len - (size_t)r, 0, on_frame, &s, &consumed, &f),
                     (ssize_t)(len - (size_t)r));
    assert_int_equal(s.count, 4);

    s = (seen){.close_at = 3};
    assert_int_equal(rs_framed_scan(stream, len, 0, on_frame, &s, &consumed, &f), -2);
    assert_int_equal(s.count, 3);
}

static void test_gather_matches_encoder(void **state) {
    (void)state;
    static const uint8_t b1[3] = {1, 0, 1};
    static const double d2[2] = {0.5, -1};
    rs_infer_response r = {.model = rs_str_c("m"), .version = rs_str_c("7"),
                           .id = rs_str_c("abc")};
    r.outputs.count = 4;
    r.outputs.t[0] = (rs_tensor_view){.name = rs_str_c("flags"), .dtype = RS_DT_BOOL,
                                      .rank = 1, .dims = {3}, .data = b1, .byte_len = 3};
    r.outputs.t[1] = (rs_tensor_view){.name = rs_str_c("empty"), .dtype = RS_DT_FP32,
                                      .rank = 2, .dims = {0, 4}, .data = NULL, .byte_len = 0};
    r.outputs.t[2] = (rs_tensor_view){.name = rs_str_c("d"), .dtype = RS_DT_FP64, .rank = 1,
                                      .dims = {2}, .data = (const uint8_t *)d2, .byte_len = 16};
    r.outputs.t[3] = (rs_tensor_view){.name = rs_str_c("x"), .dtype = RS_DT_FP32, .rank = 1,
                                      .dims = {4}, .data = (const uint8_t *)xs, .byte_len = 16};
    uint8_t want[1024];
    size_t n = rs_encode_infer_response(want, sizeof(want), 5, RS_FRAME_F_CACHE_HIT, &r);
    assert_true(n > 0);
    uint8_t meta[RS_FRAMED_GATHER_META_BYTES];
    struct iovec iov[RS_FRAMED_GATHER_MAX_IOV];
    int k = rs_framed_gather_infer_response(meta, sizeof(meta), iov, RS_FRAMED_GATHER_MAX_IOV, 5,
                                            RS_FRAME_F_CACHE_HIT, &r);
    assert_true(k > 0);
    uint8_t got[1024];
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        memcpy(got + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    assert_int_equal(off, n);
    assert_memory_equal(got, want, n);
    /* too few iovecs */
    assert_int_equal(rs_framed_gather_infer_response(meta, sizeof(meta), iov, 3, 5, 0, &r),
                     -EMSGSIZE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_at_every_boundary),
        cmocka_unit_test(test_bad_frame_after_good_ones),
        cmocka_unit_test(test_handler_stop_and_close),
        cmocka_unit_test(test_gather_matches_encoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

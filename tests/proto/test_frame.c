/* test_frame.c — codec round trips, header validation, limits, writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "io/frame.h"

static uint8_t buf[1 << 16];
static char why[512];

static rs_tensor_view tv(const char *name, rs_dtype dt, uint32_t rank, const int64_t *dims,
                         const void *data, uint64_t byte_len) {
    rs_tensor_view t = {.name = rs_str_c(name), .dtype = dt, .rank = rank, .data = data,
                        .byte_len = byte_len};
    for (uint32_t i = 0; i < rank; i++) t.dims[i] = dims[i];
    return t;
}

static bool str_is(rs_str s, const char *c) { return rs_str_eq(s, c); }

static const float f6[6] = {1, 2, 3, 4, 5, 6};
static const int64_t d23[2] = {2, 3};

static void test_infer_request_roundtrip(void **state) {
    (void)state;
    rs_infer_request r = {.model = rs_str_c("digits"), .version = rs_str_c("2"),
                          .id = rs_str_c("req-1"), .routing_key = rs_str_c(""),
                          .traceparent = rs_str_c("00-abc-def-01"), .timeout_us = 5000,
                          .priority = -3, .n_outputs = 1};
    r.outputs[0] = rs_str_c("probs");
    r.inputs.count = 2;
    r.inputs.t[0] = tv("x", RS_DT_FP32, 2, d23, f6, sizeof(f6));
    static const uint8_t one = 1;
    r.inputs.t[1] = tv("flag", RS_DT_BOOL, 0, NULL, &one, 1);
    size_t n = rs_encode_infer_request(buf, sizeof(buf), 77, RS_FRAME_F_NO_CACHE, &r);
    assert_true(n > RS_FRAME_HEADER_BYTES);
    assert_int_equal(n, rs_infer_request_size(&r));
    assert_int_equal(rs_encode_infer_request(buf, n - 1, 77, 0, &r), 0); /* too small */
    n = rs_encode_infer_request(buf, sizeof(buf), 77, RS_FRAME_F_NO_CACHE, &r);

    rs_frame_header h;
    assert_int_equal(rs_frame_peek(buf, 10, RS_FRAME_MAX_PAYLOAD_DEFAULT, &h), 0);
    assert_int_equal(rs_frame_peek(buf, 24, RS_FRAME_MAX_PAYLOAD_DEFAULT, &h), (int64_t)n);
    assert_int_equal(h.type, RS_MSG_INFER_REQUEST);
    assert_int_equal(h.request_id, 77);
    assert_int_equal(h.flags, RS_FRAME_F_NO_CACHE);

    rs_frame_msg m;
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)n);
    const rs_infer_request *d = &m.u.infer_req;
    assert_true(str_is(d->model, "digits"));
    assert_true(str_is(d->version, "2"));
    assert_true(str_is(d->id, "req-1"));
    assert_int_equal(d->routing_key.len, 0);
    assert_true(str_is(d->traceparent, "00-abc-def-01"));
    assert_int_equal(d->timeout_us, 5000);
    assert_int_equal(d->priority, -3);
    assert_int_equal(d->n_outputs, 1);
    assert_true(str_is(d->outputs[0], "probs"));
    assert_int_equal(d->inputs.count, 2);
    const rs_tensor_view *x = rs_tensor_find(&d->inputs, "x", 1);
    assert_non_null(x);
    assert_int_equal(x->dtype, RS_DT_FP32);
    assert_int_equal(x->rank, 2);
    assert_int_equal(x->dims[1], 3);
    assert_int_equal(x->byte_len, sizeof(f6));
    assert_memory_equal(x->data, f6, sizeof(f6));
    /* zero-copy: the view points into the frame, 8-aligned relative to it */
    assert_true(x->data > buf && x->data < buf + n);
    assert_int_equal((x->data - buf) % 8, 0);
    const rs_tensor_view *fl = rs_tensor_find(&d->inputs, "flag", 4);
    assert_non_null(fl);
    assert_int_equal(fl->rank, 0);
    assert_int_equal((fl->data - buf) % 8, 0);
    assert_null(rs_tensor_find(&d->inputs, "nope", 4));

    /* re-encoding the decoded view gives the same bytes */
    static uint8_t again[sizeof(buf)];
    assert_int_equal(rs_encode_infer_request(again, sizeof(again), 77, RS_FRAME_F_NO_CACHE, d),
                     n);
    assert_memory_equal(again, buf, n);

    /* SUBMIT carries the same payload */
    size_t s = rs_encode_submit(again, sizeof(again), 5, 0, &r);
    assert_int_equal(s, n);
    assert_int_equal(rs_frame_decode(again, s, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)s);
    assert_int_equal(m.hdr.type, RS_MSG_SUBMIT);
    assert_true(str_is(m.u.infer_req.model, "digits"));
}

static void test_infer_response_and_bytes_dtype(void **state) {
    (void)state;
    /* BYTES: two elements "hi", "" */
    static const uint8_t bytes[] = {2, 0, 0, 0, 'h', 'i', 0, 0, 0, 0};
    static const int64_t d2[1] = {2};
    rs_infer_response r = {.model = rs_str_c("m"), .version = rs_str_c(""), .id = rs_str_c("")};
    r.outputs.count = 1;
    r.outputs.t[0] = tv("s", RS_DT_BYTES, 1, d2, bytes, sizeof(bytes));
    size_t n = rs_encode_infer_response(buf, sizeof(buf), 9, RS_FRAME_F_CACHE_HIT, &r);
    assert_int_equal(n, rs_infer_response_size(&r));
    rs_frame_msg m;
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)n);
    assert_int_equal(m.hdr.flags, RS_FRAME_F_CACHE_HIT);
    assert_int_equal(m.u.infer_resp.outputs.t[0].byte_len, sizeof(bytes));

    /* restamped for another requester: the bytes of a fresh encoding */
    uint8_t fresh[256];
    assert_int_equal(rs_encode_infer_response(fresh, sizeof(fresh), 0x1122334455667788ull, 0, &r), n);
    rs_frame_restamp(buf, 0x1122334455667788ull, 0);
    assert_memory_equal(buf, fresh, n);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)n);
    assert_int_equal(m.hdr.request_id, 0x1122334455667788ull);
    assert_int_equal(m.hdr.flags, 0);

    /* a BYTES tensor whose prefixes do not tile its length */
    static const uint8_t bad[] = {5, 0, 0, 0, 'h', 'i', 0, 0, 0, 0};
    r.outputs.t[0].data = bad;
    n = rs_encode_infer_response(buf, sizeof(buf), 9, 0, &r);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_SHAPE_MISMATCH);
    assert_non_null(strstr(why, "'s'"));
}

static void test_batch_roundtrip(void **state) {
    (void)state;
    rs_fw w;
    rs_fw_init(&w, buf, sizeof(buf));
    rs_tensor_list in = {.count = 1};
    static const int64_t d13[2] = {1, 3};
    rs_fw_batch_request_begin(&w, 42, rs_str_c("identity"), rs_str_c("1"), 0,
                              rs_str_c("00-tp"), 3);
    for (int i = 0; i < 3; i++) {
        in.t[0] = tv("x", RS_DT_FP32, 2, d13, f6 + i, 12);
        rs_fw_batch_request_item(&w, 100 + (uint64_t)i, &in);
    }
    size_t n = rs_fw_finish(&w);
    assert_true(n > 0);
    rs_frame_msg m;
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)n);
    const rs_batch_request *b = &m.u.batch_req;
    assert_true(str_is(b->model, "identity"));
    assert_true(str_is(b->traceparent, "00-tp"));
    assert_int_equal(b->item_count, 3);
    rs_batch_iter it;
    rs_batch_request_iter(b, &it);
    uint64_t id;
    rs_tensor_list got;
    int k = 0;
    while (rs_batch_request_next(&it, &id, &got)) {
        assert_int_equal(id, 100 + (uint64_t)k);
        assert_int_equal(got.count, 1);
        assert_memory_equal(got.t[0].data, f6 + k, 12);
        assert_int_equal((got.t[0].data - buf) % 8, 0);
        k++;
    }
    assert_int_equal(k, 3);

    /* response: item 0 ok, item 1 error */
    rs_fw_init(&w, buf, sizeof(buf));
    rs_fw_batch_response_begin(&w, 42, 2);
    in.t[0] = tv("y", RS_DT_FP32, 2, d13, f6, 12);
    rs_fw_batch_response_ok(&w, 100, &in);
    rs_fw_batch_response_err(&w, 101, RS_E_BACKEND, "model failed");
    n = rs_fw_finish(&w);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)n);
    rs_batch_response_iter(&m.u.batch_resp, &it);
    rs_batch_item_result res;
    assert_int_equal(rs_batch_response_next(&it, &res), 1);
    assert_int_equal(res.item_id, 100);
    assert_int_equal(res.status, RS_OK);
    assert_int_equal(res.outputs.count, 1);
    assert_int_equal(rs_batch_response_next(&it, &res), 1);
    assert_int_equal(res.item_id, 101);
    assert_int_equal(res.status, RS_E_BACKEND);
    assert_true(str_is(res.message, "model failed"));
    assert_int_equal(rs_batch_response_next(&it, &res), 0);
}

static void test_register_heartbeat_u64_error(void **state) {
    (void)state;
    rs_register_msg r = {.worker_id = rs_str_c("w1"), .host = rs_str_c("127.0.0.1"),
                         .port = 9101, .token = rs_str_c("secret"), .capacity = 4,
                         .numa_node = -1, .gpu = -1, .n_models = 2};
    r.models[0] = (rs_model_ref){rs_str_c("digits"), rs_str_c("1"), 0};
    r.models[1] = (rs_model_ref){rs_str_c("identity"), rs_str_c(""), 3};
    size_t n = rs_encode_register(buf, sizeof(buf), 1, &r);
    rs_frame_msg m;
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)n);
    assert_true(str_is(m.u.reg.worker_id, "w1"));
    assert_int_equal(m.u.reg.port, 9101);
    assert_int_equal(m.u.reg.numa_node, -1);
    assert_int_equal(m.u.reg.n_models, 2);
    assert_true(str_is(m.u.reg.models[1].name, "identity"));
    assert_int_equal(m.u.reg.models[1].shard, 3);

    rs_heartbeat_msg hb = {.worker_id = rs_str_c("w1"), .in_flight = 3, .queued = 7};
    n = rs_encode_heartbeat(buf, sizeof(buf), 2, &hb);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)n);
    assert_int_equal(m.u.heartbeat.queued, 7);

    n = rs_encode_u64(buf, sizeof(buf), RS_MSG_PING, 3, 123456789012345ull);
    assert_int_equal(n, 32);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     32);
    assert_int_equal(m.u.u64, 123456789012345ull);

    char longmsg[3000];
    memset(longmsg, 'a', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = 0;
    n = rs_encode_error(buf, sizeof(buf), 4, RS_E_OVERLOADED, longmsg);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     (int64_t)n);
    assert_int_equal(m.u.error.code, RS_E_OVERLOADED);
    assert_int_equal(m.u.error.message.len, RS_MAX_ERROR_MSG_BYTES); /* cut to the limit */
}

/* Rewrites the header CRC after a test edited header bytes. */
static void fix_crc(uint8_t *f) {
    uint32_t c = (uint32_t)crc32(0L, f, 20);
    memcpy(f + 20, &c, 4);
}

static void test_header_errors(void **state) {
    (void)state;
    size_t n = rs_encode_u64(buf, sizeof(buf), RS_MSG_PING, 1, 0);
    rs_frame_msg m;
    uint8_t f[64];
    memcpy(f, buf, n);
    f[0] = 'X';
    assert_int_equal(rs_frame_decode(f, n, 1024, &m, why, sizeof(why)), -RS_E_BAD_MAGIC);
    assert_non_null(strstr(why, "magic"));
    memcpy(f, buf, n);
    f[4] = 2;
    fix_crc(f);
    assert_int_equal(rs_frame_decode(f, n, 1024, &m, why, sizeof(why)), -RS_E_BAD_VERSION);
    memcpy(f, buf, n);
    f[9] ^= 1;
    assert_int_equal(rs_frame_decode(f, n, 1024, &m, why, sizeof(why)), -RS_E_CHECKSUM);
    assert_int_equal(rs_frame_peek(f, n, 1024, NULL), -RS_E_CHECKSUM);
    memcpy(f, buf, n);
    f[5] = 99;
    fix_crc(f);
    assert_int_equal(rs_frame_decode(f, n, 1024, &m, why, sizeof(why)), -RS_E_BAD_TYPE);
    f[5] = 0;
    fix_crc(f);
    assert_int_equal(rs_frame_decode(f, n, 1024, &m, why, sizeof(why)), -RS_E_BAD_TYPE);
    memcpy(f, buf, n);
    assert_int_equal(rs_frame_decode(f, n, 7, &m, why, sizeof(why)), -RS_E_TOO_LARGE);
    assert_non_null(strstr(why, "maximum of 7"));
    /* too large is known from the header alone, before the payload arrives */
    assert_int_equal(rs_frame_peek(f, 24, 7, NULL), -RS_E_TOO_LARGE);
    assert_int_equal(rs_frame_decode(f, 23, 1024, &m, why, sizeof(why)), -RS_E_TRUNCATED);
    assert_int_equal(rs_frame_decode(f, n - 1, 1024, &m, why, sizeof(why)), -RS_E_TRUNCATED);
    assert_int_equal(rs_frame_peek(f, n - 1, 1024, NULL), (int64_t)n); /* need more */
    /* payload of a U64 message with trailing bytes */
    memcpy(f, buf, n);
    f[16] = 9;
    fix_crc(f);
    f[32] = 0;
    assert_int_equal(rs_frame_decode(f, 33, 1024, &m, why, sizeof(why)), -RS_E_MALFORMED);
}

static void test_limits(void **state) {
    (void)state;
    rs_infer_request r = {.model = rs_str_c("m")};
    rs_frame_msg m;
    /* model name over 64 bytes */
    char big[100];
    memset(big, 'n', 99);
    big[99] = 0;
    r.model = rs_str_c(big);
    size_t n = rs_encode_infer_request(buf, sizeof(buf), 1, 0, &r);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_MALFORMED);
    assert_non_null(strstr(why, "model name is 99 bytes"));
    r.model = rs_str_c("");
    n = rs_encode_infer_request(buf, sizeof(buf), 1, 0, &r);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_MALFORMED);
    assert_non_null(strstr(why, "model name is empty"));
    /* shape mismatch */
    r.model = rs_str_c("m");
    r.inputs.count = 1;
    r.inputs.t[0] = tv("x", RS_DT_FP32, 2, d23, f6, 20);
    n = rs_encode_infer_request(buf, sizeof(buf), 1, 0, &r);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_SHAPE_MISMATCH);
    assert_non_null(strstr(why, "shape [2,3] has 6 FP32 elements = 24 bytes"));
    /* duplicate names */
    r.inputs.count = 2;
    r.inputs.t[0] = tv("x", RS_DT_FP32, 2, d23, f6, 24);
    r.inputs.t[1] = r.inputs.t[0];
    n = rs_encode_infer_request(buf, sizeof(buf), 1, 0, &r);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_MALFORMED);
    assert_non_null(strstr(why, "appears twice"));
    /* bad dtype */
    r.inputs.count = 1;
    r.inputs.t[0].dtype = (rs_dtype)77;
    n = rs_encode_infer_request(buf, sizeof(buf), 1, 0, &r);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_BAD_DTYPE);
    /* negative dim */
    static const int64_t neg[2] = {-1, 3};
    r.inputs.t[0] = tv("x", RS_DT_FP32, 2, neg, f6, 24);
    n = rs_encode_infer_request(buf, sizeof(buf), 1, 0, &r);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_MALFORMED);
    /* element-count overflow */
    static const int64_t huge[2] = {INT64_MAX / 2, 4};
    r.inputs.t[0] = tv("x", RS_DT_FP32, 2, huge, f6, 24);
    n = rs_encode_infer_request(buf, sizeof(buf), 1, 0, &r);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_SHAPE_MISMATCH);
    /* byte_len past the payload */
    r.inputs.t[0] = tv("x", RS_DT_FP32, 2, d23, f6, 24);
    n = rs_encode_infer_request(buf, sizeof(buf), 1, 0, &r);
    /* the byte_len field sits right before the 8-aligned data: patch it */
    rs_infer_request d;
    assert_int_equal(rs_decode_infer_request(buf + 24, n - 24, &d, why, sizeof(why)), 0);
    size_t data_off = (size_t)(d.inputs.t[0].data - buf);
    uint64_t blen = 1ull << 40;
    size_t bl_off = 24;
    for (size_t o = data_off - 8; o >= 24; o--) {
        uint64_t v;
        memcpy(&v, buf + o, 8);
        if (v == 24) {
            bl_off = o;
            break;
        }
    }
    assert_true(bl_off > 24);
    memcpy(buf + bl_off, &blen, 8);
    assert_int_equal(rs_frame_decode(buf, n, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)),
                     -RS_E_TRUNCATED);
    assert_non_null(strstr(why, "data needs 1099511627776 bytes"));
}

static void test_writer(void **state) {
    (void)state;
    rs_fw w;
    /* counting mode gives the exact size */
    rs_fw_init(&w, NULL, 0);
    rs_fw_begin(&w, RS_MSG_PING, 0, 1);
    rs_fw_u64(&w, 5);
    assert_int_equal(rs_fw_finish(&w), 32);
    /* two frames in one buffer: the second one's padding is relative to its start */
    rs_fw_init(&w, buf, sizeof(buf));
    rs_fw_begin(&w, RS_MSG_PING, 0, 1);
    rs_fw_u8(&w, 1); /* odd size on purpose: breaks nothing in the writer */
    assert_int_equal(rs_fw_finish(&w), 25);
    size_t second = w.len;
    rs_fw_begin(&w, RS_MSG_PONG, 0, 2);
    rs_fw_u8(&w, 1);
    rs_fw_pad8(&w);
    assert_int_equal((w.len - second) % 8, 0);
    assert_int_equal(rs_fw_finish(&w), 32);
    rs_frame_header h;
    assert_int_equal(rs_frame_peek(buf + second, 32, 1024, &h), 32);
    assert_int_equal(h.type, RS_MSG_PONG);
    /* overflow is sticky */
    rs_fw_init(&w, buf, 30);
    rs_fw_begin(&w, RS_MSG_PING, 0, 1);
    rs_fw_u64(&w, 5);
    assert_true(w.overflow);
    rs_fw_u8(&w, 1);
    assert_int_equal(rs_fw_finish(&w), 0);
    /* sizes */
    rs_tensor_list l = {.count = 1};
    l.t[0] = tv("x", RS_DT_FP32, 2, d23, f6, 24);
    /* count 4 + name 3 + dtype/rank 2 + dims 16 + len 8 = 33, pad to 40, + 24 */
    assert_int_equal(rs_tensor_list_size(&l), 64);
}

static void test_names_and_status(void **state) {
    (void)state;
    assert_string_equal(rs_dtype_name(RS_DT_FP32), "FP32");
    assert_string_equal(rs_dtype_name((rs_dtype)99), "INVALID");
    assert_int_equal(rs_dtype_parse("BF16", 4), RS_DT_BF16);
    assert_int_equal(rs_dtype_parse("FP3", 3), RS_DT_INVALID);
    assert_int_equal(rs_dtype_size(RS_DT_INT64), 8);
    assert_int_equal(rs_dtype_size(RS_DT_BYTES), 0);
    assert_false(rs_dtype_valid(0));
    assert_false(rs_dtype_valid(RS_DT_COUNT_));
    assert_string_equal(rs_status_name(RS_E_CHECKSUM), "CHECKSUM");
    assert_string_equal(rs_status_name((rs_status)12), "UNKNOWN");
    assert_int_equal(rs_status_parse("RS_E_OVERLOADED"), RS_E_OVERLOADED);
    assert_int_equal(rs_status_parse("NOPE"), -1);
    assert_int_equal(rs_status_http(RS_E_OVERLOADED), 429);
    assert_int_equal(rs_status_http(RS_E_TOO_LARGE), 413);
    assert_int_equal(rs_status_http(RS_E_UNKNOWN_MODEL), 404);
    assert_int_equal(rs_status_http(RS_E_DEADLINE), 504);
    assert_int_equal(rs_status_http(RS_E_UNAVAILABLE), 503);
    assert_true(rs_status_is_fatal(RS_E_MALFORMED));
    assert_false(rs_status_is_fatal(RS_E_INVALID_INPUT));
    assert_false(rs_status_is_fatal(RS_OK));
    assert_string_equal(rs_msg_type_name(RS_MSG_POLL), "POLL");
    assert_string_equal(rs_msg_type_name(0), "UNKNOWN");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infer_request_roundtrip),
        cmocka_unit_test(test_infer_response_and_bytes_dtype),
        cmocka_unit_test(test_batch_roundtrip),
        cmocka_unit_test(test_register_heartbeat_u64_error),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_names_and_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

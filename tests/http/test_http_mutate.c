/* Robustness: thousands of deterministic mutations of valid KServe bodies and
 * HTTP request streams. Each must end in a result or one precise error —
 * never a crash, a hang or an out-of-bounds access (the unit suite also runs
 * under ASan+UBSan). */
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
#include "engine/kserve/kserve.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static const char *alphabet = "{}[]\",:0123456789.-eE truefalsnul\\x\x01\xff";

static size_t mutate(const char *src, size_t len, char *dst, size_t cap) {
    memcpy(dst, src, len);
    int edits = 1 + (int)(next_rand() % 4);
    for (int e = 0; e < edits; e++) {
        size_t at = len ? next_rand() % len : 0;
        switch (next_rand() % 3) {
        case 0: /* replace */
            if (len) dst[at] = alphabet[next_rand() % strlen(alphabet)];
            break;
        case 1: /* delete */
            if (len) {
                memmove(dst + at, dst + at + 1, len - at - 1);
                len--;
            }
            break;
        default: /* insert */
            if (len + 1 < cap) {
                memmove(dst + at + 1, dst + at, len - at);
                dst[at] = alphabet[next_rand() % strlen(alphabet)];
                len++;
            }
        }
    }
    return len;
}

static void test_kserve_mutations(void **state) {
    (void)state;
    static const char *seeds[] = {
        "{\"id\":\"a\",\"parameters\":{\"priority\":1,\"timeout\":10},\"inputs\":[{\"name\":\"x\","
        "\"shape\":[2,2],\"datatype\":\"FP32\",\"data\":[[1,2],[3,4]]}],\"outputs\":[{\"name\":\"y\"}]}",
        "{\"inputs\":[{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"ab\",\"c\"]},"
        "{\"name\":\"b\",\"shape\":[1],\"datatype\":\"BOOL\",\"data\":[true]},"
        "{\"name\":\"i\",\"shape\":[1],\"datatype\":\"INT8\",\"data\":[-3]}]}",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"UINT16\",\"parameters\":"
        "{\"binary_data_size\":2}}]}",
    };
    static uint8_t arena_mem[4096];
    char buf[1024];
    uint32_t ok = 0, bad = 0;
    for (int i = 0; i < 6000; i++) {
        const char *seed = seeds[i % 3];
        size_t len = mutate(seed, strlen(seed), buf, sizeof(buf) - 8);
        size_t json_len = len;
        if (i % 3 == 2) { /* binary section after the JSON */
            memcpy(buf + len, "\x01\x02", 2);
            len += 2;
        }
        rs_kserve_arena a;
        rs_kserve_arena_init(&a, arena_mem, sizeof(arena_mem));
        rs_kserve_request req;
        rs_err err = {0};
        if (rs_kserve_parse_infer((const uint8_t *)buf, len, json_len, &req, &a, &err) == 0) {
            ok++;
            assert_true(req.inputs.count >= 1);
            for (uint32_t k = 0; k < req.inputs.count; k++) {
                char why[256];
                assert_int_equal(rs_tensor_check(&req.inputs.t[k], why, sizeof(why)), 0);
            }
            assert_true(a.used <= a.cap);
        } else {
            bad++;
            assert_true(err.msg[0] != 0); /* always a sentence */
        }
    }
    /* Both outcomes happen: the mutations reach past the JSON syntax. */
    assert_true(ok > 100);
    assert_true(bad > 100);
}

typedef struct sink {
    size_t out;
    int closes;
} sink;
static int s_sendv(void *io, const struct iovec *iov, int n) {
    for (int i = 0; i < n; i++) ((sink *)io)->out += iov[i].iov_len;
    return 0;
}
static void s_close(void *io) { ((sink *)io)->closes++; }
static void s_nop(void *io) { (void)io; }
static const rs_http_transport sink_transport = {s_sendv, s_close, s_nop, s_nop, NULL};

static rs_http_handle parked[64];
static uint32_t parked_n;

static void h_any(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    if (req->body_len % 2 && parked_n < 64) { /* answer some later */
        parked[parked_n++] = req->handle;
        return;
    }
    rs_http_respond_json(s, req->handle, 200, (const char *)req->body, req->body_len);
}

static void test_http_mutations(void **state) {
    (void)state;
    rs_err err;
    rs_http_router *r = rs_http_router_create(4, &err);
    rs_http_router_add(r, RS_HTTP_POST, "/v2/models/{m}/infer", h_any, NULL, &err);
    rs_http_router_add(r, RS_HTTP_GET, "/v2/health/live", h_any, NULL, &err);
    rs_http_config cfg;
    rs_http_config_default(&cfg);
    cfg.max_conns = 2;
    cfg.max_body_bytes = 128;
    cfg.max_header_bytes = 256;
    cfg.max_pipeline = 4;
    cfg.hold_bytes = 2048;
    rs_http_server *s = rs_http_server_create(&cfg, r, &err);
    const char *seed =
        "POST /v2/models/a/infer HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        "GET /v2/health/live HTTP/1.1\r\nHost: h\r\n\r\n"
        "POST /v2/models/b/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
    static const char http_alphabet[] = "GETPOS /\r\n:0123456789abcdefTransfer-Encoding chunked\x00\x7f";
    char buf[512];
    uint32_t closed = 0, clean = 0;
    for (int i = 0; i < 4000; i++) {
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        for (int e = 0; e < 1 + (int)(next_rand() % 3); e++) {
            size_t at = next_rand() % len;
            buf[at] = http_alphabet[next_rand() % (sizeof(http_alphabet) - 1)];
        }
        sink io = {0};
        parked_n = 0;
        rs_http_conn *c = rs_http_conn_open(s, &sink_transport, &io);
        assert_non_null(c);
        /* fed in two random pieces */
        size_t cut = next_rand() % len;
        assert_int_equal(rs_http_conn_feed(c, (const uint8_t *)buf, cut), (ssize_t)cut);
        assert_int_equal(rs_http_conn_feed(c, (const uint8_t *)buf + cut, len - cut), (ssize_t)(len - cut));
        for (uint32_t k = 0; k < parked_n; k++)
            assert_int_equal(rs_http_respond_json(s, parked[k], 200, "{}", 2), 0);
        if (io.closes) closed++;
        else clean++;
        assert_true(io.out > 0 || parked_n == 0 || io.closes);
        rs_http_conn_closed(c);
    }
    assert_true(closed > 100);
    assert_true(clean > 100);
    rs_http_server_destroy(s);
    rs_http_router_destroy(r);
}

int main(void) {
    rs_kserve_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kserve_mutations),
        cmocka_unit_test(test_http_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

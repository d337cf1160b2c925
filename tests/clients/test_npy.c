/* test_npy.c — the strict .npy reader: headers numpy writes (versions 1-3,
 * every supported descr, scalar / 1-dim / n-dim shapes, double quotes, any
 * key order) and the ones it refuses, each with its sentence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "clients/c/rs_npy.h"

/* Builds an image: preamble, header padded to 64 with a newline, data. */
static size_t build(uint8_t *out, int version, const char *header, const void *data,
                    size_t data_len) {
    size_t pre = version == 1 ? 10 : 12;
    size_t hl = strlen(header);
    size_t padded = hl + 1;
    while ((pre + padded) % 64)
        padded++;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (uint8_t)version;
    out[7] = 0;
    if (version == 1) {
        out[8] = (uint8_t)padded;
        out[9] = (uint8_t)(padded >> 8);
    } else {
        uint32_t v = (uint32_t)padded;
        memcpy(out + 8, &v, 4);
    }
    memcpy(out + pre, header, hl);
    memset(out + pre + hl, ' ', padded - hl - 1);
    out[pre + padded - 1] = '\n';
    if (data_len) memcpy(out + pre + padded, data, data_len);
    return pre + padded + data_len;
}

static uint8_t img[8192];

static void test_good_headers(void **state) {
    (void)state;
    rs_npy n;
    rs_err err;
    float f[6] = {1, 2, 3, 4, 5, 6};
    size_t len =
        build(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof(f));
    assert_int_equal(rs_npy_parse(img, len, &n, &err), 0);
    assert_int_equal(n.dtype, RS_DT_FP32);
    assert_int_equal(n.rank, 2);
    assert_int_equal(n.dims[0], 2);
    assert_int_equal(n.dims[1], 3);
    assert_int_equal(n.byte_len, sizeof(f));
    assert_memory_equal(n.data, f, sizeof(f));
    assert_int_equal((n.data - img) % 64, 0); /* numpy's alignment */

    /* version 2 and 3, other key order, double quotes, no trailing comma */
    for (int v = 2; v <= 3; v++) {
        len = build(img, v, "{\"shape\": (5,), \"fortran_order\": False, \"descr\": \"<i8\"}",
                    img + 4000, 40);
        assert_int_equal(rs_npy_parse(img, len, &n, &err), 0);
        assert_int_equal(n.major, v);
        assert_int_equal(n.dtype, RS_DT_INT64);
        assert_int_equal(n.rank, 1);
        assert_int_equal(n.dims[0], 5);
    }
    /* a scalar and an empty array */
    double d = 2.5;
    len = build(img, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &d, 8);
    assert_int_equal(rs_npy_parse(img, len, &n, &err), 0);
    assert_int_equal(n.rank, 0);
    assert_int_equal(n.byte_len, 8);
    len = build(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 16), }", NULL, 0);
    assert_int_equal(rs_npy_parse(img, len, &n, &err), 0);
    assert_int_equal(n.byte_len, 0);
    /* every supported descr */
    static const struct {
        const char *descr;
        rs_dtype dt;
    } all[] = {{"|b1", RS_DT_BOOL},   {"|i1", RS_DT_INT8},   {"|u1", RS_DT_UINT8},
               {"<i2", RS_DT_INT16},  {"<i4", RS_DT_INT32},  {"<i8", RS_DT_INT64},
               {"<u2", RS_DT_UINT16}, {"<u4", RS_DT_UINT32}, {"<u8", RS_DT_UINT64},
               {"<f2", RS_DT_FP16},   {"<f4", RS_DT_FP32},   {"<f8", RS_DT_FP64}};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        char h[128];
        snprintf(h, sizeof(h), "{'descr': '%s', 'fortran_order': False, 'shape': (3,), }",
                 all[i].descr);
        len = build(img, 1, h, img + 4000, 3 * rs_dtype_size(all[i].dt));
        assert_int_equal(rs_npy_parse(img, len, &n, &err), 0);
        assert_int_equal(n.dtype, all[i].dt);
    }
}

/* Each bad header: parse fails and the sentence holds want. */
static void expect_bad(const char *header, size_t data_len, const char *want) {
    rs_npy n;
    rs_err err = {{0}};
    size_t len = build(img, 1, header, img + 4000, data_len);
    assert_int_equal(rs_npy_parse(img, len, &n, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("header %s: got '%s', want '%s'", header, err.msg, want);
}

static void test_bad_headers(void **state) {
    (void)state;
    expect_bad("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4, "big-endian");
    expect_bad("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8,
               "'<c8' is not supported");
    expect_bad("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8,
               "'|O' is not supported");
    expect_bad("{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }", 16,
               "'<U4' is not supported");
    expect_bad("{'descr': '<u1', 'fortran_order': False, 'shape': (1,), }", 1,
               "'<u1' is not supported");
    expect_bad("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4,
               "structured dtypes");
    expect_bad("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16,
               "fortran_order is True");
    expect_bad("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", 4, "True or False");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (4), }", 16, "needs its comma");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4,
               "dims must be >= 0");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", 8,
               "expected ',' or ')'");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': [1], }", 4, "must be a tuple");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4,
               "more than 8 dims");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 4,
               "too large");
    expect_bad("{'descr': '<f4', 'fortran_order': False, }", 4, "key 'shape' is missing");
    expect_bad("{'descr': '<f4', 'shape': (1,), }", 4, "key 'fortran_order' is missing");
    expect_bad("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4,
               "appears twice");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 4,
               "unknown key 'extra'");
    expect_bad("{'descr': '<f4' 'fortran_order': False, 'shape': (1,), }", 4,
               "expected ',' or '}'");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", 4,
               "unexpected text after");
    expect_bad("('descr', '<f4')", 4, "expected '{'");
    expect_bad("{descr: '<f4', 'fortran_order': False, 'shape': (1,), }", 4,
               "expected a quoted key");
    expect_bad("{'descr' '<f4', 'fortran_order': False, 'shape': (1,), }", 4, "expected ':'");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20,
               "the file has 20");
    expect_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28,
               "= 24 bytes, the file has 28");
    expect_bad(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
        4, "overflows");
    expect_bad("{'descr': '<f\xc3\xa9"
               "4', 'fortran_order': False, 'shape': (1,), }",
               4, "non-ASCII");
}

static void test_bad_preamble(void **state) {
    (void)state;
    rs_npy n;
    rs_err err;
    size_t len =
        build(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "abcd", 4);
    img[0] = 0x92;
    assert_int_equal(rs_npy_parse(img, len, &n, &err), -1);
    assert_non_null(strstr(err.msg, "not a .npy file"));
    img[0] = 0x93;
    img[6] = 4;
    assert_int_equal(rs_npy_parse(img, len, &n, &err), -1);
    assert_non_null(strstr(err.msg, "version 4.0 is not supported"));
    img[6] = 1;
    assert_int_equal(rs_npy_parse(img, 9, &n, &err), -1);
    assert_int_equal(rs_npy_parse(img, 40, &n, &err), -1); /* header cut */
    assert_non_null(strstr(err.msg, "truncated"));
    /* a header that does not end with a newline */
    len = build(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "abcd", 4);
    img[len - 4 - 1] = ' ';
    assert_int_equal(rs_npy_parse(img, len, &n, &err), -1);
    assert_non_null(strstr(err.msg, "newline"));
}

static void test_load_file(void **state) {
    (void)state;
    char path[] = "/tmp/rs-test-npy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int32_t v[4] = {1, -2, 3, -4};
    size_t len =
        build(img, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", v, sizeof(v));
    FILE *f = fdopen(fd, "wb");
    assert_int_equal(fwrite(img, 1, len, f), len);
    fclose(f);
    uint8_t *storage = NULL;
    rs_npy n;
    rs_err err;
    assert_int_equal(rs_npy_load(path, 1 << 20, &storage, &n, &err), 0);
    assert_memory_equal(n.data, v, sizeof(v));
    free(storage);
    /* over the size limit, and missing */
    assert_int_equal(rs_npy_load(path, 16, &storage, &n, &err), -1);
    assert_non_null(strstr(err.msg, "over the limit of 16"));
    assert_null(storage);
    unlink(path);
    assert_int_equal(rs_npy_load(path, 1 << 20, &storage, &n, &err), -1);
    assert_non_null(strstr(err.msg, "No such file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_headers),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_preamble),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for workers/stages: every stage's arithmetic, every stage's params
 * (good and bad, with the message naming what is wrong), run-time input
 * checks, the arena limit and a digits-like pre/post pipeline.
 * argv[1]: the folder holding vocab.txt / labels.txt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "io/frame.h"
#include "workers/stages/stage.h"
#include "workers/stages/stage_ops.h"

static const char *data_dir = ".";

/* ---- helpers ---- */

static rs_stage_spec spec(const char *name, ...) {
    rs_stage_spec s;
    assert_int_equal(rs_stage_spec_init(&s, name), 0);
    va_list ap;
    va_start(ap, name);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        assert_int_equal(rs_stage_spec_set(&s, k, v), 0);
    }
    va_end(ap);
    return s;
}

/* Compiles one stage and expects failure with `needle` in the message. */
static void expect_compile_error(rs_stage_spec s, const char *needle) {
    rs_err err = {0};
    rs_stage_pipeline *p = rs_stage_pipeline_compile(&s, 1, data_dir, "m/1 pre", &err);
    if (p) fail_msg("compiled, expected error containing '%s'", needle);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' lacks '%s'", err.msg, needle);
    assert_non_null(strstr(err.msg, "m/1 pre[0]"));
}

static rs_stage_pipeline *compile1(rs_stage_spec s) {
    rs_err err = {0};
    rs_stage_pipeline *p = rs_stage_pipeline_compile(&s, 1, data_dir, "m/1 pre", &err);
    if (!p) fail_msg("compile failed: %s", err.msg);
    return p;
}

static rs_tensor_view tensor(const char *name, rs_dtype dt, const void *data, uint64_t bytes,
                             uint32_t rank, ...) {
    rs_tensor_view t = {.name = rs_str_c(name), .dtype = dt, .rank = rank, .data = data,
                        .byte_len = bytes};
    va_list ap;
    va_start(ap, rank);
    for (uint32_t i = 0; i < rank; i++) t.dims[i] = va_arg(ap, int64_t);
    va_end(ap);
    return t;
}

static rs_stage_arena arena;

static int setup(void **state) {
    (void)state;
    rs_err err;
    return rs_stage_arena_init(&arena, 1 << 20, &err);
}

static int teardown(void **state) {
    (void)state;
    rs_stage_arena_free(&arena);
    return 0;
}

/* Runs p over one tensor; returns the status and the list. */
static int run1(rs_stage_pipeline *p, rs_tensor_view in, rs_tensor_list *io, char *why) {
    memset(io, 0, sizeof(*io));
    io->count = 1;
    io->t[0] = in;
    rs_stage_arena_reset(&arena);
    return rs_stage_pipeline_run(p, io, &arena, why, 256);
}

/* ---- pure functions ---- */

static void test_ops_normalize_cast(void **state) {
    (void)state;
    uint8_t u8[4] = {0, 8, 16, 255};
    float out[4];
    rs_stage_normalize(RS_DT_UINT8, u8, 4, 0.0625f, -0.5f, out);
    assert_true(out[0] == -0.5f && out[1] == 0.0f && out[2] == 0.5f);
    assert_true(fabsf(out[3] - 15.4375f) < 1e-6f);

    float f[6] = {1.9f, -1.9f, 300.0f, -300.0f, NAN, 0.0f};
    int8_t i8[6];
    rs_stage_cast(RS_DT_FP32, f, RS_DT_INT8, i8, 6);
    int8_t want[6] = {1, -1, 127, -128, 0, 0};
    assert_memory_equal(i8, want, sizeof(want));
    uint8_t u[6];
    rs_stage_cast(RS_DT_FP32, f, RS_DT_UINT8, u, 6);
    uint8_t wantu[6] = {1, 0, 255, 0, 0, 0};
    assert_memory_equal(u, wantu, sizeof(wantu));

    int64_t big[3] = {INT64_MAX, -5, 70000};
    uint16_t u16[3];
    rs_stage_cast(RS_DT_INT64, big, RS_DT_UINT16, u16, 3);
    assert_int_equal(u16[0], 65535);
    assert_int_equal(u16[1], 0);
    assert_int_equal(u16[2], 65535);
    uint64_t u64 = UINT64_MAX;
    int64_t i64;
    rs_stage_cast(RS_DT_UINT64, &u64, RS_DT_INT64, &i64, 1);
    assert_true(i64 == INT64_MAX);
    int32_t i32[2] = {-3, 0};
    uint8_t b[2];
    rs_stage_cast(RS_DT_INT32, i32, RS_DT_BOOL, b, 2);
    assert_int_equal(b[0], 1);
    assert_int_equal(b[1], 0);
    double d[1];
    rs_stage_cast(RS_DT_INT32, i32, RS_DT_FP64, d, 1);
    assert_true(d[0] == -3.0);
    assert_true(rs_stage_numeric(RS_DT_FP64));
    assert_false(rs_stage_numeric(RS_DT_BYTES));
    assert_false(rs_stage_numeric(RS_DT_FP16));
}

static void test_ops_softmax_argmax_topk(void **state) {
    (void)state;
    float x[6] = {1, 2, 3, 1000, 1000, -1000};
    float y[6];
    rs_stage_softmax(x, 2, 3, y);
    float e1 = expf(-2), e2 = expf(-1), s = e1 + e2 + 1;
    assert_true(fabsf(y[0] - e1 / s) < 1e-6f && fabsf(y[2] - 1 / s) < 1e-6f);
    assert_true(fabsf(y[3] - 0.5f) < 1e-6f && y[5] == 0.0f); /* no overflow */
    int64_t am[2];
    rs_stage_argmax(x, 2, 3, am);
    assert_int_equal(am[0], 2);
    assert_int_equal(am[1], 0); /* tie -> lower index */

    float v[5] = {0.1f, 0.5f, 0.2f, 0.5f, 0.9f};
    float sc[3];
    int64_t id[3];
    rs_stage_topk(v, 1, 5, 3, sc, id);
    assert_int_equal(id[0], 4);
    assert_int_equal(id[1], 1); /* tie: lower index first */
    assert_int_equal(id[2], 3);
    assert_true(sc[0] == 0.9f && sc[1] == 0.5f && sc[2] == 0.5f);
    rs_stage_topk(v, 1, 5, 5, (float[5]){0}, (int64_t[5]){0}); /* k == cols works */
}

static void test_vocab(void **state) {
    (void)state;
    char path[512], why[256];
    rs_vocab v;
    snprintf(path, sizeof(path), "%s/vocab.txt", data_dir);
    assert_int_equal(rs_vocab_load(&v, path, true, why, sizeof(why)), 0);
    assert_int_equal(v.count, 7);
    assert_int_equal(rs_vocab_find(&v, "cat", 3), 3);
    assert_int_equal(rs_vocab_find(&v, "dog", 3), -1);
    int64_t ids[6];
    size_t n = rs_stage_tokenize(&v, "  The cat\tsat on\nthe dog ", 25, true, 1, 0, ids, 6);
    assert_int_equal(n, 6);
    int64_t want[6] = {2, 3, 4, 5, 2, 1};
    assert_memory_equal(ids, want, sizeof(want));
    n = rs_stage_tokenize(&v, "The cat", 7, false, 1, 0, ids, 4);
    int64_t want2[4] = {1, 3, 0, 0}; /* case-sensitive "The" is unknown; padded */
    assert_int_equal(n, 2);
    assert_memory_equal(ids, want2, sizeof(want2));
    n = rs_stage_tokenize(&v, "cat cat cat", 11, false, 1, 0, ids, 2); /* truncated */
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], 3);
    rs_vocab_free(&v);

    static const struct {
        const char *file;
        bool tokens;
        const char *needle;
    } bad[] = {
        {"vocab_dup.txt", true, "vocab_dup.txt:3: duplicate token"},
        {"vocab_empty_line.txt", true, "vocab_empty_line.txt:2: empty entry"},
        {"vocab_space.txt", true, "vocab_space.txt:1: token contains whitespace"},
        {"missing.txt", true, "missing.txt: cannot open"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", data_dir, bad[i].file);
        assert_int_equal(rs_vocab_load(&v, path, bad[i].tokens, why, sizeof(why)), -1);
        if (!strstr(why, bad[i].needle)) fail_msg("'%s' lacks '%s'", why, bad[i].needle);
    }
    snprintf(path, sizeof(path), "%s/vocab_space.txt", data_dir);
    assert_int_equal(rs_vocab_load(&v, path, false, why, sizeof(why)), 0); /* labels may */
    rs_vocab_free(&v);
}

/* ---- compile: unknown stages and bad params ---- */

static void test_compile_errors(void **state) {
    (void)state;
    expect_compile_error(spec("normalise", NULL), "unknown stage");
    expect_compile_error(spec("normalize", "scal", "2", NULL),
                         "scal: unknown parameter (allowed: scale, offset, input, output)");
    expect_compile_error(spec("normalize", "scale", "abc", NULL), "scale: 'abc': not a finite number");
    expect_compile_error(spec("normalize", "offset", "1e999", NULL), "offset: '1e999'");
    expect_compile_error(spec("normalize", "scale", "1", "scale", "2", NULL), "scale: given twice");
    expect_compile_error(spec("cast", NULL), "to: missing required parameter");
    expect_compile_error(spec("cast", "to", "FP33", NULL), "to: 'FP33': not a numeric dtype");
    expect_compile_error(spec("cast", "to", "BYTES", NULL), "to: 'BYTES': not a numeric dtype");
    expect_compile_error(spec("reshape", NULL), "shape: missing required parameter");
    expect_compile_error(spec("reshape", "shape", "8,8", NULL), "the first dim must be -1");
    expect_compile_error(spec("reshape", "shape", "-1,0", NULL), "dims after the batch must be > 0");
    expect_compile_error(spec("reshape", "shape", "-1,x", NULL), "not a list of integers");
    expect_compile_error(spec("reshape", "shape", "-1,1,1,1,1,1,1,1,1", NULL), "more than 8 dims");
    expect_compile_error(spec("tokenize", "max_tokens", "4", NULL), "vocab: missing required");
    expect_compile_error(spec("tokenize", "vocab", "vocab.txt", NULL), "max_tokens: missing required");
    expect_compile_error(spec("tokenize", "vocab", "nope.txt", "max_tokens", "4", NULL),
                         "vocab: ");
    expect_compile_error(spec("tokenize", "vocab", "vocab_dup.txt", "max_tokens", "4", NULL),
                         "vocab_dup.txt:3: duplicate token");
    expect_compile_error(spec("tokenize", "vocab", "vocab.txt", "max_tokens", "0", NULL),
                         "max_tokens: '0': out of range");
    expect_compile_error(spec("tokenize", "vocab", "vocab.txt", "max_tokens", "4", "unk_id", "-1", NULL),
                         "unk_id: '-1': out of range");
    expect_compile_error(spec("tokenize", "vocab", "vocab.txt", "max_tokens", "4", "lowercase", "maybe", NULL),
                         "lowercase: 'maybe': not a boolean");
    expect_compile_error(spec("softmax", "axis", "1", NULL), "axis: unknown parameter (allowed: input, output)");
    expect_compile_error(spec("argmax", "k", "1", NULL), "k: unknown parameter");
    expect_compile_error(spec("topk", NULL), "k: missing required parameter");
    expect_compile_error(spec("topk", "k", "0", NULL), "k: '0': out of range");
    expect_compile_error(spec("topk", "k", "3", "labels", "nope.txt", NULL), "labels: ");
    expect_compile_error(spec("softmax", "input", "", NULL), "input: '': a tensor name is 1..64 bytes");
    expect_compile_error(spec("topk", "k", "2", "output",
                              "a_very_long_output_name_that_fills_most_of_the_sixty_four_xx", NULL),
                         "too long for the _scores/_ids/_labels suffixes");

    /* the second stage's index and line are named */
    rs_stage_spec two[2] = {spec("softmax", NULL), spec("argmax", "bogus", "1", NULL)};
    two[1].line = 17;
    rs_err err;
    assert_null(rs_stage_pipeline_compile(two, 2, data_dir, "digits/1 post", &err));
    assert_non_null(strstr(err.msg, "digits/1 post[1] argmax (line 17): bogus: unknown parameter"));
    rs_stage_spec many[RS_STAGE_MAX_STAGES + 1];
    for (int i = 0; i <= RS_STAGE_MAX_STAGES; i++) many[i] = spec("softmax", NULL);
    assert_null(rs_stage_pipeline_compile(many, RS_STAGE_MAX_STAGES + 1, data_dir, "m post", &err));
    assert_non_null(strstr(err.msg, "stages, at most"));
    rs_stage_pipeline *empty = rs_stage_pipeline_compile(NULL, 0, data_dir, "m pre", &err);
    assert_non_null(empty);
    assert_int_equal(rs_stage_pipeline_len(empty), 0);
    rs_stage_pipeline_free(empty);
}

/* ---- each stage through the pipeline ---- */

static void test_run_normalize(void **state) {
    (void)state;
    rs_stage_pipeline *p = compile1(spec("normalize", "scale", "0.0625", "offset", "1", NULL));
    float px[4] = {0, 16, 8, 4};
    rs_tensor_list io;
    char why[256];
    assert_int_equal(run1(p, tensor("pixels", RS_DT_FP32, px, 16, 2, 2L, 2L), &io, why), 0);
    const float *y = (const float *)io.t[0].data;
    assert_true(y[0] == 1.0f && y[1] == 2.0f && y[2] == 1.5f && y[3] == 1.25f);
    assert_true(rs_str_eq(io.t[0].name, "pixels"));
    assert_int_equal(io.t[0].dtype, RS_DT_FP32);
    assert_true(px[1] == 16); /* the input is untouched */
    uint16_t u[2] = {16, 32};
    assert_int_equal(run1(p, tensor("x", RS_DT_UINT16, u, 4, 2, 1L, 2L), &io, why), 0);
    assert_true(((const float *)io.t[0].data)[1] == 3.0f);
    const char s[] = "\x01\x00\x00\x00z";
    assert_int_equal(run1(p, tensor("x", RS_DT_BYTES, s, 5, 1, 1L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "m/1 pre[0] normalize: input 'x' is BYTES, needs a numeric dtype"));
    assert_int_equal(run1(p, tensor("x", RS_DT_FP32, px, 12, 2, 2L, 2L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "dims do not match its bytes"));
    rs_stage_pipeline_free(p);
}

static void test_run_cast_reshape(void **state) {
    (void)state;
    rs_stage_pipeline *p = compile1(spec("cast", "to", "INT32", "output", "ids", NULL));
    float f[3] = {1.5f, -2.5f, 3e10f};
    rs_tensor_list io;
    char why[256];
    assert_int_equal(run1(p, tensor("x", RS_DT_FP32, f, 12, 2, 1L, 3L), &io, why), 0);
    int32_t want[3] = {1, -2, INT32_MAX};
    assert_memory_equal(io.t[0].data, want, 12);
    assert_true(rs_str_eq(io.t[0].name, "ids"));
    assert_int_equal(io.t[0].byte_len, 12);
    rs_stage_pipeline_free(p);
    p = compile1(spec("cast", "to", "FP32", NULL)); /* same dtype: a view */
    assert_int_equal(run1(p, tensor("x", RS_DT_FP32, f, 12, 2, 1L, 3L), &io, why), 0);
    assert_ptr_equal(io.t[0].data, f);
    rs_stage_pipeline_free(p);

    p = compile1(spec("reshape", "shape", "[-1, 2, 3]", NULL));
    float g[12] = {0};
    assert_int_equal(run1(p, tensor("x", RS_DT_FP32, g, 48, 2, 2L, 6L), &io, why), 0);
    assert_int_equal(io.t[0].rank, 3);
    assert_int_equal(io.t[0].dims[0], 2);
    assert_int_equal(io.t[0].dims[2], 3);
    assert_ptr_equal(io.t[0].data, g); /* no copy */
    assert_int_equal(run1(p, tensor("x", RS_DT_FP32, g, 40, 2, 2L, 5L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "reshape: input 'x' has 5 elements per row, shape needs 6"));
    rs_stage_pipeline_free(p);
}

static void test_run_tokenize(void **state) {
    (void)state;
    rs_stage_pipeline *p = compile1(spec("tokenize", "vocab", "vocab.txt", "max_tokens", "4",
                                         "unk_id", "1", "pad_id", "0", "lowercase", "true", NULL));
    /* two BYTES elements: "The cat" and "sat on the mat now" */
    uint8_t buf[64];
    size_t n = 0;
    const char *s[2] = {"The cat", "sat on the mat now"};
    for (int i = 0; i < 2; i++) {
        uint32_t l = (uint32_t)strlen(s[i]);
        memcpy(buf + n, &l, 4);
        memcpy(buf + n + 4, s[i], l);
        n += 4 + l;
    }
    rs_tensor_list io;
    char why[256];
    assert_int_equal(run1(p, tensor("text", RS_DT_BYTES, buf, n, 2, 2L, 1L), &io, why), 0);
    assert_int_equal(io.t[0].dtype, RS_DT_INT64);
    assert_int_equal(io.t[0].dims[0], 2);
    assert_int_equal(io.t[0].dims[1], 4);
    int64_t want[8] = {2, 3, 0, 0, 4, 5, 2, 6};
    assert_memory_equal(io.t[0].data, want, sizeof(want));
    assert_int_equal(run1(p, tensor("text", RS_DT_BYTES, buf, n - 1, 1, 2L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "BYTES element 1 truncated"));
    float f[2];
    assert_int_equal(run1(p, tensor("text", RS_DT_FP32, f, 8, 1, 2L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "tokenize: input 'text' is FP32, needs BYTES"));
    assert_int_equal(run1(p, tensor("text", RS_DT_BYTES, buf, n, 2, 1L, 2L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "needs shape [batch] or [batch, 1]"));
    rs_stage_pipeline_free(p);
}

static void test_run_post(void **state) {
    (void)state;
    rs_stage_spec post[3] = {
        spec("softmax", "output", "probabilities", NULL),
        spec("argmax", "input", "probabilities", NULL),
        spec("topk", "k", "2", "labels", "labels.txt", "output", "top", NULL),
    };
    rs_err err;
    rs_stage_pipeline *p = rs_stage_pipeline_compile(post, 3, data_dir, "d/1 post", &err);
    assert_non_null(p);
    float logits[20] = {0};
    logits[3] = 5;
    logits[7] = 4;
    logits[10 + 9] = 2;
    logits[10 + 1] = 1;
    rs_tensor_list io;
    char why[256];
    assert_int_equal(run1(p, tensor("logits", RS_DT_FP32, logits, 80, 2, 2L, 10L), &io, why), 0);
    assert_int_equal(io.count, 5);
    assert_true(rs_str_eq(io.t[0].name, "probabilities"));
    float sum = 0;
    for (int i = 0; i < 10; i++) sum += ((const float *)io.t[0].data)[i];
    assert_true(fabsf(sum - 1.0f) < 1e-5f);
    assert_true(rs_str_eq(io.t[1].name, "label"));
    assert_int_equal(io.t[1].rank, 1);
    assert_int_equal(((const int64_t *)io.t[1].data)[0], 3);
    assert_int_equal(((const int64_t *)io.t[1].data)[1], 9);
    assert_true(rs_str_eq(io.t[2].name, "top_scores"));
    assert_true(rs_str_eq(io.t[3].name, "top_ids"));
    int64_t ids[4] = {3, 7, 9, 1};
    assert_memory_equal(io.t[3].data, ids, sizeof(ids));
    assert_true(rs_str_eq(io.t[4].name, "top_labels"));
    assert_int_equal(io.t[4].dtype, RS_DT_BYTES);
    assert_int_equal(io.t[4].dims[1], 2);
    const char want[] = "\x05\0\0\0three\x05\0\0\0seven\x04\0\0\0nine\x03\0\0\0one";
    assert_int_equal(io.t[4].byte_len, sizeof(want) - 1);
    assert_memory_equal(io.t[4].data, want, sizeof(want) - 1);

    /* wrong dtype, rank, too few classes, missing input, too few labels */
    int32_t ints[4] = {0};
    assert_int_equal(run1(p, tensor("logits", RS_DT_INT32, ints, 16, 2, 1L, 4L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "d/1 post[0] softmax: input 'logits' is INT32, needs FP32"));
    assert_int_equal(run1(p, tensor("logits", RS_DT_FP32, logits, 40, 1, 10L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "has rank 1, needs [batch, ..., classes]"));
    assert_int_equal(run1(p, tensor("logits", RS_DT_FP32, logits, 4, 2, 1L, 1L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "post[2] topk: k=2 but input 'probabilities' has 1 classes"));
    rs_stage_pipeline_free(p);

    p = compile1(spec("argmax", "input", "nothere", NULL));
    assert_int_equal(run1(p, tensor("logits", RS_DT_FP32, logits, 80, 2, 2L, 10L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "argmax: no tensor named 'nothere'"));
    rs_stage_pipeline_free(p);
    float wide[12] = {0};
    p = compile1(spec("topk", "k", "1", "labels", "labels_short.txt", NULL));
    assert_int_equal(run1(p, tensor("x", RS_DT_FP32, wide, 12, 2, 1L, 3L), &io, why), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "the labels file has 2 labels, input 'x' has 3 classes"));
    rs_stage_pipeline_free(p);
}

static void test_arena_limit(void **state) {
    (void)state;
    rs_stage_arena small;
    rs_err err;
    assert_int_equal(rs_stage_arena_init(&small, 100, &err), 0);
    rs_stage_pipeline *p = compile1(spec("normalize", NULL));
    float x[64] = {0};
    rs_tensor_list io = {.count = 1};
    io.t[0] = tensor("x", RS_DT_FP32, x, sizeof(x), 2, 1L, 64L);
    char why[256];
    assert_int_equal(rs_stage_pipeline_run(p, &io, &small, why, sizeof(why)), -RS_E_OVERLOADED);
    assert_non_null(strstr(why, "stage arena"));
    io.t[0] = tensor("x", RS_DT_FP32, x, 16, 2, 1L, 4L);
    rs_stage_arena_reset(&small);
    assert_int_equal(rs_stage_pipeline_run(p, &io, &small, why, sizeof(why)), 0);
    assert_ptr_equal(io.t[0].data, small.base); /* outputs live in the arena */
    rs_stage_pipeline_free(p);
    rs_stage_arena_free(&small);
}

int main(int argc, char **argv) {
    if (argc > 1) data_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_normalize_cast),
        cmocka_unit_test(test_ops_softmax_argmax_topk),
        cmocka_unit_test(test_vocab),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_run_normalize),
        cmocka_unit_test(test_run_cast_reshape),
        cmocka_unit_test(test_run_tokenize),
        cmocka_unit_test(test_run_post),
        cmocka_unit_test(test_arena_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

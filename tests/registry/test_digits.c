/* models/digits end to end in C: the committed repository through the
 * registry, the model's normalize pre stage, the dense backend over whole
 * batches, argmax; the accuracy on the committed held-out split must equal
 * the reference the training script computed (tests/data/digits_reference.json),
 * and the int8 variant must stay within its documented tolerance. */
#include <json-c/json.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/model_registry/registry.h"
#include "workers/backend.h"

#define MAX_ROWS 2000
#define PIXELS 64
#define CLASSES 10

static float pixels[MAX_ROWS * PIXELS];
static int labels[MAX_ROWS];
static size_t rows;

static void read_split(void) {
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/data/digits_test.csv", getenv("RINGSERVE_SRC"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    rows = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#') continue;
        assert_true(rows < MAX_ROWS);
        char *p = line;
        for (int i = 0; i <= PIXELS; i++) {
            char *end = NULL;
            long v = strtol(p, &end, 10);
            assert_true(end != p);
            if (i < PIXELS) pixels[rows * PIXELS + (size_t)i] = (float)v;
            else labels[rows] = (int)v;
            p = end + 1;
        }
        rows++;
    }
    fclose(f);
}

static int reference_correct(size_t *ref_rows) {
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/data/digits_reference.json", getenv("RINGSERVE_SRC"));
    json_object *j = json_object_from_file(path), *v = NULL;
    assert_non_null(j);
    assert_true(json_object_object_get_ex(j, "rows", &v));
    *ref_rows = (size_t)json_object_get_int64(v);
    assert_true(json_object_object_get_ex(j, "correct", &v));
    int correct = (int)json_object_get_int64(v);
    json_object_put(j);
    return correct;
}

/* The model's own pre stage: normalize with its scale/offset params. */
static void normalize(const rs_model *m, float *x, size_t n) {
    assert_int_equal(m->pre_count, 1);
    assert_string_equal(m->pre[0].name, "normalize");
    double scale = strtod(rs_stage_spec_param(&m->pre[0], "scale"), NULL);
    double offset = strtod(rs_stage_spec_param(&m->pre[0], "offset"), NULL);
    for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] * scale + offset);
}

/* Runs the whole split through backend instance st in max_batch_size batches. */
static void run_all(const rs_model *m, void *st, const float *x, float *probs) {
    const rs_backend_ops *ops = rs_backend_find(m->backend);
    rs_err err = {0};
    for (size_t r = 0; r < rows; r += m->max_batch_size) {
        uint32_t n = (uint32_t)(rows - r < m->max_batch_size ? rows - r : m->max_batch_size);
        rs_tensor_view in = {.dtype = RS_DT_FP32, .rank = 2, .data = (const uint8_t *)(x + r * PIXELS),
                             .byte_len = (uint64_t)n * PIXELS * sizeof(float)};
        in.dims[0] = n;
        in.dims[1] = PIXELS;
        rs_backend_output out = {.buf = (uint8_t *)(probs + r * CLASSES),
                                 .capacity_bytes = (uint64_t)n * CLASSES * sizeof(float)};
        if (ops->infer(st, n, &in, 1, &out, 1, &err) != 0) fail_msg("%s", err.msg);
    }
}

static size_t count_correct(const float *probs) {
    size_t correct = 0;
    for (size_t r = 0; r < rows; r++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (probs[r * CLASSES + (size_t)c] > probs[r * CLASSES + (size_t)best]) best = c;
        correct += best == labels[r];
    }
    return correct;
}

static void test_digits_accuracy(void **state) {
    (void)state;
    read_split();
    size_t ref_rows = 0;
    int ref_correct = reference_correct(&ref_rows);
    assert_int_equal(rows, ref_rows);

    char repo[512];
    snprintf(repo, sizeof(repo), "%s/models", getenv("RINGSERVE_SRC"));
    rs_registry_config cfg;
    rs_registry_config_default(&cfg, repo);
    cfg.load_count = 1;
    snprintf(cfg.load[0].name, sizeof(cfg.load[0].name), "digits");
    rs_err err = {0};
    rs_registry *r = rs_registry_create(&cfg, &err);
    if (!r) fail_msg("%s", err.msg);
    const rs_model *m = rs_registry_find(r, "digits", 0);
    assert_non_null(m);
    assert_int_equal(rs_backend_check_model(m, &err), 0);

    static float x[MAX_ROWS * PIXELS], probs[MAX_ROWS * CLASSES], probs8[MAX_ROWS * CLASSES];
    memcpy(x, pixels, sizeof(float) * rows * PIXELS);
    normalize(m, x, rows * PIXELS);
    void *st = NULL;
    if (rs_backend_find(m->backend)->load(m, &st, &err) != 0) fail_msg("%s", err.msg);
    run_all(m, st, x, probs);
    rs_backend_find(m->backend)->unload(st);
    size_t correct = count_correct(probs);
    print_message("digits fp32: %zu/%zu correct (reference %d)\n", correct, rows, ref_correct);
    assert_int_equal(correct, ref_correct);
    assert_true((double)correct / (double)rows >= 0.95);

    /* int8: same model, quantized at load */
    rs_model m8 = *m;
    m8.quantized = RS_MODEL_QUANT_INT8;
    if (rs_backend_find(m->backend)->load(&m8, &st, &err) != 0) fail_msg("%s", err.msg);
    run_all(&m8, st, x, probs8);
    rs_backend_find(m->backend)->unload(st);
    size_t correct8 = count_correct(probs8);
    double max_diff = 0;
    for (size_t i = 0; i < rows * CLASSES; i++)
        max_diff = fmax(max_diff, fabs((double)probs8[i] - (double)probs[i]));
    print_message("digits int8: %zu/%zu correct, max |p_int8 - p_fp32| = %.4f\n", correct8, rows,
                  max_diff);
    /* documented tolerance (docs/design.md): probabilities within 0.05, accuracy within 1% */
    assert_true(max_diff > 0);
    assert_true(max_diff <= 0.05);
    assert_true(fabs((double)correct8 - (double)correct) <= 0.01 * (double)rows);
    rs_registry_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

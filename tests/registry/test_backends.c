/* Tests for workers/backends: identity (views, no copy), dense fp32 against a
 * reference computed here from the same weights, dense int8 within its
 * documented tolerance, every refused weights file, and plugins (loading,
 * ABI mismatch, not a plugin, duplicate names). */
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
#include "tests/registry/fixture.h"
#include "workers/backend.h"

/* ---- a small dense net written to a temporary repository ---- */

typedef struct net_layer {
    uint32_t in, out;
    const char *act;
} net_layer;

#define MAX_LAYERS 4
#define MAX_W 4096

typedef struct net {
    uint32_t n;
    net_layer l[MAX_LAYERS];
    float w[MAX_LAYERS][MAX_W];
    float b[MAX_LAYERS][64];
} net;

static void net_init(net *nt, uint32_t n, const net_layer *layers) {
    nt->n = n;
    for (uint32_t i = 0; i < n; i++) {
        nt->l[i] = layers[i];
        for (uint32_t k = 0; k < layers[i].in * layers[i].out; k++)
            nt->w[i][k] = 0.6f * sinf(0.37f * (float)k + 1.3f * (float)i);
        for (uint32_t o = 0; o < layers[i].out; o++) nt->b[i][o] = 0.1f * cosf((float)o + (float)i);
    }
}

/* Writes the safetensors file with the standard layer names. */
static void net_write(const net *nt, const char *path, const char *activations) {
    char header[4096];
    size_t used = (size_t)snprintf(header, sizeof(header),
                                   "{\"__metadata__\":{\"activations\":\"%s\"}", activations);
    uint8_t *data = malloc(MAX_LAYERS * (MAX_W + 64) * sizeof(float));
    size_t off = 0;
    for (uint32_t i = 0; i < nt->n; i++) {
        size_t wb = (size_t)nt->l[i].in * nt->l[i].out * sizeof(float);
        size_t bb = nt->l[i].out * sizeof(float);
        used += (size_t)snprintf(header + used, sizeof(header) - used,
                                 ",\"layers.%u.weight\":{\"dtype\":\"F32\",\"shape\":[%u,%u],"
                                 "\"data_offsets\":[%zu,%zu]}"
                                 ",\"layers.%u.bias\":{\"dtype\":\"F32\",\"shape\":[%u],"
                                 "\"data_offsets\":[%zu,%zu]}",
                                 i, nt->l[i].out, nt->l[i].in, off, off + wb, i, nt->l[i].out,
                                 off + wb, off + wb + bb);
        memcpy(data + off, nt->w[i], wb);
        memcpy(data + off + wb, nt->b[i], bb);
        off += wb + bb;
    }
    snprintf(header + used, sizeof(header) - used, "}");
    fixture_safetensors(path, header, data, off);
    free(data);
}

static double ref_act(const char *act, double v) {
    if (strcmp(act, "relu") == 0) return v > 0 ? v : 0;
    if (strcmp(act, "tanh") == 0) return tanh(v);
    if (strcmp(act, "gelu") == 0) return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    return v;
}

/* Reference forward pass in double, straight from the definition. */
static void net_reference(const net *nt, uint32_t rows, const float *x, double *y) {
    double a[64 * 64], t[64 * 64];
    for (uint32_t i = 0; i < rows * nt->l[0].in; i++) a[i] = x[i];
    for (uint32_t li = 0; li < nt->n; li++) {
        const net_layer *l = &nt->l[li];
        for (uint32_t r = 0; r < rows; r++) {
            for (uint32_t o = 0; o < l->out; o++) {
                double s = nt->b[li][o];
                for (uint32_t k = 0; k < l->in; k++)
                    s += a[r * l->in + k] * nt->w[li][o * l->in + k];
                t[r * l->out + o] = ref_act(l->act, s);
            }
            if (strcmp(l->act, "softmax") == 0) {
                double mx = -1e300, sum = 0;
                for (uint32_t o = 0; o < l->out; o++) mx = fmax(mx, t[r * l->out + o]);
                for (uint32_t o = 0; o < l->out; o++) sum += (t[r * l->out + o] = exp(t[r * l->out + o] - mx));
                for (uint32_t o = 0; o < l->out; o++) t[r * l->out + o] /= sum;
            }
        }
        memcpy(a, t, sizeof(double) * rows * l->out);
    }
    memcpy(y, a, sizeof(double) * rows * nt->l[nt->n - 1].out);
}

static char repo[64];

static int setup(void **state) {
    (void)state;
    fixture_tmpdir(repo);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fixture_rmtree(repo);
    rs_backend_unload_plugins();
    return 0;
}

/* model.yaml for a dense net [-1,in] -> [-1,out]. */
static void write_dense_yaml(const char *name, uint32_t in, uint32_t out, const char *extra) {
    char text[1024];
    snprintf(text, sizeof(text),
             "name: %s\nbackend: dense\n"
             "inputs: [{name: x, dtype: FP32, shape: [-1, %u]}]\n"
             "outputs: [{name: y, dtype: FP32, shape: [-1, %u]}]\n"
             "max_batch_size: 16\n%s",
             name, in, out, extra ? extra : "");
    fixture_model(repo, name, 1, text);
}

static void weights_path(const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s/1/model.safetensors", repo, name);
}

static int load_model(const char *name, rs_model *m, void **st, rs_err *err) {
    char file[256];
    snprintf(file, sizeof(file), "%s/%s/1/model.yaml", repo, name);
    if (rs_model_parse_file(file, name, 1, m, err) < 0) return -2;
    const rs_backend_ops *ops = rs_backend_find(m->backend);
    if (!ops) return -3;
    return ops->load(m, st, err);
}

static rs_tensor_view view_f32(const float *x, uint32_t rows, uint32_t cols) {
    rs_tensor_view v = {.dtype = RS_DT_FP32, .rank = 2, .data = (const uint8_t *)x,
                        .byte_len = (uint64_t)rows * cols * sizeof(float)};
    v.dims[0] = rows;
    v.dims[1] = cols;
    return v;
}

static const net_layer three_layers[] = {{5, 7, "gelu"}, {7, 6, "tanh"}, {6, 4, "softmax"}};
static const net_layer relu_layers[] = {{5, 9, "relu"}, {9, 3, "none"}};

static float dense_run(const net_layer *layers, uint32_t n, const char *acts, const char *extra,
                       double *max_err_out) {
    static net nt;
    net_init(&nt, n, layers);
    write_dense_yaml("net", layers[0].in, layers[n - 1].out, extra);
    char path[256];
    weights_path("net", path, sizeof(path));
    net_write(&nt, path, acts);
    rs_model m;
    void *st = NULL;
    rs_err err = {0};
    if (load_model("net", &m, &st, &err) != 0) fail_msg("%s", err.msg);
    uint32_t rows = 13, in = layers[0].in, out = layers[n - 1].out;
    float x[13 * 16];
    for (uint32_t i = 0; i < rows * in; i++) x[i] = 1.5f * cosf(0.7f * (float)i);
    float y[13 * 16 + 1];
    double ref[13 * 16];
    rs_tensor_view iv = view_f32(x, rows, in);
    rs_backend_output ov = {.buf = (uint8_t *)y, .capacity_bytes = sizeof(y)};
    assert_int_equal(rs_backend_dense()->infer(st, rows, &iv, 1, &ov, 1, &err), 0);
    assert_int_equal(ov.dtype, RS_DT_FP32);
    assert_int_equal(ov.rank, 2);
    assert_int_equal(ov.dims[0], rows);
    assert_int_equal(ov.dims[1], out);
    assert_int_equal(ov.byte_len, rows * out * sizeof(float));
    assert_ptr_equal(ov.data, y);
    net_reference(&nt, rows, x, ref);
    double max_err = 0;
    for (uint32_t i = 0; i < rows * out; i++) max_err = fmax(max_err, fabs(y[i] - ref[i]));
    /* Unaligned input and output buffers give the same bytes. */
    uint8_t *ux = malloc(rows * in * sizeof(float) + 1), *uy = malloc(sizeof(y) + 1);
    memcpy(ux + 1, x, rows * in * sizeof(float));
    rs_tensor_view uiv = iv;
    uiv.data = ux + 1;
    rs_backend_output uov = {.buf = uy + 1, .capacity_bytes = sizeof(y)};
    assert_int_equal(rs_backend_dense()->infer(st, rows, &uiv, 1, &uov, 1, &err), 0);
    assert_memory_equal(uy + 1, y, rows * out * sizeof(float));
    free(ux);
    free(uy);
    rs_backend_dense()->unload(st);
    print_message("%s%s: max |dense - reference| = %.3g\n", acts, extra ? " int8" : "", max_err);
    *max_err_out = max_err;
    return y[0];
}

static void test_dense_fp32_matches_reference(void **state) {
    (void)state;
    double e = 1;
    dense_run(three_layers, 3, "gelu,tanh,softmax", NULL, &e);
    assert_true(e < 1e-5);
    dense_run(relu_layers, 2, "relu,none", NULL, &e);
    assert_true(e < 1e-4);
}

/* int8 (per-channel weights, per-row activations) stays within the
 * documented tolerance of the exact result: 0.02 absolute on softmax
 * probabilities, 0.05 absolute on raw outputs of these small nets. */
static void test_dense_int8_tolerance(void **state) {
    (void)state;
    double e = 1;
    dense_run(three_layers, 3, "gelu,tanh,softmax", "quantized: int8\n", &e);
    assert_true(e > 0);    /* really quantized: not bit-identical to fp32 */
    assert_true(e < 0.02); /* probabilities */
    dense_run(relu_layers, 2, "relu,none", "quantized: int8\n", &e);
    assert_true(e > 0);
    assert_true(e < 0.05); /* raw outputs (about [-5, 5] here): 0.05 absolute */
}

static void test_dense_infer_errors(void **state) {
    (void)state;
    static net nt;
    net_init(&nt, 2, relu_layers);
    write_dense_yaml("net", 5, 3, NULL);
    char path[256];
    weights_path("net", path, sizeof(path));
    net_write(&nt, path, "relu,none");
    rs_model m;
    void *st = NULL;
    rs_err err = {0};
    assert_int_equal(load_model("net", &m, &st, &err), 0);
    const rs_backend_ops *d = rs_backend_dense();
    float x[17 * 5] = {0}, y[17 * 3];
    rs_tensor_view iv = view_f32(x, 2, 5);
    rs_backend_output ov = {.buf = (uint8_t *)y, .capacity_bytes = sizeof(y)};
    assert_int_equal(d->infer(st, 17, &iv, 1, &ov, 1, &err), -1);
    assert_string_equal(err.msg, "dense: batch of 17 rows, model 'net' takes 1..16");
    assert_int_equal(d->infer(st, 3, &iv, 1, &ov, 1, &err), -1);
    assert_string_equal(err.msg, "dense: input 'x' must be FP32 [3, 5] (60 bytes)");
    rs_tensor_view bad = view_f32(x, 2, 4);
    assert_int_equal(d->infer(st, 2, &bad, 1, &ov, 1, &err), -1);
    assert_string_equal(err.msg, "dense: input 'x' must be FP32 [2, 5] (40 bytes)");
    ov.capacity_bytes = 8;
    assert_int_equal(d->infer(st, 2, &iv, 1, &ov, 1, &err), -1);
    assert_string_equal(err.msg, "dense: output 'y' needs 24 bytes, buffer has 8");
    assert_int_equal(d->infer(st, 2, &iv, 1, &ov, 0, &err), -1);
    assert_string_equal(err.msg, "dense: model 'net' takes 1 input and gives 1 output (1 and 0 given)");
    /* the instance stays usable after errors */
    ov.capacity_bytes = sizeof(y);
    assert_int_equal(d->infer(st, 2, &iv, 1, &ov, 1, &err), 0);
    d->unload(st);
}

/* ---- refused weights ---- */

typedef struct bad_weights {
    const char *header; /* NULL: no file at all */
    size_t data_len;
    const char *msg; /* after "<path>: " */
} bad_weights;

static void test_dense_bad_weights(void **state) {
    (void)state;
    /* model.yaml says [-1,2] -> [-1,1]; a good file would be 1 layer 2->1 */
#define W0 "\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}"
#define B0 "\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}"
#define MD(a) "\"__metadata__\":{\"activations\":\"" a "\"}"
    static const bad_weights cases[] = {
        {NULL, 0, "cannot open weights: No such file or directory"},
        {"{" MD("none") "," W0 "," B0 "}", 8,
         "wrong size: tensor 'layers.0.bias' ends at byte 12 of the data but the file has 8 data "
         "bytes"},
        {"{" MD("none") "," W0 "," B0, 12, "bad header: the JSON header ends too early"},
        {"[1,2]", 0, "bad header: not a JSON object"},
        {"{" MD("none") ",\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],"
         "\"data_offsets\":[0,12]}," B0 "}",
         12, "bad header: tensor 'layers.0.weight' has 12 bytes but its shape needs 8"},
        {"{" MD("none") ",\"layers.0.weight\":{\"dtype\":\"Q4\",\"shape\":[1,2],"
         "\"data_offsets\":[0,8]}," B0 "}",
         12, "bad header: tensor 'layers.0.weight' has unknown dtype 'Q4'"},
        {"{" MD("none") ",\"layers.0.weight\":{\"shape\":[1,2]}," B0 "}", 12,
         "bad header: tensor 'layers.0.weight' needs dtype, shape and data_offsets [begin, end]"},
        {"{" W0 "," B0 "}", 12,
         "bad header: missing __metadata__.activations (one of none, relu, gelu, tanh, softmax "
         "per layer, comma-separated)"},
        {"{" MD("swish") "," W0 "," B0 "}", 12,
         "bad header: activation 'swish' of layer 0 is not one of none, relu, gelu, tanh, "
         "softmax"},
        {"{" MD("softmax,none") "," W0 "," B0 "}", 12,
         "bad header: softmax is only allowed on the last layer (layer 0)"},
        {"{" MD("relu,none") "," W0 "," B0 "}", 12,
         "missing tensor 'layers.1.weight' (activations list 2 layers)"},
        {"{" MD("none") ",\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[1,3],"
         "\"data_offsets\":[0,12]},\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[12,16]}}",
         16,
         "shape mismatch with model.yaml: input 'x' has 2 features but layers.0.weight takes 3"},
        {"{" MD("none") ",\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
         "\"data_offsets\":[0,16]},\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[16,24]}}",
         24,
         "shape mismatch with model.yaml: output 'y' has 1 features but the last layer gives 2"},
        {"{" MD("none") "," W0 ",\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[8,16]}}",
         16, "layers.0.bias has 2 values, layers.0.weight has 1 outputs"},
        {"{" MD("none") "," W0 ",\"layers.0.bias\":{\"dtype\":\"I32\",\"shape\":[1],"
         "\"data_offsets\":[8,12]}}",
         12, "tensor 'layers.0.bias' must be F32 of rank 1"},
        {"{" MD("none") "," W0 "," B0 ",\"layers.1.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],"
         "\"data_offsets\":[12,16]}}",
         16, "has tensor 'layers.1.weight' but __metadata__.activations lists 1 layers"},
    };
    write_dense_yaml("bad", 2, 1, NULL);
    char path[256];
    weights_path("bad", path, sizeof(path));
    float data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        remove(path);
        if (cases[i].header) fixture_safetensors(path, cases[i].header, data, cases[i].data_len);
        rs_model m;
        void *st = NULL;
        rs_err err = {0};
        int rc = load_model("bad", &m, &st, &err);
        char want[1024];
        snprintf(want, sizeof(want), "%s: %s", path, cases[i].msg);
        if (rc != -1 || strcmp(err.msg, want) != 0)
            fail_msg("case %zu: rc %d\n  got:  %s\n  want: %s", i, rc, err.msg, want);
    }
    /* Files too short for the length prefix, and a length past the end. */
    fixture_write(path, "abc", 3);
    rs_model m;
    void *st = NULL;
    rs_err err = {0};
    assert_int_equal(load_model("bad", &m, &st, &err), -1);
    char want[512];
    snprintf(want, sizeof(want), "%s: wrong size: 3 bytes is shorter than the 8-byte header length",
             path);
    assert_string_equal(err.msg, want);
    uint8_t big[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    fixture_write(path, big, sizeof(big));
    assert_int_equal(load_model("bad", &m, &st, &err), -1);
    snprintf(want, sizeof(want),
             "%s: bad header: header length 65535 does not fit the 16-byte file", path);
    assert_string_equal(err.msg, want);
    /* A model.yaml the dense backend cannot serve. */
    fixture_model(repo, "two", 1,
                  "name: two\nbackend: dense\n"
                  "inputs: [{name: a, dtype: FP32, shape: [-1, 2]}, {name: b, dtype: FP32, "
                  "shape: [-1, 2]}]\n"
                  "outputs: [{name: y, dtype: FP32, shape: [-1, 1]}]\n");
    assert_int_equal(load_model("two", &m, &st, &err), -1);
    assert_non_null(strstr(err.msg, "/two/1/model.yaml: dense backend: needs exactly one FP32 "
                                    "input of shape [-1, N]"));
}

/* ---- identity ---- */

static void test_identity(void **state) {
    (void)state;
    fixture_model(repo, "id", 1,
                  "name: id\nbackend: identity\n"
                  "inputs: [{name: x, dtype: FP32, shape: [-1, 16]}]\n"
                  "outputs: [{name: y, dtype: FP32, shape: [-1, 16]}]\n");
    rs_model m;
    void *st = NULL;
    rs_err err = {0};
    assert_int_equal(load_model("id", &m, &st, &err), 0);
    float x[3 * 16];
    for (int i = 0; i < 3 * 16; i++) x[i] = (float)i * 0.25f;
    rs_tensor_view iv = view_f32(x, 3, 16);
    rs_backend_output ov = {0};
    const rs_backend_ops *id = rs_backend_identity();
    assert_int_equal(id->infer(st, 3, &iv, 1, &ov, 1, &err), 0);
    assert_ptr_equal(ov.data, x); /* a view of the input: no copy */
    assert_int_equal(ov.byte_len, sizeof(x));
    assert_int_equal(ov.dtype, RS_DT_FP32);
    assert_int_equal(ov.rank, 2);
    assert_int_equal(ov.dims[0], 3);
    assert_int_equal(ov.dims[1], 16);
    assert_int_equal(id->infer(st, 4, &iv, 1, &ov, 1, &err), -1);
    assert_string_equal(err.msg, "identity: input 'x' has 3 rows, batch has 4");
    id->unload(st);
    fixture_model(repo, "idbad", 1,
                  "name: idbad\nbackend: identity\n"
                  "inputs: [{name: x, dtype: FP32, shape: [-1, 16]}]\n"
                  "outputs: [{name: y, dtype: INT32, shape: [-1, 16]}]\n");
    assert_int_equal(load_model("idbad", &m, &st, &err), -1);
    assert_non_null(strstr(err.msg, "identity backend: output 'y' must have the dtype and shape "
                                    "of input 'x'"));
}

/* ---- plugins ---- */

static void test_plugins(void **state) {
    (void)state;
    rs_err err = {0};
    char path[512];
    snprintf(path, sizeof(path), "%s/rs_test_plugin_future_abi.so", PLUGIN_DIR);
    assert_int_equal(rs_backend_load_plugin(path, &err), -1);
    char want[1024];
    snprintf(want, sizeof(want), "%s: backend ABI version 2, this ringserve needs 1", path);
    assert_string_equal(err.msg, want);
    assert_null(rs_backend_find("future"));

    snprintf(path, sizeof(path), "%s/rs_test_plugin_not_backend.so", PLUGIN_DIR);
    assert_int_equal(rs_backend_load_plugin(path, &err), -1);
    snprintf(want, sizeof(want),
             "%s: no rs_backend_entry symbol: not a ringserve backend plugin", path);
    assert_string_equal(err.msg, want);

    assert_int_equal(rs_backend_load_plugin("/nonexistent/x.so", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/x.so: cannot load backend plugin: "));

    /* load_dir goes in name order and stops at the first bad plugin:
     * double loads, future_abi is refused (the server then refuses to start) */
    assert_int_equal(rs_backend_load_dir(PLUGIN_DIR, &err), -1);
    assert_non_null(strstr(err.msg, "rs_test_plugin_future_abi.so: backend ABI version 2, this "
                                    "ringserve needs 1"));
    assert_non_null(rs_backend_find("double"));
    rs_backend_unload_plugins();
    assert_null(rs_backend_find("double"));
    assert_int_equal(rs_backend_load_dir("/nonexistent", &err), -1);
    assert_string_equal(err.msg, "/nonexistent: cannot read backend directory");

    /* a directory with the good plugin only */
    char dir[64], link[256], target[512];
    fixture_tmpdir(dir);
    snprintf(link, sizeof(link), "%s/double.so", dir);
    snprintf(target, sizeof(target), "%s/rs_test_plugin_double.so", PLUGIN_DIR);
    assert_int_equal(symlink(target, link), 0);
    if (rs_backend_load_dir(dir, &err) != 0) fail_msg("%s", err.msg);
    const rs_backend_ops *ops = rs_backend_find("double");
    assert_non_null(ops);
    assert_int_equal(rs_backend_load_plugin(target, &err), -1);
    snprintf(want, sizeof(want), "%s: backend 'double' is already registered", target);
    assert_string_equal(err.msg, want);

    /* a model served by the plugin */
    fixture_model(repo, "dbl", 1,
                  "name: dbl\nbackend: double\n"
                  "inputs: [{name: x, dtype: FP32, shape: [-1, 2]}]\n"
                  "outputs: [{name: y, dtype: FP32, shape: [-1, 2]}]\n");
    rs_model m;
    void *st = NULL;
    assert_int_equal(load_model("dbl", &m, &st, &err), 0);
    assert_int_equal(rs_backend_check_model(&m, &err), 0);
    float x[4] = {1, 2, 3, 4}, y[4];
    rs_tensor_view iv = view_f32(x, 2, 2);
    rs_backend_output ov = {.buf = (uint8_t *)y, .capacity_bytes = sizeof(y)};
    assert_int_equal(ops->infer(st, 2, &iv, 1, &ov, 1, &err), 0);
    assert_true(y[3] == 8.0f);
    ops->unload(st);
    rs_backend_unload_plugins();
    assert_null(rs_backend_find("double"));
    assert_int_equal(rs_backend_check_model(&m, &err), -1);
    snprintf(want, sizeof(want),
             "%s: backend: 'double': no such backend (built-in: identity, dense; plugins come "
             "from --backend-dir)",
             m.file);
    assert_string_equal(err.msg, want);
    fixture_rmtree(dir);
}

/* The build generates models/mlp-bench into <build>/models: it must load and
 * run (the weights generator and the model.yaml agree). */
static void test_mlp_bench_generated(void **state) {
    (void)state;
    char build_repo[512];
    snprintf(build_repo, sizeof(build_repo), "%s/models", getenv("RINGSERVE_BUILD"));
    rs_registry_config cfg;
    rs_registry_config_default(&cfg, build_repo);
    rs_err err = {0};
    rs_registry *r = rs_registry_create(&cfg, &err);
    if (!r) fail_msg("%s", err.msg);
    const rs_model *m = rs_registry_find(r, "mlp-bench", 0);
    assert_non_null(m);
    assert_int_equal(m->inputs[0].dims[1], 1024);
    void *st = NULL;
    if (rs_backend_dense()->load(m, &st, &err) != 0) fail_msg("%s", err.msg);
    static float x[2 * 1024], y[2 * 1024];
    for (int i = 0; i < 2 * 1024; i++) x[i] = (float)(i % 7) - 3.0f;
    rs_tensor_view iv = view_f32(x, 2, 1024);
    rs_backend_output ov = {.buf = (uint8_t *)y, .capacity_bytes = sizeof(y)};
    assert_int_equal(rs_backend_dense()->infer(st, 2, &iv, 1, &ov, 1, &err), 0);
    bool nonzero = false;
    for (int i = 0; i < 2 * 1024; i++) {
        assert_true(isfinite(y[i]));
        nonzero |= y[i] != 0.0f;
    }
    assert_true(nonzero);
    rs_backend_dense()->unload(st);
    rs_registry_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dense_fp32_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dense_int8_tolerance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dense_infer_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dense_bad_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugins, setup, teardown),
        cmocka_unit_test(test_mlp_bench_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

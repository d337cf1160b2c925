/* dense.c — a feed-forward network: dense layers with relu/gelu/tanh/none
 * activations and an optional softmax on the last layer, read from
 * <model dir>/model.safetensors.
 *
 * File layout: tensors layers.<i>.weight F32 [out, in] and layers.<i>.bias
 * F32 [out]; __metadata__.activations = "relu,relu,softmax" (one per layer).
 *
 * fp32: one cblas_sgemm per layer over the whole batch (rows x in) * (in x
 * out). BLAS runs single-threaded: parallelism comes from pinned shards, not
 * from OpenBLAS threads fighting them for cores.
 *
 * int8 (quantized: int8): weights are quantized at load per output channel
 * (scale = max|w| / 127), activations per row (scale = max|x| / 127), the dot
 * products accumulate in int32 and are rescaled to fp32 before the bias and
 * activation. Tolerance against fp32: docs/design.md and tests/registry. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers/backend.h"
#include "workers/backends/safetensors.h"

#define RS_DENSE_MAX_LAYERS 16
#define RS_DENSE_WEIGHTS_FILE "model.safetensors"

typedef enum {
    RS_ACT_NONE,
    RS_ACT_RELU,
    RS_ACT_GELU,
    RS_ACT_TANH,
    RS_ACT_SOFTMAX
} rs_dense_act;

static const char *const rs_dense_act_names[] = {"none", "relu", "gelu", "tanh", "softmax"};

typedef struct rs_dense_layer {
    uint32_t in, out;
    rs_dense_act act;
    const float *w; /* [out, in], inside the file buffer */
    const float *b; /* [out] */
    int8_t *qw;     /* int8 only: [out, in] */
    float *qscale;  /* int8 only: [out] */
} rs_dense_layer;

typedef struct rs_dense {
    const rs_model *model;
    rs_st_file *file;
    bool int8;
    uint32_t n_layers;
    rs_dense_layer layers[RS_DENSE_MAX_LAYERS];
    uint32_t max_rows, max_width;
    float *act[2]; /* ping-pong activations, max_rows * max_width */
    float *xin;    /* aligned copy of an unaligned input */
    int8_t *qx;      /* int8 only: the quantized batch, max_rows * max_width */
    float *qx_scale; /* int8 only: one scale per row */
} rs_dense;

static void rs_dense_unload(void *state) {
    rs_dense *d = state;
    if (!d) return;
    for (uint32_t i = 0; i < d->n_layers; i++) {
        free(d->layers[i].qw);
        free(d->layers[i].qscale);
    }
    free(d->act[0]);
    free(d->act[1]);
    free(d->xin);
    free(d->qx);
    free(d->qx_scale);
    rs_st_close(d->file);
    free(d);
}

static int rs_dense_parse_acts(rs_dense *d, const char *path, rs_err *err) {
    const char *acts = rs_st_metadata(d->file, "activations");
    if (!acts) {
        rs_err_set(err, "%s: bad header: missing __metadata__.activations (one of none, relu, "
                   "gelu, tanh, softmax per layer, comma-separated)",
                   path);
        return -1;
    }
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", acts);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (d->n_layers == RS_DENSE_MAX_LAYERS) {
            rs_err_set(err, "%s: more than %d layers", path, RS_DENSE_MAX_LAYERS);
            return -1;
        }
        int found = -1;
        for (int a = 0; a <= RS_ACT_SOFTMAX; a++)
            if (strcmp(tok, rs_dense_act_names[a]) == 0) found = a;
        if (found < 0) {
            rs_err_set(err, "%s: bad header: activation '%s' of layer %u is not one of none, "
                       "relu, gelu, tanh, softmax",
                       path, tok, d->n_layers);
            return -1;
        }
        d->layers[d->n_layers++].act = (rs_dense_act)found;
    }
    if (d->n_layers == 0) {
        rs_err_set(err, "%s: bad header: __metadata__.activations lists no layer", path);
        return -1;
    }
    for (uint32_t i = 0; i + 1 < d->n_layers; i++) {
        if (d->layers[i].act == RS_ACT_SOFTMAX) {
            rs_err_set(err, "%s: bad header: softmax is only allowed on the last layer (layer %u)",
                       path, i);
            return -1;
        }
    }
    return 0;
}

/* Finds layers.<i>.<what> as F32 of the given rank. */
static int rs_dense_tensor(rs_dense *d, const char *path, uint32_t i, const char *what,
                           uint32_t rank, rs_st_tensor *t, rs_err *err) {
    char name[64];
    snprintf(name, sizeof(name), "layers.%u.%s", i, what);
    if (rs_st_find(d->file, name, t) < 0) {
        rs_err_set(err, "%s: missing tensor '%s' (activations list %u layers)", path, name,
                   d->n_layers);
        return -1;
    }
    if (t->dtype != RS_DT_FP32 || t->rank != rank || t->dims[0] == 0) {
        rs_err_set(err, "%s: tensor '%s' must be F32 of rank %u", path, name, rank);
        return -1;
    }
    if (((uintptr_t)t->data & 3) != 0) {
        rs_err_set(err, "%s: tensor '%s' is not 4-byte aligned in the file", path, name);
        return -1;
    }
    return 0;
}

/* Checks the layer chain against itself and against model.yaml. */
static int rs_dense_layers(rs_dense *d, const char *path, rs_err *err) {
    const rs_model *m = d->model;
    d->max_width = (uint32_t)m->inputs[0].dims[1];
    for (uint32_t i = 0; i < d->n_layers; i++) {
        rs_dense_layer *l = &d->layers[i];
        rs_st_tensor w, b;
        if (rs_dense_tensor(d, path, i, "weight", 2, &w, err) < 0) return -1;
        if (rs_dense_tensor(d, path, i, "bias", 1, &b, err) < 0) return -1;
        l->out = (uint32_t)w.dims[0];
        l->in = (uint32_t)w.dims[1];
        l->w = w.data;
        l->b = b.data;
        if (b.dims[0] != w.dims[0]) {
            rs_err_set(err, "%s: layers.%u.bias has %lld values, layers.%u.weight has %u outputs",
                       path, i, (long long)b.dims[0], i, l->out);
            return -1;
        }
        uint32_t want = i == 0 ? (uint32_t)m->inputs[0].dims[1] : d->layers[i - 1].out;
        if (l->in != want) {
            if (i == 0)
                rs_err_set(err, "%s: shape mismatch with model.yaml: input '%s' has %u features "
                           "but layers.0.weight takes %u",
                           path, m->inputs[0].name, want, l->in);
            else
                rs_err_set(err, "%s: layers.%u.weight takes %u inputs but layers.%u gives %u",
                           path, i, l->in, i - 1, want);
            return -1;
        }
        if (l->out > d->max_width) d->max_width = l->out;
    }
    char extra[64];
    snprintf(extra, sizeof(extra), "layers.%u.weight", d->n_layers);
    rs_st_tensor t;
    if (rs_st_find(d->file, extra, &t) == 0) {
        rs_err_set(err, "%s: has tensor '%s' but __metadata__.activations lists %u layers", path,
                   extra, d->n_layers);
        return -1;
    }
    uint32_t last = d->layers[d->n_layers - 1].out;
    if ((int64_t)last != m->outputs[0].dims[1]) {
        rs_err_set(err, "%s: shape mismatch with model.yaml: output '%s' has %lld features but "
                   "the last layer gives %u",
                   path, m->outputs[0].name, (long long)m->outputs[0].dims[1], last);
        return -1;
    }
    return 0;
}

static int rs_dense_quantize(rs_dense *d, rs_err *err) {
    for (uint32_t i = 0; i < d->n_layers; i++) {
        rs_dense_layer *l = &d->layers[i];
        l->qw = malloc((size_t)l->out * l->in);
        l->qscale = malloc(sizeof(float) * l->out);
        if (!l->qw || !l->qscale) {
            rs_err_set(err, "%s: out of memory quantizing layer %u", d->model->file, i);
            return -1;
        }
        for (uint32_t o = 0; o < l->out; o++) {
            const float *row = l->w + (size_t)o * l->in;
            float amax = 0;
            for (uint32_t k = 0; k < l->in; k++) amax = fmaxf(amax, fabsf(row[k]));
            float scale = amax > 0 ? amax / 127.0f : 1.0f;
            l->qscale[o] = scale;
            for (uint32_t k = 0; k < l->in; k++)
                l->qw[(size_t)o * l->in + k] = (int8_t)lrintf(row[k] / scale);
        }
    }
    return 0;
}

static int rs_dense_check_model(const rs_model *m, rs_err *err) {
    const rs_tensor_spec *in = &m->inputs[0], *out = &m->outputs[0];
    if (m->input_count != 1 || in->dtype != RS_DT_FP32 || in->rank != 2 || in->dims[1] < 1) {
        rs_err_set(err, "%s: dense backend: needs exactly one FP32 input of shape [-1, N]",
                   m->file);
        return -1;
    }
    if (m->backend_outputs != 1 || out->dtype != RS_DT_FP32 || out->rank != 2 ||
        out->dims[1] < 1) {
        rs_err_set(err, "%s: dense backend: produces exactly one FP32 output of shape [-1, N] "
                   "(other outputs come from post stages)",
                   m->file);
        return -1;
    }
    return 0;
}

static int rs_dense_load(const rs_model *m, void **state, rs_err *err) {
    if (rs_dense_check_model(m, err) < 0) return -1;
    /* One BLAS thread: shards are the parallelism. */
    openblas_set_num_threads(1);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", m->dir, RS_DENSE_WEIGHTS_FILE);
    rs_dense *d = calloc(1, sizeof(*d));
    if (!d) {
        rs_err_set(err, "%s: out of memory", path);
        return -1;
    }
    d->model = m;
    d->int8 = m->quantized == RS_MODEL_QUANT_INT8;
    d->max_rows = m->max_batch_size;
    d->file = rs_st_open(path, err);
    if (!d->file || rs_dense_parse_acts(d, path, err) < 0 || rs_dense_layers(d, path, err) < 0 ||
        (d->int8 && rs_dense_quantize(d, err) < 0))
        goto fail;
    size_t act_bytes = (size_t)d->max_rows * d->max_width * sizeof(float);
    size_t act_alloc = (act_bytes + 63) & ~(size_t)63;
    d->act[0] = aligned_alloc(64, act_alloc);
    d->act[1] = aligned_alloc(64, act_alloc);
    d->xin = aligned_alloc(64, act_alloc);
    d->qx = malloc((size_t)d->max_rows * d->max_width);
    d->qx_scale = malloc(sizeof(float) * d->max_rows);
    if (!d->act[0] || !d->act[1] || !d->xin || !d->qx || !d->qx_scale) {
        rs_err_set(err, "%s: out of memory for %u-row activations", path, d->max_rows);
        goto fail;
    }
    *state = d;
    return 0;
fail:
    rs_dense_unload(d);
    return -1;
}

/* Four int8 dot products of one activation row with four weight rows, int32
 * accumulation: the row is read once for four output channels. Built at -O3
 * and for AVX2 when the CPU has it (function multiversioning), so gcc
 * vectorizes the widening multiply-adds whatever the project's flags. */
__attribute__((optimize("O3"), target_clones("avx2", "default"))) static void
rs_dense_dot4_i8(const int8_t *restrict x, const int8_t *restrict w, size_t stride, uint32_t n,
                 int32_t acc[4]) {
    const int8_t *w0 = w, *w1 = w + stride, *w2 = w + 2 * stride, *w3 = w + 3 * stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (uint32_t k = 0; k < n; k++) {
        int32_t v = x[k];
        a0 += v * w0[k];
        a1 += v * w1[k];
        a2 += v * w2[k];
        a3 += v * w3[k];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

__attribute__((optimize("O3"), target_clones("avx2", "default"))) static int32_t
rs_dense_dot_i8(const int8_t *restrict x, const int8_t *restrict w, uint32_t n) {
    int32_t acc = 0;
    for (uint32_t k = 0; k < n; k++) acc += (int32_t)x[k] * w[k];
    return acc;
}

/* Quantizes every row of x first, then walks the weights once per batch in
 * blocks of 64 output channels (in L1/L2 while they meet every row of the
 * batch), four channels per pass over a row: a batch reads the int8 weights
 * once, like sgemm. */
static void rs_dense_int8_layer(rs_dense *d, const rs_dense_layer *l, uint32_t rows,
                                const float *x, float *y) {
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * l->in;
        int8_t *qr = d->qx + (size_t)r * l->in;
        float amax = 0;
        for (uint32_t k = 0; k < l->in; k++) amax = fmaxf(amax, fabsf(xr[k]));
        float sx = amax > 0 ? amax / 127.0f : 1.0f;
        for (uint32_t k = 0; k < l->in; k++) qr[k] = (int8_t)lrintf(xr[k] / sx);
        d->qx_scale[r] = sx;
    }
    const uint32_t block = 64;
    for (uint32_t ob = 0; ob < l->out; ob += block) {
        uint32_t oe = ob + block < l->out ? ob + block : l->out;
        for (uint32_t r = 0; r < rows; r++) {
            const int8_t *qr = d->qx + (size_t)r * l->in;
            float *yr = y + (size_t)r * l->out;
            float sr = d->qx_scale[r];
            uint32_t o = ob;
            for (; o + 4 <= oe; o += 4) {
                int32_t acc[4];
                rs_dense_dot4_i8(qr, l->qw + (size_t)o * l->in, l->in, l->in, acc);
                for (int j = 0; j < 4; j++) yr[o + (uint32_t)j] = (float)acc[j] * sr * l->qscale[o + (uint32_t)j];
            }
            for (; o < oe; o++)
                yr[o] = (float)rs_dense_dot_i8(qr, l->qw + (size_t)o * l->in, l->in) * sr *
                        l->qscale[o];
        }
    }
}

static void rs_dense_activate(const rs_dense_layer *l, uint32_t rows, float *y) {
    for (uint32_t r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * l->out;
        for (uint32_t o = 0; o < l->out; o++) {
            float v = yr[o] + l->b[o];
            switch (l->act) {
            case RS_ACT_RELU: v = v > 0 ? v : 0; break;
            case RS_ACT_GELU: v = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2)); break;
            case RS_ACT_TANH: v = tanhf(v); break;
            case RS_ACT_NONE:
            case RS_ACT_SOFTMAX: break;
            }
            yr[o] = v;
        }
        if (l->act == RS_ACT_SOFTMAX) {
            float mx = yr[0], sum = 0;
            for (uint32_t o = 1; o < l->out; o++) mx = fmaxf(mx, yr[o]);
            for (uint32_t o = 0; o < l->out; o++) sum += (yr[o] = expf(yr[o] - mx));
            for (uint32_t o = 0; o < l->out; o++) yr[o] /= sum;
        }
    }
}

static int rs_dense_infer(void *state, uint32_t rows, const rs_tensor_view *inputs,
                          uint32_t n_inputs, rs_backend_output *outputs, uint32_t n_outputs,
                          rs_err *err) {
    rs_dense *d = state;
    const rs_model *m = d->model;
    uint32_t in_f = d->layers[0].in, out_f = d->layers[d->n_layers - 1].out;
    if (n_inputs != 1 || n_outputs != 1) {
        rs_err_set(err, "dense: model '%s' takes 1 input and gives 1 output (%u and %u given)",
                   m->name, n_inputs, n_outputs);
        return -1;
    }
    const rs_tensor_view *in = &inputs[0];
    if (rows == 0 || rows > d->max_rows) {
        rs_err_set(err, "dense: batch of %u rows, model '%s' takes 1..%u", rows, m->name,
                   d->max_rows);
        return -1;
    }
    if (in->dtype != RS_DT_FP32 || in->rank != 2 || in->dims[0] != (int64_t)rows ||
        in->dims[1] != (int64_t)in_f || in->byte_len != (uint64_t)rows * in_f * sizeof(float)) {
        rs_err_set(err, "dense: input '%s' must be FP32 [%u, %u] (%llu bytes)", m->inputs[0].name,
                   rows, in_f, (unsigned long long)((uint64_t)rows * in_f * sizeof(float)));
        return -1;
    }
    rs_backend_output *out = &outputs[0];
    uint64_t out_bytes = (uint64_t)rows * out_f * sizeof(float);
    if (!out->buf || out->capacity_bytes < out_bytes) {
        rs_err_set(err, "dense: output '%s' needs %llu bytes, buffer has %llu",
                   m->outputs[0].name, (unsigned long long)out_bytes,
                   (unsigned long long)out->capacity_bytes);
        return -1;
    }
    const float *x = (const float *)in->data;
    if (((uintptr_t)in->data & 3) != 0) {
        memcpy(d->xin, in->data, in->byte_len);
        x = d->xin;
    }
    bool out_aligned = ((uintptr_t)out->buf & 3) == 0;
    for (uint32_t i = 0; i < d->n_layers; i++) {
        const rs_dense_layer *l = &d->layers[i];
        bool last = i + 1 == d->n_layers;
        float *y = (last && out_aligned) ? (float *)out->buf : d->act[i & 1];
        if (d->int8)
            rs_dense_int8_layer(d, l, rows, x, y);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)l->out,
                        (int)l->in, 1.0f, x, (int)l->in, l->w, (int)l->in, 0.0f, y, (int)l->out);
        rs_dense_activate(l, rows, y);
        x = y;
    }
    if (!out_aligned) memcpy(out->buf, x, out_bytes);
    out->dtype = RS_DT_FP32;
    out->rank = 2;
    out->dims[0] = rows;
    out->dims[1] = out_f;
    out->data = out->buf;
    out->byte_len = out_bytes;
    return 0;
}

const rs_backend_ops *rs_backend_dense(void) {
    static const rs_backend_ops ops = {
        .abi_version = RS_BACKEND_ABI_VERSION,
        .name = "dense",
        .load = rs_dense_load,
        .infer = rs_dense_infer,
        .unload = rs_dense_unload,
    };
    return &ops;
}

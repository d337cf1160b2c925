/* pipeline.c — compiles stage specs into a pipeline and runs it on a batch.
 *
 * Compile does every check that does not need data (known stage, known and
 * well-formed params, files loadable) so that a model with a broken stage is
 * refused at load; run checks what the data decides (dtype, rank, shape) and
 * fails the batch with a sentence naming the stage. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/log.h"
#include "io/frame.h"
#include "workers/stages/stage.h"
#include "workers/stages/stage_ops.h"

typedef enum stage_kind {
    K_NORMALIZE,
    K_CAST,
    K_RESHAPE,
    K_TOKENIZE,
    K_SOFTMAX,
    K_ARGMAX,
    K_TOPK,
    K_COUNT_
} stage_kind;

typedef struct kind_info {
    const char *name;
    const char *const keys[8];     /* allowed params, NULL-terminated */
    const char *const required[3]; /* NULL-terminated */
    bool derives;                  /* appends tensors instead of replacing */
} kind_info;

static const kind_info kinds[K_COUNT_] = {
    [K_NORMALIZE] = {"normalize", {"scale", "offset", "input", "output"}, {NULL}, false},
    [K_CAST] = {"cast", {"to", "input", "output"}, {"to"}, false},
    [K_RESHAPE] = {"reshape", {"shape", "input", "output"}, {"shape"}, false},
    [K_TOKENIZE] = {"tokenize",
                    {"vocab", "max_tokens", "unk_id", "pad_id", "lowercase", "input", "output"},
                    {"vocab", "max_tokens"},
                    false},
    [K_SOFTMAX] = {"softmax", {"input", "output"}, {NULL}, false},
    [K_ARGMAX] = {"argmax", {"input", "output"}, {NULL}, true},
    [K_TOPK] = {"topk", {"k", "labels", "input", "output"}, {"k"}, true},
};

#define OUT_NAME_BYTES (RS_MAX_NAME_BYTES + 1)

typedef struct stage {
    stage_kind kind;
    char label[96]; /* "digits/1 pre[0] normalize", for run-time errors */
    char input[OUT_NAME_BYTES];
    char output[OUT_NAME_BYTES];
    char out_ids[OUT_NAME_BYTES];    /* topk */
    char out_labels[OUT_NAME_BYTES]; /* topk */
    float scale, offset;             /* normalize */
    rs_dtype to;                     /* cast */
    uint32_t rank;                   /* reshape */
    int64_t dims[RS_MAX_RANK];
    uint32_t max_tokens; /* tokenize */
    int64_t unk_id, pad_id;
    bool lowercase;
    rs_vocab vocab;
    uint32_t k; /* topk */
    bool has_labels;
    rs_vocab labels;
} stage;

struct rs_stage_pipeline {
    uint32_t n;
    stage st[RS_STAGE_MAX_STAGES];
};

/* ---- specs ---- */

int rs_stage_spec_init(rs_stage_spec *s, const char *name) {
    memset(s, 0, sizeof(*s));
    if (strlen(name) >= sizeof(s->name)) return -1;
    strcpy(s->name, name);
    return 0;
}

int rs_stage_spec_set(rs_stage_spec *s, const char *key, const char *value) {
    if (s->param_count >= RS_STAGE_MAX_PARAMS) return -1;
    rs_stage_param *p = &s->params[s->param_count];
    if (strlen(key) >= sizeof(p->key) || strlen(value) >= sizeof(p->value)) return -1;
    strcpy(p->key, key);
    strcpy(p->value, value);
    s->param_count++;
    return 0;
}

/* ---- the arena ---- */

int rs_stage_arena_init(rs_stage_arena *a, size_t cap_bytes, rs_err *err) {
    memset(a, 0, sizeof(*a));
    if (cap_bytes == 0) return 0;
    a->base = aligned_alloc(64, (cap_bytes + 63) & ~(size_t)63);
    if (!a->base) {
        rs_err_set(err, "stage arena: cannot allocate %zu bytes", cap_bytes);
        return -1;
    }
    a->cap_bytes = cap_bytes;
    return 0;
}

void rs_stage_arena_free(rs_stage_arena *a) {
    free(a->base);
    memset(a, 0, sizeof(*a));
}

void *rs_stage_arena_alloc(rs_stage_arena *a, size_t bytes) {
    size_t start = (a->used_bytes + 63) & ~(size_t)63;
    if (start > a->cap_bytes || bytes > a->cap_bytes - start) return NULL;
    a->used_bytes = start + bytes;
    return a->base + start;
}

/* ---- parameter parsing ---- */

typedef struct ctx {
    const char *what;
    uint32_t index;
    const rs_stage_spec *spec;
    rs_err *err;
} ctx;

static int fail(const ctx *c, const char *key, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(const ctx *c, const char *key, const char *value, const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    char where[32] = "";
    if (c->spec->line > 0) snprintf(where, sizeof(where), " (line %d)", c->spec->line);
    if (key && value)
        rs_err_set(c->err, "%s[%u] %s%s: %s: '%s': %s", c->what, c->index, c->spec->name, where,
                   key, value, why);
    else if (key)
        rs_err_set(c->err, "%s[%u] %s%s: %s: %s", c->what, c->index, c->spec->name, where, key,
                   why);
    else
        rs_err_set(c->err, "%s[%u] %s%s: %s", c->what, c->index, c->spec->name, where, why);
    return -1;
}

static int parse_float(const ctx *c, const char *key, const char *v, float *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !isfinite(d) || fabs(d) > 3.0e38)
        return fail(c, key, v, "not a finite number");
    *out = (float)d;
    return 0;
}

static int parse_i64(const ctx *c, const char *key, const char *v, int64_t min, int64_t max,
                     int64_t *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0) return fail(c, key, v, "not an integer");
    if (x < min || x > max)
        return fail(c, key, v, "out of range [%lld, %lld]", (long long)min, (long long)max);
    *out = x;
    return 0;
}

static int parse_bool(const ctx *c, const char *key, const char *v, bool *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = false, 0;
    }
    return fail(c, key, v, "not a boolean (true/false)");
}

/* "-1,8,8", "[-1, 8, 8]" or "-1 8 8": the registry joins YAML lists with commas. */
static int parse_shape(const ctx *c, const char *key, const char *v, stage *st) {
    const char *p = v;
    while (*p == ' ' || *p == '[') p++;
    st->rank = 0;
    while (*p && *p != ']') {
        if (st->rank == RS_MAX_RANK) return fail(c, key, v, "more than %d dims", RS_MAX_RANK);
        char *end;
        errno = 0;
        long long d = strtoll(p, &end, 10);
        if (end == p || errno != 0) return fail(c, key, v, "not a list of integers");
        if (st->rank == 0 && d != -1) return fail(c, key, v, "the first dim must be -1 (the batch)");
        if (st->rank > 0 && (d <= 0 || d > INT32_MAX))
            return fail(c, key, v, "dims after the batch must be > 0");
        st->dims[st->rank++] = d;
        p = end;
        while (*p == ' ' || *p == ',') p++;
    }
    if (*p == ']') p++;
    while (*p == ' ') p++;
    if (*p != '\0' || st->rank == 0) return fail(c, key, v, "not a list of integers");
    return 0;
}

static int parse_name(const ctx *c, const char *key, const char *v, char *out) {
    size_t n = strlen(v);
    if (n == 0 || n > RS_MAX_NAME_BYTES)
        return fail(c, key, v, "a tensor name is 1..%d bytes", RS_MAX_NAME_BYTES);
    memcpy(out, v, n + 1);
    return 0;
}

static int resolve_path(const ctx *c, const char *key, const char *v, const char *base_dir,
                        char *out, size_t out_bytes) {
    int n = (v[0] == '/' || !base_dir || !base_dir[0])
                ? snprintf(out, out_bytes, "%s", v)
                : snprintf(out, out_bytes, "%s/%s", base_dir, v);
    if (n < 0 || (size_t)n >= out_bytes) return fail(c, key, v, "path too long");
    return 0;
}

static int load_table(const ctx *c, const char *key, const char *v, const char *base_dir,
                      bool tokens, rs_vocab *out) {
    char path[PATH_MAX];
    if (resolve_path(c, key, v, base_dir, path, sizeof(path)) != 0) return -1;
    char why[RS_ERR_MSG_BYTES / 2];
    if (rs_vocab_load(out, path, tokens, why, sizeof(why)) != 0) return fail(c, key, NULL, "%s", why);
    return 0;
}

static int compile_param(const ctx *c, stage *st, const rs_stage_param *p, const char *base_dir) {
    const char *k = p->key, *v = p->value;
    if (strcmp(k, "input") == 0) return parse_name(c, k, v, st->input);
    if (strcmp(k, "output") == 0) return parse_name(c, k, v, st->output);
    int64_t x;
    switch (st->kind) {
    case K_NORMALIZE:
        return parse_float(c, k, v, strcmp(k, "scale") == 0 ? &st->scale : &st->offset);
    case K_CAST:
        st->to = rs_dtype_parse(v, strlen(v));
        if (!rs_stage_numeric(st->to))
            return fail(c, k, v,
                        "not a numeric dtype (BOOL, UINT8..UINT64, INT8..INT64, FP32, FP64)");
        return 0;
    case K_RESHAPE: return parse_shape(c, k, v, st);
    case K_TOKENIZE:
        if (strcmp(k, "vocab") == 0) return load_table(c, k, v, base_dir, true, &st->vocab);
        if (strcmp(k, "lowercase") == 0) return parse_bool(c, k, v, &st->lowercase);
        if (strcmp(k, "max_tokens") == 0) {
            if (parse_i64(c, k, v, 1, 65536, &x) != 0) return -1;
            st->max_tokens = (uint32_t)x;
            return 0;
        }
        return parse_i64(c, k, v, 0, INT64_MAX, strcmp(k, "unk_id") == 0 ? &st->unk_id : &st->pad_id);
    case K_TOPK:
        if (strcmp(k, "labels") == 0) {
            st->has_labels = true;
            return load_table(c, k, v, base_dir, false, &st->labels);
        }
        if (parse_i64(c, k, v, 1, 4096, &x) != 0) return -1;
        st->k = (uint32_t)x;
        return 0;
    default: return fail(c, k, v, "unexpected parameter"); /* checked by the caller */
    }
}

static void stage_free(stage *st) {
    rs_vocab_free(&st->vocab);
    rs_vocab_free(&st->labels);
}

static int compile_stage(const ctx *c, stage *st, const char *base_dir) {
    const rs_stage_spec *spec = c->spec;
    int kind = -1;
    for (int i = 0; i < K_COUNT_; i++)
        if (strcmp(spec->name, kinds[i].name) == 0) kind = i;
    if (kind < 0)
        return fail(c, NULL, NULL,
                    "unknown stage (known: normalize, cast, reshape, tokenize, softmax, argmax, "
                    "topk)");
    const kind_info *ki = &kinds[kind];
    memset(st, 0, sizeof(*st));
    st->kind = (stage_kind)kind;
    st->scale = 1.0f;
    snprintf(st->label, sizeof(st->label), "%s[%u] %s", c->what, c->index, ki->name);
    if (spec->param_count > RS_STAGE_MAX_PARAMS) return fail(c, NULL, NULL, "too many params");
    for (uint32_t i = 0; i < spec->param_count; i++) {
        const rs_stage_param *p = &spec->params[i];
        bool known = false;
        for (size_t j = 0; ki->keys[j]; j++) known |= strcmp(p->key, ki->keys[j]) == 0;
        if (!known) {
            char allowed[160] = "";
            for (size_t j = 0; ki->keys[j]; j++)
                snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
                         j ? ", " : "", ki->keys[j]);
            return fail(c, p->key, NULL, "unknown parameter (allowed: %s)", allowed);
        }
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(spec->params[j].key, p->key) == 0)
                return fail(c, p->key, NULL, "given twice");
        if (compile_param(c, st, p, base_dir) != 0) return -1;
    }
    for (size_t j = 0; ki->required[j]; j++)
        if (!rs_stage_spec_param(spec, ki->required[j]))
            return fail(c, ki->required[j], NULL, "missing required parameter");
    /* Names of appended tensors. */
    if (st->kind == K_ARGMAX && !st->output[0]) strcpy(st->output, "label");
    if (st->kind == K_TOPK) {
        const char *base = st->output[0] ? st->output : "topk";
        if (strlen(base) + sizeof("_labels") > OUT_NAME_BYTES)
            return fail(c, "output", base, "too long for the _scores/_ids/_labels suffixes");
        char b[OUT_NAME_BYTES];
        strcpy(b, base);
        snprintf(st->output, OUT_NAME_BYTES, "%s_scores", b);
        snprintf(st->out_ids, OUT_NAME_BYTES, "%s_ids", b);
        snprintf(st->out_labels, OUT_NAME_BYTES, "%s_labels", b);
    }
    return 0;
}

rs_stage_pipeline *rs_stage_pipeline_compile(const rs_stage_spec *specs, uint32_t n,
                                             const char *base_dir, const char *what,
                                             rs_err *err) {
    if (n > RS_STAGE_MAX_STAGES) {
        rs_err_set(err, "%s: %u stages, at most %d", what, n, RS_STAGE_MAX_STAGES);
        return NULL;
    }
    rs_stage_pipeline *p = calloc(1, sizeof(*p));
    if (!p) {
        rs_err_set(err, "%s: out of memory", what);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        ctx c = {what, i, &specs[i], err};
        if (compile_stage(&c, &p->st[i], base_dir) != 0) {
            stage_free(&p->st[i]);
            p->n = i;
            rs_stage_pipeline_free(p);
            return NULL;
        }
        p->n = i + 1;
    }
    return p;
}

void rs_stage_pipeline_free(rs_stage_pipeline *p) {
    if (!p) return;
    for (uint32_t i = 0; i < p->n; i++) stage_free(&p->st[i]);
    free(p);
}

uint32_t rs_stage_pipeline_len(const rs_stage_pipeline *p) { return p ? p->n : 0; }

/* ---- running ---- */

static int run_fail(char *why, size_t why_bytes, int status, const stage *st, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
static int run_fail(char *why, size_t why_bytes, int status, const stage *st, const char *fmt,
                    ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(why, why_bytes, "%s: %s", st->label, msg);
    return -status;
}

#define FAIL_INPUT(...) run_fail(why, why_bytes, RS_E_INVALID_INPUT, st, __VA_ARGS__)

static void *alloc_out(rs_stage_arena *a, size_t bytes) {
    return rs_stage_arena_alloc(a, bytes ? bytes : 1);
}

#define ALLOC_OR_FAIL(ptr, bytes)                                                               \
    do {                                                                                       \
        (ptr) = alloc_out(arena, (bytes));                                                     \
        if (!(ptr))                                                                            \
            return run_fail(why, why_bytes, RS_E_OVERLOADED, st,                               \
                            "this batch needs %zu more bytes than the stage arena's %zu",      \
                            (size_t)(bytes), arena->cap_bytes);                                \
    } while (0)

/* Elements of t, checking its dims and (fixed dtypes) its byte length. */
static int64_t elements_of(const rs_tensor_view *t) {
    int64_t n = rs_tensor_elements(t);
    if (n < 0) return -1;
    size_t es = rs_dtype_size(t->dtype);
    if (es && (uint64_t)n * es != t->byte_len) return -1;
    return n;
}

static rs_str name_of(const char *s) { return rs_str_c(s); }

/* Appends or replaces (same name) a tensor in io. */
static int put_tensor(rs_tensor_list *io, const rs_tensor_view *t) {
    for (uint32_t i = 0; i < io->count; i++) {
        if (io->t[i].name.len == t->name.len &&
            memcmp(io->t[i].name.ptr, t->name.ptr, t->name.len) == 0) {
            io->t[i] = *t;
            return 0;
        }
    }
    if (io->count >= RS_MAX_TENSORS) return -1;
    io->t[io->count++] = *t;
    return 0;
}

static int run_tokenize(const stage *st, const rs_tensor_view *in, rs_tensor_view *out,
                        rs_stage_arena *arena, char *why, size_t why_bytes) {
    if (in->dtype != RS_DT_BYTES)
        return FAIL_INPUT("input '%.*s' is %s, needs BYTES", (int)in->name.len, in->name.ptr,
                          rs_dtype_name(in->dtype));
    if (!(in->rank == 1 || (in->rank == 2 && in->dims[1] == 1)))
        return FAIL_INPUT("input '%.*s' needs shape [batch] or [batch, 1]", (int)in->name.len,
                          in->name.ptr);
    int64_t rows = in->dims[0];
    if (rows < 0) return FAIL_INPUT("bad batch dim");
    size_t bytes = (size_t)rows * st->max_tokens * sizeof(int64_t);
    int64_t *ids;
    ALLOC_OR_FAIL(ids, bytes);
    const uint8_t *p = in->data, *end = in->data + in->byte_len;
    for (int64_t r = 0; r < rows; r++) {
        uint32_t len;
        if ((size_t)(end - p) < 4) return FAIL_INPUT("BYTES element %lld truncated", (long long)r);
        memcpy(&len, p, 4);
        p += 4;
        if ((size_t)(end - p) < len)
            return FAIL_INPUT("BYTES element %lld truncated", (long long)r);
        rs_stage_tokenize(&st->vocab, (const char *)p, len, st->lowercase, st->unk_id,
                          st->pad_id, ids + (size_t)r * st->max_tokens, st->max_tokens);
        p += len;
    }
    out->dtype = RS_DT_INT64;
    out->rank = 2;
    out->dims[0] = rows;
    out->dims[1] = st->max_tokens;
    out->data = (const uint8_t *)ids;
    out->byte_len = bytes;
    return 0;
}

/* Last-dim geometry of an FP32 tensor of rank >= 2 (softmax, argmax, topk). */
static int rows_cols(const stage *st, const rs_tensor_view *in, size_t *rows, size_t *cols,
                     char *why, size_t why_bytes) {
    if (in->dtype != RS_DT_FP32)
        return FAIL_INPUT("input '%.*s' is %s, needs FP32", (int)in->name.len, in->name.ptr,
                          rs_dtype_name(in->dtype));
    if (in->rank < 2)
        return FAIL_INPUT("input '%.*s' has rank %u, needs [batch, ..., classes]",
                          (int)in->name.len, in->name.ptr, in->rank);
    int64_t n = elements_of(in);
    if (n < 0) return FAIL_INPUT("input '%.*s': dims do not match its bytes", (int)in->name.len, in->name.ptr);
    int64_t c = in->dims[in->rank - 1];
    if (c <= 0) return FAIL_INPUT("input '%.*s' has an empty last dim", (int)in->name.len, in->name.ptr);
    *cols = (size_t)c;
    *rows = (size_t)(n / c);
    return 0;
}

static int run_stage(const stage *st, rs_tensor_list *io, rs_stage_arena *arena, char *why,
                     size_t why_bytes) {
    uint32_t idx = 0;
    if (st->input[0]) {
        const rs_tensor_view *f = rs_tensor_find(io, st->input, strlen(st->input));
        if (!f) return FAIL_INPUT("no tensor named '%s'", st->input);
        idx = (uint32_t)(f - io->t);
    } else if (io->count == 0) {
        return FAIL_INPUT("no input tensor");
    }
    const rs_tensor_view in = io->t[idx];
    if (in.rank < 1) return FAIL_INPUT("input '%.*s' has no batch dim", (int)in.name.len, in.name.ptr);
    rs_tensor_view out = in;
    if (st->output[0] && !kinds[st->kind].derives) out.name = name_of(st->output);
    size_t rows, cols;
    int64_t n;
    switch (st->kind) {
    case K_NORMALIZE:
    case K_CAST: {
        if (!rs_stage_numeric(in.dtype))
            return FAIL_INPUT("input '%.*s' is %s, needs a numeric dtype", (int)in.name.len,
                              in.name.ptr, rs_dtype_name(in.dtype));
        if ((n = elements_of(&in)) < 0)
            return FAIL_INPUT("input '%.*s': dims do not match its bytes", (int)in.name.len, in.name.ptr);
        rs_dtype to = st->kind == K_CAST ? st->to : RS_DT_FP32;
        if (st->kind == K_CAST && to == in.dtype) break; /* a view: nothing to convert */
        size_t bytes = (size_t)n * rs_dtype_size(to);
        uint8_t *buf;
        ALLOC_OR_FAIL(buf, bytes);
        if (st->kind == K_CAST)
            rs_stage_cast(in.dtype, in.data, to, buf, (size_t)n);
        else
            rs_stage_normalize(in.dtype, in.data, (size_t)n, st->scale, st->offset, (float *)buf);
        out.dtype = to;
        out.data = buf;
        out.byte_len = bytes;
        break;
    }
    case K_RESHAPE: {
        if ((n = elements_of(&in)) < 0 && in.dtype != RS_DT_BYTES)
            return FAIL_INPUT("input '%.*s': dims do not match its bytes", (int)in.name.len, in.name.ptr);
        n = rs_tensor_elements(&in);
        int64_t row = 1;
        for (uint32_t i = 1; i < st->rank; i++) row *= st->dims[i];
        int64_t have = in.dims[0] > 0 ? n / in.dims[0] : 0;
        if (in.dims[0] <= 0 || have != row)
            return FAIL_INPUT("input '%.*s' has %lld elements per row, shape needs %lld",
                              (int)in.name.len, in.name.ptr, (long long)have, (long long)row);
        out.rank = st->rank;
        out.dims[0] = in.dims[0];
        for (uint32_t i = 1; i < st->rank; i++) out.dims[i] = st->dims[i];
        break;
    }
    case K_TOKENIZE: {
        int rc = run_tokenize(st, &in, &out, arena, why, why_bytes);
        if (rc != 0) return rc;
        break;
    }
    case K_SOFTMAX: {
        int rc = rows_cols(st, &in, &rows, &cols, why, why_bytes);
        if (rc != 0) return rc;
        float *buf;
        ALLOC_OR_FAIL(buf, rows * cols * sizeof(float));
        rs_stage_softmax((const float *)in.data, rows, cols, buf);
        out.data = (const uint8_t *)buf;
        break;
    }
    case K_ARGMAX: {
        int rc = rows_cols(st, &in, &rows, &cols, why, why_bytes);
        if (rc != 0) return rc;
        int64_t *ids;
        ALLOC_OR_FAIL(ids, rows * sizeof(int64_t));
        rs_stage_argmax((const float *)in.data, rows, cols, ids);
        rs_tensor_view t = {.name = name_of(st->output), .dtype = RS_DT_INT64, .rank = in.rank - 1};
        memcpy(t.dims, in.dims, sizeof(int64_t) * t.rank);
        t.data = (const uint8_t *)ids;
        t.byte_len = rows * sizeof(int64_t);
        if (put_tensor(io, &t) != 0) return FAIL_INPUT("more than %d tensors", RS_MAX_TENSORS);
        return 0;
    }
    case K_TOPK: {
        int rc = rows_cols(st, &in, &rows, &cols, why, why_bytes);
        if (rc != 0) return rc;
        if (st->k > cols)
            return FAIL_INPUT("k=%u but input '%.*s' has %zu classes", st->k, (int)in.name.len,
                              in.name.ptr, cols);
        if (st->has_labels && st->labels.count < cols)
            return FAIL_INPUT("the labels file has %u labels, input '%.*s' has %zu classes",
                              st->labels.count, (int)in.name.len, in.name.ptr, cols);
        float *scores;
        int64_t *ids;
        ALLOC_OR_FAIL(scores, rows * st->k * sizeof(float));
        ALLOC_OR_FAIL(ids, rows * st->k * sizeof(int64_t));
        rs_stage_topk((const float *)in.data, rows, cols, st->k, scores, ids);
        rs_tensor_view t = {.dtype = RS_DT_FP32, .rank = in.rank};
        memcpy(t.dims, in.dims, sizeof(int64_t) * in.rank);
        t.dims[in.rank - 1] = st->k;
        t.name = name_of(st->output);
        t.data = (const uint8_t *)scores;
        t.byte_len = rows * st->k * sizeof(float);
        int bad = put_tensor(io, &t);
        t.name = name_of(st->out_ids);
        t.dtype = RS_DT_INT64;
        t.data = (const uint8_t *)ids;
        t.byte_len = rows * st->k * sizeof(int64_t);
        bad |= put_tensor(io, &t);
        if (st->has_labels) {
            size_t bytes = 0;
            for (size_t i = 0; i < rows * st->k; i++) bytes += 4 + st->labels.lens[ids[i]];
            uint8_t *lb;
            ALLOC_OR_FAIL(lb, bytes);
            uint8_t *w = lb;
            for (size_t i = 0; i < rows * st->k; i++) {
                uint32_t len = st->labels.lens[ids[i]];
                memcpy(w, &len, 4);
                memcpy(w + 4, st->labels.blob + st->labels.offsets[ids[i]], len);
                w += 4 + len;
            }
            t.name = name_of(st->out_labels);
            t.dtype = RS_DT_BYTES;
            t.data = lb;
            t.byte_len = bytes;
            bad |= put_tensor(io, &t);
        }
        if (bad) return FAIL_INPUT("more than %d tensors", RS_MAX_TENSORS);
        return 0;
    }
    default: RS_ASSERT(!"unknown stage kind");
    }
    io->t[idx] = out;
    return 0;
}

int rs_stage_pipeline_run(const rs_stage_pipeline *p, rs_tensor_list *io, rs_stage_arena *arena,
                          char *why, size_t why_bytes) {
    for (uint32_t i = 0; p && i < p->n; i++) {
        int rc = run_stage(&p->st[i], io, arena, why, why_bytes);
        if (rc != 0) return rc;
    }
    return 0;
}

/* kserve.c — KServe v2 infer request JSON (+ binary extension) -> tensors.
 *
 * json-c parses the header; this file walks the tree once per input,
 * converting `data` (flat or nested) straight into the caller's arena in the
 * input's datatype, and checks every element against the shape and the
 * datatype's range so that a bad request gets one sentence naming the input
 * and the element. */
#include "engine/kserve/kserve.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/log.h"
#include "engine/kserve/kserve_internal.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_setup(void) {
    /* FP32 needs 9 significant digits to round-trip; FP64 outputs are
     * rendered with their own 17-digit text (kserve_render.c). */
    json_c_set_serialization_double_format("%.9g", JSON_C_OPTION_GLOBAL);
}

void rs_kserve_global_init(void) {
    pthread_once(&global_once, global_setup);
}

/* ---- arena ------------------------------------------------------------- */

static void *arena_take(rs_kserve_arena *a, size_t bytes, size_t align, rs_err *err) {
    size_t at = (a->used + align - 1) & ~(align - 1);
    if (at > a->cap || bytes > a->cap - at) {
        rs_err_set(err, "request arena full: tensors need more than %zu bytes", a->cap);
        return NULL;
    }
    a->used = at + bytes;
    return a->base + at;
}

/* ---- small conversions ---------------------------------------------------- */

uint16_t rs_kserve_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into exp: correct */
    return (uint16_t)h;
}

float rs_kserve_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u))
                mant <<= 1, exp--;
            x = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t rs_kserve_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float rs_kserve_bf16_to_f32(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---- data walk ------------------------------------------------------------ */

typedef struct walk {
    const char *input; /* name, for messages */
    rs_dtype dt;
    uint8_t *dst;     /* fixed-size: count * size bytes; BYTES: NULL on the sizing pass */
    int64_t expected; /* elements the shape needs */
    int64_t n;        /* leaves seen */
    uint64_t bytes;   /* BYTES: bytes the elements take (4 + len each) */
    rs_err *err;
} walk;

static int elem_fail(walk *w, const char *what) {
    rs_err_set(w->err, "input '%s': data[%lld] %s", w->input, (long long)w->n, what);
    return -1;
}

static int int_range(walk *w, json_object *v, int64_t lo, uint64_t hi, uint64_t *out_u,
                     int64_t *out_s) {
    if (json_object_get_type(v) != json_type_int) return elem_fail(w, "is not an integer");
    errno = 0;
    int64_t s = json_object_get_int64(v);
    if (s < 0) {
        if (s < lo) goto range;
        *out_s = s;
        *out_u = 0;
        return 1; /* negative */
    }
    uint64_t u = json_object_get_uint64(v);
    if (u > hi) goto range;
    *out_u = u;
    *out_s = (int64_t)u;
    return 0;
range:
    rs_err_set(w->err, "input '%s': data[%lld] = %s is out of range for %s", w->input,
               (long long)w->n, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
               rs_dtype_name(w->dt));
    return -1;
}

/* One leaf value: checks it and writes element w->n. */
static int leaf(walk *w, json_object *v) {
    bool write = w->dst != NULL && w->n < w->expected;
    size_t sz = rs_dtype_size(w->dt);
    uint8_t *p = write ? w->dst + (size_t)w->n * sz : NULL;
    json_type t = json_object_get_type(v);
    switch (w->dt) {
    case RS_DT_BOOL:
        if (t != json_type_boolean) return elem_fail(w, "is not a boolean");
        if (write) *p = json_object_get_boolean(v) ? 1 : 0;
        break;
    case RS_DT_BYTES: {
        if (t != json_type_string) return elem_fail(w, "is not a string");
        uint32_t len = (uint32_t)json_object_get_string_len(v);
        if (w->dst) {
            uint8_t *q = w->dst + w->bytes;
            memcpy(q, &len, 4); /* little-endian hosts only (x86-64, arm64) */
            memcpy(q + 4, json_object_get_string(v), len);
        }
        w->bytes += 4ull + len;
        break;
    }
    case RS_DT_FP16:
    case RS_DT_BF16:
    case RS_DT_FP32:
    case RS_DT_FP64: {
        if (t != json_type_double && t != json_type_int) return elem_fail(w, "is not a number");
        double d = json_object_get_double(v);
        if (w->dt != RS_DT_FP64 && isfinite(d) &&
            fabs(d) > (w->dt == RS_DT_FP16 ? 65504.0 : 3.4028234663852886e38)) {
            rs_err_set(w->err, "input '%s': data[%lld] = %g is out of range for %s", w->input,
                       (long long)w->n, d, rs_dtype_name(w->dt));
            return -1;
        }
        if (!write) break;
        if (w->dt == RS_DT_FP64) {
            memcpy(p, &d, 8);
        } else if (w->dt == RS_DT_FP32) {
            float f = (float)d;
            memcpy(p, &f, 4);
        } else {
            uint16_t h = w->dt == RS_DT_FP16 ? rs_kserve_f32_to_f16((float)d)
                                             : rs_kserve_f32_to_bf16((float)d);
            memcpy(p, &h, 2);
        }
        break;
    }
    default: { /* integers */
        static const struct {
            int64_t lo;
            uint64_t hi;
        } lim[RS_DT_COUNT_] = {
            [RS_DT_UINT8] = {0, UINT8_MAX},         [RS_DT_UINT16] = {0, UINT16_MAX},
            [RS_DT_UINT32] = {0, UINT32_MAX},       [RS_DT_UINT64] = {0, UINT64_MAX},
            [RS_DT_INT8] = {INT8_MIN, INT8_MAX},    [RS_DT_INT16] = {INT16_MIN, INT16_MAX},
            [RS_DT_INT32] = {INT32_MIN, INT32_MAX}, [RS_DT_INT64] = {INT64_MIN, INT64_MAX},
        };
        uint64_t u;
        int64_t s;
        if (int_range(w, v, lim[w->dt].lo, lim[w->dt].hi, &u, &s) < 0) return -1;
        if (!write) break;
        /* Little-endian: the low sz bytes of the two's complement value. */
        uint64_t bits = (uint64_t)s;
        memcpy(p, &bits, sz);
        break;
    }
    }
    w->n++;
    return 0;
}

static int walk_data(walk *w, json_object *v, int depth) {
    if (json_object_get_type(v) != json_type_array) return leaf(w, v);
    if (depth > RS_MAX_RANK) {
        rs_err_set(w->err, "input '%s': data is nested deeper than %d levels", w->input,
                   RS_MAX_RANK);
        return -1;
    }
    size_t n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++)
        if (walk_data(w, json_object_array_get_idx(v, i), depth + 1) < 0) return -1;
    return 0;
}

/* Nested data must follow the shape level by level: an array of dims[0]
 * arrays of dims[1] ... of dims[rank-1] values. Flat data (one array of
 * values) is checked by count only. */
static bool nesting_ok(json_object *v, const rs_tensor_view *t, uint32_t depth) {
    bool is_array = json_object_get_type(v) == json_type_array;
    if (depth == t->rank) return !is_array;
    if (!is_array || (int64_t)json_object_array_length(v) != t->dims[depth]) return false;
    for (size_t i = 0; i < json_object_array_length(v); i++)
        if (!nesting_ok(json_object_array_get_idx(v, i), t, depth + 1)) return false;
    return true;
}

static bool is_nested(json_object *data) {
    if (json_object_get_type(data) != json_type_array) return false;
    for (size_t i = 0; i < json_object_array_length(data); i++)
        if (json_object_get_type(json_object_array_get_idx(data, i)) == json_type_array)
            return true;
    return false;
}

/* ---- request -------------------------------------------------------------- */

static const char *shape_text(const rs_tensor_view *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < t->rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int parse_params(json_object *p, rs_kserve_params *out, rs_err *err) {
    if (!p) return 0;
    if (json_object_get_type(p) != json_type_object) {
        rs_err_set(err, "'parameters' must be an object");
        return -1;
    }
    json_object *v;
    if ((v = get(p, "priority"))) {
        if (json_object_get_type(v) != json_type_int || json_object_get_int64(v) < 0 ||
            json_object_get_int64(v) > UINT32_MAX) {
            rs_err_set(err, "parameter 'priority' must be an integer 0..4294967295");
            return -1;
        }
        out->has_priority = true;
        out->priority = (uint32_t)json_object_get_int64(v);
    }
    if ((v = get(p, "timeout"))) {
        if (json_object_get_type(v) != json_type_int || json_object_get_int64(v) < 0) {
            rs_err_set(err, "parameter 'timeout' must be a non-negative integer (microseconds)");
            return -1;
        }
        out->has_timeout = true;
        out->timeout_us = (uint64_t)json_object_get_int64(v);
    }
    if ((v = get(p, "binary_data_output"))) {
        if (json_object_get_type(v) != json_type_boolean) {
            rs_err_set(err, "parameter 'binary_data_output' must be true or false");
            return -1;
        }
        out->binary_data_output = json_object_get_boolean(v);
    }
    if ((v = get(p, "async"))) {
        if (json_object_get_type(v) != json_type_boolean) {
            rs_err_set(err, "parameter 'async' must be true or false");
            return -1;
        }
        out->async = json_object_get_boolean(v);
    }
    return 0;
}

typedef struct binary_cursor {
    const uint8_t *p; /* after the JSON header */
    uint64_t left;
    uint64_t needed; /* sum of binary_data_size so far */
} binary_cursor;

static int parse_input(json_object *in, uint32_t idx, rs_tensor_list *list, binary_cursor *bin,
                       rs_kserve_arena *arena, rs_err *err) {
    if (json_object_get_type(in) != json_type_object) {
        rs_err_set(err, "inputs[%u] must be an object", idx);
        return -1;
    }
    json_object *jn = get(in, "name");
    if (!jn || json_object_get_type(jn) != json_type_string) {
        rs_err_set(err, "inputs[%u]: 'name' %s", idx, jn ? "must be a string" : "is missing");
        return -1;
    }
    const char *name = json_object_get_string(jn);
    size_t name_len = (size_t)json_object_get_string_len(jn);
    if (name_len == 0 || name_len > RS_MAX_NAME_BYTES) {
        rs_err_set(err, "inputs[%u]: name must be 1..%d bytes", idx, RS_MAX_NAME_BYTES);
        return -1;
    }
    if (rs_tensor_find(list, name, name_len)) {
        rs_err_set(err, "input '%s' appears more than once", name);
        return -1;
    }
    rs_tensor_view *t = &list->t[list->count];
    memset(t, 0, sizeof(*t));
    char *name_copy = arena_take(arena, name_len + 1, 1, err);
    if (!name_copy) return -1;
    memcpy(name_copy, name, name_len + 1);
    t->name = (rs_str){name_copy, (uint32_t)name_len};

    json_object *jdt = get(in, "datatype");
    if (!jdt || json_object_get_type(jdt) != json_type_string) {
        rs_err_set(err, "input '%s': 'datatype' %s", name, jdt ? "must be a string" : "is missing");
        return -1;
    }
    t->dtype = rs_dtype_parse(json_object_get_string(jdt), (size_t)json_object_get_string_len(jdt));
    if (t->dtype == RS_DT_INVALID) {
        rs_err_set(err, "input '%s': datatype '%s' is not a KServe v2 datatype", name,
                   json_object_get_string(jdt));
        return -1;
    }

    json_object *js = get(in, "shape");
    if (!js) {
        rs_err_set(err, "input '%s': 'shape' is missing", name);
        return -1;
    }
    if (json_object_get_type(js) != json_type_array) {
        rs_err_set(err, "input '%s': 'shape' must be an array of non-negative integers", name);
        return -1;
    }
    size_t rank = json_object_array_length(js);
    if (rank > RS_MAX_RANK) {
        rs_err_set(err, "input '%s': shape has %zu dimensions (at most %d)", name, rank,
                   RS_MAX_RANK);
        return -1;
    }
    t->rank = (uint32_t)rank;
    for (size_t d = 0; d < rank; d++) {
        json_object *jd = json_object_array_get_idx(js, d);
        if (json_object_get_type(jd) != json_type_int || json_object_get_int64(jd) < 0) {
            rs_err_set(err, "input '%s': 'shape' must be an array of non-negative integers", name);
            return -1;
        }
        t->dims[d] = json_object_get_int64(jd);
    }
    char shape_buf[160];
    int64_t count = rs_tensor_elements(t);
    if (count < 0 || count > (int64_t)(arena->cap)) {
        rs_err_set(err, "input '%s': shape %s is too large", name,
                   shape_text(t, shape_buf, sizeof(shape_buf)));
        return -1;
    }

    json_object *jparams = get(in, "parameters"), *jbds = NULL;
    if (jparams && json_object_get_type(jparams) != json_type_object) {
        rs_err_set(err, "input '%s': 'parameters' must be an object", name);
        return -1;
    }
    if (jparams) jbds = get(jparams, "binary_data_size");
    json_object *jdata = get(in, "data");
    size_t esz = rs_dtype_size(t->dtype);

    if (jbds) {
        if (json_object_get_type(jbds) != json_type_int || json_object_get_int64(jbds) < 0) {
            rs_err_set(err, "input '%s': binary_data_size must be a non-negative integer", name);
            return -1;
        }
        if (jdata) {
            rs_err_set(err, "input '%s': has both 'data' and binary_data_size", name);
            return -1;
        }
        uint64_t size = (uint64_t)json_object_get_int64(jbds);
        bin->needed += size;
        if (size > bin->left) {
            rs_err_set(err,
                       "input '%s': binary_data_size %llu but only %llu binary bytes remain "
                       "after the JSON header",
                       name, (unsigned long long)size, (unsigned long long)bin->left);
            return -1;
        }
        if (esz && size != (uint64_t)count * esz) {
            rs_err_set(err, "input '%s': binary_data_size %llu but shape %s of %s needs %llu bytes",
                       name, (unsigned long long)size, shape_text(t, shape_buf, sizeof(shape_buf)),
                       rs_dtype_name(t->dtype), (unsigned long long)count * esz);
            return -1;
        }
        uint8_t *dst = arena_take(arena, size ? size : 1, 8, err);
        if (!dst) return -1;
        memcpy(dst, bin->p, size);
        bin->p += size;
        bin->left -= size;
        t->data = dst;
        t->byte_len = size;
        char why[RS_ERR_MSG_BYTES];
        if (rs_tensor_check(t, why, sizeof(why)) != 0) {
            rs_err_set(err, "input '%s': %s", name, why);
            return -1;
        }
        return 0;
    }
    if (!jdata) {
        rs_err_set(err, "input '%s': 'data' is missing", name);
        return -1;
    }

    if (is_nested(jdata) && !nesting_ok(jdata, t, 0)) {
        rs_err_set(err,
                   "input '%s': nested data does not follow shape %s (give one array per "
                   "dimension, or flat data)",
                   name, shape_text(t, shape_buf, sizeof(shape_buf)));
        return -1;
    }
    walk w = {.input = name, .dt = t->dtype, .expected = count, .err = err};
    if (t->dtype == RS_DT_BYTES) { /* sizing pass, then the writing pass */
        if (walk_data(&w, jdata, 0) < 0) return -1;
    }
    if (t->dtype == RS_DT_BYTES && w.n != count) goto count_mismatch;
    uint64_t bytes = t->dtype == RS_DT_BYTES ? w.bytes : (uint64_t)count * esz;
    uint8_t *dst = arena_take(arena, bytes ? bytes : 1, 8, err);
    if (!dst) return -1;
    w.dst = dst;
    w.n = 0;
    w.bytes = 0;
    if (walk_data(&w, jdata, 0) < 0) return -1;
    if (w.n != count) goto count_mismatch;
    t->data = dst;
    t->byte_len = bytes;
    return 0;
count_mismatch:
    rs_err_set(err, "input '%s': shape %s needs %lld elements, data has %lld", name,
               shape_text(t, shape_buf, sizeof(shape_buf)), (long long)count, (long long)w.n);
    return -1;
}

static int parse_outputs(json_object *jo, rs_kserve_request *out, rs_err *err) {
    if (!jo) return 0;
    if (json_object_get_type(jo) != json_type_array) {
        rs_err_set(err, "'outputs' must be an array");
        return -1;
    }
    size_t n = json_object_array_length(jo);
    if (n > RS_MAX_TENSORS) {
        rs_err_set(err, "too many outputs requested: %zu (at most %d)", n, RS_MAX_TENSORS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(jo, i), *jn;
        if (json_object_get_type(o) != json_type_object || !(jn = get(o, "name")) ||
            json_object_get_type(jn) != json_type_string) {
            rs_err_set(err, "outputs[%zu] must be an object with a string 'name'", i);
            return -1;
        }
        size_t len = (size_t)json_object_get_string_len(jn);
        if (len == 0 || len > RS_MAX_NAME_BYTES) {
            rs_err_set(err, "outputs[%zu]: name must be 1..%d bytes", i, RS_MAX_NAME_BYTES);
            return -1;
        }
        rs_kserve_output_req *r = &out->outputs[i];
        memcpy(r->name, json_object_get_string(jn), len + 1);
        r->binary_data = false;
        json_object *p = get(o, "parameters"), *b;
        if (p && (b = get(p, "binary_data"))) {
            if (json_object_get_type(b) != json_type_boolean) {
                rs_err_set(err, "output '%s': parameter 'binary_data' must be true or false",
                           r->name);
                return -1;
            }
            r->binary_data = json_object_get_boolean(b);
        }
        out->output_count = (uint32_t)i + 1;
    }
    return 0;
}

int rs_kserve_header_length(const char *value, size_t value_len, uint64_t body_len,
                            size_t *json_len, rs_err *err) {
    /* optional whitespace around a header value (RFC 9110 OWS) */
    while (value_len && (*value == ' ' || *value == '\t'))
        value++, value_len--;
    while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    uint64_t v = 0;
    bool ok = value_len > 0 && value_len <= 19;
    for (size_t i = 0; ok && i < value_len; i++) {
        if (value[i] < '0' || value[i] > '9')
            ok = false;
        else
            v = v * 10 + (uint64_t)(value[i] - '0');
    }
    if (!ok || v > body_len) {
        rs_err_set(err,
                   "Inference-Header-Content-Length: '%.*s' must be a number of bytes "
                   "<= the body length (%llu)",
                   (int)(value_len > 40 ? 40 : value_len), value, (unsigned long long)body_len);
        return -1;
    }
    *json_len = (size_t)v;
    return 0;
}

int rs_kserve_parse_infer(const uint8_t *body, size_t len, size_t json_len, rs_kserve_request *out,
                          rs_kserve_arena *arena, rs_err *err) {
    RS_ASSERT(json_len <= len);
    memset(out, 0, sizeof(*out));
    if (json_len == 0) {
        rs_err_set(err, "request body is empty: expected a JSON object");
        return -1;
    }
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        rs_err_set(err, "out of memory parsing JSON");
        return -1;
    }
    json_object *root = json_tokener_parse_ex(tok, (const char *)body, (int)json_len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int rc = -1;
    if (!root) {
        if (jerr == json_tokener_continue)
            rs_err_set(err, "malformed JSON: unexpected end of input after %zu bytes", json_len);
        else
            rs_err_set(err, "malformed JSON at byte %zu: %s", end, json_tokener_error_desc(jerr));
        return -1;
    }
    for (size_t i = end; i < json_len; i++) {
        char c = (char)body[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            rs_err_set(err, "malformed JSON at byte %zu: unexpected text after the JSON value", i);
            goto out;
        }
    }
    if (json_object_get_type(root) != json_type_object) {
        rs_err_set(err, "request body must be a JSON object");
        goto out;
    }
    json_object *v;
    if ((v = get(root, "id"))) {
        if (json_object_get_type(v) != json_type_string) {
            rs_err_set(err, "'id' must be a string");
            goto out;
        }
        size_t id_len = (size_t)json_object_get_string_len(v);
        if (id_len >= RS_KSERVE_ID_BYTES) {
            rs_err_set(err, "'id' is %zu bytes (at most %d)", id_len, RS_KSERVE_ID_BYTES - 1);
            goto out;
        }
        memcpy(out->id, json_object_get_string(v), id_len + 1);
        out->has_id = true;
    }
    if (parse_params(get(root, "parameters"), &out->params, err) < 0) goto out;
    json_object *inputs = get(root, "inputs");
    if (!inputs) {
        rs_err_set(err, "'inputs' is missing");
        goto out;
    }
    if (json_object_get_type(inputs) != json_type_array || json_object_array_length(inputs) == 0) {
        rs_err_set(err, "'inputs' must be a non-empty array");
        goto out;
    }
    size_t n = json_object_array_length(inputs);
    if (n > RS_MAX_TENSORS) {
        rs_err_set(err, "too many inputs: %zu (at most %d)", n, RS_MAX_TENSORS);
        goto out;
    }
    binary_cursor bin = {.p = body + json_len, .left = len - json_len};
    for (size_t i = 0; i < n; i++) {
        if (parse_input(json_object_array_get_idx(inputs, i), (uint32_t)i, &out->inputs, &bin,
                        arena, err) < 0)
            goto out;
        out->inputs.count++;
    }
    if (bin.left != 0) {
        rs_err_set(err,
                   "binary data: %llu bytes after the JSON header but the inputs' "
                   "binary_data_size add up to %llu",
                   (unsigned long long)(len - json_len), (unsigned long long)bin.needed);
        goto out;
    }
    if (parse_outputs(get(root, "outputs"), out, err) < 0) goto out;
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

/* stage_ops.c — element conversions, normalize, softmax, argmax, topk.
 *
 * Integers are carried through __int128 so that every integer -> integer
 * cast is exact or saturates, never wraps; floats go through double. */
#include "workers/stages/stage_ops.h"

#include <math.h>
#include <string.h>

bool rs_stage_numeric(rs_dtype dt) {
    switch (dt) {
    case RS_DT_BOOL:
    case RS_DT_UINT8:
    case RS_DT_UINT16:
    case RS_DT_UINT32:
    case RS_DT_UINT64:
    case RS_DT_INT8:
    case RS_DT_INT16:
    case RS_DT_INT32:
    case RS_DT_INT64:
    case RS_DT_FP32:
    case RS_DT_FP64: return true;
    default: return false;
    }
}

static bool is_float(rs_dtype dt) { return dt == RS_DT_FP32 || dt == RS_DT_FP64; }

/* memcpy loads: inputs may sit at any alignment inside a receive buffer. */
#define LOAD(T, p, i) ({ T v_; memcpy(&v_, (const uint8_t *)(p) + (i) * sizeof(T), sizeof(T)); v_; })
#define STORE(T, p, i, v) do { T v_ = (v); memcpy((uint8_t *)(p) + (i) * sizeof(T), &v_, sizeof(T)); } while (0)

static __int128 load_int(rs_dtype dt, const void *p, size_t i) {
    switch (dt) {
    case RS_DT_BOOL: return LOAD(uint8_t, p, i) != 0;
    case RS_DT_UINT8: return LOAD(uint8_t, p, i);
    case RS_DT_UINT16: return LOAD(uint16_t, p, i);
    case RS_DT_UINT32: return LOAD(uint32_t, p, i);
    case RS_DT_UINT64: return LOAD(uint64_t, p, i);
    case RS_DT_INT8: return LOAD(int8_t, p, i);
    case RS_DT_INT16: return LOAD(int16_t, p, i);
    case RS_DT_INT32: return LOAD(int32_t, p, i);
    case RS_DT_INT64: return LOAD(int64_t, p, i);
    default: return 0;
    }
}

static double load_double(rs_dtype dt, const void *p, size_t i) {
    if (dt == RS_DT_FP32) return LOAD(float, p, i);
    if (dt == RS_DT_FP64) return LOAD(double, p, i);
    return (double)load_int(dt, p, i);
}

static void int_range(rs_dtype dt, __int128 *lo, __int128 *hi) {
    switch (dt) {
    case RS_DT_BOOL: *lo = 0; *hi = 1; break;
    case RS_DT_UINT8: *lo = 0; *hi = UINT8_MAX; break;
    case RS_DT_UINT16: *lo = 0; *hi = UINT16_MAX; break;
    case RS_DT_UINT32: *lo = 0; *hi = UINT32_MAX; break;
    case RS_DT_UINT64: *lo = 0; *hi = UINT64_MAX; break;
    case RS_DT_INT8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case RS_DT_INT16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case RS_DT_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

static void store_int(rs_dtype dt, void *p, size_t i, __int128 v) {
    __int128 lo, hi;
    int_range(dt, &lo, &hi);
    if (dt == RS_DT_BOOL) v = v != 0;
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    switch (dt) {
    case RS_DT_BOOL:
    case RS_DT_UINT8: STORE(uint8_t, p, i, (uint8_t)v); break;
    case RS_DT_UINT16: STORE(uint16_t, p, i, (uint16_t)v); break;
    case RS_DT_UINT32: STORE(uint32_t, p, i, (uint32_t)v); break;
    case RS_DT_UINT64: STORE(uint64_t, p, i, (uint64_t)v); break;
    case RS_DT_INT8: STORE(int8_t, p, i, (int8_t)v); break;
    case RS_DT_INT16: STORE(int16_t, p, i, (int16_t)v); break;
    case RS_DT_INT32: STORE(int32_t, p, i, (int32_t)v); break;
    case RS_DT_INT64: STORE(int64_t, p, i, (int64_t)v); break;
    default: break;
    }
}

/* Float -> integer: NaN -> 0, truncation toward zero, saturation. */
static __int128 double_to_int(double d, rs_dtype to) {
    if (isnan(d)) return 0;
    if (to == RS_DT_BOOL) return d != 0.0;
    __int128 lo, hi;
    int_range(to, &lo, &hi);
    if (d <= (double)lo) return lo;
    if (d >= (double)hi) return hi;
    return (__int128)trunc(d);
}

void rs_stage_cast(rs_dtype from, const void *in, rs_dtype to, void *out, size_t n) {
    if (from == to) {
        memmove(out, in, n * rs_dtype_size(to));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (to == RS_DT_FP32) {
            STORE(float, out, i, (float)load_double(from, in, i));
        } else if (to == RS_DT_FP64) {
            STORE(double, out, i, load_double(from, in, i));
        } else if (is_float(from)) {
            store_int(to, out, i, double_to_int(load_double(from, in, i), to));
        } else {
            store_int(to, out, i, load_int(from, in, i));
        }
    }
}

void rs_stage_normalize(rs_dtype dt, const void *in, size_t n, float scale, float offset,
                        float *out) {
    if (dt == RS_DT_FP32) {
        for (size_t i = 0; i < n; i++) out[i] = LOAD(float, in, i) * scale + offset;
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = (float)load_double(dt, in, i) * scale + offset;
}

void rs_stage_softmax(const float *in, size_t rows, size_t cols, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * cols;
        float *y = out + r * cols;
        float max = x[0];
        for (size_t c = 1; c < cols; c++)
            if (x[c] > max) max = x[c];
        float sum = 0.0f;
        for (size_t c = 0; c < cols; c++) {
            y[c] = expf(x[c] - max);
            sum += y[c];
        }
        float inv = 1.0f / sum;
        for (size_t c = 0; c < cols; c++) y[c] *= inv;
    }
}

void rs_stage_argmax(const float *in, size_t rows, size_t cols, int64_t *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * cols;
        size_t best = 0;
        for (size_t c = 1; c < cols; c++)
            if (x[c] > x[best]) best = c;
        out[r] = (int64_t)best;
    }
}

/* Insertion into a sorted top-k list per row: O(cols * k), k is small. */
void rs_stage_topk(const float *in, size_t rows, size_t cols, size_t k, float *scores,
                   int64_t *ids) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * cols;
        float *s = scores + r * k;
        int64_t *d = ids + r * k;
        size_t have = 0;
        for (size_t c = 0; c < cols; c++) {
            float v = x[c];
            /* strictly greater: an equal later value ranks after earlier ones */
            size_t pos = have;
            while (pos > 0 && v > s[pos - 1]) pos--;
            if (pos >= k) continue;
            size_t last = have < k ? have : k - 1;
            for (size_t j = last; j > pos; j--) {
                s[j] = s[j - 1];
                d[j] = d[j - 1];
            }
            s[pos] = v;
            d[pos] = (int64_t)c;
            if (have < k) have++;
        }
    }
}

/* tensor.c — dtypes and checks on tensor views (io/tensor.h).
 *
 * Why here and not in the codec: HTTP/JSON, the batcher and the backends all
 * build tensor views and must agree with the wire on what a valid one is. */
#include "io/tensor.h"

#include <endian.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[RS_DT_COUNT_] = {
    [RS_DT_INVALID] = {"INVALID", 0}, [RS_DT_BOOL] = {"BOOL", 1},
    [RS_DT_UINT8] = {"UINT8", 1},     [RS_DT_UINT16] = {"UINT16", 2},
    [RS_DT_UINT32] = {"UINT32", 4},   [RS_DT_UINT64] = {"UINT64", 8},
    [RS_DT_INT8] = {"INT8", 1},       [RS_DT_INT16] = {"INT16", 2},
    [RS_DT_INT32] = {"INT32", 4},     [RS_DT_INT64] = {"INT64", 8},
    [RS_DT_FP16] = {"FP16", 2},       [RS_DT_FP32] = {"FP32", 4},
    [RS_DT_FP64] = {"FP64", 8},       [RS_DT_BYTES] = {"BYTES", 0},
    [RS_DT_BF16] = {"BF16", 2},
};

bool rs_dtype_valid(uint32_t wire_value) {
    return wire_value > RS_DT_INVALID && wire_value < RS_DT_COUNT_;
}

size_t rs_dtype_size(rs_dtype dt) {
    return rs_dtype_valid((uint32_t)dt) ? dtype_info[dt].size : 0;
}

const char *rs_dtype_name(rs_dtype dt) {
    return rs_dtype_valid((uint32_t)dt) ? dtype_info[dt].name : "INVALID";
}

rs_dtype rs_dtype_parse(const char *name, size_t len) {
    if (!name) return RS_DT_INVALID;
    for (int dt = RS_DT_INVALID + 1; dt < RS_DT_COUNT_; dt++) {
        const char *n = dtype_info[dt].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0) return (rs_dtype)dt;
    }
    return RS_DT_INVALID;
}

int64_t rs_tensor_elements(const rs_tensor_view *t) {
    if (t->rank > RS_MAX_RANK) return -1;
    int64_t n = 1;
    for (uint32_t i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return -1;
        if (__builtin_mul_overflow(n, t->dims[i], &n)) return -1;
    }
    return n;
}

/* "[2,3]" into out (always NUL-terminated). */
static void shape_str(const rs_tensor_view *t, char *out, size_t out_bytes) {
    size_t off = 0;
    off += (size_t)snprintf(out + off, out_bytes - off, "[");
    for (uint32_t i = 0; i < t->rank && i < RS_MAX_RANK && off < out_bytes; i++)
        off += (size_t)snprintf(out + off, out_bytes - off, i ? ",%lld" : "%lld",
                                (long long)t->dims[i]);
    if (off < out_bytes) snprintf(out + off, out_bytes - off, "]");
}

#define WHY(...)                                                  \
    do {                                                          \
        if (why && why_bytes) snprintf(why, why_bytes, __VA_ARGS__); \
    } while (0)

int rs_tensor_check(const rs_tensor_view *t, char *why, size_t why_bytes) {
    int nl = (int)(t->name.len > 200 ? 200 : t->name.len);
    const char *np = t->name.ptr ? t->name.ptr : "";
    if (!rs_dtype_valid((uint32_t)t->dtype)) {
        WHY("tensor '%.*s': unknown dtype %u", nl, np, (unsigned)t->dtype);
        return -1;
    }
    if (t->rank > RS_MAX_RANK) {
        WHY("tensor '%.*s': rank %u is over the limit of %d", nl, np, t->rank, RS_MAX_RANK);
        return -1;
    }
    char shape[160] = "";
    int64_t n = rs_tensor_elements(t);
    if (n < 0) {
        if (why) shape_str(t, shape, sizeof(shape));
        WHY("tensor '%.*s': shape %s has a negative dim or its element count overflows", nl,
            np, shape);
        return -1;
    }
    size_t esize = rs_dtype_size(t->dtype);
    if (esize) {
        uint64_t want;
        if (__builtin_mul_overflow((uint64_t)n, (uint64_t)esize, &want) || want != t->byte_len) {
            if (why) shape_str(t, shape, sizeof(shape));
            WHY("tensor '%.*s': shape %s has %lld %s elements = %llu bytes but its byte length "
                "is %llu",
                nl, np, shape, (long long)n, rs_dtype_name(t->dtype),
                (unsigned long long)((uint64_t)n * esize), (unsigned long long)t->byte_len);
            return -1;
        }
        return 0;
    }
    /* BYTES: n elements, each a u32 little-endian length + that many bytes,
     * tiling byte_len exactly. */
    uint64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        if (t->byte_len - off < 4) {
            WHY("tensor '%.*s': BYTES element %lld of %lld has no room for its 4-byte length "
                "(byte length %llu)",
                nl, np, (long long)i, (long long)n, (unsigned long long)t->byte_len);
            return -1;
        }
        uint32_t el;
        memcpy(&el, t->data + off, 4);
        el = le32toh(el);
        off += 4;
        if (t->byte_len - off < el) {
            WHY("tensor '%.*s': BYTES element %lld says %u bytes but only %llu remain", nl, np,
                (long long)i, el, (unsigned long long)(t->byte_len - off));
            return -1;
        }
        off += el;
    }
    if (off != t->byte_len) {
        if (why) shape_str(t, shape, sizeof(shape));
        WHY("tensor '%.*s': shape %s has %lld BYTES elements taking %llu bytes but its byte "
            "length is %llu",
            nl, np, shape, (long long)n, (unsigned long long)off,
            (unsigned long long)t->byte_len);
        return -1;
    }
    return 0;
}

const rs_tensor_view *rs_tensor_find(const rs_tensor_list *l, const char *name, size_t len) {
    for (uint32_t i = 0; i < l->count && i < RS_MAX_TENSORS; i++)
        if (l->t[i].name.len == len && memcmp(l->t[i].name.ptr, name, len) == 0) return &l->t[i];
    return NULL;
}

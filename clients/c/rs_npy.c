/* rs_npy.c — the strict .npy reader (format in rs_npy.h; NumPy's spec:
 * numpy/lib/format.py). */
#include "clients/c/rs_npy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

typedef struct npy_descr {
    const char *descr;
    rs_dtype dtype;
} npy_descr;

static const npy_descr npy_descrs[] = {
    {"|b1", RS_DT_BOOL},   {"|i1", RS_DT_INT8},  {"|u1", RS_DT_UINT8},  {"<i2", RS_DT_INT16},
    {"<i4", RS_DT_INT32},  {"<i8", RS_DT_INT64}, {"<u2", RS_DT_UINT16}, {"<u4", RS_DT_UINT32},
    {"<u8", RS_DT_UINT64}, {"<f2", RS_DT_FP16},  {"<f4", RS_DT_FP32},   {"<f8", RS_DT_FP64},
};

/* A cursor over the header text; errors give the column (0-based offset). */
typedef struct cur {
    const char *p, *start, *end;
    rs_err *err;
} cur;

static int bad(cur *c, const char *what) {
    rs_err_set(c->err, ".npy header: %s at column %td", what, c->p - c->start);
    return -1;
}

static void skip_ws(cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool eat(cur *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A Python string literal in ' or " quotes, no escapes (none occur in the
 * keys and descrs numpy writes). */
static int str_lit(cur *c, char *out, size_t out_bytes, const char *what) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad(c, what);
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n')
            return bad(c, "escapes and newlines in strings are not supported");
        if (n + 1 >= out_bytes) return bad(c, "string too long");
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return bad(c, "unterminated string");
    c->p++;
    out[n] = '\0';
    return 0;
}

static int parse_descr(cur *c, rs_npy *out) {
    skip_ws(c);
    if (c->p < c->end && *c->p == '[')
        return bad(c, "descr is a list: structured dtypes are not supported");
    char d[32];
    if (str_lit(c, d, sizeof(d), "descr must be a string such as '<f4'") != 0) return -1;
    for (size_t i = 0; i < sizeof(npy_descrs) / sizeof(npy_descrs[0]); i++) {
        if (strcmp(d, npy_descrs[i].descr) == 0) {
            out->dtype = npy_descrs[i].dtype;
            return 0;
        }
    }
    if (d[0] == '>')
        rs_err_set(c->err,
                   ".npy header: descr '%s' is big-endian: only little-endian data is supported "
                   "(convert with a.astype(a.dtype.newbyteorder('<')))",
                   d);
    else
        rs_err_set(c->err,
                   ".npy header: descr '%s' is not supported (supported: |b1 |i1 |u1 <i2 <i4 <i8 "
                   "<u2 <u4 <u8 <f2 <f4 <f8)",
                   d);
    return -1;
}

static int parse_bool(cur *c, bool *v) {
    skip_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *v = true;
        return 0;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *v = false;
        return 0;
    }
    return bad(c, "fortran_order must be True or False");
}

/* (), (n,), (n, m), (n, m,) ... of decimal integers >= 0. */
static int parse_shape(cur *c, rs_npy *out) {
    if (!eat(c, '(')) return bad(c, "shape must be a tuple such as (1, 64)");
    out->rank = 0;
    if (eat(c, ')')) return 0; /* a scalar */
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
            if (c->p < c->end && *c->p == '-') return bad(c, "shape dims must be >= 0");
            return bad(c, "shape must hold integers");
        }
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return bad(c, "shape dim too large");
            v = v * 10 + (*c->p++ - '0');
        }
        if (out->rank == RS_MAX_RANK) {
            rs_err_set(c->err, ".npy header: shape has more than %d dims", RS_MAX_RANK);
            return -1;
        }
        out->dims[out->rank++] = v;
        bool comma = eat(c, ',');
        if (eat(c, ')')) {
            if (out->rank == 1 && !comma)
                return bad(c, "a 1-dim shape needs its comma, as in (5,)");
            return 0;
        }
        if (!comma) return bad(c, "expected ',' or ')' in shape");
    }
}

static int parse_header(const char *text, size_t len, rs_npy *out, rs_err *err) {
    cur c = {.p = text, .start = text, .end = text + len, .err = err};
    if (len == 0 || text[len - 1] != '\n') return bad(&c, "does not end with a newline");
    c.end--; /* the newline */
    for (size_t i = 0; i + 1 < len; i++) {
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e) {
            c.p = text + i;
            return bad(&c, "non-printable or non-ASCII byte");
        }
    }
    bool seen_descr = false, seen_order = false, seen_shape = false;
    if (!eat(&c, '{')) return bad(&c, "expected '{'");
    for (;;) {
        if (eat(&c, '}')) break;
        char key[32];
        if (str_lit(&c, key, sizeof(key), "expected a quoted key") != 0) return -1;
        if (!eat(&c, ':')) return bad(&c, "expected ':' after a key");
        bool *seen;
        if (strcmp(key, "descr") == 0)
            seen = &seen_descr;
        else if (strcmp(key, "fortran_order") == 0)
            seen = &seen_order;
        else if (strcmp(key, "shape") == 0)
            seen = &seen_shape;
        else {
            rs_err_set(err, ".npy header: unknown key '%s' (expected descr, fortran_order, shape)",
                       key);
            return -1;
        }
        if (*seen) {
            rs_err_set(err, ".npy header: key '%s' appears twice", key);
            return -1;
        }
        *seen = true;
        if (seen == &seen_descr) {
            if (parse_descr(&c, out) != 0) return -1;
        } else if (seen == &seen_order) {
            bool fortran = false;
            if (parse_bool(&c, &fortran) != 0) return -1;
            if (fortran) {
                rs_err_set(err,
                           ".npy header: fortran_order is True: only C-order arrays are supported "
                           "(save np.ascontiguousarray(a))");
                return -1;
            }
        } else if (parse_shape(&c, out) != 0) {
            return -1;
        }
        if (eat(&c, '}')) break;
        if (!eat(&c, ',')) return bad(&c, "expected ',' or '}' after a value");
    }
    skip_ws(&c);
    if (c.p != c.end) return bad(&c, "unexpected text after the dict");
    if (!seen_descr || !seen_order || !seen_shape) {
        rs_err_set(err, ".npy header: key '%s' is missing",
                   !seen_descr   ? "descr"
                   : !seen_order ? "fortran_order"
                                 : "shape");
        return -1;
    }
    return 0;
}

int rs_npy_parse(const uint8_t *buf, size_t len, rs_npy *out, rs_err *err) {
    memset(out, 0, sizeof(*out));
    if (len < 10 || memcmp(buf, npy_magic, sizeof(npy_magic)) != 0) {
        rs_err_set(err, "not a .npy file: it does not start with the magic \\x93NUMPY");
        return -1;
    }
    out->major = buf[6];
    out->minor = buf[7];
    if (out->major < 1 || out->major > 3 || out->minor != 0) {
        rs_err_set(err, ".npy format version %u.%u is not supported (1.0, 2.0, 3.0 are)",
                   out->major, out->minor);
        return -1;
    }
    size_t prefix = out->major == 1 ? 10 : 12;
    if (len < prefix) {
        rs_err_set(err, ".npy file is truncated: %zu bytes, the preamble needs %zu", len, prefix);
        return -1;
    }
    size_t hlen = out->major == 1 ? (size_t)buf[8] | (size_t)buf[9] << 8
                                  : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
                                        (size_t)buf[11] << 24;
    if (hlen > len - prefix) {
        rs_err_set(err,
                   ".npy file is truncated: the header says %zu bytes, %zu follow the preamble",
                   hlen, len - prefix);
        return -1;
    }
    if (parse_header((const char *)buf + prefix, hlen, out, err) != 0) return -1;
    uint64_t n = 1;
    size_t esize = rs_dtype_size(out->dtype);
    for (uint32_t i = 0; i < out->rank; i++) {
        if (out->dims[i] != 0 && n > UINT64_MAX / (uint64_t)out->dims[i]) {
            rs_err_set(err, ".npy header: shape's element count overflows");
            return -1;
        }
        n *= (uint64_t)out->dims[i];
    }
    if (n > UINT64_MAX / esize) {
        rs_err_set(err, ".npy header: shape's byte size overflows");
        return -1;
    }
    size_t have = len - prefix - hlen;
    if (n * esize != have) {
        rs_err_set(err, ".npy data: shape needs %llu elements of %s = %llu bytes, the file has %zu",
                   (unsigned long long)n, rs_dtype_name(out->dtype),
                   (unsigned long long)(n * esize), have);
        return -1;
    }
    out->data = buf + prefix + hlen;
    out->byte_len = n * esize;
    return 0;
}

int rs_npy_load(const char *path, size_t max_bytes, uint8_t **storage, rs_npy *out, rs_err *err) {
    *storage = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        rs_err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rs_err_set(err, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        rs_err_set(err, "%s: %lld bytes, over the limit of %zu", path, (long long)st.st_size,
                   max_bytes);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        rs_err_set(err, "%s: %s", path, buf ? "read failed" : "out of memory");
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    if (rs_npy_parse(buf, n, out, err) != 0) {
        rs_err_prefix(err, "%s", path);
        free(buf);
        return -1;
    }
    *storage = buf;
    return 0;
}

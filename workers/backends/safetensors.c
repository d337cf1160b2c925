#include "workers/backends/safetensors.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rs_st_file {
    char path[4096];
    uint8_t *buf; /* the whole file; data starts at data_off */
    uint64_t size;
    uint64_t data_off;
    json_object *header;
};

const char *rs_st_path(const rs_st_file *f) { return f->path; }

void rs_st_close(rs_st_file *f) {
    if (!f) return;
    json_object_put(f->header);
    free(f->buf);
    free(f);
}

static rs_dtype rs_st_dtype(const char *s) {
    static const struct {
        const char *name;
        rs_dtype dt;
    } map[] = {{"F32", RS_DT_FP32}, {"F64", RS_DT_FP64}, {"F16", RS_DT_FP16},
               {"BF16", RS_DT_BF16}, {"I8", RS_DT_INT8}, {"U8", RS_DT_UINT8},
               {"I16", RS_DT_INT16}, {"I32", RS_DT_INT32}, {"I64", RS_DT_INT64},
               {"BOOL", RS_DT_BOOL}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].name, s) == 0) return map[i].dt;
    return RS_DT_INVALID;
}

static json_object *rs_st_get(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static bool rs_st_is(json_object *o, json_type t) { return o && json_object_is_type(o, t); }

/* Validates one header entry into out. */
static int rs_st_entry(const rs_st_file *f, const char *name, json_object *v, rs_st_tensor *out,
                       rs_err *err) {
    json_object *dt = rs_st_get(v, "dtype"), *shape = rs_st_get(v, "shape"),
                *offs = rs_st_get(v, "data_offsets");
    if (!rs_st_is(v, json_type_object) || !rs_st_is(dt, json_type_string) ||
        !rs_st_is(shape, json_type_array) || !rs_st_is(offs, json_type_array) ||
        json_object_array_length(offs) != 2) {
        rs_err_set(err, "%s: bad header: tensor '%s' needs dtype, shape and data_offsets [begin, end]",
                   f->path, name);
        return -1;
    }
    out->name = name;
    out->dtype = rs_st_dtype(json_object_get_string(dt));
    if (out->dtype == RS_DT_INVALID) {
        rs_err_set(err, "%s: bad header: tensor '%s' has unknown dtype '%s'", f->path, name,
                   json_object_get_string(dt));
        return -1;
    }
    size_t rank = json_object_array_length(shape);
    if (rank > RS_MAX_RANK) {
        rs_err_set(err, "%s: bad header: tensor '%s' has rank %zu (max %d)", f->path, name, rank,
                   RS_MAX_RANK);
        return -1;
    }
    uint64_t elems = 1;
    out->rank = (uint32_t)rank;
    for (size_t i = 0; i < rank; i++) {
        json_object *d = json_object_array_get_idx(shape, i);
        int64_t dv = rs_st_is(d, json_type_int) ? json_object_get_int64(d) : -1;
        if (dv < 0 || dv > (1LL << 32)) {
            rs_err_set(err, "%s: bad header: tensor '%s' has a bad dim", f->path, name);
            return -1;
        }
        out->dims[i] = dv;
        elems *= (uint64_t)dv;
    }
    json_object *b = json_object_array_get_idx(offs, 0), *e = json_object_array_get_idx(offs, 1);
    int64_t bv = rs_st_is(b, json_type_int) ? json_object_get_int64(b) : -1;
    int64_t ev = rs_st_is(e, json_type_int) ? json_object_get_int64(e) : -1;
    if (bv < 0 || ev < bv) {
        rs_err_set(err, "%s: bad header: tensor '%s' has bad data_offsets", f->path, name);
        return -1;
    }
    uint64_t begin = (uint64_t)bv, end = (uint64_t)ev;
    if (end > f->size - f->data_off) {
        rs_err_set(err,
                   "%s: wrong size: tensor '%s' ends at byte %llu of the data but the file has "
                   "%llu data bytes",
                   f->path, name, (unsigned long long)end,
                   (unsigned long long)(f->size - f->data_off));
        return -1;
    }
    if (end - begin != elems * rs_dtype_size(out->dtype)) {
        rs_err_set(err, "%s: bad header: tensor '%s' has %llu bytes but its shape needs %llu",
                   f->path, name, (unsigned long long)(end - begin),
                   (unsigned long long)(elems * rs_dtype_size(out->dtype)));
        return -1;
    }
    out->data = f->buf + f->data_off + begin;
    out->byte_len = end - begin;
    return 0;
}

static int rs_st_read(rs_st_file *f, rs_err *err) {
    FILE *fp = fopen(f->path, "rb");
    if (!fp) {
        rs_err_set(err, "%s: cannot open weights: %s", f->path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || st.st_size < 8) {
        fclose(fp);
        rs_err_set(err, "%s: wrong size: %lld bytes is shorter than the 8-byte header length",
                   f->path, (long long)st.st_size);
        return -1;
    }
    f->size = (uint64_t)st.st_size;
    /* aligned_alloc keeps the F32 data aligned when the header is padded. */
    f->buf = aligned_alloc(64, (f->size + 63) & ~(uint64_t)63);
    size_t got = f->buf ? fread(f->buf, 1, f->size, fp) : 0;
    fclose(fp);
    if (got != f->size) {
        rs_err_set(err, "%s: cannot read weights (%zu of %llu bytes)", f->path, got,
                   (unsigned long long)f->size);
        return -1;
    }
    return 0;
}

rs_st_file *rs_st_open(const char *path, rs_err *err) {
    rs_st_file *f = calloc(1, sizeof(*f));
    if (!f) {
        rs_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    snprintf(f->path, sizeof(f->path), "%s", path);
    if (rs_st_read(f, err) < 0) goto fail;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->buf[i];
    if (hlen == 0 || hlen > RS_ST_MAX_HEADER_BYTES || hlen > f->size - 8) {
        rs_err_set(err, "%s: bad header: header length %llu does not fit the %llu-byte file",
                   path, (unsigned long long)hlen, (unsigned long long)f->size);
        goto fail;
    }
    f->data_off = 8 + hlen;
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        rs_err_set(err, "%s: out of memory", path);
        goto fail;
    }
    f->header = json_tokener_parse_ex(tok, (const char *)f->buf + 8, (int)hlen);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    bool trailing = false; /* only padding spaces may follow the JSON */
    for (size_t i = used; i < hlen; i++) trailing |= f->buf[8 + i] != ' ';
    if (!f->header || jerr != json_tokener_success || trailing ||
        !json_object_is_type(f->header, json_type_object)) {
        rs_err_set(err, "%s: bad header: %s", path,
                   jerr == json_tokener_continue  ? "the JSON header ends too early"
                   : jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                   : trailing                  ? "bytes after the JSON header"
                                               : "not a JSON object");
        goto fail;
    }
    json_object_object_foreach(f->header, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        rs_st_tensor t;
        if (rs_st_entry(f, key, v, &t, err) < 0) goto fail;
    }
    return f;
fail:
    rs_st_close(f);
    return NULL;
}

int rs_st_find(const rs_st_file *f, const char *name, rs_st_tensor *out) {
    json_object *v = rs_st_get(f->header, name);
    if (!v || strcmp(name, "__metadata__") == 0) return -1;
    rs_err err;
    return rs_st_entry(f, name, v, out, &err); /* validated at open: cannot fail now */
}

const char *rs_st_metadata(const rs_st_file *f, const char *key) {
    json_object *v = rs_st_get(rs_st_get(f->header, "__metadata__"), key);
    return rs_st_is(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* safetensors.h — reads a .safetensors file: an 8-byte little-endian header
 * length, a JSON header (parsed with json-c) naming each tensor's dtype,
 * shape and byte range, then the raw little-endian data.
 *
 * Only what the dense backend needs: F32 tensors and the string metadata.
 * Every inconsistency (short file, header past the end, bad JSON, unknown
 * dtype, range not matching the shape, ranges past the data) is refused with
 * a line naming the file and the problem. */
#ifndef RS_SAFETENSORS_H
#define RS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"
#include "io/tensor.h"

#define RS_ST_MAX_HEADER_BYTES (16u << 20)

typedef struct rs_st_tensor {
    const char *name; /* the caller's name (rs_st_find) or the header's key */
    rs_dtype dtype;
    uint32_t rank;
    int64_t dims[RS_MAX_RANK];
    const void *data; /* inside the file's buffer; 8-byte aligned if the file is */
    uint64_t byte_len;
} rs_st_tensor;

typedef struct rs_st_file rs_st_file;

/* Reads and validates the whole file. NULL + err on any problem. */
rs_st_file *rs_st_open(const char *path, rs_err *err);
void rs_st_close(rs_st_file *f);
const char *rs_st_path(const rs_st_file *f);
/* A tensor by name (0 found, -1 absent). */
int rs_st_find(const rs_st_file *f, const char *name, rs_st_tensor *out);
/* A __metadata__ string value, or NULL. */
const char *rs_st_metadata(const rs_st_file *f, const char *key);

#endif

/* tensor.h — dtypes and tensor views shared by the wire codec, HTTP/JSON,
 * the batcher and the backends. A view never owns its bytes. */
#ifndef RS_TENSOR_H
#define RS_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RS_MAX_RANK 8
#define RS_MAX_TENSORS 16        /* per request item, inputs or outputs */
#define RS_MAX_NAME_BYTES 64     /* tensor and model names, NUL excluded */

/* Wire values are fixed (docs/protocol.md). Names are KServe v2's. */
typedef enum rs_dtype {
    RS_DT_INVALID = 0,
    RS_DT_BOOL = 1,
    RS_DT_UINT8 = 2,
    RS_DT_UINT16 = 3,
    RS_DT_UINT32 = 4,
    RS_DT_UINT64 = 5,
    RS_DT_INT8 = 6,
    RS_DT_INT16 = 7,
    RS_DT_INT32 = 8,
    RS_DT_INT64 = 9,
    RS_DT_FP16 = 10,
    RS_DT_FP32 = 11,
    RS_DT_FP64 = 12,
    RS_DT_BYTES = 13, /* each element: u32 length prefix + bytes */
    RS_DT_BF16 = 14,
    RS_DT_COUNT_
} rs_dtype;

/* Bytes per element; 0 for BYTES (variable) and INVALID. */
size_t rs_dtype_size(rs_dtype dt);
/* "FP32"...; "INVALID" for unknown values. */
const char *rs_dtype_name(rs_dtype dt);
/* KServe name -> dtype; RS_DT_INVALID when unknown. */
rs_dtype rs_dtype_parse(const char *name, size_t len);
bool rs_dtype_valid(uint32_t wire_value);

typedef struct rs_str {
    const char *ptr; /* not NUL-terminated in general */
    uint32_t len;
} rs_str;

typedef struct rs_tensor_view {
    rs_str name;
    rs_dtype dtype;
    uint32_t rank;
    int64_t dims[RS_MAX_RANK];
    const uint8_t *data; /* row-major, little-endian */
    uint64_t byte_len;
} rs_tensor_view;

typedef struct rs_tensor_list {
    uint32_t count;
    rs_tensor_view t[RS_MAX_TENSORS];
} rs_tensor_list;

/* Product of dims, or -1 on overflow / negative dims. */
int64_t rs_tensor_elements(const rs_tensor_view *t);
/* Checks dims against byte_len (and, for BYTES, that the length prefixes
 * tile the data exactly). Returns 0 or -1 with a sentence in why. */
int rs_tensor_check(const rs_tensor_view *t, char *why, size_t why_bytes);
/* Finds a tensor by name; NULL when absent. */
const rs_tensor_view *rs_tensor_find(const rs_tensor_list *l, const char *name, size_t len);

#endif

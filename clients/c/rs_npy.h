/* rs_npy.h — a small, strict reader for NumPy .npy files (format 1.0-3.0).
 *
 * Why a module: `ringserve infer --npy NAME=FILE.npy` sends arrays saved
 * with numpy.save. The header is a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (1, 64), }
 * and is read by a tiny grammar for exactly that literal: the three keys,
 * each once; descr one of the little-endian (or byte-order-free) numeric
 * and bool types below; fortran_order False; shape a tuple of non-negative
 * integers (a 1-tuple needs its comma). Anything else is refused with a
 * sentence saying what and where. The data must be exactly the bytes the
 * shape needs. Supported descr: |b1 |i1 |u1 <i2 <i4 <i8 <u2 <u4 <u8 <f2
 * <f4 <f8 (as BOOL, INT8.., UINT8.., FP16, FP32, FP64). */
#ifndef RS_NPY_H
#define RS_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"
#include "io/tensor.h"

typedef struct rs_npy {
    uint8_t major, minor; /* format version */
    rs_dtype dtype;
    uint32_t rank;
    int64_t dims[RS_MAX_RANK];
    const uint8_t *data; /* points into the parsed buffer */
    uint64_t byte_len;
} rs_npy;

/* Parses a whole .npy image. 0, or -1 with err. */
int rs_npy_parse(const uint8_t *buf, size_t len, rs_npy *out, rs_err *err);

/* Reads path (at most max_bytes) into a malloc'd *storage (free it) and
 * parses it; out->data points into *storage. err names the file. */
int rs_npy_load(const char *path, size_t max_bytes, uint8_t **storage, rs_npy *out, rs_err *err);

#endif

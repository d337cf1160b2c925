/* request.h — the one request `ringserve bench` sends over and over, built
 * once before the run: a framed INFER_REQUEST, an HTTP request (KServe v2
 * JSON body, or a plain GET) or a memcached `get`. Inputs come from a
 * KServe-style JSON file or are generated from a shape (zeros or random). */
#ifndef RS_BENCH_REQUEST_H
#define RS_BENCH_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/loadgen.h"
#include "engine/common/err.h"
#include "io/tensor.h"

typedef struct rs_bench_req_opts {
    rs_bench_proto proto;
    const char *host;       /* HTTP Host header */
    const char *model;      /* framed / HTTP infer */
    const char *version;    /* NULL or "": latest */
    const char *input_file; /* KServe v2 infer request JSON; NULL: generate */
    const char *input_name; /* generated input's name */
    rs_dtype dtype;         /* generated input's datatype */
    uint32_t rank;
    int64_t dims[RS_MAX_RANK];
    bool random;        /* generated data: random instead of zeros */
    bool no_cache;      /* framed: RS_FRAME_F_NO_CACHE */
    const char *method; /* HTTP: NULL = POST with a body */
    const char *path;   /* HTTP: NULL = /v2/models/<model>[/versions/<v>]/infer */
    const char *key;    /* memcache */
} rs_bench_req_opts;

/* Builds the request into *out (malloc'ed, the caller frees). 0 or -1 + err.
 * Framed requests also give *data_offset: where the first input's data
 * starts in the frame (0 when it holds fewer than 8 bytes, and for the other
 * protocols), and whether that input is FP32 (see rs_bench_cfg.unique_offset). */
int rs_bench_build_request(const rs_bench_req_opts *o, uint8_t **out, size_t *len,
                           size_t *data_offset, bool *data_fp32, rs_err *err);

/* Parses "1,16" into dims. 0 or -1 + err. */
int rs_bench_parse_shape(const char *s, int64_t *dims, uint32_t *rank, rs_err *err);

/* Stores value_bytes bytes under key on a memcached server (blocking,
 * before the run) so that every `get` hits. 0 or -1 + err. */
int rs_bench_memcache_set(const char *host, uint16_t port, const char *key, size_t value_bytes,
                          rs_err *err);

#endif

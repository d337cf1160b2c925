/* kserve.h — the KServe v2 inference protocol's JSON bodies (json-c).
 *
 * Why a module: the HTTP front door turns request bodies into tensors and
 * tensors into response bodies; the coordinator in between only sees
 * rs_tensor_list (io/tensor.h), the same as the framed protocol gives it.
 *
 * Request (POST /v2/models/{m}[/versions/{v}]/infer):
 *   {"id": "...", "parameters": {"priority": 1, "timeout": 5000,
 *    "binary_data_output": true, "async": true},
 *    "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
 *                "data": [[1, 2, 3], [4, 5, 6]]}],          (flat or nested)
 *    "outputs": [{"name": "y", "parameters": {"binary_data": true}}]}
 * Every datatype of io/tensor.h: BOOL (true/false), integers (range checked;
 * json-c clamps literals beyond 64 bits to INT64_MIN/UINT64_MAX first),
 * FP16/BF16 (converted from JSON numbers), FP32, FP64, BYTES (JSON strings;
 * each element stored as u32 little-endian length + bytes, as io/tensor.h
 * says). The element count must equal the product of the shape.
 *
 * Binary tensor data extension: when the HTTP request carries
 * "Inference-Header-Content-Length: N", the first N body bytes are the JSON
 * and the rest are raw tensors, in the order of the inputs whose parameters
 * hold "binary_data_size" (those inputs have no "data"). Outputs asked with
 * "binary_data": true (or the request-level "binary_data_output") are sent
 * after the JSON the same way, with "parameters": {"binary_data_size": n}.
 *
 * Tensor bytes are converted into a caller-provided arena (no allocation on
 * the hot path besides json-c's own parse tree); names point into the arena.
 * Every error is a sentence naming the input and what is wrong; the HTTP
 * layer answers it as 400 {"error": "<sentence>"}. */
#ifndef RS_KSERVE_H
#define RS_KSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"
#include "io/tensor.h"

#define RS_KSERVE_ID_BYTES 128 /* request id, NUL included */

/* Caller-owned bump arena: tensors and names are written at base + used. */
typedef struct rs_kserve_arena {
    uint8_t *base;
    size_t cap;
    size_t used;
} rs_kserve_arena;

static inline void rs_kserve_arena_init(rs_kserve_arena *a, void *base, size_t cap) {
    a->base = (uint8_t *)base;
    a->cap = cap;
    a->used = 0;
}

/* Request-level "parameters" (Triton's schedule parameters plus ours). */
typedef struct rs_kserve_params {
    bool has_priority;
    uint32_t priority; /* "priority": 0 = default, 1 = highest */
    bool has_timeout;
    uint64_t timeout_us;     /* "timeout": microseconds */
    bool binary_data_output; /* "binary_data_output": every output binary */
    bool async;              /* "async": answer 202 + id, poll /v2/requests/{id} */
} rs_kserve_params;

typedef struct rs_kserve_output_req {
    char name[RS_MAX_NAME_BYTES + 1];
    bool binary_data; /* "parameters": {"binary_data": true} */
} rs_kserve_output_req;

typedef struct rs_kserve_request {
    bool has_id;
    char id[RS_KSERVE_ID_BYTES];
    rs_kserve_params params;
    rs_tensor_list inputs; /* data and names in the arena */
    uint32_t output_count; /* 0: every output, JSON unless binary_data_output */
    rs_kserve_output_req outputs[RS_MAX_TENSORS];
} rs_kserve_request;

/* Parses an infer request. body..body+len is the whole HTTP body;
 * json_len is Inference-Header-Content-Length (or len when absent). Returns 0,
 * or -1 with a sentence in err, e.g.
 *   "input 'x': shape [2,3] needs 6 elements, data has 5"
 *   "input 'x': datatype 'FP33' is not a KServe v2 datatype"
 *   "malformed JSON at line 1 column 7: unexpected character"
 *   "request arena full: tensors need more than 65536 bytes"
 * json-c needs process-wide setup once: rs_kserve_global_init(). */
int rs_kserve_parse_infer(const uint8_t *body, size_t len, size_t json_len, rs_kserve_request *out,
                          rs_kserve_arena *arena, rs_err *err);
/* Parses the Inference-Header-Content-Length value against the body length.
 * Returns 0 and *json_len, or -1 with err when it is not a number <= body_len. */
int rs_kserve_header_length(const char *value, size_t value_len, uint64_t body_len,
                            size_t *json_len, rs_err *err);

/* Checks request tensors (from JSON or the framed protocol) against a model
 * of the registry: every input known and present once, datatype equal,
 * rank equal and every fixed dim equal (-1 matches any), one batch size
 * (dims[0]) across inputs, 1..max_batch_size rows. Returns 0 and *rows, or
 * -1 with a sentence, e.g.
 *   "input 'pixels': datatype FP64 but model 'digits' expects FP32"
 *   "input 'pixels': shape [2,63] does not match model 'digits' shape [-1,64]"
 *   "input 'pixels' is missing (model 'digits' needs it)"
 *   "model 'digits' has no input 'foo'"
 *   "inputs disagree on the batch size: 'a' has 2 rows, 'b' has 3"
 *   "input 'pixels': batch of 200 rows is over model 'digits' max_batch_size 128" */
struct rs_model;
int rs_kserve_validate(const rs_tensor_list *inputs, const struct rs_model *model, uint32_t *rows,
                       rs_err *err);

/* Once per process, before any thread renders: json-c prints doubles with
 * "%.9g" (FP32 precision, shorter bodies); FP64 outputs keep 17 digits. */
void rs_kserve_global_init(void);

/* ---- rendering --------------------------------------------------------- */

typedef struct rs_kserve_response {
    const char *model_name;
    const char *model_version; /* NULL: omitted */
    const char *id;            /* NULL: omitted */
    const rs_tensor_list *outputs;
    /* Per output (same index as outputs->t): send as binary after the JSON. */
    const bool *binary; /* NULL: all JSON */
} rs_kserve_response;

/* Renders the response into out (capacity out_bytes): the JSON, then the
 * binary sections. *json_len is the JSON's length (the value for
 * Inference-Header-Content-Length when any output is binary), *total_len
 * everything written. Returns 0, or -1 with err (buffer too small, invalid
 * tensor). */
int rs_kserve_render_response(const rs_kserve_response *r, uint8_t *out, size_t out_bytes,
                              size_t *json_len, size_t *total_len, rs_err *err);

/* Decides which outputs are binary for a request: output_count == 0 ->
 * every output follows binary_data_output; otherwise the named ones with
 * binary_data (or binary_data_output). binary[i] for outputs->t[i]. Returns
 * 0, or -1 with err when the request names an output the result lacks
 * ("requested output 'z' is not an output of the model"). */
int rs_kserve_output_binary(const rs_kserve_request *req, const rs_tensor_list *outputs,
                            bool *binary, rs_err *err);

/* {"error": "<msg>"}; returns the length (snprintf semantics). */
size_t rs_kserve_render_error(const char *msg, char *out, size_t out_bytes);
/* GET /v2: {"name": .., "version": .., "extensions": [..]}. */
size_t rs_kserve_render_server_metadata(const char *name, const char *version,
                                        const char *const *extensions, uint32_t extension_count,
                                        char *out, size_t out_bytes);
/* Health and model readiness bodies: {"live": true} / {"ready": false}. */
size_t rs_kserve_render_bool(const char *key, bool value, char *out, size_t out_bytes);
/* 202 body for an async request: {"id": "<id>", "status": "<status>"}. */
size_t rs_kserve_render_async(const char *id, const char *status, char *out, size_t out_bytes);

#endif

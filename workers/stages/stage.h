/* stage.h — pre- and post-processing stages and the pipelines built from them.
 *
 * A model's model.yaml lists its stages in order (pre: before the backend,
 * post: after it), each a name plus key/value parameters. The registry parses
 * the YAML into rs_stage_spec values (registry.h; every value as text, a YAML
 * sequence joined with commas, e.g. shape: [-1, 8, 8] -> "-1,8,8"); this module checks
 * them and compiles a pipeline, refusing an unknown stage or a bad parameter
 * with one sentence that names the stage, the parameter and the value.
 *
 * Stages work on whole batches: every tensor's first dim is the batch. A
 * pipeline runs over a tensor list (the request's inputs, or the backend's
 * outputs). Each stage reads one tensor (param `input`, default the first of
 * the list) and either replaces it (normalize, cast, reshape, tokenize,
 * softmax: the result keeps the input's name unless `output` says otherwise)
 * or appends new tensors (argmax -> "label", topk -> "<output>_scores",
 * "<output>_ids" and, with a labels file, "<output>_labels").
 *
 * Stage outputs go to a caller-owned arena allocated once at start-up: a run
 * never calls malloc. A compiled pipeline is immutable and may be shared by
 * threads; each thread brings its own arena.
 *
 * Stages (params: required ones first, [optional=default]):
 *   normalize  [scale=1] [offset=0]           any numeric -> FP32, y = x*scale + offset
 *   cast       to=<dtype>                     numeric -> numeric; float->int truncates
 *                                             toward zero and saturates, NaN -> 0
 *   reshape    shape=-1,d1,d2...              first dim -1 (the batch); a view, no copy
 *   tokenize   vocab=<file> max_tokens=N [unk_id=0] [pad_id=0] [lowercase=false]
 *              BYTES [batch] or [batch,1] -> INT64 [batch, N]; ASCII whitespace
 *              split, ids = 0-based line numbers of the vocabulary file
 *   softmax    (none)                         FP32 over the last dim
 *   argmax     [output=label]                 FP32 [..., C] -> INT64 [...]
 *   topk       k=N [labels=<file>] [output=topk]
 *              FP32 [..., C] -> FP32 scores, INT64 ids (and BYTES labels) [..., k],
 *              highest first, ties to the lower index
 * Every stage also takes [input=<tensor name>]; the transforming ones take
 * [output=<name>]. Files are relative to the model version's directory. */
#ifndef RS_STAGE_H
#define RS_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"
#include "engine/model_registry/registry.h"
#include "io/tensor.h"

#define RS_STAGE_MAX_STAGES RS_MODEL_MAX_STAGES /* per pipeline */

/* rs_stage_spec / rs_stage_param come from the registry (registry.h). These
 * helpers build specs by hand (tests, the stage process). They return 0, or
 * -1 when a string does not fit or the spec is full. */
int rs_stage_spec_init(rs_stage_spec *s, const char *name);
int rs_stage_spec_set(rs_stage_spec *s, const char *key, const char *value);

/* ---- the arena: one bump allocation per stage output, reset per batch ---- */

typedef struct rs_stage_arena {
    uint8_t *base;
    size_t cap_bytes;
    size_t used_bytes;
} rs_stage_arena;

int rs_stage_arena_init(rs_stage_arena *a, size_t cap_bytes, rs_err *err);
void rs_stage_arena_free(rs_stage_arena *a);
static inline void rs_stage_arena_reset(rs_stage_arena *a) { a->used_bytes = 0; }
/* 64-byte aligned; NULL when the arena is full. */
void *rs_stage_arena_alloc(rs_stage_arena *a, size_t bytes);

/* ---- pipelines ---- */

typedef struct rs_stage_pipeline rs_stage_pipeline;

/* Checks and compiles n specs (n may be 0: the pipeline passes tensors
 * through). base_dir: the model version's directory, for vocab/labels files.
 * what: a prefix for messages, e.g. "digits/1 pre". NULL with err on failure:
 * "digits/1 pre[0] cast: to: FP33: unknown dtype". */
rs_stage_pipeline *rs_stage_pipeline_compile(const rs_stage_spec *specs, uint32_t n,
                                             const char *base_dir, const char *what,
                                             rs_err *err);
void rs_stage_pipeline_free(rs_stage_pipeline *p);
uint32_t rs_stage_pipeline_len(const rs_stage_pipeline *p);

/* Runs every stage over io in order; tensors are replaced or appended in io
 * (views into the arena or into the original inputs). Returns 0, or
 * -(rs_status) with a sentence in why: -RS_E_INVALID_INPUT when the input
 * does not suit a stage (dtype, shape), -RS_E_OVERLOADED when the arena is
 * too small for this batch. */
int rs_stage_pipeline_run(const rs_stage_pipeline *p, rs_tensor_list *io, rs_stage_arena *arena,
                          char *why, size_t why_bytes);

#endif

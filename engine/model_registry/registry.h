/* registry.h — the model repository and the model registry.
 *
 * A repository is a folder of models/<name>/<version>/model.yaml (plus the
 * weights the backend reads from the same folder). The registry loads one or
 * more repositories at start-up, validates every field of every model.yaml
 * (a bad field is refused with one line "<file>:<line>: <field>: <value>:
 * <why>"), and then answers O(1) lookups by name + version from a hash table.
 * Everything is allocated once at start-up; lookups never allocate.
 *
 * model.yaml (every field validated, unknown fields refused):
 *
 *   name: digits                     # must equal the <name> folder
 *   backend: dense                   # built-in (identity, dense) or a plugin
 *   inputs:  [{name: pixels, dtype: FP32, shape: [-1, 64]}]
 *   outputs: [{name: probabilities, dtype: FP32, shape: [-1, 10]},
 *             {name: label, dtype: INT64, shape: [-1]}]
 *   batchable: true                  # false: every request runs alone
 *   max_batch_size: 128              # 1..RS_MODEL_MAX_BATCH (1 if !batchable)
 *   batching: {max_queue_delay_us: 500, preferred_batch_sizes: [8, 32],
 *              max_queue_size: 1024, dispatch_when_idle: false,
 *              single_queue: false, max_batches_out: 0}
 *   cache: on                        # on|off: responses may be cached
 *   quantized: none                  # none|int8
 *   instances: 1                     # compute instances per worker
 *   shards: 1
 *   placement: {device: cpu, gpus: [], gpu_memory_mb: 0, numa: auto}
 *   pre:  [{stage: normalize, params: {scale: 0.0625, offset: 0.0}}]
 *   post: [{stage: argmax, params: {input: probabilities, output: label}}]
 *   stages: inline                   # inline|pool
 *
 * Shapes: the first dim is the batch dim and must be -1; other dims are -1
 * (variable) or > 0. Backends produce the model's outputs in order; outputs
 * that a post stage produces (e.g. "label") come after those the backend
 * produces (rs_model.backend_outputs says how many the backend fills).
 * Stage params are kept as strings; the stage library validates them. */
#ifndef RS_MODEL_REGISTRY_H
#define RS_MODEL_REGISTRY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "io/tensor.h"
#include "topo/plan.h"

#define RS_MODEL_MAX_IO 8             /* inputs, outputs per model */
#define RS_MODEL_MAX_STAGES 8         /* pre, post stages per model */
#define RS_STAGE_MAX_PARAMS 8         /* params per stage */
#define RS_STAGE_NAME_BYTES 32        /* NUL included */
#define RS_STAGE_KEY_BYTES 32         /* NUL included */
#define RS_STAGE_VALUE_BYTES 256      /* NUL included (file paths fit) */
#define RS_MODEL_MAX_GPUS RS_PLAN_MODEL_MAX_GPUS
#define RS_MODEL_MAX_PREFERRED 8      /* preferred_batch_sizes */
#define RS_MODEL_MAX_BATCH 4096
#define RS_MODEL_MAX_VERSION 999999
#define RS_BACKEND_NAME_BYTES 32      /* NUL included */
#define RS_REGISTRY_MAX_REPOS 8
#define RS_REGISTRY_MAX_LOAD 64       /* entries of models.load */
#define RS_REGISTRY_MAX_MODELS 256    /* model versions in one registry */

typedef struct rs_tensor_spec {
    char name[RS_MAX_NAME_BYTES + 1];
    rs_dtype dtype;
    uint32_t rank;
    int64_t dims[RS_MAX_RANK]; /* dims[0] == -1 (batch); -1 = variable */
} rs_tensor_spec;

typedef struct rs_stage_param {
    char key[RS_STAGE_KEY_BYTES];
    char value[RS_STAGE_VALUE_BYTES]; /* scalar text, or "a,b,c" for a list */
} rs_stage_param;

/* One pre/post stage: a name and its parameters, as written in model.yaml.
 * A relative file parameter (vocab, labels) is kept as written; resolve it
 * against rs_model.dir. */
typedef struct rs_stage_spec {
    char name[RS_STAGE_NAME_BYTES];
    uint32_t param_count;
    rs_stage_param params[RS_STAGE_MAX_PARAMS];
    int line; /* line in model.yaml, for error messages */
} rs_stage_spec;

typedef enum rs_model_device { RS_MODEL_DEVICE_CPU = 0, RS_MODEL_DEVICE_GPU = 1 } rs_model_device;
typedef enum rs_model_quant { RS_MODEL_QUANT_NONE = 0, RS_MODEL_QUANT_INT8 = 1 } rs_model_quant;
typedef enum rs_stages_placement {
    RS_STAGES_INLINE = 0,
    RS_STAGES_POOL = 1
} rs_stages_placement;

#define RS_MODEL_NUMA_AUTO (-1)

/* The fields below mirror plan (topo's own struct, filled by topo's parser,
 * instances included): pass &placement.plan to rs_plan_build. device gpu
 * with no gpus means round-robin over the host's GPUs (topo/plan.h). */
typedef struct rs_model_placement {
    rs_plan_model plan;
    rs_model_device device;
    uint32_t gpu_count;
    int32_t gpus[RS_MODEL_MAX_GPUS];
    uint64_t gpu_memory_mb;
    int32_t numa;          /* as configured: RS_MODEL_NUMA_AUTO or a node */
    int32_t numa_resolved; /* node to run on; for a GPU model with numa:auto,
                              the NUMA node of gpus[0] (topo); -1 = no
                              preference or not known before the plan */
} rs_model_placement;

typedef struct rs_model_batching {
    uint64_t max_queue_delay_us;
    uint32_t preferred_count;
    uint32_t preferred_batch_sizes[RS_MODEL_MAX_PREFERRED]; /* ascending, <= max_batch_size */
    uint32_t max_queue_size;
    /* Dispatch at once, whatever is queued, when none of this model's
     * batches is in flight (low load: no waiting for company); under load
     * batches form while earlier ones run. Default false. */
    bool dispatch_when_idle;
    /* One queue for the whole coordinator, on one io thread (the model's
     * home core), instead of one per io thread: every request of the model
     * meets in one batcher, so batches are as big as the traffic allows, for
     * one cross-thread hand-off each way per request. For compute-heavy
     * models. Default false. */
    bool single_queue;
    /* Batches of this model out to workers at once from one queue (one per
     * io thread, or the single queue); beyond it requests wait and the next
     * batch grows. 0 = the coordinator's server.max_batches_per_model. The
     * workers' compute instances for the model is a good value for a heavy
     * model: a batch then starts computing as soon as it arrives. */
    uint32_t max_batches_out;
} rs_model_batching;

typedef struct rs_model {
    char name[RS_MAX_NAME_BYTES + 1];
    uint32_t version;
    char backend[RS_BACKEND_NAME_BYTES];
    char dir[PATH_MAX];  /* the version folder: weights live here */
    char file[PATH_MAX]; /* .../model.yaml */

    uint32_t input_count;
    rs_tensor_spec inputs[RS_MODEL_MAX_IO];
    uint32_t output_count;
    rs_tensor_spec outputs[RS_MODEL_MAX_IO];
    /* outputs[0..backend_outputs) come from the backend, the rest from post
     * stages: output_count minus the number of post stages with an "output"
     * param naming one of the outputs. */
    uint32_t backend_outputs;

    bool batchable;
    uint32_t max_batch_size;
    rs_model_batching batching;
    bool cache;
    rs_model_quant quantized;
    uint32_t instances;
    uint32_t shards;
    rs_model_placement placement;

    uint32_t pre_count;
    rs_stage_spec pre[RS_MODEL_MAX_STAGES];
    uint32_t post_count;
    rs_stage_spec post[RS_MODEL_MAX_STAGES];
    rs_stages_placement stages;

    /* KServe v2 model metadata JSON, rendered once by the registry (NULL for
     * a model parsed alone with rs_model_parse_file). */
    char *metadata_json;
} rs_model;

/* Parses and validates one model.yaml. dir_name / dir_version are the
 * folder names it was found under (name must match; version is the
 * folder's number); pass NULL / 0 to skip those checks. Returns 0 or -1 with
 * one line in err naming the file, field and value. */
int rs_model_parse_file(const char *file, const char *dir_name, uint32_t dir_version,
                        rs_model *out, rs_err *err);
/* Same from a parsed YAML root (tests; file names come from the cfg). */
int rs_model_parse(const rs_cfg_node *root, const char *dir, const char *dir_name,
                   uint32_t dir_version, rs_model *out, rs_err *err);

/* Index of a tensor in the model's inputs/outputs by name, or -1. */
int rs_model_input_index(const rs_model *m, const char *name);
int rs_model_output_index(const rs_model *m, const char *name);
/* Bytes of one batch row of a tensor (all dims but the batch), or 0 when a
 * non-batch dim is variable or the dtype has no fixed size (BYTES). */
uint64_t rs_tensor_spec_row_bytes(const rs_tensor_spec *t);
/* A stage parameter's value, or NULL when absent. */
const char *rs_stage_spec_param(const rs_stage_spec *s, const char *key);

/* KServe v2 model metadata rendered into a new string (free() it):
 * {"name","versions":[...],"platform":"ringserve_<backend>","inputs":[{name,
 * datatype,shape}],"outputs":[...]}. versions lists every loaded version of
 * the model when rendered by the registry, else just this one. */
char *rs_model_metadata_render(const rs_model *m, const uint32_t *versions, size_t n_versions);

/* ---- the `models:` config section ----
 *
 *   models:
 *     repository: [models, build/models]   # one path or a list; relative to
 *                                          # the config file's folder
 *     load: [digits, "mlp-bench:1"]        # optional; default: every model,
 *                                          # name = all versions, name:N = one
 *     skip_bad_models: false               # also --skip-bad-models
 */
typedef struct rs_registry_load {
    char name[RS_MAX_NAME_BYTES + 1];
    uint32_t version; /* 0 = every version of the model */
} rs_registry_load;

/* Maps a GPU id to its NUMA node (topo provides this); -1 when unknown. */
typedef int (*rs_registry_gpu_numa_fn)(int gpu, void *ctx);

typedef struct rs_registry_config {
    uint32_t repo_count;
    char repos[RS_REGISTRY_MAX_REPOS][PATH_MAX];
    uint32_t load_count; /* 0 = load everything found */
    rs_registry_load load[RS_REGISTRY_MAX_LOAD];
    bool skip_bad_models; /* log and skip a bad model instead of failing */
    rs_registry_gpu_numa_fn gpu_numa; /* NULL: GPU models get numa_resolved -1 */
    void *gpu_numa_ctx;
} rs_registry_config;

/* Fills defaults (repository "models", load everything, no skipping) and
 * validates the section; section may be absent. Relative repository paths
 * are resolved against the folder of the config file. */
int rs_registry_config_parse(const rs_cfg_node *section, rs_registry_config *out, rs_err *err);
/* Defaults only (tests, tools): one repository path. */
void rs_registry_config_default(rs_registry_config *out, const char *repo);

typedef struct rs_registry rs_registry;

/* Scans every repository, parses every <name>/<version>/model.yaml, keeps
 * those selected by cfg->load. A bad model fails the whole load (NULL + err
 * naming the file and field) unless skip_bad_models, which logs one WARN
 * line per bad model and goes on. A name in cfg->load that is not found is
 * always an error. The same name+version in two repositories: the first
 * repository wins (WARN line). */
rs_registry *rs_registry_create(const rs_registry_config *cfg, rs_err *err);
void rs_registry_destroy(rs_registry *r);

/* O(1) lookup. version 0 = the latest (highest) version. NULL when absent. */
const rs_model *rs_registry_find(const rs_registry *r, const char *name, uint32_t version);
/* Same with a name that is not NUL-terminated (wire requests). */
const rs_model *rs_registry_findn(const rs_registry *r, const char *name, size_t name_len,
                                  uint32_t version);
size_t rs_registry_count(const rs_registry *r);
/* Models sorted by name, then version ascending. */
const rs_model *rs_registry_at(const rs_registry *r, size_t i);
/* How many models were skipped as bad (skip_bad_models). */
size_t rs_registry_skipped(const rs_registry *r);

#endif

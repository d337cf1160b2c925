/* plan.h — the placement plan: which CPUs run the coordinator's io loops,
 * which run each model instance's worker shard (and its pre-processing),
 * which NUMA node each one's memory comes from and which GPU it drives.
 *
 * rs_plan_build is a pure function of (topology info, `topology:` config,
 * models): no hwloc, no syscalls, no allocation, so every rule is unit-tested
 * on XML topologies of machines we do not have. Applying a plan (pinning,
 * memory binding) is bind.h's job.
 *
 * The `topology:` config section (every field optional):
 *
 *   topology:
 *     cpus: "0-7,16-23"      # CPUs ringserve may use (Linux cpulist);
 *                            # default: every allowed CPU
 *     reserve_cores: "0"     # CPUs left to the OS (cpulist); default none
 *     io_cores: "0-1"        # CPUs for io loops: one loop per physical core
 *     worker_cores: "2-7"    # CPUs for worker shards
 *     numa: local            # local | interleave | node:N  (memory policy)
 *     smt: avoid             # avoid | share
 *     placement:             # per-host overrides of models' placement
 *       resnet: {device: gpu, gpus: [3], instances: 2}
 *
 * Rules (defaults):
 *  - usable = (cpus or allowed) - reserve_cores (all three are CPU lists:
 *    list both SMT siblings to leave a whole core to the OS); cores are
 *    physical cores with at least one usable CPU.
 *  - one io loop per physical core of the io set, pinned to that core's
 *    first CPU in the set. Without io_cores: every usable core not in
 *    worker_cores; with models and no worker_cores, a quarter of the usable
 *    cores (at least one), taken round-robin over NUMA nodes, lowest cores
 *    first; without models, every usable core. A single usable core is
 *    shared by io loops and workers (noted in the plan).
 *  - smt: avoid — an io loop and a worker shard never run on SMT siblings of
 *    one core (the io core's siblings stay idle); smt: share — io cores'
 *    sibling CPUs join the worker pool.
 *  - a GPU model instance runs on cores of its GPU's NUMA node: one core for
 *    the shard that drives the GPU, the rest of its share for
 *    pre-processing. GPU ids: placement gpus[i % n] for instance i, else
 *    round-robin over the host's GPUs.
 *  - CPU model instances spread over NUMA nodes (the node with the fewest
 *    instances so far, GPU instances included, lowest number first); the
 *    worker cores of a node are shared evenly among the instances placed on
 *    it (more instances than cores: they share, noted in the plan).
 *  - placement numa: N forces the node of a model's instances.
 *  - memory: numa local -> each entry's own node; interleave -> every node;
 *    node:N -> node N.
 * A config that names a CPU, GPU or node the host does not have, a CPU
 * outside the allowed cpuset, a reserved CPU in io/worker cores, io and
 * worker sets that overlap (or share a core with smt: avoid) is refused with
 * one line naming the field, the value and why. */
#ifndef RS_TOPO_PLAN_H
#define RS_TOPO_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "topo/cpuset.h"
#include "topo/topo.h"

/* "<file>:<line>: <field path>" of a config value, for errors found when the
 * plan meets the topology (after parsing). */
#define RS_TOPO_ORIGIN_BYTES (RS_CFG_FILE_BYTES + RS_CFG_PATH_BYTES + 16)

typedef enum rs_topo_numa_policy {
    RS_TOPO_NUMA_LOCAL = 0,
    RS_TOPO_NUMA_INTERLEAVE = 1,
    RS_TOPO_NUMA_NODE = 2,
} rs_topo_numa_policy;

typedef enum rs_topo_smt {
    RS_TOPO_SMT_AVOID = 0,
    RS_TOPO_SMT_SHARE = 1,
} rs_topo_smt;

/* A cpulist field: whether it was given, the set, the text and where. */
typedef struct rs_topo_cpus_field {
    bool set;
    rs_cpuset cpus;
    char text[128];
    char origin[RS_TOPO_ORIGIN_BYTES];
} rs_topo_cpus_field;

/* ---- models as the plan sees them ---- */

#define RS_PLAN_MODEL_NAME_BYTES 65 /* model names: 64 bytes + NUL, as io/tensor.h */
#define RS_PLAN_MODEL_MAX_GPUS 16
#define RS_PLAN_MAX_INSTANCES 256
#define RS_PLAN_NUMA_AUTO (-1)
#define RS_TOPO_MAX_PLACEMENTS 64

typedef enum rs_plan_device { RS_PLAN_DEVICE_CPU = 0, RS_PLAN_DEVICE_GPU = 1 } rs_plan_device;

typedef struct rs_plan_model {
    char name[RS_PLAN_MODEL_NAME_BYTES];
    rs_plan_device device;
    int gpu_count; /* 0 with device gpu: round-robin over the host's GPUs */
    int gpus[RS_PLAN_MODEL_MAX_GPUS];
    uint64_t gpu_memory_mb;            /* carried to the plan for the GPU backend */
    int numa;                          /* RS_PLAN_NUMA_AUTO or an OS node number */
    int instances;                     /* 1..RS_PLAN_MAX_INSTANCES */
    char origin[RS_TOPO_ORIGIN_BYTES]; /* where `placement` was written ("" if nowhere) */
} rs_plan_model;

/* device cpu, no GPUs, numa auto, 1 instance. */
void rs_plan_model_default(rs_plan_model *out, const char *name);
/* Parses a model's `placement:` mapping
 *   placement: {device: cpu|gpu, gpus: [ids], gpu_memory_mb: N,
 *               numa: auto|N, instances: N}
 * (absent = defaults; every field optional). name is the model's name.
 * Refuses unknown fields and bad values with one line; whether GPU ids and
 * nodes exist is checked by rs_plan_build against the topology. */
int rs_plan_model_parse(const rs_cfg_node *placement, const char *name, rs_plan_model *out,
                        rs_err *err);

typedef struct rs_topo_config {
    rs_topo_cpus_field cpus, reserve_cores, io_cores, worker_cores;
    rs_topo_numa_policy numa;
    int numa_node; /* for RS_TOPO_NUMA_NODE */
    char numa_origin[RS_TOPO_ORIGIN_BYTES];
    rs_topo_smt smt;
    /* topology.pin: false plans as usual but binds no thread to its CPUs
     * (the kernel places them): for hosts the server shares with other busy
     * processes, e.g. a load generator. Memory stays node-local. */
    bool no_pin;
    /* topology.io_sched: batch runs io loop threads (coordinator and worker)
     * as SCHED_BATCH: their wake-ups do not preempt whatever else runs on
     * their CPU. On a CPU shared with another busy process (a load generator)
     * that means fewer context switches and more requests per wake-up, at
     * the price of waiting up to a scheduler slice; on cores of their own it
     * changes nothing. normal (the default) leaves SCHED_OTHER. */
    bool io_sched_batch;
    /* topology.placement: {<model>: <placement mapping>} — per-host
     * placement that overrides a model's own placement (model.yaml) in the
     * plan; `ringserve topo` without a model registry plans these models. */
    int placement_count;
    rs_plan_model placement[RS_TOPO_MAX_PLACEMENTS];
} rs_topo_config;

/* Defaults: every allowed CPU, nothing reserved, numa local, smt avoid. */
void rs_topo_config_default(rs_topo_config *out);
/* Parses the `topology:` section (absent = defaults); refuses unknown
 * fields and bad values: "<file>:<line>: topology.<field>: '<value>': <why>". */
int rs_topo_config_parse(const rs_cfg_node *section, rs_topo_config *out, rs_err *err);

/* ---- the plan ---- */

#define RS_PLAN_MAX_ENTRIES 512
#define RS_PLAN_MAX_NOTES 8
#define RS_PLAN_NOTE_BYTES 160
#define RS_PLAN_MEM_INTERLEAVE (-1)

typedef enum rs_plan_role {
    RS_PLAN_IO = 0,         /* a coordinator io loop (one thread) */
    RS_PLAN_WORKER = 1,     /* a worker shard of model M instance i */
    RS_PLAN_PREPROCESS = 2, /* pre-processing threads of model M instance i */
} rs_plan_role;

typedef struct rs_plan_entry {
    rs_plan_role role;
    int model;    /* index into models[], -1 for io loops */
    int instance; /* model instance, or the io loop number */
    char model_name[RS_PLAN_MODEL_NAME_BYTES];
    rs_cpuset cpus; /* where its threads are pinned */
    int core_count; /* physical cores those CPUs cover */
    int numa;       /* node of those cores */
    int mem_node;   /* node its memory comes from; RS_PLAN_MEM_INTERLEAVE = all */
    int gpu;        /* GPU id, -1 for none */
    uint64_t gpu_memory_mb;
    bool no_pin;    /* topology.pin: false: rs_plan_apply_entry leaves the CPUs alone */
    bool sched_batch; /* an io loop under topology.io_sched: batch */
} rs_plan_entry;

typedef struct rs_plan {
    rs_topo_smt smt;
    rs_topo_numa_policy numa;
    rs_cpuset usable;   /* (cpus or allowed) - reserve_cores */
    rs_cpuset reserved; /* reserve_cores */
    rs_cpuset io;       /* CPUs of io loops */
    rs_cpuset worker;   /* CPUs of worker shards + pre-processing */
    int io_count;
    int entry_count;
    rs_plan_entry entries[RS_PLAN_MAX_ENTRIES];
    /* Compromises the plan made (shared cores, no local cores left), for the
     * operator; e.g. "model m instance 1: node 1 has no worker cores; using node 0". */
    int note_count;
    char notes[RS_PLAN_MAX_NOTES][RS_PLAN_NOTE_BYTES];
} rs_plan;

/* Builds the plan. A model named in cfg->placement uses that placement
 * instead of its own (an override naming no model in models[] is refused).
 * models may be NULL when model_count is 0 (a coordinator
 * process). Returns 0, or -1 with one line in err naming the field, value
 * and why (nothing is partially applied: plans have no side effects). */
int rs_plan_build(const rs_topo_info *topo, const rs_topo_config *cfg, const rs_plan_model *models,
                  size_t model_count, rs_plan *out, rs_err *err);

/* The entry of a role for a model (NULL for io loops) and instance (the io
 * loop number for io), or NULL: how a worker or loop finds where it runs. */
const rs_plan_entry *rs_plan_find(const rs_plan *plan, rs_plan_role role, const char *model,
                                  int instance);

/* "io loop 0", "worker shard of m instance 1", "pre-processing of m instance 1". */
void rs_plan_entry_describe(const rs_plan_entry *e, char *out, size_t out_bytes);
const char *rs_plan_role_name(rs_plan_role role); /* "io", "worker", "preprocess" */

#endif

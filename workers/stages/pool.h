/* pool.h — disaggregated stages: a pool of `ringserve stage` processes.
 *
 * A model with `stages: pool` runs its pre/post pipelines in separate
 * processes instead of on the worker's compute threads, so that CPU-heavy
 * pre-processing (tokenizing, decoding) competes with neither the io loop
 * nor the BLAS threads, and a crash in it does not take the worker down.
 *
 * Each stage process shares one memfd segment with the worker holding two
 * shm rings (requests, replies) and gets two eventfds; they are inherited
 * as fds 3, 4, 5 across fork+exec of `<exe> stage --shm-fd 3 --req-efd 4
 * --resp-efd 5`. The pool keeps every loaded pipeline's specs so a process
 * that died (or hung past timeout_ms and was killed) is respawned on next
 * use and reloaded; the batch that met the failure gets RS_E_BACKEND.
 *
 * Threading: rs_stage_pool_run may be called from any thread; a call holds
 * one process (chosen from slot_hint) for its duration, so each process
 * serves one compute thread at a time and its rings stay single-producer,
 * single-consumer. Stage processes compute the same code on the same bytes
 * as inline placement: results are byte-identical (tests/stages). */
#ifndef RS_STAGE_POOL_H
#define RS_STAGE_POOL_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"
#include "workers/stages/stage.h"

#define RS_STAGE_POOL_MAX_PROCESSES 64
#define RS_STAGE_POOL_MAX_PIPELINES 128

typedef struct rs_stage_pool_config {
    uint32_t processes;        /* 1..RS_STAGE_POOL_MAX_PROCESSES */
    uint64_t ring_bytes;       /* each direction; power of two >= 64 KiB */
    uint64_t arena_bytes;      /* each stage process's stage arena */
    uint32_t timeout_ms;       /* one job; then the process is killed */
    char exe[4096];            /* the ringserve binary; "" = /proc/self/exe */
} rs_stage_pool_config;

void rs_stage_pool_config_default(rs_stage_pool_config *cfg);

typedef struct rs_stage_pool rs_stage_pool;

/* Spawns every process and waits until each answers. NULL with err. */
rs_stage_pool *rs_stage_pool_create(const rs_stage_pool_config *cfg, rs_err *err);
/* Asks every process to quit, waits (bounded), kills stragglers, frees. */
void rs_stage_pool_destroy(rs_stage_pool *pool);

/* Compiles a pipeline in every process (same specs and base_dir as
 * rs_stage_pipeline_compile). Returns 0 and its id, or -1 with err (the
 * stage process's compile error, verbatim). */
int rs_stage_pool_load(rs_stage_pool *pool, const rs_stage_spec *specs, uint32_t n,
                       const char *base_dir, const char *what, uint32_t *pipeline_id,
                       rs_err *err);
void rs_stage_pool_unload(rs_stage_pool *pool, uint32_t pipeline_id);

/* Runs pipeline_id over io in a stage process; the resulting tensors
 * (data and names) are copied into arena and replace io. Same return values
 * as rs_stage_pipeline_run, plus -RS_E_OVERLOADED when the batch exceeds the
 * ring and -RS_E_BACKEND when the process died or timed out. */
int rs_stage_pool_run(rs_stage_pool *pool, uint32_t slot_hint, uint32_t pipeline_id,
                      rs_tensor_list *io, rs_stage_arena *arena, char *why, size_t why_bytes);

uint32_t rs_stage_pool_processes(const rs_stage_pool *pool);
/* Pins every stage process (now and when respawned) to cpus (the plan's
 * pre-processing cores); NULL unpins. Refusals are logged once. */
void rs_stage_pool_set_cpus(rs_stage_pool *pool, const cpu_set_t *cpus);
/* pid of process i (tests kill one to check the respawn); -1 when down. */
int rs_stage_pool_pid(rs_stage_pool *pool, uint32_t i);

/* The stage process's side: serves the rings until QUIT or the parent dies.
 * Returns the process exit code. */
int rs_stage_server_run(int shm_fd, int req_efd, int resp_efd, uint64_t arena_bytes);

#endif

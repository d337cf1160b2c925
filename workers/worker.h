/* worker.h — the worker process: loads models, serves batches.
 *
 * `ringserve worker --config F --port 9001 --model digits [--model ...]
 *  [--coordinator HOST:PORT] [--backend-dir D]`
 *
 * One io loop thread owns every connection (framed protocol: BATCH_REQUEST,
 * INFER_REQUEST straight from a client, PING) and the coordinator link
 * (REGISTER, HEARTBEAT, DEREGISTER). Each model instance has a compute
 * thread pinned by the topo plan, a bounded queue of job slots and its own
 * backend state, stage arena and output buffers, all allocated at load.
 * The loop validates each item against the model's input spec, copies the
 * valid ones into a free job slot (the batch tensors, contiguous), and hands
 * the job over; the compute thread runs pre stages -> backend -> post
 * stages, encodes the response into the slot and posts it back with
 * rs_loop_post. No slot free: the items get RS_E_OVERLOADED.
 *
 * Signals: SIGHUP rescans the model repository and loads new versions
 * (in-flight batches keep their version; versions gone from disk stop
 * taking batches and are freed once idle); SIGTERM/SIGINT deregisters,
 * stops accepting, finishes in-flight batches, flushes replies and exits 0
 * (bounded by drain_timeout_ms).
 *
 * The `worker:` config section (every field optional):
 *   worker:
 *     id: w1                   # default "<host>:<port>"
 *     host: 127.0.0.1          # listen address, also advertised at REGISTER
 *     port: 9001               # --port overrides
 *     queue_depth: 4           # job slots per model instance (bounded queue)
 *     stage_arena_mb: 16       # stage outputs per compute thread
 *     variable_io_mb: 4        # buffer for an input/output with variable dims
 *     heartbeat_interval_ms: 1000   # unless the coordinator's ACK says otherwise
 *     drain_timeout_ms: 10000
 *     stage_pool: {processes: 1, ring_mb: 16, arena_mb: 64, timeout_ms: 10000}
 *     max_conns: 256
 * and from `cluster:` the worker reads `token` (sent at REGISTER). */
#ifndef RS_WORKER_H
#define RS_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "engine/model_registry/registry.h"
#include "workers/stages/pool.h"

#define RS_WORKER_ID_BYTES 65
#define RS_WORKER_HOST_BYTES 257

typedef struct rs_worker_config {
    char id[RS_WORKER_ID_BYTES];
    char host[RS_WORKER_HOST_BYTES];
    uint16_t port;
    uint32_t queue_depth;
    uint64_t stage_arena_bytes;
    uint64_t variable_io_bytes;
    uint32_t heartbeat_interval_ms;
    uint32_t drain_timeout_ms;
    uint32_t max_conns;
    rs_stage_pool_config pool;
    char token[RS_WORKER_HOST_BYTES];
    /* from the command line */
    char coordinator_host[RS_WORKER_HOST_BYTES];
    uint16_t coordinator_port; /* 0: no coordinator */
} rs_worker_config;

void rs_worker_config_default(rs_worker_config *out);
/* Parses `worker:` (absent = defaults) and `cluster.token`; refuses unknown
 * fields with "<file>:<line>: worker.<field>: ...". */
int rs_worker_config_parse(const rs_cfg_node *worker, const rs_cfg_node *cluster,
                           rs_worker_config *out, rs_err *err);

/* Runs a worker until SIGTERM/SIGINT. models_cfg: the registry config (the
 * load list already narrowed by --model); topo_section, io_section:
 * `topology:` and `io:` (either may be absent). Returns the exit code. */
int rs_worker_main(const rs_worker_config *cfg, const rs_registry_config *models_cfg,
                   const rs_cfg_node *topo_section, const rs_cfg_node *io_section);

#endif

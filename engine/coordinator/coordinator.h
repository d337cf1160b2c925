/* coordinator.h — the coordinator process: configuration and entry points.
 *
 * `ringserve coordinator` and `ringserve serve` both run rs_coord_run; serve
 * also supervises worker processes (supervisor.h). */
#ifndef RS_COORDINATOR_H
#define RS_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"

#define RS_COORD_HOST_BYTES 64

typedef enum rs_trace_mode {
    RS_TRACE_OFF = 0,
    RS_TRACE_ON = 1,
    RS_TRACE_SAMPLED = 2,
} rs_trace_mode;

/* io threads (cores) per coordinator: server.io_threads' bound, the cap on
 * one per planned core, and the size of the accept hook's per-core table. */
#define RS_COORD_MAX_CORES 64

/* The `server:` and `telemetry:` sections. */
typedef struct rs_coord_config {
    char host[RS_COORD_HOST_BYTES];
    uint16_t http_port;            /* 0: any free port (tests) */
    uint16_t framed_port;
    uint32_t io_threads;           /* 0: one per core of the process's cpuset, at most RS_COORD_MAX_CORES */
    uint32_t max_pending;          /* requests in flight per core */
    uint64_t request_arena_bytes;  /* tensor bytes of one request (parsed inputs) */
    uint64_t max_body_bytes;       /* HTTP body -> 413 */
    uint64_t max_frame_bytes;      /* framed payload limit */
    uint64_t max_response_bytes;   /* rendered response */
    uint32_t max_inflight_batches; /* per core */
    uint32_t max_batches_per_model; /* per model and core: more requests wait in the batcher */
    uint64_t default_timeout_us;   /* request deadline when the request gives none; 0 = none */
    uint64_t worker_timeout_ms;    /* a batch not answered in this time is retried / fails */
    uint64_t drain_timeout_ms;
    uint64_t async_result_ttl_s;
    uint32_t max_async_results;
    uint64_t max_async_result_bytes;
    uint32_t priority_levels;
    uint32_t retry_after_s;        /* Retry-After on 429/503 */
    /* telemetry */
    bool metrics;
    rs_trace_mode trace;
    uint32_t trace_sample_percent;
    /* from the command line */
    char config_file[512];
    bool skip_bad_models;
} rs_coord_config;

void rs_coord_config_default(rs_coord_config *cfg);
/* Parses `server:` and `telemetry:` of root and checks the top-level keys. */
int rs_coord_config_parse(const rs_cfg_node *root, rs_coord_config *out, rs_err *err);

/* Command-line overrides applied after the config file. */
typedef struct rs_coord_overrides {
    int http_port;   /* -1: keep */
    int framed_port; /* -1: keep */
    uint32_t n_workers;
    const char *workers[64]; /* --worker HOST:PORT */
    bool skip_bad_models;
} rs_coord_overrides;

/* Loads the config file, validates everything, runs until SIGTERM/SIGINT,
 * drains and returns the exit code. on_ready (may be NULL) is called once
 * the listeners are up (serve starts its workers there). */
typedef void (*rs_coord_ready_fn)(void *arg, uint16_t http_port, uint16_t framed_port);
int rs_coord_main(const char *config_file, const rs_coord_overrides *ov, rs_coord_ready_fn on_ready,
                  void *arg);

#endif

/* supervisor.h — worker processes of the all-in-one node (`ringserve serve`).
 *
 * Spawns `ringserve worker` processes (posix_spawn of this binary), restarts
 * one that dies with exponential backoff, and reports a crash loop (more than
 * crash_loop_restarts restarts within crash_loop_window_s) with an ERROR
 * line and in rs_supervisor_stats — never hidden behind silent restarts.
 * Stop: SIGTERM to every worker (they finish in-flight batches), SIGKILL
 * after the timeout. */
#ifndef RS_SUPERVISOR_H
#define RS_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/common/config.h"
#include "engine/common/err.h"

#define RS_SUP_MAX_WORKERS 64
#define RS_SUP_MAX_MODELS 16

typedef struct rs_workers_config {
    uint32_t count;          /* worker processes (default 2; 0 = none) */
    char host[64];           /* where workers listen (default 127.0.0.1) */
    uint16_t base_port;      /* worker i listens on base_port + i (default 9101) */
    uint32_t n_models;       /* 0: every model of the registry */
    char models[RS_SUP_MAX_MODELS][65];
    uint64_t restart_backoff_ms; /* first restart delay (default 200) */
    uint64_t max_backoff_ms;     /* cap (default 5000) */
    uint32_t crash_loop_restarts;  /* default 5 */
    uint64_t crash_loop_window_s;  /* default 30 */
} rs_workers_config;

void rs_workers_config_default(rs_workers_config *cfg);
/* Parses the `workers:` section (absent: defaults). */
int rs_workers_config_parse(const rs_cfg_node *section, rs_workers_config *out, rs_err *err);

typedef struct rs_supervisor rs_supervisor;

/* Starts cfg->count workers of `exe` with argv:
 *   [global_args...] worker --config F --port P [--model M ...] --coordinator ADDR
 * and a thread that watches them. NULL with err when nothing could start. */
rs_supervisor *rs_supervisor_start(const rs_workers_config *cfg, const char *exe,
                                   const char *const *global_args, const char *config_file,
                                   const char *coordinator_addr, rs_err *err);
/* SIGTERM, wait up to timeout_ms, SIGKILL; joins the thread; frees. */
void rs_supervisor_stop(rs_supervisor *s, uint64_t timeout_ms);

typedef struct rs_supervisor_stats {
    uint32_t workers;
    uint32_t running;
    uint64_t restarts;       /* all workers, since start */
    uint32_t crash_looping;  /* workers currently in a crash loop */
} rs_supervisor_stats;
void rs_supervisor_stats_get(rs_supervisor *s, rs_supervisor_stats *out);
/* pid of worker i (0 while it is down): tests kill workers through it. */
pid_t rs_supervisor_pid(rs_supervisor *s, uint32_t i);

#endif

/* worker_config.c — the `worker:` config section (see worker.h). */
#include <stdio.h>
#include <string.h>

#include "workers/worker.h"

void rs_worker_config_default(rs_worker_config *out) {
    memset(out, 0, sizeof(*out));
    snprintf(out->host, sizeof(out->host), "127.0.0.1");
    out->port = 9001;
    out->queue_depth = 4;
    out->stage_arena_bytes = 16u << 20;
    out->variable_io_bytes = 4u << 20;
    out->heartbeat_interval_ms = 1000;
    out->drain_timeout_ms = 10000;
    out->max_conns = 256;
    rs_stage_pool_config_default(&out->pool);
}

static int parse_pool(const rs_cfg_node *n, rs_stage_pool_config *p, rs_err *err) {
    static const char *const keys[] = {"processes", "ring_mb", "arena_mb", "timeout_ms", NULL};
    if (!rs_cfg_present(n)) return 0;
    if (rs_cfg_check_keys(n, keys, err) != 0) return -1;
    uint64_t v;
    if (rs_cfg_u64(n, "processes", false, p->processes, 1, RS_STAGE_POOL_MAX_PROCESSES, &v, err))
        return -1;
    p->processes = (uint32_t)v;
    if (rs_cfg_u64(n, "ring_mb", false, p->ring_bytes >> 20, 1, 1024, &v, err)) return -1;
    if (v & (v - 1)) {
        rs_cfg_fail(n, err, "ring_mb: %llu: must be a power of two", (unsigned long long)v);
        return -1;
    }
    p->ring_bytes = v << 20;
    if (rs_cfg_u64(n, "arena_mb", false, p->arena_bytes >> 20, 1, 4096, &v, err)) return -1;
    p->arena_bytes = v << 20;
    if (rs_cfg_u64(n, "timeout_ms", false, p->timeout_ms, 10, 600000, &v, err)) return -1;
    p->timeout_ms = (uint32_t)v;
    return 0;
}

int rs_worker_config_parse(const rs_cfg_node *worker, const rs_cfg_node *cluster,
                           rs_worker_config *out, rs_err *err) {
    static const char *const keys[] = {"id", "host", "port", "queue_depth", "stage_arena_mb",
                                       "variable_io_mb", "heartbeat_interval_ms",
                                       "drain_timeout_ms", "stage_pool", "max_conns", NULL};
    rs_worker_config_default(out);
    if (cluster && rs_cfg_present(cluster) &&
        rs_cfg_str(cluster, "token", false, "", out->token, sizeof(out->token), err) != 0)
        return -1;
    if (!worker || !rs_cfg_present(worker)) return 0;
    if (!rs_cfg_is_map(worker)) {
        rs_cfg_fail(worker, err, "expected a mapping");
        return -1;
    }
    if (rs_cfg_check_keys(worker, keys, err) != 0) return -1;
    if (rs_cfg_str(worker, "id", false, "", out->id, sizeof(out->id), err) != 0) return -1;
    if (rs_cfg_str(worker, "host", false, out->host, out->host, sizeof(out->host), err) != 0)
        return -1;
    uint64_t v;
    if (rs_cfg_u64(worker, "port", false, out->port, 0, 65535, &v, err)) return -1;
    out->port = (uint16_t)v;
    if (rs_cfg_u64(worker, "queue_depth", false, out->queue_depth, 1, 1024, &v, err)) return -1;
    out->queue_depth = (uint32_t)v;
    if (rs_cfg_u64(worker, "stage_arena_mb", false, out->stage_arena_bytes >> 20, 1, 4096, &v, err))
        return -1;
    out->stage_arena_bytes = v << 20;
    if (rs_cfg_u64(worker, "variable_io_mb", false, out->variable_io_bytes >> 20, 1, 1024, &v, err))
        return -1;
    out->variable_io_bytes = v << 20;
    if (rs_cfg_u64(worker, "heartbeat_interval_ms", false, out->heartbeat_interval_ms, 10, 600000,
                   &v, err))
        return -1;
    out->heartbeat_interval_ms = (uint32_t)v;
    if (rs_cfg_u64(worker, "drain_timeout_ms", false, out->drain_timeout_ms, 0, 3600000, &v, err))
        return -1;
    out->drain_timeout_ms = (uint32_t)v;
    if (rs_cfg_u64(worker, "max_conns", false, out->max_conns, 1, 65536, &v, err)) return -1;
    out->max_conns = (uint32_t)v;
    rs_cfg_node pool = rs_cfg_get(worker, "stage_pool");
    return parse_pool(&pool, &out->pool, err);
}

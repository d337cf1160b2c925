/* coord_config.c — the `server:` and `telemetry:` sections, and the list of
 * top-level sections a ringserve config file may have. */
#include <stdio.h>
#include <string.h>

#include "engine/coordinator/batcher.h"

#include "engine/coordinator/coordinator.h"

void rs_coord_config_default(rs_coord_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->http_port = 8000;
    cfg->framed_port = 9000;
    cfg->io_threads = 0;
    cfg->max_pending = 1024;
    cfg->request_arena_bytes = 256 * 1024;
    cfg->max_body_bytes = 8 * 1024 * 1024;
    cfg->max_frame_bytes = 64u << 20;
    cfg->max_response_bytes = 8 * 1024 * 1024;
    cfg->max_inflight_batches = 1024;
    cfg->max_batches_per_model = 2;
    cfg->default_timeout_us = 30 * 1000 * 1000;
    cfg->worker_timeout_ms = 10000;
    cfg->drain_timeout_ms = 5000;
    cfg->async_result_ttl_s = 60;
    cfg->max_async_results = 256;
    cfg->max_async_result_bytes = 256 * 1024;
    cfg->priority_levels = 4;
    cfg->retry_after_s = 1;
    cfg->metrics = true;
    cfg->trace = RS_TRACE_OFF;
    cfg->trace_sample_percent = 1;
}

static const char *const rs_top_sections[] = {
    "server", "io", "topology", "cache", "models", "workers", "worker", "cluster",
    "load_balancer", "health", "retry", "telemetry", NULL,
};

static const char *const rs_server_keys[] = {
    "host", "http_port", "framed_port", "io_threads", "max_pending", "request_arena_bytes",
    "max_body_bytes", "max_frame_bytes", "max_response_bytes", "max_inflight_batches",
    "max_batches_per_model",
    "default_timeout_us", "worker_timeout_ms", "drain_timeout_ms", "async_result_ttl_s",
    "max_async_results", "max_async_result_bytes", "priority_levels", "retry_after_s", NULL,
};

static const char *const rs_telemetry_keys[] = {"metrics", "trace", "trace_sample_percent", NULL};

int rs_coord_config_parse(const rs_cfg_node *root, rs_coord_config *out, rs_err *err) {
    rs_coord_config_default(out);
    if (rs_cfg_check_keys(root, rs_top_sections, err) != 0) return -1;
    rs_cfg_node s = rs_cfg_get(root, "server");
    if (rs_cfg_present(&s)) {
        if (rs_cfg_check_keys(&s, rs_server_keys, err) != 0) return -1;
        uint64_t v;
        if (rs_cfg_str(&s, "host", false, "127.0.0.1", out->host, sizeof(out->host), err)) return -1;
        if (rs_cfg_u64(&s, "http_port", false, 8000, 0, 65535, &v, err)) return -1;
        out->http_port = (uint16_t)v;
        if (rs_cfg_u64(&s, "framed_port", false, 9000, 0, 65535, &v, err)) return -1;
        out->framed_port = (uint16_t)v;
        if (rs_cfg_u64(&s, "io_threads", false, 0, 0, RS_COORD_MAX_CORES, &v, err)) return -1;
        out->io_threads = (uint32_t)v;
        if (rs_cfg_u64(&s, "max_pending", false, 1024, 1, 1u << 20, &v, err)) return -1;
        out->max_pending = (uint32_t)v;
        if (rs_cfg_u64(&s, "request_arena_bytes", false, 256 * 1024, 4096, 1ull << 30,
                       &out->request_arena_bytes, err))
            return -1;
        if (rs_cfg_u64(&s, "max_body_bytes", false, 8 << 20, 1024, 1ull << 30,
                       &out->max_body_bytes, err))
            return -1;
        if (rs_cfg_u64(&s, "max_frame_bytes", false, 64u << 20, 1024, 1ull << 31,
                       &out->max_frame_bytes, err))
            return -1;
        if (rs_cfg_u64(&s, "max_response_bytes", false, 8 << 20, 4096, 1ull << 30,
                       &out->max_response_bytes, err))
            return -1;
        if (rs_cfg_u64(&s, "max_inflight_batches", false, 1024, 1, 1u << 16, &v, err)) return -1;
        out->max_inflight_batches = (uint32_t)v;
        if (rs_cfg_u64(&s, "max_batches_per_model", false, 2, 1, 1u << 16, &v, err)) return -1;
        out->max_batches_per_model = (uint32_t)v;
        if (rs_cfg_u64(&s, "default_timeout_us", false, 30000000, 0, 3600ull * 1000000,
                       &out->default_timeout_us, err))
            return -1;
        if (rs_cfg_u64(&s, "worker_timeout_ms", false, 10000, 1, 3600000, &out->worker_timeout_ms,
                       err))
            return -1;
        if (rs_cfg_u64(&s, "drain_timeout_ms", false, 5000, 0, 3600000, &out->drain_timeout_ms,
                       err))
            return -1;
        if (rs_cfg_u64(&s, "async_result_ttl_s", false, 60, 1, 86400, &out->async_result_ttl_s,
                       err))
            return -1;
        if (rs_cfg_u64(&s, "max_async_results", false, 256, 1, 1u << 20, &v, err)) return -1;
        out->max_async_results = (uint32_t)v;
        if (rs_cfg_u64(&s, "max_async_result_bytes", false, 256 * 1024, 1024, 1ull << 28,
                       &out->max_async_result_bytes, err))
            return -1;
        if (rs_cfg_u64(&s, "priority_levels", false, 4, 1, RS_BATCHER_MAX_PRIORITIES, &v, err))
            return -1;
        out->priority_levels = (uint32_t)v;
        if (rs_cfg_u64(&s, "retry_after_s", false, 1, 1, 3600, &v, err)) return -1;
        out->retry_after_s = (uint32_t)v;
    }
    rs_cfg_node t = rs_cfg_get(root, "telemetry");
    if (rs_cfg_present(&t)) {
        if (rs_cfg_check_keys(&t, rs_telemetry_keys, err) != 0) return -1;
        if (rs_cfg_bool(&t, "metrics", false, true, &out->metrics, err)) return -1;
        static const char *const modes[] = {"off", "on", "sampled", NULL};
        int mode = 0;
        /* YAML 1.1 reads bare on/off as booleans in other tools; accept both spellings. */
        rs_cfg_node tn = rs_cfg_get(&t, "trace");
        const char *tv = rs_cfg_scalar(&tn);
        if (tv && (strcmp(tv, "true") == 0 || strcmp(tv, "yes") == 0)) mode = RS_TRACE_ON;
        else if (tv && (strcmp(tv, "false") == 0 || strcmp(tv, "no") == 0)) mode = RS_TRACE_OFF;
        else if (rs_cfg_enum(&t, "trace", false, RS_TRACE_OFF, modes, &mode, err)) return -1;
        out->trace = (rs_trace_mode)mode;
        uint64_t v;
        if (rs_cfg_u64(&t, "trace_sample_percent", false, 1, 0, 100, &v, err)) return -1;
        out->trace_sample_percent = (uint32_t)v;
    }
    return 0;
}

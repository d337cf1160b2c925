/* retry.c — see retry.h. */
#include "engine/router/retry.h"

#include <string.h>

void rs_retry_config_default(rs_retry_config *cfg) {
    cfg->max_attempts = 3;
    cfg->budget_percent = 10;
    cfg->budget_window_ms = 10000;
    cfg->min_retries = 3;
}

int rs_retry_config_parse(const rs_cfg_node *section, rs_retry_config *out, rs_err *err) {
    static const char *const keys[] = {"max_attempts", "budget_percent", "budget_window_ms",
                                       "min_retries", NULL};
    rs_retry_config_default(out);
    if (!rs_cfg_present(section)) return 0;
    if (rs_cfg_check_keys(section, keys, err) != 0) return -1;
    uint64_t v;
    if (rs_cfg_u64(section, "max_attempts", false, out->max_attempts, 1, 10, &v, err)) return -1;
    out->max_attempts = (uint32_t)v;
    if (rs_cfg_u64(section, "budget_percent", false, out->budget_percent, 0, 100, &v, err))
        return -1;
    out->budget_percent = (uint32_t)v;
    if (rs_cfg_u64(section, "min_retries", false, out->min_retries, 0, 1000000, &v, err)) return -1;
    out->min_retries = (uint32_t)v;
    if (rs_cfg_u64(section, "budget_window_ms", false, out->budget_window_ms, RS_RETRY_BUCKETS,
                   3600000, &out->budget_window_ms, err))
        return -1;
    return 0;
}

bool rs_outcome_retryable(rs_outcome o) {
    return o == RS_OUTCOME_CONN_FAILED || o == RS_OUTCOME_TIMEOUT || o == RS_OUTCOME_TRANSIENT;
}

rs_outcome rs_outcome_from_status(rs_status st) {
    switch (st) {
    case RS_E_TRANSIENT:
    case RS_E_OVERLOADED:
    case RS_E_UNAVAILABLE: return RS_OUTCOME_TRANSIENT;
    case RS_E_BACKEND:
    case RS_E_INTERNAL: return RS_OUTCOME_WORKER_ERROR;
    default: break;
    }
    /* frame-level errors (io/frame.h: 1..9) mean the connection is being closed */
    return st >= RS_E_BAD_MAGIC && st <= RS_E_MALFORMED ? RS_OUTCOME_CONN_FAILED : RS_OUTCOME_OK;
}

const char *rs_outcome_name(rs_outcome o) {
    switch (o) {
    case RS_OUTCOME_OK: return "ok";
    case RS_OUTCOME_CONN_FAILED: return "connection_failed";
    case RS_OUTCOME_TIMEOUT: return "timeout";
    case RS_OUTCOME_TRANSIENT: return "transient";
    case RS_OUTCOME_WORKER_ERROR: return "worker_error";
    case RS_OUTCOME_CANCELLED: return "cancelled";
    }
    return "?";
}

void rs_retry_budget_init(rs_retry_budget *b, const rs_retry_config *cfg, uint64_t now_ns) {
    memset(b, 0, sizeof(*b));
    b->cfg = cfg;
    b->bucket_ns = cfg->budget_window_ms * 1000000ull / RS_RETRY_BUCKETS;
    b->bucket_index = now_ns / b->bucket_ns;
}

/* Moves the window to now, zeroing the buckets that fell out of it. */
static uint32_t advance(rs_retry_budget *b, uint64_t now_ns) {
    uint64_t idx = now_ns / b->bucket_ns;
    if (idx > b->bucket_index) {
        uint64_t steps = idx - b->bucket_index;
        if (steps > RS_RETRY_BUCKETS) steps = RS_RETRY_BUCKETS;
        for (uint64_t s = 1; s <= steps; s++) {
            uint32_t i = (uint32_t)((b->bucket_index + s) % RS_RETRY_BUCKETS);
            b->requests[i] = 0;
            b->retries[i] = 0;
        }
        b->bucket_index = idx;
    }
    return (uint32_t)(b->bucket_index % RS_RETRY_BUCKETS);
}

void rs_retry_budget_note_request(rs_retry_budget *b, uint64_t now_ns) {
    b->requests[advance(b, now_ns)]++;
}

void rs_retry_budget_window(rs_retry_budget *b, uint64_t now_ns, uint64_t *requests,
                            uint64_t *retries) {
    (void)advance(b, now_ns);
    uint64_t rq = 0, rt = 0;
    for (int i = 0; i < RS_RETRY_BUCKETS; i++) {
        rq += b->requests[i];
        rt += b->retries[i];
    }
    *requests = rq;
    *retries = rt;
}

bool rs_retry_budget_take(rs_retry_budget *b, uint64_t now_ns) {
    uint64_t rq, rt;
    rs_retry_budget_window(b, now_ns, &rq, &rt);
    /* (rt + 1) <= rq * percent / 100 + min_retries, in integers */
    if ((rt + 1) * 100 > rq * b->cfg->budget_percent + (uint64_t)b->cfg->min_retries * 100) {
        b->refused_total++;
        return false;
    }
    b->retries[b->bucket_index % RS_RETRY_BUCKETS]++;
    b->retries_total++;
    return true;
}

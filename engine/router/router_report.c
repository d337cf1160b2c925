/* router_report.c — the worker table for people and for Prometheus:
 * `GET /v2/workers` JSON (jansson) and the same figures as metric lines.
 * Not on the hot path: JSON allocates, the metrics writer does not. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/router/router.h"

#define NS_PER_MS 1000000ull

static const char *worker_state(const rs_worker *w) {
    if (w->health.state != RS_HEALTH_UP) return rs_health_state_name(w->health.state);
    return w->health.breaker == RS_BREAKER_CLOSED ? "up" : "breaker_open";
}

static void format_address(char *out, size_t cap, const rs_worker *w) {
    if (strchr(w->host, ':'))
        snprintf(out, cap, "[%s]:%u", w->host, w->port);
    else
        snprintf(out, cap, "%s:%u", w->host, w->port);
}

json_t *rs_router_workers_json(const rs_router *r) {
    uint64_t now = rs_router_now_ns(r);
    json_t *list = json_array();
    for (uint32_t s = 0; s < rs_router_capacity(r); s++) {
        const rs_worker *w = rs_router_worker_at(r, s);
        if (!w) continue;
        char addr[RS_HOST_BYTES + 16];
        format_address(addr, sizeof(addr), w);
        json_t *models = json_array();
        if (w->any_model) json_array_append_new(models, json_pack("{s:s}", "name", "*"));
        for (uint32_t i = 0; i < w->n_models; i++)
            json_array_append_new(models, json_pack("{s:s,s:s,s:i}", "name", w->models[i].name,
                                                    "version", w->models[i].version, "shard",
                                                    (json_int_t)w->models[i].shard));
        json_t *hb = w->is_static ? json_null()
                                  : json_integer((json_int_t)((now - w->last_heartbeat_ns) /
                                                              NS_PER_MS));
        json_t *o = json_pack(
            "{s:s,s:s,s:o,s:s,s:s,s:s,s:b,s:I,s:f,s:f,s:I,s:I,s:o,s:I,s:I,s:i,s:i}", "id", w->id,
            "address", addr, "models", models, "state", worker_state(w), "health",
            rs_health_state_name(w->health.state), "breaker",
            rs_breaker_state_name(w->health.breaker), "static", w->is_static, "in_flight",
            (json_int_t)w->lb.in_flight, "ewma_latency_us",
            w->lb.latency_samples ? w->lb.ewma_latency_us : 0.0, "error_rate", w->error_rate,
            "requests", (json_int_t)w->requests, "failures", (json_int_t)w->failures,
            "last_heartbeat_ms_ago", hb, "weight", (json_int_t)w->lb.weight, "capacity",
            (json_int_t)w->capacity, "numa_node", (int)w->numa_node, "gpu", (int)w->gpu);
        json_array_append_new(list, o);
    }
    return json_pack("{s:o}", "workers", list);
}

/* ---- Prometheus text ---- */

typedef struct out_buf {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
} out_buf;

static void put(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_buf *o, const char *fmt, ...) {
    if (o->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    o->len += (size_t)n;
}

/* Label values escape \, " and newline (text exposition format). */
static void escape_label(char *out, size_t cap, const char *in) {
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 2 < cap; i++) {
        char c = in[i];
        if (c == '\\' || c == '"' || c == '\n') {
            out[j++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        out[j++] = c;
    }
    out[j] = '\0';
}

typedef enum metric { M_UP, M_BREAKER, M_IN_FLIGHT, M_LATENCY, M_ERR_RATE, M_REQ, M_FAIL, M_HB } metric;

static const struct {
    const char *name, *type, *help;
} metrics[] = {
    [M_UP] = {"ringserve_worker_up", "gauge", "1 when the worker is up and its breaker closed"},
    [M_BREAKER] = {"ringserve_worker_breaker_open", "gauge",
                   "1 when the worker's circuit breaker is open or half-open"},
    [M_IN_FLIGHT] = {"ringserve_worker_in_flight", "gauge", "requests sent and not yet answered"},
    [M_LATENCY] = {"ringserve_worker_latency_ewma_seconds", "gauge",
                   "EWMA of the worker's observed latency"},
    [M_ERR_RATE] = {"ringserve_worker_error_rate", "gauge", "EWMA of the failed-request ratio"},
    [M_REQ] = {"ringserve_worker_requests_total", "counter", "requests that ended on the worker"},
    [M_FAIL] = {"ringserve_worker_failures_total", "counter",
                "requests that failed on the worker (connection, timeout, worker error)"},
    [M_HB] = {"ringserve_worker_heartbeat_age_seconds", "gauge",
              "time since the worker's last heartbeat (registered workers)"},
};

int rs_router_metrics_append(const rs_router *r, char *buf, size_t cap, size_t *len) {
    if (*len > cap) return -1;
    out_buf o = {buf, cap, *len, false};
    uint64_t now = rs_router_now_ns(r);
    for (int m = M_UP; m <= M_HB; m++) {
        put(&o, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name, metrics[m].help, metrics[m].name,
            metrics[m].type);
        for (uint32_t s = 0; s < rs_router_capacity(r); s++) {
            const rs_worker *w = rs_router_worker_at(r, s);
            if (!w) continue;
            if (m == M_HB && w->is_static) continue;
            char id[2 * RS_WORKER_ID_BYTES], addr[RS_HOST_BYTES + 16], eaddr[2 * sizeof(addr)];
            escape_label(id, sizeof(id), w->id);
            format_address(addr, sizeof(addr), w);
            escape_label(eaddr, sizeof(eaddr), addr);
            put(&o, "%s{worker=\"%s\",address=\"%s\"} ", metrics[m].name, id, eaddr);
            switch ((metric)m) {
            case M_UP:
                put(&o, "%d\n", w->health.state == RS_HEALTH_UP &&
                                    w->health.breaker == RS_BREAKER_CLOSED);
                break;
            case M_BREAKER: put(&o, "%d\n", w->health.breaker != RS_BREAKER_CLOSED); break;
            case M_IN_FLIGHT: put(&o, "%" PRIu32 "\n", w->lb.in_flight); break;
            case M_LATENCY:
                put(&o, "%.6f\n", w->lb.latency_samples ? w->lb.ewma_latency_us / 1e6 : 0.0);
                break;
            case M_ERR_RATE: put(&o, "%.6f\n", w->error_rate); break;
            case M_REQ: put(&o, "%" PRIu64 "\n", w->requests); break;
            case M_FAIL: put(&o, "%" PRIu64 "\n", w->failures); break;
            case M_HB:
                put(&o, "%.3f\n", (double)(now - w->last_heartbeat_ns) / 1e9);
                break;
            }
        }
    }
    const rs_retry_budget *b = rs_router_retry_budget(r);
    put(&o,
        "# HELP ringserve_retries_total retries granted by the retry budget\n"
        "# TYPE ringserve_retries_total counter\nringserve_retries_total %" PRIu64 "\n"
        "# HELP ringserve_retries_refused_total retries refused because the budget was spent\n"
        "# TYPE ringserve_retries_refused_total counter\nringserve_retries_refused_total %" PRIu64
        "\n",
        b->retries_total, b->refused_total);
    if (o.overflow) return -1;
    *len = o.len;
    return 0;
}

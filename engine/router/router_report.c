/* router_report.c — the worker table for people and for Prometheus:
 * `GET /v2/workers` JSON (json-c) and the same figures as metric lines.
 * Not on the hot path: JSON allocates, the metrics writer does not. */
#include <inttypes.h>
#include <json-c/json.h>
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

static void add_str(json_object *o, const char *k, const char *v) {
    json_object_object_add(o, k, json_object_new_string(v));
}

static void add_int(json_object *o, const char *k, int64_t v) {
    json_object_object_add(o, k, json_object_new_int64(v));
}

struct json_object *rs_router_workers_json(const rs_router *r) {
    uint64_t now = rs_router_now_ns(r);
    json_object *list = json_object_new_array();
    for (uint32_t s = 0; s < rs_router_capacity(r); s++) {
        const rs_worker *w = rs_router_worker_at(r, s);
        if (!w) continue;
        char addr[RS_HOST_BYTES + 16];
        format_address(addr, sizeof(addr), w);
        json_object *models = json_object_new_array();
        if (w->any_model) {
            json_object *m = json_object_new_object();
            add_str(m, "name", "*");
            json_object_array_add(models, m);
        }
        for (uint32_t i = 0; i < w->n_models; i++) {
            json_object *m = json_object_new_object();
            add_str(m, "name", w->models[i].name);
            add_str(m, "version", w->models[i].version);
            add_int(m, "shard", w->models[i].shard);
            json_object_array_add(models, m);
        }
        json_object *o = json_object_new_object();
        add_str(o, "id", w->id);
        add_str(o, "address", addr);
        json_object_object_add(o, "models", models);
        add_str(o, "state", worker_state(w));
        add_str(o, "health", rs_health_state_name(w->health.state));
        add_str(o, "breaker", rs_breaker_state_name(w->health.breaker));
        json_object_object_add(o, "static", json_object_new_boolean(w->is_static));
        add_int(o, "in_flight", w->lb.in_flight);
        json_object_object_add(
            o, "ewma_latency_us",
            json_object_new_double(w->lb.latency_samples ? w->lb.ewma_latency_us : 0.0));
        json_object_object_add(o, "error_rate", json_object_new_double(w->error_rate));
        add_int(o, "requests", (int64_t)w->requests);
        add_int(o, "failures", (int64_t)w->failures);
        json_object_object_add(
            o, "last_heartbeat_ms_ago",
            w->is_static
                ? NULL
                : json_object_new_int64((int64_t)((now - w->last_heartbeat_ns) / NS_PER_MS)));
        add_int(o, "weight", w->lb.weight);
        add_int(o, "capacity", w->capacity);
        add_int(o, "numa_node", w->numa_node);
        add_int(o, "gpu", w->gpu);
        json_object_array_add(list, o);
    }
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "workers", list);
    return doc;
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

typedef enum metric {
    M_UP,
    M_BREAKER,
    M_IN_FLIGHT,
    M_LATENCY,
    M_ERR_RATE,
    M_REQ,
    M_FAIL,
    M_HB
} metric;

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
                put(&o, "%d\n",
                    w->health.state == RS_HEALTH_UP && w->health.breaker == RS_BREAKER_CLOSED);
                break;
            case M_BREAKER: put(&o, "%d\n", w->health.breaker != RS_BREAKER_CLOSED); break;
            case M_IN_FLIGHT: put(&o, "%" PRIu32 "\n", w->lb.in_flight); break;
            case M_LATENCY:
                put(&o, "%.6f\n", w->lb.latency_samples ? w->lb.ewma_latency_us / 1e6 : 0.0);
                break;
            case M_ERR_RATE: put(&o, "%.6f\n", w->error_rate); break;
            case M_REQ: put(&o, "%" PRIu64 "\n", w->requests); break;
            case M_FAIL: put(&o, "%" PRIu64 "\n", w->failures); break;
            case M_HB: put(&o, "%.3f\n", (double)(now - w->last_heartbeat_ns) / 1e9); break;
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

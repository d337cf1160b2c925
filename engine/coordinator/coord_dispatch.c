/* coord_dispatch.c — batches to workers and their answers.
 *
 * A flushed batch becomes an rs_flight: the router picks a worker (load
 * balancing, health, breaker), the batch goes out as one BATCH_REQUEST on the
 * core's persistent connection to that worker, and a timer bounds the wait.
 * The BATCH_RESPONSE answers each item (and every request coalesced onto
 * it). A lost connection, a timeout or a transient worker error retries the
 * whole batch on another worker while retry.max_attempts and the retry
 * budget allow; then every request gets one explicit error. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "engine/coordinator/coord.h"
#include "io/framed.h"

static void rs_flight_send(rs_core *core, rs_flight *f);

static uint32_t rs_flight_index(const rs_core *core, const rs_flight *f) {
    return (uint32_t)(f - core->flights);
}

static uint64_t rs_flight_wire_id(const rs_core *core, const rs_flight *f) {
    return ((uint64_t)f->gen << 32) | rs_flight_index(core, f);
}

static rs_flight *rs_flight_lookup(rs_core *core, uint64_t wire_id) {
    uint32_t index = (uint32_t)(wire_id & 0xffffffffu);
    if (index >= core->co->cfg.max_inflight_batches) return NULL;
    rs_flight *f = &core->flights[index];
    if (!f->used || f->gen != (uint32_t)(wire_id >> 32)) return NULL;
    return f;
}

static void rs_flight_free(rs_core *core, rs_flight *f) {
    rs_loop_timer_cancel(core->loop, &f->timeout);
    f->used = false;
    rs_core_model *cm = &core->models[f->model_index];
    RS_ASSERT(cm->flights > 0);
    cm->flights--;
    cm->dirty = true; /* room for the next batch: poll the batcher again */
}

static void rs_flight_busy(rs_core *core, rs_flight *f, const char *why, bool release);

/* ---- completing items ------------------------------------------------------ */

typedef struct rs_item_result {
    rs_core *core;
    rs_status status;
    const char *message;
    const rs_tensor_list *outputs;
    uint64_t worker_ns;
} rs_item_result;

static void rs_item_done(void *arg, uint64_t token) {
    rs_item_result *res = arg;
    rs_req *r = rs_req_from_token(res->core, token);
    if (!r) return;
    r->t_worker_ns = res->worker_ns;
    if (!r->t_dispatch_ns) r->t_dispatch_ns = res->worker_ns;
    if (res->status == RS_OK)
        rs_req_succeed(res->core, r, res->outputs, false);
    else
        rs_req_fail(res->core, r, res->status, "%s", res->message);
}

static void rs_flight_fail_items(rs_core *core, rs_flight *f, rs_status st, const char *msg) {
    rs_item_result res = {.core = core, .status = st, .message = msg, .worker_ns = rs_now_ns()};
    rs_batcher *b = core->models[f->model_index].batcher;
    for (uint32_t i = 0; i < f->n_items; i++) rs_batcher_complete(b, f->items[i].ticket, rs_item_done, &res);
    core->models[f->model_index].dirty = true; /* room in flight: poll again */
}

/* Ends a flight that failed as a whole: retry elsewhere, or fail every item. */
static void rs_flight_failed(rs_core *core, rs_flight *f, rs_outcome outcome, rs_status st,
                             const char *why) {
    /* A worker that answers "at capacity" is alive: retry elsewhere, but do
     * not count it against its health (the breaker would shut out a busy
     * but healthy worker). */
    bool busy = outcome == RS_OUTCOME_TRANSIENT && st == RS_E_OVERLOADED;
    rs_router_release(core->router, &f->ticket, busy ? RS_OUTCOME_OK : outcome);
    f->last_status = st;
    snprintf(f->last_why, sizeof(f->last_why), "%s", why);
    if (f->n_tried < sizeof(f->tried) / sizeof(f->tried[0])) f->tried[f->n_tried++] = f->ticket.worker;
    if (!atomic_load(&core->co->draining) &&
        rs_router_retry_allowed(core->router, outcome, f->attempt)) {
        f->attempt++;
        rs_metrics_counter_add(core->ms, core->co->m_retries, 1);
        RS_DEBUG("retrying batch of model '%s' (attempt %u): %s", core->models[f->model_index].model->name,
                 f->attempt, why);
        rs_loop_timer_cancel(core->loop, &f->timeout);
        rs_flight_send(core, f);
        return;
    }
    char msg[384];
    snprintf(msg, sizeof(msg), "%s (after %u attempt%s)", why, f->attempt, f->attempt == 1 ? "" : "s");
    rs_flight_fail_items(core, f, st, msg);
    rs_flight_free(core, f);
}

void rs_flight_timeout(rs_loop *loop, rs_timer *t, void *arg) {
    (void)loop;
    (void)t;
    rs_flight *f = arg;
    char why[160];
    snprintf(why, sizeof(why), "worker did not answer within server.worker_timeout_ms (%" PRIu64 " ms)",
             f->core->co->cfg.worker_timeout_ms);
    rs_flight_failed(f->core, f, RS_OUTCOME_TIMEOUT, RS_E_DEADLINE, why);
}

/* ---- sending ------------------------------------------------------------------ */

static rs_wconn *rs_wconn_for(rs_core *core, rs_worker_ref ref) {
    if (ref.slot >= core->n_wconns) return NULL;
    rs_wconn *w = &core->wconns[ref.slot];
    if (w->ref.gen != ref.gen) return NULL;
    return w;
}

static void rs_flight_send(rs_core *core, rs_flight *f) {
    rs_core_model *cm = &core->models[f->model_index];
    const rs_model *m = cm->model;
    rs_req *lead = rs_req_from_token(core, f->items[0].token);
    rs_route_req q = {.model = rs_str_c(m->name),
                      .version = {0},
                      .shard = 0,
                      .exclude = f->tried,
                      .n_exclude = f->n_tried};
    if (lead && lead->routing_key[0]) {
        q.has_routing_key = true;
        q.key_hash = rs_router_key_hash(lead->routing_key, strlen(lead->routing_key));
    } else if (lead) {
        q.key_hash = lead->key.lo;
    }
    rs_err err = {{0}};
    int rc = rs_router_pick(core->router, &q, &f->ticket, &err);
    if (rc == -RS_E_OVERLOADED) {
        /* Every worker is at its registered capacity: wait for room, do not fail. */
        char why[RS_ERR_MSG_BYTES + 64];
        snprintf(why, sizeof(why), "no worker has room for model '%s': %s", m->name, err.msg);
        rs_flight_busy(core, f, why, false);
        return;
    }
    if (rc != 0) {
        rs_status st = RS_E_UNAVAILABLE;
        char msg[RS_ERR_MSG_BYTES + 256];
        if (f->n_tried > 0) {
            /* A retry found no other worker: answer with the first failure. */
            st = f->last_status;
            snprintf(msg, sizeof(msg), "%s (no other worker to retry on, after %u attempt%s)", f->last_why,
                     f->attempt - 1, f->attempt == 2 ? "" : "s");
        } else {
            snprintf(msg, sizeof(msg), "no worker can serve model '%s': %s", m->name, err.msg);
        }
        rs_flight_fail_items(core, f, st, msg);
        rs_flight_free(core, f);
        return;
    }
    rs_wconn *w = rs_wconn_for(core, f->ticket.worker);
    rs_conn *c = (w && w->connected) ? rs_loop_conn(core->loop, w->conn) : NULL;
    if (!c) {
        rs_flight_failed(core, f, RS_OUTCOME_CONN_FAILED, RS_E_UNAVAILABLE, "worker connection is down");
        return;
    }
    rs_fw fw;
    rs_fw_init(&fw, core->scratch, core->scratch_bytes);
    char version[16];
    snprintf(version, sizeof(version), "%u", m->version);
    rs_fw_batch_request_begin(&fw, rs_flight_wire_id(core, f), rs_str_c(m->name), rs_str_c(version), 0,
                              rs_str_c(lead ? lead->traceparent : ""), f->n_items);
    uint64_t now = rs_now_ns();
    for (uint32_t i = 0; i < f->n_items; i++) {
        rs_req *r = rs_req_from_token(core, f->items[i].token);
        RS_ASSERT(r != NULL);
        rs_fw_batch_request_item(&fw, i, &r->kreq.inputs);
        if (f->attempt == 1) r->t_dispatch_ns = now;
    }
    int src = rs_framed_send_fw(c, &fw);
    if (src == -EMSGSIZE) {
        rs_router_release(core->router, &f->ticket, RS_OUTCOME_CANCELLED);
        rs_flight_fail_items(core, f, RS_E_INTERNAL,
                             "batch does not fit the coordinator's send buffer (server.max_frame_bytes)");
        rs_flight_free(core, f);
        return;
    }
    if (src != 0) {
        rs_flight_failed(core, f, src == -ENOBUFS ? RS_OUTCOME_TRANSIENT : RS_OUTCOME_CONN_FAILED,
                         RS_E_UNAVAILABLE, "could not send the batch to the worker");
        return;
    }
    f->timeout.fn = rs_flight_timeout;
    rs_loop_timer_arm(core->loop, &f->timeout, core->co->cfg.worker_timeout_ms * 1000);
}

void rs_dispatch_batch(rs_core *core, uint32_t mi, const rs_batcher_item *items, uint32_t n) {
    rs_coord *co = core->co;
    rs_flight *f = NULL;
    for (uint32_t k = 0; k < co->cfg.max_inflight_batches; k++) {
        uint32_t i = (core->flight_cursor + k) % co->cfg.max_inflight_batches;
        if (!core->flights[i].used) {
            f = &core->flights[i];
            core->flight_cursor = i + 1;
            break;
        }
    }
    rs_metrics_observe(core->ms, co->m_batch_size[mi], n);
    if (!f) {
        /* Every flight slot is busy: answer overloaded rather than queue more. */
        rs_item_result res = {.core = core, .status = RS_E_OVERLOADED,
                              .message = "too many batches in flight (server.max_inflight_batches)",
                              .worker_ns = rs_now_ns()};
        for (uint32_t i = 0; i < n; i++)
            rs_batcher_complete(core->models[mi].batcher, items[i].ticket, rs_item_done, &res);
        return;
    }
    RS_ASSERT(n <= co->max_batch);
    core->models[mi].flights++;
    f->used = true;
    f->gen++;
    f->model_index = mi;
    f->n_items = n;
    f->attempt = 1;
    f->n_tried = 0;
    f->last_status = RS_OK;
    f->last_why[0] = '\0';
    f->first_sent_ns = rs_now_ns();
    f->busy_resends = 0;
    f->core = core;
    memcpy(f->items, items, n * sizeof(*items));
    rs_flight_send(core, f);
}

/* ---- a worker at capacity -------------------------------------------------------- */

static void rs_flight_resend(rs_loop *loop, rs_timer *t, void *arg) {
    (void)loop;
    (void)t;
    rs_flight *f = arg;
    rs_flight_send(f->core, f);
}

/* The worker refused the whole batch because its queue is full. That is
 * backpressure, not failure: the batch waits here (short, growing pauses,
 * at most worker_timeout_ms in all) and goes out again to whichever worker
 * the router picks then. Meanwhile the batcher holds new requests (its
 * in-flight limit is reached), so the next batches grow — and when its
 * queue is full, new requests get 429. */
static void rs_flight_busy(rs_core *core, rs_flight *f, const char *why, bool release) {
    if (release) rs_router_release(core->router, &f->ticket, RS_OUTCOME_OK); /* alive, just busy */
    uint64_t waited_ms = (rs_now_ns() - f->first_sent_ns) / 1000000ull;
    if (atomic_load(&core->co->draining) || waited_ms >= core->co->cfg.worker_timeout_ms) {
        char msg[RS_MAX_ERROR_MSG_BYTES + 64];
        snprintf(msg, sizeof(msg), "overloaded: %s (waited %" PRIu64 " ms for room)", why, waited_ms);
        rs_flight_fail_items(core, f, RS_E_OVERLOADED, msg);
        rs_flight_free(core, f);
        return;
    }
    f->busy_resends++;
    uint32_t shift = f->busy_resends < 6 ? f->busy_resends : 6;
    uint64_t delay_us = 100ull << shift; /* 200 µs .. 6.4 ms */
    rs_loop_timer_cancel(core->loop, &f->timeout);
    f->timeout.fn = rs_flight_resend;
    rs_loop_timer_arm(core->loop, &f->timeout, delay_us);
}

/* ---- answers ------------------------------------------------------------------- */

static void rs_on_batch_response(rs_core *core, rs_wconn *w, uint64_t wire_id,
                                 const rs_batch_response *br) {
    rs_flight *f = rs_flight_lookup(core, wire_id);
    if (!f || f->ticket.worker.slot != w->ref.slot || f->ticket.worker.gen != w->ref.gen) {
        RS_DEBUG("batch response %" PRIx64 " matches no batch in flight (late or retried)", wire_id);
        return;
    }
    rs_loop_timer_cancel(core->loop, &f->timeout);
    rs_core_model *cm = &core->models[f->model_index];
    /* A batch the worker refused as a whole (no job slot: every item
     * OVERLOADED or TRANSIENT) is retried on another worker, like a lost
     * connection, before any request is answered. */
    {
        rs_batch_iter pre;
        rs_batch_item_result it0;
        uint32_t n = 0, busy = 0;
        char why[RS_MAX_ERROR_MSG_BYTES + 1] = "worker is at capacity";
        rs_batch_response_iter(br, &pre);
        while (rs_batch_response_next(&pre, &it0) == 1) {
            n++;
            if (it0.status == RS_E_OVERLOADED || it0.status == RS_E_TRANSIENT) {
                busy++;
                rs_str_copy(why, sizeof(why), it0.message);
            }
        }
        if (n > 0 && busy == n) {
            rs_flight_busy(core, f, why, true);
            return;
        }
    }
    uint8_t answered[RS_MODEL_MAX_BATCH / 8 + 1]; /* bitmap by item id */
    memset(answered, 0, (f->n_items + 7) / 8);
    rs_batch_iter it;
    rs_batch_response_iter(br, &it);
    rs_batch_item_result item;
    uint64_t now = rs_now_ns();
    bool transient = false;
    while (rs_batch_response_next(&it, &item) == 1) {
        if (item.item_id >= f->n_items || (answered[item.item_id / 8] & (1u << (item.item_id % 8)))) continue;
        answered[item.item_id / 8] |= (uint8_t)(1u << (item.item_id % 8));
        rs_item_result res = {.core = core, .status = (rs_status)item.status, .outputs = &item.outputs,
                              .worker_ns = now};
        char msg[RS_MAX_ERROR_MSG_BYTES + 1];
        if (item.status != RS_OK) {
            rs_str_copy(msg, sizeof(msg), item.message);
            res.message = msg;
            if (item.status == RS_E_TRANSIENT) transient = true;
        } else {
            rs_req *lead = rs_req_from_token(core, f->items[item.item_id].token);
            if (lead && lead->cacheable) {
                rs_infer_response resp = {.model = rs_str_c(cm->model->name),
                                          .version = rs_str_c(lead->version),
                                          .outputs = item.outputs};
                size_t n = rs_encode_infer_response(core->scratch2, core->scratch2_bytes, 0, 0, &resp);
                if (n > 0) rs_kv_set(core->co->kv, &lead->key, core->scratch2, n, RS_KV_TTL_DEFAULT);
            }
        }
        rs_batcher_complete(cm->batcher, f->items[item.item_id].ticket, rs_item_done, &res);
    }
    rs_item_result missing = {.core = core, .status = RS_E_INTERNAL,
                              .message = "the worker's batch response has no result for this request",
                              .worker_ns = now};
    for (uint32_t i = 0; i < f->n_items; i++)
        if (!(answered[i / 8] & (1u << (i % 8))))
            rs_batcher_complete(cm->batcher, f->items[i].ticket, rs_item_done, &missing);
    rs_router_release(core->router, &f->ticket, transient ? RS_OUTCOME_TRANSIENT : RS_OUTCOME_OK);
    cm->dirty = true;
    rs_flight_free(core, f);
}

static int rs_wconn_on_frame(rs_conn *c, const rs_frame_msg *m, void *arg) {
    (void)arg;
    rs_wconn *w = rs_conn_udata(c);
    rs_core *core = w->core;
    switch (m->hdr.type) {
    case RS_MSG_BATCH_RESPONSE:
        rs_on_batch_response(core, w, m->hdr.request_id, &m->u.batch_resp);
        return RS_FRAMED_CONTINUE;
    case RS_MSG_PONG:
        rs_router_pong(core->router, w->ref, m->u.u64);
        return RS_FRAMED_CONTINUE;
    case RS_MSG_ERROR: {
        rs_flight *f = rs_flight_lookup(core, m->hdr.request_id);
        char why[RS_MAX_ERROR_MSG_BYTES + 32];
        snprintf(why, sizeof(why), "worker error %s: %.*s", rs_status_name((rs_status)m->u.error.code),
                 (int)m->u.error.message.len, m->u.error.message.ptr);
        if (!f) {
            RS_WARN("worker %s", why);
            return RS_FRAMED_CONTINUE;
        }
        rs_status st = (rs_status)m->u.error.code;
        rs_outcome oc = (st == RS_E_TRANSIENT || st == RS_E_OVERLOADED) ? RS_OUTCOME_TRANSIENT
                                                                         : RS_OUTCOME_WORKER_ERROR;
        rs_flight_failed(core, f, oc, rs_status_is_fatal(st) ? RS_E_INTERNAL : st, why);
        return RS_FRAMED_CONTINUE;
    }
    default:
        return rs_framed_reject_type(c, m);
    }
}

static const rs_framed_cfg rs_wconn_framed = {.on_frame = rs_wconn_on_frame};

static ssize_t rs_wconn_on_data(rs_conn *c, const uint8_t *data, size_t len) {
    return rs_framed_on_data(c, data, len, &rs_wconn_framed);
}

static void rs_wconn_on_connect(rs_conn *c, int err) {
    rs_wconn *w = rs_conn_udata(c);
    w->connecting = false;
    if (err == 0) {
        w->connected = true;
        RS_DEBUG("core %u connected to worker slot %u", w->core->index, w->ref.slot);
    }
}

/* Every flight on this worker failed with it: retry elsewhere. */
static void rs_fail_flights_of(rs_core *core, rs_worker_ref ref, const char *why) {
    for (uint32_t i = 0; i < core->co->cfg.max_inflight_batches; i++) {
        rs_flight *f = &core->flights[i];
        if (f->used && f->ticket.worker.slot == ref.slot && f->ticket.worker.gen == ref.gen)
            rs_flight_failed(core, f, RS_OUTCOME_CONN_FAILED, RS_E_UNAVAILABLE, why);
    }
}

static void rs_wconn_on_close(rs_conn *c, int err) {
    rs_wconn *w = rs_conn_udata(c);
    rs_core *core = w->core;
    w->connected = false;
    w->connecting = false;
    w->conn = 0;
    /* A lost connection counts as a failed health check at once: the worker
     * is marked down after failure_threshold of them, without waiting for
     * the next ping round. */
    if (w->ref.gen != UINT32_MAX) rs_router_ping_failed(core->router, w->ref);
    char why[96];
    snprintf(why, sizeof(why), "connection to the worker was lost (%s)", err ? strerror(-err) : "closed");
    rs_fail_flights_of(core, w->ref, why);
}

static const rs_conn_ops rs_wconn_ops = {
    .on_connect = rs_wconn_on_connect,
    .on_data = rs_wconn_on_data,
    .on_close = rs_wconn_on_close,
};

static void rs_wconn_connect(rs_core *core, rs_wconn *w) {
    const rs_worker *wk = rs_router_worker(core->router, w->ref);
    if (!wk || w->connecting || w->connected) return;
    rs_err err = {{0}};
    rs_conn *c = rs_loop_connect(core->loop, wk->host, wk->port, &rs_wconn_ops, w, &err);
    if (!c) {
        RS_LOG_ONCE(RS_LOG_WARN, "cannot connect to worker %s:%u: %s", wk->host, wk->port, err.msg);
        rs_router_ping_failed(core->router, w->ref);
        return;
    }
    w->conn = rs_conn_get_id(c);
    w->connecting = true;
}

void rs_core_update_ready(rs_core *core) {
    bool ready = true;
    for (uint32_t i = 0; i < core->co->n_models && ready; i++)
        ready = rs_router_model_ready(core->router, rs_str_c(core->models[i].model->name), (rs_str){0}, 0);
    atomic_store(&core->models_ready, ready);
}

void rs_dispatch_on_worker_event(void *ctx, rs_worker_ref ref, rs_worker_event ev) {
    rs_core *core = ctx;
    if (ref.slot >= core->n_wconns) return;
    rs_wconn *w = &core->wconns[ref.slot];
    const rs_worker *wk = rs_router_worker(core->router, ref);
    switch (ev) {
    case RS_WORKER_ADDED:
        if (w->conn) {
            rs_conn *old = rs_loop_conn(core->loop, w->conn);
            if (old) rs_conn_close(old);
        }
        w->ref = ref;
        w->core = core;
        w->conn = 0;
        w->connected = w->connecting = false;
        if (core->index == 0 && wk) RS_INFO("worker %s at %s:%u added", wk->id, wk->host, wk->port);
        rs_wconn_connect(core, w);
        break;
    case RS_WORKER_REMOVED:
        if (core->index == 0 && wk) RS_INFO("worker %s removed", wk->id);
        if (w->ref.gen == ref.gen) {
            rs_fail_flights_of(core, ref, "worker was removed");
            rs_conn *c = w->conn ? rs_loop_conn(core->loop, w->conn) : NULL;
            w->ref.gen = UINT32_MAX;
            if (c) rs_conn_close(c);
        }
        break;
    case RS_WORKER_UP:
        if (core->index == 0 && wk) RS_INFO("worker %s is healthy", wk->id);
        break;
    case RS_WORKER_DOWN:
        if (core->index == 0 && wk) RS_WARN("worker %s is unhealthy", wk->id);
        break;
    }
    rs_core_update_ready(core);
}

/* Health: pings due now, reconnects, and the next wake-up. */
void rs_dispatch_health(rs_loop *loop, rs_timer *t, void *arg) {
    (void)t;
    rs_core *core = arg;
    rs_ping pings[64];
    size_t n = rs_router_tick(core->router, pings, sizeof(pings) / sizeof(pings[0]));
    for (size_t i = 0; i < n; i++) {
        rs_wconn *w = rs_wconn_for(core, pings[i].worker);
        rs_conn *c = (w && w->connected) ? rs_loop_conn(loop, w->conn) : NULL;
        if (!c || rs_framed_send_u64(c, RS_MSG_PING, pings[i].seq, pings[i].seq) != 0) {
            rs_router_ping_failed(core->router, pings[i].worker);
            if (w && !w->connected) rs_wconn_connect(core, w);
        }
    }
    rs_core_update_ready(core);
    uint64_t now = rs_now_ns();
    uint64_t next = rs_router_next_event_ns(core->router);
    uint64_t delay_us = next > now ? (next - now) / 1000 : 1000;
    if (delay_us < 1000) delay_us = 1000;
    if (delay_us > 1000000) delay_us = 1000000;
    rs_loop_timer_arm(loop, &core->health_timer, delay_us);
}

void rs_dispatch_fail_all(rs_core *core) {
    for (uint32_t i = 0; i < core->co->cfg.max_inflight_batches; i++) {
        rs_flight *f = &core->flights[i];
        if (!f->used) continue;
        rs_router_release(core->router, &f->ticket, RS_OUTCOME_CANCELLED);
        rs_flight_fail_items(core, f, RS_E_UNAVAILABLE, "server is shutting down");
        rs_flight_free(core, f);
    }
}

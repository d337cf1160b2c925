/* worker.c — the worker process around its models (see worker.h): the io
 * loop, framed connections, the coordinator link, signals, reload, drain. */
#include "workers/worker.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/common/log.h"
#include "engine/common/opts.h"
#include "engine/common/sigpipe.h"
#include "io/framed.h"
#include "io/loop.h"
#include "io/loop_config.h"
#include "topo/bind.h"
#include "topo/plan.h"
#include "workers/worker_model.h"

#define WORKER_MAX_MODELS RS_MAX_WORKER_MODELS
#define SCRATCH_BYTES ((size_t)RS_MAX_BATCH_ITEMS * 256 + 64 * 1024)

typedef struct worker {
    rs_worker_config cfg;
    rs_registry_config reg_cfg;
    rs_topo_config topo_cfg;
    rs_loop *loop;
    int listener;
    rs_wmodel *models[WORKER_MAX_MODELS];
    uint32_t n_models;
    rs_stage_pool *pool;
    int sigfd;
    uint8_t *scratch; /* replies built on the loop (errors, REGISTER) */
    /* accepted connections, to flush and close them when draining */
    rs_conn_id *conns;
    uint32_t n_conns;
    /* the coordinator link; both addresses numeric, resolved at start-up */
    char coordinator_addr[RS_WORKER_HOST_BYTES];
    char advertise_addr[RS_WORKER_HOST_BYTES]; /* cfg.host, sent in REGISTER */
    rs_conn_id coord;
    bool registered;
    uint32_t heartbeat_ms;
    uint32_t backoff_ms;
    rs_timer heartbeat_timer, reconnect_timer, drain_timer;
    /* state */
    uint32_t in_flight; /* jobs on compute threads */
    bool draining, closing;
    int exit_code;
} worker;

static worker *W; /* one per process: callbacks reach it through the loop too */

static void check_drained(worker *w);
static void coord_connect(worker *w);

/* ---- models ---- */

static rs_wmodel *find_model(worker *w, rs_str name, rs_str version) {
    int64_t v = rs_wmodel_parse_version(version);
    if (v < 0) return NULL;
    rs_wmodel *best = NULL;
    for (uint32_t i = 0; i < w->n_models; i++) {
        rs_wmodel *wm = w->models[i];
        if (wm->retired || !rs_str_eq(name, wm->m.name)) continue;
        if (v == 0 ? (!best || wm->m.version > best->m.version) : wm->m.version == (uint32_t)v)
            best = wm;
    }
    return best;
}

static bool is_loaded(worker *w, const rs_model *m) {
    for (uint32_t i = 0; i < w->n_models; i++)
        if (!w->models[i]->retired && strcmp(w->models[i]->m.name, m->name) == 0 &&
            w->models[i]->m.version == m->version)
            return true;
    return false;
}

/* Plans the placement of `extra` together with the loaded models; the
 * result's model index of extra is n_models. NULL when topo is unavailable
 * or the plan is refused (err filled). */
static rs_plan *build_plan(worker *w, const rs_model *extra, int *extra_index, rs_err *err) {
    rs_topo *t = rs_topo_system();
    if (!t) {
        rs_err_set(err, "topology unavailable");
        return NULL;
    }
    static rs_plan_model pms[WORKER_MAX_MODELS + 1];
    size_t n = 0;
    for (uint32_t i = 0; i < w->n_models; i++)
        if (!w->models[i]->retired) pms[n++] = w->models[i]->m.placement.plan;
    *extra_index = (int)n;
    if (extra) pms[n++] = extra->placement.plan;
    rs_plan *plan = malloc(sizeof(*plan));
    if (!plan) {
        rs_err_set(err, "out of memory");
        return NULL;
    }
    if (rs_plan_build(rs_topo_get_info(t), &w->topo_cfg, pms, n, plan, err) != 0) {
        free(plan);
        return NULL;
    }
    return plan;
}

static void job_done(rs_loop *loop, rs_wjob *job);

/* Pins the loop thread to the plan's io core and the stage processes to
 * its pre-processing cores (compute threads pin themselves). */
static void apply_plan(worker *w) {
    int idx;
    rs_err err = {0};
    rs_plan *plan = build_plan(w, NULL, &idx, &err);
    if (!plan) return;
    const rs_plan_entry *io = rs_plan_find(plan, RS_PLAN_IO, NULL, 0);
    if (io) {
        rs_topo_binding b;
        rs_plan_apply_entry(NULL, io, &b);
    }
    cpu_set_t pre;
    CPU_ZERO(&pre);
    int n = 0;
    for (int e = 0; e < plan->entry_count; e++) {
        if (plan->entries[e].role != RS_PLAN_PREPROCESS) continue;
        for (int c = rs_cpuset_next(&plan->entries[e].cpus, 0); c >= 0 && c < CPU_SETSIZE;
             c = rs_cpuset_next(&plan->entries[e].cpus, c + 1), n++)
            CPU_SET(c, &pre);
    }
    if (w->pool && n > 0) rs_stage_pool_set_cpus(w->pool, &pre);
    free(plan);
}

static int load_model(worker *w, const rs_model *m, bool strict, rs_err *err) {
    if (w->n_models == WORKER_MAX_MODELS) {
        rs_err_set(err, "%s: a worker serves at most %d model versions", m->file, WORKER_MAX_MODELS);
        return -1;
    }
    if (rs_backend_check_model(m, err) != 0) return -1;
    if (m->stages == RS_STAGES_POOL && !w->pool) {
        w->pool = rs_stage_pool_create(&w->cfg.pool, err);
        if (!w->pool) return -1;
    }
    int idx = -1;
    rs_err perr = {0};
    rs_plan *plan = build_plan(w, m, &idx, &perr);
    if (!plan) {
        if (strict && strcmp(perr.msg, "topology unavailable") != 0) {
            *err = perr;
            return -1;
        }
        RS_WARN("model %s/%u runs unpinned: %s", m->name, m->version, perr.msg);
    }
    rs_wmodel_env env = {.loop = w->loop,
                         .done = job_done,
                         .pool = w->pool,
                         .queue_depth = w->cfg.queue_depth,
                         .stage_arena_bytes = w->cfg.stage_arena_bytes,
                         .variable_io_bytes = w->cfg.variable_io_bytes};
    rs_wmodel *wm = rs_wmodel_load(m, &env, plan, idx, err);
    free(plan);
    if (!wm) return -1;
    w->models[w->n_models++] = wm;
    RS_INFO("model %s/%u loaded: backend %s, %u instance(s), stages %s", m->name, m->version,
            m->backend, m->instances, wm->pooled ? "pool" : "inline");
    return 0;
}

static void remove_model(worker *w, rs_wmodel *wm) {
    for (uint32_t i = 0; i < w->n_models; i++) {
        if (w->models[i] != wm) continue;
        w->models[i] = w->models[--w->n_models];
        RS_INFO("model %s/%u unloaded", wm->m.name, wm->m.version);
        rs_wmodel_free(wm);
        return;
    }
}

/* ---- replies ---- */

static void send_or_close(rs_conn *c, const uint8_t *frame, size_t len) {
    int rc = rs_framed_send(c, frame, len);
    if (rc != 0) {
        char peer[64];
        rs_conn_peer_name(c, peer, sizeof(peer));
        RS_WARN("%s: cannot queue a %zu-byte reply (%s): closing (the peer is not reading)", peer,
                len, strerror(-rc));
        rs_conn_close(c);
    }
}

static void job_done(rs_loop *loop, rs_wjob *job) {
    worker *w = rs_loop_udata(loop);
    rs_conn *c = rs_loop_conn(loop, job->conn);
    if (c) send_or_close(c, job->resp, job->resp_len);
    rs_wmodel *wm = job->model;
    rs_wmodel_job_put(job);
    wm->in_flight--;
    w->in_flight--;
    if (wm->retired && wm->in_flight == 0) remove_model(w, wm);
    check_drained(w);
}

/* Every item of a batch answered with one status (no slot: OVERLOADED). */
static void reply_all_items(worker *w, rs_conn *c, const rs_frame_msg *m, rs_status st,
                            const char *msg) {
    rs_fw fw;
    rs_fw_init(&fw, w->scratch, SCRATCH_BYTES);
    const rs_batch_request *b = &m->u.batch_req;
    rs_fw_batch_response_begin(&fw, m->hdr.request_id, b->item_count);
    rs_batch_iter it;
    rs_batch_request_iter(b, &it);
    uint64_t id;
    static rs_tensor_list inputs;
    while (rs_batch_request_next(&it, &id, &inputs) == 1) rs_fw_batch_response_err(&fw, id, st, msg);
    if (rs_framed_send_fw(c, &fw) != 0) rs_conn_close(c);
}

static void run_or_submit(worker *w, rs_conn *c, rs_wjob *job) {
    if (job->n_ok == 0) { /* nothing to compute: answer from the loop */
        rs_wjob_execute(&job->model->inst[job->instance], job);
        send_or_close(c, job->resp, job->resp_len);
        rs_wmodel_job_put(job);
        return;
    }
    job->model->in_flight++;
    w->in_flight++;
    rs_wmodel_submit(job);
}

static void handle_batch(worker *w, rs_conn *c, const rs_frame_msg *m) {
    const rs_batch_request *b = &m->u.batch_req;
    uint64_t rid = m->hdr.request_id;
    if (w->draining) {
        rs_framed_send_error(c, rid, RS_E_UNAVAILABLE, "worker %s is draining", w->cfg.id);
        return;
    }
    rs_wmodel *wm = find_model(w, b->model, b->version);
    if (!wm) {
        rs_framed_send_error(c, rid, RS_E_UNKNOWN_MODEL,
                             "model '%.*s' version '%.*s' is not served by worker %s",
                             (int)b->model.len, b->model.ptr, (int)b->version.len, b->version.ptr,
                             w->cfg.id);
        return;
    }
    rs_wjob *job = rs_wmodel_job_get(wm);
    if (!job) {
        char msg[160];
        snprintf(msg, sizeof(msg), "worker %s: model %s/%u is at capacity (%u batches queued)",
                 w->cfg.id, wm->m.name, wm->m.version, wm->n_inst * w->cfg.queue_depth);
        reply_all_items(w, c, m, RS_E_OVERLOADED, msg);
        return;
    }
    job->kind = RS_WJOB_BATCH;
    job->conn = rs_conn_get_id(c);
    job->request_id = rid;
    rs_batch_iter it;
    rs_batch_request_iter(b, &it);
    uint64_t id;
    static rs_tensor_list inputs;
    char why[RS_MAX_ERROR_MSG_BYTES];
    while (rs_batch_request_next(&it, &id, &inputs) == 1) {
        rs_status st = rs_wjob_add_item(job, id, &inputs, why, sizeof(why));
        if (st != RS_OK) rs_wjob_add_error(job, id, st, why);
    }
    run_or_submit(w, c, job);
}

static void handle_infer(worker *w, rs_conn *c, const rs_frame_msg *m) {
    const rs_infer_request *r = &m->u.infer_req;
    uint64_t rid = m->hdr.request_id;
    if (w->draining) {
        rs_framed_send_error(c, rid, RS_E_UNAVAILABLE, "worker %s is draining", w->cfg.id);
        return;
    }
    rs_wmodel *wm = find_model(w, r->model, r->version);
    if (!wm) {
        rs_framed_send_error(c, rid, RS_E_UNKNOWN_MODEL,
                             "model '%.*s' version '%.*s' is not served by worker %s",
                             (int)r->model.len, r->model.ptr, (int)r->version.len, r->version.ptr,
                             w->cfg.id);
        return;
    }
    uint8_t want[RS_MODEL_MAX_IO];
    if (r->n_outputs > RS_MODEL_MAX_IO) {
        rs_framed_send_error(c, rid, RS_E_INVALID_INPUT, "%u outputs requested; model %s has %u",
                             r->n_outputs, wm->m.name, wm->m.output_count);
        return;
    }
    for (uint32_t i = 0; i < r->n_outputs; i++) {
        int found = -1;
        for (uint32_t o = 0; o < wm->m.output_count; o++)
            if (rs_str_eq(r->outputs[i], wm->m.outputs[o].name)) found = (int)o;
        if (found < 0) {
            rs_framed_send_error(c, rid, RS_E_INVALID_INPUT, "model %s/%u has no output '%.*s'",
                                 wm->m.name, wm->m.version, (int)r->outputs[i].len,
                                 r->outputs[i].ptr);
            return;
        }
        want[i] = (uint8_t)found;
    }
    rs_wjob *job = rs_wmodel_job_get(wm);
    if (!job) {
        rs_framed_send_error(c, rid, RS_E_OVERLOADED, "worker %s: model %s/%u is at capacity",
                             w->cfg.id, wm->m.name, wm->m.version);
        return;
    }
    job->kind = RS_WJOB_INFER;
    job->conn = rs_conn_get_id(c);
    job->request_id = rid;
    snprintf(job->req_id, sizeof(job->req_id), "%.*s", (int)r->id.len, r->id.ptr);
    job->n_want = r->n_outputs;
    memcpy(job->want, want, r->n_outputs);
    char why[RS_MAX_ERROR_MSG_BYTES];
    rs_status st = rs_wjob_add_item(job, 0, &r->inputs, why, sizeof(why));
    if (st != RS_OK) rs_wjob_add_error(job, 0, st, why);
    run_or_submit(w, c, job);
}

/* ---- served connections ---- */

static int on_frame(rs_conn *c, const rs_frame_msg *m, void *arg) {
    worker *w = arg;
    switch (m->hdr.type) {
    case RS_MSG_PING: rs_framed_send_u64(c, RS_MSG_PONG, m->hdr.request_id, m->u.u64); break;
    case RS_MSG_BATCH_REQUEST: handle_batch(w, c, m); break;
    case RS_MSG_INFER_REQUEST: handle_infer(w, c, m); break;
    default: return rs_framed_reject_type(c, m);
    }
    return RS_FRAMED_CONTINUE;
}

static rs_framed_cfg served_cfg;

static int on_open(rs_conn *c) {
    worker *w = W;
    if (w->closing || w->n_conns == w->cfg.max_conns) return -1;
    w->conns[w->n_conns++] = rs_conn_get_id(c);
    return 0;
}

static ssize_t on_data(rs_conn *c, const uint8_t *d, size_t n) {
    return rs_framed_on_data(c, d, n, &served_cfg);
}

static void on_close(rs_conn *c, int err) {
    (void)err;
    worker *w = W;
    rs_conn_id id = rs_conn_get_id(c);
    for (uint32_t i = 0; i < w->n_conns; i++) {
        if (w->conns[i] == id) {
            w->conns[i] = w->conns[--w->n_conns];
            break;
        }
    }
    check_drained(w);
}

static const rs_conn_ops served_ops = {.on_open = on_open, .on_data = on_data, .on_close = on_close};

/* ---- the coordinator link ---- */

static void send_register(worker *w, rs_conn *c) {
    static rs_register_msg r;
    memset(&r, 0, sizeof(r));
    r.worker_id = rs_str_c(w->cfg.id);
    r.host = rs_str_c(w->advertise_addr);
    r.port = w->cfg.port;
    r.token = rs_str_c(w->cfg.token);
    r.numa_node = -1;
    r.gpu = -1;
    for (uint32_t i = 0; i < w->n_models && r.n_models < RS_MAX_WORKER_MODELS; i++) {
        rs_wmodel *wm = w->models[i];
        if (wm->retired) continue;
        r.capacity += wm->n_inst * w->cfg.queue_depth;
        r.models[r.n_models++] = (rs_model_ref){rs_str_c(wm->m.name), rs_str_c(wm->version_str), 0};
        if (wm->inst[0].has_entry && r.numa_node < 0) r.numa_node = wm->inst[0].entry.numa;
        if (wm->inst[0].has_entry && r.gpu < 0) r.gpu = wm->inst[0].entry.gpu;
    }
    size_t n = rs_encode_register(w->scratch, SCRATCH_BYTES, 0, &r);
    RS_ASSERT(n > 0);
    if (rs_framed_send(c, w->scratch, n) != 0) rs_conn_close(c);
}

static void heartbeat_fire(rs_loop *loop, rs_timer *t, void *arg) {
    (void)t;
    worker *w = arg;
    rs_conn *c = rs_loop_conn(loop, w->coord);
    if (!c || !w->registered) return;
    uint32_t queued = 0;
    for (uint32_t i = 0; i < w->n_models; i++)
        for (uint32_t k = 0; k < w->models[i]->n_inst; k++)
            queued += __atomic_load_n(&w->models[i]->inst[k].q_count, __ATOMIC_RELAXED);
    rs_heartbeat_msg hb = {.worker_id = rs_str_c(w->cfg.id),
                           .in_flight = w->in_flight - (queued < w->in_flight ? queued : w->in_flight),
                           .queued = queued};
    uint8_t buf[512];
    size_t n = rs_encode_heartbeat(buf, sizeof(buf), 0, &hb);
    if (n) rs_framed_send(c, buf, n);
    rs_loop_timer_arm(loop, &w->heartbeat_timer, (uint64_t)w->heartbeat_ms * 1000);
}

static int on_coord_frame(rs_conn *c, const rs_frame_msg *m, void *arg) {
    worker *w = arg;
    switch (m->hdr.type) {
    case RS_MSG_REGISTER_ACK:
        w->registered = true;
        w->backoff_ms = 0;
        w->heartbeat_ms = m->u.u64 ? (uint32_t)m->u.u64 : w->cfg.heartbeat_interval_ms;
        RS_INFO("registered with coordinator %s:%u (heartbeat every %u ms)",
                w->cfg.coordinator_host, w->cfg.coordinator_port, w->heartbeat_ms);
        rs_loop_timer_arm(w->loop, &w->heartbeat_timer, (uint64_t)w->heartbeat_ms * 1000);
        break;
    case RS_MSG_ERROR:
        RS_ERROR("coordinator %s:%u refused: %s: %.*s", w->cfg.coordinator_host,
                 w->cfg.coordinator_port, rs_status_name((rs_status)m->u.error.code),
                 (int)m->u.error.message.len, m->u.error.message.ptr);
        break;
    case RS_MSG_PING: rs_framed_send_u64(c, RS_MSG_PONG, m->hdr.request_id, m->u.u64); break;
    case RS_MSG_PONG: break;
    default: return rs_framed_reject_type(c, m);
    }
    return RS_FRAMED_CONTINUE;
}

static rs_framed_cfg coord_cfg;

static ssize_t coord_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    return rs_framed_on_data(c, d, n, &coord_cfg);
}

static void coord_on_connect(rs_conn *c, int err) {
    if (err == 0) send_register(W, c);
}

static void reconnect_fire(rs_loop *loop, rs_timer *t, void *arg) {
    (void)loop;
    (void)t;
    coord_connect(arg);
}

static void schedule_reconnect(worker *w) {
    if (w->draining) return;
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 100;
    if (w->backoff_ms > 2000) w->backoff_ms = 2000;
    rs_loop_timer_arm(w->loop, &w->reconnect_timer, (uint64_t)w->backoff_ms * 1000);
}

static void coord_on_close(rs_conn *c, int err) {
    (void)c;
    worker *w = W;
    if (w->registered || err)
        RS_WARN("coordinator %s:%u: connection closed (%s)", w->cfg.coordinator_host,
                w->cfg.coordinator_port, err ? strerror(-err) : "by peer");
    w->coord = 0;
    w->registered = false;
    rs_loop_timer_cancel(w->loop, &w->heartbeat_timer);
    schedule_reconnect(w);
    check_drained(w);
}

static const rs_conn_ops coord_ops = {
    .on_connect = coord_on_connect, .on_data = coord_on_data, .on_close = coord_on_close};

static void coord_connect(worker *w) {
    if (w->draining || w->coord) return;
    rs_err err = {0};
    rs_conn *c = rs_loop_connect(w->loop, w->coordinator_addr, w->cfg.coordinator_port, &coord_ops,
                                 w, &err);
    if (!c) {
        RS_LOG_ONCE(RS_LOG_WARN, "coordinator %s:%u: %s (retrying)", w->cfg.coordinator_host,
                    w->cfg.coordinator_port, err.msg);
        schedule_reconnect(w);
        return;
    }
    w->coord = rs_conn_get_id(c);
}

/* ---- reload and drain ---- */

static void reload(worker *w) {
    rs_err err = {0};
    rs_registry *reg = rs_registry_create(&w->reg_cfg, &err);
    if (!reg) {
        RS_ERROR("SIGHUP: reload refused, still serving what was loaded: %s", err.msg);
        return;
    }
    uint32_t added = 0, retired = 0;
    for (size_t i = 0; i < rs_registry_count(reg); i++) {
        const rs_model *m = rs_registry_at(reg, i);
        if (is_loaded(w, m)) continue;
        if (load_model(w, m, false, &err) != 0)
            RS_ERROR("SIGHUP: %s/%u not loaded: %s", m->name, m->version, err.msg);
        else
            added++;
    }
    for (uint32_t i = 0; i < w->n_models; i++) {
        rs_wmodel *wm = w->models[i];
        if (wm->retired || rs_registry_find(reg, wm->m.name, wm->m.version)) continue;
        wm->retired = true; /* in-flight batches finish; then it is freed */
        retired++;
        if (wm->in_flight == 0) {
            remove_model(w, wm);
            i--;
        }
    }
    rs_registry_destroy(reg);
    RS_INFO("SIGHUP: reloaded: %u version(s) added, %u retired, %u served", added, retired,
            w->n_models);
    rs_conn *c = w->coord ? rs_loop_conn(w->loop, w->coord) : NULL;
    if (c && w->registered) send_register(w, c); /* the model list changed */
}

static void check_drained(worker *w) {
    if (!w->draining || w->in_flight > 0) return;
    if (!w->closing) { /* every batch answered: flush and close every connection */
        w->closing = true;
        for (uint32_t i = 0; i < w->n_conns; i++) {
            rs_conn *c = rs_loop_conn(w->loop, w->conns[i]);
            if (c) rs_conn_close(c);
        }
        rs_conn *c = w->coord ? rs_loop_conn(w->loop, w->coord) : NULL;
        if (c) rs_conn_close(c);
    }
    if (w->n_conns == 0 && w->coord == 0) rs_loop_stop(w->loop);
}

static void drain_timeout(rs_loop *loop, rs_timer *t, void *arg) {
    (void)t;
    worker *w = arg;
    RS_WARN("drain: %u batch(es) still running after %u ms; exiting anyway", w->in_flight,
            w->cfg.drain_timeout_ms);
    w->exit_code = 1;
    rs_loop_stop(loop);
}

static void start_drain(worker *w) {
    if (w->draining) return;
    w->draining = true;
    RS_INFO("draining: %u batch(es) in flight, %u connection(s)", w->in_flight, w->n_conns);
    if (w->listener >= 0) rs_loop_listen_close(w->loop, w->listener);
    w->listener = -1;
    rs_loop_timer_cancel(w->loop, &w->reconnect_timer);
    rs_loop_timer_cancel(w->loop, &w->heartbeat_timer);
    rs_conn *c = w->coord ? rs_loop_conn(w->loop, w->coord) : NULL;
    if (c && w->registered) rs_framed_send_u64(c, RS_MSG_DEREGISTER, 0, w->cfg.drain_timeout_ms);
    rs_loop_timer_arm(w->loop, &w->drain_timer, (uint64_t)w->cfg.drain_timeout_ms * 1000);
    check_drained(w);
}

static void on_signal(rs_loop *loop, int fd, uint32_t revents, void *arg) {
    (void)loop;
    (void)revents;
    worker *w = arg;
    uint8_t sigs[64];
    ssize_t n;
    while ((n = read(fd, sigs, sizeof(sigs))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (sigs[i] == SIGHUP)
                reload(w);
            else
                start_drain(w);
        }
    }
}

/* ---- main ---- */

static void worker_free(worker *w) {
    for (uint32_t i = 0; i < w->n_models; i++) rs_wmodel_free(w->models[i]);
    w->n_models = 0;
    rs_stage_pool_destroy(w->pool);
    if (w->loop) rs_loop_destroy(w->loop);
    if (w->sigfd >= 0) rs_sigpipe_close();
    free(w->scratch);
    free(w->conns);
    free(w);
}

int rs_worker_main(const rs_worker_config *cfg, const rs_registry_config *models_cfg,
                   const rs_cfg_node *topo_section, const rs_cfg_node *io_section) {
    worker *w = calloc(1, sizeof(*w));
    if (!w) return 1;
    W = w;
    w->cfg = *cfg;
    w->reg_cfg = *models_cfg;
    w->listener = -1;
    w->sigfd = -1;
    rs_err err = {0};
    if (rs_topo_config_parse(topo_section, &w->topo_cfg, &err) != 0) {
        fprintf(stderr, "ringserve worker: %s\n", err.msg);
        worker_free(w);
        return 2;
    }
    if (!w->cfg.id[0]) snprintf(w->cfg.id, sizeof(w->cfg.id), "%s:%u", w->cfg.host, w->cfg.port);
    /* Names are resolved here, once, before the loop runs: the loop never
     * waits on DNS, and the coordinator gets an address it can dial. */
    if (rs_resolve_host(w->cfg.host, w->advertise_addr, sizeof(w->advertise_addr), &err) != 0 ||
        (w->cfg.coordinator_port &&
         rs_resolve_host(w->cfg.coordinator_host, w->coordinator_addr, sizeof(w->coordinator_addr),
                         &err) != 0)) {
        fprintf(stderr, "ringserve worker: %s\n", err.msg);
        worker_free(w);
        return 2;
    }
    char tag[48];
    snprintf(tag, sizeof(tag), "worker:%u", w->cfg.port);
    rs_log_set_tag(tag);

    /* Signals reach the loop through a self-pipe (sigpipe.h): libraries
     * start threads before main (OpenBLAS), so a signalfd with the signals
     * blocked in "every" thread cannot be relied on. */
    static const int signals[] = {SIGTERM, SIGINT, SIGHUP};
    w->sigfd = rs_sigpipe_open(signals, 3);

    w->scratch = malloc(SCRATCH_BYTES);
    w->conns = calloc(w->cfg.max_conns, sizeof(*w->conns));
    rs_registry *reg = rs_registry_create(&w->reg_cfg, &err);
    if (!reg || !w->scratch || !w->conns || w->sigfd < 0) {
        fprintf(stderr, "ringserve worker: %s\n", reg ? "out of memory or no signal pipe" : err.msg);
        rs_registry_destroy(reg);
        worker_free(w);
        return 2;
    }
    if (rs_registry_count(reg) == 0) {
        fprintf(stderr, "ringserve worker: no models to serve (check --model and models.repository)\n");
        rs_registry_destroy(reg);
        worker_free(w);
        return 2;
    }

    rs_loop_config lc;
    if (rs_loop_config_parse(io_section, &lc, &err) != 0) {
        fprintf(stderr, "ringserve worker: %s\n", err.msg);
        rs_registry_destroy(reg);
        worker_free(w);
        return 2;
    }
    rs_io_backend backend; /* --io-backend wins over io.backend */
    if (rs_opts.io_backend != RS_IO_AUTO) lc.backend = (rs_io_backend)rs_opts.io_backend;
    if (rs_io_backend_resolve(lc.backend, &backend, &err) != 0) {
        fprintf(stderr, "ringserve worker: %s\n", err.msg);
        rs_registry_destroy(reg);
        worker_free(w);
        return 2;
    }
    lc.backend = backend;
    if (lc.max_conns < w->cfg.max_conns + 8) lc.max_conns = w->cfg.max_conns + 8;
    /* every job slot can be posting back at once */
    uint32_t slots = 0;
    for (size_t i = 0; i < rs_registry_count(reg); i++)
        slots += rs_registry_at(reg, i)->instances * w->cfg.queue_depth;
    if (lc.post_queue_capacity < 2 * slots + 64) lc.post_queue_capacity = 2 * slots + 64;
    w->loop = rs_loop_create(&lc, &err);
    if (!w->loop) {
        fprintf(stderr, "ringserve worker: io loop: %s\n", err.msg);
        rs_registry_destroy(reg);
        worker_free(w);
        return 2;
    }
    rs_loop_set_udata(w->loop, w);

    for (size_t i = 0; i < rs_registry_count(reg); i++) {
        if (load_model(w, rs_registry_at(reg, i), true, &err) != 0) {
            fprintf(stderr, "ringserve worker: %s\n", err.msg);
            rs_registry_destroy(reg);
            worker_free(w);
            return 2;
        }
    }
    rs_registry_destroy(reg);
    apply_plan(w);

    served_cfg = (rs_framed_cfg){.on_frame = on_frame, .arg = w};
    coord_cfg = (rs_framed_cfg){.on_frame = on_coord_frame, .arg = w};
    w->listener = rs_loop_listen(w->loop, w->cfg.host, w->cfg.port, false, &served_ops, w, &err);
    if (w->listener < 0) {
        fprintf(stderr, "ringserve worker: listen %s:%u: %s\n", w->cfg.host, w->cfg.port, err.msg);
        worker_free(w);
        return 2;
    }
    w->cfg.port = rs_loop_listen_port(w->loop, w->listener);
    rs_loop_watch_fd(w->loop, w->sigfd, POLLIN, on_signal, w);
    rs_timer_init(&w->heartbeat_timer, heartbeat_fire, w);
    rs_timer_init(&w->reconnect_timer, reconnect_fire, w);
    rs_timer_init(&w->drain_timer, drain_timeout, w);
    RS_INFO("worker %s listening on %s:%u (%s), %u model version(s)", w->cfg.id, w->cfg.host,
            w->cfg.port, rs_io_backend_name(backend), w->n_models);
    if (w->cfg.coordinator_port) coord_connect(w);

    int rc = rs_loop_run(w->loop);
    int code = rc == 0 ? w->exit_code : 1;
    RS_INFO("worker %s exiting (%d)", w->cfg.id, code);
    worker_free(w);
    W = NULL;
    return code;
}

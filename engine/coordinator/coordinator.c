/* coordinator.c — start-up, the io threads, and shutdown.
 *
 * Start-up validates everything before anything listens (config sections,
 * models, cache, topology plan), then starts one pinned io thread per planned
 * core. Each thread builds its own loop, HTTP server, framed listener (both
 * SO_REUSEPORT on the shared ports), batchers, request pool and router.
 * SIGTERM/SIGINT: readiness flips to 503, listeners close, in-flight
 * requests finish (bounded by drain_timeout_ms), the cache is closed (its
 * snapshot written), exit 0. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <netdb.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "engine/common/opts.h"
#include "engine/common/sigpipe.h"
#include "engine/coordinator/balance.h"
#include "engine/coordinator/coord.h"
#include "io/loop_config.h"
#include "topo/bind.h"
#include "topo/plan.h"
#include "topo/topo.h"

/* ---- per-core set-up ------------------------------------------------------------ */

static int rs_core_model_lookup(void *ctx, rs_str model, rs_str version, uint32_t *shards) {
    rs_core *core = ctx;
    char why[256];
    const rs_model *m = rs_coord_find_model(core->co, model, version, NULL, why, sizeof(why));
    if (!m) return -1;
    *shards = m->shards ? m->shards : 1;
    return 0;
}

void *rs_coord_reserve(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void rs_core_tick_timer(rs_loop *loop, rs_timer *t, void *arg);
static bool rs_core_balance_accept(rs_loop *loop, int lid, int fd, void *arg);

int rs_core_init(rs_core *core, rs_coord *co, uint32_t index, rs_err *err) {
    const rs_coord_config *cfg = &co->cfg;
    core->co = co;
    core->index = index;
    core->http_listener = core->framed_listener = -1;
    rs_loop_config lc = co->loopcfg;
    if (rs_opts.io_backend != RS_IO_AUTO) lc.backend = (rs_io_backend)rs_opts.io_backend;
    /* A whole frame or HTTP body must fit the connection's assembly buffer. */
    uint64_t need = cfg->max_frame_bytes + RS_FRAME_HEADER_BYTES;
    if (need < cfg->max_body_bytes + 65536) need = cfg->max_body_bytes + 65536;
    if (lc.conn_read_max_bytes < need) lc.conn_read_max_bytes = need;
    /* The send slab must hold a whole response (and then some), or a big
     * answer would be refused by the loop (-ENOBUFS). */
    uint64_t slab_need = cfg->max_response_bytes + (1u << 20);
    if ((uint64_t)lc.send_buf_count * lc.send_buf_bytes < slab_need)
        lc.send_buf_count = (uint32_t)((slab_need + lc.send_buf_bytes - 1) / lc.send_buf_bytes);
    /* Each request has at most one hand-off post outstanding (to a
     * single_queue model's home core or back): room for every request of
     * every core, so a post never fails, plus membership events. */
    uint64_t posts = (uint64_t)co->n_cores * cfg->max_pending + 1024;
    if (lc.post_queue_capacity < posts) lc.post_queue_capacity = (uint32_t)posts;
    uint32_t timers = cfg->max_inflight_batches + co->n_models + 16;
    if (lc.max_timers < timers) lc.max_timers = timers;
    core->loop = rs_loop_create(&lc, err);
    if (!core->loop) return -1;
    rs_loop_set_udata(core->loop, core);
    core->ms = rs_metrics_shard_get(co->metrics, index);
    /* requests */
    core->reqs = calloc(cfg->max_pending, sizeof(rs_req));
    core->arenas = rs_coord_reserve((size_t)cfg->max_pending * cfg->request_arena_bytes);
    if (!core->reqs || !core->arenas) {
        rs_err_set(err, "core %u: cannot reserve the request pool (%u x %" PRIu64 " bytes)", index,
                   cfg->max_pending, cfg->request_arena_bytes);
        return -1;
    }
    for (uint32_t i = 0; i < cfg->max_pending; i++) {
        core->reqs[i].index = i;
        core->reqs[i].next_free = i + 1 < cfg->max_pending ? i + 1 : UINT32_MAX;
        core->reqs[i].arena = core->arenas + (size_t)i * cfg->request_arena_bytes;
        core->reqs[i].arena_cap = cfg->request_arena_bytes;
    }
    core->free_head = 0;
    /* scratch: rendered responses / batch frames, and cache values */
    core->scratch_bytes = cfg->max_frame_bytes + RS_FRAME_HEADER_BYTES;
    if (core->scratch_bytes < cfg->max_response_bytes) core->scratch_bytes = cfg->max_response_bytes;
    core->scratch = rs_coord_reserve(core->scratch_bytes);
    core->scratch2_bytes = co->kvcfg.max_value_kb * 1024 + 4096;
    if (core->scratch2_bytes < cfg->max_async_result_bytes) core->scratch2_bytes = cfg->max_async_result_bytes;
    core->scratch2 = rs_coord_reserve(core->scratch2_bytes);
    /* batches in flight */
    core->flights = calloc(cfg->max_inflight_batches, sizeof(rs_flight));
    core->flight_items = calloc((size_t)cfg->max_inflight_batches * co->max_batch, sizeof(rs_batcher_item));
    core->poll_items = calloc(co->max_batch, sizeof(rs_batcher_item));
    if (!core->scratch || !core->scratch2 || !core->flights || !core->flight_items || !core->poll_items) {
        rs_err_set(err, "core %u: out of memory for buffers", index);
        return -1;
    }
    for (uint32_t i = 0; i < cfg->max_inflight_batches; i++) {
        core->flights[i].items = core->flight_items + (size_t)i * co->max_batch;
        core->flights[i].core = core;
        rs_timer_init(&core->flights[i].timeout, rs_flight_timeout, &core->flights[i]);
    }
    /* router: membership, balancing, health */
    rs_router_hooks hooks = {.model_lookup = rs_core_model_lookup,
                             .model_ctx = core,
                             .on_event = rs_dispatch_on_worker_event,
                             .event_ctx = core};
    core->n_wconns = co->rcfg.cluster.max_workers;
    core->wconns = calloc(core->n_wconns, sizeof(rs_wconn));
    if (!core->wconns) {
        rs_err_set(err, "core %u: out of memory for worker connections", index);
        return -1;
    }
    for (uint32_t i = 0; i < core->n_wconns; i++) {
        core->wconns[i].core = core;
        core->wconns[i].ref.gen = UINT32_MAX;
    }
    core->router = rs_router_create(&co->rcfg, &hooks, err);
    if (!core->router) return -1;
    /* per-model batchers */
    core->models = calloc(co->n_models, sizeof(rs_core_model));
    if (!core->models) {
        rs_err_set(err, "core %u: out of memory", index);
        return -1;
    }
    for (uint32_t i = 0; i < co->n_models; i++) {
        const rs_model *m = rs_registry_at(co->registry, i);
        rs_core_model *cm = &core->models[i];
        cm->model = m;
        cm->core = core;
        cm->home = m->batchable && m->batching.single_queue ? i % co->n_cores : index;
        cm->max_flights = m->batching.max_batches_out ? m->batching.max_batches_out : cfg->max_batches_per_model;
        snprintf(cm->version, sizeof(cm->version), "%u", m->version);
        rs_batcher_config bc;
        rs_batcher_config_default(&bc);
        bc.batchable = m->batchable;
        bc.max_batch_size = m->batchable ? m->max_batch_size : 1;
        bc.max_queue_delay_us = m->batching.max_queue_delay_us;
        bc.dispatch_when_idle = m->batching.dispatch_when_idle;
        bc.preferred_count = m->batching.preferred_count < RS_BATCHER_MAX_PREFERRED ? m->batching.preferred_count
                                                                                   : RS_BATCHER_MAX_PREFERRED;
        for (uint32_t k = 0; k < bc.preferred_count; k++)
            bc.preferred_batch_sizes[k] = m->batching.preferred_batch_sizes[k];
        bc.max_queue_size = m->batching.max_queue_size ? m->batching.max_queue_size : 1024;
        bc.default_timeout_us = cfg->default_timeout_us;
        bc.priority_levels = cfg->priority_levels;
        bc.default_priority = (cfg->priority_levels + 1) / 2;
        cm->batcher = rs_batcher_create(&bc, err);
        if (!cm->batcher) {
            rs_err_prefix(err, "model '%s'", m->name);
            return -1;
        }
        rs_timer_init(&cm->timer, rs_core_model_timer, cm);
    }
    /* front doors */
    rs_http_config hc;
    rs_http_config_default(&hc);
    hc.max_body_bytes = cfg->max_body_bytes;
    hc.max_conns = lc.max_conns;
    core->http = rs_http_server_create(&hc, co->http_router, err);
    if (!core->http) return -1;
    rs_http_server_set_user(core->http, core);
    core->http_listener = rs_http_server_listen(core->http, core->loop, cfg->host, co->http_port, true, err);
    if (core->http_listener < 0) {
        rs_err_prefix(err, "server.http_port %s:%u", cfg->host, co->http_port);
        return -1;
    }
    core->framed_listener = rs_loop_listen(core->loop, cfg->host, co->framed_port, true,
                                           &rs_coord_framed_ops, core, err);
    if (core->framed_listener < 0) {
        rs_err_prefix(err, "server.framed_port %s:%u", cfg->host, co->framed_port);
        return -1;
    }
    if (index == 0) {
        co->http_port = rs_loop_listen_port(core->loop, core->http_listener);
        co->framed_port = rs_loop_listen_port(core->loop, core->framed_listener);
    }
    rs_loop_listen_set_accept_hook(core->loop, core->http_listener, rs_core_balance_accept, core);
    rs_loop_listen_set_accept_hook(core->loop, core->framed_listener, rs_core_balance_accept, core);
    rs_loop_set_tick(core->loop, rs_core_tick, core);
    rs_timer_init(&core->health_timer, rs_dispatch_health, core);
    rs_loop_timer_arm(core->loop, &core->health_timer, 1000);
    rs_timer_init(&core->tick_timer, rs_core_tick_timer, core);
    rs_loop_timer_arm(core->loop, &core->tick_timer, 200000);
    return 0;
}

void rs_core_fini(rs_core *core) {
    rs_coord *co = core->co;
    if (core->loop) rs_loop_destroy(core->loop);
    core->loop = NULL;
    if (core->http) rs_http_server_destroy(core->http);
    if (core->router) rs_router_destroy(core->router);
    if (core->models)
        for (uint32_t i = 0; i < co->n_models; i++)
            if (core->models[i].batcher) rs_batcher_destroy(core->models[i].batcher);
    free(core->models);
    free(core->wconns);
    free(core->flights);
    free(core->flight_items);
    free(core->poll_items);
    free(core->reqs);
    if (core->arenas) munmap(core->arenas, (size_t)co->cfg.max_pending * co->cfg.request_arena_bytes);
    if (core->scratch) munmap(core->scratch, core->scratch_bytes);
    if (core->scratch2) munmap(core->scratch2, core->scratch2_bytes);
}

/* ---- connection balance ----------------------------------------------------------------- */

/* The accept hook: every core accepts on its SO_REUSEPORT socket, then
 * rs_balance_pick (balance.h: even first, then the core on the CPU that
 * receives the connection's packets) says which core serves the
 * connection, and that core (the accepting one included) gets the socket
 * with one post and adopts it. The pick and its count in `incoming` happen
 * under one lock, and the count moves to the loop's own (accepted_open)
 * only once the socket is adopted, so no pick ever sees a connection
 * counted nowhere: cores accepting at once keep the balance exact. */
static pthread_mutex_t rs_balance_lock = PTHREAD_MUTEX_INITIALIZER;

static void rs_core_adopt(rs_loop *loop, void *arg) {
    rs_core *core = rs_loop_udata(loop);
    uintptr_t v = (uintptr_t)arg;
    rs_loop_adopt(loop, (v & 1) ? core->http_listener : core->framed_listener, (int)(v >> 1));
    atomic_fetch_sub(&core->incoming, 1);
}

static bool rs_core_balance_accept(rs_loop *loop, int lid, int fd, void *arg) {
    (void)loop;
    rs_core *core = arg;
    rs_coord *co = core->co;
    if (co->n_cores < 2 || atomic_load(&co->draining)) return false;
    int incoming_cpu = -1;
    socklen_t len = sizeof(incoming_cpu);
    if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &incoming_cpu, &len) != 0) incoming_cpu = -1;
    uint32_t loads[RS_COORD_MAX_CORES];
    int preferred = -1;
    RS_ASSERT(co->n_cores <= RS_COORD_MAX_CORES);
    pthread_mutex_lock(&rs_balance_lock);
    for (uint32_t i = 0; i < co->n_cores; i++) {
        rs_core *c = &co->cores[i];
        bool up = c == core || (atomic_load(&c->started) && !c->start_error);
        loads[i] = up ? rs_loop_accepted_open(c->loop) + atomic_load(&c->incoming) : RS_BALANCE_UNAVAILABLE;
        if (up && c->pinned && incoming_cpu >= 0 && rs_cpuset_has(&c->cpus, incoming_cpu)) preferred = (int)i;
    }
    uint32_t pick = rs_balance_pick(loads, co->n_cores, core->index, preferred, RS_BALANCE_SLACK);
    rs_core *to = &co->cores[pick];
    atomic_fetch_add(&to->incoming, 1);
    pthread_mutex_unlock(&rs_balance_lock);
    uintptr_t v = ((uintptr_t)(uint32_t)fd << 1) | (lid == core->http_listener ? 1u : 0u);
    if (rs_loop_post(to->loop, rs_core_adopt, (void *)v) != 0) {
        atomic_fetch_sub(&to->incoming, 1);
        return false; /* serve it here */
    }
    return true;
}

/* ---- drain ---------------------------------------------------------------------------- */

static void rs_answer_unavailable(void *arg, uint64_t token) {
    rs_core *core = arg;
    rs_req *r = rs_req_from_token(core, token);
    if (r) rs_req_fail(core, r, RS_E_UNAVAILABLE, "server is shutting down");
}

static void rs_core_tick_timer(rs_loop *loop, rs_timer *t, void *arg) {
    (void)t;
    rs_core *core = arg;
    rs_coord *co = core->co;
    if (core->index == 0 && co->kv) rs_kv_tick(co->kv);
    rs_metrics_gauge_set(core->ms, co->m_conns[core->index], (int64_t)rs_loop_accepted_open(loop));
    if (atomic_load(&co->draining)) {
        if (core->http_listener >= 0) {
            rs_loop_listen_close(loop, core->http_listener);
            core->http_listener = -1;
        }
        if (core->framed_listener >= 0) {
            rs_loop_listen_close(loop, core->framed_listener);
            core->framed_listener = -1;
        }
        /* The main thread decides when every core stops (all idle, or the
         * drain timeout): a core that stopped alone would leave requests on
         * its open connections unanswered. */
        if (atomic_load(&co->stop)) {
            for (uint32_t i = 0; i < co->n_models; i++)
                rs_batcher_drain(core->models[i].batcher, rs_answer_unavailable, core);
            rs_dispatch_fail_all(core);
            rs_loop_stop(loop);
            return;
        }
    }
    rs_loop_timer_arm(loop, &core->tick_timer, atomic_load(&co->draining) ? 20000 : 200000);
}

/* ---- threads ---------------------------------------------------------------------------- */

typedef struct rs_core_start {
    rs_core *core;
    const rs_plan_entry *entry;
    int entry_index; /* in the plan, for the placement gauges */
} rs_core_start;

static void *rs_core_thread(void *arg) {
    rs_core_start *st = arg;
    rs_core *core = st->core;
    char tag[32];
    snprintf(tag, sizeof(tag), "coordinator/%u", core->index);
    rs_topo_binding b = {0};
    if (st->entry) {
        rs_plan_apply_entry(NULL, st->entry, &b);
        core->pinned = b.pinned;
        core->cpus = b.effective;
    }
    if (rs_core_init(core, core->co, core->index, &core->err) != 0) {
        atomic_fetch_add(&core->co->loops_stopped, 1);
        rs_core_fini(core);
        core->start_error = 1;
        atomic_store(&core->started, true);
        return NULL;
    }
    if (st->entry) rs_topo_metrics_record(&core->co->topo_metrics, core->ms, st->entry_index, &b);
    atomic_store(&core->started, true);
    if (rs_loop_run(core->loop) != 0) RS_ERROR("core %u: event loop failed", core->index);
    /* Other cores may still post to this loop (membership) until they have
     * stopped too: tear down only once every loop has stopped. io_uring is
     * SINGLE_ISSUER, so each loop is torn down by its own thread. */
    atomic_fetch_add(&core->co->loops_stopped, 1);
    while (atomic_load(&core->co->loops_stopped) < core->co->n_cores) usleep(1000);
    rs_core_fini(core);
    return NULL;
}

/* ---- the process -------------------------------------------------------------------------- */

static int rs_coord_metrics_setup(rs_coord *co, const rs_plan *plan, rs_err *err) {
    uint32_t nm = co->n_models + 1; /* + "unknown model" */
    uint32_t np = 2 * (uint32_t)plan->entry_count;
    co->metrics = rs_metrics_create(co->n_cores, 16, nm * (RS_RO_COUNT_ + RS_ST_COUNT_ + 4) + 8 + np + co->n_cores,
                                    nm * (RS_RO_COUNT_ + RS_ST_COUNT_ * 80 + 100) + 64 + np, err);
    if (!co->metrics) return -1;
    co->m_requests = calloc((size_t)nm * RS_RO_COUNT_, sizeof(rs_metric_id));
    co->m_stage = calloc((size_t)nm * RS_ST_COUNT_, sizeof(rs_metric_id));
    co->m_batch_size = calloc(nm, sizeof(rs_metric_id));
    co->m_queue = calloc(nm, sizeof(rs_metric_id));
    co->m_cache_hit = calloc(nm, sizeof(rs_metric_id));
    co->m_cache_miss = calloc(nm, sizeof(rs_metric_id));
    co->m_conns = calloc(co->n_cores, sizeof(rs_metric_id));
    if (!co->m_requests || !co->m_stage || !co->m_batch_size || !co->m_queue || !co->m_cache_hit ||
        !co->m_cache_miss || !co->m_conns) {
        rs_err_set(err, "metrics: out of memory");
        return -1;
    }
    static const char *const outcome_names[RS_RO_COUNT_] = {
        "ok", "cache_hit", "invalid", "not_found", "overloaded", "unavailable", "deadline", "error"};
    static const char *const stage_names[RS_ST_COUNT_] = {"parse", "cache", "queue", "worker", "post", "total"};
    const char *const l_mo[] = {"model", "outcome", NULL};
    const char *const l_ms[] = {"model", "stage", NULL};
    const char *const l_m[] = {"model", NULL};
    rs_histogram_spec lat = {.sub_bits = 2, .max_value = 60ull * 1000 * 1000, .scale = 1e-6};
    rs_histogram_spec bs = {.sub_bits = 2, .max_value = 4096, .scale = 1.0};
    rs_metric_family f_req, f_stage, f_bs, f_q, f_hit, f_miss, f_retry, f_pend, f_conns;
    const char *const l_core[] = {"core", NULL};
    if (rs_metrics_add_family(co->metrics, RS_METRIC_COUNTER, "rs_requests_total",
                              "Inference requests by model and outcome.", l_mo, NULL, &f_req, err) ||
        rs_metrics_add_family(co->metrics, RS_METRIC_HISTOGRAM, "rs_request_stage_seconds",
                              "Time spent per request stage.", l_ms, &lat, &f_stage, err) ||
        rs_metrics_add_family(co->metrics, RS_METRIC_HISTOGRAM, "rs_batch_size",
                              "Requests per batch sent to workers.", l_m, &bs, &f_bs, err) ||
        rs_metrics_add_family(co->metrics, RS_METRIC_GAUGE, "rs_queue_depth",
                              "Requests waiting in the model's batcher.", l_m, NULL, &f_q, err) ||
        rs_metrics_add_family(co->metrics, RS_METRIC_COUNTER, "rs_cache_hits_total",
                              "Response cache hits.", l_m, NULL, &f_hit, err) ||
        rs_metrics_add_family(co->metrics, RS_METRIC_COUNTER, "rs_cache_misses_total",
                              "Response cache misses.", l_m, NULL, &f_miss, err) ||
        rs_metrics_add_family(co->metrics, RS_METRIC_COUNTER, "rs_retries_total",
                              "Batches retried on another worker.", NULL, NULL, &f_retry, err) ||
        rs_metrics_add_family(co->metrics, RS_METRIC_GAUGE, "rs_pending_requests",
                              "Requests accepted and not yet answered.", NULL, NULL, &f_pend, err) ||
        rs_metrics_add_family(co->metrics, RS_METRIC_GAUGE, "rs_io_connections",
                              "Client connections open per io thread (HTTP and framed).", l_core, NULL,
                              &f_conns, err))
        return -1;
    for (uint32_t c = 0; c < co->n_cores; c++) {
        char idx[12];
        snprintf(idx, sizeof(idx), "%u", c);
        const char *v[] = {idx};
        if (rs_metrics_add_series(co->metrics, f_conns, v, &co->m_conns[c], err)) return -1;
    }
    for (uint32_t i = 0; i < nm; i++) {
        const char *name = i < co->n_models ? rs_registry_at(co->registry, i)->name : "_unknown";
        for (uint32_t o = 0; o < RS_RO_COUNT_; o++) {
            const char *v[] = {name, outcome_names[o]};
            if (rs_metrics_add_series(co->metrics, f_req, v, &co->m_requests[i * RS_RO_COUNT_ + o], err)) return -1;
        }
        if (i == co->n_models) continue;
        for (uint32_t s = 0; s < RS_ST_COUNT_; s++) {
            const char *v[] = {name, stage_names[s]};
            if (rs_metrics_add_series(co->metrics, f_stage, v, &co->m_stage[i * RS_ST_COUNT_ + s], err)) return -1;
        }
        const char *v[] = {name};
        if (rs_metrics_add_series(co->metrics, f_bs, v, &co->m_batch_size[i], err) ||
            rs_metrics_add_series(co->metrics, f_q, v, &co->m_queue[i], err) ||
            rs_metrics_add_series(co->metrics, f_hit, v, &co->m_cache_hit[i], err) ||
            rs_metrics_add_series(co->metrics, f_miss, v, &co->m_cache_miss[i], err))
            return -1;
    }
    if (rs_metrics_add_series(co->metrics, f_retry, NULL, &co->m_retries, err) ||
        rs_metrics_add_series(co->metrics, f_pend, NULL, &co->m_pending, err))
        return -1;
    if (rs_topo_metrics_register(co->metrics, plan, &co->topo_metrics, err) != 0) return -1;
    return rs_metrics_freeze(co->metrics, err);
}

/* Replaces a host name with the address it resolves to (rs_resolve_host). */
static int rs_resolve_in_place(char *host, size_t host_bytes, rs_err *err) {
    char addr[RS_HOST_BYTES];
    if (rs_resolve_host(host, addr, sizeof(addr), err) != 0) return -1;
    snprintf(host, host_bytes, "%s", addr);
    return 0;
}

static int rs_coord_load(rs_coord *co, const char *file, const rs_coord_overrides *ov, rs_plan *plan,
                         rs_err *err) {
    rs_cfg *cfg = rs_cfg_load_file(file, err);
    if (!cfg) return -1;
    rs_cfg_node root = rs_cfg_root(cfg);
    int rc = -1;
    rs_topo *topo = NULL;
    if (rs_coord_config_parse(&root, &co->cfg, err) != 0) goto out;
    snprintf(co->cfg.config_file, sizeof(co->cfg.config_file), "%s", file);
    if (ov && ov->http_port >= 0) co->cfg.http_port = (uint16_t)ov->http_port;
    if (ov && ov->framed_port >= 0) co->cfg.framed_port = (uint16_t)ov->framed_port;
    if (rs_router_config_parse(&root, &co->rcfg, err) != 0) goto out;
    for (uint32_t i = 0; ov && i < ov->n_workers; i++)
        if (rs_cluster_add_worker_arg(&co->rcfg.cluster, ov->workers[i], err) != 0) goto out;
    /* Names become addresses now, once: io threads never wait on DNS, and
     * a static worker compares equal to the same worker registering. */
    for (uint32_t i = 0; i < co->rcfg.cluster.n_workers; i++) {
        rs_static_worker *sw = &co->rcfg.cluster.workers[i];
        if (rs_resolve_in_place(sw->host, sizeof(sw->host), err) != 0) {
            rs_err_prefix(err, "cluster.workers[%u]", i);
            goto out;
        }
    }
    rs_cluster_config *cl = &co->rcfg.cluster;
    if (cl->local_host[0] && rs_resolve_in_place(cl->local_host, sizeof(cl->local_host), err) != 0) {
        rs_err_prefix(err, "cluster.local_host");
        goto out;
    }
    rs_cfg_node ionode = rs_cfg_get(&root, "io");
    if (rs_loop_config_parse(&ionode, &co->loopcfg, err) != 0) goto out;
    rs_cfg_node cache = rs_cfg_get(&root, "cache");
    co->cache_enabled = rs_cfg_present(&cache);
    if (rs_kv_config_parse(&cache, &co->kvcfg, err) != 0) goto out;
    rs_registry_config regcfg;
    rs_cfg_node models = rs_cfg_get(&root, "models");
    if (rs_registry_config_parse(&models, &regcfg, err) != 0) goto out;
    if (ov && ov->skip_bad_models) regcfg.skip_bad_models = true;
    regcfg.gpu_numa = rs_topo_gpu_numa;
    co->registry = rs_registry_create(&regcfg, err);
    if (!co->registry) goto out;
    co->n_models = (uint32_t)rs_registry_count(co->registry);
    co->max_batch = 1;
    for (uint32_t i = 0; i < co->n_models; i++) {
        const rs_model *m = rs_registry_at(co->registry, i);
        if (m->max_batch_size > co->max_batch) co->max_batch = m->max_batch_size;
    }
    /* topology: one io loop per planned core */
    rs_topo_config tcfg;
    rs_cfg_node tnode = rs_cfg_get(&root, "topology");
    if (rs_topo_config_parse(&tnode, &tcfg, err) != 0) goto out;
    topo = rs_topo_load_system(err);
    if (!topo) goto out;
    if (rs_plan_build(rs_topo_get_info(topo), &tcfg, NULL, 0, plan, err) != 0) goto out;
    uint32_t n = co->cfg.io_threads ? co->cfg.io_threads : (uint32_t)plan->io_count;
    if (n == 0) n = 1;
    if (n > RS_COORD_MAX_CORES) n = RS_COORD_MAX_CORES;
    co->n_cores = n;
    rc = 0;
out:
    if (topo) rs_topo_free(topo);
    rs_cfg_free(cfg);
    return rc;
}

/* SO_REUSEPORT lets every core listen on one port, but it would also let a
 * second ringserve share the port silently. A plain bind first proves the
 * port is free (then closes, and the cores bind with SO_REUSEPORT). */
static int rs_port_free(const char *host, uint16_t port, const char *field, rs_err *err) {
    if (port == 0) return 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    int gai = getaddrinfo(host, ports, &hints, &res);
    if (gai != 0) {
        rs_err_set(err, "%s: cannot resolve host '%s': %s", field, host, gai_strerror(gai));
        return -1;
    }
    int rc = 0;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 && errno == EADDRINUSE) {
            rs_err_set(err, "%s: %s:%u is already in use (another ringserve or service listens there)", field,
                       host, port);
            rc = -1;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

/* Blocks until SIGTERM or SIGINT arrives on the self-pipe (sigpipe.h)
 * whose read end is fd: the main thread waits there, whichever thread the
 * kernel delivered the signal to. */
static void rs_signals_wait(int fd) {
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) return;
        unsigned char b;
        while (read(fd, &b, 1) == 1)
            if (b == SIGTERM || b == SIGINT) return;
    }
}

int rs_coord_main(const char *config_file, const rs_coord_overrides *ov, rs_coord_ready_fn on_ready,
                  void *arg) {
    rs_coord *co = calloc(1, sizeof(*co));
    rs_plan *plan = calloc(1, sizeof(*plan));
    if (!co || !plan) {
        fprintf(stderr, "ringserve coordinator: out of memory\n");
        return 1;
    }
    rs_err err = {{0}};
    int exit_code = 1;
    rs_log_set_tag("coordinator");
    rs_kserve_global_init();
    static const int signals[] = {SIGTERM, SIGINT};
    int sig_fd = rs_sigpipe_open(signals, 2);
    if (sig_fd < 0) {
        rs_err_set(&err, "cannot create the signal pipe: %s", strerror(errno));
        goto fail;
    }
    if (rs_coord_load(co, config_file, ov, plan, &err) != 0) goto fail;
    co->http_port = co->cfg.http_port;
    co->framed_port = co->cfg.framed_port;
    if (rs_port_free(co->cfg.host, co->http_port, "server.http_port", &err) != 0 ||
        rs_port_free(co->cfg.host, co->framed_port, "server.framed_port", &err) != 0)
        goto fail;
    if (co->cache_enabled) {
        rs_kv_options kopt = {.io_threads = co->n_cores};
        co->kv = rs_kv_open(&co->kvcfg, &kopt, &err);
        if (!co->kv) goto fail;
    }
    if (rs_coord_metrics_setup(co, plan, &err) != 0) goto fail;
    if (rs_coord_http_routes(co, &err) != 0) goto fail;
    if (rs_async_init(co, &err) != 0) goto fail;
    co->cores = calloc(co->n_cores, sizeof(rs_core));
    rs_core_start *starts = calloc(co->n_cores, sizeof(rs_core_start));
    if (!co->cores || !starts) {
        rs_err_set(&err, "out of memory");
        goto fail;
    }
    /* Core 0 first: it resolves port 0 to the port every other core shares. */
    uint32_t started = 0;
    int io_seen = 0;
    for (uint32_t i = 0; i < co->n_cores; i++) {
        co->cores[i].co = co;
        co->cores[i].index = i;
        starts[i].core = &co->cores[i];
        for (int e = 0; e < plan->entry_count; e++) {
            if (plan->entries[e].role == RS_PLAN_IO && plan->entries[e].instance == (int)i) {
                starts[i].entry = &plan->entries[e];
                starts[i].entry_index = e;
                io_seen++;
            }
        }
        if (pthread_create(&co->cores[i].thread, NULL, rs_core_thread, &starts[i]) != 0) {
            rs_err_set(&err, "cannot start io thread %u", i);
            break;
        }
        started++;
        while (!atomic_load(&co->cores[i].started)) usleep(1000);
        if (co->cores[i].start_error) {
            err = co->cores[i].err;
            break;
        }
    }
    bool ok = started == co->n_cores;
    for (uint32_t i = 0; ok && i < co->n_cores; i++) ok = !co->cores[i].start_error;
    if (!ok) {
        atomic_store(&co->draining, true);
        atomic_store(&co->stop, true);
        for (uint32_t i = 0; i < started; i++) {
            if (!co->cores[i].start_error) rs_loop_stop(co->cores[i].loop);
            pthread_join(co->cores[i].thread, NULL);
        }
        free(starts);
        goto fail;
    }
    RS_INFO("serving %u model(s) on %s: http %u, framed %u, %u io thread(s) (%d pinned by the plan), backend %s",
            co->n_models, co->cfg.host, co->http_port, co->framed_port, co->n_cores, io_seen,
            rs_io_backend_name(rs_loop_backend(co->cores[0].loop)));
    if (on_ready) on_ready(arg, co->http_port, co->framed_port);
    rs_signals_wait(sig_fd);
    RS_INFO("shutting down: readiness off, draining for up to %" PRIu64 " ms", co->cfg.drain_timeout_ms);
    atomic_store(&co->draining, true);
    uint64_t deadline = rs_now_ms() + co->cfg.drain_timeout_ms;
    for (;;) {
        uint32_t pending = 0;
        for (uint32_t i = 0; i < co->n_cores; i++) pending += __atomic_load_n(&co->cores[i].pending, __ATOMIC_RELAXED);
        if (pending == 0 || rs_now_ms() >= deadline) break;
        usleep(10000);
    }
    /* Each core's tick timer (every 20 ms while draining) sees co->stop,
     * answers what is left with 503 and stops its loop. */
    atomic_store(&co->stop, true);
    for (uint32_t i = 0; i < co->n_cores; i++) pthread_join(co->cores[i].thread, NULL);
    free(starts);
    exit_code = 0;
    RS_INFO("drained; bye");
    goto out;
fail:
    fprintf(stderr, "ringserve coordinator: %s\n", err.msg);
    exit_code = 1;
out:
    if (co->kv) rs_kv_close(co->kv);
    rs_async_fini(co);
    if (co->http_router) rs_http_router_destroy(co->http_router);
    if (co->metrics) rs_metrics_destroy(co->metrics);
    if (co->registry) rs_registry_destroy(co->registry);
    free(co->m_requests);
    free(co->m_stage);
    free(co->m_batch_size);
    free(co->m_queue);
    free(co->m_cache_hit);
    free(co->m_cache_miss);
    free(co->m_conns);
    free(co->cores);
    free(co);
    free(plan);
    return exit_code;
}

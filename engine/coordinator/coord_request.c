/* coord_request.c — one core's requests: the pool, validation, the cache,
 * the batcher, and how a request ends (result or one explicit error). */
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "engine/common/opts.h"
#include "engine/coordinator/coord.h"
#include "io/framed.h"

/* ---- pool ------------------------------------------------------------------ */

/* gen (32 bits) | owning core (8) | slot (24): max_pending <= 2^20
 * (coord_config.c) and at most RS_COORD_MAX_CORES io threads. */
_Static_assert(RS_COORD_MAX_CORES <= 256, "a token has 8 bits for the owning core");
uint64_t rs_req_token(const rs_req *r) {
    return ((uint64_t)r->gen << 32) | ((uint64_t)r->core->index << 24) | r->index;
}

rs_req *rs_req_from_token(rs_core *core, uint64_t token) {
    uint32_t index = (uint32_t)(token & 0xffffffu);
    uint32_t owner = (uint32_t)(token >> 24) & 0xffu;
    uint32_t gen = (uint32_t)(token >> 32);
    if (index >= core->co->cfg.max_pending || owner >= core->co->n_cores) return NULL;
    rs_req *r = &core->co->cores[owner].reqs[index];
    if (!r->in_use || r->gen != gen) return NULL;
    return r;
}

rs_req *rs_req_alloc(rs_core *core) {
    if (core->free_head == UINT32_MAX) return NULL;
    rs_req *r = &core->reqs[core->free_head];
    RS_ASSERT(!r->in_use);
    core->free_head = r->next_free;
    uint32_t index = r->index, gen = r->gen + 1;
    uint8_t *arena = r->arena;
    size_t cap = r->arena_cap;
    /* Reset the small header fields only; kreq is filled by the parser. */
    memset(r, 0, offsetof(rs_req, arena));
    r->index = index;
    r->gen = gen;
    r->core = core;
    r->arena = arena;
    r->arena_cap = cap;
    r->in_use = true;
    r->kreq.has_id = false;
    r->kreq.output_count = 0;
    r->kreq.inputs.count = 0;
    memset(&r->kreq.params, 0, sizeof(r->kreq.params));
    r->n_outputs_framed = 0;
    r->t_recv_ns = rs_now_ns();
    core->pending++;
    rs_metrics_gauge_add(core->ms, core->co->m_pending, 1);
    return r;
}

void rs_req_free(rs_core *core, rs_req *r) {
    RS_ASSERT(r->in_use);
    r->in_use = false;
    r->next_free = core->free_head;
    core->free_head = r->index;
    RS_ASSERT(core->pending > 0);
    core->pending--;
    rs_metrics_gauge_add(core->ms, core->co->m_pending, -1);
}

/* ---- metrics and tracing ---------------------------------------------------- */

rs_req_outcome rs_outcome_for_status(rs_status st) {
    switch (st) {
    case RS_OK: return RS_RO_OK;
    case RS_E_UNKNOWN_MODEL:
    case RS_E_NOT_FOUND: return RS_RO_NOT_FOUND;
    case RS_E_OVERLOADED: return RS_RO_OVERLOADED;
    case RS_E_UNAVAILABLE: return RS_RO_UNAVAILABLE;
    case RS_E_DEADLINE: return RS_RO_DEADLINE;
    case RS_E_INTERNAL:
    case RS_E_BACKEND:
    case RS_E_TRANSIENT: return RS_RO_ERROR;
    default: return RS_RO_INVALID;
    }
}

static void rs_stage_observe(rs_core *core, uint32_t mi, rs_stage st, uint64_t from_ns,
                             uint64_t to_ns) {
    if (!from_ns || to_ns < from_ns) return;
    rs_metrics_observe(core->ms, core->co->m_stage[mi * RS_ST_COUNT_ + st], (to_ns - from_ns) / 1000);
}

static bool rs_trace_sampled(rs_core *core, const rs_req *r) {
    const rs_coord_config *cfg = &core->co->cfg;
    if (cfg->trace == RS_TRACE_ON) return true;
    if (cfg->trace != RS_TRACE_SAMPLED || cfg->trace_sample_percent == 0) return false;
    return (r->t_recv_ns / 1000 + r->index) % 100 < cfg->trace_sample_percent;
}

static uint64_t rs_span_us(uint64_t a, uint64_t b) { return (a && b >= a) ? (b - a) / 1000 : 0; }

void rs_core_record(rs_core *core, rs_req *r, rs_req_outcome oc) {
    rs_coord *co = core->co;
    uint64_t now = rs_now_ns();
    uint32_t mi = r->model ? r->model_index : co->n_models; /* last row: unknown model */
    rs_metrics_counter_add(core->ms, co->m_requests[mi * RS_RO_COUNT_ + oc], 1);
    if (r->model && co->cfg.metrics) { /* telemetry.metrics: off skips the histograms */
        rs_stage_observe(core, mi, RS_ST_PARSE, r->t_recv_ns, r->t_parsed_ns);
        rs_stage_observe(core, mi, RS_ST_CACHE, r->t_parsed_ns, r->t_cached_ns);
        rs_stage_observe(core, mi, RS_ST_QUEUE, r->t_queued_ns, r->t_dispatch_ns);
        rs_stage_observe(core, mi, RS_ST_WORKER, r->t_dispatch_ns, r->t_worker_ns);
        rs_stage_observe(core, mi, RS_ST_POST, r->t_worker_ns ? r->t_worker_ns : r->t_cached_ns, now);
        rs_stage_observe(core, mi, RS_ST_TOTAL, r->t_recv_ns, now);
    }
    if (rs_trace_sampled(core, r)) {
        static const char *const oc_names[RS_RO_COUNT_] = {
            "ok", "cache_hit", "invalid", "not_found", "overloaded", "unavailable", "deadline", "error"};
        uint64_t queued_end = r->t_dispatch_ns ? r->t_dispatch_ns : now;
        RS_INFO("trace id=%s model=%s version=%s outcome=%s parse_us=%" PRIu64 " cache_us=%" PRIu64
                " queue_us=%" PRIu64 " batch_wait_us=%" PRIu64 " worker_us=%" PRIu64
                " post_us=%" PRIu64 " total_us=%" PRIu64 " traceparent=%s",
                r->id[0] ? r->id : "-", r->model ? r->model->name : "-",
                r->version[0] ? r->version : "-", oc_names[oc], rs_span_us(r->t_recv_ns, r->t_parsed_ns),
                rs_span_us(r->t_parsed_ns, r->t_cached_ns), rs_span_us(r->t_queued_ns, queued_end),
                rs_span_us(r->t_queued_ns, queued_end), rs_span_us(r->t_dispatch_ns, r->t_worker_ns),
                rs_span_us(r->t_worker_ns ? r->t_worker_ns : r->t_cached_ns, now),
                rs_span_us(r->t_recv_ns, now), r->traceparent[0] ? r->traceparent : "-");
    }
}

/* ---- hand-off to a single_queue model's home core, and back --------------------- */

/* Posts to another core's loop. The post queues are sized for one post per
 * request of every core (rs_core_init), so a full queue is a burst of
 * membership events: wait for the target to drain it. */
static void rs_post_to(rs_core *target, rs_post_fn fn, void *arg) {
    for (uint32_t tries = 0; rs_loop_post(target->loop, fn, arg) != 0; tries++) {
        /* only a stopped loop never drains: at shutdown, give up at once */
        if (tries == 100000 || atomic_load(&target->co->stop)) {
            RS_ERROR("cannot post to core %u (its queue stays full): a request is lost", target->index);
            return;
        }
        sched_yield();
    }
}

static void rs_req_returned(rs_loop *loop, void *arg);

/* The home core ends a lent request: the result goes into the request's
 * arena (bytes may already be there) and the request back to its owner. */
static void rs_req_give_back(rs_req *r, rs_status st, const void *bytes, size_t len) {
    if (len > r->arena_cap) len = r->arena_cap;
    if (bytes != r->arena) memcpy(r->arena, bytes, len);
    r->remote_status = st;
    r->remote_len = (uint32_t)len;
    rs_post_to(r->core, rs_req_returned, r);
}

/* On the owner: the result of a lent request, from its arena. */
static void rs_req_returned(rs_loop *loop, void *arg) {
    (void)loop;
    rs_req *r = arg;
    rs_core *core = r->core;
    if (r->remote_status != RS_OK) {
        rs_req_fail(core, r, r->remote_status, "%.*s", (int)r->remote_len, (const char *)r->arena);
        return;
    }
    rs_frame_msg msg;
    char why[128];
    int64_t n = rs_frame_decode(r->arena, r->remote_len, (uint32_t)r->arena_cap, &msg, why, sizeof(why));
    RS_ASSERT(n > 0 && msg.hdr.type == RS_MSG_INFER_RESPONSE); /* encoded by the home core */
    rs_req_succeed(core, r, &msg.u.infer_resp.outputs, false);
}

/* ---- ending a request ---------------------------------------------------------- */

static int rs_http_status_for(rs_status st) {
    int code = rs_status_http(st);
    return code > 0 ? code : 500;
}

void rs_req_fail(rs_core *core, rs_req *r, rs_status st, const char *fmt, ...) {
    char msg[512];
    size_t off = 0;
    if (st == RS_E_OVERLOADED && strstr(fmt, "overloaded") == NULL)
        off = (size_t)snprintf(msg, sizeof(msg), "overloaded: "); /* clients grep for the word */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);
    va_end(ap);
    if (r->core != core) {
        rs_req_give_back(r, st, msg, strlen(msg));
        return;
    }
    uint32_t retry_after = (st == RS_E_OVERLOADED || st == RS_E_UNAVAILABLE) ? core->co->cfg.retry_after_s : 0;
    switch (r->origin) {
    case RS_ORIGIN_HTTP:
        rs_http_respond_error(core->http, r->http, rs_http_status_for(st), retry_after, msg);
        break;
    case RS_ORIGIN_FRAMED: {
        rs_conn *c = rs_loop_conn(core->loop, r->conn);
        if (c) rs_framed_send_error(c, r->wire_id, st, "%s", msg);
        break;
    }
    case RS_ORIGIN_ASYNC_HTTP: {
        char body[640];
        size_t n = rs_kserve_render_error(msg, body, sizeof(body));
        if (n >= sizeof(body)) n = sizeof(body) - 1;
        rs_async_complete(core->co, r->async_id, st, body, n, n);
        break;
    }
    case RS_ORIGIN_ASYNC_FRAMED:
        rs_async_complete(core->co, r->async_id, st, msg, strlen(msg), 0);
        break;
    case RS_ORIGIN_NONE: break;
    }
    rs_core_record(core, r, rs_outcome_for_status(st));
    rs_req_free(core, r);
}

/* Keeps only the outputs the request asked for (all when it named none). */
static int rs_select_outputs(const rs_req *r, const rs_tensor_list *all, rs_tensor_list *out,
                             char *why, size_t why_bytes) {
    uint32_t n_names = r->n_outputs_framed;
    if (n_names == 0 && (r->origin == RS_ORIGIN_HTTP || r->origin == RS_ORIGIN_ASYNC_HTTP))
        n_names = r->kreq.output_count;
    if (n_names == 0) {
        *out = *all;
        return 0;
    }
    out->count = 0;
    for (uint32_t i = 0; i < n_names; i++) {
        const char *name = r->n_outputs_framed ? r->outputs_framed[i] : r->kreq.outputs[i].name;
        const rs_tensor_view *t = rs_tensor_find(all, name, strlen(name));
        if (!t) {
            snprintf(why, why_bytes, "requested output '%s' is not an output of model '%s'", name,
                     r->model->name);
            return -1;
        }
        out->t[out->count++] = *t;
    }
    return 0;
}

static void rs_answer_framed(rs_core *core, rs_req *r, const rs_tensor_list *outputs,
                             bool cache_hit) {
    rs_infer_response resp = {.model = rs_str_c(r->model->name),
                              .version = rs_str_c(r->version),
                              .id = rs_str_c(r->id),
                              .outputs = *outputs};
    uint16_t flags = cache_hit ? RS_FRAME_F_CACHE_HIT : 0;
    if (r->origin == RS_ORIGIN_FRAMED) {
        rs_conn *c = rs_loop_conn(core->loop, r->conn);
        if (c) rs_framed_send_infer_response(c, r->wire_id, flags, &resp);
        return;
    }
    size_t n = rs_encode_infer_response(core->scratch, core->scratch_bytes, r->async_id, flags, &resp);
    if (n == 0) {
        static const char msg[] = "response larger than the server's response buffer";
        rs_async_complete(core->co, r->async_id, RS_E_INTERNAL, msg, sizeof(msg) - 1, 0);
        return;
    }
    rs_async_complete(core->co, r->async_id, RS_OK, core->scratch, n, 0);
}

void rs_req_succeed(rs_core *core, rs_req *r, const rs_tensor_list *outputs, bool cache_hit) {
    if (r->core != core) {
        /* Every output goes back (the owner selects): as a frame in the
         * request's arena, which the owner decodes like a cache value. */
        rs_infer_response resp = {.model = rs_str_c(r->model->name),
                                  .version = rs_str_c(r->version),
                                  .outputs = *outputs};
        size_t n = rs_encode_infer_response(r->arena, r->arena_cap, 0, 0, &resp);
        if (n == 0) {
            char msg[160];
            int len = snprintf(msg, sizeof(msg),
                               "the answer is larger than server.request_arena_bytes (%zu bytes)",
                               r->arena_cap);
            rs_req_give_back(r, RS_E_INTERNAL, msg, (size_t)len);
            return;
        }
        rs_req_give_back(r, RS_OK, r->arena, n);
        return;
    }
    rs_tensor_list sel;
    char why[256];
    if (rs_select_outputs(r, outputs, &sel, why, sizeof(why)) != 0) {
        rs_req_fail(core, r, RS_E_INVALID_INPUT, "%s", why);
        return;
    }
    switch (r->origin) {
    case RS_ORIGIN_HTTP:
    case RS_ORIGIN_ASYNC_HTTP: rs_coord_http_answer(core, r, &sel, cache_hit); break;
    case RS_ORIGIN_FRAMED:
    case RS_ORIGIN_ASYNC_FRAMED: rs_answer_framed(core, r, &sel, cache_hit); break;
    case RS_ORIGIN_NONE: break;
    }
    rs_core_record(core, r, cache_hit ? RS_RO_CACHE_HIT : RS_RO_OK);
    rs_req_free(core, r);
}

/* ---- model lookup ------------------------------------------------------------ */

const rs_model *rs_coord_find_model(const rs_coord *co, rs_str name, rs_str version, uint32_t *index,
                                    char *why, size_t why_bytes) {
    uint32_t v = 0;
    if (version.len > 0) {
        char buf[16];
        char *end = NULL;
        rs_str_copy(buf, sizeof(buf), version);
        unsigned long x = strtoul(buf, &end, 10);
        if (version.len >= sizeof(buf) || !end || *end || x == 0 || x > RS_MODEL_MAX_VERSION) {
            snprintf(why, why_bytes, "version '%.*s' is not a model version number", (int)version.len,
                     version.ptr);
            return NULL;
        }
        v = (uint32_t)x;
    }
    const rs_model *m = rs_registry_findn(co->registry, name.ptr, name.len, v);
    if (!m) {
        if (v)
            snprintf(why, why_bytes, "unknown model '%.*s' version %u", (int)name.len, name.ptr, v);
        else
            snprintf(why, why_bytes, "unknown model '%.*s'", (int)name.len, name.ptr);
        return NULL;
    }
    for (uint32_t i = 0; i < co->n_models; i++) {
        if (rs_registry_at(co->registry, i) == m) {
            if (index) *index = i;
            return m;
        }
    }
    snprintf(why, why_bytes, "model '%.*s' is not served here", (int)name.len, name.ptr);
    return NULL;
}

/* ---- validation -------------------------------------------------------------- */

static int rs_validate_inputs(const rs_model *m, const rs_tensor_list *in, char *why,
                              size_t why_bytes) {
    for (uint32_t i = 0; i < m->input_count; i++) {
        const rs_tensor_spec *spec = &m->inputs[i];
        const rs_tensor_view *t = rs_tensor_find(in, spec->name, strlen(spec->name));
        if (!t) {
            snprintf(why, why_bytes, "missing input '%s' of model '%s'", spec->name, m->name);
            return -1;
        }
        if (t->dtype != spec->dtype) {
            snprintf(why, why_bytes, "input '%s': datatype %s, model '%s' expects %s", spec->name,
                     rs_dtype_name(t->dtype), m->name, rs_dtype_name(spec->dtype));
            return -1;
        }
        if (t->rank != spec->rank) {
            snprintf(why, why_bytes, "input '%s': rank %u, model '%s' expects rank %u", spec->name,
                     t->rank, m->name, spec->rank);
            return -1;
        }
        for (uint32_t d = 0; d < t->rank; d++) {
            if (t->dims[d] < (d == 0 ? 1 : 0) || (spec->dims[d] >= 0 && t->dims[d] != spec->dims[d])) {
                char shape[128] = "", want[128] = "";
                size_t a = 0, b = 0;
                for (uint32_t k = 0; k < t->rank; k++) {
                    a += (size_t)snprintf(shape + a, sizeof(shape) - a, "%s%" PRId64, k ? "," : "", t->dims[k]);
                    b += (size_t)snprintf(want + b, sizeof(want) - b, "%s%" PRId64, k ? "," : "", spec->dims[k]);
                    if (a >= sizeof(shape) || b >= sizeof(want)) break;
                }
                snprintf(why, why_bytes, "input '%s': shape [%s] does not match model '%s' shape [%s]",
                         spec->name, shape, m->name, want);
                return -1;
            }
        }
        if (m->max_batch_size && (uint64_t)t->dims[0] > m->max_batch_size) {
            snprintf(why, why_bytes, "input '%s': batch of %" PRId64 " rows exceeds max_batch_size %u of model '%s'",
                     spec->name, t->dims[0], m->max_batch_size, m->name);
            return -1;
        }
        char twhy[192];
        if (rs_tensor_check(t, twhy, sizeof(twhy)) != 0) {
            snprintf(why, why_bytes, "input '%s': %s", spec->name, twhy);
            return -1;
        }
    }
    for (uint32_t i = 0; i < in->count; i++) {
        char name[RS_MAX_NAME_BYTES + 1];
        uint32_t n = in->t[i].name.len < RS_MAX_NAME_BYTES ? in->t[i].name.len : RS_MAX_NAME_BYTES;
        memcpy(name, in->t[i].name.ptr, n);
        name[n] = '\0';
        if (rs_model_input_index(m, name) < 0) {
            snprintf(why, why_bytes, "input '%s' is not an input of model '%s'", name, m->name);
            return -1;
        }
    }
    return 0;
}

/* ---- the batcher ---------------------------------------------------------------- */

static void rs_on_expired(void *arg, uint64_t token) {
    rs_core *core = arg;
    rs_req *r = rs_req_from_token(core, token);
    if (!r) return;
    uint64_t waited_us = (rs_now_ns() - r->t_recv_ns) / 1000;
    rs_req_fail(core, r, RS_E_DEADLINE, "deadline exceeded after %" PRIu64 " us waiting in the queue of model '%s'",
                waited_us, r->model->name);
}

static void rs_core_poll_model(rs_core *core, uint32_t mi) {
    rs_core_model *cm = &core->models[mi];
    cm->dirty = false;
    /* At most cm->max_flights batches out per queue (the model's
     * max_batches_out, else server.max_batches_per_model): past that,
     * requests wait in the batcher, so that under load the next batch is a
     * big one (and a full queue answers 429) instead of many small ones
     * piling up in the workers' queues. */
    while (cm->flights < cm->max_flights) {
        uint64_t now_us = rs_now_us();
        uint32_t rows = 0;
        uint32_t n = rs_batcher_poll(cm->batcher, now_us, rs_on_expired, core, core->poll_items, &rows);
        if (n == 0) break;
        rs_dispatch_batch(core, mi, core->poll_items, n);
    }
    rs_batcher_stats st;
    rs_batcher_stats_get(cm->batcher, &st);
    rs_metrics_gauge_set(core->ms, core->co->m_queue[mi], (int64_t)(st.queued + st.followers));
    uint64_t now_us = rs_now_us();
    uint64_t next = rs_batcher_next_event_us(cm->batcher, now_us);
    /* At the limit, a finishing batch polls again (rs_flight_free marks the
     * model dirty); a timer would only spin. */
    if (next == UINT64_MAX || cm->flights >= cm->max_flights) {
        rs_loop_timer_cancel(core->loop, &cm->timer);
    } else {
        uint64_t delay = next > now_us ? next - now_us : 0;
        rs_loop_timer_arm(core->loop, &cm->timer, delay);
    }
}

void rs_core_model_timer(rs_loop *loop, rs_timer *t, void *arg) {
    (void)loop;
    (void)t;
    rs_core_model *cm = arg;
    rs_core_poll_model(cm->core, (uint32_t)(cm - cm->core->models));
}

void rs_core_tick(rs_loop *loop, void *arg) {
    (void)loop;
    rs_core *core = arg;
    for (uint32_t mi = 0; mi < core->co->n_models; mi++)
        if (core->models[mi].dirty) rs_core_poll_model(core, mi);
}

/* ---- submit ------------------------------------------------------------------------ */

static int rs_cache_answer(rs_core *core, rs_req *r) {
    size_t len = 0;
    rs_kv_status st = rs_kv_get(core->co->kv, &r->key, core->scratch2, core->scratch2_bytes, &len);
    if (st != RS_KV_OK) return -1;
    /* A framed request with no id to echo that wants every output gets the
     * stored frame itself, restamped: no decode, no encode. */
    rs_frame_header h;
    if (r->origin == RS_ORIGIN_FRAMED && r->id[0] == '\0' && r->n_outputs_framed == 0 &&
        rs_frame_peek(core->scratch2, len, (uint32_t)core->scratch2_bytes, &h) == (int64_t)len &&
        h.type == RS_MSG_INFER_RESPONSE) {
        r->t_cached_ns = rs_now_ns();
        rs_frame_restamp(core->scratch2, r->wire_id, RS_FRAME_F_CACHE_HIT);
        rs_conn *c = rs_loop_conn(core->loop, r->conn);
        if (c) rs_conn_send(c, core->scratch2, len);
        rs_core_record(core, r, RS_RO_CACHE_HIT);
        rs_req_free(core, r);
        return 0;
    }
    rs_frame_msg msg;
    char why[128];
    int64_t n = rs_frame_decode(core->scratch2, len, (uint32_t)core->scratch2_bytes, &msg, why, sizeof(why));
    if (n <= 0 || msg.hdr.type != RS_MSG_INFER_RESPONSE) {
        RS_LOG_ONCE(RS_LOG_WARN, "cache: an entry did not decode (%s); ignoring it", why);
        return -1;
    }
    r->t_cached_ns = rs_now_ns();
    rs_req_succeed(core, r, &msg.u.infer_resp.outputs, true);
    return 0;
}

static void rs_req_at_home(rs_loop *loop, void *arg);
static void rs_req_enqueue(rs_core *core, rs_req *r);

void rs_req_submit(rs_core *core, rs_req *r) {
    rs_coord *co = core->co;
    const rs_model *m = r->model;
    r->t_parsed_ns = rs_now_ns();
    if (atomic_load(&co->draining)) {
        rs_req_fail(core, r, RS_E_UNAVAILABLE, "server is draining");
        return;
    }
    char why[384];
    if (rs_validate_inputs(m, &r->kreq.inputs, why, sizeof(why)) != 0) {
        rs_req_fail(core, r, RS_E_INVALID_INPUT, "%s", why);
        return;
    }
    memcpy(r->version, core->models[r->model_index].version, sizeof(r->version));
    r->key = rs_kv_key_for_request_n(rs_str_c(m->name), rs_str_c(r->version), &r->kreq.inputs);
    r->cacheable = co->kv && m->cache && !r->no_cache;
    if (r->cacheable) {
        if (rs_cache_answer(core, r) == 0) {
            rs_metrics_counter_add(core->ms, co->m_cache_hit[r->model_index], 1);
            return;
        }
        rs_metrics_counter_add(core->ms, co->m_cache_miss[r->model_index], 1);
    }
    r->t_cached_ns = rs_now_ns();
    uint32_t home = core->models[r->model_index].home;
    if (home != core->index) {
        rs_post_to(&co->cores[home], rs_req_at_home, r);
        return;
    }
    rs_req_enqueue(core, r);
}

/* On a single_queue model's home core: a request another core lent. */
static void rs_req_at_home(rs_loop *loop, void *arg) {
    rs_req_enqueue(rs_loop_udata(loop), arg);
}

/* Submits to this core's batcher of the request's model. */
static void rs_req_enqueue(rs_core *core, rs_req *r) {
    rs_coord *co = core->co;
    const rs_model *m = r->model;
    rs_batcher_request br = {.token = rs_req_token(r),
                             .rows = r->kreq.inputs.count ? (uint32_t)r->kreq.inputs.t[0].dims[0] : 1,
                           .priority = r->kreq.params.has_priority ? r->kreq.params.priority : 0,
                           .deadline_us = 0,
                           .has_key = !r->no_cache,
                           .key = {.lo = r->key.lo, .hi = r->key.hi}};
    uint64_t now_us = rs_now_us();
    if (r->kreq.params.has_timeout && r->kreq.params.timeout_us > 0)
        br.deadline_us = now_us + r->kreq.params.timeout_us;
    r->t_queued_ns = rs_now_ns();
    rs_core_model *cm = &core->models[r->model_index];
    rs_batcher_status bs = rs_batcher_submit(cm->batcher, now_us, &br);
    switch (bs) {
    case RS_BATCHER_QUEUED:
    case RS_BATCHER_COALESCED:
        cm->dirty = true;
        return;
    case RS_BATCHER_OVERLOADED:
        rs_req_fail(core, r, RS_E_OVERLOADED, "model '%s' is overloaded: its queue is full (max_queue_size %u)",
                    m->name, m->batching.max_queue_size);
        return;
    case RS_BATCHER_BAD_PRIORITY:
        rs_req_fail(core, r, RS_E_INVALID_INPUT, "priority %u is out of range 0..%u", br.priority,
                    co->cfg.priority_levels);
        return;
    case RS_BATCHER_EXPIRED:
        rs_req_fail(core, r, RS_E_DEADLINE, "deadline exceeded before the request was queued");
        return;
    case RS_BATCHER_TOO_LARGE:
        rs_req_fail(core, r, RS_E_INVALID_INPUT, "a batch of %u rows exceeds max_batch_size %u of model '%s'",
                    br.rows, m->max_batch_size, m->name);
        return;
    }
    rs_req_fail(core, r, RS_E_INTERNAL, "batcher returned %d", (int)bs);
}

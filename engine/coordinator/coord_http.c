/* coord_http.c — the KServe v2 HTTP API of the coordinator.
 *
 *   GET  /v2/health/live | /v2/health/ready | /v2
 *   GET  /v2/models/{m}[/versions/{v}] | .../ready
 *   POST /v2/models/{m}[/versions/{v}]/infer   (JSON or binary tensor data)
 *   GET  /v2/requests/{id}                     (asynchronous results)
 *   GET  /v2/workers | /metrics
 * Handlers run on the core's loop; inference answers later, when its batch
 * returns, through the request's HTTP handle. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include <json-c/json.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "engine/coordinator/coord.h"

static rs_core *rs_core_of(rs_http_server *s) { return rs_http_server_user(s); }

static void rs_respond_json_text(rs_http_server *s, rs_http_handle h, int status, const char *json) {
    rs_http_respond_json(s, h, status, json, strlen(json));
}

/* ---- health and metadata ---------------------------------------------------------- */

static void h_live(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_respond_json_text(s, req->handle, 200, "{\"live\":true}");
}

/* Ready when not draining and every model has a routable worker on every
 * core (each core's router learns of registrations on its own thread, so a
 * request may land on any of them). */
static bool rs_all_models_ready(rs_core *core) {
    if (atomic_load(&core->co->draining)) return false;
    rs_core_update_ready(core);
    for (uint32_t i = 0; i < core->co->n_cores; i++)
        if (!atomic_load(&core->co->cores[i].models_ready)) return false;
    return true;
}

static void h_ready(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_core *core = rs_core_of(s);
    bool ready = rs_all_models_ready(core);
    rs_http_response resp = {.status = ready ? 200 : 503};
    const char *body = ready ? "{\"ready\":true}" : "{\"ready\":false}";
    struct iovec iov = {.iov_base = (void *)body, .iov_len = strlen(body)};
    resp.body = &iov;
    resp.body_iovcnt = 1;
    if (!ready) resp.retry_after_s = core->co->cfg.retry_after_s;
    rs_http_respond(s, req->handle, &resp);
}

static void h_server_meta(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    static const char *const ext[] = {"binary_tensor_data", "async", "metrics", "workers"};
    char body[512];
    size_t n = rs_kserve_render_server_metadata("ringserve", "0.1.0", ext, 4, body, sizeof(body));
    rs_http_respond_json(s, req->handle, 200, body, n < sizeof(body) ? n : sizeof(body) - 1);
}

/* The route's {model} and optional {version}. */
static const rs_model *rs_http_model(rs_core *core, const rs_http_request *req, uint32_t *index,
                                     char *why, size_t why_bytes) {
    const rs_str *ver = rs_http_param_get(req, "version");
    return rs_coord_find_model(core->co, *rs_http_param_get(req, "model"), ver ? *ver : (rs_str){0}, index,
                               why, why_bytes);
}

static void h_model_meta(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    char why[256];
    uint32_t mi = 0;
    const rs_model *m = rs_http_model(rs_core_of(s), req, &mi, why, sizeof(why));
    if (!m) {
        rs_http_respond_error(s, req->handle, 404, 0, why);
        return;
    }
    rs_respond_json_text(s, req->handle, 200, m->metadata_json ? m->metadata_json : "{}");
}

static void h_model_ready(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_core *core = rs_core_of(s);
    char why[256];
    uint32_t mi = 0;
    const rs_model *m = rs_http_model(core, req, &mi, why, sizeof(why));
    if (!m) {
        rs_http_respond_error(s, req->handle, 404, 0, why);
        return;
    }
    bool ready = !atomic_load(&core->co->draining) &&
                 rs_router_model_ready(core->router, rs_str_c(m->name), (rs_str){0}, 0);
    rs_respond_json_text(s, req->handle, ready ? 200 : 503, ready ? "{\"ready\":true}" : "{\"ready\":false}");
}

/* ---- inference ---------------------------------------------------------------------- */

/* The rendered-answer cache. A repeated HTTP body (same model, same bytes,
 * so the same inputs, id and output options) is answered from the bytes
 * rendered the first time: no JSON parse, no render. Entries live in the
 * shared response cache next to the tensor entries, under a key of their
 * own domain: [magic u32][json_len u32][body]. */
#define RS_HTTP_BODY_MAGIC 0x59444f42u /* "BODY" */

static rs_kv_key rs_http_body_key(const rs_model *m, size_t json_len, const uint8_t *body, size_t len) {
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    static const char domain[] = "ringserve/http-answer/v1";
    XXH3_128bits_update(&st, domain, sizeof(domain));
    XXH3_128bits_update(&st, m->name, strlen(m->name) + 1);
    uint64_t nums[3] = {m->version, json_len, len};
    XXH3_128bits_update(&st, nums, sizeof(nums));
    XXH3_128bits_update(&st, body, len);
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    rs_kv_key k = {.lo = h.low64, .hi = h.high64};
    return k;
}

/* Sends a rendered inference answer: JSON, or JSON followed by binary
 * tensors (json_len < len) with Inference-Header-Content-Length.
 * cache: "hit" / "miss" for X-Ringserve-Cache, or NULL for none. */
static void rs_http_send_answer(rs_http_server *s, rs_http_handle h, int status, const uint8_t *body,
                                size_t len, size_t json_len, const char *cache) {
    char ihcl[24];
    rs_http_header hdrs[2];
    uint32_t nh = 0;
    if (cache) hdrs[nh++] = (rs_http_header){.name = rs_str_c("X-Ringserve-Cache"), .value = rs_str_c(cache)};
    bool binary = json_len < len;
    if (binary) {
        snprintf(ihcl, sizeof(ihcl), "%zu", json_len);
        hdrs[nh++] = (rs_http_header){.name = rs_str_c("Inference-Header-Content-Length"), .value = rs_str_c(ihcl)};
    }
    struct iovec iov = {.iov_base = (void *)body, .iov_len = len};
    rs_http_response resp = {.status = status,
                             .content_type = binary ? "application/octet-stream" : "application/json",
                             .headers = nh ? hdrs : NULL,
                             .header_count = nh,
                             .body = &iov,
                             .body_iovcnt = 1};
    rs_http_respond(s, h, &resp);
}

static bool rs_http_cached_answer(rs_core *core, rs_req *r) {
    size_t len = 0;
    if (rs_kv_get(core->co->kv, &r->http_key, core->scratch2, core->scratch2_bytes, &len) != RS_KV_OK)
        return false;
    uint32_t hdr[2];
    if (len < sizeof(hdr)) return false;
    memcpy(hdr, core->scratch2, sizeof(hdr));
    size_t body_len = len - sizeof(hdr);
    if (hdr[0] != RS_HTTP_BODY_MAGIC || hdr[1] > body_len) return false;
    rs_http_send_answer(core->http, r->http, 200, core->scratch2 + sizeof(hdr), body_len, hdr[1], "hit");
    r->t_parsed_ns = r->t_cached_ns = rs_now_ns();
    rs_metrics_counter_add(core->ms, core->co->m_cache_hit[r->model_index], 1);
    rs_core_record(core, r, RS_RO_CACHE_HIT);
    rs_req_free(core, r);
    return true;
}

/* After an answer was rendered into core->scratch: keep it for repeats. */
static void rs_http_cache_store(rs_core *core, rs_req *r, size_t json_len, size_t total) {
    uint32_t hdr[2] = {RS_HTTP_BODY_MAGIC, (uint32_t)json_len};
    if (!r->has_http_key || total + sizeof(hdr) > core->scratch2_bytes) return;
    memcpy(core->scratch2, hdr, sizeof(hdr));
    memcpy(core->scratch2 + sizeof(hdr), core->scratch, total);
    rs_kv_set(core->co->kv, &r->http_key, core->scratch2, total + sizeof(hdr), RS_KV_TTL_DEFAULT);
}

static void h_infer(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_core *core = rs_core_of(s);
    rs_req *r = rs_req_alloc(core);
    if (!r) {
        char msg[128], why[256];
        uint32_t mi = core->co->n_models;
        rs_http_model(core, req, &mi, why, sizeof(why));
        rs_metrics_counter_add(core->ms, core->co->m_requests[mi * RS_RO_COUNT_ + RS_RO_OVERLOADED], 1);
        snprintf(msg, sizeof(msg), "overloaded: too many requests in flight (server.max_pending %u)", core->co->cfg.max_pending);
        rs_http_respond_error(s, req->handle, 429, core->co->cfg.retry_after_s, msg);
        return;
    }
    r->origin = RS_ORIGIN_HTTP;
    r->http = req->handle;
    if (req->recv_ns) r->t_recv_ns = req->recv_ns;
    char why[384];
    r->model = rs_http_model(core, req, &r->model_index, why, sizeof(why));
    if (!r->model) {
        rs_req_fail(core, r, RS_E_UNKNOWN_MODEL, "%s", why);
        return;
    }
    const rs_str *tp = rs_http_header_get(req, "traceparent");
    if (tp) rs_str_copy(r->traceparent, sizeof(r->traceparent), *tp);
    const rs_str *rk = rs_http_header_get(req, "x-routing-key");
    if (rk) rs_str_copy(r->routing_key, sizeof(r->routing_key), *rk);
    const rs_str *cc = rs_http_header_get(req, "cache-control");
    if (cc && cc->len >= 8 && memmem(cc->ptr, cc->len, "no-cache", 8)) r->no_cache = true;
    size_t json_len = req->body_len;
    rs_err err = {{0}};
    const rs_str *ihcl = rs_http_header_get(req, "inference-header-content-length");
    if (ihcl && rs_kserve_header_length(ihcl->ptr, ihcl->len, req->body_len, &json_len, &err) != 0) {
        rs_req_fail(core, r, RS_E_INVALID_INPUT, "%s", err.msg);
        return;
    }
    if (core->co->kv && r->model->cache && !r->no_cache && req->body_len > 0) {
        r->http_key = rs_http_body_key(r->model, json_len, req->body, req->body_len);
        r->has_http_key = true;
        if (rs_http_cached_answer(core, r)) return;
    }
    rs_kserve_arena arena;
    rs_kserve_arena_init(&arena, r->arena, r->arena_cap);
    if (rs_kserve_parse_infer(req->body, req->body_len, json_len, &r->kreq, &arena, &err) != 0) {
        rs_req_fail(core, r, RS_E_INVALID_INPUT, "%s", err.msg);
        return;
    }
    /* The answer carries the request's id when it had one (KServe v2); none is
     * made up, so that identical bodies get identical answers. */
    if (r->kreq.has_id) snprintf(r->id, sizeof(r->id), "%s", r->kreq.id);
    if (r->kreq.params.async) {
        uint64_t id = rs_async_reserve(core->co, RS_ORIGIN_ASYNC_HTTP);
        if (!id) {
            rs_req_fail(core, r, RS_E_OVERLOADED, "too many asynchronous results pending (server.max_async_results %u)",
                        core->co->cfg.max_async_results);
            return;
        }
        char body[256], loc[64];
        char ids[24];
        snprintf(ids, sizeof(ids), "%" PRIu64, id);
        size_t n = rs_kserve_render_async(ids, "pending", body, sizeof(body));
        snprintf(loc, sizeof(loc), "/v2/requests/%s", ids);
        rs_http_header hdr = {.name = rs_str_c("Location"), .value = rs_str_c(loc)};
        struct iovec iov = {.iov_base = body, .iov_len = n < sizeof(body) ? n : sizeof(body) - 1};
        rs_http_response resp = {.status = 202, .headers = &hdr, .header_count = 1, .body = &iov, .body_iovcnt = 1};
        rs_http_respond(s, req->handle, &resp);
        r->origin = RS_ORIGIN_ASYNC_HTTP;
        r->async_id = id;
    }
    rs_req_submit(core, r);
}

void rs_coord_http_answer(rs_core *core, rs_req *r, const rs_tensor_list *outputs, bool cache_hit) {
    bool binary[RS_MAX_TENSORS];
    rs_err err = {{0}};
    if (rs_kserve_output_binary(&r->kreq, outputs, binary, &err) != 0) {
        if (r->origin == RS_ORIGIN_HTTP) rs_http_respond_error(core->http, r->http, 400, 0, err.msg);
        else rs_async_complete(core->co, r->async_id, RS_E_INVALID_INPUT, err.msg, strlen(err.msg), strlen(err.msg));
        return;
    }
    rs_kserve_response kr = {.model_name = r->model->name,
                             .model_version = r->version,
                             .id = r->id[0] ? r->id : NULL,
                             .outputs = outputs,
                             .binary = binary};
    size_t json_len = 0, total = 0;
    if (rs_kserve_render_response(&kr, core->scratch, core->scratch_bytes, &json_len, &total, &err) != 0) {
        if (r->origin == RS_ORIGIN_HTTP) rs_http_respond_error(core->http, r->http, 500, 0, err.msg);
        else rs_async_complete(core->co, r->async_id, RS_E_INTERNAL, err.msg, strlen(err.msg), strlen(err.msg));
        return;
    }
    if (r->origin == RS_ORIGIN_ASYNC_HTTP) {
        rs_async_complete(core->co, r->async_id, RS_OK, core->scratch, total, json_len);
        return;
    }
    rs_http_cache_store(core, r, json_len, total);
    rs_http_send_answer(core->http, r->http, 200, core->scratch, total, json_len, cache_hit ? "hit" : "miss");
}

static void h_async_poll(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_core *core = rs_core_of(s);
    const rs_str *idp = rs_http_param_get(req, "id");
    char ids[32];
    rs_str_copy(ids, sizeof(ids), *idp);
    char *end = NULL;
    uint64_t id = strtoull(ids, &end, 10);
    size_t len = 0, json_len = 0;
    rs_status result = RS_OK;
    rs_status st = (end && *end == '\0' && idp->len < sizeof(ids))
                       ? rs_async_lookup(core->co, id, RS_ORIGIN_ASYNC_HTTP, &result, core->scratch,
                                         core->scratch_bytes, &len, &json_len)
                       : RS_E_NOT_FOUND;
    if (st == RS_E_PENDING) {
        char body[128];
        size_t n = rs_kserve_render_async(ids, "running", body, sizeof(body));
        rs_http_respond_json(s, req->handle, 202, body, n < sizeof(body) ? n : sizeof(body) - 1);
        return;
    }
    if (st != RS_OK) {
        char msg[160];
        snprintf(msg, sizeof(msg), "no asynchronous request '%s' (unknown, or its result expired)", ids);
        rs_http_respond_error(s, req->handle, 404, 0, msg);
        return;
    }
    rs_http_send_answer(s, req->handle, result == RS_OK ? 200 : rs_status_http(result), core->scratch, len,
                        json_len, NULL);
}

/* ---- telemetry ------------------------------------------------------------------------ */

static void h_metrics(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_core *core = rs_core_of(s);
    rs_coord *co = core->co;
    if (!co->cfg.metrics) {
        rs_http_respond_error(s, req->handle, 404, 0, "metrics are off (telemetry.metrics)");
        return;
    }
    char *out = (char *)core->scratch;
    size_t cap = core->scratch_bytes;
    size_t len = rs_metrics_render(co->metrics, out, cap);
    if (len >= cap) len = cap - 1;
    if (co->kv) {
        rs_kv_stats st;
        rs_kv_stats_get(co->kv, &st);
        int n = snprintf(out + len, cap - len,
                         "# HELP rs_kv_items Entries in the shared response cache.\n# TYPE rs_kv_items gauge\n"
                         "rs_kv_items %" PRIu64 "\n"
                         "# HELP rs_kv_hits_total Cache hits (every process).\n# TYPE rs_kv_hits_total counter\n"
                         "rs_kv_hits_total %" PRIu64 "\n"
                         "# HELP rs_kv_misses_total Cache misses (every process).\n# TYPE rs_kv_misses_total counter\n"
                         "rs_kv_misses_total %" PRIu64 "\n"
                         "# HELP rs_kv_evictions_total Entries evicted.\n# TYPE rs_kv_evictions_total counter\n"
                         "rs_kv_evictions_total %" PRIu64 "\n"
                         "# HELP rs_kv_used_bytes Bytes held by entries.\n# TYPE rs_kv_used_bytes gauge\n"
                         "rs_kv_used_bytes %" PRIu64 "\n",
                         st.items, st.hits, st.misses, st.evictions, st.used_bytes);
        if (n > 0 && (size_t)n < cap - len) len += (size_t)n;
    }
    rs_router_metrics_append(core->router, out, cap, &len);
    rs_http_response resp = {.status = 200, .content_type = "text/plain; version=0.0.4"};
    struct iovec iov = {.iov_base = out, .iov_len = len};
    resp.body = &iov;
    resp.body_iovcnt = 1;
    rs_http_respond(s, req->handle, &resp);
}

static void h_workers(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_core *core = rs_core_of(s);
    struct json_object *o = rs_router_workers_json(core->router);
    if (!o) {
        rs_http_respond_error(s, req->handle, 500, 0, "cannot render the worker list");
        return;
    }
    size_t len = 0;
    const char *txt = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    rs_http_respond_json(s, req->handle, 200, txt, len);
    json_object_put(o);
}

int rs_coord_http_routes(rs_coord *co, rs_err *err) {
    co->http_router = rs_http_router_create(32, err);
    if (!co->http_router) return -1;
    struct {
        rs_http_method method;
        const char *pattern;
        rs_http_handler_fn fn;
    } routes[] = {
        {RS_HTTP_GET, "/v2/health/live", h_live},
        {RS_HTTP_GET, "/v2/health/ready", h_ready},
        {RS_HTTP_GET, "/v2", h_server_meta},
        {RS_HTTP_GET, "/v2/workers", h_workers},
        {RS_HTTP_GET, "/metrics", h_metrics},
        {RS_HTTP_GET, "/v2/requests/{id}", h_async_poll},
        {RS_HTTP_GET, "/v2/models/{model}", h_model_meta},
        {RS_HTTP_GET, "/v2/models/{model}/ready", h_model_ready},
        {RS_HTTP_POST, "/v2/models/{model}/infer", h_infer},
        {RS_HTTP_GET, "/v2/models/{model}/versions/{version}", h_model_meta},
        {RS_HTTP_GET, "/v2/models/{model}/versions/{version}/ready", h_model_ready},
        {RS_HTTP_POST, "/v2/models/{model}/versions/{version}/infer", h_infer},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (rs_http_router_add(co->http_router, routes[i].method, routes[i].pattern, routes[i].fn, NULL, err) != 0)
            return -1;
    return 0;
}

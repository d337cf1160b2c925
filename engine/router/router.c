/* router.c — membership, routing, accounting (see router.h).
 *
 * Tables: workers[max_workers] (slots with generations) and groups
 * [max_models], one per (model, shard), each with its member slots and its
 * load balancer. Workers started without a model list (`--worker HOST:PORT`)
 * are in every group's shard 0 through any_members. */
#include "engine/router/router.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "io/loop.h"

#define NS_PER_MS 1000000ull
#define ERROR_RATE_ALPHA 0.1

typedef struct rs_group {
    bool used;
    uint32_t shard;
    uint64_t hash;
    uint32_t name_len;
    char name[RS_MAX_NAME_BYTES + 1];
    rs_lb lb;
    uint32_t n_members;
    uint32_t *members; /* slots; r->max_workers entries */
} rs_group;

struct rs_router {
    rs_router_config cfg;
    rs_router_hooks hooks;
    uint32_t max_workers;
    uint32_t max_groups;
    uint32_t n_groups; /* groups are taken in order and never freed */
    uint32_t n_workers;
    rs_worker *workers;
    rs_group *groups;
    uint32_t *member_store;
    uint32_t n_any;
    uint32_t *any_members;
    rs_lb fallback_lb; /* when the group table is full */
    /* pick scratch, sized max_workers */
    const rs_lb_stats **cands;
    uint32_t *cand_slots;
    uint32_t tick_cursor;
    rs_retry_budget budget;
    bool announce_static; /* cluster.workers not yet reported ADDED (the first tick does) */
};

static uint64_t default_now_ns(void *ctx) {
    (void)ctx;
    return rs_now_ns();
}

uint64_t rs_router_now_ns(const rs_router *r) {
    return r->hooks.clock.now_ns(r->hooks.clock.ctx);
}

uint64_t rs_router_key_hash(const void *bytes, size_t len) {
    return XXH3_64bits(bytes, len);
}

static uint64_t name_hash(const char *p, size_t len, uint32_t shard) {
    return XXH3_64bits_withSeed(p, len, shard);
}

static void emit(rs_router *r, uint32_t slot, rs_worker_event ev) {
    if (r->hooks.on_event)
        r->hooks.on_event(r->hooks.event_ctx, (rs_worker_ref){slot, r->workers[slot].gen}, ev);
}

/* ---- groups ---- */

static rs_group *find_group(rs_router *r, const char *name, uint32_t len, uint32_t shard) {
    uint64_t h = name_hash(name, len, shard);
    for (uint32_t g = 0; g < r->n_groups; g++) {
        rs_group *gr = &r->groups[g];
        if (gr->hash == h && gr->shard == shard && gr->name_len == len &&
            memcmp(gr->name, name, len) == 0)
            return gr;
    }
    return NULL;
}

static rs_group *get_group(rs_router *r, const char *name, uint32_t len, uint32_t shard) {
    rs_group *gr = find_group(r, name, len, shard);
    if (gr) return gr;
    if (r->n_groups < r->max_groups) {
        uint32_t g = r->n_groups++;
        gr = &r->groups[g];
        gr->used = true;
        gr->shard = shard;
        gr->hash = name_hash(name, len, shard);
        gr->name_len = len;
        memcpy(gr->name, name, len);
        gr->name[len] = '\0';
        gr->n_members = 0;
        rs_lb_init(&gr->lb, rs_lb_strategy_for(&r->cfg.lb, name, len), r->cfg.lb.seed + g,
                   r->cfg.lb.probe_stale_ms);
        return gr;
    }
    return NULL;
}

static void list_remove(uint32_t *list, uint32_t *n, uint32_t slot) {
    for (uint32_t i = 0; i < *n; i++)
        if (list[i] == slot) {
            list[i] = list[--*n];
            return;
        }
}

static void list_add(uint32_t *list, uint32_t *n, uint32_t slot) {
    for (uint32_t i = 0; i < *n; i++)
        if (list[i] == slot) return;
    list[(*n)++] = slot;
}

static void unlink_worker(rs_router *r, uint32_t slot) {
    rs_worker *w = &r->workers[slot];
    if (w->any_model) list_remove(r->any_members, &r->n_any, slot);
    for (uint32_t i = 0; i < w->n_models; i++) {
        rs_group *gr = &r->groups[w->models[i].group];
        list_remove(gr->members, &gr->n_members, slot);
    }
}

static void link_worker(rs_router *r, uint32_t slot) {
    rs_worker *w = &r->workers[slot];
    if (w->any_model) list_add(r->any_members, &r->n_any, slot);
    for (uint32_t i = 0; i < w->n_models; i++) {
        rs_group *gr = &r->groups[w->models[i].group];
        list_add(gr->members, &gr->n_members, slot);
    }
}

/* ---- workers ---- */

static int find_slot_by_id(const rs_router *r, const char *id, size_t len) {
    for (uint32_t s = 0; s < r->max_workers; s++) {
        const rs_worker *w = &r->workers[s];
        if (w->used && strlen(w->id) == len && memcmp(w->id, id, len) == 0) return (int)s;
    }
    return -1;
}

static int find_by_addr(const rs_router *r, const char *host, size_t len, uint16_t port) {
    for (uint32_t s = 0; s < r->max_workers; s++) {
        const rs_worker *w = &r->workers[s];
        if (w->used && w->port == port && strlen(w->host) == len && memcmp(w->host, host, len) == 0)
            return (int)s;
    }
    return -1;
}

static int free_slot(const rs_router *r) {
    for (uint32_t s = 0; s < r->max_workers; s++)
        if (!r->workers[s].used) return (int)s;
    return -1;
}

static void format_addr(char *out, size_t cap, const char *host, uint16_t port) {
    if (strchr(host, ':'))
        snprintf(out, cap, "[%s]:%u", host, port);
    else
        snprintf(out, cap, "%s:%u", host, port);
}

static uint32_t weight_of(const rs_router *r, const rs_worker *w, uint32_t static_weight) {
    char addr[RS_HOST_BYTES + 16];
    format_addr(addr, sizeof(addr), w->host, w->port);
    uint32_t cw = rs_lb_weight_for(&r->cfg.lb, w->id);
    if (!cw) cw = rs_lb_weight_for(&r->cfg.lb, addr);
    if (cw) return cw;
    if (static_weight) return static_weight;
    return w->capacity ? w->capacity : 1;
}

static void remove_worker(rs_router *r, uint32_t slot, const char *why) {
    rs_worker *w = &r->workers[slot];
    RS_ASSERT(w->used);
    RS_INFO("router: worker '%s' (%s:%u) removed: %s", w->id, w->host, w->port, why);
    emit(r, slot, RS_WORKER_REMOVED);
    unlink_worker(r, slot);
    uint32_t gen = w->gen + 1;
    memset(w, 0, sizeof(*w));
    w->gen = gen;
    r->n_workers--;
}

static void health_changed(rs_router *r, uint32_t slot, rs_health_state before) {
    rs_worker *w = &r->workers[slot];
    rs_health_state after = w->health.state;
    if (after == before) return;
    if (after == RS_HEALTH_UP) {
        RS_INFO("router: worker '%s' is up", w->id);
        emit(r, slot, RS_WORKER_UP);
    } else if (after == RS_HEALTH_DOWN) {
        RS_WARN("router: worker '%s' is down (%u consecutive failed pings)", w->id,
                w->health.ping_fail_run);
        emit(r, slot, RS_WORKER_DOWN);
    }
}

static int add_static(rs_router *r, const rs_static_worker *sw, uint64_t now, rs_err *err) {
    int s = free_slot(r);
    if (s < 0) {
        rs_err_set(err, "cluster.workers: more static workers than cluster.max_workers (%u)",
                   r->max_workers);
        return -1;
    }
    rs_worker *w = &r->workers[s];
    uint32_t gen = w->gen;
    memset(w, 0, sizeof(*w));
    w->gen = gen;
    w->used = true;
    w->is_static = true;
    snprintf(w->host, sizeof(w->host), "%s", sw->host);
    w->port = sw->port;
    format_addr(w->id, sizeof(w->id), sw->host, sw->port);
    w->id_hash = XXH3_64bits(w->id, strlen(w->id));
    w->capacity = sw->capacity;
    w->numa_node = sw->numa_node;
    w->gpu = -1;
    w->any_model = sw->n_models == 0;
    for (uint32_t i = 0; i < sw->n_models; i++) {
        uint32_t len = (uint32_t)strlen(sw->models[i]);
        rs_group *gr = get_group(r, sw->models[i], len, sw->shard);
        if (!gr) {
            w->used = false;
            rs_err_set(err,
                       "cluster.workers: more (model, shard) pairs than cluster.max_models (%u)",
                       r->max_groups);
            return -1;
        }
        rs_worker_model *m = &w->models[w->n_models++];
        memcpy(m->name, sw->models[i], len + 1);
        m->shard = sw->shard;
        m->group = (uint32_t)(gr - r->groups);
    }
    w->lb.weight = weight_of(r, w, sw->weight);
    w->added_ns = now;
    rs_health_init(&w->health, &r->cfg.health, RS_HEALTH_UNKNOWN, now);
    r->n_workers++;
    link_worker(r, (uint32_t)s);
    emit(r, (uint32_t)s, RS_WORKER_ADDED);
    return 0;
}

rs_router *rs_router_create(const rs_router_config *cfg, const rs_router_hooks *hooks,
                            rs_err *err) {
    rs_router *r = calloc(1, sizeof(*r));
    if (!r) {
        rs_err_set(err, "router: out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    if (hooks) r->hooks = *hooks;
    if (!r->hooks.clock.now_ns) r->hooks.clock.now_ns = default_now_ns;
    r->max_workers = cfg->cluster.max_workers;
    r->max_groups = cfg->cluster.max_models;
    RS_ASSERT(r->max_workers > 0 && r->max_groups > 0);
    r->workers = calloc(r->max_workers, sizeof(*r->workers));
    r->groups = calloc(r->max_groups, sizeof(*r->groups));
    r->member_store = calloc((size_t)r->max_groups * r->max_workers, sizeof(uint32_t));
    r->any_members = calloc(r->max_workers, sizeof(uint32_t));
    r->cands = calloc(r->max_workers, sizeof(*r->cands));
    r->cand_slots = calloc(r->max_workers, sizeof(*r->cand_slots));
    if (!r->workers || !r->groups || !r->member_store || !r->any_members || !r->cands ||
        !r->cand_slots) {
        rs_router_destroy(r);
        rs_err_set(err, "router: out of memory for %u workers x %u models",
                   cfg->cluster.max_workers, cfg->cluster.max_models);
        return NULL;
    }
    for (uint32_t g = 0; g < r->max_groups; g++)
        r->groups[g].members = r->member_store + (size_t)g * r->max_workers;
    rs_lb_init(&r->fallback_lb, r->cfg.lb.strategy, r->cfg.lb.seed, r->cfg.lb.probe_stale_ms);
    uint64_t now = rs_router_now_ns(r);
    rs_retry_budget_init(&r->budget, &r->cfg.retry, now);
    /* No event hook runs inside rs_router_create: its caller does not hold
     * the router yet (the coordinator's hook dialled the worker through a
     * router pointer still NULL). The first rs_router_tick announces them. */
    rs_worker_event_fn on_event = r->hooks.on_event;
    r->hooks.on_event = NULL;
    for (uint32_t i = 0; i < cfg->cluster.n_workers; i++) {
        if (add_static(r, &cfg->cluster.workers[i], now, err) != 0) {
            rs_router_destroy(r);
            return NULL;
        }
    }
    r->hooks.on_event = on_event;
    r->announce_static = cfg->cluster.n_workers > 0;
    return r;
}

void rs_router_destroy(rs_router *r) {
    if (!r) return;
    free(r->workers);
    free(r->groups);
    free(r->member_store);
    free(r->any_members);
    free(r->cands);
    free(r->cand_slots);
    free(r);
}

/* ---- registration ---- */

static bool token_matches(const char *want, rs_str got) {
    size_t n = strlen(want);
    /* constant time in the token's bytes */
    unsigned diff = (unsigned)(n != got.len);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(uint8_t)want[i] ^ (i < got.len ? (uint8_t)got.ptr[i] : 0u);
    return diff == 0;
}

static int refuse(rs_err *err, rs_str id, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(rs_err *err, rs_str id, int status, const char *fmt, ...) {
    char why[RS_ERR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    rs_err_set(err, "registration of worker '%.*s' refused: %s", (int)(id.len > 63 ? 63 : id.len),
               id.ptr ? id.ptr : "", why);
    RS_WARN("router: %s", err->msg);
    return -status;
}

int rs_router_register(rs_router *r, const rs_register_msg *m, rs_err *err) {
    rs_str id = m->worker_id;
    if (id.len == 0 || id.len >= RS_WORKER_ID_BYTES)
        return refuse(err, id, RS_E_INVALID_INPUT, "worker id must have 1 to %d bytes",
                      RS_WORKER_ID_BYTES - 1);
    if (m->host.len == 0 || m->host.len >= RS_HOST_BYTES || m->port == 0)
        return refuse(err, id, RS_E_INVALID_INPUT, "address '%.*s:%u' is not a host and port",
                      (int)(m->host.len < RS_HOST_BYTES ? m->host.len : 32),
                      m->host.ptr ? m->host.ptr : "", m->port);
    {
        /* the coordinator's io threads dial it and resolve no names */
        char host[RS_HOST_BYTES];
        memcpy(host, m->host.ptr, m->host.len);
        host[m->host.len] = '\0';
        if (!rs_host_is_numeric(host))
            return refuse(err, id, RS_E_INVALID_INPUT,
                          "address '%s' is not a numeric address (a worker advertises the "
                          "address its host name resolves to)",
                          host);
    }
    if (m->n_models == 0 || m->n_models > RS_MAX_WORKER_MODELS)
        return refuse(err, id, RS_E_INVALID_INPUT, "it serves %u models (1 to %d allowed)",
                      m->n_models, RS_MAX_WORKER_MODELS);
    if (r->cfg.cluster.token[0] && !token_matches(r->cfg.cluster.token, m->token))
        return refuse(err, id, RS_E_UNAUTHORIZED,
                      m->token.len ? "its token does not match cluster.token"
                                   : "cluster.token is set and it sent no token");
    for (uint32_t i = 0; i < m->n_models; i++) {
        const rs_model_ref *mr = &m->models[i];
        if (mr->name.len == 0 || mr->name.len > RS_MAX_NAME_BYTES ||
            mr->version.len >= RS_VERSION_BYTES)
            return refuse(err, id, RS_E_INVALID_INPUT,
                          "model %u: name must have 1 to %d bytes, version under %d", i,
                          RS_MAX_NAME_BYTES, RS_VERSION_BYTES);
        uint32_t shards = 1;
        if (r->hooks.model_lookup &&
            r->hooks.model_lookup(r->hooks.model_ctx, mr->name, mr->version, &shards) != 0)
            return refuse(err, id, RS_E_UNKNOWN_MODEL,
                          "model '%.*s' version '%.*s' is not in the model registry",
                          (int)mr->name.len, mr->name.ptr, (int)mr->version.len, mr->version.ptr);
        if (mr->shard >= shards)
            return refuse(err, id, RS_E_UNKNOWN_MODEL,
                          "model '%.*s' has %u shard(s): shard %u does not exist",
                          (int)mr->name.len, mr->name.ptr, shards, mr->shard);
    }

    uint64_t now = rs_router_now_ns(r);
    /* The same id, or the same address (a restarted worker with a new id),
     * is the same worker: a static entry is enriched, a registered one
     * replaced (its old tickets become void). */
    int slot = find_slot_by_id(r, id.ptr, id.len);
    if (slot < 0) slot = find_by_addr(r, m->host.ptr, m->host.len, m->port);
    bool replaced = slot >= 0 && !r->workers[slot].is_static;
    bool merge_static = slot >= 0 && r->workers[slot].is_static;
    if (slot < 0) slot = free_slot(r);
    if (slot < 0)
        return refuse(err, id, RS_E_OVERLOADED,
                      "the worker table is full (cluster.max_workers = %u)", r->max_workers);

    rs_worker_model models[RS_MAX_WORKER_MODELS];
    for (uint32_t i = 0; i < m->n_models; i++) {
        const rs_model_ref *mr = &m->models[i];
        rs_group *gr = get_group(r, mr->name.ptr, mr->name.len, mr->shard);
        if (!gr)
            return refuse(err, id, RS_E_OVERLOADED,
                          "the model table is full (cluster.max_models = %u)", r->max_groups);
        memcpy(models[i].name, mr->name.ptr, mr->name.len);
        models[i].name[mr->name.len] = '\0';
        memcpy(models[i].version, mr->version.ptr, mr->version.len);
        models[i].version[mr->version.len] = '\0';
        models[i].shard = mr->shard;
        models[i].group = (uint32_t)(gr - r->groups);
    }

    rs_worker *w = &r->workers[slot];
    if (replaced) {
        remove_worker(r, (uint32_t)slot, "re-registered");
    } else if (merge_static) {
        /* same address as a static entry: the registration describes it */
        unlink_worker(r, (uint32_t)slot);
    }
    if (!merge_static) {
        uint32_t gen = w->gen;
        memset(w, 0, sizeof(*w));
        w->gen = gen;
        w->used = true;
        memcpy(w->host, m->host.ptr, m->host.len);
        w->port = m->port;
        r->n_workers++;
    }
    memcpy(w->id, id.ptr, id.len);
    w->id[id.len] = '\0';
    w->id_hash = XXH3_64bits(w->id, id.len);
    w->capacity = m->capacity;
    w->numa_node = m->numa_node;
    w->gpu = m->gpu;
    w->any_model = false;
    w->n_models = m->n_models;
    memcpy(w->models, models, sizeof(models[0]) * m->n_models);
    w->lb.weight = weight_of(r, w, 0);
    w->last_heartbeat_ns = now;
    if (!merge_static) w->added_ns = now;
    rs_health_state before = merge_static ? w->health.state : RS_HEALTH_UNKNOWN;
    rs_health_init(&w->health, &r->cfg.health, RS_HEALTH_UP, now);
    link_worker(r, (uint32_t)slot);
    RS_INFO("router: worker '%s' registered at %s:%u with %u model(s), capacity %u", w->id, w->host,
            w->port, w->n_models, w->capacity);
    if (!merge_static)
        emit(r, (uint32_t)slot, RS_WORKER_ADDED);
    else
        health_changed(r, (uint32_t)slot, before);
    return slot;
}

int rs_router_heartbeat(rs_router *r, const rs_heartbeat_msg *m) {
    int slot = find_slot_by_id(r, m->worker_id.ptr, m->worker_id.len);
    if (slot < 0) return -RS_E_NOT_FOUND;
    rs_worker *w = &r->workers[slot];
    w->last_heartbeat_ns = rs_router_now_ns(r);
    w->reported_in_flight = m->in_flight;
    w->reported_queued = m->queued;
    return 0;
}

int rs_router_deregister(rs_router *r, rs_str worker_id) {
    int slot = find_slot_by_id(r, worker_id.ptr, worker_id.len);
    if (slot < 0) return -RS_E_NOT_FOUND;
    rs_worker *w = &r->workers[slot];
    if (w->is_static) {
        /* configured workers stay known; pings bring them back */
        rs_health_state before = w->health.state;
        w->health.state = RS_HEALTH_DOWN;
        w->health.ping_ok_run = 0;
        RS_INFO("router: static worker '%s' deregistered (kept, down)", w->id);
        health_changed(r, (uint32_t)slot, before);
        return 0;
    }
    remove_worker(r, (uint32_t)slot, "deregistered");
    return 0;
}

/* ---- health driving ---- */

size_t rs_router_tick(rs_router *r, rs_ping *out, size_t cap) {
    if (r->announce_static) {
        r->announce_static = false;
        for (uint32_t s = 0; s < r->max_workers; s++)
            if (r->workers[s].used && r->workers[s].is_static) emit(r, s, RS_WORKER_ADDED);
    }
    uint64_t now = rs_router_now_ns(r);
    uint64_t hb_ns = r->cfg.cluster.heartbeat_timeout_ms * NS_PER_MS;
    size_t n = 0;
    uint32_t start = r->tick_cursor;
    for (uint32_t k = 0; k < r->max_workers; k++) {
        uint32_t s = (start + k) % r->max_workers;
        rs_worker *w = &r->workers[s];
        if (!w->used) continue;
        if (!w->is_static && now - w->last_heartbeat_ns > hb_ns) {
            char why[96];
            snprintf(why, sizeof(why), "no heartbeat for %llu ms",
                     (unsigned long long)((now - w->last_heartbeat_ns) / NS_PER_MS));
            remove_worker(r, s, why);
            continue;
        }
        rs_health_state before = w->health.state;
        if (rs_health_check_timeout(&w->health, now))
            RS_DEBUG("router: ping to worker '%s' timed out", w->id);
        health_changed(r, s, before);
        if (n < cap && rs_health_ping_due(&w->health, now)) {
            out[n].worker = (rs_worker_ref){s, w->gen};
            out[n].seq = rs_health_ping_sent(&w->health, now);
            n++;
            r->tick_cursor = s + 1;
        }
    }
    return n;
}

uint64_t rs_router_next_event_ns(const rs_router *r) {
    uint64_t next = UINT64_MAX;
    uint64_t hb_ns = r->cfg.cluster.heartbeat_timeout_ms * NS_PER_MS;
    for (uint32_t s = 0; s < r->max_workers; s++) {
        const rs_worker *w = &r->workers[s];
        if (!w->used) continue;
        uint64_t t = rs_health_next_event_ns(&w->health);
        if (t < next) next = t;
        if (!w->is_static && w->last_heartbeat_ns + hb_ns + 1 < next)
            next = w->last_heartbeat_ns + hb_ns + 1;
    }
    return next;
}

static rs_worker *live(rs_router *r, rs_worker_ref ref) {
    if (ref.slot >= r->max_workers) return NULL;
    rs_worker *w = &r->workers[ref.slot];
    return w->used && w->gen == ref.gen ? w : NULL;
}

void rs_router_pong(rs_router *r, rs_worker_ref ref, uint64_t seq) {
    rs_worker *w = live(r, ref);
    if (!w) return;
    rs_health_state before = w->health.state;
    rs_health_pong(&w->health, seq, rs_router_now_ns(r));
    health_changed(r, ref.slot, before);
}

void rs_router_ping_failed(rs_router *r, rs_worker_ref ref) {
    rs_worker *w = live(r, ref);
    if (!w) return;
    rs_health_state before = w->health.state;
    rs_health_ping_failed(&w->health, rs_router_now_ns(r));
    health_changed(r, ref.slot, before);
}

/* ---- picking ---- */

static bool excluded(const rs_route_req *q, uint32_t slot, uint32_t gen) {
    for (uint32_t i = 0; i < q->n_exclude; i++)
        if (q->exclude[i].slot == slot && q->exclude[i].gen == gen) return true;
    return false;
}

static bool serves_version(const rs_worker *w, uint32_t group, rs_str version) {
    if (version.len == 0 || w->any_model) return true;
    for (uint32_t i = 0; i < w->n_models; i++) {
        const rs_worker_model *m = &w->models[i];
        if (m->group == group &&
            (m->version[0] == '\0' || (strlen(m->version) == version.len &&
                                       memcmp(m->version, version.ptr, version.len) == 0)))
            return true;
    }
    return false;
}

typedef struct gather_counts {
    uint32_t members; /* serve the model/shard/version */
    uint32_t routable;
} gather_counts;

/* Fills r->cands / r->cand_slots with the routable, not excluded, not full
 * workers for the request; returns how many. */
static uint32_t gather(rs_router *r, const rs_group *gr, const rs_route_req *q, uint64_t now,
                       gather_counts *c) {
    uint32_t n = 0;
    *c = (gather_counts){0};
    uint32_t n_group = gr ? gr->n_members : 0;
    uint32_t n_any = q->shard == 0 ? r->n_any : 0;
    for (uint32_t k = 0; k < n_group + n_any; k++) {
        uint32_t s = k < n_group ? gr->members[k] : r->any_members[k - n_group];
        rs_worker *w = &r->workers[s];
        if (k < n_group && !serves_version(w, (uint32_t)(gr - r->groups), q->version)) continue;
        c->members++;
        if (excluded(q, s, w->gen) || !rs_health_routable(&w->health, now)) continue;
        c->routable++;
        if (w->capacity && w->lb.in_flight >= w->capacity) continue;
        r->cands[n] = &w->lb;
        r->cand_slots[n] = s;
        n++;
    }
    return n;
}

/* 2: same host and NUMA node, 1: same host, 0: elsewhere. */
static int locality_tier(const rs_router *r, const rs_worker *w) {
    const rs_cluster_config *cc = &r->cfg.cluster;
    if (!cc->local_host[0] || strcmp(cc->local_host, w->host) != 0) return 0;
    if (r->cfg.lb.locality == RS_LOCALITY_NUMA && cc->local_numa_node >= 0 &&
        w->numa_node == cc->local_numa_node)
        return 2;
    return 1;
}

static uint32_t prefer_local(rs_router *r, uint32_t n) {
    int best = 0;
    for (uint32_t i = 0; i < n; i++) {
        int t = locality_tier(r, &r->workers[r->cand_slots[i]]);
        if (t > best) best = t;
    }
    if (best == 0) return n;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (locality_tier(r, &r->workers[r->cand_slots[i]]) != best) continue;
        r->cands[m] = r->cands[i];
        r->cand_slots[m] = r->cand_slots[i];
        m++;
    }
    return m;
}

/* Rendezvous (highest random weight) hashing over the candidates. */
static uint32_t pick_owner(const rs_router *r, uint32_t n, uint64_t key) {
    uint32_t best = 0;
    uint64_t best_score = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t score =
            XXH3_64bits_withSeed(&key, sizeof(key), r->workers[r->cand_slots[i]].id_hash);
        if (i == 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

int rs_router_pick(rs_router *r, const rs_route_req *q, rs_ticket *t, rs_err *err) {
    uint64_t now = rs_router_now_ns(r);
    if (q->n_exclude == 0) rs_retry_budget_note_request(&r->budget, now);
    rs_group *gr = find_group(r, q->model.ptr, q->model.len, q->shard);
    if (!gr && r->n_any && q->shard == 0 && q->model.len <= RS_MAX_NAME_BYTES)
        gr = get_group(r, q->model.ptr, q->model.len, 0); /* for its balancer */
    gather_counts c;
    uint32_t n = gather(r, gr, q, now, &c);
    if (n == 0) {
        if (c.routable > 0) {
            rs_err_set(err, "every worker for model '%.*s' is at capacity", (int)q->model.len,
                       q->model.ptr);
            return -RS_E_OVERLOADED;
        }
        if (c.members == 0)
            rs_err_set(err, "no worker serves model '%.*s'%s%.*s shard %u", (int)q->model.len,
                       q->model.ptr, q->version.len ? " version " : "", (int)q->version.len,
                       q->version.ptr, q->shard);
        else
            rs_err_set(err,
                       "no healthy worker for model '%.*s' shard %u (%u serve it: down, breaker "
                       "open or already tried)",
                       (int)q->model.len, q->model.ptr, q->shard, c.members);
        return -RS_E_UNAVAILABLE;
    }
    const rs_lb_config *lbc = &r->cfg.lb;
    bool by_key = (lbc->affinity == RS_AFFINITY_ROUTING_KEY && q->has_routing_key) ||
                  lbc->affinity == RS_AFFINITY_INPUTS;
    uint32_t i;
    if (by_key) {
        i = pick_owner(r, n, q->key_hash);
    } else {
        if (lbc->locality != RS_LOCALITY_NONE) n = prefer_local(r, n);
        i = rs_lb_pick(gr ? &gr->lb : &r->fallback_lb, r->cands, n, now);
    }
    uint32_t slot = r->cand_slots[i];
    rs_worker *w = &r->workers[slot];
    w->lb.in_flight++;
    *t = (rs_ticket){.worker = {slot, w->gen}, .start_ns = now};
    t->trial = rs_health_on_pick(&w->health, now);
    return 0;
}

void rs_router_release(rs_router *r, rs_ticket *t, rs_outcome outcome) {
    if (t->done) return;
    t->done = true;
    rs_worker *w = live(r, t->worker);
    if (!w) return; /* removed (or replaced) since the pick */
    RS_ASSERT(w->lb.in_flight > 0);
    w->lb.in_flight--;
    uint64_t now = rs_router_now_ns(r);
    if (outcome == RS_OUTCOME_CANCELLED) {
        rs_health_on_abandon(&w->health, t->trial);
        return;
    }
    double latency_us = now > t->start_ns ? (double)(now - t->start_ns) / 1000.0 : 0.0;
    bool failed = outcome != RS_OUTCOME_OK;
    w->requests++;
    if (failed) w->failures++;
    w->error_rate += ERROR_RATE_ALPHA * ((failed ? 1.0 : 0.0) - w->error_rate);
    /* a timeout's latency is a lower bound, still worth steering away from */
    if (outcome == RS_OUTCOME_OK || outcome == RS_OUTCOME_TIMEOUT ||
        outcome == RS_OUTCOME_WORKER_ERROR)
        rs_lb_observe(&w->lb, latency_us, r->cfg.lb.ewma_alpha, now);
    /* the breaker counts what says "this worker is not serving": a model
     * error on one input says nothing about the worker's health */
    bool breaker_ok = !rs_outcome_retryable(outcome);
    rs_breaker_state before = w->health.breaker;
    rs_health_on_result(&w->health, breaker_ok, t->trial, now);
    if (before != RS_BREAKER_OPEN && w->health.breaker == RS_BREAKER_OPEN)
        RS_WARN("router: worker '%s' circuit breaker open after %u failed requests (last: %s)",
                w->id, w->health.traffic_fail_run, rs_outcome_name(outcome));
    else if (before != RS_BREAKER_CLOSED && w->health.breaker == RS_BREAKER_CLOSED)
        RS_INFO("router: worker '%s' circuit breaker closed", w->id);
}

bool rs_router_retry_allowed(rs_router *r, rs_outcome outcome, uint32_t attempt) {
    if (!rs_outcome_retryable(outcome)) return false;
    if (attempt >= r->cfg.retry.max_attempts) return false;
    return rs_retry_budget_take(&r->budget, rs_router_now_ns(r));
}

/* ---- inspection ---- */

const rs_worker *rs_router_worker(const rs_router *r, rs_worker_ref ref) {
    return live((rs_router *)r, ref);
}

uint32_t rs_router_capacity(const rs_router *r) {
    return r->max_workers;
}

const rs_worker *rs_router_worker_at(const rs_router *r, uint32_t slot) {
    return slot < r->max_workers && r->workers[slot].used ? &r->workers[slot] : NULL;
}

uint32_t rs_router_worker_count(const rs_router *r) {
    return r->n_workers;
}

rs_worker_ref rs_router_ref(const rs_router *r, uint32_t slot) {
    RS_ASSERT(slot < r->max_workers);
    return (rs_worker_ref){slot, r->workers[slot].gen};
}

int rs_router_find(const rs_router *r, rs_str id, rs_worker_ref *out) {
    int s = find_slot_by_id(r, id.ptr, id.len);
    if (s < 0) return -1;
    *out = rs_router_ref(r, (uint32_t)s);
    return 0;
}

bool rs_router_model_ready(rs_router *r, rs_str model, rs_str version, uint32_t shard) {
    rs_route_req q = {.model = model, .version = version, .shard = shard};
    gather_counts c;
    rs_group *gr = find_group(r, model.ptr, model.len, shard);
    (void)gather(r, gr, &q, rs_router_now_ns(r), &c);
    return c.routable > 0;
}

const rs_retry_budget *rs_router_retry_budget(const rs_router *r) {
    return &r->budget;
}

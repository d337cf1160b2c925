/* fake.h — a fake clock, a fake model registry and fake workers for the
 * router tests. Header-only: each test is one executable. */
#ifndef RS_TEST_ROUTER_FAKE_H
#define RS_TEST_ROUTER_FAKE_H

#include <stdio.h>
#include <string.h>

#include "engine/router/router.h"

#define MS 1000000ull

typedef struct fake_clock {
    uint64_t now_ns;
} fake_clock;

static inline uint64_t fake_now(void *ctx) {
    return ((fake_clock *)ctx)->now_ns;
}

/* digits and identity: one shard; big: two shards. Anything else: unknown. */
static inline int fake_lookup(void *ctx, rs_str model, rs_str version, uint32_t *shards) {
    (void)ctx;
    (void)version;
    if (rs_str_eq(model, "digits") || rs_str_eq(model, "identity")) {
        *shards = 1;
        return 0;
    }
    if (rs_str_eq(model, "big")) {
        *shards = 2;
        return 0;
    }
    return -1;
}

typedef struct event_log {
    int added, removed, up, down;
    rs_worker_ref last;
    rs_worker_event last_ev;
} event_log;

static inline void fake_on_event(void *ctx, rs_worker_ref ref, rs_worker_event ev) {
    event_log *l = ctx;
    l->last = ref;
    l->last_ev = ev;
    switch (ev) {
    case RS_WORKER_ADDED: l->added++; break;
    case RS_WORKER_REMOVED: l->removed++; break;
    case RS_WORKER_UP: l->up++; break;
    case RS_WORKER_DOWN: l->down++; break;
    }
}

/* A fake worker's REGISTER message: id "w<i>", host 10.0.0.<i>, port 9000+i,
 * serving the models in a comma-free list (all shard `shard`). */
typedef struct fake_worker {
    char id[32];
    char host[32];
    rs_register_msg msg;
} fake_worker;

static inline void fake_worker_init(fake_worker *f, int i, const char *const *models, uint32_t n,
                                    uint32_t shard) {
    memset(f, 0, sizeof(*f));
    snprintf(f->id, sizeof(f->id), "w%d", i);
    snprintf(f->host, sizeof(f->host), "10.0.%d.%d", i / 250, i % 250 + 1);
    f->msg.worker_id = rs_str_c(f->id);
    f->msg.host = rs_str_c(f->host);
    f->msg.port = (uint16_t)(9000 + i);
    f->msg.capacity = 0;
    f->msg.numa_node = -1;
    f->msg.gpu = -1;
    f->msg.n_models = n;
    for (uint32_t k = 0; k < n; k++) {
        f->msg.models[k].name = rs_str_c(models[k]);
        f->msg.models[k].version = rs_str_c("");
        f->msg.models[k].shard = shard;
    }
}

typedef struct fixture {
    fake_clock clock;
    event_log events;
    rs_router_config cfg;
    rs_router *r;
} fixture;

static inline rs_router *fixture_start(fixture *fx) {
    rs_router_hooks hooks = {
        .clock = {fake_now, &fx->clock},
        .model_lookup = fake_lookup,
        .on_event = fake_on_event,
        .event_ctx = &fx->events,
    };
    rs_err err = {0};
    fx->r = rs_router_create(&fx->cfg, &hooks, &err);
    if (!fx->r) fprintf(stderr, "router: %s\n", err.msg);
    return fx->r;
}

static inline void fixture_init(fixture *fx) {
    memset(fx, 0, sizeof(*fx));
    fx->clock.now_ns = 1000 * MS;
    rs_router_config_default(&fx->cfg);
}

/* Registers n workers w0..w{n-1} serving `model`; returns 0 when all did. */
static inline int register_n(fixture *fx, int first, int n, const char *model, uint32_t shard) {
    const char *models[1] = {model};
    for (int i = first; i < first + n; i++) {
        fake_worker f;
        fake_worker_init(&f, i, models, 1, shard);
        rs_err err = {0};
        if (rs_router_register(fx->r, &f.msg, &err) < 0) {
            fprintf(stderr, "register w%d: %s\n", i, err.msg);
            return -1;
        }
    }
    return 0;
}

static inline rs_route_req req_for(const char *model) {
    rs_route_req q = {.model = rs_str_c(model), .version = rs_str_c("")};
    return q;
}

/* Index of the worker "w<i>" a ticket points at. */
static inline int ticket_worker(rs_router *r, const rs_ticket *t) {
    const rs_worker *w = rs_router_worker(r, t->worker);
    if (!w) return -1;
    int i = -1;
    sscanf(w->id, "w%d", &i);
    return i;
}

#endif

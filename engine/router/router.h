/* router.h — who serves a request: worker membership, model -> workers,
 * consistent hashing, load balancing, health and in-flight accounting.
 *
 * One rs_router per coordinator core: single-threaded, no locks, every table
 * allocated by rs_router_create and never again (the hot path allocates
 * nothing). Time comes from an injectable clock (a fake one in tests).
 *
 * Membership. Workers come from the static list (cluster.workers /
 * --worker HOST:PORT) or register with a REGISTER frame (io/frame.h). A
 * registered worker is kept alive by HEARTBEATs and removed when none came
 * for cluster.heartbeat_timeout_ms, or on DEREGISTER. Registration is refused
 * (logged, and the reason returned for the ERROR frame) when cluster.token is
 * set and differs, when a model or shard is unknown to the registry (asked
 * through a callback), or when the table is full.
 *
 * Routing. Requests name a model, optional version and shard. A request with
 * a key (its routing_key, or its input hash when load_balancer.affinity is
 * "inputs") goes to the key's owner by rendezvous hashing (highest
 * XXH3(key, worker id) among the model's routable workers): adding or
 * removing one of N workers moves ~1/N of the keys, and the failover order
 * for a key is simply the next-highest score. Other requests go through the
 * model's load-balancing strategy (lb.h). A shard s of a sharded model is
 * only ever sent to workers that registered shard s.
 *
 * Accounting. rs_router_pick returns a ticket and counts the request in
 * flight; rs_router_release with the outcome ends it (exactly once per
 * ticket, success or failure), feeding the latency EWMA, the error rate and
 * the passive health / circuit breaker. A ticket for a worker that has since
 * been removed is ignored (slot generations). */
#ifndef RS_ROUTER_H
#define RS_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "engine/health/health.h"
#include "engine/load_balancer/lb.h"
#include "engine/router/retry.h"
#include "io/frame.h"

#define RS_HOST_BYTES 128 /* NUL included */
#define RS_VERSION_BYTES 32
#define RS_CLUSTER_TOKEN_BYTES 128
#define RS_CLUSTER_MAX_STATIC 64

/* One static worker: `- HOST:PORT` serves every model (shard 0), or
 * `- {address: HOST:PORT, models: [a, b], shard: 0, weight: 2, capacity: 8,
 *     numa_node: 0}`. */
typedef struct rs_static_worker {
    char host[RS_HOST_BYTES];
    uint16_t port;
    uint32_t shard;
    uint32_t weight;   /* 0: from load_balancer.weights, else 1 */
    uint32_t capacity; /* 0: unlimited */
    int32_t numa_node;
    uint32_t n_models; /* 0: every model */
    char models[RS_MAX_WORKER_MODELS][RS_MAX_NAME_BYTES + 1];
} rs_static_worker;

typedef struct rs_cluster_config {
    char token[RS_CLUSTER_TOKEN_BYTES]; /* "" = no token required */
    uint32_t max_workers;               /* table size (default 64) */
    uint32_t max_models;                /* distinct (model, shard) pairs (default 64) */
    uint64_t heartbeat_timeout_ms;      /* registered workers (default 15000) */
    char local_host[RS_HOST_BYTES];     /* this coordinator's host, for locality */
    int32_t local_numa_node;            /* -1 unknown */
    uint32_t n_workers;
    rs_static_worker workers[RS_CLUSTER_MAX_STATIC];
} rs_cluster_config;

void rs_cluster_config_default(rs_cluster_config *cfg);
/* Parses `cluster:` (token, workers, max_workers, max_models,
 * heartbeat_timeout_ms, local_host, local_numa_node). */
int rs_cluster_config_parse(const rs_cfg_node *section, rs_cluster_config *out, rs_err *err);
/* Adds one `--worker HOST:PORT` (IPv6 as [addr]:port). */
int rs_cluster_add_worker_arg(rs_cluster_config *cfg, const char *addr, rs_err *err);
/* Splits HOST:PORT; 0, or -1 with err naming what is wrong. */
int rs_parse_host_port(const char *addr, char *host, size_t host_bytes, uint16_t *port,
                       rs_err *err);

/* The router's whole configuration: the four sections it owns. */
typedef struct rs_router_config {
    rs_cluster_config cluster;
    rs_lb_config lb;
    rs_health_config health;
    rs_retry_config retry;
} rs_router_config;

void rs_router_config_default(rs_router_config *cfg);
/* Parses the cluster, load_balancer, health and retry sections of root. */
int rs_router_config_parse(const rs_cfg_node *root, rs_router_config *out, rs_err *err);

/* ---- runtime ---- */

typedef struct rs_router rs_router;

typedef struct rs_clock {
    uint64_t (*now_ns)(void *ctx); /* monotonic */
    void *ctx;
} rs_clock;

/* Asks the model registry whether a model (version "" = any) exists; on 0,
 * *shards is its shard count (1 when unsharded). -1: unknown. */
typedef int (*rs_model_lookup_fn)(void *ctx, rs_str model, rs_str version, uint32_t *shards);

typedef enum rs_worker_event {
    RS_WORKER_ADDED = 1, /* open connections to it */
    RS_WORKER_REMOVED,   /* close them; its tickets are void */
    RS_WORKER_UP,
    RS_WORKER_DOWN,
} rs_worker_event;

/* A worker by slot and generation: stale once the slot is reused. */
typedef struct rs_worker_ref {
    uint32_t slot;
    uint32_t gen;
} rs_worker_ref;

typedef void (*rs_worker_event_fn)(void *ctx, rs_worker_ref ref, rs_worker_event ev);

typedef struct rs_router_hooks {
    rs_clock clock;                  /* NULL now_ns: rs_now_ns */
    rs_model_lookup_fn model_lookup; /* NULL: every model is known, 1 shard */
    void *model_ctx;
    /* may be NULL; never called inside rs_router_create: the workers of
     * cluster.workers are reported ADDED by the first rs_router_tick */
    rs_worker_event_fn on_event;
    void *event_ctx;
} rs_router_hooks;

typedef struct rs_worker_model {
    char name[RS_MAX_NAME_BYTES + 1];
    char version[RS_VERSION_BYTES]; /* "" = any */
    uint32_t shard;
    uint32_t group; /* index in the router's (model, shard) table */
} rs_worker_model;

/* A worker as the router sees it (read-only for callers). */
typedef struct rs_worker {
    bool used;
    bool is_static;
    bool any_model; /* static worker without a model list */
    uint32_t gen;
    char id[RS_WORKER_ID_BYTES];
    char host[RS_HOST_BYTES];
    uint16_t port;
    uint32_t capacity; /* 0 = unlimited */
    int32_t numa_node;
    int32_t gpu;
    uint64_t id_hash; /* rendezvous seed */
    uint32_t n_models;
    rs_worker_model models[RS_MAX_WORKER_MODELS];
    uint64_t added_ns;
    uint64_t last_heartbeat_ns;
    uint32_t reported_in_flight; /* from its last heartbeat */
    uint32_t reported_queued;
    rs_health health;
    rs_lb_stats lb;
    double error_rate; /* EWMA of failed requests, 0..1 */
    uint64_t requests;
    uint64_t failures; /* connection failures, timeouts, worker errors */
} rs_worker;

typedef struct rs_route_req {
    rs_str model;
    rs_str version; /* empty: any version */
    uint32_t shard;
    bool has_routing_key; /* the request carried one */
    /* rs_router_key_hash(routing_key); without a key, the input hash: the
     * response-cache key's low half (rs_kv_key_for_request_n(...).lo) */
    uint64_t key_hash;
    const rs_worker_ref *exclude; /* workers already tried (retries) */
    uint32_t n_exclude;
} rs_route_req;

typedef struct rs_ticket {
    rs_worker_ref worker;
    uint64_t start_ns;
    bool trial; /* the breaker's half-open trial */
    bool done;
} rs_ticket;

rs_router *rs_router_create(const rs_router_config *cfg, const rs_router_hooks *hooks, rs_err *err);
void rs_router_destroy(rs_router *r);

/* XXH3 of a routing key or of the request's input bytes. */
uint64_t rs_router_key_hash(const void *bytes, size_t len);

/* Membership. Registration: >= 0 slot, or -(rs_status) with err:
 * RS_E_UNAUTHORIZED (token), RS_E_UNKNOWN_MODEL (model/shard), RS_E_OVERLOADED
 * (table full), RS_E_INVALID_INPUT (malformed). A known id re-registers
 * (replaced; its old tickets become void). */
int rs_router_register(rs_router *r, const rs_register_msg *m, rs_err *err);
/* 0, or -RS_E_NOT_FOUND for an unknown id (the worker should re-register). */
int rs_router_heartbeat(rs_router *r, const rs_heartbeat_msg *m);
int rs_router_deregister(rs_router *r, rs_str worker_id);

/* Health driving: call when a timer fires (rs_router_next_event_ns says
 * when). It expires silent workers and times out pings, then fills up to cap
 * pings to send now; returns how many. PONGs and send failures come back
 * through rs_router_pong / rs_router_ping_failed. */
typedef struct rs_ping {
    rs_worker_ref worker;
    uint64_t seq; /* the PING frame's u64; the PONG echoes it */
} rs_ping;
size_t rs_router_tick(rs_router *r, rs_ping *out, size_t cap);
uint64_t rs_router_next_event_ns(const rs_router *r);
void rs_router_pong(rs_router *r, rs_worker_ref w, uint64_t seq);
void rs_router_ping_failed(rs_router *r, rs_worker_ref w);

/* Picks a worker and counts the request in flight. 0 with *t, or
 * -RS_E_UNAVAILABLE (no routable worker for that model/shard, err says why),
 * -RS_E_OVERLOADED (every routable worker is at its capacity). */
int rs_router_pick(rs_router *r, const rs_route_req *q, rs_ticket *t, rs_err *err);
/* Ends a ticket; latency is measured from the pick. Idempotent per ticket. */
void rs_router_release(rs_router *r, rs_ticket *t, rs_outcome outcome);

/* Retries: whether a request that just ended with outcome after `attempt`
 * attempts (1 = the first) may be tried again on another worker: retryable
 * outcome, attempt < retry.max_attempts, and the budget allows (the call
 * takes the budget). rs_router_note_request counts first attempts for the
 * budget (rs_router_pick does it when q->n_exclude == 0). */
bool rs_router_retry_allowed(rs_router *r, rs_outcome outcome, uint32_t attempt);

/* Inspection. */
const rs_worker *rs_router_worker(const rs_router *r, rs_worker_ref w);
/* Slot-ordered iteration: i from 0 to rs_router_capacity(); NULL for free slots. */
uint32_t rs_router_capacity(const rs_router *r);
const rs_worker *rs_router_worker_at(const rs_router *r, uint32_t slot);
uint32_t rs_router_worker_count(const rs_router *r);
rs_worker_ref rs_router_ref(const rs_router *r, uint32_t slot);
/* Finds a worker by id; 0 with *out, -1 if none. */
int rs_router_find(const rs_router *r, rs_str id, rs_worker_ref *out);
/* A model (and shard) has at least one routable worker (readiness). */
bool rs_router_model_ready(rs_router *r, rs_str model, rs_str version, uint32_t shard);
const rs_retry_budget *rs_router_retry_budget(const rs_router *r);
uint64_t rs_router_now_ns(const rs_router *r);

/* `GET /v2/workers` body: {"workers": [{id, address, models, state, health,
 * breaker, static, in_flight, ewma_latency_us, error_rate, requests,
 * failures, last_heartbeat_ms_ago, weight, capacity, numa_node, gpu}]}
 * (json-c; the caller json_object_put's it). */
struct json_object;
struct json_object *rs_router_workers_json(const rs_router *r);
/* Appends the same figures in Prometheus text format to buf[*len..cap);
 * returns 0, or -1 when it does not fit (*len unchanged). */
int rs_router_metrics_append(const rs_router *r, char *buf, size_t cap, size_t *len);

#endif

/* coord.h — the coordinator's internal structures (engine/coordinator/).
 *
 * One rs_coord per process (read-only after start, except atomics), one
 * rs_core per io thread. A core owns everything it touches on the hot path:
 * its loop, its HTTP server, its per-model batchers, its request pool, its
 * router (membership, load balancing, health) and its connections to the
 * workers. Cores share only the registry (read-only), the shared-memory
 * cache (process-shared locks), the metrics (one shard per core), the async
 * result table (a mutex; not the hot path) and membership events (posted).
 *
 * Request life: parse (HTTP or framed) -> validate against the model ->
 * cache lookup -> batcher -> [flush] -> router pick -> BATCH_REQUEST to the
 * worker -> BATCH_RESPONSE -> reply to the leader and every coalesced
 * follower -> cache store. Every request ends exactly once with its result
 * or one explicit error. */
#ifndef RS_COORD_H
#define RS_COORD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "engine/coordinator/batcher.h"
#include "engine/coordinator/coordinator.h"
#include "engine/http/http.h"
#include "engine/http/router.h"
#include "engine/kserve/kserve.h"
#include "engine/kvstore/kvstore.h"
#include "engine/metrics/metrics.h"
#include "engine/model_registry/registry.h"
#include "engine/router/router.h"
#include "io/frame.h"
#include "io/loop.h"
#include "topo/cpuset.h"
#include "topo/topo_metrics.h"

typedef struct rs_coord rs_coord;
typedef struct rs_core rs_core;

typedef enum rs_origin {
    RS_ORIGIN_NONE = 0,
    RS_ORIGIN_HTTP = 1,
    RS_ORIGIN_FRAMED = 2,
    RS_ORIGIN_ASYNC_HTTP = 3,   /* answer into the async table, HTTP rendering */
    RS_ORIGIN_ASYNC_FRAMED = 4, /* answer into the async table, framed rendering */
} rs_origin;

/* Outcome labels of rs_requests_total. */
typedef enum rs_req_outcome {
    RS_RO_OK = 0,
    RS_RO_CACHE_HIT,
    RS_RO_INVALID,
    RS_RO_NOT_FOUND,
    RS_RO_OVERLOADED,
    RS_RO_UNAVAILABLE,
    RS_RO_DEADLINE,
    RS_RO_ERROR,
    RS_RO_COUNT_
} rs_req_outcome;

/* Stage labels of rs_stage_duration_seconds. */
typedef enum rs_stage {
    RS_ST_PARSE = 0,
    RS_ST_CACHE,
    RS_ST_QUEUE,
    RS_ST_WORKER,
    RS_ST_POST,
    RS_ST_TOTAL,
    RS_ST_COUNT_
} rs_stage;

#define RS_TRACEPARENT_BYTES 64
#define RS_REQ_ID_BYTES 128
#define RS_VERSION_TEXT_BYTES 16 /* a model version as text: up to 10 digits + NUL */

/* One request, from a pool preallocated per core. */
typedef struct rs_req {
    uint32_t index;
    uint32_t gen;
    bool in_use;
    uint32_t next_free;
    rs_origin origin;
    /* HTTP origin */
    rs_http_handle http;
    /* framed origin */
    rs_conn_id conn;
    uint64_t wire_id;
    /* async origin */
    uint64_t async_id;
    uint32_t model_index;
    const rs_model *model;
    char version[RS_VERSION_TEXT_BYTES];
    char id[RS_REQ_ID_BYTES];
    char traceparent[RS_TRACEPARENT_BYTES];
    char routing_key[RS_REQ_ID_BYTES];
    bool no_cache;
    bool cacheable;
    rs_kv_key key;
    bool has_http_key; /* the rendered HTTP answer may be cached under http_key */
    rs_kv_key http_key;
    uint64_t t_recv_ns, t_parsed_ns, t_cached_ns, t_queued_ns, t_dispatch_ns, t_worker_ns;
    uint32_t n_outputs_framed;
    /* A request of a single_queue model whose home is another core is lent
     * to the home core from the hand-off until the home core posts it back;
     * meanwhile only the home core touches it. Its result travels back in
     * its own arena (the inputs are dead once it ends): an INFER_RESPONSE
     * frame, or the error text. */
    rs_core *core; /* the core that owns it (its pool, its client) */
    rs_status remote_status;
    uint32_t remote_len;
    /* Not cleared on reuse (large): */
    uint8_t *arena;
    size_t arena_cap;
    char outputs_framed[RS_MAX_TENSORS][RS_MAX_NAME_BYTES + 1];
    rs_kserve_request kreq; /* inputs (views into arena) + output selection */
} rs_req;

/* A batch in flight to a worker. */
typedef struct rs_flight {
    bool used;
    uint32_t gen;
    uint32_t model_index;
    uint32_t n_items;
    uint32_t attempt;
    rs_ticket ticket;
    rs_worker_ref tried[8];
    uint32_t n_tried;
    uint64_t first_sent_ns; /* when the batch first went out */
    uint32_t busy_resends;  /* times a worker answered "at capacity" */
    rs_status last_status; /* why the last attempt failed (retries) */
    char last_why[160];
    rs_timer timeout;
    rs_core *core;
    rs_batcher_item *items; /* capacity: the largest max_batch_size */
} rs_flight;

/* The core's connection to one worker slot of its router. */
typedef struct rs_wconn {
    rs_worker_ref ref;
    rs_conn_id conn;
    bool connected;
    bool connecting;
    rs_core *core;
} rs_wconn;

typedef struct rs_core_model {
    const rs_model *model;
    rs_batcher *batcher;
    rs_timer timer;
    rs_core *core;
    bool dirty;
    uint32_t flights; /* batches of this model out to workers (this core) */
    /* The core whose batcher takes this model's requests: the model's home
     * core for batching.single_queue (the others hand requests over), else
     * this core. */
    uint32_t home;
    /* Batches out at once from this queue: the model's
     * batching.max_batches_out, else server.max_batches_per_model. */
    uint32_t max_flights;
    char version[RS_VERSION_TEXT_BYTES]; /* the model's version as text (answers, cache keys) */
} rs_core_model;

struct rs_core {
    rs_coord *co;
    uint32_t index;
    bool pinned;    /* its thread is bound to cpus by the plan */
    rs_cpuset cpus; /* where its thread is pinned (when pinned) */
    pthread_t thread;
    rs_loop *loop;
    rs_http_server *http;
    int http_listener;
    int framed_listener;
    rs_metrics_shard *ms;
    rs_router *router;
    rs_core_model *models;   /* co->n_models */
    rs_req *reqs;            /* co->cfg.max_pending */
    uint32_t free_head;
    uint32_t pending;
    uint8_t *arenas;         /* max_pending * request_arena_bytes, MAP_NORESERVE */
    rs_flight *flights;      /* cfg.max_inflight_batches */
    rs_batcher_item *flight_items;
    uint32_t flight_cursor;
    rs_wconn *wconns;        /* router capacity */
    uint32_t n_wconns;
    rs_timer health_timer;
    rs_timer tick_timer;     /* cache tick, drain checks */
    uint8_t *scratch;        /* responses, batch frames, cache values */
    size_t scratch_bytes;
    uint8_t *scratch2;
    size_t scratch2_bytes;
    rs_batcher_item *poll_items;
    atomic_bool started;
    atomic_bool models_ready; /* every model has a routable worker on this core */
    atomic_uint incoming;     /* accepted sockets handed to this core, not adopted yet */
    int start_error;
    rs_err err;
    uint64_t batch_seq;
};

struct rs_coord {
    rs_coord_config cfg;
    rs_router_config rcfg;
    rs_kv_config kvcfg;
    rs_loop_config loopcfg;
    bool cache_enabled;
    rs_registry *registry;
    rs_kv *kv;
    rs_metrics *metrics;
    rs_http_router *http_router;
    uint32_t n_models;
    uint32_t max_batch;
    uint32_t n_cores;
    rs_core *cores;
    atomic_bool draining;
    atomic_bool stop;
    atomic_uint loops_stopped; /* cores whose loop has returned */
    uint16_t http_port;   /* effective */
    uint16_t framed_port; /* effective */
    /* metrics */
    rs_metric_id *m_requests;   /* [model][outcome] */
    rs_metric_id *m_stage;      /* [model][stage] histogram */
    rs_metric_id *m_batch_size; /* [model] histogram */
    rs_metric_id *m_queue;      /* [model] gauge */
    rs_metric_id *m_cache_hit;  /* [model] */
    rs_metric_id *m_cache_miss; /* [model] */
    rs_metric_id m_retries;
    rs_metric_id m_pending;
    rs_metric_id *m_conns;      /* [core] gauge: accepted connections open */
    rs_topo_metrics topo_metrics; /* placement: planned vs effective binding */
    /* async results */
    pthread_mutex_t async_lock;
    struct rs_async_slot *async;
    uint64_t async_seq;
};

/* Copies a wire string into a NUL-terminated buffer, cut to cap - 1 bytes. */
static inline void rs_str_copy(char *dst, size_t cap, rs_str s) {
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

/* coordinator.c */
/* Address space reserved at start-up; pages cost memory only once touched. */
void *rs_coord_reserve(size_t bytes);

/* coord_request.c */
/* The model for a name and a version text ("" = latest), and its index in
 * the registry (index may be NULL). NULL with a sentence in why. */
const rs_model *rs_coord_find_model(const rs_coord *co, rs_str name, rs_str version, uint32_t *index,
                                    char *why, size_t why_bytes);
int rs_core_init(rs_core *core, rs_coord *co, uint32_t index, rs_err *err);
void rs_core_fini(rs_core *core);
rs_req *rs_req_alloc(rs_core *core);
void rs_req_free(rs_core *core, rs_req *r);
/* A token names a request of any core (gen, core index, slot index). */
rs_req *rs_req_from_token(rs_core *core, uint64_t token);
uint64_t rs_req_token(const rs_req *r);

/* Validates inputs against the model, computes the cache key, serves a
 * cache hit or submits to the batcher. Ends the request on every error. */
void rs_req_submit(rs_core *core, rs_req *r);
/* Ends a request with an error (status -> HTTP code / ERROR frame). */
void rs_req_fail(rs_core *core, rs_req *r, rs_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Ends a request with outputs (cache_hit sets the framed flag / metric). */
void rs_req_succeed(rs_core *core, rs_req *r, const rs_tensor_list *outputs, bool cache_hit);
void rs_core_tick(rs_loop *loop, void *arg);
void rs_core_model_timer(rs_loop *loop, rs_timer *t, void *arg);
rs_req_outcome rs_outcome_for_status(rs_status st);
void rs_core_record(rs_core *core, rs_req *r, rs_req_outcome oc);

/* coord_dispatch.c */
void rs_dispatch_batch(rs_core *core, uint32_t model_index, const rs_batcher_item *items,
                       uint32_t n);
void rs_dispatch_on_worker_event(void *ctx, rs_worker_ref ref, rs_worker_event ev);
void rs_dispatch_health(rs_loop *loop, rs_timer *t, void *arg);
void rs_dispatch_fail_all(rs_core *core);
/* Recomputes core->models_ready from this core's router (its own thread). */
void rs_core_update_ready(rs_core *core);
void rs_flight_timeout(rs_loop *loop, rs_timer *t, void *arg);

/* coord_framed.c */
extern const rs_conn_ops rs_coord_framed_ops;
/* Applies a registration/heartbeat/deregistration on every core. */
void rs_coord_broadcast_register(rs_coord *co, const rs_register_msg *m, uint32_t skip_core);
void rs_coord_broadcast_heartbeat(rs_coord *co, const rs_heartbeat_msg *m, uint32_t skip_core);
void rs_coord_broadcast_deregister(rs_coord *co, rs_str worker_id);

/* coord_http.c */
int rs_coord_http_routes(rs_coord *co, rs_err *err);
void rs_coord_http_answer(rs_core *core, rs_req *r, const rs_tensor_list *outputs, bool cache_hit);

/* coord_async.c */
int rs_async_init(rs_coord *co, rs_err *err);
void rs_async_fini(rs_coord *co);
/* Reserves a slot; 0 when the table is full. */
uint64_t rs_async_reserve(rs_coord *co, rs_origin origin);
/* Stores a finished result (bytes copied; status RS_OK or an error). */
void rs_async_complete(rs_coord *co, uint64_t id, rs_status st, const void *bytes, size_t len,
                       size_t json_len);
/* Looks a result up: RS_OK (copied into out), RS_E_PENDING, RS_E_NOT_FOUND.
 * The slot is kept until its TTL passes. */
rs_status rs_async_lookup(rs_coord *co, uint64_t id, rs_origin origin, rs_status *result_st,
                          void *out, size_t out_cap, size_t *len, size_t *json_len);

#endif

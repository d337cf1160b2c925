/* lb.h — load-balancing strategies: which of a model's healthy workers gets
 * the next batch.
 *
 * The router keeps one rs_lb_stats per worker (in-flight, EWMA latency,
 * weight) and one rs_lb per model (the strategy and its cursor / RNG); it
 * hands rs_lb_pick the eligible candidates (healthy, breaker closed, local
 * first when locality is on) and gets back an index. Pure, allocation-free,
 * O(candidates) per pick.
 *
 *   round_robin        cursor over the candidates: exactly even
 *   least_connections  fewest in flight; ties rotate
 *   random             seeded xorshift; reproducible in tests
 *   least_latency      lowest EWMA latency x (in_flight + 1); a worker with no
 *                      sample yet (or none for probe_stale_ms) is probed with
 *                      one request at a time: never starved, never flooded
 *   weighted           random with probability weight / sum(weights); weights
 *                      from config or the capacity a worker registered
 *   p2c                two distinct random candidates, the one with fewer in
 *                      flight (power of two choices) */
#ifndef RS_LB_H
#define RS_LB_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "io/tensor.h"

#define RS_WORKER_ID_BYTES 64 /* NUL included */
#define RS_LB_MAX_MODEL_OVERRIDES 32
#define RS_LB_MAX_WEIGHTS 64

typedef enum rs_lb_strategy {
    RS_LB_ROUND_ROBIN = 0,
    RS_LB_LEAST_CONNECTIONS,
    RS_LB_RANDOM,
    RS_LB_LEAST_LATENCY,
    RS_LB_WEIGHTED,
    RS_LB_P2C,
    RS_LB_STRATEGY_COUNT_
} rs_lb_strategy;

/* Prefer workers on this host (or this host and NUMA node) when any is
 * eligible; fall back to the others otherwise. */
typedef enum rs_lb_locality {
    RS_LOCALITY_NONE = 0,
    RS_LOCALITY_HOST,
    RS_LOCALITY_NUMA,
} rs_lb_locality;

/* When a request goes to its key's owner (consistent hashing) instead of
 * the balancer: routing_key = only requests that carry one (default);
 * inputs = every request (the input hash stands in for a missing key);
 * none = never. */
typedef enum rs_lb_affinity {
    RS_AFFINITY_ROUTING_KEY = 0,
    RS_AFFINITY_INPUTS,
    RS_AFFINITY_NONE,
} rs_lb_affinity;

typedef struct rs_lb_stats {
    uint32_t in_flight;
    uint32_t weight; /* >= 1 */
    uint32_t latency_samples;
    double ewma_latency_us;
    uint64_t last_sample_ns;
} rs_lb_stats;

typedef struct rs_lb_config {
    rs_lb_strategy strategy; /* default for every model */
    uint64_t seed;           /* random, weighted, p2c */
    rs_lb_locality locality;
    rs_lb_affinity affinity;
    double ewma_alpha;       /* weight of a new latency sample (0, 1] */
    uint64_t probe_stale_ms; /* least_latency re-probes a worker unmeasured this long */
    uint32_t n_models;
    struct {
        char model[RS_MAX_NAME_BYTES + 1];
        rs_lb_strategy strategy;
    } models[RS_LB_MAX_MODEL_OVERRIDES];
    uint32_t n_weights;
    struct {
        char worker[RS_WORKER_ID_BYTES]; /* worker id or "host:port" */
        uint32_t weight;
    } weights[RS_LB_MAX_WEIGHTS];
} rs_lb_config;

typedef struct rs_lb {
    rs_lb_strategy strategy;
    uint64_t cursor; /* round robin, tie rotation */
    uint64_t rng;    /* xorshift64* state, never 0 */
    uint64_t probe_stale_ns;
} rs_lb;

void rs_lb_config_default(rs_lb_config *cfg);
/* Parses `load_balancer:` (strategy, seed, locality, affinity, ewma_alpha,
 * probe_stale_ms, models: {name: strategy}, weights: {worker: n}). */
int rs_lb_config_parse(const rs_cfg_node *section, rs_lb_config *out, rs_err *err);
/* The strategy for a model: its override, else the default. */
rs_lb_strategy rs_lb_strategy_for(const rs_lb_config *cfg, const char *model, uint32_t len);
/* The configured weight for a worker id or address; 0 when none. */
uint32_t rs_lb_weight_for(const rs_lb_config *cfg, const char *worker);
const char *rs_lb_strategy_name(rs_lb_strategy s);
/* Name -> strategy; -1 when unknown. */
int rs_lb_strategy_parse(const char *name);

void rs_lb_init(rs_lb *lb, rs_lb_strategy strategy, uint64_t seed, uint64_t probe_stale_ms);
/* Index of the chosen candidate, 0 <= i < n (n >= 1). */
uint32_t rs_lb_pick(rs_lb *lb, const rs_lb_stats *const *cands, uint32_t n, uint64_t now_ns);
/* Records one observed latency into the worker's EWMA. */
void rs_lb_observe(rs_lb_stats *s, double latency_us, double alpha, uint64_t now_ns);
/* Uniform in [0, n) from the balancer's RNG. */
uint32_t rs_lb_rand(rs_lb *lb, uint32_t n);

#endif

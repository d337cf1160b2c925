/* lb.c — see lb.h. */
#include "engine/load_balancer/lb.h"

#include <stdio.h>
#include <string.h>

#include "engine/common/log.h"

static const char *const strategy_names[] = {
    "round_robin", "least_connections", "random", "least_latency", "weighted", "p2c", NULL};
static const char *const locality_names[] = {"none", "host", "numa", NULL};
static const char *const affinity_names[] = {"routing_key", "inputs", "none", NULL};

const char *rs_lb_strategy_name(rs_lb_strategy s) {
    return (unsigned)s < RS_LB_STRATEGY_COUNT_ ? strategy_names[s] : "?";
}

int rs_lb_strategy_parse(const char *name) {
    for (int i = 0; strategy_names[i]; i++)
        if (strcmp(strategy_names[i], name) == 0) return i;
    return -1;
}

void rs_lb_config_default(rs_lb_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->strategy = RS_LB_ROUND_ROBIN;
    cfg->seed = 1;
    cfg->locality = RS_LOCALITY_NONE;
    cfg->affinity = RS_AFFINITY_ROUTING_KEY;
    cfg->ewma_alpha = 0.3;
    cfg->probe_stale_ms = 10000;
}

static int parse_models(const rs_cfg_node *models, rs_lb_config *out, rs_err *err) {
    if (!rs_cfg_is_map(models)) {
        rs_cfg_fail(models, err, "expected a mapping of model name to strategy");
        return -1;
    }
    size_t n = rs_cfg_len(models);
    if (n > RS_LB_MAX_MODEL_OVERRIDES) {
        rs_cfg_fail(models, err, "%zu entries: at most %d", n, RS_LB_MAX_MODEL_OVERRIDES);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        rs_cfg_node v;
        const char *name = rs_cfg_pair(models, i, &v);
        int strategy = 0;
        if (!name || name[0] == '\0' || strlen(name) > RS_MAX_NAME_BYTES) {
            rs_cfg_fail(&v, err, "model name must have 1 to %d bytes", RS_MAX_NAME_BYTES);
            return -1;
        }
        if (rs_cfg_enum(models, name, true, 0, strategy_names, &strategy, err) != 0) return -1;
        snprintf(out->models[i].model, sizeof(out->models[i].model), "%s", name);
        out->models[i].strategy = (rs_lb_strategy)strategy;
    }
    out->n_models = (uint32_t)n;
    return 0;
}

static int parse_weights(const rs_cfg_node *weights, rs_lb_config *out, rs_err *err) {
    if (!rs_cfg_is_map(weights)) {
        rs_cfg_fail(weights, err, "expected a mapping of worker id or host:port to weight");
        return -1;
    }
    size_t n = rs_cfg_len(weights);
    if (n > RS_LB_MAX_WEIGHTS) {
        rs_cfg_fail(weights, err, "%zu entries: at most %d", n, RS_LB_MAX_WEIGHTS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        rs_cfg_node v;
        const char *name = rs_cfg_pair(weights, i, &v);
        uint64_t w = 0;
        if (!name || name[0] == '\0' || strlen(name) >= RS_WORKER_ID_BYTES) {
            rs_cfg_fail(&v, err, "worker name must have 1 to %d bytes", RS_WORKER_ID_BYTES - 1);
            return -1;
        }
        if (rs_cfg_u64(weights, name, true, 0, 1, 1000000, &w, err) != 0) return -1;
        snprintf(out->weights[i].worker, sizeof(out->weights[i].worker), "%s", name);
        out->weights[i].weight = (uint32_t)w;
    }
    out->n_weights = (uint32_t)n;
    return 0;
}

int rs_lb_config_parse(const rs_cfg_node *section, rs_lb_config *out, rs_err *err) {
    static const char *const keys[] = {"strategy", "seed",           "locality",
                                       "affinity", "ewma_alpha",     "models",
                                       "weights",  "probe_stale_ms", NULL};
    rs_lb_config_default(out);
    if (!rs_cfg_present(section)) return 0;
    if (rs_cfg_check_keys(section, keys, err) != 0) return -1;
    int e = 0;
    if (rs_cfg_enum(section, "strategy", false, RS_LB_ROUND_ROBIN, strategy_names, &e, err) != 0)
        return -1;
    out->strategy = (rs_lb_strategy)e;
    if (rs_cfg_enum(section, "locality", false, RS_LOCALITY_NONE, locality_names, &e, err) != 0)
        return -1;
    out->locality = (rs_lb_locality)e;
    if (rs_cfg_enum(section, "affinity", false, RS_AFFINITY_ROUTING_KEY, affinity_names, &e, err) !=
        0)
        return -1;
    out->affinity = (rs_lb_affinity)e;
    if (rs_cfg_u64(section, "seed", false, 1, 0, UINT64_MAX, &out->seed, err) != 0) return -1;
    if (rs_cfg_double(section, "ewma_alpha", false, 0.3, 0.001, 1.0, &out->ewma_alpha, err) != 0)
        return -1;
    if (rs_cfg_u64(section, "probe_stale_ms", false, 10000, 1, 3600000, &out->probe_stale_ms,
                   err) != 0)
        return -1;
    rs_cfg_node models = rs_cfg_get(section, "models");
    if (rs_cfg_present(&models) && parse_models(&models, out, err) != 0) return -1;
    rs_cfg_node weights = rs_cfg_get(section, "weights");
    if (rs_cfg_present(&weights) && parse_weights(&weights, out, err) != 0) return -1;
    return 0;
}

rs_lb_strategy rs_lb_strategy_for(const rs_lb_config *cfg, const char *model, uint32_t len) {
    for (uint32_t i = 0; i < cfg->n_models; i++)
        if (strlen(cfg->models[i].model) == len && memcmp(cfg->models[i].model, model, len) == 0)
            return cfg->models[i].strategy;
    return cfg->strategy;
}

uint32_t rs_lb_weight_for(const rs_lb_config *cfg, const char *worker) {
    for (uint32_t i = 0; i < cfg->n_weights; i++)
        if (strcmp(cfg->weights[i].worker, worker) == 0) return cfg->weights[i].weight;
    return 0;
}

void rs_lb_init(rs_lb *lb, rs_lb_strategy strategy, uint64_t seed, uint64_t probe_stale_ms) {
    lb->strategy = strategy;
    lb->cursor = 0;
    /* splitmix64 of the seed: any seed (0 included) gives a non-zero state */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    lb->rng = z ? z : 0x2545f4914f6cdd1dull;
    lb->probe_stale_ns = probe_stale_ms * 1000000ull;
}

static uint64_t next_u64(rs_lb *lb) {
    uint64_t x = lb->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    lb->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint32_t rs_lb_rand(rs_lb *lb, uint32_t n) {
    /* Lemire's multiply-shift: uniform enough without a division */
    return (uint32_t)(((unsigned __int128)next_u64(lb) * n) >> 64);
}

/* Scans start from a rotating offset so that ties are spread. */
static uint32_t rotate_start(rs_lb *lb, uint32_t n) {
    return (uint32_t)(lb->cursor++ % n);
}

static uint32_t pick_least_connections(rs_lb *lb, const rs_lb_stats *const *c, uint32_t n) {
    uint32_t i = rotate_start(lb, n), best = i;
    for (uint32_t k = 1; k < n; k++) {
        if (++i == n) i = 0;
        if (c[i]->in_flight < c[best]->in_flight) best = i;
    }
    return best;
}

static bool needs_probe(const rs_lb *lb, const rs_lb_stats *s, uint64_t now_ns) {
    if (s->latency_samples == 0) return true;
    return now_ns > s->last_sample_ns && now_ns - s->last_sample_ns > lb->probe_stale_ns;
}

static uint32_t pick_least_latency(rs_lb *lb, const rs_lb_stats *const *c, uint32_t n,
                                   uint64_t now_ns) {
    uint32_t start = rotate_start(lb, n);
    /* An unmeasured (or long-unmeasured) idle worker gets the next request:
     * one probe at a time, so a slow newcomer is never flooded. */
    for (uint32_t k = 0, i = start; k < n; k++, i = i + 1 == n ? 0 : i + 1)
        if (c[i]->in_flight == 0 && needs_probe(lb, c[i], now_ns)) return i;
    uint32_t best = UINT32_MAX;
    double best_score = 0;
    for (uint32_t k = 0, i = start; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
        /* a worker being probed has no usable figure yet: skip it */
        if (c[i]->latency_samples == 0) continue;
        double score = c[i]->ewma_latency_us * (double)(c[i]->in_flight + 1);
        if (best == UINT32_MAX || score < best_score) {
            best = i;
            best_score = score;
        }
    }
    /* every candidate is a newcomer with its probe in flight */
    return best == UINT32_MAX ? pick_least_connections(lb, c, n) : best;
}

static uint32_t pick_weighted(rs_lb *lb, const rs_lb_stats *const *c, uint32_t n) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += c[i]->weight;
    if (total == 0) return rs_lb_rand(lb, n);
    uint64_t r = (uint64_t)(((unsigned __int128)next_u64(lb) * total) >> 64);
    for (uint32_t i = 0; i < n; i++) {
        if (r < c[i]->weight) return i;
        r -= c[i]->weight;
    }
    return n - 1;
}

static uint32_t pick_p2c(rs_lb *lb, const rs_lb_stats *const *c, uint32_t n) {
    uint32_t a = rs_lb_rand(lb, n);
    uint32_t b = rs_lb_rand(lb, n - 1);
    if (b >= a) b++;
    if (c[b]->in_flight < c[a]->in_flight) return b;
    if (c[b]->in_flight == c[a]->in_flight && c[b]->latency_samples && c[a]->latency_samples &&
        c[b]->ewma_latency_us < c[a]->ewma_latency_us)
        return b;
    return a;
}

uint32_t rs_lb_pick(rs_lb *lb, const rs_lb_stats *const *cands, uint32_t n, uint64_t now_ns) {
    RS_ASSERT(n >= 1);
    if (n == 1) return 0;
    switch (lb->strategy) {
    case RS_LB_ROUND_ROBIN: return (uint32_t)(lb->cursor++ % n);
    case RS_LB_LEAST_CONNECTIONS: return pick_least_connections(lb, cands, n);
    case RS_LB_RANDOM: return rs_lb_rand(lb, n);
    case RS_LB_LEAST_LATENCY: return pick_least_latency(lb, cands, n, now_ns);
    case RS_LB_WEIGHTED: return pick_weighted(lb, cands, n);
    case RS_LB_P2C: return pick_p2c(lb, cands, n);
    case RS_LB_STRATEGY_COUNT_: break;
    }
    RS_ASSERT(!"unknown strategy");
    return 0;
}

void rs_lb_observe(rs_lb_stats *s, double latency_us, double alpha, uint64_t now_ns) {
    if (s->latency_samples == 0)
        s->ewma_latency_us = latency_us;
    else
        s->ewma_latency_us += alpha * (latency_us - s->ewma_latency_us);
    s->latency_samples++;
    s->last_sample_ns = now_ns;
}

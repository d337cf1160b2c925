/* metrics.h — per-core, lock-free counters, gauges and log-linear histograms,
 * rendered as Prometheus text with every core merged.
 *
 * Why: telemetry must be cheap enough to leave on (Triton's summaries cost a
 * third of throughput). Each core (loop thread) owns a shard of plain 64-bit
 * slots and is its only writer: recording is a relaxed load + store, no
 * lock, no atomic read-modify-write, no allocation. The renderer (any thread)
 * reads every shard with relaxed loads and sums.
 *
 * Set-up (start-up, one thread): rs_metrics_create, then add families and
 * their series (every label combination is registered up front: models and
 * outcomes are known at start), then rs_metrics_freeze allocates the shards.
 * After freeze no series can be added; recording and rendering may start.
 *
 * Histograms are log-linear over integer values (µs, items...): values below
 * 2^sub_bits are exact, above that each power of two is split into
 * 2^sub_bits linear buckets, up to max_value (larger values land in +Inf).
 * Buckets render as Prometheus "le" bounds multiplied by scale (e.g. 1e-6 to
 * report µs as seconds), with _sum and _count. */
#ifndef RS_METRICS_H
#define RS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"

typedef struct rs_metrics rs_metrics;
typedef struct rs_metrics_shard rs_metrics_shard;
typedef uint32_t rs_metric_id; /* a series; first slot index in every shard */
typedef uint32_t rs_metric_family;

#define RS_METRICS_MAX_LABELS 4

typedef enum rs_metric_kind {
    RS_METRIC_COUNTER = 0,
    RS_METRIC_GAUGE = 1,
    RS_METRIC_HISTOGRAM = 2,
} rs_metric_kind;

typedef struct rs_histogram_spec {
    uint32_t sub_bits;  /* 0..4: 2^sub_bits buckets per power of two */
    uint64_t max_value; /* largest value with its own bucket (>= 1) */
    double scale;       /* rendered bound = bucket bound * scale */
} rs_histogram_spec;

/* max_series: series of all families; max_slots: 64-bit slots per shard
 * (a counter or gauge uses 1, a histogram buckets + 2). */
rs_metrics *rs_metrics_create(uint32_t shards, uint32_t max_families, uint32_t max_series,
                              uint32_t max_slots, rs_err *err);
void rs_metrics_destroy(rs_metrics *m);

/* name: [a-zA-Z_:][a-zA-Z0-9_:]*; hist only for HISTOGRAM (NULL otherwise).
 * label_names: NULL-terminated, at most RS_METRICS_MAX_LABELS. Returns 0 and
 * *out, or -1 with err (bad name, full, after freeze). */
int rs_metrics_add_family(rs_metrics *m, rs_metric_kind kind, const char *name, const char *help,
                          const char *const *label_names, const rs_histogram_spec *hist,
                          rs_metric_family *out, rs_err *err);
/* One label combination of a family (values in label_names order; escaped
 * on render). Returns 0 and *out, or -1 with err. */
int rs_metrics_add_series(rs_metrics *m, rs_metric_family family, const char *const *label_values,
                          rs_metric_id *out, rs_err *err);
/* Allocates the shards (cache-line aligned, zeroed). 0 or -1 with err. */
int rs_metrics_freeze(rs_metrics *m, rs_err *err);

/* The shard a thread records into; index < shards. One writer per shard. */
rs_metrics_shard *rs_metrics_shard_get(rs_metrics *m, uint32_t index);

/* ---- recording (inline; the shard's owner thread only) ----------------- */

struct rs_metrics_shard {
    uint64_t *slots;
    const uint8_t *sub_bits; /* per slot of a histogram's first bucket */
    const uint32_t *buckets; /* per slot: bucket count of that histogram */
};

static inline void rs_metrics_slot_add(uint64_t *slot, uint64_t n) {
    __atomic_store_n(slot, __atomic_load_n(slot, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void rs_metrics_counter_add(rs_metrics_shard *s, rs_metric_id id, uint64_t n) {
    rs_metrics_slot_add(&s->slots[id], n);
}

/* Gauges are per shard and summed on render: add +1/-1 around a queue entry,
 * or set the shard's part. */
static inline void rs_metrics_gauge_add(rs_metrics_shard *s, rs_metric_id id, int64_t delta) {
    rs_metrics_slot_add(&s->slots[id], (uint64_t)delta);
}
static inline void rs_metrics_gauge_set(rs_metrics_shard *s, rs_metric_id id, int64_t value) {
    __atomic_store_n(&s->slots[id], (uint64_t)value, __ATOMIC_RELAXED);
}

/* Bucket index of value v for a histogram with sub_bits and nb buckets
 * (the last bucket is +Inf). */
static inline uint32_t rs_metrics_bucket_index(uint64_t v, uint32_t sub_bits, uint32_t nb) {
    uint64_t sub = 1ull << sub_bits;
    uint32_t idx;
    if (v < sub) {
        idx = (uint32_t)v;
    } else {
        uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
        uint32_t shift = msb - sub_bits;
        idx = (shift + 1) * (uint32_t)sub + (uint32_t)((v >> shift) - sub);
    }
    return idx < nb - 1 ? idx : nb - 1;
}

/* Layout of a histogram series: buckets [0, nb), then sum, then count. */
static inline void rs_metrics_observe(rs_metrics_shard *s, rs_metric_id id, uint64_t value) {
    uint32_t nb = s->buckets[id];
    rs_metrics_slot_add(&s->slots[id + rs_metrics_bucket_index(value, s->sub_bits[id], nb)], 1);
    rs_metrics_slot_add(&s->slots[id + nb], value);
    rs_metrics_slot_add(&s->slots[id + nb + 1], 1);
}

/* ---- reading ---------------------------------------------------------- */

/* Sum over shards of a counter or gauge (gauges as signed). */
uint64_t rs_metrics_counter_value(const rs_metrics *m, rs_metric_id id);
int64_t rs_metrics_gauge_value(const rs_metrics *m, rs_metric_id id);
/* Histogram count and sum over shards. */
void rs_metrics_histogram_totals(const rs_metrics *m, rs_metric_id id, uint64_t *count,
                                 uint64_t *sum);
/* Inclusive upper bound of bucket i of a histogram (UINT64_MAX for +Inf). */
uint64_t rs_metrics_bucket_bound(uint32_t sub_bits, uint32_t nb, uint32_t i);

/* Renders every family in Prometheus text exposition format 0.0.4 into out.
 * Returns the length needed (snprintf semantics: when >= out_bytes the output
 * was cut; call again with a larger buffer). Histogram buckets are cumulative
 * and every series prints all its fixed bounds (stable across scrapes). */
size_t rs_metrics_render(const rs_metrics *m, char *out, size_t out_bytes);

#endif

/* hist.c — log-linear latency histogram (see hist.h). */
#include "bench/hist.h"

#include <math.h>
#include <string.h>

void rs_bhist_reset(rs_bhist *h) {
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

uint32_t rs_bhist_index(uint64_t v) {
    if (v > RS_BHIST_MAX_NS) v = RS_BHIST_MAX_NS;
    if (v < RS_BHIST_LINEAR) return (uint32_t)v;
    /* msb >= SUB_BITS: keep the SUB_BITS top bits; the top one is always set. */
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
    uint32_t shift = msb - (RS_BHIST_SUB_BITS - 1);
    uint32_t sub = (uint32_t)(v >> shift) - RS_BHIST_HALF; /* 0 .. HALF-1 */
    return RS_BHIST_LINEAR + (shift - 1) * RS_BHIST_HALF + sub;
}

uint64_t rs_bhist_bucket_low(uint32_t i) {
    if (i < RS_BHIST_LINEAR) return i;
    uint32_t k = i - RS_BHIST_LINEAR;
    uint32_t shift = k / RS_BHIST_HALF + 1;
    uint64_t sub = k % RS_BHIST_HALF + RS_BHIST_HALF;
    return sub << shift;
}

uint64_t rs_bhist_bucket_high(uint32_t i) {
    if (i < RS_BHIST_LINEAR) return i;
    uint32_t shift = (i - RS_BHIST_LINEAR) / RS_BHIST_HALF + 1;
    return rs_bhist_bucket_low(i) + (1ull << shift) - 1;
}

void rs_bhist_record_n(rs_bhist *h, uint64_t v, uint64_t count) {
    if (count == 0) return;
    h->buckets[rs_bhist_index(v)] += count;
    h->count += count;
    h->sum += v * count;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

void rs_bhist_record(rs_bhist *h, uint64_t v) {
    rs_bhist_record_n(h, v, 1);
}

void rs_bhist_merge(rs_bhist *dst, const rs_bhist *src) {
    for (uint32_t i = 0; i < RS_BHIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t rs_bhist_percentile(const rs_bhist *h, double p) {
    if (h->count == 0) return 0;
    if (p >= 100.0) return h->max;
    if (p < 0.0) p = 0.0;
    /* rank: how many values must lie at or below the answer (at least 1). */
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < RS_BHIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = rs_bhist_bucket_high(i);
            if (v > h->max) v = h->max;
            if (v < h->min) v = h->min;
            return v;
        }
    }
    return h->max;
}

double rs_bhist_mean(const rs_bhist *h) {
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

/* hist.h — the load generator's latency histogram (log-linear, HdrHistogram's
 * layout): values below 2^RS_BHIST_SUB_BITS are counted exactly, above that
 * every power of two is split into 2^(RS_BHIST_SUB_BITS-1) equal buckets, so a
 * reported percentile is within 1/2^(RS_BHIST_SUB_BITS-1) (0.8%) of the
 * recorded value. Fixed size (no allocation): one per client thread, merged
 * at the end. Values are nanoseconds; beyond RS_BHIST_MAX_NS they land in the
 * last bucket (max stays exact). */
#ifndef RS_BENCH_HIST_H
#define RS_BENCH_HIST_H

#include <stdint.h>

#define RS_BHIST_SUB_BITS 8
#define RS_BHIST_MAX_BITS 40 /* 2^40 ns ~ 18 minutes */
#define RS_BHIST_LINEAR (1u << RS_BHIST_SUB_BITS)
#define RS_BHIST_HALF (1u << (RS_BHIST_SUB_BITS - 1))
#define RS_BHIST_BUCKETS (RS_BHIST_LINEAR + (RS_BHIST_MAX_BITS - RS_BHIST_SUB_BITS) * RS_BHIST_HALF)
#define RS_BHIST_MAX_NS ((1ull << RS_BHIST_MAX_BITS) - 1)

typedef struct rs_bhist {
    uint64_t count;
    uint64_t sum;
    uint64_t min; /* UINT64_MAX when empty */
    uint64_t max;
    uint64_t buckets[RS_BHIST_BUCKETS];
} rs_bhist;

void rs_bhist_reset(rs_bhist *h);
/* Bucket of a value, and the lowest / highest value a bucket holds. */
uint32_t rs_bhist_index(uint64_t v);
uint64_t rs_bhist_bucket_low(uint32_t i);
uint64_t rs_bhist_bucket_high(uint32_t i);
void rs_bhist_record(rs_bhist *h, uint64_t v);
/* Records v count times (a stall that hid count intended sends). */
void rs_bhist_record_n(rs_bhist *h, uint64_t v, uint64_t count);
void rs_bhist_merge(rs_bhist *dst, const rs_bhist *src);
/* The value at percentile p (0 < p <= 100): the smallest recorded value v
 * such that at least p% of the values are <= v, reported as the highest value
 * of its bucket, clamped to [min, max]. p 100 gives max exactly. 0 when empty. */
uint64_t rs_bhist_percentile(const rs_bhist *h, double p);
double rs_bhist_mean(const rs_bhist *h);

#endif

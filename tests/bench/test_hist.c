/* test_hist.c — the load generator's latency histogram: bucket layout,
 * precision, percentile math, merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "bench/hist.h"

static rs_bhist *new_hist(void) {
    rs_bhist *h = malloc(sizeof(*h));
    assert_non_null(h);
    rs_bhist_reset(h);
    return h;
}

/* Buckets tile [0, MAX] without gaps or overlaps, each value lands in the
 * bucket whose range holds it, and a bucket is at most 1/128 of its low end. */
static void test_buckets_tile(void **state) {
    (void)state;
    assert_int_equal(rs_bhist_bucket_low(0), 0);
    for (uint32_t i = 0; i + 1 < RS_BHIST_BUCKETS; i++) {
        assert_int_equal(rs_bhist_bucket_high(i) + 1, rs_bhist_bucket_low(i + 1));
        uint64_t lo = rs_bhist_bucket_low(i), hi = rs_bhist_bucket_high(i);
        assert_int_equal(rs_bhist_index(lo), i);
        assert_int_equal(rs_bhist_index(hi), i);
        if (lo >= RS_BHIST_LINEAR) assert_true((double)(hi - lo + 1) / (double)lo <= 1.0 / 128.0);
    }
    assert_int_equal(rs_bhist_bucket_high(RS_BHIST_BUCKETS - 1), RS_BHIST_MAX_NS);
    /* Exact below 256 ns. */
    for (uint64_t v = 0; v < RS_BHIST_LINEAR; v++)
        assert_int_equal(rs_bhist_bucket_high(rs_bhist_index(v)), v);
    /* Values above the range land in the last bucket. */
    assert_int_equal(rs_bhist_index(UINT64_MAX), RS_BHIST_BUCKETS - 1);
}

static void test_empty(void **state) {
    (void)state;
    rs_bhist *h = new_hist();
    assert_int_equal(rs_bhist_percentile(h, 50), 0);
    assert_int_equal(rs_bhist_percentile(h, 100), 0);
    assert_true(rs_bhist_mean(h) == 0.0);
    free(h);
}

static void test_single_value(void **state) {
    (void)state;
    rs_bhist *h = new_hist();
    rs_bhist_record(h, 123456);
    /* Clamped to [min, max]: one value is every percentile exactly. */
    assert_int_equal(rs_bhist_percentile(h, 0.1), 123456);
    assert_int_equal(rs_bhist_percentile(h, 50), 123456);
    assert_int_equal(rs_bhist_percentile(h, 99.9), 123456);
    assert_int_equal(rs_bhist_percentile(h, 100), 123456);
    assert_true(rs_bhist_mean(h) == 123456.0);
    free(h);
}

static void assert_near(uint64_t got, uint64_t want) {
    double rel = ((double)got - (double)want) / (double)want;
    if (rel < 0) rel = -rel;
    if (rel > 1.0 / 128.0)
        fail_msg("got %llu, want %llu (off by %.3f%%)", (unsigned long long)got,
                 (unsigned long long)want, rel * 100);
}

/* 1..10000 µs, once each: percentile p is the value of rank ceil(p% * n). */
static void test_uniform_percentiles(void **state) {
    (void)state;
    rs_bhist *h = new_hist();
    for (uint64_t i = 1; i <= 10000; i++)
        rs_bhist_record(h, i * 1000);
    assert_int_equal(h->count, 10000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 10000000);
    assert_near(rs_bhist_percentile(h, 50), 5000000);
    assert_near(rs_bhist_percentile(h, 90), 9000000);
    assert_near(rs_bhist_percentile(h, 99), 9900000);
    assert_near(rs_bhist_percentile(h, 99.9), 9990000);
    assert_int_equal(rs_bhist_percentile(h, 100), 10000000);
    /* Never below the true value: the highest value of its bucket. */
    assert_true(rs_bhist_percentile(h, 50) >= 5000000);
    assert_true(rs_bhist_mean(h) == 5000500.0);
    free(h);
}

/* A tail: 990 fast answers and 10 slow ones; p99 sits on the edge. */
static void test_tail(void **state) {
    (void)state;
    rs_bhist *h = new_hist();
    rs_bhist_record_n(h, 50000, 990);
    rs_bhist_record_n(h, 20000000, 10);
    assert_near(rs_bhist_percentile(h, 50), 50000);
    assert_near(rs_bhist_percentile(h, 99), 50000);      /* rank 990: still fast */
    assert_near(rs_bhist_percentile(h, 99.1), 20000000); /* rank 991: slow */
    assert_int_equal(rs_bhist_percentile(h, 100), 20000000);
    rs_bhist_record_n(h, 1, 0); /* count 0 records nothing */
    assert_int_equal(h->count, 1000);
    assert_int_equal(h->min, 50000);
    free(h);
}

static void test_merge(void **state) {
    (void)state;
    rs_bhist *a = new_hist(), *b = new_hist(), *all = new_hist();
    for (uint64_t i = 1; i <= 5000; i++) {
        uint64_t v = i * 977 % 100003 + 300;
        rs_bhist_record(i % 2 ? a : b, v);
        rs_bhist_record(all, v);
    }
    rs_bhist_merge(a, b);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->sum, all->sum);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    const double ps[] = {1, 50, 90, 99, 99.9, 100};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        assert_int_equal(rs_bhist_percentile(a, ps[i]), rs_bhist_percentile(all, ps[i]));
    /* Merging an empty histogram changes nothing (min stays). */
    rs_bhist_reset(b);
    rs_bhist_merge(a, b);
    assert_int_equal(a->min, all->min);
    free(a);
    free(b);
    free(all);
}

static void test_huge_value_clamped(void **state) {
    (void)state;
    rs_bhist *h = new_hist();
    rs_bhist_record(h, RS_BHIST_MAX_NS * 4);
    assert_int_equal(h->buckets[RS_BHIST_BUCKETS - 1], 1);
    assert_int_equal(rs_bhist_percentile(h, 100), RS_BHIST_MAX_NS * 4); /* max is exact */
    free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_tile),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_single_value),
        cmocka_unit_test(test_uniform_percentiles),
        cmocka_unit_test(test_tail),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_huge_value_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

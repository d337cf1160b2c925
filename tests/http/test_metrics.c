/* Tests for engine/metrics: per-shard recording merged on read, log-linear
 * bucket layout, and the exact Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/metrics/metrics.h"

static void test_bucket_layout(void **state) {
    (void)state;
    /* sub_bits 2: exact below 8, then 4 buckets per power of two. */
    uint32_t nb = 100;
    for (uint64_t v = 0; v < 8; v++) assert_int_equal(rs_metrics_bucket_index(v, 2, nb), v);
    assert_int_equal(rs_metrics_bucket_index(8, 2, nb), 8);
    assert_int_equal(rs_metrics_bucket_index(9, 2, nb), 8);
    assert_int_equal(rs_metrics_bucket_index(10, 2, nb), 9);
    assert_int_equal(rs_metrics_bucket_index(15, 2, nb), 11);
    assert_int_equal(rs_metrics_bucket_index(16, 2, nb), 12);
    assert_int_equal(rs_metrics_bucket_index(1ull << 40, 2, nb), nb - 1); /* clamps to +Inf */
    /* Every value lies at or under its bucket's bound and above the previous one. */
    for (uint64_t v = 0; v < 5000; v++) {
        uint32_t i = rs_metrics_bucket_index(v, 2, nb);
        assert_true(v <= rs_metrics_bucket_bound(2, nb, i));
        if (i > 0) assert_true(v > rs_metrics_bucket_bound(2, nb, i - 1));
    }
    assert_int_equal(rs_metrics_bucket_bound(2, nb, nb - 1), UINT64_MAX);
}

static rs_metrics *build(rs_metric_id *req_ok, rs_metric_id *req_err, rs_metric_id *depth,
                         rs_metric_id *lat) {
    rs_err err = {0};
    rs_metrics *m = rs_metrics_create(2, 8, 16, 256, &err);
    assert_non_null(m);
    rs_metric_family f_req, f_depth, f_lat;
    const char *labels[] = {"model", "outcome", NULL};
    assert_int_equal(rs_metrics_add_family(m, RS_METRIC_COUNTER, "rs_requests_total",
                                           "Requests by model and outcome.", labels, NULL, &f_req,
                                           &err), 0);
    const char *v1[] = {"digits", "ok"}, *v2[] = {"digits", "error"};
    assert_int_equal(rs_metrics_add_series(m, f_req, v1, req_ok, &err), 0);
    assert_int_equal(rs_metrics_add_series(m, f_req, v2, req_err, &err), 0);
    const char *ml[] = {"model", NULL};
    const char *mv[] = {"a\"b\\c\nd"};
    assert_int_equal(rs_metrics_add_family(m, RS_METRIC_GAUGE, "rs_queue_depth", "Queued.", ml,
                                           NULL, &f_depth, &err), 0);
    assert_int_equal(rs_metrics_add_series(m, f_depth, mv, depth, &err), 0);
    rs_histogram_spec h = {.sub_bits = 0, .max_value = 4, .scale = 1e-6};
    assert_int_equal(rs_metrics_add_family(m, RS_METRIC_HISTOGRAM, "rs_latency_seconds",
                                           "Latency.", NULL, &h, &f_lat, &err), 0);
    assert_int_equal(rs_metrics_add_series(m, f_lat, NULL, lat, &err), 0);
    assert_int_equal(rs_metrics_freeze(m, &err), 0);
    return m;
}

static void test_record_and_render(void **state) {
    (void)state;
    rs_metric_id ok, er, depth, lat;
    rs_metrics *m = build(&ok, &er, &depth, &lat);
    rs_metrics_shard *s0 = rs_metrics_shard_get(m, 0), *s1 = rs_metrics_shard_get(m, 1);
    rs_metrics_counter_add(s0, ok, 3);
    rs_metrics_counter_add(s1, ok, 2);
    rs_metrics_counter_add(s1, er, 1);
    rs_metrics_gauge_add(s0, depth, 5);
    rs_metrics_gauge_add(s1, depth, -7);
    rs_metrics_observe(s0, lat, 0);
    rs_metrics_observe(s0, lat, 3);
    rs_metrics_observe(s1, lat, 3);
    rs_metrics_observe(s1, lat, 1000);
    assert_int_equal(rs_metrics_counter_value(m, ok), 5);
    assert_int_equal(rs_metrics_gauge_value(m, depth), -2);
    uint64_t count, sum;
    rs_metrics_histogram_totals(m, lat, &count, &sum);
    assert_int_equal(count, 4);
    assert_int_equal(sum, 1006);
    char out[4096];
    size_t n = rs_metrics_render(m, out, sizeof(out));
    assert_true(n < sizeof(out));
    const char *want =
        "# HELP rs_requests_total Requests by model and outcome.\n"
        "# TYPE rs_requests_total counter\n"
        "rs_requests_total{model=\"digits\",outcome=\"ok\"} 5\n"
        "rs_requests_total{model=\"digits\",outcome=\"error\"} 1\n"
        "# HELP rs_queue_depth Queued.\n"
        "# TYPE rs_queue_depth gauge\n"
        "rs_queue_depth{model=\"a\\\"b\\\\c\\nd\"} -2\n"
        "# HELP rs_latency_seconds Latency.\n"
        "# TYPE rs_latency_seconds histogram\n"
        "rs_latency_seconds_bucket{le=\"0\"} 1\n"
        "rs_latency_seconds_bucket{le=\"1e-06\"} 1\n"
        "rs_latency_seconds_bucket{le=\"3e-06\"} 3\n"
        "rs_latency_seconds_bucket{le=\"7e-06\"} 3\n"
        "rs_latency_seconds_bucket{le=\"+Inf\"} 4\n"
        "rs_latency_seconds_sum 0.001006\n"
        "rs_latency_seconds_count 4\n";
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    /* A short buffer is cut, NUL-terminated, and the needed length returned. */
    char small[32];
    assert_int_equal(rs_metrics_render(m, small, sizeof(small)), n);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    rs_metrics_destroy(m);
}

static void test_errors(void **state) {
    (void)state;
    rs_err err = {0};
    assert_null(rs_metrics_create(0, 1, 1, 1, &err));
    rs_metrics *m = rs_metrics_create(1, 1, 1, 4, &err);
    rs_metric_family f;
    rs_metric_id id;
    assert_int_equal(rs_metrics_add_family(m, RS_METRIC_COUNTER, "9bad", "", NULL, NULL, &f, &err), -1);
    assert_string_equal(err.msg, "metrics: '9bad': not a valid metric name");
    rs_histogram_spec h = {.sub_bits = 2, .max_value = 1000, .scale = 1};
    assert_int_equal(rs_metrics_add_family(m, RS_METRIC_HISTOGRAM, "h", "", NULL, &h, &f, &err), 0);
    assert_int_equal(rs_metrics_add_series(m, f, NULL, &id, &err), -1);
    assert_string_equal(err.msg, "metrics: h: more than 4 slots");
    assert_int_equal(rs_metrics_add_family(m, RS_METRIC_COUNTER, "c", "", NULL, NULL, &f, &err), -1);
    assert_string_equal(err.msg, "metrics: c: more than 1 families");
    assert_int_equal(rs_metrics_freeze(m, &err), 0);
    rs_metrics_destroy(m);
    m = rs_metrics_create(1, 2, 2, 8, &err);
    const char *ln[] = {"model", NULL};
    assert_int_equal(rs_metrics_add_family(m, RS_METRIC_COUNTER, "c", "", ln, NULL, &f, &err), 0);
    assert_int_equal(rs_metrics_add_series(m, f, NULL, &id, &err), -1);
    assert_string_equal(err.msg, "metrics: c: label 'model' has no value");
    assert_int_equal(rs_metrics_freeze(m, &err), 0);
    assert_int_equal(rs_metrics_add_family(m, RS_METRIC_GAUGE, "g", "", NULL, NULL, &f, &err), -1);
    assert_string_equal(err.msg, "metrics: g: registry is frozen");
    rs_metrics_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_record_and_render),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

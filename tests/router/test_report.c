/* Tests for the router's reports: the `GET /v2/workers` JSON and the
 * Prometheus text (figures, label escaping, a buffer that is too small). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <json-c/json.h>

#include "tests/router/fake.h"

static rs_router *start(fixture *fx) {
    fixture_init(fx);
    rs_err err = {0};
    assert_int_equal(rs_cluster_add_worker_arg(&fx->cfg.cluster, "127.0.0.1:9001", &err), 0);
    assert_non_null(fixture_start(fx));
    const char *models[] = {"digits", "identity"};
    fake_worker f;
    fake_worker_init(&f, 7, models, 2, 0);
    f.msg.models[0].version = rs_str_c("1");
    f.msg.capacity = 4;
    f.msg.numa_node = 1;
    assert_true(rs_router_register(fx->r, &f.msg, &err) >= 0);
    /* traffic: 3 answered in 2 ms each, 1 timeout at 10 ms */
    rs_route_req q = req_for("digits");
    for (int i = 0; i < 4; i++) {
        rs_ticket t;
        assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
        fx->clock.now_ns += (i < 3 ? 2 : 10) * MS;
        rs_router_release(fx->r, &t, i < 3 ? RS_OUTCOME_OK : RS_OUTCOME_TIMEOUT);
    }
    rs_ticket open;
    assert_int_equal(rs_router_pick(fx->r, &q, &open, &err), 0); /* one left in flight */
    fx->clock.now_ns += 1500 * MS;
    return fx->r;
}

static json_object *get(json_object *o, const char *k) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, k, &v)) fail_msg("missing key '%s'", k);
    return v;
}

static void test_json(void **state) {
    (void)state;
    fixture *fx = calloc(1, sizeof(*fx));
    rs_router *r = start(fx);
    json_object *doc = rs_router_workers_json(r);
    const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
    json_object *back = json_tokener_parse(text); /* valid JSON */
    assert_non_null(back);
    json_object *list = get(back, "workers");
    assert_int_equal(json_object_array_length(list), 2);
    json_object *st = json_object_array_get_idx(list, 0), *w = json_object_array_get_idx(list, 1);
    assert_string_equal(json_object_get_string(get(st, "address")), "127.0.0.1:9001");
    assert_string_equal(json_object_get_string(get(st, "state")), "unknown");
    assert_null(get(st, "last_heartbeat_ms_ago")); /* static: JSON null */
    assert_string_equal(
        json_object_get_string(get(json_object_array_get_idx(get(st, "models"), 0), "name")), "*");

    assert_string_equal(json_object_get_string(get(w, "id")), "w7");
    assert_string_equal(json_object_get_string(get(w, "address")), "10.0.0.8:9007");
    assert_string_equal(json_object_get_string(get(w, "state")), "up");
    json_object *models = get(w, "models");
    assert_int_equal(json_object_array_length(models), 2);
    json_object *m0 = json_object_array_get_idx(models, 0);
    assert_string_equal(json_object_get_string(get(m0, "name")), "digits");
    assert_string_equal(json_object_get_string(get(m0, "version")), "1");
    assert_int_equal(json_object_get_int64(get(w, "in_flight")), 1);
    assert_int_equal(json_object_get_int64(get(w, "requests")), 4);
    assert_int_equal(json_object_get_int64(get(w, "failures")), 1);
    assert_int_equal(json_object_get_int64(get(w, "capacity")), 4);
    assert_int_equal(json_object_get_int64(get(w, "numa_node")), 1);
    /* EWMA(2000, 2000, 2000, 10000 us; alpha 0.3) = 4400 us */
    double ewma = json_object_get_double(get(w, "ewma_latency_us"));
    assert_true(ewma > 4399.9 && ewma < 4400.1);
    /* error rate EWMA(0,0,0,1; alpha 0.1) = 0.1 */
    double er = json_object_get_double(get(w, "error_rate"));
    assert_true(er > 0.0999 && er < 0.1001);
    assert_int_equal(json_object_get_int64(get(w, "last_heartbeat_ms_ago")), 1516);
    json_object_put(back);
    json_object_put(doc);
    rs_router_destroy(r);
    free(fx);
}

static void test_prometheus(void **state) {
    (void)state;
    fixture *fx = calloc(1, sizeof(*fx));
    rs_router *r = start(fx);
    char buf[8192];
    memcpy(buf, "prefix\n", 7);
    size_t len = 7;
    assert_int_equal(rs_router_metrics_append(r, buf, sizeof(buf), &len), 0);
    buf[len] = '\0';
    assert_memory_equal(buf, "prefix\n", 7); /* appends */
    static const char *const want[] = {
        "# TYPE ringserve_worker_up gauge\n",
        "ringserve_worker_up{worker=\"w7\",address=\"10.0.0.8:9007\"} 1\n",
        "ringserve_worker_up{worker=\"127.0.0.1:9001\",address=\"127.0.0.1:9001\"} 0\n",
        "ringserve_worker_in_flight{worker=\"w7\",address=\"10.0.0.8:9007\"} 1\n",
        "ringserve_worker_requests_total{worker=\"w7\",address=\"10.0.0.8:9007\"} 4\n",
        "ringserve_worker_failures_total{worker=\"w7\",address=\"10.0.0.8:9007\"} 1\n",
        "ringserve_worker_latency_ewma_seconds{worker=\"w7\",address=\"10.0.0.8:9007\"} 0.004400\n",
        "ringserve_worker_error_rate{worker=\"w7\",address=\"10.0.0.8:9007\"} 0.100000\n",
        "ringserve_worker_heartbeat_age_seconds{worker=\"w7\",address=\"10.0.0.8:9007\"} 1.516\n",
        "ringserve_retries_total 0\n",
    };
    for (size_t i = 1; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(buf, want[i])) fail_msg("missing '%s' in:\n%s", want[i], buf);
    assert_non_null(strstr(buf, want[0]));
    /* static workers have no heartbeat line */
    assert_null(strstr(buf, "ringserve_worker_heartbeat_age_seconds{worker=\"127.0.0.1:9001\""));
    /* too small: -1 and nothing claimed */
    char small[64];
    size_t slen = 0;
    assert_int_equal(rs_router_metrics_append(r, small, sizeof(small), &slen), -1);
    assert_int_equal(slen, 0);
    rs_router_destroy(r);
    free(fx);
}

static void test_label_escaping(void **state) {
    (void)state;
    fixture *fx = calloc(1, sizeof(*fx));
    fixture_init(fx);
    assert_non_null(fixture_start(fx));
    const char *models[] = {"digits"};
    fake_worker f;
    fake_worker_init(&f, 1, models, 1, 0);
    f.msg.worker_id = rs_str_c("a\"b\\c\nd");
    rs_err err = {0};
    assert_true(rs_router_register(fx->r, &f.msg, &err) >= 0);
    char buf[8192];
    size_t len = 0;
    assert_int_equal(rs_router_metrics_append(fx->r, buf, sizeof(buf), &len), 0);
    buf[len] = '\0';
    assert_non_null(strstr(buf, "ringserve_worker_up{worker=\"a\\\"b\\\\c\\nd\","));
    rs_router_destroy(fx->r);
    free(fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_prometheus),
        cmocka_unit_test(test_label_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the router's config sections as a whole (cluster, load_balancer,
 * health, retry) and --worker / HOST:PORT parsing: every bad field refused
 * with one precise line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/router/router.h"

static const char *good = "cluster:\n"
                          "  token: s3cret\n"
                          "  max_workers: 8\n"
                          "  heartbeat_timeout_ms: 3000\n"
                          "  local_host: 10.0.0.2\n"
                          "  local_numa_node: 1\n"
                          "  workers:\n"
                          "    - 127.0.0.1:9001\n"
                          "    - \"[::1]:9002\"\n"
                          "    - address: 10.0.0.3:9003\n"
                          "      models: [digits, identity]\n"
                          "      weight: 4\n"
                          "      capacity: 16\n"
                          "      numa_node: 0\n"
                          "load_balancer:\n"
                          "  strategy: least_latency\n"
                          "  locality: numa\n"
                          "health:\n"
                          "  interval_ms: 1000\n"
                          "  timeout_ms: 500\n"
                          "retry:\n"
                          "  max_attempts: 2\n";

static void test_good(void **state) {
    (void)state;
    rs_err err = {0};
    rs_cfg *c = rs_cfg_load_string(good, "c.yaml", &err);
    assert_non_null(c);
    rs_cfg_node root = rs_cfg_root(c);
    rs_router_config *rc = malloc(sizeof(*rc));
    if (rs_router_config_parse(&root, rc, &err) != 0) fail_msg("%s", err.msg);
    assert_string_equal(rc->cluster.token, "s3cret");
    assert_int_equal(rc->cluster.max_workers, 8);
    assert_int_equal(rc->cluster.heartbeat_timeout_ms, 3000);
    assert_int_equal(rc->cluster.local_numa_node, 1);
    assert_int_equal(rc->cluster.n_workers, 3);
    assert_string_equal(rc->cluster.workers[0].host, "127.0.0.1");
    assert_int_equal(rc->cluster.workers[0].port, 9001);
    assert_int_equal(rc->cluster.workers[0].n_models, 0);
    assert_string_equal(rc->cluster.workers[1].host, "::1");
    assert_int_equal(rc->cluster.workers[2].n_models, 2);
    assert_string_equal(rc->cluster.workers[2].models[1], "identity");
    assert_int_equal(rc->cluster.workers[2].weight, 4);
    assert_int_equal(rc->cluster.workers[2].capacity, 16);
    assert_int_equal(rc->lb.strategy, RS_LB_LEAST_LATENCY);
    assert_int_equal(rc->lb.locality, RS_LOCALITY_NUMA);
    assert_int_equal(rc->health.interval_ms, 1000);
    assert_int_equal(rc->health.failure_threshold, 3);
    assert_int_equal(rc->retry.max_attempts, 2);
    assert_int_equal(rc->retry.budget_percent, 10);

    /* the router starts from it: three static workers, ids are addresses */
    rs_router *r = rs_router_create(rc, NULL, &err);
    assert_non_null(r);
    assert_int_equal(rs_router_worker_count(r), 3);
    rs_worker_ref ref;
    assert_int_equal(rs_router_find(r, rs_str_c("[::1]:9002"), &ref), 0);
    assert_int_equal(rs_router_find(r, rs_str_c("10.0.0.3:9003"), &ref), 0);
    assert_int_equal(rs_router_worker(r, ref)->lb.weight, 4);
    rs_router_destroy(r);
    free(rc);
    rs_cfg_free(c);
}

static void test_empty_is_defaults(void **state) {
    (void)state;
    rs_err err = {0};
    rs_cfg *c = rs_cfg_load_string("", "e.yaml", &err);
    rs_cfg_node root = rs_cfg_root(c);
    rs_router_config *rc = malloc(sizeof(*rc));
    assert_int_equal(rs_router_config_parse(&root, rc, &err), 0);
    assert_int_equal(rc->cluster.n_workers, 0);
    assert_int_equal(rc->cluster.max_workers, 64);
    assert_string_equal(rc->cluster.token, "");
    assert_int_equal(rc->health.interval_ms, 5000);
    assert_int_equal(rc->health.timeout_ms, 2000);
    assert_int_equal(rc->health.failure_threshold, 3);
    assert_int_equal(rc->lb.strategy, RS_LB_ROUND_ROBIN);
    assert_int_equal(rc->retry.budget_percent, 10);
    free(rc);
    rs_cfg_free(c);
}

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"cluster:\n  workers:\n    - localhost\n",
         "b.yaml:3: cluster.workers[0]: 'localhost': expected HOST:PORT"},
        {"cluster:\n  workers:\n    - localhost:0\n",
         "b.yaml:3: cluster.workers[0]: 'localhost:0': port must be an integer in [1, 65535]"},
        {"cluster:\n  workers:\n    - localhost:99999\n", "port must be an integer in [1, 65535]"},
        {"cluster:\n  workers:\n    - :9000\n",
         "b.yaml:3: cluster.workers[0]: ':9000': host must have"},
        {"cluster:\n  workers:\n    - a:1\n    - a:1\n",
         "b.yaml:4: cluster.workers[1]: worker a:1 is listed twice"},
        {"cluster:\n  workers: a:1\n", "b.yaml:2: cluster.workers: expected a list"},
        {"cluster:\n  workers:\n    - address: a:1\n      modles: [x]\n",
         "b.yaml:4: cluster.workers[0].modles: unknown field"},
        {"cluster:\n  workers:\n    - address: a:x\n",
         "b.yaml:3: cluster.workers[0].address: 'a:x': port must be an integer"},
        {"cluster:\n  workers:\n    - models: [x]\n",
         "b.yaml:3: cluster.workers[0]: missing required field 'address'"},
        {"cluster:\n  workers:\n    - address: a:1\n      models: []\n",
         "b.yaml:4: cluster.workers[0].models: expected a non-empty list"},
        {"cluster:\n  workers:\n    - address: a:1\n      weight: 0\n",
         "b.yaml:4: cluster.workers[0].weight: '0': out of range"},
        {"cluster:\n  max_workers: 0\n",
         "b.yaml:2: cluster.max_workers: '0': out of range [1, 4096]"},
        {"cluster:\n  max_workers: 1\n  workers: [a:1, a:2]\n",
         "b.yaml:3: cluster.workers: 2 workers listed but cluster.max_workers is 1"},
        {"cluster:\n  heartbeat_timeout_ms: nope\n",
         "b.yaml:2: cluster.heartbeat_timeout_ms: 'nope': expected a non-negative integer"},
        {"cluster:\n  tokn: x\n", "b.yaml:2: cluster.tokn: unknown field"},
        {"load_balancer:\n  locality: host\n",
         "b.yaml:2: load_balancer.locality: 'host': needs cluster.local_host"},
        {"health:\n  timeout_ms: 9000\n", "health.timeout_ms: '9000': must be less than"},
        {"retry:\n  max_attempts: 11\n",
         "b.yaml:2: retry.max_attempts: '11': out of range [1, 10]"},
    };
    rs_err err = {0};
    rs_router_config *rc = malloc(sizeof(*rc));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rs_cfg *c = rs_cfg_load_string(bad[i].text, "b.yaml", &err);
        assert_non_null(c);
        rs_cfg_node root = rs_cfg_root(c);
        err.msg[0] = '\0';
        assert_int_equal(rs_router_config_parse(&root, rc, &err), -1);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: got '%s', want '%s'", i, err.msg, bad[i].msg);
        assert_null(strchr(err.msg, '\n')); /* one line */
        rs_cfg_free(c);
    }
    free(rc);
}

static void test_worker_args(void **state) {
    (void)state;
    rs_cluster_config *cc = malloc(sizeof(*cc));
    rs_cluster_config_default(cc);
    rs_err err = {0};
    assert_int_equal(rs_cluster_add_worker_arg(cc, "127.0.0.1:9001", &err), 0);
    assert_int_equal(rs_cluster_add_worker_arg(cc, "[fe80::1]:9002", &err), 0);
    assert_string_equal(cc->workers[1].host, "fe80::1");
    assert_int_equal(cc->workers[1].port, 9002);
    assert_int_equal(rs_cluster_add_worker_arg(cc, "127.0.0.1:9001", &err), -1);
    assert_string_equal(err.msg, "--worker: worker 127.0.0.1:9001 is listed twice");
    assert_int_equal(rs_cluster_add_worker_arg(cc, "fe80::1:9002", &err), -1);
    assert_string_equal(err.msg, "--worker: 'fe80::1:9002': expected HOST:PORT");
    assert_int_equal(rs_cluster_add_worker_arg(cc, "[fe80::1]9002", &err), -1);
    assert_string_equal(err.msg, "--worker: '[fe80::1]9002': expected [IPv6]:PORT");
    assert_int_equal(rs_cluster_add_worker_arg(cc, "h:12ab", &err), -1);
    assert_string_equal(err.msg, "--worker: 'h:12ab': port must be an integer in [1, 65535]");
    assert_int_equal(rs_cluster_add_worker_arg(cc, "h:-1", &err), -1);
    assert_int_equal(cc->n_workers, 2);
    for (int i = 2; i < RS_CLUSTER_MAX_STATIC; i++) {
        char a[32];
        snprintf(a, sizeof(a), "h:%d", 1000 + i);
        assert_int_equal(rs_cluster_add_worker_arg(cc, a, &err), 0);
    }
    assert_int_equal(rs_cluster_add_worker_arg(cc, "h:1", &err), -1);
    assert_string_equal(err.msg, "--worker h:1: at most 64 static workers");
    free(cc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_empty_is_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_worker_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

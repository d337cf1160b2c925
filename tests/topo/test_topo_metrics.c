/* Tests for topo/topo_metrics: one pinned / memory_bound gauge per plan
 * entry, rendered in Prometheus text with role, model, instance and CPUs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h, stddef.h */

#include "topo/topo_metrics.h"

static void test_placement_gauges(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/2core-box.xml", RS_TOPO_DATA);
    rs_err err = {0};
    rs_topo *t = rs_topo_load_xml(path, &err);
    assert_non_null(t);
    rs_topo_config cfg;
    rs_topo_config_default(&cfg);
    rs_plan_model model;
    rs_plan_model_default(&model, "digits");
    rs_plan *plan = calloc(1, sizeof(*plan));
    assert_int_equal(rs_plan_build(rs_topo_get_info(t), &cfg, &model, 1, plan, &err), 0);
    assert_int_equal(plan->entry_count, 2);

    rs_metrics *m = rs_metrics_create(1, 4, 8, 8, &err);
    assert_non_null(m);
    rs_topo_metrics *tm = calloc(1, sizeof(*tm));
    assert_int_equal(rs_topo_metrics_register(m, plan, tm, &err), 0);
    assert_int_equal(tm->count, 2);
    assert_int_equal(rs_metrics_freeze(m, &err), 0);
    rs_metrics_shard *s = rs_metrics_shard_get(m, 0);
    rs_topo_binding ok = {.pinned = true, .memory_bound = true};
    rs_topo_binding refused = {.pinned = false, .memory_bound = true};
    rs_topo_metrics_record(tm, s, 0, &ok);
    rs_topo_metrics_record(tm, s, 1, &refused);
    rs_topo_metrics_record(tm, s, 7, &ok); /* no such entry: ignored */
    char out[4096];
    assert_true(rs_metrics_render(m, out, sizeof(out)) < sizeof(out));
    assert_non_null(strstr(out, "ringserve_placement_pinned{role=\"io\",model=\"\",instance=\"0\","
                                "cpus=\"0\"} 1\n"));
    assert_non_null(strstr(out, "ringserve_placement_pinned{role=\"worker\",model=\"digits\","
                                "instance=\"0\",cpus=\"1\"} 0\n"));
    assert_non_null(strstr(out, "ringserve_placement_memory_bound{role=\"worker\",model=\"digits\","
                                "instance=\"0\",cpus=\"1\"} 1\n"));
    /* A metrics set too small for the plan is an error, not a crash. */
    rs_metrics *small = rs_metrics_create(1, 4, 1, 8, &err);
    assert_int_equal(rs_topo_metrics_register(small, plan, tm, &err), -1);
    rs_metrics_destroy(small);
    rs_metrics_destroy(m);
    free(tm);
    free(plan);
    rs_topo_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement_gauges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for topo/plan_registry: models loaded by the model registry (their
 * model.yaml placement and instances) planned on the 2-socket test host, and
 * topology.placement overriding every version of a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h, stddef.h */

#include "topo/plan_registry.h"

static const char *model_yaml = "name: m\n"
                                "backend: identity\n"
                                "inputs:\n  - {name: x, dtype: FP32, shape: [-1, 4]}\n"
                                "outputs:\n  - {name: y, dtype: FP32, shape: [-1, 4]}\n"
                                "instances: %d\n"
                                "placement: {device: %s}\n";

static void write_model(const char *repo, int version, int instances, const char *placement) {
    char path[512];
    snprintf(path, sizeof(path), "%s/m", repo);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/m/%d", repo, version);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/m/%d/model.yaml", repo, version);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, model_yaml, instances, placement);
    fclose(f);
}

static void remove_repo(const char *repo) {
    char path[512];
    for (int v = 1; v <= 2; v++) {
        snprintf(path, sizeof(path), "%s/m/%d/model.yaml", repo, v);
        unlink(path);
        snprintf(path, sizeof(path), "%s/m/%d", repo, v);
        rmdir(path);
    }
    snprintf(path, sizeof(path), "%s/m", repo);
    rmdir(path);
    rmdir(repo);
}

static void test_registry_models_planned(void **state) {
    (void)state;
    char repo[] = "/tmp/rs-topo-repo-XXXXXX";
    assert_non_null(mkdtemp(repo));
    write_model(repo, 1, 2, "gpu, gpus: [3], gpu_memory_mb: 4000");
    write_model(repo, 2, 1, "cpu, numa: 0");

    char path[512];
    snprintf(path, sizeof(path), "%s/2s-2numa-smt-4gpu.xml", RS_TOPO_DATA);
    rs_err err = {0};
    rs_topo *t = rs_topo_load_xml(path, &err);
    assert_non_null(t);
    const rs_topo_info *info = rs_topo_get_info(t);

    rs_registry_config rcfg;
    rs_registry_config_default(&rcfg, repo);
    rcfg.gpu_numa = rs_topo_gpu_numa;
    rcfg.gpu_numa_ctx = (void *)info;
    rs_registry *r = rs_registry_create(&rcfg, &err);
    if (!r) print_error("%s\n", err.msg);
    assert_non_null(r);
    /* The registry resolved GPU 3's node through topo. */
    assert_int_equal(rs_registry_find(r, "m", 1)->placement.numa_resolved, 1);

    rs_plan_model models[4];
    size_t count = 0;
    assert_int_equal(rs_plan_models_from_registry(r, models, 1, &count, &err), -1);
    assert_non_null(strstr(err.msg, "more than the 1 the plan takes"));
    assert_int_equal(rs_plan_models_from_registry(r, models, 4, &count, &err), 0);
    assert_int_equal(count, 2);
    assert_string_equal(models[0].name, "m:1"); /* two versions: named by version */
    assert_int_equal(models[0].device, RS_PLAN_DEVICE_GPU);
    assert_int_equal(models[0].gpu_count, 1);
    assert_int_equal(models[0].gpus[0], 3);
    assert_int_equal(models[0].gpu_memory_mb, 4000);
    assert_int_equal(models[0].instances, 2);
    assert_int_equal(models[0].numa, RS_PLAN_NUMA_AUTO);
    assert_non_null(strstr(models[0].origin, "/m/1/model.yaml: placement"));
    assert_string_equal(models[1].name, "m:2");
    assert_int_equal(models[1].numa, 0);

    rs_topo_config cfg;
    rs_topo_config_default(&cfg);
    rs_plan *plan = calloc(1, sizeof(*plan));
    assert_int_equal(rs_plan_build(info, &cfg, models, count, plan, &err), 0);
    int gpu_shards = 0, cpu_shards = 0;
    for (int i = 0; i < plan->entry_count; i++) {
        const rs_plan_entry *e = &plan->entries[i];
        if (e->role != RS_PLAN_WORKER) continue;
        if (strcmp(e->model_name, "m:1") == 0) {
            assert_int_equal(e->gpu, 3);
            assert_int_equal(e->numa, 1);
            gpu_shards++;
        } else {
            assert_string_equal(e->model_name, "m:2");
            assert_int_equal(e->numa, 0);
            cpu_shards++;
        }
    }
    assert_int_equal(gpu_shards, 2);
    assert_int_equal(cpu_shards, 1);

    /* topology.placement.m overrides both versions; entries keep their names. */
    rs_cfg *doc = rs_cfg_load_string("topology:\n  placement:\n    m: {instances: 1, numa: 1}\n",
                                     "t.yaml", &err);
    assert_non_null(doc);
    rs_cfg_node root = rs_cfg_root(doc);
    rs_cfg_node section = rs_cfg_get(&root, "topology");
    assert_int_equal(rs_topo_config_parse(&section, &cfg, &err), 0);
    rs_cfg_free(doc);
    assert_int_equal(rs_plan_build(info, &cfg, models, count, plan, &err), 0);
    int shards = 0;
    for (int i = 0; i < plan->entry_count; i++) {
        const rs_plan_entry *e = &plan->entries[i];
        if (e->role == RS_PLAN_IO) continue;
        assert_int_equal(e->gpu, -1);
        assert_int_equal(e->numa, 1);
        assert_true(strcmp(e->model_name, "m:1") == 0 || strcmp(e->model_name, "m:2") == 0);
        shards++;
    }
    assert_int_equal(shards, 2);
    free(plan);
    rs_registry_destroy(r);
    rs_topo_free(t);
    remove_repo(repo);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_models_planned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

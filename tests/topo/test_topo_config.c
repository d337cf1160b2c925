/* Tests for topo/cpuset (cpulist syntax) and topo/config (the `topology:`
 * section and a model's `placement:` mapping): defaults, every field, and
 * every refusal with its exact one-line message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h, stddef.h */

#include "topo/cpuset.h"
#include "topo/plan.h"

static void test_cpulist_parse_format(void **state) {
    (void)state;
    rs_cpuset s;
    rs_err err = {0};
    char buf[RS_CPULIST_BYTES];
    assert_int_equal(rs_cpulist_parse("0-7,16-23", &s, &err), 0);
    assert_int_equal(rs_cpuset_count(&s), 16);
    assert_true(rs_cpuset_has(&s, 7) && rs_cpuset_has(&s, 16) && !rs_cpuset_has(&s, 8));
    assert_string_equal(rs_cpulist_format(&s, buf, sizeof(buf)), "0-7,16-23");
    assert_int_equal(rs_cpulist_parse(" 3 , 1,2, 1023", &s, &err), 0);
    assert_string_equal(rs_cpulist_format(&s, buf, sizeof(buf)), "1-3,1023");
    assert_int_equal(rs_cpuset_next(&s, 4), 1023);
    assert_int_equal(rs_cpuset_next(&s, 1024), -1);
    rs_cpuset empty = {0};
    assert_string_equal(rs_cpulist_format(&empty, buf, sizeof(buf)), "");
    assert_true(rs_cpuset_empty(&empty));
    /* A too-small buffer ends at a whole item, never half a number. */
    assert_int_equal(rs_cpulist_parse("0-7,16-23", &s, &err), 0);
    assert_string_equal(rs_cpulist_format(&s, buf, 7), "0-7");
}

static void test_cpulist_errors(void **state) {
    (void)state;
    rs_cpuset s;
    rs_err err = {0};
    assert_int_equal(rs_cpulist_parse("", &s, &err), -1);
    assert_string_equal(err.msg, "empty cpu list");
    assert_int_equal(rs_cpulist_parse("7-3", &s, &err), -1);
    assert_string_equal(err.msg, "range 7-3 is reversed");
    assert_int_equal(rs_cpulist_parse("0-2048", &s, &err), -1);
    assert_string_equal(err.msg, "cpu 2048 is above the limit 1023");
    assert_int_equal(rs_cpulist_parse("0,x", &s, &err), -1);
    assert_string_equal(err.msg, "'x' is not a cpu number");
    assert_int_equal(rs_cpulist_parse("0;1", &s, &err), -1);
    assert_string_equal(err.msg, "unexpected ';' (expected ',' or '-')");
    assert_int_equal(rs_cpulist_parse("1,", &s, &err), -1);
    assert_string_equal(err.msg, "expected a cpu number at 'end'");
    assert_int_equal(rs_cpulist_parse("-1", &s, &err), -1);
    assert_string_equal(err.msg, "expected a cpu number at '-1'");
}

static void test_cpuset_ops(void **state) {
    (void)state;
    rs_cpuset a, b;
    rs_err err = {0};
    assert_int_equal(rs_cpulist_parse("0-3", &a, &err), 0);
    assert_int_equal(rs_cpulist_parse("2-5", &b, &err), 0);
    assert_true(rs_cpuset_intersects(&a, &b));
    assert_false(rs_cpuset_subset(&a, &b));
    assert_int_equal(rs_cpuset_first_not_in(&a, &b), 0);
    rs_cpuset c = a;
    rs_cpuset_and(&c, &b);
    assert_int_equal(rs_cpuset_count(&c), 2);
    assert_true(rs_cpuset_subset(&c, &a));
    rs_cpuset_or(&c, &b);
    assert_int_equal(rs_cpuset_count(&c), 4);
    rs_cpuset_andnot(&c, &a);
    assert_int_equal(rs_cpuset_next(&c, 0), 4);
    rs_cpuset_clr(&c, 4);
    rs_cpuset_clr(&c, 5);
    assert_true(rs_cpuset_empty(&c));
    rs_cpuset_set(&c, 5000); /* out of range: ignored, not a crash */
    assert_false(rs_cpuset_has(&c, 5000));
}

/* Parses `text` and returns the topology section's parse result. */
static int parse_topology(const char *text, rs_topo_config *cfg, rs_err *err) {
    rs_cfg *doc = rs_cfg_load_string(text, "t.yaml", err);
    assert_non_null(doc);
    rs_cfg_node root = rs_cfg_root(doc);
    rs_cfg_node section = rs_cfg_get(&root, "topology");
    int rc = rs_topo_config_parse(&section, cfg, err);
    rs_cfg_free(doc);
    return rc;
}

static void test_config_defaults_and_fields(void **state) {
    (void)state;
    rs_topo_config *cfg = calloc(1, sizeof(*cfg));
    rs_err err = {0};
    assert_int_equal(parse_topology("server: {}\n", cfg, &err), 0);
    assert_false(cfg->cpus.set || cfg->io_cores.set || cfg->worker_cores.set ||
                 cfg->reserve_cores.set);
    assert_int_equal(cfg->numa, RS_TOPO_NUMA_LOCAL);
    assert_int_equal(cfg->smt, RS_TOPO_SMT_AVOID);
    assert_false(cfg->no_pin);
    assert_false(cfg->io_sched_batch);
    assert_int_equal(cfg->placement_count, 0);
    assert_int_equal(parse_topology("topology:\n", cfg, &err), 0);
    assert_int_equal(parse_topology("topology: {pin: off}\n", cfg, &err), 0);
    assert_true(cfg->no_pin);
    assert_false(cfg->io_sched_batch);
    assert_int_equal(parse_topology("topology: {io_sched: batch}\n", cfg, &err), 0);
    assert_true(cfg->io_sched_batch);
    assert_false(cfg->no_pin);
    assert_int_equal(parse_topology("topology: {io_sched: normal}\n", cfg, &err), 0);
    assert_false(cfg->io_sched_batch);
    assert_int_equal(parse_topology("topology:\n"
                                    "  cpus: \"0-7,16-23\"\n"
                                    "  reserve_cores: 0\n"
                                    "  io_cores: 1-2\n"
                                    "  worker_cores: \"3-7\"\n"
                                    "  numa: node:1\n"
                                    "  smt: share\n"
                                    "  placement:\n"
                                    "    resnet: {device: gpu, gpus: [3, 1], gpu_memory_mb: 8000, "
                                    "numa: 1, instances: 2}\n"
                                    "    bert:\n"
                                    "    tiny: {numa: auto}\n",
                                    cfg, &err),
                     0);
    assert_true(cfg->cpus.set);
    assert_int_equal(rs_cpuset_count(&cfg->cpus.cpus), 16);
    assert_string_equal(cfg->io_cores.text, "1-2");
    assert_string_equal(cfg->io_cores.origin, "t.yaml:4: topology.io_cores");
    assert_true(rs_cpuset_has(&cfg->reserve_cores.cpus, 0));
    assert_int_equal(rs_cpuset_count(&cfg->worker_cores.cpus), 5);
    assert_int_equal(cfg->numa, RS_TOPO_NUMA_NODE);
    assert_int_equal(cfg->numa_node, 1);
    assert_int_equal(cfg->smt, RS_TOPO_SMT_SHARE);
    assert_false(cfg->no_pin);
    assert_int_equal(cfg->placement_count, 3);
    const rs_plan_model *r = &cfg->placement[0];
    assert_string_equal(r->name, "resnet");
    assert_int_equal(r->device, RS_PLAN_DEVICE_GPU);
    assert_int_equal(r->gpu_count, 2);
    assert_int_equal(r->gpus[0], 3);
    assert_int_equal(r->gpus[1], 1);
    assert_int_equal(r->gpu_memory_mb, 8000);
    assert_int_equal(r->numa, 1);
    assert_int_equal(r->instances, 2);
    assert_string_equal(r->origin, "t.yaml:9: topology.placement.resnet");
    const rs_plan_model *b = &cfg->placement[1];
    assert_string_equal(b->name, "bert");
    assert_int_equal(b->device, RS_PLAN_DEVICE_CPU);
    assert_int_equal(b->numa, RS_PLAN_NUMA_AUTO);
    assert_int_equal(b->instances, 1);
    assert_int_equal(cfg->placement[2].numa, RS_PLAN_NUMA_AUTO);
    assert_int_equal(parse_topology("topology: {numa: interleave}\n", cfg, &err), 0);
    assert_int_equal(cfg->numa, RS_TOPO_NUMA_INTERLEAVE);
    free(cfg);
}

typedef struct bad_case {
    const char *yaml;
    const char *msg;
} bad_case;

static void test_config_refusals(void **state) {
    (void)state;
    static const bad_case cases[] = {
        {"topology: {cpu: 1}\n",
         "t.yaml:1: topology.cpu: unknown field (allowed: cpus, reserve_cores, io_cores, "
         "worker_cores, numa, smt, pin, io_sched, placement)"},
        {"topology: {pin: sometimes}\n",
         "t.yaml:1: topology.pin: 'sometimes': expected true/false (or on/off, yes/no)"},
        {"topology: {cpus: \"0-\"}\n",
         "t.yaml:1: topology.cpus: '0-': expected a cpu number at 'end'"},
        {"topology: {io_cores: \"3-1\"}\n",
         "t.yaml:1: topology.io_cores: '3-1': range 3-1 is reversed"},
        {"topology: {worker_cores: \"a\"}\n",
         "t.yaml:1: topology.worker_cores: 'a': 'a' is not a cpu number"},
        {"topology: {reserve_cores: \"99999\"}\n",
         "t.yaml:1: topology.reserve_cores: '99999': cpu 99999 is above the limit 1023"},
        {"topology: {cpus: [0, 1]}\n",
         "t.yaml:1: topology.cpus: expected a cpu list such as \"0-3,8\""},
        {"topology: {numa: remote}\n",
         "t.yaml:1: topology.numa: 'remote': expected local, interleave or node:N"},
        {"topology: {numa: \"node:\"}\n",
         "t.yaml:1: topology.numa: 'node:': expected local, interleave or node:N"},
        {"topology: {numa: \"node:64\"}\n",
         "t.yaml:1: topology.numa: 'node:64': NUMA node above the limit 63"},
        {"topology: {smt: maybe}\n",
         "t.yaml:1: topology.smt: 'maybe': expected one of avoid|share"},
        {"topology: {io_sched: fifo}\n",
         "t.yaml:1: topology.io_sched: 'fifo': expected one of normal|batch"},
        {"topology: [1]\n", "t.yaml:1: topology: expected a mapping"},
        {"topology: {placement: [a]}\n",
         "t.yaml:1: topology.placement: expected a mapping of model name to placement"},
        {"topology:\n  placement:\n    m: {device: tpu}\n",
         "t.yaml:3: topology.placement.m.device: 'tpu': expected one of cpu|gpu"},
        {"topology:\n  placement:\n    m: {device: gpu, gpus: 3}\n",
         "t.yaml:3: topology.placement.m.gpus: '3': expected a list of GPU ids such as [0, 1]"},
        {"topology:\n  placement:\n    m: {device: gpu, gpus: [-1]}\n",
         "t.yaml:3: topology.placement.m.gpus[0]: '-1': expected a GPU id 0..15"},
        {"topology:\n  placement:\n    m: {device: gpu, gpus: [1, 1]}\n",
         "t.yaml:3: topology.placement.m.gpus[1]: '1': GPU listed twice"},
        {"topology:\n  placement:\n    m: {gpus: [0]}\n",
         "t.yaml:3: topology.placement.m.gpus: '0': GPUs listed but device is cpu (set device: "
         "gpu)"},
        {"topology:\n  placement:\n    m: {gpu_memory_mb: 10}\n",
         "t.yaml:3: topology.placement.m.gpu_memory_mb: '10': gpu_memory_mb set but device is "
         "cpu (set device: gpu)"},
        {"topology:\n  placement:\n    m: {instances: 0}\n",
         "t.yaml:3: topology.placement.m.instances: '0': out of range [1, 256]"},
        {"topology:\n  placement:\n    m: {numa: near}\n",
         "t.yaml:3: topology.placement.m.numa: 'near': expected auto or a NUMA node number"},
        {"topology:\n  placement:\n    m: {numa: 64}\n",
         "t.yaml:3: topology.placement.m.numa: '64': out of range [0, 63]"},
        {"topology:\n  placement:\n    m: {shards: 2}\n",
         "t.yaml:3: topology.placement.m.shards: unknown field (allowed: device, gpus, "
         "gpu_memory_mb, numa, instances)"},
        {"topology:\n  placement:\n    m: {}\n    m: {}\n",
         "t.yaml:4: topology.placement.m: model 'm' listed twice"},
    };
    rs_topo_config *cfg = calloc(1, sizeof(*cfg));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rs_err err = {0};
        if (parse_topology(cases[i].yaml, cfg, &err) != -1 || strcmp(err.msg, cases[i].msg) != 0) {
            print_error("case %zu: %s\n got: %s\nwant: %s\n", i, cases[i].yaml, err.msg,
                        cases[i].msg);
            fail();
        }
    }
    free(cfg);
}

static void test_model_parse_standalone(void **state) {
    (void)state;
    /* The model registry calls this with a model.yaml's placement node. */
    rs_err err = {0};
    rs_cfg *doc = rs_cfg_load_string("name: digits\nplacement: {device: gpu, instances: 3}\n",
                                     "models/digits/1/model.yaml", &err);
    assert_non_null(doc);
    rs_cfg_node root = rs_cfg_root(doc);
    rs_cfg_node p = rs_cfg_get(&root, "placement");
    rs_plan_model m;
    assert_int_equal(rs_plan_model_parse(&p, "digits", &m, &err), 0);
    assert_int_equal(m.device, RS_PLAN_DEVICE_GPU);
    assert_int_equal(m.gpu_count, 0);
    assert_int_equal(m.instances, 3);
    assert_string_equal(m.origin, "models/digits/1/model.yaml:2: placement");
    rs_cfg_node absent = rs_cfg_get(&root, "nothing");
    assert_int_equal(rs_plan_model_parse(&absent, "digits", &m, &err), 0);
    assert_int_equal(m.instances, 1);
    assert_string_equal(m.origin, "");
    char long_name[100];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(rs_plan_model_parse(&p, long_name, &m, &err), -1);
    assert_non_null(strstr(err.msg, "longer than 64 bytes"));
    rs_cfg_free(doc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpulist_parse_format),
        cmocka_unit_test(test_cpulist_errors),
        cmocka_unit_test(test_cpuset_ops),
        cmocka_unit_test(test_config_defaults_and_fields),
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_model_parse_standalone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

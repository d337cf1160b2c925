/* Tests for topo/plan: the placement plan on the three test hosts
 * (the XML files in tests/data/topo). Each rule of plan.h has a test, and every refusal
 * is checked with its exact one-line message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h, stddef.h */

#include "topo/plan.h"
#include "topo/topo.h"

typedef struct fx {
    rs_topo *topo;
    const rs_topo_info *info;
    rs_topo_config cfg;
    rs_plan plan;
    rs_err err;
} fx;

static int setup(void **state) {
    *state = calloc(1, sizeof(fx));
    return *state ? 0 : -1;
}

static int teardown(void **state) {
    fx *f = *state;
    rs_topo_free(f->topo);
    free(f);
    return 0;
}

static void load_host(fx *f, const char *xml) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", RS_TOPO_DATA, xml);
    rs_topo_free(f->topo);
    f->topo = rs_topo_load_xml(path, &f->err);
    assert_non_null(f->topo);
    f->info = rs_topo_get_info(f->topo);
}

static void parse(fx *f, const char *yaml) {
    rs_cfg *doc = rs_cfg_load_string(yaml, "t.yaml", &f->err);
    assert_non_null(doc);
    rs_cfg_node root = rs_cfg_root(doc);
    rs_cfg_node section = rs_cfg_get(&root, "topology");
    int rc = rs_topo_config_parse(&section, &f->cfg, &f->err);
    if (rc != 0) print_error("%s\n", f->err.msg);
    assert_int_equal(rc, 0);
    rs_cfg_free(doc);
}

/* Loads host, parses yaml and plans the models the config places. */
static int build(fx *f, const char *xml, const char *yaml) {
    if (xml) load_host(f, xml);
    parse(f, yaml);
    return rs_plan_build(f->info, &f->cfg, f->cfg.placement, (size_t)f->cfg.placement_count,
                         &f->plan, &f->err);
}

static void build_ok(fx *f, const char *xml, const char *yaml) {
    int rc = build(f, xml, yaml);
    if (rc != 0) print_error("%s\n", f->err.msg);
    assert_int_equal(rc, 0);
}

static void build_refused(fx *f, const char *xml, const char *yaml, const char *msg) {
    assert_int_equal(build(f, xml, yaml), -1);
    if (strcmp(f->err.msg, msg) != 0) {
        print_error(" got: %s\nwant: %s\n", f->err.msg, msg);
        fail();
    }
    assert_int_equal(f->plan.entry_count, 0); /* a refused plan is empty */
}

static const rs_topo_numa *node(fx *f, int os) {
    const rs_topo_numa *n = rs_topo_info_numa(f->info, os);
    assert_non_null(n);
    return n;
}

static void cpus_are(const rs_cpuset *s, const char *want) {
    char buf[RS_CPULIST_BYTES];
    rs_cpulist_format(s, buf, sizeof(buf));
    if (strcmp(buf, want) != 0) {
        print_error(" got: %s\nwant: %s\n", buf, want);
        fail();
    }
}

static int count_role(const rs_plan *p, rs_plan_role role) {
    int n = 0;
    for (int i = 0; i < p->entry_count; i++)
        n += p->entries[i].role == role;
    return n;
}

#define find rs_plan_find

/* No two entries pinned to the same CPU, unless the plan says it shares. */
static void assert_disjoint(const rs_plan *p) {
    for (int i = 0; i < p->entry_count; i++)
        for (int j = i + 1; j < p->entry_count; j++)
            assert_false(rs_cpuset_intersects(&p->entries[i].cpus, &p->entries[j].cpus));
}

/* smt: avoid — no physical core has both an io CPU and a worker CPU. */
static void assert_no_smt_sharing(fx *f) {
    for (int c = 0; c < f->info->core_count; c++) {
        const rs_cpuset *core = &f->info->cores[c].cpus;
        assert_false(rs_cpuset_intersects(core, &f->plan.io) &&
                     rs_cpuset_intersects(core, &f->plan.worker));
    }
}

/* ---- GPU locality ---- */

static void test_gpu3_model_on_gpu3_node(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml",
             "topology:\n  placement:\n    resnet: {device: gpu, gpus: [3], gpu_memory_mb: 8000}\n"
             "    bert: {instances: 2}\n");
    const rs_plan_entry *w = find(&f->plan, RS_PLAN_WORKER, "resnet", 0);
    assert_non_null(w);
    assert_int_equal(w->gpu, 3);
    assert_int_equal(w->gpu_memory_mb, 8000);
    assert_int_equal(w->numa, 1);
    assert_int_equal(w->mem_node, 1);
    assert_int_equal(w->core_count, 1); /* one core drives the GPU */
    assert_true(rs_cpuset_subset(&w->cpus, &node(f, 1)->cpus));
    assert_true(rs_cpuset_subset(&w->cpus, &f->info->gpus[3].cpus));
    const rs_plan_entry *pre = find(&f->plan, RS_PLAN_PREPROCESS, "resnet", 0);
    assert_non_null(pre);
    assert_int_equal(pre->gpu, 3);
    assert_true(pre->core_count >= 1);
    assert_true(rs_cpuset_subset(&pre->cpus, &node(f, 1)->cpus));
    assert_disjoint(&f->plan);
    assert_no_smt_sharing(f);
}

static void test_gpu_instances_follow_their_gpus(void **state) {
    fx *f = *state;
    /* No gpus listed: instances take GPUs 0..3 round-robin, each on its node. */
    build_ok(f, "2s-2numa-smt-4gpu.xml",
             "topology:\n  placement:\n    llm: {device: gpu, instances: 4}\n");
    for (int i = 0; i < 4; i++) {
        const rs_plan_entry *w = find(&f->plan, RS_PLAN_WORKER, "llm", i);
        assert_non_null(w);
        assert_int_equal(w->gpu, i);
        assert_int_equal(w->numa, f->info->gpus[i].numa);
        assert_true(rs_cpuset_subset(&w->cpus, &node(f, w->numa)->cpus));
    }
    assert_disjoint(&f->plan);
    /* gpus [2, 1]: instance i uses gpus[i % 2]. */
    build_ok(f, NULL,
             "topology:\n  placement:\n    llm: {device: gpu, gpus: [2, 1], instances: 3}\n");
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "llm", 0)->gpu, 2);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "llm", 0)->numa, 1);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "llm", 1)->gpu, 1);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "llm", 1)->numa, 0);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "llm", 2)->gpu, 2);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "llm", 2)->numa, 1);
}

static void test_nps4_gpu_locality(void **state) {
    fx *f = *state;
    build_ok(
        f, "1s-4numa-nps4.xml",
        "topology:\n  placement:\n    det: {device: gpu, gpus: [1]}\n    cls: {instances: 3}\n");
    const rs_plan_entry *w = find(&f->plan, RS_PLAN_WORKER, "det", 0);
    assert_int_equal(w->gpu, 1);
    assert_int_equal(w->numa, 3);
    assert_true(rs_cpuset_subset(&w->cpus, &node(f, 3)->cpus));
    /* CPU instances avoid the node the GPU model already uses. */
    for (int i = 0; i < 3; i++)
        assert_int_not_equal(find(&f->plan, RS_PLAN_WORKER, "cls", i)->numa, 3);
    assert_disjoint(&f->plan);
}

static void test_gpu_node_without_worker_cores(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml",
             "topology:\n  io_cores: \"0-1\"\n  worker_cores: \"2-7,18-23\"\n  placement:\n"
             "    resnet: {device: gpu, gpus: [3]}\n");
    const rs_plan_entry *w = find(&f->plan, RS_PLAN_WORKER, "resnet", 0);
    assert_int_equal(w->gpu, 3);
    assert_int_equal(w->numa, 0); /* the only worker cores: a compromise, noted */
    assert_int_equal(f->plan.note_count, 1);
    assert_string_equal(f->plan.notes[0],
                        "resnet instance 0: GPU 3's node 1 has no worker cores; using node 0");
}

/* ---- SMT ---- */

static void test_smt_avoid(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml", "topology:\n  placement:\n    bert: {instances: 4}\n");
    assert_int_equal(f->plan.smt, RS_TOPO_SMT_AVOID);
    assert_no_smt_sharing(f);
    /* The io cores' siblings stay idle. */
    cpus_are(&f->plan.io, "0-1,8-9");
    assert_false(rs_cpuset_intersects(&f->plan.worker, &f->plan.io));
    assert_false(rs_cpuset_has(&f->plan.worker, 16) || rs_cpuset_has(&f->plan.worker, 25));
    assert_disjoint(&f->plan);
    /* The same on NPS4 with explicit sets on distinct cores. */
    build_ok(f, "1s-4numa-nps4.xml",
             "topology:\n  io_cores: \"0,4,8,12\"\n  worker_cores: \"1-3,5-7,17-19,21-23\"\n"
             "  placement:\n    m: {instances: 2}\n");
    assert_no_smt_sharing(f);
}

static void test_smt_share(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml",
             "topology:\n  smt: share\n  placement:\n    bert: {instances: 2}\n");
    cpus_are(&f->plan.io, "0-1,8-9");
    /* The io cores' siblings (16, 17, 24, 25) now work. */
    assert_true(rs_cpuset_has(&f->plan.worker, 16));
    assert_true(rs_cpuset_has(&f->plan.worker, 25));
    assert_false(rs_cpuset_intersects(&f->plan.worker, &f->plan.io));
    /* With share, io and worker sets may be siblings. */
    build_ok(f, NULL,
             "topology:\n  smt: share\n  io_cores: \"0-3\"\n  worker_cores: \"16-19\"\n"
             "  placement:\n    bert: {}\n");
    cpus_are(&find(&f->plan, RS_PLAN_WORKER, "bert", 0)->cpus, "16-19");
    /* Listing both siblings for io keeps the second one out of the worker pool. */
    build_ok(f, NULL,
             "topology:\n  smt: share\n  io_cores: \"0,16\"\n  placement:\n    bert: {}\n");
    cpus_are(&f->plan.io, "0");
    assert_false(rs_cpuset_has(&f->plan.worker, 16));
    assert_true(rs_cpuset_has(&f->plan.worker, 17));
}

/* ---- io loops ---- */

static void test_one_io_loop_per_physical_core(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml", "topology: {}\n");
    assert_int_equal(f->plan.io_count, 16);
    assert_int_equal(count_role(&f->plan, RS_PLAN_IO), 16);
    for (int i = 0; i < 16; i++) {
        const rs_plan_entry *e = find(&f->plan, RS_PLAN_IO, NULL, i);
        assert_non_null(e);
        assert_int_equal(rs_cpuset_count(&e->cpus), 1);
        assert_true(rs_cpuset_has(&e->cpus, i)); /* first PU of core i */
        assert_int_equal(e->numa, i < 8 ? 0 : 1);
        assert_int_equal(e->mem_node, e->numa);
        assert_int_equal(e->gpu, -1);
    }
    assert_disjoint(&f->plan);
    /* Both siblings listed: still one loop per core. */
    build_ok(f, NULL, "topology:\n  io_cores: \"0-3,16-19\"\n");
    assert_int_equal(f->plan.io_count, 4);
    cpus_are(&f->plan.io, "0-3");
    build_ok(f, "2core-box.xml", "topology: {}\n");
    assert_int_equal(f->plan.io_count, 2);
    cpus_are(&f->plan.io, "0-1");
    build_ok(f, "1s-4numa-nps4.xml", "topology: {}\n");
    assert_int_equal(f->plan.io_count, 16);
}

static void test_default_split_with_models(void **state) {
    fx *f = *state;
    /* A quarter of the cores run io loops, spread over the nodes. */
    build_ok(f, "1s-4numa-nps4.xml", "topology:\n  placement:\n    m: {}\n");
    assert_int_equal(f->plan.io_count, 4);
    cpus_are(&f->plan.io, "0,4,8,12");
    /* The 2-core box: one io core, one worker core. */
    build_ok(f, "2core-box.xml", "topology:\n  placement:\n    m: {}\n");
    cpus_are(&f->plan.io, "0");
    cpus_are(&find(&f->plan, RS_PLAN_WORKER, "m", 0)->cpus, "1");
    assert_int_equal(f->plan.note_count, 0);
}

/* ---- reserve_cores, cpus ---- */

static void test_reserve_cores(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml",
             "topology:\n  reserve_cores: \"0,16,8,24\"\n  placement:\n    m: {instances: 2}\n");
    cpus_are(&f->plan.reserved, "0,8,16,24");
    assert_false(rs_cpuset_intersects(&f->plan.usable, &f->plan.reserved));
    for (int i = 0; i < f->plan.entry_count; i++)
        assert_false(rs_cpuset_intersects(&f->plan.entries[i].cpus, &f->plan.reserved));
    build_ok(f, NULL, "topology:\n  reserve_cores: \"0-3,16-19\"\n");
    assert_int_equal(f->plan.io_count, 12);
    assert_false(rs_cpuset_intersects(&f->plan.io, &f->plan.reserved));
    /* The 2-core box with core 0 reserved: everything shares core 1, noted. */
    build_ok(f, "2core-box.xml", "topology:\n  reserve_cores: \"0\"\n  placement:\n    m: {}\n");
    cpus_are(&f->plan.io, "1");
    cpus_are(&find(&f->plan, RS_PLAN_WORKER, "m", 0)->cpus, "1");
    assert_int_equal(f->plan.note_count, 1);
    assert_string_equal(f->plan.notes[0],
                        "only one usable core: io loops and worker shards share it");
}

static void test_cpus_and_allowed(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml", "topology:\n  cpus: \"8-15\"\n");
    cpus_are(&f->plan.usable, "8-15");
    assert_int_equal(f->plan.io_count, 8);
    /* A taskset/cgroup narrowing: the default plan stays inside it. */
    rs_cpuset allowed;
    assert_int_equal(rs_cpulist_parse("4-11", &allowed, &f->err), 0);
    rs_topo_restrict_allowed(f->topo, &allowed);
    build_ok(f, NULL, "topology:\n  placement:\n    m: {instances: 2}\n");
    cpus_are(&f->plan.usable, "4-11");
    for (int i = 0; i < f->plan.entry_count; i++)
        assert_true(rs_cpuset_subset(&f->plan.entries[i].cpus, &allowed));
}

/* ---- CPU models spread over nodes ---- */

static void test_cpu_instances_spread(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml", "topology:\n  placement:\n    bert: {instances: 2}\n");
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "bert", 0)->numa, 0);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "bert", 1)->numa, 1);
    for (int i = 0; i < 2; i++) {
        const rs_plan_entry *w = find(&f->plan, RS_PLAN_WORKER, "bert", i);
        assert_true(rs_cpuset_subset(&w->cpus, &node(f, w->numa)->cpus));
        assert_int_equal(w->mem_node, w->numa);
        assert_int_equal(w->core_count, 6); /* 8 cores per node, 2 run io loops */
    }
    build_ok(f, "1s-4numa-nps4.xml", "topology:\n  placement:\n    bert: {instances: 8}\n");
    int per_node[4] = {0};
    for (int i = 0; i < 8; i++)
        per_node[find(&f->plan, RS_PLAN_WORKER, "bert", i)->numa]++;
    for (int n = 0; n < 4; n++)
        assert_int_equal(per_node[n], 2);
    assert_disjoint(&f->plan);
}

static void test_more_instances_than_cores(void **state) {
    fx *f = *state;
    build_ok(f, "2core-box.xml", "topology:\n  placement:\n    m: {instances: 3}\n");
    for (int i = 0; i < 3; i++)
        cpus_are(&find(&f->plan, RS_PLAN_WORKER, "m", i)->cpus, "1");
    assert_int_equal(f->plan.note_count, 1);
    assert_string_equal(f->plan.notes[0], "node 0: 3 instances share 1 worker cores");
}

/* ---- overrides ---- */

static void test_overrides(void **state) {
    fx *f = *state;
    build_ok(f, "2s-2numa-smt-4gpu.xml",
             "topology:\n  io_cores: \"0-1\"\n  worker_cores: \"2-7,18-23\"\n  numa: node:1\n"
             "  placement:\n    m: {instances: 2}\n");
    cpus_are(&f->plan.io, "0-1");
    cpus_are(&f->plan.worker, "2-7,18-23");
    for (int i = 0; i < f->plan.entry_count; i++)
        assert_int_equal(f->plan.entries[i].mem_node, 1);
    build_ok(f, NULL, "topology:\n  numa: interleave\n  placement:\n    m: {}\n");
    for (int i = 0; i < f->plan.entry_count; i++)
        assert_int_equal(f->plan.entries[i].mem_node, RS_PLAN_MEM_INTERLEAVE);
    /* Only worker_cores given: io loops on every other core. */
    build_ok(f, NULL, "topology:\n  worker_cores: \"4-15,20-31\"\n  placement:\n    m: {}\n");
    cpus_are(&f->plan.io, "0-3");
    /* placement numa forces the node of a CPU model (and of a GPU model). */
    build_ok(f, NULL,
             "topology:\n  placement:\n    m: {numa: 1, instances: 2}\n"
             "    g: {device: gpu, gpus: [0], numa: 1}\n");
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "m", 0)->numa, 1);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "m", 1)->numa, 1);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "g", 0)->numa, 1);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "g", 0)->gpu, 0);
}

static void test_config_placement_overrides_model(void **state) {
    fx *f = *state;
    /* Models as the registry gives them (model.yaml), then a per-host override. */
    rs_plan_model models[2];
    rs_plan_model_default(&models[0], "resnet");
    models[0].device = RS_PLAN_DEVICE_GPU;
    models[0].gpus[models[0].gpu_count++] = 0;
    rs_plan_model_default(&models[1], "bert");
    load_host(f, "2s-2numa-smt-4gpu.xml");
    parse(f, "topology: {}\n");
    assert_int_equal(rs_plan_build(f->info, &f->cfg, models, 2, &f->plan, &f->err), 0);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "resnet", 0)->gpu, 0);
    parse(f, "topology:\n  placement:\n    resnet: {device: gpu, gpus: [3]}\n");
    assert_int_equal(rs_plan_build(f->info, &f->cfg, models, 2, &f->plan, &f->err), 0);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "resnet", 0)->gpu, 3);
    assert_int_equal(find(&f->plan, RS_PLAN_WORKER, "resnet", 0)->numa, 1);
    assert_non_null(find(&f->plan, RS_PLAN_WORKER, "bert", 0));
    parse(f, "topology:\n  placement:\n    resnett: {}\n");
    assert_int_equal(rs_plan_build(f->info, &f->cfg, models, 2, &f->plan, &f->err), -1);
    assert_string_equal(f->err.msg, "t.yaml:3: topology.placement.resnett: 'resnett': no such "
                                    "model is loaded");
    /* A model without origin (built in code) is named by its name. */
    models[1].instances = 0;
    parse(f, "topology: {}\n");
    assert_int_equal(rs_plan_build(f->info, &f->cfg, models, 2, &f->plan, &f->err), -1);
    assert_string_equal(f->err.msg,
                        "model 'bert': placement.instances: '0': out of range [1, 256]");
}

static void test_plan_is_pure(void **state) {
    fx *f = *state;
    build_ok(
        f, "2s-2numa-smt-4gpu.xml",
        "topology:\n  placement:\n    a: {device: gpu, instances: 2}\n    b: {instances: 3}\n");
    rs_plan *again = calloc(1, sizeof(*again));
    assert_int_equal(rs_plan_build(f->info, &f->cfg, f->cfg.placement, 2, again, &f->err), 0);
    assert_memory_equal(again, &f->plan, sizeof(*again));
    free(again);
    char what[128];
    rs_plan_entry_describe(find(&f->plan, RS_PLAN_IO, NULL, 1), what, sizeof(what));
    assert_string_equal(what, "io loop 1");
    rs_plan_entry_describe(find(&f->plan, RS_PLAN_WORKER, "b", 2), what, sizeof(what));
    assert_string_equal(what, "worker shard of b instance 2");
    rs_plan_entry_describe(find(&f->plan, RS_PLAN_PREPROCESS, "a", 1), what, sizeof(what));
    assert_string_equal(what, "pre-processing of a instance 1");
    assert_string_equal(rs_plan_role_name(RS_PLAN_PREPROCESS), "preprocess");
}

/* ---- refusals: one line naming field, value and why ---- */

static void test_refusals(void **state) {
    fx *f = *state;
    const char *two_s = "2s-2numa-smt-4gpu.xml";
    build_refused(f, two_s, "topology:\n  io_cores: \"40\"\n",
                  "t.yaml:2: topology.io_cores: '40': cpu 40 does not exist (this host has cpus "
                  "0-31)");
    build_refused(f, two_s, "topology:\n  reserve_cores: \"0,32\"\n",
                  "t.yaml:2: topology.reserve_cores: '0,32': cpu 32 does not exist (this host "
                  "has cpus 0-31)");
    build_refused(f, two_s, "topology:\n  cpus: \"0-7\"\n  worker_cores: \"8\"\n",
                  "t.yaml:3: topology.worker_cores: '8': cpu 8 is not in topology.cpus '0-7'");
    build_refused(f, two_s, "topology:\n  reserve_cores: \"0\"\n  io_cores: \"0-1\"\n",
                  "t.yaml:3: topology.io_cores: '0-1': cpu 0 is reserved by "
                  "topology.reserve_cores '0'");
    build_refused(f, two_s, "topology:\n  io_cores: \"0-3\"\n  worker_cores: \"3-7\"\n",
                  "t.yaml:3: topology.worker_cores: '3-7': cpu 3 is also in topology.io_cores "
                  "'0-3'");
    build_refused(f, two_s, "topology:\n  io_cores: \"0-3\"\n  worker_cores: \"16-19\"\n",
                  "t.yaml:3: topology.worker_cores: '16-19': cpu 16 is an SMT sibling of io cpu 0 "
                  "(core 0) and smt is avoid");
    build_refused(f, two_s, "topology:\n  numa: node:5\n",
                  "t.yaml:2: topology.numa: 'node:5': NUMA node 5 does not exist (this host has "
                  "nodes 0,1)");
    build_refused(f, two_s, "topology:\n  placement:\n    r: {device: gpu, gpus: [0, 7]}\n",
                  "t.yaml:3: topology.placement.r.gpus: '7': GPU 7 does not exist (this host has "
                  "GPUs 0-3)");
    build_refused(f, two_s, "topology:\n  placement:\n    r: {numa: 9}\n",
                  "t.yaml:3: topology.placement.r.numa: '9': NUMA node 9 does not exist (this "
                  "host has nodes 0,1)");
    build_refused(f, two_s,
                  "topology:\n  io_cores: \"0\"\n  worker_cores: \"1-7\"\n  placement:\n"
                  "    r: {numa: 1}\n",
                  "t.yaml:5: topology.placement.r.numa: '1': no worker cpu on NUMA node 1 "
                  "(worker cpus: 1-7)");
    build_refused(f, two_s, "topology:\n  cpus: \"0-1\"\n  reserve_cores: \"0-1\"\n",
                  "t.yaml:3: topology.reserve_cores: '0-1': leaves no usable cpu (usable before: "
                  "0-1)");
    build_refused(f, two_s, "topology:\n  worker_cores: \"0-31\"\n  placement:\n    m: {}\n",
                  "t.yaml:2: topology.worker_cores: '0-31': leaves no core for io loops");
    build_refused(f, "2core-box.xml", "topology:\n  io_cores: \"0-1\"\n  placement:\n    m: {}\n",
                  "t.yaml:2: topology.io_cores: '0-1': leaves no cpu for worker shards");
    build_refused(f, "2core-box.xml", "topology:\n  placement:\n    m: {device: gpu}\n",
                  "t.yaml:3: topology.placement.m.device: 'gpu': this host has no NVIDIA GPU");
    build_refused(f, "1s-4numa-nps4.xml",
                  "topology:\n  placement:\n    m: {device: gpu, gpus: [2]}\n",
                  "t.yaml:3: topology.placement.m.gpus: '2': GPU 2 does not exist (this host has "
                  "GPUs 0-1)");
    /* A CPU that exists but is outside the allowed cpuset (taskset, cgroup). */
    rs_cpuset allowed;
    assert_int_equal(rs_cpulist_parse("0-15", &allowed, &f->err), 0);
    load_host(f, two_s);
    rs_topo_restrict_allowed(f->topo, &allowed);
    build_refused(f, NULL, "topology:\n  cpus: \"0-20\"\n",
                  "t.yaml:2: topology.cpus: '0-20': cpu 16 is outside the allowed cpuset 0-15");
    build_refused(f, NULL, "topology:\n  io_cores: \"31\"\n",
                  "t.yaml:2: topology.io_cores: '31': cpu 31 is outside the allowed cpuset 0-15");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gpu3_model_on_gpu3_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_instances_follow_their_gpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nps4_gpu_locality, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_node_without_worker_cores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smt_avoid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smt_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_io_loop_per_physical_core, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_split_with_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_cores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpus_and_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_instances_spread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_more_instances_than_cores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_placement_overrides_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_is_pure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

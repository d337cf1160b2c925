/* Tests for topo/topo: hwloc discovery of the three test hosts (XML), a
 * synthetic topology, this machine, and load errors. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h, stddef.h */

#include "topo/topo.h"

static rs_topo *load(const char *name) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", RS_TOPO_DATA, name);
    rs_err err = {0};
    rs_topo *t = rs_topo_load_xml(path, &err);
    if (!t) print_error("%s\n", err.msg);
    assert_non_null(t);
    return t;
}

static void cpus_are(const rs_cpuset *s, const char *want) {
    char buf[RS_CPULIST_BYTES];
    assert_string_equal(rs_cpulist_format(s, buf, sizeof(buf)), want);
}

static void test_two_socket_host(void **state) {
    (void)state;
    rs_topo *t = load("2s-2numa-smt-4gpu.xml");
    const rs_topo_info *i = rs_topo_get_info(t);
    assert_int_equal(i->source, RS_TOPO_SRC_XML);
    assert_false(rs_topo_is_this_system(t));
    assert_int_equal(i->package_count, 2);
    assert_int_equal(i->numa_count, 2);
    assert_int_equal(i->l3_count, 2);
    assert_int_equal(i->core_count, 16);
    assert_int_equal(i->smt_max, 2);
    cpus_are(&i->all, "0-31");
    cpus_are(&i->allowed, "0-31");
    cpus_are(&i->numa[0].cpus, "0-7,16-23");
    cpus_are(&i->numa[1].cpus, "8-15,24-31");
    assert_int_equal(i->numa[1].memory_bytes, UINT64_C(256) << 30);
    assert_int_equal(i->numa[1].package, 1);
    /* Linux numbering: core 9's siblings are 9 and 25. */
    const rs_topo_core *c = rs_topo_info_core_of_cpu(i, 25);
    assert_non_null(c);
    assert_int_equal(c->index, 9);
    assert_int_equal(c->pu_count, 2);
    assert_int_equal(c->pus[0], 9);
    assert_int_equal(c->pus[1], 25);
    assert_int_equal(c->numa, 1);
    assert_int_equal(c->package, 1);
    assert_int_equal(c->l3, 1);
    /* 4 GPUs in PCI bus order; the NVIDIA audio function and the NIC are not GPUs. */
    assert_int_equal(i->gpu_count, 4);
    assert_string_equal(i->gpus[0].busid, "0000:17:00.0");
    assert_string_equal(i->gpus[3].busid, "0000:ca:00.0");
    assert_int_equal(i->gpus[3].id, 3);
    assert_int_equal(i->gpus[3].vendor, 0x10de);
    assert_int_equal(i->gpus[3].device, 0x20b2);
    assert_string_equal(i->gpus[3].name, "GA100 [A100 SXM4 80GB]");
    assert_int_equal(i->gpus[0].numa, 0);
    assert_int_equal(i->gpus[1].numa, 0);
    assert_int_equal(i->gpus[2].numa, 1);
    assert_int_equal(i->gpus[3].numa, 1);
    cpus_are(&i->gpus[3].cpus, "8-15,24-31");
    assert_int_equal(rs_topo_gpu_numa(3, (void *)i), 1);
    assert_int_equal(rs_topo_gpu_numa(4, (void *)i), -1);
    assert_int_equal(rs_topo_gpu_numa(0, NULL), -1);
    assert_int_equal(rs_topo_info_numa_of_cpu(i, 30), 1);
    assert_null(rs_topo_info_numa(i, 2));
    assert_null(rs_topo_info_core_of_cpu(i, 32));
    rs_cpuset narrow;
    rs_err err = {0};
    assert_int_equal(rs_cpulist_parse("0-3,40", &narrow, &err), 0);
    rs_topo_restrict_allowed(t, &narrow);
    cpus_are(&i->allowed, "0-3");
    rs_topo_free(t);
}

static void test_nps4_host(void **state) {
    (void)state;
    rs_topo *t = load("1s-4numa-nps4.xml");
    const rs_topo_info *i = rs_topo_get_info(t);
    assert_int_equal(i->package_count, 1);
    assert_int_equal(i->numa_count, 4);
    assert_int_equal(i->l3_count, 8);
    assert_int_equal(i->core_count, 16);
    for (int n = 0; n < 4; n++) {
        assert_int_equal(i->numa[n].os_index, n);
        assert_int_equal(i->numa[n].package, 0);
        assert_int_equal(rs_cpuset_count(&i->numa[n].cpus), 8);
    }
    cpus_are(&i->numa[2].cpus, "8-11,24-27");
    assert_int_equal(i->gpu_count, 2);
    assert_int_equal(i->gpus[0].numa, 1);
    assert_int_equal(i->gpus[1].numa, 3);
    rs_topo_free(t);
}

static void test_two_core_box(void **state) {
    (void)state;
    rs_topo *t = load("2core-box.xml");
    const rs_topo_info *i = rs_topo_get_info(t);
    assert_int_equal(i->numa_count, 1);
    assert_int_equal(i->core_count, 2);
    assert_int_equal(i->smt_max, 1);
    assert_int_equal(i->gpu_count, 0);
    cpus_are(&i->all, "0-1");
    rs_topo_free(t);
}

static void test_synthetic(void **state) {
    (void)state;
    rs_err err = {0};
    rs_topo *t = rs_topo_load_synthetic("package:2 numa:1 core:8 pu:2", &err);
    assert_non_null(t);
    const rs_topo_info *i = rs_topo_get_info(t);
    assert_int_equal(i->source, RS_TOPO_SRC_SYNTHETIC);
    assert_string_equal(i->source_text, "package:2 numa:1 core:8 pu:2");
    assert_int_equal(i->numa_count, 2);
    assert_int_equal(i->core_count, 16);
    assert_int_equal(i->smt_max, 2);
    assert_int_equal(rs_cpuset_count(&i->allowed), 32);
    assert_int_equal(i->gpu_count, 0);
    rs_topo_free(t);
    /* Without Core objects every PU is a core. */
    t = rs_topo_load_synthetic("package:1 pu:3", &err);
    assert_non_null(t);
    assert_int_equal(rs_topo_get_info(t)->core_count, 3);
    rs_topo_free(t);
}

static void test_system(void **state) {
    (void)state;
    rs_err err = {0};
    rs_topo *t = rs_topo_load_system(&err);
    assert_non_null(t);
    const rs_topo_info *i = rs_topo_get_info(t);
    assert_true(rs_topo_is_this_system(t));
    assert_true(i->core_count >= 1);
    assert_true(i->numa_count >= 1);
    /* allowed = what sched_getaffinity says (no cgroup narrower here). */
    cpu_set_t mask;
    CPU_ZERO(&mask);
    assert_int_equal(sched_getaffinity(0, sizeof(mask), &mask), 0);
    assert_int_equal(rs_cpuset_count(&i->allowed), CPU_COUNT(&mask));
    for (int c = rs_cpuset_next(&i->allowed, 0); c >= 0; c = rs_cpuset_next(&i->allowed, c + 1))
        assert_true(CPU_ISSET(c, &mask));
    rs_topo_free(t);
}

static void test_load_errors(void **state) {
    (void)state;
    rs_err err = {0};
    assert_null(rs_topo_load_xml("/nonexistent/host.xml", &err));
    assert_non_null(strstr(err.msg, "--topology-xml"));
    assert_non_null(strstr(err.msg, "/nonexistent/host.xml"));
    assert_null(rs_topo_load_synthetic("bananas:3", &err));
    assert_string_equal(err.msg,
                        "--synthetic: 'bananas:3': not a valid hwloc synthetic description");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_socket_host), cmocka_unit_test(test_nps4_host),
        cmocka_unit_test(test_two_core_box),    cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_system),          cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for topo/bind on this machine: pinning a thread (and reading the
 * kernel's answer back), refusals that degrade instead of failing, the
 * NUMA-local allocator, and applying a plan entry. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h, stddef.h */

#include "topo/bind.h"

typedef struct pin_job {
    rs_cpuset want;
    int rc;
    rs_cpuset effective, kernel;
} pin_job;

/* Pins a fresh thread (the test's own thread keeps its affinity). */
static void *pin_thread(void *arg) {
    pin_job *j = arg;
    j->rc = rs_topo_bind_thread(NULL, &j->want, &j->effective);
    rs_topo_thread_affinity(&j->kernel);
    return NULL;
}

static void run_pin(pin_job *j) {
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pin_thread, j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_pin_each_allowed_cpu(void **state) {
    (void)state;
    rs_topo *sys = rs_topo_system();
    assert_non_null(sys);
    assert_true(rs_topo_is_this_system(sys));
    const rs_cpuset *allowed = &rs_topo_get_info(sys)->allowed;
    int pinned = 0;
    for (int c = rs_cpuset_next(allowed, 0); c >= 0; c = rs_cpuset_next(allowed, c + 1)) {
        pin_job j = {0};
        rs_cpuset_set(&j.want, c);
        run_pin(&j);
        assert_int_equal(j.rc, 0);
        assert_true(rs_cpuset_equal(&j.effective, &j.want));
        assert_true(rs_cpuset_equal(&j.kernel, &j.want));
        pinned++;
    }
    assert_true(pinned >= 1);
}

static void test_pin_refused_carries_on(void **state) {
    (void)state;
    rs_cpuset before;
    assert_int_equal(rs_topo_thread_affinity(&before), 0);
    pin_job j = {0};
    rs_cpuset_set(&j.want, RS_TOPO_MAX_CPUS - 1); /* no such CPU here */
    run_pin(&j);
    assert_int_equal(j.rc, -1);
    assert_true(rs_cpuset_equal(&j.effective, &before)); /* still runs where it ran */
    /* A topology that is not this machine never binds. */
    rs_err err = {0};
    rs_topo *synthetic = rs_topo_load_synthetic("package:1 core:2 pu:1", &err);
    assert_non_null(synthetic);
    rs_cpuset one = {0}, eff;
    rs_cpuset_set(&one, 0);
    assert_int_equal(rs_topo_bind_thread(synthetic, &one, &eff), -1);
    assert_true(rs_cpuset_equal(&eff, &before));
    assert_int_equal(rs_topo_bind_thread_memory(synthetic, 0), -1);
    rs_topo_free(synthetic);
}

static void test_alloc_local(void **state) {
    (void)state;
    const rs_topo_info *info = rs_topo_get_info(rs_topo_system());
    int node0 = info->numa[0].os_index;
    size_t bytes = (size_t)1 << 20;
    unsigned char *p = rs_topo_alloc_local(bytes, node0);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 4096, 0);
    for (size_t i = 0; i < bytes; i += 4096)
        assert_int_equal(p[i], 0); /* zero-filled */
    memset(p, 0xab, bytes);
    assert_int_equal(rs_topo_memory_node(p), node0);
    assert_int_equal(rs_topo_memory_node(p + bytes - 1), node0);
    rs_topo_free_local(p, bytes);
    /* Interleaved and unknown-node memory is still memory. */
    p = rs_topo_alloc_local(3 * 4096 + 1, RS_PLAN_MEM_INTERLEAVE);
    assert_non_null(p);
    p[3 * 4096] = 1;
    rs_topo_free_local(p, 3 * 4096 + 1);
    p = rs_topo_alloc_local(4096, RS_TOPO_MAX_NUMA - 1);
    assert_non_null(p);
    p[0] = 1;
    rs_topo_free_local(p, 4096);
    rs_topo_free_local(NULL, 10);
}

static void test_thread_memory_policy(void **state) {
    (void)state;
    const rs_topo_info *info = rs_topo_get_info(rs_topo_system());
    assert_int_equal(rs_topo_bind_thread_memory(NULL, info->numa[0].os_index), 0);
    assert_int_equal(rs_topo_bind_thread_memory(NULL, 42), -1);
    assert_int_equal(rs_topo_bind_thread_memory(NULL, RS_PLAN_MEM_INTERLEAVE), 0);
}

typedef struct apply_job {
    const rs_plan_entry *entry;
    rs_topo_binding binding;
    int policy; /* the kernel's scheduling policy for the thread afterwards */
} apply_job;

static void *apply_thread(void *arg) {
    apply_job *j = arg;
    rs_plan_apply_entry(NULL, j->entry, &j->binding);
    j->policy = sched_getscheduler(0);
    return NULL;
}

static int last_policy; /* of the thread apply_in_thread ran last */

/* Applies an entry in a fresh thread (as an io or worker thread would) and
 * returns what it got. */
static rs_topo_binding apply_in_thread(const rs_plan_entry *entry) {
    apply_job j = {.entry = entry};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, apply_thread, &j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    last_policy = j.policy;
    return j.binding;
}

static void test_apply_plan_entries(void **state) {
    (void)state;
    rs_topo *sys = rs_topo_system();
    rs_topo_config cfg;
    rs_topo_config_default(&cfg);
    rs_plan_model m;
    rs_plan_model_default(&m, "m");
    rs_plan *plan = calloc(1, sizeof(*plan));
    rs_err err = {0};
    assert_int_equal(rs_plan_build(rs_topo_get_info(sys), &cfg, &m, 1, plan, &err), 0);
    assert_true(plan->entry_count >= 2); /* an io loop and a worker shard */
    for (int i = 0; i < plan->entry_count; i++) {
        rs_topo_binding b = apply_in_thread(&plan->entries[i]);
        assert_true(b.pinned);
        assert_true(b.memory_bound);
        assert_true(rs_cpuset_equal(&b.effective, &plan->entries[i].cpus));
        assert_false(b.sched_batch);
        assert_int_equal(last_policy, SCHED_OTHER);
    }
    /* topology.io_sched: batch: io loop threads run as SCHED_BATCH, the
     * worker shards keep SCHED_OTHER */
    cfg.io_sched_batch = true;
    assert_int_equal(rs_plan_build(rs_topo_get_info(sys), &cfg, &m, 1, plan, &err), 0);
    int batch_entries = 0;
    for (int i = 0; i < plan->entry_count; i++) {
        bool io = plan->entries[i].role == RS_PLAN_IO;
        assert_int_equal(plan->entries[i].sched_batch, io);
        rs_topo_binding b = apply_in_thread(&plan->entries[i]);
        assert_true(b.pinned);
        assert_int_equal(b.sched_batch, io);
        assert_int_equal(last_policy, io ? SCHED_BATCH : SCHED_OTHER);
        batch_entries += io;
    }
    assert_true(batch_entries >= 1);
    cfg.io_sched_batch = false;
    /* topology.pin: false: the same plan, no thread bound to its CPUs */
    rs_cpuset allowed;
    assert_int_equal(rs_topo_thread_affinity(&allowed), 0);
    cfg.no_pin = true;
    assert_int_equal(rs_plan_build(rs_topo_get_info(sys), &cfg, &m, 1, plan, &err), 0);
    for (int i = 0; i < plan->entry_count; i++) {
        assert_true(plan->entries[i].no_pin);
        rs_topo_binding b = apply_in_thread(&plan->entries[i]);
        assert_false(b.pinned);
        assert_true(b.memory_bound);
        assert_true(rs_cpuset_equal(&b.effective, &allowed));
    }
    free(plan);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_each_allowed_cpu), cmocka_unit_test(test_pin_refused_carries_on),
        cmocka_unit_test(test_alloc_local),          cmocka_unit_test(test_thread_memory_policy),
        cmocka_unit_test(test_apply_plan_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

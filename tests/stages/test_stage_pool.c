/* Tests for workers/stages/pool: `ringserve stage` processes over shm rings.
 * The same pipelines run inline and in the pool give identical bytes; a
 * compile error comes back verbatim; a stage error comes back with its
 * status; a killed or hung process fails its batch with RS_E_BACKEND and is
 * respawned (pipelines reloaded, pinning kept) on next use; an oversize
 * batch is refused.
 * Needs RINGSERVE_BIN (set by tests/meson.build); argv[1]: stage data dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "io/frame.h"
#include "workers/stages/pool.h"
#include "workers/stages/stage.h"

static const char *data_dir = ".";
static rs_stage_pool *pool;
static rs_stage_arena arena_a, arena_b;

static rs_stage_spec spec(const char *name, ...) {
    rs_stage_spec s;
    assert_int_equal(rs_stage_spec_init(&s, name), 0);
    va_list ap;
    va_start(ap, name);
    for (const char *k; (k = va_arg(ap, const char *));)
        assert_int_equal(rs_stage_spec_set(&s, k, va_arg(ap, const char *)), 0);
    va_end(ap);
    return s;
}

static rs_stage_pool *make_pool(uint32_t processes, uint64_t ring_bytes, uint32_t timeout_ms) {
    rs_stage_pool_config cfg;
    rs_stage_pool_config_default(&cfg);
    const char *bin = getenv("RINGSERVE_BIN");
    if (!bin) fail_msg("RINGSERVE_BIN is not set (run through meson test)");
    snprintf(cfg.exe, sizeof(cfg.exe), "%s", bin);
    cfg.processes = processes;
    cfg.ring_bytes = ring_bytes;
    cfg.arena_bytes = 1 << 20;
    cfg.timeout_ms = timeout_ms;
    rs_err err = {0};
    rs_stage_pool *p = rs_stage_pool_create(&cfg, &err);
    if (!p) fail_msg("pool: %s", err.msg);
    return p;
}

static int setup(void **state) {
    (void)state;
    rs_err err;
    if (rs_stage_arena_init(&arena_a, 1 << 20, &err) || rs_stage_arena_init(&arena_b, 1 << 20, &err))
        return -1;
    pool = make_pool(2, 1 << 16, 10000);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rs_stage_pool_destroy(pool);
    rs_stage_arena_free(&arena_a);
    rs_stage_arena_free(&arena_b);
    return 0;
}

static void assert_lists_identical(const rs_tensor_list *a, const rs_tensor_list *b) {
    assert_int_equal(a->count, b->count);
    for (uint32_t i = 0; i < a->count; i++) {
        const rs_tensor_view *x = &a->t[i], *y = &b->t[i];
        assert_int_equal(x->name.len, y->name.len);
        assert_memory_equal(x->name.ptr, y->name.ptr, x->name.len);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->rank, y->rank);
        assert_memory_equal(x->dims, y->dims, sizeof(int64_t) * x->rank);
        assert_int_equal(x->byte_len, y->byte_len);
        assert_memory_equal(x->data, y->data, x->byte_len);
    }
}

/* Runs specs inline and in the pool on the same input; compares bytes. */
static void compare(const rs_stage_spec *specs, uint32_t n, const rs_tensor_list *in,
                    uint32_t slot) {
    rs_err err = {0};
    rs_stage_pipeline *p = rs_stage_pipeline_compile(specs, n, data_dir, "t pre", &err);
    assert_non_null(p);
    uint32_t id;
    if (rs_stage_pool_load(pool, specs, n, data_dir, "t pre", &id, &err) != 0)
        fail_msg("load: %s", err.msg);
    rs_tensor_list a = *in, b = *in;
    char why[256];
    rs_stage_arena_reset(&arena_a);
    rs_stage_arena_reset(&arena_b);
    assert_int_equal(rs_stage_pipeline_run(p, &a, &arena_a, why, sizeof(why)), 0);
    int rc = rs_stage_pool_run(pool, slot, id, &b, &arena_b, why, sizeof(why));
    if (rc != 0) fail_msg("pool run: %d %s", rc, why);
    assert_lists_identical(&a, &b);
    /* the pool's results live in the caller's arena */
    for (uint32_t i = 0; i < b.count; i++)
        assert_true(b.t[i].data >= arena_b.base && b.t[i].data < arena_b.base + arena_b.cap_bytes);
    rs_stage_pool_unload(pool, id);
    rs_stage_pipeline_free(p);
}

static void test_identical_bytes(void **state) {
    (void)state;
    float px[3 * 64];
    for (int i = 0; i < 3 * 64; i++) px[i] = (float)((i * 7) % 17);
    rs_tensor_list in = {.count = 1};
    in.t[0] = (rs_tensor_view){.name = rs_str_c("pixels"), .dtype = RS_DT_FP32, .rank = 2,
                               .dims = {3, 64}, .data = (const uint8_t *)px,
                               .byte_len = sizeof(px)};
    rs_stage_spec pre[3] = {spec("normalize", "scale", "0.0625", "offset", "-0.5", NULL),
                            spec("reshape", "shape", "-1,8,8", NULL),
                            spec("cast", "to", "FP64", NULL)};
    compare(pre, 3, &in, 0);

    rs_stage_spec post[3] = {spec("softmax", "output", "probabilities", NULL),
                             spec("argmax", NULL),
                             spec("topk", "k", "3", "labels", "labels.txt", NULL)};
    float logits[4 * 10];
    for (int i = 0; i < 40; i++) logits[i] = (float)((i * 13) % 11) * 0.37f - 1.0f;
    in.t[0] = (rs_tensor_view){.name = rs_str_c("logits"), .dtype = RS_DT_FP32, .rank = 2,
                               .dims = {4, 10}, .data = (const uint8_t *)logits,
                               .byte_len = sizeof(logits)};
    compare(post, 3, &in, 1);

    uint8_t text[64];
    uint32_t l = 11;
    memcpy(text, &l, 4);
    memcpy(text + 4, "the cat sat", 11);
    in.t[0] = (rs_tensor_view){.name = rs_str_c("text"), .dtype = RS_DT_BYTES, .rank = 1,
                               .dims = {1}, .data = text, .byte_len = 15};
    rs_stage_spec tok[1] = {spec("tokenize", "vocab", "vocab.txt", "max_tokens", "5", NULL)};
    compare(tok, 1, &in, 0);
    compare(NULL, 0, &in, 1); /* empty pipeline: passes through */
}

static void test_errors(void **state) {
    (void)state;
    rs_err err = {0};
    uint32_t id;
    rs_stage_spec bad = spec("cast", "to", "FP33", NULL);
    assert_int_equal(rs_stage_pool_load(pool, &bad, 1, data_dir, "m/2 pre", &id, &err), -1);
    assert_non_null(strstr(err.msg, "m/2 pre[0] cast: to: 'FP33': not a numeric dtype"));

    rs_stage_spec sm = spec("softmax", NULL);
    assert_int_equal(rs_stage_pool_load(pool, &sm, 1, data_dir, "m/2 post", &id, &err), 0);
    int32_t ints[4] = {0};
    rs_tensor_list io = {.count = 1};
    io.t[0] = (rs_tensor_view){.name = rs_str_c("x"), .dtype = RS_DT_INT32, .rank = 2,
                               .dims = {1, 4}, .data = (const uint8_t *)ints, .byte_len = 16};
    char why[256];
    rs_stage_arena_reset(&arena_b);
    assert_int_equal(rs_stage_pool_run(pool, 0, id, &io, &arena_b, why, sizeof(why)),
                     -RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "m/2 post[0] softmax: input 'x' is INT32, needs FP32"));

    /* a batch larger than the ring (64 KiB: 32 KiB max payload) */
    static float big[16384];
    io.t[0] = (rs_tensor_view){.name = rs_str_c("x"), .dtype = RS_DT_FP32, .rank = 2,
                               .dims = {1, 16384}, .data = (const uint8_t *)big,
                               .byte_len = sizeof(big)};
    assert_int_equal(rs_stage_pool_run(pool, 0, id, &io, &arena_b, why, sizeof(why)),
                     -RS_E_OVERLOADED);
    assert_non_null(strstr(why, "exceeds the stage ring"));
    rs_stage_pool_unload(pool, id);
}

static int run_softmax(rs_stage_pool *pl, uint32_t id, uint32_t slot, char *why) {
    float x[4] = {1, 2, 3, 4};
    rs_tensor_list io = {.count = 1};
    io.t[0] = (rs_tensor_view){.name = rs_str_c("x"), .dtype = RS_DT_FP32, .rank = 2,
                               .dims = {1, 4}, .data = (const uint8_t *)x, .byte_len = 16};
    rs_stage_arena_reset(&arena_b);
    return rs_stage_pool_run(pl, slot, id, &io, &arena_b, why, 256);
}

/* Waits (bounded) until pid is a zombie or gone. */
static void wait_dead(int pid) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    for (int i = 0; i < 5000; i++) {
        FILE *f = fopen(path, "r");
        if (!f) return;
        char buf[256] = "";
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')) return;
        usleep(1000);
    }
}

static void test_crash_and_hang(void **state) {
    (void)state;
    rs_stage_pool *pl = make_pool(1, 1 << 16, 2000); /* a respawn must fit too, on a loaded machine */
    rs_err err = {0};
    uint32_t id;
    rs_stage_spec sm = spec("softmax", NULL);
    assert_int_equal(rs_stage_pool_load(pl, &sm, 1, data_dir, "m post", &id, &err), 0);
    char why[256];
    assert_int_equal(run_softmax(pl, id, 0, why), 0);

    /* pinned: the process runs on CPU 0 only, also after a respawn */
    cpu_set_t one, got;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    rs_stage_pool_set_cpus(pl, &one);
    assert_int_equal(sched_getaffinity(rs_stage_pool_pid(pl, 0), sizeof(got), &got), 0);
    assert_true(CPU_EQUAL(&one, &got));

    /* killed: the next batch fails with BACKEND, the one after respawns */
    int pid = rs_stage_pool_pid(pl, 0);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    wait_dead(pid); /* the signal is asynchronous: let it land before the next batch */
    assert_int_equal(run_softmax(pl, id, 0, why), -RS_E_BACKEND);
    assert_non_null(strstr(why, "exited"));
    assert_int_equal(rs_stage_pool_pid(pl, 0), -1);
    assert_int_equal(run_softmax(pl, id, 0, why), 0); /* respawned, pipeline reloaded */
    int pid2 = rs_stage_pool_pid(pl, 0);
    assert_true(pid2 > 0 && pid2 != pid);
    assert_int_equal(sched_getaffinity(pid2, sizeof(got), &got), 0);
    assert_true(CPU_EQUAL(&one, &got));
    rs_stage_pool_set_cpus(pl, NULL); /* back to where the pool was created */
    cpu_set_t mine;
    assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
    assert_int_equal(sched_getaffinity(pid2, sizeof(got), &got), 0);
    assert_true(CPU_EQUAL(&mine, &got));

    /* hung (stopped): killed after timeout_ms, then respawned */
    assert_int_equal(kill(pid2, SIGSTOP), 0);
    assert_int_equal(run_softmax(pl, id, 0, why), -RS_E_BACKEND);
    assert_non_null(strstr(why, "did not answer within 2000 ms"));
    assert_int_equal(run_softmax(pl, id, 0, why), 0);
    /* the last stage process was stopped and reaped */
    int pid3 = rs_stage_pool_pid(pl, 0);
    assert_true(pid3 > 0);
    rs_stage_pool_destroy(pl);
    assert_int_equal(kill(pid3, 0), -1);
}

int main(int argc, char **argv) {
    if (argc > 1) data_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical_bytes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_crash_and_hang),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Multi-process crash test for engine/kvstore.
 *
 * Writer processes attach to the segment and set self-verifying values as
 * fast as they can; the test SIGKILLs each one at a random moment, many
 * times, while a reader process (and the test itself) keep reading. Once a
 * writer is killed while it deliberately holds a shard lock. The survivors
 * must never read a torn value and never hang: a watchdog (alarm) fails
 * the test if any step blocks. */
/* cmocka.h needs these four first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "engine/common/log.h"
#include "engine/kvstore/kv_layout.h"
#include "engine/kvstore/kvstore.h"
#include "tests/kvstore/kv_test_util.h"

#define CRASH_ROUNDS 80
#define CRASH_KEYS 512
#define CRASH_MAX_VALUE 6000

typedef struct crash_shared {
    atomic_int stop;
    atomic_ulong reads, hits, bad;
} crash_shared;

static rs_kv_config crash_cfg;
static const rs_kv_options crash_opt = {.shards = 4, .capacity_bytes = 4 * 8 * 64 * 1024};

static rs_kv *crash_attach(void) {
    rs_err err;
    rs_kv *kv = rs_kv_open(&crash_cfg, &crash_opt, &err);
    if (!kv) {
        fprintf(stderr, "attach: %s\n", err.msg);
        _exit(3);
    }
    return kv;
}

static _Noreturn void crash_writer(uint32_t seed) {
    rs_kv *kv = crash_attach();
    static uint8_t v[CRASH_MAX_VALUE];
    uint32_t x = seed;
    for (uint32_t gen = 0;; gen++) {
        x = x * 1664525u + 1013904223u;
        uint32_t k = (x >> 8) % CRASH_KEYS;
        size_t len = 20 + (x >> 4) % (CRASH_MAX_VALUE - 20);
        kv_value_fill(v, len, k, gen);
        rs_kv_key key = kv_test_key(k);
        rs_kv_set(kv, &key, v, len, 0);
        if ((x & 15) == 0) rs_kv_del(kv, &key);
    }
}

/* Reads until told to stop; every hit must verify. */
static _Noreturn void crash_reader(crash_shared *sh) {
    rs_kv *kv = crash_attach();
    static uint8_t out[CRASH_MAX_VALUE];
    uint32_t x = 12345;
    while (!atomic_load(&sh->stop)) {
        x = x * 1664525u + 1013904223u;
        uint32_t k = (x >> 8) % CRASH_KEYS;
        rs_kv_key key = kv_test_key(k);
        size_t len = 0;
        rs_kv_status st = rs_kv_get(kv, &key, out, sizeof(out), &len);
        atomic_fetch_add(&sh->reads, 1);
        if (st == RS_KV_OK) {
            atomic_fetch_add(&sh->hits, 1);
            if (kv_value_check(out, len, k) != 0) atomic_fetch_add(&sh->bad, 1);
        } else if (st != RS_KV_MISS) {
            atomic_fetch_add(&sh->bad, 1);
        }
    }
    rs_kv_detach(kv);
    _exit(0);
}

/* Takes a shard lock, reports, and waits to be killed holding it. */
static _Noreturn void crash_lock_holder(int report_fd, uint32_t shard) {
    rs_kv *kv = crash_attach();
    pthread_mutex_lock(&kv->shards[shard].lock);
    char c = 'L';
    if (write(report_fd, &c, 1) != 1) _exit(4);
    for (;;)
        pause();
}

static void crash_sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static uint32_t crash_verify_all(rs_kv *kv) {
    static uint8_t out[CRASH_MAX_VALUE];
    uint32_t hits = 0;
    for (uint32_t k = 0; k < CRASH_KEYS; k++) {
        rs_kv_key key = kv_test_key(k);
        size_t len = 0;
        rs_kv_status st = rs_kv_get(kv, &key, out, sizeof(out), &len);
        assert_true(st == RS_KV_OK || st == RS_KV_MISS);
        if (st == RS_KV_OK) {
            assert_int_equal(kv_value_check(out, len, k), 0);
            hits++;
        }
    }
    return hits;
}

static void test_sigkill_writers(void **state) {
    (void)state;
    rs_log_set_level(RS_LOG_ERROR); /* each recovery logs a warning */
    kv_test_config(&crash_cfg, "crash");
    crash_cfg.max_value_kb = 8;
    rs_err err;
    rs_kv *kv = rs_kv_open(&crash_cfg, &crash_opt, &err);
    assert_non_null(kv);
    crash_shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    memset(sh, 0, sizeof(*sh));
    alarm(60); /* a hang anywhere below kills the test (SIGALRM) */

    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) crash_reader(sh);

    uint32_t rng = 99;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        pid_t w = fork();
        assert_true(w >= 0);
        if (w == 0) crash_writer(1000u + (uint32_t)round);
        rng = rng * 1664525u + 1013904223u;
        crash_sleep_us(300 + (long)(rng >> 8) % 3000);
        kill(w, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(w, &status, 0), w);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        if (round % 10 == 0) crash_verify_all(kv);
    }

    /* Deterministic: a process dies holding shard 2's lock. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) crash_lock_holder(p[1], 2);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    close(p[1]);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    uint32_t hits = crash_verify_all(kv); /* touches every shard, shard 2 included */

    atomic_store(&sh->stop, 1);
    int status = 0;
    assert_int_equal(waitpid(reader, &status, 0), reader);
    alarm(0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    fprintf(stderr,
            "crash: %d writers killed; reader %lu reads, %lu hits, %lu bad; "
            "recoveries %llu, torn entries dropped %llu, live %u\n",
            CRASH_ROUNDS, atomic_load(&sh->reads), atomic_load(&sh->hits), atomic_load(&sh->bad),
            (unsigned long long)s.recoveries, (unsigned long long)s.torn, hits);
    assert_int_equal(atomic_load(&sh->bad), 0);
    assert_true(atomic_load(&sh->reads) > 0);
    assert_true(s.recoveries >= 1);
    assert_true(hits > 0);
    /* The cache still works for everyone. */
    static uint8_t v[100];
    kv_value_fill(v, sizeof(v), 1, 1);
    rs_kv_key k1 = kv_test_key(1);
    assert_int_equal(rs_kv_set(kv, &k1, v, sizeof(v), 0), RS_KV_OK);
    assert_true(rs_kv_exists(kv, &k1));
    munmap(sh, sizeof(*sh));
    rs_kv_detach(kv);
    assert_int_equal(rs_kv_destroy(crash_cfg.name, &err), 0);
}

/* Processes racing to open a segment that does not exist yet: exactly one
 * creates it, all end up on the same one. */
static void test_concurrent_open(void **state) {
    (void)state;
    kv_test_config(&crash_cfg, "race");
    crash_cfg.max_value_kb = 8;
    alarm(30);
    pid_t kids[6];
    for (uint32_t i = 0; i < 6; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            rs_kv *kv = crash_attach();
            rs_kv_key k = kv_test_key(i);
            uint8_t v[64];
            kv_value_fill(v, sizeof(v), i, 0);
            _exit(rs_kv_set(kv, &k, v, sizeof(v), 0) == RS_KV_OK ? 0 : 1);
        }
    }
    for (int i = 0; i < 6; i++) {
        int status = 0;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    alarm(0);
    rs_err err;
    rs_kv *kv = rs_kv_attach(crash_cfg.name, NULL, &err);
    assert_non_null(kv);
    uint8_t out[64];
    for (uint32_t i = 0; i < 6; i++) {
        rs_kv_key k = kv_test_key(i);
        size_t len = 0;
        assert_int_equal(rs_kv_get(kv, &k, out, sizeof(out), &len), RS_KV_OK);
        assert_int_equal(kv_value_check(out, len, i), 0);
    }
    rs_kv_detach(kv);
    assert_int_equal(rs_kv_destroy(crash_cfg.name, &err), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_writers),
        cmocka_unit_test(test_concurrent_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

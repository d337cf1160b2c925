/* bench_cache.c — ns/op of the shared-memory response cache.
 *
 *   build/bench/cache/bench_cache [--ms N] [--repeat R]
 *
 * For 64 B and 4 KiB values, 1 and 2 threads: get-hit (key present),
 * get-miss (key absent) and set (overwrite of a present key), each thread on
 * its own keys in a shuffled order, one segment shared by all threads. Each
 * cell runs R times (default 3) and reports its fastest run: the machine is
 * shared, and the fastest run is the one least disturbed by others. The
 * same run measures a baseline: lock + unlock of one robust process-shared
 * mutex, the floor under every operation. Prints a Markdown table. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "engine/kvstore/kvstore.h"

enum { OP_GET_HIT, OP_GET_MISS, OP_SET, OP_LOCK };
static const char *const op_names[] = {"get-hit", "get-miss", "set", "mutex lock+unlock"};

typedef struct bench_thread {
    rs_kv *kv;
    int op;
    size_t value_bytes;
    uint32_t nkeys;
    rs_kv_key *keys;   /* present keys */
    rs_kv_key *absent; /* never-set keys */
    uint64_t run_ns;
    uint64_t ops;
    uint64_t failures;
    pthread_barrier_t *start;
    pthread_mutex_t *mutex;
} bench_thread;

static void *bench_run(void *arg) {
    bench_thread *t = arg;
    uint8_t *buf = malloc(t->value_bytes);
    memset(buf, 0x5a, t->value_bytes);
    pthread_barrier_wait(t->start);
    uint64_t t0 = rs_now_ns(), ops = 0, deadline = t0 + t->run_ns;
    uint32_t i = 0;
    do {
        for (int b = 0; b < 256; b++) {
            size_t len = 0;
            switch (t->op) {
            case OP_GET_HIT:
                t->failures += rs_kv_get(t->kv, &t->keys[i], buf, t->value_bytes, &len) != RS_KV_OK;
                break;
            case OP_GET_MISS:
                t->failures +=
                    rs_kv_get(t->kv, &t->absent[i], buf, t->value_bytes, &len) != RS_KV_MISS;
                break;
            case OP_SET:
                t->failures += rs_kv_set(t->kv, &t->keys[i], buf, t->value_bytes, 0) != RS_KV_OK;
                break;
            default:
                pthread_mutex_lock(t->mutex);
                pthread_mutex_unlock(t->mutex);
                break;
            }
            if (++i == t->nkeys) i = 0;
        }
        ops += 256;
    } while (rs_now_ns() < deadline);
    t->run_ns = rs_now_ns() - t0;
    t->ops = ops;
    free(buf);
    return NULL;
}

static rs_kv_key *bench_keys(uint32_t n, uint64_t salt) {
    rs_kv_key *k = malloc(n * sizeof(*k));
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id[2] = {salt, i};
        k[i] = rs_kv_key_from_bytes(id, sizeof(id));
    }
    for (uint32_t i = n - 1; i > 0; i--) { /* shuffle: no sequential locality */
        uint32_t j = (uint32_t)(((uint64_t)rand() * (i + 1)) / ((uint64_t)RAND_MAX + 1));
        rs_kv_key tmp = k[i];
        k[i] = k[j];
        k[j] = tmp;
    }
    return k;
}

int main(int argc, char **argv) {
    uint64_t run_ms = 100;
    int repeat = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc)
            run_ms = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: bench_cache [--ms N] [--repeat R]   (N ms per run, default 100; "
                    "R runs per cell, default 3)\n");
            return 2;
        }
    }
    rs_log_set_level(RS_LOG_WARN);
    srand(42);
    rs_kv_config cfg;
    rs_kv_config_default(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "rs-bench-%ld", (long)getpid());
    cfg.capacity_mb = 256;
    cfg.max_value_kb = 64;
    rs_kv_options opt = {.io_threads = 2}; /* 8 shards */
    rs_err err;
    rs_kv *kv = rs_kv_open(&cfg, &opt, &err);
    if (!kv) {
        fprintf(stderr, "bench_cache: %s\n", err.msg);
        return 1;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    /* One per thread, on separate cache lines (as shards are). */
    static struct { pthread_mutex_t m; } __attribute__((aligned(128))) mutex_slots[2];
    pthread_mutex_t *mutexes[2] = {&mutex_slots[0].m, &mutex_slots[1].m};
    pthread_mutex_init(mutexes[0], &ma);
    pthread_mutex_init(mutexes[1], &ma);

    /* Per thread: a hot set that fits in L2/L3, and a large one that does not. */
    static const struct {
        size_t value_bytes;
        uint32_t nkeys;
    } cells[] = {{64, 10000}, {64, 100000}, {4096, 1000}, {4096, 10000}};
    printf("| value | keys/thread | threads | op | ns/op (per thread) | Mops/s (all threads) |\n");
    printf("| ---: | ---: | ---: | --- | ---: | ---: |\n");
    for (int ci = 0; ci < 4; ci++) {
        size_t vb = cells[ci].value_bytes;
        uint32_t nkeys = cells[ci].nkeys;
        rs_kv_clear(kv);
        rs_kv_key *keys[2], *absent[2];
        uint8_t *fill = calloc(1, vb);
        for (int t = 0; t < 2; t++) {
            keys[t] = bench_keys(nkeys, 1000 + (uint64_t)t + (uint64_t)ci * 10);
            absent[t] = bench_keys(nkeys, 5000 + (uint64_t)t + (uint64_t)ci * 10);
            for (uint32_t i = 0; i < nkeys; i++)
                rs_kv_set(kv, &keys[t][i], fill, vb, 0);
        }
        free(fill);
        for (int nthreads = 1; nthreads <= 2; nthreads++) {
            for (int op = OP_GET_HIT; op <= OP_LOCK; op++) {
                if (op == OP_LOCK && ci > 0) continue;
                double ns_per_op = 0, mops = 0;
                uint64_t failures = 0;
                for (int r = 0; r < (repeat > 0 ? repeat : 1); r++) {
                    pthread_barrier_t start;
                    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
                    pthread_t th[2];
                    bench_thread bt[2];
                    for (int t = 0; t < nthreads; t++) {
                        bt[t] = (bench_thread){.kv = kv,
                                               .op = op,
                                               .value_bytes = vb,
                                               .nkeys = nkeys,
                                               .keys = keys[t],
                                               .absent = absent[t],
                                               .run_ns = run_ms * 1000000ull,
                                               .start = &start,
                                               .mutex = mutexes[t]};
                        pthread_create(&th[t], NULL, bench_run, &bt[t]);
                    }
                    uint64_t ops = 0, ns = 0, max_ns = 0;
                    for (int t = 0; t < nthreads; t++) {
                        pthread_join(th[t], NULL);
                        ops += bt[t].ops;
                        ns += bt[t].run_ns;
                        failures += bt[t].failures;
                        if (bt[t].run_ns > max_ns) max_ns = bt[t].run_ns;
                    }
                    pthread_barrier_destroy(&start);
                    double run_ns_per_op = (double)ns / (double)ops;
                    if (r == 0 || run_ns_per_op < ns_per_op) {
                        ns_per_op = run_ns_per_op;
                        mops = (double)ops / ((double)max_ns / 1e9) / 1e6;
                    }
                }
                if (failures)
                    fprintf(stderr, "bench_cache: %" PRIu64 " unexpected results\n", failures);
                if (op == OP_LOCK)
                    printf("| - | - | %d | %s (baseline) | %.0f | %.2f |\n", nthreads, op_names[op],
                           ns_per_op, mops);
                else
                    printf("| %s | %u | %d | %s | %.0f | %.2f |\n", vb == 64 ? "64 B" : "4 KiB",
                           nkeys, nthreads, op_names[op], ns_per_op, mops);
                fflush(stdout);
            }
        }
        for (int t = 0; t < 2; t++) {
            free(keys[t]);
            free(absent[t]);
        }
    }
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    printf("\nshards %u, items %" PRIu64 ", evictions %" PRIu64 ", hit rate %.3f\n", s.shards,
           s.items, s.evictions, s.hit_rate);
    rs_kv_detach(kv);
    rs_kv_destroy(cfg.name, &err);
    return 0;
}

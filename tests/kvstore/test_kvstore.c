/* Unit tests for engine/kvstore: LRU (CLOCK) eviction, TTL, delete/exists,
 * stats, size limits, size-class page stealing, lock-owner death, a
 * multi-threaded stress, keys and the `cache:` config section. */
/* cmocka.h needs these four first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "engine/kvstore/kv_layout.h"
#include "engine/kvstore/kvstore.h"
#include "tests/kvstore/kv_test_util.h"

static rs_kv *kv_open_small(rs_kv_config *cfg, const char *tag, uint64_t max_value_kb,
                            uint32_t shards, uint64_t capacity_bytes, kv_fake_clock *clk) {
    kv_test_config(cfg, tag);
    cfg->max_value_kb = max_value_kb;
    rs_kv_options opt = {.shards = shards, .capacity_bytes = capacity_bytes};
    if (clk) {
        opt.clock = kv_fake_now;
        opt.clock_ctx = clk;
    }
    rs_err err = {0};
    rs_kv *kv = rs_kv_open(cfg, &opt, &err);
    if (!kv) fail_msg("open: %s", err.msg);
    return kv;
}

static void kv_close_destroy(rs_kv *kv, const rs_kv_config *cfg) {
    rs_kv_detach(kv);
    rs_err err;
    assert_int_equal(rs_kv_destroy(cfg->name, &err), 0);
}

static rs_kv_key key_str(const char *s) {
    return rs_kv_key_from_bytes(s, strlen(s));
}

/* The seed's case. One shard, one 64 KiB page, max value 20 KiB: the top
 * size class holds exactly three 20000-byte values. */
static void test_seed_lru(void **state) {
    (void)state;
    rs_kv_config cfg;
    rs_kv *kv = kv_open_small(&cfg, "lru", 20, 1, 64 * 1024, NULL);
    static uint8_t v[4][20000], out[20000];
    for (int i = 0; i < 4; i++)
        memset(v[i], 'a' + i, sizeof(v[i]));
    rs_kv_key k[4] = {key_str("k1"), key_str("k2"), key_str("k3"), key_str("k4")};
    for (int i = 0; i < 3; i++)
        assert_int_equal(rs_kv_set(kv, &k[i], v[i], 20000, 0), RS_KV_OK);
    size_t len = 0;
    assert_int_equal(rs_kv_get(kv, &k[0], out, sizeof(out), &len), RS_KV_OK);
    assert_int_equal(rs_kv_set(kv, &k[3], v[3], 20000, 0), RS_KV_OK);
    assert_false(rs_kv_exists(kv, &k[1]));
    assert_true(rs_kv_exists(kv, &k[0]));
    assert_true(rs_kv_exists(kv, &k[2]));
    assert_true(rs_kv_exists(kv, &k[3]));
    for (int i = 0; i < 4; i++) {
        if (i == 1) continue;
        assert_int_equal(rs_kv_get(kv, &k[i], out, sizeof(out), &len), RS_KV_OK);
        assert_int_equal(len, 20000);
        assert_memory_equal(out, v[i], 20000);
    }
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.evictions, 1);
    assert_int_equal(s.items, 3);
    kv_close_destroy(kv, &cfg);
}

static void test_ttl(void **state) {
    (void)state;
    kv_fake_clock clk = {.now_ms = 1000000};
    rs_kv_config cfg;
    kv_test_config(&cfg, "ttl");
    cfg.default_ttl_s = 5;
    rs_kv_options opt = {.clock = kv_fake_now, .clock_ctx = &clk};
    rs_err err;
    rs_kv *kv = rs_kv_open(&cfg, &opt, &err);
    assert_non_null(kv);
    rs_kv_key a = key_str("a"), d = key_str("default"), n = key_str("never");
    char out[8];
    size_t len;
    assert_int_equal(rs_kv_set(kv, &a, "x", 1, 2), RS_KV_OK);
    assert_int_equal(rs_kv_set(kv, &d, "y", 1, RS_KV_TTL_DEFAULT), RS_KV_OK);
    assert_int_equal(rs_kv_set(kv, &n, "z", 1, RS_KV_TTL_NEVER), RS_KV_OK);
    uint64_t left = 0;
    assert_int_equal(rs_kv_ttl_left_ms(kv, &d, &left), 0);
    assert_int_equal(left, 5000);
    assert_int_equal(rs_kv_ttl_left_ms(kv, &n, &left), 0);
    assert_true(left == UINT64_MAX);
    clk.now_ms += 1999;
    assert_int_equal(rs_kv_get(kv, &a, out, sizeof(out), &len), RS_KV_OK);
    clk.now_ms += 1;
    assert_int_equal(rs_kv_get(kv, &a, out, sizeof(out), &len), RS_KV_MISS);
    assert_false(rs_kv_exists(kv, &a));
    clk.now_ms += 3000; /* default TTL (5 s) passed too; never-expiring stays */
    assert_false(rs_kv_exists(kv, &d));
    assert_true(rs_kv_exists(kv, &n));
    assert_int_equal(rs_kv_ttl_left_ms(kv, &d, &left), -1);
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.expired, 1); /* a, lazily on get; d still awaits the sweep */
    assert_int_equal(s.items, 2);

    /* The sweep frees expired entries nobody asks for. */
    for (uint64_t i = 0; i < 10; i++) {
        rs_kv_key k = kv_test_key(i);
        assert_int_equal(rs_kv_set(kv, &k, "t", 1, 1), RS_KV_OK);
    }
    clk.now_ms += 1000;
    assert_int_equal(rs_kv_sweep(kv), 11); /* the 10 and d */
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.items, 1);
    assert_int_equal(s.expired, 12);
    kv_close_destroy(kv, &cfg);
}

static void test_del_exists_stats(void **state) {
    (void)state;
    rs_kv_config cfg;
    rs_kv *kv = kv_open_small(&cfg, "del", 64, 0, 0, NULL);
    rs_kv_key a = key_str("a"), b = key_str("b");
    char out[16];
    size_t len = 0;
    assert_false(rs_kv_exists(kv, &a));
    assert_int_equal(rs_kv_del(kv, &a), RS_KV_MISS);
    assert_int_equal(rs_kv_set(kv, &a, "hello", 5, 0), RS_KV_OK);
    assert_int_equal(rs_kv_set(kv, &b, "bye", 3, 0), RS_KV_OK);
    assert_true(rs_kv_exists(kv, &a));
    assert_int_equal(rs_kv_get(kv, &a, out, sizeof(out), &len), RS_KV_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "hello", 5);
    /* Replacing keeps one entry with the new value. */
    assert_int_equal(rs_kv_set(kv, &a, "world!", 6, 0), RS_KV_OK);
    assert_int_equal(rs_kv_get(kv, &a, out, sizeof(out), &len), RS_KV_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(out, "world!", 6);
    assert_int_equal(rs_kv_del(kv, &a), RS_KV_OK);
    assert_false(rs_kv_exists(kv, &a));
    assert_int_equal(rs_kv_get(kv, &a, out, sizeof(out), &len), RS_KV_MISS);
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.misses, 1);
    assert_true(s.hit_rate > 0.666 && s.hit_rate < 0.667);
    assert_int_equal(s.sets, 3);
    assert_int_equal(s.deletes, 1);
    assert_int_equal(s.items, 1);
    assert_int_equal(s.value_bytes, 3);
    assert_true(s.used_bytes >= 3 + sizeof(rs_kv_item));
    /* 4 MiB in whole pages of 68 KiB (64 KiB values + item header) per shard. */
    assert_int_equal(s.capacity_bytes, 4 * 15 * 69632);
    assert_int_equal(s.shards, 4);
    assert_int_equal(s.evictions, 0);
    /* exists() counts neither hit nor miss. */
    assert_int_equal(s.hits + s.misses, 3);
    rs_kv_clear(kv);
    assert_false(rs_kv_exists(kv, &b));
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.items, 0);
    assert_int_equal(s.used_bytes, 0);
    assert_int_equal(rs_kv_set(kv, &b, "again", 5, 0), RS_KV_OK);
    assert_true(rs_kv_exists(kv, &b));
    kv_close_destroy(kv, &cfg);
}

static void test_size_limit(void **state) {
    (void)state;
    rs_kv_config cfg;
    rs_kv *kv = kv_open_small(&cfg, "size", 4, 0, 0, NULL);
    static uint8_t v[4097], out[4097];
    for (size_t i = 0; i < sizeof(v); i++)
        v[i] = (uint8_t)(i * 13);
    rs_kv_key at = key_str("at"), over = key_str("over"), empty = key_str("empty");
    size_t len = 0;
    assert_int_equal(rs_kv_set(kv, &at, v, 4096, 0), RS_KV_OK);
    assert_int_equal(rs_kv_get(kv, &at, out, sizeof(out), &len), RS_KV_OK);
    assert_int_equal(len, 4096);
    assert_memory_equal(out, v, 4096);
    assert_int_equal(rs_kv_set(kv, &over, v, 4097, 0), RS_KV_OVERSIZE);
    assert_false(rs_kv_exists(kv, &over));
    /* A buffer one byte short: told how much is needed, nothing copied. */
    memset(out, 0, sizeof(out));
    assert_int_equal(rs_kv_get(kv, &at, out, 4095, &len), RS_KV_TOO_SMALL);
    assert_int_equal(len, 4096);
    assert_int_equal(out[0], 0);
    assert_int_equal(rs_kv_set(kv, &empty, v, 0, 0), RS_KV_OK);
    assert_int_equal(rs_kv_get(kv, &empty, out, 0, &len), RS_KV_OK);
    assert_int_equal(len, 0);
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.oversize, 1);
    assert_int_equal(s.items, 2);
    assert_int_equal(s.max_value_bytes, 4096);
    kv_close_destroy(kv, &cfg);
}

/* One shard of four pages filled by small values; then large values must
 * take a page from the small class (eviction), and both stay correct. */
static void test_size_classes_share_pages(void **state) {
    (void)state;
    rs_kv_config cfg;
    rs_kv *kv = kv_open_small(&cfg, "class", 16, 1, 4 * 64 * 1024, NULL);
    static uint8_t v[16384], out[16384];
    size_t len;
    for (uint32_t i = 0; i < 4000; i++) {
        rs_kv_key k = kv_test_key(i);
        kv_value_fill(v, 100, i, 1);
        assert_int_equal(rs_kv_set(kv, &k, v, 100, 0), RS_KV_OK);
    }
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    assert_true(s.evictions > 0);
    for (uint32_t i = 10000; i < 10020; i++) {
        rs_kv_key k = kv_test_key(i);
        kv_value_fill(v, 12000, i, 2);
        assert_int_equal(rs_kv_set(kv, &k, v, 12000, 0), RS_KV_OK);
        assert_int_equal(rs_kv_get(kv, &k, out, sizeof(out), &len), RS_KV_OK);
        assert_int_equal(kv_value_check(out, len, i), 0);
    }
    uint64_t live = 0;
    for (uint32_t i = 0; i < 4000; i++) {
        rs_kv_key k = kv_test_key(i);
        rs_kv_status st = rs_kv_get(kv, &k, out, sizeof(out), &len);
        assert_true(st == RS_KV_OK || st == RS_KV_MISS);
        if (st == RS_KV_OK) {
            assert_int_equal(kv_value_check(out, len, i), 0);
            live++;
        }
    }
    for (uint32_t i = 10000; i < 10020; i++) {
        rs_kv_key k = kv_test_key(i);
        if (rs_kv_get(kv, &k, out, sizeof(out), &len) == RS_KV_OK) {
            assert_int_equal(kv_value_check(out, len, i), 0);
            live++;
        }
    }
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.items, live);
    assert_true(live > 0);
    assert_true(s.used_bytes <= s.capacity_bytes);
    kv_close_destroy(kv, &cfg);
}

/* A thread that dies holding a shard lock halfway through rewriting an
 * entry: the next locker recovers (EOWNERDEAD), drops the torn entry and
 * keeps the whole ones. */
typedef struct kv_dier {
    rs_kv *kv;
    rs_kv_key key;
} kv_dier;

static void *kv_die_holding_lock(void *arg) {
    kv_dier *d = arg;
    rs_kv_shard *sh = &d->kv->shards[d->key.lo & d->kv->shard_mask];
    pthread_mutex_lock(&sh->lock);
    /* Find the entry and scribble over half its value, as a set would. */
    uint32_t shard = (uint32_t)(d->key.lo & d->kv->shard_mask);
    uint8_t *pages = d->kv->base + d->kv->hdr->off_pages +
                     (uint64_t)shard * d->kv->pages_per_shard * d->kv->page_bytes;
    uint32_t *buckets = (uint32_t *)(d->kv->base + d->kv->hdr->off_buckets) +
                        (uint64_t)shard * (d->kv->bucket_mask + 1);
    uint32_t ref = buckets[d->key.hi & d->kv->bucket_mask];
    while (ref) {
        rs_kv_item *it = (rs_kv_item *)(pages + ((uint64_t)(ref - 1) << 3));
        if (it->key_lo == d->key.lo && it->key_hi == d->key.hi) {
            memset(it->value, 0xEE, it->value_len / 2);
            break;
        }
        ref = it->next;
    }
    return NULL; /* exits holding the lock */
}

static void test_lock_owner_death(void **state) {
    (void)state;
    rs_kv_config cfg;
    rs_kv *kv = kv_open_small(&cfg, "death", 64, 1, 0, NULL);
    static uint8_t v[1000], out[1000];
    size_t len;
    for (uint32_t i = 0; i < 50; i++) {
        rs_kv_key k = kv_test_key(i);
        kv_value_fill(v, sizeof(v), i, 1);
        assert_int_equal(rs_kv_set(kv, &k, v, sizeof(v), 0), RS_KV_OK);
    }
    kv_dier d = {kv, kv_test_key(7)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, kv_die_holding_lock, &d), 0);
    pthread_join(t, NULL);
    assert_int_equal(rs_kv_get(kv, &d.key, out, sizeof(out), &len), RS_KV_MISS);
    for (uint32_t i = 0; i < 50; i++) {
        if (i == 7) continue;
        rs_kv_key k = kv_test_key(i);
        assert_int_equal(rs_kv_get(kv, &k, out, sizeof(out), &len), RS_KV_OK);
        assert_int_equal(kv_value_check(out, len, i), 0);
    }
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.recoveries, 1);
    assert_int_equal(s.torn, 1);
    assert_int_equal(s.items, 49);
    /* The shard works normally afterwards. */
    kv_value_fill(v, sizeof(v), 7, 2);
    assert_int_equal(rs_kv_set(kv, &d.key, v, sizeof(v), 0), RS_KV_OK);
    assert_int_equal(rs_kv_get(kv, &d.key, out, sizeof(out), &len), RS_KV_OK);
    assert_int_equal(kv_value_check(out, len, 7), 0);
    kv_close_destroy(kv, &cfg);
}

/* A scribbled entry whose lock was released normally is still caught by
 * its checksum on get. */
static void test_checksum_on_get(void **state) {
    (void)state;
    rs_kv_config cfg;
    rs_kv *kv = kv_open_small(&cfg, "sum", 64, 1, 0, NULL);
    static uint8_t v[300], out[300];
    size_t len;
    rs_kv_key k = kv_test_key(3);
    kv_value_fill(v, sizeof(v), 3, 1);
    assert_int_equal(rs_kv_set(kv, &k, v, sizeof(v), 0), RS_KV_OK);
    kv_dier d = {kv, k};
    kv_die_holding_lock(&d); /* scribbles, holding the lock from this thread */
    pthread_mutex_unlock(&kv->shards[0].lock);
    assert_int_equal(rs_kv_get(kv, &k, out, sizeof(out), &len), RS_KV_MISS);
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.torn, 1);
    assert_int_equal(s.items, 0);
    kv_close_destroy(kv, &cfg);
}

/* ---- multi-threaded stress ------------------------------------------------ */

#define STRESS_THREADS 4
#define STRESS_OPS 40000
#define STRESS_KEYS 1024

typedef struct kv_stress {
    rs_kv *kv;
    uint32_t seed;
    uint64_t gets, hits, bad;
} kv_stress;

static void *kv_stress_thread(void *arg) {
    kv_stress *st = arg;
    static _Thread_local uint8_t v[8192], out[8192];
    uint32_t x = st->seed;
    for (uint32_t op = 0; op < STRESS_OPS; op++) {
        x = x * 1664525u + 1013904223u;
        uint32_t k = (x >> 8) % STRESS_KEYS;
        rs_kv_key key = kv_test_key(k);
        if ((x >> 28) < 5) { /* ~30% sets, lengths across many size classes */
            size_t len = 20 + ((x >> 3) % 8000);
            kv_value_fill(v, len, k, op);
            if (rs_kv_set(st->kv, &key, v, len, 0) != RS_KV_OK) st->bad++;
        } else {
            size_t len = 0;
            rs_kv_status s = rs_kv_get(st->kv, &key, out, sizeof(out), &len);
            st->gets++;
            if (s == RS_KV_OK) {
                st->hits++;
                if (kv_value_check(out, len, k) != 0) st->bad++;
            } else if (s != RS_KV_MISS) {
                st->bad++;
            }
        }
    }
    return NULL;
}

static void test_threads_stress(void **state) {
    (void)state;
    rs_kv_config cfg;
    /* Small on purpose: 4 shards x 4 pages, so eviction and page stealing
     * run all the time under contention. */
    rs_kv *kv = kv_open_small(&cfg, "stress", 8, 4, 4 * 4 * 64 * 1024, NULL);
    pthread_t t[STRESS_THREADS];
    kv_stress st[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++) {
        st[i] = (kv_stress){.kv = kv, .seed = 77u + (uint32_t)i * 1000003u};
        assert_int_equal(pthread_create(&t[i], NULL, kv_stress_thread, &st[i]), 0);
    }
    uint64_t gets = 0, hits = 0;
    for (int i = 0; i < STRESS_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(st[i].bad, 0);
        gets += st[i].gets;
        hits += st[i].hits;
    }
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.hits + s.misses, gets);
    assert_int_equal(s.hits, hits);
    assert_true(hits > 0);
    assert_true(s.evictions > 0);
    assert_int_equal(s.torn, 0);
    assert_int_equal(s.recoveries, 0);
    uint64_t live = 0;
    static uint8_t out[8192];
    for (uint32_t k = 0; k < STRESS_KEYS; k++) {
        rs_kv_key key = kv_test_key(k);
        size_t len;
        if (rs_kv_get(kv, &key, out, sizeof(out), &len) == RS_KV_OK) {
            assert_int_equal(kv_value_check(out, len, k), 0);
            live++;
        }
    }
    rs_kv_stats_get(kv, &s);
    assert_int_equal(s.items, live);
    kv_close_destroy(kv, &cfg);
}

/* ---- header checks on attach ------------------------------------------------ */

static void kv_poke_header(const char *name, off_t off, uint64_t value) {
    char shm[80];
    snprintf(shm, sizeof(shm), "/%s", name);
    int fd = shm_open(shm, O_RDWR, 0);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &value, sizeof(value), off), (ssize_t)sizeof(value));
    close(fd);
}

static void test_header_mismatch(void **state) {
    (void)state;
    rs_kv_config cfg;
    kv_test_config(&cfg, "hdr");
    cfg.capacity_mb = 4;
    cfg.max_value_kb = 60; /* 64 KiB pages: exactly 4 MiB */
    rs_err err = {0};
    rs_kv *a = rs_kv_open(&cfg, NULL, &err);
    assert_non_null(a);
    /* Same config attaches. */
    rs_kv *b = rs_kv_open(&cfg, NULL, &err);
    assert_non_null(b);
    rs_kv_key k = key_str("shared");
    char out[8];
    size_t len;
    assert_int_equal(rs_kv_set(a, &k, "abc", 3, 0), RS_KV_OK);
    assert_int_equal(rs_kv_get(b, &k, out, sizeof(out), &len), RS_KV_OK);
    assert_memory_equal(out, "abc", 3);
    rs_kv_detach(b);

    rs_kv_config other = cfg;
    other.capacity_mb = 8;
    assert_null(rs_kv_open(&other, NULL, &err));
    assert_non_null(strstr(err.msg, "capacity_bytes 4194304, this process expects 8388608"));
    assert_non_null(strstr(err.msg, "ringserve cache destroy"));
    other = cfg;
    other.max_value_kb = 48;
    assert_null(rs_kv_open(&other, NULL, &err));
    assert_non_null(strstr(err.msg, "max_value_bytes"));

    kv_poke_header(cfg.name, 8, 99); /* layout_version (and header_bytes) */
    assert_null(rs_kv_attach(cfg.name, NULL, &err));
    assert_non_null(strstr(err.msg, "layout_version 99"));
    kv_poke_header(cfg.name, 0, 0x1234);
    assert_null(rs_kv_open(&cfg, NULL, &err));
    assert_non_null(strstr(err.msg, "bad magic"));
    rs_kv_detach(a);
    assert_int_equal(rs_kv_destroy(cfg.name, &err), 0);

    assert_null(rs_kv_attach(cfg.name, NULL, &err));
    assert_non_null(strstr(err.msg, "no such segment"));
    assert_int_equal(rs_kv_destroy(cfg.name, &err), -1);
    assert_null(rs_kv_attach("bad/name", NULL, &err));
    assert_non_null(strstr(err.msg, "only letters"));
    /* Too small for its shards. */
    cfg.capacity_mb = 1;
    cfg.max_value_kb = 1024;
    assert_null(rs_kv_open(&cfg, NULL, &err));
    assert_non_null(strstr(err.msg, "too small"));
}

/* A segment whose creator died before writing the magic is refused after a
 * bounded wait, with the fix. */
static void test_uninitialised_segment(void **state) {
    (void)state;
    rs_kv_config cfg;
    kv_test_config(&cfg, "uninit");
    char shm[80];
    snprintf(shm, sizeof(shm), "/%s", cfg.name);
    int fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    rs_err err;
    assert_null(rs_kv_open(&cfg, NULL, &err));
    assert_non_null(strstr(err.msg, "never initialised"));
    assert_non_null(strstr(err.msg, "ringserve cache destroy"));
    assert_int_equal(rs_kv_destroy(cfg.name, &err), 0);
}

/* ---- keys -------------------------------------------------------------------- */

static void test_keys(void **state) {
    (void)state;
    float a_data[4] = {1, 2, 3, 4};
    int64_t b_data[2] = {7, 8};
    rs_tensor_list l = {.count = 2};
    l.t[0] = (rs_tensor_view){.name = {"a", 1},
                              .dtype = RS_DT_FP32,
                              .rank = 2,
                              .dims = {2, 2},
                              .data = (const uint8_t *)a_data,
                              .byte_len = sizeof(a_data)};
    l.t[1] = (rs_tensor_view){.name = {"b", 1},
                              .dtype = RS_DT_INT64,
                              .rank = 1,
                              .dims = {2},
                              .data = (const uint8_t *)b_data,
                              .byte_len = sizeof(b_data)};
    rs_kv_key k = rs_kv_key_for_request("mlp", "1", &l);
    rs_kv_key again = rs_kv_key_for_request_n((rs_str){"mlpX", 3}, (rs_str){"1", 1}, &l);
    assert_true(k.lo == again.lo && k.hi == again.hi);
    /* Input order does not matter. */
    rs_tensor_list swapped = {.count = 2};
    swapped.t[0] = l.t[1];
    swapped.t[1] = l.t[0];
    rs_kv_key s = rs_kv_key_for_request("mlp", "1", &swapped);
    assert_true(k.lo == s.lo && k.hi == s.hi);
    /* Each part matters. */
    rs_kv_key diff[6];
    diff[0] = rs_kv_key_for_request("mlq", "1", &l);
    diff[1] = rs_kv_key_for_request("mlp", "2", &l);
    rs_tensor_list m = l;
    m.t[0].name = (rs_str){"c", 1};
    diff[2] = rs_kv_key_for_request("mlp", "1", &m);
    m = l;
    m.t[0].dtype = RS_DT_INT32;
    diff[3] = rs_kv_key_for_request("mlp", "1", &m);
    m = l;
    m.t[0].dims[0] = 4;
    m.t[0].dims[1] = 1;
    diff[4] = rs_kv_key_for_request("mlp", "1", &m);
    float a2[4] = {1, 2, 3, 5};
    m = l;
    m.t[0].data = (const uint8_t *)a2;
    diff[5] = rs_kv_key_for_request("mlp", "1", &m);
    for (int i = 0; i < 6; i++)
        assert_false(k.lo == diff[i].lo && k.hi == diff[i].hi);
    /* Length prefixes: "ab"+"c" differs from "a"+"bc". */
    rs_kv_key x = rs_kv_key_for_request("ab", "c", NULL),
              y = rs_kv_key_for_request("a", "bc", NULL);
    assert_false(x.lo == y.lo && x.hi == y.hi);

    char hex[33];
    rs_kv_key_hex(&k, hex);
    assert_int_equal(strlen(hex), 32);
    rs_kv_key back;
    assert_int_equal(rs_kv_key_parse(hex, &back), 0);
    assert_true(back.lo == k.lo && back.hi == k.hi);
    XXH128_hash_t h = XXH3_128bits("abc", 3);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    rs_kv_key abc = rs_kv_key_from_bytes("abc", 3);
    rs_kv_key_hex(&abc, hex);
    char want[33];
    for (int i = 0; i < 16; i++)
        snprintf(want + 2 * i, 3, "%02x", c.digest[i]);
    assert_string_equal(hex, want);
    assert_int_equal(rs_kv_key_parse("0123", &back), -1);
    assert_int_equal(rs_kv_key_parse("0123456789abcdef0123456789abcdeg", &back), -1);
    assert_int_equal(rs_kv_key_parse("0123456789abcdef0123456789abcdef0", &back), -1);
}

/* ---- config -------------------------------------------------------------------- */

static int kv_parse(const char *text, rs_kv_config *out, rs_err *err) {
    rs_cfg *doc = rs_cfg_load_string(text, "c.yaml", err);
    assert_non_null(doc);
    rs_cfg_node root = rs_cfg_root(doc);
    rs_cfg_node section = rs_cfg_get(&root, "cache");
    int rc = rs_kv_config_parse(&section, out, err);
    rs_cfg_free(doc);
    return rc;
}

static void test_config(void **state) {
    (void)state;
    rs_kv_config c;
    rs_err err = {0};
    assert_int_equal(kv_parse("server: {}\n", &c, &err), 0);
    assert_string_equal(c.name, "ringserve-cache");
    assert_int_equal(c.capacity_mb, 64);
    assert_int_equal(c.persist[0], 0);
    assert_int_equal(kv_parse("cache:\n  name: c1\n  capacity_mb: 16\n  max_value_kb: 8\n"
                              "  default_ttl_s: 0\n  persist: /tmp/x.snap\n"
                              "  snapshot_interval_s: 5\n",
                              &c, &err),
                     0);
    assert_string_equal(c.name, "c1");
    assert_int_equal(c.capacity_mb, 16);
    assert_int_equal(c.max_value_kb, 8);
    assert_int_equal(c.default_ttl_s, 0);
    assert_string_equal(c.persist, "/tmp/x.snap");
    assert_int_equal(c.snapshot_interval_s, 5);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"cache:\n  capacity: 3\n", "c.yaml:2: cache.capacity: unknown field"},
        {"cache:\n  capacity_mb: 0\n", "c.yaml:2: cache.capacity_mb"},
        {"cache:\n  capacity_mb: lots\n", "c.yaml:2: cache.capacity_mb"},
        {"cache:\n  max_value_kb: 99999\n", "c.yaml:2: cache.max_value_kb"},
        {"cache:\n  capacity_mb: 1\n  max_value_kb: 2048\n",
         "c.yaml:3: cache.max_value_kb: 2048: larger than capacity_mb"},
        {"cache:\n  default_ttl_s: -1\n", "c.yaml:2: cache.default_ttl_s"},
        {"cache:\n  name: a/b\n", "c.yaml:2: cache.name: a/b: a shared-memory name"},
        {"cache:\n  name: .hidden\n", "c.yaml:2: cache.name: .hidden"},
        {"cache:\n  snapshot_interval_s: 0\n", "c.yaml:2: cache.snapshot_interval_s"},
        {"cache:\n  persist: [a]\n", "c.yaml:2: cache.persist"},
        {"cache: 3\n", "c.yaml:1: cache: expected a mapping"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        assert_int_equal(kv_parse(bad[i].text, &c, &err), -1);
        if (!strstr(err.msg, bad[i].want)) fail_msg("case %zu: got '%s'", i, err.msg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_lru),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_del_exists_stats),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_size_classes_share_pages),
        cmocka_unit_test(test_lock_owner_death),
        cmocka_unit_test(test_checksum_on_get),
        cmocka_unit_test(test_threads_stress),
        cmocka_unit_test(test_header_mismatch),
        cmocka_unit_test(test_uninitialised_segment),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

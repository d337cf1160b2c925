/* Unit tests for kvstore persistence: round trip, warm start, expired
 * records, periodic snapshots via rs_kv_tick, and damaged files
 * (truncated, bad checksum, garbage length, bad header, empty, missing). */
/* cmocka.h needs these four first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "engine/kvstore/kvstore.h"
#include "tests/kvstore/kv_test_util.h"

#define SNAP_HEADER 24u
#define REC_OVERHEAD 40u
#define VLEN 200u
#define REC (REC_OVERHEAD + VLEN)
#define NKEYS 50u

typedef struct snap_fixture {
    char dir[64];
    char path[128];
    kv_fake_clock clk;
    rs_kv_config cfg;
    rs_kv_options opt;
    rs_kv *kv;
} snap_fixture;

static int snap_setup(void **state) {
    snap_fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/rs-kvsnap-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof(f->path), "%s/cache.snap", f->dir);
    f->clk.now_ms = 1700000000000ull;
    kv_test_config(&f->cfg, "snap");
    f->cfg.capacity_mb = 8;
    f->cfg.max_value_kb = 60;
    snprintf(f->cfg.persist, sizeof(f->cfg.persist), "%s", f->path);
    f->cfg.snapshot_interval_s = 10;
    f->opt = (rs_kv_options){.clock = kv_fake_now, .clock_ctx = &f->clk};
    rs_err err;
    f->kv = rs_kv_open(&f->cfg, &f->opt, &err);
    if (!f->kv) return -1;
    *state = f;
    return 0;
}

static int snap_teardown(void **state) {
    snap_fixture *f = *state;
    rs_err err;
    if (f->kv) rs_kv_detach(f->kv);
    rs_kv_destroy(f->cfg.name, &err);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    free(f);
    return 0;
}

/* NKEYS values of VLEN bytes; keys 0..9 expire after 5 s, the rest never. */
static void snap_fill(snap_fixture *f) {
    uint8_t v[VLEN];
    for (uint32_t i = 0; i < NKEYS; i++) {
        rs_kv_key k = kv_test_key(i);
        kv_value_fill(v, VLEN, i, 1);
        assert_int_equal(rs_kv_set(f->kv, &k, v, VLEN, i < 10 ? 5 : 0), RS_KV_OK);
    }
}

/* Drops the segment and opens a fresh one without loading anything. */
static void snap_fresh(snap_fixture *f) {
    rs_err err;
    rs_kv_detach(f->kv);
    assert_int_equal(rs_kv_destroy(f->cfg.name, &err), 0);
    f->opt.no_snapshot_load = true;
    f->kv = rs_kv_open(&f->cfg, &f->opt, &err);
    assert_non_null(f->kv);
    f->opt.no_snapshot_load = false;
}

static uint32_t snap_count_valid(snap_fixture *f) {
    uint32_t n = 0;
    uint8_t out[VLEN];
    for (uint32_t i = 0; i < NKEYS; i++) {
        rs_kv_key k = kv_test_key(i);
        size_t len;
        if (rs_kv_get(f->kv, &k, out, sizeof(out), &len) == RS_KV_OK) {
            assert_int_equal(kv_value_check(out, len, i), 0);
            n++;
        }
    }
    return n;
}

static void snap_save(snap_fixture *f, int64_t want) {
    rs_err err;
    assert_int_equal(rs_kv_snapshot_save(f->kv, f->path, &err), want);
}

static void test_round_trip(void **state) {
    snap_fixture *f = *state;
    snap_fill(f);
    snap_save(f, NKEYS);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, SNAP_HEADER + NKEYS * REC);
    /* No temporary file is left behind. */
    char tmp[200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", f->path, (long)getpid());
    assert_int_not_equal(stat(tmp, &st), 0);

    /* A new segment warms itself from the file at open. */
    rs_err err;
    rs_kv_detach(f->kv);
    assert_int_equal(rs_kv_destroy(f->cfg.name, &err), 0);
    f->kv = rs_kv_open(&f->cfg, &f->opt, &err);
    assert_non_null(f->kv);
    assert_int_equal(snap_count_valid(f), NKEYS);
    /* TTLs survive: the expiring ten still expire on time. */
    f->clk.now_ms += 5000;
    assert_int_equal(snap_count_valid(f), NKEYS - 10);

    /* Loading a file whose records have expired skips them. */
    snap_fresh(f);
    rs_kv_load_report rep;
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_int_equal(rep.loaded, NKEYS - 10);
    assert_int_equal(rep.expired, 10);
    assert_false(rep.damaged);
}

static void test_close_and_tick_snapshot(void **state) {
    snap_fixture *f = *state;
    snap_fill(f);
    struct stat st;
    assert_int_equal(rs_kv_tick(f->kv), 0);
    assert_int_not_equal(stat(f->path, &st), 0); /* interval not reached */
    f->clk.now_ms += 10000;
    assert_int_equal(rs_kv_tick(f->kv), 0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, SNAP_HEADER + (NKEYS - 10) * REC); /* expired ones left out */
    /* The tick also swept the expired ten. */
    rs_kv_stats s;
    rs_kv_stats_get(f->kv, &s);
    assert_int_equal(s.expired, 10);
    assert_int_equal(s.items, NKEYS - 10);
    /* Clean shutdown snapshots what is there now. */
    rs_kv_key k = kv_test_key(20);
    assert_int_equal(rs_kv_del(f->kv, &k), RS_KV_OK);
    rs_kv_close(f->kv);
    f->kv = NULL;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, SNAP_HEADER + (NKEYS - 11) * REC);
}

static void snap_truncate(const char *path, off_t size) {
    assert_int_equal(truncate(path, size), 0);
}

static void snap_poke(const char *path, off_t off, const void *bytes, size_t n) {
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

static void test_truncated(void **state) {
    snap_fixture *f = *state;
    snap_fill(f);
    snap_save(f, NKEYS);
    snap_truncate(f->path, SNAP_HEADER + 30 * REC + REC / 2);
    snap_fresh(f);
    rs_kv_load_report rep;
    rs_err err;
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_int_equal(rep.loaded, 30);
    assert_true(rep.damaged && rep.truncated);
    assert_int_equal(rep.bad_offset, SNAP_HEADER + 30 * REC);
    assert_int_equal(snap_count_valid(f), 30);
    /* Cut inside the first record's header, and inside the file header. */
    snap_truncate(f->path, SNAP_HEADER + 10);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_int_equal(rep.loaded, 0);
    assert_true(rep.truncated);
    snap_truncate(f->path, 7);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_true(rep.truncated && rep.bad_offset == 0);
    snap_truncate(f->path, 0);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_true(rep.damaged);
    /* A missing file is a cold start, not an error. */
    unlink(f->path);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_false(rep.damaged);
    assert_int_equal(rep.loaded, 0);
}

static void test_corrupted(void **state) {
    snap_fixture *f = *state;
    snap_fill(f);
    snap_save(f, NKEYS);
    rs_kv_load_report rep;
    rs_err err;
    /* A flipped value byte in record 10: that record alone is skipped. */
    uint8_t x = 0x5a;
    snap_poke(f->path, SNAP_HEADER + 10 * REC + 100, &x, 1);
    snap_fresh(f);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_int_equal(rep.loaded, NKEYS - 1);
    assert_int_equal(rep.corrupt, 1);
    assert_true(rep.damaged && !rep.truncated);
    assert_int_equal(rep.bad_offset, SNAP_HEADER + 10 * REC);
    assert_int_equal(snap_count_valid(f), NKEYS - 1);
    /* A garbage length in record 20 as well: resynchronised after it. */
    uint32_t huge = 0xfffffff0u;
    snap_poke(f->path, SNAP_HEADER + 20 * REC + 4, &huge, sizeof(huge));
    snap_fresh(f);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_int_equal(rep.loaded, NKEYS - 2);
    assert_int_equal(rep.corrupt, 2);
    assert_int_equal(rep.bad_offset, SNAP_HEADER + 10 * REC);
    /* Garbage all the way from record 40: the 38 valid before it load. */
    uint8_t junk[REC];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 151 + 7);
    for (uint32_t r = 40; r < NKEYS; r++)
        snap_poke(f->path, SNAP_HEADER + r * REC, junk, REC);
    snap_fresh(f);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_int_equal(rep.loaded, 38);
    /* A file that is not a snapshot at all. */
    snap_poke(f->path, 0, "NOTASNAP", 8);
    snap_fresh(f);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_true(rep.damaged);
    assert_int_equal(rep.loaded, 0);
    /* A snapshot with records larger than this cache's max value skips them. */
    snap_fill(f);
    snap_save(f, NKEYS);
    rs_kv_detach(f->kv);
    assert_int_equal(rs_kv_destroy(f->cfg.name, &err), 0);
    rs_kv_config small = f->cfg;
    small.max_value_kb = 1;
    f->opt.no_snapshot_load = true;
    f->kv = rs_kv_open(&small, &f->opt, &err);
    assert_non_null(f->kv);
    rs_kv_key big = kv_test_key(999);
    static uint8_t v[2000];
    kv_value_fill(v, sizeof(v), 999, 1);
    rs_kv_detach(f->kv);
    f->kv = rs_kv_open(&f->cfg, &f->opt, &err); /* different max value: refused */
    assert_null(f->kv);
    assert_non_null(strstr(err.msg, "max_value_bytes"));
    f->kv = rs_kv_open(&small, &f->opt, &err);
    assert_non_null(f->kv);
    assert_int_equal(rs_kv_set(f->kv, &big, v, sizeof(v), 0), RS_KV_OVERSIZE);
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->path, &rep, &err), 0);
    assert_int_equal(rep.loaded, NKEYS); /* 200-byte values fit in 1 KiB */
    rs_kv_detach(f->kv);
    assert_int_equal(rs_kv_destroy(small.name, &err), 0);
    f->kv = rs_kv_open(&f->cfg, &f->opt, &err);
    assert_non_null(f->kv);
}

static void test_save_errors(void **state) {
    snap_fixture *f = *state;
    rs_err err;
    assert_int_equal(rs_kv_snapshot_save(f->kv, "/nonexistent-dir/x.snap", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.snap"));
    assert_non_null(strstr(err.msg, "No such file or directory"));
    rs_kv_load_report rep;
    assert_int_equal(rs_kv_snapshot_load(f->kv, f->dir, &rep, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, snap_setup, snap_teardown),
        cmocka_unit_test_setup_teardown(test_close_and_tick_snapshot, snap_setup, snap_teardown),
        cmocka_unit_test_setup_teardown(test_truncated, snap_setup, snap_teardown),
        cmocka_unit_test_setup_teardown(test_corrupted, snap_setup, snap_teardown),
        cmocka_unit_test_setup_teardown(test_save_errors, snap_setup, snap_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

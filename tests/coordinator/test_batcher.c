/* Tests for engine/coordinator/batcher: every flush rule, bounds, deadlines,
 * priorities and coalescing, driven by a fake clock (plain now_us values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "engine/coordinator/batcher.h"

typedef struct tokens {
    uint32_t n;
    uint64_t t[256];
} tokens;

static void collect(void *arg, uint64_t token) {
    tokens *ts = arg;
    assert_true(ts->n < 256);
    ts->t[ts->n++] = token;
}

static rs_batcher *make(rs_batcher_config *cfg) {
    rs_err err = {0};
    rs_batcher *b = rs_batcher_create(cfg, &err);
    if (!b) fail_msg("create: %s", err.msg);
    return b;
}

static rs_batcher_status submit(rs_batcher *b, uint64_t now, uint64_t token) {
    rs_batcher_request r = {.token = token};
    return rs_batcher_submit(b, now, &r);
}

static void test_config_check(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_err err = {0};
    rs_batcher_config_default(&cfg);
    assert_int_equal(rs_batcher_config_check(&cfg, &err), 0);
    cfg.max_batch_size = 0;
    assert_int_equal(rs_batcher_config_check(&cfg, &err), -1);
    assert_string_equal(err.msg, "max_batch_size: 0: must be 1..65536");
    rs_batcher_config_default(&cfg);
    cfg.preferred_count = 1;
    cfg.preferred_batch_sizes[0] = 9;
    assert_int_equal(rs_batcher_config_check(&cfg, &err), -1);
    assert_string_equal(err.msg, "preferred_batch_sizes[0]: 9: must be 1..max_batch_size (8)");
    rs_batcher_config_default(&cfg);
    cfg.batchable = false;
    assert_int_equal(rs_batcher_config_check(&cfg, &err), -1);
    assert_string_equal(err.msg, "max_batch_size: 8: must be 1 when batchable is false");
    rs_batcher_config_default(&cfg);
    cfg.default_priority = 2;
    assert_int_equal(rs_batcher_config_check(&cfg, &err), -1);
    assert_string_equal(err.msg, "default_priority: 2: must be 1..priority_levels (1)");
    rs_batcher_config_default(&cfg);
    cfg.max_queue_size = 0;
    assert_null(rs_batcher_create(&cfg, &err));
    assert_string_equal(err.msg, "max_queue_size: 0: must be 1..16777216");
}

static void test_flush_by_size(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 4;
    cfg.max_queue_delay_us = 1000;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[4];
    tokens exp = {0};
    for (uint64_t i = 1; i <= 3; i++) assert_int_equal(submit(b, 100, i), RS_BATCHER_QUEUED);
    assert_int_equal(rs_batcher_poll(b, 100, collect, &exp, items, NULL), 0);
    assert_int_equal(submit(b, 101, 4), RS_BATCHER_QUEUED);
    assert_int_equal(submit(b, 101, 5), RS_BATCHER_QUEUED);
    assert_int_equal(rs_batcher_next_event_us(b, 101), 101); /* due now */
    assert_int_equal(rs_batcher_poll(b, 101, collect, &exp, items, NULL), 4);
    for (uint32_t i = 0; i < 4; i++) assert_int_equal(items[i].token, i + 1);
    /* The fifth waits for its own delay. */
    assert_int_equal(rs_batcher_poll(b, 101, collect, &exp, items, NULL), 0);
    rs_batcher_stats st;
    rs_batcher_stats_get(b, &st);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.inflight, 4);
    assert_int_equal(st.batches, 1);
    assert_int_equal(exp.n, 0);
    rs_batcher_destroy(b);
}

static void test_flush_by_delay_from_first_arrival(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 8;
    cfg.max_queue_delay_us = 500;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[8];
    tokens exp = {0};
    assert_int_equal(rs_batcher_next_event_us(b, 0), UINT64_MAX);
    submit(b, 1000, 1);
    assert_int_equal(rs_batcher_next_event_us(b, 1000), 1500);
    submit(b, 1400, 2); /* a later arrival does not restart the timer */
    assert_int_equal(rs_batcher_next_event_us(b, 1400), 1500);
    assert_int_equal(rs_batcher_poll(b, 1499, collect, &exp, items, NULL), 0);
    assert_int_equal(rs_batcher_poll(b, 1500, collect, &exp, items, NULL), 2);
    assert_int_equal(items[0].token, 1);
    assert_int_equal(items[0].enqueued_us, 1000);
    assert_int_equal(items[1].token, 2);
    assert_int_equal(rs_batcher_next_event_us(b, 1500), UINT64_MAX);
    rs_batcher_destroy(b);
}

static void test_preferred_sizes(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 16;
    cfg.max_queue_delay_us = 100;
    cfg.preferred_count = 2;
    cfg.preferred_batch_sizes[0] = 4;
    cfg.preferred_batch_sizes[1] = 8;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[16];
    tokens exp = {0};
    /* Idle (nothing in flight): 3 queued is below every preferred size, so
     * wait; past the smallest (5 >= 4) the whole queue goes at once, before
     * the delay. */
    for (uint64_t i = 1; i <= 3; i++) submit(b, 0, i);
    assert_int_equal(rs_batcher_poll(b, 50, collect, &exp, items, NULL), 0);
    submit(b, 60, 4);
    submit(b, 60, 30);
    assert_int_equal(rs_batcher_poll(b, 60, collect, &exp, items, NULL), 5);
    assert_int_equal(items[4].token, 30);
    /* Busy (5 in flight): 7 queued past preferred 4 wait for the delay, then
     * go as one batch of 7, not 4 then 3. */
    for (uint64_t i = 5; i <= 11; i++) submit(b, 100, i);
    assert_int_equal(rs_batcher_poll(b, 150, collect, &exp, items, NULL), 0);
    assert_int_equal(rs_batcher_next_event_us(b, 150), 200);
    assert_int_equal(rs_batcher_poll(b, 200, collect, &exp, items, NULL), 7);
    assert_int_equal(items[0].token, 5);
    assert_int_equal(items[6].token, 11);
    /* Reaching the largest preferred size flushes at once, before the delay. */
    for (uint64_t i = 20; i < 28; i++) submit(b, 200, i);
    assert_int_equal(rs_batcher_poll(b, 200, collect, &exp, items, NULL), 8);
    assert_int_equal(items[7].token, 27);
    rs_batcher_destroy(b);
}

static void test_queue_full_overloaded(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 2;
    cfg.max_queue_size = 3;
    cfg.max_inflight = 2;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[2];
    tokens exp = {0};
    for (uint64_t i = 1; i <= 3; i++) assert_int_equal(submit(b, 0, i), RS_BATCHER_QUEUED);
    assert_int_equal(submit(b, 0, 4), RS_BATCHER_OVERLOADED);
    /* Dispatching frees queue room; in-flight room is bounded separately. */
    assert_int_equal(rs_batcher_poll(b, 0, collect, &exp, items, NULL), 2);
    assert_int_equal(submit(b, 0, 5), RS_BATCHER_QUEUED);
    assert_int_equal(submit(b, 0, 6), RS_BATCHER_QUEUED);
    assert_int_equal(submit(b, 0, 7), RS_BATCHER_OVERLOADED);
    /* Nothing more dispatches while 2 are in flight, even when due. */
    assert_int_equal(rs_batcher_poll(b, 10000, collect, &exp, items, NULL), 0);
    assert_int_equal(rs_batcher_next_event_us(b, 10000), UINT64_MAX);
    tokens done = {0};
    assert_int_equal(rs_batcher_complete(b, items[0].ticket, collect, &done), 1);
    assert_int_equal(done.t[0], 1);
    assert_int_equal(rs_batcher_poll(b, 10000, collect, &exp, items, NULL), 1);
    assert_int_equal(items[0].token, 3);
    rs_batcher_stats st;
    rs_batcher_stats_get(b, &st);
    assert_int_equal(st.overloaded, 2);
    assert_int_equal(st.inflight, 2);
    assert_int_equal(st.queued, 2);
    tokens drained = {0};
    assert_int_equal(rs_batcher_drain(b, collect, &drained), 2);
    assert_int_equal(drained.t[0], 5);
    assert_int_equal(drained.t[1], 6);
    rs_batcher_destroy(b);
}

static void test_deadlines(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 4;
    cfg.max_queue_delay_us = 1000;
    cfg.default_timeout_us = 300;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[4];
    tokens exp = {0};
    rs_batcher_request r = {.token = 1, .deadline_us = 200};
    assert_int_equal(rs_batcher_submit(b, 0, &r), RS_BATCHER_QUEUED);
    assert_int_equal(submit(b, 0, 2), RS_BATCHER_QUEUED); /* default: 300 */
    r = (rs_batcher_request){.token = 3, .deadline_us = 5000};
    assert_int_equal(rs_batcher_submit(b, 0, &r), RS_BATCHER_QUEUED);
    r = (rs_batcher_request){.token = 4, .deadline_us = 10};
    assert_int_equal(rs_batcher_submit(b, 10, &r), RS_BATCHER_EXPIRED);
    assert_int_equal(rs_batcher_next_event_us(b, 0), 200);
    assert_int_equal(rs_batcher_poll(b, 200, collect, &exp, items, NULL), 0);
    assert_int_equal(exp.n, 1);
    assert_int_equal(exp.t[0], 1);
    assert_int_equal(rs_batcher_next_event_us(b, 200), 300);
    assert_int_equal(rs_batcher_poll(b, 300, collect, &exp, items, NULL), 0);
    assert_int_equal(exp.n, 2);
    assert_int_equal(exp.t[1], 2);
    /* The survivor is dispatched by the delay; the expired ones never are. */
    assert_int_equal(rs_batcher_poll(b, 1000, collect, &exp, items, NULL), 1);
    assert_int_equal(items[0].token, 3);
    rs_batcher_stats st;
    rs_batcher_stats_get(b, &st);
    assert_int_equal(st.expired, 3);
    rs_batcher_destroy(b);
}

static void test_priorities(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 3;
    cfg.max_queue_delay_us = 100;
    cfg.priority_levels = 3;
    cfg.default_priority = 2;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[3];
    tokens exp = {0};
    uint32_t prio[] = {3, 0, 3, 1, 0, 1};
    for (uint64_t i = 0; i < 6; i++) {
        rs_batcher_request r = {.token = i + 1, .priority = prio[i]};
        assert_int_equal(rs_batcher_submit(b, i, &r), RS_BATCHER_QUEUED);
    }
    rs_batcher_request bad = {.token = 99, .priority = 4};
    assert_int_equal(rs_batcher_submit(b, 6, &bad), RS_BATCHER_BAD_PRIORITY);
    assert_int_equal(rs_batcher_poll(b, 6, collect, &exp, items, NULL), 3);
    /* level 1 (tokens 4, 6) first, then the default level 2 (token 2). */
    assert_int_equal(items[0].token, 4);
    assert_int_equal(items[1].token, 6);
    assert_int_equal(items[2].token, 2);
    assert_int_equal(items[2].priority, 2);
    assert_int_equal(rs_batcher_poll(b, 6, collect, &exp, items, NULL), 3);
    assert_int_equal(items[0].token, 5);
    assert_int_equal(items[1].token, 1);
    assert_int_equal(items[2].token, 3);
    rs_batcher_destroy(b);
}

static void test_coalescing(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 4;
    cfg.max_queue_delay_us = 100;
    cfg.max_queue_size = 8;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[4];
    tokens exp = {0};
    rs_batcher_request r = {.token = 1, .has_key = true, .key = {7, 8}};
    assert_int_equal(rs_batcher_submit(b, 0, &r), RS_BATCHER_QUEUED);
    r.token = 2;
    assert_int_equal(rs_batcher_submit(b, 10, &r), RS_BATCHER_COALESCED);
    rs_batcher_request other = {.token = 3, .has_key = true, .key = {7, 9}};
    assert_int_equal(rs_batcher_submit(b, 10, &other), RS_BATCHER_QUEUED);
    assert_int_equal(rs_batcher_poll(b, 100, collect, &exp, items, NULL), 2); /* one computation for 1+2 */
    assert_int_equal(items[0].token, 1);
    assert_int_equal(items[1].token, 3);
    /* A request identical to one in flight joins it too. */
    r.token = 4;
    assert_int_equal(rs_batcher_submit(b, 150, &r), RS_BATCHER_COALESCED);
    tokens done = {0};
    assert_int_equal(rs_batcher_complete(b, items[0].ticket, collect, &done), 3);
    assert_int_equal(done.t[0], 1);
    assert_int_equal(done.t[1], 2);
    assert_int_equal(done.t[2], 4);
    /* After completion the key is free: the next one computes again. */
    r.token = 5;
    assert_int_equal(rs_batcher_submit(b, 200, &r), RS_BATCHER_QUEUED);
    rs_batcher_stats st;
    rs_batcher_stats_get(b, &st);
    assert_int_equal(st.coalesced, 2);
    assert_int_equal(st.followers, 0);
    rs_batcher_destroy(b);
}

static void test_coalesced_deadlines(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 4;
    cfg.max_queue_delay_us = 1000;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[4];
    tokens exp = {0};
    rs_batcher_request r = {.token = 1, .has_key = true, .key = {1, 1}, .deadline_us = 100};
    rs_batcher_submit(b, 0, &r);
    r = (rs_batcher_request){.token = 2, .has_key = true, .key = {1, 1}, .deadline_us = 50};
    assert_int_equal(rs_batcher_submit(b, 0, &r), RS_BATCHER_COALESCED);
    r = (rs_batcher_request){.token = 3, .has_key = true, .key = {1, 1}, .deadline_us = 5000};
    assert_int_equal(rs_batcher_submit(b, 0, &r), RS_BATCHER_COALESCED);
    /* The follower with the nearest deadline expires alone. */
    assert_int_equal(rs_batcher_poll(b, 50, collect, &exp, items, NULL), 0);
    assert_int_equal(exp.n, 1);
    assert_int_equal(exp.t[0], 2);
    /* The leader expires; its surviving follower takes its place. */
    assert_int_equal(rs_batcher_poll(b, 100, collect, &exp, items, NULL), 0);
    assert_int_equal(exp.n, 2);
    assert_int_equal(exp.t[1], 1);
    r = (rs_batcher_request){.token = 4, .has_key = true, .key = {1, 1}};
    assert_int_equal(rs_batcher_submit(b, 200, &r), RS_BATCHER_COALESCED);
    assert_int_equal(rs_batcher_poll(b, 1000, collect, &exp, items, NULL), 1);
    assert_int_equal(items[0].token, 3);
    tokens done = {0};
    assert_int_equal(rs_batcher_complete(b, items[0].ticket, collect, &done), 2);
    assert_int_equal(done.t[1], 4);
    rs_batcher_destroy(b);
}

static void test_rows(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 16;
    cfg.max_queue_delay_us = 100;
    cfg.preferred_count = 1;
    cfg.preferred_batch_sizes[0] = 8;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[16];
    tokens exp = {0};
    uint32_t rows = 0;
    rs_batcher_request r = {.token = 1, .rows = 17};
    assert_int_equal(rs_batcher_submit(b, 0, &r), RS_BATCHER_TOO_LARGE);
    uint32_t sizes[] = {3, 4, 6, 2};
    for (uint32_t i = 0; i < 4; i++) {
        r = (rs_batcher_request){.token = i + 1, .rows = sizes[i]};
        assert_int_equal(rs_batcher_submit(b, 0, &r), RS_BATCHER_QUEUED);
    }
    /* 15 rows >= preferred 8: flush at once; 3+4 fit, 6 more would not. */
    assert_int_equal(rs_batcher_poll(b, 0, collect, &exp, items, &rows), 2);
    assert_int_equal(rows, 7);
    assert_int_equal(items[1].rows, 4);
    /* 6+2 = 8 rows queued: the preferred size again. */
    assert_int_equal(rs_batcher_poll(b, 0, collect, &exp, items, &rows), 2);
    assert_int_equal(rows, 8);
    /* A lone request larger than the target still goes, whole, by the delay. */
    r = (rs_batcher_request){.token = 9, .rows = 12};
    rs_batcher_submit(b, 10, &r);
    assert_int_equal(rs_batcher_poll(b, 10, collect, &exp, items, &rows), 1);
    assert_int_equal(rows, 12);
    rs_batcher_stats st;
    rs_batcher_stats_get(b, &st);
    assert_int_equal(st.queued_rows, 0);
    rs_batcher_destroy(b);
}

static void test_not_batchable(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 1;
    cfg.batchable = false;
    cfg.max_queue_delay_us = 100000;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[1];
    tokens exp = {0};
    submit(b, 0, 1);
    submit(b, 0, 2);
    assert_int_equal(rs_batcher_poll(b, 0, collect, &exp, items, NULL), 1);
    assert_int_equal(items[0].token, 1);
    assert_int_equal(rs_batcher_poll(b, 0, collect, &exp, items, NULL), 1);
    assert_int_equal(items[0].token, 2);
    assert_int_equal(rs_batcher_poll(b, 0, collect, &exp, items, NULL), 0);
    rs_batcher_destroy(b);
}

/* dispatch_when_idle: with nothing in flight a lone request goes at once;
 * while a batch is in flight, requests wait for the delay (or the size). */
static void test_dispatch_when_idle(void **state) {
    (void)state;
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 8;
    cfg.max_queue_delay_us = 1000;
    cfg.dispatch_when_idle = true;
    rs_batcher *b = make(&cfg);
    rs_batcher_item items[8];
    tokens exp = {0}, done = {0};
    assert_int_equal(submit(b, 100, 1), RS_BATCHER_QUEUED);
    assert_int_equal(rs_batcher_next_event_us(b, 100), 100); /* due now: idle */
    assert_int_equal(rs_batcher_poll(b, 100, collect, &exp, items, NULL), 1);
    uint32_t first = items[0].ticket;
    /* busy: the next two wait for the delay from the first of them */
    assert_int_equal(submit(b, 110, 2), RS_BATCHER_QUEUED);
    assert_int_equal(submit(b, 120, 3), RS_BATCHER_QUEUED);
    assert_int_equal(rs_batcher_poll(b, 500, collect, &exp, items, NULL), 0);
    assert_int_equal(rs_batcher_next_event_us(b, 500), 1110);
    /* the running batch ends: idle again, both go together at once */
    assert_int_equal(rs_batcher_complete(b, first, collect, &done), 1);
    assert_int_equal(rs_batcher_poll(b, 600, collect, &exp, items, NULL), 2);
    assert_int_equal(items[0].token, 2);
    assert_int_equal(items[1].token, 3);
    assert_int_equal(exp.n, 0);
    rs_batcher_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_flush_by_size),
        cmocka_unit_test(test_dispatch_when_idle),
        cmocka_unit_test(test_flush_by_delay_from_first_arrival),
        cmocka_unit_test(test_preferred_sizes),
        cmocka_unit_test(test_queue_full_overloaded),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_priorities),
        cmocka_unit_test(test_coalescing),
        cmocka_unit_test(test_coalesced_deadlines),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_not_batchable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

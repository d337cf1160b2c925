/* Tests for engine/router/retry: which outcomes retry, the budget (at most
 * budget_percent extra load over the window, plus min_retries), the sliding
 * window, and the retry config section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/router/retry.h"

#define MS 1000000ull

static void test_classify(void **state) {
    (void)state;
    assert_true(rs_outcome_retryable(RS_OUTCOME_CONN_FAILED));
    assert_true(rs_outcome_retryable(RS_OUTCOME_TIMEOUT));
    assert_true(rs_outcome_retryable(RS_OUTCOME_TRANSIENT));
    assert_false(rs_outcome_retryable(RS_OUTCOME_OK));
    assert_false(rs_outcome_retryable(RS_OUTCOME_WORKER_ERROR));
    assert_false(rs_outcome_retryable(RS_OUTCOME_CANCELLED));
    assert_int_equal(rs_outcome_from_status(RS_E_TRANSIENT), RS_OUTCOME_TRANSIENT);
    assert_int_equal(rs_outcome_from_status(RS_E_OVERLOADED), RS_OUTCOME_TRANSIENT);
    assert_int_equal(rs_outcome_from_status(RS_E_BACKEND), RS_OUTCOME_WORKER_ERROR);
    assert_int_equal(rs_outcome_from_status(RS_E_INVALID_INPUT), RS_OUTCOME_OK);
    assert_int_equal(rs_outcome_from_status(RS_OK), RS_OUTCOME_OK);
    assert_int_equal(rs_outcome_from_status(RS_E_CHECKSUM), RS_OUTCOME_CONN_FAILED);
    assert_string_equal(rs_outcome_name(RS_OUTCOME_TIMEOUT), "timeout");
}

static void test_budget_caps_extra_load(void **state) {
    (void)state;
    rs_retry_config cfg;
    rs_retry_config_default(&cfg);
    assert_int_equal(cfg.budget_percent, 10);
    rs_retry_budget b;
    uint64_t now = 5000 * MS;
    rs_retry_budget_init(&b, &cfg, now);
    /* an outage: every one of 1000 requests wants a retry */
    uint64_t granted = 0;
    for (int i = 0; i < 1000; i++) {
        rs_retry_budget_note_request(&b, now);
        granted += rs_retry_budget_take(&b, now);
        now += 1 * MS; /* 1 s in all: inside the 10 s window */
    }
    /* at most 10% extra load, plus the floor of min_retries */
    assert_true(granted <= 1000 * 10 / 100 + cfg.min_retries);
    assert_true(granted >= 1000 * 10 / 100);
    assert_int_equal(b.retries_total, granted);
    assert_int_equal(b.refused_total, 1000 - granted);
    /* a quiet coordinator can still retry min_retries times */
    rs_retry_budget q;
    rs_retry_budget_init(&q, &cfg, now);
    for (uint32_t i = 0; i < cfg.min_retries; i++)
        assert_true(rs_retry_budget_take(&q, now));
    assert_false(rs_retry_budget_take(&q, now));
    /* the window slides: after it has passed, the old retries no longer count */
    now += cfg.budget_window_ms * MS;
    uint64_t rq, rt;
    rs_retry_budget_window(&q, now, &rq, &rt);
    assert_int_equal(rq, 0);
    assert_int_equal(rt, 0);
    assert_true(rs_retry_budget_take(&q, now));
    /* zero percent, zero floor: never */
    cfg.budget_percent = 0;
    cfg.min_retries = 0;
    rs_retry_budget z;
    rs_retry_budget_init(&z, &cfg, now);
    for (int i = 0; i < 100; i++)
        rs_retry_budget_note_request(&z, now);
    assert_false(rs_retry_budget_take(&z, now));
}

static void test_budget_window_partial(void **state) {
    (void)state;
    rs_retry_config cfg;
    rs_retry_config_default(&cfg);
    cfg.min_retries = 0;
    rs_retry_budget b;
    uint64_t now = 0;
    rs_retry_budget_init(&b, &cfg, now);
    for (int i = 0; i < 100; i++)
        rs_retry_budget_note_request(&b, now);
    now += 5000 * MS;
    for (int i = 0; i < 100; i++)
        rs_retry_budget_note_request(&b, now);
    uint64_t rq, rt;
    rs_retry_budget_window(&b, now, &rq, &rt);
    assert_int_equal(rq, 200);
    /* the first hundred fall out of the 10 s window */
    now += 5000 * MS;
    rs_retry_budget_window(&b, now, &rq, &rt);
    assert_int_equal(rq, 100);
    for (int i = 0; i < 10; i++)
        assert_true(rs_retry_budget_take(&b, now));
    assert_false(rs_retry_budget_take(&b, now));
}

static void test_config(void **state) {
    (void)state;
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"retry:\n  max_attempts: 0\n", "r.yaml:2: retry.max_attempts: '0': out of range [1, 10]"},
        {"retry:\n  budget_percent: 101\n",
         "r.yaml:2: retry.budget_percent: '101': out of range [0, 100]"},
        {"retry:\n  budget_window_ms: 5\n", "r.yaml:2: retry.budget_window_ms: '5': out of range"},
        {"retry:\n  attempts: 2\n", "r.yaml:2: retry.attempts: unknown field"},
    };
    rs_err err = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rs_cfg *c = rs_cfg_load_string(bad[i].text, "r.yaml", &err);
        rs_cfg_node root = rs_cfg_root(c);
        rs_cfg_node sec = rs_cfg_get(&root, "retry");
        rs_retry_config rc;
        err.msg[0] = '\0';
        assert_int_equal(rs_retry_config_parse(&sec, &rc, &err), -1);
        if (!strstr(err.msg, bad[i].msg)) fail_msg("got '%s', want '%s'", err.msg, bad[i].msg);
        rs_cfg_free(c);
    }
    rs_cfg *c = rs_cfg_load_string("retry:\n  max_attempts: 2\n  budget_percent: 20\n"
                                   "  budget_window_ms: 1000\n  min_retries: 0\n",
                                   "r.yaml", &err);
    rs_cfg_node root = rs_cfg_root(c);
    rs_cfg_node sec = rs_cfg_get(&root, "retry");
    rs_retry_config rc;
    assert_int_equal(rs_retry_config_parse(&sec, &rc, &err), 0);
    assert_int_equal(rc.max_attempts, 2);
    assert_int_equal(rc.budget_percent, 20);
    assert_int_equal(rc.budget_window_ms, 1000);
    assert_int_equal(rc.min_retries, 0);
    rs_cfg_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_budget_caps_extra_load),
        cmocka_unit_test(test_budget_window_partial),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

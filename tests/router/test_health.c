/* Tests for engine/health: the ping state machine both ways, timeouts, the
 * circuit breaker, and the health config section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/health/health.h"

#define MS 1000000ull

static rs_health_config cfg;

static int setup(void **state) {
    (void)state;
    rs_health_config_default(&cfg);
    return 0;
}

/* One ping round at now: sends, then either answers or lets it time out. */
static void ping_round(rs_health *h, uint64_t *now, bool answer) {
    assert_true(rs_health_ping_due(h, *now));
    uint64_t seq = rs_health_ping_sent(h, *now);
    assert_false(rs_health_ping_due(h, *now)); /* one outstanding at a time */
    if (answer) {
        assert_true(rs_health_pong(h, seq, *now + 1 * MS));
    } else {
        assert_false(rs_health_check_timeout(h, *now + cfg.timeout_ms * MS - 1));
        assert_true(rs_health_check_timeout(h, *now + cfg.timeout_ms * MS));
    }
    *now += cfg.interval_ms * MS;
}

static void test_defaults(void **state) {
    (void)state;
    assert_int_equal(cfg.interval_ms, 5000);
    assert_int_equal(cfg.timeout_ms, 2000);
    assert_int_equal(cfg.failure_threshold, 3);
}

static void test_down_and_up(void **state) {
    (void)state;
    rs_health h;
    uint64_t now = 1000 * MS;
    rs_health_init(&h, &cfg, RS_HEALTH_UP, now);
    assert_true(rs_health_routable(&h, now));
    /* the schedule: next ping one interval after the last */
    ping_round(&h, &now, true);
    assert_false(rs_health_ping_due(&h, now - 1));
    /* two failures: still up; the third: down */
    ping_round(&h, &now, false);
    ping_round(&h, &now, false);
    assert_int_equal(h.state, RS_HEALTH_UP);
    ping_round(&h, &now, false);
    assert_int_equal(h.state, RS_HEALTH_DOWN);
    assert_false(rs_health_routable(&h, now));
    /* one success is not enough (success_threshold 2), a failure resets it */
    ping_round(&h, &now, true);
    assert_int_equal(h.state, RS_HEALTH_DOWN);
    ping_round(&h, &now, false);
    ping_round(&h, &now, true);
    assert_int_equal(h.state, RS_HEALTH_DOWN);
    ping_round(&h, &now, true);
    assert_int_equal(h.state, RS_HEALTH_UP);
    assert_true(rs_health_routable(&h, now));
    /* a success between failures resets the failure run */
    ping_round(&h, &now, false);
    ping_round(&h, &now, false);
    ping_round(&h, &now, true);
    ping_round(&h, &now, false);
    ping_round(&h, &now, false);
    assert_int_equal(h.state, RS_HEALTH_UP);
}

static void test_unknown_stale_and_send_failure(void **state) {
    (void)state;
    rs_health h;
    uint64_t now = 0;
    rs_health_init(&h, &cfg, RS_HEALTH_UNKNOWN, now);
    assert_false(rs_health_routable(&h, now)); /* never heard from: no traffic */
    assert_int_equal(rs_health_next_event_ns(&h), 0);
    uint64_t seq = rs_health_ping_sent(&h, now);
    assert_int_equal(rs_health_next_event_ns(&h), cfg.timeout_ms * MS);
    assert_false(rs_health_pong(&h, seq + 1, now)); /* stale / foreign seq ignored */
    assert_true(rs_health_pong(&h, seq, now));
    assert_int_equal(h.state, RS_HEALTH_UP);    /* first answer suffices */
    assert_false(rs_health_pong(&h, seq, now)); /* duplicate ignored */
    /* a late PONG after its timeout does not count */
    now += cfg.interval_ms * MS;
    seq = rs_health_ping_sent(&h, now);
    assert_true(rs_health_check_timeout(&h, now + cfg.timeout_ms * MS));
    assert_false(rs_health_pong(&h, seq, now + cfg.timeout_ms * MS + 1));
    assert_int_equal(h.ping_fail_run, 1);
    /* suspect: the confirming ping is due at once, not an interval later */
    assert_true(rs_health_ping_due(&h, now + cfg.timeout_ms * MS));
    /* send failures count like timeouts */
    now += cfg.interval_ms * MS;
    (void)rs_health_ping_sent(&h, now);
    rs_health_ping_failed(&h, now);
    now += cfg.interval_ms * MS;
    (void)rs_health_ping_sent(&h, now);
    rs_health_ping_failed(&h, now);
    assert_int_equal(h.state, RS_HEALTH_DOWN);
}

static void test_breaker(void **state) {
    (void)state;
    rs_health h;
    uint64_t now = 1000 * MS;
    rs_health_init(&h, &cfg, RS_HEALTH_UP, now);
    /* four failures and a success: stays closed */
    for (int i = 0; i < 4; i++)
        rs_health_on_result(&h, false, rs_health_on_pick(&h, now), now);
    rs_health_on_result(&h, true, false, now);
    assert_int_equal(h.breaker, RS_BREAKER_CLOSED);
    /* five in a row: open, no traffic */
    for (uint32_t i = 0; i < cfg.breaker_failures; i++) {
        assert_true(rs_health_admit(&h, now));
        rs_health_on_result(&h, false, rs_health_on_pick(&h, now), now);
    }
    assert_int_equal(h.breaker, RS_BREAKER_OPEN);
    assert_false(rs_health_routable(&h, now));
    assert_false(rs_health_admit(&h, now + cfg.breaker_cooldown_ms * MS - 1));
    /* cool-down over: half-open, exactly one trial at a time */
    now += cfg.breaker_cooldown_ms * MS;
    assert_true(rs_health_routable(&h, now));
    assert_true(rs_health_admit(&h, now));
    assert_int_equal(h.breaker, RS_BREAKER_HALF_OPEN);
    bool trial = rs_health_on_pick(&h, now);
    assert_true(trial);
    assert_false(rs_health_admit(&h, now));
    assert_false(rs_health_routable(&h, now));
    /* the trial fails: open again for a whole cool-down */
    rs_health_on_result(&h, false, trial, now);
    assert_int_equal(h.breaker, RS_BREAKER_OPEN);
    assert_false(rs_health_admit(&h, now + cfg.breaker_cooldown_ms * MS - 1));
    now += cfg.breaker_cooldown_ms * MS;
    /* an abandoned trial frees the slot without a verdict */
    trial = rs_health_on_pick(&h, now);
    assert_true(trial);
    rs_health_on_abandon(&h, trial);
    assert_int_equal(h.breaker, RS_BREAKER_HALF_OPEN);
    assert_true(rs_health_admit(&h, now));
    /* the trial succeeds: closed */
    trial = rs_health_on_pick(&h, now);
    rs_health_on_result(&h, true, trial, now);
    assert_int_equal(h.breaker, RS_BREAKER_CLOSED);
    assert_false(rs_health_on_pick(&h, now)); /* closed: picks are not trials */
}

static void test_recovery_resets_breaker(void **state) {
    (void)state;
    rs_health h;
    uint64_t now = 0;
    rs_health_init(&h, &cfg, RS_HEALTH_UP, now);
    for (uint32_t i = 0; i < cfg.breaker_failures; i++)
        rs_health_on_result(&h, false, false, now);
    assert_int_equal(h.breaker, RS_BREAKER_OPEN);
    for (uint32_t i = 0; i < cfg.failure_threshold; i++)
        ping_round(&h, &now, false);
    assert_int_equal(h.state, RS_HEALTH_DOWN);
    for (uint32_t i = 0; i < cfg.success_threshold; i++)
        ping_round(&h, &now, true);
    assert_int_equal(h.state, RS_HEALTH_UP);
    assert_int_equal(h.breaker, RS_BREAKER_CLOSED);
    assert_int_equal(h.traffic_fail_run, 0);
}

static void test_config(void **state) {
    (void)state;
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"health:\n  interval_ms: 0\n", "h.yaml:2: health.interval_ms: '0': out of range"},
        {"health:\n  interval_ms: 1000\n  timeout_ms: 1000\n",
         "h.yaml:3: health.timeout_ms: '1000': must be less than health.interval_ms (1000)"},
        {"health:\n  failure_threshold: 0\n",
         "h.yaml:2: health.failure_threshold: '0': out of range"},
        {"health:\n  success_threshold: -1\n",
         "health.success_threshold: '-1': expected a non-negative integer"},
        {"health:\n  interval: 5\n", "h.yaml:2: health.interval: unknown field"},
        {"health: 5\n", "h.yaml:1: health: expected a mapping"},
    };
    rs_err err = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rs_cfg *c = rs_cfg_load_string(bad[i].text, "h.yaml", &err);
        assert_non_null(c);
        rs_cfg_node root = rs_cfg_root(c);
        rs_cfg_node sec = rs_cfg_get(&root, "health");
        rs_health_config hc;
        err.msg[0] = '\0';
        assert_int_equal(rs_health_config_parse(&sec, &hc, &err), -1);
        if (!strstr(err.msg, bad[i].msg)) fail_msg("got '%s', want '%s'", err.msg, bad[i].msg);
        rs_cfg_free(c);
    }
    rs_cfg *c = rs_cfg_load_string("health:\n  interval_ms: 100\n  timeout_ms: 50\n"
                                   "  failure_threshold: 2\n  success_threshold: 1\n"
                                   "  breaker_failures: 7\n  breaker_cooldown_ms: 300\n",
                                   "h.yaml", &err);
    rs_cfg_node root = rs_cfg_root(c);
    rs_cfg_node sec = rs_cfg_get(&root, "health");
    rs_health_config hc;
    assert_int_equal(rs_health_config_parse(&sec, &hc, &err), 0);
    assert_int_equal(hc.interval_ms, 100);
    assert_int_equal(hc.timeout_ms, 50);
    assert_int_equal(hc.failure_threshold, 2);
    assert_int_equal(hc.success_threshold, 1);
    assert_int_equal(hc.breaker_failures, 7);
    assert_int_equal(hc.breaker_cooldown_ms, 300);
    rs_cfg_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_down_and_up, setup),
        cmocka_unit_test_setup(test_unknown_stale_and_send_failure, setup),
        cmocka_unit_test_setup(test_breaker, setup),
        cmocka_unit_test_setup(test_recovery_resets_breaker, setup),
        cmocka_unit_test_setup(test_config, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

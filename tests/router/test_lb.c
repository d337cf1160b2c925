/* Tests for engine/load_balancer: each strategy's distribution, least-latency
 * probing, EWMA, and the load_balancer config section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/load_balancer/lb.h"

#define MS 1000000ull

typedef struct pool {
    rs_lb_stats s[8];
    const rs_lb_stats *c[8];
    uint32_t n;
} pool;

static void pool_init(pool *p, uint32_t n) {
    memset(p, 0, sizeof(*p));
    p->n = n;
    for (uint32_t i = 0; i < n; i++) {
        p->s[i].weight = 1;
        p->c[i] = &p->s[i];
    }
}

static void test_round_robin_exactly_even(void **state) {
    (void)state;
    pool p;
    pool_init(&p, 4);
    rs_lb lb;
    rs_lb_init(&lb, RS_LB_ROUND_ROBIN, 1, 10000);
    uint32_t count[4] = {0};
    for (int i = 0; i < 4000; i++)
        count[rs_lb_pick(&lb, p.c, p.n, 0)]++;
    for (int i = 0; i < 4; i++)
        assert_int_equal(count[i], 1000);
    /* and in order: a cycle visits each once */
    uint32_t first = rs_lb_pick(&lb, p.c, p.n, 0);
    for (uint32_t k = 1; k < 4; k++)
        assert_int_equal(rs_lb_pick(&lb, p.c, p.n, 0), (first + k) % 4);
}

static void test_least_connections_skewed(void **state) {
    (void)state;
    pool p;
    pool_init(&p, 4);
    p.s[0].in_flight = 5;
    p.s[1].in_flight = 0;
    p.s[2].in_flight = 3;
    p.s[3].in_flight = 1;
    rs_lb lb;
    rs_lb_init(&lb, RS_LB_LEAST_CONNECTIONS, 1, 10000);
    /* every pick is a minimum; picks fill the idle ones first */
    for (int k = 0; k < 12; k++) {
        uint32_t i = rs_lb_pick(&lb, p.c, p.n, 0);
        for (uint32_t j = 0; j < p.n; j++)
            assert_true(p.s[i].in_flight <= p.s[j].in_flight);
        p.s[i].in_flight++;
    }
    /* 9 + 12 = 21 in flight over 4 -> levelled at 5 or 6 */
    for (uint32_t j = 0; j < p.n; j++)
        assert_in_range(p.s[j].in_flight, 5, 6);
    /* ties rotate: with equal load every worker gets picked */
    pool_init(&p, 4);
    uint32_t count[4] = {0};
    for (int k = 0; k < 400; k++)
        count[rs_lb_pick(&lb, p.c, p.n, 0)]++;
    for (int j = 0; j < 4; j++)
        assert_int_equal(count[j], 100);
}

static void test_random_seeded(void **state) {
    (void)state;
    pool p;
    pool_init(&p, 5);
    rs_lb a, b, c;
    rs_lb_init(&a, RS_LB_RANDOM, 42, 10000);
    rs_lb_init(&b, RS_LB_RANDOM, 42, 10000);
    rs_lb_init(&c, RS_LB_RANDOM, 43, 10000);
    uint32_t count[5] = {0};
    int differ = 0;
    for (int i = 0; i < 50000; i++) {
        uint32_t x = rs_lb_pick(&a, p.c, p.n, 0);
        assert_int_equal(x, rs_lb_pick(&b, p.c, p.n, 0)); /* same seed, same sequence */
        differ += x != rs_lb_pick(&c, p.c, p.n, 0);
        count[x]++;
    }
    assert_true(differ > 30000);
    for (int i = 0; i < 5; i++)
        assert_in_range(count[i], 9000, 11000);
}

static void test_weighted_proportions(void **state) {
    (void)state;
    pool p;
    pool_init(&p, 4);
    for (uint32_t i = 0; i < 4; i++)
        p.s[i].weight = i + 1; /* 1:2:3:4 */
    rs_lb lb;
    rs_lb_init(&lb, RS_LB_WEIGHTED, 7, 10000);
    const int picks = 100000;
    uint32_t count[4] = {0};
    for (int i = 0; i < picks; i++)
        count[rs_lb_pick(&lb, p.c, p.n, 0)]++;
    for (uint32_t i = 0; i < 4; i++) {
        double want = (double)(i + 1) / 10.0, got = (double)count[i] / picks;
        assert_true(got > want - 0.01 && got < want + 0.01);
    }
}

static void test_p2c(void **state) {
    (void)state;
    pool p;
    pool_init(&p, 4);
    p.s[0].in_flight = 9; /* the unique maximum is never chosen */
    p.s[1].in_flight = 0; /* the unique minimum wins every pair it is in */
    p.s[2].in_flight = 4;
    p.s[3].in_flight = 4;
    rs_lb lb;
    rs_lb_init(&lb, RS_LB_P2C, 3, 10000);
    uint32_t count[4] = {0};
    const int picks = 30000;
    for (int i = 0; i < picks; i++)
        count[rs_lb_pick(&lb, p.c, p.n, 0)]++;
    assert_int_equal(count[0], 0);
    /* P(min in a random pair of 4) = 1/2 */
    assert_in_range(count[1], picks * 45 / 100, picks * 55 / 100);
    /* under load, p2c keeps the spread small: simulate picks and completions */
    pool_init(&p, 8);
    for (int i = 0; i < 20000; i++) {
        uint32_t k = rs_lb_pick(&lb, p.c, p.n, 0);
        p.s[k].in_flight++;
        if (i % 8 == 7) /* drain: everyone finishes one */
            for (uint32_t j = 0; j < p.n; j++)
                if (p.s[j].in_flight) p.s[j].in_flight--;
    }
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t j = 0; j < p.n; j++) {
        if (p.s[j].in_flight < lo) lo = p.s[j].in_flight;
        if (p.s[j].in_flight > hi) hi = p.s[j].in_flight;
    }
    assert_true(hi - lo <= 3);
}

static void test_least_latency_and_probing(void **state) {
    (void)state;
    pool p;
    pool_init(&p, 3);
    uint64_t now = 100 * MS;
    rs_lb_observe(&p.s[0], 400, 0.3, now);
    rs_lb_observe(&p.s[1], 100, 0.3, now);
    rs_lb_observe(&p.s[2], 200, 0.3, now);
    rs_lb lb;
    rs_lb_init(&lb, RS_LB_LEAST_LATENCY, 1, 10000);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rs_lb_pick(&lb, p.c, p.n, now), 1);
    /* load counts: 100us x 3 in flight > 200us x 1 */
    p.s[1].in_flight = 2;
    assert_int_equal(rs_lb_pick(&lb, p.c, p.n, now), 2);
    p.s[1].in_flight = 0;

    /* a newcomer is probed at once, with one request at a time */
    p.n = 4;
    p.s[3] = (rs_lb_stats){.weight = 1};
    p.c[3] = &p.s[3];
    assert_int_equal(rs_lb_pick(&lb, p.c, p.n, now), 3);
    p.s[3].in_flight = 1; /* its probe is in flight: not flooded */
    for (int i = 0; i < 10; i++)
        assert_int_equal(rs_lb_pick(&lb, p.c, p.n, now), 1);
    /* the probe comes back fast: it now wins on its figure */
    p.s[3].in_flight = 0;
    rs_lb_observe(&p.s[3], 50, 0.3, now);
    assert_int_equal(rs_lb_pick(&lb, p.c, p.n, now), 3);

    /* a slow worker is not starved for ever: once unmeasured for
     * probe_stale_ms (10 s) and idle, it gets one probe */
    uint64_t later = now + 5000 * MS;
    rs_lb_observe(&p.s[1], 100, 0.3, later);
    rs_lb_observe(&p.s[2], 200, 0.3, later);
    rs_lb_observe(&p.s[3], 50, 0.3, later);
    later = now + 10001 * MS; /* worker 0 last measured 10.001 s ago */
    assert_int_equal(rs_lb_pick(&lb, p.c, p.n, later), 0);
    p.s[0].in_flight = 1;
    assert_int_equal(rs_lb_pick(&lb, p.c, p.n, later), 3);

    /* EWMA arithmetic: 50 then 150 with alpha 0.3 -> 80 */
    rs_lb_stats s = {0};
    rs_lb_observe(&s, 50, 0.3, 1);
    rs_lb_observe(&s, 150, 0.3, 2);
    assert_true(s.ewma_latency_us > 79.999 && s.ewma_latency_us < 80.001);
    assert_int_equal(s.latency_samples, 2);
}

static void test_single_candidate(void **state) {
    (void)state;
    pool p;
    pool_init(&p, 1);
    for (int s = 0; s < RS_LB_STRATEGY_COUNT_; s++) {
        rs_lb lb;
        rs_lb_init(&lb, (rs_lb_strategy)s, 1, 10000);
        assert_int_equal(rs_lb_pick(&lb, p.c, 1, 0), 0);
        assert_int_equal(rs_lb_strategy_parse(rs_lb_strategy_name((rs_lb_strategy)s)), s);
    }
    assert_int_equal(rs_lb_strategy_parse("fastest"), -1);
}

static rs_cfg *load(const char *text, rs_cfg_node *section) {
    rs_err err = {0};
    rs_cfg *cfg = rs_cfg_load_string(text, "lb.yaml", &err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg);
    *section = rs_cfg_get(&root, "load_balancer");
    return cfg;
}

static void test_config(void **state) {
    (void)state;
    rs_cfg_node sec;
    rs_err err = {0};
    rs_lb_config c;
    rs_cfg *cfg = load("other: 1\n", &sec);
    assert_int_equal(rs_lb_config_parse(&sec, &c, &err), 0);
    assert_int_equal(c.strategy, RS_LB_ROUND_ROBIN);
    assert_int_equal(c.affinity, RS_AFFINITY_ROUTING_KEY);
    rs_cfg_free(cfg);

    cfg = load("load_balancer:\n"
               "  strategy: p2c\n"
               "  seed: 9\n"
               "  ewma_alpha: 0.5\n"
               "  affinity: inputs\n"
               "  models:\n"
               "    digits: least_latency\n"
               "  weights:\n"
               "    w1: 3\n"
               "    10.0.0.2:9001: 2\n",
               &sec);
    assert_int_equal(rs_lb_config_parse(&sec, &c, &err), 0);
    assert_int_equal(c.strategy, RS_LB_P2C);
    assert_int_equal(c.seed, 9);
    assert_int_equal(c.affinity, RS_AFFINITY_INPUTS);
    assert_int_equal(rs_lb_strategy_for(&c, "digits", 6), RS_LB_LEAST_LATENCY);
    assert_int_equal(rs_lb_strategy_for(&c, "identity", 8), RS_LB_P2C);
    assert_int_equal(rs_lb_weight_for(&c, "w1"), 3);
    assert_int_equal(rs_lb_weight_for(&c, "10.0.0.2:9001"), 2);
    assert_int_equal(rs_lb_weight_for(&c, "w9"), 0);
    rs_cfg_free(cfg);

    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"load_balancer:\n  strategy: fastest\n",
         "lb.yaml:2: load_balancer.strategy: 'fastest': expected one of "
         "round_robin|least_connections|random|least_latency|weighted|p2c"},
        {"load_balancer:\n  stratgy: p2c\n", "lb.yaml:2: load_balancer.stratgy: unknown field"},
        {"load_balancer:\n  ewma_alpha: 2\n",
         "lb.yaml:2: load_balancer.ewma_alpha: '2': out of range"},
        {"load_balancer:\n  models:\n    digits: fast\n",
         "lb.yaml:3: load_balancer.models.digits: 'fast': expected one of"},
        {"load_balancer:\n  weights:\n    w1: 0\n",
         "lb.yaml:3: load_balancer.weights.w1: '0': out of range"},
        {"load_balancer:\n  weights: [1, 2]\n",
         "lb.yaml:2: load_balancer.weights: expected a mapping"},
        {"load_balancer:\n  locality: rack\n",
         "load_balancer.locality: 'rack': expected one of none|host|numa"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg = load(bad[i].text, &sec);
        err.msg[0] = '\0';
        assert_int_equal(rs_lb_config_parse(&sec, &c, &err), -1);
        if (!strstr(err.msg, bad[i].msg)) fail_msg("got '%s', want '%s'", err.msg, bad[i].msg);
        rs_cfg_free(cfg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_exactly_even),
        cmocka_unit_test(test_least_connections_skewed),
        cmocka_unit_test(test_random_seeded),
        cmocka_unit_test(test_weighted_proportions),
        cmocka_unit_test(test_p2c),
        cmocka_unit_test(test_least_latency_and_probing),
        cmocka_unit_test(test_single_candidate),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

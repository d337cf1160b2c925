/* Tests for engine/router: membership (registration, refusals, heartbeats,
 * expiry, deregistration, static workers), consistent hashing (movement on
 * join/leave, failover order), shards, in-flight accounting, the breaker and
 * capacity through the router, locality and weights. Fake clock, fake workers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/router/fake.h"

static int teardown(void **state) {
    fixture *fx = *state;
    rs_router_destroy(fx->r);
    free(fx);
    return 0;
}

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof(*fx));
    fixture_init(fx);
    *state = fx;
    return 0;
}

static int pick_worker(rs_router *r, rs_route_req *q, rs_ticket *t) {
    rs_err err = {0};
    int rc = rs_router_pick(r, q, t, &err);
    return rc == 0 ? ticket_worker(r, t) : rc;
}

/* ---- registration ---- */

static void test_register_and_round_robin(void **state) {
    fixture *fx = *state;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 3, "digits", 0), 0);
    assert_int_equal(rs_router_worker_count(fx->r), 3);
    assert_int_equal(fx->events.added, 3);
    rs_route_req q = req_for("digits");
    int count[3] = {0};
    for (int i = 0; i < 300; i++) {
        rs_ticket t;
        int w = pick_worker(fx->r, &q, &t);
        assert_in_range(w, 0, 2);
        count[w]++;
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(count[i], 100);
    assert_true(rs_router_model_ready(fx->r, rs_str_c("digits"), rs_str_c(""), 0));
    assert_false(rs_router_model_ready(fx->r, rs_str_c("identity"), rs_str_c(""), 0));
    rs_err err = {0};
    rs_route_req other = req_for("identity");
    rs_ticket t;
    assert_int_equal(rs_router_pick(fx->r, &other, &t, &err), -RS_E_UNAVAILABLE);
    assert_string_equal(err.msg, "no worker serves model 'identity' shard 0");
}

static void test_registration_refusals(void **state) {
    fixture *fx = *state;
    snprintf(fx->cfg.cluster.token, sizeof(fx->cfg.cluster.token), "s3cret");
    fx->cfg.cluster.max_workers = 2;
    assert_non_null(fixture_start(fx));
    const char *models[] = {"digits", "nosuch"};
    fake_worker f;
    rs_err err = {0};

    fake_worker_init(&f, 0, models, 1, 0);
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_UNAUTHORIZED);
    assert_string_equal(err.msg, "registration of worker 'w0' refused: cluster.token is set and "
                                 "it sent no token");
    f.msg.token = rs_str_c("s3cret!");
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_UNAUTHORIZED);
    assert_string_equal(err.msg, "registration of worker 'w0' refused: its token does not match "
                                 "cluster.token");
    f.msg.token = rs_str_c("s3cre");
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_UNAUTHORIZED);

    fake_worker_init(&f, 0, models, 2, 0);
    f.msg.token = rs_str_c("s3cret");
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_UNKNOWN_MODEL);
    assert_string_equal(err.msg, "registration of worker 'w0' refused: model 'nosuch' version '' "
                                 "is not in the model registry");
    const char *big[] = {"big"};
    fake_worker_init(&f, 0, big, 1, 2);
    f.msg.token = rs_str_c("s3cret");
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_UNKNOWN_MODEL);
    assert_string_equal(err.msg, "registration of worker 'w0' refused: model 'big' has 2 "
                                 "shard(s): shard 2 does not exist");

    fake_worker_init(&f, 0, models, 1, 0);
    f.msg.token = rs_str_c("s3cret");
    f.msg.worker_id = rs_str_c("");
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_INVALID_INPUT);
    assert_non_null(strstr(err.msg, "worker id must have 1 to 63 bytes"));
    fake_worker_init(&f, 0, models, 0, 0);
    f.msg.token = rs_str_c("s3cret");
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_INVALID_INPUT);
    fake_worker_init(&f, 0, models, 1, 0);
    f.msg.token = rs_str_c("s3cret");
    f.msg.port = 0;
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_INVALID_INPUT);
    /* a host name: the coordinator's io threads would have to resolve it */
    fake_worker_init(&f, 0, models, 1, 0);
    f.msg.token = rs_str_c("s3cret");
    f.msg.host = rs_str_c("worker-0.example");
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), -RS_E_INVALID_INPUT);
    assert_string_equal(err.msg, "registration of worker 'w0' refused: address 'worker-0.example' is "
                                 "not a numeric address (a worker advertises the address its host "
                                 "name resolves to)");
    f.msg.host = rs_str_c("fd00::7"); /* IPv6 is numeric */
    assert_int_equal(rs_router_register(fx->r, &f.msg, &err), 0);
    assert_int_equal(rs_router_deregister(fx->r, f.msg.worker_id), 0);
    assert_int_equal(rs_router_worker_count(fx->r), 0); /* nothing refused got in */

    /* full table: a clear error, existing workers untouched */
    for (int i = 0; i < 3; i++) {
        fake_worker_init(&f, i, models, 1, 0);
        f.msg.token = rs_str_c("s3cret");
        int rc = rs_router_register(fx->r, &f.msg, &err);
        if (i < 2)
            assert_true(rc >= 0);
        else
            assert_int_equal(rc, -RS_E_OVERLOADED);
    }
    assert_string_equal(err.msg, "registration of worker 'w2' refused: the worker table is full "
                                 "(cluster.max_workers = 2)");
    assert_int_equal(rs_router_worker_count(fx->r), 2);
}

static void test_reregister_voids_old_tickets(void **state) {
    fixture *fx = *state;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 1, "digits", 0), 0);
    rs_route_req q = req_for("digits");
    rs_ticket old;
    assert_int_equal(pick_worker(fx->r, &q, &old), 0);
    assert_int_equal(register_n(fx, 0, 1, "digits", 0), 0); /* restarted worker, same id */
    assert_int_equal(rs_router_worker_count(fx->r), 1);
    assert_int_equal(fx->events.removed, 1);
    rs_ticket t;
    assert_int_equal(pick_worker(fx->r, &q, &t), 0);
    rs_router_release(fx->r, &old, RS_OUTCOME_CONN_FAILED); /* ignored: old generation */
    const rs_worker *w = rs_router_worker(fx->r, t.worker);
    assert_int_equal(w->lb.in_flight, 1);
    assert_int_equal(w->failures, 0);
    rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    assert_int_equal(w->lb.in_flight, 0);
    /* a new id at the same address is the restarted worker: it replaces */
    const char *models[] = {"digits"};
    fake_worker f;
    fake_worker_init(&f, 0, models, 1, 0);
    f.msg.worker_id = rs_str_c("w0-restarted");
    rs_err err = {0};
    assert_true(rs_router_register(fx->r, &f.msg, &err) >= 0);
    assert_int_equal(rs_router_worker_count(fx->r), 1);
    rs_worker_ref ref;
    assert_int_equal(rs_router_find(fx->r, rs_str_c("w0"), &ref), -1);
    assert_int_equal(rs_router_find(fx->r, rs_str_c("w0-restarted"), &ref), 0);
}

static void test_events_and_timer(void **state) {
    fixture *fx = *state;
    assert_non_null(fixture_start(fx));
    assert_int_equal(rs_router_next_event_ns(fx->r), UINT64_MAX); /* nothing to do */
    assert_int_equal(register_n(fx, 0, 1, "digits", 0), 0);
    assert_int_equal(fx->events.added, 1);
    assert_int_equal(fx->events.last_ev, RS_WORKER_ADDED);
    rs_worker_ref ref = fx->events.last;
    assert_string_equal(rs_router_worker(fx->r, ref)->id, "w0");
    /* a registered worker is pinged at once, then every interval */
    uint64_t t0 = fx->clock.now_ns;
    assert_int_equal(rs_router_next_event_ns(fx->r), t0);
    rs_ping p[2];
    assert_int_equal(rs_router_tick(fx->r, p, 2), 1);
    assert_int_equal(p[0].worker.slot, ref.slot);
    assert_int_equal(rs_router_next_event_ns(fx->r), t0 + fx->cfg.health.timeout_ms * MS);
    rs_router_pong(fx->r, p[0].worker, p[0].seq);
    assert_int_equal(rs_router_next_event_ns(fx->r), t0 + fx->cfg.health.interval_ms * MS);
    fx->clock.now_ns = t0 + fx->cfg.health.interval_ms * MS - 1;
    assert_int_equal(rs_router_tick(fx->r, p, 2), 0);
    fx->clock.now_ns += 1;
    assert_int_equal(rs_router_tick(fx->r, p, 2), 1);
    /* down and up events */
    for (uint32_t i = 0; i < fx->cfg.health.failure_threshold; i++) {
        rs_router_ping_failed(fx->r, ref);
        if (i + 1 < fx->cfg.health.failure_threshold)
            assert_int_equal(rs_router_tick(fx->r, p, 2), 1); /* suspect: re-ping at once */
    }
    assert_int_equal(fx->events.down, 1);
    assert_int_equal(fx->events.last_ev, RS_WORKER_DOWN);
    rs_route_req q = req_for("digits");
    rs_ticket t;
    rs_err err = {0};
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), -RS_E_UNAVAILABLE);
    assert_false(rs_router_model_ready(fx->r, rs_str_c("digits"), rs_str_c(""), 0));
    for (uint32_t i = 0; i < fx->cfg.health.success_threshold; i++) {
        fx->clock.now_ns = rs_router_next_event_ns(fx->r);
        assert_int_equal(rs_router_tick(fx->r, p, 2), 1);
        rs_router_pong(fx->r, p[0].worker, p[0].seq);
    }
    assert_int_equal(fx->events.up, 1);
    assert_true(rs_router_model_ready(fx->r, rs_str_c("digits"), rs_str_c(""), 0));
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w0")), 0);
    assert_int_equal(fx->events.last_ev, RS_WORKER_REMOVED);
    assert_null(rs_router_worker(fx->r, ref));
}

/* ---- heartbeats ---- */

static void test_heartbeat_expiry_and_deregister(void **state) {
    fixture *fx = *state;
    fx->cfg.cluster.heartbeat_timeout_ms = 15000;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 2, "digits", 0), 0);
    rs_ping pings[8];
    rs_heartbeat_msg hb = {.worker_id = rs_str_c("w0"), .in_flight = 3, .queued = 1};
    for (int i = 0; i < 3; i++) { /* w0 beats every 10 s, w1 never */
        fx->clock.now_ns += 10000 * MS;
        assert_int_equal(rs_router_heartbeat(fx->r, &hb), 0);
        (void)rs_router_tick(fx->r, pings, 8);
    }
    assert_int_equal(rs_router_worker_count(fx->r), 1);
    assert_int_equal(fx->events.removed, 1);
    rs_worker_ref ref;
    assert_int_equal(rs_router_find(fx->r, rs_str_c("w1"), &ref), -1);
    assert_int_equal(rs_router_find(fx->r, rs_str_c("w0"), &ref), 0);
    assert_int_equal(rs_router_worker(fx->r, ref)->reported_in_flight, 3);
    /* the window is exact: 15 s of silence keeps it, just past removes it */
    fx->clock.now_ns += 15000 * MS;
    (void)rs_router_tick(fx->r, pings, 8);
    assert_int_equal(rs_router_worker_count(fx->r), 1);
    assert_true(rs_router_next_event_ns(fx->r) <= fx->clock.now_ns + 1);
    fx->clock.now_ns += 1;
    (void)rs_router_tick(fx->r, pings, 8);
    assert_int_equal(rs_router_worker_count(fx->r), 0);
    /* an unknown worker's heartbeat says "register again" */
    assert_int_equal(rs_router_heartbeat(fx->r, &hb), -RS_E_NOT_FOUND);

    assert_int_equal(register_n(fx, 5, 1, "digits", 0), 0);
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w5")), 0);
    assert_int_equal(rs_router_worker_count(fx->r), 0);
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w5")), -RS_E_NOT_FOUND);
}

/* ---- active health through the router (static workers) ---- */

static void test_static_worker_pings(void **state) {
    fixture *fx = *state;
    rs_err err = {0};
    assert_int_equal(rs_cluster_add_worker_arg(&fx->cfg.cluster, "127.0.0.1:9001", &err), 0);
    assert_int_equal(rs_cluster_add_worker_arg(&fx->cfg.cluster, "127.0.0.1:9002", &err), 0);
    assert_non_null(fixture_start(fx));
    /* no hook ran inside rs_router_create (its caller had no router to use
     * yet); the first tick announces both */
    assert_int_equal(fx->events.added, 0);
    rs_route_req q = req_for("anything"); /* a worker without a model list serves all */
    rs_ticket t;
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), -RS_E_UNAVAILABLE); /* unknown yet */
    rs_ping pings[4];
    assert_int_equal(rs_router_tick(fx->r, pings, 4), 2);
    assert_int_equal(fx->events.added, 2);
    assert_int_equal(rs_router_tick(fx->r, pings + 2, 2), 0); /* outstanding: none due */
    rs_router_pong(fx->r, pings[0].worker, pings[0].seq);
    rs_router_pong(fx->r, pings[1].worker, pings[1].seq);
    assert_int_equal(fx->events.up, 2);
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
    rs_router_release(fx->r, &t, RS_OUTCOME_OK);

    /* 127.0.0.1:9002 hangs (SIGSTOP): pings time out; down within interval x threshold */
    uint64_t stopped_at = fx->clock.now_ns;
    rs_worker_ref hung;
    assert_int_equal(rs_router_find(fx->r, rs_str_c("127.0.0.1:9002"), &hung), 0);
    while (rs_router_worker(fx->r, hung)->health.state == RS_HEALTH_UP) {
        fx->clock.now_ns = rs_router_next_event_ns(fx->r);
        size_t n = rs_router_tick(fx->r, pings, 4);
        for (size_t i = 0; i < n; i++)
            if (pings[i].worker.slot != hung.slot)
                rs_router_pong(fx->r, pings[i].worker, pings[i].seq);
    }
    uint64_t took = fx->clock.now_ns - stopped_at;
    const rs_health_config *hc = &fx->cfg.health;
    assert_true(took <= (hc->interval_ms + hc->failure_threshold * hc->timeout_ms) * MS);
    assert_true(took <= hc->interval_ms * hc->failure_threshold * MS);
    assert_int_equal(fx->events.down, 1);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
        assert_false(t.worker.slot == hung.slot);
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    /* SIGCONT: it answers again; back after success_threshold pongs */
    while (rs_router_worker(fx->r, hung)->health.state != RS_HEALTH_UP) {
        fx->clock.now_ns = rs_router_next_event_ns(fx->r);
        size_t n = rs_router_tick(fx->r, pings, 4);
        for (size_t i = 0; i < n; i++)
            rs_router_pong(fx->r, pings[i].worker, pings[i].seq);
    }
    int hits = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
        hits += t.worker.slot == hung.slot;
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    assert_int_equal(hits, 10);
    /* a send failure counts as a failed ping; a pong for a stale ref is ignored */
    rs_router_ping_failed(fx->r, hung);
    assert_int_equal(rs_router_worker(fx->r, hung)->health.ping_fail_run, 1);
    rs_router_pong(fx->r, (rs_worker_ref){hung.slot, hung.gen + 1}, 1);
}

static void test_static_merges_registration(void **state) {
    fixture *fx = *state;
    rs_err err = {0};
    assert_int_equal(rs_cluster_add_worker_arg(&fx->cfg.cluster, "10.0.0.1:9000", &err), 0);
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 1, "digits", 0), 0); /* w0 is 10.0.0.1:9000 */
    assert_int_equal(rs_router_worker_count(fx->r), 1);
    rs_worker_ref ref;
    assert_int_equal(rs_router_find(fx->r, rs_str_c("w0"), &ref), 0);
    const rs_worker *w = rs_router_worker(fx->r, ref);
    assert_true(w->is_static);
    assert_false(w->any_model);
    assert_int_equal(w->health.state, RS_HEALTH_UP);
    rs_route_req q = req_for("identity");
    rs_ticket t;
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), -RS_E_UNAVAILABLE);
    /* static workers outlive missing heartbeats; deregistration marks them down */
    fx->clock.now_ns += 60000 * MS;
    rs_ping pings[2];
    (void)rs_router_tick(fx->r, pings, 2);
    assert_int_equal(rs_router_worker_count(fx->r), 1);
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w0")), 0);
    assert_int_equal(rs_router_worker_count(fx->r), 1);
    assert_int_equal(w->health.state, RS_HEALTH_DOWN);
}

/* ---- consistent hashing ---- */

static int owner_of(fixture *fx, uint64_t key) {
    rs_route_req q = req_for("digits");
    q.has_routing_key = true;
    q.key_hash = key;
    rs_ticket t;
    int w = pick_worker(fx->r, &q, &t);
    rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    return w;
}

#define KEYS 20000

static void test_consistent_hash_movement(void **state) {
    fixture *fx = *state;
    fx->cfg.cluster.max_workers = 16;
    assert_non_null(fixture_start(fx));
    const int n = 10;
    assert_int_equal(register_n(fx, 0, n, "digits", 0), 0);
    static int8_t before[KEYS], after[KEYS];
    int per[16] = {0};
    for (int k = 0; k < KEYS; k++) {
        before[k] = (int8_t)owner_of(fx, rs_router_key_hash(&k, sizeof(k)));
        per[before[k]]++;
    }
    for (int i = 0; i < n; i++)
        assert_in_range(per[i], KEYS / n * 8 / 10, KEYS / n * 12 / 10);
    /* join: ~1/(N+1) of the keys move, all of them to the newcomer */
    assert_int_equal(register_n(fx, n, 1, "digits", 0), 0);
    int moved = 0;
    for (int k = 0; k < KEYS; k++) {
        after[k] = (int8_t)owner_of(fx, rs_router_key_hash(&k, sizeof(k)));
        if (after[k] != before[k]) {
            moved++;
            assert_int_equal(after[k], n);
        }
    }
    double frac = (double)moved / KEYS, want = 1.0 / (n + 1);
    assert_true(frac > want * 0.8 && frac < want * 1.2);
    /* leave: only the leaver's keys move */
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w3")), 0);
    moved = 0;
    for (int k = 0; k < KEYS; k++) {
        int o = owner_of(fx, rs_router_key_hash(&k, sizeof(k)));
        assert_int_not_equal(o, 3);
        if (o != after[k]) {
            moved++;
            assert_int_equal(after[k], 3);
        }
    }
    frac = (double)moved / KEYS;
    want = 1.0 / (n + 1);
    assert_true(frac > want * 0.8 && frac < want * 1.2);
}

static void test_failover_order(void **state) {
    fixture *fx = *state;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 5, "digits", 0), 0);
    uint64_t key = rs_router_key_hash("user-42", 7);
    /* the failover order for a key: exclude the owners one by one */
    rs_worker_ref order[5];
    rs_route_req q = req_for("digits");
    q.has_routing_key = true;
    q.key_hash = key;
    q.exclude = order;
    for (uint32_t i = 0; i < 5; i++) {
        rs_ticket t;
        rs_err err = {0};
        q.n_exclude = i;
        assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
        for (uint32_t j = 0; j < i; j++)
            assert_false(order[j].slot == t.worker.slot);
        order[i] = t.worker;
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    rs_ticket t;
    rs_err err = {0};
    q.n_exclude = 5;
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), -RS_E_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "no healthy worker for model 'digits' shard 0"));
    /* the owner's breaker opens: its keys go to the next owner, in order */
    q.n_exclude = 0;
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < fx->cfg.health.breaker_failures; i++) {
            assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
            assert_int_equal(t.worker.slot, order[round].slot);
            rs_router_release(fx->r, &t, RS_OUTCOME_TIMEOUT);
        }
        assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
        assert_int_equal(t.worker.slot, order[round + 1].slot);
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    /* after the cool-down the first owner gets its trial back and keeps the key */
    fx->clock.now_ns += fx->cfg.health.breaker_cooldown_ms * MS;
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
    assert_int_equal(t.worker.slot, order[0].slot);
    assert_true(t.trial);
    rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
    assert_int_equal(t.worker.slot, order[0].slot);
    assert_false(t.trial);
    rs_router_release(fx->r, &t, RS_OUTCOME_OK);
}

static void test_affinity_modes(void **state) {
    fixture *fx = *state;
    fx->cfg.lb.affinity = RS_AFFINITY_NONE;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 4, "digits", 0), 0);
    /* affinity none: a routing key does not pin, round robin spreads */
    rs_route_req q = req_for("digits");
    q.has_routing_key = true;
    q.key_hash = 77;
    int seen[4] = {0};
    for (int i = 0; i < 8; i++) {
        rs_ticket t;
        seen[pick_worker(fx->r, &q, &t)]++;
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(seen[i], 2);
    rs_router_destroy(fx->r);
    /* affinity inputs: the input hash pins even without a routing key */
    fx->cfg.lb.affinity = RS_AFFINITY_INPUTS;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 4, "digits", 0), 0);
    q.has_routing_key = false;
    rs_ticket t;
    int first = pick_worker(fx->r, &q, &t);
    rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pick_worker(fx->r, &q, &t), first);
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
}

/* ---- shards and versions ---- */

static void test_shards(void **state) {
    fixture *fx = *state;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 2, "big", 0), 0); /* w0, w1: shard 0 */
    assert_int_equal(register_n(fx, 2, 2, "big", 1), 0); /* w2, w3: shard 1 */
    rs_route_req q = req_for("big");
    for (uint32_t shard = 0; shard < 2; shard++) {
        q.shard = shard;
        for (int i = 0; i < 100; i++) {
            rs_ticket t;
            int w = pick_worker(fx->r, &q, &t);
            assert_in_range(w, 2 * (int)shard, 2 * (int)shard + 1);
            rs_router_release(fx->r, &t, RS_OUTCOME_OK);
        }
        /* keyed requests too */
        q.has_routing_key = true;
        for (uint64_t k = 0; k < 100; k++) {
            rs_ticket t;
            q.key_hash = rs_router_key_hash(&k, sizeof(k));
            int w = pick_worker(fx->r, &q, &t);
            assert_in_range(w, 2 * (int)shard, 2 * (int)shard + 1);
            rs_router_release(fx->r, &t, RS_OUTCOME_OK);
        }
        q.has_routing_key = false;
    }
    /* shard 1 loses its workers: requests for it fail, never spill to shard 0 */
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w2")), 0);
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w3")), 0);
    q.shard = 1;
    rs_ticket t;
    rs_err err = {0};
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), -RS_E_UNAVAILABLE);
    assert_false(rs_router_model_ready(fx->r, rs_str_c("big"), rs_str_c(""), 1));
    assert_true(rs_router_model_ready(fx->r, rs_str_c("big"), rs_str_c(""), 0));
}

static void test_versions(void **state) {
    fixture *fx = *state;
    assert_non_null(fixture_start(fx));
    const char *models[] = {"digits"};
    fake_worker a, b;
    fake_worker_init(&a, 0, models, 1, 0);
    a.msg.models[0].version = rs_str_c("1");
    fake_worker_init(&b, 1, models, 1, 0);
    b.msg.models[0].version = rs_str_c("2");
    rs_err err = {0};
    assert_true(rs_router_register(fx->r, &a.msg, &err) >= 0);
    assert_true(rs_router_register(fx->r, &b.msg, &err) >= 0);
    rs_route_req q = req_for("digits");
    q.version = rs_str_c("2");
    for (int i = 0; i < 10; i++) {
        rs_ticket t;
        assert_int_equal(pick_worker(fx->r, &q, &t), 1);
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    q.version = rs_str_c("3");
    rs_ticket t;
    assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), -RS_E_UNAVAILABLE);
    assert_string_equal(err.msg, "no worker serves model 'digits' version 3 shard 0");
}

/* ---- accounting, breaker, capacity ---- */

static void test_in_flight_exact(void **state) {
    fixture *fx = *state;
    fx->cfg.lb.strategy = RS_LB_LEAST_CONNECTIONS;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 3, "digits", 0), 0);
    rs_route_req q = req_for("digits");
    rs_ticket t[30];
    /* every outcome, with enough successes that no breaker opens */
    static const rs_outcome outcomes[] = {
        RS_OUTCOME_OK,        RS_OUTCOME_CONN_FAILED,  RS_OUTCOME_TIMEOUT,  RS_OUTCOME_OK,
        RS_OUTCOME_TRANSIENT, RS_OUTCOME_WORKER_ERROR, RS_OUTCOME_CANCELLED};
    for (int i = 0; i < 30; i++)
        assert_true(pick_worker(fx->r, &q, &t[i]) >= 0);
    for (uint32_t s = 0; s < 3; s++)
        assert_int_equal(rs_router_worker_at(fx->r, s)->lb.in_flight, 10);
    for (int i = 0; i < 30; i++) {
        fx->clock.now_ns += 1 * MS;
        rs_router_release(fx->r, &t[i], outcomes[i % 7]);
        rs_router_release(fx->r, &t[i], RS_OUTCOME_OK); /* a second release is a no-op */
    }
    uint64_t failures = 0, requests = 0;
    for (uint32_t s = 0; s < 3; s++) {
        const rs_worker *w = rs_router_worker_at(fx->r, s);
        assert_int_equal(w->lb.in_flight, 0);
        failures += w->failures;
        requests += w->requests;
        assert_true(w->error_rate > 0.0 && w->error_rate < 1.0);
    }
    assert_int_equal(requests, 26); /* the 4 cancelled ones are not the worker's */
    assert_int_equal(failures, 17); /* 5 conn + 4 timeout + 4 transient + 4 worker error */
    /* skewed in-flight: 2 each, one finishes -> the next pick is that worker */
    rs_ticket hold[6];
    for (int i = 0; i < 6; i++)
        assert_true(pick_worker(fx->r, &q, &hold[i]) >= 0);
    for (uint32_t s = 0; s < 3; s++)
        assert_int_equal(rs_router_worker_at(fx->r, s)->lb.in_flight, 2);
    int freed = ticket_worker(fx->r, &hold[4]);
    rs_router_release(fx->r, &hold[4], RS_OUTCOME_TIMEOUT);
    rs_ticket next;
    assert_int_equal(pick_worker(fx->r, &q, &next), freed);
    rs_router_release(fx->r, &next, RS_OUTCOME_OK);
    for (int i = 0; i < 6; i++)
        rs_router_release(fx->r, &hold[i], RS_OUTCOME_OK);
    for (uint32_t s = 0; s < 3; s++)
        assert_int_equal(rs_router_worker_at(fx->r, s)->lb.in_flight, 0);
}

static void test_breaker_through_router(void **state) {
    fixture *fx = *state;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 2, "digits", 0), 0);
    rs_route_req q = req_for("digits");
    /* w0 fails everything it gets, w1 succeeds */
    int to_w0 = 0;
    for (int i = 0; i < 40; i++) {
        rs_ticket t;
        int w = pick_worker(fx->r, &q, &t);
        to_w0 += w == 0;
        rs_router_release(fx->r, &t, w == 0 ? RS_OUTCOME_CONN_FAILED : RS_OUTCOME_OK);
    }
    assert_int_equal(to_w0, (int)fx->cfg.health.breaker_failures);
    rs_worker_ref w0;
    assert_int_equal(rs_router_find(fx->r, rs_str_c("w0"), &w0), 0);
    assert_int_equal(rs_router_worker(fx->r, w0)->health.breaker, RS_BREAKER_OPEN);
    /* half-open: one trial only, even with many requests in flight */
    fx->clock.now_ns += fx->cfg.health.breaker_cooldown_ms * MS;
    rs_ticket held[10];
    int trials = 0;
    for (int i = 0; i < 10; i++) {
        assert_true(pick_worker(fx->r, &q, &held[i]) >= 0);
        trials += held[i].trial;
        assert_true(!held[i].trial || held[i].worker.slot == w0.slot);
    }
    assert_int_equal(trials, 1);
    for (int i = 0; i < 10; i++)
        rs_router_release(fx->r, &held[i], RS_OUTCOME_OK);
    assert_int_equal(rs_router_worker(fx->r, w0)->health.breaker, RS_BREAKER_CLOSED);
}

static void test_capacity_and_weights(void **state) {
    fixture *fx = *state;
    fx->cfg.lb.strategy = RS_LB_WEIGHTED;
    assert_non_null(fixture_start(fx));
    const char *models[] = {"digits"};
    fake_worker a, b;
    fake_worker_init(&a, 0, models, 1, 0);
    a.msg.capacity = 1;
    fake_worker_init(&b, 1, models, 1, 0);
    b.msg.capacity = 3;
    rs_err err = {0};
    assert_true(rs_router_register(fx->r, &a.msg, &err) >= 0);
    assert_true(rs_router_register(fx->r, &b.msg, &err) >= 0);
    rs_route_req q = req_for("digits");
    /* weights from registered capacity: 1:3 */
    int count[2] = {0};
    for (int i = 0; i < 40000; i++) {
        rs_ticket t;
        count[pick_worker(fx->r, &q, &t)]++;
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    assert_in_range(count[0], 9000, 11000);
    /* capacity is a hard limit: 4 in flight fill both, the 5th is overloaded */
    rs_ticket t[5];
    for (int i = 0; i < 4; i++)
        assert_true(pick_worker(fx->r, &q, &t[i]) >= 0);
    assert_int_equal(rs_router_pick(fx->r, &q, &t[4], &err), -RS_E_OVERLOADED);
    assert_string_equal(err.msg, "every worker for model 'digits' is at capacity");
    rs_router_release(fx->r, &t[0], RS_OUTCOME_OK);
    assert_true(pick_worker(fx->r, &q, &t[4]) >= 0);
    for (int i = 1; i < 5; i++)
        rs_router_release(fx->r, &t[i], RS_OUTCOME_OK);
}

static void test_locality(void **state) {
    fixture *fx = *state;
    fx->cfg.lb.locality = RS_LOCALITY_NUMA;
    snprintf(fx->cfg.cluster.local_host, sizeof(fx->cfg.cluster.local_host), "10.0.0.2");
    fx->cfg.cluster.local_numa_node = 1;
    assert_non_null(fixture_start(fx));
    const char *models[] = {"digits"};
    fake_worker f[3];
    rs_err err = {0};
    for (int i = 0; i < 3; i++) {
        fake_worker_init(&f[i], i, models, 1, 0);
        snprintf(f[i].host, sizeof(f[i].host), "%s", i == 0 ? "10.0.0.9" : "10.0.0.2");
        f[i].msg.numa_node = i == 2 ? 1 : 0; /* w1: this host, w2: this host and node */
        assert_true(rs_router_register(fx->r, &f[i].msg, &err) >= 0);
    }
    rs_route_req q = req_for("digits");
    rs_ticket t;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(pick_worker(fx->r, &q, &t), 2);
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w2")), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(pick_worker(fx->r, &q, &t), 1);
        rs_router_release(fx->r, &t, RS_OUTCOME_OK);
    }
    assert_int_equal(rs_router_deregister(fx->r, rs_str_c("w1")), 0);
    assert_int_equal(pick_worker(fx->r, &q, &t), 0); /* remote, when nothing local is left */
    rs_router_release(fx->r, &t, RS_OUTCOME_OK);
}

static void test_retry_to_other_worker(void **state) {
    fixture *fx = *state;
    fx->cfg.retry.max_attempts = 3;
    assert_non_null(fixture_start(fx));
    assert_int_equal(register_n(fx, 0, 3, "digits", 0), 0);
    rs_route_req q = req_for("digits");
    rs_worker_ref tried[3];
    q.exclude = tried;
    rs_ticket t;
    rs_err err = {0};
    uint32_t attempt = 0;
    for (;;) {
        assert_int_equal(rs_router_pick(fx->r, &q, &t, &err), 0);
        for (uint32_t j = 0; j < q.n_exclude; j++)
            assert_false(tried[j].slot == t.worker.slot);
        tried[q.n_exclude++] = t.worker;
        attempt++;
        rs_router_release(fx->r, &t, RS_OUTCOME_CONN_FAILED);
        if (!rs_router_retry_allowed(fx->r, RS_OUTCOME_CONN_FAILED, attempt)) break;
    }
    assert_int_equal(attempt, 3);
    assert_false(rs_router_retry_allowed(fx->r, RS_OUTCOME_WORKER_ERROR, 1));
    assert_false(rs_router_retry_allowed(fx->r, RS_OUTCOME_OK, 1));
    assert_int_equal(rs_router_retry_budget(fx->r)->retries_total, 2);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_register_and_round_robin),
        T(test_registration_refusals),
        T(test_reregister_voids_old_tickets),
        T(test_events_and_timer),
        T(test_heartbeat_expiry_and_deregister),
        T(test_static_worker_pings),
        T(test_static_merges_registration),
        T(test_consistent_hash_movement),
        T(test_failover_order),
        T(test_affinity_modes),
        T(test_shards),
        T(test_versions),
        T(test_in_flight_exact),
        T(test_breaker_through_router),
        T(test_capacity_and_weights),
        T(test_locality),
        T(test_retry_to_other_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

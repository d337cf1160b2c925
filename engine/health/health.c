/* health.c — see health.h. No I/O, no allocation, no clock of its own. */
#include "engine/health/health.h"

#include "engine/common/log.h"

#define NS_PER_MS 1000000ull

void rs_health_config_default(rs_health_config *cfg) {
    cfg->interval_ms = 5000;
    cfg->timeout_ms = 2000;
    cfg->failure_threshold = 3;
    cfg->success_threshold = 2;
    cfg->breaker_failures = 5;
    cfg->breaker_cooldown_ms = 5000;
}

int rs_health_config_parse(const rs_cfg_node *section, rs_health_config *out, rs_err *err) {
    static const char *const keys[] = {"interval_ms",
                                       "timeout_ms",
                                       "failure_threshold",
                                       "success_threshold",
                                       "breaker_failures",
                                       "breaker_cooldown_ms",
                                       NULL};
    rs_health_config_default(out);
    if (!rs_cfg_present(section)) return 0;
    if (rs_cfg_check_keys(section, keys, err) != 0) return -1;
    uint64_t v;
    const uint64_t hour_ms = 3600ull * 1000ull;
    if (rs_cfg_u64(section, "interval_ms", false, out->interval_ms, 1, hour_ms, &out->interval_ms,
                   err) != 0 ||
        rs_cfg_u64(section, "timeout_ms", false, out->timeout_ms, 1, hour_ms, &out->timeout_ms,
                   err) != 0 ||
        rs_cfg_u64(section, "breaker_cooldown_ms", false, out->breaker_cooldown_ms, 1, hour_ms,
                   &out->breaker_cooldown_ms, err) != 0)
        return -1;
    if (rs_cfg_u64(section, "failure_threshold", false, out->failure_threshold, 1, 1000, &v, err))
        return -1;
    out->failure_threshold = (uint32_t)v;
    if (rs_cfg_u64(section, "success_threshold", false, out->success_threshold, 1, 1000, &v, err))
        return -1;
    out->success_threshold = (uint32_t)v;
    if (rs_cfg_u64(section, "breaker_failures", false, out->breaker_failures, 1, 100000, &v, err))
        return -1;
    out->breaker_failures = (uint32_t)v;
    if (out->timeout_ms >= out->interval_ms) {
        rs_cfg_node t = rs_cfg_get(section, "timeout_ms");
        rs_cfg_fail(rs_cfg_present(&t) ? &t : section, err,
                    "'%llu': must be less than health.interval_ms (%llu)",
                    (unsigned long long)out->timeout_ms, (unsigned long long)out->interval_ms);
        return -1;
    }
    return 0;
}

void rs_health_init(rs_health *h, const rs_health_config *cfg, rs_health_state initial,
                    uint64_t now_ns) {
    *h = (rs_health){0};
    h->cfg = cfg;
    h->state = initial;
    h->next_ping_ns = now_ns;
    h->breaker = RS_BREAKER_CLOSED;
}

bool rs_health_ping_due(const rs_health *h, uint64_t now_ns) {
    return !h->ping_outstanding && now_ns >= h->next_ping_ns;
}

uint64_t rs_health_ping_sent(rs_health *h, uint64_t now_ns) {
    h->ping_outstanding = true;
    h->ping_sent_ns = now_ns;
    h->ping_seq++;
    h->next_ping_ns = now_ns + h->cfg->interval_ms * NS_PER_MS;
    return h->ping_seq;
}

static void become_up(rs_health *h) {
    h->state = RS_HEALTH_UP;
    /* A worker that answers pings again starts with a clean breaker. */
    h->breaker = RS_BREAKER_CLOSED;
    h->traffic_fail_run = 0;
    h->trial_in_flight = false;
}

static void ping_failure(rs_health *h, uint64_t now_ns) {
    h->ping_outstanding = false;
    h->ping_ok_run = 0;
    h->ping_fail_run++;
    if (h->ping_fail_run >= h->cfg->failure_threshold)
        h->state = RS_HEALTH_DOWN;
    else
        h->next_ping_ns = now_ns; /* suspect: confirm at once, not an interval later */
}

bool rs_health_pong(rs_health *h, uint64_t seq, uint64_t now_ns) {
    (void)now_ns;
    if (!h->ping_outstanding || seq != h->ping_seq) return false;
    h->ping_outstanding = false;
    h->ping_fail_run = 0;
    h->ping_ok_run++;
    if (h->state == RS_HEALTH_UNKNOWN ||
        (h->state == RS_HEALTH_DOWN && h->ping_ok_run >= h->cfg->success_threshold))
        become_up(h);
    return true;
}

void rs_health_ping_failed(rs_health *h, uint64_t now_ns) {
    ping_failure(h, now_ns);
}

bool rs_health_check_timeout(rs_health *h, uint64_t now_ns) {
    if (!h->ping_outstanding) return false;
    if (now_ns < h->ping_sent_ns + h->cfg->timeout_ms * NS_PER_MS) return false;
    ping_failure(h, now_ns);
    return true;
}

uint64_t rs_health_next_event_ns(const rs_health *h) {
    if (h->ping_outstanding) return h->ping_sent_ns + h->cfg->timeout_ms * NS_PER_MS;
    return h->next_ping_ns;
}

static bool cooled_down(const rs_health *h, uint64_t now_ns) {
    return now_ns >= h->breaker_opened_ns + h->cfg->breaker_cooldown_ms * NS_PER_MS;
}

bool rs_health_admit(rs_health *h, uint64_t now_ns) {
    if (h->breaker == RS_BREAKER_OPEN && cooled_down(h, now_ns)) {
        h->breaker = RS_BREAKER_HALF_OPEN;
        h->trial_in_flight = false;
    }
    switch (h->breaker) {
    case RS_BREAKER_CLOSED: return true;
    case RS_BREAKER_HALF_OPEN: return !h->trial_in_flight;
    case RS_BREAKER_OPEN: return false;
    }
    return false;
}

bool rs_health_routable(const rs_health *h, uint64_t now_ns) {
    if (h->state != RS_HEALTH_UP) return false;
    switch (h->breaker) {
    case RS_BREAKER_CLOSED: return true;
    case RS_BREAKER_HALF_OPEN: return !h->trial_in_flight;
    case RS_BREAKER_OPEN: return cooled_down(h, now_ns);
    }
    return false;
}

bool rs_health_on_pick(rs_health *h, uint64_t now_ns) {
    (void)rs_health_admit(h, now_ns); /* settles OPEN -> HALF_OPEN */
    if (h->breaker != RS_BREAKER_HALF_OPEN) return false;
    RS_ASSERT(!h->trial_in_flight);
    h->trial_in_flight = true;
    return true;
}

static void breaker_open(rs_health *h, uint64_t now_ns) {
    h->breaker = RS_BREAKER_OPEN;
    h->breaker_opened_ns = now_ns;
    h->trial_in_flight = false;
}

void rs_health_on_result(rs_health *h, bool ok, bool was_trial, uint64_t now_ns) {
    if (ok)
        h->traffic_fail_run = 0;
    else
        h->traffic_fail_run++;
    if (was_trial) {
        /* The trial decides; a reset by a PONG in between makes it moot. */
        if (h->breaker != RS_BREAKER_HALF_OPEN) return;
        if (ok) {
            h->breaker = RS_BREAKER_CLOSED;
            h->trial_in_flight = false;
        } else {
            breaker_open(h, now_ns);
        }
        return;
    }
    if (!ok && h->breaker == RS_BREAKER_CLOSED && h->traffic_fail_run >= h->cfg->breaker_failures)
        breaker_open(h, now_ns);
}

void rs_health_on_abandon(rs_health *h, bool was_trial) {
    if (was_trial && h->breaker == RS_BREAKER_HALF_OPEN) h->trial_in_flight = false;
}

const char *rs_health_state_name(rs_health_state s) {
    switch (s) {
    case RS_HEALTH_UNKNOWN: return "unknown";
    case RS_HEALTH_UP: return "up";
    case RS_HEALTH_DOWN: return "down";
    }
    return "?";
}

const char *rs_breaker_state_name(rs_breaker_state s) {
    switch (s) {
    case RS_BREAKER_CLOSED: return "closed";
    case RS_BREAKER_OPEN: return "open";
    case RS_BREAKER_HALF_OPEN: return "half_open";
    }
    return "?";
}

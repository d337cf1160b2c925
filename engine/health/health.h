/* health.h — per-worker health: active pings, passive traffic, circuit breaker.
 *
 * Pure state machines driven by the caller's clock (nanoseconds in, no I/O):
 * the router decides when a ping is due and feeds the results in; the
 * coordinator sends the PING frames. Two independent signals gate traffic:
 *
 *   active  (pings)  UNKNOWN/UP/DOWN: failure_threshold consecutive ping
 *                    failures (error or no PONG within timeout_ms) -> DOWN;
 *                    after a failure the next ping goes at once (not an
 *                    interval later), so a worker that hangs right after a
 *                    PONG is DOWN within interval + threshold x timeout
 *                    (11 s with the defaults, under interval x threshold);
 *                    success_threshold consecutive PONGs -> UP. UNKNOWN (a
 *                    static worker never heard from) becomes UP on its first
 *                    PONG and DOWN after failure_threshold failures.
 *   passive (traffic) a breaker: breaker_failures consecutive failed requests
 *                    (connection failure, timeout, transient worker error)
 *                    -> OPEN (no traffic); after breaker_cooldown_ms it is
 *                    HALF_OPEN: one trial request at a time; its success ->
 *                    CLOSED, its failure -> OPEN again for another cool-down.
 *
 * Why both: pings find a hung or dead worker even when no traffic goes to it
 * (and bring it back), while the breaker reacts within a few requests under
 * load instead of waiting interval x threshold. */
#ifndef RS_HEALTH_H
#define RS_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"

typedef struct rs_health_config {
    uint64_t interval_ms;         /* between pings (default 5000) */
    uint64_t timeout_ms;          /* a PONG later than this is a failure (default 2000) */
    uint32_t failure_threshold;   /* consecutive ping failures -> DOWN (default 3) */
    uint32_t success_threshold;   /* consecutive PONGs -> UP again (default 2) */
    uint32_t breaker_failures;    /* consecutive traffic failures -> OPEN (default 5) */
    uint64_t breaker_cooldown_ms; /* OPEN -> HALF_OPEN after this (default 5000) */
} rs_health_config;

typedef enum rs_health_state {
    RS_HEALTH_UNKNOWN = 0,
    RS_HEALTH_UP = 1,
    RS_HEALTH_DOWN = 2,
} rs_health_state;

typedef enum rs_breaker_state {
    RS_BREAKER_CLOSED = 0,
    RS_BREAKER_OPEN = 1,
    RS_BREAKER_HALF_OPEN = 2,
} rs_breaker_state;

typedef struct rs_health {
    const rs_health_config *cfg;
    rs_health_state state;
    uint32_t ping_fail_run; /* consecutive ping failures */
    uint32_t ping_ok_run;   /* consecutive PONGs */
    uint64_t next_ping_ns;  /* when the next ping is due */
    bool ping_outstanding;
    uint64_t ping_sent_ns;
    uint64_t ping_seq; /* sequence of the outstanding ping (echoed by PONG) */

    rs_breaker_state breaker;
    uint32_t traffic_fail_run;
    uint64_t breaker_opened_ns;
    bool trial_in_flight; /* HALF_OPEN admits one request */
} rs_health;

/* Fills the defaults above. */
void rs_health_config_default(rs_health_config *cfg);
/* Parses the `health:` section (absent section: defaults). Refuses unknown
 * keys, zero intervals, timeout_ms >= interval_ms, zero thresholds. */
int rs_health_config_parse(const rs_cfg_node *section, rs_health_config *out, rs_err *err);

/* initial: UP for a worker that registered (it just spoke), UNKNOWN for a
 * static one. The first ping is due at now_ns. */
void rs_health_init(rs_health *h, const rs_health_config *cfg, rs_health_state initial,
                    uint64_t now_ns);

/* Active side. rs_health_ping_due: a ping should be sent now (none is
 * outstanding and the interval has passed); rs_health_ping_sent records it
 * and returns its sequence number. rs_health_pong: a PONG with seq arrived
 * (a stale seq is ignored, returns false). rs_health_ping_failed: the PING
 * could not be sent / the connection failed. rs_health_check_timeout: the
 * outstanding ping timed out (counts one failure); returns true if it did. */
bool rs_health_ping_due(const rs_health *h, uint64_t now_ns);
uint64_t rs_health_ping_sent(rs_health *h, uint64_t now_ns);
bool rs_health_pong(rs_health *h, uint64_t seq, uint64_t now_ns);
void rs_health_ping_failed(rs_health *h, uint64_t now_ns);
bool rs_health_check_timeout(rs_health *h, uint64_t now_ns);
/* Earliest time something is due (next ping or the outstanding ping's
 * timeout): the caller arms a timer for it. */
uint64_t rs_health_next_event_ns(const rs_health *h);

/* Passive side. rs_health_admit: may a request go to this worker now? It
 * moves OPEN to HALF_OPEN once the cool-down has passed. rs_health_on_pick:
 * the request was sent; returns true when it is the half-open trial.
 * rs_health_on_result: the request's outcome (ok = answered, even with a
 * request-level error; !ok = connection failure, timeout, transient). */
bool rs_health_admit(rs_health *h, uint64_t now_ns);
bool rs_health_on_pick(rs_health *h, uint64_t now_ns);
void rs_health_on_result(rs_health *h, bool ok, bool was_trial, uint64_t now_ns);
/* The request was abandoned by the caller (never answered, not the worker's
 * fault): frees the half-open trial slot without a verdict. */
void rs_health_on_abandon(rs_health *h, bool was_trial);

/* Routable: state UP and the breaker admits (does not change state). */
bool rs_health_routable(const rs_health *h, uint64_t now_ns);

const char *rs_health_state_name(rs_health_state s);
const char *rs_breaker_state_name(rs_breaker_state s);

#endif

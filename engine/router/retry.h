/* retry.h — when a failed request may be tried again, and how often.
 *
 * A retry goes to a different worker (the caller passes the tried ones as
 * rs_route_req.exclude), only after a connection failure, a timeout or a
 * transient worker error (never after the model itself failed: that would
 * fail again), at most retry.max_attempts attempts in all, and only while
 * the retry budget allows: over a sliding window (budget_window_ms, ten
 * buckets) retries may add at most budget_percent of the first attempts,
 * plus min_retries so that a quiet coordinator can still retry. Retries
 * therefore cannot amplify an outage (Finagle's RetryBudget, gRPC's
 * retryThrottling). */
#ifndef RS_RETRY_H
#define RS_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "io/frame.h"

#define RS_RETRY_BUCKETS 10

/* Why a request ended, as the coordinator saw it. */
typedef enum rs_outcome {
    RS_OUTCOME_OK = 0,       /* answered (request-level errors included) */
    RS_OUTCOME_CONN_FAILED,  /* connect/send/recv failed, connection lost */
    RS_OUTCOME_TIMEOUT,      /* no answer in time */
    RS_OUTCOME_TRANSIENT,    /* worker said RS_E_TRANSIENT / RS_E_OVERLOADED */
    RS_OUTCOME_WORKER_ERROR, /* worker failed it for good (RS_E_BACKEND/INTERNAL) */
    RS_OUTCOME_CANCELLED,    /* abandoned by the coordinator (deadline, shutdown) */
} rs_outcome;

typedef struct rs_retry_config {
    uint32_t max_attempts;     /* attempts in all, first included (default 3) */
    uint32_t budget_percent;   /* extra load retries may add (default 10) */
    uint64_t budget_window_ms; /* default 10000 */
    uint32_t min_retries;      /* per window, whatever the traffic (default 3) */
} rs_retry_config;

typedef struct rs_retry_budget {
    const rs_retry_config *cfg;
    uint64_t bucket_ns;
    uint64_t bucket_index; /* absolute index of the newest bucket */
    uint32_t requests[RS_RETRY_BUCKETS];
    uint32_t retries[RS_RETRY_BUCKETS];
    uint64_t retries_total; /* granted */
    uint64_t refused_total; /* wanted but over budget */
} rs_retry_budget;

void rs_retry_config_default(rs_retry_config *cfg);
/* Parses `retry:` (max_attempts, budget_percent, budget_window_ms, min_retries). */
int rs_retry_config_parse(const rs_cfg_node *section, rs_retry_config *out, rs_err *err);

/* Connection failure, timeout, transient worker error. */
bool rs_outcome_retryable(rs_outcome o);
/* The outcome for a worker's reply status (RS_OK and request-level errors: OK). */
rs_outcome rs_outcome_from_status(rs_status st);
const char *rs_outcome_name(rs_outcome o);

void rs_retry_budget_init(rs_retry_budget *b, const rs_retry_config *cfg, uint64_t now_ns);
/* One first attempt. */
void rs_retry_budget_note_request(rs_retry_budget *b, uint64_t now_ns);
/* Takes one retry from the budget; false (and counted) when over it. */
bool rs_retry_budget_take(rs_retry_budget *b, uint64_t now_ns);
/* Sums over the current window. */
void rs_retry_budget_window(rs_retry_budget *b, uint64_t now_ns, uint64_t *requests,
                            uint64_t *retries);

#endif

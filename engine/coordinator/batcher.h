/* batcher.h — one model's dynamic batcher: pure logic, injectable clock.
 *
 * Why pure: batching policy is where serving latency is won or lost, so it is
 * a data structure the tests drive with a fake clock; the coordinator wires
 * it to the loop (a timer at rs_batcher_next_event_us, a poll per tick).
 *
 * Sizes count rows (the batch dimension a request brings, 1 or more), as
 * Triton's max_batch_size does; the queue bound counts requests.
 *
 * Policy (times in µs on the caller's clock, passed as now_us):
 *   - Flush when max_batch_size rows are queued, or when the OLDEST
 *     queued request has waited max_queue_delay_us (the timer starts when a
 *     request arrives, not when a worker asks), or at once when the queue
 *     reaches the largest preferred batch size.
 *   - With nothing of this batcher in flight (the model is idle here), a
 *     queue that reached any preferred size flushes at once, whole (up to
 *     max_batch_size), and with dispatch_when_idle any queue does.
 *   - A batch flushed by the delay takes everything queued (up to
 *     max_batch_size): the requests behind a preferred-size cut would follow
 *     at once as a second, smaller batch. Requests are taken in order (priority, then arrival) while they fit
 *     the target; the first one is always taken, so a batch never splits a
 *     request and never exceeds max_batch_size rows.
 *   - batchable = false: every request is a batch of one, dispatched at once.
 *   - Priority levels 1..priority_levels, 1 highest; priority 0 means
 *     default_priority. Batches take the highest level first, FIFO within a
 *     level.
 *   - Deadline per request (absolute µs; 0 = now + default_timeout_us, or
 *     none when that is 0 too). A queued request whose deadline has passed
 *     is reported through on_expired and never dispatched.
 *   - Bounded: at most max_queue_size requests wait (queued leaders plus
 *     coalesced followers); submit answers RS_BATCHER_OVERLOADED beyond.
 *     At most max_inflight requests are dispatched and not yet completed;
 *     poll dispatches nothing more until rs_batcher_complete frees room.
 *   - Coalescing: a request with a key equal to a queued or in-flight
 *     request's key becomes its follower: it is not computed again and
 *     rs_batcher_complete reports it with its leader (one computation answers
 *     all). A follower expires on its own deadline like any request.
 *
 * Every request ends exactly once: expired (on_expired), or completed with
 * its leader (rs_batcher_complete's callback), or still queued when the
 * batcher is drained (rs_batcher_drain). Storage (max_queue_size +
 * max_inflight entries and the key table) is allocated at creation. */
#ifndef RS_BATCHER_H
#define RS_BATCHER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/common/err.h"

#define RS_BATCHER_MAX_PREFERRED 8
#define RS_BATCHER_MAX_PRIORITIES 16

typedef struct rs_batcher rs_batcher;

typedef struct rs_batcher_config {
    uint32_t max_batch_size;     /* >= 1 */
    uint64_t max_queue_delay_us; /* 0: flush at every poll */
    uint32_t preferred_count;
    uint32_t preferred_batch_sizes[RS_BATCHER_MAX_PREFERRED]; /* each 1..max_batch_size */
    uint32_t max_queue_size;                                  /* >= 1 */
    uint32_t max_inflight;                                    /* 0: 4 * max_batch_size */
    uint64_t default_timeout_us; /* 0: no deadline unless the request gives one */
    uint32_t priority_levels;    /* 1..RS_BATCHER_MAX_PRIORITIES */
    uint32_t default_priority;   /* 1..priority_levels */
    bool batchable;
    bool dispatch_when_idle; /* nothing in flight: flush what is queued at once */
} rs_batcher_config;

/* max_batch_size 8, delay 500 µs, no preferred sizes, queue 1024, inflight 0
 * (derived), no default timeout, 1 priority level, default 1, batchable. */
void rs_batcher_config_default(rs_batcher_config *cfg);
/* Checks every field; 0 or -1 with err naming the field. */
int rs_batcher_config_check(const rs_batcher_config *cfg, rs_err *err);

rs_batcher *rs_batcher_create(const rs_batcher_config *cfg, rs_err *err);
void rs_batcher_destroy(rs_batcher *b);

/* A 128-bit request key (the response-cache key, e.g. rs_kv_key's lo/hi). */
typedef struct rs_batcher_key {
    uint64_t lo, hi;
} rs_batcher_key;

typedef struct rs_batcher_request {
    uint64_t token;       /* the caller's handle, reported back verbatim */
    uint32_t rows;        /* batch-dimension rows; 0 counts as 1 */
    uint32_t priority;    /* 0 = default, 1 = highest */
    uint64_t deadline_us; /* absolute; 0 = default_timeout_us from now (or none) */
    bool has_key;         /* false: never coalesced */
    rs_batcher_key key;
} rs_batcher_request;

typedef enum rs_batcher_status {
    RS_BATCHER_QUEUED = 0,       /* waits for a batch */
    RS_BATCHER_COALESCED = 1,    /* follower of an identical queued/in-flight request */
    RS_BATCHER_OVERLOADED = 2,   /* queue full: answer 429 */
    RS_BATCHER_BAD_PRIORITY = 3, /* priority > priority_levels: answer 400 */
    RS_BATCHER_EXPIRED = 4,      /* deadline already passed: answer 504 */
    RS_BATCHER_TOO_LARGE = 5,    /* rows > max_batch_size: answer 400 */
} rs_batcher_status;

const char *rs_batcher_status_name(rs_batcher_status st);

rs_batcher_status rs_batcher_submit(rs_batcher *b, uint64_t now_us, const rs_batcher_request *req);

/* One dispatched request of a batch. ticket identifies it for completion. */
typedef struct rs_batcher_item {
    uint64_t token;
    uint32_t ticket;
    uint32_t rows;
    uint32_t priority;    /* resolved level */
    uint64_t enqueued_us; /* arrival time, for the queue-wait metric */
} rs_batcher_item;

typedef void (*rs_batcher_token_fn)(void *arg, uint64_t token);

/* Removes expired requests, reporting each token to on_expired (required),
 * then, when a flush is due, fills items (capacity max_batch_size) with one
 * batch. Returns the batch's
 * item count (0: nothing to dispatch now). Call it again while it returns
 * > 0: several batches may be due at once. */
uint32_t rs_batcher_poll(rs_batcher *b, uint64_t now_us, rs_batcher_token_fn on_expired, void *arg,
                         rs_batcher_item *items, uint32_t *rows_out);

/* Ends a dispatched request: fn(arg, token) for it and for each follower
 * still waiting on it, in arrival order; then frees them. Returns how many
 * tokens were reported. The ticket must come from poll and be completed once. */
uint32_t rs_batcher_complete(rs_batcher *b, uint32_t ticket, rs_batcher_token_fn fn, void *arg);

/* When poll should run next: the earliest of the oldest request's delay end
 * and the earliest deadline of any waiting request; UINT64_MAX when nothing
 * waits (or only room in flight is missing: complete triggers the poll). */
uint64_t rs_batcher_next_event_us(const rs_batcher *b, uint64_t now_us);

/* Removes every queued request with its followers, reporting each token to
 * fn: shutdown answers them 503. Requests in flight (and their followers)
 * still end through rs_batcher_complete. Returns the count. */
uint32_t rs_batcher_drain(rs_batcher *b, rs_batcher_token_fn fn, void *arg);

typedef struct rs_batcher_stats {
    uint32_t queued;      /* leaders waiting for a batch */
    uint32_t queued_rows; /* their rows */
    uint32_t followers;   /* coalesced requests waiting on a leader */
    uint32_t inflight;    /* dispatched, not completed */
    uint64_t submitted, coalesced, overloaded, expired, batches, dispatched;
} rs_batcher_stats;
void rs_batcher_stats_get(const rs_batcher *b, rs_batcher_stats *out);
const rs_batcher_config *rs_batcher_get_config(const rs_batcher *b);

#endif

/* loadgen.h — the load generator behind `ringserve bench`.
 *
 * One io/loop.h event loop per client thread (pinned), many connections per
 * loop, one request in flight per connection (as wrk/wrk2 do). The request
 * bytes are prepared once and sent verbatim; responses are parsed enough to
 * know where they end and whether they succeeded (framed: the codec; HTTP:
 * http_parser; memcache: the text protocol's VALUE/END lines).
 *
 * Closed loop (rate 0): each connection sends its next request as soon as
 * the previous answer arrived; latency is answer time - send time.
 * Open loop (rate R): each connection owns an evenly spaced schedule of
 * R / connections requests per second. A request is sent at its intended
 * time, or as soon as the previous answer arrives when that is later; its
 * latency counts from the INTENDED time (wrk2's correction for coordinated
 * omission: a stalled server is charged for the requests it kept us from
 * sending). A success is recorded when it completes inside the measured
 * window (after the warm-up, before the end), whatever its intended time: so
 * throughput is the completion rate even when the server falls behind, and
 * the latency of a request that queued through the warm-up still counts. */
#ifndef RS_BENCH_LOADGEN_H
#define RS_BENCH_LOADGEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/hist.h"
#include "engine/common/err.h"

typedef enum rs_bench_proto {
    RS_BENCH_FRAMED = 0,
    RS_BENCH_HTTP = 1,
    RS_BENCH_MEMCACHE = 2,
} rs_bench_proto;

const char *rs_bench_proto_name(rs_bench_proto p);

/* Error kinds counted separately (plus per-status counts below). */
typedef enum rs_bench_err {
    RS_BENCH_E_CONNECT = 0, /* connect failed */
    RS_BENCH_E_CLOSED,      /* the server closed a connection mid-run */
    RS_BENCH_E_PROTOCOL,    /* an answer that does not parse */
    RS_BENCH_E_SEND,        /* the send queue refused the request */
    RS_BENCH_E_STATUS,      /* HTTP non-2xx / framed ERROR (see status counts) */
    RS_BENCH_E_MISS,        /* memcache END without VALUE */
    RS_BENCH_E_SERVER,      /* memcache ERROR / SERVER_ERROR / CLIENT_ERROR */
    RS_BENCH_E_TIMEOUT,     /* no answer within timeout_ms: the connection is replaced */
    RS_BENCH_E_COUNT_
} rs_bench_err;

const char *rs_bench_err_name(rs_bench_err e);

#define RS_BENCH_STATUS_SLOTS 600 /* HTTP codes; framed rs_status values < 64 */

typedef struct rs_bench_result {
    rs_bhist hist;       /* latency of successful requests, ns */
    uint64_t ok;         /* successful requests recorded */
    uint64_t cache_hits; /* framed: of ok, those flagged CACHE_HIT */
    uint64_t errors[RS_BENCH_E_COUNT_];
    uint64_t status[RS_BENCH_STATUS_SLOTS]; /* per HTTP code / framed rs_status */
    uint64_t bytes_in, bytes_out;
    uint64_t late_sends;   /* open loop: sends that left after their intended time + 1 ms */
    char first_error[256]; /* the first framed ERROR: "STATUS: message" (what the server said) */
} rs_bench_result;

typedef struct rs_bench_cfg {
    rs_bench_proto proto;
    const char *host;
    uint16_t port;
    uint32_t threads;     /* client threads, each with its own loop */
    uint32_t connections; /* in total, spread over the threads */
    double rate;          /* requests/s in total; 0: closed loop */
    double duration_s;    /* measured */
    double warmup_s;      /* before the measured part */
    const uint8_t *request;
    size_t request_len;
    /* > 0: every request differs — 8 bytes at this offset get a per-request
     * sequence number (two FP32 values when unique_fp32), so that a server's
     * cache or request coalescing cannot answer it (framed only: HTTP bodies
     * and memcache keys are sent verbatim). */
    size_t unique_offset;
    bool unique_fp32;
    bool progress;       /* a line each second on stdout */
    int io_backend;      /* rs_io_backend */
    uint32_t timeout_ms; /* per request; 0: wait forever */
} rs_bench_cfg;

/* Runs the benchmark; fills *out (every thread merged) and *measured_s (the
 * measured window). Returns 0, or -1 with err when it could not start
 * (loop creation, threads). Connection failures are counted, not fatal. */
int rs_bench_run(const rs_bench_cfg *cfg, rs_bench_result *out, double *measured_s, rs_err *err);

#endif

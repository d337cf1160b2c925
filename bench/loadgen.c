/* loadgen.c — client threads, connections and response parsing for
 * `ringserve bench` (see loadgen.h for the timing model). */
#include "bench/loadgen.h"

#include <errno.h>
#include <http_parser.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/common/clock.h"
#include "io/frame.h"
#include "io/loop.h"

#define RS_BENCH_RECONNECT_US 10000u      /* after the server closed on us */
#define RS_BENCH_RETRY_CONNECT_US 100000u /* after a failed connect */
#define RS_BENCH_LATE_NS 1000000ull       /* a send this late counts in late_sends */
#define RS_BENCH_MC_LINE_MAX 1024u        /* a memcache status line longer than this is garbage */

const char *rs_bench_proto_name(rs_bench_proto p) {
    switch (p) {
    case RS_BENCH_FRAMED: return "framed";
    case RS_BENCH_HTTP: return "http";
    case RS_BENCH_MEMCACHE: return "memcache";
    }
    return "?";
}

const char *rs_bench_err_name(rs_bench_err e) {
    static const char *const names[RS_BENCH_E_COUNT_] = {
        "connect", "closed", "protocol", "send", "status", "miss", "server_error", "timeout"};
    return (unsigned)e < RS_BENCH_E_COUNT_ ? names[e] : "?";
}

typedef struct bthread bthread;

typedef struct bconn {
    bthread *t;
    rs_conn *c;          /* NULL while disconnected */
    uint32_t global_idx; /* over all threads: staggers the open-loop schedules */
    bool connected;
    bool busy;            /* a request is in flight */
    bool cache_hit;       /* framed: the answer being completed was flagged CACHE_HIT */
    bool close_planned;   /* HTTP: the last answer said "Connection: close" */
    bool timed_out;       /* closed by us after timeout_ms without an answer */
    uint64_t intended_ns; /* what latency counts from */
    uint64_t next_ns;     /* open loop: the next intended send */
    rs_timer timer;       /* open-loop schedule, or reconnect */
    http_parser hp;
} bconn;

struct bthread {
    const rs_bench_cfg *cfg;
    uint32_t index;
    int cpu; /* -1: not pinned */
    uint32_t nconns;
    uint32_t conn_base;
    bconn *conns;
    rs_loop *loop;
    rs_bench_result *res;
    uint8_t *scratch; /* unique requests: this thread's copy of the request */
    uint64_t seq;
    _Atomic uint32_t *ready;          /* threads whose loop exists (or failed) */
    const _Atomic uint64_t *start_ns; /* 0: wait; UINT64_MAX: abort; else the origin */
    uint64_t origin_ns, measure_start_ns, end_ns, interval_ns;
    rs_timer end_timer;
    bool stopping;
    _Atomic uint64_t done;   /* completions so far (progress line) */
    _Atomic uint64_t failed; /* errors so far */
    int rc;
    rs_err err;
    pthread_t tid;
};

static void bc_connect(bconn *bc);

static void count_error(bconn *bc, rs_bench_err kind, uint32_t status) {
    bthread *t = bc->t;
    t->res->errors[kind]++;
    if (status < RS_BENCH_STATUS_SLOTS && kind == RS_BENCH_E_STATUS) t->res->status[status]++;
    atomic_store_explicit(&t->failed, atomic_load_explicit(&t->failed, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void bc_send(bconn *bc, uint64_t intended_ns) {
    bthread *t = bc->t;
    bc->intended_ns = intended_ns;
    bc->busy = true;
    const uint8_t *req = t->cfg->request;
    if (t->cfg->unique_offset) {
        /* The loop copies the bytes into its send buffers: one scratch copy per thread. */
        uint64_t seq = t->seq++;
        uint8_t *p = t->scratch + t->cfg->unique_offset;
        if (t->cfg->unique_fp32) {
            float f[2] = {(float)(seq & 0xFFFFFF),
                          (float)((seq >> 24) + ((uint64_t)t->index << 16))};
            memcpy(p, f, sizeof(f));
        } else {
            seq |= (uint64_t)t->index << 48;
            memcpy(p, &seq, sizeof(seq));
        }
        req = t->scratch;
    }
    int rc = rs_conn_send(bc->c, req, t->cfg->request_len);
    if (rc != 0) {
        bc->busy = false;
        count_error(bc, RS_BENCH_E_SEND, 0);
        rs_conn_close(bc->c);
        return;
    }
    t->res->bytes_out += t->cfg->request_len;
    if (t->cfg->timeout_ms)
        rs_loop_timer_arm(t->loop, &bc->timer, (uint64_t)t->cfg->timeout_ms * 1000);
}

/* Open loop: send now if the schedule says so, else wait for it. */
static void bc_schedule(bconn *bc, uint64_t now_ns) {
    bthread *t = bc->t;
    if (bc->next_ns <= now_ns) {
        if (now_ns - bc->next_ns > RS_BENCH_LATE_NS && bc->next_ns >= t->measure_start_ns)
            t->res->late_sends++;
        bc_send(bc, bc->next_ns);
        return;
    }
    uint64_t delay_us = (bc->next_ns - now_ns + 999) / 1000;
    if (rs_loop_timer_arm(t->loop, &bc->timer, delay_us) != 0)
        bc_send(bc, bc->next_ns); /* no timer room: send early rather than never */
}

/* One answer arrived (kind < 0: success). */
static void bc_complete(bconn *bc, int kind, uint32_t status) {
    bthread *t = bc->t;
    uint64_t now = rs_now_ns();
    bc->busy = false;
    if (t->cfg->timeout_ms) rs_loop_timer_cancel(t->loop, &bc->timer);
    if (kind < 0) {
        if (now >= t->measure_start_ns && now <= t->end_ns) {
            rs_bhist_record(&t->res->hist, now - bc->intended_ns);
            t->res->ok++;
            t->res->cache_hits += bc->cache_hit;
        }
        atomic_store_explicit(&t->done, atomic_load_explicit(&t->done, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    } else {
        count_error(bc, (rs_bench_err)kind, status);
    }
    if (t->stopping || !bc->c || bc->close_planned) return;
    if (t->interval_ns == 0) {
        bc_send(bc, now);
    } else {
        bc->next_ns += t->interval_ns;
        bc_schedule(bc, now);
    }
}

/* ---- protocols: where an answer ends and whether it succeeded ---- */

static ssize_t framed_on_data(bconn *bc, const uint8_t *d, size_t len) {
    size_t off = 0;
    while (off < len) {
        rs_frame_header h;
        int64_t sz = rs_frame_peek(d + off, len - off, RS_FRAME_MAX_PAYLOAD_DEFAULT, &h);
        if (sz == 0 || (sz > 0 && (size_t)sz > len - off)) break;
        char why[128];
        const uint8_t *payload = d + off + RS_FRAME_HEADER_BYTES;
        if (sz < 0 || !bc->busy) {
            count_error(bc, RS_BENCH_E_PROTOCOL, 0);
            return -1;
        }
        if (h.type == RS_MSG_INFER_RESPONSE) {
            rs_infer_response r;
            if (rs_decode_infer_response(payload, h.payload_len, &r, why, sizeof(why)) != 0) {
                count_error(bc, RS_BENCH_E_PROTOCOL, 0);
                return -1;
            }
            bc->cache_hit = (h.flags & RS_FRAME_F_CACHE_HIT) != 0;
            off += (size_t)sz;
            bc_complete(bc, -1, 0);
        } else if (h.type == RS_MSG_ERROR) {
            rs_error_msg e;
            if (rs_decode_error(payload, h.payload_len, &e, why, sizeof(why)) != 0) {
                count_error(bc, RS_BENCH_E_PROTOCOL, 0);
                return -1;
            }
            rs_bench_result *res = bc->t->res;
            if (!res->first_error[0])
                snprintf(res->first_error, sizeof(res->first_error), "%s: %.*s",
                         rs_status_name((rs_status)e.code), (int)e.message.len, e.message.ptr);
            off += (size_t)sz;
            bc_complete(bc, RS_BENCH_E_STATUS, e.code);
        } else {
            count_error(bc, RS_BENCH_E_PROTOCOL, 0);
            return -1;
        }
    }
    return (ssize_t)off;
}

static int http_on_message_complete(http_parser *p) {
    bconn *bc = p->data;
    if (!bc->busy) {
        count_error(bc, RS_BENCH_E_PROTOCOL, 0);
        return -1;
    }
    unsigned code = p->status_code;
    /* "Connection: close" (nginx after keepalive_requests, say): not an
     * error; the connection reconnects and goes on with its schedule. */
    bc->close_planned = !http_should_keep_alive(p);
    bc_complete(bc, code >= 200 && code < 300 ? -1 : RS_BENCH_E_STATUS, code);
    if (bc->close_planned && bc->c) rs_conn_close(bc->c);
    return 0;
}

static const http_parser_settings http_settings = {
    .on_message_complete = http_on_message_complete,
};

static ssize_t http_on_data(bconn *bc, const uint8_t *d, size_t len) {
    size_t n = http_parser_execute(&bc->hp, &http_settings, (const char *)d, len);
    if (HTTP_PARSER_ERRNO(&bc->hp) != HPE_OK) {
        if (HTTP_PARSER_ERRNO(&bc->hp) != HPE_CB_message_complete) /* counted there */
            count_error(bc, RS_BENCH_E_PROTOCOL, 0);
        return -1;
    }
    return (ssize_t)n;
}

static bool starts_with(const uint8_t *p, size_t n, const char *s) {
    size_t k = strlen(s);
    return n >= k && memcmp(p, s, k) == 0;
}

/* memcached text protocol answers to one `get`:
 *   VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n   (hit)
 *   END\r\n                                           (miss)
 *   ERROR\r\n | CLIENT_ERROR ...\r\n | SERVER_ERROR ...\r\n */
static ssize_t memcache_on_data(bconn *bc, const uint8_t *d, size_t len) {
    size_t off = 0;
    while (off < len) {
        const uint8_t *p = d + off;
        size_t n = len - off;
        const uint8_t *eol = memmem(p, n, "\r\n", 2);
        if (!eol) {
            if (n > RS_BENCH_MC_LINE_MAX) {
                count_error(bc, RS_BENCH_E_PROTOCOL, 0);
                return -1;
            }
            break;
        }
        size_t line = (size_t)(eol - p);
        if (!bc->busy) {
            count_error(bc, RS_BENCH_E_PROTOCOL, 0);
            return -1;
        }
        if (starts_with(p, line, "VALUE ")) {
            /* <bytes> is the line's 4th field (a 5th, the CAS, only follows gets). */
            const uint8_t *q = p + 6;
            int field = 1;
            uint64_t bytes = 0;
            bool digits = false;
            for (; q < eol; q++) {
                if (*q == ' ') {
                    field++;
                    continue;
                }
                if (field == 3) {
                    if (*q < '0' || *q > '9' || bytes > (1ull << 40)) {
                        digits = false;
                        break;
                    }
                    bytes = bytes * 10 + (uint64_t)(*q - '0');
                    digits = true;
                }
            }
            if (!digits) {
                count_error(bc, RS_BENCH_E_PROTOCOL, 0);
                return -1;
            }
            size_t need = line + 2 + (size_t)bytes + 7; /* data, "\r\nEND\r\n" */
            if (n < need) break;
            if (memcmp(p + line + 2 + bytes, "\r\nEND\r\n", 7) != 0) {
                count_error(bc, RS_BENCH_E_PROTOCOL, 0);
                return -1;
            }
            off += need;
            bc_complete(bc, -1, 0);
        } else if (line == 3 && memcmp(p, "END", 3) == 0) {
            off += 5;
            bc_complete(bc, RS_BENCH_E_MISS, 0);
        } else if (starts_with(p, line, "ERROR") || starts_with(p, line, "CLIENT_ERROR") ||
                   starts_with(p, line, "SERVER_ERROR")) {
            off += line + 2;
            bc_complete(bc, RS_BENCH_E_SERVER, 0);
        } else {
            count_error(bc, RS_BENCH_E_PROTOCOL, 0);
            return -1;
        }
    }
    return (ssize_t)off;
}

/* ---- connection callbacks ---- */

static ssize_t bc_on_data(rs_conn *c, const uint8_t *data, size_t len) {
    bconn *bc = rs_conn_udata(c);
    switch (bc->t->cfg->proto) {
    case RS_BENCH_FRAMED: return framed_on_data(bc, data, len);
    case RS_BENCH_HTTP: return http_on_data(bc, data, len);
    case RS_BENCH_MEMCACHE: return memcache_on_data(bc, data, len);
    }
    return -1;
}

static void bc_on_connect(rs_conn *c, int err) {
    bconn *bc = rs_conn_udata(c);
    bthread *t = bc->t;
    if (err != 0) return; /* on_close follows and counts it */
    bc->connected = true;
    http_parser_init(&bc->hp, HTTP_RESPONSE);
    bc->hp.data = bc;
    if (t->stopping) return;
    uint64_t now = rs_now_ns();
    if (t->interval_ns == 0) {
        bc->close_planned = false;
        bc_send(bc, now);
        return;
    }
    /* Staggered start so that the connections' schedules interleave; after a
     * reconnect the schedule resumes now (the dead time is reported as
     * errors, not as latency). */
    if (bc->close_planned) { /* the server closed after an answer: same schedule */
        bc->close_planned = false;
        bc->next_ns += t->interval_ns;
        bc_schedule(bc, now);
        return;
    }
    uint64_t first = t->origin_ns + t->interval_ns * bc->global_idx / t->cfg->connections;
    bc->next_ns = first > now ? first : now;
    bc_schedule(bc, now);
}

static void bc_on_close(rs_conn *c, int err) {
    (void)err;
    bconn *bc = rs_conn_udata(c);
    bthread *t = bc->t;
    bool was_connected = bc->connected;
    bc->c = NULL;
    bc->connected = false;
    bc->busy = false;
    if (t->stopping) return;
    if (was_connected && bc->timed_out) { /* counted as a timeout already */
        bc->timed_out = false;
        rs_loop_timer_arm(t->loop, &bc->timer, 0);
        return;
    }
    if (was_connected && bc->close_planned) {
        rs_loop_timer_arm(t->loop, &bc->timer, 0);
        return;
    }
    count_error(bc, was_connected ? RS_BENCH_E_CLOSED : RS_BENCH_E_CONNECT, 0);
    rs_loop_timer_arm(t->loop, &bc->timer,
                      was_connected ? RS_BENCH_RECONNECT_US : RS_BENCH_RETRY_CONNECT_US);
}

static const rs_conn_ops bc_ops = {
    .on_connect = bc_on_connect,
    .on_data = bc_on_data,
    .on_close = bc_on_close,
};

static void bc_connect(bconn *bc) {
    bthread *t = bc->t;
    rs_err err;
    bc->c = rs_loop_connect(t->loop, t->cfg->host, t->cfg->port, &bc_ops, bc, &err);
    if (!bc->c) {
        count_error(bc, RS_BENCH_E_CONNECT, 0);
        rs_loop_timer_arm(t->loop, &bc->timer, RS_BENCH_RETRY_CONNECT_US);
    }
}

static void bc_on_timer(rs_loop *loop, rs_timer *tm, void *arg) {
    (void)loop;
    (void)tm;
    bconn *bc = arg;
    if (bc->t->stopping) return;
    if (!bc->c) {
        bc_connect(bc);
        return;
    }
    if (bc->connected && bc->busy) { /* the request's timeout_ms ran out */
        count_error(bc, RS_BENCH_E_TIMEOUT, 0);
        bc->busy = false;
        bc->timed_out = true;
        rs_conn_close(bc->c);
        return;
    }
    if (bc->connected) bc_schedule(bc, rs_now_ns());
}

static void bt_on_end(rs_loop *loop, rs_timer *tm, void *arg) {
    (void)tm;
    bthread *t = arg;
    t->stopping = true;
    rs_loop_stop(loop);
}

static void pin_thread(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void sleep_until(uint64_t t_ns) {
    uint64_t now = rs_now_ns();
    if (t_ns <= now) return;
    struct timespec ts = {.tv_sec = (time_t)((t_ns - now) / 1000000000ull),
                          .tv_nsec = (long)((t_ns - now) % 1000000000ull)};
    nanosleep(&ts, NULL);
}

static void *bt_main(void *arg) {
    bthread *t = arg;
    const rs_bench_cfg *cfg = t->cfg;
    pin_thread(t->cpu);
    rs_loop_config lc;
    rs_loop_config_default(&lc);
    lc.backend = (rs_io_backend)cfg->io_backend;
    if (t->nconns + 16 > lc.max_conns) lc.max_conns = t->nconns + 16;
    lc.max_timers = t->nconns + 16;
    t->loop = rs_loop_create(&lc, &t->err);
    t->rc = t->loop ? 0 : -1;
    atomic_fetch_add(t->ready, 1);
    while (atomic_load(t->start_ns) == 0)
        sleep_until(rs_now_ns() + 200000);
    if (t->rc != 0 || atomic_load(t->start_ns) == UINT64_MAX) goto out;
    t->origin_ns = atomic_load(t->start_ns);
    t->measure_start_ns = t->origin_ns + (uint64_t)(cfg->warmup_s * 1e9);
    t->end_ns = t->measure_start_ns + (uint64_t)(cfg->duration_s * 1e9);
    t->interval_ns = cfg->rate > 0 ? (uint64_t)(1e9 * (double)cfg->connections / cfg->rate) : 0;
    if (cfg->rate > 0 && t->interval_ns == 0) t->interval_ns = 1;
    if (cfg->unique_offset) {
        t->scratch = malloc(cfg->request_len);
        if (!t->scratch) {
            t->rc = -1;
            rs_err_set(&t->err, "client thread %u: out of memory", t->index);
            goto out;
        }
        memcpy(t->scratch, cfg->request, cfg->request_len);
    }
    rs_timer_init(&t->end_timer, bt_on_end, t);
    uint64_t now = rs_now_ns();
    rs_loop_timer_arm(t->loop, &t->end_timer, t->end_ns > now ? (t->end_ns - now) / 1000 : 0);
    for (uint32_t i = 0; i < t->nconns; i++) {
        bconn *bc = &t->conns[i];
        bc->t = t;
        bc->global_idx = t->conn_base + i;
        rs_timer_init(&bc->timer, bc_on_timer, bc);
        bc_connect(bc);
    }
    if (rs_loop_run(t->loop) != 0) {
        t->rc = -1;
        rs_err_set(&t->err, "client thread %u: the event loop failed", t->index);
    }
    t->stopping = true;
    rs_loop_stats st;
    rs_loop_get_stats(t->loop, &st);
    t->res->bytes_in = st.bytes_in; /* exact, from the loop */
out:
    free(t->scratch);
    t->scratch = NULL;
    if (t->loop) rs_loop_destroy(t->loop);
    t->loop = NULL;
    return NULL;
}

/* The CPUs this process may run on, in order. */
static int allowed_cpus(int *cpus, int max) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    int n = 0;
    for (int i = 0; i < CPU_SETSIZE && n < max; i++)
        if (CPU_ISSET(i, &set)) cpus[n++] = i;
    return n;
}

int rs_bench_run(const rs_bench_cfg *cfg, rs_bench_result *out, double *measured_s, rs_err *err) {
    uint32_t nt = cfg->threads ? cfg->threads : 1;
    if (cfg->connections < nt) {
        rs_err_set(err, "--concurrency %u is less than --threads %u", cfg->connections, nt);
        return -1;
    }
    bthread *ts = calloc(nt, sizeof(*ts));
    bconn *conns = calloc(cfg->connections, sizeof(*conns));
    rs_bench_result *res = calloc(nt, sizeof(*res));
    if (!ts || !conns || !res) {
        free(ts);
        free(conns);
        free(res);
        rs_err_set(err, "out of memory for %u threads, %u connections", nt, cfg->connections);
        return -1;
    }
    int cpus[CPU_SETSIZE];
    int ncpu = allowed_cpus(cpus, CPU_SETSIZE);
    _Atomic uint32_t ready = 0;
    _Atomic uint64_t start_ns = 0;
    uint32_t base = 0;
    uint32_t started = 0;
    int rc = 0;
    for (uint32_t i = 0; i < nt; i++) {
        bthread *t = &ts[i];
        t->cfg = cfg;
        t->index = i;
        t->cpu = ncpu > 0 ? cpus[i % (uint32_t)ncpu] : -1;
        t->nconns = cfg->connections / nt + (i < cfg->connections % nt ? 1 : 0);
        t->conn_base = base;
        t->conns = conns + base;
        base += t->nconns;
        t->res = &res[i];
        rs_bhist_reset(&t->res->hist);
        t->ready = &ready;
        t->start_ns = &start_ns;
        if (pthread_create(&t->tid, NULL, bt_main, t) != 0) {
            rs_err_set(err, "cannot start client thread %u: %s", i, strerror(errno));
            rc = -1;
            break;
        }
        started++;
    }
    while (atomic_load(&ready) < started)
        sleep_until(rs_now_ns() + 200000);
    for (uint32_t i = 0; i < started && rc == 0; i++) {
        if (ts[i].rc != 0) {
            *err = ts[i].err;
            rc = -1;
        }
    }
    uint64_t origin = rs_now_ns() + 1000000; /* 1 ms: let the connects start */
    atomic_store(&start_ns, rc == 0 ? origin : UINT64_MAX);

    if (rc == 0) {
        uint64_t measure_start = origin + (uint64_t)(cfg->warmup_s * 1e9);
        uint64_t end = measure_start + (uint64_t)(cfg->duration_s * 1e9);
        uint64_t last_done = 0, tick = origin;
        while (cfg->progress) {
            tick += 1000000000ull;
            if (tick >= end) break;
            sleep_until(tick);
            uint64_t done = 0, failed = 0;
            for (uint32_t i = 0; i < nt; i++) {
                done += atomic_load_explicit(&ts[i].done, memory_order_relaxed);
                failed += atomic_load_explicit(&ts[i].failed, memory_order_relaxed);
            }
            double el = (double)(tick - origin) / 1e9;
            printf("\r  %5.1fs %s %10.0f req/s  errors %llu   ", el,
                   tick <= measure_start ? "warmup" : "      ", (double)(done - last_done),
                   (unsigned long long)failed);
            fflush(stdout);
            last_done = done;
        }
        if (cfg->progress) {
            printf("\r%60s\r", "");
            fflush(stdout);
        }
    }
    for (uint32_t i = 0; i < started; i++)
        pthread_join(ts[i].tid, NULL);
    memset(out, 0, sizeof(*out));
    rs_bhist_reset(&out->hist);
    for (uint32_t i = 0; i < nt && rc == 0; i++) {
        if (ts[i].rc != 0) {
            *err = ts[i].err;
            rc = -1;
            break;
        }
        rs_bench_result *r = &res[i];
        if (!out->first_error[0])
            memcpy(out->first_error, r->first_error, sizeof(out->first_error));
        rs_bhist_merge(&out->hist, &r->hist);
        out->ok += r->ok;
        out->cache_hits += r->cache_hits;
        for (int k = 0; k < RS_BENCH_E_COUNT_; k++)
            out->errors[k] += r->errors[k];
        for (int k = 0; k < RS_BENCH_STATUS_SLOTS; k++)
            out->status[k] += r->status[k];
        out->bytes_in += r->bytes_in;
        out->bytes_out += r->bytes_out;
        out->late_sends += r->late_sends;
    }
    *measured_s = cfg->duration_s;
    free(ts);
    free(conns);
    free(res);
    return rc;
}

/* echo_bench.c — echo server and closed-loop client on the rs_loop, io_uring
 * vs epoll in one run.
 *
 * The server thread runs one loop that echoes every byte back. The client
 * thread (main) runs another loop with C connections; each sends one frame of
 * S bytes, waits for all S bytes to come back, records the round trip and
 * sends the next. Output: one markdown row per (backend, size, conns) cell
 * with req/s and p50/p99 round-trip latency. Latencies go into a preallocated
 * log-linear histogram; nothing allocates while measuring.
 *
 *   rs_echo_bench [--seconds=2] [--rounds=3] [--sizes=64,65536] [--conns=1,16,256]
 *                 [--backends=uring,epoll] [--recv-buf-bytes=16384] [--zc-sweep]
 *
 * Each cell runs --rounds times, alternating the two variants round by round
 * so that noise from a shared machine hits both alike; the row shows the
 * median round (by req/s) of each.
 *
 * --zc-sweep instead compares plain sends with SEND_ZC (threshold 1) on
 * io_uring at several frame sizes, to pick send_zc_threshold_bytes. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "io/loop.h"

/* ---- histogram: 64 sub-buckets per power of two of nanoseconds ---------- */
#define H_SUB 64
#define H_POW 40
typedef struct hist {
    uint64_t n;
    uint64_t b[H_POW * H_SUB];
} hist;

static void hist_add(hist *h, uint64_t ns) {
    if (ns < H_SUB) ns = H_SUB;
    int p = 63 - __builtin_clzll(ns);             /* >= 6 */
    uint64_t sub = (ns >> (p - 6)) & (H_SUB - 1); /* next 6 bits */
    size_t i = (size_t)(p - 6) * H_SUB + sub;
    if (i >= H_POW * H_SUB) i = H_POW * H_SUB - 1;
    h->b[i]++;
    h->n++;
}

static double hist_pct(const hist *h, double q) {
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
    for (size_t i = 0; i < H_POW * H_SUB; i++) {
        seen += h->b[i];
        if (seen > want) {
            int p = (int)(i / H_SUB) + 6;
            uint64_t lo = (1ull << p) | ((uint64_t)(i % H_SUB) << (p - 6));
            return (double)lo / 1000.0; /* µs, lower edge of the bucket (1.6% wide) */
        }
    }
    return 0;
}

/* ---- server ---------------------------------------------------------------- */

static ssize_t srv_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    return rs_conn_send(c, d, n) == 0 ? (ssize_t)n : 0; /* full slab: retried on resume */
}
static const rs_conn_ops srv_ops = {.on_data = srv_on_data};

/* RS_ECHO_STATS=1: loop counters per cell on stderr (to see backpressure). */
static void print_stats(const char *who, const rs_loop *loop) {
    if (!getenv("RS_ECHO_STATS")) return;
    rs_loop_stats st;
    rs_loop_get_stats(loop, &st);
    fprintf(stderr, "%s %s: iterations %llu bytes_in %llu recv_enobufs %llu read_paused %llu\n",
            who, rs_io_backend_name(rs_loop_backend(loop)), (unsigned long long)st.iterations,
            (unsigned long long)st.bytes_in, (unsigned long long)st.recv_enobufs,
            (unsigned long long)st.read_paused);
}

typedef struct server {
    rs_loop_config cfg;
    rs_loop *loop;
    atomic_int port; /* 0 until listening, -1 on failure */
    pthread_t th;
} server;

static void *server_main(void *arg) {
    server *s = arg;
    rs_err err;
    s->loop = rs_loop_create(&s->cfg, &err);
    int lid = s->loop ? rs_loop_listen(s->loop, "127.0.0.1", 0, false, &srv_ops, NULL, &err) : -1;
    if (lid < 0) {
        fprintf(stderr, "echo server: %s\n", err.msg);
        atomic_store(&s->port, -1);
        return NULL;
    }
    atomic_store(&s->port, rs_loop_listen_port(s->loop, lid));
    rs_loop_run(s->loop);
    print_stats("server", s->loop);
    rs_loop_destroy(s->loop);
    return NULL;
}

/* ---- client ---------------------------------------------------------------- */

typedef struct cconn {
    rs_conn_id id;
    uint64_t t0;
    size_t got;
    bool retry;
} cconn;

typedef struct client {
    rs_loop *loop;
    size_t size;
    uint8_t *payload;
    cconn *cs;
    uint32_t nconns;
    uint32_t connected;
    bool measuring;
    uint64_t t_start_ns, t_end_ns;
    uint64_t done;
    hist h;
    rs_timer warm, stop;
    int failed;
} client;

static client g_cl;

static void cl_send(rs_conn *c, cconn *cc) {
    cc->t0 = rs_now_ns();
    cc->got = 0;
    cc->retry = rs_conn_send(c, g_cl.payload, g_cl.size) != 0; /* full slab: tick retries */
}
static void cl_on_connect(rs_conn *c, int err) {
    cconn *cc = rs_conn_udata(c);
    if (err) {
        g_cl.failed++;
        return;
    }
    cc->id = rs_conn_get_id(c);
    g_cl.connected++;
    cl_send(c, cc);
}
static ssize_t cl_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    (void)d;
    cconn *cc = rs_conn_udata(c);
    cc->got += n;
    if (cc->got >= g_cl.size) {
        if (g_cl.measuring) {
            hist_add(&g_cl.h, rs_now_ns() - cc->t0);
            g_cl.done++;
        }
        cl_send(c, cc);
    }
    return (ssize_t)n;
}
static void cl_on_close(rs_conn *c, int err) {
    (void)c;
    if (err && err != -ECANCELED) g_cl.failed++;
}
static const rs_conn_ops cl_ops = {
    .on_connect = cl_on_connect, .on_data = cl_on_data, .on_close = cl_on_close};

static void cl_tick(rs_loop *loop, void *arg) {
    (void)arg;
    for (uint32_t i = 0; i < g_cl.nconns; i++) {
        cconn *cc = &g_cl.cs[i];
        if (!cc->retry) continue;
        rs_conn *c = rs_loop_conn(loop, cc->id);
        if (c) cl_send(c, cc);
    }
}
static void warm_fn(rs_loop *loop, rs_timer *t, void *arg) {
    (void)t, (void)arg;
    g_cl.measuring = true;
    g_cl.t_start_ns = rs_loop_now_ns(loop);
}
static void stop_fn(rs_loop *loop, rs_timer *t, void *arg) {
    (void)t, (void)arg;
    g_cl.measuring = false;
    g_cl.t_end_ns = rs_loop_now_ns(loop);
    rs_loop_stop(loop);
}

typedef struct cell {
    rs_io_backend backend;
    size_t size;
    uint32_t conns;
    uint32_t zc_threshold;
    uint32_t send_buf_bytes;
    double seconds;
} cell;

typedef struct result {
    double rps, p50_us, p99_us;
    int failed;
} result;

static uint32_t g_recv_buf_bytes; /* --recv-buf-bytes; 0: loop default */

static void loop_cfg(rs_loop_config *cfg, const cell *k) {
    rs_loop_config_default(cfg);
    cfg->backend = k->backend;
    cfg->max_conns = 1024;
    cfg->send_buf_bytes = k->send_buf_bytes;
    /* 3 MiB of registered send slab per loop: two loops stay under the usual
     * 8 MiB RLIMIT_MEMLOCK; big cells exercise the slab-full backpressure. */
    cfg->send_buf_count = (3u << 20) / k->send_buf_bytes;
    cfg->conn_write_queue_max_bytes = 256 * 1024;
    cfg->send_zc_threshold_bytes = k->zc_threshold;
    if (g_recv_buf_bytes) { /* same 4 MiB of receive buffers, cut differently */
        cfg->recv_buf_bytes = g_recv_buf_bytes;
        cfg->recv_buf_count = (4u << 20) / g_recv_buf_bytes;
    }
}

static result run_cell(const cell *k) {
    result r = {0};
    server s;
    memset(&s, 0, sizeof(s));
    loop_cfg(&s.cfg, k);
    pthread_create(&s.th, NULL, server_main, &s);
    while (atomic_load(&s.port) == 0)
        sched_yield();
    if (atomic_load(&s.port) < 0) {
        pthread_join(s.th, NULL);
        r.failed = 1;
        return r;
    }
    memset(&g_cl, 0, sizeof(g_cl));
    rs_loop_config cfg;
    loop_cfg(&cfg, k);
    rs_err err;
    g_cl.loop = rs_loop_create(&cfg, &err);
    if (!g_cl.loop) {
        fprintf(stderr, "echo client: %s\n", err.msg);
        exit(1);
    }
    g_cl.size = k->size;
    g_cl.payload = malloc(k->size);
    memset(g_cl.payload, 'x', k->size);
    g_cl.nconns = k->conns;
    g_cl.cs = calloc(k->conns, sizeof(cconn));
    rs_loop_set_tick(g_cl.loop, cl_tick, NULL);
    for (uint32_t i = 0; i < k->conns; i++)
        if (!rs_loop_connect(g_cl.loop, "127.0.0.1", (uint16_t)atomic_load(&s.port), &cl_ops,
                             &g_cl.cs[i], &err)) {
            fprintf(stderr, "echo client: %s\n", err.msg);
            exit(1);
        }
    uint64_t warm_us = (uint64_t)(k->seconds * 1e6 * 0.2);
    rs_timer_init(&g_cl.warm, warm_fn, NULL);
    rs_timer_init(&g_cl.stop, stop_fn, NULL);
    rs_loop_timer_arm(g_cl.loop, &g_cl.warm, warm_us);
    rs_loop_timer_arm(g_cl.loop, &g_cl.stop, warm_us + (uint64_t)(k->seconds * 1e6));
    rs_loop_run(g_cl.loop);
    rs_loop_stop(s.loop);
    pthread_join(s.th, NULL);
    print_stats("client", g_cl.loop);
    rs_loop_destroy(g_cl.loop);
    double secs = (double)(g_cl.t_end_ns - g_cl.t_start_ns) / 1e9;
    r.rps = secs > 0 ? (double)g_cl.done / secs : 0;
    r.p50_us = hist_pct(&g_cl.h, 0.50);
    r.p99_us = hist_pct(&g_cl.h, 0.99);
    r.failed = g_cl.failed;
    free(g_cl.payload);
    free(g_cl.cs);
    return r;
}

static int cmp_rps(const void *a, const void *b) {
    double x = ((const result *)a)->rps, y = ((const result *)b)->rps;
    return x < y ? -1 : x > y;
}

/* Runs cells a and b alternately, rounds times each; medians by req/s. */
static void run_pair(const cell *a, const cell *b, int rounds, result *ra, result *rb) {
    result xa[16], xb[16];
    int fa = 0, fb = 0;
    for (int r = 0; r < rounds; r++) {
        xa[r] = run_cell(a);
        if (b) xb[r] = run_cell(b);
        fa |= xa[r].failed;
        if (b) fb |= xb[r].failed;
    }
    qsort(xa, (size_t)rounds, sizeof(result), cmp_rps);
    *ra = xa[rounds / 2];
    ra->failed = fa;
    if (b) {
        qsort(xb, (size_t)rounds, sizeof(result), cmp_rps);
        *rb = xb[rounds / 2];
        rb->failed = fb;
    }
}

static int parse_list(const char *s, uint64_t *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = strtoull(s, &end, 10);
        if (end == s) return -1;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

int main(int argc, char **argv) {
    double seconds = 2;
    int rounds = 3;
    uint64_t sizes[8] = {64, 65536}, conns[8] = {1, 16, 256};
    int nsizes = 2, nconns = 3;
    rs_io_backend backends[2] = {RS_IO_URING, RS_IO_EPOLL};
    int nb = 2;
    bool zc_sweep = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--seconds=", 10) == 0)
            seconds = atof(a + 10);
        else if (strncmp(a, "--rounds=", 9) == 0)
            rounds = atoi(a + 9);
        else if (strncmp(a, "--recv-buf-bytes=", 17) == 0) {
            g_recv_buf_bytes = (uint32_t)atoi(a + 17);
            uint32_t n = g_recv_buf_bytes ? (4u << 20) / g_recv_buf_bytes : 0;
            if (g_recv_buf_bytes < 4096 || n == 0 || (n & (n - 1)) != 0) {
                fprintf(stderr,
                        "rs_echo_bench: --recv-buf-bytes: a power of two in [4096, 4 MiB]\n");
                return 2;
            }
        } else if (strncmp(a, "--sizes=", 8) == 0)
            nsizes = parse_list(a + 8, sizes, 8);
        else if (strncmp(a, "--conns=", 8) == 0)
            nconns = parse_list(a + 8, conns, 8);
        else if (strcmp(a, "--zc-sweep") == 0)
            zc_sweep = true;
        else if (strncmp(a, "--backends=", 11) == 0) {
            nb = 0;
            char buf[64];
            snprintf(buf, sizeof(buf), "%s", a + 11);
            for (char *t = strtok(buf, ","); t && nb < 2; t = strtok(NULL, ","))
                if (rs_io_backend_parse(t, &backends[nb++]) != 0) {
                    fprintf(stderr, "rs_echo_bench: --backends: '%s': expected uring or epoll\n",
                            t);
                    return 2;
                }
        } else {
            fprintf(stderr, "usage: rs_echo_bench [--seconds=S] [--rounds=N] [--sizes=a,b] "
                            "[--conns=a,b] [--backends=uring,epoll] [--recv-buf-bytes=B] "
                            "[--zc-sweep]\n");
            return 2;
        }
    }
    if (nsizes <= 0 || nconns <= 0 || seconds <= 0 || rounds < 1 || rounds > 16) {
        fprintf(stderr, "rs_echo_bench: bad --sizes, --conns, --seconds or --rounds (1..16)\n");
        return 2;
    }
    rs_log_set_level(RS_LOG_WARN);
    if (zc_sweep) {
        uint64_t zs[] = {1024, 4096, 8192, 16384, 65536};
        printf(
            "| frame | conns | send req/s | SEND_ZC req/s | ZC/send | send p99 µs | ZC p99 µs |\n");
        printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (size_t i = 0; i < sizeof(zs) / sizeof(zs[0]); i++) {
            cell k = {RS_IO_URING, zs[i], (uint32_t)conns[0], 0, 65536, seconds};
            cell kz = k;
            kz.zc_threshold = 1;
            result a, b;
            run_pair(&k, &kz, rounds, &a, &b);
            printf("| %llu B | %u | %.0f | %.0f | %.2f | %.1f | %.1f |\n",
                   (unsigned long long)zs[i], k.conns, a.rps, b.rps, b.rps / a.rps, a.p99_us,
                   b.p99_us);
            fflush(stdout);
        }
        return 0;
    }
    printf("| frame | conns | uring req/s | epoll req/s | uring/epoll | uring p50 µs | uring p99 "
           "µs | epoll p50 µs | epoll p99 µs |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int si = 0; si < nsizes; si++)
        for (int ci = 0; ci < nconns; ci++) {
            result res[2] = {{0}, {0}}, r0, r1;
            cell k0 = {backends[0], sizes[si], (uint32_t)conns[ci], 0, 4096, seconds};
            cell k1 = k0;
            k1.backend = nb > 1 ? backends[1] : backends[0];
            run_pair(&k0, nb > 1 ? &k1 : NULL, rounds, &r0, &r1);
            res[backends[0] == RS_IO_URING ? 0 : 1] = r0;
            if (nb > 1) res[k1.backend == RS_IO_URING ? 0 : 1] = r1;
            printf("| %llu B | %llu | %.0f | %.0f | %.2f | %.1f | %.1f | %.1f | %.1f |%s\n",
                   (unsigned long long)sizes[si], (unsigned long long)conns[ci], res[0].rps,
                   res[1].rps, res[1].rps > 0 ? res[0].rps / res[1].rps : 0, res[0].p50_us,
                   res[0].p99_us, res[1].p50_us, res[1].p99_us,
                   res[0].failed || res[1].failed ? " (errors)" : "");
            fflush(stdout);
        }
    return 0;
}

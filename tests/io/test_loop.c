/* test_loop.c — the event loop on both backends (every test runs twice).
 *
 * Tests drive one loop from the test thread with rs_loop_run_once and stop
 * on a condition, with an iteration cap so a bug fails instead of hanging.
 * Nothing here asserts on time. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <numa.h>
#include <numaif.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/common/config.h"
#include "engine/common/opts.h"
#include "io/loop.h"
#include "io/loop_config.h"
#include "io/loop_internal.h"

static rs_io_backend g_uring = RS_IO_URING;
static rs_io_backend g_epoll = RS_IO_EPOLL;

static rs_loop *new_loop(void **state, rs_loop_config *cfg_override) {
    rs_loop_config cfg;
    if (cfg_override)
        cfg = *cfg_override;
    else
        rs_loop_config_default(&cfg);
    cfg.backend = *(rs_io_backend *)*state;
    rs_err err = {{0}};
    rs_loop *loop = rs_loop_create(&cfg, &err);
    if (!loop) fail_msg("rs_loop_create: %s", err.msg);
    assert_int_equal(rs_loop_backend(loop), cfg.backend);
    return loop;
}

#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        int it_ = 0;                                                                               \
        while (!(cond) && it_++ < 20000)                                                           \
            rs_loop_run_once((loop), 50);                                                          \
        assert_true(cond);                                                                         \
    } while (0)

/* ---- echo ---------------------------------------------------------------- */

static ssize_t echo_on_data(rs_conn *c, const uint8_t *data, size_t len) {
    return rs_conn_send(c, data, len) == 0 ? (ssize_t)len : 0;
}
static const rs_conn_ops echo_ops = {.on_data = echo_on_data};

typedef struct client {
    uint8_t msg[1000];
    size_t got;
    bool ok;
    bool closed;
    int connect_err;
    int close_err;
} client;

static int g_done;

static void cl_on_connect(rs_conn *c, int err) {
    client *cl = rs_conn_udata(c);
    cl->connect_err = err;
    if (err == 0) assert_int_equal(rs_conn_send(c, cl->msg, sizeof(cl->msg)), 0);
}
static ssize_t cl_on_data(rs_conn *c, const uint8_t *data, size_t len) {
    client *cl = rs_conn_udata(c);
    assert_true(cl->got + len <= sizeof(cl->msg));
    assert_memory_equal(data, cl->msg + cl->got, len);
    cl->got += len;
    if (cl->got == sizeof(cl->msg)) {
        cl->ok = true;
        rs_conn_close(c);
    }
    return (ssize_t)len;
}
static void cl_on_close(rs_conn *c, int err) {
    client *cl = rs_conn_udata(c);
    cl->closed = true;
    cl->close_err = err;
    g_done++;
}
static const rs_conn_ops client_ops = {
    .on_connect = cl_on_connect, .on_data = cl_on_data, .on_close = cl_on_close};

static void echo_many(void **state, rs_loop_config *cfg) {
    rs_loop *loop = new_loop(state, cfg);
    rs_err err;
    int lid = rs_loop_listen(loop, "127.0.0.1", 0, false, &echo_ops, NULL, &err);
    assert_true(lid >= 0);
    uint16_t port = rs_loop_listen_port(loop, lid);
    assert_true(port != 0);
    enum { N = 300 };
    client *cls = calloc(N, sizeof(client));
    g_done = 0;
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < sizeof(cls[i].msg); k++)
            cls[i].msg[k] = (uint8_t)(i * 7 + k);
        assert_non_null(rs_loop_connect(loop, "127.0.0.1", port, &client_ops, &cls[i], &err));
    }
    RUN_UNTIL(loop, g_done == N);
    for (int i = 0; i < N; i++) {
        assert_true(cls[i].ok);
        assert_int_equal(cls[i].connect_err, 0);
        assert_int_equal(cls[i].close_err, 0);
    }
    rs_loop_stats st;
    rs_loop_get_stats(loop, &st);
    assert_int_equal(st.conns_accepted, N);
    /* the server side closes when the clients do */
    RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.conns_open == 0));
    assert_int_equal(st.conns_closed, 2 * N);
    rs_loop_destroy(loop);
    free(cls);
}

static void test_echo_many(void **state) {
    echo_many(state, NULL);
}

/* Every send zero-copy (uring; epoll ignores the threshold): each chunk is
 * reused only after its notification, and everything still arrives. */
static void test_echo_send_zc(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.send_zc_threshold_bytes = 1;
    cfg.send_buf_bytes = 2048; /* chunks wait for notifications: have enough */
    cfg.send_buf_count = 1024;
    echo_many(state, &cfg);
}

/* Registered send buffers unavailable (as after ENOMEM under a low
 * RLIMIT_MEMLOCK): the loop sends from unregistered memory and still works. */
static void test_echo_unregistered(void **state) {
    rs__uring_refuse_registration = true;
    echo_many(state, NULL);
    rs__uring_refuse_registration = false;
}

/* ---- helpers: a raw blocking client socket -------------------------------- */

static int raw_connect(uint16_t port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void raw_write_all(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        assert_true(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

/* Reads what is there without blocking, appending to buf. */
static size_t raw_read_some(int fd, uint8_t *buf, size_t cap) {
    ssize_t r = recv(fd, buf, cap, MSG_DONTWAIT);
    return r > 0 ? (size_t)r : 0;
}

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static uint16_t listen_on(rs_loop *loop, const rs_conn_ops *ops, void *udata) {
    rs_err err;
    int lid = rs_loop_listen(loop, "127.0.0.1", 0, false, ops, udata, &err);
    if (lid < 0) fail_msg("listen: %s", err.msg);
    return rs_loop_listen_port(loop, lid);
}

/* ---- a length-prefixed test protocol: u32 LE length + payload --------------- */

typedef struct frame_srv {
    rs_conn_id id;
    uint64_t frames;
    uint64_t calls;
    bool pause_each; /* pause reading after every frame */
    int close_err;
    bool closed;
    uint64_t max_queued;
    uint64_t drains;
} frame_srv;

static frame_srv g_fs;

static int fs_on_open(rs_conn *c) {
    g_fs.id = rs_conn_get_id(c);
    return 0;
}
static ssize_t fs_on_data(rs_conn *c, const uint8_t *data, size_t len) {
    size_t off = 0;
    g_fs.calls++;
    while (len - off >= 4) {
        uint32_t n;
        memcpy(&n, data + off, 4);
        if (len - off - 4 < n) break;
        int rc = rs_conn_send(c, data + off, 4 + (size_t)n);
        if (rc != 0) break; /* backpressure: leave the frame for later */
        off += 4 + (size_t)n;
        g_fs.frames++;
        if (rs_conn_write_queued(c) > g_fs.max_queued) g_fs.max_queued = rs_conn_write_queued(c);
        if (g_fs.pause_each) {
            rs_conn_pause_read(c);
            break;
        }
    }
    return (ssize_t)off;
}
static void fs_on_drain(rs_conn *c) {
    (void)c;
    g_fs.drains++;
}
static void fs_on_close(rs_conn *c, int err) {
    (void)c;
    g_fs.closed = true;
    g_fs.close_err = err;
}
static const rs_conn_ops frame_ops = {
    .on_open = fs_on_open, .on_data = fs_on_data, .on_drain = fs_on_drain, .on_close = fs_on_close};

static size_t make_frame(uint8_t *out, uint32_t n, uint8_t seed) {
    memcpy(out, &n, 4);
    for (uint32_t i = 0; i < n; i++)
        out[4 + i] = (uint8_t)(seed + i * 13);
    return 4 + (size_t)n;
}

/* A frame larger than one receive buffer, split at every byte boundary:
 * the server must see it whole exactly once per split, and answer it. */
static void test_frame_split_every_byte(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.recv_buf_bytes = 512; /* the frame spans two receive buffers */
    cfg.recv_buf_count = 64;
    rs_loop *loop = new_loop(state, &cfg);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    int fd = raw_connect(port, 0);
    uint8_t frame[4 + 700], back[sizeof(frame)];
    size_t flen = make_frame(frame, 700, 3);
    rs_loop_stats st;
    for (size_t k = 1; k < flen; k++) {
        rs_loop_get_stats(loop, &st);
        uint64_t in0 = st.bytes_in;
        raw_write_all(fd, frame, k);
        RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.bytes_in == in0 + k));
        assert_int_equal(g_fs.frames, k - 1); /* not complete yet */
        raw_write_all(fd, frame + k, flen - k);
        size_t got = 0;
        RUN_UNTIL(loop, (got += raw_read_some(fd, back + got, sizeof(back) - got)) == flen);
        assert_memory_equal(back, frame, flen);
        assert_int_equal(g_fs.frames, k);
    }
    close(fd);
    RUN_UNTIL(loop, g_fs.closed);
    assert_int_equal(g_fs.close_err, 0);
    rs_loop_destroy(loop);
}

/* Many frames in one write: all answered, in order. */
static void test_frame_pipelined(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    int fd = raw_connect(port, 0);
    enum { N = 200 };
    static uint8_t all[N * (4 + 600)], back[sizeof(all)];
    size_t total = 0;
    for (int i = 0; i < N; i++)
        total += make_frame(all + total, (uint32_t)(i * 3 % 600), (uint8_t)i);
    raw_write_all(fd, all, total);
    size_t got = 0;
    RUN_UNTIL(loop, (got += raw_read_some(fd, back + got, sizeof(back) - got)) == total);
    assert_memory_equal(back, all, total);
    assert_int_equal(g_fs.frames, N);
    close(fd);
    rs_loop_destroy(loop);
}

/* pause_read with frames already buffered: resume delivers them without
 * any new bytes from the peer. */
static void test_pause_resume_buffered(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    memset(&g_fs, 0, sizeof(g_fs));
    g_fs.pause_each = true;
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    int fd = raw_connect(port, 0);
    uint8_t all[10 * 20];
    size_t total = 0;
    for (int i = 0; i < 10; i++)
        total += make_frame(all + total, 16, (uint8_t)i);
    raw_write_all(fd, all, total);
    RUN_UNTIL(loop, g_fs.frames == 1);
    for (int i = 0; i < 5; i++)
        rs_loop_run_once(loop, 1);
    assert_int_equal(g_fs.frames, 1); /* paused: nothing more delivered */
    for (uint64_t f = 2; f <= 10; f++) {
        rs_conn *c = rs_loop_conn(loop, g_fs.id);
        assert_non_null(c);
        rs_conn_resume_read(c);
        RUN_UNTIL(loop, g_fs.frames == f);
    }
    uint8_t back[sizeof(all)];
    size_t got = 0;
    RUN_UNTIL(loop, (got += raw_read_some(fd, back + got, sizeof(back) - got)) == total);
    assert_memory_equal(back, all, total);
    close(fd);
    rs_loop_destroy(loop);
}

/* A peer that sends but does not read: the server stops reading it once its
 * write queue passes the limit, memory stays bounded, and everything is
 * answered once the peer reads again. */
static void test_slow_reader_bounded(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.conn_write_queue_max_bytes = 64 * 1024;
    rs_loop *loop = new_loop(state, &cfg);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    int fd = raw_connect(port, 4096);
    int small = 4096;
    RUN_UNTIL(loop, g_fs.id != 0);
    setsockopt(rs_conn_fd(rs_loop_conn(loop, g_fs.id)), SOL_SOCKET, SO_SNDBUF, &small,
               sizeof(small));
    uint8_t frame[4 + 4096];
    size_t flen = make_frame(frame, 4096, 9);
    uint64_t written = 0, got = 0;
    rs_loop_stats st;
    int stuck = 0;
    /* write until the peer is paused and our own socket is full */
    while (stuck < 50) {
        assert_true(written < (64u << 20));
        ssize_t w = send(fd, frame + written % flen, flen - written % flen, MSG_DONTWAIT);
        if (w > 0) written += (uint64_t)w;
        rs_loop_run_once(loop, 1);
        rs_loop_get_stats(loop, &st);
        rs_conn *c = rs_loop_conn(loop, g_fs.id);
        assert_non_null(c);
        assert_true(rs_conn_write_queued(c) <= 2 * cfg.conn_write_queue_max_bytes + flen);
        if (w <= 0 && st.read_paused > 0) stuck++;
    }
    assert_true(st.read_paused >= 1);
    assert_true(g_fs.max_queued <= 2 * cfg.conn_write_queue_max_bytes + flen);
    /* finish the last partial frame, then read everything back */
    while (written % flen) {
        ssize_t w = send(fd, frame + written % flen, flen - written % flen, MSG_DONTWAIT);
        if (w > 0) written += (uint64_t)w;
        uint8_t sink[65536];
        got += raw_read_some(fd, sink, sizeof(sink));
        rs_loop_run_once(loop, 1);
    }
    static uint8_t sink[1 << 16];
    int it = 0;
    while (got < written && it++ < 200000) {
        size_t n = raw_read_some(fd, sink, sizeof(sink));
        got += n;
        rs_loop_run_once(loop, n ? 0 : 1);
    }
    assert_int_equal(got, written);
    assert_true(g_fs.drains >= 1);
    assert_int_equal(g_fs.frames, written / flen);
    close(fd);
    rs_loop_destroy(loop);
}

/* Unconsumed bytes beyond conn_read_max_bytes close the connection. */
static ssize_t hoard_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    (void)c, (void)d, (void)n;
    return 0;
}
static const rs_conn_ops hoard_ops = {
    .on_open = fs_on_open, .on_data = hoard_on_data, .on_close = fs_on_close};

static void test_read_limit_closes(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.recv_buf_bytes = 1024;
    cfg.conn_read_max_bytes = 4096;
    rs_loop *loop = new_loop(state, &cfg);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &hoard_ops, NULL);
    int fd = raw_connect(port, 0);
    uint8_t junk[5000] = {0};
    raw_write_all(fd, junk, sizeof(junk));
    RUN_UNTIL(loop, g_fs.closed);
    assert_int_equal(g_fs.close_err, -EMSGSIZE);
    close(fd);
    rs_loop_destroy(loop);
}

/* on_open may refuse; the peer sees the connection end. */
static int refuse_on_open(rs_conn *c) {
    (void)c;
    return -1;
}
static const rs_conn_ops refuse_ops = {.on_open = refuse_on_open, .on_data = hoard_on_data};

static void test_on_open_refuses(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    uint16_t port = listen_on(loop, &refuse_ops, NULL);
    int fd = raw_connect(port, 0);
    char b;
    ssize_t r = 1;
    RUN_UNTIL(loop, (r = recv(fd, &b, 1, MSG_DONTWAIT)) == 0 || (r < 0 && errno != EAGAIN));
    rs_loop_stats st;
    rs_loop_get_stats(loop, &st);
    assert_int_equal(st.conns_accepted, 1);
    RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.conns_open == 0));
    close(fd);
    rs_loop_destroy(loop);
}

/* ---- accept hook and adopt: a socket accepted by one loop, served by another -- */

static int g_taken_fd = -1;
static bool take_accepted(rs_loop *loop, int lid, int fd, void *arg) {
    (void)loop;
    (void)lid;
    (void)arg;
    g_taken_fd = fd;
    return true;
}

static void test_accept_hook_and_adopt(void **state) {
    rs_loop *a = new_loop(state, NULL);
    rs_loop *b = new_loop(state, NULL);
    rs_err err;
    int lid_a = rs_loop_listen(a, "127.0.0.1", 0, false, &echo_ops, NULL, &err);
    int lid_b = rs_loop_listen(b, "127.0.0.1", 0, false, &echo_ops, NULL, &err);
    assert_true(lid_a >= 0 && lid_b >= 0);
    rs_loop_listen_set_accept_hook(a, lid_a, take_accepted, NULL);
    g_taken_fd = -1;
    int fd = raw_connect(rs_loop_listen_port(a, lid_a), 0);
    RUN_UNTIL(a, g_taken_fd >= 0);
    rs_loop_stats st;
    rs_loop_get_stats(a, &st);
    assert_int_equal(st.conns_open, 0); /* the hook took it: not a connection of a */
    assert_int_equal(rs_loop_accepted_open(a), 0);
    /* b serves it with its listener's ops (echo) */
    assert_int_equal(rs_loop_adopt(b, lid_b, g_taken_fd), 0);
    assert_int_equal(rs_loop_accepted_open(b), 1);
    raw_write_all(fd, "ping", 4);
    uint8_t buf[8];
    size_t got = 0;
    RUN_UNTIL(b, (got += raw_read_some(fd, buf + got, sizeof(buf) - got)) == 4);
    assert_memory_equal(buf, "ping", 4);
    close(fd);
    RUN_UNTIL(b, rs_loop_accepted_open(b) == 0);
    /* a listener that is gone: the fd is closed, nothing is served */
    int fd2 = raw_connect(rs_loop_listen_port(a, lid_a), 0);
    g_taken_fd = -1;
    RUN_UNTIL(a, g_taken_fd >= 0);
    rs_loop_listen_close(b, lid_b);
    assert_int_equal(rs_loop_adopt(b, lid_b, g_taken_fd), -1);
    assert_int_equal(fcntl(g_taken_fd, F_GETFD), -1);
    char c;
    ssize_t r = 1;
    RUN_UNTIL(b, (r = recv(fd2, &c, 1, MSG_DONTWAIT)) == 0 || (r < 0 && errno != EAGAIN));
    assert_int_equal(r, 0); /* the client sees the close */
    assert_int_equal(rs_loop_adopt(b, 99, -1), -1); /* no such listener */
    close(fd2);
    rs_loop_destroy(a);
    rs_loop_destroy(b);
}

/* ---- close semantics ------------------------------------------------------------ */

static uint8_t g_big[1 << 20];
static int big_on_open(rs_conn *c) {
    /* queue 1 MiB in 64 KiB sends, then close: every byte must still arrive */
    for (size_t off = 0; off < sizeof(g_big); off += 65536)
        assert_int_equal(rs_conn_send(c, g_big + off, 65536), 0);
    rs_conn_close(c);
    assert_int_equal(rs_conn_send(c, "x", 1), -EPIPE);
    return 0;
}
static const rs_conn_ops big_ops = {
    .on_open = big_on_open, .on_data = hoard_on_data, .on_close = fs_on_close};

static void test_close_flushes_queue(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.conn_write_queue_max_bytes = 1 << 20;
    cfg.send_buf_bytes = 4096;
    cfg.send_buf_count = 512; /* 2 MiB slab */
    rs_loop *loop = new_loop(state, &cfg);
    memset(&g_fs, 0, sizeof(g_fs));
    for (size_t i = 0; i < sizeof(g_big); i++)
        g_big[i] = (uint8_t)(i * 31 + 7);
    uint16_t port = listen_on(loop, &big_ops, NULL);
    int fd = raw_connect(port, 0);
    static uint8_t back[sizeof(g_big)];
    size_t got = 0;
    ssize_t r = 1;
    int it = 0;
    while (it++ < 200000) {
        r = recv(fd, back + got, sizeof(back) - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || errno != EAGAIN)
            break;
        rs_loop_run_once(loop, r > 0 ? 0 : 1);
    }
    assert_int_equal(r, 0); /* EOF after the last byte */
    assert_int_equal(got, sizeof(g_big));
    assert_memory_equal(back, g_big, sizeof(g_big));
    RUN_UNTIL(loop, g_fs.closed);
    assert_int_equal(g_fs.close_err, 0);
    close(fd);
    rs_loop_destroy(loop);
}

/* The peer sends its request and shuts its write side: it still gets the
 * answer, then EOF. */
static void test_half_close_answered(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    int fd = raw_connect(port, 0);
    uint8_t frame[4 + 100], back[sizeof(frame) + 1];
    size_t flen = make_frame(frame, 100, 5);
    raw_write_all(fd, frame, flen);
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    ssize_t r = 1;
    int it = 0;
    while (it++ < 20000) {
        r = recv(fd, back + got, sizeof(back) - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || errno != EAGAIN)
            break;
        rs_loop_run_once(loop, 1);
    }
    assert_int_equal(r, 0);
    assert_int_equal(got, flen);
    assert_memory_equal(back, frame, flen);
    RUN_UNTIL(loop, g_fs.closed);
    close(fd);
    rs_loop_destroy(loop);
}

/* A full connection table refuses new peers and keeps serving the others;
 * peer_name names the peer; closing a listener stops accepting. */
static void test_table_full_and_listener_close(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.max_conns = 2;
    rs_loop *loop = new_loop(state, &cfg);
    memset(&g_fs, 0, sizeof(g_fs));
    rs_err err;
    int lid = rs_loop_listen(loop, "127.0.0.1", 0, false, &frame_ops, NULL, &err);
    assert_true(lid >= 0);
    uint16_t port = rs_loop_listen_port(loop, lid);
    int a = raw_connect(port, 0), b = raw_connect(port, 0);
    rs_loop_stats st;
    RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.conns_accepted == 2));
    char name[64];
    rs_conn_peer_name(rs_loop_conn(loop, g_fs.id), name, sizeof(name));
    assert_true(strncmp(name, "127.0.0.1:", 10) == 0);
    int c3 = raw_connect(port, 0); /* accepted by the kernel, refused by the loop */
    char x;
    ssize_t r = 1;
    RUN_UNTIL(loop, (r = recv(c3, &x, 1, MSG_DONTWAIT)) == 0 || (r < 0 && errno != EAGAIN));
    rs_loop_get_stats(loop, &st);
    assert_int_equal(st.conns_accepted, 2);
    /* the first two are still served */
    uint8_t frame[4 + 8], back[sizeof(frame)];
    size_t flen = make_frame(frame, 8, 1);
    raw_write_all(a, frame, flen);
    size_t got = 0;
    RUN_UNTIL(loop, (got += raw_read_some(a, back + got, sizeof(back) - got)) == flen);
    rs_loop_listen_close(loop, lid);
    for (int i = 0; i < 5; i++)
        rs_loop_run_once(loop, 1);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(s);
    close(a);
    close(b);
    close(c3);
    rs_loop_destroy(loop);
}

/* Churn: peers connect, send, and are torn down abruptly while answers are
 * in flight, and every close opens a new connection (slots are reused while
 * the old occupant may still sit in this iteration's work lists). */
typedef struct churn {
    rs_loop *loop;
    uint16_t port;
    int left;
    int live;
} churn;
static churn g_ch;
static void ch_on_connect(rs_conn *c, int err) {
    if (err == 0) assert_int_equal(rs_conn_send(c, "ping-ping-ping", 14), 0);
}
static ssize_t ch_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    (void)d;
    rs_conn_abort(c, -ECONNRESET); /* tear down mid-stream */
    return (ssize_t)n;
}
static void ch_on_close(rs_conn *c, int err);
static const rs_conn_ops churn_ops = {
    .on_connect = ch_on_connect, .on_data = ch_on_data, .on_close = ch_on_close};
static void ch_on_close(rs_conn *c, int err) {
    (void)c, (void)err;
    g_ch.live--;
    if (g_ch.left > 0) {
        g_ch.left--;
        rs_err e;
        assert_non_null(rs_loop_connect(g_ch.loop, "127.0.0.1", g_ch.port, &churn_ops, NULL, &e));
        g_ch.live++;
    }
}
static ssize_t chatty_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    static uint8_t junk[20000];
    (void)d;
    rs_conn_send(c, junk, sizeof(junk)); /* answers larger than a chunk */
    return (ssize_t)n;
}
static const rs_conn_ops chatty_ops = {.on_data = chatty_on_data};

static void test_churn_slot_reuse(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.max_conns = 128;
    rs_loop *loop = new_loop(state, &cfg);
    memset(&g_ch, 0, sizeof(g_ch));
    g_ch.loop = loop;
    g_ch.port = listen_on(loop, &chatty_ops, NULL);
    g_ch.left = 1500;
    rs_err err;
    for (int i = 0; i < 40; i++) {
        assert_non_null(rs_loop_connect(loop, "127.0.0.1", g_ch.port, &churn_ops, NULL, &err));
        g_ch.live++;
    }
    RUN_UNTIL(loop, g_ch.left == 0 && g_ch.live == 0);
    rs_loop_stats st;
    RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.conns_open == 0));
    assert_int_equal(st.conns_accepted, 1540);
    rs_loop_destroy(loop);
}

/* One peer closes and another connects before the loop runs, so one batch of
 * completions holds the EOF (the slot is freed at once) and the accept that
 * reuses that slot while it is still linked in the pending list. */
static void test_slot_reuse_same_batch(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    rs_loop_stats st;
    for (int round = 0; round < 20; round++) {
        int a = raw_connect(port, 0);
        RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.conns_open == 1));
        close(a);
        int b = raw_connect(port, 0);
        RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st),
                         st.conns_accepted == 2u * round + 2 && st.conns_open == 1));
        uint8_t frame[4 + 3], back[sizeof(frame)];
        size_t flen = make_frame(frame, 3, (uint8_t)round), got = 0;
        raw_write_all(b, frame, flen);
        RUN_UNTIL(loop, (got += raw_read_some(b, back + got, sizeof(back) - got)) == flen);
        close(b);
        RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.conns_open == 0));
    }
    rs_loop_destroy(loop);
}

/* ---- idle timeout ---------------------------------------------------------- */

static void test_idle_timeout(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.idle_timeout_ms = 30;
    rs_loop *loop = new_loop(state, &cfg);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    int fd = raw_connect(port, 0);
    RUN_UNTIL(loop, g_fs.closed);
    assert_int_equal(g_fs.close_err, -ETIMEDOUT);
    char b;
    ssize_t r;
    RUN_UNTIL(loop, (r = recv(fd, &b, 1, MSG_DONTWAIT)) == 0 || (r < 0 && errno != EAGAIN));
    close(fd);
    rs_loop_destroy(loop);
}

/* ---- timers ---------------------------------------------------------------- */

static int g_fired[8], g_nfired;
static void timer_fn(rs_loop *loop, rs_timer *t, void *arg) {
    (void)loop, (void)t;
    g_fired[g_nfired++] = (int)(intptr_t)arg;
}

static void test_timers(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.max_timers = 3;
    rs_loop *loop = new_loop(state, &cfg);
    g_nfired = 0;
    rs_timer t[4];
    for (int i = 0; i < 4; i++)
        rs_timer_init(&t[i], timer_fn, (void *)(intptr_t)i);
    assert_int_equal(rs_loop_timer_arm(loop, &t[0], 30000), 0);
    assert_int_equal(rs_loop_timer_arm(loop, &t[1], 10000), 0);
    assert_int_equal(rs_loop_timer_arm(loop, &t[2], 20000), 0);
    assert_int_equal(rs_loop_timer_arm(loop, &t[3], 1000), -ENOSPC); /* max_timers */
    assert_false(rs_timer_armed(&t[3]));
    assert_int_equal(rs_loop_timer_arm(loop, &t[2], 5000), 0); /* re-arm moves it first */
    rs_loop_timer_cancel(loop, &t[0]);
    assert_false(rs_timer_armed(&t[0]));
    assert_int_equal(rs_loop_timer_arm(loop, &t[3], 40000), 0); /* a slot came free */
    RUN_UNTIL(loop, g_nfired == 3);
    assert_int_equal(g_fired[0], 2);
    assert_int_equal(g_fired[1], 1);
    assert_int_equal(g_fired[2], 3);
    for (int i = 0; i < 3; i++)
        rs_loop_run_once(loop, 1);
    assert_int_equal(g_nfired, 3);
    rs_loop_destroy(loop);
}

/* ---- cross-thread posts ------------------------------------------------------ */

static atomic_int g_posted;
static void post_fn(rs_loop *loop, void *arg) {
    (void)loop;
    assert_ptr_equal(arg, &g_posted);
    atomic_fetch_add(&g_posted, 1);
}

typedef struct poster {
    rs_loop *target;
    rs_io_backend own_backend; /* AUTO: a plain thread; else it has its own loop */
    int n;
} poster;

static void *poster_main(void *arg) {
    poster *p = arg;
    rs_loop *own = NULL;
    if (p->own_backend != RS_IO_AUTO) {
        rs_loop_config cfg;
        rs_loop_config_default(&cfg);
        cfg.backend = p->own_backend;
        cfg.recv_buf_count = 8;
        cfg.send_buf_count = 8;
        cfg.read_asm_count = 1;
        rs_err err;
        own = rs_loop_create(&cfg, &err);
        assert_non_null(own);
    }
    for (int i = 0; i < p->n; i++) {
        while (rs_loop_post(p->target, post_fn, &g_posted) == -EAGAIN)
            if (own)
                rs_loop_run_once(own, 0);
            else
                sched_yield();
        if (own && i % 64 == 0) rs_loop_run_once(own, 0);
    }
    if (own) rs_loop_destroy(own); /* reaps its MSG_RING completions */
    return NULL;
}

static void test_post_threads(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.post_queue_capacity = 64; /* small: posters meet -EAGAIN and retry */
    rs_loop *loop = new_loop(state, &cfg);
    rs_io_backend be = *(rs_io_backend *)*state;
    atomic_store(&g_posted, 0);
    rs_loop_stats st;
    /* phase 1: two threads that run their own loop (MSG_RING when uring) */
    poster ps[4] = {
        {loop, be, 2000}, {loop, be, 2000}, {loop, RS_IO_AUTO, 2000}, {loop, RS_IO_AUTO, 2000}};
    pthread_t th[4];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, poster_main, &ps[i]);
    RUN_UNTIL(loop, atomic_load(&g_posted) == 4000);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    rs_loop_get_stats(loop, &st);
    if (be == RS_IO_URING) {
        assert_true(st.wake_msg_ring > 0);
        assert_int_equal(st.wake_eventfd, 0);
    } else {
        assert_int_equal(st.wake_msg_ring, 0);
        assert_true(st.wake_eventfd > 0);
    }
    /* phase 2: two plain threads (eventfd) */
    uint64_t msg_ring = st.wake_msg_ring, evfd = st.wake_eventfd;
    for (int i = 2; i < 4; i++)
        pthread_create(&th[i], NULL, poster_main, &ps[i]);
    RUN_UNTIL(loop, atomic_load(&g_posted) == 8000);
    for (int i = 2; i < 4; i++)
        pthread_join(th[i], NULL);
    rs_loop_get_stats(loop, &st);
    assert_true(st.wake_eventfd > evfd);
    assert_true(st.wake_msg_ring >= msg_ring); /* late phase-1 rings may still land */
    rs_loop_destroy(loop);
}

static void test_post_queue_full(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.post_queue_capacity = 4;
    rs_loop *loop = new_loop(state, &cfg);
    atomic_store(&g_posted, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rs_loop_post(loop, post_fn, &g_posted), 0);
    assert_int_equal(rs_loop_post(loop, post_fn, &g_posted), -EAGAIN);
    RUN_UNTIL(loop, atomic_load(&g_posted) == 4);
    assert_int_equal(rs_loop_post(loop, post_fn, &g_posted), 0);
    RUN_UNTIL(loop, atomic_load(&g_posted) == 5);
    rs_loop_destroy(loop);
}

static void *stopper_main(void *arg) {
    rs_loop_stop(arg);
    return NULL;
}

static void test_run_stop_from_thread(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    pthread_t th;
    pthread_create(&th, NULL, stopper_main, loop);
    assert_int_equal(rs_loop_run(loop), 0); /* returns only once stopped */
    pthread_join(th, NULL);
    rs_loop_destroy(loop);
}

/* ---- watch_fd ---------------------------------------------------------------- */

static int g_watch_hits;
static void watch_fn(rs_loop *loop, int fd, uint32_t revents, void *arg) {
    (void)loop, (void)arg;
    assert_true(revents & POLLIN);
    char b[16];
    assert_true(read(fd, b, sizeof(b)) > 0);
    g_watch_hits++;
}

static void test_watch_fd(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    g_watch_hits = 0;
    assert_int_equal(rs_loop_watch_fd(loop, p[0], POLLIN, watch_fn, NULL), 0);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(write(p[1], "x", 1), 1);
        RUN_UNTIL(loop, g_watch_hits == i);
    }
    rs_loop_unwatch_fd(loop, p[0]);
    assert_int_equal(write(p[1], "y", 1), 1);
    for (int i = 0; i < 5; i++)
        rs_loop_run_once(loop, 1);
    assert_int_equal(g_watch_hits, 3);
    rs_loop_destroy(loop);
    close(p[0]);
    close(p[1]);
}

/* ---- outbound connect ------------------------------------------------------ */

static void test_connect_refused(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    /* a port nobody listens on: bind, read the port, close */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    getsockname(s, (struct sockaddr *)&sa, &sl);
    close(s);
    client cl;
    memset(&cl, 0, sizeof(cl));
    g_done = 0;
    rs_err err;
    rs_conn *c = rs_loop_connect(loop, "127.0.0.1", ntohs(sa.sin_port), &client_ops, &cl, &err);
    assert_non_null(c);
    RUN_UNTIL(loop, cl.closed);
    assert_int_equal(cl.connect_err, -ECONNREFUSED);
    assert_int_equal(cl.close_err, -ECONNREFUSED);
    /* a name that is not an address is refused up front with a message */
    assert_null(rs_loop_connect(loop, "not an address!", 1, &client_ops, &cl, &err));
    assert_non_null(strstr(err.msg, "not an address!"));
    /* so is a host name: a loop thread never waits on DNS */
    assert_null(rs_loop_connect(loop, "localhost", 1, &client_ops, &cl, &err));
    assert_string_equal(err.msg, "io: connect localhost:1: not a numeric address (io threads resolve "
                                 "no names; resolve it at start-up with rs_resolve_host)");
    char addr[64];
    assert_int_equal(rs_resolve_host("localhost", addr, sizeof(addr), &err), 0);
    assert_string_equal(addr, "127.0.0.1"); /* IPv4 first, even where ::1 is listed first */
    assert_int_equal(rs_resolve_host("::1", addr, sizeof(addr), &err), 0);
    assert_string_equal(addr, "::1");
    assert_true(rs_host_is_numeric(addr) && rs_host_is_numeric("::1") && !rs_host_is_numeric("localhost"));
    assert_int_equal(rs_resolve_host("", addr, sizeof(addr), &err), -1); /* no DNS query */
    assert_non_null(strstr(err.msg, "address '': "));
    rs_loop_destroy(loop);
}

/* A connect that never completes (the listener's accept queue is full, so the
 * kernel drops the SYN) fails with -ETIMEDOUT after connect_timeout_ms. */
static void test_connect_timeout(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.connect_timeout_ms = 50;
    rs_loop *loop = new_loop(state, &cfg);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(ls, 0), 0);
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    int fill[2];
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    client cl;
    memset(&cl, 0, sizeof(cl));
    rs_err err;
    assert_non_null(rs_loop_connect(loop, "127.0.0.1", ntohs(sa.sin_port), &client_ops, &cl, &err));
    RUN_UNTIL(loop, cl.closed);
    assert_int_equal(cl.connect_err, -ETIMEDOUT);
    assert_int_equal(cl.close_err, -ETIMEDOUT);
    for (int i = 0; i < 2; i++)
        close(fill[i]);
    close(ls);
    rs_loop_destroy(loop);
}

/* rs_conn_abort drops the queue and reports the caller's reason. */
static void test_abort_reports_err(void **state) {
    rs_loop *loop = new_loop(state, NULL);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    int fd = raw_connect(port, 0);
    RUN_UNTIL(loop, g_fs.id != 0);
    rs_conn *c = rs_loop_conn(loop, g_fs.id);
    assert_int_equal(rs_conn_send(c, "abc", 3), 0);
    rs_conn_abort(c, -ETIMEDOUT);
    RUN_UNTIL(loop, g_fs.closed);
    assert_int_equal(g_fs.close_err, -ETIMEDOUT);
    close(fd);
    rs_loop_destroy(loop);
}

/* Sends beyond twice the queue limit are refused while a connect is pending;
 * the conn id stops resolving after close. */
static void test_send_limit_and_ids(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.conn_write_queue_max_bytes = 4096;
    rs_loop *loop = new_loop(state, &cfg);
    uint16_t port = listen_on(loop, &echo_ops, NULL);
    client cl;
    memset(&cl, 0, sizeof(cl));
    rs_err err;
    rs_conn *c = rs_loop_connect(loop, "127.0.0.1", port, &client_ops, &cl, &err);
    assert_non_null(c);
    rs_conn_id id = rs_conn_get_id(c);
    assert_ptr_equal(rs_loop_conn(loop, id), c);
    uint8_t blk[3000] = {0};
    int rc = 0, sent = 0;
    while ((rc = rs_conn_send(c, blk, sizeof(blk))) == 0)
        sent++;
    assert_int_equal(rc, -ENOBUFS);
    assert_int_equal(sent, 3); /* 9000 > 8192 after the third */
    assert_true(rs_conn_write_queued(c) == 9000);
    rs_conn_close(c);
    assert_int_equal(rs_conn_send(c, blk, 1), -EPIPE);
    RUN_UNTIL(loop, cl.closed);
    assert_null(rs_loop_conn(loop, id));
    assert_null(rs_loop_conn(loop, 0));
    rs_loop_destroy(loop);
}

/* The loop-wide send slab runs out: the sender is paused, not grown, and
 * resumes when chunks come back; every byte is still echoed. */
static void test_send_pool_exhaustion(void **state) {
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.send_buf_bytes = 512;
    cfg.send_buf_count = 8; /* 4 KiB for the whole loop */
    cfg.conn_write_queue_max_bytes = 1 << 20;
    rs_loop *loop = new_loop(state, &cfg);
    memset(&g_fs, 0, sizeof(g_fs));
    uint16_t port = listen_on(loop, &frame_ops, NULL);
    int fd = raw_connect(port, 0);
    static uint8_t all[64 * (4 + 1000)], back[sizeof(all)];
    size_t total = 0;
    for (int i = 0; i < 64; i++)
        total += make_frame(all + total, 1000, (uint8_t)i);
    raw_write_all(fd, all, total);
    size_t got = 0;
    RUN_UNTIL(loop, (got += raw_read_some(fd, back + got, sizeof(back) - got)) == total);
    assert_memory_equal(back, all, total);
    assert_int_equal(g_fs.frames, 64);
    close(fd);
    rs_loop_destroy(loop);
}

/* ---- shutdown with operations in flight --------------------------------------- */

static int g_closed_cancel;
static uint16_t g_shutdown_port;
static const rs_conn_ops quiet_client_ops_ref = {.on_data = hoard_on_data};
static void cnt_on_close(rs_conn *c, int err) {
    if (err == -ECANCELED) {
        g_closed_cancel++;
        /* reconnecting from on_close during shutdown is refused */
        rs_err e;
        assert_null(rs_loop_connect(rs_conn_loop(c), "127.0.0.1", g_shutdown_port,
                                    &quiet_client_ops_ref, NULL, &e));
        assert_non_null(strstr(e.msg, "shutting down"));
    }
}
static ssize_t blast_on_data(rs_conn *c, const uint8_t *d, size_t n) {
    /* answer every byte with 64 bytes: the peer (not reading) fills our queue */
    static uint8_t big[64 * 512];
    (void)d;
    rs_conn_send(c, big, n * 64 < sizeof(big) ? n * 64 : sizeof(big));
    return (ssize_t)n;
}
static const rs_conn_ops blast_ops = {.on_data = blast_on_data, .on_close = cnt_on_close};
static const rs_conn_ops quiet_client_ops = {.on_data = hoard_on_data, .on_close = cnt_on_close};

static void noop_timer(rs_loop *loop, rs_timer *t, void *arg) {
    (void)loop, (void)t, (void)arg;
    fail_msg("timer fired after destroy started");
}
static void noop_watch(rs_loop *loop, int fd, uint32_t ev, void *arg) {
    (void)loop, (void)fd, (void)ev, (void)arg;
}

static void test_shutdown_in_flight(void **state) {
    int fds_before = count_fds();
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.send_zc_threshold_bytes = 512; /* zero-copy sends in flight too (uring) */
    rs_loop *loop = new_loop(state, &cfg);
    g_closed_cancel = 0;
    uint16_t port = listen_on(loop, &blast_ops, NULL);
    g_shutdown_port = port;
    rs_err err;
    for (int i = 0; i < 20; i++)
        assert_non_null(rs_loop_connect(loop, "127.0.0.1", port, &quiet_client_ops, NULL, &err));
    int raw[4];
    for (int i = 0; i < 4; i++) {
        raw[i] = raw_connect(port, 4096);
        raw_write_all(raw[i], "0123456789", 10);
    }
    rs_timer t;
    rs_timer_init(&t, noop_timer, NULL);
    assert_int_equal(rs_loop_timer_arm(loop, &t, 60u * 1000000u), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(rs_loop_watch_fd(loop, p[0], POLLIN, noop_watch, NULL), 0);
    rs_loop_stats st;
    RUN_UNTIL(loop, (rs_loop_get_stats(loop, &st), st.conns_accepted == 24 && st.bytes_out > 0));
    for (int i = 0; i < 3; i++)
        rs_loop_run_once(loop, 0);
    /* 20 outbound + 24 accepted connections, queued sends, a timer, a watch */
    rs_loop_destroy(loop);
    assert_int_equal(g_closed_cancel, 44);
    for (int i = 0; i < 4; i++)
        close(raw[i]);
    close(p[0]);
    close(p[1]);
    assert_int_equal(count_fds(), fds_before);
}

/* ---- io_uring unavailable (a Docker-like seccomp profile) ------------------------ */

/* Runs in a fresh process (the probe is once per process): io_uring_setup
 * answers EPERM, as under Docker's default seccomp profile. */
static int probe_child(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = 4, .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("seccomp");
        return 3;
    }
    rs_io_backend out;
    rs_err err;
    if (rs_io_backend_resolve(RS_IO_URING, &out, &err) == 0) return 4; /* must refuse */
    fprintf(stderr, "uring refused: %s\n", err.msg);
    for (int i = 0; i < 3; i++) /* one warning, however many loops */
        if (rs_io_backend_resolve(RS_IO_AUTO, &out, &err) != 0 || out != RS_IO_EPOLL) return 5;
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    rs_loop *loop = rs_loop_create(&cfg, &err); /* AUTO */
    if (!loop || rs_loop_backend(loop) != RS_IO_EPOLL) return 6;
    rs_loop_destroy(loop);
    return 0;
}

static void test_fallback_without_io_uring(void **state) {
    (void)state;
    char cmd[600], out[4096] = {0};
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = 0;
    snprintf(cmd, sizeof(cmd), "'%s' --probe-without-io-uring 2>&1", self);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(out, 1, sizeof(out) - 1, p);
    out[got] = 0;
    int rc = pclose(p);
    if (rc != 0) fail_msg("child exited %d: %s", rc, out);
    assert_non_null(strstr(out, "uring refused: io: io_uring backend requested but unavailable: "
                                "io_uring_setup: Operation not permitted"));
    const char *warn = "io_uring unavailable (io_uring_setup: Operation not permitted): using "
                       "the epoll backend";
    const char *first = strstr(out, warn);
    assert_non_null(first);
    assert_null(strstr(first + 1, warn)); /* said once */
}

/* numa_node places the loop's slabs on that node (bound memory policy). */
static void test_numa_placement(void **state) {
    if (numa_available() < 0) fail_msg("libnuma reports NUMA unavailable");
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.numa_node = 0;
    rs_loop *loop = new_loop(state, &cfg);
    void *slabs[] = {loop->send_mem, loop->recv_mem, loop->asm_mem};
    for (int i = 0; i < 3; i++) {
        int mode = -1;
        unsigned long mask = 0;
        assert_int_equal(get_mempolicy(&mode, &mask, sizeof(mask) * 8, slabs[i], MPOL_F_ADDR), 0);
        assert_int_equal(mode, MPOL_BIND);
        assert_int_equal(mask, 1ul); /* node 0 only */
    }
    rs_loop_destroy(loop);
}

/* ---- backend choice ------------------------------------------------------------ */

static void test_backend_decide(void **state) {
    (void)state;
    rs_io_backend out;
    rs_err err;
    assert_int_equal(rs_io_backend_decide(RS_IO_AUTO, 0, "", &out, &err), 0);
    assert_int_equal(out, RS_IO_URING);
    assert_int_equal(rs_io_backend_decide(RS_IO_AUTO, -EPERM, "seccomp", &out, &err), 0);
    assert_int_equal(out, RS_IO_EPOLL);
    assert_int_equal(rs_io_backend_decide(RS_IO_AUTO, -ENOSYS, "old", &out, &err), 0);
    assert_int_equal(out, RS_IO_EPOLL);
    assert_int_equal(rs_io_backend_decide(RS_IO_AUTO, -EOPNOTSUPP, "no MSG_RING", &out, &err), 0);
    assert_int_equal(out, RS_IO_EPOLL);
    /* ENOMEM is not "unavailable": refuse instead of silently degrading */
    assert_int_equal(rs_io_backend_decide(RS_IO_AUTO, -ENOMEM, "memlock", &out, &err), -1);
    assert_non_null(strstr(err.msg, "memlock"));
    assert_int_equal(rs_io_backend_decide(RS_IO_URING, -EPERM, "seccomp", &out, &err), -1);
    assert_non_null(strstr(err.msg, "unavailable: seccomp"));
    assert_int_equal(rs_io_backend_decide(RS_IO_EPOLL, -EPERM, "x", &out, &err), 0);
    assert_int_equal(out, RS_IO_EPOLL);
    rs_io_backend b;
    assert_int_equal(rs_io_backend_parse("io_uring", &b), 0);
    assert_int_equal(b, RS_IO_URING);
    assert_int_equal(rs_io_backend_parse("kqueue", &b), -1);
    assert_string_equal(rs_io_backend_name(RS_IO_EPOLL), "epoll");
}

/* A loop created with AUTO follows the process-wide --io-backend. */
static void test_auto_follows_opts(void **state) {
    (void)state;
    rs_loop_config cfg;
    rs_loop_config_default(&cfg);
    cfg.backend = RS_IO_AUTO;
    rs_err err;
    for (int b = RS_IO_URING; b <= RS_IO_EPOLL; b++) {
        rs_opts.io_backend = b;
        rs_loop *loop = rs_loop_create(&cfg, &err);
        assert_non_null(loop);
        assert_int_equal(rs_loop_backend(loop), b);
        rs_loop_destroy(loop);
    }
    rs_opts.io_backend = RS_IO_AUTO;
}

static void test_config_check(void **state) {
    (void)state;
    rs_loop_config cfg;
    rs_err err;
    rs_loop_config_default(&cfg);
    assert_int_equal(rs_loop_config_check(&cfg, &err), 0);
    cfg.recv_buf_count = 300;
    assert_int_equal(rs_loop_config_check(&cfg, &err), -1);
    assert_non_null(strstr(err.msg, "recv_buf_count"));
    assert_null(rs_loop_create(&cfg, &err));
    rs_loop_config_default(&cfg);
    cfg.conn_read_max_bytes = 100;
    assert_int_equal(rs_loop_config_check(&cfg, &err), -1);
    assert_non_null(strstr(err.msg, "conn_read_max_bytes"));
}

static void test_config_parse(void **state) {
    (void)state;
    rs_err err;
    rs_loop_config cfg;
    const char *good = "io:\n  backend: epoll\n  max_conns: 64\n  recv_buf_count: 128\n"
                       "  read_asm_bytes: 4096\n  numa_node: 0\n";
    rs_cfg *doc = rs_cfg_load_string(good, "good.yaml", &err);
    assert_non_null(doc);
    rs_cfg_node root = rs_cfg_root(doc), io = rs_cfg_get(&root, "io");
    assert_int_equal(rs_loop_config_parse(&io, &cfg, &err), 0);
    assert_int_equal(cfg.backend, RS_IO_EPOLL);
    assert_int_equal(cfg.max_conns, 64);
    assert_int_equal(cfg.recv_buf_count, 128);
    assert_int_equal(cfg.read_asm_bytes, 4096);
    assert_int_equal(cfg.numa_node, 0);
    rs_cfg_free(doc);
    const char *bad[][2] = {
        {"io:\n  recv_buf_count: 100\n", "io.recv_buf_count"},
        {"io:\n  backend: kqueue\n", "io.backend"},
        {"io:\n  max_conn: 5\n", "max_conn"},
        {"io:\n  send_buf_bytes: 12\n", "io.send_buf_bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        doc = rs_cfg_load_string(bad[i][0], "bad.yaml", &err);
        assert_non_null(doc);
        root = rs_cfg_root(doc);
        io = rs_cfg_get(&root, "io");
        assert_int_equal(rs_loop_config_parse(&io, &cfg, &err), -1);
        if (!strstr(err.msg, bad[i][1])) fail_msg("'%s' does not name %s", err.msg, bad[i][1]);
        rs_cfg_free(doc);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--probe-without-io-uring") == 0) return probe_child();
#define BOTH(fn)                                                                                   \
    {#fn "/uring", fn, NULL, NULL, &g_uring}, {                                                    \
#fn "/epoll", fn, NULL, NULL, &g_epoll                                                     \
    }
    const struct CMUnitTest tests[] = {
        BOTH(test_echo_many),
        BOTH(test_echo_send_zc),
        BOTH(test_echo_unregistered),
        BOTH(test_frame_split_every_byte),
        BOTH(test_frame_pipelined),
        BOTH(test_pause_resume_buffered),
        BOTH(test_slow_reader_bounded),
        BOTH(test_read_limit_closes),
        BOTH(test_on_open_refuses),
        BOTH(test_accept_hook_and_adopt),
        BOTH(test_close_flushes_queue),
        BOTH(test_half_close_answered),
        BOTH(test_table_full_and_listener_close),
        BOTH(test_churn_slot_reuse),
        BOTH(test_slot_reuse_same_batch),
        BOTH(test_idle_timeout),
        BOTH(test_timers),
        BOTH(test_post_threads),
        BOTH(test_post_queue_full),
        BOTH(test_run_stop_from_thread),
        BOTH(test_watch_fd),
        BOTH(test_connect_refused),
        BOTH(test_connect_timeout),
        BOTH(test_abort_reports_err),
        BOTH(test_send_limit_and_ids),
        BOTH(test_send_pool_exhaustion),
        BOTH(test_shutdown_in_flight),
        BOTH(test_numa_placement),
        cmocka_unit_test(test_backend_decide),
        cmocka_unit_test(test_fallback_without_io_uring),
        cmocka_unit_test(test_auto_follows_opts),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_config_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

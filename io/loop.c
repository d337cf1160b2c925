/* loop.c — the backend-neutral core of the event loop.
 *
 * Why one core and two thin backends: connection ids, timers, posts, read
 * assembly, write queues and backpressure must behave identically on io_uring
 * and epoll (tests run every case on both), so they live here once; the
 * backends only move bytes and report completions through rs__conn_* hooks.
 *
 * Iteration order (rs__iterate): pending work -> flush sends -> backend wait
 * (submit + wait + dispatch completions) -> posts -> timers -> pending work
 * (deferred closes, re-delivery after resume) -> tick -> flush sends. */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <numa.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "io/loop_internal.h"

void rs_loop_config_default(rs_loop_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->backend = RS_IO_AUTO;
    cfg->max_conns = 1024;
    cfg->max_listeners = 8;
    cfg->recv_buf_bytes = 16384;
    cfg->recv_buf_count = 256;
    cfg->send_buf_bytes = 4096; /* small answers must not each pin a big chunk */
    cfg->send_buf_count = 1024;
    cfg->conn_read_max_bytes = (64ull << 20) + 65536; /* a 64 MiB frame plus its header */
    cfg->conn_write_queue_max_bytes = 256 * 1024;
    cfg->idle_timeout_ms = 0;
    cfg->send_zc_threshold_bytes = 0; /* measured: never pays on loopback (docs/perf.md) */
    cfg->max_timers = 4096;
    cfg->post_queue_capacity = 4096;
    cfg->numa_node = -1;
    cfg->read_asm_bytes = 65536;
    cfg->read_asm_count = 64;
    cfg->connect_timeout_ms = 10000;
}

int rs_loop_config_check(const rs_loop_config *cfg, rs_err *err) {
#define RS_CHECK(cond, field, why)                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            rs_err_set(err, "io: %s: %s", field, why);                                             \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    RS_CHECK(cfg->backend <= RS_IO_EPOLL, "backend", "expected auto, uring or epoll");
    RS_CHECK(cfg->max_conns >= 1 && cfg->max_conns <= (1u << 24), "max_conns",
             "must be in [1, 16777216]");
    RS_CHECK(cfg->max_listeners >= 1 && cfg->max_listeners <= 1024, "max_listeners",
             "must be in [1, 1024]");
    RS_CHECK(cfg->recv_buf_bytes >= 512 && cfg->recv_buf_bytes <= (1u << 24), "recv_buf_bytes",
             "must be in [512, 16 MiB]");
    RS_CHECK(cfg->recv_buf_count >= 1 && cfg->recv_buf_count <= 32768 &&
                 (cfg->recv_buf_count & (cfg->recv_buf_count - 1)) == 0,
             "recv_buf_count", "must be a power of two in [1, 32768]");
    RS_CHECK(cfg->send_buf_bytes >= 512 && cfg->send_buf_bytes <= (1u << 24), "send_buf_bytes",
             "must be in [512, 16 MiB]");
    RS_CHECK(cfg->send_buf_count >= 1 && cfg->send_buf_count <= (1u << 24), "send_buf_count",
             "must be in [1, 16777216]");
    RS_CHECK((uint64_t)cfg->send_buf_bytes * cfg->send_buf_count <= (1ull << 30), "send_buf_count",
             "send_buf_bytes * send_buf_count must be at most 1 GiB");
    RS_CHECK(cfg->conn_read_max_bytes >= cfg->recv_buf_bytes, "conn_read_max_bytes",
             "must be at least recv_buf_bytes");
    RS_CHECK(cfg->conn_read_max_bytes <= (1ull << 32), "conn_read_max_bytes",
             "must be at most 4 GiB");
    RS_CHECK(cfg->conn_write_queue_max_bytes >= 1, "conn_write_queue_max_bytes", "must be > 0");
    RS_CHECK(cfg->max_timers >= 1, "max_timers", "must be > 0");
    RS_CHECK(cfg->post_queue_capacity >= 1, "post_queue_capacity", "must be > 0");
    RS_CHECK(cfg->read_asm_bytes >= 512, "read_asm_bytes", "must be at least 512");
    RS_CHECK(cfg->numa_node >= -1, "numa_node", "must be -1 or a node number");
#undef RS_CHECK
    return 0;
}

/* ---- memory ------------------------------------------------------------ */

/* Page-aligned slabs (provided and registered buffers need pages), placed
 * on cfg.numa_node when one is given. */
static void *rs__slab_alloc(size_t bytes, int node) {
    if (bytes == 0) return NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (node >= 0 && numa_available() >= 0) numa_tonode_memory(p, bytes, node);
    return p;
}

static void rs__slab_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes);
}

/* ---- timers (binary min-heap of caller-owned rs_timer) ------------------ */

static void rs__idle_fire(rs_loop *loop, rs_timer *t, void *arg);

static void rs__heap_swap(rs_loop *loop, uint32_t a, uint32_t b) {
    rs_timer *t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_index = a;
    loop->heap[b]->heap_index = b;
}

static void rs__heap_up(rs_loop *loop, uint32_t i) {
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (loop->heap[p]->deadline_ns <= loop->heap[i]->deadline_ns) break;
        rs__heap_swap(loop, i, p);
        i = p;
    }
}

static void rs__heap_down(rs_loop *loop, uint32_t i) {
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_n && loop->heap[l]->deadline_ns < loop->heap[m]->deadline_ns) m = l;
        if (r < loop->heap_n && loop->heap[r]->deadline_ns < loop->heap[m]->deadline_ns) m = r;
        if (m == i) return;
        rs__heap_swap(loop, i, m);
        i = m;
    }
}

static void rs__heap_remove(rs_loop *loop, rs_timer *t) {
    uint32_t i = t->heap_index;
    RS_ASSERT(i < loop->heap_n && loop->heap[i] == t);
    loop->heap_n--;
    if (i != loop->heap_n) {
        loop->heap[i] = loop->heap[loop->heap_n];
        loop->heap[i]->heap_index = i;
        rs__heap_down(loop, i);
        rs__heap_up(loop, i);
    }
    t->heap_index = UINT32_MAX;
    if (t->fn != rs__idle_fire) loop->user_timers--;
}

void rs_timer_init(rs_timer *t, rs_timer_fn fn, void *arg) {
    t->deadline_ns = 0;
    t->fn = fn;
    t->arg = arg;
    t->heap_index = UINT32_MAX;
}

static int rs__timer_arm(rs_loop *loop, rs_timer *t, uint64_t delay_ns) {
    t->deadline_ns = loop->now_ns + delay_ns;
    if (rs_timer_armed(t)) {
        rs__heap_down(loop, t->heap_index);
        rs__heap_up(loop, t->heap_index);
        return 0;
    }
    RS_ASSERT(loop->heap_n < loop->heap_cap);
    if (t->fn != rs__idle_fire) loop->user_timers++;
    t->heap_index = loop->heap_n;
    loop->heap[loop->heap_n++] = t;
    rs__heap_up(loop, t->heap_index);
    return 0;
}

/* Idle timers live in the same heap but have their own reserved capacity
 * (one per connection slot), so user timers are limited to max_timers. */
int rs_loop_timer_arm(rs_loop *loop, rs_timer *t, uint64_t delay_us) {
    if (!rs_timer_armed(t) && loop->user_timers >= loop->cfg.max_timers) return -ENOSPC;
    return rs__timer_arm(loop, t, delay_us * 1000ull);
}

void rs_loop_timer_cancel(rs_loop *loop, rs_timer *t) {
    if (rs_timer_armed(t)) rs__heap_remove(loop, t);
}

static void rs__run_timers(rs_loop *loop) {
    /* Bounded: timers re-armed with delay 0 run on the next iteration. */
    uint32_t budget = loop->heap_n;
    while (budget-- > 0 && loop->heap_n > 0 && loop->heap[0]->deadline_ns <= loop->now_ns) {
        rs_timer *t = loop->heap[0];
        rs__heap_remove(loop, t);
        t->fn(loop, t, t->arg);
    }
}

/* ---- connection table --------------------------------------------------- */

rs_conn *rs__conn_alloc(rs_loop *loop) {
    if (loop->conn_free_n == 0) return NULL;
    uint32_t slot = loop->conn_free[--loop->conn_free_n];
    rs_conn *c = &loop->conns[slot];
    /* A slot reaches the free list only once no work list links it
     * (rs__conn_release_slot), so it can be cleared whole. */
    RS_ASSERT(!c->in_flush && !c->in_pending && !c->in_pool_wait);
    uint32_t gen = c->gen;
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->slot = slot;
    c->gen = gen;
    c->fd = -1;
    c->rblock = RS_NONE;
    c->wq_head = c->wq_tail = RS_NONE;
    c->send_chunk = RS_NONE;
    c->state = RS_CONN_OPEN;
    c->last_active_ns = loop->now_ns;
    rs_timer_init(&c->idle_timer, rs__idle_fire, c);
    loop->stats.conns_open++;
    return c;
}

rs_conn_id rs_conn_get_id(const rs_conn *c) {
    return ((uint64_t)c->slot << 32) | c->gen;
}

rs_conn *rs_loop_conn(rs_loop *loop, rs_conn_id id) {
    uint32_t slot = (uint32_t)(id >> 32), gen = (uint32_t)id;
    if (id == 0 || slot >= loop->cfg.max_conns) return NULL;
    rs_conn *c = &loop->conns[slot];
    if (c->state == RS_CONN_FREE || c->gen != gen) return NULL;
    return c;
}

rs_loop *rs_conn_loop(const rs_conn *c) {
    return c->loop;
}
void *rs_conn_udata(const rs_conn *c) {
    return c->udata;
}
void rs_conn_set_udata(rs_conn *c, void *udata) {
    c->udata = udata;
}
void *rs_conn_listener_udata(const rs_conn *c) {
    return c->listener_udata;
}
int rs_conn_fd(const rs_conn *c) {
    return c->fd;
}
uint64_t rs_conn_write_queued(const rs_conn *c) {
    return c->wq_bytes;
}

void rs_conn_peer_name(const rs_conn *c, char *out, size_t out_bytes) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const struct sockaddr_storage *sa = &c->peer;
    if (c->peer_len == 0) {
        if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0) {
            snprintf(out, out_bytes, "?");
            return;
        }
        sa = &ss;
    }
    char host[INET6_ADDRSTRLEN + 2] = "?";
    char serv[16] = "?";
    getnameinfo((const struct sockaddr *)sa, sizeof(*sa), host, sizeof(host), serv, sizeof(serv),
                NI_NUMERICHOST | NI_NUMERICSERV);
    if (sa->ss_family == AF_INET6)
        snprintf(out, out_bytes, "[%s]:%s", host, serv);
    else
        snprintf(out, out_bytes, "%s:%s", host, serv);
}

/* ---- work lists ---------------------------------------------------------- */

static void rs__pending_add(rs_conn *c) {
    if (c->in_pending) return;
    c->in_pending = true;
    c->pending_next = c->loop->pending_head;
    c->loop->pending_head = c->slot;
}

/* Returns a closed connection's slot to the free list once no list links it. */
static void rs__conn_release_slot(rs_conn *c) {
    if (c->state != RS_CONN_FREE || !c->free_deferred) return;
    if (c->in_pending || c->in_flush || c->in_pool_wait) return;
    c->free_deferred = false;
    c->loop->conn_free[c->loop->conn_free_n++] = c->slot;
}

static void rs__flush_add(rs_conn *c) {
    if (c->in_flush) return;
    c->in_flush = true;
    c->flush_next = c->loop->flush_head;
    c->loop->flush_head = c->slot;
}

bool rs__conn_want_read(const rs_conn *c) {
    return c->state == RS_CONN_OPEN && !c->paused_user && !c->paused_bp && !c->paused_pool &&
           !c->read_eof;
}

/* Call after changing any pause flag: tells the backend when want-read
 * flipped, and schedules re-delivery of buffered bytes on resume. */
static void rs__read_changed(rs_conn *c, bool was) {
    bool now = rs__conn_want_read(c);
    if (now != was) c->loop->ops->conn_read_update(c->loop, c);
    if (now && c->rlen > 0) rs__pending_add(c);
}

/* ---- send slab ----------------------------------------------------------- */

static void rs__chunk_free(rs_loop *loop, uint32_t i) {
    rs_chunk *ch = &loop->chunks[i];
    ch->sent = ch->len = 0;
    ch->detached = 0;
    ch->next = loop->chunk_free;
    loop->chunk_free = i;
    loop->chunk_free_n++;
}

static uint32_t rs__chunk_take(rs_loop *loop) {
    uint32_t i = loop->chunk_free;
    RS_ASSERT(i != RS_NONE);
    rs_chunk *ch = &loop->chunks[i];
    loop->chunk_free = ch->next;
    loop->chunk_free_n--;
    ch->next = RS_NONE;
    ch->sent = ch->len = 0;
    ch->zc_pending = 0;
    ch->detached = 0;
    return i;
}

void rs__chunk_notif(rs_loop *loop, uint32_t i) {
    rs_chunk *ch = &loop->chunks[i];
    RS_ASSERT(ch->zc_pending > 0);
    ch->zc_pending--;
    if (ch->zc_pending == 0 && ch->detached) rs__chunk_free(loop, i);
}

static int rs__queue(rs_conn *c, const struct iovec *iov, int iovcnt, size_t total) {
    rs_loop *loop = c->loop;
    uint32_t cb = loop->cfg.send_buf_bytes;
    size_t space = c->wq_tail != RS_NONE ? cb - loop->chunks[c->wq_tail].len : 0;
    size_t need = total > space ? (total - space + cb - 1) / cb : 0;
    if (need > loop->chunk_free_n) return -ENOBUFS;
    for (int v = 0; v < iovcnt; v++) {
        const uint8_t *p = iov[v].iov_base;
        size_t left = iov[v].iov_len;
        while (left > 0) {
            if (c->wq_tail == RS_NONE || loop->chunks[c->wq_tail].len == cb) {
                uint32_t n = rs__chunk_take(loop);
                if (c->wq_tail == RS_NONE)
                    c->wq_head = n;
                else
                    loop->chunks[c->wq_tail].next = n;
                c->wq_tail = n;
            }
            rs_chunk *t = &loop->chunks[c->wq_tail];
            size_t k = cb - t->len < left ? cb - t->len : left;
            memcpy(rs__chunk_mem(loop, c->wq_tail) + t->len, p, k);
            t->len += (uint32_t)k;
            p += k;
            left -= k;
        }
    }
    return 0;
}

int rs_conn_sendv(rs_conn *c, const struct iovec *iov, int iovcnt) {
    if (c->state != RS_CONN_OPEN && c->state != RS_CONN_CONNECTING) return -EPIPE;
    rs_loop *loop = c->loop;
    if (c->wq_bytes > 2 * loop->cfg.conn_write_queue_max_bytes) return -ENOBUFS;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total == 0) return 0;
    bool was = rs__conn_want_read(c);
    if (rs__queue(c, iov, iovcnt, total) != 0) {
        /* The loop-wide send slab is exhausted: stop reading this peer until
         * chunks come back (overload is refused, memory does not grow). */
        if (!c->in_pool_wait) {
            c->in_pool_wait = true;
            c->pool_wait_next = loop->pool_wait_head;
            loop->pool_wait_head = c->slot;
        }
        c->paused_pool = true;
        rs__read_changed(c, was);
        return -ENOBUFS;
    }
    c->wq_bytes += total;
    if (!c->paused_bp && c->wq_bytes > loop->cfg.conn_write_queue_max_bytes) {
        c->paused_bp = true;
        loop->stats.read_paused++;
    }
    rs__read_changed(c, was);
    if (c->state == RS_CONN_OPEN) rs__flush_add(c);
    return 0;
}

int rs_conn_send(rs_conn *c, const void *data, size_t len) {
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    return rs_conn_sendv(c, &iov, 1);
}

void rs__conn_sent(rs_conn *c, ssize_t n) {
    rs_loop *loop = c->loop;
    c->send_inflight = false;
    c->send_chunk = RS_NONE;
    if (n <= 0) {
        if (c->state != RS_CONN_CLOSING) rs__conn_abort(c, n < 0 ? (int)n : -EPIPE);
        return;
    }
    RS_ASSERT((uint64_t)n <= c->wq_bytes);
    c->wq_bytes -= (uint64_t)n;
    loop->stats.bytes_out += (uint64_t)n;
    c->last_active_ns = loop->now_ns;
    while (n > 0) {
        uint32_t ci = c->wq_head;
        RS_ASSERT(ci != RS_NONE);
        rs_chunk *ch = &loop->chunks[ci];
        uint32_t k = ch->len - ch->sent;
        if ((uint64_t)n < k) k = (uint32_t)n;
        ch->sent += k;
        n -= k;
        if (ch->sent < ch->len) break;
        c->wq_head = ch->next;
        if (c->wq_tail == ci) c->wq_tail = RS_NONE;
        if (ch->zc_pending)
            ch->detached = 1; /* freed by its last notification */
        else
            rs__chunk_free(loop, ci);
    }
    if (c->paused_bp && c->wq_bytes <= loop->cfg.conn_write_queue_max_bytes / 2) {
        bool was = rs__conn_want_read(c);
        c->paused_bp = false;
        rs__read_changed(c, was);
        if (c->ops->on_drain && c->state == RS_CONN_OPEN) c->ops->on_drain(c);
    }
    if (c->wq_head == RS_NONE && c->state == RS_CONN_DRAINING) rs__conn_abort(c, c->close_err);
    if (loop->pool_wait_head != RS_NONE) rs__pending_add(c); /* waiters are woken there */
}

/* ---- read side ----------------------------------------------------------- */

static void rs__rbuf_release(rs_conn *c, bool keep_heap) {
    rs_loop *loop = c->loop;
    if (!c->rbuf) return;
    if (c->rblock != RS_NONE) {
        loop->asm_free[loop->asm_free_n++] = c->rblock;
        c->rblock = RS_NONE;
    } else if (keep_heap) {
        return;
    } else {
        free(c->rbuf);
    }
    c->rbuf = NULL;
    c->rcap = 0;
}

/* Keeps bytes the protocol has not consumed yet. */
static int rs__store(rs_conn *c, const uint8_t *data, size_t len) {
    rs_loop *loop = c->loop;
    uint64_t need = c->rlen + len;
    if (need > loop->cfg.conn_read_max_bytes) return -EMSGSIZE;
    if (need > c->rcap) {
        if (!c->rbuf && need <= loop->asm_block_bytes && loop->asm_free_n > 0) {
            c->rblock = loop->asm_free[--loop->asm_free_n];
            c->rbuf = loop->asm_mem + (size_t)c->rblock * loop->asm_block_bytes;
            c->rcap = loop->asm_block_bytes;
        } else {
            uint64_t cap = c->rcap ? c->rcap * 2 : (uint64_t)loop->asm_block_bytes * 2;
            while (cap < need)
                cap *= 2;
            if (cap > loop->cfg.conn_read_max_bytes) cap = loop->cfg.conn_read_max_bytes;
            uint8_t *p = malloc(cap);
            if (!p) return -ENOMEM;
            if (c->rlen) memcpy(p, c->rbuf, c->rlen);
            rs__rbuf_release(c, false);
            c->rbuf = p;
            c->rcap = cap;
        }
    }
    memcpy(c->rbuf + c->rlen, data, len);
    c->rlen += len;
    return 0;
}

/* Hands data to on_data until it stops consuming; returns bytes consumed. */
static size_t rs__deliver(rs_conn *c, const uint8_t *data, size_t len) {
    size_t off = 0;
    while (off < len && rs__conn_want_read(c)) {
        ssize_t r = c->ops->on_data(c, data + off, len - off);
        if (r < 0) {
            c->close_err = -EPROTO;
            rs_conn_close(c);
            return len;
        }
        RS_ASSERT((size_t)r <= len - off);
        if (r == 0) break;
        off += (size_t)r;
    }
    return off;
}

static void rs__deliver_buffered(rs_conn *c) {
    if (c->rlen == 0) return;
    size_t used = rs__deliver(c, c->rbuf, c->rlen);
    if (c->state != RS_CONN_OPEN) return;
    if (used > 0) {
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
    }
    if (c->rlen == 0) rs__rbuf_release(c, true);
}

void rs__conn_input(rs_conn *c, const uint8_t *data, size_t len) {
    if (c->state != RS_CONN_OPEN) return; /* closing: late bytes are dropped */
    rs_loop *loop = c->loop;
    loop->stats.bytes_in += len;
    c->last_active_ns = loop->now_ns;
    int rc;
    if (c->rlen == 0 && rs__conn_want_read(c)) {
        size_t used = rs__deliver(c, data, len); /* in place: no copy */
        if (c->state != RS_CONN_OPEN || used == len) return;
        rc = rs__store(c, data + used, len - used);
    } else {
        rc = rs__store(c, data, len);
        if (rc == 0 && rs__conn_want_read(c)) rs__deliver_buffered(c);
    }
    if (rc != 0) {
        RS_DEBUG("io: conn %u: unconsumed bytes over conn_read_max_bytes=%llu: closing", c->slot,
                 (unsigned long long)loop->cfg.conn_read_max_bytes);
        rs__conn_abort(c, rc);
    }
}

void rs__conn_input_end(rs_conn *c, int err) {
    if (c->state != RS_CONN_OPEN && c->state != RS_CONN_DRAINING) return;
    if (err < 0) {
        rs__conn_abort(c, err);
        return;
    }
    /* Peer closed its side: answer what is queued, then close. */
    c->read_eof = true;
    if (c->state == RS_CONN_OPEN) {
        c->state = RS_CONN_DRAINING;
        c->loop->ops->conn_read_update(c->loop, c);
    }
    if (c->wq_head == RS_NONE)
        rs__conn_abort(c, c->close_err);
    else
        rs__flush_add(c);
}

void rs_conn_pause_read(rs_conn *c) {
    bool was = rs__conn_want_read(c);
    c->paused_user = true;
    rs__read_changed(c, was);
}

void rs_conn_resume_read(rs_conn *c) {
    bool was = rs__conn_want_read(c);
    c->paused_user = false;
    rs__read_changed(c, was);
}

/* ---- open / close ------------------------------------------------------- */

/* The per-connection timer: connect deadline while CONNECTING, then the
 * idle timeout (lazily re-armed from last_active_ns). */
static void rs__idle_fire(rs_loop *loop, rs_timer *t, void *arg) {
    rs_conn *c = arg;
    (void)t;
    if (c->state == RS_CONN_CONNECTING) {
        rs__conn_connected(c, -ETIMEDOUT);
        return;
    }
    if (c->state == RS_CONN_CLOSING || c->state == RS_CONN_FREE) return;
    uint64_t idle_ns = (uint64_t)loop->cfg.idle_timeout_ms * 1000000ull;
    uint64_t quiet = loop->now_ns - c->last_active_ns;
    if (quiet >= idle_ns)
        rs__conn_abort(c, -ETIMEDOUT);
    else
        rs__timer_arm(loop, &c->idle_timer, idle_ns - quiet);
}

static void rs__conn_opened(rs_conn *c) {
    rs_loop *loop = c->loop;
    c->last_active_ns = loop->now_ns;
    if (loop->cfg.idle_timeout_ms)
        rs__timer_arm(loop, &c->idle_timer, (uint64_t)loop->cfg.idle_timeout_ms * 1000000ull);
    else
        rs_loop_timer_cancel(loop, &c->idle_timer); /* the connect deadline */
    if (c->fd >= 0) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
}

static int rs__listener_serve(rs_loop *loop, uint32_t lid, int fd) {
    rs_listener *l = &loop->listeners[lid];
    rs_conn *c = rs__conn_alloc(loop);
    if (!c) {
        RS_LOG_ONCE(RS_LOG_WARN, "io: connection table full (max_conns=%u): refusing connections",
                    loop->cfg.max_conns);
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->ops = l->ops;
    c->listener_udata = l->udata;
    c->udata = l->udata;
    c->accepted = true;
    atomic_fetch_add_explicit(&loop->accepted_open, 1, memory_order_relaxed);
    loop->stats.conns_accepted++;
    rs__conn_opened(c);
    if (c->ops->on_open && c->ops->on_open(c) != 0) {
        rs__conn_abort(c, -ECONNREFUSED);
        return 0;
    }
    if (c->state == RS_CONN_OPEN) loop->ops->conn_open(loop, c);
    return 0;
}

void rs__listener_accepted(rs_loop *loop, uint32_t lid, int fd) {
    rs_listener *l = &loop->listeners[lid];
    if (l->accept_fn && l->accept_fn(loop, (int)lid, fd, l->accept_arg)) return;
    rs__listener_serve(loop, lid, fd);
}

void rs_loop_listen_set_accept_hook(rs_loop *loop, int listener_id, rs_accept_fn fn, void *arg) {
    RS_ASSERT(listener_id >= 0 && (uint32_t)listener_id < loop->cfg.max_listeners);
    rs_listener *l = &loop->listeners[listener_id];
    RS_ASSERT(l->used);
    l->accept_fn = fn;
    l->accept_arg = arg;
}

int rs_loop_adopt(rs_loop *loop, int listener_id, int fd) {
    if (listener_id < 0 || (uint32_t)listener_id >= loop->cfg.max_listeners ||
        !loop->listeners[listener_id].used || loop->listeners[listener_id].closing) {
        close(fd);
        return -1;
    }
    return rs__listener_serve(loop, (uint32_t)listener_id, fd);
}

uint32_t rs_loop_accepted_open(const rs_loop *loop) {
    return atomic_load_explicit(&loop->accepted_open, memory_order_relaxed);
}

void rs__conn_connected(rs_conn *c, int err) {
    if (c->state != RS_CONN_CONNECTING) return; /* closed meanwhile */
    rs_loop *loop = c->loop;
    if (err) {
        c->state = RS_CONN_OPEN; /* so that abort runs the normal close path */
        if (c->ops->on_connect) c->ops->on_connect(c, err);
        rs__conn_abort(c, err);
        return;
    }
    c->state = RS_CONN_OPEN;
    rs__conn_opened(c);
    if (c->ops->on_connect) c->ops->on_connect(c, 0);
    if (c->state != RS_CONN_OPEN) return;
    loop->ops->conn_open(loop, c);
    if (c->wq_head != RS_NONE) rs__flush_add(c);
}

void rs__conn_abort(rs_conn *c, int err) {
    if (c->state == RS_CONN_CLOSING || c->state == RS_CONN_FREE) return;
    c->state = RS_CONN_CLOSING;
    c->close_err = err;
    c->loop->ops->conn_cancel(c->loop, c);
    rs__pending_add(c);
}

void rs_conn_abort(rs_conn *c, int err) {
    rs__conn_abort(c, err);
}

void rs_conn_close(rs_conn *c) {
    if (c->state == RS_CONN_CONNECTING || (c->state == RS_CONN_OPEN && c->wq_head == RS_NONE)) {
        rs__conn_abort(c, c->close_err);
        return;
    }
    if (c->state != RS_CONN_OPEN) return;
    c->state = RS_CONN_DRAINING;
    c->loop->ops->conn_read_update(c->loop, c);
    rs__flush_add(c);
}

void rs__conn_check_finish(rs_conn *c) {
    if (c->state != RS_CONN_CLOSING || c->inflight > 0) return;
    rs_loop *loop = c->loop;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    while (c->wq_head != RS_NONE) {
        uint32_t n = loop->chunks[c->wq_head].next;
        RS_ASSERT(loop->chunks[c->wq_head].zc_pending == 0);
        rs__chunk_free(loop, c->wq_head);
        c->wq_head = n;
    }
    c->wq_tail = RS_NONE;
    c->wq_bytes = 0;
    c->rlen = 0;
    rs__rbuf_release(c, false);
    rs_loop_timer_cancel(loop, &c->idle_timer);
    loop->stats.conns_closed++;
    loop->stats.conns_open--;
    if (c->accepted) {
        c->accepted = false;
        atomic_fetch_sub_explicit(&loop->accepted_open, 1, memory_order_relaxed);
    }
    if (c->ops && c->ops->on_close) c->ops->on_close(c, c->close_err);
    c->state = RS_CONN_FREE;
    c->gen = c->gen + 1 ? c->gen + 1 : 1;
    c->free_deferred = true;
    rs__conn_release_slot(c);
}

/* ---- pending / flush processing ----------------------------------------- */

static void rs__wake_pool_waiters(rs_loop *loop) {
    /* Resume readers that hit an empty slab once a quarter of it is free. */
    if (loop->pool_wait_head == RS_NONE || loop->chunk_free_n < loop->cfg.send_buf_count / 4 + 1)
        return;
    uint32_t i = loop->pool_wait_head;
    loop->pool_wait_head = RS_NONE;
    while (i != RS_NONE) {
        rs_conn *c = &loop->conns[i];
        i = c->pool_wait_next;
        c->in_pool_wait = false;
        rs__conn_release_slot(c);
        bool was = rs__conn_want_read(c);
        c->paused_pool = false;
        if (c->state == RS_CONN_OPEN) rs__read_changed(c, was);
    }
}

static void rs__process_pending(rs_loop *loop) {
    rs__wake_pool_waiters(loop);
    uint32_t i = loop->pending_head;
    loop->pending_head = RS_NONE;
    while (i != RS_NONE) {
        rs_conn *c = &loop->conns[i];
        i = c->pending_next;
        c->in_pending = false;
        rs__conn_release_slot(c);
        if (c->state == RS_CONN_CLOSING)
            rs__conn_check_finish(c);
        else if (c->state == RS_CONN_OPEN && rs__conn_want_read(c))
            rs__deliver_buffered(c);
    }
}

static void rs__process_flush(rs_loop *loop) {
    uint32_t i = loop->flush_head;
    loop->flush_head = RS_NONE;
    while (i != RS_NONE) {
        rs_conn *c = &loop->conns[i];
        i = c->flush_next;
        c->in_flush = false;
        rs__conn_release_slot(c);
        if (c->state != RS_CONN_OPEN && c->state != RS_CONN_DRAINING) continue;
        if (c->wq_head != RS_NONE) {
            if (!c->send_inflight && !c->want_out) loop->ops->conn_flush(loop, c);
        } else if (c->state == RS_CONN_DRAINING) {
            rs__conn_abort(c, c->close_err);
        }
    }
}

/* ---- posts -------------------------------------------------------------- */

static _Thread_local rs_loop *rs__tls_loop;

rs_loop *rs__current_loop(void);
rs_loop *rs__current_loop(void) {
    return rs__tls_loop;
}

int rs_loop_post(rs_loop *target, rs_post_fn fn, void *arg) {
    pthread_mutex_lock(&target->post_mu);
    if (target->post_n == target->cfg.post_queue_capacity) {
        pthread_mutex_unlock(&target->post_mu);
        return -EAGAIN;
    }
    uint32_t at = (target->post_head + target->post_n) % target->cfg.post_queue_capacity;
    target->posts[at].fn = fn;
    target->posts[at].arg = arg;
    target->post_n++;
    pthread_mutex_unlock(&target->post_mu);
    if (!atomic_exchange(&target->wake_pending, true) && rs__tls_loop != target)
        target->ops->wake(target);
    return 0;
}

void rs__loop_drain_posts(rs_loop *loop) {
    atomic_store(&loop->wake_pending, false);
    pthread_mutex_lock(&loop->post_mu);
    uint32_t n = loop->post_n;
    pthread_mutex_unlock(&loop->post_mu);
    while (n-- > 0) {
        pthread_mutex_lock(&loop->post_mu);
        rs_post_msg m = loop->posts[loop->post_head];
        loop->post_head = (loop->post_head + 1) % loop->cfg.post_queue_capacity;
        loop->post_n--;
        pthread_mutex_unlock(&loop->post_mu);
        m.fn(loop, m.arg);
    }
}

void rs_loop_stop(rs_loop *loop) {
    atomic_store(&loop->stop, true);
    if (!atomic_exchange(&loop->wake_pending, true) && rs__tls_loop != loop) loop->ops->wake(loop);
}

/* ---- lifecycle ---------------------------------------------------------- */

rs_loop *rs_loop_create(const rs_loop_config *cfg_in, rs_err *err) {
    if (rs_loop_config_check(cfg_in, err) != 0) return NULL;
    rs_io_backend be;
    if (rs_io_backend_resolve(cfg_in->backend, &be, err) != 0) return NULL;

    /* Sends on sockets from WRITE_FIXED cannot pass MSG_NOSIGNAL: a peer that
     * went away must give EPIPE, not kill the process. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);

    rs_loop *loop = calloc(1, sizeof(*loop));
    if (!loop) {
        rs_err_set(err, "io: out of memory creating a loop");
        return NULL;
    }
    loop->cfg = *cfg_in;
    loop->cfg.backend = be;
    loop->backend = be;
    loop->ops = be == RS_IO_URING ? &rs_uring_backend : &rs_epoll_backend;
    loop->owner = pthread_self();
    loop->now_ns = rs_now_ns();
    loop->flush_head = loop->pending_head = loop->pool_wait_head = RS_NONE;
    pthread_mutex_init(&loop->post_mu, NULL);

    const rs_loop_config *cfg = &loop->cfg;
    loop->conns = calloc(cfg->max_conns, sizeof(rs_conn));
    loop->conn_free = calloc(cfg->max_conns, sizeof(uint32_t));
    loop->listeners = calloc(cfg->max_listeners, sizeof(rs_listener));
    loop->chunks = calloc(cfg->send_buf_count, sizeof(rs_chunk));
    loop->heap_cap = cfg->max_timers + cfg->max_conns;
    loop->heap = calloc(loop->heap_cap, sizeof(rs_timer *));
    loop->posts = calloc(cfg->post_queue_capacity, sizeof(rs_post_msg));
    loop->asm_block_bytes = cfg->read_asm_bytes;
    loop->asm_free = calloc(cfg->read_asm_count ? cfg->read_asm_count : 1, sizeof(uint32_t));
    loop->send_mem_bytes = (size_t)cfg->send_buf_bytes * cfg->send_buf_count;
    loop->send_mem = rs__slab_alloc(loop->send_mem_bytes, cfg->numa_node);
    loop->recv_mem_bytes = (size_t)cfg->recv_buf_bytes * cfg->recv_buf_count;
    loop->recv_mem = rs__slab_alloc(loop->recv_mem_bytes, cfg->numa_node);
    loop->asm_mem_bytes = (size_t)cfg->read_asm_bytes * cfg->read_asm_count;
    loop->asm_mem = rs__slab_alloc(loop->asm_mem_bytes, cfg->numa_node);
    if (!loop->conns || !loop->conn_free || !loop->listeners || !loop->chunks || !loop->heap ||
        !loop->posts || !loop->asm_free || !loop->send_mem || !loop->recv_mem ||
        (loop->asm_mem_bytes && !loop->asm_mem)) {
        rs_err_set(err, "io: out of memory allocating loop buffers (%zu send + %zu receive bytes)",
                   loop->send_mem_bytes, loop->recv_mem_bytes);
        loop->ops = NULL;
        rs_loop_destroy(loop);
        return NULL;
    }
    for (uint32_t i = 0; i < cfg->max_conns; i++) {
        loop->conns[i].gen = 1;
        loop->conn_free[i] = cfg->max_conns - 1 - i; /* slot 0 first */
    }
    loop->conn_free_n = cfg->max_conns;
    loop->chunk_free = RS_NONE;
    for (uint32_t i = cfg->send_buf_count; i-- > 0;)
        rs__chunk_free(loop, i);
    for (uint32_t i = 0; i < cfg->read_asm_count; i++)
        loop->asm_free[i] = i;
    loop->asm_free_n = cfg->read_asm_count;
    for (uint32_t i = 0; i < cfg->max_listeners; i++)
        loop->listeners[i].fd = -1;
    if (loop->ops->init(loop, err) != 0) {
        loop->ops = NULL;
        rs_loop_destroy(loop);
        return NULL;
    }
    rs__tls_loop = loop;
    RS_LOG_ONCE(RS_LOG_INFO, "io: event loop backend: %s", rs_io_backend_name(be));
    return loop;
}

static bool rs__loop_busy(const rs_loop *loop) {
    if (loop->stats.conns_open > 0) return true;
    for (uint32_t i = 0; i < loop->cfg.max_listeners; i++)
        if (loop->listeners[i].used) return true;
    for (uint32_t i = 0; i < RS_LOOP_MAX_WATCHES; i++)
        if (loop->watches[i].used) return true;
    return false;
}

static int rs__iterate(rs_loop *loop, uint64_t max_wait_ns);

void rs_loop_destroy(rs_loop *loop) {
    if (!loop) return;
    if (loop->ops) {
        loop->destroying = true;
        for (uint32_t i = 0; i < loop->cfg.max_listeners; i++)
            if (loop->listeners[i].used) rs_loop_listen_close(loop, (int)i);
        for (uint32_t i = 0; i < loop->cfg.max_conns; i++) {
            rs_conn *c = &loop->conns[i];
            if (c->state != RS_CONN_FREE) rs__conn_abort(c, -ECANCELED);
        }
        for (uint32_t i = 0; i < RS_LOOP_MAX_WATCHES; i++)
            if (loop->watches[i].active) rs_loop_unwatch_fd(loop, loop->watches[i].fd);
        while (loop->heap_n > 0)
            rs__heap_remove(loop, loop->heap[loop->heap_n - 1]);
        /* Reap every completion (cancellations, zero-copy notifications)
         * before any buffer is unregistered or freed. */
        for (int i = 0; rs__loop_busy(loop) && i < 100000; i++)
            rs__iterate(loop, 10000000ull);
        if (rs__loop_busy(loop)) RS_ERROR("io: loop destroy: operations still in flight");
        rs__loop_drain_posts(loop);
        loop->ops->fini(loop);
    }
    if (rs__tls_loop == loop) rs__tls_loop = NULL;
    pthread_mutex_destroy(&loop->post_mu);
    rs__slab_free(loop->send_mem, loop->send_mem_bytes);
    rs__slab_free(loop->recv_mem, loop->recv_mem_bytes);
    rs__slab_free(loop->asm_mem, loop->asm_mem_bytes);
    free(loop->conns);
    free(loop->conn_free);
    free(loop->listeners);
    free(loop->chunks);
    free(loop->heap);
    free(loop->posts);
    free(loop->asm_free);
    free(loop);
}

static int rs__iterate(rs_loop *loop, uint64_t max_wait_ns) {
    rs__process_pending(loop);
    rs__process_flush(loop);
    uint64_t timeout = max_wait_ns;
    if (loop->pending_head != RS_NONE || loop->flush_head != RS_NONE ||
        atomic_load(&loop->wake_pending) || atomic_load(&loop->stop))
        timeout = 0;
    if (loop->heap_n > 0) {
        uint64_t now = rs_now_ns();
        uint64_t d = loop->heap[0]->deadline_ns;
        uint64_t t = d > now ? d - now : 0;
        if (t < timeout) timeout = t;
    }
    loop->in_dispatch = true;
    int rc = loop->ops->wait(loop, timeout);
    loop->in_dispatch = false;
    loop->now_ns = rs_now_ns();
    if (atomic_load(&loop->wake_pending)) rs__loop_drain_posts(loop);
    rs__run_timers(loop);
    rs__process_pending(loop);
    if (loop->tick_fn) loop->tick_fn(loop, loop->tick_arg);
    rs__process_flush(loop);
    loop->stats.iterations++;
    return rc;
}

int rs_loop_run_once(rs_loop *loop, uint32_t timeout_ms) {
    return rs__iterate(loop, (uint64_t)timeout_ms * 1000000ull);
}

int rs_loop_run(rs_loop *loop) {
    while (!atomic_load(&loop->stop)) {
        if (rs__iterate(loop, UINT64_MAX) != 0) return -1;
    }
    atomic_store(&loop->stop, false);
    return 0;
}

rs_io_backend rs_loop_backend(const rs_loop *loop) {
    return loop->backend;
}
uint64_t rs_loop_now_ns(const rs_loop *loop) {
    return loop->now_ns;
}
void rs_loop_set_udata(rs_loop *loop, void *udata) {
    loop->udata = udata;
}
void *rs_loop_udata(const rs_loop *loop) {
    return loop->udata;
}
void rs_loop_set_tick(rs_loop *loop, rs_tick_fn fn, void *arg) {
    loop->tick_fn = fn;
    loop->tick_arg = arg;
}
void rs_loop_get_stats(const rs_loop *loop, rs_loop_stats *out) {
    *out = loop->stats;
}

/* ---- listeners, connect, watches ---------------------------------------- */

bool rs_host_is_numeric(const char *host) {
    unsigned char buf[sizeof(struct in6_addr)];
    return host && (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1);
}

int rs_resolve_host(const char *host, char *out, size_t out_bytes, rs_err *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = host && *host ? getaddrinfo(host, NULL, &hints, &res) : EAI_NONAME;
    if (rc != 0 || !res) {
        rs_err_set(err, "address '%s': %s", host ? host : "", gai_strerror(rc));
        return -1;
    }
    /* IPv4 first when the name has both: listeners default to 127.0.0.1 and
     * "localhost" often lists ::1 first */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    rc = getnameinfo(pick->ai_addr, pick->ai_addrlen, out, (socklen_t)out_bytes, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rc != 0) {
        rs_err_set(err, "address '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

int rs__resolve_addr(const char *host, uint16_t port, struct sockaddr_storage *out,
                     socklen_t *out_len, rs_err *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (host ? 0 : AI_PASSIVE)};
    char serv[8];
    snprintf(serv, sizeof(serv), "%u", port);
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host && *host ? host : NULL, serv, &hints, &res);
    if (rc != 0 || !res) {
        rs_err_set(err, "io: address '%s': %s", host ? host : "*", gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *out_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int rs_loop_listen(rs_loop *loop, const char *host, uint16_t port, bool reuseport,
                   const rs_conn_ops *ops, void *udata, rs_err *err) {
    if (loop->destroying) {
        rs_err_set(err, "io: listen: the loop is shutting down");
        return -1;
    }
    uint32_t lid = 0;
    while (lid < loop->cfg.max_listeners && loop->listeners[lid].used)
        lid++;
    if (lid == loop->cfg.max_listeners) {
        rs_err_set(err, "io: listen: all %u listener slots in use (max_listeners)",
                   loop->cfg.max_listeners);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (rs__resolve_addr(host, port, &ss, &sl, err) != 0) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rs_err_set(err, "io: listen: socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        rs_err_set(err, "io: listen: SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 4096) != 0) {
        rs_err_set(err, "io: listen on %s:%u: %s", host ? host : "*", port, strerror(errno));
        close(fd);
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    getsockname(fd, (struct sockaddr *)&bound, &bl);
    rs_listener *l = &loop->listeners[lid];
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    l->used = true;
    l->ops = ops;
    l->udata = udata;
    if (loop->ops->listener_arm(loop, lid) != 0) {
        rs_err_set(err, "io: listen: cannot arm accept on port %u", l->port);
        close(fd);
        l->used = false;
        l->fd = -1;
        return -1;
    }
    return (int)lid;
}

uint16_t rs_loop_listen_port(const rs_loop *loop, int listener_id) {
    if (listener_id < 0 || (uint32_t)listener_id >= loop->cfg.max_listeners) return 0;
    return loop->listeners[listener_id].port;
}

void rs_loop_listen_close(rs_loop *loop, int listener_id) {
    if (listener_id < 0 || (uint32_t)listener_id >= loop->cfg.max_listeners) return;
    rs_listener *l = &loop->listeners[listener_id];
    if (!l->used || l->closing) return;
    l->closing = true;
    loop->ops->listener_close(loop, (uint32_t)listener_id);
}

rs_conn *rs_loop_connect(rs_loop *loop, const char *host, uint16_t port, const rs_conn_ops *ops,
                         void *udata, rs_err *err) {
    if (loop->destroying) { /* an on_close that reconnects must not keep shutdown alive */
        rs_err_set(err, "io: connect %s:%u: the loop is shutting down", host ? host : "?", port);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    /* A loop thread never waits on DNS: names are resolved before the loops
     * run (rs_resolve_host), so only numeric addresses get here. */
    if (!rs_host_is_numeric(host)) {
        rs_err_set(err, "io: connect %s:%u: not a numeric address (io threads resolve no names; "
                   "resolve it at start-up with rs_resolve_host)", host ? host : "", port);
        return NULL;
    }
    if (rs__resolve_addr(host, port, &ss, &sl, err) != 0) return NULL;
    rs_conn *c = rs__conn_alloc(loop);
    if (!c) {
        rs_err_set(err, "io: connect %s:%u: connection table full (max_conns=%u)", host, port,
                   loop->cfg.max_conns);
        return NULL;
    }
    c->state = RS_CONN_CONNECTING;
    c->ops = ops;
    c->udata = udata;
    c->peer = ss;
    c->peer_len = sl;
    if (loop->ops->conn_connect(loop, c, err) != 0) {
        rs_err_prefix(err, "io: connect %s:%u", host, port);
        c->state = RS_CONN_CLOSING; /* finished (fd closed, slot freed) by pending work */
        c->ops = NULL;
        rs__pending_add(c);
        return NULL;
    }
    if (loop->cfg.connect_timeout_ms)
        rs__timer_arm(loop, &c->idle_timer, (uint64_t)loop->cfg.connect_timeout_ms * 1000000ull);
    return c;
}

int rs_loop_watch_fd(rs_loop *loop, int fd, uint32_t events, rs_fd_fn fn, void *arg) {
    uint32_t w = 0;
    while (w < RS_LOOP_MAX_WATCHES && loop->watches[w].used)
        w++;
    if (w == RS_LOOP_MAX_WATCHES) return -ENOSPC;
    rs_watch *x = &loop->watches[w];
    memset(x, 0, sizeof(*x));
    x->fd = fd;
    x->events = events;
    x->fn = fn;
    x->arg = arg;
    x->used = x->active = true;
    int rc = loop->ops->watch_arm(loop, w);
    if (rc != 0) x->used = x->active = false;
    return rc;
}

void rs_loop_unwatch_fd(rs_loop *loop, int fd) {
    for (uint32_t w = 0; w < RS_LOOP_MAX_WATCHES; w++) {
        rs_watch *x = &loop->watches[w];
        if (x->used && x->active && x->fd == fd) {
            x->active = false;
            loop->ops->watch_disarm(loop, w);
        }
    }
}

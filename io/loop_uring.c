/* loop_uring.c — the io_uring backend.
 *
 * One ring per loop thread, SINGLE_ISSUER | DEFER_TASKRUN (completions run
 * only when this thread waits, so there is one io_uring_submit_and_wait per
 * iteration and no cross-thread interference). Multishot accept and
 * multishot recv into a provided buffer ring (registered by hand: liburing
 * 2.3 has no io_uring_setup_buf_ring). Sends go out of the registered send
 * slab (WRITE_FIXED; SEND_ZC with the fixed buffer above
 * send_zc_threshold_bytes), one in flight per socket, short sends resumed.
 *
 * Every operation is counted where it belongs (connection, listener, watch,
 * or the ring's own misc counter) and the count drops only on a completion
 * without IORING_CQE_F_MORE, so a connection slot, a chunk or the ring
 * itself is released only after its last completion has been reaped. */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "io/loop_internal.h"

enum {
    RS_UD_ACCEPT = 1,
    RS_UD_RECV,
    RS_UD_SEND,
    RS_UD_SENDZC, /* idx = slot, bits 32..55 = chunk */
    RS_UD_CONNECT,
    RS_UD_POLL,
    RS_UD_WAKE,
    RS_UD_MSG,    /* MSG_RING completion posted into this ring by another */
    RS_UD_MSGSRC, /* our own completion of a MSG_RING we sent */
    RS_UD_CANCEL,
};

/* What a RS_UD_CANCEL completion was cancelling (bits 32..55). A cancel can
 * answer -EALREADY while a multishot request is mid-completion and the request
 * then keeps going; the owner re-issues the cancel on its next completion. */
enum { RS_CX_MISC = 0, RS_CX_WATCH, RS_CX_RECV, RS_CX_LISTENER, RS_CX_CONN };

#define RS_UR_BGID 0
#define RS_UR_BATCH 256

typedef struct rs_uring {
    struct io_uring ring;
    bool ring_ok;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    uint32_t br_mask;
    uint32_t br_added;
    bool br_registered;
    bool send_registered;
    bool zc_ok;
    bool msg_ring_ok;
    int evfd;
    bool wake_armed;
    bool stopping;
    uint32_t misc_inflight;
    uint64_t evbuf;
} rs_uring;

bool rs__uring_refuse_registration;

static uint64_t rs_ur_ud(uint64_t type, uint32_t hi24, uint32_t idx) {
    return (type << 56) | ((uint64_t)(hi24 & 0xffffffu) << 32) | idx;
}

static struct io_uring_sqe *rs_ur_sqe(rs_uring *ur) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ur->ring);
    if (!sqe) {
        /* SQ full: submit what is there (owner thread, so allowed). */
        io_uring_submit(&ur->ring);
        sqe = io_uring_get_sqe(&ur->ring);
    }
    RS_ASSERT(sqe != NULL);
    return sqe;
}

/* ---- set-up ------------------------------------------------------------- */

static int rs_ur_ring_init(rs_uring *ur, uint32_t cq_entries, rs_err *err) {
    static const struct {
        unsigned flags;
        const char *names;
    } tries[] = {
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN"},
        {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
        {0, "none"},
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = tries[i].flags | IORING_SETUP_CQSIZE;
        p.cq_entries = cq_entries;
        rc = io_uring_queue_init_params(1024, &ur->ring, &p);
        if (rc == 0) {
            RS_LOG_ONCE(RS_LOG_INFO, "io: io_uring ring set up with flags %s", tries[i].names);
            return 0;
        }
        if (rc != -EINVAL) break; /* only an unknown flag is worth another try */
    }
    rs_err_set(err, "io: io_uring_queue_init: %s", strerror(-rc));
    return -1;
}

static int rs_ur_bufring_init(rs_loop *loop, rs_uring *ur, rs_err *err) {
    uint32_t n = loop->cfg.recv_buf_count;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    ur->br_bytes = (n * sizeof(struct io_uring_buf) + page - 1) / page * page;
    void *mem =
        mmap(NULL, ur->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        rs_err_set(err, "io: buffer ring: mmap: %s", strerror(errno));
        return -1;
    }
    ur->br = mem;
    io_uring_buf_ring_init(ur->br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)ur->br, .ring_entries = n, .bgid = RS_UR_BGID};
    int rc = io_uring_register_buf_ring(&ur->ring, &reg, 0);
    if (rc != 0) {
        rs_err_set(err, "io: io_uring_register_buf_ring: %s", strerror(-rc));
        return -1;
    }
    ur->br_registered = true;
    ur->br_mask = (uint32_t)io_uring_buf_ring_mask(n);
    for (uint32_t i = 0; i < n; i++)
        io_uring_buf_ring_add(ur->br, loop->recv_mem + (size_t)i * loop->cfg.recv_buf_bytes,
                              loop->cfg.recv_buf_bytes, (unsigned short)i, (int)ur->br_mask,
                              (int)i);
    io_uring_buf_ring_advance(ur->br, (int)n);
    return 0;
}

static void rs_ur_buf_return(rs_loop *loop, rs_uring *ur, uint32_t bid) {
    io_uring_buf_ring_add(ur->br, loop->recv_mem + (size_t)bid * loop->cfg.recv_buf_bytes,
                          loop->cfg.recv_buf_bytes, (unsigned short)bid, (int)ur->br_mask,
                          (int)ur->br_added++);
}

static void rs_ur_arm_wake(rs_uring *ur) {
    struct io_uring_sqe *sqe = rs_ur_sqe(ur);
    io_uring_prep_poll_multishot(sqe, ur->evfd, POLLIN);
    io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_WAKE, 0, 0));
    ur->wake_armed = true;
    ur->misc_inflight++;
}

static int rs_ur_init(rs_loop *loop, rs_err *err) {
    rs_uring *ur = calloc(1, sizeof(*ur));
    if (!ur) {
        rs_err_set(err, "io: uring: out of memory");
        return -1;
    }
    ur->evfd = -1;
    loop->be = ur;
    uint32_t cq = 4096;
    while (cq < 2 * loop->cfg.max_conns && cq < 65536)
        cq *= 2;
    if (rs_ur_ring_init(ur, cq, err) != 0) return -1;
    ur->ring_ok = true;
    if (rs_ur_bufring_init(loop, ur, err) != 0) return -1;

    /* Registered send slab: pinned memory counts against RLIMIT_MEMLOCK. */
    struct iovec iov = {.iov_base = loop->send_mem, .iov_len = loop->send_mem_bytes};
    int rc =
        rs__uring_refuse_registration ? -ENOMEM : io_uring_register_buffers(&ur->ring, &iov, 1);
    if (rc == 0) {
        ur->send_registered = true;
    } else {
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_MEMLOCK, &rl);
        ur->send_registered = false;
        RS_LOG_ONCE(RS_LOG_WARN,
                    "io: registering %zu send-buffer bytes failed (%s; RLIMIT_MEMLOCK soft %llu "
                    "hard %llu bytes): sending from unregistered buffers",
                    loop->send_mem_bytes, strerror(-rc), (unsigned long long)rl.rlim_cur,
                    (unsigned long long)rl.rlim_max);
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ur->ring);
    if (probe) {
        ur->zc_ok = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
        ur->msg_ring_ok = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
        io_uring_free_probe(probe);
    }
    ur->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ur->evfd < 0) {
        rs_err_set(err, "io: eventfd: %s", strerror(errno));
        return -1;
    }
    rs_ur_arm_wake(ur);
    return 0;
}

static bool rs_ur_handle(rs_loop *loop, uint64_t ud, int32_t res, uint32_t flags);

/* Reaps completions (up to max_batches batches of RS_UR_BATCH). Each batch
 * is copied out and the CQ advanced before handlers run, so a handler may
 * submit (which can post completions) without disturbing the iteration. */
static void rs_ur_reap(rs_loop *loop, rs_uring *ur) {
    struct io_uring_cqe *cqes[RS_UR_BATCH];
    struct {
        uint64_t ud;
        int32_t res;
        uint32_t flags;
    } batch[RS_UR_BATCH];
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&ur->ring, cqes, RS_UR_BATCH);
        if (n == 0) break;
        for (unsigned i = 0; i < n; i++) {
            batch[i].ud = cqes[i]->user_data;
            batch[i].res = cqes[i]->res;
            batch[i].flags = cqes[i]->flags;
        }
        io_uring_cq_advance(&ur->ring, n);
        for (unsigned i = 0; i < n; i++)
            rs_ur_handle(loop, batch[i].ud, batch[i].res, batch[i].flags);
        if (ur->br_added) {
            io_uring_buf_ring_advance(ur->br, (int)ur->br_added);
            ur->br_added = 0;
        }
    }
}

static void rs_ur_fini(rs_loop *loop) {
    rs_uring *ur = loop->be;
    if (!ur) return;
    if (ur->ring_ok) {
        ur->stopping = true;
        if (ur->wake_armed) {
            struct io_uring_sqe *sqe = rs_ur_sqe(ur);
            io_uring_prep_cancel64(sqe, rs_ur_ud(RS_UD_WAKE, 0, 0), 0);
            io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_CANCEL, 0, 0));
            ur->misc_inflight++;
        }
        /* Reap everything still outstanding before buffers go away. */
        for (int i = 0; ur->misc_inflight > 0 && i < 1000; i++) {
            struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};
            struct io_uring_cqe *cqe;
            io_uring_submit_and_wait_timeout(&ur->ring, &cqe, 1, &ts, NULL);
            rs_ur_reap(loop, ur);
        }
        if (ur->misc_inflight > 0)
            RS_ERROR("io: uring: %u internal operations did not complete", ur->misc_inflight);
        if (ur->send_registered) io_uring_unregister_buffers(&ur->ring);
        if (ur->br_registered) io_uring_unregister_buf_ring(&ur->ring, RS_UR_BGID);
        io_uring_queue_exit(&ur->ring);
    }
    if (ur->br) munmap(ur->br, ur->br_bytes);
    if (ur->evfd >= 0) close(ur->evfd);
    free(ur);
    loop->be = NULL;
}

/* ---- operations --------------------------------------------------------- */

static void rs_ur_cancel_fd(rs_uring *ur, int fd, uint32_t kind, uint32_t idx) {
    struct io_uring_sqe *sqe = rs_ur_sqe(ur);
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_CANCEL, kind, idx));
    ur->misc_inflight++;
}

static void rs_ur_cancel_ud(rs_uring *ur, uint64_t target, uint32_t kind, uint32_t idx) {
    struct io_uring_sqe *sqe = rs_ur_sqe(ur);
    io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_CANCEL, kind, idx));
    ur->misc_inflight++;
}

static int rs_ur_listener_arm(rs_loop *loop, uint32_t lid) {
    rs_uring *ur = loop->be;
    rs_listener *l = &loop->listeners[lid];
    struct io_uring_sqe *sqe = rs_ur_sqe(ur);
    io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_ACCEPT, 0, lid));
    l->inflight++;
    l->armed = true;
    return 0;
}

static void rs_ur_listener_done(rs_listener *l) {
    close(l->fd);
    l->fd = -1;
    l->used = false;
    l->closing = false;
}

static void rs_ur_listener_close(rs_loop *loop, uint32_t lid) {
    rs_listener *l = &loop->listeners[lid];
    if (l->inflight == 0) {
        rs_ur_listener_done(l);
    } else if (!l->cancel_pending) {
        l->cancel_pending = true;
        rs_ur_cancel_ud(loop->be, rs_ur_ud(RS_UD_ACCEPT, 0, lid), RS_CX_LISTENER, lid);
    }
}

static void rs_ur_arm_recv(rs_loop *loop, rs_conn *c) {
    rs_uring *ur = loop->be;
    struct io_uring_sqe *sqe = rs_ur_sqe(ur);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RS_UR_BGID;
    io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_RECV, c->gen, c->slot));
    c->inflight++;
    c->recv_armed = true;
}

static void rs_ur_conn_read_update(rs_loop *loop, rs_conn *c) {
    rs_uring *ur = loop->be;
    if (c->state == RS_CONN_CLOSING || c->state == RS_CONN_FREE || c->fd < 0) return;
    if (rs__conn_want_read(c)) {
        if (!c->recv_armed) rs_ur_arm_recv(loop, c);
        /* armed but being cancelled: re-armed when its last completion arrives */
    } else if (c->recv_armed && !c->recv_cancel) {
        rs_ur_cancel_ud(ur, rs_ur_ud(RS_UD_RECV, c->gen, c->slot), RS_CX_RECV, c->slot);
        c->recv_cancel = true;
    }
}

static void rs_ur_conn_open(rs_loop *loop, rs_conn *c) {
    rs_ur_conn_read_update(loop, c);
}

/* One send per socket in flight. A lone chunk goes out of the registered
 * slab (WRITE_FIXED, or SEND_ZC at or above the threshold); a queue of several
 * chunks goes out as one SENDMSG over up to RS_SEND_IOV of them, which beats
 * one completion round trip per chunk for large responses. */
static void rs_ur_conn_flush(rs_loop *loop, rs_conn *c) {
    rs_uring *ur = loop->be;
    if (c->send_inflight || c->wq_head == RS_NONE) return;
    uint32_t ci = c->wq_head;
    rs_chunk *ch = &loop->chunks[ci];
    uint8_t *addr = rs__chunk_mem(loop, ci) + ch->sent;
    uint32_t len = ch->len - ch->sent;
    struct io_uring_sqe *sqe = rs_ur_sqe(ur);
    uint32_t zc_min = loop->cfg.send_zc_threshold_bytes;
    uint64_t total = len;
    if (ch->next != RS_NONE) {
        int n = 0;
        for (uint32_t i = ci; i != RS_NONE && n < RS_SEND_IOV; i = loop->chunks[i].next, n++) {
            rs_chunk *x = &loop->chunks[i];
            c->siov[n].iov_base = rs__chunk_mem(loop, i) + x->sent;
            c->siov[n].iov_len = x->len - x->sent;
            if (n > 0) total += c->siov[n].iov_len;
        }
        memset(&c->smsg, 0, sizeof(c->smsg));
        c->smsg.msg_iov = c->siov;
        c->smsg.msg_iovlen = (size_t)n;
        io_uring_prep_sendmsg(sqe, c->fd, &c->smsg, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_SEND, c->gen, c->slot));
    } else if (ur->zc_ok && zc_min && len >= zc_min && !c->zc_skip) {
        if (ur->send_registered)
            io_uring_prep_send_zc_fixed(sqe, c->fd, addr, len, MSG_NOSIGNAL, 0, 0);
        else
            io_uring_prep_send_zc(sqe, c->fd, addr, len, MSG_NOSIGNAL, 0);
        io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_SENDZC, ci, c->slot));
        ch->zc_pending++;
    } else if (ur->send_registered) {
        io_uring_prep_write_fixed(sqe, c->fd, addr, len, 0, 0);
        io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_SEND, c->gen, c->slot));
    } else {
        io_uring_prep_send(sqe, c->fd, addr, len, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_SEND, c->gen, c->slot));
    }
    c->zc_skip = false;
    c->send_chunk = ci;
    c->send_len = total;
    c->send_inflight = true;
    c->inflight++;
}

static void rs_ur_conn_cancel(rs_loop *loop, rs_conn *c) {
    if (c->inflight > 0 && c->fd >= 0) rs_ur_cancel_fd(loop->be, c->fd, RS_CX_CONN, c->slot);
    if (c->recv_armed) c->recv_cancel = true; /* covered by the cancel above */
}

static int rs_ur_conn_connect(rs_loop *loop, rs_conn *c, rs_err *err) {
    rs_uring *ur = loop->be;
    c->fd = socket(c->peer.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        rs_err_set(err, "socket: %s", strerror(errno));
        return -1;
    }
    struct io_uring_sqe *sqe = rs_ur_sqe(ur);
    io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&c->peer, c->peer_len);
    io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_CONNECT, c->gen, c->slot));
    c->inflight++;
    return 0;
}

static int rs_ur_watch_arm(rs_loop *loop, uint32_t wid) {
    rs_uring *ur = loop->be;
    rs_watch *w = &loop->watches[wid];
    struct io_uring_sqe *sqe = rs_ur_sqe(ur);
    io_uring_prep_poll_multishot(sqe, w->fd, w->events);
    io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_POLL, 0, wid));
    w->inflight++;
    w->armed = true;
    return 0;
}

static void rs_ur_watch_disarm(rs_loop *loop, uint32_t wid) {
    rs_uring *ur = loop->be;
    rs_watch *w = &loop->watches[wid];
    if (w->inflight == 0) {
        w->used = false;
        return;
    }
    if (w->cancel_pending) return;
    w->cancel_pending = true;
    rs_ur_cancel_ud(ur, rs_ur_ud(RS_UD_POLL, 0, wid), RS_CX_WATCH, wid);
}

/* ---- completions -------------------------------------------------------- */

static void rs_ur_on_recv(rs_loop *loop, rs_uring *ur, rs_conn *c, int32_t res, uint32_t flags) {
    bool more = flags & IORING_CQE_F_MORE;
    if (res > 0) {
        RS_ASSERT(flags & IORING_CQE_F_BUFFER);
        uint32_t bid = flags >> IORING_CQE_BUFFER_SHIFT;
        rs__conn_input(c, loop->recv_mem + (size_t)bid * loop->cfg.recv_buf_bytes, (size_t)res);
        rs_ur_buf_return(loop, ur, bid); /* bytes not consumed were copied out */
    } else if (res == 0) {
        rs__conn_input_end(c, 0);
    } else if (res == -ENOBUFS) {
        loop->stats.recv_enobufs++; /* ring ran dry: re-arm below, never close */
    } else if (res != -ECANCELED) {
        rs__conn_input_end(c, res);
    }
    if (!more) {
        c->inflight--;
        c->recv_armed = false;
        c->recv_cancel = false;
        if (res != 0 && rs__conn_want_read(c)) rs_ur_arm_recv(loop, c);
        rs__conn_check_finish(c);
    } else if (!c->recv_cancel && !rs__conn_want_read(c)) {
        /* still armed though unwanted (a cancel answered -EALREADY) */
        rs_ur_cancel_ud(ur, rs_ur_ud(RS_UD_RECV, c->gen, c->slot), RS_CX_RECV, c->slot);
        c->recv_cancel = true;
    }
}

static void rs_ur_after_send(rs_loop *loop, rs_conn *c) {
    if ((c->state == RS_CONN_OPEN || c->state == RS_CONN_DRAINING) && c->wq_head != RS_NONE &&
        !c->send_inflight)
        rs_ur_conn_flush(loop, c);
    rs__conn_check_finish(c);
}

static bool rs_ur_handle(rs_loop *loop, uint64_t ud, int32_t res, uint32_t flags) {
    rs_uring *ur = loop->be;
    uint32_t idx = (uint32_t)ud;
    uint32_t hi = (uint32_t)(ud >> 32) & 0xffffffu;
    bool more = flags & IORING_CQE_F_MORE;
    switch (ud >> 56) {
    case RS_UD_ACCEPT: {
        rs_listener *l = &loop->listeners[idx];
        if (res >= 0) {
            if (l->closing)
                close(res);
            else
                rs__listener_accepted(loop, idx, res);
        } else if (res != -ECANCELED) {
            RS_LOG_ONCE(RS_LOG_WARN, "io: accept: %s", strerror(-res));
        }
        if (!more) {
            l->inflight--;
            l->armed = false;
            if (l->closing) {
                if (l->inflight == 0) rs_ur_listener_done(l);
            } else {
                rs_ur_listener_arm(loop, idx);
            }
        } else if (l->closing && !l->cancel_pending) {
            rs_ur_listener_close(loop, idx);
        }
        break;
    }
    case RS_UD_RECV: {
        rs_conn *c = &loop->conns[idx];
        RS_ASSERT(c->state != RS_CONN_FREE && (c->gen & 0xffffffu) == hi);
        rs_ur_on_recv(loop, ur, c, res, flags);
        break;
    }
    case RS_UD_SEND: {
        rs_conn *c = &loop->conns[idx];
        RS_ASSERT(c->state != RS_CONN_FREE && c->send_inflight);
        c->inflight--;
        rs__conn_sent(c, res);
        rs_ur_after_send(loop, c);
        break;
    }
    case RS_UD_SENDZC: {
        rs_conn *c = &loop->conns[idx];
        RS_ASSERT(c->state != RS_CONN_FREE);
        if (flags & IORING_CQE_F_NOTIF) {
            rs__chunk_notif(loop, hi); /* the kernel is done with the chunk */
            c->inflight--;
            rs__conn_check_finish(c);
            break;
        }
        if (res == -ENOBUFS || res == -EAGAIN) {
            /* zero-copy refused (socket option memory): resend it plainly */
            RS_LOG_ONCE(RS_LOG_INFO, "io: SEND_ZC refused (%s): falling back to a copy",
                        strerror(-res));
            c->send_inflight = false;
            c->zc_skip = true;
        } else {
            rs__conn_sent(c, res);
        }
        if (!more) { /* no notification will follow */
            rs__chunk_notif(loop, hi);
            c->inflight--;
        }
        rs_ur_after_send(loop, c);
        break;
    }
    case RS_UD_CONNECT: {
        rs_conn *c = &loop->conns[idx];
        RS_ASSERT(c->state != RS_CONN_FREE);
        c->inflight--;
        rs__conn_connected(c, res);
        rs__conn_check_finish(c);
        break;
    }
    case RS_UD_POLL: {
        rs_watch *w = &loop->watches[idx];
        if (res >= 0 && w->active) w->fn(loop, w->fd, (uint32_t)res, w->arg);
        if (!more) {
            w->inflight--;
            w->armed = false;
            if (w->active)
                rs_ur_watch_arm(loop, idx);
            else if (w->inflight == 0)
                w->used = false;
        } else if (!w->active && !w->cancel_pending) {
            rs_ur_watch_disarm(loop, idx);
        }
        break;
    }
    case RS_UD_WAKE: {
        ssize_t rc = read(ur->evfd, &ur->evbuf, sizeof(ur->evbuf));
        if (rc > 0) loop->stats.wake_eventfd++;
        if (!more) {
            ur->misc_inflight--;
            ur->wake_armed = false;
            if (!ur->stopping) rs_ur_arm_wake(ur);
        }
        break;
    }
    case RS_UD_MSG:
        loop->stats.wake_msg_ring++; /* wake_pending is set; the core drains the posts */
        break;
    case RS_UD_MSGSRC:
        ur->misc_inflight--;
        if (res < 0) RS_LOG_ONCE(RS_LOG_WARN, "io: MSG_RING: %s", strerror(-res));
        break;
    case RS_UD_CANCEL:
        ur->misc_inflight--;
        if (hi == RS_CX_WATCH)
            loop->watches[idx].cancel_pending = false;
        else if (hi == RS_CX_LISTENER)
            loop->listeners[idx].cancel_pending = false;
        else if ((hi == RS_CX_RECV || hi == RS_CX_CONN) && loop->conns[idx].recv_armed)
            loop->conns[idx].recv_cancel = false;
        break;
    default: RS_ASSERT(!"unknown completion type");
    }
    return true;
}

static int rs_ur_wait(rs_loop *loop, uint64_t timeout_ns) {
    rs_uring *ur = loop->be;
    struct io_uring_cqe *cqe = NULL;
    int rc;
    if (timeout_ns == UINT64_MAX) {
        rc = io_uring_submit_and_wait(&ur->ring, 1);
    } else {
        struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000ull),
                                       .tv_nsec = (long long)(timeout_ns % 1000000000ull)};
        rc = io_uring_submit_and_wait_timeout(&ur->ring, &cqe, 1, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        RS_ERROR("io: io_uring_submit_and_wait: %s", strerror(-rc));
        return -1;
    }
    loop->now_ns = rs_now_ns();
    rs_ur_reap(loop, ur);
    return 0;
}

/* From another thread. A uring loop thread rings the target with MSG_RING
 * from its own ring (no syscall into the target's ring, which only its
 * owner may enter); anyone else writes the target's eventfd. */
static void rs_ur_wake(rs_loop *target) {
    rs_uring *tu = target->be;
    rs_loop *self = rs__current_loop();
    if (self && self != target && self->backend == RS_IO_URING &&
        pthread_equal(self->owner, pthread_self()) && tu->msg_ring_ok) {
        rs_uring *su = self->be;
        struct io_uring_sqe *sqe = rs_ur_sqe(su);
        io_uring_prep_msg_ring(sqe, tu->ring.ring_fd, 0, rs_ur_ud(RS_UD_MSG, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, rs_ur_ud(RS_UD_MSGSRC, 0, 0));
        su->misc_inflight++;
        if (!self->in_dispatch) io_uring_submit(&su->ring);
        return;
    }
    uint64_t one = 1;
    ssize_t rc = write(tu->evfd, &one, sizeof(one));
    (void)rc;
}

const rs_backend_ops rs_uring_backend = {
    .init = rs_ur_init,
    .fini = rs_ur_fini,
    .listener_arm = rs_ur_listener_arm,
    .listener_close = rs_ur_listener_close,
    .conn_open = rs_ur_conn_open,
    .conn_read_update = rs_ur_conn_read_update,
    .conn_flush = rs_ur_conn_flush,
    .conn_cancel = rs_ur_conn_cancel,
    .conn_connect = rs_ur_conn_connect,
    .watch_arm = rs_ur_watch_arm,
    .watch_disarm = rs_ur_watch_disarm,
    .wait = rs_ur_wait,
    .wake = rs_ur_wake,
};

/* loop_epoll.c — the epoll backend: readiness instead of completions.
 *
 * Used where io_uring is unavailable (seccomp, io_uring_disabled, old
 * kernels) or forced with --io-backend=epoll. Same semantics as the uring
 * backend: receives land in a loop-wide scratch buffer (the first receive
 * buffers of the slab) and go through the same rs__conn_input path; sends
 * write the queued chunks with one sendmsg per flush and wait for EPOLLOUT
 * when the socket is full. Level-triggered, so pausing a reader is just
 * dropping EPOLLIN from its interest set. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "io/loop_internal.h"

enum { RS_EP_LISTENER = 1, RS_EP_CONN = 2, RS_EP_WATCH = 3, RS_EP_WAKE = 4 };
#define RS_EP_EVENTS 256
#define RS_EP_REGISTERED (1u << 31)
#define RS_EP_IOV 64

typedef struct rs_epoll {
    int epfd;
    int evfd;
    size_t scratch_bytes;
    struct epoll_event events[RS_EP_EVENTS];
} rs_epoll;

static uint64_t rs_ep_ud(uint64_t type, uint32_t gen, uint32_t idx) {
    return (type << 56) | ((uint64_t)(gen & 0xffffffu) << 32) | idx;
}

static int rs_ep_init(rs_loop *loop, rs_err *err) {
    rs_epoll *ep = calloc(1, sizeof(*ep));
    if (!ep) {
        rs_err_set(err, "io: epoll: out of memory");
        return -1;
    }
    ep->evfd = -1;
    ep->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ep->epfd < 0) {
        rs_err_set(err, "io: epoll_create1: %s", strerror(errno));
        free(ep);
        return -1;
    }
    ep->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = rs_ep_ud(RS_EP_WAKE, 0, 0)};
    if (ep->evfd < 0 || epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->evfd, &ev) != 0) {
        rs_err_set(err, "io: epoll: eventfd: %s", strerror(errno));
        if (ep->evfd >= 0) close(ep->evfd);
        close(ep->epfd);
        free(ep);
        return -1;
    }
    /* Receive into up to 256 KiB of the slab per read: fewer syscalls. */
    ep->scratch_bytes = loop->recv_mem_bytes < 262144 ? loop->recv_mem_bytes : 262144;
    loop->be = ep;
    return 0;
}

static void rs_ep_fini(rs_loop *loop) {
    rs_epoll *ep = loop->be;
    if (!ep) return;
    close(ep->evfd);
    close(ep->epfd);
    free(ep);
    loop->be = NULL;
}

static int rs_ep_listener_arm(rs_loop *loop, uint32_t lid) {
    rs_epoll *ep = loop->be;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = rs_ep_ud(RS_EP_LISTENER, 0, lid)};
    return epoll_ctl(ep->epfd, EPOLL_CTL_ADD, loop->listeners[lid].fd, &ev) == 0 ? 0 : -errno;
}

static void rs_ep_listener_close(rs_loop *loop, uint32_t lid) {
    rs_epoll *ep = loop->be;
    rs_listener *l = &loop->listeners[lid];
    epoll_ctl(ep->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    close(l->fd);
    l->fd = -1;
    l->used = false;
    l->closing = false;
}

static void rs_ep_update(rs_loop *loop, rs_conn *c) {
    rs_epoll *ep = loop->be;
    if (c->fd < 0 || c->state == RS_CONN_CLOSING || c->state == RS_CONN_FREE) return;
    uint32_t want = 0;
    if (rs__conn_want_read(c)) want |= EPOLLIN | EPOLLRDHUP;
    if (c->want_out || c->state == RS_CONN_CONNECTING) want |= EPOLLOUT;
    if ((c->ev_mask & RS_EP_REGISTERED) && (c->ev_mask & ~RS_EP_REGISTERED) == want) return;
    struct epoll_event ev = {.events = want, .data.u64 = rs_ep_ud(RS_EP_CONN, c->gen, c->slot)};
    int op = (c->ev_mask & RS_EP_REGISTERED) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ep->epfd, op, c->fd, &ev) != 0) {
        rs__conn_abort(c, -errno);
        return;
    }
    c->ev_mask = want | RS_EP_REGISTERED;
}

static void rs_ep_conn_open(rs_loop *loop, rs_conn *c) {
    rs_ep_update(loop, c);
}
static void rs_ep_conn_read_update(rs_loop *loop, rs_conn *c) {
    rs_ep_update(loop, c);
}

/* Writes as much of the queue as the socket takes, one sendmsg per round. */
static void rs_ep_conn_flush(rs_loop *loop, rs_conn *c) {
    while (c->wq_head != RS_NONE && (c->state == RS_CONN_OPEN || c->state == RS_CONN_DRAINING)) {
        struct iovec iov[RS_EP_IOV];
        int n = 0;
        for (uint32_t i = c->wq_head; i != RS_NONE && n < RS_EP_IOV; i = loop->chunks[i].next) {
            rs_chunk *ch = &loop->chunks[i];
            iov[n].iov_base = rs__chunk_mem(loop, i) + ch->sent;
            iov[n].iov_len = ch->len - ch->sent;
            n++;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->want_out = true;
                rs_ep_update(loop, c);
                return;
            }
            rs__conn_sent(c, -errno);
            return;
        }
        rs__conn_sent(c, w);
    }
    if (c->want_out) {
        c->want_out = false;
        rs_ep_update(loop, c);
    }
}

static void rs_ep_conn_cancel(rs_loop *loop, rs_conn *c) {
    rs_epoll *ep = loop->be;
    if (c->fd >= 0 && (c->ev_mask & RS_EP_REGISTERED))
        epoll_ctl(ep->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->ev_mask = 0;
}

static int rs_ep_conn_connect(rs_loop *loop, rs_conn *c, rs_err *err) {
    c->fd = socket(c->peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        rs_err_set(err, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&c->peer, c->peer_len) != 0 && errno != EINPROGRESS) {
        rs_err_set(err, "%s", strerror(errno));
        return -1;
    }
    /* Completion (or failure) is reported by EPOLLOUT, even when immediate. */
    rs_ep_update(loop, c);
    return c->state == RS_CONN_CONNECTING ? 0 : -1;
}

static int rs_ep_watch_arm(rs_loop *loop, uint32_t wid) {
    rs_epoll *ep = loop->be;
    rs_watch *w = &loop->watches[wid];
    struct epoll_event ev = {.events = w->events, .data.u64 = rs_ep_ud(RS_EP_WATCH, 0, wid)};
    return epoll_ctl(ep->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0 ? 0 : -errno;
}

static void rs_ep_watch_disarm(rs_loop *loop, uint32_t wid) {
    rs_epoll *ep = loop->be;
    rs_watch *w = &loop->watches[wid];
    epoll_ctl(ep->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->used = false;
}

static void rs_ep_accept(rs_loop *loop, uint32_t lid) {
    rs_listener *l = &loop->listeners[lid];
    for (int i = 0; i < 64 && l->used && !l->closing; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                RS_LOG_ONCE(RS_LOG_WARN, "io: accept: %s", strerror(errno));
            return;
        }
        rs__listener_accepted(loop, lid, fd);
    }
}

static void rs_ep_conn_event(rs_loop *loop, rs_conn *c, uint32_t ev) {
    rs_epoll *ep = loop->be;
    if (c->state == RS_CONN_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) soerr = errno;
        rs__conn_connected(c, -soerr);
        if (c->state == RS_CONN_OPEN) rs_ep_update(loop, c);
        return;
    }
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && rs__conn_want_read(c)) {
        /* A few reads per event keep one busy peer from starving the rest;
         * level triggering brings us back for what is left. */
        for (int i = 0; i < 4 && rs__conn_want_read(c); i++) {
            ssize_t n = recv(c->fd, loop->recv_mem, ep->scratch_bytes, MSG_DONTWAIT);
            if (n > 0) {
                rs__conn_input(c, loop->recv_mem, (size_t)n);
                if ((size_t)n < ep->scratch_bytes) break;
            } else if (n == 0) {
                rs__conn_input_end(c, 0);
                break;
            } else {
                if (errno == EINTR) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) rs__conn_input_end(c, -errno);
                break;
            }
        }
    } else if ((ev & (EPOLLHUP | EPOLLERR)) && c->state != RS_CONN_CLOSING) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        rs__conn_abort(c, soerr ? -soerr : -ECONNRESET);
        return;
    }
    if ((ev & EPOLLOUT) && c->want_out &&
        (c->state == RS_CONN_OPEN || c->state == RS_CONN_DRAINING)) {
        c->want_out = false;
        rs_ep_conn_flush(loop, c);
        if (!c->want_out) rs_ep_update(loop, c);
    }
}

static int rs_ep_wait(rs_loop *loop, uint64_t timeout_ns) {
    rs_epoll *ep = loop->be;
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
        ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
        tsp = &ts;
    }
    int n = epoll_pwait2(ep->epfd, ep->events, RS_EP_EVENTS, tsp, NULL);
    if (n < 0) return errno == EINTR ? 0 : -1;
    loop->now_ns = rs_now_ns();
    for (int i = 0; i < n; i++) {
        uint64_t ud = ep->events[i].data.u64;
        uint32_t ev = ep->events[i].events;
        uint32_t idx = (uint32_t)ud, gen = (uint32_t)(ud >> 32) & 0xffffffu;
        switch (ud >> 56) {
        case RS_EP_WAKE: {
            uint64_t v;
            if (read(ep->evfd, &v, sizeof(v)) > 0) loop->stats.wake_eventfd++;
            break;
        }
        case RS_EP_LISTENER: rs_ep_accept(loop, idx); break;
        case RS_EP_WATCH: {
            rs_watch *w = &loop->watches[idx];
            if (w->used && w->active) w->fn(loop, w->fd, ev, w->arg);
            break;
        }
        case RS_EP_CONN: {
            rs_conn *c = &loop->conns[idx];
            if (c->state == RS_CONN_FREE || c->state == RS_CONN_CLOSING ||
                (c->gen & 0xffffffu) != gen)
                break;
            rs_ep_conn_event(loop, c, ev);
            break;
        }
        }
    }
    return 0;
}

static void rs_ep_wake(rs_loop *target) {
    rs_epoll *ep = target->be;
    uint64_t one = 1;
    ssize_t rc = write(ep->evfd, &one, sizeof(one));
    (void)rc; /* EAGAIN: the counter is already non-zero, the loop will wake */
}

const rs_backend_ops rs_epoll_backend = {
    .init = rs_ep_init,
    .fini = rs_ep_fini,
    .listener_arm = rs_ep_listener_arm,
    .listener_close = rs_ep_listener_close,
    .conn_open = rs_ep_conn_open,
    .conn_read_update = rs_ep_conn_read_update,
    .conn_flush = rs_ep_conn_flush,
    .conn_cancel = rs_ep_conn_cancel,
    .conn_connect = rs_ep_conn_connect,
    .watch_arm = rs_ep_watch_arm,
    .watch_disarm = rs_ep_watch_disarm,
    .wait = rs_ep_wait,
    .wake = rs_ep_wake,
};

/* loop_internal.h — what loop.c (the backend-neutral core) shares with the
 * io_uring and epoll backends. Not part of the public API.
 *
 * Split of work: loop.c owns everything both backends need the same way
 * (connection table and generation-tagged ids, timer heap, post queue, read
 * assembly, write queues and backpressure, the iteration order); a backend
 * owns only how bytes move (submit/wait/dispatch) and reports back through
 * the rs__conn_* / rs__listener_* / rs__watch_* hooks below. */
#ifndef RS_LOOP_INTERNAL_H
#define RS_LOOP_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "io/loop.h"

#define RS_LOOP_MAX_WATCHES 32
#define RS_NONE UINT32_MAX
#define RS_SEND_IOV 32 /* chunks per send operation (128 KiB of 4 KiB chunks) */

typedef enum rs_conn_state {
    RS_CONN_FREE = 0,
    RS_CONN_CONNECTING, /* outbound connect in progress */
    RS_CONN_OPEN,
    RS_CONN_DRAINING, /* rs_conn_close or peer EOF: flush the queue, then close */
    RS_CONN_CLOSING,  /* cancelled; waits for in-flight operations to finish */
} rs_conn_state;

/* One fixed-size piece of the send slab; a connection's write queue is a
 * list of them. [sent, len) is what remains to be sent. */
typedef struct rs_chunk {
    uint32_t next;
    uint32_t sent;
    uint32_t len;
    uint16_t zc_pending; /* SEND_ZC notifications not yet reaped */
    uint8_t detached;    /* left its queue while notifications were pending */
} rs_chunk;

struct rs_conn {
    rs_loop *loop;
    uint32_t slot;
    uint32_t gen;
    int fd;
    rs_conn_state state;
    const rs_conn_ops *ops;
    void *udata;
    void *listener_udata;
    bool accepted; /* from a listener: counted in loop->accepted_open */
    int close_err;

    /* read side */
    uint8_t *rbuf;   /* assembly buffer: pool block or heap */
    uint32_t rblock; /* pool block index, RS_NONE when heap or none */
    uint64_t rlen;   /* unconsumed bytes in rbuf */
    uint64_t rcap;
    bool paused_user; /* rs_conn_pause_read */
    bool paused_bp;   /* write queue over the limit */
    bool paused_pool; /* send slab was empty when it tried to send */
    bool read_eof;
    bool recv_armed;  /* backend: receive operation outstanding / registered */
    bool recv_cancel; /* backend: cancel of the receive requested */

    /* write side */
    uint32_t wq_head, wq_tail; /* chunk indices, RS_NONE when empty */
    uint64_t wq_bytes;
    bool send_inflight;
    bool want_out;       /* epoll: waiting for EPOLLOUT */
    bool zc_skip;        /* uring: SEND_ZC refused (ENOBUFS): next send is a plain one */
    uint32_t send_chunk; /* head chunk when the send was submitted */
    uint64_t send_len;   /* bytes in the in-flight send */
    /* uring: a queue of several chunks goes out as one SENDMSG */
    struct iovec siov[RS_SEND_IOV];
    struct msghdr smsg;

    uint32_t inflight; /* backend operations whose last completion has not arrived */
    uint32_t ev_mask;  /* epoll: registered interest */
    bool in_flush, in_pending;
    uint32_t flush_next, pending_next;
    uint32_t pool_wait_next;
    bool in_pool_wait;
    /* Closed while still linked in the pending/flush/pool-wait lists: the slot
     * goes back to the free list only once every list has let go of it
     * (reusing a linked slot would corrupt the list: a self-cycle). */
    bool free_deferred;

    uint64_t last_active_ns;
    rs_timer idle_timer;
    struct sockaddr_storage peer;
    socklen_t peer_len;
};

typedef struct rs_listener {
    int fd;
    uint16_t port;
    bool used;
    bool closing;
    bool armed;
    bool cancel_pending; /* backend: a cancel is outstanding */
    uint32_t inflight;
    const rs_conn_ops *ops;
    void *udata;
    rs_accept_fn accept_fn; /* may take an accepted fd first (NULL: none) */
    void *accept_arg;
} rs_listener;

typedef struct rs_watch {
    int fd;
    uint32_t events;
    rs_fd_fn fn;
    void *arg;
    bool used;   /* slot taken (until its last completion) */
    bool active; /* watched (false once unwatched) */
    bool armed;
    bool cancel_pending; /* backend: a removal is outstanding */
    uint32_t inflight;
} rs_watch;

typedef struct rs_post_msg {
    rs_post_fn fn;
    void *arg;
} rs_post_msg;

typedef struct rs_backend_ops {
    int (*init)(rs_loop *loop, rs_err *err);
    void (*fini)(rs_loop *loop);
    int (*listener_arm)(rs_loop *loop, uint32_t lid);
    void (*listener_close)(rs_loop *loop, uint32_t lid);
    /* connection became OPEN (accepted, or connect done): start receiving */
    void (*conn_open)(rs_loop *loop, rs_conn *c);
    /* want-read changed (pause / resume): arm or stop receiving */
    void (*conn_read_update)(rs_loop *loop, rs_conn *c);
    /* queue non-empty and no send in flight: start one */
    void (*conn_flush)(rs_loop *loop, rs_conn *c);
    /* cancel everything on c; the core finishes the close once inflight is 0 */
    void (*conn_cancel)(rs_loop *loop, rs_conn *c);
    int (*conn_connect)(rs_loop *loop, rs_conn *c, rs_err *err);
    int (*watch_arm)(rs_loop *loop, uint32_t wid);
    void (*watch_disarm)(rs_loop *loop, uint32_t wid);
    /* submit, wait up to timeout_ns (UINT64_MAX: forever), dispatch */
    int (*wait)(rs_loop *loop, uint64_t timeout_ns);
    /* wake target from another thread (post / stop) */
    void (*wake)(rs_loop *target);
} rs_backend_ops;

extern const rs_backend_ops rs_uring_backend;
extern const rs_backend_ops rs_epoll_backend;

struct rs_loop {
    rs_loop_config cfg;
    rs_io_backend backend;
    const rs_backend_ops *ops;
    void *be; /* backend state */
    pthread_t owner;
    uint64_t now_ns;
    void *udata;
    rs_tick_fn tick_fn;
    void *tick_arg;
    rs_loop_stats stats;
    _Atomic uint32_t accepted_open; /* accepted connections open; read by other threads */
    bool destroying;
    bool in_dispatch;

    rs_conn *conns;
    uint32_t *conn_free; /* stack of free slots */
    uint32_t conn_free_n;

    rs_listener *listeners;
    rs_watch watches[RS_LOOP_MAX_WATCHES];

    /* send slab */
    uint8_t *send_mem;
    size_t send_mem_bytes;
    rs_chunk *chunks;
    uint32_t chunk_free; /* free list head */
    uint32_t chunk_free_n;

    /* receive slab (provided buffers; epoll uses the first buffer as scratch) */
    uint8_t *recv_mem;
    size_t recv_mem_bytes;

    /* read assembly pool */
    uint8_t *asm_mem;
    size_t asm_mem_bytes;
    uint32_t asm_block_bytes;
    uint32_t *asm_free;
    uint32_t asm_free_n;

    /* timers */
    rs_timer **heap;
    uint32_t heap_n, heap_cap;
    uint32_t user_timers; /* armed timers other than idle timers */

    /* per-iteration work lists (intrusive, by slot) */
    uint32_t flush_head;
    uint32_t pending_head;
    uint32_t pool_wait_head;

    /* cross-thread posts */
    pthread_mutex_t post_mu;
    rs_post_msg *posts;
    uint32_t post_head, post_n;
    atomic_bool wake_pending;
    atomic_bool stop;
};

/* Hooks the backends call. */
rs_conn *rs__conn_alloc(rs_loop *loop);
/* New accepted socket on listener lid; takes ownership of fd. */
void rs__listener_accepted(rs_loop *loop, uint32_t lid, int fd);
/* Bytes arrived on c (valid during the call). */
void rs__conn_input(rs_conn *c, const uint8_t *data, size_t len);
/* Peer closed (0) or receive error (-errno). */
void rs__conn_input_end(rs_conn *c, int err);
/* n bytes from the head of the queue were accepted by the kernel (n > 0; they
 * may span chunks), or the send failed (n <= 0: -errno, 0 = EPIPE). */
void rs__conn_sent(rs_conn *c, ssize_t n);
/* A zero-copy notification for chunk arrived. */
void rs__chunk_notif(rs_loop *loop, uint32_t chunk);
void rs__conn_connected(rs_conn *c, int err);
/* Closes c now (no flush): cancels operations; on_close runs once they are done. */
void rs__conn_abort(rs_conn *c, int err);
/* Re-checks whether a CLOSING connection can be finished (inflight == 0). */
void rs__conn_check_finish(rs_conn *c);
bool rs__conn_want_read(const rs_conn *c);
/* The pending posts are run on the loop (called after a wake-up). */
void rs__loop_drain_posts(rs_loop *loop);
static inline uint8_t *rs__chunk_mem(rs_loop *loop, uint32_t chunk) {
    return loop->send_mem + (size_t)chunk * loop->cfg.send_buf_bytes;
}
/* The backend decision without the probe (unit-tested on its own):
 * probe_rc is 0 or the probe's -errno (-EOPNOTSUPP: missing opcode). */
int rs_io_backend_decide(rs_io_backend requested, int probe_rc, const char *probe_why,
                         rs_io_backend *out, rs_err *err);
rs_loop *rs__current_loop(void);
/* Tests only: behave as if registering send buffers failed (ENOMEM), to
 * cover the unregistered-send fallback where memlock limits do not apply. */
extern bool rs__uring_refuse_registration;
int rs__resolve_addr(const char *host, uint16_t port, struct sockaddr_storage *out,
                     socklen_t *out_len, rs_err *err);

#endif

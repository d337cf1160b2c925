/* loop.h — the per-thread event loop: io_uring first, epoll behind the same API.
 *
 * One rs_loop per thread, created and run on that thread (io_uring is set up
 * with SINGLE_ISSUER | DEFER_TASKRUN, so only the owning thread may submit).
 * Shared-nothing: a loop's connections, timers and buffers belong to it; other
 * threads talk to it only through rs_loop_post().
 *
 * Memory is sized at creation from rs_loop_config (connection table, provided
 * receive buffers, registered send buffers, timer heap, post queue); nothing
 * on the data path allocates. Every queue is bounded:
 *   - receive: a connection whose unconsumed bytes would exceed
 *     conn_read_max_bytes is closed (after the protocol layer had its chance
 *     to send an error);
 *   - send: when a connection's queued bytes exceed conn_write_queue_max_bytes
 *     the loop stops reading from that peer until the queue drains below half
 *     (backpressure instead of memory growth);
 *   - timers: at most max_timers armed at once;
 *   - cross-thread posts: at most post_queue_capacity pending per loop.
 *
 * Callbacks run on the loop thread. A connection pointer is valid until its
 * on_close returns; code that answers later (after a batch returns from a
 * worker) keeps the rs_conn_id and looks the connection up again. */
#ifndef RS_LOOP_H
#define RS_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "engine/common/err.h"

typedef struct rs_loop rs_loop;
typedef struct rs_conn rs_conn;
typedef struct rs_timer rs_timer;
/* Generation-tagged connection handle: (slot << 32) | generation. 0 = none. */
typedef uint64_t rs_conn_id;

typedef enum rs_io_backend {
    RS_IO_AUTO = 0,
    RS_IO_URING = 1,
    RS_IO_EPOLL = 2,
} rs_io_backend;

const char *rs_io_backend_name(rs_io_backend backend);
/* "auto" | "uring" | "epoll"; -1 on anything else. */
int rs_io_backend_parse(const char *name, rs_io_backend *out);
/* Decides once per process. AUTO probes io_uring (setup + opcode probe + a
 * NOP round trip) and picks epoll only when io_uring is unavailable
 * (EPERM/ENOSYS/missing opcodes), printing one line that says so. URING
 * fails (-1, err) when the probe fails; EPOLL always succeeds. */
int rs_io_backend_resolve(rs_io_backend requested, rs_io_backend *out, rs_err *err);

typedef struct rs_loop_config {
    rs_io_backend backend;              /* resolved or AUTO */
    uint32_t max_conns;                 /* connection table slots */
    uint32_t max_listeners;
    uint32_t recv_buf_bytes;            /* each provided receive buffer */
    uint32_t recv_buf_count;            /* power of two, <= 32768 */
    uint32_t send_buf_bytes;            /* each registered send buffer */
    uint32_t send_buf_count;
    uint64_t conn_read_max_bytes;       /* unconsumed bytes kept per connection */
    uint64_t conn_write_queue_max_bytes;/* backpressure threshold per connection */
    uint32_t idle_timeout_ms;           /* 0: connections never time out */
    uint32_t send_zc_threshold_bytes;   /* 0: never use SEND_ZC */
    uint32_t max_timers;
    uint32_t post_queue_capacity;       /* cross-thread messages pending */
    int numa_node;                      /* -1: any; else buffers come from this node */
    /* Read assembly (bytes that span receive buffers): a preallocated pool of
     * read_asm_count blocks of read_asm_bytes; a connection holds a block only
     * while it has unconsumed bytes. Larger backlogs move to a per-connection
     * heap buffer grown by doubling up to conn_read_max_bytes and kept until the
     * connection closes (so a stream of large frames allocates once). */
    uint32_t read_asm_bytes;
    uint32_t read_asm_count;
    /* Outbound connects not done after this fail with -ETIMEDOUT; 0: never. */
    uint32_t connect_timeout_ms;
} rs_loop_config;

void rs_loop_config_default(rs_loop_config *cfg);
/* Checks sizes and limits; -1 with a message naming the field. */
int rs_loop_config_check(const rs_loop_config *cfg, rs_err *err);

typedef struct rs_conn_ops {
    /* A connection was accepted on a listener. Return 0 to keep, -1 to refuse. */
    int (*on_open)(rs_conn *c);
    /* Outbound connect finished: err 0 or -errno (on failure on_close follows). */
    void (*on_connect)(rs_conn *c, int err);
    /* data..data+len: all unconsumed bytes, in order, contiguous. Return the
     * count consumed (0..len); the rest is presented again with more data.
     * Return -1 to close (queued bytes are flushed first; on_close gets
     * -EPROTO). The memory is valid during the call only: a frame
     * that lies inside one receive buffer is passed in place (no copy); bytes
     * that span buffers are assembled in a per-connection buffer. */
    ssize_t (*on_data)(rs_conn *c, const uint8_t *data, size_t len);
    /* The write queue drained below half of conn_write_queue_max_bytes after
     * having been above it (reading has resumed). Optional. */
    void (*on_drain)(rs_conn *c);
    /* Closed by peer, error, idle timeout or rs_conn_close. err: 0 or -errno
     * (-ETIMEDOUT for idle). The connection is invalid after this returns. */
    void (*on_close)(rs_conn *c, int err);
} rs_conn_ops;

/* Lifecycle. Create and run on the same thread. */
rs_loop *rs_loop_create(const rs_loop_config *cfg, rs_err *err);
/* Runs until rs_loop_stop(); returns 0, or -1 on a fatal loop error. */
int rs_loop_run(rs_loop *loop);
/* Runs one iteration (submit, wait up to timeout_ms, dispatch). For tests. */
int rs_loop_run_once(rs_loop *loop, uint32_t timeout_ms);
/* Thread-safe: asks the loop to return from rs_loop_run. */
void rs_loop_stop(rs_loop *loop);
/* Closes listeners and connections, cancels every operation, reaps every
 * completion (and zero-copy notification), then frees all memory. */
void rs_loop_destroy(rs_loop *loop);
rs_io_backend rs_loop_backend(const rs_loop *loop);
/* Monotonic time cached at the start of the current iteration. */
uint64_t rs_loop_now_ns(const rs_loop *loop);
void rs_loop_set_udata(rs_loop *loop, void *udata);
void *rs_loop_udata(const rs_loop *loop);
/* Called once per iteration after completions are dispatched and before the
 * loop blocks: the place to flush work gathered during the iteration. */
typedef void (*rs_tick_fn)(rs_loop *loop, void *arg);
void rs_loop_set_tick(rs_loop *loop, rs_tick_fn fn, void *arg);

/* Listeners. port 0 picks a free port (see rs_loop_listen_port). reuseport
 * sets SO_REUSEPORT so one listener per loop can share a port. Returns a
 * listener id >= 0, or -1 with err. New connections get ops and udata. */
int rs_loop_listen(rs_loop *loop, const char *host, uint16_t port, bool reuseport,
                   const rs_conn_ops *ops, void *udata, rs_err *err);
uint16_t rs_loop_listen_port(const rs_loop *loop, int listener_id);
void rs_loop_listen_close(rs_loop *loop, int listener_id);
/* Sees each socket the listener accepts before it becomes a connection:
 * returning true takes ownership of fd (e.g. to hand it to another loop's
 * rs_loop_adopt); false lets this loop serve it as usual. */
typedef bool (*rs_accept_fn)(rs_loop *loop, int listener_id, int fd, void *arg);
void rs_loop_listen_set_accept_hook(rs_loop *loop, int listener_id, rs_accept_fn fn, void *arg);
/* Serves fd as if listener_id of this loop had accepted it (its ops and
 * udata; the accept hook is not called). Loop thread only. Takes ownership
 * of fd: closes it and returns -1 when the listener is gone or closing, or
 * the connection table is full. */
int rs_loop_adopt(rs_loop *loop, int listener_id, int fd);
/* Accepted connections open on the loop now; any thread may read it. */
uint32_t rs_loop_accepted_open(const rs_loop *loop);

/* Outbound connection (non-blocking; on_connect reports the result). host
 * must be a numeric address: a loop thread never waits on DNS. */
rs_conn *rs_loop_connect(rs_loop *loop, const char *host, uint16_t port, const rs_conn_ops *ops,
                         void *udata, rs_err *err);
/* True for a numeric IPv4 or IPv6 address. */
bool rs_host_is_numeric(const char *host);
/* Resolves a host name (or address) to numeric text: the first IPv4 address
 * getaddrinfo gives, else its first address. Blocking: for start-up and configuration, never on a
 * loop thread. Returns 0, or -1 with "address '<host>': <why>". */
int rs_resolve_host(const char *host, char *out, size_t out_bytes, rs_err *err);

/* Connections. */
rs_conn_id rs_conn_get_id(const rs_conn *c);
rs_conn *rs_loop_conn(rs_loop *loop, rs_conn_id id); /* NULL when gone */
rs_loop *rs_conn_loop(const rs_conn *c);
void *rs_conn_udata(const rs_conn *c);
void rs_conn_set_udata(rs_conn *c, void *udata);
/* Listener udata for accepted connections (NULL for outbound). */
void *rs_conn_listener_udata(const rs_conn *c);
int rs_conn_fd(const rs_conn *c);
/* "127.0.0.1:54321" */
void rs_conn_peer_name(const rs_conn *c, char *out, size_t out_bytes);
/* Queues bytes (copied into send buffers; one send in flight per socket,
 * short sends resumed). Returns 0, -ENOBUFS when the queue holds more than
 * twice conn_write_queue_max_bytes or the loop's send slab cannot hold len
 * (nothing queued; in the second case reading from c also pauses until a
 * quarter of the slab is free again), -EPIPE when closing. Sending is allowed
 * while an outbound connect is pending (flushed once connected). */
int rs_conn_send(rs_conn *c, const void *data, size_t len);
int rs_conn_sendv(rs_conn *c, const struct iovec *iov, int iovcnt);
/* Bytes queued and not yet acknowledged by the kernel. */
uint64_t rs_conn_write_queued(const rs_conn *c);
/* Stops / resumes delivering on_data (the protocol layer's own backpressure). */
void rs_conn_pause_read(rs_conn *c);
void rs_conn_resume_read(rs_conn *c);
/* Flushes queued bytes, then closes. on_close runs later on the loop. */
void rs_conn_close(rs_conn *c);
/* Closes now, dropping queued bytes; on_close (later) gets err, e.g.
 * -ETIMEDOUT from a caller's deadline timer. */
void rs_conn_abort(rs_conn *c, int err);

/* Timers (intrusive: the caller owns the memory; no allocation). */
typedef void (*rs_timer_fn)(rs_loop *loop, rs_timer *t, void *arg);
struct rs_timer {
    uint64_t deadline_ns;
    rs_timer_fn fn;
    void *arg;
    uint32_t heap_index; /* UINT32_MAX when not armed */
};
void rs_timer_init(rs_timer *t, rs_timer_fn fn, void *arg);
/* (Re)arms t to fire once after delay_us. Returns 0, -ENOSPC when max_timers are armed. */
int rs_loop_timer_arm(rs_loop *loop, rs_timer *t, uint64_t delay_us);
void rs_loop_timer_cancel(rs_loop *loop, rs_timer *t);
static inline bool rs_timer_armed(const rs_timer *t) { return t->heap_index != UINT32_MAX; }

/* Cross-thread: runs fn(loop, arg) on target's thread. Safe from any thread.
 * Wakes the target (IORING_OP_MSG_RING from a uring loop thread, an eventfd
 * otherwise). Returns 0, or -EAGAIN when the target's queue is full. */
typedef void (*rs_post_fn)(rs_loop *loop, void *arg);
int rs_loop_post(rs_loop *target, rs_post_fn fn, void *arg);

/* Watches a foreign fd (signalfd, eventfd, pipe) for poll events (POLLIN...);
 * persistent until unwatched. At most 32 per loop. */
typedef void (*rs_fd_fn)(rs_loop *loop, int fd, uint32_t revents, void *arg);
int rs_loop_watch_fd(rs_loop *loop, int fd, uint32_t events, rs_fd_fn fn, void *arg);
void rs_loop_unwatch_fd(rs_loop *loop, int fd);

typedef struct rs_loop_stats {
    uint64_t conns_open;
    uint64_t conns_accepted;
    uint64_t conns_closed;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t recv_enobufs;     /* provided buffer ring ran dry */
    uint64_t read_paused;      /* times backpressure paused a peer */
    uint64_t iterations;
    uint64_t wake_msg_ring; /* cross-thread wake-ups that arrived by MSG_RING */
    uint64_t wake_eventfd;  /* ... and by the eventfd */
} rs_loop_stats;
void rs_loop_get_stats(const rs_loop *loop, rs_loop_stats *out);

#endif

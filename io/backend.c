/* backend.c — choosing between io_uring and epoll, once per process.
 *
 * The probe mirrors what a loop needs: a ring can be set up, the kernel knows
 * every opcode the uring backend submits, a provided-buffer ring can be
 * registered, and a NOP makes the round trip. Only "io_uring is not there"
 * answers (EPERM from seccomp or io_uring_disabled, ENOSYS, missing opcodes)
 * send AUTO to epoll; anything else (ENOMEM...) is an error worth seeing. */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/common/log.h"
#include "engine/common/opts.h"
#include "io/loop_internal.h"

const char *rs_io_backend_name(rs_io_backend backend) {
    switch (backend) {
    case RS_IO_AUTO: return "auto";
    case RS_IO_URING: return "uring";
    case RS_IO_EPOLL: return "epoll";
    }
    return "?";
}

int rs_io_backend_parse(const char *name, rs_io_backend *out) {
    if (strcmp(name, "auto") == 0)
        *out = RS_IO_AUTO;
    else if (strcmp(name, "uring") == 0 || strcmp(name, "io_uring") == 0)
        *out = RS_IO_URING;
    else if (strcmp(name, "epoll") == 0)
        *out = RS_IO_EPOLL;
    else
        return -1;
    return 0;
}

static const struct {
    int op;
    const char *name;
} rs_needed_ops[] = {
    {IORING_OP_NOP, "NOP"},
    {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},
    {IORING_OP_WRITE_FIXED, "WRITE_FIXED"},
    {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},
    {IORING_OP_POLL_REMOVE, "POLL_REMOVE"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    {IORING_OP_MSG_RING, "MSG_RING"},
};

/* Returns 0, or -errno with why filled. Missing features give -EOPNOTSUPP. */
static int rs_uring_probe(char *why, size_t why_bytes) {
    struct io_uring ring;
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0) {
        snprintf(why, why_bytes, "io_uring_setup: %s", strerror(-rc));
        return rc;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    if (!probe) {
        snprintf(why, why_bytes, "opcode probe failed");
        rc = -EOPNOTSUPP;
        goto out;
    }
    for (size_t i = 0; i < sizeof(rs_needed_ops) / sizeof(rs_needed_ops[0]); i++) {
        if (!io_uring_opcode_supported(probe, rs_needed_ops[i].op)) {
            snprintf(why, why_bytes, "kernel lacks IORING_OP_%s", rs_needed_ops[i].name);
            rc = -EOPNOTSUPP;
            break;
        }
    }
    io_uring_free_probe(probe);
    if (rc) goto out;
    /* Provided buffer rings (5.19+): register a one-entry ring. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *mem = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem != MAP_FAILED) {
        struct io_uring_buf_reg reg = {
            .ring_addr = (unsigned long)mem, .ring_entries = 1, .bgid = 7};
        int r = io_uring_register_buf_ring(&ring, &reg, 0);
        if (r == 0) io_uring_unregister_buf_ring(&ring, 7);
        munmap(mem, page);
        if (r != 0) {
            snprintf(why, why_bytes, "provided buffer rings: %s", strerror(-r));
            rc = (r == -EINVAL) ? -EOPNOTSUPP : r;
            goto out;
        }
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 42);
    struct io_uring_cqe *cqe;
    rc = io_uring_submit_and_wait(&ring, 1);
    if (rc >= 0) rc = io_uring_peek_cqe(&ring, &cqe);
    if (rc < 0 || cqe->user_data != 42 || cqe->res != 0) {
        snprintf(why, why_bytes, "NOP round trip failed: %s", rc < 0 ? strerror(-rc) : "bad cqe");
        rc = rc < 0 ? rc : -EIO;
    } else {
        io_uring_cqe_seen(&ring, cqe);
        rc = 0;
    }
out:
    io_uring_queue_exit(&ring);
    return rc;
}

int rs_io_backend_decide(rs_io_backend requested, int probe_rc, const char *probe_why,
                         rs_io_backend *out, rs_err *err) {
    switch (requested) {
    case RS_IO_EPOLL: *out = RS_IO_EPOLL; return 0;
    case RS_IO_URING:
        if (probe_rc == 0) {
            *out = RS_IO_URING;
            return 0;
        }
        rs_err_set(err, "io: io_uring backend requested but unavailable: %s", probe_why);
        return -1;
    case RS_IO_AUTO:
        if (probe_rc == 0) {
            *out = RS_IO_URING;
            return 0;
        }
        if (probe_rc == -EPERM || probe_rc == -ENOSYS || probe_rc == -EOPNOTSUPP) {
            *out = RS_IO_EPOLL;
            return 0;
        }
        rs_err_set(err, "io: io_uring probe failed (%s); refusing to guess a backend", probe_why);
        return -1;
    }
    rs_err_set(err, "io: backend %d: expected auto, uring or epoll", (int)requested);
    return -1;
}

static pthread_once_t rs_probe_once = PTHREAD_ONCE_INIT;
static int rs_probe_rc;
static char rs_probe_why[160];

static void rs_probe_run(void) {
    rs_probe_rc = rs_uring_probe(rs_probe_why, sizeof(rs_probe_why));
}

int rs_io_backend_resolve(rs_io_backend requested, rs_io_backend *out, rs_err *err) {
    /* AUTO defers to the process-wide --io-backend (rs_opts), so a loop that
     * does not care follows the command line; an explicit choice wins. */
    if (requested == RS_IO_AUTO && rs_opts.io_backend != RS_IO_AUTO)
        requested = (rs_io_backend)rs_opts.io_backend;
    if (requested == RS_IO_EPOLL) {
        *out = RS_IO_EPOLL;
        return 0;
    }
    pthread_once(&rs_probe_once, rs_probe_run);
    if (rs_io_backend_decide(requested, rs_probe_rc, rs_probe_why, out, err) != 0) return -1;
    if (*out == RS_IO_EPOLL)
        RS_LOG_ONCE(RS_LOG_WARN, "io: io_uring unavailable (%s): using the epoll backend",
                    rs_probe_why);
    return 0;
}

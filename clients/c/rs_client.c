/* rs_client.c — the framed-protocol half of the blocking C client.
 *
 * The socket is non-blocking and every wait goes through poll() with
 * io_timeout_ms, so a silent server gives a timeout sentence instead of a
 * hang. Frames are encoded straight into the send buffer (io/frame.h
 * encoders) and decoded in place in the receive buffer (io/frame.h
 * decoders); a reply's views stay valid until the next call, which is when
 * its bytes are released. */
#include "clients/c/rs_client.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clients/c/rs_client_internal.h"
#include "engine/common/log.h"

#define RS_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT 5000u
#define RS_CLIENT_IO_TIMEOUT_MS_DEFAULT 30000u
#define RS_CLIENT_SEND_BUF_BYTES_DEFAULT (1u << 20)
#define RS_CLIENT_MAX_PAYLOAD_BYTES_DEFAULT (4u << 20)
#define RS_CLIENT_MIN_BUF_BYTES 256u /* a PING, a PONG, an ERROR's start */

struct rs_client {
    int fd;
    bool broken;
    rs_client_config cfg;
    uint64_t next_id;
    uint32_t in_flight;
    /* send buffer: [0, sent) went out, [sent, slen) is queued */
    uint8_t *sbuf;
    size_t scap, slen, sent;
    /* receive buffer: [rstart, rend) unconsumed; the first held bytes of it
     * belong to the reply last returned (released by the next call) */
    uint8_t *rbuf;
    size_t rcap, rstart, rend, held;
};

void rs_client_config_default(rs_client_config *cfg) {
    cfg->connect_timeout_ms = RS_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
    cfg->io_timeout_ms = RS_CLIENT_IO_TIMEOUT_MS_DEFAULT;
    cfg->send_buf_bytes = RS_CLIENT_SEND_BUF_BYTES_DEFAULT;
    cfg->max_payload_bytes = RS_CLIENT_MAX_PAYLOAD_BYTES_DEFAULT;
}

void rs_client_config_fill(rs_client_config *cfg) {
    rs_client_config d;
    rs_client_config_default(&d);
    if (!cfg->connect_timeout_ms) cfg->connect_timeout_ms = d.connect_timeout_ms;
    if (!cfg->io_timeout_ms) cfg->io_timeout_ms = d.io_timeout_ms;
    if (!cfg->send_buf_bytes) cfg->send_buf_bytes = d.send_buf_bytes;
    if (!cfg->max_payload_bytes) cfg->max_payload_bytes = d.max_payload_bytes;
}

int rs_client_parse_endpoint(const char *endpoint, char *host, size_t host_bytes, uint16_t *port,
                             rs_err *err) {
    const char *colon = endpoint ? strrchr(endpoint, ':') : NULL;
    if (!colon || colon == endpoint) {
        rs_err_set(err, "endpoint '%s' must be HOST:PORT", endpoint ? endpoint : "");
        return -1;
    }
    const char *h = endpoint;
    size_t hlen = (size_t)(colon - endpoint);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') { /* [::1]:9000 */
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_bytes) {
        rs_err_set(err, "endpoint '%s': host must be 1..%zu bytes", endpoint, host_bytes - 1);
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || colon[1] == '-' || colon[1] == '+' || p < 1 ||
        p > 65535) {
        rs_err_set(err, "endpoint '%s': port '%s' must be a number 1..65535", endpoint, colon + 1);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return 0;
}

int rs_client_sock_wait(int fd, short events, uint32_t timeout_ms) {
    struct pollfd pfd = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&pfd, 1, (int)timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        return n == 0 ? 0 : pfd.revents;
    }
}

static int connect_one(const struct addrinfo *ai, uint32_t timeout_ms, int *err_out) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *err_out = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *err_out = errno;
            close(fd);
            return -1;
        }
        int r = rs_client_sock_wait(fd, POLLOUT, timeout_ms);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (r <= 0) {
            *err_out = r == 0 ? ETIMEDOUT : errno;
            close(fd);
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            *err_out = soerr ? soerr : errno;
            close(fd);
            return -1;
        }
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int rs_client_sock_connect(const char *host, uint16_t port, uint32_t timeout_ms, rs_err *err) {
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, ports, &hints, &res);
    if (gai != 0) {
        rs_err_set(err, "cannot resolve '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    int last = 0, fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, timeout_ms, &last);
    freeaddrinfo(res);
    if (fd < 0) {
        if (last == ETIMEDOUT)
            rs_err_set(err, "cannot connect to %s:%u: no answer within %u ms", host, port,
                       timeout_ms);
        else
            rs_err_set(err, "cannot connect to %s:%u: %s", host, port, strerror(last));
    }
    return fd;
}

rs_client *rs_client_connect(const char *host, uint16_t port, const rs_client_config *cfg,
                             rs_err *err) {
    rs_client *c = calloc(1, sizeof(*c));
    if (!c) {
        rs_err_set(err, "out of memory for the client");
        return NULL;
    }
    if (cfg) c->cfg = *cfg;
    rs_client_config_fill(&c->cfg);
    if (c->cfg.send_buf_bytes < RS_CLIENT_MIN_BUF_BYTES ||
        c->cfg.max_payload_bytes < RS_CLIENT_MIN_BUF_BYTES) {
        rs_err_set(err, "send_buf_bytes %u and max_payload_bytes %u must be at least %u",
                   c->cfg.send_buf_bytes, c->cfg.max_payload_bytes, RS_CLIENT_MIN_BUF_BYTES);
        free(c);
        return NULL;
    }
    c->next_id = 1;
    c->scap = c->cfg.send_buf_bytes;
    /* one whole reply always fits, plus room to read the next one's start */
    c->rcap = (size_t)RS_FRAME_HEADER_BYTES + c->cfg.max_payload_bytes + 4096;
    c->sbuf = malloc(c->scap);
    c->rbuf = malloc(c->rcap);
    if (!c->sbuf || !c->rbuf) {
        rs_err_set(err, "out of memory for the client buffers (%zu + %zu bytes)", c->scap, c->rcap);
        c->fd = -1;
        rs_client_close(c);
        return NULL;
    }
    c->fd = rs_client_sock_connect(host, port, c->cfg.connect_timeout_ms, err);
    if (c->fd < 0) {
        rs_client_close(c);
        return NULL;
    }
    return c;
}

void rs_client_close(rs_client *c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    free(c->sbuf);
    free(c->rbuf);
    free(c);
}

bool rs_client_broken(const rs_client *c) {
    return c->broken;
}
uint32_t rs_client_in_flight(const rs_client *c) {
    return c->in_flight;
}
int rs_client_fd(const rs_client *c) {
    return c->fd;
}

static int fail(rs_client *c) {
    c->broken = true;
    return -1;
}

/* Releases the bytes of the reply last returned (its views die here). */
static void release_held(rs_client *c) {
    c->rstart += c->held;
    c->held = 0;
    if (c->rstart == c->rend) c->rstart = c->rend = 0;
}

/* Reads what the socket has into the receive buffer (compacting first when
 * the tail is full). 1: bytes read, 0: would block or no room, -1: error. */
static int read_some(rs_client *c, rs_err *err) {
    if (c->rend == c->rcap && c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    if (c->rend == c->rcap) return 0;
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, 0);
        if (n > 0) {
            c->rend += (size_t)n;
            return 1;
        }
        if (n == 0) {
            if (c->rend > c->rstart)
                rs_err_set(err,
                           "server closed the connection in the middle of a reply (%zu bytes of it "
                           "received)",
                           c->rend - c->rstart);
            else
                rs_err_set(err, "server closed the connection (%u replies outstanding)",
                           c->in_flight);
            return fail(c);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        rs_err_set(err, "receive failed: %s", strerror(errno));
        return fail(c);
    }
}

/* After a failed send: the server may have explained itself (an ERROR frame
 * such as TOO_LARGE, then a close). Reads what is left and appends the
 * first ERROR found to err. */
static void add_server_reason(rs_client *c, rs_err *err) {
    for (;;) {
        if (c->rend == c->rcap) break;
        ssize_t n = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
        if (n <= 0) break;
        c->rend += (size_t)n;
    }
    size_t off = c->rstart;
    while (off < c->rend) {
        rs_frame_msg m;
        char why[64];
        int64_t n = rs_frame_decode(c->rbuf + off, c->rend - off, c->cfg.max_payload_bytes, &m, why,
                                    sizeof(why));
        if (n <= 0) return;
        if (m.hdr.type == RS_MSG_ERROR) {
            char msg[RS_ERR_MSG_BYTES];
            snprintf(msg, sizeof(msg), "%s; the server had answered %s: %.*s", err->msg,
                     rs_status_name((rs_status)m.u.error.code), (int)m.u.error.message.len,
                     m.u.error.message.ptr);
            snprintf(err->msg, sizeof(err->msg), "%s", msg);
            return;
        }
        off += (size_t)n;
    }
}

int rs_client_flush(rs_client *c, rs_err *err) {
    if (c->broken) {
        rs_err_set(err, "connection is broken by an earlier error: reconnect");
        return -1;
    }
    while (c->sent < c->slen) {
        ssize_t n = send(c->fd, c->sbuf + c->sent, c->slen - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            rs_err_set(err, "send failed: %s", strerror(errno));
            add_server_reason(c, err);
            return fail(c);
        }
        /* The server may be waiting for us to read its replies before it
         * reads more: drain them while we wait (if there is room). */
        bool room = c->rend < c->rcap || c->rstart > 0;
        int ev = rs_client_sock_wait(c->fd, (short)(POLLOUT | (room ? POLLIN : 0)),
                                     c->cfg.io_timeout_ms);
        if (ev < 0) {
            rs_err_set(err, "poll failed: %s", strerror(errno));
            return fail(c);
        }
        if (ev == 0) {
            rs_err_set(err, "timed out after %u ms sending to the server (%zu bytes not sent)",
                       c->cfg.io_timeout_ms, c->slen - c->sent);
            return fail(c);
        }
        if ((ev & (POLLIN | POLLHUP | POLLERR)) && read_some(c, err) < 0) {
            add_server_reason(c, err);
            return -1;
        }
    }
    c->slen = c->sent = 0;
    return 0;
}

/* Checks what a request would put on the wire before it goes (the server
 * would refuse it, but a local sentence is clearer). */
static int check_request(const rs_infer_request *req, rs_err *err) {
    if (req->model.len == 0 || req->model.len > RS_MAX_NAME_BYTES) {
        rs_err_set(err, "model name must be 1..%d bytes", RS_MAX_NAME_BYTES);
        return -1;
    }
    if (req->version.len > RS_MAX_NAME_BYTES) {
        rs_err_set(err, "model version must be at most %d bytes", RS_MAX_NAME_BYTES);
        return -1;
    }
    if (req->id.len > RS_MAX_STR_BYTES || req->routing_key.len > RS_MAX_STR_BYTES ||
        req->traceparent.len > RS_MAX_STR_BYTES) {
        rs_err_set(err, "request id, routing key and traceparent must be at most %d bytes",
                   RS_MAX_STR_BYTES);
        return -1;
    }
    if (req->inputs.count > RS_MAX_TENSORS || req->n_outputs > RS_MAX_TENSORS) {
        rs_err_set(err, "at most %d inputs and %d requested outputs", RS_MAX_TENSORS,
                   RS_MAX_TENSORS);
        return -1;
    }
    for (uint32_t i = 0; i < req->inputs.count; i++) {
        const rs_tensor_view *t = &req->inputs.t[i];
        char why[256];
        if (t->name.len == 0 || t->name.len > RS_MAX_NAME_BYTES) {
            rs_err_set(err, "input %u: name must be 1..%d bytes", i, RS_MAX_NAME_BYTES);
            return -1;
        }
        if (!rs_dtype_valid((uint32_t)t->dtype) || t->rank > RS_MAX_RANK) {
            rs_err_set(err, "input '%.*s': invalid dtype or rank", (int)t->name.len, t->name.ptr);
            return -1;
        }
        if (rs_tensor_check(t, why, sizeof(why)) != 0) {
            rs_err_set(err, "input '%.*s': %s", (int)t->name.len, t->name.ptr, why);
            return -1;
        }
    }
    return 0;
}

int rs_client_send_infer(rs_client *c, const rs_infer_request *req, uint16_t flags,
                         uint64_t *request_id, rs_err *err) {
    release_held(c);
    if (c->broken) {
        rs_err_set(err, "connection is broken by an earlier error: reconnect");
        return -1;
    }
    if (check_request(req, err) != 0) return -1;
    size_t need = rs_infer_request_size(req);
    if (need > c->scap) {
        rs_err_set(err, "request frame is %zu bytes, over the send buffer (send_buf_bytes %zu)",
                   need, c->scap);
        return -1;
    }
    if (c->slen + need > c->scap && rs_client_flush(c, err) != 0) return -1;
    uint64_t id = c->next_id++;
    size_t n = rs_encode_infer_request(c->sbuf + c->slen, c->scap - c->slen, id, flags, req);
    RS_ASSERT(n == need);
    c->slen += n;
    c->in_flight++;
    if (request_id) *request_id = id;
    return 0;
}

static int fill_reply(rs_client *c, const rs_frame_msg *m, rs_client_reply *out, rs_err *err) {
    memset(out, 0, sizeof(*out));
    out->type = m->hdr.type;
    out->flags = m->hdr.flags;
    out->request_id = m->hdr.request_id;
    out->status = RS_OK;
    switch (m->hdr.type) {
    case RS_MSG_INFER_RESPONSE: out->response = m->u.infer_resp; break;
    case RS_MSG_ERROR:
        out->status = (rs_status)m->u.error.code;
        out->message = m->u.error.message;
        if (rs_status_is_fatal(out->status)) c->broken = true; /* the server closes after it */
        break;
    case RS_MSG_PONG:
    case RS_MSG_SUBMIT_ACK: out->value = m->u.u64; break;
    default:
        rs_err_set(err, "unexpected %s frame from the server (request id %" PRIu64 ")",
                   rs_msg_type_name(m->hdr.type), m->hdr.request_id);
        return fail(c);
    }
    if (out->request_id != 0 && c->in_flight > 0) c->in_flight--;
    return 0;
}

int rs_client_recv(rs_client *c, rs_client_reply *out, rs_err *err) {
    release_held(c);
    if (rs_client_flush(c, err) != 0) return -1;
    for (;;) {
        size_t avail = c->rend - c->rstart;
        rs_frame_header hdr;
        char why[256];
        int64_t total = rs_frame_check_header(c->rbuf + c->rstart, avail, c->cfg.max_payload_bytes,
                                              &hdr, why, sizeof(why));
        if (total < 0) {
            rs_err_set(err, "reply rejected (%s): %s", rs_status_name((rs_status)-total), why);
            return fail(c);
        }
        if (total > 0 && (size_t)total <= avail) {
            rs_frame_msg m;
            const uint8_t *f = c->rbuf + c->rstart;
            if (rs_decode_payload(&hdr, f + RS_FRAME_HEADER_BYTES, &m, why, sizeof(why)) != 0) {
                rs_err_set(err, "malformed %s reply (request id %" PRIu64 "): %s",
                           rs_msg_type_name(hdr.type), hdr.request_id, why);
                return fail(c);
            }
            c->held = (size_t)total;
            return fill_reply(c, &m, out, err);
        }
        int r = read_some(c, err);
        if (r < 0) return -1;
        if (r > 0) continue;
        int ev = rs_client_sock_wait(c->fd, POLLIN, c->cfg.io_timeout_ms);
        if (ev < 0) {
            rs_err_set(err, "poll failed: %s", strerror(errno));
            return fail(c);
        }
        if (ev == 0) {
            rs_err_set(err, "no reply from the server within %u ms (%u requests outstanding)",
                       c->cfg.io_timeout_ms, c->in_flight);
            return fail(c);
        }
    }
}

int rs_client_infer(rs_client *c, const rs_infer_request *req, uint16_t flags, rs_client_reply *out,
                    rs_err *err) {
    if (c->in_flight) {
        rs_err_set(err, "rs_client_infer: %u pipelined requests are still outstanding",
                   c->in_flight);
        return -1;
    }
    uint64_t id = 0;
    if (rs_client_send_infer(c, req, flags, &id, err) != 0) return -1;
    if (rs_client_recv(c, out, err) != 0) return -1;
    if (out->request_id == id && (out->type == RS_MSG_INFER_RESPONSE || out->type == RS_MSG_ERROR))
        return 0;
    if (out->request_id == 0 && out->type == RS_MSG_ERROR) return 0; /* stream-level error */
    rs_err_set(err, "got a %s reply for request %" PRIu64 " while waiting for request %" PRIu64,
               rs_msg_type_name(out->type), out->request_id, id);
    return fail(c);
}

int rs_client_ping(rs_client *c, uint64_t value, uint64_t *pong, rs_err *err) {
    release_held(c);
    if (c->broken) {
        rs_err_set(err, "connection is broken by an earlier error: reconnect");
        return -1;
    }
    if (c->in_flight) {
        rs_err_set(err, "rs_client_ping: %u pipelined requests are still outstanding",
                   c->in_flight);
        return -1;
    }
    if (c->slen + RS_FRAME_HEADER_BYTES + 8 > c->scap && rs_client_flush(c, err) != 0) return -1;
    uint64_t id = c->next_id++;
    size_t n = rs_encode_u64(c->sbuf + c->slen, c->scap - c->slen, RS_MSG_PING, id, value);
    RS_ASSERT(n > 0);
    c->slen += n;
    c->in_flight++;
    rs_client_reply r;
    if (rs_client_recv(c, &r, err) != 0) return -1;
    if (r.type == RS_MSG_ERROR) {
        rs_err_set(err, "PING answered with ERROR %s: %.*s", rs_status_name(r.status),
                   (int)r.message.len, r.message.ptr);
        return -1;
    }
    if (r.type != RS_MSG_PONG || r.request_id != id) {
        rs_err_set(err, "PING %" PRIu64 " answered with %s for request %" PRIu64, id,
                   rs_msg_type_name(r.type), r.request_id);
        return fail(c);
    }
    if (pong) *pong = r.value;
    return 0;
}

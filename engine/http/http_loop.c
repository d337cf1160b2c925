/* http_loop.c — serves an rs_http_server on an io loop listener: maps the
 * loop's connection callbacks onto rs_http_conn and rs_http_transport onto
 * rs_conn_* (kept apart from http.c so the protocol is testable without
 * sockets). */
#include <errno.h>

#include "engine/http/http.h"
#include "io/loop.h"

static int t_sendv(void *io, const struct iovec *iov, int iovcnt) {
    return rs_conn_sendv((rs_conn *)io, iov, iovcnt);
}
static void t_close(void *io) {
    rs_conn_close((rs_conn *)io);
}
static void t_pause(void *io) {
    rs_conn_pause_read((rs_conn *)io);
}
static void t_resume(void *io) {
    rs_conn_resume_read((rs_conn *)io);
}
static uint64_t t_now(void *io) {
    return rs_loop_now_ns(rs_conn_loop((rs_conn *)io));
}

static const rs_http_transport loop_transport = {
    .sendv = t_sendv,
    .close = t_close,
    .pause_read = t_pause,
    .resume_read = t_resume,
    .now_ns = t_now,
};

static int on_open(rs_conn *c) {
    rs_http_server *s = rs_conn_listener_udata(c);
    rs_http_conn *hc = rs_http_conn_open(s, &loop_transport, c);
    if (!hc) return -1; /* every slot in use: refuse rather than grow */
    rs_conn_set_udata(c, hc);
    return 0;
}

static ssize_t on_data(rs_conn *c, const uint8_t *data, size_t len) {
    return rs_http_conn_feed(rs_conn_udata(c), data, len);
}

static void on_close(rs_conn *c, int err) {
    (void)err;
    rs_http_conn *hc = rs_conn_udata(c);
    if (hc) rs_http_conn_closed(hc);
    rs_conn_set_udata(c, NULL);
}

static const rs_conn_ops http_ops = {.on_open = on_open, .on_data = on_data, .on_close = on_close};

int rs_http_server_listen(rs_http_server *s, rs_loop *loop, const char *host, uint16_t port,
                          bool reuseport, rs_err *err) {
    return rs_loop_listen(loop, host, port, reuseport, &http_ops, s, err);
}

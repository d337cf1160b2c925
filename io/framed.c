/* framed.c — a framed connection on the loop (io/framed.h): dispatch from
 * on_data, ERROR-then-close on a bad frame, send helpers. The loop-free
 * parts (frame scanning, gather encoding) are in framed_scan.c so that they
 * can be tested, and used, without a loop. */
#include "io/framed.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/common/log.h"

typedef struct dispatch_ctx {
    rs_conn *c;
    const rs_framed_cfg *cfg;
} dispatch_ctx;

static int dispatch(void *ctx, const rs_frame_msg *m) {
    dispatch_ctx *d = ctx;
    return d->cfg->on_frame(d->c, m, d->cfg->arg);
}

ssize_t rs_framed_on_data(rs_conn *c, const uint8_t *data, size_t len, const rs_framed_cfg *cfg) {
    dispatch_ctx d = {c, cfg};
    rs_framed_fault fault;
    size_t consumed;
    ssize_t r = rs_framed_scan(data, len, cfg->max_payload_bytes, dispatch, &d, &consumed, &fault);
    if (r >= 0) return r;
    if (r == -2) return -1;
    char peer[64];
    rs_conn_peer_name(c, peer, sizeof(peer));
    RS_WARN("framed: closing %s: %s: %s", peer, rs_status_name(fault.code), fault.why);
    rs_framed_send_error(c, fault.request_id, fault.code, "%s", fault.why);
    return -1; /* the loop flushes the ERROR, then closes */
}

int rs_framed_send(rs_conn *c, const uint8_t *frame, size_t len) {
    return rs_conn_send(c, frame, len);
}

int rs_framed_send_fw(rs_conn *c, rs_fw *w) {
    if (w->overflow || rs_fw_finish(w) == 0) return -EMSGSIZE;
    return rs_conn_send(c, w->buf, w->len);
}

int rs_framed_send_u64(rs_conn *c, rs_msg_type type, uint64_t request_id, uint64_t value) {
    uint8_t f[RS_FRAME_HEADER_BYTES + 8];
    size_t n = rs_encode_u64(f, sizeof(f), type, request_id, value);
    RS_ASSERT(n == sizeof(f));
    return rs_conn_send(c, f, n);
}

int rs_framed_send_error(rs_conn *c, uint64_t request_id, rs_status code, const char *fmt, ...) {
    char msg[RS_MAX_ERROR_MSG_BYTES + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    uint8_t f[RS_FRAME_HEADER_BYTES + 4 + 2 + RS_MAX_ERROR_MSG_BYTES];
    size_t n = rs_encode_error(f, sizeof(f), request_id, code, msg);
    RS_ASSERT(n > 0);
    return rs_conn_send(c, f, n);
}

int rs_framed_reject_type(rs_conn *c, const rs_frame_msg *m) {
    rs_framed_send_error(c, m->hdr.request_id, RS_E_BAD_TYPE,
                         "message type %s is not accepted on this connection",
                         rs_msg_type_name(m->hdr.type));
    return RS_FRAMED_CLOSE;
}

int rs_framed_send_infer_response(rs_conn *c, uint64_t request_id, uint16_t flags,
                                  const rs_infer_response *r) {
    uint8_t meta[RS_FRAMED_GATHER_META_BYTES];
    struct iovec iov[RS_FRAMED_GATHER_MAX_IOV];
    int n = rs_framed_gather_infer_response(meta, sizeof(meta), iov, RS_FRAMED_GATHER_MAX_IOV,
                                            request_id, flags, r);
    if (n < 0) return n;
    return rs_conn_sendv(c, iov, n);
}

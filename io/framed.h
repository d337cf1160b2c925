/* framed.h — a framed-protocol connection on the event loop.
 *
 * The glue every framed endpoint (worker, coordinator, C clients) shares:
 * split the received byte stream into frames, decode each one, hand it to a
 * handler, and answer a broken frame with one ERROR frame (code + sentence)
 * followed by a close (docs/protocol.md §6). Plus small send helpers.
 *
 * Use it from a connection's on_data:
 *
 *   static int on_frame(rs_conn *c, const rs_frame_msg *m, void *arg) {...}
 *   static const rs_framed_cfg cfg = {.on_frame = on_frame};
 *   static ssize_t on_data(rs_conn *c, const uint8_t *d, size_t n) {
 *       return rs_framed_on_data(c, d, n, &cfg);
 *   }
 *
 * The message views (m, its strings and tensors) point into the receive
 * buffer: valid during on_frame only. Copy what outlives the call. */
#ifndef RS_FRAMED_H
#define RS_FRAMED_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "io/frame.h"
#include "io/loop.h"

/* Handler return values. */
#define RS_FRAMED_CONTINUE 0 /* go on with the next frame */
#define RS_FRAMED_STOP 1     /* frame consumed; leave the rest for the next on_data
                              * (e.g. after rs_conn_pause_read) */
#define RS_FRAMED_CLOSE (-1) /* close the connection (after flushing what is queued) */

typedef int (*rs_framed_frame_fn)(rs_conn *c, const rs_frame_msg *m, void *arg);

typedef struct rs_framed_cfg {
    rs_framed_frame_fn on_frame;
    void *arg;
    /* 0: RS_FRAME_MAX_PAYLOAD_DEFAULT. Keep 24 + this <= the loop's
     * conn_read_max_bytes, or the loop closes before a frame is whole. */
    uint32_t max_payload_bytes;
} rs_framed_cfg;

/* A fatal protocol error found while scanning. */
typedef struct rs_framed_fault {
    rs_status code;
    uint64_t request_id; /* of the offending frame when its header was sound, else 0 */
    char why[256];
} rs_framed_fault;

/* The loop-independent core: decodes the complete frames at data and calls
 * fn for each. Returns the bytes consumed (>= 0; a partial frame stays), or
 * -1 on a fatal error (fault filled; nothing after the bad frame is looked
 * at), or -2 when fn returned RS_FRAMED_CLOSE. *consumed gets the bytes
 * consumed in every case. */
ssize_t rs_framed_scan(const uint8_t *data, size_t len, uint32_t max_payload_bytes,
                       int (*fn)(void *ctx, const rs_frame_msg *m), void *ctx,
                       size_t *consumed, rs_framed_fault *fault);

/* on_data for a framed connection: dispatches complete frames; on a bad
 * frame sends ERROR (code, sentence) and returns -1 (the loop flushes, then
 * closes). Logs one warn line per connection closed this way. */
ssize_t rs_framed_on_data(rs_conn *c, const uint8_t *data, size_t len, const rs_framed_cfg *cfg);

/* ---- sending (the loop copies the bytes: buffers may be reused at once) ---- */

/* Queues a whole encoded frame. 0, or the rs_conn_send error (-ENOBUFS...). */
int rs_framed_send(rs_conn *c, const uint8_t *frame, size_t len);
/* Finishes the frame(s) in w and queues them; -EMSGSIZE when w overflowed. */
int rs_framed_send_fw(rs_conn *c, rs_fw *w);
int rs_framed_send_u64(rs_conn *c, rs_msg_type type, uint64_t request_id, uint64_t value);
int rs_framed_send_error(rs_conn *c, uint64_t request_id, rs_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* ERROR BAD_TYPE ("message type X is not accepted on this connection") for
 * a handler that gets a type it does not serve; returns RS_FRAMED_CLOSE. */
int rs_framed_reject_type(rs_conn *c, const rs_frame_msg *m);

/* Sends an INFER_RESPONSE without copying tensor data into an intermediate
 * buffer: the header and per-tensor metadata are encoded on the stack and
 * the data goes out through rs_conn_sendv. 0 or the send error. */
int rs_framed_send_infer_response(rs_conn *c, uint64_t request_id, uint16_t flags,
                                  const rs_infer_response *r);
/* The encoding behind it: header + metadata into meta, iovecs alternating
 * metadata and tensor data. Returns the iovec count, or -EMSGSIZE. */
#define RS_FRAMED_GATHER_META_BYTES                                            \
    (RS_FRAME_HEADER_BYTES + 3 * (2 + RS_MAX_STR_BYTES) + 4 +                  \
     RS_MAX_TENSORS * (2 + RS_MAX_NAME_BYTES + 2 + 8 * RS_MAX_RANK + 8 + 7))
#define RS_FRAMED_GATHER_MAX_IOV (2 * RS_MAX_TENSORS + 1)
int rs_framed_gather_infer_response(uint8_t *meta, size_t meta_cap, struct iovec *iov,
                                    int iov_cap, uint64_t request_id, uint16_t flags,
                                    const rs_infer_response *r);

#endif

/* framed_scan.c — the loop-free half of io/framed.h.
 *
 * The loop hands on_data all unconsumed bytes, contiguous; we consume whole
 * frames only, so a frame split across receives is simply seen again with
 * more bytes. A frame whose header announces more than the maximum is
 * refused from its 24 header bytes, so a peer can never make us buffer more
 * than one maximal frame. */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "engine/common/log.h"
#include "io/framed.h"

ssize_t rs_framed_scan(const uint8_t *data, size_t len, uint32_t max_payload_bytes,
                       int (*fn)(void *ctx, const rs_frame_msg *m), void *ctx,
                       size_t *consumed, rs_framed_fault *fault) {
    if (max_payload_bytes == 0) max_payload_bytes = RS_FRAME_MAX_PAYLOAD_DEFAULT;
    size_t off = 0;
    rs_frame_msg m;
    for (;;) {
        *consumed = off;
        rs_frame_header h;
        int64_t n = rs_frame_check_header(data + off, len - off, max_payload_bytes, &h,
                                          fault->why, sizeof(fault->why));
        if (n == 0 || (n > 0 && (uint64_t)n > len - off)) return (ssize_t)off; /* need more */
        if (n < 0) {
            fault->code = (rs_status)-n;
            /* the request id is trustworthy only once the checksum passed */
            bool sound = n != -RS_E_BAD_MAGIC && n != -RS_E_BAD_VERSION && n != -RS_E_CHECKSUM;
            fault->request_id = sound ? h.request_id : 0;
            return -1;
        }
        int rc = rs_decode_payload(&h, data + off + RS_FRAME_HEADER_BYTES, &m, fault->why,
                                   sizeof(fault->why));
        if (rc < 0) {
            fault->code = (rs_status)-rc;
            fault->request_id = h.request_id;
            return -1;
        }
        off += (size_t)n;
        *consumed = off;
        int r = fn(ctx, &m);
        if (r == RS_FRAMED_CLOSE) return -2;
        if (r == RS_FRAMED_STOP) return (ssize_t)off;
    }
}

/* Gather encoding: metadata goes into meta, tensor data is referenced by
 * iovecs. Padding depends on the position in the frame, which counts the
 * referenced data too. */
int rs_framed_gather_infer_response(uint8_t *meta, size_t meta_cap, struct iovec *iov,
                                    int iov_cap, uint64_t request_id, uint16_t flags,
                                    const rs_infer_response *r) {
    int iovcnt = 0;
    uint64_t data_bytes = 0;
    size_t seg = 0; /* start of the current metadata segment */
    rs_fw w;
    rs_fw_init(&w, meta, meta_cap);
    rs_fw_begin(&w, RS_MSG_INFER_RESPONSE, flags, request_id);
    rs_fw_str(&w, r->model);
    rs_fw_str(&w, r->version);
    rs_fw_str(&w, r->id);
    const rs_tensor_list *l = &r->outputs;
    RS_ASSERT(l->count <= RS_MAX_TENSORS);
    rs_fw_u32(&w, l->count);
    for (uint32_t i = 0; i < l->count; i++) {
        const rs_tensor_view *t = &l->t[i];
        RS_ASSERT(t->rank <= RS_MAX_RANK);
        rs_fw_str(&w, t->name);
        rs_fw_u8(&w, (uint8_t)t->dtype);
        rs_fw_u8(&w, (uint8_t)t->rank);
        for (uint32_t d = 0; d < t->rank; d++) rs_fw_u64(&w, (uint64_t)t->dims[d]);
        rs_fw_u64(&w, t->byte_len);
        static const uint8_t zeros[8];
        rs_fw_bytes(&w, zeros, (8 - (w.len + data_bytes) % 8) % 8);
        if (w.overflow || iovcnt + 3 > iov_cap) return -EMSGSIZE;
        if (t->byte_len == 0) continue;
        iov[iovcnt++] = (struct iovec){meta + seg, w.len - seg};
        iov[iovcnt++] = (struct iovec){(void *)t->data, t->byte_len};
        data_bytes += t->byte_len;
        seg = w.len;
    }
    if (w.overflow || iovcnt + 1 > iov_cap) return -EMSGSIZE;
    if (w.len > seg) iov[iovcnt++] = (struct iovec){meta + seg, w.len - seg};
    uint64_t payload = w.len - RS_FRAME_HEADER_BYTES + data_bytes;
    if (payload > UINT32_MAX) return -EMSGSIZE;
    uint32_t v = htole32((uint32_t)payload);
    memcpy(meta + 16, &v, 4);
    v = htole32((uint32_t)crc32(0L, meta, 20));
    memcpy(meta + 20, &v, 4);
    return iovcnt;
}


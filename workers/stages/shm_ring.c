/* shm_ring.c — SPSC message ring over shared memory (see shm_ring.h). */
#include "workers/stages/shm_ring.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "engine/common/log.h"

#define RING_MAGIC 0x474e495253535352ull /* "RSSSRING" */
#define WRAP_MARKER UINT32_MAX

static uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

size_t rs_shm_ring_bytes(uint64_t capacity_bytes) {
    return sizeof(rs_shm_ring_hdr) + capacity_bytes;
}

void rs_shm_ring_format(void *mem, uint64_t capacity_bytes) {
    RS_ASSERT(capacity_bytes >= RS_SHM_RING_MIN_BYTES);
    RS_ASSERT((capacity_bytes & (capacity_bytes - 1)) == 0);
    RS_ASSERT(((uintptr_t)mem & 63) == 0);
    rs_shm_ring_hdr *h = mem;
    atomic_init(&h->head, 0);
    atomic_init(&h->tail, 0);
    h->capacity_bytes = capacity_bytes;
    h->magic = RING_MAGIC;
}

int rs_shm_ring_attach(rs_shm_ring *r, void *mem, int efd) {
    rs_shm_ring_hdr *h = mem;
    if (h->magic != RING_MAGIC || h->capacity_bytes < RS_SHM_RING_MIN_BYTES ||
        (h->capacity_bytes & (h->capacity_bytes - 1)) != 0)
        return -1;
    r->hdr = h;
    r->data = (uint8_t *)mem + sizeof(rs_shm_ring_hdr);
    r->mask = h->capacity_bytes - 1;
    r->efd = efd;
    r->reserved = 0;
    return 0;
}

uint64_t rs_shm_ring_max_payload(const rs_shm_ring *r) {
    /* A message may need to wrap: at worst it waits for a ring that is empty
     * and positioned anywhere, so it must fit in half the ring. */
    return r->hdr->capacity_bytes / 2 - RS_SHM_RING_MSG_HDR;
}

void *rs_shm_ring_reserve(rs_shm_ring *r, uint32_t len) {
    if (len > rs_shm_ring_max_payload(r)) return NULL;
    uint64_t cap = r->hdr->capacity_bytes;
    uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
    uint64_t need = RS_SHM_RING_MSG_HDR + pad8(len);
    uint64_t off = head & r->mask;
    uint64_t skip = off + need > cap ? cap - off : 0;
    if (cap - (head - tail) < skip + need) return NULL;
    if (skip) {
        uint32_t marker[2] = {WRAP_MARKER, 0};
        memcpy(r->data + off, marker, sizeof(marker));
        off = 0;
    }
    r->reserved = skip;
    return r->data + off + RS_SHM_RING_MSG_HDR;
}

void rs_shm_ring_commit(rs_shm_ring *r, uint32_t len, uint32_t kind) {
    uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_relaxed) + r->reserved;
    uint32_t h[2] = {len, kind};
    memcpy(r->data + (head & r->mask), h, sizeof(h));
    atomic_store_explicit(&r->hdr->head, head + RS_SHM_RING_MSG_HDR + pad8(len),
                          memory_order_release);
    r->reserved = 0;
    uint64_t one = 1;
    if (r->efd >= 0 && write(r->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        RS_LOG_ONCE(RS_LOG_WARN, "stage ring: eventfd write failed: %s", strerror(errno));
}

const void *rs_shm_ring_peek(rs_shm_ring *r, uint32_t *len, uint32_t *kind) {
    uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_relaxed);
    for (;;) {
        if (tail == head) return NULL;
        uint32_t h[2];
        uint64_t off = tail & r->mask;
        memcpy(h, r->data + off, sizeof(h));
        if (h[0] == WRAP_MARKER) {
            tail += r->hdr->capacity_bytes - off;
            atomic_store_explicit(&r->hdr->tail, tail, memory_order_release);
            continue;
        }
        RS_ASSERT(h[0] <= rs_shm_ring_max_payload(r));
        *len = h[0];
        *kind = h[1];
        return r->data + off + RS_SHM_RING_MSG_HDR;
    }
}

void rs_shm_ring_release(rs_shm_ring *r) {
    uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_relaxed);
    uint32_t len;
    memcpy(&len, r->data + (tail & r->mask), sizeof(len));
    RS_ASSERT(len != WRAP_MARKER);
    atomic_store_explicit(&r->hdr->tail, tail + RS_SHM_RING_MSG_HDR + pad8(len),
                          memory_order_release);
}

int rs_shm_ring_wait(const rs_shm_ring *r, int extra_fd, int timeout_ms) {
    struct pollfd p[2] = {{.fd = r->efd, .events = POLLIN}, {.fd = extra_fd, .events = POLLIN}};
    int n;
    do {
        n = poll(p, extra_fd >= 0 ? 2 : 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if (n == 0) return 0;
    if (p[0].revents & POLLIN) {
        uint64_t v;
        if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN) return -1;
        return 1;
    }
    return 2;
}

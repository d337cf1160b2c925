/* shm_ring.h — a bounded single-producer single-consumer message ring in
 * shared memory, with an eventfd to wake the consumer.
 *
 * Why: the stage pool moves whole batches between a worker's compute thread
 * and a `ringserve stage` process. A ring in a memfd mapping both processes
 * share costs one copy in and one out, no socket buffers, and its capacity
 * is fixed at creation: a message that does not fit is refused, memory never
 * grows.
 *
 * Layout (rs_shm_ring_hdr then capacity_bytes of data, capacity a power of
 * two): head and tail are byte positions that only grow, each on its own
 * cache line; the producer owns head, the consumer owns tail (release
 * stores, acquire loads). A message is an 8-byte header (u32 length, u32
 * kind) and its payload padded to 8 bytes, always contiguous: when it would
 * cross the end, the producer writes a wrap marker and starts at offset 0.
 *
 * Wake-ups: after publishing, the producer writes 1 to the ring's eventfd;
 * the consumer polls that fd (or a loop watches it) and drains the ring. */
#ifndef RS_SHM_RING_H
#define RS_SHM_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RS_SHM_RING_MIN_BYTES 4096u
#define RS_SHM_RING_MSG_HDR 8u

typedef struct rs_shm_ring_hdr {
    _Alignas(64) _Atomic uint64_t head; /* producer: bytes published */
    _Alignas(64) _Atomic uint64_t tail; /* consumer: bytes released */
    _Alignas(64) uint64_t capacity_bytes;
    uint64_t magic;
} rs_shm_ring_hdr;

/* A process-local handle on a ring that lives in shared memory. */
typedef struct rs_shm_ring {
    rs_shm_ring_hdr *hdr;
    uint8_t *data;
    uint64_t mask;
    int efd;            /* eventfd signalled after each publish */
    uint64_t reserved;  /* producer: bytes reserved, not yet committed */
} rs_shm_ring;

/* Bytes of shared memory a ring of capacity_bytes needs (header included). */
size_t rs_shm_ring_bytes(uint64_t capacity_bytes);
/* Initializes a ring at mem (rs_shm_ring_bytes long, 64-byte aligned);
 * capacity_bytes: a power of two >= RS_SHM_RING_MIN_BYTES. */
void rs_shm_ring_format(void *mem, uint64_t capacity_bytes);
/* Attaches a handle to a formatted ring; -1 when mem holds no ring. */
int rs_shm_ring_attach(rs_shm_ring *r, void *mem, int efd);
/* The largest payload a message may carry. */
uint64_t rs_shm_ring_max_payload(const rs_shm_ring *r);

/* Producer: space for a payload of len bytes, or NULL when the ring lacks
 * room now (or ever: len > max payload). Fill it, then commit. */
void *rs_shm_ring_reserve(rs_shm_ring *r, uint32_t len);
/* Publishes the reserved message (kind is the caller's) and signals efd. */
void rs_shm_ring_commit(rs_shm_ring *r, uint32_t len, uint32_t kind);

/* Consumer: the oldest message (payload, length and kind), or NULL when
 * empty. The payload stays valid until rs_shm_ring_release. */
const void *rs_shm_ring_peek(rs_shm_ring *r, uint32_t *len, uint32_t *kind);
void rs_shm_ring_release(rs_shm_ring *r);

/* Blocks until efd is signalled or timeout_ms passes (-1: forever); also
 * returns when extra_fd (e.g. a pidfd; -1 for none) becomes readable.
 * Returns 1 when efd fired, 2 when extra_fd did, 0 on timeout, -1 error. */
int rs_shm_ring_wait(const rs_shm_ring *r, int extra_fd, int timeout_ms);

#endif

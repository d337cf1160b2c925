/* kv_layout.h — the bytes of the shared segment (private to engine/kvstore).
 *
 *   [header | shards | buckets (per shard) | page classes (per shard) | pages]
 *
 * Everything is addressed by offsets so that every process can map the
 * segment at a different address. An item reference is its byte offset from
 * the start of its shard's pages divided by 8, plus one (0 = none). Any
 * change to these structs must bump RS_KV_LAYOUT_VERSION. */
#ifndef RS_KV_LAYOUT_H
#define RS_KV_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/kvstore/kvstore.h"

#define RS_KV_MAGIC 0x314d48535653524bull /* "KRSVSHM1" little-endian */
#define RS_KV_LAYOUT_VERSION 1u
#define RS_KV_MAX_CLASSES 64
#define RS_KV_MIN_PAGE_BYTES (64u * 1024u)
#define RS_KV_MIN_CHUNK_BYTES 64u
#define RS_KV_CLASS_GROWTH 1.25

/* Item flags. */
#define RS_KV_F_USED 1u /* holds a live entry (checksum decides whether it is whole) */
#define RS_KV_F_REF 2u  /* CLOCK reference bit: read since the hand last passed */

/* One entry in a chunk. The checksum covers key, expiry, length and value
 * (bytes from `key_lo` to the end of the value), which are contiguous. */
typedef struct rs_kv_item {
    uint64_t checksum;
    uint32_t next; /* bucket chain, or free list */
    uint8_t flags;
    uint8_t class_id;
    uint16_t pad0;
    uint64_t key_lo, key_hi;
    uint64_t expire_ms; /* wall clock; 0 = never */
    uint32_t value_len;
    uint32_t pad1;
    uint8_t value[];
} rs_kv_item;

#define RS_KV_ITEM_BYTES ((uint32_t)sizeof(rs_kv_item))
#define RS_KV_SUMMED_OFFSET 16u /* offsetof(rs_kv_item, key_lo) */

/* Per (shard, size class) state: free chunks and the CLOCK hand. */
typedef struct rs_kv_class {
    uint32_t free_head;  /* item ref */
    uint32_t pages;      /* pages owned by this class */
    uint32_t hand_page;  /* CLOCK hand: page index in the shard ... */
    uint32_t hand_chunk; /* ... and chunk index in that page */
} rs_kv_class;

typedef struct rs_kv_shard {
    pthread_mutex_t lock;  /* process-shared, robust */
    uint32_t pages_carved; /* pages [0, pages_carved) belong to a class */
    uint32_t steal_hand;   /* round-robin victim when a class has no page */
    /* Counters, written under the lock (oversize needs no lock). */
    uint64_t hits, misses, sets, deletes;
    uint64_t items, value_bytes, used_bytes;
    uint64_t evictions, expired, recoveries, torn;
    _Atomic uint64_t oversize;
    rs_kv_class cls[RS_KV_MAX_CLASSES];
} __attribute__((aligned(64))) rs_kv_shard;

typedef struct rs_kv_header {
    _Atomic uint64_t magic; /* written last by the creator */
    uint32_t layout_version;
    uint32_t header_bytes;
    uint32_t shard_struct_bytes;
    uint32_t item_header_bytes;
    uint64_t segment_bytes;
    uint64_t capacity_bytes; /* shards * pages_per_shard * page_bytes */
    uint64_t max_value_bytes;
    uint32_t shards;
    uint32_t page_bytes;
    uint32_t pages_per_shard;
    uint32_t buckets_per_shard;
    uint32_t class_count;
    uint32_t class_bytes[RS_KV_MAX_CLASSES];
    uint64_t off_shards, off_buckets, off_page_class, off_pages;
    uint64_t created_ms;
    /* Shared deadlines so one process per period sweeps / snapshots. */
    _Atomic uint64_t next_sweep_ms;
    _Atomic uint64_t next_snapshot_ms;
} rs_kv_header;

/* The per-process handle. */
struct rs_kv {
    rs_kv_header *hdr;
    uint8_t *base;
    size_t map_bytes;
    rs_kv_shard *shards;
    uint32_t shard_mask;
    uint32_t bucket_mask;
    uint32_t pages_per_shard;
    uint32_t page_bytes;
    uint32_t class_count;
    uint32_t class_bytes[RS_KV_MAX_CLASSES];
    uint32_t chunks_per_page[RS_KV_MAX_CLASSES];
    uint64_t max_value_bytes;
    uint64_t default_ttl_ms;
    uint64_t snapshot_interval_ms;
    rs_kv_clock_fn clock;
    void *clock_ctx;
    char name[RS_KV_NAME_BYTES];
    char persist[RS_KV_PATH_BYTES]; /* "" = this handle takes no snapshots */
};

/* Shared between kvstore.c and kv_snapshot.c. */
static inline uint64_t rs_kv_now_ms(const rs_kv *kv) {
    return kv->clock(kv->clock_ctx);
}
/* Inserts with an absolute expiry (snapshot load). */
rs_kv_status rs_kv_set_abs(rs_kv *kv, const rs_kv_key *key, const void *value, size_t len,
                           uint64_t expire_ms);
/* Calls fn for each whole, unexpired entry of one page, under its shard lock
 * (snapshot save). Returns the number of pages in the cache via *pages. */
typedef void (*rs_kv_visit_fn)(void *ctx, const rs_kv_item *it);
uint64_t rs_kv_page_count(const rs_kv *kv);
void rs_kv_visit_page(rs_kv *kv, uint64_t page, uint64_t now_ms, rs_kv_visit_fn fn, void *ctx);

#endif

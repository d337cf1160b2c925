/* kvstore.c — shared-memory response cache: segment, shards, slabs, CLOCK.
 *
 * Why this shape (see docs/design.md "Response cache"): one fixed segment so
 * every process on the host shares one warm cache and no operation
 * allocates (memcached's slab classes); shards with their own lock so io
 * threads rarely meet; robust mutexes so a process killed holding a lock
 * costs the others one index rebuild, never a hang; a checksum per entry so
 * a half-written entry is never served. */
#include "engine/kvstore/kvstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/common/log.h"
#include "engine/kvstore/kv_layout.h"

/* ---- small helpers ------------------------------------------------------- */

static uint64_t rs_kv_real_clock(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static uint64_t rs_kv_round_up(uint64_t v, uint64_t align) {
    return (v + align - 1) / align * align;
}

static uint32_t rs_kv_pow2_at_least(uint64_t v) {
    uint32_t p = 1;
    while (p < v && p < (1u << 31))
        p <<= 1;
    return p;
}

static inline rs_kv_shard *rs_kv_shard_of(const rs_kv *kv, const rs_kv_key *key) {
    return &kv->shards[key->lo & kv->shard_mask];
}

static inline uint32_t rs_kv_shard_index(const rs_kv *kv, const rs_kv_shard *sh) {
    return (uint32_t)(sh - kv->shards);
}

static inline uint8_t *rs_kv_pages_of(const rs_kv *kv, uint32_t shard) {
    return kv->base + kv->hdr->off_pages + (uint64_t)shard * kv->pages_per_shard * kv->page_bytes;
}

static inline uint32_t *rs_kv_buckets_of(const rs_kv *kv, uint32_t shard) {
    return (uint32_t *)(kv->base + kv->hdr->off_buckets) + (uint64_t)shard * (kv->bucket_mask + 1);
}

/* Page class ids are 1-based; 0 marks a page not carved yet, so a fresh
 * (zero-filled) segment needs no initialisation of its pages. */
static inline uint8_t *rs_kv_page_class_of(const rs_kv *kv, uint32_t shard) {
    return kv->base + kv->hdr->off_page_class + (uint64_t)shard * kv->pages_per_shard;
}

static inline rs_kv_item *rs_kv_item_at(uint8_t *pages, uint32_t ref) {
    return (rs_kv_item *)(pages + ((uint64_t)(ref - 1) << 3));
}

static inline uint32_t rs_kv_ref_of(const uint8_t *pages, const rs_kv_item *it) {
    return (uint32_t)(((const uint8_t *)it - pages) >> 3) + 1;
}

static inline rs_kv_item *rs_kv_chunk(const rs_kv *kv, uint8_t *pages, uint32_t page, uint32_t cls,
                                      uint32_t chunk) {
    return (rs_kv_item *)(pages + (uint64_t)page * kv->page_bytes +
                          (uint64_t)chunk * kv->class_bytes[cls]);
}

static inline uint64_t rs_kv_item_sum(const rs_kv_item *it) {
    return XXH3_64bits((const uint8_t *)it + RS_KV_SUMMED_OFFSET,
                       RS_KV_ITEM_BYTES - RS_KV_SUMMED_OFFSET + it->value_len);
}

/* Smallest class whose chunk holds an item of `len` value bytes. */
static inline uint32_t rs_kv_class_for(const rs_kv *kv, size_t len) {
    uint64_t need = RS_KV_ITEM_BYTES + len;
    uint32_t lo = 0, hi = kv->class_count - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (kv->class_bytes[mid] >= need)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ---- locking and recovery -------------------------------------------------- */

static void rs_kv_rebuild_shard(rs_kv *kv, rs_kv_shard *sh);

/* Takes the shard lock. A dead owner (EOWNERDEAD) may have left the index
 * half-updated: rebuild it from the entries whose checksum verifies, then
 * mark the mutex consistent. Returns 0, or -1 when the lock is unusable. */
static int rs_kv_lock(rs_kv *kv, rs_kv_shard *sh) {
    int rc = pthread_mutex_lock(&sh->lock);
    if (__builtin_expect(rc == 0, 1)) return 0;
    if (rc == EOWNERDEAD) {
        rs_kv_rebuild_shard(kv, sh);
        sh->recoveries++;
        pthread_mutex_consistent(&sh->lock);
        RS_WARN("cache %s: shard %u: lock owner died; index rebuilt from checksummed entries",
                kv->name, rs_kv_shard_index(kv, sh));
        return 0;
    }
    RS_LOG_ONCE(RS_LOG_ERROR, "cache %s: shard lock failed: %s", kv->name, strerror(rc));
    return -1;
}

static inline void rs_kv_unlock(rs_kv_shard *sh) {
    pthread_mutex_unlock(&sh->lock);
}

/* ---- index and slab primitives (shard locked) ------------------------------ */

/* Finds key; *link_out receives the pointer that references it (bucket or
 * previous item's next) so the caller can unlink in O(1). */
static rs_kv_item *rs_kv_find(const rs_kv *kv, uint32_t shard, uint8_t *pages, const rs_kv_key *key,
                              uint32_t **link_out) {
    uint32_t *link = &rs_kv_buckets_of(kv, shard)[key->hi & kv->bucket_mask];
    uint32_t ref = *link;
    uint32_t guard = 0;
    while (ref != 0) {
        rs_kv_item *it = rs_kv_item_at(pages, ref);
        if (it->key_lo == key->lo && it->key_hi == key->hi) {
            *link_out = link;
            return it;
        }
        link = &it->next;
        ref = *link;
        RS_ASSERT(++guard < (1u << 30)); /* a cycle would be a broken invariant */
    }
    return NULL;
}

static void rs_kv_free_item(const rs_kv *kv, rs_kv_shard *sh, uint8_t *pages, rs_kv_item *it) {
    rs_kv_class *c = &sh->cls[it->class_id];
    sh->items--;
    sh->value_bytes -= it->value_len;
    sh->used_bytes -= kv->class_bytes[it->class_id];
    it->flags = 0;
    it->next = c->free_head;
    c->free_head = rs_kv_ref_of(pages, it);
}

static void rs_kv_unlink_free(const rs_kv *kv, rs_kv_shard *sh, uint8_t *pages, uint32_t *link,
                              rs_kv_item *it) {
    *link = it->next;
    rs_kv_free_item(kv, sh, pages, it);
}

/* Unlinks an item found by walking its chain (eviction, sweep, steal). */
static void rs_kv_remove(const rs_kv *kv, rs_kv_shard *sh, uint8_t *pages, rs_kv_item *it) {
    rs_kv_key key = {it->key_lo, it->key_hi};
    uint32_t *link = NULL;
    rs_kv_item *found = rs_kv_find(kv, rs_kv_shard_index(kv, sh), pages, &key, &link);
    RS_ASSERT(found == it);
    rs_kv_unlink_free(kv, sh, pages, link, it);
}

/* Hands page `page` to class `cls`: every chunk goes on the free list,
 * chunk 0 on top. */
static void rs_kv_carve(rs_kv *kv, rs_kv_shard *sh, uint8_t *pages, uint32_t page, uint32_t cls) {
    rs_kv_page_class_of(kv, rs_kv_shard_index(kv, sh))[page] = (uint8_t)(cls + 1);
    rs_kv_class *c = &sh->cls[cls];
    for (uint32_t i = kv->chunks_per_page[cls]; i-- > 0;) {
        rs_kv_item *it = rs_kv_chunk(kv, pages, page, cls, i);
        it->flags = 0;
        it->class_id = (uint8_t)cls;
        it->next = c->free_head;
        c->free_head = rs_kv_ref_of(pages, it);
    }
    if (c->pages == 0) {
        c->hand_page = page;
        c->hand_chunk = 0;
    }
    c->pages++;
}

/* Moves a class's CLOCK hand to the next chunk, wrapping over its pages. */
static void rs_kv_hand_advance(const rs_kv *kv, rs_kv_shard *sh, const uint8_t *page_class,
                               uint32_t cls) {
    rs_kv_class *c = &sh->cls[cls];
    if (++c->hand_chunk < kv->chunks_per_page[cls]) return;
    c->hand_chunk = 0;
    for (uint32_t n = 0; n < sh->pages_carved; n++) {
        c->hand_page = (c->hand_page + 1) % sh->pages_carved;
        if (page_class[c->hand_page] == cls + 1) return;
    }
    RS_ASSERT(!"class with pages but no page found");
}

/* CLOCK: the first entry without a reference bit is the victim; passing an
 * entry clears its bit (second chance). Ends within two turns. */
static rs_kv_item *rs_kv_clock_evict(rs_kv *kv, rs_kv_shard *sh, uint8_t *pages, uint32_t cls) {
    const uint8_t *page_class = rs_kv_page_class_of(kv, rs_kv_shard_index(kv, sh));
    rs_kv_class *c = &sh->cls[cls];
    uint64_t limit = 2ull * c->pages * kv->chunks_per_page[cls] + 2;
    for (uint64_t n = 0; n < limit; n++) {
        rs_kv_item *it = rs_kv_chunk(kv, pages, c->hand_page, cls, c->hand_chunk);
        rs_kv_hand_advance(kv, sh, page_class, cls);
        if (!(it->flags & RS_KV_F_USED)) continue; /* cannot happen with an empty free list */
        if (it->flags & RS_KV_F_REF) {
            it->flags &= (uint8_t)~RS_KV_F_REF;
            continue;
        }
        rs_kv_remove(kv, sh, pages, it);
        sh->evictions++;
        return it;
    }
    return NULL;
}

/* Rebuilds a class's free list from its pages (after one was stolen). */
static void rs_kv_class_refree(rs_kv *kv, rs_kv_shard *sh, uint8_t *pages, uint32_t cls) {
    const uint8_t *page_class = rs_kv_page_class_of(kv, rs_kv_shard_index(kv, sh));
    rs_kv_class *c = &sh->cls[cls];
    c->free_head = 0;
    for (uint32_t p = sh->pages_carved; p-- > 0;) {
        if (page_class[p] != cls + 1) continue;
        for (uint32_t i = kv->chunks_per_page[cls]; i-- > 0;) {
            rs_kv_item *it = rs_kv_chunk(kv, pages, p, cls, i);
            if (it->flags & RS_KV_F_USED) continue;
            it->next = c->free_head;
            c->free_head = rs_kv_ref_of(pages, it);
        }
        c->hand_page = p;
        c->hand_chunk = 0;
    }
}

/* A class with no page while every page is taken: take one from another
 * class (round robin, preferring classes with more than one page), evicting
 * its entries. Memcached's slab "automove" does the same job more
 * cleverly; here it only keeps a new size class from starving. */
static void rs_kv_steal_page(rs_kv *kv, rs_kv_shard *sh, uint8_t *pages, uint32_t cls) {
    uint8_t *page_class = rs_kv_page_class_of(kv, rs_kv_shard_index(kv, sh));
    uint32_t victim = UINT32_MAX;
    for (int pass = 0; pass < 2 && victim == UINT32_MAX; pass++) {
        for (uint32_t n = 0; n < sh->pages_carved; n++) {
            uint32_t p = (sh->steal_hand + n) % sh->pages_carved;
            uint32_t owner = page_class[p] - 1u;
            if (owner == cls) continue;
            if (pass == 0 && sh->cls[owner].pages < 2) continue;
            victim = p;
            break;
        }
    }
    RS_ASSERT(victim != UINT32_MAX);
    sh->steal_hand = (victim + 1) % sh->pages_carved;
    uint32_t owner = page_class[victim] - 1u;
    for (uint32_t i = 0; i < kv->chunks_per_page[owner]; i++) {
        rs_kv_item *it = rs_kv_chunk(kv, pages, victim, owner, i);
        if (it->flags & RS_KV_F_USED) {
            rs_kv_remove(kv, sh, pages, it);
            sh->evictions++;
        }
    }
    page_class[victim] = 0;
    sh->cls[owner].pages--;
    rs_kv_class_refree(kv, sh, pages, owner);
    rs_kv_carve(kv, sh, pages, victim, cls);
}

static rs_kv_item *rs_kv_alloc(rs_kv *kv, rs_kv_shard *sh, uint8_t *pages, uint32_t cls) {
    rs_kv_class *c = &sh->cls[cls];
    if (c->free_head == 0) {
        if (sh->pages_carved < kv->pages_per_shard) {
            rs_kv_carve(kv, sh, pages, sh->pages_carved, cls);
            sh->pages_carved++;
        } else if (c->pages > 0) {
            rs_kv_item *it = rs_kv_clock_evict(kv, sh, pages, cls);
            if (it) {
                /* rs_kv_remove put it on the free list; take it back off. */
                RS_ASSERT(c->free_head == rs_kv_ref_of(pages, it));
            }
        } else {
            rs_kv_steal_page(kv, sh, pages, cls);
        }
    }
    if (c->free_head == 0) return NULL;
    rs_kv_item *it = rs_kv_item_at(pages, c->free_head);
    c->free_head = it->next;
    RS_ASSERT(it->class_id == cls && !(it->flags & RS_KV_F_USED));
    return it;
}

/* Index rebuild after a lock owner died (see rs_kv_lock). Trusts only the
 * page class bytes (each one a single store) and entry checksums. */
static void rs_kv_rebuild_shard(rs_kv *kv, rs_kv_shard *sh) {
    uint32_t shard = rs_kv_shard_index(kv, sh);
    uint8_t *pages = rs_kv_pages_of(kv, shard);
    uint8_t *page_class = rs_kv_page_class_of(kv, shard);
    memset(rs_kv_buckets_of(kv, shard), 0, (uint64_t)(kv->bucket_mask + 1) * sizeof(uint32_t));
    memset(sh->cls, 0, sizeof(sh->cls));
    sh->items = sh->value_bytes = sh->used_bytes = 0;
    uint32_t carved = 0;
    for (uint32_t p = 0; p < kv->pages_per_shard; p++) {
        if (page_class[p] > kv->class_count) page_class[p] = 0; /* torn byte: drop the page */
        if (page_class[p] != 0) carved = p + 1;
    }
    /* A hole below `carved` (a page stolen mid-way) goes to the smallest class. */
    for (uint32_t p = 0; p < carved; p++)
        if (page_class[p] == 0) page_class[p] = 1;
    sh->pages_carved = carved;
    uint32_t *buckets = rs_kv_buckets_of(kv, shard);
    for (uint32_t p = carved; p-- > 0;) {
        uint32_t cls = page_class[p] - 1u;
        rs_kv_class *c = &sh->cls[cls];
        c->pages++;
        c->hand_page = p;
        c->hand_chunk = 0;
        for (uint32_t i = kv->chunks_per_page[cls]; i-- > 0;) {
            rs_kv_item *it = rs_kv_chunk(kv, pages, p, cls, i);
            bool keep = (it->flags & RS_KV_F_USED) && it->class_id == cls &&
                        it->value_len <= kv->max_value_bytes &&
                        RS_KV_ITEM_BYTES + it->value_len <= kv->class_bytes[cls] &&
                        rs_kv_item_sum(it) == it->checksum;
            rs_kv_key key = {it->key_lo, it->key_hi};
            uint32_t *link = NULL;
            if (keep && rs_kv_find(kv, shard, pages, &key, &link)) keep = false; /* duplicate */
            if (keep) {
                uint32_t *head = &buckets[key.hi & kv->bucket_mask];
                it->next = *head;
                *head = rs_kv_ref_of(pages, it);
                sh->items++;
                sh->value_bytes += it->value_len;
                sh->used_bytes += kv->class_bytes[cls];
            } else {
                if (it->flags & RS_KV_F_USED) sh->torn++;
                it->flags = 0;
                it->class_id = (uint8_t)cls;
                it->next = c->free_head;
                c->free_head = rs_kv_ref_of(pages, it);
            }
        }
    }
}

/* ---- geometry and segment --------------------------------------------------- */

typedef struct rs_kv_geometry {
    uint32_t shards, page_bytes, pages_per_shard, buckets_per_shard, class_count;
    uint32_t class_bytes[RS_KV_MAX_CLASSES];
    uint64_t max_value_bytes, capacity_bytes;
    uint64_t off_shards, off_buckets, off_page_class, off_pages, segment_bytes;
} rs_kv_geometry;

/* Size classes grow by 1.25x from 64 bytes to the largest item; the last
 * class is exactly the largest item so a max-size value wastes nothing. */
static uint32_t rs_kv_make_classes(uint64_t max_item, uint32_t *out) {
    double growth = RS_KV_CLASS_GROWTH;
    for (;;) {
        uint32_t n = 0;
        double size = RS_KV_MIN_CHUNK_BYTES;
        while (n < RS_KV_MAX_CLASSES - 1 && (uint64_t)size < max_item) {
            uint32_t s = (uint32_t)rs_kv_round_up((uint64_t)size, 8);
            if (n == 0 || s > out[n - 1]) out[n++] = s;
            size *= growth;
        }
        if ((uint64_t)size >= max_item || n < RS_KV_MAX_CLASSES - 1) {
            if (n > 0 && out[n - 1] >= max_item) n--;
            out[n++] = (uint32_t)rs_kv_round_up(max_item, 8);
            return n;
        }
        growth += 0.05;
    }
}

static int rs_kv_geometry_make(const rs_kv_config *cfg, const rs_kv_options *opt, rs_kv_geometry *g,
                               rs_err *err) {
    memset(g, 0, sizeof(*g));
    uint32_t io_threads = opt && opt->io_threads ? opt->io_threads : 1;
    if (opt && opt->shards) {
        if (opt->shards & (opt->shards - 1)) {
            rs_err_set(err, "cache %s: shards %u is not a power of two", cfg->name, opt->shards);
            return -1;
        }
        g->shards = opt->shards;
    } else {
        g->shards = rs_kv_pow2_at_least(4ull * io_threads);
        if (g->shards < 4) g->shards = 4;
    }
    g->max_value_bytes = cfg->max_value_kb * 1024ull;
    uint64_t max_item = rs_kv_round_up(RS_KV_ITEM_BYTES + g->max_value_bytes, 8);
    g->page_bytes = (uint32_t)rs_kv_round_up(max_item, 4096);
    if (g->page_bytes < RS_KV_MIN_PAGE_BYTES) g->page_bytes = RS_KV_MIN_PAGE_BYTES;
    bool exact = opt && opt->capacity_bytes;
    uint64_t capacity = exact ? opt->capacity_bytes : cfg->capacity_mb << 20;
    uint64_t per_shard = capacity / g->shards;
    g->pages_per_shard = (uint32_t)(per_shard / g->page_bytes);
    uint32_t min_pages = exact ? 1 : 4;
    if (g->pages_per_shard < min_pages) {
        uint64_t need = (uint64_t)min_pages * g->page_bytes * g->shards;
        rs_err_set(err,
                   "cache %s: capacity %" PRIu64 " bytes is too small for %u shards of %u pages of "
                   "%u bytes (max_value_kb %" PRIu64 "): needs at least %" PRIu64 " MiB",
                   cfg->name, capacity, g->shards, min_pages, g->page_bytes, cfg->max_value_kb,
                   (need + (1 << 20) - 1) >> 20);
        return -1;
    }
    uint64_t shard_data = (uint64_t)g->pages_per_shard * g->page_bytes;
    if (shard_data >> 35) { /* item refs are 32-bit counts of 8 bytes */
        rs_err_set(err, "cache %s: %" PRIu64 " bytes per shard exceeds 32 GiB; use more io threads",
                   cfg->name, shard_data);
        return -1;
    }
    g->capacity_bytes = shard_data * g->shards;
    g->buckets_per_shard = rs_kv_pow2_at_least(shard_data / 128);
    if (g->buckets_per_shard < 64) g->buckets_per_shard = 64;
    g->class_count = rs_kv_make_classes(max_item, g->class_bytes);
    g->off_shards = rs_kv_round_up(sizeof(rs_kv_header), 4096);
    g->off_buckets = rs_kv_round_up(g->off_shards + (uint64_t)g->shards * sizeof(rs_kv_shard), 64);
    g->off_page_class =
        rs_kv_round_up(g->off_buckets + (uint64_t)g->shards * g->buckets_per_shard * 4, 64);
    g->off_pages =
        rs_kv_round_up(g->off_page_class + (uint64_t)g->shards * g->pages_per_shard, 4096);
    g->segment_bytes = g->off_pages + g->capacity_bytes;
    return 0;
}

static void rs_kv_header_init(rs_kv_header *h, const rs_kv_geometry *g, uint64_t now_ms) {
    h->layout_version = RS_KV_LAYOUT_VERSION;
    h->header_bytes = sizeof(rs_kv_header);
    h->shard_struct_bytes = sizeof(rs_kv_shard);
    h->item_header_bytes = RS_KV_ITEM_BYTES;
    h->segment_bytes = g->segment_bytes;
    h->capacity_bytes = g->capacity_bytes;
    h->max_value_bytes = g->max_value_bytes;
    h->shards = g->shards;
    h->page_bytes = g->page_bytes;
    h->pages_per_shard = g->pages_per_shard;
    h->buckets_per_shard = g->buckets_per_shard;
    h->class_count = g->class_count;
    memcpy(h->class_bytes, g->class_bytes, sizeof(h->class_bytes));
    h->off_shards = g->off_shards;
    h->off_buckets = g->off_buckets;
    h->off_page_class = g->off_page_class;
    h->off_pages = g->off_pages;
    h->created_ms = now_ms;
    atomic_store(&h->next_sweep_ms, now_ms + 1000);
    atomic_store(&h->next_snapshot_ms, 0);
}

static int rs_kv_init_locks(rs_kv_shard *shards, uint32_t n, rs_err *err, const char *name) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    int rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = pthread_mutex_init(&shards[i].lock, &a);
    pthread_mutexattr_destroy(&a);
    if (rc != 0) rs_err_set(err, "cache %s: robust process-shared mutex: %s", name, strerror(rc));
    return rc == 0 ? 0 : -1;
}

/* Checks an attached header field by field; the first mismatch is refused
 * with a line naming it. `want` is NULL for attach-only (no config). */
static int rs_kv_header_check(const rs_kv_header *h, uint64_t file_bytes,
                              const rs_kv_geometry *want, const char *name, rs_err *err) {
    const char *fix = "remove it with `ringserve cache destroy --config F` once no process uses it";
    if (atomic_load(&h->magic) != RS_KV_MAGIC) {
        rs_err_set(err, "cache /%s: not a ringserve cache segment (bad magic); %s", name, fix);
        return -1;
    }
#define RS_KV_CHECK(field, expected)                                                               \
    do {                                                                                           \
        if ((uint64_t)(h->field) != (uint64_t)(expected)) {                                        \
            rs_err_set(err,                                                                        \
                       "cache /%s: segment has " #field " %" PRIu64                                \
                       ", this process expects %" PRIu64 "; %s",                                   \
                       name, (uint64_t)(h->field), (uint64_t)(expected), fix);                     \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    RS_KV_CHECK(layout_version, RS_KV_LAYOUT_VERSION);
    RS_KV_CHECK(header_bytes, sizeof(rs_kv_header));
    RS_KV_CHECK(shard_struct_bytes, sizeof(rs_kv_shard));
    RS_KV_CHECK(item_header_bytes, RS_KV_ITEM_BYTES);
    RS_KV_CHECK(segment_bytes, file_bytes);
    if (want) {
        RS_KV_CHECK(capacity_bytes, want->capacity_bytes);
        RS_KV_CHECK(max_value_bytes, want->max_value_bytes);
        RS_KV_CHECK(shards, want->shards);
    }
    /* Internal consistency, so a corrupt header cannot send us out of bounds. */
    rs_kv_geometry g;
    rs_kv_config c;
    rs_kv_config_default(&c);
    snprintf(c.name, sizeof(c.name), "%s", name);
    c.max_value_kb = h->max_value_bytes / 1024;
    rs_kv_options o = {.shards = h->shards, .capacity_bytes = h->capacity_bytes};
    rs_err scratch;
    if (h->max_value_bytes % 1024 != 0 || h->shards == 0 ||
        rs_kv_geometry_make(&c, &o, &g, &scratch) != 0) {
        rs_err_set(err, "cache /%s: segment header is inconsistent; %s", name, fix);
        return -1;
    }
    RS_KV_CHECK(page_bytes, g.page_bytes);
    RS_KV_CHECK(pages_per_shard, g.pages_per_shard);
    RS_KV_CHECK(buckets_per_shard, g.buckets_per_shard);
    RS_KV_CHECK(class_count, g.class_count);
    RS_KV_CHECK(off_pages, g.off_pages);
    RS_KV_CHECK(off_buckets, g.off_buckets);
    RS_KV_CHECK(off_page_class, g.off_page_class);
    RS_KV_CHECK(off_shards, g.off_shards);
#undef RS_KV_CHECK
    if (memcmp(h->class_bytes, g.class_bytes, sizeof(g.class_bytes)) != 0) {
        rs_err_set(err, "cache /%s: segment size classes differ from this binary's; %s", name, fix);
        return -1;
    }
    return 0;
}

static void rs_kv_handle_fill(rs_kv *kv, const rs_kv_options *opt) {
    rs_kv_header *h = kv->hdr;
    kv->shards = (rs_kv_shard *)(kv->base + h->off_shards);
    kv->shard_mask = h->shards - 1;
    kv->bucket_mask = h->buckets_per_shard - 1;
    kv->pages_per_shard = h->pages_per_shard;
    kv->page_bytes = h->page_bytes;
    kv->class_count = h->class_count;
    for (uint32_t i = 0; i < h->class_count; i++) {
        kv->class_bytes[i] = h->class_bytes[i];
        kv->chunks_per_page[i] = h->page_bytes / h->class_bytes[i];
    }
    kv->max_value_bytes = h->max_value_bytes;
    kv->clock = opt && opt->clock ? opt->clock : rs_kv_real_clock;
    kv->clock_ctx = opt ? opt->clock_ctx : NULL;
}

static int rs_kv_name_ok(const char *name, rs_err *err) {
    size_t n = strlen(name);
    if (n == 0 || n >= RS_KV_NAME_BYTES) {
        rs_err_set(err, "cache name '%.80s': must be 1..%d characters", name, RS_KV_NAME_BYTES - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || (i == 0 && c == '.')) {
            rs_err_set(err,
                       "cache name '%s': only letters, digits, '.', '_' and '-' (not leading '.')",
                       name);
            return -1;
        }
    }
    return 0;
}

/* Maps an existing segment and checks its header. The creator writes the
 * magic last, so a segment seen mid-creation is waited for (bounded). */
static rs_kv *rs_kv_map_existing(const char *name, const rs_kv_config *cfg,
                                 const rs_kv_options *opt, rs_err *err) {
    char shm_name[RS_KV_NAME_BYTES + 1];
    snprintf(shm_name, sizeof(shm_name), "/%s", name);
    int fd = shm_open(shm_name, O_RDWR, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            rs_err_set(err, "cache /%s: no such segment (no process has created the cache)", name);
        else
            rs_err_set(err, "cache /%s: shm_open: %s", name, strerror(errno));
        return NULL;
    }
    struct stat st;
    for (int waited_ms = 0;; waited_ms += 10) {
        if (fstat(fd, &st) != 0) {
            rs_err_set(err, "cache /%s: fstat: %s", name, strerror(errno));
            close(fd);
            return NULL;
        }
        if ((size_t)st.st_size >= sizeof(rs_kv_header)) {
            uint64_t magic = 0;
            if (pread(fd, &magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) && magic != 0) break;
        }
        if (waited_ms >= 2000) {
            rs_err_set(err,
                       "cache /%s: segment exists but was never initialised (creator died?); "
                       "remove it with `ringserve cache destroy --config F`",
                       name);
            close(fd);
            return NULL;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        rs_err_set(err, "cache /%s: mmap %lld bytes: %s", name, (long long)st.st_size,
                   strerror(errno));
        return NULL;
    }
    rs_kv_header *h = base;
    /* Shards follow the creator's io threads unless the caller fixed them. */
    rs_kv_geometry want;
    if (cfg) {
        rs_kv_options o = opt ? *opt : (rs_kv_options){0};
        if (!o.shards && h->shards && !(h->shards & (h->shards - 1))) o.shards = h->shards;
        if (rs_kv_geometry_make(cfg, &o, &want, err) != 0) {
            munmap(base, (size_t)st.st_size);
            return NULL;
        }
    }
    if (rs_kv_header_check(h, (uint64_t)st.st_size, cfg ? &want : NULL, name, err) != 0) {
        munmap(base, (size_t)st.st_size);
        return NULL;
    }
    rs_kv *kv = calloc(1, sizeof(*kv));
    if (!kv) {
        munmap(base, (size_t)st.st_size);
        rs_err_set(err, "cache /%s: out of memory", name);
        return NULL;
    }
    kv->hdr = h;
    kv->base = base;
    kv->map_bytes = (size_t)st.st_size;
    snprintf(kv->name, sizeof(kv->name), "%s", name);
    rs_kv_handle_fill(kv, opt);
    uint32_t io_threads = opt && opt->io_threads ? opt->io_threads : 1;
    if (h->shards < 4ull * io_threads)
        RS_WARN("cache /%s: segment has %u shards, fewer than 4 x %u io threads; recreate it "
                "(`ringserve cache destroy`) to shard it for this process",
                name, h->shards, io_threads);
    return kv;
}

static rs_kv *rs_kv_create(const char *shm_name, int fd, const rs_kv_config *cfg,
                           const rs_kv_geometry *g, const rs_kv_options *opt, rs_err *err) {
    void *base = MAP_FAILED;
    if (ftruncate(fd, (off_t)g->segment_bytes) != 0) {
        rs_err_set(err, "cache %s: ftruncate %" PRIu64 " bytes: %s", shm_name, g->segment_bytes,
                   strerror(errno));
        goto fail;
    }
    /* Reserve every page now: a full /dev/shm is refused here with a clear
     * line instead of a SIGBUS on some later set. */
    int rc = posix_fallocate(fd, 0, (off_t)g->segment_bytes);
    if (rc != 0) {
        rs_err_set(err,
                   "cache %s: cannot reserve %" PRIu64 " bytes of shared memory: %s "
                   "(is /dev/shm smaller than cache.capacity_mb?)",
                   shm_name, g->segment_bytes, strerror(rc));
        goto fail;
    }
    base = mmap(NULL, g->segment_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rs_err_set(err, "cache %s: mmap %" PRIu64 " bytes: %s", shm_name, g->segment_bytes,
                   strerror(errno));
        goto fail;
    }
    rs_kv *kv = calloc(1, sizeof(*kv));
    if (!kv) {
        rs_err_set(err, "cache %s: out of memory", shm_name);
        goto fail;
    }
    kv->base = base;
    kv->hdr = base;
    kv->map_bytes = g->segment_bytes;
    snprintf(kv->name, sizeof(kv->name), "%s", cfg->name);
    /* A fresh segment is zero-filled: empty buckets, uncarved pages. */
    rs_kv_header_init(kv->hdr, g, 0);
    rs_kv_handle_fill(kv, opt);
    rs_kv_header_init(kv->hdr, g, rs_kv_now_ms(kv));
    if (rs_kv_init_locks(kv->shards, g->shards, err, shm_name) != 0) {
        free(kv);
        goto fail;
    }
    atomic_store_explicit(&kv->hdr->magic, RS_KV_MAGIC, memory_order_release);
    close(fd);
    return kv;
fail:
    if (base != MAP_FAILED) munmap(base, g->segment_bytes);
    close(fd);
    shm_unlink(shm_name);
    return NULL;
}

static void rs_kv_apply_config(rs_kv *kv, const rs_kv_config *cfg) {
    kv->default_ttl_ms = cfg->default_ttl_s * 1000ull;
    kv->snapshot_interval_ms = cfg->snapshot_interval_s * 1000ull;
    snprintf(kv->persist, sizeof(kv->persist), "%s", cfg->persist);
    if (kv->persist[0]) {
        uint64_t want = rs_kv_now_ms(kv) + kv->snapshot_interval_ms;
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&kv->hdr->next_snapshot_ms, &zero, want);
    }
}

rs_kv *rs_kv_open(const rs_kv_config *cfg, const rs_kv_options *opt, rs_err *err) {
    if (rs_kv_name_ok(cfg->name, err) != 0) return NULL;
    rs_kv_geometry g;
    if (rs_kv_geometry_make(cfg, opt, &g, err) != 0) return NULL;
    char shm_name[RS_KV_NAME_BYTES + 1];
    snprintf(shm_name, sizeof(shm_name), "/%s", cfg->name);
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            rs_kv *kv = rs_kv_create(shm_name, fd, cfg, &g, opt, err);
            if (!kv) return NULL;
            rs_kv_apply_config(kv, cfg);
            RS_INFO("cache %s: created: %" PRIu64 " MiB of values in %u shards, %u classes, "
                    "max value %" PRIu64 " KiB",
                    shm_name, g.capacity_bytes >> 20, g.shards, g.class_count, cfg->max_value_kb);
            if (cfg->persist[0] && !(opt && opt->no_snapshot_load)) {
                rs_kv_load_report rep;
                rs_err lerr;
                if (rs_kv_snapshot_load(kv, cfg->persist, &rep, &lerr) != 0)
                    RS_WARN("cache %s: starting cold: %s", shm_name, lerr.msg);
                else if (rep.loaded)
                    RS_INFO("cache %s: warmed with %" PRIu64 " entries from %s", shm_name,
                            rep.loaded, cfg->persist);
            }
            return kv;
        }
        if (errno != EEXIST) {
            rs_err_set(err, "cache %s: shm_open: %s", shm_name, strerror(errno));
            return NULL;
        }
        rs_kv *kv = rs_kv_map_existing(cfg->name, cfg, opt, err);
        if (kv) {
            rs_kv_apply_config(kv, cfg);
            return kv;
        }
        if (strstr(err->msg, "no such segment") == NULL) return NULL;
        /* Removed between our two shm_open calls: try creating again. */
    }
    return NULL;
}

rs_kv *rs_kv_attach(const char *name, const rs_kv_options *opt, rs_err *err) {
    if (rs_kv_name_ok(name, err) != 0) return NULL;
    rs_kv *kv = rs_kv_map_existing(name, NULL, opt, err);
    if (kv) {
        rs_kv_config c;
        rs_kv_config_default(&c);
        c.persist[0] = '\0';
        rs_kv_apply_config(kv, &c);
    }
    return kv;
}

void rs_kv_detach(rs_kv *kv) {
    if (!kv) return;
    munmap(kv->base, kv->map_bytes);
    free(kv);
}

void rs_kv_close(rs_kv *kv) {
    if (!kv) return;
    if (kv->persist[0]) {
        rs_err err;
        if (rs_kv_snapshot_save(kv, kv->persist, &err) < 0)
            RS_WARN("cache %s: shutdown snapshot failed: %s", kv->name, err.msg);
    }
    rs_kv_detach(kv);
}

int rs_kv_destroy(const char *name, rs_err *err) {
    if (rs_kv_name_ok(name, err) != 0) return -1;
    char shm_name[RS_KV_NAME_BYTES + 1];
    snprintf(shm_name, sizeof(shm_name), "/%s", name);
    if (shm_unlink(shm_name) != 0) {
        rs_err_set(err, "cache %s: %s", shm_name,
                   errno == ENOENT ? "no such segment" : strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- operations ------------------------------------------------------------ */

static inline bool rs_kv_expired(const rs_kv_item *it, uint64_t now_ms) {
    return it->expire_ms != 0 && now_ms >= it->expire_ms;
}

rs_kv_status rs_kv_get(rs_kv *kv, const rs_kv_key *key, void *buf, size_t buf_bytes,
                       size_t *value_len) {
    uint64_t now = rs_kv_now_ms(kv);
    rs_kv_shard *sh = rs_kv_shard_of(kv, key);
    uint32_t shard = rs_kv_shard_index(kv, sh);
    if (rs_kv_lock(kv, sh) != 0) return RS_KV_ERROR;
    uint8_t *pages = rs_kv_pages_of(kv, shard);
    uint32_t *link = NULL;
    rs_kv_item *it = rs_kv_find(kv, shard, pages, key, &link);
    if (it && rs_kv_expired(it, now)) {
        rs_kv_unlink_free(kv, sh, pages, link, it);
        sh->expired++;
        it = NULL;
    }
    if (!it) {
        sh->misses++;
        rs_kv_unlock(sh);
        return RS_KV_MISS;
    }
    uint32_t len = it->value_len;
    if (value_len) *value_len = len;
    if (len > buf_bytes || len > kv->max_value_bytes) {
        rs_kv_unlock(sh);
        return len > kv->max_value_bytes ? RS_KV_MISS : RS_KV_TOO_SMALL;
    }
    /* Verify before copying: under the lock nobody can change it meanwhile. */
    if (__builtin_expect(rs_kv_item_sum(it) != it->checksum, 0)) {
        rs_kv_unlink_free(kv, sh, pages, link, it);
        sh->torn++;
        sh->misses++;
        rs_kv_unlock(sh);
        RS_LOG_ONCE(RS_LOG_WARN, "cache %s: dropped an entry with a bad checksum", kv->name);
        return RS_KV_MISS;
    }
    if (len) memcpy(buf, it->value, len);
    it->flags |= RS_KV_F_REF;
    sh->hits++;
    rs_kv_unlock(sh);
    return RS_KV_OK;
}

rs_kv_status rs_kv_set_abs(rs_kv *kv, const rs_kv_key *key, const void *value, size_t len,
                           uint64_t expire_ms) {
    rs_kv_shard *sh = rs_kv_shard_of(kv, key);
    if (len > kv->max_value_bytes) {
        atomic_fetch_add_explicit(&sh->oversize, 1, memory_order_relaxed);
        return RS_KV_OVERSIZE;
    }
    uint32_t cls = rs_kv_class_for(kv, len);
    uint32_t shard = rs_kv_shard_index(kv, sh);
    if (rs_kv_lock(kv, sh) != 0) return RS_KV_ERROR;
    uint8_t *pages = rs_kv_pages_of(kv, shard);
    /* Drop the old entry first: a writer killed mid-set then leaves a miss,
     * never two entries for one key. */
    uint32_t *link = NULL;
    rs_kv_item *old = rs_kv_find(kv, shard, pages, key, &link);
    if (old) rs_kv_unlink_free(kv, sh, pages, link, old);
    rs_kv_item *it = rs_kv_alloc(kv, sh, pages, cls);
    RS_ASSERT(it != NULL); /* a class can always get a chunk: evict, carve or steal */
    it->key_lo = key->lo;
    it->key_hi = key->hi;
    it->expire_ms = expire_ms;
    it->value_len = (uint32_t)len;
    it->pad1 = 0;
    if (len) memcpy(it->value, value, len);
    it->checksum = rs_kv_item_sum(it);
    it->flags = RS_KV_F_USED;
    uint32_t *head = &rs_kv_buckets_of(kv, shard)[key->hi & kv->bucket_mask];
    it->next = *head;
    *head = rs_kv_ref_of(pages, it);
    sh->sets++;
    sh->items++;
    sh->value_bytes += len;
    sh->used_bytes += kv->class_bytes[cls];
    rs_kv_unlock(sh);
    return RS_KV_OK;
}

rs_kv_status rs_kv_set(rs_kv *kv, const rs_kv_key *key, const void *value, size_t len,
                       int64_t ttl_s) {
    uint64_t ttl_ms = ttl_s < 0 ? kv->default_ttl_ms : (uint64_t)ttl_s * 1000ull;
    uint64_t expire = ttl_ms ? rs_kv_now_ms(kv) + ttl_ms : 0;
    return rs_kv_set_abs(kv, key, value, len, expire);
}

rs_kv_status rs_kv_del(rs_kv *kv, const rs_kv_key *key) {
    rs_kv_shard *sh = rs_kv_shard_of(kv, key);
    uint32_t shard = rs_kv_shard_index(kv, sh);
    if (rs_kv_lock(kv, sh) != 0) return RS_KV_ERROR;
    uint8_t *pages = rs_kv_pages_of(kv, shard);
    uint32_t *link = NULL;
    rs_kv_item *it = rs_kv_find(kv, shard, pages, key, &link);
    if (it) {
        rs_kv_unlink_free(kv, sh, pages, link, it);
        sh->deletes++;
    }
    rs_kv_unlock(sh);
    return it ? RS_KV_OK : RS_KV_MISS;
}

int rs_kv_ttl_left_ms(rs_kv *kv, const rs_kv_key *key, uint64_t *ttl_left_ms) {
    uint64_t now = rs_kv_now_ms(kv);
    rs_kv_shard *sh = rs_kv_shard_of(kv, key);
    uint32_t shard = rs_kv_shard_index(kv, sh);
    if (rs_kv_lock(kv, sh) != 0) return -1;
    uint32_t *link = NULL;
    rs_kv_item *it = rs_kv_find(kv, shard, rs_kv_pages_of(kv, shard), key, &link);
    int rc = -1;
    if (it && !rs_kv_expired(it, now)) {
        rc = 0;
        if (ttl_left_ms) *ttl_left_ms = it->expire_ms ? it->expire_ms - now : UINT64_MAX;
    }
    rs_kv_unlock(sh);
    return rc;
}

bool rs_kv_exists(rs_kv *kv, const rs_kv_key *key) {
    return rs_kv_ttl_left_ms(kv, key, NULL) == 0;
}

void rs_kv_clear(rs_kv *kv) {
    for (uint32_t s = 0; s <= kv->shard_mask; s++) {
        rs_kv_shard *sh = &kv->shards[s];
        if (rs_kv_lock(kv, sh) != 0) continue;
        memset(rs_kv_buckets_of(kv, s), 0, (uint64_t)(kv->bucket_mask + 1) * sizeof(uint32_t));
        memset(rs_kv_page_class_of(kv, s), 0, kv->pages_per_shard);
        memset(sh->cls, 0, sizeof(sh->cls));
        sh->pages_carved = 0;
        sh->steal_hand = 0;
        sh->items = sh->value_bytes = sh->used_bytes = 0;
        rs_kv_unlock(sh);
    }
}

uint64_t rs_kv_sweep(rs_kv *kv) {
    uint64_t now = rs_kv_now_ms(kv), freed = 0;
    for (uint32_t s = 0; s <= kv->shard_mask; s++) {
        rs_kv_shard *sh = &kv->shards[s];
        if (rs_kv_lock(kv, sh) != 0) continue;
        uint8_t *pages = rs_kv_pages_of(kv, s);
        const uint8_t *page_class = rs_kv_page_class_of(kv, s);
        for (uint32_t p = 0; p < sh->pages_carved; p++) {
            uint32_t cls = page_class[p] - 1u;
            for (uint32_t i = 0; i < kv->chunks_per_page[cls]; i++) {
                rs_kv_item *it = rs_kv_chunk(kv, pages, p, cls, i);
                if ((it->flags & RS_KV_F_USED) && rs_kv_expired(it, now)) {
                    rs_kv_remove(kv, sh, pages, it);
                    sh->expired++;
                    freed++;
                }
            }
        }
        rs_kv_unlock(sh);
    }
    return freed;
}

int rs_kv_tick(rs_kv *kv) {
    uint64_t now = rs_kv_now_ms(kv);
    uint64_t due = atomic_load(&kv->hdr->next_sweep_ms);
    if (now >= due && atomic_compare_exchange_strong(&kv->hdr->next_sweep_ms, &due, now + 1000))
        rs_kv_sweep(kv);
    if (!kv->persist[0]) return 0;
    due = atomic_load(&kv->hdr->next_snapshot_ms);
    if (now >= due && atomic_compare_exchange_strong(&kv->hdr->next_snapshot_ms, &due,
                                                     now + kv->snapshot_interval_ms)) {
        rs_err err;
        if (rs_kv_snapshot_save(kv, kv->persist, &err) < 0) {
            RS_WARN("cache %s: periodic snapshot failed: %s", kv->name, err.msg);
            return -1;
        }
    }
    return 0;
}

void rs_kv_stats_get(rs_kv *kv, rs_kv_stats *out) {
    memset(out, 0, sizeof(*out));
    for (uint32_t s = 0; s <= kv->shard_mask; s++) {
        const rs_kv_shard *sh = &kv->shards[s];
        out->hits += __atomic_load_n(&sh->hits, __ATOMIC_RELAXED);
        out->misses += __atomic_load_n(&sh->misses, __ATOMIC_RELAXED);
        out->sets += __atomic_load_n(&sh->sets, __ATOMIC_RELAXED);
        out->deletes += __atomic_load_n(&sh->deletes, __ATOMIC_RELAXED);
        out->items += __atomic_load_n(&sh->items, __ATOMIC_RELAXED);
        out->value_bytes += __atomic_load_n(&sh->value_bytes, __ATOMIC_RELAXED);
        out->used_bytes += __atomic_load_n(&sh->used_bytes, __ATOMIC_RELAXED);
        out->evictions += __atomic_load_n(&sh->evictions, __ATOMIC_RELAXED);
        out->expired += __atomic_load_n(&sh->expired, __ATOMIC_RELAXED);
        out->recoveries += __atomic_load_n(&sh->recoveries, __ATOMIC_RELAXED);
        out->torn += __atomic_load_n(&sh->torn, __ATOMIC_RELAXED);
        out->oversize += atomic_load_explicit(&sh->oversize, memory_order_relaxed);
    }
    uint64_t lookups = out->hits + out->misses;
    out->hit_rate = lookups ? (double)out->hits / (double)lookups : 0.0;
    out->capacity_bytes = kv->hdr->capacity_bytes;
    out->shards = kv->shard_mask + 1;
    out->max_value_bytes = kv->max_value_bytes;
}

/* ---- page visits for the snapshot writer ----------------------------------- */

uint64_t rs_kv_page_count(const rs_kv *kv) {
    return (uint64_t)(kv->shard_mask + 1) * kv->pages_per_shard;
}

void rs_kv_visit_page(rs_kv *kv, uint64_t page, uint64_t now_ms, rs_kv_visit_fn fn, void *ctx) {
    uint32_t s = (uint32_t)(page / kv->pages_per_shard);
    uint32_t p = (uint32_t)(page % kv->pages_per_shard);
    rs_kv_shard *sh = &kv->shards[s];
    if (rs_kv_lock(kv, sh) != 0) return;
    if (p < sh->pages_carved) {
        uint8_t *pages = rs_kv_pages_of(kv, s);
        uint32_t cls = rs_kv_page_class_of(kv, s)[p] - 1u;
        for (uint32_t i = 0; i < kv->chunks_per_page[cls]; i++) {
            rs_kv_item *it = rs_kv_chunk(kv, pages, p, cls, i);
            if ((it->flags & RS_KV_F_USED) && !rs_kv_expired(it, now_ms) &&
                rs_kv_item_sum(it) == it->checksum)
                fn(ctx, it);
        }
    }
    rs_kv_unlock(sh);
}

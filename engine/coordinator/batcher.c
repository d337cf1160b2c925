/* batcher.c — per-model dynamic batcher (policy in batcher.h).
 *
 * Storage: one entry array (max_queue_size + max_inflight) with a free stack;
 * per priority level a doubly linked FIFO of queued leaders; a chained hash
 * table from key to leader for coalescing; followers hang off their leader in
 * a singly linked list. Deadlines are checked by a scan that runs only when
 * the clock has passed the earliest known deadline. */
#include "engine/coordinator/batcher.h"

#include <stdlib.h>
#include <string.h>

#include "engine/common/log.h"

#define NIL UINT32_MAX

typedef enum { E_FREE = 0, E_QUEUED, E_INFLIGHT, E_FOLLOWER } entry_state;

typedef struct entry {
    uint64_t token;
    uint64_t enqueued_us;
    uint64_t deadline_us; /* UINT64_MAX: none */
    rs_batcher_key key;
    uint32_t prev, next;   /* FIFO links (queued) or follower chain (next) */
    uint32_t fhead, ftail; /* followers (leaders only) */
    uint32_t hnext;        /* key table chain */
    uint32_t leader;       /* followers: their leader */
    uint32_t rows;
    uint8_t state;
    uint8_t has_key;
    uint8_t in_table;
    uint8_t priority; /* 1..levels */
} entry;

typedef struct fifo {
    uint32_t head, tail;
} fifo;

struct rs_batcher {
    rs_batcher_config cfg;
    uint32_t largest_preferred;
    uint32_t cap;
    entry *e;
    uint32_t *free_stack;
    uint32_t free_top;
    uint32_t *table;
    uint32_t table_mask;
    fifo q[RS_BATCHER_MAX_PRIORITIES + 1]; /* index = level */
    uint64_t min_deadline_us;              /* lower bound over waiting entries */
    rs_batcher_stats st;
};

void rs_batcher_config_default(rs_batcher_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_batch_size = 8;
    cfg->max_queue_delay_us = 500;
    cfg->max_queue_size = 1024;
    cfg->priority_levels = 1;
    cfg->default_priority = 1;
    cfg->batchable = true;
}

int rs_batcher_config_check(const rs_batcher_config *cfg, rs_err *err) {
    if (cfg->max_batch_size < 1 || cfg->max_batch_size > 65536) {
        rs_err_set(err, "max_batch_size: %u: must be 1..65536", cfg->max_batch_size);
        return -1;
    }
    if (!cfg->batchable && cfg->max_batch_size != 1) {
        rs_err_set(err, "max_batch_size: %u: must be 1 when batchable is false",
                   cfg->max_batch_size);
        return -1;
    }
    if (cfg->preferred_count > RS_BATCHER_MAX_PREFERRED) {
        rs_err_set(err, "preferred_batch_sizes: %u sizes: at most %d", cfg->preferred_count,
                   RS_BATCHER_MAX_PREFERRED);
        return -1;
    }
    for (uint32_t i = 0; i < cfg->preferred_count; i++) {
        uint32_t p = cfg->preferred_batch_sizes[i];
        if (p < 1 || p > cfg->max_batch_size) {
            rs_err_set(err, "preferred_batch_sizes[%u]: %u: must be 1..max_batch_size (%u)", i, p,
                       cfg->max_batch_size);
            return -1;
        }
    }
    if (cfg->max_queue_size < 1 || cfg->max_queue_size > (1u << 24)) {
        rs_err_set(err, "max_queue_size: %u: must be 1..16777216", cfg->max_queue_size);
        return -1;
    }
    if (cfg->max_inflight > (1u << 24)) {
        rs_err_set(err, "max_inflight: %u: must be at most 16777216", cfg->max_inflight);
        return -1;
    }
    if (cfg->priority_levels < 1 || cfg->priority_levels > RS_BATCHER_MAX_PRIORITIES) {
        rs_err_set(err, "priority_levels: %u: must be 1..%d", cfg->priority_levels,
                   RS_BATCHER_MAX_PRIORITIES);
        return -1;
    }
    if (cfg->default_priority < 1 || cfg->default_priority > cfg->priority_levels) {
        rs_err_set(err, "default_priority: %u: must be 1..priority_levels (%u)",
                   cfg->default_priority, cfg->priority_levels);
        return -1;
    }
    return 0;
}

const char *rs_batcher_status_name(rs_batcher_status st) {
    switch (st) {
    case RS_BATCHER_QUEUED: return "queued";
    case RS_BATCHER_COALESCED: return "coalesced";
    case RS_BATCHER_OVERLOADED: return "overloaded";
    case RS_BATCHER_BAD_PRIORITY: return "bad priority";
    case RS_BATCHER_EXPIRED: return "expired";
    case RS_BATCHER_TOO_LARGE: return "too large";
    }
    return "unknown";
}

rs_batcher *rs_batcher_create(const rs_batcher_config *cfg, rs_err *err) {
    if (rs_batcher_config_check(cfg, err) != 0) return NULL;
    rs_batcher *b = calloc(1, sizeof(*b));
    if (!b) {
        rs_err_set(err, "batcher: out of memory");
        return NULL;
    }
    b->cfg = *cfg;
    if (b->cfg.max_inflight == 0) b->cfg.max_inflight = 4 * b->cfg.max_batch_size;
    for (uint32_t i = 0; i < cfg->preferred_count; i++)
        if (cfg->preferred_batch_sizes[i] > b->largest_preferred)
            b->largest_preferred = cfg->preferred_batch_sizes[i];
    b->cap = b->cfg.max_queue_size + b->cfg.max_inflight;
    uint32_t tsize = 16;
    while (tsize < 2 * b->cap)
        tsize <<= 1;
    b->table_mask = tsize - 1;
    b->e = calloc(b->cap, sizeof(entry));
    b->free_stack = calloc(b->cap, sizeof(uint32_t));
    b->table = malloc(sizeof(uint32_t) * tsize);
    if (!b->e || !b->free_stack || !b->table) {
        rs_batcher_destroy(b);
        rs_err_set(err, "batcher: out of memory for %u entries", b->cap);
        return NULL;
    }
    for (uint32_t i = 0; i < tsize; i++)
        b->table[i] = NIL;
    for (uint32_t i = 0; i < b->cap; i++)
        b->free_stack[i] = b->cap - 1 - i;
    b->free_top = b->cap;
    for (uint32_t l = 0; l <= RS_BATCHER_MAX_PRIORITIES; l++)
        b->q[l].head = b->q[l].tail = NIL;
    b->min_deadline_us = UINT64_MAX;
    return b;
}

void rs_batcher_destroy(rs_batcher *b) {
    if (!b) return;
    free(b->e);
    free(b->free_stack);
    free(b->table);
    free(b);
}

/* ---- entries, FIFOs, key table ------------------------------------------ */

static uint32_t entry_alloc(rs_batcher *b) {
    RS_ASSERT(b->free_top > 0);
    uint32_t i = b->free_stack[--b->free_top];
    entry *x = &b->e[i];
    memset(x, 0, sizeof(*x));
    x->prev = x->next = x->fhead = x->ftail = x->hnext = x->leader = NIL;
    return i;
}

static void entry_free(rs_batcher *b, uint32_t i) {
    RS_ASSERT(b->e[i].state != E_FREE);
    b->e[i].state = E_FREE;
    b->free_stack[b->free_top++] = i;
}

static void fifo_push(rs_batcher *b, fifo *f, uint32_t i) {
    entry *x = &b->e[i];
    x->next = NIL;
    x->prev = f->tail;
    if (f->tail != NIL)
        b->e[f->tail].next = i;
    else
        f->head = i;
    f->tail = i;
}

static void fifo_remove(rs_batcher *b, fifo *f, uint32_t i) {
    entry *x = &b->e[i];
    if (x->prev != NIL)
        b->e[x->prev].next = x->next;
    else
        f->head = x->next;
    if (x->next != NIL)
        b->e[x->next].prev = x->prev;
    else
        f->tail = x->prev;
    x->prev = x->next = NIL;
}

/* Puts j where i is in i's FIFO (a follower takes its expired leader's place). */
static void fifo_replace(rs_batcher *b, fifo *f, uint32_t i, uint32_t j) {
    entry *x = &b->e[i], *y = &b->e[j];
    y->prev = x->prev;
    y->next = x->next;
    if (x->prev != NIL)
        b->e[x->prev].next = j;
    else
        f->head = j;
    if (x->next != NIL)
        b->e[x->next].prev = j;
    else
        f->tail = j;
    x->prev = x->next = NIL;
}

/* Keys are XXH3-128 in practice, but the bucket must not depend on that:
 * both halves go through a full 64-bit mix (murmur3's finalizer). */
static uint32_t key_bucket(const rs_batcher *b, const rs_batcher_key *k) {
    uint64_t h = k->lo ^ ((k->hi << 31) | (k->hi >> 33)) ^ 0x9e3779b97f4a7c15ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h & b->table_mask;
}

static uint32_t table_find(const rs_batcher *b, const rs_batcher_key *k) {
    for (uint32_t i = b->table[key_bucket(b, k)]; i != NIL; i = b->e[i].hnext)
        if (b->e[i].key.lo == k->lo && b->e[i].key.hi == k->hi) return i;
    return NIL;
}

static void table_insert(rs_batcher *b, uint32_t i) {
    uint32_t h = key_bucket(b, &b->e[i].key);
    b->e[i].hnext = b->table[h];
    b->table[h] = i;
    b->e[i].in_table = 1;
}

static void table_remove(rs_batcher *b, uint32_t i) {
    if (!b->e[i].in_table) return;
    uint32_t *p = &b->table[key_bucket(b, &b->e[i].key)];
    while (*p != i) {
        RS_ASSERT(*p != NIL);
        p = &b->e[*p].hnext;
    }
    *p = b->e[i].hnext;
    b->e[i].hnext = NIL;
    b->e[i].in_table = 0;
}

static void follower_append(rs_batcher *b, uint32_t leader, uint32_t f) {
    entry *l = &b->e[leader];
    b->e[f].next = NIL;
    b->e[f].leader = leader;
    if (l->ftail != NIL)
        b->e[l->ftail].next = f;
    else
        l->fhead = f;
    l->ftail = f;
}

/* ---- submit --------------------------------------------------------------- */

rs_batcher_status rs_batcher_submit(rs_batcher *b, uint64_t now_us, const rs_batcher_request *req) {
    uint32_t level = req->priority ? req->priority : b->cfg.default_priority;
    if (level > b->cfg.priority_levels) return RS_BATCHER_BAD_PRIORITY;
    uint32_t rows = req->rows ? req->rows : 1;
    if (rows > b->cfg.max_batch_size) return RS_BATCHER_TOO_LARGE;
    uint64_t deadline = req->deadline_us;
    if (deadline == 0)
        deadline = b->cfg.default_timeout_us ? now_us + b->cfg.default_timeout_us : UINT64_MAX;
    if (deadline <= now_us) {
        b->st.expired++;
        return RS_BATCHER_EXPIRED;
    }
    if (b->st.queued + b->st.followers >= b->cfg.max_queue_size) {
        b->st.overloaded++;
        return RS_BATCHER_OVERLOADED;
    }
    uint32_t leader = req->has_key ? table_find(b, &req->key) : NIL;
    uint32_t i = entry_alloc(b);
    entry *x = &b->e[i];
    x->token = req->token;
    x->enqueued_us = now_us;
    x->deadline_us = deadline;
    x->has_key = req->has_key;
    x->key = req->key;
    x->priority = (uint8_t)level;
    x->rows = rows;
    if (deadline < b->min_deadline_us) b->min_deadline_us = deadline;
    b->st.submitted++;
    if (leader != NIL) {
        x->state = E_FOLLOWER;
        follower_append(b, leader, i);
        b->st.followers++;
        b->st.coalesced++;
        return RS_BATCHER_COALESCED;
    }
    x->state = E_QUEUED;
    fifo_push(b, &b->q[level], i);
    if (x->has_key) table_insert(b, i);
    b->st.queued++;
    b->st.queued_rows += rows;
    return RS_BATCHER_QUEUED;
}

/* ---- expiry --------------------------------------------------------------- */

/* Unlinks follower f from its leader's chain. */
static void follower_unlink(rs_batcher *b, uint32_t f) {
    entry *l = &b->e[b->e[f].leader];
    uint32_t prev = NIL;
    for (uint32_t i = l->fhead; i != NIL; prev = i, i = b->e[i].next) {
        if (i != f) continue;
        if (prev != NIL)
            b->e[prev].next = b->e[i].next;
        else
            l->fhead = b->e[i].next;
        if (l->ftail == f) l->ftail = prev;
        return;
    }
    RS_ASSERT(!"follower not on its leader's chain");
}

/* An expired queued leader: its first follower (none of them expired: they
 * were removed first) takes its place in the queue and in the key table. */
static void leader_expire(rs_batcher *b, uint32_t i) {
    entry *x = &b->e[i];
    fifo *f = &b->q[x->priority];
    table_remove(b, i);
    uint32_t n = x->fhead;
    b->st.queued_rows -= x->rows;
    if (n == NIL) {
        fifo_remove(b, f, i);
        b->st.queued--;
        return;
    }
    entry *y = &b->e[n];
    y->fhead = y->next;
    y->ftail = y->fhead == NIL ? NIL : x->ftail;
    for (uint32_t k = y->fhead; k != NIL; k = b->e[k].next)
        b->e[k].leader = n;
    y->state = E_QUEUED;
    y->priority = x->priority;
    y->enqueued_us = x->enqueued_us; /* keeps the queue position's timer */
    y->leader = NIL;
    fifo_replace(b, f, i, n);
    if (y->has_key) table_insert(b, n);
    b->st.followers--;
    b->st.queued_rows += y->rows;
}

static void expire(rs_batcher *b, uint64_t now_us, rs_batcher_token_fn fn, void *arg) {
    if (now_us < b->min_deadline_us) return;
    uint64_t next_min = UINT64_MAX;
    /* Followers first, so that a promoted follower is never already expired. */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < b->cap; i++) {
            entry *x = &b->e[i];
            uint8_t want = pass == 0 ? E_FOLLOWER : E_QUEUED;
            if (x->state != want) continue;
            if (x->deadline_us > now_us) {
                if (x->deadline_us < next_min) next_min = x->deadline_us;
                continue;
            }
            uint64_t token = x->token;
            if (pass == 0) {
                follower_unlink(b, i);
                b->st.followers--;
            } else {
                leader_expire(b, i);
            }
            entry_free(b, i);
            b->st.expired++;
            fn(arg, token);
        }
    }
    /* A promoted follower keeps its own deadline, which was > now_us and was
     * counted in pass 0. */
    b->min_deadline_us = next_min;
}

/* ---- poll ----------------------------------------------------------------- */

static uint64_t oldest_enqueued(const rs_batcher *b) {
    uint64_t oldest = UINT64_MAX;
    for (uint32_t l = 1; l <= b->cfg.priority_levels; l++) {
        uint32_t h = b->q[l].head;
        if (h != NIL && b->e[h].enqueued_us < oldest) oldest = b->e[h].enqueued_us;
    }
    return oldest;
}

/* Target rows of the batch due now, or 0.
 *
 * A full batch or the largest preferred size goes at once. Nothing of the
 * model out (idle): a lone request goes at once with dispatch_when_idle, and
 * a queue that reached any preferred size goes at once, whole (waiting would
 * only add latency). Otherwise the oldest request waits up to max_queue_delay_us for
 * company; once it has waited that long everything queued goes as one batch
 * (cutting it down to a preferred size would run the rest as a second, small
 * batch right behind it: more batches, less throughput, the same wait). */
static uint32_t due_rows(const rs_batcher *b, uint64_t now_us) {
    uint32_t q = b->st.queued_rows;
    if (b->st.queued == 0) return 0;
    if (!b->cfg.batchable) return 1;
    uint32_t max = b->cfg.max_batch_size;
    if (q >= max) return max;
    if (b->largest_preferred && q >= b->largest_preferred) return b->largest_preferred;
    if (b->st.inflight == 0) {
        if (b->cfg.dispatch_when_idle) return q;
        for (uint32_t i = 0; i < b->cfg.preferred_count; i++)
            if (b->cfg.preferred_batch_sizes[i] <= q) return q;
    }
    uint64_t oldest = oldest_enqueued(b);
    if (now_us < oldest || now_us - oldest < b->cfg.max_queue_delay_us) return 0;
    return q;
}

uint32_t rs_batcher_poll(rs_batcher *b, uint64_t now_us, rs_batcher_token_fn on_expired, void *arg,
                         rs_batcher_item *items, uint32_t *rows_out) {
    RS_ASSERT(on_expired != NULL);
    expire(b, now_us, on_expired, arg);
    if (rows_out) *rows_out = 0;
    uint32_t room = b->cfg.max_inflight - b->st.inflight;
    uint32_t target = due_rows(b, now_us);
    if (target == 0 || room == 0) return 0;
    uint32_t got = 0, rows = 0;
    bool full = false;
    for (uint32_t l = 1; l <= b->cfg.priority_levels && !full; l++) {
        while (b->q[l].head != NIL) {
            uint32_t i = b->q[l].head;
            entry *x = &b->e[i];
            /* in order: stop at the first request that does not fit */
            if (got == room || (got > 0 && rows + x->rows > target)) {
                full = true;
                break;
            }
            fifo_remove(b, &b->q[l], i);
            x->state = E_INFLIGHT;
            items[got++] = (rs_batcher_item){.token = x->token,
                                             .ticket = i,
                                             .rows = x->rows,
                                             .priority = x->priority,
                                             .enqueued_us = x->enqueued_us};
            rows += x->rows;
        }
    }
    RS_ASSERT(got > 0 && rows <= b->cfg.max_batch_size);
    b->st.queued -= got;
    b->st.queued_rows -= rows;
    b->st.inflight += got;
    b->st.batches++;
    b->st.dispatched += got;
    if (rows_out) *rows_out = rows;
    return got;
}

/* Reports a leader (already out of its queue) and its followers, frees them
 * all and returns how many were reported. */
static uint32_t release_leader(rs_batcher *b, uint32_t i, rs_batcher_token_fn fn, void *arg) {
    entry *x = &b->e[i];
    table_remove(b, i);
    uint32_t count = 1;
    fn(arg, x->token);
    for (uint32_t f = x->fhead; f != NIL;) {
        uint32_t next = b->e[f].next;
        fn(arg, b->e[f].token);
        entry_free(b, f);
        b->st.followers--;
        count++;
        f = next;
    }
    entry_free(b, i);
    return count;
}

uint32_t rs_batcher_complete(rs_batcher *b, uint32_t ticket, rs_batcher_token_fn fn, void *arg) {
    RS_ASSERT(ticket < b->cap && b->e[ticket].state == E_INFLIGHT);
    b->st.inflight--;
    return release_leader(b, ticket, fn, arg);
}

uint64_t rs_batcher_next_event_us(const rs_batcher *b, uint64_t now_us) {
    uint64_t next = UINT64_MAX;
    if (b->st.queued > 0 && b->st.inflight < b->cfg.max_inflight) {
        if (due_rows(b, now_us) > 0) return now_us;
        uint64_t oldest = oldest_enqueued(b);
        next = oldest + b->cfg.max_queue_delay_us;
    }
    if (b->st.queued + b->st.followers > 0 && b->min_deadline_us < next) next = b->min_deadline_us;
    return next;
}

uint32_t rs_batcher_drain(rs_batcher *b, rs_batcher_token_fn fn, void *arg) {
    uint32_t count = 0;
    for (uint32_t l = 1; l <= b->cfg.priority_levels; l++) {
        while (b->q[l].head != NIL) {
            uint32_t i = b->q[l].head;
            fifo_remove(b, &b->q[l], i);
            b->st.queued_rows -= b->e[i].rows;
            b->st.queued--;
            count += release_leader(b, i, fn, arg);
        }
    }
    return count;
}

void rs_batcher_stats_get(const rs_batcher *b, rs_batcher_stats *out) {
    *out = b->st;
}

const rs_batcher_config *rs_batcher_get_config(const rs_batcher *b) {
    return &b->cfg;
}

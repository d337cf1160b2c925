/* coord_async.c — results of asynchronous requests, kept for polling.
 *
 * A request submitted with "async" (HTTP parameter or the framed SUBMIT)
 * reserves a slot here and is answered 202 with its id at once; when it
 * finishes, its rendered response (or error) is copied into the slot and
 * kept for async_result_ttl_s. Any core may be asked for it (a poll can
 * arrive on another connection), hence one table behind a mutex: polls and
 * completions are rare next to the inference path. Bounded: a full table
 * answers "overloaded"; slot memory is reserved at start. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "engine/coordinator/coord.h"

typedef enum rs_async_state { RS_AS_FREE = 0, RS_AS_PENDING, RS_AS_DONE } rs_async_state;

typedef struct rs_async_slot {
    rs_async_state state;
    rs_origin origin;
    uint32_t gen;
    rs_status status;
    uint64_t expires_ms; /* DONE: dropped after this (monotonic ms) */
    size_t len;
    size_t json_len;
    uint8_t *bytes; /* max_async_result_bytes */
} rs_async_slot;

int rs_async_init(rs_coord *co, rs_err *err) {
    pthread_mutex_init(&co->async_lock, NULL);
    uint32_t n = co->cfg.max_async_results;
    co->async = calloc(n, sizeof(rs_async_slot));
    if (!co->async) {
        rs_err_set(err, "async table: out of memory (%u slots)", n);
        return -1;
    }
    size_t total = (size_t)n * co->cfg.max_async_result_bytes;
    uint8_t *mem = rs_coord_reserve(total);
    if (!mem) {
        rs_err_set(err, "async table: cannot reserve %zu bytes", total);
        free(co->async);
        co->async = NULL;
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) co->async[i].bytes = mem + (size_t)i * co->cfg.max_async_result_bytes;
    return 0;
}

void rs_async_fini(rs_coord *co) {
    if (!co->async) return;
    munmap(co->async[0].bytes, (size_t)co->cfg.max_async_results * co->cfg.max_async_result_bytes);
    free(co->async);
    co->async = NULL;
    pthread_mutex_destroy(&co->async_lock);
}

static uint64_t rs_async_id(uint32_t slot, uint32_t gen) {
    return ((uint64_t)gen << 32) | (uint64_t)(slot + 1);
}

static rs_async_slot *rs_async_find(rs_coord *co, uint64_t id) {
    uint32_t slot = (uint32_t)(id & 0xffffffffu);
    uint32_t gen = (uint32_t)(id >> 32);
    if (slot == 0 || slot > co->cfg.max_async_results) return NULL;
    rs_async_slot *s = &co->async[slot - 1];
    if (s->state == RS_AS_FREE || s->gen != gen) return NULL;
    return s;
}

uint64_t rs_async_reserve(rs_coord *co, rs_origin origin) {
    uint64_t now_ms = rs_now_ms();
    uint64_t id = 0;
    pthread_mutex_lock(&co->async_lock);
    for (uint32_t i = 0; i < co->cfg.max_async_results; i++) {
        rs_async_slot *s = &co->async[i];
        if (s->state == RS_AS_DONE && s->expires_ms <= now_ms) s->state = RS_AS_FREE;
        if (s->state != RS_AS_FREE) continue;
        s->state = RS_AS_PENDING;
        s->origin = origin;
        s->gen++;
        if (s->gen == 0) s->gen = 1;
        s->len = 0;
        id = rs_async_id(i, s->gen);
        break;
    }
    pthread_mutex_unlock(&co->async_lock);
    return id;
}

void rs_async_complete(rs_coord *co, uint64_t id, rs_status st, const void *bytes, size_t len,
                       size_t json_len) {
    pthread_mutex_lock(&co->async_lock);
    rs_async_slot *s = rs_async_find(co, id);
    if (s && s->state == RS_AS_PENDING) {
        if (len > co->cfg.max_async_result_bytes) {
            static const char msg[] = "result larger than server.max_async_result_bytes";
            st = RS_E_INTERNAL;
            bytes = msg;
            len = sizeof(msg) - 1;
            json_len = len;
        }
        s->status = st;
        memcpy(s->bytes, bytes, len);
        s->len = len;
        s->json_len = json_len;
        s->state = RS_AS_DONE;
        s->expires_ms = rs_now_ms() + co->cfg.async_result_ttl_s * 1000;
    }
    pthread_mutex_unlock(&co->async_lock);
}

rs_status rs_async_lookup(rs_coord *co, uint64_t id, rs_origin origin, rs_status *result_st,
                          void *out, size_t out_cap, size_t *len, size_t *json_len) {
    rs_status r = RS_E_NOT_FOUND;
    pthread_mutex_lock(&co->async_lock);
    rs_async_slot *s = rs_async_find(co, id);
    if (s && s->state == RS_AS_DONE && s->expires_ms <= rs_now_ms()) {
        s->state = RS_AS_FREE;
        s = NULL;
    }
    if (s && s->origin == origin) {
        if (s->state == RS_AS_PENDING) {
            r = RS_E_PENDING;
        } else if (s->len <= out_cap) {
            memcpy(out, s->bytes, s->len);
            *len = s->len;
            *json_len = s->json_len;
            *result_st = s->status;
            r = RS_OK;
        } else {
            r = RS_E_INTERNAL;
        }
    }
    pthread_mutex_unlock(&co->async_lock);
    return r;
}

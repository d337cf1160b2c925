/* kv_key.c — response-cache keys: XXH3-128 of a request's identity.
 *
 * Every variable-length field is length-prefixed and inputs are hashed in
 * name order, so two requests share a key only when model, version and
 * every input (name, dtype, shape, bytes) are equal, in any input order. */
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no allocation */
#include <xxhash.h>

#include "engine/kvstore/kvstore.h"

static void rs_kv_feed_u64(XXH3_state_t *st, uint64_t v) {
    XXH3_128bits_update(st, &v, sizeof(v));
}

static void rs_kv_feed_str(XXH3_state_t *st, const char *p, size_t len) {
    rs_kv_feed_u64(st, len);
    if (len) XXH3_128bits_update(st, p, len);
}

static int rs_kv_name_cmp(const rs_tensor_view *a, const rs_tensor_view *b) {
    size_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
    int c = n ? memcmp(a->name.ptr, b->name.ptr, n) : 0;
    if (c != 0) return c;
    return (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

rs_kv_key rs_kv_key_for_request_n(rs_str model, rs_str version, const rs_tensor_list *inputs) {
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    static const char domain[] = "ringserve-response-v1";
    XXH3_128bits_update(&st, domain, sizeof(domain) - 1);
    rs_kv_feed_str(&st, model.ptr, model.len);
    rs_kv_feed_str(&st, version.ptr, version.len);
    uint32_t count = inputs ? inputs->count : 0;
    if (count > RS_MAX_TENSORS) count = RS_MAX_TENSORS;
    rs_kv_feed_u64(&st, count);
    /* Stable insertion sort of at most RS_MAX_TENSORS indices by name. */
    uint8_t order[RS_MAX_TENSORS];
    for (uint32_t i = 0; i < count; i++) {
        uint32_t j = i;
        while (j > 0 && rs_kv_name_cmp(&inputs->t[order[j - 1]], &inputs->t[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (uint8_t)i;
    }
    for (uint32_t k = 0; k < count; k++) {
        const rs_tensor_view *t = &inputs->t[order[k]];
        rs_kv_feed_str(&st, t->name.ptr, t->name.len);
        rs_kv_feed_u64(&st, (uint64_t)t->dtype);
        uint32_t rank = t->rank <= RS_MAX_RANK ? t->rank : RS_MAX_RANK;
        rs_kv_feed_u64(&st, rank);
        for (uint32_t d = 0; d < rank; d++)
            rs_kv_feed_u64(&st, (uint64_t)t->dims[d]);
        rs_kv_feed_str(&st, (const char *)t->data, t->data ? t->byte_len : 0);
    }
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    return (rs_kv_key){h.low64, h.high64};
}

rs_kv_key rs_kv_key_for_request(const char *model, const char *version,
                                const rs_tensor_list *inputs) {
    rs_str m = {model, model ? (uint32_t)strlen(model) : 0};
    rs_str v = {version, version ? (uint32_t)strlen(version) : 0};
    return rs_kv_key_for_request_n(m, v, inputs);
}

rs_kv_key rs_kv_key_from_bytes(const void *data, size_t len) {
    XXH128_hash_t h = XXH3_128bits(data, len);
    return (rs_kv_key){h.low64, h.high64};
}

void rs_kv_key_hex(const rs_kv_key *key, char out[33]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[i] = digits[(key->hi >> (60 - 4 * i)) & 0xf];
        out[16 + i] = digits[(key->lo >> (60 - 4 * i)) & 0xf];
    }
    out[32] = '\0';
}

int rs_kv_key_parse(const char *hex, rs_kv_key *out) {
    uint64_t parts[2] = {0, 0};
    for (int i = 0; i < 32; i++) {
        char c = hex[i];
        unsigned v;
        if (c >= '0' && c <= '9')
            v = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v = (unsigned)(c - 'A' + 10);
        else
            return -1;
        parts[i / 16] = parts[i / 16] << 4 | v;
    }
    if (hex[32] != '\0') return -1;
    out->hi = parts[0];
    out->lo = parts[1];
    return 0;
}

/* kv_test_util.h — helpers shared by the kvstore tests: unique segment
 * names, a fake clock, self-verifying values. */
#ifndef RS_KV_TEST_UTIL_H
#define RS_KV_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/kvstore/kvstore.h"

/* A clock the test moves by hand. */
typedef struct kv_fake_clock {
    uint64_t now_ms;
} kv_fake_clock;

static inline uint64_t kv_fake_now(void *ctx) {
    return ((kv_fake_clock *)ctx)->now_ms;
}

/* A per-process, per-call segment name so parallel tests never share one. */
static inline void kv_test_config(rs_kv_config *cfg, const char *tag) {
    static int seq;
    rs_kv_config_default(cfg);
    snprintf(cfg->name, sizeof(cfg->name), "rs-test-%s-%ld-%d", tag, (long)getpid(), seq++);
    /* Small: CI containers often give /dev/shm only 64 MiB. */
    cfg->capacity_mb = 4;
    cfg->max_value_kb = 64;
}

static inline rs_kv_key kv_test_key(uint64_t i) {
    return rs_kv_key_from_bytes(&i, sizeof(i));
}

/* Value for (key index, generation) of len bytes (len >= 16): a header
 * naming key, generation and length, a pattern derived from them, and a
 * trailing XXH3-64 of everything before, so any tear or mix is detected. */
static inline void kv_value_fill(uint8_t *buf, size_t len, uint32_t key_index, uint32_t gen) {
    uint32_t l = (uint32_t)len;
    memcpy(buf, &key_index, 4);
    memcpy(buf + 4, &gen, 4);
    memcpy(buf + 8, &l, 4);
    for (size_t i = 12; i + 8 < len; i++)
        buf[i] = (uint8_t)(key_index * 31u + gen * 7u + i);
    uint64_t sum = XXH3_64bits(buf, len - 8);
    memcpy(buf + len - 8, &sum, 8);
}

/* 0 when buf is a whole value written by kv_value_fill for key_index. */
static inline int kv_value_check(const uint8_t *buf, size_t len, uint32_t key_index) {
    if (len < 20) return -1;
    uint32_t k, l;
    memcpy(&k, buf, 4);
    memcpy(&l, buf + 8, 4);
    if (k != key_index || l != len) return -1;
    uint64_t sum;
    memcpy(&sum, buf + len - 8, 8);
    return XXH3_64bits(buf, len - 8) == sum ? 0 : -1;
}

#endif

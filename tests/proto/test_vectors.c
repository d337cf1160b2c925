/* test_vectors.c — decodes every vector in tests/data/frames/ and checks its
 * expectation; ok vectors must re-encode to the same bytes. Then, fuzz-ish:
 * every truncation of every valid vector, every payload cut (with a header
 * that agrees), every single-byte header change and seeded random payload
 * byte flips must return an error or decode to something that re-encodes
 * exactly — never crash, never read past the buffer (the ASan build runs
 * this on exact-size heap copies).
 *
 * usage: test_vectors DIR */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "io/frame.h"

#define MAX_VECTORS 256

typedef struct vec {
    char name[128];
    char type[32]; /* "# type:" as written; "-" when the header has none */
    bool ok;
    int code;
    uint32_t max_payload;
    uint8_t *bytes;
    size_t len;
} vec;

static const char *g_dir;
static vec g_vecs[MAX_VECTORS];
static int g_n;
static char why[512];

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void load_one(const char *path, vec *v) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    size_t cap = 1 << 16;
    v->bytes = malloc(cap);
    v->len = 0;
    v->max_payload = RS_FRAME_MAX_PAYLOAD_DEFAULT;
    bool have_expect = false;
    int nib = -1;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#') {
            char key[32], val[256];
            if (sscanf(line, "# %31[^:]: %255[^\n]", key, val) != 2) continue;
            if (strcmp(key, "name") == 0) snprintf(v->name, sizeof(v->name), "%s", val);
            if (strcmp(key, "type") == 0) snprintf(v->type, sizeof(v->type), "%s", val);
            if (strcmp(key, "max_payload") == 0) v->max_payload = (uint32_t)strtoul(val, NULL, 10);
            if (strcmp(key, "expect") == 0) {
                have_expect = true;
                char status[64];
                int code;
                if (strcmp(val, "ok") == 0) {
                    v->ok = true;
                } else {
                    assert_int_equal(sscanf(val, "error %63s %d", status, &code), 2);
                    v->ok = false;
                    v->code = code;
                    assert_int_equal(rs_status_parse(status), code); /* name and code agree */
                }
            }
            continue;
        }
        for (char *p = line; *p; p++) {
            int h = hexval((unsigned char)*p);
            if (h < 0) continue;
            if (nib < 0) {
                nib = h;
            } else {
                if (v->len == cap) v->bytes = realloc(v->bytes, cap *= 2);
                v->bytes[v->len++] = (uint8_t)(nib << 4 | h);
                nib = -1;
            }
        }
    }
    fclose(f);
    assert_true(have_expect);
    assert_int_equal(nib, -1);
    assert_true(v->name[0] != 0);
}

static int load_all(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".hex") != 0) continue;
        assert_true(g_n < MAX_VECTORS);
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", g_dir, e->d_name);
        load_one(path, &g_vecs[g_n++]);
    }
    closedir(d);
    return 0;
}

static int free_all(void **state) {
    (void)state;
    for (int i = 0; i < g_n; i++) free(g_vecs[i].bytes);
    return 0;
}

/* Re-encodes a decoded message with the C encoders. */
static size_t reencode(const rs_frame_msg *m, uint8_t *out, size_t cap) {
    const rs_frame_header *h = &m->hdr;
    rs_fw w;
    rs_fw_init(&w, out, cap);
    switch ((rs_msg_type)h->type) {
    case RS_MSG_INFER_REQUEST:
        return rs_encode_infer_request(out, cap, h->request_id, h->flags, &m->u.infer_req);
    case RS_MSG_SUBMIT:
        return rs_encode_submit(out, cap, h->request_id, h->flags, &m->u.infer_req);
    case RS_MSG_INFER_RESPONSE:
        return rs_encode_infer_response(out, cap, h->request_id, h->flags, &m->u.infer_resp);
    case RS_MSG_BATCH_REQUEST: {
        const rs_batch_request *b = &m->u.batch_req;
        rs_fw_batch_request_begin(&w, h->request_id, b->model, b->version, b->shard,
                                  b->traceparent, b->item_count);
        rs_batch_iter it;
        rs_batch_request_iter(b, &it);
        uint64_t id;
        rs_tensor_list l;
        while (rs_batch_request_next(&it, &id, &l)) rs_fw_batch_request_item(&w, id, &l);
        break;
    }
    case RS_MSG_BATCH_RESPONSE: {
        rs_fw_batch_response_begin(&w, h->request_id, m->u.batch_resp.item_count);
        rs_batch_iter it;
        rs_batch_response_iter(&m->u.batch_resp, &it);
        rs_batch_item_result r;
        while (rs_batch_response_next(&it, &r)) {
            if (r.status == RS_OK) {
                rs_fw_batch_response_ok(&w, r.item_id, &r.outputs);
            } else { /* the message may hold any bytes: write it as a view */
                rs_fw_u64(&w, r.item_id);
                rs_fw_u32(&w, r.status);
                rs_fw_str(&w, r.message);
            }
        }
        break;
    }
    case RS_MSG_REGISTER: return rs_encode_register(out, cap, h->request_id, &m->u.reg);
    case RS_MSG_HEARTBEAT: return rs_encode_heartbeat(out, cap, h->request_id, &m->u.heartbeat);
    case RS_MSG_ERROR:
        rs_fw_begin(&w, RS_MSG_ERROR, h->flags, h->request_id);
        rs_fw_u32(&w, m->u.error.code);
        rs_fw_str(&w, m->u.error.message);
        break;
    default: return rs_encode_u64(out, cap, (rs_msg_type)h->type, h->request_id, m->u.u64);
    }
    return rs_fw_finish(&w);
}

/* Decodes an exact-size heap copy (so ASan sees any overread). */
static int64_t decode_copy(const uint8_t *bytes, size_t len, uint32_t max, rs_frame_msg *m) {
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);
    why[0] = 0;
    int64_t rc = rs_frame_decode(copy, len, max, m, why, sizeof(why));
    if (rc > 0) { /* the views must lie inside the copy; check by re-encoding now */
        static uint8_t out[1 << 17];
        size_t n = reencode(m, out, sizeof(out));
        assert_int_equal(n, (size_t)rc);
        assert_memory_equal(out, copy, n);
    }
    free(copy);
    return rc;
}

static void test_every_vector(void **state) {
    (void)state;
    assert_true(g_n >= 40);
    int n_ok = 0, n_err = 0;
    bool types_seen[RS_MSG_TYPE_COUNT_] = {0};
    bool bad_seen[RS_MSG_TYPE_COUNT_] = {0};
    for (int i = 0; i < g_n; i++) {
        const vec *v = &g_vecs[i];
        rs_frame_msg m;
        int64_t rc = decode_copy(v->bytes, v->len, v->max_payload, &m);
        if (v->ok) {
            if (rc != (int64_t)v->len) fail_msg("%s: expected ok, got %lld (%s)", v->name,
                                                (long long)rc, why);
            types_seen[m.hdr.type] = true;
            n_ok++;
        } else {
            if (rc != -v->code)
                fail_msg("%s: expected error %d, got %lld (%s)", v->name, v->code, (long long)rc,
                         why);
            assert_true(strlen(why) > 10); /* a sentence, not silence */
            for (int t = 1; t < RS_MSG_TYPE_COUNT_; t++)
                if (strcmp(v->type, rs_msg_type_name((uint32_t)t)) == 0) bad_seen[t] = true;
            n_err++;
        }
    }
    for (int t = 1; t < RS_MSG_TYPE_COUNT_; t++)
        if (!types_seen[t] || !bad_seen[t])
            fail_msg("no %s vector for message type %s", types_seen[t] ? "invalid" : "valid",
                     rs_msg_type_name((uint32_t)t));
    assert_true(n_ok >= 14 && n_err >= 20);
}

static void fix_crc(uint8_t *f) {
    uint32_t c = htole32((uint32_t)crc32(0L, f, 20));
    memcpy(f + 20, &c, 4);
}

static void test_truncations(void **state) {
    (void)state;
    for (int i = 0; i < g_n; i++) {
        const vec *v = &g_vecs[i];
        if (!v->ok) continue;
        rs_frame_msg m;
        /* the stream cut anywhere: truncated */
        for (size_t k = 0; k < v->len; k++) {
            int64_t rc = decode_copy(v->bytes, k, v->max_payload, &m);
            if (rc != -RS_E_TRUNCATED)
                fail_msg("%s cut at %zu: got %lld", v->name, k, (long long)rc);
        }
        /* the payload cut with a header that agrees: some error, never ok */
        uint8_t *b = malloc(v->len);
        for (size_t k = RS_FRAME_HEADER_BYTES; k < v->len; k++) {
            memcpy(b, v->bytes, k);
            uint32_t plen = htole32((uint32_t)(k - RS_FRAME_HEADER_BYTES));
            memcpy(b + 16, &plen, 4);
            fix_crc(b);
            int64_t rc = decode_copy(b, k, v->max_payload, &m);
            if (rc >= 0) fail_msg("%s payload cut to %zu decoded", v->name, k);
        }
        free(b);
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) { /* xorshift64*: fixed seed, reproducible */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void test_byte_flips(void **state) {
    (void)state;
    int decoded_after_flip = 0, errors_after_flip = 0;
    for (int i = 0; i < g_n; i++) {
        const vec *v = &g_vecs[i];
        if (!v->ok) continue;
        uint8_t *b = malloc(v->len);
        rs_frame_msg m;
        /* any single-byte change in the header is caught (CRC or checks) */
        for (size_t pos = 0; pos < RS_FRAME_HEADER_BYTES; pos++) {
            for (int x = 1; x < 256; x += 37) {
                memcpy(b, v->bytes, v->len);
                b[pos] ^= (uint8_t)x;
                if (decode_copy(b, v->len, v->max_payload, &m) >= 0)
                    fail_msg("%s: header byte %zu ^ %d decoded", v->name, pos, x);
            }
        }
        /* random payload flips: an error, or a message that re-encodes to
         * exactly these bytes (decode_copy checks that) */
        size_t plen = v->len - RS_FRAME_HEADER_BYTES;
        for (int iter = 0; plen && iter < 300; iter++) {
            memcpy(b, v->bytes, v->len);
            int flips = 1 + (int)(rng() % 3);
            for (int f = 0; f < flips; f++) {
                size_t pos = RS_FRAME_HEADER_BYTES + rng() % plen;
                b[pos] ^= (uint8_t)(1 + rng() % 255);
            }
            if (decode_copy(b, v->len, v->max_payload, &m) >= 0)
                decoded_after_flip++;
            else
                errors_after_flip++;
        }
        free(b);
    }
    /* both outcomes happen: the test exercises error paths and data flips */
    assert_true(errors_after_flip > 100);
    assert_true(decoded_after_flip > 100);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_vector),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_byte_flips),
    };
    return cmocka_run_group_tests(tests, load_all, free_all);
}

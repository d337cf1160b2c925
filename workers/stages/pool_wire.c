/* pool_wire.c — encoding and decoding of stage pool messages (pool_wire.h). */
#include "workers/stages/pool_wire.h"

#include <string.h>

void rs_pw_bytes(rs_pw *w, const void *p, size_t n) {
    if (w->bad) return;
    if (w->buf) {
        if (n > w->cap - w->len) {
            w->bad = true;
            return;
        }
        if (n) memcpy(w->buf + w->len, p, n);
    }
    w->len += n;
}

void rs_pw_u32(rs_pw *w, uint32_t v) { rs_pw_bytes(w, &v, 4); }
void rs_pw_u64(rs_pw *w, uint64_t v) { rs_pw_bytes(w, &v, 8); }

void rs_pw_str(rs_pw *w, const char *s, size_t n) {
    if (n > UINT16_MAX) {
        w->bad = true;
        return;
    }
    uint16_t l = (uint16_t)n;
    rs_pw_bytes(w, &l, 2);
    rs_pw_bytes(w, s, n);
}

void rs_pw_pad8(rs_pw *w) {
    static const uint8_t zero[8];
    rs_pw_bytes(w, zero, (8 - (w->len & 7)) & 7);
}

void rs_pw_tensors(rs_pw *w, const rs_tensor_list *l) {
    rs_pw_u32(w, l->count);
    for (uint32_t i = 0; i < l->count; i++) {
        const rs_tensor_view *t = &l->t[i];
        rs_pw_str(w, t->name.ptr, t->name.len);
        rs_pw_u32(w, (uint32_t)t->dtype);
        rs_pw_u32(w, t->rank);
        for (uint32_t d = 0; d < t->rank; d++) rs_pw_u64(w, (uint64_t)t->dims[d]);
        rs_pw_u64(w, t->byte_len);
        rs_pw_pad8(w);
        rs_pw_bytes(w, t->data, t->byte_len);
        rs_pw_pad8(w);
    }
}

void rs_pw_load(rs_pw *w, uint32_t pipeline, const char *what, const char *base_dir,
                const rs_stage_spec *specs, uint32_t n) {
    rs_pw_u32(w, pipeline);
    rs_pw_str(w, what, strlen(what));
    rs_pw_str(w, base_dir, strlen(base_dir));
    rs_pw_u32(w, n);
    for (uint32_t i = 0; i < n; i++) {
        const rs_stage_spec *s = &specs[i];
        rs_pw_str(w, s->name, strlen(s->name));
        rs_pw_u32(w, (uint32_t)s->line);
        rs_pw_u32(w, s->param_count);
        for (uint32_t j = 0; j < s->param_count && j < RS_STAGE_MAX_PARAMS; j++) {
            rs_pw_str(w, s->params[j].key, strlen(s->params[j].key));
            rs_pw_str(w, s->params[j].value, strlen(s->params[j].value));
        }
    }
}

static const uint8_t *take(rs_pr *r, size_t n) {
    if (r->bad || n > r->len - r->off) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

uint32_t rs_pr_u32(rs_pr *r) {
    uint32_t v = 0;
    const uint8_t *p = take(r, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}

uint64_t rs_pr_u64(rs_pr *r) {
    uint64_t v = 0;
    const uint8_t *p = take(r, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}

rs_str rs_pr_str(rs_pr *r) {
    rs_str s = {"", 0};
    uint16_t l = 0;
    const uint8_t *p = take(r, 2);
    if (p) memcpy(&l, p, 2);
    const uint8_t *b = take(r, l);
    if (b) s = (rs_str){(const char *)b, l};
    return s;
}

void rs_pr_cstr(rs_pr *r, char *out, size_t out_bytes) {
    rs_str s = rs_pr_str(r);
    if (s.len >= out_bytes) {
        r->bad = true;
        s.len = 0;
    }
    memcpy(out, s.ptr, s.len);
    out[s.len] = '\0';
}

void rs_pr_pad8(rs_pr *r) { take(r, (8 - (r->off & 7)) & 7); }

void rs_pr_tensors(rs_pr *r, rs_tensor_list *l) {
    memset(l, 0, sizeof(*l));
    uint32_t count = rs_pr_u32(r);
    if (count > RS_MAX_TENSORS) r->bad = true;
    for (uint32_t i = 0; i < count && !r->bad; i++) {
        rs_tensor_view *t = &l->t[i];
        t->name = rs_pr_str(r);
        t->dtype = (rs_dtype)rs_pr_u32(r);
        t->rank = rs_pr_u32(r);
        if (t->rank > RS_MAX_RANK) {
            r->bad = true;
            break;
        }
        for (uint32_t d = 0; d < t->rank; d++) t->dims[d] = (int64_t)rs_pr_u64(r);
        t->byte_len = rs_pr_u64(r);
        rs_pr_pad8(r);
        t->data = take(r, t->byte_len);
        rs_pr_pad8(r);
        l->count = i + 1;
    }
}

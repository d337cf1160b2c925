/* cpuset.c — set operations and the Linux cpulist syntax. */
#include "topo/cpuset.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_CPUSET_WORDS (RS_TOPO_MAX_CPUS / 64)

int rs_cpuset_count(const rs_cpuset *s) {
    int n = 0;
    for (int i = 0; i < RS_CPUSET_WORDS; i++)
        n += __builtin_popcountll(s->bits[i]);
    return n;
}

bool rs_cpuset_empty(const rs_cpuset *s) {
    return rs_cpuset_next(s, 0) < 0;
}

bool rs_cpuset_equal(const rs_cpuset *a, const rs_cpuset *b) {
    return memcmp(a->bits, b->bits, sizeof(a->bits)) == 0;
}

bool rs_cpuset_intersects(const rs_cpuset *a, const rs_cpuset *b) {
    for (int i = 0; i < RS_CPUSET_WORDS; i++)
        if (a->bits[i] & b->bits[i]) return true;
    return false;
}

bool rs_cpuset_subset(const rs_cpuset *a, const rs_cpuset *b) {
    return rs_cpuset_first_not_in(a, b) < 0;
}

void rs_cpuset_or(rs_cpuset *dst, const rs_cpuset *src) {
    for (int i = 0; i < RS_CPUSET_WORDS; i++)
        dst->bits[i] |= src->bits[i];
}

void rs_cpuset_and(rs_cpuset *dst, const rs_cpuset *src) {
    for (int i = 0; i < RS_CPUSET_WORDS; i++)
        dst->bits[i] &= src->bits[i];
}

void rs_cpuset_andnot(rs_cpuset *dst, const rs_cpuset *src) {
    for (int i = 0; i < RS_CPUSET_WORDS; i++)
        dst->bits[i] &= ~src->bits[i];
}

int rs_cpuset_next(const rs_cpuset *s, int from) {
    if (from < 0) from = 0;
    for (int w = from / 64; w < RS_CPUSET_WORDS; w++) {
        uint64_t word = s->bits[w];
        if (w == from / 64) word &= ~UINT64_C(0) << (from % 64);
        if (word) return w * 64 + __builtin_ctzll(word);
    }
    return -1;
}

int rs_cpuset_first_not_in(const rs_cpuset *a, const rs_cpuset *b) {
    for (int w = 0; w < RS_CPUSET_WORDS; w++) {
        uint64_t extra = a->bits[w] & ~b->bits[w];
        if (extra) return w * 64 + __builtin_ctzll(extra);
    }
    return -1;
}

/* Reads one cpu number at *p; advances *p. */
static int rs_cpulist_number(const char **p, int *out, rs_err *err) {
    const char *s = *p;
    if (!isdigit((unsigned char)*s)) {
        int len = 0;
        while (s[len] && s[len] != ',' && s[len] != '-' && len < 32)
            len++;
        if (len == 0)
            rs_err_set(err, "expected a cpu number at '%s'", *s ? s : "end");
        else
            rs_err_set(err, "'%.*s' is not a cpu number", len, s);
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || v >= RS_TOPO_MAX_CPUS) {
        rs_err_set(err, "cpu %.*s is above the limit %d", (int)(end - s), s, RS_TOPO_MAX_CPUS - 1);
        return -1;
    }
    *out = (int)v;
    *p = end;
    return 0;
}

static void rs_skip_spaces(const char **p) {
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

int rs_cpulist_parse(const char *text, rs_cpuset *out, rs_err *err) {
    rs_cpuset set = {0};
    const char *p = text;
    rs_skip_spaces(&p);
    if (*p == '\0') {
        rs_err_set(err, "empty cpu list");
        return -1;
    }
    for (;;) {
        rs_skip_spaces(&p);
        int lo, hi;
        if (rs_cpulist_number(&p, &lo, err) != 0) return -1;
        hi = lo;
        rs_skip_spaces(&p);
        if (*p == '-') {
            p++;
            rs_skip_spaces(&p);
            if (rs_cpulist_number(&p, &hi, err) != 0) return -1;
            if (hi < lo) {
                rs_err_set(err, "range %d-%d is reversed", lo, hi);
                return -1;
            }
            rs_skip_spaces(&p);
        }
        for (int c = lo; c <= hi; c++)
            rs_cpuset_set(&set, c);
        if (*p == '\0') break;
        if (*p != ',') {
            rs_err_set(err, "unexpected '%c' (expected ',' or '-')", *p);
            return -1;
        }
        p++;
    }
    *out = set;
    return 0;
}

char *rs_cpulist_format(const rs_cpuset *s, char *out, size_t out_bytes) {
    size_t used = 0;
    if (out_bytes == 0) return out;
    out[0] = '\0';
    for (int c = rs_cpuset_next(s, 0); c >= 0;) {
        int end = c;
        while (rs_cpuset_has(s, end + 1))
            end++;
        int n = end == c
                    ? snprintf(out + used, out_bytes - used, "%s%d", used ? "," : "", c)
                    : snprintf(out + used, out_bytes - used, "%s%d-%d", used ? "," : "", c, end);
        if (n < 0 || (size_t)n >= out_bytes - used) {
            out[used] = '\0'; /* never cut a number in half */
            break;
        }
        used += (size_t)n;
        c = rs_cpuset_next(s, end + 1);
    }
    return out;
}

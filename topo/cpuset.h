/* cpuset.h — a fixed-size set of Linux CPU numbers (PU OS indexes) and the
 * Linux cpulist syntax ("0-7,16-23", "3", "0-15:2" is not accepted).
 *
 * Why our own type: the placement plan is a pure value that tests compare
 * and copy freely; an hwloc bitmap is heap-allocated and tied to a topology.
 * topo.c converts at the hwloc boundary. */
#ifndef RS_TOPO_CPUSET_H
#define RS_TOPO_CPUSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"

#define RS_TOPO_MAX_CPUS 1024 /* CPU numbers 0..1023 */

typedef struct rs_cpuset {
    uint64_t bits[RS_TOPO_MAX_CPUS / 64];
} rs_cpuset;

/* Longest cpulist text rs_cpuset_format can produce for any set. */
#define RS_CPULIST_BYTES 4096

static inline void rs_cpuset_zero(rs_cpuset *s) {
    *s = (rs_cpuset){0};
}
static inline bool rs_cpuset_valid_cpu(int cpu) {
    return cpu >= 0 && cpu < RS_TOPO_MAX_CPUS;
}
static inline void rs_cpuset_set(rs_cpuset *s, int cpu) {
    if (rs_cpuset_valid_cpu(cpu)) s->bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
}
static inline void rs_cpuset_clr(rs_cpuset *s, int cpu) {
    if (rs_cpuset_valid_cpu(cpu)) s->bits[cpu / 64] &= ~(UINT64_C(1) << (cpu % 64));
}
static inline bool rs_cpuset_has(const rs_cpuset *s, int cpu) {
    return rs_cpuset_valid_cpu(cpu) && (s->bits[cpu / 64] >> (cpu % 64)) & 1;
}

int rs_cpuset_count(const rs_cpuset *s);
bool rs_cpuset_empty(const rs_cpuset *s);
bool rs_cpuset_equal(const rs_cpuset *a, const rs_cpuset *b);
bool rs_cpuset_intersects(const rs_cpuset *a, const rs_cpuset *b);
/* true when every cpu of a is in b. */
bool rs_cpuset_subset(const rs_cpuset *a, const rs_cpuset *b);
void rs_cpuset_or(rs_cpuset *dst, const rs_cpuset *src);
void rs_cpuset_and(rs_cpuset *dst, const rs_cpuset *src);
void rs_cpuset_andnot(rs_cpuset *dst, const rs_cpuset *src); /* dst -= src */
/* First cpu >= from that is in s, or -1. Iterate with
 * for (int c = rs_cpuset_next(s, 0); c >= 0; c = rs_cpuset_next(s, c + 1)). */
int rs_cpuset_next(const rs_cpuset *s, int from);
/* First cpu of a that is not in b, or -1 (names the offender in errors). */
int rs_cpuset_first_not_in(const rs_cpuset *a, const rs_cpuset *b);

/* Parses a Linux cpulist: comma-separated numbers and ranges "a-b" (a <= b),
 * spaces around items allowed. An empty string is an error. Returns 0, or -1
 * with err "<why>" (e.g. "range 7-3 is reversed", "cpu 2048 is above the
 * limit 1023", "'x' is not a cpu number"); the caller adds field and value. */
int rs_cpulist_parse(const char *text, rs_cpuset *out, rs_err *err);
/* Formats s as a compact cpulist ("0-3,8"); "" for the empty set. Returns out. */
char *rs_cpulist_format(const rs_cpuset *s, char *out, size_t out_bytes);

#endif

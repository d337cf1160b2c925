/* clock.h — monotonic time in the units the engine uses. */
#ifndef RS_CLOCK_H
#define RS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t rs_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rs_now_us(void) { return rs_now_ns() / 1000ull; }
static inline uint64_t rs_now_ms(void) { return rs_now_ns() / 1000000ull; }

/* Wall clock (for TTLs that must survive a restart, snapshots, logs). */
static inline uint64_t rs_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

#endif

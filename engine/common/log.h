/* log.h — one log line per event, to stderr, with level and process tag.
 *
 * Why a module: every component logs the same way so operators can grep one
 * format; RS_LOG_ONCE keeps repeated conditions (a refused binding, a
 * missing feature) to a single line per process. */
#ifndef RS_LOG_H
#define RS_LOG_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum {
    RS_LOG_DEBUG = 0,
    RS_LOG_INFO = 1,
    RS_LOG_WARN = 2,
    RS_LOG_ERROR = 3,
    RS_LOG_OFF = 4,
} rs_log_level;

void rs_log_set_level(rs_log_level level);
rs_log_level rs_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns -1 on anything else. */
int rs_log_level_parse(const char *name, rs_log_level *out);
/* A short tag printed on every line, e.g. "coordinator" or "worker:9001". */
void rs_log_set_tag(const char *tag);

void rs_log(rs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define RS_DEBUG(...) rs_log(RS_LOG_DEBUG, __VA_ARGS__)
#define RS_INFO(...) rs_log(RS_LOG_INFO, __VA_ARGS__)
#define RS_WARN(...) rs_log(RS_LOG_WARN, __VA_ARGS__)
#define RS_ERROR(...) rs_log(RS_LOG_ERROR, __VA_ARGS__)

/* Logs at most once per call site per process. */
#define RS_LOG_ONCE(level, ...)                                                \
    do {                                                                       \
        static atomic_flag rs_once_ = ATOMIC_FLAG_INIT;                        \
        if (!atomic_flag_test_and_set(&rs_once_)) rs_log((level), __VA_ARGS__); \
    } while (0)

/* Invariant assertions stay on in release builds: a broken invariant in a
 * server is better stopped than served (TigerBeetle style). */
#define RS_ASSERT(cond)                                                        \
    do {                                                                       \
        if (__builtin_expect(!(cond), 0)) rs_assert_fail(#cond, __FILE__, __LINE__); \
    } while (0)

_Noreturn void rs_assert_fail(const char *expr, const char *file, int line);

#endif

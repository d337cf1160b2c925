#include "engine/common/log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int rs_log_level_current = RS_LOG_INFO;
static char rs_log_tag[48] = "ringserve";

void rs_log_set_level(rs_log_level level) { rs_log_level_current = (int)level; }
rs_log_level rs_log_get_level(void) { return (rs_log_level)rs_log_level_current; }

int rs_log_level_parse(const char *name, rs_log_level *out) {
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (rs_log_level)i;
            return 0;
        }
    }
    return -1;
}

void rs_log_set_tag(const char *tag) {
    snprintf(rs_log_tag, sizeof(rs_log_tag), "%s", tag);
}

void rs_log(rs_log_level level, const char *fmt, ...) {
    if ((int)level < rs_log_level_current) return;
    static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long)(tv.tv_usec / 1000), rs_log_tag, (int)getpid(),
                     level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof(line) - 1) n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line so lines from threads and processes do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

_Noreturn void rs_assert_fail(const char *expr, const char *file, int line) {
    rs_log(RS_LOG_ERROR, "assertion failed: %s (%s:%d)", expr, file, line);
    abort();
}

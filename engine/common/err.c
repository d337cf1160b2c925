#include "engine/common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rs_err_set(rs_err *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

void rs_err_prefix(rs_err *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[RS_ERR_MSG_BYTES];
    char old[RS_ERR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
}

void rs_err_clear(rs_err *err) {
    if (err) err->msg[0] = '\0';
}

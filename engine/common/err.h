/* err.h — a fixed-size error message that functions fill on failure.
 *
 * Convention for configuration errors (nginx style, validated up front):
 *   "<file>:<line>: <field>: <value>: <why>"
 * Convention for request errors: a sentence naming what is wrong. */
#ifndef RS_ERR_H
#define RS_ERR_H

#include <stddef.h>

#define RS_ERR_MSG_BYTES 512

typedef struct rs_err {
    char msg[RS_ERR_MSG_BYTES];
} rs_err;

void rs_err_set(rs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to the existing message. */
void rs_err_prefix(rs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rs_err_clear(rs_err *err);

#endif

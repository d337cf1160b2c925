/* loop_config.h — the `io:` section of a config file -> rs_loop_config. */
#ifndef RS_LOOP_CONFIG_H
#define RS_LOOP_CONFIG_H

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "io/loop.h"

/* Fills defaults (rs_loop_config_default), then reads section (absent = all
 * defaults): backend (auto|uring|epoll), max_conns, recv_buf_bytes,
 * recv_buf_count, send_buf_bytes, send_buf_count, conn_read_max_bytes,
 * conn_write_queue_max_bytes, idle_timeout_ms, send_zc_threshold_bytes,
 * max_timers, post_queue_capacity, max_listeners, read_asm_bytes,
 * read_asm_count, numa_node, connect_timeout_ms. Unknown fields and bad values are refused
 * with "<file>:<line>: io.<field>: <value>: <why>". */
int rs_loop_config_parse(const rs_cfg_node *section, rs_loop_config *out, rs_err *err);

#endif

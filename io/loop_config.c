/* loop_config.c — parses the `io:` section (see loop_config.h). */
#include "io/loop_config.h"

int rs_loop_config_parse(const rs_cfg_node *section, rs_loop_config *out, rs_err *err) {
    rs_loop_config_default(out);
    if (!rs_cfg_present(section)) return 0;
    static const char *const keys[] = {"backend",
                                       "max_conns",
                                       "recv_buf_bytes",
                                       "recv_buf_count",
                                       "send_buf_bytes",
                                       "send_buf_count",
                                       "conn_read_max_bytes",
                                       "conn_write_queue_max_bytes",
                                       "idle_timeout_ms",
                                       "send_zc_threshold_bytes",
                                       "max_timers",
                                       "post_queue_capacity",
                                       "max_listeners",
                                       "read_asm_bytes",
                                       "read_asm_count",
                                       "numa_node",
                                       "connect_timeout_ms",
                                       NULL};
    if (rs_cfg_check_keys(section, keys, err) != 0) return -1;
    static const char *const backends[] = {"auto", "uring", "epoll", NULL};
    int b = 0;
    if (rs_cfg_enum(section, "backend", false, 0, backends, &b, err)) return -1;
    out->backend = (rs_io_backend)b;
    uint64_t v;
#define RS_U32(name, lo, hi)                                                                       \
    do {                                                                                           \
        if (rs_cfg_u64(section, #name, false, out->name, lo, hi, &v, err)) return -1;              \
        out->name = (uint32_t)v;                                                                   \
    } while (0)
    RS_U32(max_conns, 1, 1u << 20);
    RS_U32(recv_buf_bytes, 512, 16u << 20);
    RS_U32(recv_buf_count, 1, 32768);
    RS_U32(send_buf_bytes, 512, 16u << 20);
    RS_U32(send_buf_count, 1, 1u << 20);
    RS_U32(idle_timeout_ms, 0, 86400000u);
    RS_U32(send_zc_threshold_bytes, 0, 1u << 30);
    RS_U32(max_timers, 1, 1u << 24);
    RS_U32(post_queue_capacity, 1, 1u << 24);
    RS_U32(max_listeners, 1, 1024);
    RS_U32(connect_timeout_ms, 0, 86400000u);
    RS_U32(read_asm_bytes, 512, 1u << 30);
    RS_U32(read_asm_count, 0, 1u << 20);
#undef RS_U32
    int64_t node;
    if (rs_cfg_i64(section, "numa_node", false, out->numa_node, -1, 4095, &node, err)) return -1;
    out->numa_node = (int)node;
    if (rs_cfg_u64(section, "conn_read_max_bytes", false, out->conn_read_max_bytes, 1024,
                   1ull << 32, &out->conn_read_max_bytes, err))
        return -1;
    if (rs_cfg_u64(section, "conn_write_queue_max_bytes", false, out->conn_write_queue_max_bytes,
                   1024, 1ull << 32, &out->conn_write_queue_max_bytes, err))
        return -1;
    if ((out->recv_buf_count & (out->recv_buf_count - 1)) != 0) {
        rs_cfg_node n = rs_cfg_get(section, "recv_buf_count");
        rs_cfg_fail(&n, err, "'%u': must be a power of two", out->recv_buf_count);
        return -1;
    }
    return rs_loop_config_check(out, err);
}

/* Tests for the coordinator's own modules: the server/telemetry config, the
 * workers (supervisor) config, the async result table and the supervisor's
 * restart / crash-loop / stop behaviour. The request path is covered end to
 * end by tests/integration/test_serve.py. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/coordinator/balance.h"
#include "engine/common/clock.h"
#include "engine/coordinator/coord.h"
#include "engine/coordinator/supervisor.h"
#include "io/loop_config.h"

static int parse_server(const char *yaml, rs_coord_config *out, rs_err *err) {
    rs_cfg *cfg = rs_cfg_load_string(yaml, "c.yaml", err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg);
    int rc = rs_coord_config_parse(&root, out, err);
    rs_cfg_free(cfg);
    return rc;
}

static void test_server_defaults_and_values(void **state) {
    (void)state;
    rs_coord_config c;
    rs_err err = {{0}};
    assert_int_equal(parse_server("{}", &c, &err), 0);
    assert_int_equal(c.http_port, 8000);
    assert_int_equal(c.framed_port, 9000);
    assert_true(c.metrics);
    assert_int_equal(c.trace, RS_TRACE_OFF);
    assert_int_equal(parse_server("server: {http_port: 0, framed_port: 1234, max_pending: 16}\n"
                                  "telemetry: {trace: sampled, trace_sample_percent: 5}\n",
                                  &c, &err),
                     0);
    assert_int_equal(c.http_port, 0);
    assert_int_equal(c.framed_port, 1234);
    assert_int_equal(c.max_pending, 16);
    assert_int_equal(c.trace, RS_TRACE_SAMPLED);
    assert_int_equal(c.trace_sample_percent, 5);
    assert_int_equal(parse_server("telemetry: {trace: on}\n", &c, &err), 0);
    assert_int_equal(c.trace, RS_TRACE_ON);
    assert_int_equal(c.max_batches_per_model, 2); /* default */
    assert_int_equal(parse_server("server: {max_batches_per_model: 1}\n", &c, &err), 0);
    assert_int_equal(c.max_batches_per_model, 1);
    assert_int_equal(parse_server("server: {max_batches_per_model: 0}\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "server.max_batches_per_model: '0': out of range"));
}

static void test_server_errors(void **state) {
    (void)state;
    rs_coord_config c;
    rs_err err = {{0}};
    assert_int_equal(parse_server("sever: {}\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "c.yaml:1: sever: unknown field"));
    assert_int_equal(parse_server("server: {http_port: 70000}\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "server.http_port: '70000': out of range [0, 65535]"));
    assert_int_equal(parse_server("server: {max_pending: 0}\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "server.max_pending"));
    assert_int_equal(parse_server("server: {bogus: 1}\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "server.bogus: unknown field"));
    assert_int_equal(parse_server("telemetry: {trace: loud}\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "telemetry.trace: 'loud': expected one of off|on|sampled"));
    assert_int_equal(parse_server("server: {priority_levels: 17}\n", &c, &err), -1);
    assert_non_null(strstr(err.msg, "server.priority_levels"));
}

static int parse_io(const char *yaml, rs_loop_config *out, rs_err *err) {
    rs_cfg *cfg = rs_cfg_load_string(yaml, "io.yaml", err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg);
    rs_cfg_node io = rs_cfg_get(&root, "io");
    int rc = rs_loop_config_parse(&io, out, err);
    rs_cfg_free(cfg);
    return rc;
}

static void test_io_section(void **state) {
    (void)state;
    rs_loop_config lc;
    rs_err err = {{0}};
    assert_int_equal(parse_io("{}", &lc, &err), 0);
    assert_int_equal(lc.backend, RS_IO_AUTO);
    assert_int_equal(parse_io("io: {backend: epoll, max_conns: 64, recv_buf_count: 128}\n", &lc, &err), 0);
    assert_int_equal(lc.backend, RS_IO_EPOLL);
    assert_int_equal(lc.max_conns, 64);
    assert_int_equal(lc.recv_buf_count, 128);
    assert_int_equal(parse_io("io: {backend: kqueue}\n", &lc, &err), -1);
    assert_non_null(strstr(err.msg, "io.backend: 'kqueue': expected one of auto|uring|epoll"));
    assert_int_equal(parse_io("io: {recv_buf_count: 100}\n", &lc, &err), -1);
    assert_non_null(strstr(err.msg, "io.recv_buf_count: '100': must be a power of two"));
    assert_int_equal(parse_io("io: {max_conns: 0}\n", &lc, &err), -1);
    assert_non_null(strstr(err.msg, "io.max_conns"));
    assert_int_equal(parse_io("io: {ring_size: 8}\n", &lc, &err), -1);
    assert_non_null(strstr(err.msg, "io.ring_size: unknown field"));
}

static int parse_workers(const char *yaml, rs_workers_config *out, rs_err *err) {
    rs_cfg *cfg = rs_cfg_load_string(yaml, "w.yaml", err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg);
    rs_cfg_node w = rs_cfg_get(&root, "workers");
    int rc = rs_workers_config_parse(&w, out, err);
    rs_cfg_free(cfg);
    return rc;
}

static void test_workers_config(void **state) {
    (void)state;
    rs_workers_config w;
    rs_err err = {{0}};
    assert_int_equal(parse_workers("{}", &w, &err), 0);
    assert_int_equal(w.count, 2);
    assert_int_equal(w.base_port, 9101);
    assert_int_equal(w.n_models, 0);
    assert_int_equal(parse_workers("workers: {count: 3, base_port: 7000, models: [a, b]}\n", &w, &err), 0);
    assert_int_equal(w.count, 3);
    assert_int_equal(w.n_models, 2);
    assert_string_equal(w.models[1], "b");
    assert_int_equal(parse_workers("workers: {count: 2, base_port: 65535}\n", &w, &err), -1);
    assert_non_null(strstr(err.msg, "workers.base_port: '65535': base_port + count exceeds 65535"));
    assert_int_equal(parse_workers("workers: {models: a}\n", &w, &err), -1);
    assert_non_null(strstr(err.msg, "workers.models: expected a list"));
    assert_int_equal(parse_workers("workers: {restart_backoff_ms: 500, max_backoff_ms: 100}\n", &w, &err), -1);
    assert_non_null(strstr(err.msg, "smaller than restart_backoff_ms"));
    assert_int_equal(parse_workers("workers: {count: 65}\n", &w, &err), -1);
    assert_int_equal(parse_workers("workers: {cuont: 1}\n", &w, &err), -1);
    assert_non_null(strstr(err.msg, "workers.cuont: unknown field"));
}

static void test_async_table(void **state) {
    (void)state;
    rs_coord *co = calloc(1, sizeof(*co));
    assert_non_null(co);
    rs_coord_config_default(&co->cfg);
    co->cfg.max_async_results = 2;
    co->cfg.max_async_result_bytes = 1024;
    co->cfg.async_result_ttl_s = 60;
    rs_err err = {{0}};
    assert_int_equal(rs_async_init(co, &err), 0);
    uint64_t a = rs_async_reserve(co, RS_ORIGIN_ASYNC_HTTP);
    uint64_t b = rs_async_reserve(co, RS_ORIGIN_ASYNC_FRAMED);
    assert_true(a != 0 && b != 0 && a != b);
    assert_int_equal(rs_async_reserve(co, RS_ORIGIN_ASYNC_HTTP), 0); /* bounded */
    char out[64];
    size_t len = 0, json_len = 0;
    rs_status st = RS_OK;
    assert_int_equal(rs_async_lookup(co, a, RS_ORIGIN_ASYNC_HTTP, &st, out, sizeof(out), &len, &json_len),
                     RS_E_PENDING);
    rs_async_complete(co, a, RS_OK, "{\"x\":1}", 7, 7);
    assert_int_equal(rs_async_lookup(co, a, RS_ORIGIN_ASYNC_HTTP, &st, out, sizeof(out), &len, &json_len), RS_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(out, "{\"x\":1}", 7);
    /* the framed slot is not visible to HTTP polls, nor unknown ids */
    assert_int_equal(rs_async_lookup(co, b, RS_ORIGIN_ASYNC_HTTP, &st, out, sizeof(out), &len, &json_len),
                     RS_E_NOT_FOUND);
    assert_int_equal(rs_async_lookup(co, a + (1ull << 32), RS_ORIGIN_ASYNC_HTTP, &st, out, sizeof(out), &len,
                                     &json_len),
                     RS_E_NOT_FOUND);
    /* errors are stored with their status; results larger than the slot become errors */
    rs_async_complete(co, b, RS_E_DEADLINE, "late", 4, 0);
    assert_int_equal(rs_async_lookup(co, b, RS_ORIGIN_ASYNC_FRAMED, &st, out, sizeof(out), &len, &json_len), RS_OK);
    assert_int_equal(st, RS_E_DEADLINE);
    rs_async_fini(co);
    co->cfg.async_result_ttl_s = 1;
    co->cfg.max_async_results = 1;
    assert_int_equal(rs_async_init(co, &err), 0);
    uint64_t c = rs_async_reserve(co, RS_ORIGIN_ASYNC_HTTP);
    char big[2048] = {0};
    rs_async_complete(co, c, RS_OK, big, sizeof(big), sizeof(big));
    assert_int_equal(rs_async_lookup(co, c, RS_ORIGIN_ASYNC_HTTP, &st, out, sizeof(out), &len, &json_len), RS_OK);
    assert_int_equal(st, RS_E_INTERNAL);
    rs_async_fini(co);
    free(co);
}

static char script_path[256];

static void write_script(const char *body) {
    snprintf(script_path, sizeof(script_path), "/tmp/rs-sup-test-%d.sh", (int)getpid());
    FILE *f = fopen(script_path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(script_path, 0755);
}

static void test_supervisor_restarts_and_reports_crash_loop(void **state) {
    (void)state;
    write_script("exit 3");
    rs_workers_config w;
    rs_workers_config_default(&w);
    w.count = 1;
    w.restart_backoff_ms = 1;
    w.max_backoff_ms = 4;
    w.crash_loop_restarts = 3;
    rs_err err = {{0}};
    rs_supervisor *s = rs_supervisor_start(&w, script_path, NULL, "cfg.yaml", "127.0.0.1:1", &err);
    assert_non_null(s);
    rs_supervisor_stats st;
    uint64_t deadline = rs_now_ms() + 20000; /* bounds the test; asserts nothing about speed */
    do {
        usleep(10000);
        rs_supervisor_stats_get(s, &st);
    } while (st.crash_looping == 0 && rs_now_ms() < deadline);
    assert_int_equal(st.crash_looping, 1);
    assert_true(st.restarts >= 3);
    rs_supervisor_stop(s, 1000);
    unlink(script_path);
}

static void test_supervisor_stop_terminates_workers(void **state) {
    (void)state;
    write_script("exec sleep 30");
    rs_workers_config w;
    rs_workers_config_default(&w);
    w.count = 2;
    rs_err err = {{0}};
    rs_supervisor *s = rs_supervisor_start(&w, script_path, NULL, "cfg.yaml", "127.0.0.1:1", &err);
    assert_non_null(s);
    rs_supervisor_stats st;
    rs_supervisor_stats_get(s, &st);
    assert_int_equal(st.running, 2);
    pid_t p0 = rs_supervisor_pid(s, 0);
    assert_true(p0 > 0);
    rs_supervisor_stop(s, 5000);
    assert_int_equal(kill(p0, 0), -1); /* reaped */
    unlink(script_path);
}

static void test_balance_pick(void **state) {
    (void)state;
    const uint32_t U = RS_BALANCE_UNAVAILABLE;
    /* even first: the least loaded core, self on a tie, else the lowest index */
    assert_int_equal(rs_balance_pick((uint32_t[]){3, 1, 1}, 3, 0, -1, 1), 1);
    assert_int_equal(rs_balance_pick((uint32_t[]){1, 1}, 2, 1, -1, 1), 1);
    assert_int_equal(rs_balance_pick((uint32_t[]){U, 4}, 2, 1, -1, 1), 1);
    /* then local: the incoming CPU's core while within the slack */
    assert_int_equal(rs_balance_pick((uint32_t[]){0, 0}, 2, 1, 0, 1), 0);
    assert_int_equal(rs_balance_pick((uint32_t[]){1, 0}, 2, 1, 0, 1), 0);
    assert_int_equal(rs_balance_pick((uint32_t[]){2, 0}, 2, 0, 0, 1), 1);
    assert_int_equal(rs_balance_pick((uint32_t[]){5, 2, 4}, 3, 0, 2, 1), 1);
    assert_int_equal(rs_balance_pick((uint32_t[]){U, 0}, 2, 1, 0, 1), 1);
    /* one client on CPU 0 opens 32 connections the kernel hands to either
     * core: core 0 gets its share plus at most the slack, no more */
    uint32_t loads[2] = {0, 0};
    for (uint32_t k = 0; k < 32; k++) loads[rs_balance_pick(loads, 2, (k * 7) % 2, 0, 1)]++;
    assert_true(loads[0] >= loads[1] && loads[0] - loads[1] <= 2);
    assert_int_equal(loads[0] + loads[1], 32);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_defaults_and_values),
        cmocka_unit_test(test_balance_pick),
        cmocka_unit_test(test_server_errors),
        cmocka_unit_test(test_workers_config),
        cmocka_unit_test(test_io_section),
        cmocka_unit_test(test_async_table),
        cmocka_unit_test(test_supervisor_restarts_and_reports_crash_loop),
        cmocka_unit_test(test_supervisor_stop_terminates_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

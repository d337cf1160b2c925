/* Unit tests for the worker: the `worker:` config section (defaults, every
 * field, unknown fields, ranges) and a loaded model's job path without
 * sockets — item validation (dtype, rank, shape, names, rows, capacity),
 * batching across items, per-item errors, the encoded BATCH_RESPONSE and
 * INFER_RESPONSE / ERROR frames, and job-slot exhaustion. Uses the committed
 * models/ repository (RINGSERVE_SRC). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/common/config.h"
#include "io/frame.h"
#include "workers/worker.h"
#include "workers/worker_model.h"

static void test_config(void **state) {
    (void)state;
    rs_err err = {0};
    rs_worker_config wc;
    rs_cfg_node none = {0};
    assert_int_equal(rs_worker_config_parse(&none, &none, &wc, &err), 0);
    assert_int_equal(wc.port, 9001);
    assert_int_equal(wc.queue_depth, 4);
    assert_string_equal(wc.host, "127.0.0.1");

    rs_cfg *cfg = rs_cfg_load_string("worker:\n"
                                     "  id: w7\n"
                                     "  host: 0.0.0.0\n"
                                     "  port: 9100\n"
                                     "  queue_depth: 8\n"
                                     "  stage_arena_mb: 2\n"
                                     "  variable_io_mb: 3\n"
                                     "  heartbeat_interval_ms: 250\n"
                                     "  drain_timeout_ms: 1500\n"
                                     "  max_conns: 64\n"
                                     "  stage_pool: {processes: 3, ring_mb: 4, arena_mb: 8, timeout_ms: 900}\n"
                                     "cluster:\n  token: abc\n",
                                     "w.yaml", &err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg), w = rs_cfg_get(&root, "worker"), c = rs_cfg_get(&root, "cluster");
    assert_int_equal(rs_worker_config_parse(&w, &c, &wc, &err), 0);
    assert_string_equal(wc.id, "w7");
    assert_string_equal(wc.host, "0.0.0.0");
    assert_string_equal(wc.token, "abc");
    assert_int_equal(wc.port, 9100);
    assert_int_equal(wc.queue_depth, 8);
    assert_int_equal(wc.stage_arena_bytes, 2u << 20);
    assert_int_equal(wc.variable_io_bytes, 3u << 20);
    assert_int_equal(wc.heartbeat_interval_ms, 250);
    assert_int_equal(wc.drain_timeout_ms, 1500);
    assert_int_equal(wc.max_conns, 64);
    assert_int_equal(wc.pool.processes, 3);
    assert_int_equal(wc.pool.ring_bytes, 4u << 20);
    assert_int_equal(wc.pool.arena_bytes, 8u << 20);
    assert_int_equal(wc.pool.timeout_ms, 900);
    rs_cfg_free(cfg);

    static const struct {
        const char *yaml, *needle;
    } bad[] = {
        {"worker: {queue_dept: 4}", "w.yaml:1: worker.queue_dept: unknown field"},
        {"worker: {queue_depth: 0}", "worker.queue_depth"},
        {"worker: {port: 70000}", "worker.port"},
        {"worker: {stage_pool: {ring_mb: 3}}", "ring_mb: 3: must be a power of two"},
        {"worker: {stage_pool: {processes: 0}}", "worker.stage_pool.processes"},
        {"worker: {stage_pool: {thread: 1}}", "worker.stage_pool.thread: unknown field"},
        {"worker: [1, 2]", "expected a mapping"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg = rs_cfg_load_string(bad[i].yaml, "w.yaml", &err);
        assert_non_null(cfg);
        root = rs_cfg_root(cfg);
        w = rs_cfg_get(&root, "worker");
        assert_int_equal(rs_worker_config_parse(&w, &none, &wc, &err), -1);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("'%s': '%s' lacks '%s'", bad[i].yaml, err.msg, bad[i].needle);
        rs_cfg_free(cfg);
    }
}

/* ---- a loaded model, driven without sockets ---- */

static rs_registry *reg;

static void done_never(rs_loop *loop, rs_wjob *job) {
    (void)loop;
    (void)job;
    fail_msg("no job is submitted in these tests");
}

static rs_wmodel *load(const char *name, uint32_t queue_depth) {
    const rs_model *m = rs_registry_find(reg, name, 0);
    assert_non_null(m);
    rs_wmodel_env env = {.done = done_never, .queue_depth = queue_depth,
                         .stage_arena_bytes = 1 << 20, .variable_io_bytes = 1 << 16};
    rs_err err = {0};
    rs_wmodel *wm = rs_wmodel_load(m, &env, NULL, -1, &err);
    if (!wm) fail_msg("load %s: %s", name, err.msg);
    return wm;
}

static int setup(void **state) {
    (void)state;
    const char *src = getenv("RINGSERVE_SRC");
    char repo[4096];
    snprintf(repo, sizeof(repo), "%s/models", src ? src : ".");
    rs_registry_config rc;
    rs_registry_config_default(&rc, repo);
    rc.load_count = 2;
    strcpy(rc.load[0].name, "identity");
    strcpy(rc.load[1].name, "digits");
    rs_err err;
    reg = rs_registry_create(&rc, &err);
    if (!reg) fprintf(stderr, "registry: %s\n", err.msg);
    return reg ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rs_registry_destroy(reg);
    return 0;
}

static rs_tensor_list one(const char *name, rs_dtype dt, const void *data, uint64_t bytes,
                          uint32_t rank, int64_t d0, int64_t d1) {
    rs_tensor_list l = {.count = 1};
    l.t[0] = (rs_tensor_view){.name = rs_str_c(name), .dtype = dt, .rank = rank,
                              .dims = {d0, d1}, .data = data, .byte_len = bytes};
    return l;
}

static void decode_batch(rs_wjob *job, rs_batch_response *out) {
    rs_frame_header hdr;
    int64_t n = rs_frame_peek(job->resp, job->resp_len, RS_FRAME_MAX_PAYLOAD_DEFAULT, &hdr);
    assert_int_equal(n, (int64_t)job->resp_len);
    assert_int_equal(hdr.type, RS_MSG_BATCH_RESPONSE);
    assert_int_equal(hdr.request_id, 77);
    char why[256];
    if (rs_decode_batch_response(job->resp + RS_FRAME_HEADER_BYTES, hdr.payload_len, out, why, sizeof(why)) != 0)
        fail_msg("decode: %s", why);
}

static void test_batch_items(void **state) {
    (void)state;
    rs_wmodel *wm = load("identity", 2);
    rs_wjob *job = rs_wmodel_job_get(wm);
    assert_non_null(job);
    job->kind = RS_WJOB_BATCH;
    job->request_id = 77;
    float a[16], b[32];
    for (int i = 0; i < 16; i++) a[i] = (float)i;
    for (int i = 0; i < 32; i++) b[i] = 100.0f + (float)i;
    char why[512];
    rs_tensor_list l = one("x", RS_DT_FP32, a, sizeof(a), 2, 1, 16);
    assert_int_equal(rs_wjob_add_item(job, 1, &l, why, sizeof(why)), RS_OK);
    l = one("x", RS_DT_FP32, b, sizeof(b), 2, 2, 16);
    assert_int_equal(rs_wjob_add_item(job, 2, &l, why, sizeof(why)), RS_OK);
    int32_t ints[16] = {0};
    rs_tensor_list cases[6] = {
        one("x", RS_DT_INT32, ints, sizeof(ints), 2, 1, 16),
        one("x", RS_DT_FP32, a, 60, 2, 1, 15),
        one("x", RS_DT_FP32, a, sizeof(a), 1, 16, 0),
        one("z", RS_DT_FP32, a, sizeof(a), 2, 1, 16),
        one("x", RS_DT_FP32, a, 0, 2, 0, 16),
        {.count = 0},
    };
    const char *needles[6] = {"input 'x' is INT32, model identity/1 takes FP32",
                              "input 'x' has shape [1, 15], model identity/1 takes [-1, 16]",
                              "input 'x' has shape [16]", "unexpected input 'z'",
                              "input 'x' has no rows", "missing input 'x' (FP32 [-1, 16])"};
    for (int i = 0; i < 6; i++) {
        rs_status st = rs_wjob_add_item(job, 10 + (uint64_t)i, &cases[i], why, sizeof(why));
        assert_int_equal(st, RS_E_INVALID_INPUT);
        if (!strstr(why, needles[i])) fail_msg("case %d: '%s' lacks '%s'", i, why, needles[i]);
        rs_wjob_add_error(job, 10 + (uint64_t)i, st, why);
    }
    /* more rows than max_batch_size (256) in one request; and in the batch */
    static float big[300 * 16];
    l = one("x", RS_DT_FP32, big, sizeof(big), 2, 300, 16);
    assert_int_equal(rs_wjob_add_item(job, 20, &l, why, sizeof(why)), RS_E_INVALID_INPUT);
    assert_non_null(strstr(why, "request has 300 rows; model identity/1 takes at most 256"));
    l = one("x", RS_DT_FP32, big, 254 * 16 * 4, 2, 254, 16);
    assert_int_equal(rs_wjob_add_item(job, 21, &l, why, sizeof(why)), RS_E_OVERLOADED);
    assert_non_null(strstr(why, "exceeds model identity/1's max_batch_size of 256 rows"));
    rs_wjob_add_error(job, 21, RS_E_OVERLOADED, why);
    assert_int_equal(job->n_ok, 2);
    assert_int_equal(job->rows, 3);

    rs_wjob_execute(&wm->inst[job->instance], job);
    rs_batch_response br;
    decode_batch(job, &br);
    assert_int_equal(br.item_count, 9);
    rs_batch_iter it;
    rs_batch_response_iter(&br, &it);
    rs_batch_item_result r;
    int seen_ok = 0, seen_err = 0;
    while (rs_batch_response_next(&it, &r) == 1) {
        if (r.status == RS_OK) {
            seen_ok++;
            assert_int_equal(r.outputs.count, 1);
            const rs_tensor_view *y = &r.outputs.t[0];
            assert_true(rs_str_eq(y->name, "y"));
            if (r.item_id == 1) {
                assert_int_equal(y->dims[0], 1);
                assert_memory_equal(y->data, a, sizeof(a));
            } else {
                assert_int_equal(r.item_id, 2);
                assert_int_equal(y->dims[0], 2); /* its own rows, sliced from the batch */
                assert_memory_equal(y->data, b, sizeof(b));
            }
        } else {
            seen_err++;
            assert_true(r.message.len > 0);
            if (r.item_id == 21) assert_int_equal(r.status, RS_E_OVERLOADED);
            else assert_int_equal(r.status, RS_E_INVALID_INPUT);
        }
    }
    assert_int_equal(seen_ok, 2);
    assert_int_equal(seen_err, 7);

    /* 1024 failed items with long messages: the message pool fills, every
     * item is still answered with its status (later ones without text) */
    rs_wmodel_job_put(job);
    job = rs_wmodel_job_get(wm);
    job->kind = RS_WJOB_BATCH;
    job->request_id = 77;
    char longmsg[300];
    memset(longmsg, 'm', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    for (uint64_t i = 0; i < RS_MAX_BATCH_ITEMS; i++) rs_wjob_add_error(job, i, RS_E_INVALID_INPUT, longmsg);
    rs_wjob_execute(&wm->inst[job->instance], job);
    decode_batch(job, &br);
    assert_int_equal(br.item_count, RS_MAX_BATCH_ITEMS);
    rs_batch_response_iter(&br, &it);
    uint32_t n = 0, with_text = 0;
    while (rs_batch_response_next(&it, &r) == 1) {
        assert_int_equal(r.status, RS_E_INVALID_INPUT);
        assert_int_equal(r.item_id, n);
        with_text += r.message.len > 0;
        n++;
    }
    assert_int_equal(n, RS_MAX_BATCH_ITEMS);
    assert_true(with_text > 50 && with_text < RS_MAX_BATCH_ITEMS);

    /* slots: two in total; the third get is refused (overload) */
    rs_wjob *j2 = rs_wmodel_job_get(wm);
    assert_non_null(j2);
    assert_null(rs_wmodel_job_get(wm));
    rs_wmodel_job_put(job);
    rs_wmodel_job_put(j2);
    assert_non_null(j2 = rs_wmodel_job_get(wm));
    assert_int_equal(j2->n_ok + j2->n_err + j2->rows, 0); /* comes back reset */
    rs_wmodel_job_put(j2);
    rs_wmodel_free(wm);
}

static void test_infer_and_stages(void **state) {
    (void)state;
    rs_wmodel *wm = load("digits", 1);
    rs_wjob *job = rs_wmodel_job_get(wm);
    job->kind = RS_WJOB_INFER;
    job->request_id = 5;
    strcpy(job->req_id, "abc");
    job->n_want = 1;
    job->want[0] = 1; /* label only */
    float px[64];
    for (int i = 0; i < 64; i++) px[i] = (float)(i % 17);
    char why[512];
    rs_tensor_list l = one("pixels", RS_DT_FP32, px, sizeof(px), 2, 1, 64);
    assert_int_equal(rs_wjob_add_item(job, 0, &l, why, sizeof(why)), RS_OK);
    rs_wjob_execute(&wm->inst[0], job);
    rs_frame_msg m;
    assert_true(rs_frame_decode(job->resp, job->resp_len, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)) > 0);
    assert_int_equal(m.hdr.type, RS_MSG_INFER_RESPONSE);
    assert_true(rs_str_eq(m.u.infer_resp.model, "digits"));
    assert_true(rs_str_eq(m.u.infer_resp.version, "1"));
    assert_true(rs_str_eq(m.u.infer_resp.id, "abc"));
    assert_int_equal(m.u.infer_resp.outputs.count, 1);
    assert_true(rs_str_eq(m.u.infer_resp.outputs.t[0].name, "label"));
    assert_int_equal(m.u.infer_resp.outputs.t[0].dtype, RS_DT_INT64);
    rs_wmodel_job_put(job);

    /* a failed item of an INFER_REQUEST becomes one ERROR frame */
    job = rs_wmodel_job_get(wm);
    job->kind = RS_WJOB_INFER;
    job->request_id = 6;
    l = one("pixels", RS_DT_FP32, px, 32, 2, 1, 8);
    rs_status st = rs_wjob_add_item(job, 0, &l, why, sizeof(why));
    assert_int_equal(st, RS_E_INVALID_INPUT);
    rs_wjob_add_error(job, 0, st, why);
    rs_wjob_execute(&wm->inst[0], job);
    assert_true(rs_frame_decode(job->resp, job->resp_len, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)) > 0);
    assert_int_equal(m.hdr.type, RS_MSG_ERROR);
    assert_int_equal(m.hdr.request_id, 6);
    assert_int_equal(m.u.error.code, RS_E_INVALID_INPUT);
    rs_wmodel_job_put(job);
    rs_wmodel_free(wm);

    assert_int_equal(rs_wmodel_parse_version(rs_str_c("")), 0);
    assert_int_equal(rs_wmodel_parse_version(rs_str_c("12")), 12);
    assert_int_equal(rs_wmodel_parse_version(rs_str_c("1a")), -1);
    assert_int_equal(rs_wmodel_parse_version(rs_str_c("0")), -1);
}

static void test_load_errors(void **state) {
    (void)state;
    rs_model m = *rs_registry_find(reg, "digits", 0);
    rs_wmodel_env env = {.done = done_never, .queue_depth = 1, .stage_arena_bytes = 1 << 20,
                         .variable_io_bytes = 1 << 16};
    rs_err err = {0};
    strcpy(m.backend, "tensorrt");
    assert_null(rs_wmodel_load(&m, &env, NULL, -1, &err));
    assert_non_null(strstr(err.msg, "backend 'tensorrt' is not built in"));
    m = *rs_registry_find(reg, "digits", 0);
    strcpy(m.post[0].params[0].key, "bogus");
    assert_null(rs_wmodel_load(&m, &env, NULL, -1, &err));
    assert_non_null(strstr(err.msg, "model.yaml: digits/1 post[0] argmax"));
    assert_non_null(strstr(err.msg, "bogus: unknown parameter"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_batch_items),
        cmocka_unit_test(test_infer_and_stages),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* metrics_cost — what recording telemetry costs next to the front door's own
 * work for one request, measured side by side in one run:
 *
 *   front door : HTTP parse of a digits infer request (engine/http, fake
 *                transport), KServe JSON -> tensors, response rendering
 *                (engine/kserve), HTTP response write;
 *   binary     : the same request and response with the binary tensor data
 *                extension (tensors as raw bytes after the JSON header);
 *   HTTP only  : a keep-alive GET /v2/health/live answered with 13 bytes;
 *   metrics    : what the coordinator records per request — a requests
 *                counter, a queue-depth gauge +1/-1, and four latency
 *                histogram observations (engine/metrics).
 *
 *   build/bench/micro/bench_metrics_cost [seconds]
 *
 * Prints ns per request for each and the ratio metrics / front door. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/clock.h"
#include "engine/http/http.h"
#include "engine/http/router.h"
#include "engine/kserve/kserve.h"
#include "engine/metrics/metrics.h"

static uint8_t arena_mem[1 << 16];
static uint8_t render_buf[1 << 16];
static size_t sent_bytes;

static int t_sendv(void *io, const struct iovec *iov, int n) {
    (void)io;
    for (int i = 0; i < n; i++)
        sent_bytes += iov[i].iov_len;
    return 0;
}
static void t_nop(void *io) {
    (void)io;
}
static const rs_http_transport transport = {t_sendv, t_nop, t_nop, t_nop, NULL};

/* The handler does what the coordinator's infer path does minus the batch. */
static void h_live(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_http_respond_json(s, req->handle, 200, "{\"live\":true}", 13);
}

static void h_infer(rs_http_server *s, const rs_http_request *req, void *arg) {
    (void)arg;
    rs_kserve_arena a;
    rs_kserve_arena_init(&a, arena_mem, sizeof(arena_mem));
    rs_kserve_request kr;
    rs_err err;
    size_t json_len = req->body_len;
    const rs_str *ihcl = rs_http_header_get(req, "inference-header-content-length");
    if (ihcl && rs_kserve_header_length(ihcl->ptr, ihcl->len, req->body_len, &json_len, &err) != 0)
        exit(1);
    if (rs_kserve_parse_infer(req->body, req->body_len, json_len, &kr, &a, &err) != 0) {
        fprintf(stderr, "parse: %s\n", err.msg);
        exit(1);
    }
    /* output: [8,10] FP32 probabilities */
    static float probs[80];
    rs_tensor_list outs = {.count = 1};
    outs.t[0] = (rs_tensor_view){.name = {"probabilities", 13},
                                 .dtype = RS_DT_FP32,
                                 .rank = 2,
                                 .dims = {8, 10},
                                 .data = (const uint8_t *)probs,
                                 .byte_len = sizeof(probs)};
    bool binary[1] = {kr.params.binary_data_output};
    rs_kserve_response resp = {
        .model_name = "digits", .model_version = "1", .outputs = &outs, .binary = binary};
    size_t total;
    if (rs_kserve_render_response(&resp, render_buf, sizeof(render_buf), &json_len, &total, &err) !=
        0) {
        fprintf(stderr, "render: %s\n", err.msg);
        exit(1);
    }
    rs_http_respond_json(s, req->handle, 200, (const char *)render_buf, total);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    rs_kserve_global_init();
    rs_err err;

    /* digits request: [8,64] FP32 pixel values 0..16 */
    static char body[8192];
    size_t n = (size_t)snprintf(body, sizeof(body),
                                "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[8,64],"
                                "\"datatype\":\"FP32\",\"data\":[");
    for (int i = 0; i < 512; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s%d", i ? "," : "", (i * 7) % 17);
    n += (size_t)snprintf(body + n, sizeof(body) - n, "]}]}");
    static char request[10240];
    size_t req_len =
        (size_t)snprintf(request, sizeof(request),
                         "POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         n, body);

    rs_http_router *router = rs_http_router_create(4, &err);
    rs_http_router_add(router, RS_HTTP_POST, "/v2/models/{model}/infer", h_infer, NULL, &err);
    rs_http_router_add(router, RS_HTTP_GET, "/v2/health/live", h_live, NULL, &err);
    rs_http_config hc;
    rs_http_config_default(&hc);
    hc.max_conns = 1;
    rs_http_server *server = rs_http_server_create(&hc, router, &err);
    rs_http_conn *conn = rs_http_conn_open(server, &transport, NULL);

    uint64_t ops = 0, start = rs_now_ns(), end = start + (uint64_t)(seconds * 1e9);
    do {
        for (int i = 0; i < 16; i++)
            rs_http_conn_feed(conn, (const uint8_t *)request, req_len);
        ops += 16;
    } while (rs_now_ns() < end);
    double front_ns = (double)(rs_now_ns() - start) / (double)ops;

    /* The same request and response with the binary tensor data extension. */
    static char bin_req[8192];
    static const char bin_json[] =
        "{\"parameters\":{\"binary_data_output\":true},\"inputs\":[{\"name\":"
        "\"pixels\",\"shape\":[8,64],\"datatype\":\"FP32\",\"parameters\":"
        "{\"binary_data_size\":2048}}]}";
    size_t bl =
        (size_t)snprintf(bin_req, sizeof(bin_req),
                         "POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n"
                         "Inference-Header-Content-Length: %zu\r\nContent-Length: %zu\r\n\r\n%s",
                         sizeof(bin_json) - 1, sizeof(bin_json) - 1 + 2048, bin_json);
    for (int i = 0; i < 512; i++) {
        float f = (float)((i * 7) % 17);
        memcpy(bin_req + bl + 4 * i, &f, 4);
    }
    bl += 2048;
    ops = 0;
    start = rs_now_ns();
    end = start + (uint64_t)(seconds * 1e9);
    do {
        for (int i = 0; i < 16; i++)
            rs_http_conn_feed(conn, (const uint8_t *)bin_req, bl);
        ops += 16;
    } while (rs_now_ns() < end);
    double bin_ns = (double)(rs_now_ns() - start) / (double)ops;

    /* HTTP alone: a keep-alive GET answered with a small JSON body. */
    static const char live[] =
        "GET /v2/health/live HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\n\r\n";
    ops = 0;
    start = rs_now_ns();
    end = start + (uint64_t)(seconds * 1e9);
    do {
        for (int i = 0; i < 64; i++)
            rs_http_conn_feed(conn, (const uint8_t *)live, sizeof(live) - 1);
        ops += 64;
    } while (rs_now_ns() < end);
    double http_ns = (double)(rs_now_ns() - start) / (double)ops;

    /* The coordinator's per-request records, on 2 shards (cores). */
    rs_metrics *m = rs_metrics_create(2, 8, 16, 4096, &err);
    rs_metric_family f_req, f_depth, f_lat;
    const char *ml[] = {"model", "outcome", NULL}, *mv[] = {"digits", "ok"};
    const char *sl[] = {"model", "stage", NULL};
    rs_histogram_spec h = {.sub_bits = 2, .max_value = 60000000, .scale = 1e-6};
    rs_metrics_add_family(m, RS_METRIC_COUNTER, "rs_requests_total", "", ml, NULL, &f_req, &err);
    rs_metrics_add_family(m, RS_METRIC_GAUGE, "rs_queue_depth", "", ml, NULL, &f_depth, &err);
    rs_metrics_add_family(m, RS_METRIC_HISTOGRAM, "rs_stage_seconds", "", sl, &h, &f_lat, &err);
    rs_metric_id req_id, depth_id, stage[4];
    rs_metrics_add_series(m, f_req, mv, &req_id, &err);
    rs_metrics_add_series(m, f_depth, mv, &depth_id, &err);
    const char *stages[] = {"parse", "queue", "worker", "total"};
    for (int i = 0; i < 4; i++) {
        const char *v[] = {"digits", stages[i]};
        rs_metrics_add_series(m, f_lat, v, &stage[i], &err);
    }
    if (rs_metrics_freeze(m, &err) != 0) {
        fprintf(stderr, "metrics: %s\n", err.msg);
        return 1;
    }
    rs_metrics_shard *sh = rs_metrics_shard_get(m, 0);
    uint64_t v = 1;
    ops = 0;
    start = rs_now_ns();
    end = start + (uint64_t)(seconds * 1e9);
    do {
        for (int i = 0; i < 256; i++) {
            v = v * 6364136223846793005ull + 1442695040888963407ull; /* varied latencies */
            rs_metrics_counter_add(sh, req_id, 1);
            rs_metrics_gauge_add(sh, depth_id, 1);
            rs_metrics_gauge_add(sh, depth_id, -1);
            for (int k = 0; k < 4; k++)
                rs_metrics_observe(sh, stage[k], (v >> (40 + k * 4)) & 0xfffff);
        }
        ops += 256;
    } while (rs_now_ns() < end);
    double metrics_ns = (double)(rs_now_ns() - start) / (double)ops;

    printf(
        "HTTP only (GET /v2/health/live, parse + route + respond):              %8.0f ns/request\n",
        http_ns);
    printf("front door (HTTP parse + KServe parse + render + write), digits [8,64]: %8.0f "
           "ns/request\n",
           front_ns);
    printf("front door, binary tensor data extension (same tensors):               %8.0f "
           "ns/request (x%.2f)\n",
           bin_ns, bin_ns / front_ns);
    printf(
        "metrics (counter + gauge +1/-1 + 4 histogram observations):            %8.1f ns/request\n",
        metrics_ns);
    printf("metrics / front door: %.3f%%   (responses written: %zu bytes)\n",
           100.0 * metrics_ns / front_ns, sent_bytes);
    rs_metrics_destroy(m);
    rs_http_conn_closed(conn);
    rs_http_server_destroy(server);
    rs_http_router_destroy(router);
    return 0;
}

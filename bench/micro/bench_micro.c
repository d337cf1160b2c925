/* bench_micro — the hot-path microbenchmarks in one runner: frame
 * encode/decode, response cache get/set, batcher enqueue+flush, router pick,
 * dense backend per batch size. Each row is the median of --reps repetitions
 * (default 5) with their min and max; one repetition runs the operation in a
 * loop for about --ms milliseconds (default 40). ns/op rows time this
 * thread's CPU time (a shared VM's other tenants do not count); items/s rows
 * (the backend, whose BLAS may block on memory) use the wall clock.
 *
 *   build/bench/micro/bench_micro [--reps R] [--ms M] [--filter SUBSTR] [--json]
 *                                 [--models DIR]
 *
 * The whole suite takes about 10 s on the 2-core VM (docs/perf.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "engine/coordinator/batcher.h"
#include "engine/kvstore/kvstore.h"
#include "engine/model_registry/registry.h"
#include "bench/micro/fake_workers.h"
#include "engine/router/router.h"
#include "io/frame.h"
#include "workers/backend.h"

#define MAX_REPS 31

static int g_reps = 5;
static double g_ms = 40;
static const char *g_filter;
static bool g_json;
static int g_rows;
static volatile uint64_t g_sink; /* keeps results alive */

static uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One case: run(ctx, n) performs n operations. */
typedef void (*op_fn)(void *ctx, uint64_t n);

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bool selected(const char *name) {
    return !g_filter || strstr(name, g_filter);
}

static void report(const char *name, const char *unit, double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    if (g_json) {
        printf("%s{\"name\": \"%s\", \"unit\": \"%s\", \"median\": %.3f, \"min\": %.3f, "
               "\"max\": %.3f, \"reps\": %d}",
               g_rows ? ",\n " : "[", name, unit, med, v[0], v[n - 1], n);
    } else {
        if (g_rows == 0)
            printf(
                "| benchmark | unit | median | min | max |\n| --- | --- | ---: | ---: | ---: |\n");
        printf("| %s | %s | %.1f | %.1f | %.1f |\n", name, unit, med, v[0], v[n - 1]);
    }
    g_rows++;
    fflush(stdout);
}

/* ns per operation: calibrate n so that a repetition lasts ~g_ms. */
static void bench_ns(const char *name, op_fn fn, void *ctx) {
    if (!selected(name)) return;
    uint64_t n = 1;
    for (;;) {
        uint64_t t0 = cpu_ns();
        fn(ctx, n);
        uint64_t dt = cpu_ns() - t0;
        if (dt >= 2000000 || n >= (1ull << 32)) {
            n = (uint64_t)((double)n * g_ms * 1e6 / (double)(dt ? dt : 1)) + 1;
            break;
        }
        n *= 4;
    }
    double v[MAX_REPS];
    for (int r = 0; r < g_reps; r++) {
        uint64_t t0 = cpu_ns();
        fn(ctx, n);
        v[r] = (double)(cpu_ns() - t0) / (double)n;
    }
    report(name, "ns/op", v, g_reps);
}

/* ---- frame codec --------------------------------------------------------- */

typedef struct frame_ctx {
    rs_infer_request req;
    uint8_t *buf;
    size_t cap, len;
} frame_ctx;

static void frame_setup(frame_ctx *f, const char *model, uint32_t features, float *data) {
    memset(f, 0, sizeof(*f));
    f->req.model = rs_str_c(model);
    f->req.version = f->req.id = f->req.routing_key = f->req.traceparent = rs_str_c("");
    f->req.inputs.count = 1;
    rs_tensor_view *t = &f->req.inputs.t[0];
    t->name = rs_str_c("x");
    t->dtype = RS_DT_FP32;
    t->rank = 2;
    t->dims[0] = 1;
    t->dims[1] = features;
    t->data = (const uint8_t *)data;
    t->byte_len = features * sizeof(float);
    f->cap = rs_infer_request_size(&f->req);
    f->buf = malloc(f->cap);
    f->len = rs_encode_infer_request(f->buf, f->cap, 1, 0, &f->req);
}

static void op_encode(void *ctx, uint64_t n) {
    frame_ctx *f = ctx;
    for (uint64_t i = 0; i < n; i++)
        g_sink += rs_encode_infer_request(f->buf, f->cap, i, 0, &f->req);
}

static void op_decode(void *ctx, uint64_t n) {
    frame_ctx *f = ctx;
    rs_frame_msg m;
    char why[128];
    for (uint64_t i = 0; i < n; i++)
        g_sink += (uint64_t)rs_frame_decode(f->buf, f->len, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why,
                                            sizeof(why));
}

typedef struct batch_frame_ctx {
    frame_ctx one;
    uint32_t items;
    uint8_t *buf;
    size_t cap, len;
} batch_frame_ctx;

static void op_batch_encode(void *ctx, uint64_t n) {
    batch_frame_ctx *b = ctx;
    for (uint64_t i = 0; i < n; i++) {
        rs_fw w;
        rs_fw_init(&w, b->buf, b->cap);
        rs_fw_batch_request_begin(&w, i, rs_str_c("identity"), rs_str_c(""), 0, rs_str_c(""),
                                  b->items);
        for (uint32_t k = 0; k < b->items; k++)
            rs_fw_batch_request_item(&w, k, &b->one.req.inputs);
        b->len = rs_fw_finish(&w);
        g_sink += b->len;
    }
}

static void op_batch_decode(void *ctx, uint64_t n) {
    batch_frame_ctx *b = ctx;
    rs_frame_msg m;
    char why[128];
    for (uint64_t i = 0; i < n; i++) {
        if (rs_frame_decode(b->buf, b->len, RS_FRAME_MAX_PAYLOAD_DEFAULT, &m, why, sizeof(why)) < 0)
            abort();
        rs_batch_iter it;
        rs_batch_request_iter(&m.u.batch_req, &it);
        uint64_t id;
        rs_tensor_list in;
        while (rs_batch_request_next(&it, &id, &in))
            g_sink += in.t[0].byte_len;
    }
}

static void bench_frames(void) {
    static float data[1024];
    char name[96];
    static const struct {
        const char *model;
        uint32_t features;
    } shapes[] = {{"identity", 16}, {"mlp-bench", 1024}};
    for (int s = 0; s < 2; s++) {
        frame_ctx f;
        frame_setup(&f, shapes[s].model, shapes[s].features, data);
        snprintf(name, sizeof(name), "frame encode INFER_REQUEST [1,%u] FP32 (%zu B)",
                 shapes[s].features, f.len);
        bench_ns(name, op_encode, &f);
        snprintf(name, sizeof(name), "frame decode INFER_REQUEST [1,%u] FP32 (%zu B)",
                 shapes[s].features, f.len);
        bench_ns(name, op_decode, &f);
        free(f.buf);
    }
    batch_frame_ctx b;
    frame_setup(&b.one, "identity", 16, data);
    b.items = 64;
    b.cap = 64 * 256 + 1024;
    b.buf = malloc(b.cap);
    op_batch_encode(&b, 1);
    snprintf(name, sizeof(name), "frame encode BATCH_REQUEST 64 x [1,16] (%zu B, per batch)",
             b.len);
    bench_ns(name, op_batch_encode, &b);
    snprintf(name, sizeof(name), "frame decode+iterate BATCH_REQUEST 64 x [1,16] (per batch)");
    bench_ns(name, op_batch_decode, &b);
    free(b.buf);
    free(b.one.buf);
}

/* ---- response cache ------------------------------------------------------ */

typedef struct cache_ctx {
    rs_kv *kv;
    rs_kv_key *keys;
    uint32_t nkeys;
    size_t value_bytes;
    uint8_t *buf;
    uint64_t pos;
} cache_ctx;

static void op_cache_get(void *ctx, uint64_t n) {
    cache_ctx *c = ctx;
    size_t len;
    for (uint64_t i = 0; i < n; i++) {
        if (rs_kv_get(c->kv, &c->keys[c->pos++ % c->nkeys], c->buf, c->value_bytes, &len) !=
            RS_KV_OK)
            abort();
        g_sink += len;
    }
}

static void op_cache_set(void *ctx, uint64_t n) {
    cache_ctx *c = ctx;
    for (uint64_t i = 0; i < n; i++)
        g_sink += rs_kv_set(c->kv, &c->keys[c->pos++ % c->nkeys], c->buf, c->value_bytes,
                            RS_KV_TTL_NEVER);
}

static void bench_cache(void) {
    if (!selected("cache")) return;
    rs_kv_config cfg;
    rs_kv_config_default(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "rs-bench-micro-%ld", (long)getpid());
    cfg.capacity_mb = 64;
    cfg.max_value_kb = 64;
    rs_kv_options opt = {.io_threads = 2, .no_snapshot_load = true};
    rs_err err;
    rs_kv *kv = rs_kv_open(&cfg, &opt, &err);
    if (!kv) {
        fprintf(stderr, "bench_micro: cache: %s\n", err.msg);
        return;
    }
    static const size_t sizes[] = {64, 4096};
    for (int s = 0; s < 2; s++) {
        cache_ctx c = {.kv = kv, .nkeys = 4096, .value_bytes = sizes[s]};
        c.keys = malloc(c.nkeys * sizeof(*c.keys));
        c.buf = calloc(1, sizes[s]);
        for (uint32_t i = 0; i < c.nkeys; i++) {
            uint64_t id = i * 2654435761u + s;
            c.keys[i] = rs_kv_key_from_bytes(&id, sizeof(id));
            rs_kv_set(kv, &c.keys[i], c.buf, sizes[s], RS_KV_TTL_NEVER);
        }
        char name[96];
        snprintf(name, sizeof(name), "cache get-hit %zu B (4096 keys)", sizes[s]);
        bench_ns(name, op_cache_get, &c);
        snprintf(name, sizeof(name), "cache set (overwrite) %zu B (4096 keys)", sizes[s]);
        bench_ns(name, op_cache_set, &c);
        free(c.keys);
        free(c.buf);
        rs_kv_clear(kv);
    }
    rs_kv_detach(kv);
    rs_kv_destroy(cfg.name, &err);
}

/* ---- batcher --------------------------------------------------------------- */

typedef struct batcher_ctx {
    rs_batcher *b;
    uint32_t batch;
    uint64_t now_us;
    bool keyed;
    rs_batcher_item items[256];
} batcher_ctx;

static void on_token(void *arg, uint64_t token) {
    g_sink += token + (arg != NULL);
}

/* n requests: submitted in groups of `batch`, each group flushed by poll and
 * completed; the reported ns/op is per request. */
static void op_batcher(void *ctx, uint64_t n) {
    batcher_ctx *c = ctx;
    for (uint64_t done = 0; done < n;) {
        for (uint32_t k = 0; k < c->batch; k++) {
            rs_batcher_request r = {
                .token = done + k, .has_key = c->keyed, .key = {.lo = done + k, .hi = 7}};
            if (rs_batcher_submit(c->b, c->now_us, &r) != RS_BATCHER_QUEUED) abort();
        }
        uint32_t rows = 0;
        uint32_t got = rs_batcher_poll(c->b, c->now_us, on_token, NULL, c->items, &rows);
        for (uint32_t k = 0; k < got; k++)
            rs_batcher_complete(c->b, c->items[k].ticket, on_token, NULL);
        done += got ? got : c->batch;
        c->now_us++;
    }
}

static void bench_batcher(void) {
    static const uint32_t sizes[] = {1, 8, 64};
    for (int s = 0; s < 3; s++) {
        for (int keyed = 0; keyed < 2; keyed++) {
            char name[96];
            snprintf(name, sizeof(name), "batcher submit+poll+complete, batch %u%s (per request)",
                     sizes[s], keyed ? ", keyed" : "");
            if (!selected(name)) continue;
            rs_batcher_config cfg;
            rs_batcher_config_default(&cfg);
            cfg.max_batch_size = sizes[s];
            cfg.max_queue_size = 1024;
            rs_err err;
            batcher_ctx c = {.batch = sizes[s], .now_us = 1000, .keyed = keyed};
            c.b = rs_batcher_create(&cfg, &err);
            if (!c.b) {
                fprintf(stderr, "bench_micro: batcher: %s\n", err.msg);
                return;
            }
            bench_ns(name, op_batcher, &c);
            rs_batcher_destroy(c.b);
        }
    }
}

/* ---- router ------------------------------------------------------------------ */

typedef struct router_ctx {
    rs_router *r;
} router_ctx;

static void op_pick(void *ctx, uint64_t n) {
    router_ctx *c = ctx;
    rs_route_req q = {.model = rs_str_c("identity")};
    rs_err err;
    for (uint64_t i = 0; i < n; i++) {
        rs_ticket t;
        if (rs_router_pick(c->r, &q, &t, &err) != 0) abort();
        g_sink += t.worker.slot;
        rs_router_release(c->r, &t, RS_OUTCOME_OK);
    }
}

static void bench_router(void) {
    static const struct {
        rs_lb_strategy s;
        const char *name;
    } strategies[] = {{RS_LB_ROUND_ROBIN, "round_robin"}, {RS_LB_P2C, "p2c"}};
    for (int si = 0; si < 2; si++) {
        char name[96];
        snprintf(name, sizeof(name), "router pick+release %s, 16 workers", strategies[si].name);
        if (!selected(name)) continue;
        rs_router_config *cfg = malloc(sizeof(*cfg));
        rs_router_config_default(cfg);
        cfg->lb.strategy = strategies[si].s;
        rs_err err;
        router_ctx c = {.r = rs_router_create(cfg, NULL, &err)};
        if (!c.r) {
            fprintf(stderr, "bench_micro: router: %s\n", err.msg);
            free(cfg);
            return;
        }
        static const char *const models[] = {"identity"};
        if (bench_register_workers(c.r, 16, models, 1, &err) != 0) {
            fprintf(stderr, "bench_micro: router: %s\n", err.msg);
            rs_router_destroy(c.r);
            free(cfg);
            return;
        }
        bench_ns(name, op_pick, &c);
        rs_router_destroy(c.r);
        free(cfg);
    }
}

/* ---- dense backend ------------------------------------------------------------ */

static void bench_backend(const char *repo, const char *model_name, const uint32_t *batches, int nb,
                          double min_ms) {
    char probe[96];
    snprintf(probe, sizeof(probe), "backend %s", model_name);
    if (g_filter && !strstr(probe, g_filter)) return;
    rs_registry_config rcfg;
    rs_registry_config_default(&rcfg, repo);
    rs_err err = {0};
    rs_registry *reg = rs_registry_create(&rcfg, &err);
    const rs_model *found = reg ? rs_registry_find(reg, model_name, 0) : NULL;
    if (!found) {
        fprintf(stderr, "bench_micro: %s: %s (skipped)\n", model_name,
                reg ? "not in the repository" : err.msg);
        rs_registry_destroy(reg);
        return;
    }
    rs_model m = *found;
    const rs_backend_ops *ops = rs_backend_find(m.backend);
    void *st = NULL;
    if (!ops || ops->load(&m, &st, &err) != 0) {
        fprintf(stderr, "bench_micro: %s: %s\n", model_name, ops ? err.msg : "no backend");
        rs_registry_destroy(reg);
        return;
    }
    uint32_t in_f = (uint32_t)m.inputs[0].dims[1], out_f = (uint32_t)m.outputs[0].dims[1];
    uint32_t maxb = batches[nb - 1];
    float *x = malloc(sizeof(float) * maxb * in_f);
    float *y = malloc(sizeof(float) * maxb * out_f);
    for (size_t i = 0; i < (size_t)maxb * in_f; i++)
        x[i] = (float)(i % 17) / 17.0f;
    for (int b = 0; b < nb; b++) {
        uint32_t rows = batches[b];
        char name[96];
        snprintf(name, sizeof(name), "backend %s (%s) batch %u", model_name, m.backend, rows);
        rs_tensor_view in = {.dtype = RS_DT_FP32,
                             .rank = 2,
                             .data = (const uint8_t *)x,
                             .byte_len = (uint64_t)rows * in_f * sizeof(float)};
        in.dims[0] = rows;
        in.dims[1] = in_f;
        rs_backend_output out = {.buf = (uint8_t *)y,
                                 .capacity_bytes = sizeof(float) * maxb * out_f};
        if (ops->infer(st, rows, &in, 1, &out, 1, &err) != 0) { /* warm-up */
            fprintf(stderr, "bench_micro: %s: %s\n", name, err.msg);
            break;
        }
        double v[MAX_REPS];
        for (int r = 0; r < g_reps; r++) {
            uint64_t t0 = rs_now_ns(), n = 0, el = 0;
            while (n < 2 || el < (uint64_t)(min_ms * 1e6)) {
                ops->infer(st, rows, &in, 1, &out, 1, &err);
                n++;
                el = rs_now_ns() - t0;
            }
            v[r] = (double)n * rows / ((double)el / 1e9);
        }
        report(name, "items/s", v, g_reps);
    }
    ops->unload(st);
    free(x);
    free(y);
    rs_registry_destroy(reg);
}

int main(int argc, char **argv) {
    const char *repo = RS_BUILD_ROOT "/models";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            g_json = true;
        } else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0) {
            g_reps = atoi(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--ms") == 0) {
            g_ms = atof(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--filter") == 0) {
            g_filter = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--models") == 0) {
            repo = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: bench_micro [--reps R (1..%d)] [--ms M] [--filter SUBSTR] "
                    "[--json] [--models DIR]\n",
                    MAX_REPS);
            return 2;
        }
    }
    if (g_reps < 1 || g_reps > MAX_REPS || !(g_ms > 0)) {
        fprintf(stderr, "bench_micro: --reps must be 1..%d and --ms > 0\n", MAX_REPS);
        return 2;
    }
    rs_log_set_level(RS_LOG_WARN);
    bench_frames();
    bench_cache();
    bench_batcher();
    bench_router();
    static const uint32_t mlp_batches[] = {1, 8, 32};
    bench_backend(repo, "mlp-bench", mlp_batches, 3, g_ms * 2);
    static const uint32_t id_batches[] = {1, 64};
    bench_backend(RS_SOURCE_ROOT "/models", "identity", id_batches, 2, g_ms);
    if (g_json) printf(g_rows ? "]\n" : "[]\n");
    return 0;
}

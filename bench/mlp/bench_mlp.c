/* bench_mlp — items/s of the dense backend on models/mlp-bench
 * (1024-4096-4096-1024, fp32, one BLAS thread) at batch 1, 8, 32, 128, side
 * by side in one run, plus the batch-32 / batch-1 ratio (target >= 8).
 *
 *   build/bench/mlp/bench_mlp [repository] [seconds per batch size] [int8]
 *
 * The repository defaults to <build>/models, where the build generates
 * mlp-bench. Each batch size runs one warm-up batch, then batches until the
 * time budget is spent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/clock.h"
#include "engine/model_registry/registry.h"
#include "workers/backend.h"

int main(int argc, char **argv) {
    const char *repo = argc > 1 && argv[1][0] ? argv[1] : RS_BUILD_ROOT "/models";
    double budget_s = argc > 2 ? strtod(argv[2], NULL) : 1.0;
    bool int8 = argc > 3 && strcmp(argv[3], "int8") == 0;
    rs_registry_config cfg;
    rs_registry_config_default(&cfg, repo);
    rs_err err = {0};
    rs_registry *r = rs_registry_create(&cfg, &err);
    const rs_model *found = r ? rs_registry_find(r, "mlp-bench", 0) : NULL;
    if (!found) {
        fprintf(stderr, "bench_mlp: %s\n", r ? "no mlp-bench model in the repository" : err.msg);
        rs_registry_destroy(r);
        return 1;
    }
    rs_model m = *found;
    if (int8) m.quantized = RS_MODEL_QUANT_INT8;
    const rs_backend_ops *ops = rs_backend_find(m.backend);
    void *st = NULL;
    if (ops->load(&m, &st, &err) != 0) {
        fprintf(stderr, "bench_mlp: %s\n", err.msg);
        return 1;
    }
    uint32_t in_f = (uint32_t)m.inputs[0].dims[1], out_f = (uint32_t)m.outputs[0].dims[1];
    float *x = malloc(sizeof(float) * m.max_batch_size * in_f);
    float *y = malloc(sizeof(float) * m.max_batch_size * out_f);
    for (size_t i = 0; i < (size_t)m.max_batch_size * in_f; i++) x[i] = (float)(i % 17) / 17.0f;
    static const uint32_t batches[] = {1, 8, 32, 128};
    double items_s[4] = {0};
    printf("mlp-bench %s, 1 BLAS thread, %.1f s per batch size\n", int8 ? "int8" : "fp32",
           budget_s);
    printf("%8s %10s %12s %12s\n", "batch", "batches", "items/s", "ms/batch");
    for (int b = 0; b < 4; b++) {
        uint32_t rows = batches[b];
        rs_tensor_view in = {.dtype = RS_DT_FP32, .rank = 2, .data = (const uint8_t *)x,
                             .byte_len = (uint64_t)rows * in_f * sizeof(float)};
        in.dims[0] = rows;
        in.dims[1] = in_f;
        rs_backend_output out = {.buf = (uint8_t *)y,
                                 .capacity_bytes = sizeof(float) * m.max_batch_size * out_f};
        if (ops->infer(st, rows, &in, 1, &out, 1, &err) != 0) { /* warm-up */
            fprintf(stderr, "bench_mlp: %s\n", err.msg);
            return 1;
        }
        uint64_t start = rs_now_ns(), n = 0, elapsed = 0;
        while (elapsed < (uint64_t)(budget_s * 1e9)) {
            ops->infer(st, rows, &in, 1, &out, 1, &err);
            n++;
            elapsed = rs_now_ns() - start;
        }
        items_s[b] = (double)n * rows / ((double)elapsed / 1e9);
        printf("%8u %10llu %12.1f %12.3f\n", rows, (unsigned long long)n, items_s[b],
               (double)elapsed / 1e6 / (double)n);
    }
    printf("batch 32 / batch 1 items/s: %.1fx (target >= 8x)\n", items_s[2] / items_s[0]);
    ops->unload(st);
    free(x);
    free(y);
    rs_registry_destroy(r);
    return 0;
}

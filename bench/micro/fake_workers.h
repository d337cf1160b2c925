/* fake_workers.h — the router's workers for the router micro-benchmarks
 * (bench_micro, router_pick): one definition, so both measure the same
 * table. */
#ifndef RS_BENCH_FAKE_WORKERS_H
#define RS_BENCH_FAKE_WORKERS_H

#include <stdio.h>

#include "engine/router/router.h"

/* Registers workers w0..w<n-1> at 10.0.0.<i+1>:9000, capacity 8, each
 * serving models[0..n_models-1]. Returns 0, or -1 with err at the first
 * refusal. */
static inline int bench_register_workers(rs_router *r, int n, const char *const *models,
                                         uint32_t n_models, rs_err *err) {
    for (int i = 0; i < n; i++) {
        char id[32], host[32];
        snprintf(id, sizeof(id), "w%d", i);
        snprintf(host, sizeof(host), "10.0.0.%d", i + 1);
        rs_register_msg m = {.worker_id = rs_str_c(id),
                             .host = rs_str_c(host),
                             .port = 9000,
                             .capacity = 8,
                             .numa_node = -1,
                             .gpu = -1,
                             .n_models = n_models};
        for (uint32_t k = 0; k < n_models; k++) m.models[k].name = rs_str_c(models[k]);
        if (rs_router_register(r, &m, err) < 0) return -1;
    }
    return 0;
}

#endif

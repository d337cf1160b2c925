/* router_pick — ns per rs_router_pick + rs_router_release, per strategy and
 * per number of workers, on the real clock (so clock reads are included, as
 * in the coordinator). Each cell is the best of 3 runs (the VM is shared and
 * noisy; times are this thread's CPU time). Prints one line per strategy; docs/perf.md quotes it.
 *   ./build/bench/micro/bench_router_pick [iterations]   (default 1000000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "bench/micro/fake_workers.h"
#include "engine/router/router.h"

/* CPU time of this thread: on a shared VM, wall time counts other tenants. */
static uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double run_case(rs_lb_strategy strategy, bool keyed, int n_workers, long iters) {
    rs_router_config *cfg = malloc(sizeof(*cfg));
    rs_router_config_default(cfg);
    cfg->lb.strategy = strategy;
    rs_err err = {0};
    rs_router *r = rs_router_create(cfg, NULL, &err);
    if (!r) {
        fprintf(stderr, "router: %s\n", err.msg);
        exit(1);
    }
    static const char *const models[] = {"identity", "digits"};
    if (bench_register_workers(r, n_workers, models, 2, &err) != 0) {
        fprintf(stderr, "register: %s\n", err.msg);
        exit(1);
    }
    rs_route_req q = {.model = rs_str_c("digits"), .has_routing_key = keyed};
    uint64_t sink = 0;
    uint64_t t0 = cpu_ns();
    for (long i = 0; i < iters; i++) {
        rs_ticket t;
        q.key_hash = (uint64_t)i * 0x9e3779b97f4a7c15ull;
        if (rs_router_pick(r, &q, &t, &err) != 0) {
            fprintf(stderr, "pick: %s\n", err.msg);
            exit(1);
        }
        sink += t.worker.slot;
        rs_router_release(r, &t, RS_OUTCOME_OK);
    }
    double ns = (double)(cpu_ns() - t0) / (double)iters;
    if (sink == 1) puts(""); /* keep the loop */
    rs_router_destroy(r);
    free(cfg);
    return ns;
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    rs_log_set_level(RS_LOG_WARN);
    static const int sizes[] = {4, 16, 64};
    /* the router reads the clock twice per pick + release: show what that costs here */
    uint64_t c0 = rs_now_ns(), csink = 0;
    for (long i = 0; i < iters; i++)
        csink += rs_now_ns();
    printf("clock read: %.1f ns (x2 per pick+release)%s\n", (double)(rs_now_ns() - c0) / iters,
           csink == 1 ? " " : "");
    printf("%-22s %10s %10s %10s   (ns per pick+release, %ld iterations)\n", "strategy",
           "4 workers", "16", "64", iters);
    for (int s = 0; s <= RS_LB_STRATEGY_COUNT_; s++) {
        bool keyed = s == RS_LB_STRATEGY_COUNT_;
        printf("%-22s", keyed ? "rendezvous (key)" : rs_lb_strategy_name((rs_lb_strategy)s));
        for (int k = 0; k < 3; k++)
            printf(" %10.1f",
                   run_case(keyed ? RS_LB_ROUND_ROBIN : (rs_lb_strategy)s, keyed, sizes[k], iters));
        printf("\n");
    }
    return 0;
}

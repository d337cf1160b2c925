/* batcher_ops — the dynamic batcher's cost per request: submit, the poll that
 * dispatches it, and its completion, with the queue kept busy.
 *
 *   build/bench/micro/bench_batcher_ops [seconds]
 *
 * Cases: distinct requests (no key), keyed requests that never coincide
 * (the coalescing table is probed and filled), and keyed requests where 3 of
 * 4 join an identical one in flight (followers), each at max_batch_size 32
 * with 3 priority levels and deadlines set. Prints ns per request. */
#include <stdio.h>
#include <stdlib.h>

#include "engine/common/clock.h"
#include "engine/coordinator/batcher.h"

static uint64_t answered;
static void on_token(void *arg, uint64_t token) {
    (void)arg;
    (void)token;
    answered++;
}

static double run(int mode, double seconds) {
    rs_batcher_config cfg;
    rs_batcher_config_default(&cfg);
    cfg.max_batch_size = 32;
    cfg.max_queue_delay_us = 100;
    cfg.max_queue_size = 4096;
    cfg.priority_levels = 3;
    cfg.default_priority = 2;
    cfg.preferred_count = 1;
    cfg.preferred_batch_sizes[0] = 16;
    rs_err err;
    rs_batcher *b = rs_batcher_create(&cfg, &err);
    if (!b) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    rs_batcher_item items[32];
    uint64_t now = 1, token = 0, start = rs_now_ns(), end = start + (uint64_t)(seconds * 1e9);
    answered = 0;
    do {
        for (int round = 0; round < 64; round++) {
            for (int i = 0; i < 32; i++, token++) {
                rs_batcher_request r = {.token = token,
                                        .priority = (uint32_t)(token % 4),
                                        .deadline_us = now + 1000000};
                if (mode == 1)
                    r.has_key = true,
                    r.key = (rs_batcher_key){token * 0x9e3779b97f4a7c15ull, token};
                if (mode == 2) r.has_key = true, r.key = (rs_batcher_key){token / 4, 7};
                rs_batcher_submit(b, now, &r);
            }
            now += 10;
            uint32_t n;
            while ((n = rs_batcher_poll(b, now, on_token, NULL, items, NULL)) > 0)
                for (uint32_t i = 0; i < n; i++)
                    rs_batcher_complete(b, items[i].ticket, on_token, NULL);
            now += 200; /* past the delay: whatever is left flushes next round */
        }
    } while (rs_now_ns() < end);
    double ns = (double)(rs_now_ns() - start) / (double)answered;
    rs_batcher_destroy(b);
    return ns;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    static const char *names[] = {"distinct requests (no key)", "keyed, all different",
                                  "keyed, 3 of 4 coalesced"};
    for (int mode = 0; mode < 3; mode++)
        printf("%-28s %7.1f ns/request (submit + poll + complete)\n", names[mode],
               run(mode, seconds));
    return 0;
}

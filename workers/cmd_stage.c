/* cmd_stage.c — `ringserve stage`: one process of a worker's stage pool.
 *
 * Started by the worker (workers/stages/pool.c), never by hand: it inherits
 * the shared-memory segment and two eventfds and serves pre/post pipelines
 * over them until the worker says QUIT or dies (PR_SET_PDEATHSIG). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cmd.h"
#include "engine/common/log.h"
#include "workers/stages/pool.h"

static void usage(FILE *out) {
    fprintf(out, "usage: ringserve stage --shm-fd N --req-efd N --resp-efd N [--arena-bytes N]\n"
                 "  (started by `ringserve worker` for models with `stages: pool`)\n");
}

static int parse_fd(const char *opt, const char *v, long max, long *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < 0 || x > max) {
        fprintf(stderr, "ringserve stage: %s: '%s': expected 0..%ld\n", opt, v, max);
        return -1;
    }
    *out = x;
    return 0;
}

int rs_cmd_stage(int argc, char **argv) {
    static const struct option opts[] = {
        {"shm-fd", required_argument, NULL, 's'},  {"req-efd", required_argument, NULL, 'q'},
        {"resp-efd", required_argument, NULL, 'r'}, {"arena-bytes", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    long shm = -1, req = -1, resp = -1, arena = 64l << 20;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 's': rc = parse_fd("--shm-fd", optarg, 65535, &shm); break;
        case 'q': rc = parse_fd("--req-efd", optarg, 65535, &req); break;
        case 'r': rc = parse_fd("--resp-efd", optarg, 65535, &resp); break;
        case 'a': rc = parse_fd("--arena-bytes", optarg, 1l << 40, &arena); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc != 0) return 2;
    }
    if (shm < 0 || req < 0 || resp < 0) {
        usage(stderr);
        return 2;
    }
    /* The worker owns our lifetime: its SIGINT/SIGHUP are not ours to act on. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    char tag[32];
    snprintf(tag, sizeof(tag), "stage:%d", (int)getpid());
    rs_log_set_tag(tag);
    return rs_stage_server_run((int)shm, (int)req, (int)resp, (uint64_t)arena);
}

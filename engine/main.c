/* main.c — `ringserve [global options] <command> [options]`.
 *
 * Global options come before the command and apply to every part of the
 * process: --io-backend=auto|uring|epoll, --log-level=debug|info|warn|error. */
#include <stdio.h>
#include <string.h>

#include "engine/cmd.h"
#include "engine/common/log.h"
#include "engine/common/opts.h"
#include "io/loop.h"

#ifndef RS_VERSION
#define RS_VERSION "0.1.0"
#endif

typedef struct rs_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} rs_command;

static const rs_command rs_commands[] = {
    {"serve", rs_cmd_serve, "all-in-one node: coordinator + supervised workers"},
    {"coordinator", rs_cmd_coordinator, "front door: HTTP (KServe v2) + framed protocol"},
    {"worker", rs_cmd_worker, "load models and serve batches"},
    {"stage", rs_cmd_stage, "pre/post-processing process (disaggregated stages)"},
    {"topo", rs_cmd_topo, "show the machine and the placement plan"},
    {"cache", rs_cmd_cache, "operate the shared-memory response cache"},
    {"infer", rs_cmd_infer, "send one inference request (framed or HTTP)"},
    {"bench", rs_cmd_bench, "load generator: latency and throughput"},
};

static void rs_usage(FILE *out) {
    fprintf(out,
            "usage: ringserve [--io-backend=auto|uring|epoll] [--log-level=LEVEL] <command> "
            "[options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(rs_commands) / sizeof(rs_commands[0]); i++)
        fprintf(out, "  %-12s %s\n", rs_commands[i].name, rs_commands[i].summary);
    fprintf(out, "\n`ringserve <command> --help` describes each command.\n");
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0) {
            printf("ringserve %s\n", RS_VERSION);
            return 0;
        }
        if (strcmp(a, "--help") == 0) {
            rs_usage(stdout);
            return 0;
        }
        if (strncmp(a, "--io-backend=", 13) == 0) {
            rs_io_backend b;
            if (rs_io_backend_parse(a + 13, &b) != 0) {
                fprintf(stderr, "ringserve: --io-backend: '%s': expected auto, uring or epoll\n",
                        a + 13);
                return 2;
            }
            rs_opts.io_backend = (int)b;
            continue;
        }
        if (strncmp(a, "--log-level=", 12) == 0) {
            rs_log_level lvl;
            if (rs_log_level_parse(a + 12, &lvl) != 0) {
                fprintf(stderr,
                        "ringserve: --log-level: '%s': expected debug, info, warn, error or off\n",
                        a + 12);
                return 2;
            }
            rs_log_set_level(lvl);
            continue;
        }
        fprintf(stderr, "ringserve: unknown global option '%s'\n", a);
        rs_usage(stderr);
        return 2;
    }
    if (i >= argc) {
        rs_usage(stderr);
        return 2;
    }
    for (size_t c = 0; c < sizeof(rs_commands) / sizeof(rs_commands[0]); c++) {
        if (strcmp(argv[i], rs_commands[c].name) == 0)
            return rs_commands[c].fn(argc - i, argv + i);
    }
    fprintf(stderr, "ringserve: unknown command '%s'\n", argv[i]);
    rs_usage(stderr);
    return 2;
}

/* cmd_coordinator.c — `ringserve coordinator`: the front door alone; workers
 * register with it (or are listed with --worker). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cmd.h"
#include "engine/coordinator/coordinator.h"

static void rs_coordinator_usage(FILE *out) {
    fprintf(out,
            "usage: ringserve coordinator --config FILE [--listen-port N] [--http-port N]\n"
            "                             [--worker HOST:PORT ...] [--skip-bad-models]\n"
            "  --config FILE       YAML configuration (server, models, cache, cluster, ...)\n"
            "  --listen-port N     framed-protocol port (overrides server.framed_port)\n"
            "  --http-port N       HTTP port (overrides server.http_port)\n"
            "  --worker HOST:PORT  a static worker (repeatable); workers may also register\n"
            "  --skip-bad-models   log and skip models whose model.yaml is invalid\n");
}

static int rs_parse_port(const char *s, const char *flag) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!end || *end || v < 0 || v > 65535) {
        fprintf(stderr, "ringserve coordinator: %s: '%s': expected a port number 0..65535\n", flag, s);
        return -2;
    }
    return (int)v;
}

int rs_cmd_coordinator(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"listen-port", required_argument, NULL, 'l'},
        {"http-port", required_argument, NULL, 'h'}, {"worker", required_argument, NULL, 'w'},
        {"skip-bad-models", no_argument, NULL, 's'}, {"help", no_argument, NULL, '?'},
        {NULL, 0, NULL, 0},
    };
    rs_coord_overrides ov = {.http_port = -1, .framed_port = -1};
    const char *config = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'l':
            if ((ov.framed_port = rs_parse_port(optarg, "--listen-port")) == -2) return 2;
            break;
        case 'h':
            if ((ov.http_port = rs_parse_port(optarg, "--http-port")) == -2) return 2;
            break;
        case 'w':
            if (ov.n_workers >= sizeof(ov.workers) / sizeof(ov.workers[0])) {
                fprintf(stderr, "ringserve coordinator: at most 64 --worker options\n");
                return 2;
            }
            ov.workers[ov.n_workers++] = optarg;
            break;
        case 's': ov.skip_bad_models = true; break;
        default:
            rs_coordinator_usage(c == '?' && optopt == 0 ? stdout : stderr);
            return c == '?' && optopt == 0 ? 0 : 2;
        }
    }
    if (!config) {
        fprintf(stderr, "ringserve coordinator: --config FILE is required\n");
        rs_coordinator_usage(stderr);
        return 2;
    }
    return rs_coord_main(config, &ov, NULL, NULL);
}

/* cmd_serve.c — `ringserve serve --config F`: the all-in-one node.
 *
 * A coordinator in this process plus `workers.count` worker processes it
 * spawns and supervises (engine/coordinator/supervisor.h). Workers register
 * with the coordinator's framed port; readiness turns on once every model
 * has a healthy worker. SIGTERM drains the coordinator first (in-flight
 * requests still have their workers), then stops the workers. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/cmd.h"
#include "engine/common/log.h"
#include "engine/common/opts.h"
#include "engine/coordinator/coordinator.h"
#include "engine/coordinator/supervisor.h"
#include "io/loop.h"

typedef struct rs_serve_ctx {
    rs_workers_config wcfg;
    const char *config_file;
    char host[64];
    rs_supervisor *sup;
    char exe[512];
} rs_serve_ctx;

static void rs_serve_ready(void *arg, uint16_t http_port, uint16_t framed_port) {
    (void)http_port;
    rs_serve_ctx *ctx = arg;
    if (ctx->wcfg.count == 0) return;
    char coord[128];
    snprintf(coord, sizeof(coord), "%s:%u", ctx->host, framed_port);
    static char backend_arg[32];
    snprintf(backend_arg, sizeof(backend_arg), "--io-backend=%s",
             rs_io_backend_name((rs_io_backend)rs_opts.io_backend));
    const char *globals[] = {backend_arg, NULL};
    rs_err err = {{0}};
    ctx->sup = rs_supervisor_start(&ctx->wcfg, ctx->exe, globals, ctx->config_file, coord, &err);
    if (!ctx->sup) RS_ERROR("serve: %s", err.msg);
}

int rs_cmd_serve(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"skip-bad-models", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    rs_serve_ctx ctx = {0};
    rs_coord_overrides ov = {.http_port = -1, .framed_port = -1};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': ctx.config_file = optarg; break;
        case 's': ov.skip_bad_models = true; break;
        case 'H':
            printf("usage: ringserve serve --config FILE [--skip-bad-models]\n"
                   "  runs a coordinator and the worker processes of the `workers:` section\n");
            return 0;
        default: return 2;
        }
    }
    if (!ctx.config_file) {
        fprintf(stderr, "ringserve serve: --config FILE is required\n");
        return 2;
    }
    rs_err err = {{0}};
    rs_cfg *cfg = rs_cfg_load_file(ctx.config_file, &err);
    if (!cfg) {
        fprintf(stderr, "ringserve serve: %s\n", err.msg);
        return 1;
    }
    rs_cfg_node root = rs_cfg_root(cfg);
    rs_cfg_node ws = rs_cfg_get(&root, "workers");
    rs_coord_config ccfg;
    int rc = rs_workers_config_parse(&ws, &ctx.wcfg, &err);
    if (rc == 0) rc = rs_coord_config_parse(&root, &ccfg, &err);
    rs_cfg_free(cfg);
    if (rc != 0) {
        fprintf(stderr, "ringserve serve: %s\n", err.msg);
        return 1;
    }
    snprintf(ctx.host, sizeof(ctx.host), "%s", strcmp(ccfg.host, "0.0.0.0") == 0 ? "127.0.0.1" : ccfg.host);
    ssize_t n = readlink("/proc/self/exe", ctx.exe, sizeof(ctx.exe) - 1);
    if (n <= 0) {
        fprintf(stderr, "ringserve serve: cannot find its own binary (/proc/self/exe)\n");
        return 1;
    }
    ctx.exe[n] = '\0';
    int code = rs_coord_main(ctx.config_file, &ov, rs_serve_ready, &ctx);
    if (ctx.sup) rs_supervisor_stop(ctx.sup, 15000);
    return code;
}

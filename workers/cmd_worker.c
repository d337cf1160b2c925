/* cmd_worker.c — `ringserve worker`: parse the command line and the config
 * file (sections worker, models, topology, io, cluster), then run the worker. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cmd.h"
#include "engine/common/config.h"
#include "engine/common/log.h"
#include "workers/backend.h"
#include "workers/worker.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: ringserve worker [--config F] [--port N] [--host H] [--id ID]\n"
            "                        [--model NAME[:VERSION] ...] [--coordinator HOST:PORT]\n"
            "                        [--backend-dir D] [--skip-bad-models]\n"
            "  Loads the models (all of models.load when no --model is given) and serves\n"
            "  BATCH_REQUEST / INFER_REQUEST / PING frames on HOST:PORT.\n");
}

static int parse_port(const char *opt, const char *s, uint16_t *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > 65535) {
        fprintf(stderr, "ringserve worker: %s: '%s': expected a port 0..65535\n", opt, s);
        return -1;
    }
    *out = (uint16_t)v;
    return 0;
}

static int add_model(rs_registry_config *rc, const char *arg, bool *replaced) {
    if (!*replaced) {
        rc->load_count = 0;
        *replaced = true;
    }
    if (rc->load_count == RS_REGISTRY_MAX_LOAD) {
        fprintf(stderr, "ringserve worker: --model: at most %d\n", RS_REGISTRY_MAX_LOAD);
        return -1;
    }
    rs_registry_load *l = &rc->load[rc->load_count];
    const char *colon = strchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
    long v = 0;
    if (colon) {
        char *end;
        v = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || v < 1 || v > RS_MODEL_MAX_VERSION) len = 0;
    }
    if (len == 0 || len > RS_MAX_NAME_BYTES) {
        fprintf(stderr, "ringserve worker: --model: '%s': expected NAME or NAME:VERSION\n", arg);
        return -1;
    }
    memcpy(l->name, arg, len);
    l->name[len] = '\0';
    l->version = (uint32_t)v;
    rc->load_count++;
    return 0;
}

int rs_cmd_worker(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"port", required_argument, NULL, 'p'},
        {"host", required_argument, NULL, 'H'},    {"id", required_argument, NULL, 'i'},
        {"model", required_argument, NULL, 'm'},   {"coordinator", required_argument, NULL, 'C'},
        {"backend-dir", required_argument, NULL, 'b'},
        {"skip-bad-models", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *backend_dir = NULL, *coordinator = NULL, *host = NULL, *id = NULL;
    const char *models[RS_REGISTRY_MAX_LOAD];
    int n_models = 0;
    bool have_port = false, skip_bad = false;
    uint16_t port = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'p':
            if (parse_port("--port", optarg, &port) != 0) return 2;
            have_port = true;
            break;
        case 'H': host = optarg; break;
        case 'i': id = optarg; break;
        case 'm':
            if (n_models == RS_REGISTRY_MAX_LOAD) {
                fprintf(stderr, "ringserve worker: --model: at most %d\n", RS_REGISTRY_MAX_LOAD);
                return 2;
            }
            models[n_models++] = optarg;
            break;
        case 'C': coordinator = optarg; break;
        case 'b': backend_dir = optarg; break;
        case 's': skip_bad = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ringserve worker: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    rs_err err = {0};
    rs_cfg *cfg = NULL;
    if (config && !(cfg = rs_cfg_load_file(config, &err))) {
        fprintf(stderr, "ringserve worker: %s\n", err.msg);
        return 2;
    }
    rs_cfg_node root = {0}, none = {0};
    if (cfg) root = rs_cfg_root(cfg);
    rs_cfg_node wsec = cfg ? rs_cfg_get(&root, "worker") : none;
    rs_cfg_node csec = cfg ? rs_cfg_get(&root, "cluster") : none;
    rs_cfg_node msec = cfg ? rs_cfg_get(&root, "models") : none;
    rs_cfg_node tsec = cfg ? rs_cfg_get(&root, "topology") : none;
    rs_cfg_node iosec = cfg ? rs_cfg_get(&root, "io") : none;
    rs_worker_config wc;
    static rs_registry_config rc;
    int code = 2;
    if (rs_worker_config_parse(&wsec, &csec, &wc, &err) != 0 ||
        rs_registry_config_parse(&msec, &rc, &err) != 0) {
        fprintf(stderr, "ringserve worker: %s\n", err.msg);
        goto out;
    }
    bool replaced = false;
    for (int i = 0; i < n_models; i++)
        if (add_model(&rc, models[i], &replaced) != 0) goto out;
    rc.skip_bad_models |= skip_bad;
    if (have_port) wc.port = port;
    if (host) snprintf(wc.host, sizeof(wc.host), "%s", host);
    if (id) {
        if (strlen(id) >= sizeof(wc.id) || !id[0]) {
            fprintf(stderr, "ringserve worker: --id: '%s': 1..64 bytes\n", id);
            goto out;
        }
        snprintf(wc.id, sizeof(wc.id), "%s", id);
    }
    if (coordinator) {
        const char *colon = strrchr(coordinator, ':');
        if (!colon || colon == coordinator || (size_t)(colon - coordinator) >= sizeof(wc.coordinator_host) ||
            parse_port("--coordinator", colon + 1, &wc.coordinator_port) != 0 || wc.coordinator_port == 0) {
            fprintf(stderr, "ringserve worker: --coordinator: '%s': expected HOST:PORT\n", coordinator);
            goto out;
        }
        snprintf(wc.coordinator_host, sizeof(wc.coordinator_host), "%.*s",
                 (int)(colon - coordinator), coordinator);
    }
    if (backend_dir && rs_backend_load_dir(backend_dir, &err) != 0) {
        fprintf(stderr, "ringserve worker: --backend-dir: %s\n", err.msg);
        goto out;
    }
    code = rs_worker_main(&wc, &rc, &tsec, &iosec);
out:
    rs_backend_unload_plugins();
    rs_cfg_free(cfg);
    return code;
}

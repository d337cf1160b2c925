/* router_config.c — the cluster section and the router's four sections. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/router/router.h"

void rs_cluster_config_default(rs_cluster_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_workers = 64;
    cfg->max_models = 64;
    cfg->heartbeat_timeout_ms = 15000;
    cfg->local_numa_node = -1;
}

int rs_parse_host_port(const char *addr, char *host, size_t host_bytes, uint16_t *port,
                       rs_err *err) {
    const char *colon, *h = addr;
    size_t hlen;
    if (addr[0] == '[') { /* [v6addr]:port */
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') {
            rs_err_set(err, "'%s': expected [IPv6]:PORT", addr);
            return -1;
        }
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || strchr(addr, ':') != colon) {
            rs_err_set(err, "'%s': expected HOST:PORT", addr);
            return -1;
        }
        hlen = (size_t)(colon - addr);
    }
    if (hlen == 0 || hlen >= host_bytes) {
        rs_err_set(err, "'%s': host must have 1 to %zu bytes", addr, host_bytes - 1);
        return -1;
    }
    const char *p = colon + 1;
    char *end = NULL;
    errno = 0;
    unsigned long v = (*p >= '0' && *p <= '9') ? strtoul(p, &end, 10) : 0;
    if (!end || *end != '\0' || errno || v == 0 || v > 65535) {
        rs_err_set(err, "'%s': port must be an integer in [1, 65535]", addr);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return 0;
}

static int check_duplicate(const rs_cluster_config *cfg, const rs_static_worker *sw, rs_err *err) {
    for (uint32_t i = 0; i < cfg->n_workers; i++)
        if (cfg->workers[i].port == sw->port && strcmp(cfg->workers[i].host, sw->host) == 0) {
            rs_err_set(err, "worker %s:%u is listed twice", sw->host, sw->port);
            return -1;
        }
    return 0;
}

int rs_cluster_add_worker_arg(rs_cluster_config *cfg, const char *addr, rs_err *err) {
    if (cfg->n_workers >= RS_CLUSTER_MAX_STATIC) {
        rs_err_set(err, "--worker %s: at most %d static workers", addr, RS_CLUSTER_MAX_STATIC);
        return -1;
    }
    rs_static_worker *sw = &cfg->workers[cfg->n_workers];
    memset(sw, 0, sizeof(*sw));
    sw->numa_node = -1;
    if (rs_parse_host_port(addr, sw->host, sizeof(sw->host), &sw->port, err) != 0 ||
        check_duplicate(cfg, sw, err) != 0) {
        rs_err_prefix(err, "--worker");
        return -1;
    }
    cfg->n_workers++;
    return 0;
}

static int parse_worker_map(const rs_cfg_node *item, rs_static_worker *sw, rs_err *err) {
    static const char *const keys[] = {"address",  "models",    "shard", "weight",
                                       "capacity", "numa_node", NULL};
    if (rs_cfg_check_keys(item, keys, err) != 0) return -1;
    char addr[RS_HOST_BYTES + 16];
    if (rs_cfg_str(item, "address", true, NULL, addr, sizeof(addr), err) != 0) return -1;
    rs_cfg_node an = rs_cfg_get(item, "address");
    if (rs_parse_host_port(addr, sw->host, sizeof(sw->host), &sw->port, err) != 0) {
        rs_err e2;
        snprintf(e2.msg, sizeof(e2.msg), "%s", err->msg);
        rs_cfg_fail(&an, err, "%s", e2.msg);
        return -1;
    }
    uint64_t v;
    if (rs_cfg_u64(item, "shard", false, 0, 0, 1023, &v, err) != 0) return -1;
    sw->shard = (uint32_t)v;
    if (rs_cfg_u64(item, "weight", false, 0, 1, 1000000, &v, err) != 0) return -1;
    sw->weight = (uint32_t)v;
    if (rs_cfg_u64(item, "capacity", false, 0, 0, 1000000, &v, err) != 0) return -1;
    sw->capacity = (uint32_t)v;
    int64_t numa;
    if (rs_cfg_i64(item, "numa_node", false, -1, -1, 1023, &numa, err) != 0) return -1;
    sw->numa_node = (int32_t)numa;
    rs_cfg_node models = rs_cfg_get(item, "models");
    if (!rs_cfg_present(&models)) return 0;
    if (!rs_cfg_is_seq(&models) || rs_cfg_len(&models) == 0) {
        rs_cfg_fail(&models, err, "expected a non-empty list of model names");
        return -1;
    }
    if (rs_cfg_len(&models) > RS_MAX_WORKER_MODELS) {
        rs_cfg_fail(&models, err, "%zu models: at most %d", rs_cfg_len(&models),
                    RS_MAX_WORKER_MODELS);
        return -1;
    }
    for (size_t i = 0; i < rs_cfg_len(&models); i++) {
        rs_cfg_node m = rs_cfg_at(&models, i);
        const char *name = rs_cfg_scalar(&m);
        if (!name || name[0] == '\0' || strlen(name) > RS_MAX_NAME_BYTES) {
            rs_cfg_fail(&m, err, "expected a model name of 1 to %d bytes", RS_MAX_NAME_BYTES);
            return -1;
        }
        snprintf(sw->models[i], sizeof(sw->models[i]), "%s", name);
    }
    sw->n_models = (uint32_t)rs_cfg_len(&models);
    return 0;
}

static int parse_workers(const rs_cfg_node *list, rs_cluster_config *out, rs_err *err) {
    if (!rs_cfg_is_seq(list)) {
        rs_cfg_fail(list, err, "expected a list of HOST:PORT or {address: HOST:PORT, ...}");
        return -1;
    }
    size_t n = rs_cfg_len(list);
    if (n > RS_CLUSTER_MAX_STATIC) {
        rs_cfg_fail(list, err, "%zu workers: at most %d", n, RS_CLUSTER_MAX_STATIC);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        rs_cfg_node item = rs_cfg_at(list, i);
        rs_static_worker *sw = &out->workers[out->n_workers];
        memset(sw, 0, sizeof(*sw));
        sw->numa_node = -1;
        const char *text = rs_cfg_scalar(&item);
        if (text) {
            rs_err e2;
            if (rs_parse_host_port(text, sw->host, sizeof(sw->host), &sw->port, &e2) != 0) {
                rs_cfg_fail(&item, err, "%s", e2.msg);
                return -1;
            }
        } else if (rs_cfg_is_map(&item)) {
            if (parse_worker_map(&item, sw, err) != 0) return -1;
        } else {
            rs_cfg_fail(&item, err, "expected HOST:PORT or a mapping with an address");
            return -1;
        }
        rs_err e2;
        if (check_duplicate(out, sw, &e2) != 0) {
            rs_cfg_fail(&item, err, "%s", e2.msg);
            return -1;
        }
        out->n_workers++;
    }
    return 0;
}

int rs_cluster_config_parse(const rs_cfg_node *section, rs_cluster_config *out, rs_err *err) {
    static const char *const keys[] = {
        "token",      "workers",         "max_workers", "max_models", "heartbeat_timeout_ms",
        "local_host", "local_numa_node", NULL};
    rs_cluster_config_default(out);
    if (!rs_cfg_present(section)) return 0;
    if (rs_cfg_check_keys(section, keys, err) != 0) return -1;
    uint64_t v;
    if (rs_cfg_str(section, "token", false, "", out->token, sizeof(out->token), err) != 0)
        return -1;
    if (rs_cfg_u64(section, "max_workers", false, 64, 1, 4096, &v, err) != 0) return -1;
    out->max_workers = (uint32_t)v;
    if (rs_cfg_u64(section, "max_models", false, 64, 1, 4096, &v, err) != 0) return -1;
    out->max_models = (uint32_t)v;
    if (rs_cfg_u64(section, "heartbeat_timeout_ms", false, 15000, 10, 3600000,
                   &out->heartbeat_timeout_ms, err) != 0)
        return -1;
    if (rs_cfg_str(section, "local_host", false, "", out->local_host, sizeof(out->local_host),
                   err) != 0)
        return -1;
    int64_t numa;
    if (rs_cfg_i64(section, "local_numa_node", false, -1, -1, 1023, &numa, err) != 0) return -1;
    out->local_numa_node = (int32_t)numa;
    rs_cfg_node workers = rs_cfg_get(section, "workers");
    if (rs_cfg_present(&workers) && parse_workers(&workers, out, err) != 0) return -1;
    if (out->n_workers > out->max_workers) {
        rs_cfg_fail(&workers, err, "%u workers listed but cluster.max_workers is %u",
                    out->n_workers, out->max_workers);
        return -1;
    }
    return 0;
}

void rs_router_config_default(rs_router_config *cfg) {
    rs_cluster_config_default(&cfg->cluster);
    rs_lb_config_default(&cfg->lb);
    rs_health_config_default(&cfg->health);
    rs_retry_config_default(&cfg->retry);
}

int rs_router_config_parse(const rs_cfg_node *root, rs_router_config *out, rs_err *err) {
    rs_cfg_node cluster = rs_cfg_get(root, "cluster");
    rs_cfg_node lb = rs_cfg_get(root, "load_balancer");
    rs_cfg_node health = rs_cfg_get(root, "health");
    rs_cfg_node retry = rs_cfg_get(root, "retry");
    if (rs_cluster_config_parse(&cluster, &out->cluster, err) != 0 ||
        rs_lb_config_parse(&lb, &out->lb, err) != 0 ||
        rs_health_config_parse(&health, &out->health, err) != 0 ||
        rs_retry_config_parse(&retry, &out->retry, err) != 0)
        return -1;
    /* locality needs to know where "here" is */
    if (out->lb.locality != RS_LOCALITY_NONE && out->cluster.local_host[0] == '\0') {
        rs_cfg_node loc = rs_cfg_get(&lb, "locality");
        rs_cfg_fail(&loc, err, "'%s': needs cluster.local_host",
                    out->lb.locality == RS_LOCALITY_HOST ? "host" : "numa");
        return -1;
    }
    return 0;
}

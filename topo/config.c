/* config.c — the `topology:` section and a model's `placement:` mapping.
 *
 * Only syntax and ranges are checked here; whether a CPU, GPU or node exists
 * is the plan's question (it has the topology). Each value keeps its origin
 * "<file>:<line>: <path>" so those later errors still name file and field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topo/plan.h"

static void rs_topo_origin(const rs_cfg_node *n, char *out, size_t out_bytes) {
    int line = rs_cfg_line(n);
    if (line > 0)
        snprintf(out, out_bytes, "%s:%d: %s", rs_cfg_file(n->cfg), line, n->path);
    else
        snprintf(out, out_bytes, "%s: %s", n->cfg ? rs_cfg_file(n->cfg) : "?", n->path);
}

void rs_topo_config_default(rs_topo_config *out) {
    memset(out, 0, sizeof(*out));
    out->numa = RS_TOPO_NUMA_LOCAL;
    out->numa_node = -1;
    out->smt = RS_TOPO_SMT_AVOID;
}

static int rs_topo_parse_cpus(const rs_cfg_node *section, const char *key, rs_topo_cpus_field *out,
                              rs_err *err) {
    rs_cfg_node n = rs_cfg_get(section, key);
    if (!rs_cfg_present(&n)) return 0;
    const char *text = rs_cfg_scalar(&n);
    if (!text) {
        rs_cfg_fail(&n, err, "expected a cpu list such as \"0-3,8\"");
        return -1;
    }
    if (strlen(text) >= sizeof(out->text)) {
        rs_cfg_fail(&n, err, "'%.40s...': longer than %zu bytes", text, sizeof(out->text) - 1);
        return -1;
    }
    rs_err why = {0};
    if (rs_cpulist_parse(text, &out->cpus, &why) != 0) {
        rs_cfg_fail(&n, err, "'%s': %s", text, why.msg);
        return -1;
    }
    out->set = true;
    snprintf(out->text, sizeof(out->text), "%s", text);
    rs_topo_origin(&n, out->origin, sizeof(out->origin));
    return 0;
}

/* "local" | "interleave" | "node:N" */
static int rs_topo_parse_numa(const rs_cfg_node *section, rs_topo_config *out, rs_err *err) {
    rs_cfg_node n = rs_cfg_get(section, "numa");
    if (!rs_cfg_present(&n)) return 0;
    const char *text = rs_cfg_scalar(&n);
    if (!text) {
        rs_cfg_fail(&n, err, "expected local, interleave or node:N");
        return -1;
    }
    rs_topo_origin(&n, out->numa_origin, sizeof(out->numa_origin));
    if (strcmp(text, "local") == 0) {
        out->numa = RS_TOPO_NUMA_LOCAL;
        return 0;
    }
    if (strcmp(text, "interleave") == 0) {
        out->numa = RS_TOPO_NUMA_INTERLEAVE;
        return 0;
    }
    if (strncmp(text, "node:", 5) == 0 && text[5] >= '0' && text[5] <= '9' &&
        strspn(text + 5, "0123456789") == strlen(text + 5) && strlen(text + 5) <= 4) {
        int node = atoi(text + 5);
        if (node >= RS_TOPO_MAX_NUMA) {
            rs_cfg_fail(&n, err, "'%s': NUMA node above the limit %d", text, RS_TOPO_MAX_NUMA - 1);
            return -1;
        }
        out->numa = RS_TOPO_NUMA_NODE;
        out->numa_node = node;
        return 0;
    }
    rs_cfg_fail(&n, err, "'%s': expected local, interleave or node:N", text);
    return -1;
}

static int rs_topo_parse_placements(const rs_cfg_node *section, rs_topo_config *out, rs_err *err) {
    rs_cfg_node map = rs_cfg_get(section, "placement");
    if (!rs_cfg_present(&map)) return 0;
    if (!rs_cfg_is_map(&map)) {
        rs_cfg_fail(&map, err, "expected a mapping of model name to placement");
        return -1;
    }
    size_t count = rs_cfg_len(&map);
    if (count > RS_TOPO_MAX_PLACEMENTS) {
        rs_cfg_fail(&map, err, "%zu models: more than the limit %d", count, RS_TOPO_MAX_PLACEMENTS);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        rs_cfg_node value;
        const char *name = rs_cfg_pair(&map, i, &value);
        for (int j = 0; j < out->placement_count; j++)
            if (strcmp(out->placement[j].name, name) == 0) {
                rs_cfg_fail(&value, err, "model '%s' listed twice", name);
                return -1;
            }
        rs_plan_model *m = &out->placement[out->placement_count];
        if (rs_plan_model_parse(&value, name, m, err) != 0) return -1;
        if (!m->origin[0]) rs_topo_origin(&value, m->origin, sizeof(m->origin));
        out->placement_count++;
    }
    return 0;
}

int rs_topo_config_parse(const rs_cfg_node *section, rs_topo_config *out, rs_err *err) {
    rs_topo_config_default(out);
    if (!rs_cfg_present(section)) return 0;
    const char *scalar = rs_cfg_scalar(section);
    if (scalar && scalar[0] == '\0') return 0; /* `topology:` with nothing under it */
    static const char *const keys[] = {"cpus", "reserve_cores", "io_cores",  "worker_cores",
                                       "numa", "smt",           "pin",       "io_sched",
                                       "placement", NULL};
    if (rs_cfg_check_keys(section, keys, err) != 0) return -1;
    if (rs_topo_parse_cpus(section, "cpus", &out->cpus, err) != 0 ||
        rs_topo_parse_cpus(section, "reserve_cores", &out->reserve_cores, err) != 0 ||
        rs_topo_parse_cpus(section, "io_cores", &out->io_cores, err) != 0 ||
        rs_topo_parse_cpus(section, "worker_cores", &out->worker_cores, err) != 0 ||
        rs_topo_parse_numa(section, out, err) != 0)
        return -1;
    static const char *const smt_names[] = {"avoid", "share", NULL};
    int smt = RS_TOPO_SMT_AVOID;
    if (rs_cfg_enum(section, "smt", false, RS_TOPO_SMT_AVOID, smt_names, &smt, err) != 0) return -1;
    out->smt = (rs_topo_smt)smt;
    bool pin = true;
    if (rs_cfg_bool(section, "pin", false, true, &pin, err) < 0) return -1;
    out->no_pin = !pin;
    static const char *const sched_names[] = {"normal", "batch", NULL};
    int sched = 0;
    if (rs_cfg_enum(section, "io_sched", false, 0, sched_names, &sched, err) != 0) return -1;
    out->io_sched_batch = sched == 1;
    return rs_topo_parse_placements(section, out, err);
}

void rs_plan_model_default(rs_plan_model *out, const char *name) {
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
    out->device = RS_PLAN_DEVICE_CPU;
    out->numa = RS_PLAN_NUMA_AUTO;
    out->instances = 1;
}

static int rs_plan_parse_gpus(const rs_cfg_node *placement, rs_plan_model *out, rs_err *err) {
    rs_cfg_node n = rs_cfg_get(placement, "gpus");
    if (!rs_cfg_present(&n)) return 0;
    if (!rs_cfg_is_seq(&n)) {
        rs_cfg_fail(&n, err, "'%s': expected a list of GPU ids such as [0, 1]",
                    rs_cfg_scalar(&n) ? rs_cfg_scalar(&n) : "");
        return -1;
    }
    size_t count = rs_cfg_len(&n);
    if (count > RS_PLAN_MODEL_MAX_GPUS) {
        rs_cfg_fail(&n, err, "%zu GPUs: more than the limit %d", count, RS_PLAN_MODEL_MAX_GPUS);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        rs_cfg_node item = rs_cfg_at(&n, i);
        const char *text = rs_cfg_scalar(&item);
        char *end = NULL;
        long id = text ? strtol(text, &end, 10) : -1;
        if (!text || !*text || *end || id < 0 || id >= RS_TOPO_MAX_GPUS) {
            rs_cfg_fail(&item, err, "'%s': expected a GPU id 0..%d", text ? text : "",
                        RS_TOPO_MAX_GPUS - 1);
            return -1;
        }
        for (int j = 0; j < out->gpu_count; j++)
            if (out->gpus[j] == (int)id) {
                rs_cfg_fail(&item, err, "'%s': GPU listed twice", text);
                return -1;
            }
        out->gpus[out->gpu_count++] = (int)id;
    }
    return 0;
}

int rs_plan_model_parse(const rs_cfg_node *placement, const char *name, rs_plan_model *out,
                        rs_err *err) {
    rs_plan_model_default(out, name);
    if (name && strlen(name) >= sizeof(out->name)) {
        rs_err_set(err, "model name '%.40s...' longer than %zu bytes", name, sizeof(out->name) - 1);
        return -1;
    }
    if (!rs_cfg_present(placement)) return 0;
    rs_topo_origin(placement, out->origin, sizeof(out->origin));
    const char *empty = rs_cfg_scalar(placement);
    if (empty && empty[0] == '\0') return 0; /* "placement:" with nothing: defaults */
    static const char *const keys[] = {"device", "gpus",      "gpu_memory_mb",
                                       "numa",   "instances", NULL};
    if (rs_cfg_check_keys(placement, keys, err) != 0) return -1;
    static const char *const devices[] = {"cpu", "gpu", NULL};
    int device = RS_PLAN_DEVICE_CPU;
    if (rs_cfg_enum(placement, "device", false, RS_PLAN_DEVICE_CPU, devices, &device, err) != 0)
        return -1;
    out->device = (rs_plan_device)device;
    if (rs_plan_parse_gpus(placement, out, err) != 0) return -1;
    if (rs_cfg_u64(placement, "gpu_memory_mb", false, 0, 0, UINT64_C(1) << 24, &out->gpu_memory_mb,
                   err) != 0)
        return -1;
    uint64_t instances = 1;
    if (rs_cfg_u64(placement, "instances", false, 1, 1, RS_PLAN_MAX_INSTANCES, &instances, err) !=
        0)
        return -1;
    out->instances = (int)instances;
    rs_cfg_node numa = rs_cfg_get(placement, "numa");
    const char *numa_text = rs_cfg_scalar(&numa);
    if (rs_cfg_present(&numa) && !(numa_text && strcmp(numa_text, "auto") == 0)) {
        int64_t node = 0;
        if (!numa_text || strspn(numa_text, "0123456789") != strlen(numa_text) || !*numa_text) {
            rs_cfg_fail(&numa, err, "'%s': expected auto or a NUMA node number",
                        numa_text ? numa_text : "");
            return -1;
        }
        if (rs_cfg_i64(placement, "numa", false, 0, 0, RS_TOPO_MAX_NUMA - 1, &node, err) != 0)
            return -1;
        out->numa = (int)node;
    }
    /* Cross-field checks: a CPU model with GPU settings is a typo, not a wish. */
    if (out->device == RS_PLAN_DEVICE_CPU && out->gpu_count > 0) {
        rs_cfg_node g = rs_cfg_get(placement, "gpus");
        rs_cfg_fail(&g, err, "'%d': GPUs listed but device is cpu (set device: gpu)", out->gpus[0]);
        return -1;
    }
    if (out->device == RS_PLAN_DEVICE_CPU && out->gpu_memory_mb > 0) {
        rs_cfg_node g = rs_cfg_get(placement, "gpu_memory_mb");
        rs_cfg_fail(&g, err, "'%s': gpu_memory_mb set but device is cpu (set device: gpu)",
                    rs_cfg_scalar(&g));
        return -1;
    }
    return 0;
}

/* plan_registry.c — registry models -> plan models (see plan_registry.h). */
#include "topo/plan_registry.h"

#include <stdio.h>
#include <string.h>

void rs_plan_model_from_registry(const rs_model *m, const char *name, rs_plan_model *out) {
    rs_plan_model_default(out, name ? name : m->name);
    out->device =
        m->placement.device == RS_MODEL_DEVICE_GPU ? RS_PLAN_DEVICE_GPU : RS_PLAN_DEVICE_CPU;
    for (uint32_t i = 0; i < m->placement.gpu_count && i < RS_PLAN_MODEL_MAX_GPUS; i++)
        out->gpus[out->gpu_count++] = m->placement.gpus[i];
    out->gpu_memory_mb = m->placement.gpu_memory_mb;
    out->numa = m->placement.numa == RS_MODEL_NUMA_AUTO ? RS_PLAN_NUMA_AUTO : m->placement.numa;
    out->instances = (int)m->instances;
    snprintf(out->origin, sizeof(out->origin), "%s: placement", m->file);
}

int rs_plan_models_from_registry(const rs_registry *r, rs_plan_model *out, size_t cap,
                                 size_t *count, rs_err *err) {
    size_t n = rs_registry_count(r);
    *count = 0;
    if (n > cap) {
        rs_err_set(err, "models: %zu models loaded: more than the %zu the plan takes", n, cap);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const rs_model *m = rs_registry_at(r, i);
        /* Sorted by name then version: a name seen next to itself has versions. */
        const rs_model *prev = i > 0 ? rs_registry_at(r, i - 1) : NULL;
        const rs_model *next = i + 1 < n ? rs_registry_at(r, i + 1) : NULL;
        bool versions = (prev && strcmp(prev->name, m->name) == 0) ||
                        (next && strcmp(next->name, m->name) == 0);
        char name[RS_PLAN_MODEL_NAME_BYTES + 16];
        if (versions)
            snprintf(name, sizeof(name), "%s:%u", m->name, m->version);
        else
            snprintf(name, sizeof(name), "%s", m->name);
        if (strlen(name) >= RS_PLAN_MODEL_NAME_BYTES) {
            rs_err_set(err, "models: '%s': name longer than %d bytes", name,
                       RS_PLAN_MODEL_NAME_BYTES - 1);
            return -1;
        }
        rs_plan_model_from_registry(m, name, &out[(*count)++]);
    }
    return 0;
}

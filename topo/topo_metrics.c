/* topo_metrics.c — placement gauges (see topo_metrics.h). */
#include "topo/topo_metrics.h"

#include <stdio.h>

int rs_topo_metrics_register(rs_metrics *m, const rs_plan *plan, rs_topo_metrics *out,
                             rs_err *err) {
    static const char *const labels[] = {"role", "model", "instance", "cpus", NULL};
    rs_metric_family pinned, memory;
    out->count = 0;
    if (rs_metrics_add_family(m, RS_METRIC_GAUGE, "ringserve_placement_pinned",
                              "1 when the thread runs exactly on its planned CPUs", labels, NULL,
                              &pinned, err) != 0 ||
        rs_metrics_add_family(m, RS_METRIC_GAUGE, "ringserve_placement_memory_bound",
                              "1 when the thread's NUMA memory policy was accepted", labels, NULL,
                              &memory, err) != 0)
        return -1;
    for (int i = 0; i < plan->entry_count; i++) {
        const rs_plan_entry *e = &plan->entries[i];
        char instance[16], cpus[96];
        snprintf(instance, sizeof(instance), "%d", e->instance);
        rs_cpulist_format(&e->cpus, cpus, sizeof(cpus));
        const char *values[] = {rs_plan_role_name(e->role), e->model >= 0 ? e->model_name : "",
                                instance, cpus};
        if (rs_metrics_add_series(m, pinned, values, &out->pinned[i], err) != 0 ||
            rs_metrics_add_series(m, memory, values, &out->memory_bound[i], err) != 0)
            return -1;
        out->count++;
    }
    return 0;
}

void rs_topo_metrics_record(const rs_topo_metrics *tm, rs_metrics_shard *s, int entry,
                            const rs_topo_binding *binding) {
    if (entry < 0 || entry >= tm->count) return;
    rs_metrics_gauge_set(s, tm->pinned[entry], binding->pinned ? 1 : 0);
    rs_metrics_gauge_set(s, tm->memory_bound[entry], binding->memory_bound ? 1 : 0);
}

/* topo_metrics.h — the plan and its effective binding as metrics.
 *
 * Two gauges, one series per plan entry, labelled with the entry's role,
 * model, instance and planned CPUs:
 *   ringserve_placement_pinned        1 when the kernel reports exactly the
 *                                     planned CPUs for that thread, else 0
 *   ringserve_placement_memory_bound  1 when its NUMA memory policy took
 * so an operator sees in /metrics when the OS refused a binding. */
#ifndef RS_TOPO_METRICS_H
#define RS_TOPO_METRICS_H

#include "engine/metrics/metrics.h"
#include "topo/bind.h"
#include "topo/plan.h"

typedef struct rs_topo_metrics {
    int count;
    rs_metric_id pinned[RS_PLAN_MAX_ENTRIES];
    rs_metric_id memory_bound[RS_PLAN_MAX_ENTRIES];
} rs_topo_metrics;

/* Before rs_metrics_freeze: adds the 2 families and 2 series per plan entry
 * (2 slots each). Returns 0, or -1 with err (the metrics set is full). */
int rs_topo_metrics_register(rs_metrics *m, const rs_plan *plan, rs_topo_metrics *out, rs_err *err);

/* After plan entry `entry` was applied by the thread that owns shard s. */
void rs_topo_metrics_record(const rs_topo_metrics *tm, rs_metrics_shard *s, int entry,
                            const rs_topo_binding *binding);

#endif

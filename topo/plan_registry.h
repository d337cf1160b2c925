/* plan_registry.h — models of the model registry as the plan sees them.
 *
 * The registry (engine/model_registry/) parses each model.yaml, placement
 * included; this turns every loaded model into an rs_plan_model so that
 * rs_plan_build can place it. A model loaded in several versions becomes
 * "<name>:<version>" (one entry per version); topology.placement.<name>
 * overrides every version of <name>. */
#ifndef RS_TOPO_PLAN_REGISTRY_H
#define RS_TOPO_PLAN_REGISTRY_H

#include <stddef.h>

#include "engine/common/err.h"
#include "engine/model_registry/registry.h"
#include "topo/plan.h"

/* One model: name, device, GPUs, gpu_memory_mb, numa and instances. */
void rs_plan_model_from_registry(const rs_model *m, const char *name, rs_plan_model *out);

/* Every model of r into out[0..cap); *count says how many. Returns 0, or -1
 * with err when there are more than cap. */
int rs_plan_models_from_registry(const rs_registry *r, rs_plan_model *out, size_t cap,
                                 size_t *count, rs_err *err);

#endif

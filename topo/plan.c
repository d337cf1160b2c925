/* plan.c — the placement plan, a pure function of (topology, config, models).
 *
 * Steps, each small: validate the config against the machine; compute the
 * usable CPUs; choose io cores (one loop per physical core); form the worker
 * pool; give every model instance a home NUMA node (its GPU's node, or the
 * least loaded node for CPU models); share each node's worker cores evenly
 * among the instances living there. The rules are listed in plan.h. */
#include "topo/plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Working state kept off the caller's plan so a failed build leaves no trace. */
typedef struct rs_plan_ctx {
    const rs_topo_info *topo;
    const rs_topo_config *cfg;
    const rs_plan_model *const *models; /* each model, or its topology.placement override */
    const rs_plan_model *given;         /* the models as passed: their names name entries */
    size_t model_count;
    rs_plan *plan;
    rs_err *err;
    rs_cpuset base;   /* cpus or allowed */
    rs_cpuset pool;   /* worker CPUs */
    bool shared_core; /* io and workers share the only core */
} rs_plan_ctx;

__attribute__((format(printf, 2, 3))) static void rs_plan_note(rs_plan *plan, const char *fmt,
                                                               ...) {
    if (plan->note_count == RS_PLAN_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(plan->notes[plan->note_count++], RS_PLAN_NOTE_BYTES, fmt, ap);
    va_end(ap);
}

static const char *rs_plan_fmt(const rs_cpuset *s, char *buf, size_t bytes) {
    rs_cpulist_format(s, buf, bytes);
    if (!buf[0]) snprintf(buf, bytes, "none");
    return buf;
}

static void rs_plan_node_list(const rs_topo_info *t, char *out, size_t bytes) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < t->numa_count && used < bytes; i++)
        used +=
            (size_t)snprintf(out + used, bytes - used, "%s%d", i ? "," : "", t->numa[i].os_index);
}

/* ---- validation: every CPU, node and GPU the config names must exist ---- */

static int rs_plan_check_cpus(rs_plan_ctx *c, const rs_topo_cpus_field *f, bool in_base) {
    char list[256];
    if (!f->set) return 0;
    int bad = rs_cpuset_first_not_in(&f->cpus, &c->topo->all);
    if (bad >= 0) {
        rs_err_set(c->err, "%s: '%s': cpu %d does not exist (this host has cpus %s)", f->origin,
                   f->text, bad, rs_plan_fmt(&c->topo->all, list, sizeof(list)));
        return -1;
    }
    if (f == &c->cfg->reserve_cores) return 0; /* reserving a disallowed CPU is harmless */
    bad = rs_cpuset_first_not_in(&f->cpus, &c->topo->allowed);
    if (bad >= 0) {
        rs_err_set(c->err, "%s: '%s': cpu %d is outside the allowed cpuset %s", f->origin, f->text,
                   bad, rs_plan_fmt(&c->topo->allowed, list, sizeof(list)));
        return -1;
    }
    if (in_base) {
        bad = rs_cpuset_first_not_in(&f->cpus, &c->base);
        if (bad >= 0) {
            rs_err_set(c->err, "%s: '%s': cpu %d is not in topology.cpus '%s'", f->origin, f->text,
                       bad, c->cfg->cpus.text);
            return -1;
        }
        rs_cpuset both = f->cpus;
        rs_cpuset_and(&both, &c->cfg->reserve_cores.cpus);
        if (c->cfg->reserve_cores.set && !rs_cpuset_empty(&both)) {
            rs_err_set(c->err, "%s: '%s': cpu %d is reserved by topology.reserve_cores '%s'",
                       f->origin, f->text, rs_cpuset_next(&both, 0), c->cfg->reserve_cores.text);
            return -1;
        }
    }
    return 0;
}

static int rs_plan_check_sets(rs_plan_ctx *c) {
    const rs_topo_config *cfg = c->cfg;
    const rs_topo_cpus_field *io = &cfg->io_cores, *wk = &cfg->worker_cores;
    if (!io->set || !wk->set) return 0;
    rs_cpuset both = io->cpus;
    rs_cpuset_and(&both, &wk->cpus);
    if (!rs_cpuset_empty(&both)) {
        rs_err_set(c->err, "%s: '%s': cpu %d is also in topology.io_cores '%s'", wk->origin,
                   wk->text, rs_cpuset_next(&both, 0), io->text);
        return -1;
    }
    if (cfg->smt != RS_TOPO_SMT_AVOID) return 0;
    for (int i = 0; i < c->topo->core_count; i++) {
        const rs_topo_core *core = &c->topo->cores[i];
        rs_cpuset a = core->cpus, b = core->cpus;
        rs_cpuset_and(&a, &io->cpus);
        rs_cpuset_and(&b, &wk->cpus);
        if (!rs_cpuset_empty(&a) && !rs_cpuset_empty(&b)) {
            rs_err_set(c->err,
                       "%s: '%s': cpu %d is an SMT sibling of io cpu %d (core %d) and smt is "
                       "avoid",
                       wk->origin, wk->text, rs_cpuset_next(&b, 0), rs_cpuset_next(&a, 0),
                       core->index);
            return -1;
        }
    }
    return 0;
}

static void rs_plan_model_where(const rs_plan_model *m, const char *field, char *out,
                                size_t bytes) {
    if (m->origin[0])
        snprintf(out, bytes, "%s.%s", m->origin, field);
    else
        snprintf(out, bytes, "model '%s': placement.%s", m->name, field);
}

static int rs_plan_check_models(rs_plan_ctx *c) {
    const rs_topo_info *t = c->topo;
    char where[RS_TOPO_ORIGIN_BYTES + 32], nodes[256];
    rs_plan_node_list(t, nodes, sizeof(nodes));
    for (size_t i = 0; i < c->model_count; i++) {
        const rs_plan_model *m = c->models[i];
        if (m->instances < 1 || m->instances > RS_PLAN_MAX_INSTANCES) {
            rs_plan_model_where(m, "instances", where, sizeof(where));
            rs_err_set(c->err, "%s: '%d': out of range [1, %d]", where, m->instances,
                       RS_PLAN_MAX_INSTANCES);
            return -1;
        }
        if (m->device == RS_PLAN_DEVICE_GPU && t->gpu_count == 0) {
            rs_plan_model_where(m, "device", where, sizeof(where));
            rs_err_set(c->err, "%s: 'gpu': this host has no NVIDIA GPU", where);
            return -1;
        }
        if (m->device == RS_PLAN_DEVICE_CPU && m->gpu_count > 0) {
            rs_plan_model_where(m, "gpus", where, sizeof(where));
            rs_err_set(c->err, "%s: '%d': GPUs listed but device is cpu", where, m->gpus[0]);
            return -1;
        }
        for (int g = 0; g < m->gpu_count; g++)
            if (m->gpus[g] < 0 || m->gpus[g] >= t->gpu_count) {
                rs_plan_model_where(m, "gpus", where, sizeof(where));
                if (t->gpu_count == 1)
                    rs_err_set(c->err, "%s: '%d': GPU %d does not exist (this host has GPU 0)",
                               where, m->gpus[g], m->gpus[g]);
                else
                    rs_err_set(c->err, "%s: '%d': GPU %d does not exist (this host has GPUs 0-%d)",
                               where, m->gpus[g], m->gpus[g], t->gpu_count - 1);
                return -1;
            }
        if (m->numa != RS_PLAN_NUMA_AUTO && !rs_topo_info_numa(t, m->numa)) {
            rs_plan_model_where(m, "numa", where, sizeof(where));
            rs_err_set(c->err, "%s: '%d': NUMA node %d does not exist (this host has nodes %s)",
                       where, m->numa, m->numa, nodes);
            return -1;
        }
    }
    return 0;
}

static int rs_plan_validate(rs_plan_ctx *c) {
    const rs_topo_config *cfg = c->cfg;
    char list[256], nodes[256];
    if (rs_plan_check_cpus(c, &cfg->cpus, false) != 0) return -1;
    c->base = cfg->cpus.set ? cfg->cpus.cpus : c->topo->allowed;
    if (rs_plan_check_cpus(c, &cfg->reserve_cores, false) != 0 ||
        rs_plan_check_cpus(c, &cfg->io_cores, true) != 0 ||
        rs_plan_check_cpus(c, &cfg->worker_cores, true) != 0 || rs_plan_check_sets(c) != 0)
        return -1;
    if (cfg->numa == RS_TOPO_NUMA_NODE && !rs_topo_info_numa(c->topo, cfg->numa_node)) {
        rs_plan_node_list(c->topo, nodes, sizeof(nodes));
        rs_err_set(c->err, "%s: 'node:%d': NUMA node %d does not exist (this host has nodes %s)",
                   cfg->numa_origin, cfg->numa_node, cfg->numa_node, nodes);
        return -1;
    }
    c->plan->usable = c->base;
    if (cfg->reserve_cores.set) {
        c->plan->reserved = cfg->reserve_cores.cpus;
        rs_cpuset_andnot(&c->plan->usable, &cfg->reserve_cores.cpus);
    }
    if (rs_cpuset_empty(&c->plan->usable)) {
        const rs_topo_cpus_field *f = cfg->reserve_cores.set ? &cfg->reserve_cores : &cfg->cpus;
        rs_err_set(c->err, "%s: '%s': leaves no usable cpu (usable before: %s)",
                   f->set ? f->origin : "topology", f->text,
                   rs_plan_fmt(&c->base, list, sizeof(list)));
        return -1;
    }
    return rs_plan_check_models(c);
}

/* ---- io loops ---- */

static bool rs_plan_core_has(const rs_topo_core *core, const rs_cpuset *set) {
    return rs_cpuset_intersects(&core->cpus, set);
}

static int rs_plan_add(rs_plan_ctx *c, const rs_plan_entry *e) {
    if (c->plan->entry_count == RS_PLAN_MAX_ENTRIES) {
        rs_err_set(c->err, "topology: the plan needs more than %d threads groups",
                   RS_PLAN_MAX_ENTRIES);
        return -1;
    }
    c->plan->entries[c->plan->entry_count++] = *e;
    return 0;
}

static int rs_plan_mem_node(const rs_plan_ctx *c, int node) {
    switch (c->cfg->numa) {
    case RS_TOPO_NUMA_INTERLEAVE: return RS_PLAN_MEM_INTERLEAVE;
    case RS_TOPO_NUMA_NODE: return c->cfg->numa_node;
    default: return node;
    }
}

/* Picks the io cores: marks io_core[i] for chosen core indexes. */
static int rs_plan_choose_io(rs_plan_ctx *c, bool io_core[]) {
    const rs_topo_info *t = c->topo;
    const rs_topo_config *cfg = c->cfg;
    const rs_cpuset *usable = &c->plan->usable;
    int usable_cores = 0, chosen = 0;
    for (int i = 0; i < t->core_count; i++)
        usable_cores += rs_plan_core_has(&t->cores[i], usable);
    for (int i = 0; i < t->core_count; i++) {
        const rs_topo_core *core = &t->cores[i];
        if (!rs_plan_core_has(core, usable)) continue;
        if (cfg->io_cores.set)
            io_core[i] = rs_plan_core_has(core, &cfg->io_cores.cpus);
        else if (cfg->worker_cores.set) {
            rs_cpuset free_cpus = core->cpus;
            rs_cpuset_and(&free_cpus, usable);
            if (cfg->smt == RS_TOPO_SMT_AVOID)
                io_core[i] = !rs_plan_core_has(core, &cfg->worker_cores.cpus);
            else
                io_core[i] = (rs_cpuset_andnot(&free_cpus, &cfg->worker_cores.cpus),
                              !rs_cpuset_empty(&free_cpus));
        } else if (c->model_count == 0)
            io_core[i] = true;
        chosen += io_core[i];
    }
    if (cfg->io_cores.set || cfg->worker_cores.set || c->model_count == 0) {
        if (chosen == 0) {
            rs_err_set(c->err, "%s: '%s': leaves no core for io loops", cfg->worker_cores.origin,
                       cfg->worker_cores.text);
            return -1;
        }
        return 0;
    }
    /* Default split with models: a quarter of the cores (at least one) run
     * io loops, taken round-robin over NUMA nodes, lowest cores first. */
    int want = usable_cores / 4 > 0 ? usable_cores / 4 : 1;
    if (usable_cores == 1) {
        c->shared_core = true;
        rs_plan_note(c->plan, "only one usable core: io loops and worker shards share it");
    }
    while (chosen < want) {
        bool progress = false;
        for (int n = 0; n < t->numa_count && chosen < want; n++) {
            for (int i = 0; i < t->core_count; i++) {
                const rs_topo_core *core = &t->cores[i];
                if (io_core[i] || core->numa != t->numa[n].os_index ||
                    !rs_plan_core_has(core, usable))
                    continue;
                io_core[i] = true;
                chosen++;
                progress = true;
                break;
            }
        }
        if (!progress) break;
    }
    return 0;
}

static int rs_plan_io(rs_plan_ctx *c, bool io_core[]) {
    const rs_topo_info *t = c->topo;
    const rs_cpuset *from = c->cfg->io_cores.set ? &c->cfg->io_cores.cpus : &c->plan->usable;
    for (int i = 0; i < t->core_count; i++) {
        if (!io_core[i]) continue;
        const rs_topo_core *core = &t->cores[i];
        rs_cpuset mine = core->cpus;
        rs_cpuset_and(&mine, from);
        if (!c->cfg->io_cores.set && c->cfg->worker_cores.set)
            rs_cpuset_andnot(&mine, &c->cfg->worker_cores.cpus);
        rs_plan_entry e = {.role = RS_PLAN_IO,
                           .model = -1,
                           .instance = c->plan->io_count,
                           .core_count = 1,
                           .numa = core->numa,
                           .gpu = -1};
        rs_cpuset_set(&e.cpus, rs_cpuset_next(&mine, 0)); /* one loop, one CPU */
        e.mem_node = rs_plan_mem_node(c, core->numa);
        rs_cpuset_or(&c->plan->io, &e.cpus);
        if (rs_plan_add(c, &e) != 0) return -1;
        c->plan->io_count++;
    }
    return 0;
}

/* ---- worker pool and model instances ---- */

static void rs_plan_pool(rs_plan_ctx *c, const bool io_core[]) {
    const rs_topo_info *t = c->topo;
    if (c->cfg->worker_cores.set) {
        c->pool = c->cfg->worker_cores.cpus;
        rs_cpuset_and(&c->pool, &c->plan->usable);
        return;
    }
    c->pool = c->plan->usable;
    if (c->shared_core) return;
    for (int i = 0; i < t->core_count; i++) {
        if (!io_core[i]) continue;
        if (c->cfg->smt == RS_TOPO_SMT_AVOID)
            rs_cpuset_andnot(&c->pool, &t->cores[i].cpus); /* siblings stay idle */
    }
    rs_cpuset_andnot(&c->pool, &c->plan->io);
    if (c->cfg->io_cores.set) /* a listed io CPU never works, even when idle */
        rs_cpuset_andnot(&c->pool, &c->cfg->io_cores.cpus);
}

typedef struct rs_plan_instance {
    int model, instance, node, gpu;
} rs_plan_instance;

static int rs_plan_node_slots(const rs_plan_ctx *c, int node) {
    int n = 0;
    for (int i = 0; i < c->topo->core_count; i++)
        n += c->topo->cores[i].numa == node && rs_plan_core_has(&c->topo->cores[i], &c->pool);
    return n;
}

/* The node with worker cores and the fewest instances so far; lowest first. */
static int rs_plan_least_loaded(const rs_plan_ctx *c, const int load[]) {
    int best = -1;
    for (int n = 0; n < c->topo->numa_count; n++) {
        if (rs_plan_node_slots(c, c->topo->numa[n].os_index) == 0) continue;
        if (best < 0 || load[n] < load[best]) best = n;
    }
    return best < 0 ? -1 : c->topo->numa[best].os_index;
}

static int rs_plan_numa_pos(const rs_topo_info *t, int node) {
    for (int n = 0; n < t->numa_count; n++)
        if (t->numa[n].os_index == node) return n;
    return -1;
}

static int rs_plan_home(rs_plan_ctx *c, const rs_plan_model *m, rs_plan_instance *in, int load[],
                        int *gpu_rr) {
    const rs_topo_info *t = c->topo;
    int want = -1;
    in->gpu = -1;
    if (m->device == RS_PLAN_DEVICE_GPU) {
        in->gpu =
            m->gpu_count > 0 ? m->gpus[in->instance % m->gpu_count] : (*gpu_rr)++ % t->gpu_count;
        const rs_topo_gpu *g = &t->gpus[in->gpu];
        want = g->numa >= 0 ? g->numa : rs_topo_info_numa_of_cpu(t, rs_cpuset_next(&g->cpus, 0));
    }
    if (m->numa != RS_PLAN_NUMA_AUTO) want = m->numa;
    if (want >= 0 && rs_plan_node_slots(c, want) == 0) {
        char where[RS_TOPO_ORIGIN_BYTES + 32], list[256];
        if (m->numa != RS_PLAN_NUMA_AUTO) { /* an explicit wish we cannot honour */
            rs_plan_model_where(m, "numa", where, sizeof(where));
            rs_err_set(c->err, "%s: '%d': no worker cpu on NUMA node %d (worker cpus: %s)", where,
                       m->numa, m->numa, rs_plan_fmt(&c->pool, list, sizeof(list)));
            return -1;
        }
        int other = rs_plan_least_loaded(c, load);
        rs_plan_note(c->plan, "%s instance %d: GPU %d's node %d has no worker cores; using node %d",
                     m->name, in->instance, in->gpu, want, other);
        want = other;
    }
    if (want < 0) want = rs_plan_least_loaded(c, load);
    in->node = want;
    load[rs_plan_numa_pos(t, want)]++;
    return 0;
}

/* Cores of the pool on a node, in topology order. */
static int rs_plan_slots(const rs_plan_ctx *c, int node, int out[]) {
    int n = 0;
    for (int i = 0; i < c->topo->core_count; i++)
        if (c->topo->cores[i].numa == node && rs_plan_core_has(&c->topo->cores[i], &c->pool))
            out[n++] = i;
    return n;
}

static void rs_plan_slot_cpus(const rs_plan_ctx *c, int core, rs_cpuset *into) {
    rs_cpuset s = c->topo->cores[core].cpus;
    rs_cpuset_and(&s, &c->pool);
    rs_cpuset_or(into, &s);
}

static int rs_plan_models(rs_plan_ctx *c) {
    const rs_topo_info *t = c->topo;
    static const int max_instances = RS_PLAN_MAX_ENTRIES;
    rs_plan_instance inst[RS_PLAN_MAX_ENTRIES];
    int count = 0, load[RS_TOPO_MAX_NUMA] = {0}, gpu_rr = 0;
    if (c->model_count > 0 && rs_cpuset_empty(&c->pool)) {
        const rs_topo_cpus_field *f = c->cfg->io_cores.set ? &c->cfg->io_cores : &c->cfg->cpus;
        rs_err_set(c->err, "%s: '%s': leaves no cpu for worker shards",
                   f->set ? f->origin : "topology", f->text);
        return -1;
    }
    /* GPU models first: they have a fixed home; CPU models then fill the
     * least loaded nodes around them. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t m = 0; m < c->model_count; m++) {
            const rs_plan_model *pm = c->models[m];
            if ((pass == 0) != (pm->device == RS_PLAN_DEVICE_GPU)) continue;
            for (int i = 0; i < pm->instances; i++) {
                if (count == max_instances) {
                    rs_err_set(c->err, "topology: more than %d model instances", max_instances);
                    return -1;
                }
                inst[count] = (rs_plan_instance){.model = (int)m, .instance = i};
                if (rs_plan_home(c, pm, &inst[count], load, &gpu_rr) != 0) return -1;
                count++;
            }
        }
    /* Entries in model order, instance order; cores shared per node. */
    int slots[RS_TOPO_MAX_CORES];
    for (size_t m = 0; m < c->model_count; m++) {
        const rs_plan_model *pm = c->models[m];
        for (int k = 0; k < count; k++) {
            if (inst[k].model != (int)m) continue;
            int node = inst[k].node, nslots = rs_plan_slots(c, node, slots);
            int pos = 0, on_node = load[rs_plan_numa_pos(t, node)];
            for (int j = 0; j < k; j++)
                pos += inst[j].node == node;
            int lo, hi;
            if (nslots >= on_node) {
                lo = pos * nslots / on_node;
                hi = (pos + 1) * nslots / on_node;
            } else {
                lo = pos % nslots;
                hi = lo + 1;
                if (pos == nslots)
                    rs_plan_note(c->plan, "node %d: %d instances share %d worker cores", node,
                                 on_node, nslots);
            }
            rs_plan_entry e = {.role = RS_PLAN_WORKER,
                               .model = (int)m,
                               .instance = inst[k].instance,
                               .numa = node,
                               .gpu = inst[k].gpu,
                               .gpu_memory_mb = pm->gpu_memory_mb};
            snprintf(e.model_name, sizeof(e.model_name), "%s", c->given[m].name);
            e.mem_node = rs_plan_mem_node(c, node);
            rs_plan_entry pre = e;
            pre.role = RS_PLAN_PREPROCESS;
            /* A GPU shard needs one core to drive the GPU; the rest of its
             * share does pre-processing next to it. */
            bool split = pm->device == RS_PLAN_DEVICE_GPU && hi - lo >= 2;
            for (int s = lo; s < hi; s++) {
                rs_plan_entry *into = split && s > lo ? &pre : &e;
                rs_plan_slot_cpus(c, slots[s], &into->cpus);
                into->core_count++;
            }
            rs_cpuset_or(&c->plan->worker, &e.cpus);
            if (rs_plan_add(c, &e) != 0) return -1;
            if (split) {
                rs_cpuset_or(&c->plan->worker, &pre.cpus);
                if (rs_plan_add(c, &pre) != 0) return -1;
            }
        }
    }
    return 0;
}

/* An override named "m" covers model "m" and every version "m:<n>". */
static bool rs_plan_name_match(const char *override, const char *model) {
    size_t len = strlen(override);
    if (strncmp(override, model, len) != 0) return false;
    if (model[len] == '\0') return true;
    return model[len] == ':' && model[len + 1] &&
           strspn(model + len + 1, "0123456789") == strlen(model + len + 1);
}

/* Each model, or the topology.placement entry of the same name. */
static int rs_plan_resolve(const rs_topo_config *cfg, const rs_plan_model *models, size_t count,
                           const rs_plan_model *eff[], rs_err *err) {
    if (count > RS_PLAN_MAX_ENTRIES) {
        rs_err_set(err, "topology: %zu models: more than the limit %d", count, RS_PLAN_MAX_ENTRIES);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        eff[i] = &models[i];
        for (int j = 0; j < cfg->placement_count; j++)
            if (rs_plan_name_match(cfg->placement[j].name, models[i].name))
                eff[i] = &cfg->placement[j];
    }
    for (int j = 0; j < cfg->placement_count; j++) {
        bool found = false;
        for (size_t i = 0; i < count && !found; i++)
            found = rs_plan_name_match(cfg->placement[j].name, models[i].name);
        if (!found) {
            rs_err_set(err, "%s: '%s': no such model is loaded", cfg->placement[j].origin,
                       cfg->placement[j].name);
            return -1;
        }
    }
    return 0;
}

int rs_plan_build(const rs_topo_info *topo, const rs_topo_config *cfg, const rs_plan_model *models,
                  size_t model_count, rs_plan *out, rs_err *err) {
    memset(out, 0, sizeof(*out));
    out->smt = cfg->smt;
    out->numa = cfg->numa;
    const rs_plan_model *eff[RS_PLAN_MAX_ENTRIES];
    if (rs_plan_resolve(cfg, models, model_count, eff, err) != 0) goto fail;
    rs_plan_ctx c = {.topo = topo,
                     .cfg = cfg,
                     .models = eff,
                     .given = models,
                     .model_count = model_count,
                     .plan = out,
                     .err = err};
    bool io_core[RS_TOPO_MAX_CORES] = {false};
    if (rs_plan_validate(&c) != 0 || rs_plan_choose_io(&c, io_core) != 0 ||
        rs_plan_io(&c, io_core) != 0)
        goto fail;
    rs_plan_pool(&c, io_core);
    if (rs_plan_models(&c) != 0) goto fail;
    for (int i = 0; i < out->entry_count; i++) {
        out->entries[i].no_pin = cfg->no_pin;
        out->entries[i].sched_batch = cfg->io_sched_batch && out->entries[i].role == RS_PLAN_IO;
    }
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return -1;
}

const rs_plan_entry *rs_plan_find(const rs_plan *plan, rs_plan_role role, const char *model,
                                  int instance) {
    for (int i = 0; i < plan->entry_count; i++) {
        const rs_plan_entry *e = &plan->entries[i];
        if (e->role != role || e->instance != instance) continue;
        if (role == RS_PLAN_IO || (model && strcmp(e->model_name, model) == 0)) return e;
    }
    return NULL;
}

const char *rs_plan_role_name(rs_plan_role role) {
    switch (role) {
    case RS_PLAN_IO: return "io";
    case RS_PLAN_WORKER: return "worker";
    case RS_PLAN_PREPROCESS: return "preprocess";
    }
    return "?";
}

void rs_plan_entry_describe(const rs_plan_entry *e, char *out, size_t out_bytes) {
    switch (e->role) {
    case RS_PLAN_IO: snprintf(out, out_bytes, "io loop %d", e->instance); break;
    case RS_PLAN_WORKER:
        snprintf(out, out_bytes, "worker shard of %s instance %d", e->model_name, e->instance);
        break;
    case RS_PLAN_PREPROCESS:
        snprintf(out, out_bytes, "pre-processing of %s instance %d", e->model_name, e->instance);
        break;
    }
}

/* cmd_topo.c — `ringserve topo`: the machine as a short tree, the placement
 * plan as a table, and (on this machine) the binding the kernel reports
 * once each plan entry is applied in a thread of its own.
 *
 *   ringserve topo [--config F] [--topology-xml F | --synthetic S] [--json] [--hold]
 *
 * Models come from the model registry when the config has a `models:`
 * section (each model.yaml's placement and instances), with the config's
 * `topology.placement` mapping overriding them per host; without `models:`
 * the models planned are those topology.placement names (see topo/plan.h). --hold keeps the pinned
 * threads alive until stdin closes, so a test can read their affinity from
 * /proc/<pid>/task/<tid>/status. */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cmd.h"
#include "engine/common/config.h"
#include "engine/common/log.h"
#include "topo/bind.h"
#include "topo/plan.h"
#include "topo/plan_registry.h"
#include "topo/topo.h"

typedef struct rs_topo_opts {
    const char *config, *xml, *synthetic;
    bool json, hold;
} rs_topo_opts;

/* One applied plan entry: a thread that pins itself and reports back. */
typedef struct rs_topo_applied {
    const rs_plan_entry *entry;
    rs_topo *topo;
    rs_topo_binding binding;
    pid_t tid;
    pthread_t thread;
    bool started;
} rs_topo_applied;

typedef struct rs_topo_run {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int applied;  /* entries whose thread has pinned itself */
    bool release; /* --hold: stdin closed, threads may exit */
} rs_topo_run;

static rs_topo_run rs_topo_state = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};

static void *rs_topo_apply_thread(void *arg) {
    rs_topo_applied *a = arg;
    a->tid = gettid();
    rs_plan_apply_entry(a->topo, a->entry, &a->binding);
    pthread_mutex_lock(&rs_topo_state.lock);
    rs_topo_state.applied++;
    pthread_cond_broadcast(&rs_topo_state.cond);
    while (!rs_topo_state.release)
        pthread_cond_wait(&rs_topo_state.cond, &rs_topo_state.lock);
    pthread_mutex_unlock(&rs_topo_state.lock);
    return NULL;
}

/* Starts one thread per entry and waits until each has pinned itself. */
static int rs_topo_apply_all(rs_topo *t, const rs_plan *plan, rs_topo_applied *out) {
    int started = 0;
    for (int i = 0; i < plan->entry_count; i++) {
        out[i] = (rs_topo_applied){.entry = &plan->entries[i], .topo = t};
        if (pthread_create(&out[i].thread, NULL, rs_topo_apply_thread, &out[i]) != 0) {
            RS_WARN("topo: cannot start a thread to apply entry %d: %s", i, strerror(errno));
            continue;
        }
        out[i].started = true;
        started++;
    }
    pthread_mutex_lock(&rs_topo_state.lock);
    while (rs_topo_state.applied < started)
        pthread_cond_wait(&rs_topo_state.cond, &rs_topo_state.lock);
    pthread_mutex_unlock(&rs_topo_state.lock);
    return started;
}

static void rs_topo_release_all(const rs_plan *plan, rs_topo_applied *applied) {
    pthread_mutex_lock(&rs_topo_state.lock);
    rs_topo_state.release = true;
    pthread_cond_broadcast(&rs_topo_state.cond);
    pthread_mutex_unlock(&rs_topo_state.lock);
    for (int i = 0; i < plan->entry_count; i++)
        if (applied[i].started) pthread_join(applied[i].thread, NULL);
}

/* ---- text output ---- */

static const char *rs_topo_list(const rs_cpuset *s, char *buf, size_t bytes) {
    rs_cpulist_format(s, buf, bytes);
    if (!buf[0]) snprintf(buf, bytes, "none");
    return buf;
}

static void rs_topo_print_tree(const rs_topo_info *t) {
    char a[RS_CPULIST_BYTES], b[RS_CPULIST_BYTES];
    printf("machine: %d package%s, %d NUMA node%s, %d L3, %d cores, %d cpus (SMT %d), %d GPU%s "
           "[%s]\n",
           t->package_count, t->package_count == 1 ? "" : "s", t->numa_count,
           t->numa_count == 1 ? "" : "s", t->l3_count, t->core_count, rs_cpuset_count(&t->all),
           t->smt_max, t->gpu_count, t->gpu_count == 1 ? "" : "s", t->source_text);
    printf("allowed cpus: %s (of %s)\n", rs_topo_list(&t->allowed, a, sizeof(a)),
           rs_topo_list(&t->all, b, sizeof(b)));
    for (int p = 0; p < t->package_count; p++) {
        printf("package %d\n", p);
        for (int n = 0; n < t->numa_count; n++) {
            const rs_topo_numa *node = &t->numa[n];
            if (node->package != p && !(node->package < 0 && p == 0)) continue;
            printf("  numa %d (%llu MiB): cpus %s\n", node->os_index,
                   (unsigned long long)(node->memory_bytes >> 20),
                   rs_topo_list(&node->cpus, a, sizeof(a)));
            int last_l3 = -2, on_line = 0;
            for (int i = 0; i < t->core_count; i++) {
                const rs_topo_core *c = &t->cores[i];
                if (c->numa != node->os_index || c->package != p) continue;
                if (c->l3 != last_l3 || on_line == 8) {
                    if (last_l3 != -2) printf("\n");
                    if (c->l3 != last_l3)
                        printf(c->l3 >= 0 ? "    L3 %d:" : "    cores:", c->l3);
                    else
                        printf("         ");
                    last_l3 = c->l3;
                    on_line = 0;
                }
                printf(" core %d (%s)", c->index, rs_topo_list(&c->cpus, a, sizeof(a)));
                on_line++;
            }
            if (last_l3 != -2) printf("\n");
            for (int g = 0; g < t->gpu_count; g++)
                if (t->gpus[g].numa == node->os_index)
                    printf("    gpu %d %s [%04x:%04x] %s\n", t->gpus[g].id, t->gpus[g].busid,
                           t->gpus[g].vendor, t->gpus[g].device, t->gpus[g].name);
        }
    }
    for (int g = 0; g < t->gpu_count; g++)
        if (t->gpus[g].numa < 0)
            printf("gpu %d %s [%04x:%04x] %s: near cpus %s (several NUMA nodes)\n", t->gpus[g].id,
                   t->gpus[g].busid, t->gpus[g].vendor, t->gpus[g].device, t->gpus[g].name,
                   rs_topo_list(&t->gpus[g].cpus, a, sizeof(a)));
}

static const char *rs_topo_numa_text(rs_topo_numa_policy policy) {
    return policy == RS_TOPO_NUMA_LOCAL        ? "local"
           : policy == RS_TOPO_NUMA_INTERLEAVE ? "interleave"
                                               : "node";
}

static void rs_topo_mem_text(int node, char *out, size_t bytes) {
    if (node == RS_PLAN_MEM_INTERLEAVE)
        snprintf(out, bytes, "interleave");
    else
        snprintf(out, bytes, "node %d", node);
}

static void rs_topo_print_plan(const rs_plan *plan, const rs_topo_applied *applied) {
    char a[RS_CPULIST_BYTES], b[RS_CPULIST_BYTES], what[128], mem[32], gpu[16];
    printf("\nplan (smt %s, numa %s): %d io loop%s; usable cpus %s; reserved %s\n",
           plan->smt == RS_TOPO_SMT_AVOID ? "avoid" : "share", rs_topo_numa_text(plan->numa),
           plan->io_count, plan->io_count == 1 ? "" : "s",
           rs_topo_list(&plan->usable, a, sizeof(a)), rs_topo_list(&plan->reserved, b, sizeof(b)));
    printf("%-40s %-16s %5s %4s %-10s %3s  %s\n", "ROLE", "CPUS", "CORES", "NUMA", "MEMORY", "GPU",
           "EFFECTIVE");
    for (int i = 0; i < plan->entry_count; i++) {
        const rs_plan_entry *e = &plan->entries[i];
        rs_plan_entry_describe(e, what, sizeof(what));
        rs_topo_mem_text(e->mem_node, mem, sizeof(mem));
        if (e->gpu >= 0)
            snprintf(gpu, sizeof(gpu), "%d", e->gpu);
        else
            snprintf(gpu, sizeof(gpu), "-");
        if (applied && applied[i].started)
            snprintf(b, sizeof(b), "%s%s%s",
                     rs_topo_list(&applied[i].binding.effective, a, sizeof(a)),
                     applied[i].binding.pinned ? " (pinned)"
                     : e->no_pin              ? " (not pinned: topology.pin off)"
                                              : " (NOT pinned)",
                     applied[i].binding.sched_batch ? " sched batch"
                     : e->sched_batch              ? " (SCHED_BATCH refused)"
                                                   : "");
        else
            snprintf(b, sizeof(b), "n/a (not this machine)");
        printf("%-40s %-16s %5d %4d %-10s %3s  %s\n", what, rs_topo_list(&e->cpus, a, sizeof(a)),
               e->core_count, e->numa, mem, gpu, b);
    }
    for (int i = 0; i < plan->note_count; i++)
        printf("note: %s\n", plan->notes[i]);
}

/* ---- JSON output (json-c) ---- */

static json_object *rs_topo_json_cpus(const rs_cpuset *s) {
    json_object *arr = json_object_new_array();
    for (int c = rs_cpuset_next(s, 0); c >= 0; c = rs_cpuset_next(s, c + 1))
        json_object_array_add(arr, json_object_new_int(c));
    return arr;
}

static json_object *rs_topo_json_machine(const rs_topo_info *t) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "source", json_object_new_string(t->source_text));
    json_object_object_add(m, "packages", json_object_new_int(t->package_count));
    json_object_object_add(m, "l3", json_object_new_int(t->l3_count));
    json_object_object_add(m, "smt", json_object_new_int(t->smt_max));
    json_object_object_add(m, "cpus", rs_topo_json_cpus(&t->all));
    json_object_object_add(m, "allowed", rs_topo_json_cpus(&t->allowed));
    json_object *nodes = json_object_new_array();
    for (int i = 0; i < t->numa_count; i++) {
        json_object *n = json_object_new_object();
        json_object_object_add(n, "node", json_object_new_int(t->numa[i].os_index));
        json_object_object_add(n, "package", json_object_new_int(t->numa[i].package));
        json_object_object_add(n, "memory_bytes",
                               json_object_new_int64((int64_t)t->numa[i].memory_bytes));
        json_object_object_add(n, "cpus", rs_topo_json_cpus(&t->numa[i].cpus));
        json_object_array_add(nodes, n);
    }
    json_object_object_add(m, "numa_nodes", nodes);
    json_object *cores = json_object_new_array();
    for (int i = 0; i < t->core_count; i++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "core", json_object_new_int(t->cores[i].index));
        json_object_object_add(c, "package", json_object_new_int(t->cores[i].package));
        json_object_object_add(c, "numa", json_object_new_int(t->cores[i].numa));
        json_object_object_add(c, "l3", json_object_new_int(t->cores[i].l3));
        json_object_object_add(c, "cpus", rs_topo_json_cpus(&t->cores[i].cpus));
        json_object_array_add(cores, c);
    }
    json_object_object_add(m, "cores", cores);
    json_object *gpus = json_object_new_array();
    for (int i = 0; i < t->gpu_count; i++) {
        const rs_topo_gpu *g = &t->gpus[i];
        json_object *o = json_object_new_object();
        char id[16];
        json_object_object_add(o, "id", json_object_new_int(g->id));
        json_object_object_add(o, "busid", json_object_new_string(g->busid));
        snprintf(id, sizeof(id), "%04x:%04x", g->vendor, g->device);
        json_object_object_add(o, "pci_id", json_object_new_string(id));
        json_object_object_add(o, "name", json_object_new_string(g->name));
        json_object_object_add(o, "numa", json_object_new_int(g->numa));
        json_object_object_add(o, "cpus", rs_topo_json_cpus(&g->cpus));
        json_object_array_add(gpus, o);
    }
    json_object_object_add(m, "gpus", gpus);
    return m;
}

static json_object *rs_topo_json_plan(const rs_plan *plan, const rs_topo_applied *applied) {
    json_object *p = json_object_new_object();
    char what[128];
    json_object_object_add(
        p, "smt", json_object_new_string(plan->smt == RS_TOPO_SMT_AVOID ? "avoid" : "share"));
    json_object_object_add(p, "numa", json_object_new_string(rs_topo_numa_text(plan->numa)));
    json_object_object_add(p, "usable", rs_topo_json_cpus(&plan->usable));
    json_object_object_add(p, "reserved", rs_topo_json_cpus(&plan->reserved));
    json_object_object_add(p, "io", rs_topo_json_cpus(&plan->io));
    json_object_object_add(p, "worker", rs_topo_json_cpus(&plan->worker));
    json_object *entries = json_object_new_array();
    for (int i = 0; i < plan->entry_count; i++) {
        const rs_plan_entry *e = &plan->entries[i];
        json_object *o = json_object_new_object();
        rs_plan_entry_describe(e, what, sizeof(what));
        json_object_object_add(o, "role", json_object_new_string(rs_plan_role_name(e->role)));
        json_object_object_add(o, "description", json_object_new_string(what));
        json_object_object_add(o, "model",
                               e->model >= 0 ? json_object_new_string(e->model_name) : NULL);
        json_object_object_add(o, "instance", json_object_new_int(e->instance));
        json_object_object_add(o, "cpus", rs_topo_json_cpus(&e->cpus));
        json_object_object_add(o, "cores", json_object_new_int(e->core_count));
        json_object_object_add(o, "numa", json_object_new_int(e->numa));
        json_object_object_add(o, "memory",
                               e->mem_node == RS_PLAN_MEM_INTERLEAVE
                                   ? json_object_new_string("interleave")
                                   : json_object_new_int(e->mem_node));
        json_object_object_add(o, "gpu", e->gpu >= 0 ? json_object_new_int(e->gpu) : NULL);
        json_object_object_add(o, "sched", json_object_new_string(e->sched_batch ? "batch" : "normal"));
        json_object_object_add(o, "gpu_memory_mb",
                               json_object_new_int64((int64_t)e->gpu_memory_mb));
        json_object *eff = NULL;
        if (applied && applied[i].started) {
            eff = json_object_new_object();
            json_object_object_add(eff, "tid", json_object_new_int(applied[i].tid));
            json_object_object_add(eff, "cpus", rs_topo_json_cpus(&applied[i].binding.effective));
            json_object_object_add(eff, "pinned",
                                   json_object_new_boolean(applied[i].binding.pinned));
            json_object_object_add(eff, "memory_bound",
                                   json_object_new_boolean(applied[i].binding.memory_bound));
            json_object_object_add(
                eff, "sched",
                json_object_new_string(applied[i].binding.sched_batch ? "batch" : "normal"));
        }
        json_object_object_add(o, "effective", eff);
        json_object_array_add(entries, o);
    }
    json_object_object_add(p, "entries", entries);
    json_object *notes = json_object_new_array();
    for (int i = 0; i < plan->note_count; i++)
        json_object_array_add(notes, json_object_new_string(plan->notes[i]));
    json_object_object_add(p, "notes", notes);
    return p;
}

/* ---- arguments, config ---- */

static void rs_topo_usage(FILE *out) {
    fprintf(out, "usage: ringserve topo [--config FILE] [--topology-xml FILE | --synthetic DESC] "
                 "[--json] [--hold]\n"
                 "  --config FILE        read `topology:` and the models of `models:` (or of "
                 "topology.placement)\n"
                 "  --topology-xml FILE  plan for an hwloc XML topology instead of this machine\n"
                 "  --synthetic DESC     plan for an hwloc synthetic topology, e.g. "
                 "\"package:2 numa:1 core:8 pu:2\"\n"
                 "  --json               print machine and plan as JSON\n"
                 "  --hold               (this machine) keep the pinned threads until stdin "
                 "closes\n");
}

static int rs_topo_args(int argc, char **argv, rs_topo_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **value = strcmp(a, "--config") == 0         ? &o->config
                             : strcmp(a, "--topology-xml") == 0 ? &o->xml
                             : strcmp(a, "--synthetic") == 0    ? &o->synthetic
                                                                : NULL;
        if (value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ringserve topo: %s needs a value\n", a);
                return -1;
            }
            *value = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--hold") == 0) {
            o->hold = true;
        } else if (strcmp(a, "--help") == 0) {
            rs_topo_usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "ringserve topo: unknown option '%s'\n", a);
            rs_topo_usage(stderr);
            return -1;
        }
    }
    if (o->xml && o->synthetic) {
        fprintf(stderr, "ringserve topo: --topology-xml and --synthetic exclude each other\n");
        return -1;
    }
    return 0;
}

/* The models to plan: the registry's when the config has a `models:`
 * section (model.yaml placement, overridden by topology.placement), else
 * those topology.placement names. */
typedef struct rs_topo_models {
    rs_plan_model *list;
    size_t count;
    bool from_registry;
} rs_topo_models;

static int rs_topo_read_config(const char *file, const rs_topo_info *info, rs_topo_config *cfg,
                               rs_topo_models *models, rs_err *err) {
    rs_topo_config_default(cfg);
    if (!file) return 0;
    rs_cfg *doc = rs_cfg_load_file(file, err);
    if (!doc) return -1;
    rs_cfg_node root = rs_cfg_root(doc);
    rs_cfg_node section = rs_cfg_get(&root, "topology");
    rs_cfg_node models_section = rs_cfg_get(&root, "models");
    int rc = rs_topo_config_parse(&section, cfg, err);
    if (rc == 0 && rs_cfg_present(&models_section)) {
        rs_registry_config rcfg;
        rc = rs_registry_config_parse(&models_section, &rcfg, err);
        if (rc == 0) {
            rcfg.gpu_numa = rs_topo_gpu_numa;
            rcfg.gpu_numa_ctx = (void *)info;
            rs_registry *r = rs_registry_create(&rcfg, err);
            models->list = calloc(RS_REGISTRY_MAX_MODELS, sizeof(*models->list));
            rc = r && models->list
                     ? rs_plan_models_from_registry(r, models->list, RS_REGISTRY_MAX_MODELS,
                                                    &models->count, err)
                     : -1;
            if (r && !models->list) rs_err_set(err, "models: out of memory");
            models->from_registry = true;
            rs_registry_destroy(r);
        }
    }
    rs_cfg_free(doc);
    return rc;
}

int rs_cmd_topo(int argc, char **argv) {
    rs_topo_opts o = {0};
    if (rs_topo_args(argc, argv, &o) != 0) return 2;
    rs_err err = {0};
    rs_topo_config *cfg = calloc(1, sizeof(*cfg));
    rs_plan *plan = calloc(1, sizeof(*plan));
    rs_topo_applied *applied = calloc(RS_PLAN_MAX_ENTRIES, sizeof(*applied));
    rs_topo *t = NULL;
    rs_topo_models models = {0};
    int rc = 2;
    if (!cfg || !plan || !applied) {
        fprintf(stderr, "ringserve topo: out of memory\n");
        goto out;
    }
    t = o.xml         ? rs_topo_load_xml(o.xml, &err)
        : o.synthetic ? rs_topo_load_synthetic(o.synthetic, &err)
                      : rs_topo_load_system(&err);
    if (!t) {
        fprintf(stderr, "ringserve topo: %s\n", err.msg);
        goto out;
    }
    const rs_topo_info *info = rs_topo_get_info(t);
    if (rs_topo_read_config(o.config, info, cfg, &models, &err) != 0) {
        fprintf(stderr, "ringserve topo: %s\n", err.msg);
        goto out;
    }
    const rs_plan_model *list = models.from_registry ? models.list : cfg->placement;
    size_t count = models.from_registry ? models.count : (size_t)cfg->placement_count;
    if (rs_plan_build(info, cfg, list, count, plan, &err) != 0) {
        fprintf(stderr, "ringserve topo: %s\n", err.msg);
        goto out;
    }
    bool apply = rs_topo_is_this_system(t);
    if (apply) rs_topo_apply_all(t, plan, applied);
    if (o.json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "machine", rs_topo_json_machine(info));
        json_object_object_add(root, "plan", rs_topo_json_plan(plan, apply ? applied : NULL));
        json_object_object_add(root, "pid", json_object_new_int(getpid()));
        printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
    } else {
        rs_topo_print_tree(info);
        rs_topo_print_plan(plan, apply ? applied : NULL);
    }
    fflush(stdout);
    if (apply && o.hold) { /* until stdin closes: a test inspects /proc meanwhile */
        char buf[256];
        while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
        }
    }
    if (apply) rs_topo_release_all(plan, applied);
    rc = 0;
out:
    rs_topo_free(t);
    free(models.list);
    free(applied);
    free(plan);
    free(cfg);
    return rc;
}

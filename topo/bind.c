/* bind.c — pinning threads and placing memory, degrading instead of failing.
 *
 * A server that cannot pin (container without CAP_SYS_NICE, a cgroup that
 * narrowed the cpuset after start) still serves: each refusal is logged once
 * per call site and the caller learns what actually took effect. */
#include "topo/bind.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/common/log.h"
#include "topo/topo_hwloc.h"

static rs_topo *rs_topo_system_topo;
static pthread_once_t rs_topo_system_once = PTHREAD_ONCE_INIT;

static void rs_topo_system_load(void) {
    rs_err err = {0};
    rs_topo_system_topo = rs_topo_load_system(&err);
    if (!rs_topo_system_topo)
        RS_WARN("topo: cannot read this machine: %s; running unpinned", err.msg);
}

rs_topo *rs_topo_system(void) {
    pthread_once(&rs_topo_system_once, rs_topo_system_load);
    return rs_topo_system_topo;
}

/* The topology to bind with, or NULL when binding cannot act on this process. */
static rs_topo *rs_topo_bindable(rs_topo *t) {
    if (!t) t = rs_topo_system();
    if (!t || !rs_topo_is_this_system(t)) {
        RS_LOG_ONCE(RS_LOG_WARN, "topo: the topology is not this machine; binding skipped");
        return NULL;
    }
    return t;
}

int rs_topo_thread_affinity(rs_cpuset *out) {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    rs_cpuset_zero(out);
    if (sched_getaffinity(0, sizeof(mask), &mask) != 0) return -1;
    for (int c = 0; c < RS_TOPO_MAX_CPUS && c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &mask)) rs_cpuset_set(out, c);
    return 0;
}

static hwloc_bitmap_t rs_topo_to_bitmap(const rs_cpuset *s) {
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    if (!b) return NULL;
    for (int c = rs_cpuset_next(s, 0); c >= 0; c = rs_cpuset_next(s, c + 1))
        hwloc_bitmap_set(b, (unsigned)c);
    return b;
}

int rs_topo_bind_thread(rs_topo *t, const rs_cpuset *cpus, rs_cpuset *effective) {
    rs_cpuset now;
    int rc = -1;
    t = rs_topo_bindable(t);
    hwloc_bitmap_t set = t ? rs_topo_to_bitmap(cpus) : NULL;
    if (set) {
        if (hwloc_set_cpubind(rs_topo_hwloc(t), set, HWLOC_CPUBIND_THREAD) == 0) {
            rc = 0;
        } else {
            char list[256];
            RS_LOG_ONCE(RS_LOG_WARN,
                        "topo: the OS refused to pin a thread to cpus %s: %s; "
                        "carrying on unpinned",
                        rs_cpulist_format(cpus, list, sizeof(list)), strerror(errno));
        }
        hwloc_bitmap_free(set);
    }
    if (rs_topo_thread_affinity(&now) != 0) rc = -1;
    if (rc == 0 && !rs_cpuset_equal(&now, cpus)) {
        char want[256], got[256];
        RS_LOG_ONCE(RS_LOG_WARN, "topo: pinned a thread to cpus %s but the kernel reports %s",
                    rs_cpulist_format(cpus, want, sizeof(want)),
                    rs_cpulist_format(&now, got, sizeof(got)));
        rc = -1;
    }
    if (effective) *effective = now;
    return rc;
}

/* node -> hwloc nodeset (all nodes for interleave); NULL when unknown. */
static hwloc_bitmap_t rs_topo_nodeset(rs_topo *t, int node, hwloc_membind_policy_t *policy) {
    const rs_topo_info *info = rs_topo_get_info(t);
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) return NULL;
    if (node == RS_PLAN_MEM_INTERLEAVE) {
        for (int i = 0; i < info->numa_count; i++)
            hwloc_bitmap_set(set, (unsigned)info->numa[i].os_index);
        *policy = HWLOC_MEMBIND_INTERLEAVE;
        return set;
    }
    if (!rs_topo_info_numa(info, node)) {
        hwloc_bitmap_free(set);
        return NULL;
    }
    hwloc_bitmap_set(set, (unsigned)node);
    *policy = HWLOC_MEMBIND_BIND; /* not STRICT: preferred, never an OOM kill */
    return set;
}

int rs_topo_bind_thread_memory(rs_topo *t, int node) {
    t = rs_topo_bindable(t);
    if (!t) return -1;
    hwloc_membind_policy_t policy;
    hwloc_bitmap_t set = rs_topo_nodeset(t, node, &policy);
    if (!set) {
        RS_LOG_ONCE(RS_LOG_WARN, "topo: NUMA node %d does not exist; thread memory unbound", node);
        return -1;
    }
    int rc = hwloc_set_membind(rs_topo_hwloc(t), set, policy,
                               HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET);
    if (rc != 0)
        RS_LOG_ONCE(RS_LOG_WARN,
                    "topo: the OS refused a memory policy for node %d: %s; "
                    "carrying on with the default policy",
                    node, strerror(errno));
    hwloc_bitmap_free(set);
    return rc == 0 ? 0 : -1;
}

static size_t rs_topo_round_pages(size_t bytes) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (bytes == 0) bytes = 1;
    return (bytes + page - 1) / page * page;
}

void *rs_topo_alloc_local(size_t bytes, int node) {
    size_t len = rs_topo_round_pages(bytes);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    rs_topo *t = rs_topo_bindable(NULL);
    if (!t) return p;
    hwloc_membind_policy_t policy;
    hwloc_bitmap_t set = rs_topo_nodeset(t, node, &policy);
    if (!set) {
        RS_LOG_ONCE(RS_LOG_WARN, "topo: NUMA node %d does not exist; memory left unbound", node);
        return p;
    }
    if (hwloc_set_area_membind(rs_topo_hwloc(t), p, len, set, policy, HWLOC_MEMBIND_BYNODESET) != 0)
        RS_LOG_ONCE(RS_LOG_WARN,
                    "topo: the OS refused to bind memory to node %d: %s; "
                    "memory left unbound",
                    node, strerror(errno));
    hwloc_bitmap_free(set);
    return p;
}

void rs_topo_free_local(void *p, size_t bytes) {
    if (p) munmap(p, rs_topo_round_pages(bytes));
}

int rs_topo_memory_node(const void *p) {
    rs_topo *t = rs_topo_system();
    if (!t) return -1;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) return -1;
    int node = -1;
    if (hwloc_get_area_memlocation(rs_topo_hwloc(t), p, 1, set, HWLOC_MEMBIND_BYNODESET) == 0 &&
        hwloc_bitmap_weight(set) == 1)
        node = hwloc_bitmap_first(set);
    hwloc_bitmap_free(set);
    return node;
}

void rs_plan_apply_entry(rs_topo *t, const rs_plan_entry *entry, rs_topo_binding *out) {
    memset(out, 0, sizeof(*out));
    if (entry->no_pin) {
        rs_topo_thread_affinity(&out->effective); /* topology.pin: false: as allowed */
    } else {
        out->pinned = rs_topo_bind_thread(t, &entry->cpus, &out->effective) == 0;
    }
    out->memory_bound = rs_topo_bind_thread_memory(t, entry->mem_node) == 0;
    if (entry->sched_batch) {
        /* pid 0: the calling thread (Linux applies the policy per thread) */
        struct sched_param param = {.sched_priority = 0};
        out->sched_batch = sched_setscheduler(0, SCHED_BATCH, &param) == 0;
        if (!out->sched_batch)
            RS_LOG_ONCE(RS_LOG_WARN,
                        "topo: the OS refused SCHED_BATCH for an io loop thread: %s; "
                        "it keeps its policy",
                        strerror(errno));
    }
}

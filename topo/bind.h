/* bind.h — applying placement: pin threads, take memory from a NUMA node.
 *
 * Every call degrades instead of failing: when the OS refuses (no
 * permission, cgroup limits, no NUMA support, a topology that is not this
 * machine) it logs one WARN line per call site per process (RS_LOG_ONCE) and
 * carries on unpinned / with default memory. The effective binding — what
 * the kernel reports with sched_getaffinity — is returned so that
 * `ringserve topo` and metrics can show plan and reality side by side. */
#ifndef RS_TOPO_BIND_H
#define RS_TOPO_BIND_H

#include <stdbool.h>
#include <stddef.h>

#include "topo/cpuset.h"
#include "topo/plan.h"
#include "topo/topo.h"

/* The process-wide topology of this machine, loaded once on first use
 * (thread-safe); NULL when hwloc cannot read it (logged once). Owned by the
 * module: do not free. */
rs_topo *rs_topo_system(void);

/* What the kernel reports for the calling thread (sched_getaffinity). */
int rs_topo_thread_affinity(rs_cpuset *out);

/* Pins the calling thread to cpus (hwloc_set_cpubind HWLOC_CPUBIND_THREAD)
 * and reads the affinity back into *effective (may be NULL). t NULL = the
 * system topology. Returns 0 when the kernel reports exactly cpus, -1 when
 * the binding was refused or differs (logged once; the thread keeps running
 * where it was). */
int rs_topo_bind_thread(rs_topo *t, const rs_cpuset *cpus, rs_cpuset *effective);

/* Sets the calling thread's memory policy so that its future allocations
 * come from node (RS_PLAN_MEM_INTERLEAVE: every node, interleaved). Returns
 * 0, or -1 when refused or node is unknown (logged once). */
int rs_topo_bind_thread_memory(rs_topo *t, int node);

/* Memory for rings, buffers and cache shards from NUMA node `node`
 * (RS_PLAN_MEM_INTERLEAVE: interleaved over every node): page-aligned,
 * zero-filled, pages placed on first touch by the node's policy. When the
 * binding is refused or the node is unknown the memory is still returned,
 * unbound (logged once). NULL only when the memory itself cannot be had
 * (errno set). Free with rs_topo_free_local(p, bytes) using the same bytes. */
void *rs_topo_alloc_local(size_t bytes, int node);
void rs_topo_free_local(void *p, size_t bytes);
/* NUMA node holding the page at p (touch it first), or -1 when unknown. */
int rs_topo_memory_node(const void *p);

/* The effective binding of one plan entry once applied. */
typedef struct rs_topo_binding {
    bool pinned;         /* the kernel reports exactly entry->cpus */
    bool memory_bound;   /* the memory policy was accepted */
    bool sched_batch;    /* the thread runs as SCHED_BATCH (entry->sched_batch) */
    rs_cpuset effective; /* sched_getaffinity after binding */
} rs_topo_binding;

/* Applies one plan entry to the calling thread: CPU binding, memory policy
 * and, for entry->sched_batch, the SCHED_BATCH policy.
 * Never fails hard: the result says what took effect. t NULL = system. */
void rs_plan_apply_entry(rs_topo *t, const rs_plan_entry *entry, rs_topo_binding *out);

#endif

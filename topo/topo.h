/* topo.h — the machine as ringserve sees it: packages, NUMA nodes, L3
 * groups, physical cores with their SMT sibling PUs, and NVIDIA GPUs with
 * their NUMA locality, read with hwloc 2.x.
 *
 * The same code reads this machine, an hwloc XML file (`--topology-xml`,
 * tests/data/topo/) or an hwloc synthetic description (`--synthetic
 * "package:2 numa:1 core:8 pu:2"`), so placement is testable anywhere.
 *
 * Discovery fills a plain read-only rs_topo_info (fixed arrays, CPU numbers
 * are Linux numbers = PU OS indexes, NUMA nodes are OS node numbers, GPUs
 * numbered 0.. in PCI bus order like CUDA_DEVICE_ORDER=PCI_BUS_ID). The
 * placement plan (plan.h) only reads that struct; binding (bind.h) needs the
 * live rs_topo. */
#ifndef RS_TOPO_H
#define RS_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"
#include "topo/cpuset.h"

#define RS_TOPO_MAX_CORES 512
#define RS_TOPO_MAX_SMT 8 /* PUs per core */
#define RS_TOPO_MAX_NUMA 64
#define RS_TOPO_MAX_GPUS 16
#define RS_TOPO_SOURCE_BYTES 256

typedef enum rs_topo_source {
    RS_TOPO_SRC_SYSTEM = 0, /* this machine: binding works */
    RS_TOPO_SRC_XML = 1,
    RS_TOPO_SRC_SYNTHETIC = 2,
} rs_topo_source;

typedef struct rs_topo_core {
    int index;   /* 0.. in topology order (hwloc logical index) */
    int package; /* package logical index */
    int numa;    /* OS number of the NUMA node whose memory is local */
    int l3;      /* L3 cache logical index, -1 when none */
    int pu_count;
    int pus[RS_TOPO_MAX_SMT]; /* CPU numbers of the SMT siblings, ascending */
    rs_cpuset cpus;           /* the same as a set */
} rs_topo_core;

typedef struct rs_topo_numa {
    int os_index;
    int package; /* package logical index, -1 when the node spans packages */
    uint64_t memory_bytes;
    rs_cpuset cpus; /* local CPUs (all, allowed or not) */
} rs_topo_numa;

typedef struct rs_topo_gpu {
    int id;          /* 0.. in PCI bus order */
    char busid[16];  /* "0000:17:00.0" */
    uint16_t vendor; /* 0x10de */
    uint16_t device;
    int numa;       /* OS node, -1 when the locality spans several nodes */
    rs_cpuset cpus; /* CPUs of the GPU's non-I/O parent (its locality) */
    char name[64];  /* PCI device name when hwloc knows it, else "" */
} rs_topo_gpu;

typedef struct rs_topo_info {
    rs_topo_source source;
    char source_text[RS_TOPO_SOURCE_BYTES]; /* "system", the XML path, the synthetic string */
    int package_count;
    int l3_count;
    int numa_count;
    rs_topo_numa numa[RS_TOPO_MAX_NUMA]; /* ascending OS number */
    int core_count;
    rs_topo_core cores[RS_TOPO_MAX_CORES];
    int gpu_count;
    rs_topo_gpu gpus[RS_TOPO_MAX_GPUS];
    rs_cpuset all;     /* every CPU of the topology */
    rs_cpuset allowed; /* CPUs this process may use: hwloc allowed set (cgroup
                          cpuset) ∩ sched_getaffinity for the system */
    int smt_max;       /* most PUs in one core */
} rs_topo_info;

typedef struct rs_topo rs_topo;

/* Loads this machine (I/O devices included, GPUs found as PCI vendor
 * 0x10de display controllers). */
rs_topo *rs_topo_load_system(rs_err *err);
/* Loads an hwloc XML file; err names the file on failure. */
rs_topo *rs_topo_load_xml(const char *path, rs_err *err);
/* Loads an hwloc synthetic description ("package:2 numa:1 core:8 pu:2"). */
rs_topo *rs_topo_load_synthetic(const char *description, rs_err *err);
void rs_topo_free(rs_topo *t);

const rs_topo_info *rs_topo_get_info(const rs_topo *t);
/* true for rs_topo_load_system: binding calls act on this process. */
bool rs_topo_is_this_system(const rs_topo *t);
/* Narrows the allowed CPUs (tests; a taskset-like restriction on a loaded
 * topology). allowed becomes allowed ∩ cpus. */
void rs_topo_restrict_allowed(rs_topo *t, const rs_cpuset *cpus);

/* Lookups on the info (NULL / -1 when absent). */
const rs_topo_numa *rs_topo_info_numa(const rs_topo_info *info, int os_index);
const rs_topo_core *rs_topo_info_core_of_cpu(const rs_topo_info *info, int cpu);
int rs_topo_info_numa_of_cpu(const rs_topo_info *info, int cpu);

/* NUMA node of a GPU id, or -1 when unknown; ctx is a const rs_topo_info *.
 * Matches rs_registry_gpu_numa_fn (engine/model_registry/registry.h). */
int rs_topo_gpu_numa(int gpu, void *ctx);

#endif

/* topo.c — hwloc discovery into a plain rs_topo_info.
 *
 * hwloc 2.x facts this relies on: NUMA nodes are memory children, not
 * ancestors of PUs, so a core's node is found by cpuset intersection; GPUs
 * are PCI devices whose locality is their first non-I/O ancestor; the
 * topology is loaded with INCLUDE_DISALLOWED so that a CPU that exists but
 * is outside the allowed cpuset gets its own error instead of "no such CPU". */
#include "topo/topo.h"

#include <errno.h>
#include <hwloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/log.h"
#include "topo/topo_hwloc.h"

struct rs_topo {
    hwloc_topology_t hw;
    rs_topo_info info;
};

#define RS_NVIDIA_VENDOR 0x10de
#define RS_PCI_CLASS_DISPLAY 0x03 /* base class: VGA 0x0300, 3D 0x0302 */

/* hwloc bitmap -> rs_cpuset; -1 when a CPU number is above our limit. */
static int rs_topo_from_bitmap(hwloc_const_bitmap_t b, rs_cpuset *out) {
    rs_cpuset_zero(out);
    int i;
    hwloc_bitmap_foreach_begin(i, b) {
        if (!rs_cpuset_valid_cpu(i)) return -1;
        rs_cpuset_set(out, i);
    }
    hwloc_bitmap_foreach_end();
    return 0;
}

static int rs_topo_read_numa(rs_topo *t, rs_err *err) {
    rs_topo_info *info = &t->info;
    int n = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_NUMANODE);
    if (n > RS_TOPO_MAX_NUMA) {
        rs_err_set(err, "%d NUMA nodes: more than the supported %d", n, RS_TOPO_MAX_NUMA);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_NUMANODE, (unsigned)i);
        rs_topo_numa *out = &info->numa[info->numa_count++];
        out->os_index = (int)node->os_index;
        out->memory_bytes = node->attr ? node->attr->numanode.local_memory : 0;
        if (rs_topo_from_bitmap(node->cpuset, &out->cpus) != 0) {
            rs_err_set(err, "NUMA node %u has CPU numbers above %d", node->os_index,
                       RS_TOPO_MAX_CPUS - 1);
            return -1;
        }
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t->hw, HWLOC_OBJ_PACKAGE, node);
        out->package = pkg ? (int)pkg->logical_index : -1;
    }
    /* Ascending OS number (hwloc orders by locality, usually the same). */
    for (int i = 1; i < info->numa_count; i++)
        for (int j = i; j > 0 && info->numa[j].os_index < info->numa[j - 1].os_index; j--) {
            rs_topo_numa tmp = info->numa[j];
            info->numa[j] = info->numa[j - 1];
            info->numa[j - 1] = tmp;
        }
    return 0;
}

static int rs_topo_read_cores(rs_topo *t, rs_err *err) {
    rs_topo_info *info = &t->info;
    /* A topology without Core objects (some VMs, "package:1 pu:4") has one
     * core per PU. */
    hwloc_obj_type_t type =
        hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    int n = hwloc_get_nbobjs_by_type(t->hw, type);
    if (n > RS_TOPO_MAX_CORES) {
        rs_err_set(err, "%d cores: more than the supported %d", n, RS_TOPO_MAX_CORES);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(t->hw, type, (unsigned)i);
        rs_topo_core *out = &info->cores[info->core_count];
        memset(out, 0, sizeof(*out));
        out->index = info->core_count;
        if (rs_topo_from_bitmap(core->cpuset, &out->cpus) != 0) {
            rs_err_set(err, "core %d has CPU numbers above %d", i, RS_TOPO_MAX_CPUS - 1);
            return -1;
        }
        if (rs_cpuset_empty(&out->cpus)) continue; /* an empty core (offline) */
        for (int c = rs_cpuset_next(&out->cpus, 0); c >= 0; c = rs_cpuset_next(&out->cpus, c + 1)) {
            if (out->pu_count == RS_TOPO_MAX_SMT) {
                rs_err_set(err, "core %d has more than %d PUs", i, RS_TOPO_MAX_SMT);
                return -1;
            }
            out->pus[out->pu_count++] = c;
        }
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t->hw, HWLOC_OBJ_PACKAGE, core);
        out->package = pkg ? (int)pkg->logical_index : 0;
        hwloc_obj_t l3 = hwloc_get_ancestor_obj_by_type(t->hw, HWLOC_OBJ_L3CACHE, core);
        out->l3 = l3 ? (int)l3->logical_index : -1;
        out->numa = rs_topo_info_numa_of_cpu(info, out->pus[0]);
        if (out->pu_count > info->smt_max) info->smt_max = out->pu_count;
        rs_cpuset_or(&info->all, &out->cpus);
        info->core_count++;
    }
    info->package_count = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_PACKAGE);
    if (info->package_count == 0) info->package_count = 1;
    info->l3_count = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_L3CACHE);
    return 0;
}

static int rs_topo_gpu_cmp(const void *a, const void *b) {
    return strcmp(((const rs_topo_gpu *)a)->busid, ((const rs_topo_gpu *)b)->busid);
}

static void rs_topo_read_gpus(rs_topo *t) {
    rs_topo_info *info = &t->info;
    for (hwloc_obj_t dev = hwloc_get_next_pcidev(t->hw, NULL); dev;
         dev = hwloc_get_next_pcidev(t->hw, dev)) {
        const struct hwloc_pcidev_attr_s *pci = &dev->attr->pcidev;
        /* NVIDIA also ships audio and USB functions on the same card. */
        if (pci->vendor_id != RS_NVIDIA_VENDOR || (pci->class_id >> 8) != RS_PCI_CLASS_DISPLAY)
            continue;
        if (info->gpu_count == RS_TOPO_MAX_GPUS) {
            RS_LOG_ONCE(RS_LOG_WARN, "topo: more than %d GPUs; ignoring the rest",
                        RS_TOPO_MAX_GPUS);
            break;
        }
        rs_topo_gpu *g = &info->gpus[info->gpu_count++];
        memset(g, 0, sizeof(*g));
        snprintf(g->busid, sizeof(g->busid), "%04x:%02x:%02x.%01x", pci->domain & 0xffff, pci->bus,
                 pci->dev, pci->func);
        g->vendor = pci->vendor_id;
        g->device = pci->device_id;
        const char *name = hwloc_obj_get_info_by_name(dev, "PCIDevice");
        if (!name) name = dev->name;
        if (name) snprintf(g->name, sizeof(g->name), "%s", name);
        g->numa = -1;
        hwloc_obj_t parent = hwloc_get_non_io_ancestor_obj(t->hw, dev);
        if (parent && rs_topo_from_bitmap(parent->cpuset, &g->cpus) == 0 &&
            hwloc_bitmap_weight(parent->nodeset) == 1)
            g->numa = hwloc_bitmap_first(parent->nodeset);
    }
    qsort(info->gpus, (size_t)info->gpu_count, sizeof(info->gpus[0]), rs_topo_gpu_cmp);
    for (int i = 0; i < info->gpu_count; i++)
        info->gpus[i].id = i;
}

static rs_topo *rs_topo_load(rs_topo_source source, const char *arg, rs_err *err) {
    rs_topo *t = calloc(1, sizeof(*t));
    if (!t) {
        rs_err_set(err, "topology: out of memory");
        return NULL;
    }
    t->info.source = source;
    snprintf(t->info.source_text, sizeof(t->info.source_text), "%s",
             source == RS_TOPO_SRC_SYSTEM ? "system" : arg);
    const char *what = source == RS_TOPO_SRC_XML         ? "--topology-xml"
                       : source == RS_TOPO_SRC_SYNTHETIC ? "--synthetic"
                                                         : "this machine";
    if (hwloc_topology_init(&t->hw) != 0) {
        rs_err_set(err, "topology: hwloc init failed: %s", strerror(errno));
        free(t);
        return NULL;
    }
    hwloc_topology_set_flags(t->hw, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
    hwloc_topology_set_io_types_filter(t->hw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    hwloc_topology_set_type_filter(t->hw, HWLOC_OBJ_PCI_DEVICE, HWLOC_TYPE_FILTER_KEEP_ALL);
    hwloc_topology_set_type_filter(t->hw, HWLOC_OBJ_OS_DEVICE, HWLOC_TYPE_FILTER_KEEP_NONE);
    /* The Linux backend lists PCI devices from sysfs by itself; the "pci"
     * component (libpciaccess) adds only names, costs start-up time and
     * leaks at unload. */
    if (source == RS_TOPO_SRC_SYSTEM)
        hwloc_topology_set_components(t->hw, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
    int rc = 0;
    if (source == RS_TOPO_SRC_XML)
        rc = hwloc_topology_set_xml(t->hw, arg);
    else if (source == RS_TOPO_SRC_SYNTHETIC)
        rc = hwloc_topology_set_synthetic(t->hw, arg);
    if (rc != 0) {
        rs_err_set(err, "%s: '%s': %s", what, arg,
                   source == RS_TOPO_SRC_SYNTHETIC ? "not a valid hwloc synthetic description"
                   : errno == EINVAL               ? "not a valid hwloc XML topology"
                                                   : strerror(errno));
        goto fail;
    }
    if (hwloc_topology_load(t->hw) != 0) {
        rs_err_set(err, "%s%s%s: hwloc cannot load the topology: %s", what, arg ? " " : "",
                   arg ? arg : "", strerror(errno));
        goto fail;
    }
    if (rs_topo_read_numa(t, err) != 0 || rs_topo_read_cores(t, err) != 0) {
        rs_err_prefix(err, "%s%s%s", what, arg ? " " : "", arg ? arg : "");
        goto fail;
    }
    if (t->info.core_count == 0) {
        rs_err_set(err, "%s%s%s: the topology has no CPUs", what, arg ? " " : "", arg ? arg : "");
        goto fail;
    }
    rs_topo_read_gpus(t);
    rs_cpuset hw_allowed;
    if (rs_topo_from_bitmap(hwloc_topology_get_allowed_cpuset(t->hw), &hw_allowed) != 0)
        hw_allowed = t->info.all;
    t->info.allowed = t->info.all;
    rs_cpuset_and(&t->info.allowed, &hw_allowed);
    if (source == RS_TOPO_SRC_SYSTEM) {
        /* cgroup cpuset (hwloc) and taskset / systemd CPUAffinity (kernel). */
        cpu_set_t mask;
        CPU_ZERO(&mask);
        if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
            rs_cpuset mine = {0};
            for (int c = 0; c < RS_TOPO_MAX_CPUS && c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &mask)) rs_cpuset_set(&mine, c);
            rs_cpuset_and(&t->info.allowed, &mine);
        }
    }
    return t;
fail:
    hwloc_topology_destroy(t->hw);
    free(t);
    return NULL;
}

rs_topo *rs_topo_load_system(rs_err *err) {
    return rs_topo_load(RS_TOPO_SRC_SYSTEM, NULL, err);
}

rs_topo *rs_topo_load_xml(const char *path, rs_err *err) {
    return rs_topo_load(RS_TOPO_SRC_XML, path, err);
}

rs_topo *rs_topo_load_synthetic(const char *description, rs_err *err) {
    return rs_topo_load(RS_TOPO_SRC_SYNTHETIC, description, err);
}

void rs_topo_free(rs_topo *t) {
    if (!t) return;
    hwloc_topology_destroy(t->hw);
    free(t);
}

const rs_topo_info *rs_topo_get_info(const rs_topo *t) {
    return &t->info;
}

bool rs_topo_is_this_system(const rs_topo *t) {
    return t->info.source == RS_TOPO_SRC_SYSTEM && hwloc_topology_is_thissystem(t->hw);
}

void rs_topo_restrict_allowed(rs_topo *t, const rs_cpuset *cpus) {
    rs_cpuset_and(&t->info.allowed, cpus);
}

hwloc_topology_t rs_topo_hwloc(rs_topo *t) {
    return t->hw;
}

const rs_topo_numa *rs_topo_info_numa(const rs_topo_info *info, int os_index) {
    for (int i = 0; i < info->numa_count; i++)
        if (info->numa[i].os_index == os_index) return &info->numa[i];
    return NULL;
}

const rs_topo_core *rs_topo_info_core_of_cpu(const rs_topo_info *info, int cpu) {
    for (int i = 0; i < info->core_count; i++)
        if (rs_cpuset_has(&info->cores[i].cpus, cpu)) return &info->cores[i];
    return NULL;
}

int rs_topo_info_numa_of_cpu(const rs_topo_info *info, int cpu) {
    for (int i = 0; i < info->numa_count; i++)
        if (rs_cpuset_has(&info->numa[i].cpus, cpu)) return info->numa[i].os_index;
    return info->numa_count > 0 ? info->numa[0].os_index : 0;
}

int rs_topo_gpu_numa(int gpu, void *ctx) {
    const rs_topo_info *info = ctx;
    if (!info || gpu < 0 || gpu >= info->gpu_count) return -1;
    return info->gpus[gpu].numa;
}

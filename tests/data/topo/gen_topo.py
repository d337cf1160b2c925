#!/usr/bin/env python3
"""Writes the hwloc 2.x XML topologies the topo tests load.

hwloc's synthetic topologies have no I/O devices and number SMT siblings
next to each other; real Linux hosts number them n and n + cores. So the
files are written here, from a short description per host, with PCI
bridges and devices (NVIDIA GPUs: vendor 0x10de, class 0x0302; their audio
function, class 0x0403, and a NIC must NOT be taken for GPUs).

Run from anywhere: python3 gen_topo.py  (rewrites the .xml files next to it).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
GIB = 1 << 30


def hexset(bits):
    """hwloc bitmap text: 32-bit words, most significant first."""
    value = 0
    for b in bits:
        value |= 1 << b
    words = []
    while True:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
        if value == 0:
            break
    return ",".join("0x%08x" % w for w in reversed(words))


class Writer:
    def __init__(self):
        self.lines = []
        self.gp = 0

    def gp_index(self):
        self.gp += 1
        return self.gp

    def out(self, depth, text):
        self.lines.append("  " * depth + text)


def sets(cpus, nodes):
    return ('cpuset="%s" complete_cpuset="%s" nodeset="%s" complete_nodeset="%s"'
            % (hexset(cpus), hexset(cpus), hexset(nodes), hexset(nodes)))


def write_host(path, desc):
    """desc: packages -> numa groups -> l3s -> cores -> pus; pci per numa."""
    w = Writer()
    all_cpus = sorted(c for p in desc["packages"] for n in p["numa"] for l3 in n["l3"]
                      for core in l3 for c in core)
    all_nodes = [n["os"] for p in desc["packages"] for n in p["numa"]]
    w.out(0, '<?xml version="1.0" encoding="UTF-8"?>')
    w.out(0, '<!DOCTYPE topology SYSTEM "hwloc2.dtd">')
    w.out(0, '<topology version="2.0">')
    w.out(1, '<object type="Machine" os_index="0" %s allowed_cpuset="%s" allowed_nodeset="%s" '
          'gp_index="%d">' % (sets(all_cpus, all_nodes), hexset(all_cpus), hexset(all_nodes),
                              w.gp_index()))
    w.out(2, '<info name="Backend" value="ringserve-test"/>')
    w.out(2, '<info name="Description" value="%s"/>' % desc["description"])
    core_os = 0
    l3_os = 0
    for p_index, pkg in enumerate(desc["packages"]):
        pcpus = sorted(c for n in pkg["numa"] for l3 in n["l3"] for core in l3 for c in core)
        pnodes = [n["os"] for n in pkg["numa"]]
        w.out(2, '<object type="Package" os_index="%d" %s gp_index="%d">'
              % (p_index, sets(pcpus, pnodes), w.gp_index()))
        grouped = len(pkg["numa"]) > 1
        for node in pkg["numa"]:
            ncpus = sorted(c for l3 in node["l3"] for core in l3 for c in core)
            depth = 3
            if grouped:  # hwloc puts each sub-package NUMA node under a Group
                w.out(3, '<object type="Group" %s kind="1001" subkind="0" gp_index="%d">'
                      % (sets(ncpus, [node["os"]]), w.gp_index()))
                depth = 4
            w.out(depth, '<object type="NUMANode" os_index="%d" %s gp_index="%d" '
                  'local_memory="%d"/>' % (node["os"], sets(ncpus, [node["os"]]), w.gp_index(),
                                          node["memory_gib"] * GIB))
            for l3 in node["l3"]:
                l3cpus = sorted(c for core in l3 for c in core)
                w.out(depth, '<object type="L3Cache" os_index="%d" %s gp_index="%d" '
                      'cache_size="33554432" depth="3" cache_linesize="64" '
                      'cache_associativity="16" cache_type="0">'
                      % (l3_os, sets(l3cpus, [node["os"]]), w.gp_index()))
                l3_os += 1
                for core in l3:
                    w.out(depth + 1, '<object type="Core" os_index="%d" %s gp_index="%d">'
                          % (core_os, sets(core, [node["os"]]), w.gp_index()))
                    core_os += 1
                    for pu in sorted(core):
                        w.out(depth + 2, '<object type="PU" os_index="%d" %s gp_index="%d"/>'
                              % (pu, sets([pu], [node["os"]]), w.gp_index()))
                    w.out(depth + 1, '</object>')
                w.out(depth, '</object>')
            for bus, devices in node.get("pci", []):
                w.out(depth, '<object type="Bridge" gp_index="%d" bridge_type="0-1" depth="0" '
                      'bridge_pci="0000:[%02x-%02x]">' % (w.gp_index(), bus, bus))
                for busid, pci_type, name in devices:
                    w.out(depth + 1, '<object type="PCIDev" gp_index="%d" pci_busid="%s" '
                          'pci_type="%s" pci_link_speed="0.000000">' % (w.gp_index(), busid,
                                                                        pci_type))
                    w.out(depth + 2, '<info name="PCIDevice" value="%s"/>' % name)
                    w.out(depth + 1, '</object>')
                w.out(depth, '</object>')
            if grouped:
                w.out(3, '</object>')
        w.out(2, '</object>')
    w.out(1, '</object>')
    w.out(0, '</topology>')
    with open(path, "w") as f:
        f.write("\n".join(w.lines) + "\n")


def gpu(bus, name="GA100 [A100 SXM4 80GB]"):
    return ("0000:%02x:00.0" % bus, "0302 [10de:20b2] [10de:1463] a1", name)


def nvidia_audio(bus):
    return ("0000:%02x:00.1" % bus, "0403 [10de:1aef] [10de:1463] a1", "GA100 HDMI Audio")


def nic(bus):
    return ("0000:%02x:00.0" % bus, "0200 [15b3:101d] [15b3:0040] 00", "MT2892 ConnectX-6 Dx")


def smt_host(packages, numa_per_package, l3_per_numa, cores_per_l3, smt, gpus_by_node,
             memory_gib, description):
    """Linux numbering: core k's siblings are k, k + cores, k + 2*cores..."""
    total_cores = packages * numa_per_package * l3_per_numa * cores_per_l3
    k = 0
    node_os = 0
    pkgs = []
    for _ in range(packages):
        nodes = []
        for _ in range(numa_per_package):
            l3s = []
            for _ in range(l3_per_numa):
                cores = []
                for _ in range(cores_per_l3):
                    cores.append([k + s * total_cores for s in range(smt)])
                    k += 1
                l3s.append(cores)
            nodes.append({"os": node_os, "memory_gib": memory_gib, "l3": l3s,
                          "pci": gpus_by_node.get(node_os, [])})
            node_os += 1
        pkgs.append({"numa": nodes})
    return {"description": description, "packages": pkgs}


HOSTS = {
    # 2 sockets x 8 cores x SMT2, one NUMA node per socket, 4 GPUs two per
    # socket (GPU 0,1 on node 0; GPU 2,3 on node 1), a NIC on node 0.
    "2s-2numa-smt-4gpu.xml": smt_host(
        2, 1, 1, 8, 2,
        {0: [(0x17, [gpu(0x17), nvidia_audio(0x17)]), (0x31, [gpu(0x31)]),
             (0x4b, [nic(0x4b)])],
         1: [(0xb1, [gpu(0xb1)]), (0xca, [gpu(0xca)])]},
        256, "2-socket 2-NUMA SMT2 host with 4 GPUs"),
    # 1 socket, NPS4: 4 NUMA nodes x 2 L3 x 2 cores x SMT2; GPUs on nodes 1 and 3.
    "1s-4numa-nps4.xml": smt_host(
        1, 4, 2, 2, 2,
        {1: [(0x41, [gpu(0x41)])], 3: [(0xc1, [gpu(0xc1)])]},
        64, "1-socket NPS4 host, 4 NUMA nodes, 2 GPUs"),
    # Like the build machine: 1 socket, 1 node, 2 cores, no SMT, no GPU.
    "2core-box.xml": smt_host(1, 1, 1, 2, 1, {}, 5, "2-core box, 1 NUMA node"),
}

if __name__ == "__main__":
    for name, desc in HOSTS.items():
        write_host(os.path.join(HERE, name), desc)

/* topo_hwloc.h — private to topo/: the hwloc handle behind an rs_topo. */
#ifndef RS_TOPO_HWLOC_H
#define RS_TOPO_HWLOC_H

#include <hwloc.h>

#include "topo/topo.h"

hwloc_topology_t rs_topo_hwloc(rs_topo *t);

#endif

/* A backend plugin built for a newer ABI than this ringserve: refused. */
#include <stddef.h>

#include "workers/backend.h"

const rs_backend_ops *rs_backend_entry(void) {
    static const rs_backend_ops ops = {
        .abi_version = RS_BACKEND_ABI_VERSION + 1,
        .name = "future",
    };
    return &ops;
}

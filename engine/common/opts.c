#include "engine/common/opts.h"

rs_global_opts rs_opts = {.io_backend = 0};

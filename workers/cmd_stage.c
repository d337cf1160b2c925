/* Placeholder until the owning component lands; replaced, not kept. */
#include <stdio.h>

#include "engine/cmd.h"

int rs_cmd_stage(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ringserve stage: not built yet\n");
    return 2;
}

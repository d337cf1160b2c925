/* Placeholder until the owning component lands; replaced, not kept. */
#include <stdio.h>

#include "engine/cmd.h"

int rs_cmd_infer(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ringserve infer: not built yet\n");
    return 2;
}

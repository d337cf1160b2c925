/* Placeholder until the owning component lands; replaced, not kept. */
#include <stdio.h>

#include "engine/cmd.h"

int rs_cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ringserve serve: not built yet\n");
    return 2;
}

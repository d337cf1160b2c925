/* backend.c — choosing between io_uring and epoll (names and parsing; the
 * probe lives with the uring backend). */
#include <string.h>

#include "io/loop.h"

const char *rs_io_backend_name(rs_io_backend backend) {
    switch (backend) {
    case RS_IO_AUTO: return "auto";
    case RS_IO_URING: return "uring";
    case RS_IO_EPOLL: return "epoll";
    }
    return "?";
}

int rs_io_backend_parse(const char *name, rs_io_backend *out) {
    if (strcmp(name, "auto") == 0) *out = RS_IO_AUTO;
    else if (strcmp(name, "uring") == 0 || strcmp(name, "io_uring") == 0) *out = RS_IO_URING;
    else if (strcmp(name, "epoll") == 0) *out = RS_IO_EPOLL;
    else return -1;
    return 0;
}

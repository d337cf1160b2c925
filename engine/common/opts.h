/* opts.h — process-wide options parsed by main before the subcommand
 * (`ringserve --io-backend=epoll --log-level=debug worker ...`). */
#ifndef RS_OPTS_H
#define RS_OPTS_H

typedef struct rs_global_opts {
    int io_backend; /* rs_io_backend: 0 auto, 1 uring, 2 epoll */
} rs_global_opts;

extern rs_global_opts rs_opts;

#endif

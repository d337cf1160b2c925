/* rs_client_internal.h — socket helpers shared by the framed and HTTP halves
 * of the C client (clients/c/rs_client.c, rs_client_http.c). */
#ifndef RS_CLIENT_INTERNAL_H
#define RS_CLIENT_INTERNAL_H

#include <stdint.h>

#include "clients/c/rs_client.h"

/* Fills zero fields of cfg with the defaults. */
void rs_client_config_fill(rs_client_config *cfg);
/* A connected non-blocking TCP socket (TCP_NODELAY), or -1 with err. */
int rs_client_sock_connect(const char *host, uint16_t port, uint32_t timeout_ms, rs_err *err);
/* poll() for events: the revents, 0 on timeout, -1 on a poll error (errno). */
int rs_client_sock_wait(int fd, short events, uint32_t timeout_ms);

#endif

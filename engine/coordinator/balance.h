/* balance.h — which io thread serves a new client connection.
 *
 * Pure (loads in, an index out) so the policy is tested without sockets;
 * coordinator.c feeds it from the accept hook. Two wishes, in order:
 *   1. even: no core serves more than `slack` connections above the least
 *      loaded one (the kernel's SO_REUSEPORT hash alone split 32
 *      connections 10/22);
 *   2. local: within that, the core pinned to the CPU that receives the
 *      connection's packets (SO_INCOMING_CPU) serves it, so the socket's
 *      kernel work and the io thread share a CPU and no wake-up crosses
 *      CPUs (on loopback that is the client's CPU: one concurrency-1
 *      connection ran at p50 85 µs there against 155 µs on the other core
 *      of this 2-CPU VM). */
#ifndef RS_BALANCE_H
#define RS_BALANCE_H

#include <stdint.h>

#define RS_BALANCE_SLACK 1
#define RS_BALANCE_UNAVAILABLE UINT32_MAX /* a load that is never picked */

/* loads[i]: client connections core i serves (with those handed to it and
 * not adopted yet), RS_BALANCE_UNAVAILABLE for a core that cannot take one;
 * n >= 1; self: the core that accepted (loads[self] is available);
 * preferred: the core pinned to the connection's incoming CPU, or -1.
 * Returns the preferred core when its load is at most the least load +
 * slack, else the least loaded core (self on a tie, else the lowest
 * index). */
uint32_t rs_balance_pick(const uint32_t *loads, uint32_t n, uint32_t self, int preferred,
                         uint32_t slack);

#endif

/* balance.c — see balance.h. */
#include "engine/coordinator/balance.h"

#include "engine/common/log.h"

uint32_t rs_balance_pick(const uint32_t *loads, uint32_t n, uint32_t self, int preferred,
                         uint32_t slack) {
    RS_ASSERT(n >= 1 && self < n && loads[self] != RS_BALANCE_UNAVAILABLE);
    uint32_t least = self;
    for (uint32_t i = 0; i < n; i++)
        if (loads[i] < loads[least]) least = i;
    if (preferred >= 0 && (uint32_t)preferred < n && loads[preferred] != RS_BALANCE_UNAVAILABLE &&
        loads[preferred] <= loads[least] + slack)
        return (uint32_t)preferred;
    return least;
}

#include "engine/common/sigpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#define RS_SIGPIPE_MAX_SIGNALS 8

static int rs_sigpipe_fds[2] = {-1, -1};
static int rs_sigpipe_signals[RS_SIGPIPE_MAX_SIGNALS];
static int rs_sigpipe_count;

static void rs_sigpipe_handler(int signo) {
    int saved = errno;
    uint8_t b = (uint8_t)signo;
    if (write(rs_sigpipe_fds[1], &b, 1) < 0) { /* pipe full: a signal is pending anyway */
    }
    errno = saved;
}

int rs_sigpipe_open(const int *signals, int count) {
    if (count < 0 || count > RS_SIGPIPE_MAX_SIGNALS) {
        errno = EINVAL;
        return -1;
    }
    if (rs_sigpipe_fds[0] < 0 && pipe2(rs_sigpipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    struct sigaction sa = {.sa_handler = rs_sigpipe_handler, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    rs_sigpipe_count = count;
    for (int i = 0; i < count; i++) {
        rs_sigpipe_signals[i] = signals[i];
        sigaction(signals[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    return rs_sigpipe_fds[0];
}

void rs_sigpipe_close(void) {
    for (int i = 0; i < rs_sigpipe_count; i++)
        signal(rs_sigpipe_signals[i], SIG_DFL);
    rs_sigpipe_count = 0;
    for (int i = 0; i < 2; i++) {
        if (rs_sigpipe_fds[i] >= 0) close(rs_sigpipe_fds[i]);
        rs_sigpipe_fds[i] = -1;
    }
}

/* sigpipe.h — signals delivered as bytes on a pipe (the self-pipe trick).
 *
 * The handler only write(2)s the signal number to the pipe, which is safe
 * in whichever thread the kernel picks: libraries start threads before main
 * (OpenBLAS), so blocking the signals in "every" thread for a signalfd
 * cannot be relied on. The process reads the other end: the coordinator's
 * main thread polls it, a worker's event loop watches it. One per process. */
#ifndef RS_SIGPIPE_H
#define RS_SIGPIPE_H

/* Creates the pipe (both ends non-blocking, close-on-exec), sends each of
 * signals[0..count) to it and ignores SIGPIPE (a write to a closed socket
 * then fails with EPIPE instead of killing the process). Returns the read
 * end, or -1 with errno set. Called again, it installs the handlers and
 * returns the same read end. */
int rs_sigpipe_open(const int *signals, int count);
/* Puts those signals back to SIG_DFL and closes both ends. */
void rs_sigpipe_close(void);

#endif

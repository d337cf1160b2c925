/* Tests for workers/stages/shm_ring: FIFO order, wrap-around, full and
 * oversize refusals, and a producer and a consumer in two processes sharing
 * a memfd mapping with eventfd wake-ups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "workers/stages/shm_ring.h"

#define CAP 4096u

static void *ring_mem(void) {
    void *m = mmap(NULL, rs_shm_ring_bytes(CAP), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    rs_shm_ring_format(m, CAP);
    return m;
}

static void push(rs_shm_ring *r, uint32_t len, uint8_t fill, uint32_t kind) {
    uint8_t *p = rs_shm_ring_reserve(r, len);
    assert_non_null(p);
    memset(p, fill, len);
    rs_shm_ring_commit(r, len, kind);
}

static void pop_expect(rs_shm_ring *r, uint32_t len, uint8_t fill, uint32_t kind) {
    uint32_t l, k;
    const uint8_t *p = rs_shm_ring_peek(r, &l, &k);
    assert_non_null(p);
    assert_int_equal(l, len);
    assert_int_equal(k, kind);
    for (uint32_t i = 0; i < len; i++) assert_int_equal(p[i], fill);
    rs_shm_ring_release(r);
}

static void test_fifo_wrap_full(void **state) {
    (void)state;
    void *m = ring_mem();
    rs_shm_ring prod, cons;
    assert_int_equal(rs_shm_ring_attach(&prod, m, -1), 0);
    assert_int_equal(rs_shm_ring_attach(&cons, m, -1), 0);
    uint32_t l, k;
    assert_null(rs_shm_ring_peek(&cons, &l, &k));
    assert_int_equal(rs_shm_ring_max_payload(&prod), CAP / 2 - 8);
    assert_null(rs_shm_ring_reserve(&prod, CAP / 2)); /* never fits */

    /* many rounds of odd sizes: every message comes back intact, in order,
     * across many wrap-arounds */
    for (uint32_t round = 0; round < 200; round++) {
        uint32_t a = 1 + (round * 37) % 900, b = 1 + (round * 101) % 1500;
        push(&prod, a, (uint8_t)round, 1);
        push(&prod, b, (uint8_t)(round + 1), 2);
        pop_expect(&cons, a, (uint8_t)round, 1);
        pop_expect(&cons, b, (uint8_t)(round + 1), 2);
    }
    assert_null(rs_shm_ring_peek(&cons, &l, &k));

    /* fill: 1000-byte messages take 1008 bytes; four fit, the fifth does not */
    for (int i = 0; i < 4; i++) {
        uint8_t *p = rs_shm_ring_reserve(&prod, 1000);
        if (!p) break;
        rs_shm_ring_commit(&prod, 1000, 3);
    }
    int refused = rs_shm_ring_reserve(&prod, 1000) == NULL;
    assert_true(refused);
    /* draining frees room again */
    while (rs_shm_ring_peek(&cons, &l, &k)) rs_shm_ring_release(&cons);
    assert_non_null(rs_shm_ring_reserve(&prod, 1000));
    /* zero-length messages are fine */
    rs_shm_ring_commit(&prod, 0, 9);
    assert_non_null(rs_shm_ring_peek(&cons, &l, &k));
    assert_int_equal(l, 0);
    assert_int_equal(k, 9);
    rs_shm_ring_release(&cons);

    memset(m, 0, 64 * 3 + 64);
    assert_int_equal(rs_shm_ring_attach(&cons, m, -1), -1); /* no magic */
    munmap(m, rs_shm_ring_bytes(CAP));
}

static void test_two_processes(void **state) {
    (void)state;
    void *m = ring_mem();
    int efd = eventfd(0, EFD_NONBLOCK);
    assert_true(efd >= 0);
    const uint32_t count = 5000;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rs_shm_ring prod;
        if (rs_shm_ring_attach(&prod, m, efd) != 0) _exit(3);
        for (uint32_t i = 0; i < count; i++) {
            uint32_t len = 4 + i % 200;
            uint8_t *p;
            while (!(p = rs_shm_ring_reserve(&prod, len))) usleep(50);
            memcpy(p, &i, 4);
            memset(p + 4, (int)(i & 0xff), len - 4);
            rs_shm_ring_commit(&prod, len, 7);
        }
        _exit(0);
    }
    rs_shm_ring cons;
    assert_int_equal(rs_shm_ring_attach(&cons, m, efd), 0);
    uint32_t next = 0, waits = 0;
    while (next < count) {
        uint32_t len, kind;
        const uint8_t *p = rs_shm_ring_peek(&cons, &len, &kind);
        if (!p) {
            int w = rs_shm_ring_wait(&cons, -1, 5000);
            assert_int_equal(w, 1); /* woken by the producer's eventfd */
            waits++;
            continue;
        }
        uint32_t seq;
        memcpy(&seq, p, 4);
        assert_int_equal(seq, next);
        assert_int_equal(len, 4 + next % 200);
        assert_int_equal(kind, 7);
        for (uint32_t i = 4; i < len; i++) assert_int_equal(p[i], next & 0xff);
        rs_shm_ring_release(&cons);
        next++;
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    (void)waits;
    close(efd);
    munmap(m, rs_shm_ring_bytes(CAP));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_wrap_full),
        cmocka_unit_test(test_two_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

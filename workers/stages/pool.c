/* pool.c — the worker's side of the stage pool (see pool.h). */
#include "workers/stages/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/common/log.h"
#include "io/frame.h"
#include "workers/stages/pool_wire.h"
#include "workers/stages/shm_ring.h"

typedef struct pool_proc {
    pthread_mutex_t mu;
    pid_t pid; /* -1: down, respawned on next use */
    int pidfd;
    int shm_fd, req_efd, resp_efd;
    void *seg;
    size_t seg_bytes;
    rs_shm_ring req, resp;
} pool_proc;

typedef struct pool_pipeline {
    bool used;
    uint32_t n;
    rs_stage_spec specs[RS_STAGE_MAX_STAGES];
    char base_dir[PATH_MAX];
    char what[128];
} pool_pipeline;

struct rs_stage_pool {
    rs_stage_pool_config cfg;
    cpu_set_t cpus;    /* where stage processes run */
    cpu_set_t initial; /* the creating thread's affinity: "unpinned" */
    uint32_t n;
    pool_proc procs[RS_STAGE_POOL_MAX_PROCESSES];
    pthread_mutex_t pipelines_mu;
    pool_pipeline pipelines[RS_STAGE_POOL_MAX_PIPELINES];
};

void rs_stage_pool_config_default(rs_stage_pool_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->processes = 1;
    cfg->ring_bytes = 16u << 20;
    cfg->arena_bytes = 64u << 20;
    cfg->timeout_ms = 10000;
}

/* ---- one process ---- */

static void proc_close(pool_proc *p) {
    if (p->seg) munmap(p->seg, p->seg_bytes);
    if (p->shm_fd >= 0) close(p->shm_fd);
    if (p->req_efd >= 0) close(p->req_efd);
    if (p->resp_efd >= 0) close(p->resp_efd);
    if (p->pidfd >= 0) close(p->pidfd);
    p->seg = NULL;
    p->shm_fd = p->req_efd = p->resp_efd = p->pidfd = -1;
}

/* Kills (if still running) and reaps a process, then frees its resources. */
static void proc_stop(pool_proc *p, bool polite, uint32_t wait_ms) {
    if (p->pid > 0) {
        if (polite) {
            void *m = rs_shm_ring_reserve(&p->req, 0);
            if (m) rs_shm_ring_commit(&p->req, 0, RS_POOL_MSG_QUIT);
        }
        int status;
        pid_t r = 0;
        for (uint32_t waited = 0; polite && waited < wait_ms; waited += 5) {
            r = waitpid(p->pid, &status, WNOHANG);
            if (r != 0) break;
            usleep(5000);
        }
        if (r == 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
        }
    }
    p->pid = -1;
    proc_close(p);
}

/* Waits for the next REPLY on the response ring; returns the payload (valid
 * until released) or NULL on death / timeout with why filled. */
static const uint8_t *proc_wait_reply(rs_stage_pool *pool, pool_proc *p, uint32_t *len,
                                      char *why, size_t why_bytes) {
    uint64_t deadline = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    deadline = now_ms + pool->cfg.timeout_ms;
    for (;;) {
        uint32_t kind;
        const uint8_t *m = rs_shm_ring_peek(&p->resp, len, &kind);
        if (m) {
            if (kind == RS_POOL_MSG_REPLY) return m;
            rs_shm_ring_release(&p->resp); /* unknown: skip */
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        if (now_ms >= deadline) {
            snprintf(why, why_bytes, "stage process %d did not answer within %u ms (killed)",
                     (int)p->pid, pool->cfg.timeout_ms);
            proc_stop(p, false, 0);
            return NULL;
        }
        int w = rs_shm_ring_wait(&p->resp, p->pidfd, (int)(deadline - now_ms));
        if (w == 2 && !rs_shm_ring_peek(&p->resp, len, &kind)) {
            snprintf(why, why_bytes, "stage process %d exited", (int)p->pid);
            proc_stop(p, false, 0);
            return NULL;
        }
    }
}

/* Sends a LOAD and reads its reply. 0, or -1 with the process's message. */
static int proc_load(rs_stage_pool *pool, pool_proc *p, uint32_t id, const pool_pipeline *pl,
                     char *why, size_t why_bytes) {
    rs_pw w = {0};
    rs_pw_load(&w, id, pl->what, pl->base_dir, pl->specs, pl->n);
    size_t size = w.len;
    uint8_t *m = size <= UINT32_MAX ? rs_shm_ring_reserve(&p->req, (uint32_t)size) : NULL;
    if (!m || w.bad) {
        snprintf(why, why_bytes, "%s: pipeline too large for the stage ring", pl->what);
        return -1;
    }
    w = (rs_pw){.buf = m, .cap = size};
    rs_pw_load(&w, id, pl->what, pl->base_dir, pl->specs, pl->n);
    rs_shm_ring_commit(&p->req, (uint32_t)size, RS_POOL_MSG_LOAD);
    uint32_t len;
    const uint8_t *r = proc_wait_reply(pool, p, &len, why, why_bytes);
    if (!r) return -1;
    rs_pr rd = {.p = r, .len = len};
    rs_pr_u64(&rd);
    int32_t status = (int32_t)rs_pr_u32(&rd);
    if (status != 0) rs_pr_cstr(&rd, why, why_bytes);
    rs_shm_ring_release(&p->resp);
    return status == 0 ? 0 : -1;
}

static int proc_spawn(rs_stage_pool *pool, pool_proc *p, char *why, size_t why_bytes) {
    p->shm_fd = p->req_efd = p->resp_efd = p->pidfd = -1;
    p->seg = NULL;
    uint64_t ring = pool->cfg.ring_bytes;
    size_t one = rs_shm_ring_bytes(ring);
    p->seg_bytes = 2 * one;
    p->shm_fd = memfd_create("ringserve-stage", MFD_CLOEXEC);
    p->req_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->resp_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->shm_fd < 0 || p->req_efd < 0 || p->resp_efd < 0 ||
        ftruncate(p->shm_fd, (off_t)p->seg_bytes) != 0) {
        snprintf(why, why_bytes, "stage pool: memfd/eventfd: %s", strerror(errno));
        proc_close(p);
        return -1;
    }
    p->seg = mmap(NULL, p->seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, p->shm_fd, 0);
    if (p->seg == MAP_FAILED) {
        p->seg = NULL;
        snprintf(why, why_bytes, "stage pool: mmap %zu bytes: %s", p->seg_bytes, strerror(errno));
        proc_close(p);
        return -1;
    }
    rs_shm_ring_format(p->seg, ring);
    rs_shm_ring_format((uint8_t *)p->seg + one, ring);
    rs_shm_ring_attach(&p->req, p->seg, p->req_efd);
    rs_shm_ring_attach(&p->resp, (uint8_t *)p->seg + one, p->resp_efd);

    const char *exe = pool->cfg.exe[0] ? pool->cfg.exe : "/proc/self/exe";
    char arena[32];
    snprintf(arena, sizeof(arena), "%llu", (unsigned long long)pool->cfg.arena_bytes);
    char *argv[] = {(char *)exe, "stage", "--shm-fd", "3", "--req-efd", "4", "--resp-efd",
                    "5", "--arena-bytes", arena, NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_bytes, "stage pool: fork: %s", strerror(errno));
        proc_close(p);
        return -1;
    }
    if (pid == 0) {
        /* async-signal-safe calls only until exec */
        /* move out of the way first: a source fd may be 3, 4 or 5 itself */
        int fds[3] = {fcntl(p->shm_fd, F_DUPFD, 10), fcntl(p->req_efd, F_DUPFD, 10),
                      fcntl(p->resp_efd, F_DUPFD, 10)};
        for (int i = 0; i < 3; i++)
            if (fds[i] < 0 || dup2(fds[i], 3 + i) < 0) _exit(127);
        syscall(SYS_close_range, 6, ~0u, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        execv(exe, argv);
        _exit(127);
    }
    p->pid = pid;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    /* not the spawning thread's (a pinned compute thread's) affinity */
    if (sched_setaffinity(pid, sizeof(pool->cpus), &pool->cpus) != 0)
        RS_LOG_ONCE(RS_LOG_WARN, "stage pool: cannot pin stage processes: %s", strerror(errno));
    /* The process says hello (a REPLY with job 0) once its rings are attached. */
    uint32_t len;
    if (!proc_wait_reply(pool, p, &len, why, why_bytes)) {
        snprintf(why + strlen(why), why_bytes - strlen(why), " (starting %s stage)", exe);
        return -1;
    }
    rs_shm_ring_release(&p->resp);
    RS_INFO("stage process %d started", (int)pid);
    return 0;
}

/* Brings a process up with every loaded pipeline. Holds p->mu. */
static int proc_ensure(rs_stage_pool *pool, pool_proc *p, char *why, size_t why_bytes) {
    if (p->pid > 0) return 0;
    if (proc_spawn(pool, p, why, why_bytes) != 0) return -1;
    pthread_mutex_lock(&pool->pipelines_mu);
    int rc = 0;
    for (uint32_t i = 0; i < RS_STAGE_POOL_MAX_PIPELINES && rc == 0; i++)
        if (pool->pipelines[i].used) rc = proc_load(pool, p, i, &pool->pipelines[i], why, why_bytes);
    pthread_mutex_unlock(&pool->pipelines_mu);
    if (rc != 0) proc_stop(p, false, 0);
    return rc;
}

/* ---- the pool ---- */

rs_stage_pool *rs_stage_pool_create(const rs_stage_pool_config *cfg, rs_err *err) {
    if (cfg->processes < 1 || cfg->processes > RS_STAGE_POOL_MAX_PROCESSES) {
        rs_err_set(err, "stage pool: processes: %u: must be 1..%d", cfg->processes,
                   RS_STAGE_POOL_MAX_PROCESSES);
        return NULL;
    }
    if (cfg->ring_bytes < (64u << 10) || (cfg->ring_bytes & (cfg->ring_bytes - 1)) != 0) {
        rs_err_set(err, "stage pool: ring_bytes: %llu: must be a power of two >= 65536",
                   (unsigned long long)cfg->ring_bytes);
        return NULL;
    }
    rs_stage_pool *pool = calloc(1, sizeof(*pool));
    if (!pool) {
        rs_err_set(err, "stage pool: out of memory");
        return NULL;
    }
    pool->cfg = *cfg;
    pool->n = cfg->processes;
    if (sched_getaffinity(0, sizeof(pool->initial), &pool->initial) != 0) {
        CPU_ZERO(&pool->initial);
        for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &pool->initial);
    }
    pool->cpus = pool->initial;
    pthread_mutex_init(&pool->pipelines_mu, NULL);
    for (uint32_t i = 0; i < RS_STAGE_POOL_MAX_PROCESSES; i++) {
        pool_proc *p = &pool->procs[i];
        pthread_mutex_init(&p->mu, NULL);
        p->pid = -1;
        p->shm_fd = p->req_efd = p->resp_efd = p->pidfd = -1;
    }
    for (uint32_t i = 0; i < pool->n; i++) {
        if (proc_spawn(pool, &pool->procs[i], err->msg, sizeof(err->msg)) != 0) {
            rs_stage_pool_destroy(pool);
            return NULL;
        }
    }
    return pool;
}

void rs_stage_pool_destroy(rs_stage_pool *pool) {
    if (!pool) return;
    for (uint32_t i = 0; i < RS_STAGE_POOL_MAX_PROCESSES; i++) {
        pool_proc *p = &pool->procs[i];
        pthread_mutex_lock(&p->mu);
        proc_stop(p, true, 2000);
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_destroy(&p->mu);
    }
    pthread_mutex_destroy(&pool->pipelines_mu);
    free(pool);
}

uint32_t rs_stage_pool_processes(const rs_stage_pool *pool) { return pool->n; }

void rs_stage_pool_set_cpus(rs_stage_pool *pool, const cpu_set_t *cpus) {
    for (uint32_t i = 0; i < pool->n; i++) pthread_mutex_lock(&pool->procs[i].mu);
    pool->cpus = cpus ? *cpus : pool->initial;
    for (uint32_t i = 0; i < pool->n; i++) {
        pool_proc *p = &pool->procs[i];
        if (p->pid > 0 && sched_setaffinity(p->pid, sizeof(pool->cpus), &pool->cpus) != 0)
            RS_LOG_ONCE(RS_LOG_WARN, "stage pool: cannot pin stage processes: %s", strerror(errno));
        pthread_mutex_unlock(&p->mu);
    }
}

int rs_stage_pool_pid(rs_stage_pool *pool, uint32_t i) {
    if (i >= pool->n) return -1;
    pthread_mutex_lock(&pool->procs[i].mu);
    int pid = pool->procs[i].pid;
    pthread_mutex_unlock(&pool->procs[i].mu);
    return pid;
}

int rs_stage_pool_load(rs_stage_pool *pool, const rs_stage_spec *specs, uint32_t n,
                       const char *base_dir, const char *what, uint32_t *pipeline_id,
                       rs_err *err) {
    if (n > RS_STAGE_MAX_STAGES) {
        rs_err_set(err, "%s: %u stages, at most %d", what, n, RS_STAGE_MAX_STAGES);
        return -1;
    }
    pthread_mutex_lock(&pool->pipelines_mu);
    uint32_t id = 0;
    while (id < RS_STAGE_POOL_MAX_PIPELINES && pool->pipelines[id].used) id++;
    if (id == RS_STAGE_POOL_MAX_PIPELINES) {
        pthread_mutex_unlock(&pool->pipelines_mu);
        rs_err_set(err, "%s: the stage pool holds %d pipelines already", what,
                   RS_STAGE_POOL_MAX_PIPELINES);
        return -1;
    }
    pool_pipeline *pl = &pool->pipelines[id];
    memset(pl, 0, sizeof(*pl));
    pl->n = n;
    if (n) memcpy(pl->specs, specs, n * sizeof(*specs));
    snprintf(pl->base_dir, sizeof(pl->base_dir), "%s", base_dir ? base_dir : "");
    snprintf(pl->what, sizeof(pl->what), "%s", what);
    pl->used = true; /* reserved; a process respawned meanwhile loads it too */
    pthread_mutex_unlock(&pool->pipelines_mu);

    int rc = 0;
    for (uint32_t i = 0; i < pool->n && rc == 0; i++) {
        pool_proc *p = &pool->procs[i];
        pthread_mutex_lock(&p->mu);
        if (p->pid > 0)
            rc = proc_load(pool, p, id, pl, err->msg, sizeof(err->msg));
        else
            rc = proc_ensure(pool, p, err->msg, sizeof(err->msg));
        pthread_mutex_unlock(&p->mu);
    }
    if (rc != 0) {
        rs_stage_pool_unload(pool, id);
        return -1;
    }
    *pipeline_id = id;
    return 0;
}

void rs_stage_pool_unload(rs_stage_pool *pool, uint32_t id) {
    if (id >= RS_STAGE_POOL_MAX_PIPELINES) return;
    pthread_mutex_lock(&pool->pipelines_mu);
    pool->pipelines[id].used = false;
    pthread_mutex_unlock(&pool->pipelines_mu);
    for (uint32_t i = 0; i < pool->n; i++) {
        pool_proc *p = &pool->procs[i];
        pthread_mutex_lock(&p->mu);
        if (p->pid > 0) {
            uint8_t *m = rs_shm_ring_reserve(&p->req, 4);
            if (m) {
                memcpy(m, &id, 4);
                rs_shm_ring_commit(&p->req, 4, RS_POOL_MSG_UNLOAD);
                char why[RS_ERR_MSG_BYTES];
                uint32_t len;
                if (proc_wait_reply(pool, p, &len, why, sizeof(why)))
                    rs_shm_ring_release(&p->resp);
                else
                    RS_WARN("stage pool: unload: %s", why);
            }
        }
        pthread_mutex_unlock(&p->mu);
    }
}

/* Copies the reply's tensors into the arena (names too): the ring slot is
 * released before the caller uses them. */
static int copy_out(const rs_tensor_list *src, rs_tensor_list *io, rs_stage_arena *arena,
                    char *why, size_t why_bytes) {
    rs_tensor_list out = {.count = src->count};
    for (uint32_t i = 0; i < src->count; i++) {
        const rs_tensor_view *s = &src->t[i];
        out.t[i] = *s;
        char *name = rs_stage_arena_alloc(arena, s->name.len + 1);
        uint8_t *data = rs_stage_arena_alloc(arena, s->byte_len ? s->byte_len : 1);
        if (!name || !data) {
            snprintf(why, why_bytes,
                     "stage pool: the results need more than the stage arena's %zu bytes",
                     arena->cap_bytes);
            return -RS_E_OVERLOADED;
        }
        memcpy(name, s->name.ptr, s->name.len);
        name[s->name.len] = '\0';
        memcpy(data, s->data, s->byte_len);
        out.t[i].name = (rs_str){name, s->name.len};
        out.t[i].data = data;
    }
    *io = out;
    return 0;
}

int rs_stage_pool_run(rs_stage_pool *pool, uint32_t slot_hint, uint32_t pipeline_id,
                      rs_tensor_list *io, rs_stage_arena *arena, char *why, size_t why_bytes) {
    pool_proc *p = &pool->procs[slot_hint % pool->n];
    pthread_mutex_lock(&p->mu);
    int rc = proc_ensure(pool, p, why, why_bytes) == 0 ? 0 : -RS_E_BACKEND;
    if (rc != 0) goto out;

    static _Atomic uint64_t next_job = 1;
    uint64_t job = next_job++;
    rs_pw w = {0};
    rs_pw_u64(&w, job);
    rs_pw_u32(&w, pipeline_id);
    rs_pw_u32(&w, 0);
    rs_pw_tensors(&w, io);
    size_t size = w.len;
    uint8_t *m = NULL;
    if (size <= rs_shm_ring_max_payload(&p->req)) m = rs_shm_ring_reserve(&p->req, (uint32_t)size);
    if (!m) {
        snprintf(why, why_bytes, "stage pool: a batch of %zu bytes exceeds the stage ring's %llu",
                 size, (unsigned long long)rs_shm_ring_max_payload(&p->req));
        rc = -RS_E_OVERLOADED;
        goto out;
    }
    w = (rs_pw){.buf = m, .cap = size};
    rs_pw_u64(&w, job);
    rs_pw_u32(&w, pipeline_id);
    rs_pw_u32(&w, 0);
    rs_pw_tensors(&w, io);
    RS_ASSERT(!w.bad && w.len == size);
    rs_shm_ring_commit(&p->req, (uint32_t)size, RS_POOL_MSG_RUN);

    uint32_t len;
    const uint8_t *r = proc_wait_reply(pool, p, &len, why, why_bytes);
    if (!r) {
        rc = -RS_E_BACKEND;
        goto out;
    }
    rs_pr rd = {.p = r, .len = len};
    uint64_t got = rs_pr_u64(&rd);
    int32_t status = (int32_t)rs_pr_u32(&rd);
    rs_str msg = rs_pr_str(&rd);
    RS_ASSERT(got == job);
    if (status != 0) {
        snprintf(why, why_bytes, "%.*s", (int)msg.len, msg.ptr);
        rc = status;
    } else {
        rs_tensor_list res;
        rs_pr_tensors(&rd, &res);
        if (rd.bad) {
            snprintf(why, why_bytes, "stage pool: malformed reply from process %d", (int)p->pid);
            rc = -RS_E_INTERNAL;
        } else {
            rc = copy_out(&res, io, arena, why, why_bytes);
        }
    }
    rs_shm_ring_release(&p->resp);
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* supervisor.c — spawn, watch, restart and stop worker processes. */
#include "engine/coordinator/supervisor.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"

extern char **environ;

void rs_workers_config_default(rs_workers_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->count = 2;
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->base_port = 9101;
    cfg->restart_backoff_ms = 200;
    cfg->max_backoff_ms = 5000;
    cfg->crash_loop_restarts = 5;
    cfg->crash_loop_window_s = 30;
}

int rs_workers_config_parse(const rs_cfg_node *section, rs_workers_config *out, rs_err *err) {
    rs_workers_config_default(out);
    if (!rs_cfg_present(section)) return 0;
    static const char *const keys[] = {"count", "host", "base_port", "models", "restart_backoff_ms",
                                       "max_backoff_ms", "crash_loop_restarts", "crash_loop_window_s",
                                       NULL};
    if (rs_cfg_check_keys(section, keys, err) != 0) return -1;
    uint64_t v;
    if (rs_cfg_u64(section, "count", false, 2, 0, RS_SUP_MAX_WORKERS, &v, err)) return -1;
    out->count = (uint32_t)v;
    if (rs_cfg_str(section, "host", false, "127.0.0.1", out->host, sizeof(out->host), err)) return -1;
    if (rs_cfg_u64(section, "base_port", false, 9101, 1, 65535, &v, err)) return -1;
    out->base_port = (uint16_t)v;
    if ((uint64_t)out->base_port + out->count > 65536) {
        rs_cfg_node n = rs_cfg_get(section, "base_port");
        rs_cfg_fail(&n, err, "'%u': base_port + count exceeds 65535", out->base_port);
        return -1;
    }
    if (rs_cfg_u64(section, "restart_backoff_ms", false, 200, 1, 600000, &out->restart_backoff_ms, err)) return -1;
    if (rs_cfg_u64(section, "max_backoff_ms", false, 5000, 1, 3600000, &out->max_backoff_ms, err)) return -1;
    if (out->max_backoff_ms < out->restart_backoff_ms) {
        rs_cfg_node n = rs_cfg_get(section, "max_backoff_ms");
        rs_cfg_fail(&n, err, "'%" PRIu64 "': smaller than restart_backoff_ms", out->max_backoff_ms);
        return -1;
    }
    if (rs_cfg_u64(section, "crash_loop_restarts", false, 5, 1, 1000, &v, err)) return -1;
    out->crash_loop_restarts = (uint32_t)v;
    if (rs_cfg_u64(section, "crash_loop_window_s", false, 30, 1, 86400, &out->crash_loop_window_s, err)) return -1;
    rs_cfg_node models = rs_cfg_get(section, "models");
    if (rs_cfg_present(&models)) {
        if (!rs_cfg_is_seq(&models)) {
            rs_cfg_fail(&models, err, "expected a list of model names");
            return -1;
        }
        size_t n = rs_cfg_len(&models);
        if (n > RS_SUP_MAX_MODELS) {
            rs_cfg_fail(&models, err, "%zu models: at most %d", n, RS_SUP_MAX_MODELS);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            rs_cfg_node it = rs_cfg_at(&models, i);
            const char *s = rs_cfg_scalar(&it);
            if (!s || !s[0] || strlen(s) >= sizeof(out->models[0])) {
                rs_cfg_fail(&it, err, "expected a model name of 1..64 bytes");
                return -1;
            }
            snprintf(out->models[i], sizeof(out->models[i]), "%s", s);
        }
        out->n_models = (uint32_t)n;
    }
    return 0;
}

typedef struct rs_sup_worker {
    pid_t pid;
    uint16_t port;
    uint64_t restart_at_ms;  /* when down: next spawn time */
    uint64_t backoff_ms;
    uint64_t window_start_ms;
    uint32_t window_restarts;
    bool crash_looping;
} rs_sup_worker;

struct rs_supervisor {
    rs_workers_config cfg;
    char exe[512];
    char config_file[512];
    char coordinator[128];
    const char *global_args[8];
    uint32_t n_global;
    pthread_t thread;
    pthread_mutex_t lock;
    atomic_bool stopping;
    uint64_t restarts;
    rs_sup_worker w[RS_SUP_MAX_WORKERS];
};

static pid_t rs_sup_spawn(rs_supervisor *s, uint32_t i) {
    char port[8];
    snprintf(port, sizeof(port), "%u", s->w[i].port);
    const char *argv[64];
    int n = 0;
    argv[n++] = s->exe;
    for (uint32_t g = 0; g < s->n_global; g++) argv[n++] = s->global_args[g];
    argv[n++] = "worker";
    argv[n++] = "--config";
    argv[n++] = s->config_file;
    argv[n++] = "--port";
    argv[n++] = port;
    for (uint32_t m = 0; m < s->cfg.n_models; m++) {
        argv[n++] = "--model";
        argv[n++] = s->cfg.models[m];
    }
    argv[n++] = "--coordinator";
    argv[n++] = s->coordinator;
    argv[n] = NULL;
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty, deflt;
    sigemptyset(&empty);
    sigemptyset(&deflt);
    sigaddset(&deflt, SIGTERM);
    sigaddset(&deflt, SIGINT);
    sigaddset(&deflt, SIGPIPE);
    sigaddset(&deflt, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &empty);       /* the coordinator blocks these */
    posix_spawnattr_setsigdefault(&attr, &deflt);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, s->exe, NULL, &attr, (char *const *)argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        RS_ERROR("supervisor: cannot start worker %u: %s", i, strerror(rc));
        return 0;
    }
    RS_INFO("supervisor: worker %u started (pid %d, port %u)", i, (int)pid, s->w[i].port);
    return pid;
}

static void *rs_sup_thread(void *arg) {
    rs_supervisor *s = arg;
    while (!atomic_load(&s->stopping)) {
        uint64_t now = rs_now_ms();
        pthread_mutex_lock(&s->lock);
        for (uint32_t i = 0; i < s->cfg.count; i++) {
            rs_sup_worker *w = &s->w[i];
            if (w->pid > 0) {
                int status = 0;
                pid_t r = waitpid(w->pid, &status, WNOHANG);
                if (r != w->pid) continue;
                if (atomic_load(&s->stopping)) break;
                if (WIFSIGNALED(status))
                    RS_WARN("supervisor: worker %u (pid %d) killed by signal %d; restarting in %" PRIu64 " ms", i,
                            (int)w->pid, WTERMSIG(status), w->backoff_ms);
                else
                    RS_WARN("supervisor: worker %u (pid %d) exited with %d; restarting in %" PRIu64 " ms", i,
                            (int)w->pid, WEXITSTATUS(status), w->backoff_ms);
                w->pid = 0;
                if (now - w->window_start_ms > s->cfg.crash_loop_window_s * 1000) {
                    w->window_start_ms = now;
                    w->window_restarts = 0;
                    w->crash_looping = false;
                }
                w->window_restarts++;
                if (w->window_restarts > s->cfg.crash_loop_restarts && !w->crash_looping) {
                    w->crash_looping = true;
                    RS_ERROR("supervisor: worker %u is crash-looping: %u restarts within %" PRIu64
                             " s; backing off up to %" PRIu64 " ms between tries",
                             i, w->window_restarts, s->cfg.crash_loop_window_s, s->cfg.max_backoff_ms);
                }
                w->restart_at_ms = now + w->backoff_ms;
                w->backoff_ms = w->backoff_ms * 2 > s->cfg.max_backoff_ms ? s->cfg.max_backoff_ms : w->backoff_ms * 2;
            } else if (now >= w->restart_at_ms) {
                w->pid = rs_sup_spawn(s, i);
                s->restarts++;
                if (w->pid <= 0) w->restart_at_ms = now + w->backoff_ms;
            }
        }
        /* A worker that stayed up for a whole window earns its backoff back. */
        for (uint32_t i = 0; i < s->cfg.count; i++) {
            rs_sup_worker *w = &s->w[i];
            if (w->pid > 0 && now - w->window_start_ms > s->cfg.crash_loop_window_s * 1000) {
                w->backoff_ms = s->cfg.restart_backoff_ms;
                w->crash_looping = false;
                w->window_restarts = 0;
                w->window_start_ms = now;
            }
        }
        pthread_mutex_unlock(&s->lock);
        usleep(20000);
    }
    return NULL;
}

rs_supervisor *rs_supervisor_start(const rs_workers_config *cfg, const char *exe,
                                   const char *const *global_args, const char *config_file,
                                   const char *coordinator_addr, rs_err *err) {
    rs_supervisor *s = calloc(1, sizeof(*s));
    if (!s) {
        rs_err_set(err, "supervisor: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    snprintf(s->exe, sizeof(s->exe), "%s", exe);
    snprintf(s->config_file, sizeof(s->config_file), "%s", config_file);
    snprintf(s->coordinator, sizeof(s->coordinator), "%s", coordinator_addr);
    for (; global_args && global_args[s->n_global] && s->n_global < 8; s->n_global++)
        s->global_args[s->n_global] = global_args[s->n_global];
    pthread_mutex_init(&s->lock, NULL);
    uint64_t now = rs_now_ms();
    for (uint32_t i = 0; i < cfg->count; i++) {
        s->w[i].port = (uint16_t)(cfg->base_port + i);
        s->w[i].backoff_ms = cfg->restart_backoff_ms;
        s->w[i].window_start_ms = now;
        s->w[i].pid = rs_sup_spawn(s, i);
        if (s->w[i].pid <= 0) s->w[i].restart_at_ms = now + cfg->restart_backoff_ms;
    }
    if (pthread_create(&s->thread, NULL, rs_sup_thread, s) != 0) {
        rs_err_set(err, "supervisor: cannot start its thread");
        for (uint32_t i = 0; i < cfg->count; i++)
            if (s->w[i].pid > 0) kill(s->w[i].pid, SIGKILL);
        free(s);
        return NULL;
    }
    return s;
}

void rs_supervisor_stop(rs_supervisor *s, uint64_t timeout_ms) {
    if (!s) return;
    atomic_store(&s->stopping, true);
    pthread_join(s->thread, NULL);
    for (uint32_t i = 0; i < s->cfg.count; i++)
        if (s->w[i].pid > 0) kill(s->w[i].pid, SIGTERM);
    uint64_t deadline = rs_now_ms() + timeout_ms;
    for (;;) {
        uint32_t alive = 0;
        for (uint32_t i = 0; i < s->cfg.count; i++) {
            if (s->w[i].pid <= 0) continue;
            if (waitpid(s->w[i].pid, NULL, WNOHANG) == s->w[i].pid) s->w[i].pid = 0;
            else alive++;
        }
        if (alive == 0) break;
        if (rs_now_ms() >= deadline) {
            for (uint32_t i = 0; i < s->cfg.count; i++) {
                if (s->w[i].pid > 0) {
                    RS_WARN("supervisor: worker %u did not stop in %" PRIu64 " ms; killing it", i, timeout_ms);
                    kill(s->w[i].pid, SIGKILL);
                    waitpid(s->w[i].pid, NULL, 0);
                    s->w[i].pid = 0;
                }
            }
            break;
        }
        usleep(10000);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void rs_supervisor_stats_get(rs_supervisor *s, rs_supervisor_stats *out) {
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->lock);
    out->workers = s->cfg.count;
    out->restarts = s->restarts;
    for (uint32_t i = 0; i < s->cfg.count; i++) {
        if (s->w[i].pid > 0) out->running++;
        if (s->w[i].crash_looping) out->crash_looping++;
    }
    pthread_mutex_unlock(&s->lock);
}

pid_t rs_supervisor_pid(rs_supervisor *s, uint32_t i) {
    pthread_mutex_lock(&s->lock);
    pid_t p = i < s->cfg.count ? s->w[i].pid : 0;
    pthread_mutex_unlock(&s->lock);
    return p;
}

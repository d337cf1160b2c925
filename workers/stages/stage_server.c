/* stage_server.c — the `ringserve stage` process: serves one worker's
 * request ring, compiling pipelines on LOAD and running them on RUN.
 *
 * Single-threaded and allocation-free per job: results go to one arena
 * allocated at start and are encoded straight into the reply ring. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/common/log.h"
#include "io/frame.h"
#include "workers/stages/pool.h"
#include "workers/stages/pool_wire.h"
#include "workers/stages/shm_ring.h"

typedef struct server {
    rs_shm_ring req, resp;
    rs_stage_arena arena;
    rs_stage_pipeline *pipelines[RS_STAGE_POOL_MAX_PIPELINES];
} server;

/* Writes a REPLY; a result too large for the ring becomes an error reply. */
static void reply(server *s, uint64_t job, int32_t status, const char *why,
                  const rs_tensor_list *out) {
    rs_pw w = {0};
    rs_pw_u64(&w, job);
    rs_pw_u32(&w, (uint32_t)status);
    rs_pw_str(&w, why, strlen(why));
    if (out) rs_pw_tensors(&w, out);
    size_t size = w.len;
    uint8_t *m = size <= rs_shm_ring_max_payload(&s->resp)
                     ? rs_shm_ring_reserve(&s->resp, (uint32_t)size)
                     : NULL;
    if (!m) {
        char msg[160];
        snprintf(msg, sizeof(msg), "stage process: a result of %zu bytes exceeds the ring's %llu",
                 size, (unsigned long long)rs_shm_ring_max_payload(&s->resp));
        RS_ASSERT(out != NULL); /* a bare error always fits */
        reply(s, job, -RS_E_OVERLOADED, msg, NULL);
        return;
    }
    w = (rs_pw){.buf = m, .cap = size};
    rs_pw_u64(&w, job);
    rs_pw_u32(&w, (uint32_t)status);
    rs_pw_str(&w, why, strlen(why));
    if (out) rs_pw_tensors(&w, out);
    rs_shm_ring_commit(&s->resp, (uint32_t)size, RS_POOL_MSG_REPLY);
}

static void handle_load(server *s, rs_pr *r) {
    uint32_t id = rs_pr_u32(r);
    char what[128], base_dir[PATH_MAX];
    rs_pr_cstr(r, what, sizeof(what));
    rs_pr_cstr(r, base_dir, sizeof(base_dir));
    uint32_t n = rs_pr_u32(r);
    static rs_stage_spec specs[RS_STAGE_MAX_STAGES];
    if (n > RS_STAGE_MAX_STAGES || id >= RS_STAGE_POOL_MAX_PIPELINES) r->bad = true;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        rs_stage_spec *sp = &specs[i];
        memset(sp, 0, sizeof(*sp));
        rs_pr_cstr(r, sp->name, sizeof(sp->name));
        sp->line = (int)rs_pr_u32(r);
        sp->param_count = rs_pr_u32(r);
        if (sp->param_count > RS_STAGE_MAX_PARAMS) r->bad = true;
        for (uint32_t j = 0; j < sp->param_count && !r->bad; j++) {
            rs_pr_cstr(r, sp->params[j].key, sizeof(sp->params[j].key));
            rs_pr_cstr(r, sp->params[j].value, sizeof(sp->params[j].value));
        }
    }
    if (r->bad) {
        reply(s, 0, -RS_E_MALFORMED, "stage process: malformed LOAD", NULL);
        return;
    }
    rs_err err = {0};
    rs_stage_pipeline *p = rs_stage_pipeline_compile(specs, n, base_dir, what, &err);
    if (!p) {
        reply(s, 0, -RS_E_INVALID_INPUT, err.msg, NULL);
        return;
    }
    rs_stage_pipeline_free(s->pipelines[id]);
    s->pipelines[id] = p;
    reply(s, 0, 0, "", NULL);
}

static void handle_run(server *s, rs_pr *r) {
    uint64_t job = rs_pr_u64(r);
    uint32_t id = rs_pr_u32(r);
    rs_pr_u32(r);
    rs_tensor_list io;
    rs_pr_tensors(r, &io);
    if (r->bad) {
        reply(s, job, -RS_E_MALFORMED, "stage process: malformed RUN", NULL);
        return;
    }
    if (id >= RS_STAGE_POOL_MAX_PIPELINES || !s->pipelines[id]) {
        reply(s, job, -RS_E_INTERNAL, "stage process: unknown pipeline", NULL);
        return;
    }
    char why[RS_ERR_MSG_BYTES] = "";
    rs_stage_arena_reset(&s->arena);
    int rc = rs_stage_pipeline_run(s->pipelines[id], &io, &s->arena, why, sizeof(why));
    reply(s, job, rc, rc == 0 ? "" : why, rc == 0 ? &io : NULL);
}

int rs_stage_server_run(int shm_fd, int req_efd, int resp_efd, uint64_t arena_bytes) {
    struct stat st;
    if (fstat(shm_fd, &st) != 0 || st.st_size <= 0) {
        RS_ERROR("stage: --shm-fd %d: not a shared-memory segment", shm_fd);
        return 2;
    }
    void *seg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    if (seg == MAP_FAILED) {
        RS_ERROR("stage: mmap: %s", strerror(errno));
        return 2;
    }
    static server s;
    memset(&s, 0, sizeof(s));
    if (rs_shm_ring_attach(&s.req, seg, req_efd) != 0 ||
        rs_shm_ring_bytes(s.req.hdr->capacity_bytes) >= (size_t)st.st_size ||
        rs_shm_ring_attach(&s.resp, (uint8_t *)seg + rs_shm_ring_bytes(s.req.hdr->capacity_bytes),
                           resp_efd) != 0) {
        RS_ERROR("stage: --shm-fd %d holds no stage rings", shm_fd);
        return 2;
    }
    rs_err err;
    if (rs_stage_arena_init(&s.arena, arena_bytes, &err) != 0) {
        RS_ERROR("stage: %s", err.msg);
        return 2;
    }
    reply(&s, 0, 0, "", NULL); /* hello: rings attached, ready */
    int code = 0;
    for (bool quit = false; !quit;) {
        uint32_t len, kind;
        const uint8_t *m = rs_shm_ring_peek(&s.req, &len, &kind);
        if (!m) {
            if (rs_shm_ring_wait(&s.req, -1, 1000) < 0) {
                RS_ERROR("stage: wait: %s", strerror(errno));
                code = 1;
                break;
            }
            continue;
        }
        rs_pr r = {.p = m, .len = len};
        switch (kind) {
        case RS_POOL_MSG_LOAD: handle_load(&s, &r); break;
        case RS_POOL_MSG_RUN: handle_run(&s, &r); break;
        case RS_POOL_MSG_UNLOAD: {
            uint32_t id = rs_pr_u32(&r);
            if (id < RS_STAGE_POOL_MAX_PIPELINES) {
                rs_stage_pipeline_free(s.pipelines[id]);
                s.pipelines[id] = NULL;
            }
            reply(&s, 0, 0, "", NULL);
            break;
        }
        case RS_POOL_MSG_QUIT: quit = true; break;
        default: reply(&s, 0, -RS_E_BAD_TYPE, "stage process: unknown message", NULL); break;
        }
        rs_shm_ring_release(&s.req);
    }
    for (uint32_t i = 0; i < RS_STAGE_POOL_MAX_PIPELINES; i++) rs_stage_pipeline_free(s.pipelines[i]);
    rs_stage_arena_free(&s.arena);
    munmap(seg, (size_t)st.st_size);
    return code;
}

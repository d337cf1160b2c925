/* worker_model.c — a loaded model version: job slots, item validation,
 * compute threads and the batch -> stages -> backend -> stages -> reply path.
 *
 * Items are checked on the loop thread (cheap, and the frame's memory is
 * only valid there) and copied row-contiguously into a job slot, one buffer
 * per model input, so a run of compatible items is one tensor the backend
 * takes without another copy. "Compatible" is: the model is batchable and
 * the items agree on every non-batch dim (inputs with -1 dims may differ
 * between requests); a job is cut into such runs ("segments"), each one
 * backend call. */
#include "workers/worker_model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/common/log.h"
#include "topo/bind.h"

/* ---- helpers ---- */

static void fmt_dims(char *out, size_t out_bytes, uint32_t rank, const int64_t *dims) {
    size_t n = (size_t)snprintf(out, out_bytes, "[");
    for (uint32_t i = 0; i < rank && n < out_bytes; i++)
        n += (size_t)snprintf(out + n, out_bytes - n, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (n < out_bytes) snprintf(out + n, out_bytes - n, "]");
}

static uint64_t io_bytes(const rs_tensor_spec *s, uint32_t max_batch, uint64_t variable) {
    uint64_t row = rs_tensor_spec_row_bytes(s);
    return row ? row * max_batch : variable;
}

int64_t rs_wmodel_parse_version(rs_str v) {
    if (v.len == 0) return 0;
    if (v.len > 9) return -1;
    int64_t x = 0;
    for (uint32_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') return -1;
        x = x * 10 + (v.ptr[i] - '0');
    }
    return x > 0 ? x : -1;
}

/* ---- job slots (loop thread) ---- */

rs_wjob *rs_wmodel_job_get(rs_wmodel *wm) {
    rs_winstance *best = NULL;
    for (uint32_t i = 0; i < wm->n_inst; i++)
        if (wm->inst[i].n_free > 0 && (!best || wm->inst[i].n_free > best->n_free))
            best = &wm->inst[i];
    if (!best) return NULL;
    rs_wjob *job = best->free[--best->n_free];
    job->n_ok = job->n_err = job->rows = job->msg_used = job->n_want = 0;
    job->req_id[0] = '\0';
    job->resp_len = 0;
    job->conn = 0;
    for (uint32_t i = 0; i < RS_MODEL_MAX_IO; i++) job->in_used[i] = 0;
    return job;
}

void rs_wmodel_job_put(rs_wjob *job) {
    rs_winstance *inst = &job->model->inst[job->instance];
    RS_ASSERT(inst->n_free < job->model->env.queue_depth);
    inst->free[inst->n_free++] = job;
}

void rs_wjob_add_error(rs_wjob *job, uint64_t item_id, rs_status status, const char *msg) {
    RS_ASSERT(job->n_err < RS_MAX_BATCH_ITEMS);
    rs_wjob_err *e = &job->err[job->n_err++];
    e->item_id = item_id;
    e->status = (uint32_t)status;
    size_t len = strlen(msg), room = RS_WMODEL_MSG_POOL_BYTES - job->msg_used;
    if (room == 0) { /* the pool is full: the status alone still says what */
        e->msg_off = UINT32_MAX;
        e->msg_len = 0;
        return;
    }
    if (len + 1 > room) len = room - 1; /* cut, never overflow */
    e->msg_off = job->msg_used;
    e->msg_len = (uint32_t)len;
    memcpy(job->msg_pool + job->msg_used, msg, len);
    job->msg_pool[job->msg_used + len] = '\0';
    job->msg_used += (uint32_t)len + 1;
}

static const char *err_msg(const rs_wjob *job, const rs_wjob_err *e) {
    return e->msg_off == UINT32_MAX ? "" : job->msg_pool + e->msg_off;
}

static const rs_tensor_view *find_input(const rs_tensor_list *l, const char *name) {
    return rs_tensor_find(l, name, strlen(name));
}

rs_status rs_wjob_add_item(rs_wjob *job, uint64_t item_id, const rs_tensor_list *inputs,
                           char *why, size_t why_bytes) {
    const rs_model *m = &job->model->m;
    const char *mv = job->model->version_str;
    char have[96], want[96];
    for (uint32_t k = 0; k < inputs->count; k++) {
        const rs_tensor_view *t = &inputs->t[k];
        bool known = false;
        for (uint32_t i = 0; i < m->input_count; i++) known |= rs_str_eq(t->name, m->inputs[i].name);
        if (!known) {
            snprintf(why, why_bytes, "unexpected input '%.*s': model %s/%s takes %u input(s), the first '%s'",
                     (int)t->name.len, t->name.ptr, m->name, mv, m->input_count, m->inputs[0].name);
            return RS_E_INVALID_INPUT;
        }
    }
    const rs_tensor_view *ts[RS_MODEL_MAX_IO];
    int64_t rows = -1;
    for (uint32_t i = 0; i < m->input_count; i++) {
        const rs_tensor_spec *s = &m->inputs[i];
        const rs_tensor_view *t = ts[i] = find_input(inputs, s->name);
        fmt_dims(want, sizeof(want), s->rank, s->dims);
        if (!t) {
            snprintf(why, why_bytes, "missing input '%s' (%s %s) for model %s/%s", s->name,
                     rs_dtype_name(s->dtype), want, m->name, mv);
            return RS_E_INVALID_INPUT;
        }
        if (t->dtype != s->dtype) {
            snprintf(why, why_bytes, "input '%s' is %s, model %s/%s takes %s", s->name,
                     rs_dtype_name(t->dtype), m->name, mv, rs_dtype_name(s->dtype));
            return RS_E_INVALID_INPUT;
        }
        bool fits = t->rank == s->rank && t->rank >= 1;
        for (uint32_t j = 1; fits && j < s->rank; j++)
            fits = s->dims[j] == -1 || s->dims[j] == t->dims[j];
        if (!fits) {
            fmt_dims(have, sizeof(have), t->rank, t->dims);
            snprintf(why, why_bytes, "input '%s' has shape %s, model %s/%s takes %s", s->name, have,
                     m->name, mv, want);
            return RS_E_INVALID_INPUT;
        }
        if (t->dims[0] < 1) {
            snprintf(why, why_bytes, "input '%s' has no rows (batch dim %lld)", s->name,
                     (long long)t->dims[0]);
            return RS_E_INVALID_INPUT;
        }
        if (rows >= 0 && t->dims[0] != rows) {
            snprintf(why, why_bytes, "inputs disagree on the batch dim: '%s' has %lld rows, '%s' %lld",
                     m->inputs[0].name, (long long)rows, s->name, (long long)t->dims[0]);
            return RS_E_INVALID_INPUT;
        }
        rows = t->dims[0];
    }
    if (rows > m->max_batch_size) {
        snprintf(why, why_bytes, "request has %lld rows; model %s/%s takes at most %u", (long long)rows,
                 m->name, mv, m->max_batch_size);
        return RS_E_INVALID_INPUT;
    }
    if (job->rows + rows > m->max_batch_size) {
        snprintf(why, why_bytes, "batch exceeds model %s/%s's max_batch_size of %u rows", m->name, mv,
                 m->max_batch_size);
        return RS_E_OVERLOADED;
    }
    for (uint32_t i = 0; i < m->input_count; i++) {
        if (ts[i]->byte_len > job->in_cap[i] - job->in_used[i]) {
            snprintf(why, why_bytes, "input '%s': the batch needs more than the worker's %llu-byte buffer",
                     m->inputs[i].name, (unsigned long long)job->in_cap[i]);
            return RS_E_OVERLOADED;
        }
    }
    rs_wjob_ok *ok = &job->ok[job->n_ok++];
    ok->item_id = item_id;
    ok->rows = (uint32_t)rows;
    for (uint32_t i = 0; i < m->input_count; i++) {
        const rs_tensor_view *t = ts[i];
        ok->in_off[i] = job->in_used[i];
        ok->in_bytes[i] = t->byte_len;
        memcpy(ok->dims[i], t->dims, sizeof(int64_t) * t->rank);
        if (t->byte_len) memcpy(job->in_buf[i] + job->in_used[i], t->data, t->byte_len);
        job->in_used[i] += t->byte_len;
    }
    job->rows += (uint32_t)rows;
    return RS_OK;
}

/* ---- running a job (compute thread) ---- */

static bool same_shape(const rs_model *m, const rs_wjob_ok *a, const rs_wjob_ok *b) {
    for (uint32_t i = 0; i < m->input_count; i++)
        for (uint32_t j = 1; j < m->inputs[i].rank; j++)
            if (a->dims[i][j] != b->dims[i][j]) return false;
    return true;
}

/* Runs items [a, b) as one batch; fills final with the model's outputs in
 * spec order. Returns 0 or -(rs_status) with why. */
static int run_segment(rs_winstance *inst, rs_wjob *job, uint32_t a, uint32_t b,
                       rs_tensor_list *final, char *why, size_t why_bytes) {
    rs_wmodel *wm = inst->model;
    const rs_model *m = &wm->m;
    uint32_t rows = 0;
    for (uint32_t k = a; k < b; k++) rows += job->ok[k].rows;
    rs_stage_arena_reset(&inst->arena);
    rs_tensor_list io = {.count = m->input_count};
    for (uint32_t i = 0; i < m->input_count; i++) {
        rs_tensor_view *t = &io.t[i];
        t->name = rs_str_c(m->inputs[i].name);
        t->dtype = m->inputs[i].dtype;
        t->rank = m->inputs[i].rank;
        memcpy(t->dims, job->ok[a].dims[i], sizeof(int64_t) * t->rank);
        t->dims[0] = rows;
        t->data = job->in_buf[i] + job->ok[a].in_off[i];
        t->byte_len = 0;
        for (uint32_t k = a; k < b; k++) t->byte_len += job->ok[k].in_bytes[i];
    }
    int rc = 0;
    if (m->pre_count > 0)
        rc = wm->pooled ? rs_stage_pool_run(wm->env.pool, inst->pool_slot, wm->pool_pre, &io,
                                            &inst->arena, why, why_bytes)
                        : rs_stage_pipeline_run(wm->pre, &io, &inst->arena, why, why_bytes);
    if (rc != 0) return rc;

    uint32_t nb = m->backend_outputs;
    for (uint32_t o = 0; o < nb; o++) {
        rs_backend_output *out = &inst->outs[o];
        out->dtype = RS_DT_INVALID;
        out->rank = 0;
        out->data = NULL;
        out->byte_len = 0;
    }
    rs_err err = {0};
    if (wm->ops->infer(inst->state, rows, io.t, io.count, inst->outs, nb, &err) != 0) {
        snprintf(why, why_bytes, "model %s/%s: backend %s failed: %s", m->name, wm->version_str,
                 wm->ops->name, err.msg);
        return -RS_E_BACKEND;
    }
    rs_tensor_list post = {.count = nb};
    for (uint32_t o = 0; o < nb; o++) {
        const rs_backend_output *out = &inst->outs[o];
        rs_tensor_view *t = &post.t[o];
        t->name = rs_str_c(m->outputs[o].name);
        t->dtype = out->dtype;
        t->rank = out->rank;
        memcpy(t->dims, out->dims, sizeof(t->dims));
        t->data = out->data;
        t->byte_len = out->byte_len;
    }
    if (m->post_count > 0)
        rc = wm->pooled ? rs_stage_pool_run(wm->env.pool, inst->pool_slot, wm->pool_post, &post,
                                            &inst->arena, why, why_bytes)
                        : rs_stage_pipeline_run(wm->post, &post, &inst->arena, why, why_bytes);
    if (rc != 0) return rc;

    final->count = m->output_count;
    for (uint32_t o = 0; o < m->output_count; o++) {
        const rs_tensor_spec *s = &m->outputs[o];
        const rs_tensor_view *t = find_input(&post, s->name);
        if (!t || t->dtype != s->dtype || t->rank != s->rank || t->rank < 1 || t->dims[0] != rows) {
            snprintf(why, why_bytes,
                     "model %s/%s: output '%s' %s (the spec says %s with %u dims, batch %u)", m->name,
                     wm->version_str, s->name,
                     !t ? "was not produced" : "does not match its spec", rs_dtype_name(s->dtype),
                     s->rank, rows);
            return -RS_E_INTERNAL;
        }
        final->t[o] = *t;
    }
    return 0;
}

/* The next `rows` rows of t starting at *cursor (advanced). */
static int slice_rows(const rs_tensor_view *t, uint32_t seg_rows, const uint8_t **cursor,
                      uint32_t rows, rs_tensor_view *out) {
    *out = *t;
    out->dims[0] = rows;
    out->data = *cursor;
    size_t es = rs_dtype_size(t->dtype);
    if (es) {
        out->byte_len = t->byte_len / seg_rows * rows;
    } else { /* BYTES: walk the length prefixes */
        int64_t per_row = rs_tensor_elements(t) / seg_rows;
        const uint8_t *p = *cursor, *end = t->data + t->byte_len;
        for (int64_t e = 0; e < per_row * rows; e++) {
            uint32_t len;
            if (end - p < 4) return -1;
            memcpy(&len, p, 4);
            if ((uint64_t)(end - p - 4) < len) return -1;
            p += 4 + len;
        }
        out->byte_len = (uint64_t)(p - *cursor);
    }
    *cursor += out->byte_len;
    return 0;
}

static void finish_error_frame(rs_wjob *job, rs_status code, const char *msg) {
    job->resp_len = rs_encode_error(job->resp, job->resp_cap, job->request_id, code, msg);
    RS_ASSERT(job->resp_len > 0);
}

static void execute_infer(rs_winstance *inst, rs_wjob *job) {
    char why[RS_MAX_ERROR_MSG_BYTES];
    if (job->n_ok == 0) { /* validation failed on the loop */
        const rs_wjob_err *e = &job->err[0];
        finish_error_frame(job, (rs_status)e->status, err_msg(job, e));
        return;
    }
    rs_tensor_list final;
    int rc = run_segment(inst, job, 0, 1, &final, why, sizeof(why));
    if (rc != 0) {
        finish_error_frame(job, (rs_status)-rc, why);
        return;
    }
    rs_infer_response r = {.model = rs_str_c(job->model->m.name),
                           .version = rs_str_c(job->model->version_str),
                           .id = rs_str_c(job->req_id)};
    if (job->n_want == 0) {
        r.outputs = final;
    } else {
        r.outputs.count = job->n_want;
        for (uint32_t i = 0; i < job->n_want; i++) r.outputs.t[i] = final.t[job->want[i]];
    }
    job->resp_len = rs_encode_infer_response(job->resp, job->resp_cap, job->request_id, 0, &r);
    if (job->resp_len == 0)
        finish_error_frame(job, RS_E_INTERNAL, "the response exceeds the worker's reply buffer");
}

void rs_wjob_execute(rs_winstance *inst, rs_wjob *job) {
    if (job->kind == RS_WJOB_INFER) {
        execute_infer(inst, job);
        return;
    }
    const rs_model *m = &job->model->m;
    rs_fw w;
    rs_fw_init(&w, job->resp, job->resp_cap);
    rs_fw_batch_response_begin(&w, job->request_id, job->n_ok + job->n_err);
    for (uint32_t i = 0; i < job->n_err; i++) {
        const rs_wjob_err *e = &job->err[i];
        rs_fw_batch_response_err(&w, e->item_id, (rs_status)e->status, err_msg(job, e));
    }
    char why[RS_MAX_ERROR_MSG_BYTES];
    for (uint32_t a = 0; a < job->n_ok;) {
        uint32_t b = a + 1;
        while (m->batchable && b < job->n_ok && same_shape(m, &job->ok[a], &job->ok[b])) b++;
        rs_tensor_list final;
        int rc = run_segment(inst, job, a, b, &final, why, sizeof(why));
        uint32_t seg_rows = 0;
        for (uint32_t k = a; k < b; k++) seg_rows += job->ok[k].rows;
        const uint8_t *cursor[RS_MAX_TENSORS];
        for (uint32_t o = 0; rc == 0 && o < final.count; o++) cursor[o] = final.t[o].data;
        for (uint32_t k = a; k < b; k++) {
            if (rc != 0) {
                rs_fw_batch_response_err(&w, job->ok[k].item_id, (rs_status)-rc, why);
                continue;
            }
            rs_tensor_list item = {.count = final.count};
            bool bad = false;
            for (uint32_t o = 0; o < final.count; o++)
                bad |= slice_rows(&final.t[o], seg_rows, &cursor[o], job->ok[k].rows, &item.t[o]) != 0;
            if (bad)
                rs_fw_batch_response_err(&w, job->ok[k].item_id, RS_E_INTERNAL,
                                         "an output's BYTES elements do not cover its rows");
            else
                rs_fw_batch_response_ok(&w, job->ok[k].item_id, &item);
        }
        a = b;
    }
    job->resp_len = rs_fw_finish(&w);
    if (job->resp_len == 0) {
        snprintf(why, sizeof(why), "the batch's response exceeds the worker's %zu-byte reply buffer",
                 job->resp_cap);
        finish_error_frame(job, RS_E_OVERLOADED, why);
    }
}

/* ---- compute threads ---- */

static void job_done_post(rs_loop *loop, void *arg) {
    rs_wjob *job = arg;
    job->model->env.done(loop, job);
}

static void *compute_main(void *arg) {
    rs_winstance *inst = arg;
    rs_wmodel *wm = inst->model;
    char name[16];
    snprintf(name, sizeof(name), "rs-%.8s-%u", wm->m.name, inst->index);
    pthread_setname_np(pthread_self(), name);
    if (inst->has_entry) {
        rs_topo_binding b;
        rs_plan_apply_entry(NULL, &inst->entry, &b);
    }
    for (;;) {
        pthread_mutex_lock(&inst->mu);
        while (inst->q_count == 0 && !inst->stop) pthread_cond_wait(&inst->cv, &inst->mu);
        if (inst->q_count == 0) {
            pthread_mutex_unlock(&inst->mu);
            break;
        }
        rs_wjob *job = inst->queue[inst->q_head];
        inst->q_head = (inst->q_head + 1) % wm->env.queue_depth;
        inst->q_count--;
        pthread_mutex_unlock(&inst->mu);
        rs_wjob_execute(inst, job);
        /* The loop's post queue holds every job slot, so EAGAIN is brief;
         * once stopping, the loop may be gone: drop instead of spinning. */
        while (rs_loop_post(wm->env.loop, job_done_post, job) == -EAGAIN) {
            if (__atomic_load_n(&inst->stop, __ATOMIC_ACQUIRE)) break;
            usleep(50);
        }
    }
    return NULL;
}

void rs_wmodel_submit(rs_wjob *job) {
    rs_winstance *inst = &job->model->inst[job->instance];
    pthread_mutex_lock(&inst->mu);
    RS_ASSERT(inst->q_count < job->model->env.queue_depth);
    inst->queue[(inst->q_head + inst->q_count) % job->model->env.queue_depth] = job;
    inst->q_count++;
    pthread_cond_signal(&inst->cv);
    pthread_mutex_unlock(&inst->mu);
}

/* ---- load / free ---- */

static _Atomic uint32_t next_pool_slot;

static void free_instance(rs_wmodel *wm, rs_winstance *inst) {
    if (inst->thread_started) {
        pthread_mutex_lock(&inst->mu);
        __atomic_store_n(&inst->stop, true, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&inst->cv);
        pthread_mutex_unlock(&inst->mu);
        pthread_join(inst->thread, NULL);
    }
    if (inst->state) wm->ops->unload(inst->state);
    for (uint32_t j = 0; inst->jobs && j < wm->env.queue_depth; j++) {
        rs_wjob *job = &inst->jobs[j];
        free(job->ok);
        free(job->err);
        free(job->msg_pool);
        free(job->resp);
        for (uint32_t i = 0; i < RS_MODEL_MAX_IO; i++) free(job->in_buf[i]);
    }
    free(inst->jobs);
    free(inst->free);
    free(inst->queue);
    for (uint32_t o = 0; o < RS_MODEL_MAX_IO; o++) free(inst->outs[o].buf);
    rs_stage_arena_free(&inst->arena);
    pthread_mutex_destroy(&inst->mu);
    pthread_cond_destroy(&inst->cv);
}

void rs_wmodel_free(rs_wmodel *wm) {
    if (!wm) return;
    for (uint32_t i = 0; i < wm->n_inst; i++) free_instance(wm, &wm->inst[i]);
    rs_stage_pipeline_free(wm->pre);
    rs_stage_pipeline_free(wm->post);
    if (wm->pooled && wm->env.pool) {
        if (wm->m.pre_count) rs_stage_pool_unload(wm->env.pool, wm->pool_pre);
        if (wm->m.post_count) rs_stage_pool_unload(wm->env.pool, wm->pool_post);
    }
    free(wm);
}

static int alloc_job(rs_wmodel *wm, rs_winstance *inst, rs_wjob *job, rs_err *err) {
    const rs_model *m = &wm->m;
    uint64_t var = wm->env.variable_io_bytes;
    job->model = wm;
    job->instance = inst->index;
    job->ok = calloc(m->max_batch_size, sizeof(*job->ok));
    job->err = calloc(RS_MAX_BATCH_ITEMS, sizeof(*job->err));
    job->msg_pool = malloc(RS_WMODEL_MSG_POOL_BYTES);
    bool bad = !job->ok || !job->err || !job->msg_pool;
    uint64_t out_total = 0;
    for (uint32_t i = 0; i < m->input_count && !bad; i++) {
        job->in_cap[i] = io_bytes(&m->inputs[i], m->max_batch_size, var);
        bad = !(job->in_buf[i] = malloc(job->in_cap[i] ? job->in_cap[i] : 1));
    }
    for (uint32_t o = 0; o < m->output_count; o++)
        out_total += io_bytes(&m->outputs[o], m->max_batch_size, var);
    /* reply: data + per OK item and tensor metadata + error items + header */
    uint64_t per_tensor = 2 + RS_MAX_NAME_BYTES + 8 + 8 * RS_MAX_RANK + 8 + 16;
    job->resp_cap = out_total + (uint64_t)m->max_batch_size * (16 + m->output_count * per_tensor) +
                    (uint64_t)RS_MAX_BATCH_ITEMS * 16 + RS_WMODEL_MSG_POOL_BYTES +
                    RS_MAX_ERROR_MSG_BYTES + 4096;
    if (!bad) bad = !(job->resp = malloc(job->resp_cap));
    if (bad) {
        rs_err_set(err, "model %s/%s: out of memory for job slots", m->name, wm->version_str);
        return -1;
    }
    return 0;
}

static int load_instance(rs_wmodel *wm, rs_winstance *inst, uint32_t index, const rs_plan *plan,
                         int plan_model, rs_err *err) {
    const rs_model *m = &wm->m;
    uint32_t q = wm->env.queue_depth;
    inst->model = wm;
    inst->index = index;
    pthread_mutex_init(&inst->mu, NULL);
    pthread_cond_init(&inst->cv, NULL);
    inst->pool_slot = next_pool_slot++;
    for (int e = 0; plan && plan_model >= 0 && e < plan->entry_count; e++) {
        const rs_plan_entry *pe = &plan->entries[e];
        if (pe->role == RS_PLAN_WORKER && pe->model == plan_model && pe->instance == (int)index) {
            inst->entry = *pe;
            inst->has_entry = true;
        }
    }
    if (wm->ops->load(m, &inst->state, err) != 0) {
        inst->state = NULL;
        rs_err_prefix(err, "model %s/%s instance %u", m->name, wm->version_str, index);
        return -1;
    }
    if (rs_stage_arena_init(&inst->arena, wm->env.stage_arena_bytes, err) != 0) return -1;
    for (uint32_t o = 0; o < m->backend_outputs; o++) {
        uint64_t cap = io_bytes(&m->outputs[o], m->max_batch_size, wm->env.variable_io_bytes);
        inst->outs[o].capacity_bytes = cap;
        if (!(inst->outs[o].buf = aligned_alloc(64, (cap + 63) & ~(uint64_t)63))) {
            rs_err_set(err, "model %s/%s: out of memory for output buffers", m->name, wm->version_str);
            return -1;
        }
    }
    inst->jobs = calloc(q, sizeof(*inst->jobs));
    inst->free = calloc(q, sizeof(*inst->free));
    inst->queue = calloc(q, sizeof(*inst->queue));
    if (!inst->jobs || !inst->free || !inst->queue) {
        rs_err_set(err, "model %s/%s: out of memory", m->name, wm->version_str);
        return -1;
    }
    for (uint32_t j = 0; j < q; j++) {
        if (alloc_job(wm, inst, &inst->jobs[j], err) != 0) return -1;
        inst->free[inst->n_free++] = &inst->jobs[q - 1 - j];
    }
    return 0;
}

rs_wmodel *rs_wmodel_load(const rs_model *m, const rs_wmodel_env *env, const rs_plan *plan,
                          int plan_model, rs_err *err) {
    rs_wmodel *wm = calloc(1, sizeof(*wm));
    if (!wm) {
        rs_err_set(err, "model %s: out of memory", m->name);
        return NULL;
    }
    wm->m = *m;
    wm->m.metadata_json = NULL; /* owned by the registry */
    wm->env = *env;
    snprintf(wm->version_str, sizeof(wm->version_str), "%u", m->version);
    wm->ops = rs_backend_find(m->backend);
    if (!wm->ops) {
        rs_err_set(err, "%s: backend '%s' is not built in and no plugin provides it", m->file,
                   m->backend);
        free(wm);
        return NULL;
    }
    if (m->instances < 1 || m->instances > RS_WMODEL_MAX_INSTANCES) {
        rs_err_set(err, "%s: instances: %u: a worker runs 1..%d", m->file, m->instances,
                   RS_WMODEL_MAX_INSTANCES);
        free(wm);
        return NULL;
    }
    char what[RS_MAX_NAME_BYTES + 32];
    wm->pooled = m->stages == RS_STAGES_POOL;
    if (wm->pooled) {
        RS_ASSERT(env->pool != NULL);
        snprintf(what, sizeof(what), "%s/%u pre", m->name, m->version);
        if (m->pre_count &&
            rs_stage_pool_load(env->pool, m->pre, m->pre_count, m->dir, what, &wm->pool_pre, err) != 0) {
            free(wm);
            return NULL;
        }
        snprintf(what, sizeof(what), "%s/%u post", m->name, m->version);
        if (m->post_count &&
            rs_stage_pool_load(env->pool, m->post, m->post_count, m->dir, what, &wm->pool_post, err) != 0) {
            if (m->pre_count) rs_stage_pool_unload(env->pool, wm->pool_pre);
            free(wm);
            return NULL;
        }
    } else {
        snprintf(what, sizeof(what), "%s/%u pre", m->name, m->version);
        wm->pre = rs_stage_pipeline_compile(m->pre, m->pre_count, m->dir, what, err);
        snprintf(what, sizeof(what), "%s/%u post", m->name, m->version);
        if (wm->pre) wm->post = rs_stage_pipeline_compile(m->post, m->post_count, m->dir, what, err);
        if (!wm->pre || !wm->post) {
            rs_err_prefix(err, "%s", m->file);
            rs_wmodel_free(wm);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < m->instances; i++) {
        wm->n_inst = i + 1;
        if (load_instance(wm, &wm->inst[i], i, plan, plan_model, err) != 0) {
            rs_wmodel_free(wm);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < wm->n_inst; i++) {
        rs_winstance *inst = &wm->inst[i];
        if (pthread_create(&inst->thread, NULL, compute_main, inst) != 0) {
            rs_err_set(err, "model %s/%s: cannot start a compute thread", m->name, wm->version_str);
            rs_wmodel_free(wm);
            return NULL;
        }
        inst->thread_started = true;
    }
    return wm;
}

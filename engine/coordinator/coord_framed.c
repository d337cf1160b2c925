/* coord_framed.c — the framed-protocol front door.
 *
 * Clients send INFER_REQUEST (answered by INFER_RESPONSE or ERROR), SUBMIT
 * (answered at once by SUBMIT_ACK with an id) and POLL; anyone may PING.
 * Workers send REGISTER / HEARTBEAT / DEREGISTER on the same port: the core
 * that receives one applies it to its own router and posts it to every
 * other core, so each core's membership converges (shared-nothing). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/clock.h"
#include "engine/common/log.h"
#include "engine/coordinator/coord.h"
#include "io/framed.h"

/* ---- membership broadcast ------------------------------------------------------ */

/* A registration with its strings copied out of the receive buffer. */
typedef struct rs_member_msg {
    rs_coord *co;
    rs_msg_type type;
    char worker_id[RS_MAX_STR_BYTES + 1];
    char host[RS_MAX_STR_BYTES + 1];
    char token[RS_MAX_STR_BYTES + 1];
    char names[RS_MAX_WORKER_MODELS][RS_MAX_NAME_BYTES + 1];
    char versions[RS_MAX_WORKER_MODELS][32];
    rs_register_msg reg;
    rs_heartbeat_msg hb;
    _Atomic uint32_t refs;
} rs_member_msg;

static void rs_member_apply(rs_loop *loop, void *arg) {
    rs_member_msg *mm = arg;
    rs_core *core = rs_loop_udata(loop);
    rs_err err = {{0}};
    switch (mm->type) {
    case RS_MSG_REGISTER: rs_router_register(core->router, &mm->reg, &err); break;
    case RS_MSG_HEARTBEAT: rs_router_heartbeat(core->router, &mm->hb); break;
    case RS_MSG_DEREGISTER: rs_router_deregister(core->router, rs_str_c(mm->worker_id)); break;
    default: break;
    }
    if (atomic_fetch_sub(&mm->refs, 1) == 1) free(mm);
}

static void rs_member_post(rs_coord *co, rs_member_msg *mm, uint32_t skip_core) {
    if (atomic_load(&co->stop)) { /* loops are stopping: membership no longer matters */
        free(mm);
        return;
    }
    atomic_store(&mm->refs, 1);
    for (uint32_t i = 0; i < co->n_cores; i++) {
        if (i == skip_core) continue;
        atomic_fetch_add(&mm->refs, 1);
        if (rs_loop_post(co->cores[i].loop, rs_member_apply, mm) != 0) {
            atomic_fetch_sub(&mm->refs, 1);
            RS_WARN("core %u: membership update dropped (post queue full)", i);
        }
    }
    if (atomic_fetch_sub(&mm->refs, 1) == 1) free(mm);
}

static rs_member_msg *rs_member_new(rs_coord *co, rs_msg_type type) {
    rs_member_msg *mm = calloc(1, sizeof(*mm));
    if (!mm) return NULL;
    mm->co = co;
    mm->type = type;
    return mm;
}

void rs_coord_broadcast_register(rs_coord *co, const rs_register_msg *m, uint32_t skip_core) {
    rs_member_msg *mm = rs_member_new(co, RS_MSG_REGISTER);
    if (!mm) return;
    mm->reg = *m;
    rs_str_copy(mm->worker_id, sizeof(mm->worker_id), m->worker_id);
    rs_str_copy(mm->host, sizeof(mm->host), m->host);
    rs_str_copy(mm->token, sizeof(mm->token), m->token);
    mm->reg.worker_id = rs_str_c(mm->worker_id);
    mm->reg.host = rs_str_c(mm->host);
    mm->reg.token = rs_str_c(mm->token);
    for (uint32_t i = 0; i < m->n_models && i < RS_MAX_WORKER_MODELS; i++) {
        rs_str_copy(mm->names[i], sizeof(mm->names[i]), m->models[i].name);
        rs_str_copy(mm->versions[i], sizeof(mm->versions[i]), m->models[i].version);
        mm->reg.models[i].name = rs_str_c(mm->names[i]);
        mm->reg.models[i].version = rs_str_c(mm->versions[i]);
    }
    rs_member_post(co, mm, skip_core);
}

void rs_coord_broadcast_heartbeat(rs_coord *co, const rs_heartbeat_msg *m, uint32_t skip_core) {
    rs_member_msg *mm = rs_member_new(co, RS_MSG_HEARTBEAT);
    if (!mm) return;
    mm->hb = *m;
    rs_str_copy(mm->worker_id, sizeof(mm->worker_id), m->worker_id);
    mm->hb.worker_id = rs_str_c(mm->worker_id);
    rs_member_post(co, mm, skip_core);
}

void rs_coord_broadcast_deregister(rs_coord *co, rs_str worker_id) {
    rs_member_msg *mm = rs_member_new(co, RS_MSG_DEREGISTER);
    if (!mm) return;
    rs_str_copy(mm->worker_id, sizeof(mm->worker_id), worker_id);
    rs_member_post(co, mm, UINT32_MAX);
}

/* ---- per-connection state ---------------------------------------------------------- */

/* The worker id registered on a connection (for DEREGISTER, which carries none). */
typedef struct rs_fconn {
    char worker_id[RS_MAX_STR_BYTES + 1];
} rs_fconn;

/* ---- inference ---------------------------------------------------------------------- */

/* Copies the request's inputs into the request's arena (the receive buffer
 * is gone once on_data returns). */
static int rs_copy_inputs(rs_req *r, const rs_tensor_list *in, char *why, size_t why_bytes) {
    size_t used = 0;
    r->kreq.inputs.count = in->count;
    for (uint32_t i = 0; i < in->count; i++) {
        const rs_tensor_view *t = &in->t[i];
        size_t name_at = used;
        size_t data_at = (name_at + t->name.len + 7) & ~(size_t)7;
        size_t end = data_at + t->byte_len;
        if (end > r->arena_cap || t->byte_len > r->arena_cap) {
            snprintf(why, why_bytes, "request tensors need more than server.request_arena_bytes (%zu bytes)",
                     r->arena_cap);
            return -1;
        }
        memcpy(r->arena + name_at, t->name.ptr, t->name.len);
        memcpy(r->arena + data_at, t->data, t->byte_len);
        rs_tensor_view *d = &r->kreq.inputs.t[i];
        *d = *t;
        d->name.ptr = (const char *)r->arena + name_at;
        d->data = r->arena + data_at;
        used = (end + 7) & ~(size_t)7;
    }
    return 0;
}

static void rs_framed_infer(rs_core *core, rs_conn *c, const rs_frame_msg *m, bool async) {
    const rs_infer_request *q = &m->u.infer_req;
    uint64_t wire_id = m->hdr.request_id;
    rs_req *r = rs_req_alloc(core);
    if (!r) {
        uint32_t mi = core->co->n_models;
        char why[256];
        rs_coord_find_model(core->co, q->model, q->version, &mi, why, sizeof(why));
        rs_metrics_counter_add(core->ms, core->co->m_requests[mi * RS_RO_COUNT_ + RS_RO_OVERLOADED], 1);
        rs_framed_send_error(c, wire_id, RS_E_OVERLOADED, "overloaded: too many requests in flight (server.max_pending %u)",
                             core->co->cfg.max_pending);
        return;
    }
    r->origin = RS_ORIGIN_FRAMED;
    r->conn = rs_conn_get_id(c);
    r->wire_id = wire_id;
    rs_str_copy(r->id, sizeof(r->id), q->id);
    rs_str_copy(r->traceparent, sizeof(r->traceparent), q->traceparent);
    rs_str_copy(r->routing_key, sizeof(r->routing_key), q->routing_key);
    r->no_cache = (m->hdr.flags & RS_FRAME_F_NO_CACHE) != 0;
    if (q->priority > 0) {
        r->kreq.params.has_priority = true;
        r->kreq.params.priority = (uint32_t)q->priority;
    }
    if (q->timeout_us > 0) {
        r->kreq.params.has_timeout = true;
        r->kreq.params.timeout_us = q->timeout_us;
    }
    r->n_outputs_framed = q->n_outputs;
    for (uint32_t i = 0; i < q->n_outputs && i < RS_MAX_TENSORS; i++)
        rs_str_copy(r->outputs_framed[i], sizeof(r->outputs_framed[i]), q->outputs[i]);
    char why[256];
    r->model = rs_coord_find_model(core->co, q->model, q->version, &r->model_index, why, sizeof(why));
    if (!r->model) {
        rs_req_fail(core, r, RS_E_UNKNOWN_MODEL, "%s", why);
        return;
    }
    if (rs_copy_inputs(r, &q->inputs, why, sizeof(why)) != 0) {
        rs_req_fail(core, r, RS_E_INVALID_INPUT, "%s", why);
        return;
    }
    if (async) {
        uint64_t id = rs_async_reserve(core->co, RS_ORIGIN_ASYNC_FRAMED);
        if (!id) {
            rs_req_fail(core, r, RS_E_OVERLOADED, "too many asynchronous results pending (server.max_async_results %u)",
                        core->co->cfg.max_async_results);
            return;
        }
        r->origin = RS_ORIGIN_ASYNC_FRAMED;
        r->async_id = id;
        rs_framed_send_u64(c, RS_MSG_SUBMIT_ACK, wire_id, id);
    }
    rs_req_submit(core, r);
}

static void rs_framed_poll(rs_core *core, rs_conn *c, const rs_frame_msg *m) {
    size_t len = 0, json_len = 0;
    rs_status result = RS_OK;
    rs_status st = rs_async_lookup(core->co, m->u.u64, RS_ORIGIN_ASYNC_FRAMED, &result, core->scratch2,
                                   core->scratch2_bytes, &len, &json_len);
    if (st == RS_E_PENDING) {
        rs_framed_send_error(c, m->hdr.request_id, RS_E_PENDING, "request %" PRIu64 " is still running", m->u.u64);
    } else if (st != RS_OK) {
        rs_framed_send_error(c, m->hdr.request_id, RS_E_NOT_FOUND,
                             "no asynchronous request %" PRIu64 " (unknown, or its result expired)", m->u.u64);
    } else if (result != RS_OK) {
        rs_framed_send_error(c, m->hdr.request_id, result, "%.*s", (int)len, (const char *)core->scratch2);
    } else {
        /* The stored frame carries the async id as request id: rewrite to the poll's. */
        rs_frame_msg stored;
        char why[128];
        if (rs_frame_decode(core->scratch2, len, (uint32_t)core->scratch2_bytes, &stored, why, sizeof(why)) <= 0) {
            rs_framed_send_error(c, m->hdr.request_id, RS_E_INTERNAL, "stored result is corrupt: %s", why);
            return;
        }
        rs_framed_send_infer_response(c, m->hdr.request_id, stored.hdr.flags, &stored.u.infer_resp);
    }
}

/* ---- membership ------------------------------------------------------------------------ */

static void rs_framed_register(rs_core *core, rs_conn *c, const rs_frame_msg *m) {
    rs_err err = {{0}};
    int rc = rs_router_register(core->router, &m->u.reg, &err);
    if (rc < 0) {
        RS_WARN("registration of worker '%.*s' refused: %s", (int)m->u.reg.worker_id.len,
                m->u.reg.worker_id.ptr, err.msg);
        rs_framed_send_error(c, m->hdr.request_id, (rs_status)(-rc), "%s", err.msg);
        return;
    }
    rs_fconn *fc = rs_conn_udata(c);
    if (!fc) {
        fc = calloc(1, sizeof(*fc));
        rs_conn_set_udata(c, fc);
    }
    if (fc) rs_str_copy(fc->worker_id, sizeof(fc->worker_id), m->u.reg.worker_id);
    /* Every other core applies the same registration. */
    rs_coord_broadcast_register(core->co, &m->u.reg, core->index);
    /* The ACK tells the worker how often to heartbeat: three beats per window. */
    uint64_t beat_ms = core->co->rcfg.cluster.heartbeat_timeout_ms / 3;
    rs_framed_send_u64(c, RS_MSG_REGISTER_ACK, m->hdr.request_id, beat_ms < 100 ? 100 : beat_ms);
}

static int rs_coord_on_frame(rs_conn *c, const rs_frame_msg *m, void *arg) {
    (void)arg;
    rs_core *core = rs_conn_listener_udata(c);
    switch (m->hdr.type) {
    case RS_MSG_INFER_REQUEST: rs_framed_infer(core, c, m, false); break;
    case RS_MSG_SUBMIT: rs_framed_infer(core, c, m, true); break;
    case RS_MSG_POLL: rs_framed_poll(core, c, m); break;
    case RS_MSG_PING: rs_framed_send_u64(c, RS_MSG_PONG, m->hdr.request_id, m->u.u64); break;
    case RS_MSG_REGISTER: rs_framed_register(core, c, m); break;
    case RS_MSG_HEARTBEAT: {
        int rc = rs_router_heartbeat(core->router, &m->u.heartbeat);
        if (rc == -RS_E_NOT_FOUND) {
            rs_framed_send_error(c, m->hdr.request_id, RS_E_NOT_FOUND, "worker '%.*s' is not registered: register again",
                                 (int)m->u.heartbeat.worker_id.len, m->u.heartbeat.worker_id.ptr);
        } else {
            rs_coord_broadcast_heartbeat(core->co, &m->u.heartbeat, core->index);
        }
        break;
    }
    case RS_MSG_DEREGISTER: {
        rs_fconn *fc = rs_conn_udata(c);
        if (fc && fc->worker_id[0]) {
            RS_INFO("worker '%s' deregistered", fc->worker_id);
            rs_coord_broadcast_deregister(core->co, rs_str_c(fc->worker_id));
            fc->worker_id[0] = '\0';
        }
        break;
    }
    default: return rs_framed_reject_type(c, m);
    }
    return RS_FRAMED_CONTINUE;
}

static ssize_t rs_coord_framed_on_data(rs_conn *c, const uint8_t *data, size_t len) {
    rs_core *core = rs_conn_listener_udata(c);
    rs_framed_cfg cfg = {.on_frame = rs_coord_on_frame,
                         .max_payload_bytes = (uint32_t)core->co->cfg.max_frame_bytes};
    return rs_framed_on_data(c, data, len, &cfg);
}

static int rs_coord_framed_on_open(rs_conn *c) {
    rs_conn_set_udata(c, NULL); /* the loop preset the listener's udata */
    return 0;
}

static void rs_coord_framed_on_close(rs_conn *c, int err) {
    (void)err;
    free(rs_conn_udata(c));
    rs_conn_set_udata(c, NULL);
}

const rs_conn_ops rs_coord_framed_ops = {
    .on_open = rs_coord_framed_on_open,
    .on_data = rs_coord_framed_on_data,
    .on_close = rs_coord_framed_on_close,
};

/* pool_wire.h — the messages a worker and its `ringserve stage` processes
 * exchange over a pair of shm rings (internal to the stage pool).
 *
 * Every request gets exactly one response, in order; a compute thread has at
 * most one request outstanding per stage process, so the response ring
 * never fills. All integers little-endian (both ends are this host);
 * strings are u16 length + bytes; tensor data is 8-byte aligned.
 *   LOAD    u32 pipeline, str what, str base_dir, u32 n, n x (str name,
 *           u32 line, u32 n_params, n_params x (str key, str value))
 *   UNLOAD  u32 pipeline
 *   RUN     u64 job, u32 pipeline, tensor list
 *   QUIT    (nothing; no response)
 *   REPLY   u64 job (0 for LOAD/UNLOAD), i32 status (0 or -rs_status),
 *           str why, tensor list (RUN success only)
 * tensor list: u32 count, count x (str name, u32 dtype, u32 rank,
 *           rank x i64 dims, u64 byte_len, pad to 8, bytes, pad to 8) */
#ifndef RS_POOL_WIRE_H
#define RS_POOL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/model_registry/registry.h"
#include "io/tensor.h"
#include "workers/stages/stage.h"

enum {
    RS_POOL_MSG_LOAD = 1,
    RS_POOL_MSG_UNLOAD = 2,
    RS_POOL_MSG_RUN = 3,
    RS_POOL_MSG_QUIT = 4,
    RS_POOL_MSG_REPLY = 5,
};

/* A bounds-checked writer / reader; overflow / truncation is sticky. */
typedef struct rs_pw {
    uint8_t *buf; /* NULL: only count bytes */
    size_t cap, len;
    bool bad;
} rs_pw;

typedef struct rs_pr {
    const uint8_t *p;
    size_t len, off;
    bool bad;
} rs_pr;

void rs_pw_bytes(rs_pw *w, const void *p, size_t n);
void rs_pw_u32(rs_pw *w, uint32_t v);
void rs_pw_u64(rs_pw *w, uint64_t v);
void rs_pw_str(rs_pw *w, const char *s, size_t n);
void rs_pw_pad8(rs_pw *w);
void rs_pw_tensors(rs_pw *w, const rs_tensor_list *l);

uint32_t rs_pr_u32(rs_pr *r);
uint64_t rs_pr_u64(rs_pr *r);
/* Points at the string in place; copy with rs_pr_cstr for a NUL-terminated one. */
rs_str rs_pr_str(rs_pr *r);
void rs_pr_cstr(rs_pr *r, char *out, size_t out_bytes);
void rs_pr_pad8(rs_pr *r);
/* Tensor views into the message (names and data in place). */
void rs_pr_tensors(rs_pr *r, rs_tensor_list *l);

/* LOAD payload of a pipeline (write with buf NULL first to size it). */
void rs_pw_load(rs_pw *w, uint32_t pipeline, const char *what, const char *base_dir,
                const rs_stage_spec *specs, uint32_t n);

#endif

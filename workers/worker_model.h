/* worker_model.h — one loaded model version inside a worker: its backend
 * instances, stage pipelines, compute threads, job slots and the code that
 * turns a batch into a response (internal to the worker process).
 *
 * Ownership: the loop thread owns a model's free job slots and fills jobs;
 * a compute thread owns a job from rs_wmodel_submit until it posts the job
 * back (done_fn on the loop). Everything is allocated by rs_wmodel_load. */
#ifndef RS_WORKER_MODEL_H
#define RS_WORKER_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/model_registry/registry.h"
#include "io/frame.h"
#include "io/loop.h"
#include "topo/plan.h"
#include "workers/backend.h"
#include "workers/stages/pool.h"
#include "workers/stages/stage.h"

#define RS_WMODEL_MAX_INSTANCES 16
#define RS_WMODEL_MSG_POOL_BYTES (32u << 10)

typedef enum rs_wjob_kind { RS_WJOB_BATCH = 0, RS_WJOB_INFER = 1 } rs_wjob_kind;

/* An item that passed validation: its rows and where its inputs sit. */
typedef struct rs_wjob_ok {
    uint64_t item_id;
    uint32_t rows;
    uint64_t in_off[RS_MODEL_MAX_IO];
    uint64_t in_bytes[RS_MODEL_MAX_IO];
    int64_t dims[RS_MODEL_MAX_IO][RS_MAX_RANK]; /* dims[i][0] == rows */
} rs_wjob_ok;

/* An item answered with an error without running. */
typedef struct rs_wjob_err {
    uint64_t item_id;
    uint32_t status;
    uint32_t msg_off, msg_len; /* into msg_pool */
} rs_wjob_err;

struct rs_wmodel;

typedef struct rs_wjob {
    struct rs_wmodel *model;
    uint32_t instance;
    rs_wjob_kind kind;
    rs_conn_id conn;
    uint64_t request_id;
    /* INFER_REQUEST: the client's id string and requested outputs */
    char req_id[RS_MAX_STR_BYTES + 1];
    uint32_t n_want;
    uint8_t want[RS_MODEL_MAX_IO]; /* output indexes, in request order */
    uint32_t n_ok, n_err, rows;
    rs_wjob_ok *ok;   /* max_batch_size */
    rs_wjob_err *err; /* RS_MAX_BATCH_ITEMS */
    char *msg_pool;
    uint32_t msg_used;
    uint8_t *in_buf[RS_MODEL_MAX_IO];
    uint64_t in_cap[RS_MODEL_MAX_IO], in_used[RS_MODEL_MAX_IO];
    uint8_t *resp; /* the encoded reply frame */
    size_t resp_cap, resp_len;
} rs_wjob;

typedef struct rs_winstance {
    struct rs_wmodel *model;
    uint32_t index;
    void *state; /* backend instance */
    pthread_t thread;
    bool thread_started;
    rs_plan_entry entry; /* where to pin; valid when has_entry */
    bool has_entry;
    uint32_t pool_slot; /* which stage process serves this thread */
    /* loop -> compute: bounded FIFO of jobs (capacity queue_depth) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rs_wjob **queue;
    uint32_t q_head, q_count;
    bool stop;
    /* loop-owned */
    rs_wjob *jobs;     /* queue_depth slots */
    rs_wjob **free;    /* stack of free slots */
    uint32_t n_free;
    /* compute-owned */
    rs_stage_arena arena;
    rs_backend_output outs[RS_MODEL_MAX_IO];
} rs_winstance;

/* Called on the loop thread when a job's response is ready in job->resp. */
typedef void (*rs_wjob_done_fn)(rs_loop *loop, rs_wjob *job);

typedef struct rs_wmodel_env {
    rs_loop *loop;
    rs_wjob_done_fn done;
    rs_stage_pool *pool; /* NULL until a pooled model needs it */
    uint32_t queue_depth;
    uint64_t stage_arena_bytes;
    uint64_t variable_io_bytes;
} rs_wmodel_env;

typedef struct rs_wmodel {
    rs_model m; /* a copy: the registry may go away */
    char version_str[16];
    const rs_backend_ops *ops;
    rs_wmodel_env env;
    bool pooled;
    rs_stage_pipeline *pre, *post; /* inline */
    uint32_t pool_pre, pool_post;  /* pooled */
    bool retired;                  /* no new jobs; freed once idle */
    uint32_t in_flight;            /* jobs out (loop-owned) */
    uint32_t n_inst;
    rs_winstance inst[RS_WMODEL_MAX_INSTANCES];
} rs_wmodel;

/* Loads m: backend instances, pipelines (inline or in env->pool), buffers;
 * starts one compute thread per instance, pinned to plan entries matching
 * plan_model (index into the plan's models; -1: unpinned). NULL with err. */
rs_wmodel *rs_wmodel_load(const rs_model *m, const rs_wmodel_env *env, const rs_plan *plan,
                          int plan_model, rs_err *err);
/* Stops the threads (after their queues drain) and frees everything. */
void rs_wmodel_free(rs_wmodel *wm);

/* Loop thread: a free job slot on the least-loaded instance, or NULL when
 * every slot is taken (overload). The job comes back reset. */
rs_wjob *rs_wmodel_job_get(rs_wmodel *wm);
/* Loop thread: returns a slot after its response was sent. */
void rs_wmodel_job_put(rs_wjob *job);

/* Loop thread: checks one item's tensors against the model's inputs and,
 * when they fit, copies them into the job. Returns RS_OK, or a status with
 * a sentence in why (the item is then recorded as an error item). */
rs_status rs_wjob_add_item(rs_wjob *job, uint64_t item_id, const rs_tensor_list *inputs,
                           char *why, size_t why_bytes);
/* Records an error item (message kept in the job's pool, cut when full). */
void rs_wjob_add_error(rs_wjob *job, uint64_t item_id, rs_status status, const char *msg);

/* Loop thread: queues a job that has runnable items to its instance's
 * compute thread (never blocks: the slot count bounds the queue). */
void rs_wmodel_submit(rs_wjob *job);
/* Runs every runnable item of the job and encodes the reply into job->resp
 * (BATCH_RESPONSE, INFER_RESPONSE, or ERROR). Called by compute threads;
 * the loop calls it directly for jobs whose items all failed validation. */
void rs_wjob_execute(rs_winstance *inst, rs_wjob *job);

/* Parses "" (latest) or a decimal version; 0 = latest, -1 when malformed. */
int64_t rs_wmodel_parse_version(rs_str v);

#endif

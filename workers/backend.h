/* backend.h — the versioned C interface between the worker and a model
 * backend: load, infer a batch, unload.
 *
 * Why an ABI and not just functions: backends may be plugins (shared objects
 * dlopen'ed from --backend-dir) built separately from the server, so the
 * table they export carries RS_BACKEND_ABI_VERSION in its first field, and a
 * plugin built for another version is refused with one clear line before
 * any of its other fields are read.
 *
 * Tensors cross the interface as views: the worker passes its batch buffers
 * (one contiguous tensor per model input, dims[0] = batch rows) without
 * copying, and gives each output a buffer it allocated at start-up. The
 * backend either writes into that buffer or, when the output is one of its
 * inputs unchanged (identity), points the output's data at the input bytes.
 *
 * Threading: a loaded instance (the `void *` state) is used by one compute
 * thread at a time; the worker loads `instances` states per model. Load may
 * allocate; infer never allocates.
 *
 * A plugin exports one symbol:
 *     const rs_backend_ops *rs_backend_entry(void);
 * and links nothing from ringserve but may call rs_* symbols of the binary
 * (it is built with export_dynamic). */
#ifndef RS_BACKEND_H
#define RS_BACKEND_H

#include <stdint.h>

#include "engine/common/err.h"
#include "engine/model_registry/registry.h"
#include "io/tensor.h"

#define RS_BACKEND_ABI_VERSION 1u
#define RS_BACKEND_ENTRY_SYMBOL "rs_backend_entry"
#define RS_BACKEND_MAX 16 /* built-ins + plugins */

/* One output of a batch. The worker fills buf/capacity_bytes; the backend
 * fills dtype, rank, dims (dims[0] = batch rows), data and byte_len. */
typedef struct rs_backend_output {
    uint8_t *buf;            /* worker-owned, capacity_bytes long */
    uint64_t capacity_bytes; /* too small -> infer fails, names the output */
    rs_dtype dtype;
    uint32_t rank;
    int64_t dims[RS_MAX_RANK];
    const uint8_t *data; /* == buf, or an input's data (no copy) */
    uint64_t byte_len;
} rs_backend_output;

typedef struct rs_backend_ops {
    uint32_t abi_version; /* RS_BACKEND_ABI_VERSION; first field, forever */
    const char *name;     /* what model.yaml's `backend:` names */
    /* Loads one instance of model m (weights from m->dir), sized for
     * m->max_batch_size rows. Returns 0 and *state, or -1 with err naming
     * the file and the problem (missing, wrong size, bad header, shape
     * mismatch with model.yaml). */
    int (*load)(const rs_model *m, void **state, rs_err *err);
    /* Runs one batch of `rows` rows (1..max_batch_size). inputs[i] follows
     * m->inputs[i] (already checked by the worker against the spec);
     * outputs[i] follows m->outputs[i] for i < m->backend_outputs. Returns 0
     * or -1 with a sentence in err; the instance stays usable. */
    int (*infer)(void *state, uint32_t rows, const rs_tensor_view *inputs, uint32_t n_inputs,
                 rs_backend_output *outputs, uint32_t n_outputs, rs_err *err);
    void (*unload)(void *state);
} rs_backend_ops;

typedef const rs_backend_ops *(*rs_backend_entry_fn)(void);

/* Built-ins, always available. */
const rs_backend_ops *rs_backend_identity(void);
const rs_backend_ops *rs_backend_dense(void);

/* Finds a backend by name: built-ins first, then loaded plugins. NULL when
 * none. */
const rs_backend_ops *rs_backend_find(const char *name);

/* dlopens one plugin and registers it. Refuses (-1, err) a file that will
 * not load, lacks rs_backend_entry, has another ABI version ("<path>: backend
 * ABI version 2, this ringserve needs 1"), or reuses a registered name. */
int rs_backend_load_plugin(const char *path, rs_err *err);
/* Loads every *.so in dir (sorted); the first failure stops and is
 * returned. */
int rs_backend_load_dir(const char *dir, rs_err *err);
/* Unregisters and dlcloses every plugin (tests, shutdown). */
void rs_backend_unload_plugins(void);

/* Checks that every model the registry holds names a known backend; err
 * names the model.yaml and the backend. */
int rs_backend_check_model(const rs_model *m, rs_err *err);

#endif

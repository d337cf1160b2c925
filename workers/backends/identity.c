/* identity.c — returns its inputs as its outputs without copying: the
 * outputs point at the input bytes. Measures everything but the model. */
#include <stdlib.h>
#include <string.h>

#include "workers/backend.h"

typedef struct rs_identity {
    const rs_model *model;
} rs_identity;

static int rs_identity_load(const rs_model *m, void **state, rs_err *err) {
    if (m->backend_outputs > m->input_count) {
        rs_err_set(err, "%s: identity backend: %u outputs but only %u inputs", m->file,
                   m->backend_outputs, m->input_count);
        return -1;
    }
    for (uint32_t i = 0; i < m->backend_outputs; i++) {
        const rs_tensor_spec *in = &m->inputs[i], *out = &m->outputs[i];
        bool same = in->dtype == out->dtype && in->rank == out->rank;
        for (uint32_t d = 0; same && d < in->rank; d++) same = in->dims[d] == out->dims[d];
        if (!same) {
            rs_err_set(err, "%s: identity backend: output '%s' must have the dtype and shape of "
                       "input '%s'",
                       m->file, out->name, in->name);
            return -1;
        }
    }
    rs_identity *s = calloc(1, sizeof(*s));
    if (!s) {
        rs_err_set(err, "%s: out of memory", m->file);
        return -1;
    }
    s->model = m;
    *state = s;
    return 0;
}

static int rs_identity_infer(void *state, uint32_t rows, const rs_tensor_view *inputs,
                             uint32_t n_inputs, rs_backend_output *outputs, uint32_t n_outputs,
                             rs_err *err) {
    const rs_identity *s = state;
    if (n_outputs != s->model->backend_outputs || n_inputs < n_outputs) {
        rs_err_set(err, "identity: %u inputs and %u outputs given, model has %u and %u", n_inputs,
                   n_outputs, s->model->input_count, s->model->backend_outputs);
        return -1;
    }
    for (uint32_t i = 0; i < n_outputs; i++) {
        const rs_tensor_view *in = &inputs[i];
        rs_backend_output *out = &outputs[i];
        if (in->rank == 0 || in->dims[0] != (int64_t)rows) {
            rs_err_set(err, "identity: input '%s' has %lld rows, batch has %u",
                       s->model->inputs[i].name, in->rank ? (long long)in->dims[0] : 0LL, rows);
            return -1;
        }
        out->dtype = in->dtype;
        out->rank = in->rank;
        memcpy(out->dims, in->dims, sizeof(out->dims));
        out->data = in->data;
        out->byte_len = in->byte_len;
    }
    return 0;
}

static void rs_identity_unload(void *state) { free(state); }

const rs_backend_ops *rs_backend_identity(void) {
    static const rs_backend_ops ops = {
        .abi_version = RS_BACKEND_ABI_VERSION,
        .name = "identity",
        .load = rs_identity_load,
        .infer = rs_identity_infer,
        .unload = rs_identity_unload,
    };
    return &ops;
}

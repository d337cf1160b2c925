/* kserve_validate.c — request tensors vs. the model registry's input specs,
 * with one sentence naming the input and the mismatch. */
#include <stdio.h>
#include <string.h>

#include "engine/kserve/kserve.h"
#include "engine/model_registry/registry.h"

static const char *dims_text(const int64_t *dims, uint32_t rank, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

int rs_kserve_validate(const rs_tensor_list *inputs, const rs_model *m, uint32_t *rows,
                       rs_err *err) {
    for (uint32_t i = 0; i < inputs->count; i++) {
        const rs_tensor_view *t = &inputs->t[i];
        bool known = false;
        for (uint32_t k = 0; k < m->input_count && !known; k++)
            known = strlen(m->inputs[k].name) == t->name.len &&
                    memcmp(m->inputs[k].name, t->name.ptr, t->name.len) == 0;
        if (!known) {
            rs_err_set(err, "model '%s' has no input '%.*s'", m->name, (int)t->name.len,
                       t->name.ptr);
            return -1;
        }
    }
    int64_t batch = -1;
    const char *batch_from = NULL;
    for (uint32_t k = 0; k < m->input_count; k++) {
        const rs_tensor_spec *spec = &m->inputs[k];
        const rs_tensor_view *t = rs_tensor_find(inputs, spec->name, strlen(spec->name));
        if (!t) {
            rs_err_set(err, "input '%s' is missing (model '%s' needs it)", spec->name, m->name);
            return -1;
        }
        if (t->dtype != spec->dtype) {
            rs_err_set(err, "input '%s': datatype %s but model '%s' expects %s", spec->name,
                       rs_dtype_name(t->dtype), m->name, rs_dtype_name(spec->dtype));
            return -1;
        }
        bool ok = t->rank == spec->rank;
        for (uint32_t d = 0; ok && d < t->rank; d++)
            ok = spec->dims[d] == -1 || spec->dims[d] == t->dims[d];
        if (!ok) {
            char a[160], b[160];
            rs_err_set(err, "input '%s': shape %s does not match model '%s' shape %s", spec->name,
                       dims_text(t->dims, t->rank, a, sizeof(a)), m->name,
                       dims_text(spec->dims, spec->rank, b, sizeof(b)));
            return -1;
        }
        int64_t r = t->rank ? t->dims[0] : 1;
        if (batch_from && r != batch) {
            rs_err_set(err, "inputs disagree on the batch size: '%s' has %lld rows, '%s' has %lld",
                       batch_from, (long long)batch, spec->name, (long long)r);
            return -1;
        }
        batch = r;
        batch_from = spec->name;
    }
    if (!batch_from) { /* a model without inputs */
        *rows = 1;
        return 0;
    }
    uint32_t max = m->max_batch_size ? m->max_batch_size : 1;
    if (batch < 1) {
        rs_err_set(err, "input '%s': batch of %lld rows (at least 1 is needed)", batch_from,
                   (long long)batch);
        return -1;
    }
    if (batch > (int64_t)max) {
        rs_err_set(err, "input '%s': batch of %lld rows is over model '%s' max_batch_size %u",
                   batch_from, (long long)batch, m->name, max);
        return -1;
    }
    *rows = (uint32_t)batch;
    return 0;
}

/* slow_backend.c — a test backend plugin (loaded with --backend-dir):
 * returns its input, after sleeping as many milliseconds as the batch's
 * first value says (0..5000); a negative first value makes it fail. The
 * integration tests use it to hold a batch in flight (SIGTERM drain, SIGHUP
 * reload) and to see a backend failure answered while the worker stays up. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workers/backend.h"

static int slow_load(const rs_model *m, void **state, rs_err *err) {
    if (m->input_count != 1 || m->backend_outputs != 1 || m->inputs[0].dtype != RS_DT_FP32) {
        rs_err_set(err, "%s: slow backend: needs one FP32 input and one output", m->file);
        return -1;
    }
    *state = (void *)m;
    return 0;
}

static int slow_infer(void *state, uint32_t rows, const rs_tensor_view *inputs, uint32_t n_inputs,
                      rs_backend_output *outputs, uint32_t n_outputs, rs_err *err) {
    (void)state;
    (void)rows;
    if (n_inputs != 1 || n_outputs != 1) {
        rs_err_set(err, "slow: 1 input and 1 output expected");
        return -1;
    }
    const rs_tensor_view *in = &inputs[0];
    float first = 0;
    if (in->byte_len >= 4) memcpy(&first, in->data, 4);
    if (first < 0) {
        rs_err_set(err, "slow: refusing a batch whose first value is %g", first);
        return -1;
    }
    if (first > 5000) first = 5000;
    struct timespec ts = {(time_t)(first / 1000), (long)((long)first % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    rs_backend_output *out = &outputs[0];
    if (in->byte_len > out->capacity_bytes) {
        rs_err_set(err, "slow: output buffer too small");
        return -1;
    }
    memcpy(out->buf, in->data, in->byte_len);
    out->dtype = in->dtype;
    out->rank = in->rank;
    memcpy(out->dims, in->dims, sizeof(out->dims));
    out->data = out->buf;
    out->byte_len = in->byte_len;
    return 0;
}

static void slow_unload(void *state) { (void)state; }

const rs_backend_ops *rs_backend_entry(void) {
    static const rs_backend_ops ops = {
        .abi_version = RS_BACKEND_ABI_VERSION,
        .name = "slow",
        .load = slow_load,
        .infer = slow_infer,
        .unload = slow_unload,
    };
    return &ops;
}

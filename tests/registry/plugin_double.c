/* A backend plugin for the tests: output 0 = 2 * input 0 (FP32). */
#include <stdlib.h>
#include <string.h>

#include "workers/backend.h"

static int double_load(const rs_model *m, void **state, rs_err *err) {
    (void)err;
    *state = (void *)m;
    return 0;
}

static int double_infer(void *state, uint32_t rows, const rs_tensor_view *inputs,
                        uint32_t n_inputs, rs_backend_output *outputs, uint32_t n_outputs,
                        rs_err *err) {
    (void)state;
    (void)rows;
    (void)err;
    if (n_inputs < 1 || n_outputs < 1 || outputs[0].capacity_bytes < inputs[0].byte_len) return -1;
    const float *x = (const float *)inputs[0].data;
    float *y = (float *)outputs[0].buf;
    for (uint64_t i = 0; i < inputs[0].byte_len / sizeof(float); i++) y[i] = 2 * x[i];
    outputs[0].dtype = inputs[0].dtype;
    outputs[0].rank = inputs[0].rank;
    memcpy(outputs[0].dims, inputs[0].dims, sizeof(outputs[0].dims));
    outputs[0].data = outputs[0].buf;
    outputs[0].byte_len = inputs[0].byte_len;
    return 0;
}

static void double_unload(void *state) { (void)state; }

const rs_backend_ops *rs_backend_entry(void) {
    static const rs_backend_ops ops = {
        .abi_version = RS_BACKEND_ABI_VERSION,
        .name = "double",
        .load = double_load,
        .infer = double_infer,
        .unload = double_unload,
    };
    return &ops;
}

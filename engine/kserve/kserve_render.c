/* kserve_render.c — tensors -> KServe v2 response bodies (JSON + binary
 * sections), and the small bodies: errors, server metadata, health, async. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "engine/kserve/kserve.h"
#include "engine/kserve/kserve_internal.h"

static json_object *element(const rs_tensor_view *t, uint64_t i) {
    const uint8_t *p = t->data + i * rs_dtype_size(t->dtype);
    switch (t->dtype) {
    case RS_DT_BOOL: return json_object_new_boolean(*p != 0);
    case RS_DT_UINT8: return json_object_new_int64(*p);
    case RS_DT_INT8: return json_object_new_int64((int8_t)*p);
#define INT_CASE(DT, T)                                                                            \
    case DT: {                                                                                     \
        T v;                                                                                       \
        memcpy(&v, p, sizeof(v));                                                                  \
        return json_object_new_int64((int64_t)v);                                                  \
    }
        INT_CASE(RS_DT_UINT16, uint16_t)
        INT_CASE(RS_DT_UINT32, uint32_t)
        INT_CASE(RS_DT_INT16, int16_t)
        INT_CASE(RS_DT_INT32, int32_t)
        INT_CASE(RS_DT_INT64, int64_t)
#undef INT_CASE
    case RS_DT_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        return json_object_new_uint64(v);
    }
    case RS_DT_FP16:
    case RS_DT_BF16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return json_object_new_double(t->dtype == RS_DT_FP16 ? rs_kserve_f16_to_f32(h)
                                                             : rs_kserve_bf16_to_f32(h));
    }
    case RS_DT_FP32: {
        float f;
        memcpy(&f, p, 4);
        return json_object_new_double(f);
    }
    case RS_DT_FP64: {
        double d;
        memcpy(&d, p, 8);
        char text[32];
        snprintf(text, sizeof(text), "%.17g", d);
        return json_object_new_double_s(d, text);
    }
    default: return NULL;
    }
}

static json_object *tensor_data(const rs_tensor_view *t, int64_t count) {
    json_object *arr = json_object_new_array_ext((int)count);
    if (t->dtype == RS_DT_BYTES) {
        uint64_t off = 0;
        for (int64_t i = 0; i < count; i++) {
            uint32_t len;
            memcpy(&len, t->data + off, 4);
            json_object_array_add(
                arr, json_object_new_string_len((const char *)t->data + off + 4, (int)len));
            off += 4ull + len;
        }
        return arr;
    }
    for (int64_t i = 0; i < count; i++)
        json_object_array_add(arr, element(t, (uint64_t)i));
    return arr;
}

int rs_kserve_render_response(const rs_kserve_response *r, uint8_t *out, size_t out_bytes,
                              size_t *json_len, size_t *total_len, rs_err *err) {
    rs_kserve_global_init();
    const rs_tensor_list *outs = r->outputs;
    uint64_t binary_bytes = 0;
    for (uint32_t i = 0; i < outs->count; i++) {
        char why[RS_ERR_MSG_BYTES];
        if (rs_tensor_check(&outs->t[i], why, sizeof(why)) != 0) {
            rs_err_set(err, "output %u: %s", i, why);
            return -1;
        }
        if (r->binary && r->binary[i]) binary_bytes += outs->t[i].byte_len;
    }
    json_object *root = json_object_new_object();
    json_object_object_add(root, "model_name", json_object_new_string(r->model_name));
    if (r->model_version)
        json_object_object_add(root, "model_version", json_object_new_string(r->model_version));
    if (r->id) json_object_object_add(root, "id", json_object_new_string(r->id));
    json_object *arr = json_object_new_array_ext((int)outs->count);
    for (uint32_t i = 0; i < outs->count; i++) {
        const rs_tensor_view *t = &outs->t[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name",
                               json_object_new_string_len(t->name.ptr, (int)t->name.len));
        json_object_object_add(o, "datatype", json_object_new_string(rs_dtype_name(t->dtype)));
        json_object *shape = json_object_new_array_ext((int)t->rank);
        for (uint32_t d = 0; d < t->rank; d++)
            json_object_array_add(shape, json_object_new_int64(t->dims[d]));
        json_object_object_add(o, "shape", shape);
        if (r->binary && r->binary[i]) {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "binary_data_size",
                                   json_object_new_int64((int64_t)t->byte_len));
            json_object_object_add(o, "parameters", p);
        } else {
            json_object_object_add(o, "data", tensor_data(t, rs_tensor_elements(t)));
        }
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "outputs", arr);
    size_t len = 0;
    const char *text = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    int rc = -1;
    if (len + binary_bytes > out_bytes) {
        rs_err_set(err, "response of %llu bytes does not fit the %zu-byte response buffer",
                   (unsigned long long)(len + binary_bytes), out_bytes);
        goto done;
    }
    memcpy(out, text, len);
    size_t at = len;
    for (uint32_t i = 0; i < outs->count; i++) {
        if (!(r->binary && r->binary[i])) continue;
        memcpy(out + at, outs->t[i].data, outs->t[i].byte_len);
        at += outs->t[i].byte_len;
    }
    *json_len = len;
    *total_len = at;
    rc = 0;
done:
    json_object_put(root);
    return rc;
}

int rs_kserve_output_binary(const rs_kserve_request *req, const rs_tensor_list *outputs,
                            bool *binary, rs_err *err) {
    bool all = req->params.binary_data_output;
    for (uint32_t i = 0; i < outputs->count; i++)
        binary[i] = all;
    for (uint32_t k = 0; k < req->output_count; k++) {
        const rs_kserve_output_req *o = &req->outputs[k];
        const rs_tensor_view *t = rs_tensor_find(outputs, o->name, strlen(o->name));
        if (!t) {
            rs_err_set(err, "requested output '%s' is not an output of the model", o->name);
            return -1;
        }
        binary[t - outputs->t] = o->binary_data || all;
    }
    return 0;
}

/* ---- small bodies ---------------------------------------------------------- */

static size_t dump(json_object *o, char *out, size_t out_bytes) {
    size_t len = 0;
    const char *text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (out_bytes) {
        size_t n = len < out_bytes - 1 ? len : out_bytes - 1;
        memcpy(out, text, n);
        out[n] = 0;
    }
    json_object_put(o);
    return len;
}

size_t rs_kserve_render_error(const char *msg, char *out, size_t out_bytes) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    return dump(o, out, out_bytes);
}

size_t rs_kserve_render_server_metadata(const char *name, const char *version,
                                        const char *const *extensions, uint32_t extension_count,
                                        char *out, size_t out_bytes) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "version", json_object_new_string(version));
    json_object *ext = json_object_new_array();
    for (uint32_t i = 0; i < extension_count; i++)
        json_object_array_add(ext, json_object_new_string(extensions[i]));
    json_object_object_add(o, "extensions", ext);
    return dump(o, out, out_bytes);
}

size_t rs_kserve_render_bool(const char *key, bool value, char *out, size_t out_bytes) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, key, json_object_new_boolean(value));
    return dump(o, out, out_bytes);
}

size_t rs_kserve_render_async(const char *id, const char *status, char *out, size_t out_bytes) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "status", json_object_new_string(status));
    return dump(o, out, out_bytes);
}

/* model.c — parses and validates one model.yaml into an rs_model.
 *
 * Every field is checked here, once, at start-up, so that the hot path can
 * trust the spec: a bad field is refused with one line naming the file, the
 * field and the value (engine/common/config.h formats it). */
#include "engine/model_registry/registry.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const rs_model_keys[] = {
    "name",   "backend",   "inputs",    "outputs", "batchable", "max_batch_size",
    "batching", "cache",   "quantized", "instances", "shards",  "placement",
    "pre",    "post",      "stages",    NULL};

/* Model, tensor and backend names travel in URLs and log lines: keep them to
 * a safe alphabet. */
static bool rs_model_name_ok(const char *s) {
    if (!s[0]) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) return false;
    }
    return s[0] != '.';
}

static int rs_model_name_field(const rs_cfg_node *parent, const char *key, char *out,
                               size_t out_bytes, rs_err *err) {
    if (rs_cfg_str(parent, key, true, NULL, out, out_bytes, err) < 0) return -1;
    if (!rs_model_name_ok(out)) {
        rs_cfg_node n = rs_cfg_get(parent, key);
        rs_cfg_fail(&n, err, "'%s': expected letters, digits, '_', '-' or '.'", out);
        return -1;
    }
    return 0;
}

static int rs_model_shape(const rs_cfg_node *t, rs_tensor_spec *spec, rs_err *err) {
    rs_cfg_node shape = rs_cfg_get(t, "shape");
    if (!rs_cfg_present(&shape)) {
        rs_cfg_fail(t, err, "missing required field 'shape'");
        return -1;
    }
    size_t rank = rs_cfg_len(&shape);
    if (!rs_cfg_is_seq(&shape) || rank == 0 || rank > RS_MAX_RANK) {
        rs_cfg_fail(&shape, err, "expected a list of 1..%d dims", RS_MAX_RANK);
        return -1;
    }
    spec->rank = (uint32_t)rank;
    for (size_t i = 0; i < rank; i++) {
        rs_cfg_node d = rs_cfg_at(&shape, i);
        const char *text = rs_cfg_scalar(&d);
        char *end = NULL;
        long long v = text ? strtoll(text, &end, 10) : 0;
        if (!text || !text[0] || *end != '\0' || v < -1 || v == 0 || v > (1LL << 32)) {
            rs_cfg_fail(&d, err, "'%s': expected -1 (variable) or a positive dim",
                        text ? text : "(not a scalar)");
            return -1;
        }
        if (i == 0 && v != -1) {
            rs_cfg_fail(&d, err, "'%s': the first dim is the batch dim and must be -1", text);
            return -1;
        }
        spec->dims[i] = v;
    }
    return 0;
}

static int rs_model_tensors(const rs_cfg_node *root, const char *key, rs_tensor_spec *specs,
                            uint32_t *count, rs_err *err) {
    static const char *const keys[] = {"name", "dtype", "shape", NULL};
    rs_cfg_node list = rs_cfg_get(root, key);
    if (!rs_cfg_present(&list)) {
        rs_err_set(err, "%s: %s: missing required field", rs_cfg_file(root->cfg), key);
        return -1;
    }
    size_t n = rs_cfg_len(&list);
    if (!rs_cfg_is_seq(&list) || n == 0 || n > RS_MODEL_MAX_IO) {
        rs_cfg_fail(&list, err, "expected a list of 1..%d tensors", RS_MODEL_MAX_IO);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        rs_cfg_node t = rs_cfg_at(&list, i);
        if (!rs_cfg_is_map(&t)) {
            rs_cfg_fail(&t, err, "expected a mapping {name, dtype, shape}");
            return -1;
        }
        if (rs_cfg_check_keys(&t, keys, err) < 0) return -1;
        rs_tensor_spec *s = &specs[i];
        if (rs_model_name_field(&t, "name", s->name, sizeof(s->name), err) < 0) return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(specs[j].name, s->name) == 0) {
                rs_cfg_node nn = rs_cfg_get(&t, "name");
                rs_cfg_fail(&nn, err, "'%s': duplicate tensor name", s->name);
                return -1;
            }
        }
        char dt[16];
        if (rs_cfg_str(&t, "dtype", true, NULL, dt, sizeof(dt), err) < 0) return -1;
        s->dtype = rs_dtype_parse(dt, strlen(dt));
        if (s->dtype == RS_DT_INVALID) {
            rs_cfg_node d = rs_cfg_get(&t, "dtype");
            rs_cfg_fail(&d, err,
                        "'%s': unknown dtype (BOOL, UINT8..UINT64, INT8..INT64, FP16, BF16, "
                        "FP32, FP64, BYTES)",
                        dt);
            return -1;
        }
        if (rs_model_shape(&t, s, err) < 0) return -1;
    }
    *count = (uint32_t)n;
    return 0;
}

static int rs_model_batching_parse(const rs_cfg_node *root, rs_model *m, rs_err *err) {
    static const char *const keys[] = {"max_queue_delay_us", "preferred_batch_sizes",
                                       "max_queue_size", "dispatch_when_idle", "single_queue",
                                       "max_batches_out", NULL};
    rs_cfg_node b = rs_cfg_get(root, "batching");
    rs_model_batching *out = &m->batching;
    if (rs_cfg_present(&b) && rs_cfg_check_keys(&b, keys, err) < 0) return -1;
    uint64_t v;
    if (rs_cfg_u64(&b, "max_queue_delay_us", false, 1000, 0, 10000000, &v, err) < 0) return -1;
    out->max_queue_delay_us = v;
    if (rs_cfg_u64(&b, "max_queue_size", false, 1024, 1, 1000000, &v, err) < 0) return -1;
    out->max_queue_size = (uint32_t)v;
    if (rs_cfg_bool(&b, "dispatch_when_idle", false, false, &out->dispatch_when_idle, err) < 0) return -1;
    if (rs_cfg_bool(&b, "single_queue", false, false, &out->single_queue, err) < 0) return -1;
    if (rs_cfg_u64(&b, "max_batches_out", false, 0, 0, 65536, &v, err) < 0) return -1;
    out->max_batches_out = (uint32_t)v;
    rs_cfg_node pref = rs_cfg_get(&b, "preferred_batch_sizes");
    out->preferred_count = 0;
    if (!rs_cfg_present(&pref)) return 0;
    size_t n = rs_cfg_len(&pref);
    if (!rs_cfg_is_seq(&pref) || n > RS_MODEL_MAX_PREFERRED) {
        rs_cfg_fail(&pref, err, "expected a list of at most %d batch sizes",
                    RS_MODEL_MAX_PREFERRED);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        rs_cfg_node it = rs_cfg_at(&pref, i);
        const char *text = rs_cfg_scalar(&it);
        char *end = NULL;
        long long s = text ? strtoll(text, &end, 10) : 0;
        if (!text || !text[0] || *end != '\0' || s < 1 || s > (long long)m->max_batch_size) {
            rs_cfg_fail(&it, err, "'%s': expected a batch size in [1, max_batch_size %u]",
                        text ? text : "(not a scalar)", m->max_batch_size);
            return -1;
        }
        if (i > 0 && (uint32_t)s <= out->preferred_batch_sizes[i - 1]) {
            rs_cfg_fail(&it, err, "'%s': preferred batch sizes must be strictly ascending",
                        text);
            return -1;
        }
        out->preferred_batch_sizes[i] = (uint32_t)s;
    }
    out->preferred_count = (uint32_t)n;
    return 0;
}

/* placement is topo's per-model placement (topo/plan.h parses and checks
 * it, so the plan and the registry agree on its meaning); `instances` is a
 * top-level model field here, so it is refused inside placement. */
static int rs_model_placement_parse(const rs_cfg_node *root, rs_model *m, rs_err *err) {
    static const char *const keys[] = {"device", "gpus", "gpu_memory_mb", "numa", NULL};
    rs_model_placement *p = &m->placement;
    rs_cfg_node pl = rs_cfg_get(root, "placement");
    memset(p, 0, sizeof(*p));
    if (rs_cfg_present(&pl) && !rs_cfg_is_scalar(&pl) && rs_cfg_check_keys(&pl, keys, err) < 0)
        return -1;
    if (rs_cfg_is_scalar(&pl) && rs_cfg_scalar(&pl)[0] != '\0') {
        rs_cfg_fail(&pl, err, "'%s': expected a mapping {device, gpus, gpu_memory_mb, numa}",
                    rs_cfg_scalar(&pl));
        return -1;
    }
    if (rs_plan_model_parse(&pl, m->name, &p->plan, err) < 0) return -1;
    p->plan.instances = (int)m->instances;
    p->device = p->plan.device == RS_PLAN_DEVICE_GPU ? RS_MODEL_DEVICE_GPU : RS_MODEL_DEVICE_CPU;
    p->gpu_count = (uint32_t)p->plan.gpu_count;
    for (uint32_t i = 0; i < p->gpu_count; i++) p->gpus[i] = p->plan.gpus[i];
    p->gpu_memory_mb = p->plan.gpu_memory_mb;
    p->numa = p->plan.numa == RS_PLAN_NUMA_AUTO ? RS_MODEL_NUMA_AUTO : p->plan.numa;
    p->numa_resolved = p->numa;
    return 0;
}

/* A param value: a scalar, or a list of scalars kept as "a,b,c". */
static int rs_model_param_value(const rs_cfg_node *v, char *out, size_t out_bytes, rs_err *err) {
    const char *text = rs_cfg_scalar(v);
    if (text) {
        if (strlen(text) + 1 > out_bytes) {
            rs_cfg_fail(v, err, "'%.40s...': longer than %zu bytes", text, out_bytes - 1);
            return -1;
        }
        snprintf(out, out_bytes, "%s", text);
        return 0;
    }
    if (!rs_cfg_is_seq(v)) {
        rs_cfg_fail(v, err, "expected a scalar or a list of scalars");
        return -1;
    }
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < rs_cfg_len(v); i++) {
        rs_cfg_node it = rs_cfg_at(v, i);
        const char *s = rs_cfg_scalar(&it);
        if (!s) {
            rs_cfg_fail(&it, err, "expected a scalar");
            return -1;
        }
        int w = snprintf(out + used, out_bytes - used, "%s%s", i ? "," : "", s);
        if (w < 0 || (size_t)w >= out_bytes - used) {
            rs_cfg_fail(v, err, "list longer than %zu bytes", out_bytes - 1);
            return -1;
        }
        used += (size_t)w;
    }
    return 0;
}

static int rs_model_stages(const rs_cfg_node *root, const char *key, rs_stage_spec *stages,
                           uint32_t *count, rs_err *err) {
    static const char *const keys[] = {"stage", "params", NULL};
    rs_cfg_node list = rs_cfg_get(root, key);
    *count = 0;
    if (!rs_cfg_present(&list)) return 0;
    size_t n = rs_cfg_len(&list);
    if (!rs_cfg_is_seq(&list) || n > RS_MODEL_MAX_STAGES) {
        rs_cfg_fail(&list, err, "expected a list of at most %d stages", RS_MODEL_MAX_STAGES);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        rs_cfg_node st = rs_cfg_at(&list, i);
        if (!rs_cfg_is_map(&st)) {
            rs_cfg_fail(&st, err, "expected a mapping {stage, params}");
            return -1;
        }
        if (rs_cfg_check_keys(&st, keys, err) < 0) return -1;
        rs_stage_spec *s = &stages[i];
        memset(s, 0, sizeof(*s));
        s->line = rs_cfg_line(&st);
        if (rs_model_name_field(&st, "stage", s->name, sizeof(s->name), err) < 0) return -1;
        rs_cfg_node params = rs_cfg_get(&st, "params");
        if (!rs_cfg_present(&params)) continue;
        size_t np = rs_cfg_len(&params);
        if (!rs_cfg_is_map(&params) || np > RS_STAGE_MAX_PARAMS) {
            rs_cfg_fail(&params, err, "expected a mapping of at most %d params",
                        RS_STAGE_MAX_PARAMS);
            return -1;
        }
        for (size_t j = 0; j < np; j++) {
            rs_cfg_node v;
            const char *k = rs_cfg_pair(&params, j, &v);
            if (!k || strlen(k) + 1 > RS_STAGE_KEY_BYTES) {
                rs_cfg_fail(&params, err, "param names must be scalars shorter than %d bytes",
                            RS_STAGE_KEY_BYTES);
                return -1;
            }
            snprintf(s->params[j].key, sizeof(s->params[j].key), "%s", k);
            if (rs_model_param_value(&v, s->params[j].value, sizeof(s->params[j].value), err) < 0)
                return -1;
        }
        s->param_count = (uint32_t)np;
    }
    *count = (uint32_t)n;
    return 0;
}

/* Outputs a post stage produces (param "output") must follow the ones the
 * backend produces, so the backend fills a prefix of the outputs. */
static int rs_model_backend_outputs(const rs_cfg_node *root, rs_model *m, rs_err *err) {
    uint32_t first_stage_output = m->output_count;
    for (uint32_t i = 0; i < m->post_count; i++) {
        const char *o = rs_stage_spec_param(&m->post[i], "output");
        if (!o) continue;
        int idx = rs_model_output_index(m, o);
        if (idx < 0) continue; /* an intermediate tensor: the stage library checks */
        if ((uint32_t)idx < first_stage_output) first_stage_output = (uint32_t)idx;
    }
    for (uint32_t i = first_stage_output; i < m->output_count; i++) {
        bool produced = false;
        for (uint32_t j = 0; j < m->post_count; j++) {
            const char *o = rs_stage_spec_param(&m->post[j], "output");
            if (o && strcmp(o, m->outputs[i].name) == 0) produced = true;
        }
        if (!produced) {
            rs_cfg_node outs = rs_cfg_get(root, "outputs");
            rs_cfg_node it = rs_cfg_at(&outs, i);
            rs_cfg_fail(&it, err,
                        "'%s': backend outputs must come before the outputs post stages "
                        "produce",
                        m->outputs[i].name);
            return -1;
        }
    }
    m->backend_outputs = first_stage_output;
    return 0;
}

int rs_model_parse(const rs_cfg_node *root, const char *dir, const char *dir_name,
                   uint32_t dir_version, rs_model *m, rs_err *err) {
    static const char *const quant[] = {"none", "int8", NULL};
    static const char *const placements[] = {"inline", "pool", NULL};
    memset(m, 0, sizeof(*m));
    const char *file = rs_cfg_file(root->cfg);
    snprintf(m->file, sizeof(m->file), "%s", file);
    snprintf(m->dir, sizeof(m->dir), "%s", dir ? dir : ".");
    m->version = dir_version;
    if (!rs_cfg_is_map(root)) {
        rs_err_set(err, "%s: expected a mapping of model fields", file);
        return -1;
    }
    if (rs_cfg_check_keys(root, rs_model_keys, err) < 0) return -1;
    if (rs_model_name_field(root, "name", m->name, sizeof(m->name), err) < 0) return -1;
    if (dir_name && strcmp(dir_name, m->name) != 0) {
        rs_cfg_node n = rs_cfg_get(root, "name");
        rs_cfg_fail(&n, err, "'%s': does not match the model folder '%s'", m->name, dir_name);
        return -1;
    }
    if (rs_model_name_field(root, "backend", m->backend, sizeof(m->backend), err) < 0) return -1;
    if (rs_model_tensors(root, "inputs", m->inputs, &m->input_count, err) < 0) return -1;
    if (rs_model_tensors(root, "outputs", m->outputs, &m->output_count, err) < 0) return -1;
    if (rs_cfg_bool(root, "batchable", false, true, &m->batchable, err) < 0) return -1;
    uint64_t v;
    if (rs_cfg_u64(root, "max_batch_size", false, m->batchable ? 32 : 1, 1, RS_MODEL_MAX_BATCH,
                   &v, err) < 0)
        return -1;
    m->max_batch_size = (uint32_t)v;
    if (!m->batchable && m->max_batch_size != 1) {
        rs_cfg_node n = rs_cfg_get(root, "max_batch_size");
        rs_cfg_fail(&n, err, "'%u': must be 1 when batchable is false", m->max_batch_size);
        return -1;
    }
    if (rs_model_batching_parse(root, m, err) < 0) return -1;
    if (rs_cfg_bool(root, "cache", false, false, &m->cache, err) < 0) return -1;
    int q = 0;
    if (rs_cfg_enum(root, "quantized", false, RS_MODEL_QUANT_NONE, quant, &q, err) < 0) return -1;
    m->quantized = (rs_model_quant)q;
    if (rs_cfg_u64(root, "instances", false, 1, 1, 64, &v, err) < 0) return -1;
    m->instances = (uint32_t)v;
    if (rs_cfg_u64(root, "shards", false, 1, 1, 64, &v, err) < 0) return -1;
    m->shards = (uint32_t)v;
    if (rs_model_placement_parse(root, m, err) < 0) return -1;
    if (rs_model_stages(root, "pre", m->pre, &m->pre_count, err) < 0) return -1;
    if (rs_model_stages(root, "post", m->post, &m->post_count, err) < 0) return -1;
    int sp = 0;
    if (rs_cfg_enum(root, "stages", false, RS_STAGES_INLINE, placements, &sp, err) < 0) return -1;
    m->stages = (rs_stages_placement)sp;
    return rs_model_backend_outputs(root, m, err);
}

int rs_model_parse_file(const char *file, const char *dir_name, uint32_t dir_version,
                        rs_model *out, rs_err *err) {
    rs_cfg *cfg = rs_cfg_load_file(file, err);
    if (!cfg) return -1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof(dir), ".");
    rs_cfg_node root = rs_cfg_root(cfg);
    int rc = rs_model_parse(&root, dir, dir_name, dir_version, out, err);
    rs_cfg_free(cfg);
    return rc;
}

int rs_model_input_index(const rs_model *m, const char *name) {
    for (uint32_t i = 0; i < m->input_count; i++)
        if (strcmp(m->inputs[i].name, name) == 0) return (int)i;
    return -1;
}

int rs_model_output_index(const rs_model *m, const char *name) {
    for (uint32_t i = 0; i < m->output_count; i++)
        if (strcmp(m->outputs[i].name, name) == 0) return (int)i;
    return -1;
}

uint64_t rs_tensor_spec_row_bytes(const rs_tensor_spec *t) {
    uint64_t bytes = rs_dtype_size(t->dtype);
    for (uint32_t i = 1; i < t->rank; i++) {
        if (t->dims[i] < 0) return 0;
        bytes *= (uint64_t)t->dims[i];
    }
    return bytes;
}

const char *rs_stage_spec_param(const rs_stage_spec *s, const char *key) {
    for (uint32_t i = 0; i < s->param_count; i++)
        if (strcmp(s->params[i].key, key) == 0) return s->params[i].value;
    return NULL;
}

static json_object *rs_model_tensors_json(const rs_tensor_spec *specs, uint32_t n) {
    json_object *arr = json_object_new_array();
    for (uint32_t i = 0; i < n; i++) {
        json_object *t = json_object_new_object(), *shape = json_object_new_array();
        for (uint32_t d = 0; d < specs[i].rank; d++)
            json_object_array_add(shape, json_object_new_int64(specs[i].dims[d]));
        json_object_object_add(t, "name", json_object_new_string(specs[i].name));
        json_object_object_add(t, "datatype", json_object_new_string(rs_dtype_name(specs[i].dtype)));
        json_object_object_add(t, "shape", shape);
        json_object_array_add(arr, t);
    }
    return arr;
}

char *rs_model_metadata_render(const rs_model *m, const uint32_t *versions, size_t n_versions) {
    json_object *vers = json_object_new_array();
    char buf[16];
    if (n_versions == 0) {
        snprintf(buf, sizeof(buf), "%u", m->version);
        json_object_array_add(vers, json_object_new_string(buf));
    }
    for (size_t i = 0; i < n_versions; i++) {
        snprintf(buf, sizeof(buf), "%u", versions[i]);
        json_object_array_add(vers, json_object_new_string(buf));
    }
    char platform[RS_BACKEND_NAME_BYTES + 16];
    snprintf(platform, sizeof(platform), "ringserve_%s", m->backend);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "name", json_object_new_string(m->name));
    json_object_object_add(root, "versions", vers);
    json_object_object_add(root, "platform", json_object_new_string(platform));
    json_object_object_add(root, "inputs", rs_model_tensors_json(m->inputs, m->input_count));
    json_object_object_add(root, "outputs", rs_model_tensors_json(m->outputs, m->output_count));
    const char *text =
        json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = text ? strdup(text) : NULL;
    json_object_put(root);
    return out;
}

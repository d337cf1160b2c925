/* Tests for engine/model_registry: every model.yaml field good and bad (with
 * the exact one-line messages), the `models:` section, repository scanning,
 * versions, O(1) lookup and the KServe v2 metadata JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/model_registry/registry.h"
#include "tests/registry/fixture.h"

#define HEAD                                                                                     \
    "name: m\n"                                                                                  \
    "backend: dense\n"                                                                           \
    "inputs: [{name: x, dtype: FP32, shape: [-1, 4]}]\n"                                         \
    "outputs: [{name: y, dtype: FP32, shape: [-1, 2]}]\n"

static int parse_text(const char *text, rs_model *m, rs_err *err) {
    rs_cfg *cfg = rs_cfg_load_string(text, "m.yaml", err);
    if (!cfg) return -1;
    rs_cfg_node root = rs_cfg_root(cfg);
    int rc = rs_model_parse(&root, "/repo/m/1", "m", 1, m, err);
    rs_cfg_free(cfg);
    return rc;
}

static void test_full_model(void **state) {
    (void)state;
    const char *text = HEAD
        "batchable: true\n"
        "max_batch_size: 64\n"
        "batching: {max_queue_delay_us: 250, preferred_batch_sizes: [4, 16, 64], max_queue_size: 99, dispatch_when_idle: true, single_queue: on, max_batches_out: 1}\n"
        "cache: on\n"
        "quantized: int8\n"
        "instances: 3\n"
        "shards: 2\n"
        "placement: {device: gpu, gpus: [1, 0], gpu_memory_mb: 2048, numa: auto}\n"
        "pre:\n"
        "  - {stage: normalize, params: {scale: 0.5, offset: 1}}\n"
        "  - {stage: tokenize, params: {vocab: vocab.txt, ids: [1, 2, 3]}}\n"
        "post: [{stage: softmax}]\n"
        "stages: pool\n";
    rs_model m;
    rs_err err = {0};
    assert_int_equal(parse_text(text, &m, &err), 0);
    assert_string_equal(m.name, "m");
    assert_int_equal(m.version, 1);
    assert_string_equal(m.backend, "dense");
    assert_string_equal(m.dir, "/repo/m/1");
    assert_int_equal(m.input_count, 1);
    assert_string_equal(m.inputs[0].name, "x");
    assert_int_equal(m.inputs[0].dtype, RS_DT_FP32);
    assert_int_equal(m.inputs[0].rank, 2);
    assert_int_equal(m.inputs[0].dims[0], -1);
    assert_int_equal(m.inputs[0].dims[1], 4);
    assert_int_equal(rs_tensor_spec_row_bytes(&m.inputs[0]), 16);
    assert_int_equal(m.output_count, 1);
    assert_int_equal(m.backend_outputs, 1);
    assert_true(m.batchable);
    assert_int_equal(m.max_batch_size, 64);
    assert_int_equal(m.batching.max_queue_delay_us, 250);
    assert_int_equal(m.batching.preferred_count, 3);
    assert_int_equal(m.batching.preferred_batch_sizes[2], 64);
    assert_int_equal(m.batching.max_queue_size, 99);
    assert_true(m.batching.dispatch_when_idle);
    assert_true(m.batching.single_queue);
    assert_int_equal(m.batching.max_batches_out, 1);
    assert_true(m.cache);
    assert_int_equal(m.quantized, RS_MODEL_QUANT_INT8);
    assert_int_equal(m.instances, 3);
    assert_int_equal(m.shards, 2);
    assert_int_equal(m.placement.device, RS_MODEL_DEVICE_GPU);
    assert_int_equal(m.placement.gpu_count, 2);
    assert_int_equal(m.placement.gpus[0], 1);
    assert_int_equal(m.placement.gpu_memory_mb, 2048);
    assert_int_equal(m.placement.numa, RS_MODEL_NUMA_AUTO);
    /* topo's placement struct, ready for rs_plan_build */
    assert_string_equal(m.placement.plan.name, "m");
    assert_int_equal(m.placement.plan.device, RS_PLAN_DEVICE_GPU);
    assert_int_equal(m.placement.plan.gpu_count, 2);
    assert_int_equal(m.placement.plan.gpus[0], 1);
    assert_int_equal(m.placement.plan.instances, 3);
    assert_int_equal(m.placement.plan.numa, RS_PLAN_NUMA_AUTO);
    assert_int_equal(m.pre_count, 2);
    assert_string_equal(m.pre[0].name, "normalize");
    assert_string_equal(rs_stage_spec_param(&m.pre[0], "scale"), "0.5");
    assert_string_equal(rs_stage_spec_param(&m.pre[1], "vocab"), "vocab.txt");
    assert_string_equal(rs_stage_spec_param(&m.pre[1], "ids"), "1,2,3");
    assert_null(rs_stage_spec_param(&m.pre[1], "absent"));
    assert_int_equal(m.pre[0].line, 14);
    assert_int_equal(m.post_count, 1);
    assert_string_equal(m.post[0].name, "softmax");
    assert_int_equal(m.post[0].param_count, 0);
    assert_int_equal(m.stages, RS_STAGES_POOL);
    assert_int_equal(rs_model_input_index(&m, "x"), 0);
    assert_int_equal(rs_model_output_index(&m, "y"), 0);
    assert_int_equal(rs_model_output_index(&m, "x"), -1);
}

static void test_defaults(void **state) {
    (void)state;
    rs_model m;
    rs_err err = {0};
    assert_int_equal(parse_text(HEAD, &m, &err), 0);
    assert_true(m.batchable);
    assert_int_equal(m.max_batch_size, 32);
    assert_int_equal(m.batching.max_queue_delay_us, 1000);
    assert_int_equal(m.batching.preferred_count, 0);
    assert_int_equal(m.batching.max_queue_size, 1024);
    assert_false(m.batching.dispatch_when_idle);
    assert_false(m.batching.single_queue);
    assert_int_equal(m.batching.max_batches_out, 0);
    assert_false(m.cache);
    assert_int_equal(m.quantized, RS_MODEL_QUANT_NONE);
    assert_int_equal(m.instances, 1);
    assert_int_equal(m.shards, 1);
    assert_int_equal(m.placement.device, RS_MODEL_DEVICE_CPU);
    assert_int_equal(m.placement.numa, RS_MODEL_NUMA_AUTO);
    assert_int_equal(m.placement.numa_resolved, -1);
    assert_int_equal(m.pre_count + m.post_count, 0);
    assert_int_equal(m.stages, RS_STAGES_INLINE);
    /* not batchable: max_batch_size defaults to 1 */
    assert_int_equal(parse_text(HEAD "batchable: false\n", &m, &err), 0);
    assert_int_equal(m.max_batch_size, 1);
    /* numa pinned, variable inner dims, a post-stage output */
    const char *text = "name: m\nbackend: dense\n"
                       "inputs: [{name: x, dtype: BYTES, shape: [-1, -1]}]\n"
                       "outputs: [{name: p, dtype: FP32, shape: [-1, 3]},\n"
                       "          {name: label, dtype: INT64, shape: [-1]}]\n"
                       "post: [{stage: argmax, params: {input: p, output: label}}]\n"
                       "placement: {numa: 1}\n";
    assert_int_equal(parse_text(text, &m, &err), 0);
    assert_int_equal(m.backend_outputs, 1);
    assert_int_equal(m.output_count, 2);
    assert_int_equal(rs_tensor_spec_row_bytes(&m.inputs[0]), 0);
    assert_int_equal(m.placement.numa, 1);
    assert_int_equal(m.placement.numa_resolved, 1);
    assert_int_equal(m.placement.plan.numa, 1);
    /* device gpu without ids: round-robin over the host's GPUs (topo) */
    assert_int_equal(parse_text(HEAD "placement: {device: gpu}\n", &m, &err), 0);
    assert_int_equal(m.placement.device, RS_MODEL_DEVICE_GPU);
    assert_int_equal(m.placement.gpu_count, 0);
}

typedef struct bad_case {
    const char *text;
    const char *msg;
} bad_case;

static void test_bad_fields(void **state) {
    (void)state;
    static const bad_case cases[] = {
        {HEAD "colour: red\n",
         "m.yaml:5: colour: unknown field (allowed: name, backend, inputs, outputs, batchable, "
         "max_batch_size, batching, cache, quantized, instances, shards, placement, pre, post, "
         "stages)"},
        {"backend: dense\ninputs: [{name: x, dtype: FP32, shape: [-1]}]\n",
         "m.yaml: name: missing required field"},
        {"name: other\nbackend: dense\n",
         "m.yaml:1: name: 'other': does not match the model folder 'm'"},
        {"name: m/x\nbackend: dense\n",
         "m.yaml:1: name: 'm/x': expected letters, digits, '_', '-' or '.'"},
        {"name: m\nbackend: \"\"\n",
         "m.yaml:2: backend: '': expected letters, digits, '_', '-' or '.'"},
        {"name: m\nbackend: dense\noutputs: []\n", "m.yaml: inputs: missing required field"},
        {"name: m\nbackend: dense\ninputs: []\n",
         "m.yaml:3: inputs: expected a list of 1..8 tensors"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP33, shape: [-1]}]\n",
         "m.yaml:3: inputs[0].dtype: 'FP33': unknown dtype (BOOL, UINT8..UINT64, INT8..INT64, "
         "FP16, BF16, FP32, FP64, BYTES)"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP32, shape: [4, 2]}]\n",
         "m.yaml:3: inputs[0].shape[0]: '4': the first dim is the batch dim and must be -1"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP32, shape: [-1, 0]}]\n",
         "m.yaml:3: inputs[0].shape[1]: '0': expected -1 (variable) or a positive dim"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP32, shape: []}]\n",
         "m.yaml:3: inputs[0].shape: expected a list of 1..8 dims"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP32}]\n",
         "m.yaml:3: inputs[0]: missing required field 'shape'"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP32, shape: [-1], size: 3}]\n",
         "m.yaml:3: inputs[0].size: unknown field (allowed: name, dtype, shape)"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP32, shape: [-1]},\n"
         "         {name: x, dtype: FP32, shape: [-1]}]\n",
         "m.yaml:4: inputs[1].name: 'x': duplicate tensor name"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP32, shape: [-1]}]\n"
         "outputs: [{name: y, dtype: FP32, shape: [-1, -2]}]\n",
         "m.yaml:4: outputs[0].shape[1]: '-2': expected -1 (variable) or a positive dim"},
        {HEAD "batchable: maybe\n",
         "m.yaml:5: batchable: 'maybe': expected true/false (or on/off, yes/no)"},
        {HEAD "max_batch_size: 0\n", "m.yaml:5: max_batch_size: '0': out of range [1, 4096]"},
        {HEAD "max_batch_size: 5000\n",
         "m.yaml:5: max_batch_size: '5000': out of range [1, 4096]"},
        {HEAD "batchable: false\nmax_batch_size: 8\n",
         "m.yaml:6: max_batch_size: '8': must be 1 when batchable is false"},
        {HEAD "batching: {max_queue_delay_us: -1}\n",
         "m.yaml:5: batching.max_queue_delay_us: '-1': expected a non-negative integer"},
        {HEAD "batching: {dispatch_when_idle: sometimes}\n",
         "m.yaml:5: batching.dispatch_when_idle: 'sometimes': expected true/false (or on/off, yes/no)"},
        {HEAD "batching: {max_queue_size: 0}\n",
         "m.yaml:5: batching.max_queue_size: '0': out of range [1, 1000000]"},
        {HEAD "max_batch_size: 16\nbatching: {preferred_batch_sizes: [4, 32]}\n",
         "m.yaml:6: batching.preferred_batch_sizes[1]: '32': expected a batch size in [1, "
         "max_batch_size 16]"},
        {HEAD "batching: {preferred_batch_sizes: [8, 4]}\n",
         "m.yaml:5: batching.preferred_batch_sizes[1]: '4': preferred batch sizes must be "
         "strictly ascending"},
        {HEAD "batching: {delay: 3}\n",
         "m.yaml:5: batching.delay: unknown field (allowed: max_queue_delay_us, "
         "preferred_batch_sizes, max_queue_size, dispatch_when_idle, single_queue, max_batches_out)"},
        {HEAD "batching: {max_batches_out: -1}\n",
         "m.yaml:5: batching.max_batches_out: '-1': expected a non-negative integer"},
        {HEAD "batching: {single_queue: 2}\n",
         "m.yaml:5: batching.single_queue: '2': expected true/false (or on/off, yes/no)"},
        {HEAD "cache: sometimes\n",
         "m.yaml:5: cache: 'sometimes': expected true/false (or on/off, yes/no)"},
        {HEAD "quantized: int4\n", "m.yaml:5: quantized: 'int4': expected one of none|int8"},
        {HEAD "instances: 0\n", "m.yaml:5: instances: '0': out of range [1, 64]"},
        {HEAD "shards: 65\n", "m.yaml:5: shards: '65': out of range [1, 64]"},
        {HEAD "placement: {device: tpu}\n",
         "m.yaml:5: placement.device: 'tpu': expected one of cpu|gpu"},
        {HEAD "placement: {instances: 2}\n",
         "m.yaml:5: placement.instances: unknown field (allowed: device, gpus, gpu_memory_mb, "
         "numa)"},
        {HEAD "placement: gpu\n",
         "m.yaml:5: placement: 'gpu': expected a mapping {device, gpus, gpu_memory_mb, numa}"},
        {HEAD "placement: {device: gpu, gpus: [0, 0]}\n",
         "m.yaml:5: placement.gpus[1]: '0': GPU listed twice"},
        {HEAD "placement: {device: gpu, gpus: [x]}\n",
         "m.yaml:5: placement.gpus[0]: 'x': expected a GPU id 0..15"},
        {HEAD "placement: {gpus: [0]}\n",
         "m.yaml:5: placement.gpus: '0': GPUs listed but device is cpu (set device: gpu)"},
        {HEAD "placement: {gpu_memory_mb: 10}\n",
         "m.yaml:5: placement.gpu_memory_mb: '10': gpu_memory_mb set but device is cpu (set "
         "device: gpu)"},
        {HEAD "placement: {numa: far}\n",
         "m.yaml:5: placement.numa: 'far': expected auto or a NUMA node number"},
        {HEAD "placement: {cores: 3}\n",
         "m.yaml:5: placement.cores: unknown field (allowed: device, gpus, gpu_memory_mb, numa)"},
        {HEAD "pre: normalize\n", "m.yaml:5: pre: expected a list of at most 8 stages"},
        {HEAD "pre: [{params: {scale: 1}}]\n", "m.yaml:5: pre[0]: missing required field 'stage'"},
        {HEAD "pre: [{stage: normalize, scale: 1}]\n",
         "m.yaml:5: pre[0].scale: unknown field (allowed: stage, params)"},
        {HEAD "post: [{stage: topk, params: [1, 2]}]\n",
         "m.yaml:5: post[0].params: expected a mapping of at most 8 params"},
        {HEAD "post: [{stage: topk, params: {k: {a: 1}}}]\n",
         "m.yaml:5: post[0].params.k: expected a scalar or a list of scalars"},
        {HEAD "stages: remote\n", "m.yaml:5: stages: 'remote': expected one of inline|pool"},
        {"name: m\nbackend: dense\ninputs: [{name: x, dtype: FP32, shape: [-1]}]\n"
         "outputs: [{name: label, dtype: INT64, shape: [-1]}, {name: y, dtype: FP32, shape: [-1]}]\n"
         "post: [{stage: argmax, params: {input: y, output: label}}]\n",
         "m.yaml:4: outputs[1]: 'y': backend outputs must come before the outputs post stages "
         "produce"},
        {"- a\n- b\n", "m.yaml: expected a mapping of model fields"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rs_model m;
        rs_err err = {0};
        int rc = parse_text(cases[i].text, &m, &err);
        if (rc != -1 || strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d\n  got:  %s\n  want: %s", i, rc, err.msg, cases[i].msg);
    }
}

static void test_parse_file(void **state) {
    (void)state;
    char root[64];
    fixture_tmpdir(root);
    fixture_model(root, "m", 1, HEAD);
    char file[256];
    snprintf(file, sizeof(file), "%s/m/1/model.yaml", root);
    rs_model m;
    rs_err err = {0};
    assert_int_equal(rs_model_parse_file(file, "m", 1, &m, &err), 0);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/m/1", root);
    assert_string_equal(m.dir, dir);
    assert_string_equal(m.file, file);
    snprintf(file, sizeof(file), "%s/m/1/nope.yaml", root);
    assert_int_equal(rs_model_parse_file(file, "m", 1, &m, &err), -1);
    char want[512];
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", file);
    assert_string_equal(err.msg, want);
    fixture_rmtree(root);
}

static void test_config_section(void **state) {
    (void)state;
    rs_err err = {0};
    rs_cfg *cfg = rs_cfg_load_string("models:\n"
                                     "  repository: [/abs/repo, rel]\n"
                                     "  load: [digits, \"mlp-bench:2\"]\n"
                                     "  skip_bad_models: true\n",
                                     "/etc/rs/server.yaml", &err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg);
    rs_cfg_node sec = rs_cfg_get(&root, "models");
    rs_registry_config rc;
    assert_int_equal(rs_registry_config_parse(&sec, &rc, &err), 0);
    assert_int_equal(rc.repo_count, 2);
    assert_string_equal(rc.repos[0], "/abs/repo");
    assert_string_equal(rc.repos[1], "/etc/rs/rel");
    assert_int_equal(rc.load_count, 2);
    assert_string_equal(rc.load[0].name, "digits");
    assert_int_equal(rc.load[0].version, 0);
    assert_string_equal(rc.load[1].name, "mlp-bench");
    assert_int_equal(rc.load[1].version, 2);
    assert_true(rc.skip_bad_models);
    rs_cfg_free(cfg);

    /* absent section: defaults, repository next to the config file */
    cfg = rs_cfg_load_string("server: {}\n", "/etc/rs/server.yaml", &err);
    root = rs_cfg_root(cfg);
    sec = rs_cfg_get(&root, "models");
    assert_int_equal(rs_registry_config_parse(&sec, &rc, &err), 0);
    assert_int_equal(rc.repo_count, 1);
    assert_string_equal(rc.repos[0], "/etc/rs/models");
    assert_int_equal(rc.load_count, 0);
    assert_false(rc.skip_bad_models);
    rs_cfg_free(cfg);

    static const bad_case bad[] = {
        {"models: {repo: x}\n",
         "c.yaml:1: models.repo: unknown field (allowed: repository, load, skip_bad_models)"},
        {"models: {repository: []}\n", "c.yaml:1: models.repository: expected 1..8 repository paths"},
        {"models: {load: [\"digits:0\"]}\n",
         "c.yaml:1: models.load[0]: 'digits:0': version must be in [1, 999999]"},
        {"models: {load: [\":3\"]}\n",
         "c.yaml:1: models.load[0]: ':3': expected a model name or name:version"},
        {"models: {skip_bad_models: perhaps}\n",
         "c.yaml:1: models.skip_bad_models: 'perhaps': expected true/false (or on/off, yes/no)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg = rs_cfg_load_string(bad[i].text, "c.yaml", &err);
        assert_non_null(cfg);
        root = rs_cfg_root(cfg);
        sec = rs_cfg_get(&root, "models");
        int rc2 = rs_registry_config_parse(&sec, &rc, &err);
        if (rc2 != -1 || strcmp(err.msg, bad[i].msg) != 0)
            fail_msg("case %zu: rc %d\n  got:  %s\n  want: %s", i, rc2, err.msg, bad[i].msg);
        rs_cfg_free(cfg);
    }
}

#define MODEL(n)                                                                                 \
    "name: " n "\nbackend: identity\n"                                                           \
    "inputs: [{name: x, dtype: FP32, shape: [-1, 2]}]\n"                                         \
    "outputs: [{name: y, dtype: FP32, shape: [-1, 2]}]\n"

static int fake_gpu_numa(int gpu, void *ctx) { return gpu + *(int *)ctx; }

static void test_registry_versions_lookup(void **state) {
    (void)state;
    char a[64], b[64];
    fixture_tmpdir(a);
    fixture_tmpdir(b);
    fixture_model(a, "alpha", 1, MODEL("alpha"));
    fixture_model(a, "alpha", 3, MODEL("alpha"));
    fixture_model(a, "alpha", 10, MODEL("alpha"));
    fixture_model(a, "beta", 2, MODEL("beta") "placement: {device: gpu, gpus: [3]}\n");
    fixture_mkdirs(a, "alpha/notaversion"); /* ignored: not a number */
    fixture_mkdirs(a, "gamma/1");           /* ignored: no model.yaml (e.g. generated later) */
    fixture_model(b, "alpha", 3, MODEL("alpha") "max_batch_size: 7\n"); /* shadowed by a */
    fixture_model(b, "delta", 1, MODEL("delta"));

    rs_registry_config cfg;
    rs_registry_config_default(&cfg, a);
    cfg.repo_count = 2;
    snprintf(cfg.repos[1], sizeof(cfg.repos[1]), "%s", b);
    int offset = 10;
    cfg.gpu_numa = fake_gpu_numa;
    cfg.gpu_numa_ctx = &offset;
    rs_err err = {0};
    rs_registry *r = rs_registry_create(&cfg, &err);
    assert_non_null(r);
    assert_int_equal(rs_registry_count(r), 5);
    assert_int_equal(rs_registry_skipped(r), 0);
    /* sorted by name then version */
    assert_string_equal(rs_registry_at(r, 0)->name, "alpha");
    assert_int_equal(rs_registry_at(r, 0)->version, 1);
    assert_int_equal(rs_registry_at(r, 1)->version, 3);
    assert_int_equal(rs_registry_at(r, 2)->version, 10);
    assert_string_equal(rs_registry_at(r, 3)->name, "beta");
    assert_string_equal(rs_registry_at(r, 4)->name, "delta");
    /* explicit and latest */
    assert_int_equal(rs_registry_find(r, "alpha", 0)->version, 10);
    assert_int_equal(rs_registry_find(r, "alpha", 3)->version, 3);
    assert_int_equal(rs_registry_find(r, "alpha", 3)->max_batch_size, 32); /* first repo won */
    assert_null(rs_registry_find(r, "alpha", 2));
    assert_null(rs_registry_find(r, "alph", 0));
    assert_null(rs_registry_find(r, "alphaa", 1));
    assert_null(rs_registry_find(r, "gamma", 0));
    assert_int_equal(rs_registry_find(r, "delta", 0)->version, 1);
    assert_ptr_equal(rs_registry_findn(r, "beta-extra", 4, 2), rs_registry_find(r, "beta", 2));
    /* GPU model's NUMA node comes from its GPU */
    assert_int_equal(rs_registry_find(r, "beta", 0)->placement.numa_resolved, 13);
    assert_int_equal(rs_registry_find(r, "delta", 0)->placement.numa_resolved, -1);
    rs_registry_destroy(r);

    /* load: only the named models / versions */
    cfg.load_count = 2;
    snprintf(cfg.load[0].name, sizeof(cfg.load[0].name), "alpha");
    cfg.load[0].version = 3;
    snprintf(cfg.load[1].name, sizeof(cfg.load[1].name), "delta");
    cfg.load[1].version = 0;
    r = rs_registry_create(&cfg, &err);
    assert_non_null(r);
    assert_int_equal(rs_registry_count(r), 2);
    assert_int_equal(rs_registry_find(r, "alpha", 0)->version, 3);
    assert_null(rs_registry_find(r, "alpha", 10));
    assert_null(rs_registry_find(r, "beta", 0));
    rs_registry_destroy(r);

    /* a model named in load that is nowhere */
    cfg.load[1].version = 4;
    assert_null(rs_registry_create(&cfg, &err));
    char want[512];
    snprintf(want, sizeof(want),
             "models.load: 'delta:4': no such model in %s (or the other repositories)", a);
    assert_string_equal(err.msg, want);

    /* a missing repository */
    rs_registry_config_default(&cfg, "/nonexistent/repo");
    assert_null(rs_registry_create(&cfg, &err));
    assert_string_equal(err.msg,
                        "/nonexistent/repo: cannot read model repository: No such file or directory");
    fixture_rmtree(a);
    fixture_rmtree(b);
}

static void test_registry_bad_model(void **state) {
    (void)state;
    char a[64];
    fixture_tmpdir(a);
    fixture_model(a, "good", 1, MODEL("good"));
    fixture_model(a, "bad", 1, MODEL("bad") "shards: 0\n");
    fixture_model(a, "misnamed", 1, MODEL("other"));
    rs_registry_config cfg;
    rs_registry_config_default(&cfg, a);
    rs_err err = {0};
    /* refused: the first bad model in name order names its file and field */
    assert_null(rs_registry_create(&cfg, &err));
    char want[512];
    snprintf(want, sizeof(want), "%s/bad/1/model.yaml:5: shards: '0': out of range [1, 64]", a);
    assert_string_equal(err.msg, want);
    /* --skip-bad-models: the good one loads, the bad ones are counted */
    cfg.skip_bad_models = true;
    rs_registry *r = rs_registry_create(&cfg, &err);
    assert_non_null(r);
    assert_int_equal(rs_registry_count(r), 1);
    assert_int_equal(rs_registry_skipped(r), 2);
    assert_non_null(rs_registry_find(r, "good", 1));
    rs_registry_destroy(r);
    fixture_rmtree(a);
}

static void test_metadata_json(void **state) {
    (void)state;
    char a[64];
    fixture_tmpdir(a);
    const char *text = "name: meta\nbackend: dense\n"
                       "inputs: [{name: pixels, dtype: FP32, shape: [-1, 64]}]\n"
                       "outputs: [{name: probabilities, dtype: FP32, shape: [-1, 10]},\n"
                       "          {name: label, dtype: INT64, shape: [-1]}]\n"
                       "post: [{stage: argmax, params: {input: probabilities, output: label}}]\n";
    fixture_model(a, "meta", 1, text);
    fixture_model(a, "meta", 2, text);
    rs_registry_config cfg;
    rs_registry_config_default(&cfg, a);
    rs_err err = {0};
    rs_registry *r = rs_registry_create(&cfg, &err);
    assert_non_null(r);
    const char *want =
        "{\"name\":\"meta\",\"versions\":[\"1\",\"2\"],\"platform\":\"ringserve_dense\","
        "\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[-1,64]}],"
        "\"outputs\":[{\"name\":\"probabilities\",\"datatype\":\"FP32\",\"shape\":[-1,10]},"
        "{\"name\":\"label\",\"datatype\":\"INT64\",\"shape\":[-1]}]}";
    assert_string_equal(rs_registry_find(r, "meta", 1)->metadata_json, want);
    assert_string_equal(rs_registry_find(r, "meta", 0)->metadata_json, want);
    /* rendered alone: just its own version */
    char *alone = rs_model_metadata_render(rs_registry_find(r, "meta", 2), NULL, 0);
    assert_non_null(strstr(alone, "\"versions\":[\"2\"]"));
    free(alone);
    rs_registry_destroy(r);
    fixture_rmtree(a);
}

/* The committed repository itself must load. */
static void test_committed_repository(void **state) {
    (void)state;
    char repo[512];
    snprintf(repo, sizeof(repo), "%s/models", getenv("RINGSERVE_SRC"));
    rs_registry_config cfg;
    rs_registry_config_default(&cfg, repo);
    rs_err err = {0};
    rs_registry *r = rs_registry_create(&cfg, &err);
    if (!r) fail_msg("%s", err.msg);
    const rs_model *d = rs_registry_find(r, "digits", 0);
    assert_non_null(d);
    assert_int_equal(d->inputs[0].dims[1], 64);
    assert_int_equal(d->backend_outputs, 1);
    assert_string_equal(d->pre[0].name, "normalize");
    assert_non_null(rs_registry_find(r, "identity", 1));
    assert_null(rs_registry_find(r, "mlp-bench", 0)); /* generated into the build tree only */
    rs_registry_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_model),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_config_section),
        cmocka_unit_test(test_registry_versions_lookup),
        cmocka_unit_test(test_registry_bad_model),
        cmocka_unit_test(test_metadata_json),
        cmocka_unit_test(test_committed_repository),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for engine/kserve: KServe v2 infer JSON -> tensors for every
 * datatype, flat and nested data, the binary tensor data extension both ways,
 * response rendering, and every bad request with its exact message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "engine/kserve/kserve.h"
#include "engine/model_registry/registry.h"

static uint8_t arena_mem[1 << 16];

static int parse(const char *json, rs_kserve_request *req, rs_err *err) {
    rs_kserve_arena a;
    rs_kserve_arena_init(&a, arena_mem, sizeof(arena_mem));
    memset(err, 0, sizeof(*err));
    return rs_kserve_parse_infer((const uint8_t *)json, strlen(json), strlen(json), req, &a, err);
}

static void expect_error(const char *json, const char *msg) {
    rs_kserve_request req;
    rs_err err;
    int rc = parse(json, &req, &err);
    if (rc != -1) fail_msg("accepted: %s", json);
    assert_string_equal(err.msg, msg);
}

static void test_fp32_flat_and_nested(void **state) {
    (void)state;
    rs_kserve_request req;
    rs_err err;
    const char *flat = "{\"id\":\"r1\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],"
                       "\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6.5]}]}";
    assert_int_equal(parse(flat, &req, &err), 0);
    assert_true(req.has_id);
    assert_string_equal(req.id, "r1");
    assert_int_equal(req.inputs.count, 1);
    const rs_tensor_view *t = &req.inputs.t[0];
    assert_int_equal(t->name.len, 1);
    assert_memory_equal(t->name.ptr, "x", 1);
    assert_int_equal(t->dtype, RS_DT_FP32);
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->dims[1], 3);
    assert_int_equal(t->byte_len, 24);
    float want[6] = {1, 2, 3, 4, 5, 6.5f};
    assert_memory_equal(t->data, want, 24);
    const char *nested = "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\","
                         "\"data\":[[1,2,3],[4,5,6.5]]}]}";
    assert_int_equal(parse(nested, &req, &err), 0);
    assert_false(req.has_id);
    assert_memory_equal(req.inputs.t[0].data, want, 24);
}

static void test_all_datatypes(void **state) {
    (void)state;
    rs_kserve_request req;
    rs_err err;
    const char *json =
        "{\"inputs\":["
        "{\"name\":\"b\",\"shape\":[3],\"datatype\":\"BOOL\",\"data\":[true,false,true]},"
        "{\"name\":\"u8\",\"shape\":[2],\"datatype\":\"UINT8\",\"data\":[0,255]},"
        "{\"name\":\"u16\",\"shape\":[1],\"datatype\":\"UINT16\",\"data\":[65535]},"
        "{\"name\":\"u32\",\"shape\":[1],\"datatype\":\"UINT32\",\"data\":[4294967295]},"
        "{\"name\":\"u64\",\"shape\":[1],\"datatype\":\"UINT64\",\"data\":[18446744073709551615]},"
        "{\"name\":\"i8\",\"shape\":[2],\"datatype\":\"INT8\",\"data\":[-128,127]},"
        "{\"name\":\"i16\",\"shape\":[1],\"datatype\":\"INT16\",\"data\":[-32768]},"
        "{\"name\":\"i32\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":[-2147483648]},"
        "{\"name\":\"i64\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":[-9223372036854775807]},"
        "{\"name\":\"f16\",\"shape\":[2],\"datatype\":\"FP16\",\"data\":[1.5,-2]},"
        "{\"name\":\"bf16\",\"shape\":[1],\"datatype\":\"BF16\",\"data\":[1.5]},"
        "{\"name\":\"f64\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":[0.1]},"
        "{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"ab\",\"\"]}"
        "]}";
    assert_int_equal(parse(json, &req, &err), 0);
    assert_int_equal(req.inputs.count, 13);
    const rs_tensor_list *l = &req.inputs;
    uint8_t b[3] = {1, 0, 1};
    assert_memory_equal(rs_tensor_find(l, "b", 1)->data, b, 3);
    uint8_t u8[2] = {0, 255};
    assert_memory_equal(rs_tensor_find(l, "u8", 2)->data, u8, 2);
    uint16_t u16 = 65535;
    assert_memory_equal(rs_tensor_find(l, "u16", 3)->data, &u16, 2);
    uint32_t u32 = 4294967295u;
    assert_memory_equal(rs_tensor_find(l, "u32", 3)->data, &u32, 4);
    uint64_t u64 = UINT64_MAX;
    assert_memory_equal(rs_tensor_find(l, "u64", 3)->data, &u64, 8);
    int8_t i8[2] = {-128, 127};
    assert_memory_equal(rs_tensor_find(l, "i8", 2)->data, i8, 2);
    int16_t i16 = -32768;
    assert_memory_equal(rs_tensor_find(l, "i16", 3)->data, &i16, 2);
    int32_t i32 = INT32_MIN;
    assert_memory_equal(rs_tensor_find(l, "i32", 3)->data, &i32, 4);
    int64_t i64 = -INT64_MAX;
    assert_memory_equal(rs_tensor_find(l, "i64", 3)->data, &i64, 8);
    uint16_t f16[2] = {0x3e00, 0xc000};
    assert_memory_equal(rs_tensor_find(l, "f16", 3)->data, f16, 4);
    uint16_t bf16 = 0x3fc0;
    assert_memory_equal(rs_tensor_find(l, "bf16", 4)->data, &bf16, 2);
    double f64 = 0.1;
    assert_memory_equal(rs_tensor_find(l, "f64", 3)->data, &f64, 8);
    const rs_tensor_view *s = rs_tensor_find(l, "s", 1);
    assert_int_equal(s->byte_len, 4 + 2 + 4);
    assert_memory_equal(s->data, "\x02\x00\x00\x00" "ab" "\x00\x00\x00\x00", 10);
}

static void test_parameters_and_outputs(void **state) {
    (void)state;
    rs_kserve_request req;
    rs_err err;
    const char *json = "{\"parameters\":{\"priority\":2,\"timeout\":5000,\"binary_data_output\":true,"
                       "\"async\":true,\"other\":\"ignored\"},"
                       "\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":[1]}],"
                       "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}},{\"name\":\"z\"}]}";
    assert_int_equal(parse(json, &req, &err), 0);
    assert_true(req.params.has_priority);
    assert_int_equal(req.params.priority, 2);
    assert_true(req.params.has_timeout);
    assert_int_equal(req.params.timeout_us, 5000);
    assert_true(req.params.binary_data_output);
    assert_true(req.params.async);
    assert_int_equal(req.output_count, 2);
    assert_string_equal(req.outputs[0].name, "y");
    assert_true(req.outputs[0].binary_data);
    assert_false(req.outputs[1].binary_data);
}

static void test_bad_requests(void **state) {
    (void)state;
    expect_error("{\"inputs\":[", "malformed JSON: unexpected end of input after 11 bytes");
    expect_error("{\"inputs\" 1}", "malformed JSON at byte 10: object property name separator ':' expected");
    expect_error("{} x", "malformed JSON at byte 3: unexpected text after the JSON value");
    expect_error("[1]", "request body must be a JSON object");
    expect_error("{}", "'inputs' is missing");
    expect_error("{\"inputs\":[]}", "'inputs' must be a non-empty array");
    expect_error("{\"id\":5,\"inputs\":[]}", "'id' must be a string");
    expect_error("{\"parameters\":{\"priority\":-1},\"inputs\":[]}",
                 "parameter 'priority' must be an integer 0..4294967295");
    expect_error("{\"parameters\":{\"timeout\":\"soon\"},\"inputs\":[]}",
                 "parameter 'timeout' must be a non-negative integer (microseconds)");
    expect_error("{\"parameters\":{\"async\":1},\"inputs\":[]}", "parameter 'async' must be true or false");
    expect_error("{\"inputs\":[3]}", "inputs[0] must be an object");
    expect_error("{\"inputs\":[{\"shape\":[1]}]}", "inputs[0]: 'name' is missing");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"shape\":[1]}]}", "input 'x': 'datatype' is missing");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP33\",\"shape\":[1]}]}",
                 "input 'x': datatype 'FP33' is not a KServe v2 datatype");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\"}]}", "input 'x': 'shape' is missing");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2,-1],\"data\":[]}]}",
                 "input 'x': 'shape' must be an array of non-negative integers");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2]}]}",
                 "input 'x': 'data' is missing");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2,3],\"data\":[1,2,3,4,5]}]}",
                 "input 'x': shape [2,3] needs 6 elements, data has 5");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[1,2,3]}]}",
                 "input 'x': shape [2] needs 2 elements, data has 3");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2,2],\"data\":[[1,2,3],[4]]}]}",
                 "input 'x': nested data does not follow shape [2,2] (give one array per dimension, or flat data)");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2,2],\"data\":[[1,2],3,4]}]}",
                 "input 'x': nested data does not follow shape [2,2] (give one array per dimension, or flat data)");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[1,\"a\"]}]}",
                 "input 'x': data[1] is not a number");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[1,1e39]}]}",
                 "input 'x': data[1] = 1e+39 is out of range for FP32");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP16\",\"shape\":[1],\"data\":[70000]}]}",
                 "input 'x': data[0] = 70000 is out of range for FP16");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"UINT8\",\"shape\":[2],\"data\":[1,256]}]}",
                 "input 'x': data[1] = 256 is out of range for UINT8");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"UINT32\",\"shape\":[1],\"data\":[-1]}]}",
                 "input 'x': data[0] = -1 is out of range for UINT32");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"INT32\",\"shape\":[1],\"data\":[1.5]}]}",
                 "input 'x': data[0] is not an integer");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"BOOL\",\"shape\":[1],\"data\":[1]}]}",
                 "input 'x': data[0] is not a boolean");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[1]}]}",
                 "input 'x': data[0] is not a string");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"a\"]}]}",
                 "input 'x': shape [2] needs 2 elements, data has 1");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"INT8\",\"shape\":[1],\"data\":[1]},"
                 "{\"name\":\"x\",\"datatype\":\"INT8\",\"shape\":[1],\"data\":[1]}]}",
                 "input 'x' appears more than once");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1000000,1000000],\"data\":[]}]}",
                 "input 'x': shape [1000000,1000000] is too large");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],"
                 "\"parameters\":{\"binary_data_size\":4},\"data\":[1]}]}",
                 "input 'x': has both 'data' and binary_data_size");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],"
                 "\"parameters\":{\"binary_data_size\":4}}]}",
                 "input 'x': binary_data_size 4 but only 0 binary bytes remain after the JSON header");
    expect_error("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"INT8\",\"shape\":[1],\"data\":[1]}],"
                 "\"outputs\":[{\"nom\":\"y\"}]}",
                 "outputs[0] must be an object with a string 'name'");
    expect_error("", "request body is empty: expected a JSON object");
}

static void test_arena_full(void **state) {
    (void)state;
    static uint8_t small[16];
    rs_kserve_arena a;
    rs_kserve_arena_init(&a, small, sizeof(small));
    rs_kserve_request req;
    rs_err err;
    const char *json = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[4],\"data\":[1,2,3,4]}]}";
    assert_int_equal(rs_kserve_parse_infer((const uint8_t *)json, strlen(json), strlen(json), &req, &a, &err), -1);
    assert_string_equal(err.msg, "request arena full: tensors need more than 16 bytes");
}

static void test_binary_round_trip(void **state) {
    (void)state;
    /* Request: x FP32 [2,2] binary, s BYTES [2] binary, k INT32 [1] as JSON. */
    const char *json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\"FP32\","
                       "\"parameters\":{\"binary_data_size\":16}},"
                       "{\"name\":\"k\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":[7]},"
                       "{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\","
                       "\"parameters\":{\"binary_data_size\":11}}]}";
    float x[4] = {1.5f, -2, 3.25f, 4};
    uint8_t body[512];
    size_t jl = strlen(json);
    memcpy(body, json, jl);
    memcpy(body + jl, x, 16);
    memcpy(body + jl + 16, "\x03\x00\x00\x00" "abc" "\x00\x00\x00\x00", 11);
    size_t len = jl + 27;
    char hdr[16];
    snprintf(hdr, sizeof(hdr), "%zu", jl);
    size_t json_len = 0;
    rs_err err;
    assert_int_equal(rs_kserve_header_length(hdr, strlen(hdr), len, &json_len, &err), 0);
    assert_int_equal(json_len, jl);
    assert_int_equal(rs_kserve_header_length(" 12\t", 4, len, &json_len, &err), 0);
    assert_int_equal(json_len, 12);
    assert_int_equal(rs_kserve_header_length("  ", 2, len, &json_len, &err), -1);
    assert_int_equal(rs_kserve_header_length("x1", 2, len, &json_len, &err), -1);
    assert_int_equal(rs_kserve_header_length(hdr, strlen(hdr), len, &json_len, &err), 0);
    assert_string_equal(err.msg, "Inference-Header-Content-Length: 'x1' must be a number of bytes "
                                 "<= the body length (257)");
    rs_kserve_arena a;
    rs_kserve_arena_init(&a, arena_mem, sizeof(arena_mem));
    rs_kserve_request req;
    assert_int_equal(rs_kserve_parse_infer(body, len, json_len, &req, &a, &err), 0);
    assert_int_equal(req.inputs.count, 3);
    assert_memory_equal(req.inputs.t[0].data, x, 16);
    assert_int_equal(req.inputs.t[2].byte_len, 11);

    /* Too many binary bytes, and a size that disagrees with the shape. */
    rs_kserve_arena_init(&a, arena_mem, sizeof(arena_mem));
    assert_int_equal(rs_kserve_parse_infer(body, len + 1, json_len, &req, &a, &err), -1);
    assert_string_equal(err.msg, "binary data: 28 bytes after the JSON header but the inputs' "
                                 "binary_data_size add up to 27");
    const char *bad = "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\","
                      "\"parameters\":{\"binary_data_size\":4}}]}";
    memcpy(body, bad, strlen(bad));
    memset(body + strlen(bad), 0, 4);
    rs_kserve_arena_init(&a, arena_mem, sizeof(arena_mem));
    assert_int_equal(rs_kserve_parse_infer(body, strlen(bad) + 4, strlen(bad), &req, &a, &err), -1);
    assert_string_equal(err.msg, "input 'x': binary_data_size 4 but shape [2] of FP32 needs 8 bytes");

    /* Response with x binary and k as JSON: the binary section equals x. */
    rs_kserve_arena_init(&a, arena_mem, sizeof(arena_mem));
    assert_int_equal(rs_kserve_parse_infer((const uint8_t *)json, 0, 0, &req, &a, &err), -1);
    memcpy(body, json, jl);
    memcpy(body + jl, x, 16);
    memcpy(body + jl + 16, "\x03\x00\x00\x00" "abc" "\x00\x00\x00\x00", 11);
    assert_int_equal(rs_kserve_parse_infer(body, len, json_len, &req, &a, &err), 0);
    rs_kserve_request ask = {0};
    ask.output_count = 1;
    strcpy(ask.outputs[0].name, "x");
    ask.outputs[0].binary_data = true;
    bool binary[RS_MAX_TENSORS];
    assert_int_equal(rs_kserve_output_binary(&ask, &req.inputs, binary, &err), 0);
    assert_true(binary[0]);
    assert_false(binary[1]);
    assert_false(binary[2]);
    rs_kserve_response resp = {.model_name = "m", .model_version = "1", .id = "r",
                               .outputs = &req.inputs, .binary = binary};
    uint8_t out[1024];
    size_t out_json = 0, total = 0;
    assert_int_equal(rs_kserve_render_response(&resp, out, sizeof(out), &out_json, &total, &err), 0);
    const char *want =
        "{\"model_name\":\"m\",\"model_version\":\"1\",\"id\":\"r\",\"outputs\":["
        "{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2,2],\"parameters\":{\"binary_data_size\":16}},"
        "{\"name\":\"k\",\"datatype\":\"INT32\",\"shape\":[1],\"data\":[7]},"
        "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"abc\",\"\"]}]}";
    assert_int_equal(out_json, strlen(want));
    assert_memory_equal(out, want, out_json);
    assert_int_equal(total, out_json + 16);
    assert_memory_equal(out + out_json, x, 16);
    /* Too small a buffer is an error, not a cut. */
    assert_int_equal(rs_kserve_render_response(&resp, out, 20, &out_json, &total, &err), -1);
    ask.outputs[0].name[0] = 'q';
    assert_int_equal(rs_kserve_output_binary(&ask, &req.inputs, binary, &err), -1);
    assert_string_equal(err.msg, "requested output 'q' is not an output of the model");
}

static void test_render_json_values(void **state) {
    (void)state;
    rs_kserve_request req;
    rs_err err;
    const char *json = "{\"inputs\":[{\"name\":\"p\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[0.1,2,-0.5]},"
                       "{\"name\":\"d\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":[0.1]},"
                       "{\"name\":\"b\",\"shape\":[2],\"datatype\":\"BOOL\",\"data\":[true,false]},"
                       "{\"name\":\"u\",\"shape\":[1],\"datatype\":\"UINT64\",\"data\":[18446744073709551615]},"
                       "{\"name\":\"h\",\"shape\":[1],\"datatype\":\"FP16\",\"data\":[0.5]}]}";
    assert_int_equal(parse(json, &req, &err), 0);
    rs_kserve_response resp = {.model_name = "m", .outputs = &req.inputs};
    uint8_t out[1024];
    size_t jl, total;
    assert_int_equal(rs_kserve_render_response(&resp, out, sizeof(out), &jl, &total, &err), 0);
    out[jl] = 0;
    assert_string_equal((char *)out,
        "{\"model_name\":\"m\",\"outputs\":["
        "{\"name\":\"p\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":[0.100000001,2.0,-0.5]},"
        "{\"name\":\"d\",\"datatype\":\"FP64\",\"shape\":[1],\"data\":[0.10000000000000001]},"
        "{\"name\":\"b\",\"datatype\":\"BOOL\",\"shape\":[2],\"data\":[true,false]},"
        "{\"name\":\"u\",\"datatype\":\"UINT64\",\"shape\":[1],\"data\":[18446744073709551615]},"
        "{\"name\":\"h\",\"datatype\":\"FP16\",\"shape\":[1],\"data\":[0.5]}]}");
}

static void test_small_bodies(void **state) {
    (void)state;
    char out[256];
    assert_int_equal(rs_kserve_render_error("input 'x': \"bad\"\n", out, sizeof(out)),
                     strlen("{\"error\":\"input 'x': \\\"bad\\\"\\n\"}"));
    assert_string_equal(out, "{\"error\":\"input 'x': \\\"bad\\\"\\n\"}");
    const char *ext[] = {"binary_tensor_data", "async"};
    rs_kserve_render_server_metadata("ringserve", "0.1.0", ext, 2, out, sizeof(out));
    assert_string_equal(out, "{\"name\":\"ringserve\",\"version\":\"0.1.0\","
                             "\"extensions\":[\"binary_tensor_data\",\"async\"]}");
    rs_kserve_render_bool("ready", false, out, sizeof(out));
    assert_string_equal(out, "{\"ready\":false}");
    rs_kserve_render_async("r-7", "pending", out, sizeof(out));
    assert_string_equal(out, "{\"id\":\"r-7\",\"status\":\"pending\"}");
    char tiny[8];
    assert_int_equal(rs_kserve_render_bool("ready", true, tiny, sizeof(tiny)), 14);
    assert_string_equal(tiny, "{\"ready");
}

static void expect_invalid(const rs_model *m, const char *json, const char *msg) {
    rs_kserve_request req;
    rs_err err;
    if (parse(json, &req, &err) != 0) fail_msg("parse: %s", err.msg);
    uint32_t rows = 0;
    assert_int_equal(rs_kserve_validate(&req.inputs, m, &rows, &err), -1);
    assert_string_equal(err.msg, msg);
}

static void test_validate_against_model(void **state) {
    (void)state;
    static rs_model m;
    memset(&m, 0, sizeof(m));
    strcpy(m.name, "digits");
    m.max_batch_size = 8;
    m.input_count = 2;
    strcpy(m.inputs[0].name, "pixels");
    m.inputs[0].dtype = RS_DT_FP32;
    m.inputs[0].rank = 2;
    m.inputs[0].dims[0] = -1;
    m.inputs[0].dims[1] = 4;
    strcpy(m.inputs[1].name, "mask");
    m.inputs[1].dtype = RS_DT_BOOL;
    m.inputs[1].rank = 1;
    m.inputs[1].dims[0] = -1;
    rs_kserve_request req;
    rs_err err;
    assert_int_equal(parse("{\"inputs\":[{\"name\":\"pixels\",\"shape\":[2,4],\"datatype\":\"FP32\","
                           "\"data\":[1,2,3,4,5,6,7,8]},{\"name\":\"mask\",\"shape\":[2],"
                           "\"datatype\":\"BOOL\",\"data\":[true,false]}]}", &req, &err), 0);
    uint32_t rows = 0;
    assert_int_equal(rs_kserve_validate(&req.inputs, &m, &rows, &err), 0);
    assert_int_equal(rows, 2);
    const char *mask1 = ",{\"name\":\"mask\",\"shape\":[1],\"datatype\":\"BOOL\",\"data\":[true]}]}";
    char json[512];
    snprintf(json, sizeof(json), "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[1,4],\"datatype\":\"FP64\","
             "\"data\":[1,2,3,4]}%s", mask1);
    expect_invalid(&m, json, "input 'pixels': datatype FP64 but model 'digits' expects FP32");
    snprintf(json, sizeof(json), "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[1,3],\"datatype\":\"FP32\","
             "\"data\":[1,2,3]}%s", mask1);
    expect_invalid(&m, json, "input 'pixels': shape [1,3] does not match model 'digits' shape [-1,4]");
    expect_invalid(&m, "{\"inputs\":[{\"name\":\"mask\",\"shape\":[1],\"datatype\":\"BOOL\",\"data\":[true]}]}",
                   "input 'pixels' is missing (model 'digits' needs it)");
    snprintf(json, sizeof(json), "{\"inputs\":[{\"name\":\"foo\",\"shape\":[1],\"datatype\":\"BOOL\","
             "\"data\":[true]}%s", mask1);
    expect_invalid(&m, json, "model 'digits' has no input 'foo'");
    snprintf(json, sizeof(json), "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[2,4],\"datatype\":\"FP32\","
             "\"data\":[1,2,3,4,5,6,7,8]}%s", mask1);
    expect_invalid(&m, json, "inputs disagree on the batch size: 'pixels' has 2 rows, 'mask' has 1");
    m.max_batch_size = 1;
    snprintf(json, sizeof(json), "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[2,4],\"datatype\":\"FP32\","
             "\"data\":[1,2,3,4,5,6,7,8]},{\"name\":\"mask\",\"shape\":[2],\"datatype\":\"BOOL\","
             "\"data\":[true,true]}]}");
    expect_invalid(&m, json, "input 'mask': batch of 2 rows is over model 'digits' max_batch_size 1");
    snprintf(json, sizeof(json), "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[0,4],\"datatype\":\"FP32\","
             "\"data\":[]},{\"name\":\"mask\",\"shape\":[0],\"datatype\":\"BOOL\",\"data\":[]}]}");
    expect_invalid(&m, json, "input 'mask': batch of 0 rows (at least 1 is needed)");
}

int main(void) {
    rs_kserve_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp32_flat_and_nested),
        cmocka_unit_test(test_all_datatypes),
        cmocka_unit_test(test_parameters_and_outputs),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_arena_full),
        cmocka_unit_test(test_binary_round_trip),
        cmocka_unit_test(test_render_json_values),
        cmocka_unit_test(test_small_bodies),
        cmocka_unit_test(test_validate_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

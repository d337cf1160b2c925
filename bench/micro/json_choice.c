/* json_choice — which JSON library parses and renders KServe v2 infer bodies
 * fastest: jansson, json-c or cJSON (all three are Debian packages).
 *
 * The hot path of the HTTP front door is: parse an infer request, walk
 * inputs[i].data converting numbers into a float arena; build a response with
 * outputs[i].data and serialize it. Both are measured per library on two
 * representative bodies:
 *   digits   : input  [8,64] FP32 (pixel values 0..16), output [8,10] FP32
 *   identity : input  [1,16] FP32 (random floats),      output [1,16] FP32
 *
 * jansson and json-c export clashing symbols (json_object_get...), so this
 * file is compiled once per library (-DJSON_LIB=1 jansson, 2 json-c, 3 cJSON)
 * into three binaries that link only their library; run them back to back:
 *
 *   for l in jansson json-c cjson; do build/bench/micro/bench_json_$l 0.5; done
 *
 * Prints ns per operation; ratios between libraries in one run are what
 * docs/perf.md records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/clock.h"

typedef struct body_case {
    const char *name;
    int in_rows, in_cols;
    int out_rows, out_cols;
    char *request; /* JSON text */
    size_t request_len;
    float *out_values;
} body_case;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* The request text is produced once with plain printf: it is what a client
 * would send (integers for digits pixels, short decimals for identity). */
static void make_case(body_case *c, const char *name, int in_rows, int in_cols, int out_rows,
                      int out_cols, int integers) {
    c->name = name;
    c->in_rows = in_rows;
    c->in_cols = in_cols;
    c->out_rows = out_rows;
    c->out_cols = out_cols;
    size_t cap = 256 + (size_t)in_rows * in_cols * 24;
    c->request = malloc(cap);
    size_t n =
        (size_t)snprintf(c->request, cap,
                         "{\"id\":\"req-1\",\"parameters\":{\"priority\":1},\"inputs\":[{"
                         "\"name\":\"input\",\"shape\":[%d,%d],\"datatype\":\"FP32\",\"data\":[",
                         in_rows, in_cols);
    for (int i = 0; i < in_rows * in_cols; i++) {
        if (integers)
            n += (size_t)snprintf(c->request + n, cap - n, "%s%d", i ? "," : "", (int)(rnd() * 17));
        else
            n += (size_t)snprintf(c->request + n, cap - n, "%s%.6g", i ? "," : "", rnd() * 2 - 1);
    }
    n += (size_t)snprintf(c->request + n, cap - n, "]}]}");
    c->request_len = n;
    c->out_values = malloc(sizeof(float) * (size_t)out_rows * out_cols);
    for (int i = 0; i < out_rows * out_cols; i++)
        c->out_values[i] = (float)rnd();
}

static volatile double sink;

#if JSON_LIB == 1
#include <jansson.h>
#define LIB_NAME "jansson"
/* ---- jansson ---------------------------------------------------------- */
static int jansson_parse(const body_case *c, float *arena) {
    json_t *root = json_loadb(c->request, c->request_len, 0, NULL);
    if (!root) return -1;
    json_t *in = json_array_get(json_object_get(root, "inputs"), 0);
    json_t *data = json_object_get(in, "data");
    size_t n = json_array_size(data);
    for (size_t i = 0; i < n; i++)
        arena[i] = (float)json_number_value(json_array_get(data, i));
    sink += json_string_length(json_object_get(in, "datatype"));
    json_decref(root);
    return (int)n;
}

static size_t jansson_render(const body_case *c, char *buf, size_t cap) {
    json_t *root = json_object();
    json_object_set_new(root, "model_name", json_string("digits"));
    json_object_set_new(root, "model_version", json_string("1"));
    json_object_set_new(root, "id", json_string("req-1"));
    json_t *out = json_object();
    json_object_set_new(out, "name", json_string("output"));
    json_t *shape = json_array();
    json_array_append_new(shape, json_integer(c->out_rows));
    json_array_append_new(shape, json_integer(c->out_cols));
    json_object_set_new(out, "shape", shape);
    json_object_set_new(out, "datatype", json_string("FP32"));
    json_t *data = json_array();
    for (int i = 0; i < c->out_rows * c->out_cols; i++)
        json_array_append_new(data, json_real(c->out_values[i]));
    json_object_set_new(out, "data", data);
    json_t *outs = json_array();
    json_array_append_new(outs, out);
    json_object_set_new(root, "outputs", outs);
    size_t n = json_dumpb(root, buf, cap, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    return n;
}

#define lib_parse jansson_parse
#define lib_render jansson_render
#elif JSON_LIB == 2
#include <json-c/json.h>
#define LIB_NAME "json-c"
/* ---- json-c ----------------------------------------------------------- */
static int jsonc_parse(const body_case *c, float *arena) {
    json_tokener *tok = json_tokener_new();
    json_object *root = json_tokener_parse_ex(tok, c->request, (int)c->request_len);
    json_tokener_free(tok);
    if (!root) return -1;
    json_object *inputs = NULL, *data = NULL, *dt = NULL;
    json_object_object_get_ex(root, "inputs", &inputs);
    json_object *in = json_object_array_get_idx(inputs, 0);
    json_object_object_get_ex(in, "data", &data);
    json_object_object_get_ex(in, "datatype", &dt);
    size_t n = json_object_array_length(data);
    for (size_t i = 0; i < n; i++)
        arena[i] = (float)json_object_get_double(json_object_array_get_idx(data, i));
    sink += json_object_get_string_len(dt);
    json_object_put(root);
    return (int)n;
}

static size_t jsonc_render(const body_case *c, char *buf, size_t cap) {
    json_object *root = json_object_new_object();
    json_object_object_add(root, "model_name", json_object_new_string("digits"));
    json_object_object_add(root, "model_version", json_object_new_string("1"));
    json_object_object_add(root, "id", json_object_new_string("req-1"));
    json_object *out = json_object_new_object();
    json_object_object_add(out, "name", json_object_new_string("output"));
    json_object *shape = json_object_new_array();
    json_object_array_add(shape, json_object_new_int(c->out_rows));
    json_object_array_add(shape, json_object_new_int(c->out_cols));
    json_object_object_add(out, "shape", shape);
    json_object_object_add(out, "datatype", json_object_new_string("FP32"));
    json_object *data = json_object_new_array_ext(c->out_rows * c->out_cols);
    for (int i = 0; i < c->out_rows * c->out_cols; i++)
        json_object_array_add(data, json_object_new_double(c->out_values[i]));
    json_object_object_add(out, "data", data);
    json_object *outs = json_object_new_array();
    json_object_array_add(outs, out);
    json_object_object_add(root, "outputs", outs);
    size_t len = 0;
    const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
    if (len < cap) memcpy(buf, s, len);
    json_object_put(root);
    return len;
}

#define lib_parse jsonc_parse
#define lib_render jsonc_render
#elif JSON_LIB == 3
#include <cjson/cJSON.h>
#define LIB_NAME "cJSON"
/* ---- cJSON ------------------------------------------------------------ */
static int cjson_parse(const body_case *c, float *arena) {
    cJSON *root = cJSON_ParseWithLength(c->request, c->request_len);
    if (!root) return -1;
    cJSON *in = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "inputs"), 0);
    cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, data) arena[n++] = (float)v->valuedouble;
    sink += strlen(cJSON_GetObjectItemCaseSensitive(in, "datatype")->valuestring);
    cJSON_Delete(root);
    return n;
}

static size_t cjson_render(const body_case *c, char *buf, size_t cap) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model_name", "digits");
    cJSON_AddStringToObject(root, "model_version", "1");
    cJSON_AddStringToObject(root, "id", "req-1");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "name", "output");
    int shape_v[2] = {c->out_rows, c->out_cols};
    cJSON_AddItemToObject(out, "shape", cJSON_CreateIntArray(shape_v, 2));
    cJSON_AddStringToObject(out, "datatype", "FP32");
    cJSON_AddItemToObject(out, "data",
                          cJSON_CreateFloatArray(c->out_values, c->out_rows * c->out_cols));
    cJSON *outs = cJSON_CreateArray();
    cJSON_AddItemToArray(outs, out);
    cJSON_AddItemToObject(root, "outputs", outs);
    int ok = cJSON_PrintPreallocated(root, buf, (int)cap, 0);
    cJSON_Delete(root);
    return ok ? strlen(buf) : 0;
}

#define lib_parse cjson_parse
#define lib_render cjson_render
#else
#error "define JSON_LIB as 1 (jansson), 2 (json-c) or 3 (cJSON)"
#endif

typedef struct lib {
    const char *name;
    int (*parse)(const body_case *, float *);
    size_t (*render)(const body_case *, char *, size_t);
} lib;

static const lib libs[] = {{LIB_NAME, lib_parse, lib_render}};

static double time_parse(const lib *l, const body_case *c, float *arena, double seconds) {
    uint64_t end = rs_now_ns() + (uint64_t)(seconds * 1e9), start = rs_now_ns(), ops = 0;
    do {
        for (int i = 0; i < 64; i++)
            if (l->parse(c, arena) != c->in_rows * c->in_cols) {
                fprintf(stderr, "%s: parse failed\n", l->name);
                exit(1);
            }
        ops += 64;
    } while (rs_now_ns() < end);
    return (double)(rs_now_ns() - start) / (double)ops;
}

static double time_render(const lib *l, const body_case *c, char *buf, size_t cap, double seconds) {
    uint64_t end = rs_now_ns() + (uint64_t)(seconds * 1e9), start = rs_now_ns(), ops = 0;
    do {
        for (int i = 0; i < 64; i++)
            if (l->render(c, buf, cap) == 0) {
                fprintf(stderr, "%s: render failed\n", l->name);
                exit(1);
            }
        ops += 64;
    } while (rs_now_ns() < end);
    return (double)(rs_now_ns() - start) / (double)ops;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.3;
    body_case cases[2];
    make_case(&cases[0], "digits[8,64]->[8,10]", 8, 64, 8, 10, 1);
    make_case(&cases[1], "identity[1,16]->[1,16]", 1, 16, 1, 16, 0);
#if JSON_LIB == 2
    /* FP32 values need 9 significant digits, as jansson is told below. */
    json_c_set_serialization_double_format("%.9g", JSON_C_OPTION_GLOBAL);
#endif
    float *arena = malloc(sizeof(float) * 8 * 64);
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    for (int ci = 0; ci < 2; ci++) {
        double p = time_parse(&libs[0], &cases[ci], arena, seconds);
        double r = time_render(&libs[0], &cases[ci], buf, cap, seconds);
        printf(
            "%-24s %-8s parse %8.0f ns  render %8.0f ns  (request %zu bytes, response %zu bytes)\n",
            cases[ci].name, libs[0].name, p, r, cases[ci].request_len,
            libs[0].render(&cases[ci], buf, cap));
    }
    for (int ci = 0; ci < 2; ci++)
        free(cases[ci].request), free(cases[ci].out_values);
    free(arena);
    free(buf);
    return (int)(sink < 0);
}

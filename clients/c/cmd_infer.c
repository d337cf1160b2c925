/* cmd_infer.c — `ringserve infer`: one inference request from the command
 * line, over the framed protocol or HTTP (KServe v2), printing the outputs.
 *
 * Inputs come from a KServe v2 request body in JSON (converted to tensors by
 * engine/kserve's parser, the same code the server runs) or from .npy files
 * (clients/c/rs_npy.h). Over HTTP the tensors go out with the binary tensor
 * data extension and the outputs are asked for in binary, so values travel
 * exactly; the response is converted back with the same KServe parser.
 *
 * Exit codes: 0 outputs printed, 1 the server answered with an error,
 * 2 bad usage or input, 3 transport failure (connect, timeout, bad reply). */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clients/c/rs_client.h"
#include "clients/c/rs_npy.h"
#include "engine/cmd.h"
#include "engine/kserve/kserve.h"

#define INFER_MAX_FILE_BYTES (64u << 20)
#define INFER_MAX_REPLY_BYTES (64u << 20)

enum { EXIT_SERVER = 1, EXIT_USAGE = 2, EXIT_TRANSPORT = 3 };

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: ringserve infer --model M [--version V] (--framed HOST:PORT | --http HOST:PORT)\n"
        "                       (--input FILE.json | --npy NAME=FILE.npy ...) [--id ID]\n"
        "                       [--no-cache] [--json] [--timeout-ms N]\n"
        "  --input FILE.json   a KServe v2 request body ({\"inputs\": [...]})\n"
        "  --npy NAME=FILE     one input tensor from a .npy file (repeatable)\n"
        "  --no-cache          ask the server to bypass its response cache\n"
        "  --json              print the outputs as a KServe v2 response body\n"
        "exit: 0 ok, 1 server error, 2 usage or input error, 3 transport error\n");
}

typedef struct infer_opts {
    const char *model, *version, *framed, *http, *input, *id;
    const char *npy[RS_MAX_TENSORS];
    uint32_t n_npy;
    bool no_cache, json;
    uint32_t timeout_ms;
} infer_opts;

static int parse_args(int argc, char **argv, infer_opts *o) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},  {"version", required_argument, 0, 'v'},
        {"framed", required_argument, 0, 'f'}, {"http", required_argument, 0, 'H'},
        {"input", required_argument, 0, 'i'},  {"npy", required_argument, 0, 'n'},
        {"id", required_argument, 0, 'I'},     {"no-cache", no_argument, 0, 'C'},
        {"json", no_argument, 0, 'j'},         {"timeout-ms", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': o->model = optarg; break;
        case 'v': o->version = optarg; break;
        case 'f': o->framed = optarg; break;
        case 'H': o->http = optarg; break;
        case 'i': o->input = optarg; break;
        case 'I': o->id = optarg; break;
        case 'C': o->no_cache = true; break;
        case 'j': o->json = true; break;
        case 'n':
            if (o->n_npy == RS_MAX_TENSORS) {
                fprintf(stderr, "ringserve infer: at most %d --npy inputs\n", RS_MAX_TENSORS);
                return -1;
            }
            o->npy[o->n_npy++] = optarg;
            break;
        case 't': {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v == 0 || v > 3600000) {
                fprintf(stderr, "ringserve infer: --timeout-ms '%s' must be 1..3600000\n", optarg);
                return -1;
            }
            o->timeout_ms = (uint32_t)v;
            break;
        }
        case 'h': usage(stdout); exit(0);
        default:
            fprintf(stderr, "ringserve infer: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            usage(stderr);
            return -1;
        }
    }
    const char *why = NULL;
    if (optind < argc)
        why = "unexpected argument";
    else if (!o->model || !*o->model)
        why = "--model is required";
    else if (!o->framed == !o->http)
        why = "give exactly one of --framed HOST:PORT and --http HOST:PORT";
    else if (!o->input == !o->n_npy)
        why = "give either --input FILE.json or --npy NAME=FILE.npy (not both)";
    if (why) {
        fprintf(stderr, "ringserve infer: %s%s%s\n", why, optind < argc ? ": " : "",
                optind < argc ? argv[optind] : "");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* The request being built: the tensors point into files' bytes or the arena. */
typedef struct infer_input {
    rs_infer_request req;
    rs_kserve_request kreq;
    uint8_t *json_file;
    uint8_t *arena_mem;
    uint8_t *npy_files[RS_MAX_TENSORS];
} infer_input;

static uint8_t *read_file(const char *path, size_t *len, rs_err *err) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f) {
        rs_err_set(err, "%s: %m", path);
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > INFER_MAX_FILE_BYTES) {
        rs_err_set(err, "%s: not a regular file of at most %u bytes", path, INFER_MAX_FILE_BYTES);
        fclose(f);
        return NULL;
    }
    *len = (size_t)st.st_size;
    uint8_t *buf = malloc(*len ? *len : 1);
    if (!buf || fread(buf, 1, *len, f) != *len) {
        rs_err_set(err, "%s: %s", path, buf ? "read failed" : "out of memory");
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int load_json_input(const char *path, infer_input *in, rs_err *err) {
    size_t len = 0;
    in->json_file = read_file(path, &len, err);
    if (!in->json_file) return -1;
    /* A JSON number takes >= 2 bytes ("0,") and becomes at most 8: 4x the
     * file bounds the tensors; names and BYTES fit in the slack. */
    size_t cap = 4 * len + 65536;
    in->arena_mem = malloc(cap);
    if (!in->arena_mem) {
        rs_err_set(err, "out of memory for %zu bytes of tensors", cap);
        return -1;
    }
    rs_kserve_arena arena;
    rs_kserve_arena_init(&arena, in->arena_mem, cap);
    if (rs_kserve_parse_infer(in->json_file, len, len, &in->kreq, &arena, err) != 0) {
        rs_err_prefix(err, "%s", path);
        return -1;
    }
    in->req.inputs = in->kreq.inputs;
    if (in->kreq.has_id) in->req.id = rs_str_c(in->kreq.id);
    if (in->kreq.params.has_priority) in->req.priority = (int32_t)in->kreq.params.priority;
    if (in->kreq.params.has_timeout)
        in->req.timeout_us = in->kreq.params.timeout_us > UINT32_MAX
                                 ? UINT32_MAX
                                 : (uint32_t)in->kreq.params.timeout_us;
    in->req.n_outputs = in->kreq.output_count;
    for (uint32_t i = 0; i < in->kreq.output_count; i++)
        in->req.outputs[i] = rs_str_c(in->kreq.outputs[i].name);
    return 0;
}

static int load_npy_inputs(const infer_opts *o, infer_input *in, rs_err *err) {
    for (uint32_t i = 0; i < o->n_npy; i++) {
        const char *eq = strchr(o->npy[i], '=');
        size_t nlen = eq ? (size_t)(eq - o->npy[i]) : 0;
        if (!eq || nlen == 0 || nlen > RS_MAX_NAME_BYTES || !eq[1]) {
            rs_err_set(err, "--npy '%s' must be NAME=FILE.npy with a 1..%d byte name", o->npy[i],
                       RS_MAX_NAME_BYTES);
            return -1;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (in->req.inputs.t[j].name.len == nlen &&
                memcmp(in->req.inputs.t[j].name.ptr, o->npy[i], nlen) == 0) {
                rs_err_set(err, "--npy: input '%.*s' is given twice", (int)nlen, o->npy[i]);
                return -1;
            }
        }
        rs_npy npy;
        if (rs_npy_load(eq + 1, INFER_MAX_FILE_BYTES, &in->npy_files[i], &npy, err) != 0) return -1;
        rs_tensor_view *t = &in->req.inputs.t[i];
        t->name = (rs_str){o->npy[i], (uint32_t)nlen};
        t->dtype = npy.dtype;
        t->rank = npy.rank;
        memcpy(t->dims, npy.dims, sizeof(t->dims));
        t->data = npy.data;
        t->byte_len = npy.byte_len;
        in->req.inputs.count = i + 1;
    }
    return 0;
}

static void free_input(infer_input *in) {
    free(in->json_file);
    free(in->arena_mem);
    for (int i = 0; i < RS_MAX_TENSORS; i++)
        free(in->npy_files[i]);
}

/* ---- printing ---- */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 0x400), (int)exp - 25);
    return sign ? -v : v;
}

static void print_value(const rs_tensor_view *t, uint64_t i, const uint8_t **bytes_cursor) {
    const uint8_t *p = t->data + i * rs_dtype_size(t->dtype);
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f;
        double d;
    } v;
    size_t es = rs_dtype_size(t->dtype);
    if (es) memcpy(&v, p, es);
    switch (t->dtype) {
    case RS_DT_BOOL: printf("%s", v.u8 ? "true" : "false"); break;
    case RS_DT_UINT8: printf("%u", v.u8); break;
    case RS_DT_UINT16: printf("%u", v.u16); break;
    case RS_DT_UINT32: printf("%" PRIu32, v.u32); break;
    case RS_DT_UINT64: printf("%" PRIu64, v.u64); break;
    case RS_DT_INT8: printf("%d", v.i8); break;
    case RS_DT_INT16: printf("%d", v.i16); break;
    case RS_DT_INT32: printf("%" PRId32, v.i32); break;
    case RS_DT_INT64: printf("%" PRId64, v.i64); break;
    case RS_DT_FP16: printf("%.5g", half_to_float(v.u16)); break;
    case RS_DT_BF16: {
        uint32_t bits = (uint32_t)v.u16 << 16;
        float f;
        memcpy(&f, &bits, 4);
        printf("%.4g", f);
        break;
    }
    case RS_DT_FP32: printf("%.9g", v.f); break;
    case RS_DT_FP64: printf("%.17g", v.d); break;
    case RS_DT_BYTES: {
        uint32_t n;
        memcpy(&n, *bytes_cursor, 4);
        const uint8_t *s = *bytes_cursor + 4;
        putchar('"');
        for (uint32_t k = 0; k < n; k++) {
            if (s[k] == '"' || s[k] == '\\')
                printf("\\%c", s[k]);
            else if (s[k] < 0x20 || s[k] > 0x7e)
                printf("\\x%02x", s[k]);
            else
                putchar(s[k]);
        }
        putchar('"');
        *bytes_cursor = s + n;
        break;
    }
    default: printf("?"); break;
    }
}

static void print_tensor(const rs_tensor_view *t) {
    printf("output %.*s %s [", (int)t->name.len, t->name.ptr, rs_dtype_name(t->dtype));
    for (uint32_t d = 0; d < t->rank; d++)
        printf("%s%" PRId64, d ? "," : "", t->dims[d]);
    printf("]:");
    int64_t n = rs_tensor_elements(t);
    const uint8_t *cursor = t->data;
    for (int64_t i = 0; i < n; i++) {
        putchar(' ');
        print_value(t, (uint64_t)i, &cursor);
    }
    putchar('\n');
}

static int print_outputs(const char *model, const char *version, const char *id,
                         const rs_tensor_list *outs, const char *cache, bool json) {
    if (!json) {
        printf("model %s version %s id %s cache %s\n", model, version && *version ? version : "-",
               id && *id ? id : "-", cache);
        for (uint32_t i = 0; i < outs->count; i++)
            print_tensor(&outs->t[i]);
        return 0;
    }
    size_t cap = 4096;
    for (uint32_t i = 0; i < outs->count; i++)
        cap += 32 * (size_t)rs_tensor_elements(&outs->t[i]) + 6 * outs->t[i].byte_len;
    uint8_t *buf = malloc(cap);
    rs_kserve_response kr = {.model_name = model,
                             .model_version = version && *version ? version : NULL,
                             .id = id && *id ? id : NULL,
                             .outputs = outs};
    size_t json_len = 0, total = 0;
    rs_err err;
    if (!buf || rs_kserve_render_response(&kr, buf, cap, &json_len, &total, &err) != 0) {
        fprintf(stderr, "ringserve infer: cannot render the outputs as JSON: %s\n",
                buf ? err.msg : "out of memory");
        free(buf);
        return EXIT_TRANSPORT;
    }
    fwrite(buf, 1, total, stdout);
    putchar('\n');
    free(buf);
    return 0;
}

static char *str_dup(rs_str s) {
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

/* ---- the two protocols ---- */

static int run_framed(const infer_opts *o, const infer_input *in, const rs_client_config *cfg0) {
    char host[256];
    uint16_t port;
    rs_err err;
    if (rs_client_parse_endpoint(o->framed, host, sizeof(host), &port, &err) != 0) {
        fprintf(stderr, "ringserve infer: --framed: %s\n", err.msg);
        return EXIT_USAGE;
    }
    rs_client_config cfg = *cfg0;
    size_t need = rs_infer_request_size(&in->req);
    if (need > cfg.send_buf_bytes) cfg.send_buf_bytes = (uint32_t)need;
    rs_client *c = rs_client_connect(host, port, &cfg, &err);
    if (!c) {
        fprintf(stderr, "ringserve infer: %s\n", err.msg);
        return EXIT_TRANSPORT;
    }
    rs_client_reply r;
    int rc = 0;
    if (rs_client_infer(c, &in->req, o->no_cache ? RS_FRAME_F_NO_CACHE : 0, &r, &err) != 0) {
        fprintf(stderr, "ringserve infer: %s\n", err.msg);
        rc = EXIT_TRANSPORT;
    } else if (r.type == RS_MSG_ERROR) {
        fprintf(stderr, "ringserve infer: server error %s (%d): %.*s\n", rs_status_name(r.status),
                rs_status_http(r.status), (int)r.message.len, r.message.ptr);
        rc = EXIT_SERVER;
    } else {
        char *model = str_dup(r.response.model), *version = str_dup(r.response.version),
             *id = str_dup(r.response.id);
        rc = model && version && id
                 ? print_outputs(model, version, id, &r.response.outputs,
                                 (r.flags & RS_FRAME_F_CACHE_HIT) ? "hit" : "miss", o->json)
                 : EXIT_TRANSPORT;
        free(model);
        free(version);
        free(id);
    }
    rs_client_close(c);
    return rc;
}

static int run_http(const infer_opts *o, const infer_input *in, const rs_client_config *cfg0) {
    char host[256];
    uint16_t port;
    rs_err err;
    if (rs_client_parse_endpoint(o->http, host, sizeof(host), &port, &err) != 0) {
        fprintf(stderr, "ringserve infer: --http: %s\n", err.msg);
        return EXIT_USAGE;
    }
    size_t cap = 65536 + 512 * RS_MAX_TENSORS;
    for (uint32_t i = 0; i < in->req.inputs.count; i++)
        cap += in->req.inputs.t[i].byte_len;
    uint8_t *body = malloc(cap);
    size_t body_len = 0, json_len = 0;
    if (!body || rs_client_kserve_binary_request(&in->req, true, body, cap, &body_len, &json_len,
                                                 &err) != 0) {
        fprintf(stderr, "ringserve infer: %s\n", body ? err.msg : "out of memory");
        free(body);
        return EXIT_USAGE;
    }
    int rc = EXIT_TRANSPORT;
    uint8_t *arena_mem = NULL;
    rs_client_http *h = rs_client_http_create(host, port, cfg0, &err);
    rs_client_http_response resp;
    if (!h || rs_client_http_infer(h, o->model, o->version, body, body_len, json_len, o->no_cache,
                                   &resp, &err) != 0) {
        fprintf(stderr, "ringserve infer: %s\n", err.msg);
        goto out;
    }
    if (resp.status != 200) {
        char msg[1024];
        rs_client_http_error_message(&resp, msg, sizeof(msg));
        fprintf(stderr, "ringserve infer: server error HTTP %d: %s\n", resp.status, msg);
        rc = EXIT_SERVER;
        goto out;
    }
    size_t jl = resp.has_inference_header_len ? resp.inference_header_len : resp.body_len;
    size_t acap = 4 * resp.body_len + 65536;
    arena_mem = malloc(acap);
    rs_kserve_arena arena;
    rs_kserve_arena_init(&arena, arena_mem, arena_mem ? acap : 0);
    rs_client_kserve_result kr;
    if (rs_client_kserve_parse_response(resp.body, resp.body_len, jl, &kr, &arena, &err) != 0) {
        fprintf(stderr, "ringserve infer: %s\n", err.msg);
        goto out;
    }
    rc = print_outputs(kr.model_name, kr.model_version, kr.id, &kr.outputs,
                       resp.cache[0] ? resp.cache : "-", o->json);
out:
    free(arena_mem);
    free(body);
    rs_client_http_destroy(h);
    return rc;
}

int rs_cmd_infer(int argc, char **argv) {
    infer_opts o = {0};
    if (parse_args(argc, argv, &o) != 0) return EXIT_USAGE;
    rs_kserve_global_init();
    infer_input in;
    memset(&in, 0, sizeof(in));
    rs_err err;
    int rc = (o.input ? load_json_input(o.input, &in, &err) : load_npy_inputs(&o, &in, &err));
    if (rc != 0) {
        fprintf(stderr, "ringserve infer: %s\n", err.msg);
        free_input(&in);
        return EXIT_USAGE;
    }
    in.req.model = rs_str_c(o.model);
    if (o.version) in.req.version = rs_str_c(o.version);
    if (o.id) in.req.id = rs_str_c(o.id);
    rs_client_config cfg;
    rs_client_config_default(&cfg);
    cfg.max_payload_bytes = INFER_MAX_REPLY_BYTES;
    if (o.timeout_ms) cfg.io_timeout_ms = o.timeout_ms;
    rc = o.framed ? run_framed(&o, &in, &cfg) : run_http(&o, &in, &cfg);
    free_input(&in);
    return rc;
}

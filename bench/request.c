/* request.c — builds the benchmark's request bytes (see request.h). */
#include "bench/request.h"

#include <errno.h>
#include <json-c/json.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/kserve/kserve.h"
#include "io/frame.h"

int rs_bench_parse_shape(const char *s, int64_t *dims, uint32_t *rank, rs_err *err) {
    uint32_t n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v <= 0 || (*end && *end != ',')) {
            rs_err_set(err, "--shape '%s': expected positive integers separated by commas", s);
            return -1;
        }
        if (n == RS_MAX_RANK) {
            rs_err_set(err, "--shape '%s': more than %d dimensions", s, RS_MAX_RANK);
            return -1;
        }
        dims[n++] = v;
        p = *end ? end + 1 : end;
    }
    if (n == 0) {
        rs_err_set(err, "--shape '%s': no dimensions", s);
        return -1;
    }
    *rank = n;
    return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len, rs_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        rs_err_set(err, "--input %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0) {
        rs_err_set(err, "--input %s: empty or unreadable", path);
        fclose(f);
        return -1;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        rs_err_set(err, "--input %s: cannot read %lld bytes", path, (long long)st.st_size);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[st.st_size] = 0;
    *out = buf;
    *len = (size_t)st.st_size;
    return 0;
}

/* xorshift64*: reproducible "random" inputs (the same bytes every run). */
static double next_unit(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/* Generated tensor: raw bytes into data (elements * size) and, when jdata is
 * not NULL, the same values as a JSON array. */
static int generate(const rs_bench_req_opts *o, int64_t elems, uint8_t *data, json_object *jdata,
                    rs_err *err) {
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < elems; i++) {
        double u = o->random ? next_unit(&seed) : 0.0;
        json_object *v = NULL;
        switch (o->dtype) {
        case RS_DT_FP32: {
            float f = (float)u;
            memcpy(data + i * 4, &f, 4);
            if (jdata) v = json_object_new_double(f);
            break;
        }
        case RS_DT_FP64:
            memcpy(data + i * 8, &u, 8);
            if (jdata) v = json_object_new_double(u);
            break;
        case RS_DT_INT32: {
            int32_t x = (int32_t)(u * 1000);
            memcpy(data + i * 4, &x, 4);
            if (jdata) v = json_object_new_int(x);
            break;
        }
        case RS_DT_INT64: {
            int64_t x = (int64_t)(u * 1000);
            memcpy(data + i * 8, &x, 8);
            if (jdata) v = json_object_new_int64(x);
            break;
        }
        case RS_DT_UINT8: {
            uint8_t x = (uint8_t)(u * 256);
            data[i] = x;
            if (jdata) v = json_object_new_int(x);
            break;
        }
        default:
            rs_err_set(err, "--dtype %s: generated inputs support FP32, FP64, INT32, INT64, UINT8",
                       rs_dtype_name(o->dtype));
            return -1;
        }
        if (jdata) json_object_array_add(jdata, v);
    }
    return 0;
}

static int64_t shape_elements(const rs_bench_req_opts *o) {
    int64_t n = 1;
    for (uint32_t i = 0; i < o->rank; i++) {
        if (o->dims[i] <= 0 || n > (INT64_C(1) << 40) / o->dims[i]) return -1;
        n *= o->dims[i];
    }
    return n;
}

/* The JSON body of a generated infer request. */
static char *generated_json(const rs_bench_req_opts *o, int64_t elems, uint8_t *scratch,
                            rs_err *err) {
    json_object *root = json_object_new_object();
    json_object *inputs = json_object_new_array();
    json_object *in = json_object_new_object();
    json_object *shape = json_object_new_array();
    json_object *data = json_object_new_array();
    for (uint32_t i = 0; i < o->rank; i++)
        json_object_array_add(shape, json_object_new_int64(o->dims[i]));
    json_object_object_add(in, "name", json_object_new_string(o->input_name));
    json_object_object_add(in, "shape", shape);
    json_object_object_add(in, "datatype", json_object_new_string(rs_dtype_name(o->dtype)));
    json_object_object_add(in, "data", data);
    json_object_array_add(inputs, in);
    json_object_object_add(root, "inputs", inputs);
    char *s = NULL;
    if (generate(o, elems, scratch, data, err) == 0)
        s = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    if (!s && err->msg[0] == 0) rs_err_set(err, "out of memory rendering the request body");
    return s;
}

static int build_http(const rs_bench_req_opts *o, uint8_t **out, size_t *len, rs_err *err) {
    char path[512];
    if (o->path)
        snprintf(path, sizeof(path), "%s", o->path);
    else if (o->version && *o->version)
        snprintf(path, sizeof(path), "/v2/models/%s/versions/%s/infer", o->model, o->version);
    else
        snprintf(path, sizeof(path), "/v2/models/%s/infer", o->model);
    bool get = o->method && strcmp(o->method, "GET") == 0;
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (!get) {
        if (o->input_file) {
            if (read_file(o->input_file, &body, &body_len, err) != 0) return -1;
        } else {
            int64_t elems = shape_elements(o);
            if (elems < 0) {
                rs_err_set(err, "--shape: too many elements");
                return -1;
            }
            uint8_t *scratch = malloc((size_t)elems * 8 + 8);
            char *s = scratch ? generated_json(o, elems, scratch, err) : NULL;
            free(scratch);
            if (!s) return -1;
            body = (uint8_t *)s;
            body_len = strlen(s);
        }
    }
    char head[1024];
    int hn = snprintf(
        head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s\r\n%s%zu\r\n\r\n", get ? "GET" : "POST",
        path, o->host,
        get ? "Content-Length: " : "Content-Type: application/json\r\nContent-Length: ", body_len);
    *len = (size_t)hn + body_len;
    *out = malloc(*len);
    if (!*out) {
        free(body);
        rs_err_set(err, "out of memory");
        return -1;
    }
    memcpy(*out, head, (size_t)hn);
    if (body_len) memcpy(*out + hn, body, body_len);
    free(body);
    return 0;
}

/* Where the first input's bytes sit in the encoded frame: encode it again
 * with those bytes changed and find the first difference. */
static size_t data_offset_of(rs_infer_request *r, const uint8_t *frame, size_t len) {
    rs_tensor_view *t = &r->inputs.t[0];
    if (r->inputs.count == 0 || t->byte_len < 8) return 0;
    uint8_t *flipped = malloc(t->byte_len), *again = malloc(len);
    size_t off = 0;
    if (flipped && again) {
        const uint8_t *orig = t->data;
        memcpy(flipped, orig, t->byte_len);
        for (int i = 0; i < 8; i++)
            flipped[i] ^= 0xFF;
        t->data = flipped;
        if (rs_encode_infer_request(again, len, 1, 0, r) == len)
            for (size_t i = 0; i < len; i++)
                if (again[i] != frame[i]) {
                    off = i;
                    break;
                }
        t->data = orig;
    }
    free(flipped);
    free(again);
    return off;
}

static int build_framed(const rs_bench_req_opts *o, uint8_t **out, size_t *len, size_t *data_off,
                        bool *data_fp32, rs_err *err) {
    rs_infer_request r;
    memset(&r, 0, sizeof(r));
    r.model = rs_str_c(o->model);
    r.version = rs_str_c(o->version ? o->version : "");
    r.id = rs_str_c("");
    r.routing_key = rs_str_c("");
    r.traceparent = rs_str_c("");
    uint8_t *file = NULL, *arena_mem = NULL;
    size_t file_len = 0;
    int rc = -1;
    if (o->input_file) {
        if (read_file(o->input_file, &file, &file_len, err) != 0) return -1;
        size_t cap = file_len * 8 + 65536;
        arena_mem = malloc(cap);
        static rs_kserve_request kr; /* large; built once per process */
        rs_kserve_arena arena;
        rs_kserve_arena_init(&arena, arena_mem, cap);
        rs_kserve_global_init();
        if (!arena_mem || rs_kserve_parse_infer(file, file_len, file_len, &kr, &arena, err) != 0) {
            rs_err_prefix(err, "--input %s: ", o->input_file);
            goto done;
        }
        r.inputs = kr.inputs;
    } else {
        int64_t elems = shape_elements(o);
        size_t esize = rs_dtype_size(o->dtype);
        if (elems < 0 || esize == 0) {
            rs_err_set(err, "--shape/--dtype: too many elements or a variable-size datatype");
            return -1;
        }
        arena_mem = malloc((size_t)elems * esize + 8);
        if (!arena_mem || generate(o, elems, arena_mem, NULL, err) != 0) goto done;
        r.inputs.count = 1;
        rs_tensor_view *t = &r.inputs.t[0];
        t->name = rs_str_c(o->input_name);
        t->dtype = o->dtype;
        t->rank = o->rank;
        memcpy(t->dims, o->dims, sizeof(t->dims));
        t->data = arena_mem;
        t->byte_len = (uint64_t)elems * esize;
    }
    size_t need = rs_infer_request_size(&r);
    *out = malloc(need);
    if (!*out ||
        rs_encode_infer_request(*out, need, 1, o->no_cache ? RS_FRAME_F_NO_CACHE : 0, &r) != need) {
        free(*out);
        *out = NULL;
        rs_err_set(err, "cannot encode the infer request (%zu bytes)", need);
        goto done;
    }
    *len = need;
    *data_off = data_offset_of(&r, *out, need);
    *data_fp32 = r.inputs.count > 0 && r.inputs.t[0].dtype == RS_DT_FP32;
    rc = 0;
done:
    free(file);
    free(arena_mem);
    return rc;
}

int rs_bench_build_request(const rs_bench_req_opts *o, uint8_t **out, size_t *len,
                           size_t *data_offset, bool *data_fp32, rs_err *err) {
    rs_err_clear(err);
    *data_offset = 0;
    *data_fp32 = false;
    switch (o->proto) {
    case RS_BENCH_MEMCACHE: {
        size_t kl = strlen(o->key);
        if (kl == 0 || kl > 250 || strpbrk(o->key, " \t\r\n")) {
            rs_err_set(err, "--key '%s': memcached keys are 1..250 bytes without spaces", o->key);
            return -1;
        }
        *len = kl + 6;
        *out = malloc(*len + 1);
        if (!*out) return -1;
        snprintf((char *)*out, *len + 1, "get %s\r\n", o->key);
        return 0;
    }
    case RS_BENCH_HTTP: return build_http(o, out, len, err);
    case RS_BENCH_FRAMED: return build_framed(o, out, len, data_offset, data_fp32, err);
    }
    return -1;
}

int rs_bench_memcache_set(const char *host, uint16_t port, const char *key, size_t value_bytes,
                          rs_err *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    int g = getaddrinfo(host, ports, &hints, &ai);
    if (g != 0) {
        rs_err_set(err, "memcache %s:%u: %s", host, port, gai_strerror(g));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        rs_err_set(err, "memcache %s:%u: connect: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    char head[300];
    int hn = snprintf(head, sizeof(head), "set %s 0 0 %zu\r\n", key, value_bytes);
    size_t total = (size_t)hn + value_bytes + 2;
    char *msg = malloc(total);
    int rc = -1;
    if (msg) {
        memcpy(msg, head, (size_t)hn);
        memset(msg + hn, 'v', value_bytes);
        memcpy(msg + hn + value_bytes, "\r\n", 2);
        size_t off = 0;
        while (off < total) {
            ssize_t n = send(fd, msg + off, total - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += (size_t)n;
        }
        char reply[128];
        size_t got = 0;
        while (off == total && got < sizeof(reply) - 1 && !memchr(reply, '\n', got)) {
            ssize_t n = recv(fd, reply + got, sizeof(reply) - 1 - got, 0);
            if (n <= 0) break;
            got += (size_t)n;
        }
        reply[got] = 0;
        if (strncmp(reply, "STORED\r\n", 8) == 0)
            rc = 0;
        else
            rs_err_set(err, "memcache %s:%u: set %s (%zu bytes): answered '%.*s'", host, port, key,
                       value_bytes, (int)strcspn(reply, "\r\n"), reply);
    }
    free(msg);
    close(fd);
    return rc;
}

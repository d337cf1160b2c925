/* rs_client_http.c — the HTTP/1.1 KServe v2 half of the blocking C client.
 *
 * Responses are parsed with http_parser (libhttp-parser) as bytes arrive:
 * the body (de-chunked) is copied into a buffer of max_payload_bytes sized
 * at creation, the few headers a ringserve client needs are kept, and the
 * connection is reused while the server keeps it alive. Request and
 * response bodies in KServe v2 JSON are built and read with json-c. */
#include <errno.h>
#include <http_parser.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clients/c/rs_client.h"
#include "clients/c/rs_client_internal.h"
#include "engine/kserve/kserve.h"

#define RS_CLIENT_HTTP_HEAD_BYTES 4096  /* request line + headers */
#define RS_CLIENT_HTTP_READ_BYTES 65536 /* one recv() */
#define RS_CLIENT_HTTP_FIELD_BYTES 64   /* header names we compare (longer: ignored) */

struct rs_client_http {
    char host[256];
    uint16_t port;
    rs_client_config cfg;
    int fd; /* -1: not connected */
    char head[RS_CLIENT_HTTP_HEAD_BYTES];
    uint8_t *rbuf;
    uint8_t *body;
    size_t body_cap;
    /* parse state of the response being read */
    http_parser parser;
    http_parser_settings settings;
    rs_client_http_response *resp;
    size_t body_len;
    bool body_too_large;
    bool complete;
    bool head_request; /* the response has no body whatever its headers say */
    bool last_was_value;
    char field[RS_CLIENT_HTTP_FIELD_BYTES + 1];
    size_t field_len;
    bool field_cut;
    char value[RS_CLIENT_HTTP_HEADER_VALUE_BYTES];
    size_t value_len;
};

static void header_done(rs_client_http *h) {
    if (h->field_len == 0 || h->field_cut) goto reset;
    h->field[h->field_len] = '\0';
    h->value[h->value_len] = '\0';
    rs_client_http_response *r = h->resp;
    if (strcasecmp(h->field, "content-type") == 0)
        snprintf(r->content_type, sizeof(r->content_type), "%s", h->value);
    else if (strcasecmp(h->field, "x-ringserve-cache") == 0)
        snprintf(r->cache, sizeof(r->cache), "%s", h->value);
    else if (strcasecmp(h->field, "retry-after") == 0)
        snprintf(r->retry_after, sizeof(r->retry_after), "%s", h->value);
    else if (strcasecmp(h->field, "inference-header-content-length") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(h->value, &end, 10);
        if (!errno && end != h->value && *end == '\0') {
            r->has_inference_header_len = true;
            r->inference_header_len = (size_t)v;
        }
    }
reset:
    h->field_len = h->value_len = 0;
    h->field_cut = false;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    rs_client_http *h = p->data;
    if (h->last_was_value) header_done(h);
    h->last_was_value = false;
    if (h->field_len + len > RS_CLIENT_HTTP_FIELD_BYTES) {
        h->field_cut = true;
        return 0;
    }
    memcpy(h->field + h->field_len, at, len);
    h->field_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    rs_client_http *h = p->data;
    h->last_was_value = true;
    size_t room = sizeof(h->value) - 1 - h->value_len;
    if (len > room) len = room; /* values we keep are short; longer ones are cut */
    memcpy(h->value + h->value_len, at, len);
    h->value_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p) {
    rs_client_http *h = p->data;
    if (h->last_was_value) header_done(h);
    h->last_was_value = false;
    h->resp->status = (int)p->status_code;
    return h->head_request ? 1 : 0; /* 1: http_parser skips the body */
}

static int on_body(http_parser *p, const char *at, size_t len) {
    rs_client_http *h = p->data;
    if (h->body_len + len > h->body_cap) {
        h->body_too_large = true;
        return -1;
    }
    memcpy(h->body + h->body_len, at, len);
    h->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p) {
    rs_client_http *h = p->data;
    h->complete = true;
    http_parser_pause(p, 1); /* one response per request: stop right here */
    return 0;
}

rs_client_http *rs_client_http_create(const char *host, uint16_t port, const rs_client_config *cfg,
                                      rs_err *err) {
    rs_client_http *h = calloc(1, sizeof(*h));
    if (!h) {
        rs_err_set(err, "out of memory for the HTTP client");
        return NULL;
    }
    if (strlen(host) >= sizeof(h->host)) {
        rs_err_set(err, "host name '%s' is too long", host);
        free(h);
        return NULL;
    }
    snprintf(h->host, sizeof(h->host), "%s", host);
    h->port = port;
    if (cfg) h->cfg = *cfg;
    rs_client_config_fill(&h->cfg);
    h->fd = -1;
    h->body_cap = h->cfg.max_payload_bytes;
    h->rbuf = malloc(RS_CLIENT_HTTP_READ_BYTES);
    h->body = malloc(h->body_cap);
    if (!h->rbuf || !h->body) {
        rs_err_set(err, "out of memory for the HTTP client buffers");
        rs_client_http_destroy(h);
        return NULL;
    }
    http_parser_settings_init(&h->settings);
    h->settings.on_header_field = on_header_field;
    h->settings.on_header_value = on_header_value;
    h->settings.on_headers_complete = on_headers_complete;
    h->settings.on_body = on_body;
    h->settings.on_message_complete = on_message_complete;
    return h;
}

void rs_client_http_destroy(rs_client_http *h) {
    if (!h) return;
    if (h->fd >= 0) close(h->fd);
    free(h->rbuf);
    free(h->body);
    free(h);
}

static void drop_conn(rs_client_http *h) {
    if (h->fd >= 0) close(h->fd);
    h->fd = -1;
}

/* Sends all of iov. 0, or -1 with err (*reset: the peer had closed). */
static int send_all(rs_client_http *h, struct iovec *iov, int iovcnt, bool *reset, rs_err *err) {
    while (iovcnt > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(h->fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ev = rs_client_sock_wait(h->fd, POLLOUT, h->cfg.io_timeout_ms);
            if (ev <= 0) {
                rs_err_set(err, "timed out after %u ms sending the request to %s:%u",
                           h->cfg.io_timeout_ms, h->host, h->port);
                return -1;
            }
            continue;
        }
        if (n < 0) {
            *reset = errno == EPIPE || errno == ECONNRESET;
            rs_err_set(err, "sending the request to %s:%u failed: %s", h->host, h->port,
                       strerror(errno));
            return -1;
        }
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Reads and parses one response. *fresh_eof: the server closed before any
 * byte (a kept-alive connection it had dropped: worth one retry). */
static int read_response(rs_client_http *h, rs_client_http_response *out, bool *fresh_eof,
                         rs_err *err) {
    memset(out, 0, sizeof(*out));
    http_parser_init(&h->parser, HTTP_RESPONSE);
    h->parser.data = h;
    h->resp = out;
    h->body_len = 0;
    h->body_too_large = h->complete = h->last_was_value = false;
    h->field_len = h->value_len = 0;
    h->field_cut = false;
    size_t total = 0;
    while (!h->complete) {
        ssize_t n = recv(h->fd, h->rbuf, RS_CLIENT_HTTP_READ_BYTES, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ev = rs_client_sock_wait(h->fd, POLLIN, h->cfg.io_timeout_ms);
            if (ev == 0) {
                rs_err_set(err, "no response from %s:%u within %u ms", h->host, h->port,
                           h->cfg.io_timeout_ms);
                return -1;
            }
            if (ev < 0) {
                rs_err_set(err, "poll failed: %s", strerror(errno));
                return -1;
            }
            continue;
        }
        if (n < 0) {
            *fresh_eof = total == 0 && errno == ECONNRESET;
            rs_err_set(err, "receiving the response from %s:%u failed: %s", h->host, h->port,
                       strerror(errno));
            return -1;
        }
        total += (size_t)n;
        /* n == 0 tells the parser about the end of the stream (a body
         * delimited by the close completes here). */
        size_t used =
            http_parser_execute(&h->parser, &h->settings, (const char *)h->rbuf, (size_t)n);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
        if (h->body_too_large) {
            rs_err_set(err, "response body from %s:%u is over max_payload_bytes (%zu)", h->host,
                       h->port, h->body_cap);
            return -1;
        }
        if (e != HPE_OK && e != HPE_PAUSED) {
            rs_err_set(err, "malformed HTTP response from %s:%u: %s", h->host, h->port,
                       http_errno_description(e));
            return -1;
        }
        if (n == 0 && !h->complete) {
            *fresh_eof = total == 0;
            rs_err_set(err, "%s:%u closed the connection %s", h->host, h->port,
                       total ? "before the response was complete" : "without a response");
            return -1;
        }
        if (h->complete && used < (size_t)n) {
            rs_err_set(err, "%s:%u sent %zu bytes after the response", h->host, h->port,
                       (size_t)n - used);
            return -1;
        }
    }
    out->body = h->body;
    out->body_len = h->body_len;
    return 0;
}

int rs_client_http_request(rs_client_http *h, const char *method, const char *path,
                           const char *content_type, const char *extra_headers, const void *body,
                           size_t body_len, rs_client_http_response *out, rs_err *err) {
    bool v6 = strchr(h->host, ':') != NULL; /* an IPv6 literal goes in brackets */
    h->head_request = strcmp(method, "HEAD") == 0;
    int hn = snprintf(h->head, sizeof(h->head),
                      "%s %s HTTP/1.1\r\nHost: %s%s%s:%u\r\n%s%s%sContent-Length: %zu\r\n%s\r\n",
                      method, path, v6 ? "[" : "", h->host, v6 ? "]" : "", h->port,
                      content_type ? "Content-Type: " : "", content_type ? content_type : "",
                      content_type ? "\r\n" : "", body_len, extra_headers ? extra_headers : "");
    if (hn < 0 || (size_t)hn >= sizeof(h->head)) {
        rs_err_set(err, "request line and headers are over %d bytes", RS_CLIENT_HTTP_HEAD_BYTES);
        return -1;
    }
    for (int attempt = 0;; attempt++) {
        bool reused = h->fd >= 0;
        if (!reused) {
            h->fd = rs_client_sock_connect(h->host, h->port, h->cfg.connect_timeout_ms, err);
            if (h->fd < 0) return -1;
        }
        struct iovec iov[2] = {{.iov_base = h->head, .iov_len = (size_t)hn},
                               {.iov_base = (void *)body, .iov_len = body_len}};
        bool retry = false;
        int rc = send_all(h, iov, body_len ? 2 : 1, &retry, err);
        if (rc == 0) rc = read_response(h, out, &retry, err);
        if (rc == 0) {
            if (!http_should_keep_alive(&h->parser)) drop_conn(h);
            return 0;
        }
        drop_conn(h);
        /* A kept-alive connection the server had closed: once more, fresh. */
        if (!(reused && retry && attempt == 0)) return -1;
    }
}

int rs_client_http_infer(rs_client_http *h, const char *model, const char *version,
                         const void *body, size_t body_len, size_t json_len, bool no_cache,
                         rs_client_http_response *out, rs_err *err) {
    char path[256], extra[128];
    int n = version && *version
                ? snprintf(path, sizeof(path), "/v2/models/%s/versions/%s/infer", model, version)
                : snprintf(path, sizeof(path), "/v2/models/%s/infer", model);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        rs_err_set(err, "model name or version too long for a request path");
        return -1;
    }
    bool binary = json_len < body_len;
    extra[0] = '\0';
    if (binary)
        snprintf(extra, sizeof(extra), "Inference-Header-Content-Length: %zu\r\n", json_len);
    if (no_cache) strcat(extra, "Cache-Control: no-cache\r\n");
    return rs_client_http_request(h, "POST", path,
                                  binary ? "application/octet-stream" : "application/json", extra,
                                  body, body_len, out, err);
}

/* ---- KServe v2 bodies (json-c) ---- */

int rs_client_kserve_binary_request(const rs_infer_request *req, bool binary_outputs, uint8_t *out,
                                    size_t out_bytes, size_t *body_len, size_t *json_len,
                                    rs_err *err) {
    json_object *root = json_object_new_object();
    if (req->id.len)
        json_object_object_add(root, "id",
                               json_object_new_string_len(req->id.ptr, (int)req->id.len));
    json_object *params = json_object_new_object();
    if (binary_outputs)
        json_object_object_add(params, "binary_data_output", json_object_new_boolean(1));
    if (req->priority)
        json_object_object_add(params, "priority", json_object_new_int64(req->priority));
    if (req->timeout_us)
        json_object_object_add(params, "timeout", json_object_new_int64(req->timeout_us));
    if (json_object_object_length(params))
        json_object_object_add(root, "parameters", params);
    else
        json_object_put(params);
    json_object *inputs = json_object_new_array();
    uint64_t data_bytes = 0;
    for (uint32_t i = 0; i < req->inputs.count; i++) {
        const rs_tensor_view *t = &req->inputs.t[i];
        json_object *in = json_object_new_object();
        json_object_object_add(in, "name",
                               json_object_new_string_len(t->name.ptr, (int)t->name.len));
        json_object *shape = json_object_new_array();
        for (uint32_t d = 0; d < t->rank; d++)
            json_object_array_add(shape, json_object_new_int64(t->dims[d]));
        json_object_object_add(in, "shape", shape);
        json_object_object_add(in, "datatype", json_object_new_string(rs_dtype_name(t->dtype)));
        json_object *p = json_object_new_object();
        json_object_object_add(p, "binary_data_size", json_object_new_int64((int64_t)t->byte_len));
        json_object_object_add(in, "parameters", p);
        json_object_array_add(inputs, in);
        data_bytes += t->byte_len;
    }
    json_object_object_add(root, "inputs", inputs);
    if (req->n_outputs) {
        json_object *outs = json_object_new_array();
        for (uint32_t i = 0; i < req->n_outputs; i++) {
            json_object *o = json_object_new_object();
            json_object_object_add(
                o, "name",
                json_object_new_string_len(req->outputs[i].ptr, (int)req->outputs[i].len));
            if (binary_outputs) {
                json_object *op = json_object_new_object();
                json_object_object_add(op, "binary_data", json_object_new_boolean(1));
                json_object_object_add(o, "parameters", op);
            }
            json_object_array_add(outs, o);
        }
        json_object_object_add(root, "outputs", outs);
    }
    size_t jl = 0;
    const char *js = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &jl);
    int rc = 0;
    if (!js || jl + data_bytes > out_bytes) {
        rs_err_set(err, "request body needs %zu bytes, over the %zu-byte buffer",
                   jl + (size_t)data_bytes, out_bytes);
        rc = -1;
    } else {
        memcpy(out, js, jl);
        size_t off = jl;
        for (uint32_t i = 0; i < req->inputs.count; i++) {
            if (req->inputs.t[i].byte_len)
                memcpy(out + off, req->inputs.t[i].data, req->inputs.t[i].byte_len);
            off += req->inputs.t[i].byte_len;
        }
        *json_len = jl;
        *body_len = off;
    }
    json_object_put(root);
    return rc;
}

static void copy_json_string(json_object *root, const char *key, char *out, size_t out_bytes) {
    json_object *v = NULL;
    out[0] = '\0';
    if (json_object_object_get_ex(root, key, &v) && json_object_is_type(v, json_type_string))
        snprintf(out, out_bytes, "%s", json_object_get_string(v));
}

/* Parses len bytes of JSON (not NUL-terminated); NULL with err. */
static json_object *parse_json(const uint8_t *p, size_t len, const char *what, rs_err *err) {
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        rs_err_set(err, "out of memory parsing the %s", what);
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, (const char *)p, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    if (!o || je != json_tokener_success) {
        rs_err_set(err, "%s is not valid JSON: %s", what,
                   je == json_tokener_continue ? "unexpected end of input"
                                               : json_tokener_error_desc(je));
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

int rs_client_kserve_parse_response(const uint8_t *body, size_t body_len, size_t json_len,
                                    rs_client_kserve_result *out, struct rs_kserve_arena *arena,
                                    rs_err *err) {
    memset(out, 0, sizeof(*out));
    if (json_len > body_len) {
        rs_err_set(err,
                   "response: Inference-Header-Content-Length %zu is over the body's %zu bytes",
                   json_len, body_len);
        return -1;
    }
    json_object *root = parse_json(body, json_len, "response body", err);
    if (!root) return -1;
    int rc = -1;
    char *buf = NULL;
    json_object *outs = NULL, *wrap = NULL;
    if (!json_object_is_type(root, json_type_object)) {
        rs_err_set(err, "response body must be a JSON object");
        goto done;
    }
    copy_json_string(root, "model_name", out->model_name, sizeof(out->model_name));
    copy_json_string(root, "model_version", out->model_version, sizeof(out->model_version));
    copy_json_string(root, "id", out->id, sizeof(out->id));
    if (!json_object_object_get_ex(root, "outputs", &outs) ||
        !json_object_is_type(outs, json_type_array)) {
        rs_err_set(err, "response has no 'outputs' array");
        goto done;
    }
    if (json_object_array_length(outs) == 0) { /* a model may have no outputs */
        rc = 0;
        goto done;
    }
    /* The outputs array has the shape of a request's inputs: let the
     * server's own KServe parser convert it ({"inputs": outputs} + binary). */
    wrap = json_object_new_object();
    json_object_object_add(wrap, "inputs", json_object_get(outs));
    size_t wl = 0;
    const char *ws = json_object_to_json_string_length(wrap, JSON_C_TO_STRING_PLAIN, &wl);
    size_t bin = body_len - json_len;
    buf = malloc(wl + bin + 1);
    if (!ws || !buf) {
        rs_err_set(err, "out of memory converting the response");
        goto done;
    }
    memcpy(buf, ws, wl);
    if (bin) memcpy(buf + wl, body + json_len, bin);
    rs_kserve_request kr;
    if (rs_kserve_parse_infer((const uint8_t *)buf, wl + bin, wl, &kr, arena, err) != 0) {
        rs_err_prefix(err, "response outputs");
        goto done;
    }
    out->outputs = kr.inputs;
    rc = 0;
done:
    free(buf);
    json_object_put(wrap);
    json_object_put(root);
    return rc;
}

void rs_client_http_error_message(const rs_client_http_response *r, char *out, size_t out_bytes) {
    rs_err e;
    json_object *root = r->body_len ? parse_json(r->body, r->body_len, "error body", &e) : NULL;
    json_object *v = NULL;
    if (root && json_object_object_get_ex(root, "error", &v) &&
        json_object_is_type(v, json_type_string))
        snprintf(out, out_bytes, "%s", json_object_get_string(v));
    else
        snprintf(out, out_bytes, "%.*s",
                 (int)(r->body_len < out_bytes ? r->body_len : out_bytes - 1),
                 (const char *)r->body);
    json_object_put(root);
}

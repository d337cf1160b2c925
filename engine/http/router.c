/* router.c — first-match routing over literal and {capture} path segments. */
#include "engine/http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rs_http_router {
    uint32_t count, cap;
    rs_http_route routes[];
};

rs_http_router *rs_http_router_create(uint32_t max_routes, rs_err *err) {
    if (max_routes == 0 || max_routes > 4096) {
        rs_err_set(err, "router: max_routes %u: must be 1..4096", max_routes);
        return NULL;
    }
    rs_http_router *r = calloc(1, sizeof(*r) + sizeof(rs_http_route) * max_routes);
    if (!r) {
        rs_err_set(err, "router: out of memory");
        return NULL;
    }
    r->cap = max_routes;
    return r;
}

void rs_http_router_destroy(rs_http_router *r) {
    free(r);
}

int rs_http_router_add(rs_http_router *r, rs_http_method method, const char *pattern,
                       rs_http_handler_fn fn, void *arg, rs_err *err) {
    size_t len = strlen(pattern);
    if (r->count == r->cap) {
        rs_err_set(err, "router: %s: more than %u routes", pattern, r->cap);
        return -1;
    }
    if (len == 0 || pattern[0] != '/' || len >= sizeof(r->routes[0].pattern)) {
        rs_err_set(err, "router: '%s': a pattern starts with '/' and is under %zu bytes", pattern,
                   sizeof(r->routes[0].pattern));
        return -1;
    }
    uint32_t captures = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p != '{') continue;
        const char *close = strchr(p, '}');
        if (!close || close == p + 1 || p[-1] != '/' || (close[1] != '/' && close[1] != 0) ||
            memchr(p + 1, '/', (size_t)(close - p - 1))) {
            rs_err_set(err, "router: '%s': a capture is a whole segment '{name}'", pattern);
            return -1;
        }
        if (++captures > RS_HTTP_MAX_PARAMS) {
            rs_err_set(err, "router: '%s': more than %d captures", pattern, RS_HTTP_MAX_PARAMS);
            return -1;
        }
        p = close;
    }
    rs_http_route *rt = &r->routes[r->count++];
    rt->method = method;
    memcpy(rt->pattern, pattern, len + 1);
    rt->fn = fn;
    rt->arg = arg;
    return 0;
}

/* Matches path against pattern segment by segment. */
static bool match(const char *pattern, rs_str path, rs_http_param *params, uint32_t *n) {
    const char *p = pattern;
    const char *s = path.ptr, *end = path.ptr + path.len;
    *n = 0;
    while (*p && s < end) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *seg_end = memchr(s, '/', (size_t)(end - s));
            if (!seg_end) seg_end = end;
            if (seg_end == s) return false; /* empty segment */
            params[*n].name = (rs_str){p + 1, (uint32_t)(close - p - 1)};
            params[*n].value = (rs_str){s, (uint32_t)(seg_end - s)};
            (*n)++;
            p = close + 1;
            s = seg_end;
            continue;
        }
        if (*p != *s) return false;
        p++;
        s++;
    }
    return *p == 0 && s == end;
}

rs_http_match rs_http_router_match(const rs_http_router *r, rs_http_method method, rs_str path,
                                   const rs_http_route **route, rs_http_param *params,
                                   uint32_t *param_count) {
    bool path_known = false;
    rs_http_param tmp[RS_HTTP_MAX_PARAMS];
    for (uint32_t i = 0; i < r->count; i++) {
        uint32_t n = 0;
        if (!match(r->routes[i].pattern, path, tmp, &n)) continue;
        if (r->routes[i].method != method) {
            path_known = true;
            continue;
        }
        *route = &r->routes[i];
        memcpy(params, tmp, sizeof(rs_http_param) * n);
        *param_count = n;
        return RS_HTTP_MATCH_FOUND;
    }
    return path_known ? RS_HTTP_MATCH_BAD_METHOD : RS_HTTP_MATCH_NO_ROUTE;
}

uint32_t rs_http_router_allowed(const rs_http_router *r, rs_str path, char *out, size_t out_bytes) {
    uint32_t seen = 0, count = 0; /* bit per method */
    size_t len = 0;
    rs_http_param tmp[RS_HTTP_MAX_PARAMS];
    if (out_bytes) out[0] = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        uint32_t n, bit = 1u << r->routes[i].method;
        if ((seen & bit) || !match(r->routes[i].pattern, path, tmp, &n)) continue;
        seen |= bit;
        count++;
        if (len < out_bytes)
            len += (size_t)snprintf(out + len, out_bytes - len, "%s%s", len ? ", " : "",
                                    rs_http_method_name(r->routes[i].method));
    }
    return count;
}

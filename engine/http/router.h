/* router.h — maps (method, path) to a handler, with {name} path captures.
 *
 * Patterns are literal segments and captures, e.g.
 *   "/v2/models/{model}/versions/{version}/infer"
 *   "/v2/requests/{id}"
 * A capture matches exactly one non-empty segment. Routes are tried in the
 * order they were added; the first whose pattern matches the path and whose
 * method matches wins. A path that matches some pattern only under another
 * method is answered 405 (with "Allow"), a path matching nothing 404 — both
 * by the server, as {"error": "..."}.
 *
 * Built once at start-up (fixed capacity), then read-only: one router may be
 * shared by the servers of every loop. */
#ifndef RS_HTTP_ROUTER_H
#define RS_HTTP_ROUTER_H

#include "engine/http/http.h"

/* Called on the server's loop thread with a request valid during the call.
 * The handler must answer req->handle exactly once, now or later, with
 * rs_http_respond*(s, req->handle, ...). */
typedef void (*rs_http_handler_fn)(rs_http_server *s, const rs_http_request *req, void *arg);

typedef struct rs_http_route {
    rs_http_method method;
    char pattern[128];
    rs_http_handler_fn fn;
    void *arg;
} rs_http_route;

rs_http_router *rs_http_router_create(uint32_t max_routes, rs_err *err);
void rs_http_router_destroy(rs_http_router *r);
/* Adds a route. Fails (-1, err) on a full router, a pattern that does not
 * start with '/', an empty or unclosed capture, more than RS_HTTP_MAX_PARAMS
 * captures, or a pattern over 127 bytes. */
int rs_http_router_add(rs_http_router *r, rs_http_method method, const char *pattern,
                       rs_http_handler_fn fn, void *arg, rs_err *err);

typedef enum rs_http_match {
    RS_HTTP_MATCH_FOUND = 0,
    RS_HTTP_MATCH_NO_ROUTE = 1,   /* 404 */
    RS_HTTP_MATCH_BAD_METHOD = 2, /* 405 */
} rs_http_match;

/* Matches method+path; on FOUND *route is set and params/param_count filled
 * (values point into path). */
rs_http_match rs_http_router_match(const rs_http_router *r, rs_http_method method, rs_str path,
                                   const rs_http_route **route, rs_http_param *params,
                                   uint32_t *param_count);

/* The methods that have a route for path, as an "Allow" header value
 * ("GET, POST"), into out. Returns how many. */
uint32_t rs_http_router_allowed(const rs_http_router *r, rs_str path, char *out, size_t out_bytes);

#endif

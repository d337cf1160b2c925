/* cmd_bench.c — `ringserve bench`: the load generator's command line and its
 * report (plain table, --json, a progress line each second on a terminal).
 * The timing model lives in loadgen.h; the request in request.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/hist.h"
#include "bench/loadgen.h"
#include "bench/request.h"
#include "engine/cmd.h"
#include "engine/common/opts.h"
#include "io/loop.h"
#include "io/frame.h"
#include "io/loop.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: ringserve bench TARGET [options]\n"
            "\n"
            "target (one of):\n"
            "  --framed HOST:PORT        framed protocol INFER_REQUEST (coordinator or worker)\n"
            "  --http HOST:PORT          HTTP/1.1, KServe v2 JSON infer body (or --method GET)\n"
            "  --memcache HOST:PORT      memcached text protocol `get --key`\n"
            "  --protocol framed|http|memcache --addr HOST:PORT   the same, spelled out\n"
            "\n"
            "load:\n"
            "  --concurrency N           connections in total (default 16), one request in\n"
            "                            flight on each\n"
            "  --rate R                  open loop: R requests/s in total, latency from the\n"
            "                            intended send time (coordinated omission corrected);\n"
            "                            default: closed loop\n"
            "  --threads T               client threads, each pinned, one event loop each (1)\n"
            "  --duration S              measured seconds (default 5)\n"
            "  --warmup S                seconds before the measured part (default 1)\n"
            "  --timeout-ms MS           an answer later than this is a timeout error and\n"
            "                            the connection is replaced (default 10000; 0: never)\n"
            "\n"
            "request:\n"
            "  --model M [--version V]   model (default identity)\n"
            "  --input FILE              KServe v2 infer request JSON (inputs of the request)\n"
            "  --shape D1,D2.. --dtype T --fill zeros|random --input-name N\n"
            "                            generated input (default 1,16 FP32 zeros 'x')\n"
            "  --no-cache                framed: ask the server to bypass its cache\n"
            "  --unique                  framed: a different input every request (a sequence\n"
            "                            number in its first 8 bytes): no cache hit, no\n"
            "                            coalescing of identical requests\n"
            "  --method GET --path P     HTTP: a plain GET (e.g. a static file)\n"
            "  --key K [--value-bytes N] memcache: the key; with N, set it to N bytes first\n"
            "\n"
            "output:\n"
            "  --json                    one JSON object on stdout\n"
            "  --no-progress             no progress line (default: on when stdout is a tty)\n");
}

static int parse_addr(const char *s, char *host, size_t host_bytes, uint16_t *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= host_bytes) return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (*end || errno || p < 1 || p > 65535) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:80 */
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = 0;
    }
    *port = (uint16_t)p;
    return 0;
}

static int parse_double(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno || !(d >= lo && d <= hi)) {
        fprintf(stderr, "ringserve bench: %s '%s': expected a number in [%g, %g]\n", opt, v, lo,
                hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_u32(const char *opt, const char *v, uint32_t lo, uint32_t hi, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long long d = strtoull(v, &end, 10);
    if (!*v || *end || errno || d < lo || d > hi || v[0] == '-') {
        fprintf(stderr, "ringserve bench: %s '%s': expected an integer in [%u, %u]\n", opt, v, lo,
                hi);
        return -1;
    }
    *out = (uint32_t)d;
    return 0;
}

static double us(uint64_t ns) {
    return (double)ns / 1000.0;
}

static uint64_t total_errors(const rs_bench_result *r) {
    uint64_t n = 0;
    for (int k = 0; k < RS_BENCH_E_COUNT_; k++)
        n += r->errors[k];
    return n;
}

static const char *status_label(rs_bench_proto proto, uint32_t code, char *buf, size_t n) {
    if (proto == RS_BENCH_FRAMED)
        snprintf(buf, n, "%s", rs_status_name((rs_status)code));
    else
        snprintf(buf, n, "%u", code);
    return buf;
}

static void print_json(const rs_bench_cfg *cfg, const char *target, const char *backend,
                       const rs_bench_result *r, double secs) {
    const rs_bhist *h = &r->hist;
    printf("{\"protocol\": \"%s\", \"target\": \"%s\", \"mode\": \"%s\", \"connections\": %u, "
           "\"threads\": %u, \"rate\": %.1f, \"duration_s\": %.3f, \"warmup_s\": %.3f, "
           "\"io_backend\": \"%s\", \"request_bytes\": %zu,\n",
           rs_bench_proto_name(cfg->proto), target, cfg->rate > 0 ? "open" : "closed",
           cfg->connections, cfg->threads, cfg->rate, secs, cfg->warmup_s, backend,
           cfg->request_len);
    printf(" \"requests\": %llu, \"rps\": %.1f, \"cache_hits\": %llu, \"late_sends\": %llu, "
           "\"bytes_in\": %llu, \"bytes_out\": %llu,\n",
           (unsigned long long)r->ok, secs > 0 ? (double)r->ok / secs : 0.0,
           (unsigned long long)r->cache_hits, (unsigned long long)r->late_sends,
           (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out);
    printf(" \"latency_us\": {\"min\": %.1f, \"mean\": %.1f, \"p50\": %.1f, \"p90\": %.1f, "
           "\"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f},\n",
           us(h->count ? h->min : 0), rs_bhist_mean(h) / 1000.0, us(rs_bhist_percentile(h, 50)),
           us(rs_bhist_percentile(h, 90)), us(rs_bhist_percentile(h, 99)),
           us(rs_bhist_percentile(h, 99.9)), us(h->max));
    printf(" \"errors\": {\"total\": %llu", (unsigned long long)total_errors(r));
    for (int k = 0; k < RS_BENCH_E_COUNT_; k++)
        printf(", \"%s\": %llu", rs_bench_err_name((rs_bench_err)k),
               (unsigned long long)r->errors[k]);
    printf(", \"by_status\": {");
    const char *sep = "";
    char lb[64];
    for (uint32_t s = 0; s < RS_BENCH_STATUS_SLOTS; s++) {
        if (r->status[s] == 0) continue;
        printf("%s\"%s\": %llu", sep, status_label(cfg->proto, s, lb, sizeof(lb)),
               (unsigned long long)r->status[s]);
        sep = ", ";
    }
    printf("}}, \"first_error\": \"");
    for (const char *q = r->first_error; *q; q++) /* JSON string escaping */
        if (*q == '"' || *q == '\\')
            printf("\\%c", *q);
        else if ((unsigned char)*q < 0x20)
            printf("\\u%04x", *q);
        else
            putchar(*q);
    printf("\"}\n");
}

static void print_table(const rs_bench_cfg *cfg, const char *target, const char *backend,
                        const rs_bench_result *r, double secs) {
    const rs_bhist *h = &r->hist;
    printf("ringserve bench: %s %s, %s loop", rs_bench_proto_name(cfg->proto), target,
           cfg->rate > 0 ? "open" : "closed");
    if (cfg->rate > 0) printf(" at %.0f req/s", cfg->rate);
    printf(", %u connections, %u thread%s, %.1f s (+%.1f s warm-up), %s, %zu-byte request\n",
           cfg->connections, cfg->threads, cfg->threads == 1 ? "" : "s", secs, cfg->warmup_s,
           backend, cfg->request_len);
    printf("  %-14s %14llu\n", "ok", (unsigned long long)r->ok);
    printf("  %-14s %14.1f\n", "req/s", secs > 0 ? (double)r->ok / secs : 0.0);
    printf("  %-14s %14s\n", "latency (us)", "");
    printf("  %-14s %14.1f\n", "p50", us(rs_bhist_percentile(h, 50)));
    printf("  %-14s %14.1f\n", "p90", us(rs_bhist_percentile(h, 90)));
    printf("  %-14s %14.1f\n", "p99", us(rs_bhist_percentile(h, 99)));
    printf("  %-14s %14.1f\n", "p99.9", us(rs_bhist_percentile(h, 99.9)));
    printf("  %-14s %14.1f\n", "max", us(h->max));
    printf("  %-14s %14.1f\n", "mean", rs_bhist_mean(h) / 1000.0);
    if (cfg->proto == RS_BENCH_FRAMED)
        printf("  %-14s %14llu\n", "cache hits", (unsigned long long)r->cache_hits);
    if (cfg->rate > 0) printf("  %-14s %14llu\n", "late sends", (unsigned long long)r->late_sends);
    printf("  %-14s %14llu\n", "errors", (unsigned long long)total_errors(r));
    for (int k = 0; k < RS_BENCH_E_COUNT_; k++)
        if (r->errors[k])
            printf("    %-12s %14llu\n", rs_bench_err_name((rs_bench_err)k),
                   (unsigned long long)r->errors[k]);
    char lb[64];
    for (uint32_t s = 0; s < RS_BENCH_STATUS_SLOTS; s++)
        if (r->status[s])
            printf("    status %-5s %12llu\n", status_label(cfg->proto, s, lb, sizeof(lb)),
                   (unsigned long long)r->status[s]);
    if (r->first_error[0]) printf("  first error: %s\n", r->first_error);
}

int rs_cmd_bench(int argc, char **argv) {
    rs_bench_cfg cfg = {
        .threads = 1, .connections = 16, .duration_s = 5, .warmup_s = 1, .timeout_ms = 10000};
    rs_bench_req_opts ro = {
        .model = "identity", .input_name = "x", .dtype = RS_DT_FP32, .rank = 2, .dims = {1, 16}};
    const char *addr = NULL, *target_opt = NULL;
    int proto = -1;
    bool json = false, no_progress = false, unique = false;
    uint32_t value_bytes = 0;
    bool have_value_bytes = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (strcmp(a, "--no-progress") == 0) {
            no_progress = true;
            continue;
        }
        if (strcmp(a, "--no-cache") == 0) {
            ro.no_cache = true;
            continue;
        }
        if (strcmp(a, "--unique") == 0) {
            unique = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ringserve bench: %s: unknown option or missing value\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "--framed") == 0 || strcmp(a, "--http") == 0 ||
            strcmp(a, "--memcache") == 0) {
            int p = a[2] == 'f' ? RS_BENCH_FRAMED : a[2] == 'h' ? RS_BENCH_HTTP : RS_BENCH_MEMCACHE;
            if (proto >= 0 && proto != p) {
                fprintf(stderr, "ringserve bench: %s: a target was given already (%s)\n", a,
                        target_opt);
                return 2;
            }
            proto = p;
            addr = v;
            target_opt = a;
        } else if (strcmp(a, "--protocol") == 0) {
            int p = strcmp(v, "framed") == 0     ? RS_BENCH_FRAMED
                    : strcmp(v, "http") == 0     ? RS_BENCH_HTTP
                    : strcmp(v, "memcache") == 0 ? RS_BENCH_MEMCACHE
                                                 : -1;
            if (p < 0 || (proto >= 0 && proto != p)) {
                fprintf(stderr,
                        "ringserve bench: --protocol '%s': expected framed, http or memcache "
                        "(matching the target option)\n",
                        v);
                return 2;
            }
            proto = p;
        } else if (strcmp(a, "--addr") == 0) {
            addr = v;
        } else if (strcmp(a, "--concurrency") == 0) {
            bad = parse_u32(a, v, 1, 100000, &cfg.connections);
        } else if (strcmp(a, "--threads") == 0) {
            bad = parse_u32(a, v, 1, 256, &cfg.threads);
        } else if (strcmp(a, "--rate") == 0) {
            bad = parse_double(a, v, 0, 1e9, &cfg.rate);
        } else if (strcmp(a, "--duration") == 0) {
            bad = parse_double(a, v, 0.01, 86400, &cfg.duration_s);
        } else if (strcmp(a, "--timeout-ms") == 0) {
            bad = parse_u32(a, v, 0, 3600000, &cfg.timeout_ms);
        } else if (strcmp(a, "--warmup") == 0) {
            bad = parse_double(a, v, 0, 86400, &cfg.warmup_s);
        } else if (strcmp(a, "--model") == 0) {
            ro.model = v;
        } else if (strcmp(a, "--version") == 0) {
            ro.version = v;
        } else if (strcmp(a, "--input") == 0) {
            ro.input_file = v;
        } else if (strcmp(a, "--input-name") == 0) {
            ro.input_name = v;
        } else if (strcmp(a, "--shape") == 0) {
            rs_err e;
            if (rs_bench_parse_shape(v, ro.dims, &ro.rank, &e) != 0) {
                fprintf(stderr, "ringserve bench: %s\n", e.msg);
                return 2;
            }
        } else if (strcmp(a, "--dtype") == 0) {
            ro.dtype = rs_dtype_parse(v, strlen(v));
            if (ro.dtype == RS_DT_INVALID) {
                fprintf(stderr, "ringserve bench: --dtype '%s': not a KServe v2 datatype\n", v);
                return 2;
            }
        } else if (strcmp(a, "--fill") == 0) {
            if (strcmp(v, "zeros") != 0 && strcmp(v, "random") != 0) {
                fprintf(stderr, "ringserve bench: --fill '%s': expected zeros or random\n", v);
                return 2;
            }
            ro.random = strcmp(v, "random") == 0;
        } else if (strcmp(a, "--method") == 0) {
            if (strcmp(v, "GET") != 0 && strcmp(v, "POST") != 0) {
                fprintf(stderr, "ringserve bench: --method '%s': expected GET or POST\n", v);
                return 2;
            }
            ro.method = v;
        } else if (strcmp(a, "--path") == 0) {
            if (v[0] != '/') {
                fprintf(stderr, "ringserve bench: --path '%s': must start with '/'\n", v);
                return 2;
            }
            ro.path = v;
        } else if (strcmp(a, "--key") == 0) {
            ro.key = v;
        } else if (strcmp(a, "--value-bytes") == 0) {
            bad = parse_u32(a, v, 0, 1u << 20, &value_bytes);
            have_value_bytes = true;
        } else {
            fprintf(stderr, "ringserve bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) return 2;
    }
    if (proto < 0 || !addr) {
        fprintf(stderr, "ringserve bench: no target: give --framed, --http or --memcache "
                        "HOST:PORT (or --protocol P --addr HOST:PORT)\n");
        return 2;
    }
    char host[256];
    uint16_t port;
    if (parse_addr(addr, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "ringserve bench: '%s': expected HOST:PORT\n", addr);
        return 2;
    }
    /* the client's loops dial numeric addresses only: resolve the name now */
    char numeric[64];
    rs_err rerr = {0};
    if (rs_resolve_host(host, numeric, sizeof(numeric), &rerr) != 0) {
        fprintf(stderr, "ringserve bench: %s\n", rerr.msg);
        return 2;
    }
    cfg.proto = (rs_bench_proto)proto;
    cfg.host = numeric;
    cfg.port = port;
    ro.proto = cfg.proto;
    ro.host = host;
    if (cfg.proto == RS_BENCH_MEMCACHE && !ro.key) {
        fprintf(stderr, "ringserve bench: --protocol memcache needs --key K\n");
        return 2;
    }
    if (cfg.proto != RS_BENCH_MEMCACHE && (ro.key || have_value_bytes)) {
        fprintf(stderr, "ringserve bench: --key/--value-bytes apply to --protocol memcache only\n");
        return 2;
    }
    if (cfg.connections < cfg.threads) {
        fprintf(stderr, "ringserve bench: --concurrency %u is less than --threads %u\n",
                cfg.connections, cfg.threads);
        return 2;
    }
    rs_io_backend backend;
    rs_err err;
    if (rs_io_backend_resolve((rs_io_backend)rs_opts.io_backend, &backend, &err) != 0) {
        fprintf(stderr, "ringserve bench: %s\n", err.msg);
        return 1;
    }
    cfg.io_backend = (int)backend;
    uint8_t *req = NULL;
    size_t req_len = 0;
    size_t data_off = 0;
    bool data_fp32 = false;
    if (rs_bench_build_request(&ro, &req, &req_len, &data_off, &data_fp32, &err) != 0) {
        fprintf(stderr, "ringserve bench: %s\n", err.msg);
        return 2;
    }
    if (unique) {
        if (cfg.proto != RS_BENCH_FRAMED || data_off == 0) {
            fprintf(stderr, "ringserve bench: --unique needs --framed and an input of at least "
                            "8 bytes\n");
            free(req);
            return 2;
        }
        cfg.unique_offset = data_off;
        cfg.unique_fp32 = data_fp32;
    }
    cfg.request = req;
    cfg.request_len = req_len;
    if (have_value_bytes && rs_bench_memcache_set(host, port, ro.key, value_bytes, &err) != 0) {
        fprintf(stderr, "ringserve bench: %s\n", err.msg);
        free(req);
        return 1;
    }
    cfg.progress = !json && !no_progress && isatty(STDOUT_FILENO);
    rs_bench_result *res = malloc(sizeof(*res));
    double secs = 0;
    if (!res || rs_bench_run(&cfg, res, &secs, &err) != 0) {
        fprintf(stderr, "ringserve bench: %s\n", res ? err.msg : "out of memory");
        free(res);
        free(req);
        return 1;
    }
    char target[300];
    snprintf(target, sizeof(target), "%s:%u", host, port);
    if (json)
        print_json(&cfg, target, rs_io_backend_name(backend), res, secs);
    else
        print_table(&cfg, target, rs_io_backend_name(backend), res, secs);
    /* Exit 0 when requests succeeded; 1 when nothing succeeded at all. */
    int rc = res->ok > 0 ? 0 : 1;
    free(res);
    free(req);
    return rc;
}

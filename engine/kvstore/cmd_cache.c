/* cmd_cache.c — `ringserve cache`: inspect and operate the shared cache.
 *
 * Attaches to the segment named by the config's `cache:` section so an
 * operator can look at what the running processes share; only `set`
 * creates the segment when it does not exist yet. Exit codes: 0 done, 1 key not found, 2
 * usage/config/attach error. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cmd.h"
#include "engine/common/config.h"
#include "engine/kvstore/kvstore.h"

static void rs_cache_usage(FILE *out) {
    fprintf(
        out,
        "usage: ringserve cache <command> --config FILE [args]\n"
        "  stats [--json]     counters: hits, misses, hit rate, size, evictions, oversize\n"
        "  get KEY [--raw]    show an entry (KEY: 32 hex digits); --raw writes the value bytes\n"
        "  set KEY VALUE [--ttl S]  store VALUE (text), creating the segment if needed;\n"
        "                     S seconds, 0 = never, default from config\n"
        "  del KEY            remove an entry\n"
        "  clear              remove every entry\n"
        "  save               write a snapshot to the configured persist file now\n"
        "  destroy            remove the segment (after every process has stopped)\n");
}

static int rs_cache_load_config(const char *file, rs_kv_config *cfg) {
    rs_err err = {0};
    rs_cfg *doc = rs_cfg_load_file(file, &err);
    if (!doc) {
        fprintf(stderr, "ringserve cache: %s\n", err.msg);
        return -1;
    }
    rs_cfg_node root = rs_cfg_root(doc);
    rs_cfg_node section = rs_cfg_get(&root, "cache");
    int rc = rs_kv_config_parse(&section, cfg, &err);
    if (rc != 0) fprintf(stderr, "ringserve cache: %s\n", err.msg);
    rs_cfg_free(doc);
    return rc;
}

static int rs_cache_key_arg(const char *arg, rs_kv_key *key) {
    if (!arg || rs_kv_key_parse(arg, key) != 0) {
        fprintf(stderr, "ringserve cache: key '%s': expected 32 hex digits\n", arg ? arg : "");
        return -1;
    }
    return 0;
}

/* One table both renderings walk, so text and JSON cannot disagree. */
static void rs_cache_print_stats(rs_kv *kv, const char *name, bool as_json) {
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    const struct {
        const char *key;
        uint64_t value;
    } counters[] = {
        {"shards", s.shards},
        {"capacity_bytes", s.capacity_bytes},
        {"max_value_bytes", s.max_value_bytes},
        {"items", s.items},
        {"value_bytes", s.value_bytes},
        {"used_bytes", s.used_bytes},
        {"hits", s.hits},
        {"misses", s.misses},
        {"sets", s.sets},
        {"deletes", s.deletes},
        {"evictions", s.evictions},
        {"expired", s.expired},
        {"oversize", s.oversize},
        {"recoveries", s.recoveries},
        {"torn", s.torn},
    };
    size_t n = sizeof(counters) / sizeof(counters[0]);
    if (as_json) {
        char segment[RS_KV_NAME_BYTES + 2];
        snprintf(segment, sizeof(segment), "/%s", name);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "segment", json_object_new_string(segment));
        for (size_t i = 0; i < n; i++)
            json_object_object_add(o, counters[i].key, json_object_new_uint64(counters[i].value));
        json_object_object_add(o, "hit_rate", json_object_new_double(s.hit_rate));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return;
    }
    printf("%-16s /%s\n", "segment", name);
    for (size_t i = 0; i < n; i++) {
        printf("%-16s %llu\n", counters[i].key, (unsigned long long)counters[i].value);
        if (strcmp(counters[i].key, "misses") == 0) printf("%-16s %.4f\n", "hit_rate", s.hit_rate);
    }
}

static int rs_cache_get(rs_kv *kv, const rs_kv_key *key, bool raw) {
    rs_kv_stats s;
    rs_kv_stats_get(kv, &s);
    size_t cap = (size_t)s.max_value_bytes;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        fprintf(stderr, "ringserve cache: out of memory\n");
        return 2;
    }
    size_t len = 0;
    uint64_t ttl_ms = 0;
    int have_ttl = rs_kv_ttl_left_ms(kv, key, &ttl_ms);
    rs_kv_status st = rs_kv_get(kv, key, buf, cap, &len);
    int rc = 0;
    if (st != RS_KV_OK) {
        fprintf(stderr, "ringserve cache: not found\n");
        rc = 1;
    } else if (raw) {
        rc = fwrite(buf, 1, len, stdout) == len ? 0 : 2;
    } else {
        printf("bytes    %zu\n", len);
        if (have_ttl == 0 && ttl_ms != UINT64_MAX)
            printf("ttl_ms   %llu\n", (unsigned long long)ttl_ms);
        else
            printf("ttl_ms   never\n");
        printf("value   ");
        size_t shown = len < 64 ? len : 64;
        for (size_t i = 0; i < shown; i++)
            printf(" %02x", buf[i]);
        printf("%s\n", shown < len ? " ..." : "");
    }
    free(buf);
    return rc;
}

int rs_cmd_cache(int argc, char **argv) {
    const char *config = NULL, *op = NULL, *pos[2] = {NULL, NULL};
    const char *ttl_arg = NULL;
    bool raw = false, as_json = false;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            rs_cache_usage(stdout);
            return 0;
        } else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            config = a + 9;
        } else if (strcmp(a, "--ttl") == 0 && i + 1 < argc) {
            ttl_arg = argv[++i];
        } else if (strcmp(a, "--raw") == 0) {
            raw = true;
        } else if (strcmp(a, "--json") == 0) {
            as_json = true;
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "ringserve cache: unknown option '%s'\n", a);
            rs_cache_usage(stderr);
            return 2;
        } else if (!op) {
            op = a;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "ringserve cache: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    static const char *const ops[] = {"stats", "get",  "set",     "del",
                                      "clear", "save", "destroy", NULL};
    static const int nargs[] = {0, 1, 2, 1, 0, 0, 0};
    int which = -1;
    for (int i = 0; op && ops[i]; i++)
        if (strcmp(op, ops[i]) == 0) which = i;
    if (which < 0 || !config) {
        if (op && which < 0) fprintf(stderr, "ringserve cache: unknown command '%s'\n", op);
        if (!config) fprintf(stderr, "ringserve cache: --config FILE is required\n");
        rs_cache_usage(stderr);
        return 2;
    }
    if (npos != nargs[which]) {
        fprintf(stderr, "ringserve cache %s: expected %d argument(s), got %d\n", op, nargs[which],
                npos);
        return 2;
    }
    int64_t ttl_s = RS_KV_TTL_DEFAULT;
    if (ttl_arg) {
        char *end = NULL;
        long long v = strtoll(ttl_arg, &end, 10);
        if (!end || *end || v < 0) {
            fprintf(stderr, "ringserve cache: --ttl '%s': expected seconds >= 0\n", ttl_arg);
            return 2;
        }
        ttl_s = v;
    }
    rs_kv_config cfg;
    if (rs_cache_load_config(config, &cfg) != 0) return 2;
    rs_err err = {0};
    if (which == 6) { /* destroy */
        if (rs_kv_destroy(cfg.name, &err) != 0) {
            fprintf(stderr, "ringserve cache: %s\n", err.msg);
            return 2;
        }
        printf("removed /%s\n", cfg.name);
        return 0;
    }
    rs_kv_key key = {0, 0};
    if (nargs[which] >= 1 && rs_cache_key_arg(pos[0], &key) != 0) return 2;
    /* `set` may create the segment (warming it from the snapshot, like a
     * coordinator would); every other command only attaches. */
    rs_kv *kv = which == 2 ? rs_kv_open(&cfg, NULL, &err) : rs_kv_attach(cfg.name, NULL, &err);
    if (!kv) {
        fprintf(stderr, "ringserve cache: %s\n", err.msg);
        return 2;
    }
    int rc = 0;
    switch (which) {
    case 0: rs_cache_print_stats(kv, cfg.name, as_json); break;
    case 1: rc = rs_cache_get(kv, &key, raw); break;
    case 2: {
        if (ttl_s == RS_KV_TTL_DEFAULT) ttl_s = (int64_t)cfg.default_ttl_s;
        rs_kv_status st = rs_kv_set(kv, &key, pos[1], strlen(pos[1]), ttl_s);
        if (st == RS_KV_OVERSIZE) {
            fprintf(stderr,
                    "ringserve cache: value of %zu bytes exceeds max_value_kb; not cached\n",
                    strlen(pos[1]));
            rc = 2;
        } else if (st != RS_KV_OK) {
            fprintf(stderr, "ringserve cache: set failed\n");
            rc = 2;
        }
        break;
    }
    case 3:
        if (rs_kv_del(kv, &key) != RS_KV_OK) {
            fprintf(stderr, "ringserve cache: not found\n");
            rc = 1;
        }
        break;
    case 4:
        rs_kv_clear(kv);
        printf("cleared /%s\n", cfg.name);
        break;
    case 5: {
        if (!cfg.persist[0]) {
            fprintf(stderr, "ringserve cache: cache.persist is not set in %s\n", config);
            rc = 2;
            break;
        }
        int64_t n = rs_kv_snapshot_save(kv, cfg.persist, &err);
        if (n < 0) {
            fprintf(stderr, "ringserve cache: %s\n", err.msg);
            rc = 2;
        } else {
            printf("saved %lld entries to %s\n", (long long)n, cfg.persist);
        }
        break;
    }
    default: break;
    }
    rs_kv_detach(kv);
    return rc;
}

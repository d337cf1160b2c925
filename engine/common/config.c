#include "engine/common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

struct rs_cfg {
    yaml_document_t doc;
    char file[RS_CFG_FILE_BYTES];
};

static rs_cfg *rs_cfg_parse(yaml_parser_t *parser, const char *name, rs_err *err) {
    rs_cfg *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        rs_err_set(err, "%s: out of memory", name);
        return NULL;
    }
    snprintf(cfg->file, sizeof(cfg->file), "%s", name);
    if (!yaml_parser_load(parser, &cfg->doc)) {
        rs_err_set(err, "%s:%zu:%zu: YAML error: %s%s%s", name,
                   parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                   parser->problem ? parser->problem : "unknown",
                   parser->context ? " " : "", parser->context ? parser->context : "");
        free(cfg);
        return NULL;
    }
    if (!yaml_document_get_root_node(&cfg->doc)) {
        /* Empty document: replace with an empty mapping so lookups work. */
        yaml_document_delete(&cfg->doc);
        if (!yaml_document_initialize(&cfg->doc, NULL, NULL, NULL, 1, 1) ||
            !yaml_document_add_mapping(&cfg->doc, NULL, YAML_ANY_MAPPING_STYLE)) {
            rs_err_set(err, "%s: out of memory", name);
            free(cfg);
            return NULL;
        }
    }
    return cfg;
}

rs_cfg *rs_cfg_load_file(const char *file, rs_err *err) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        rs_err_set(err, "%s: cannot open: %s", file, strerror(errno));
        return NULL;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    rs_cfg *cfg = rs_cfg_parse(&parser, file, err);
    yaml_parser_delete(&parser);
    fclose(f);
    return cfg;
}

rs_cfg *rs_cfg_load_string(const char *text, const char *name, rs_err *err) {
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    rs_cfg *cfg = rs_cfg_parse(&parser, name ? name : "<string>", err);
    yaml_parser_delete(&parser);
    return cfg;
}

void rs_cfg_free(rs_cfg *cfg) {
    if (!cfg) return;
    yaml_document_delete(&cfg->doc);
    free(cfg);
}

const char *rs_cfg_file(const rs_cfg *cfg) { return cfg->file; }

static yaml_node_t *rs_cfg_yaml(const rs_cfg_node *n) {
    if (!n->cfg || n->id == 0) return NULL;
    return yaml_document_get_node(&n->cfg->doc, n->id);
}

rs_cfg_node rs_cfg_root(rs_cfg *cfg) {
    rs_cfg_node n = {.cfg = cfg, .id = 1, .path = ""};
    return n;
}

bool rs_cfg_is_map(const rs_cfg_node *n) {
    yaml_node_t *y = rs_cfg_yaml(n);
    return y && y->type == YAML_MAPPING_NODE;
}
bool rs_cfg_is_seq(const rs_cfg_node *n) {
    yaml_node_t *y = rs_cfg_yaml(n);
    return y && y->type == YAML_SEQUENCE_NODE;
}
bool rs_cfg_is_scalar(const rs_cfg_node *n) {
    yaml_node_t *y = rs_cfg_yaml(n);
    return y && y->type == YAML_SCALAR_NODE;
}
int rs_cfg_line(const rs_cfg_node *n) {
    yaml_node_t *y = rs_cfg_yaml(n);
    return y ? (int)y->start_mark.line + 1 : 0;
}

static void rs_cfg_child_path(char *out, const char *parent, const char *key) {
    if (parent[0] == '\0')
        snprintf(out, RS_CFG_PATH_BYTES, "%s", key);
    else
        snprintf(out, RS_CFG_PATH_BYTES, "%s.%s", parent, key);
}

rs_cfg_node rs_cfg_get(const rs_cfg_node *n, const char *key) {
    rs_cfg_node out = {.cfg = n->cfg, .id = 0};
    rs_cfg_child_path(out.path, n->path, key);
    yaml_node_t *y = rs_cfg_yaml(n);
    if (!y || y->type != YAML_MAPPING_NODE) return out;
    for (yaml_node_pair_t *p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&n->cfg->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0) {
            out.id = p->value;
            return out;
        }
    }
    return out;
}

size_t rs_cfg_len(const rs_cfg_node *n) {
    yaml_node_t *y = rs_cfg_yaml(n);
    if (!y) return 0;
    if (y->type == YAML_SEQUENCE_NODE)
        return (size_t)(y->data.sequence.items.top - y->data.sequence.items.start);
    if (y->type == YAML_MAPPING_NODE)
        return (size_t)(y->data.mapping.pairs.top - y->data.mapping.pairs.start);
    return 0;
}

rs_cfg_node rs_cfg_at(const rs_cfg_node *n, size_t i) {
    rs_cfg_node out = {.cfg = n->cfg, .id = 0};
    snprintf(out.path, sizeof(out.path), "%s[%zu]", n->path, i);
    yaml_node_t *y = rs_cfg_yaml(n);
    if (!y || y->type != YAML_SEQUENCE_NODE || i >= rs_cfg_len(n)) return out;
    out.id = y->data.sequence.items.start[i];
    return out;
}

const char *rs_cfg_pair(const rs_cfg_node *n, size_t i, rs_cfg_node *value) {
    yaml_node_t *y = rs_cfg_yaml(n);
    value->cfg = n->cfg;
    value->id = 0;
    if (!y || y->type != YAML_MAPPING_NODE || i >= rs_cfg_len(n)) return NULL;
    yaml_node_pair_t *p = &y->data.mapping.pairs.start[i];
    yaml_node_t *k = yaml_document_get_node(&n->cfg->doc, p->key);
    if (!k || k->type != YAML_SCALAR_NODE) return NULL;
    const char *key = (const char *)k->data.scalar.value;
    value->id = p->value;
    rs_cfg_child_path(value->path, n->path, key);
    return key;
}

const char *rs_cfg_scalar(const rs_cfg_node *n) {
    yaml_node_t *y = rs_cfg_yaml(n);
    if (!y || y->type != YAML_SCALAR_NODE) return NULL;
    return (const char *)y->data.scalar.value;
}

void rs_cfg_fail(const rs_cfg_node *n, rs_err *err, const char *fmt, ...) {
    char why[RS_ERR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    int line = rs_cfg_line(n);
    if (line > 0)
        rs_err_set(err, "%s:%d: %s: %s", n->cfg ? n->cfg->file : "?", line, n->path, why);
    else
        rs_err_set(err, "%s: %s: %s", n->cfg ? n->cfg->file : "?", n->path, why);
}

int rs_cfg_check_keys(const rs_cfg_node *map, const char *const allowed[], rs_err *err) {
    if (!rs_cfg_present(map)) return 0;
    if (!rs_cfg_is_map(map)) {
        rs_cfg_fail(map, err, "expected a mapping");
        return -1;
    }
    size_t n = rs_cfg_len(map);
    for (size_t i = 0; i < n; i++) {
        rs_cfg_node v;
        const char *key = rs_cfg_pair(map, i, &v);
        if (!key) {
            rs_cfg_fail(map, err, "mapping keys must be plain scalars");
            return -1;
        }
        bool ok = false;
        for (size_t a = 0; allowed[a]; a++)
            if (strcmp(allowed[a], key) == 0) ok = true;
        if (!ok) {
            char list[256] = "";
            size_t used = 0;
            for (size_t a = 0; allowed[a] && used < sizeof(list); a++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", a ? ", " : "",
                                         allowed[a]);
            rs_cfg_fail(&v, err, "unknown field (allowed: %s)", list);
            return -1;
        }
    }
    return 0;
}

/* Resolves key under parent; returns 1 if present (scalar in *text), 0 if
 * absent, -1 on a type error. */
static int rs_cfg_lookup(const rs_cfg_node *parent, const char *key, bool required,
                         rs_cfg_node *node, const char **text, rs_err *err) {
    *node = rs_cfg_get(parent, key);
    if (!rs_cfg_present(node)) {
        if (required) {
            rs_cfg_fail(parent, err, "missing required field '%s'", key);
            if (parent->path[0] == '\0')
                rs_err_set(err, "%s: %s: missing required field", parent->cfg->file, node->path);
            return -1;
        }
        return 0;
    }
    *text = rs_cfg_scalar(node);
    if (!*text) {
        rs_cfg_fail(node, err, "expected a scalar value");
        return -1;
    }
    return 1;
}

int rs_cfg_u64(const rs_cfg_node *parent, const char *key, bool required, uint64_t def,
               uint64_t min, uint64_t max, uint64_t *out, rs_err *err) {
    rs_cfg_node node;
    const char *text = NULL;
    int r = rs_cfg_lookup(parent, key, required, &node, &text, err);
    if (r <= 0) {
        if (r == 0) *out = def;
        return r;
    }
    char *end = NULL;
    errno = 0;
    if (text[0] == '-' || text[0] == '\0') {
        rs_cfg_fail(&node, err, "'%s': expected a non-negative integer", text);
        return -1;
    }
    unsigned long long v = strtoull(text, &end, 0);
    if (errno || !end || *end != '\0') {
        rs_cfg_fail(&node, err, "'%s': expected a non-negative integer", text);
        return -1;
    }
    if (v < min || v > max) {
        rs_cfg_fail(&node, err, "'%s': out of range [%" PRIu64 ", %" PRIu64 "]", text, min, max);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int rs_cfg_i64(const rs_cfg_node *parent, const char *key, bool required, int64_t def,
               int64_t min, int64_t max, int64_t *out, rs_err *err) {
    rs_cfg_node node;
    const char *text = NULL;
    int r = rs_cfg_lookup(parent, key, required, &node, &text, err);
    if (r <= 0) {
        if (r == 0) *out = def;
        return r;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 0);
    if (errno || !end || *end != '\0' || text[0] == '\0') {
        rs_cfg_fail(&node, err, "'%s': expected an integer", text);
        return -1;
    }
    if (v < min || v > max) {
        rs_cfg_fail(&node, err, "'%s': out of range [%" PRId64 ", %" PRId64 "]", text, min, max);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int rs_cfg_double(const rs_cfg_node *parent, const char *key, bool required, double def,
                  double min, double max, double *out, rs_err *err) {
    rs_cfg_node node;
    const char *text = NULL;
    int r = rs_cfg_lookup(parent, key, required, &node, &text, err);
    if (r <= 0) {
        if (r == 0) *out = def;
        return r;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || !end || *end != '\0' || text[0] == '\0' || !isfinite(v)) {
        rs_cfg_fail(&node, err, "'%s': expected a number", text);
        return -1;
    }
    if (v < min || v > max) {
        rs_cfg_fail(&node, err, "'%s': out of range [%g, %g]", text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int rs_cfg_bool(const rs_cfg_node *parent, const char *key, bool required, bool def, bool *out,
                rs_err *err) {
    rs_cfg_node node;
    const char *text = NULL;
    int r = rs_cfg_lookup(parent, key, required, &node, &text, err);
    if (r <= 0) {
        if (r == 0) *out = def;
        return r;
    }
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    rs_cfg_fail(&node, err, "'%s': expected true/false (or on/off, yes/no)", text);
    return -1;
}

int rs_cfg_str(const rs_cfg_node *parent, const char *key, bool required, const char *def,
               char *out, size_t out_bytes, rs_err *err) {
    rs_cfg_node node;
    const char *text = NULL;
    int r = rs_cfg_lookup(parent, key, required, &node, &text, err);
    if (r < 0) return -1;
    if (r == 0) text = def ? def : "";
    size_t len = strlen(text);
    if (len + 1 > out_bytes) {
        rs_cfg_fail(&node, err, "'%.40s...': longer than %zu bytes", text, out_bytes - 1);
        return -1;
    }
    memcpy(out, text, len + 1);
    return 0;
}

int rs_cfg_enum(const rs_cfg_node *parent, const char *key, bool required, int def,
                const char *const names[], int *out, rs_err *err) {
    rs_cfg_node node;
    const char *text = NULL;
    int r = rs_cfg_lookup(parent, key, required, &node, &text, err);
    if (r <= 0) {
        if (r == 0) *out = def;
        return r;
    }
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], text) == 0) {
            *out = i;
            return 0;
        }
    }
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; names[i] && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? "|" : "", names[i]);
    rs_cfg_fail(&node, err, "'%s': expected one of %s", text, list);
    return -1;
}

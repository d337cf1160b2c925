/* config.h — read-only access to a YAML document (libyaml) with precise errors.
 *
 * Every configuration file in ringserve (the server config, model.yaml files,
 * the core-affinity section) is parsed by libyaml into a document tree and
 * read through these helpers. Each getter validates type and range and, on
 * failure, fills rs_err with "<file>:<line>: <field path>: <value>: <why>",
 * so that a broken config is refused at start with one line naming the field.
 *
 * Nodes are small values (document pointer + node id + dotted path). The
 * document owns all memory; free it with rs_cfg_free once start-up is done. */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/err.h"

#define RS_CFG_PATH_BYTES 160
#define RS_CFG_FILE_BYTES 256

typedef struct rs_cfg rs_cfg;

typedef struct rs_cfg_node {
    rs_cfg *cfg;
    int id; /* libyaml node id; 0 means "absent" */
    char path[RS_CFG_PATH_BYTES];
} rs_cfg_node;

/* Loads a file / string. Returns NULL and fills err on a YAML syntax error
 * ("<file>:<line>:<col>: YAML error: <problem>"). An empty document loads as
 * an empty mapping. */
rs_cfg *rs_cfg_load_file(const char *file, rs_err *err);
rs_cfg *rs_cfg_load_string(const char *text, const char *name, rs_err *err);
void rs_cfg_free(rs_cfg *cfg);
const char *rs_cfg_file(const rs_cfg *cfg);

rs_cfg_node rs_cfg_root(rs_cfg *cfg);
static inline bool rs_cfg_present(const rs_cfg_node *n) { return n->id != 0; }
bool rs_cfg_is_map(const rs_cfg_node *n);
bool rs_cfg_is_seq(const rs_cfg_node *n);
bool rs_cfg_is_scalar(const rs_cfg_node *n);
/* 1-based line of the node in its file (0 when absent). */
int rs_cfg_line(const rs_cfg_node *n);

/* Mapping lookup; the result is absent (id 0) when the key is missing or n
 * is not a mapping. The child's path is "<parent path>.<key>". */
rs_cfg_node rs_cfg_get(const rs_cfg_node *n, const char *key);
/* Number of items of a sequence, or of pairs of a mapping; 0 otherwise. */
size_t rs_cfg_len(const rs_cfg_node *n);
/* i-th sequence item (path "<parent>[i]"). */
rs_cfg_node rs_cfg_at(const rs_cfg_node *n, size_t i);
/* i-th mapping pair: returns the key, fills *value. */
const char *rs_cfg_pair(const rs_cfg_node *n, size_t i, rs_cfg_node *value);
/* Scalar text, or NULL when n is absent or not a scalar. */
const char *rs_cfg_scalar(const rs_cfg_node *n);

/* Refuses keys not in allowed[] (NULL-terminated): catches typos up front.
 * Returns 0, or -1 with err "<file>:<line>: <path>.<key>: unknown field (allowed: a, b, c)". */
int rs_cfg_check_keys(const rs_cfg_node *map, const char *const allowed[], rs_err *err);

/* Typed getters. When the key is absent, *out = def and 0 is returned
 * (unless required, then -1 "missing required field"). When present, the
 * value must parse and lie in [min, max], else -1 with a precise err. */
int rs_cfg_u64(const rs_cfg_node *parent, const char *key, bool required, uint64_t def,
               uint64_t min, uint64_t max, uint64_t *out, rs_err *err);
int rs_cfg_i64(const rs_cfg_node *parent, const char *key, bool required, int64_t def,
               int64_t min, int64_t max, int64_t *out, rs_err *err);
int rs_cfg_double(const rs_cfg_node *parent, const char *key, bool required, double def,
                  double min, double max, double *out, rs_err *err);
/* true/false/yes/no/on/off (YAML 1.1 style). */
int rs_cfg_bool(const rs_cfg_node *parent, const char *key, bool required, bool def, bool *out,
                rs_err *err);
/* Copies the scalar into out (capacity out_bytes, NUL included); a longer
 * value is an error, not a silent truncation. */
int rs_cfg_str(const rs_cfg_node *parent, const char *key, bool required, const char *def,
               char *out, size_t out_bytes, rs_err *err);
/* One of names[] (NULL-terminated); *out is the index. */
int rs_cfg_enum(const rs_cfg_node *parent, const char *key, bool required, int def,
                const char *const names[], int *out, rs_err *err);

/* Formats "<file>:<line>: <path>: <why>" into err for a node (used by
 * modules for semantic checks a getter cannot make). */
void rs_cfg_fail(const rs_cfg_node *n, rs_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

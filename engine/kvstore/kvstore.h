/* kvstore.h — the shared-memory response cache every process on the host uses.
 *
 * One POSIX shared-memory segment (shm_open("/<name>") + mmap) holds the whole
 * cache: a header checked on attach, N shards (a power of two, >= 4x the io
 * threads), each with a robust process-shared mutex, a hash index, size-class
 * slabs carved from fixed pages and a CLOCK (second-chance LRU) per class.
 * Capacity is fixed when the segment is created; no operation allocates.
 * A process killed while holding a shard lock is recovered by the next
 * locker (EOWNERDEAD: the shard index is rebuilt from the entries whose
 * checksum verifies). Every entry carries an XXH3-64 checksum checked on each
 * get, so a torn entry is never returned. See docs/design.md "Response cache".
 *
 * Thread-safety: one rs_kv handle per process, shared by all its threads.
 * Every call is safe from any thread and from any number of processes.
 *
 * The coordinator's contract:
 *   key   = rs_kv_key_for_request(model, version, inputs)   (XXH3-128)
 *   value = the serialized response bytes
 *   hit   = rs_kv_get() == RS_KV_OK; after computing a response, rs_kv_set()
 *           with ttl RS_KV_TTL_DEFAULT; call rs_kv_tick() about once a second
 *           (sweep + periodic snapshot) and rs_kv_close() at clean shutdown. */
#ifndef RS_KVSTORE_H
#define RS_KVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/common/config.h"
#include "engine/common/err.h"
#include "io/tensor.h"

#define RS_KV_NAME_BYTES 64  /* segment name, NUL included */
#define RS_KV_PATH_BYTES 256 /* snapshot path, NUL included */

/* ---- configuration: the `cache:` section ------------------------------- */

typedef struct rs_kv_config {
    char name[RS_KV_NAME_BYTES]; /* segment "/<name>"; [A-Za-z0-9._-]; default "ringserve-cache" */
    uint64_t capacity_mb;        /* value memory (slab pages), 1..65536; default 64 */
    uint64_t max_value_kb;       /* larger values are not cached (counted); 1..16384; default 256 */
    uint64_t default_ttl_s;      /* TTL of RS_KV_TTL_DEFAULT sets; 0 = never expires; default 300 */
    char persist[RS_KV_PATH_BYTES]; /* snapshot file path; "" (default) = persistence off */
    uint64_t snapshot_interval_s;   /* 1..86400; default 60; used only with persist */
} rs_kv_config;

/* Fills defaults, reads `section` (absent = all defaults), checks every field
 * and refuses unknown keys. Returns 0, or -1 with one line in err:
 * "<file>:<line>: cache.<field>: <value>: <why>". */
int rs_kv_config_parse(const rs_cfg_node *section, rs_kv_config *out, rs_err *err);
void rs_kv_config_default(rs_kv_config *out);

/* ---- keys ---------------------------------------------------------------- */

typedef struct rs_kv_key {
    uint64_t lo, hi; /* XXH3-128 low and high halves */
} rs_kv_key;

/* The response-cache key: XXH3-128 over the model name, the version and, for
 * each input in name order (so input order does not matter), its name,
 * dtype, shape and bytes; every field is length-prefixed so that no two
 * different requests share an encoding. */
rs_kv_key rs_kv_key_for_request(const char *model, const char *version,
                                const rs_tensor_list *inputs);
/* The same with non NUL-terminated names (as parsed from the wire). */
rs_kv_key rs_kv_key_for_request_n(rs_str model, rs_str version, const rs_tensor_list *inputs);
/* XXH3-128 of arbitrary bytes (tests, tools). */
rs_kv_key rs_kv_key_from_bytes(const void *data, size_t len);
/* 32 lowercase hex digits (hi then lo, XXH3 canonical order) + NUL. */
void rs_kv_key_hex(const rs_kv_key *key, char out[33]);
/* Parses exactly 32 hex digits; returns 0 or -1. */
int rs_kv_key_parse(const char *hex, rs_kv_key *out);

/* ---- lifecycle ------------------------------------------------------------ */

typedef struct rs_kv rs_kv; /* per-process handle onto the shared segment */

/* Wall clock in milliseconds, injectable for tests (TTL expiry without sleeping). */
typedef uint64_t (*rs_kv_clock_fn)(void *ctx);

typedef struct rs_kv_options {
    uint32_t io_threads;     /* shards = next power of two >= 4 * io_threads (min 4); 0 = 1 */
    uint32_t shards;         /* 0 = derive from io_threads; else a power of two (tests) */
    uint64_t capacity_bytes; /* 0 = capacity_mb MiB; else exact value memory (tests) */
    rs_kv_clock_fn clock;    /* NULL = CLOCK_REALTIME_COARSE in ms */
    void *clock_ctx;
    bool no_snapshot_load; /* do not load cfg->persist when creating the segment */
} rs_kv_options;

/* Attaches to segment cfg->name, creating and sizing it if it does not exist.
 * A new segment is warmed from cfg->persist when that file exists. An
 * existing segment whose header (magic, layout version, sizes, shards,
 * capacity, max value) does not match is refused with one line naming the
 * field, both values and the fix (`ringserve cache destroy`). NULL on error. */
rs_kv *rs_kv_open(const rs_kv_config *cfg, const rs_kv_options *opt, rs_err *err);
/* Attaches only: refuses when the segment does not exist (operator tools).
 * Sizes come from the segment's header, which is still fully checked. */
rs_kv *rs_kv_attach(const char *name, const rs_kv_options *opt, rs_err *err);
/* Takes a snapshot when the handle was opened with persist set (clean
 * shutdown), then unmaps. The segment stays for the other processes. */
void rs_kv_close(rs_kv *kv);
/* Closes without the shutdown snapshot (tests, error paths). */
void rs_kv_detach(rs_kv *kv);
/* Removes the segment name; processes still attached keep their mapping. */
int rs_kv_destroy(const char *name, rs_err *err);

/* ---- operations ----------------------------------------------------------- */

typedef enum rs_kv_status {
    RS_KV_OK = 0,
    RS_KV_MISS = 1,      /* absent or expired */
    RS_KV_TOO_SMALL = 2, /* get: buffer too small; *value_len says how much is needed */
    RS_KV_OVERSIZE = 3,  /* set: value above max_value_kb, not cached (counted) */
    RS_KV_ERROR = 4,     /* shard lock unrecoverable (logged once) */
} rs_kv_status;

#define RS_KV_TTL_DEFAULT (-1) /* ttl_s for "the configured default_ttl_s" */
#define RS_KV_TTL_NEVER 0      /* ttl_s for "never expires" */

/* Copies the value into buf (buf_bytes capacity) and sets *value_len.
 * A hit marks the entry recently used. */
rs_kv_status rs_kv_get(rs_kv *kv, const rs_kv_key *key, void *buf, size_t buf_bytes,
                       size_t *value_len);
/* Inserts or replaces. ttl_s > 0 seconds, RS_KV_TTL_NEVER, or
 * RS_KV_TTL_DEFAULT. Evicts (CLOCK) within the value's size class when full. */
rs_kv_status rs_kv_set(rs_kv *kv, const rs_kv_key *key, const void *value, size_t len,
                       int64_t ttl_s);
/* RS_KV_OK when removed, RS_KV_MISS when absent. */
rs_kv_status rs_kv_del(rs_kv *kv, const rs_kv_key *key);
/* Present and not expired; counts neither hit nor miss, does not touch LRU. */
bool rs_kv_exists(rs_kv *kv, const rs_kv_key *key);
/* Remaining TTL of a live entry in ms (UINT64_MAX = never expires).
 * Returns 0, or -1 when absent or expired. */
int rs_kv_ttl_left_ms(rs_kv *kv, const rs_kv_key *key, uint64_t *ttl_left_ms);
/* Drops every entry (counters are kept). */
void rs_kv_clear(rs_kv *kv);
/* Frees every expired entry now; returns how many. */
uint64_t rs_kv_sweep(rs_kv *kv);
/* Periodic maintenance, call about once a second from any process: sweeps
 * when a second has passed, snapshots when persist is set and
 * snapshot_interval_s has passed. Shared deadlines in the segment make one
 * process do each job per period. Returns 0, or -1 if a snapshot failed
 * (logged). */
int rs_kv_tick(rs_kv *kv);

/* ---- stats ------------------------------------------------------------------ */

typedef struct rs_kv_stats {
    uint64_t hits, misses;
    double hit_rate; /* hits / (hits + misses); 0 when no lookups */
    uint64_t sets, deletes;
    uint64_t items;          /* live entries (expired-not-yet-swept included) */
    uint64_t value_bytes;    /* sum of stored value lengths */
    uint64_t used_bytes;     /* chunk bytes held by entries */
    uint64_t capacity_bytes; /* value memory (slab pages) */
    uint64_t evictions;      /* entries dropped to make room */
    uint64_t expired;        /* entries dropped for TTL (lazily or by sweep) */
    uint64_t oversize;       /* sets refused for exceeding max_value_kb */
    uint64_t recoveries;     /* shard locks recovered from a dead owner */
    uint64_t torn;           /* entries dropped for a checksum mismatch */
    uint32_t shards;
    uint64_t max_value_bytes;
} rs_kv_stats;

/* Sums the shared counters (every process's activity). */
void rs_kv_stats_get(rs_kv *kv, rs_kv_stats *out);

/* ---- persistence ---------------------------------------------------------- */

typedef struct rs_kv_load_report {
    uint64_t loaded;     /* records inserted */
    uint64_t expired;    /* records skipped: already expired */
    uint64_t corrupt;    /* records skipped: bad checksum, magic or size */
    uint64_t oversize;   /* records skipped: above this cache's max value */
    bool damaged;        /* the file was truncated or had garbage (a warning was logged) */
    bool truncated;      /* the file ended inside a record */
    uint64_t bad_offset; /* when damaged: the first offset where it stopped making sense */
} rs_kv_load_report;

/* Writes every live entry to "<path>.tmp.<pid>", fsyncs, renames to path and
 * fsyncs the directory. Returns the record count, or -1 with err. */
int64_t rs_kv_snapshot_save(rs_kv *kv, const char *path, rs_err *err);
/* Inserts the valid, unexpired records of path. A truncated or garbled file
 * logs one warning naming the file and offset and keeps the valid part;
 * a missing file is not an error (report all zero). Returns 0, or -1 with
 * err only when the file cannot be read at all or is not a snapshot. */
int rs_kv_snapshot_load(rs_kv *kv, const char *path, rs_kv_load_report *report, rs_err *err);

#endif

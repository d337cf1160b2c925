/* kv_snapshot.c — cache persistence: a checksummed record file.
 *
 * Format (host byte order; ringserve hosts are little-endian):
 *   header  "RSKVSNP1" | u32 version | u32 header bytes | u64 created wall ms
 *   record  u32 magic | u32 value_len | u64 key lo | u64 key hi |
 *           u64 expire wall ms (0 = never) | value | u64 XXH3-64 of all before
 * Written to a temporary file, fsynced, renamed over the old snapshot, and
 * the directory fsynced, so a crash leaves the old or the new file, never a
 * mix. The reader trusts nothing: a bad record is skipped by scanning for
 * the next one whose checksum verifies, a short tail is dropped. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/common/log.h"
#include "engine/kvstore/kv_layout.h"

#define RS_KV_SNAP_MAGIC "RSKVSNP1"
#define RS_KV_SNAP_VERSION 1u
#define RS_KV_REC_MAGIC 0x5252564bu     /* "KVRR" */
#define RS_KV_REC_MAX_VALUE (16u << 20) /* the largest max_value_kb */

typedef struct rs_kv_snap_header {
    char magic[8];
    uint32_t version;
    uint32_t header_bytes;
    uint64_t created_ms;
} rs_kv_snap_header;

typedef struct rs_kv_rec_head {
    uint32_t magic;
    uint32_t value_len;
    uint64_t key_lo, key_hi;
    uint64_t expire_ms;
} rs_kv_rec_head;

#define RS_KV_REC_OVERHEAD (sizeof(rs_kv_rec_head) + sizeof(uint64_t))

/* ---- save ------------------------------------------------------------------ */

typedef struct rs_kv_snap_buf {
    uint8_t *data;
    size_t used, cap;
    uint64_t records;
} rs_kv_snap_buf;

/* Runs under the shard lock: only copies. */
static void rs_kv_snap_append(void *ctx, const rs_kv_item *it) {
    rs_kv_snap_buf *b = ctx;
    size_t need = RS_KV_REC_OVERHEAD + it->value_len;
    RS_ASSERT(b->used + need <= b->cap); /* a page's records never exceed the page */
    rs_kv_rec_head h = {RS_KV_REC_MAGIC, it->value_len, it->key_lo, it->key_hi, it->expire_ms};
    uint8_t *p = b->data + b->used;
    memcpy(p, &h, sizeof(h));
    memcpy(p + sizeof(h), it->value, it->value_len);
    uint64_t sum = XXH3_64bits(p, sizeof(h) + it->value_len);
    memcpy(p + sizeof(h) + it->value_len, &sum, sizeof(sum));
    b->used += need;
    b->records++;
}

static int rs_kv_write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int rs_kv_fsync_dir(const char *path) {
    char copy[RS_KV_PATH_BYTES + 32];
    snprintf(copy, sizeof(copy), "%s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

int64_t rs_kv_snapshot_save(rs_kv *kv, const char *path, rs_err *err) {
    char tmp[RS_KV_PATH_BYTES + 32];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        rs_err_set(err, "snapshot %s: path too long", path);
        return -1;
    }
    /* One page of records at a time: the lock is held only to copy. */
    rs_kv_snap_buf b = {.cap = kv->page_bytes + RS_KV_REC_OVERHEAD * (kv->page_bytes / 64 + 1)};
    b.data = malloc(b.cap);
    if (!b.data) {
        rs_err_set(err, "snapshot %s: out of memory", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rs_err_set(err, "snapshot %s: cannot create %s: %s", path, tmp, strerror(errno));
        free(b.data);
        return -1;
    }
    uint64_t now = rs_kv_now_ms(kv);
    rs_kv_snap_header h = {.version = RS_KV_SNAP_VERSION,
                           .header_bytes = sizeof(rs_kv_snap_header),
                           .created_ms = now};
    memcpy(h.magic, RS_KV_SNAP_MAGIC, sizeof(h.magic));
    const char *what = "write";
    int ok = rs_kv_write_all(fd, (const uint8_t *)&h, sizeof(h)) == 0;
    for (uint64_t p = 0, pages = rs_kv_page_count(kv); ok && p < pages; p++) {
        b.used = 0;
        rs_kv_visit_page(kv, p, now, rs_kv_snap_append, &b);
        if (b.used) ok = rs_kv_write_all(fd, b.data, b.used) == 0;
    }
    if (ok && fsync(fd) != 0) {
        ok = 0;
        what = "fsync";
    }
    int saved_errno = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        what = "close";
        saved_errno = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        what = "rename";
        saved_errno = errno;
    }
    free(b.data);
    if (!ok) {
        rs_err_set(err, "snapshot %s: %s %s: %s", path, what, tmp, strerror(saved_errno));
        unlink(tmp);
        return -1;
    }
    if (rs_kv_fsync_dir(path) != 0)
        RS_WARN("snapshot %s: fsync of its directory failed: %s", path, strerror(errno));
    return (int64_t)b.records;
}

/* ---- load ------------------------------------------------------------------ */

/* Whether a whole, checksummed record starts at off; fills *head and *len. */
static bool rs_kv_rec_valid(const uint8_t *file, uint64_t size, uint64_t off, rs_kv_rec_head *head,
                            uint64_t *rec_bytes, bool *short_tail) {
    *short_tail = false;
    memset(head, 0, sizeof(*head));
    memcpy(head, file + off, size - off < sizeof(*head) ? size - off : sizeof(*head));
    if (size - off < RS_KV_REC_OVERHEAD) {
        *short_tail = true;
        return false;
    }
    if (head->magic != RS_KV_REC_MAGIC || head->value_len > RS_KV_REC_MAX_VALUE) return false;
    uint64_t total = RS_KV_REC_OVERHEAD + head->value_len;
    if (size - off < total) {
        *short_tail = true;
        return false;
    }
    uint64_t sum;
    memcpy(&sum, file + off + sizeof(*head) + head->value_len, sizeof(sum));
    if (XXH3_64bits(file + off, sizeof(*head) + head->value_len) != sum) return false;
    *rec_bytes = total;
    return true;
}

static void rs_kv_load_records(rs_kv *kv, const char *path, const uint8_t *file, uint64_t size,
                               rs_kv_load_report *rep) {
    uint64_t now = rs_kv_now_ms(kv);
    uint64_t off = sizeof(rs_kv_snap_header);
    while (off < size) {
        rs_kv_rec_head head;
        uint64_t rec_bytes = 0;
        bool short_tail;
        if (rs_kv_rec_valid(file, size, off, &head, &rec_bytes, &short_tail)) {
            const uint8_t *value = file + off + sizeof(head);
            rs_kv_key key = {head.key_lo, head.key_hi};
            if (head.expire_ms != 0 && now >= head.expire_ms)
                rep->expired++;
            else if (rs_kv_set_abs(kv, &key, value, head.value_len, head.expire_ms) == RS_KV_OK)
                rep->loaded++;
            else
                rep->oversize++;
            off += rec_bytes;
            continue;
        }
        if (!rep->damaged) {
            rep->damaged = true;
            rep->bad_offset = off;
        }
        if (short_tail && head.magic == RS_KV_REC_MAGIC) {
            rep->truncated = true;
            RS_WARN("cache snapshot %s: truncated at offset %" PRIu64 " (file is %" PRIu64
                    " bytes): dropped the incomplete last record",
                    path, off, size);
            return;
        }
        rep->corrupt++;
        if (rep->corrupt == 1)
            RS_WARN("cache snapshot %s: corrupt record at offset %" PRIu64
                    " (bad magic, length or checksum): skipping to the next valid record",
                    path, off);
        /* Resynchronise on the next offset where a whole record verifies. */
        uint64_t next = off + 1;
        for (; next + RS_KV_REC_OVERHEAD <= size; next++) {
            bool st;
            if (rs_kv_rec_valid(file, size, next, &head, &rec_bytes, &st)) break;
        }
        if (next + RS_KV_REC_OVERHEAD > size) {
            RS_WARN("cache snapshot %s: no valid record after offset %" PRIu64 " (file is %" PRIu64
                    " bytes): ignored the rest",
                    path, off, size);
            return;
        }
        off = next;
    }
}

int rs_kv_snapshot_load(rs_kv *kv, const char *path, rs_kv_load_report *report, rs_err *err) {
    rs_kv_load_report local;
    rs_kv_load_report *rep = report ? report : &local;
    memset(rep, 0, sizeof(*rep));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0; /* first start: nothing to warm from */
        rs_err_set(err, "cache snapshot %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rs_err_set(err, "cache snapshot %s: not a regular file", path);
        close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size;
    rs_kv_snap_header h;
    if (size < sizeof(h)) {
        close(fd);
        rep->damaged = rep->truncated = true;
        rep->bad_offset = 0;
        RS_WARN("cache snapshot %s: truncated at offset 0 (file is %" PRIu64
                " bytes, header needs %zu): ignored",
                path, size, sizeof(h));
        return 0;
    }
    const uint8_t *file = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (file == MAP_FAILED) {
        rs_err_set(err, "cache snapshot %s: mmap: %s", path, strerror(errno));
        return -1;
    }
    memcpy(&h, file, sizeof(h));
    if (memcmp(h.magic, RS_KV_SNAP_MAGIC, sizeof(h.magic)) != 0 ||
        h.version != RS_KV_SNAP_VERSION || h.header_bytes != sizeof(h)) {
        rep->damaged = true;
        rep->corrupt = 1;
        RS_WARN("cache snapshot %s: bad header at offset 0 (not a version %u ringserve cache "
                "snapshot): ignored",
                path, RS_KV_SNAP_VERSION);
    } else {
        rs_kv_load_records(kv, path, file, size, rep);
        if (rep->corrupt > 1)
            RS_WARN("cache snapshot %s: skipped %" PRIu64 " corrupt stretches; loaded %" PRIu64
                    " records",
                    path, rep->corrupt, rep->loaded);
    }
    munmap((void *)file, size);
    return 0;
}

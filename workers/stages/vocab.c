/* vocab.c — vocabulary / label files and whitespace tokenization.
 *
 * Loaded once when a pipeline is compiled; lookups hash with XXH3 into an
 * open-addressing table twice the entry count, so a word costs one hash and
 * usually one compare. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "workers/stages/stage_ops.h"

#define VOCAB_MAX_FILE_BYTES (64u << 20)

static int read_file(const char *path, char **out, size_t *out_len, char *why, size_t why_bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_bytes, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(VOCAB_MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        snprintf(why, why_bytes, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(buf, 1, VOCAB_MAX_FILE_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > VOCAB_MAX_FILE_BYTES) {
        free(buf);
        snprintf(why, why_bytes, "%s: %s", path,
                 bad ? "read error" : "larger than 64 MiB");
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

static uint32_t slot_of(const rs_vocab *v, const char *s, size_t len) {
    return (uint32_t)XXH3_64bits(s, len) & v->slot_mask;
}

int64_t rs_vocab_find(const rs_vocab *v, const char *s, size_t len) {
    if (v->count == 0) return -1;
    for (uint32_t i = slot_of(v, s, len);; i = (i + 1) & v->slot_mask) {
        uint32_t e = v->slots[i];
        if (e == 0) return -1;
        uint32_t id = e - 1;
        if (v->lens[id] == len && memcmp(v->blob + v->offsets[id], s, len) == 0) return id;
    }
}

void rs_vocab_free(rs_vocab *v) {
    free(v->blob);
    free(v->offsets);
    free(v->lens);
    free(v->slots);
    memset(v, 0, sizeof(*v));
}

int rs_vocab_load(rs_vocab *v, const char *path, bool tokens, char *why, size_t why_bytes) {
    memset(v, 0, sizeof(*v));
    char *text;
    size_t len;
    if (read_file(path, &text, &len, why, why_bytes) != 0) return -1;
    /* Count lines; a final newline does not start another entry. */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n') lines++;
    if (len > 0 && text[len - 1] != '\n') lines++;
    if (lines == 0) {
        snprintf(why, why_bytes, "%s: empty file", path);
        free(text);
        return -1;
    }
    if (lines > RS_VOCAB_MAX_ENTRIES) {
        snprintf(why, why_bytes, "%s: %zu entries, at most %u", path, lines,
                 RS_VOCAB_MAX_ENTRIES);
        free(text);
        return -1;
    }
    uint32_t slots = 2;
    while (slots < lines * 2) slots <<= 1;
    v->blob = text; /* entries are NUL-terminated in place */
    v->offsets = calloc(lines, sizeof(uint32_t));
    v->lens = calloc(lines, sizeof(uint32_t));
    v->slots = calloc(slots, sizeof(uint32_t));
    v->slot_mask = slots - 1;
    if (!v->offsets || !v->lens || !v->slots) {
        snprintf(why, why_bytes, "%s: out of memory", path);
        rs_vocab_free(v);
        return -1;
    }
    size_t pos = 0;
    for (uint32_t id = 0; id < lines; id++) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        size_t tlen = end - pos;
        if (tlen > 0 && text[pos + tlen - 1] == '\r') tlen--;
        text[pos + tlen] = '\0';
        const char *tok = text + pos;
        const char *bad = NULL;
        if (tlen == 0) bad = "empty entry";
        else if (tlen > RS_VOCAB_MAX_TOKEN_BYTES) bad = "entry longer than 256 bytes";
        for (size_t i = 0; tokens && !bad && i < tlen; i++)
            if (isspace((unsigned char)tok[i])) bad = "token contains whitespace";
        if (!bad && tokens && rs_vocab_find(v, tok, tlen) >= 0) bad = "duplicate token";
        if (bad) {
            snprintf(why, why_bytes, "%s:%u: %s", path, id + 1, bad);
            rs_vocab_free(v);
            return -1;
        }
        v->offsets[id] = (uint32_t)pos;
        v->lens[id] = (uint32_t)tlen;
        v->count = id + 1;
        uint32_t i = slot_of(v, tok, tlen);
        while (v->slots[i] != 0) i = (i + 1) & v->slot_mask;
        v->slots[i] = id + 1;
        pos = end + 1;
    }
    return 0;
}

size_t rs_stage_tokenize(const rs_vocab *v, const char *text, size_t len, bool lowercase,
                         int64_t unk_id, int64_t pad_id, int64_t *out, size_t max_tokens) {
    size_t words = 0, i = 0;
    char lower[RS_VOCAB_MAX_TOKEN_BYTES];
    while (i < len) {
        while (i < len && isspace((unsigned char)text[i])) i++;
        if (i >= len) break;
        size_t start = i;
        while (i < len && !isspace((unsigned char)text[i])) i++;
        if (words < max_tokens) {
            const char *w = text + start;
            size_t wlen = i - start;
            int64_t id = -1;
            if (wlen <= RS_VOCAB_MAX_TOKEN_BYTES) {
                if (lowercase) {
                    for (size_t j = 0; j < wlen; j++) lower[j] = (char)tolower((unsigned char)w[j]);
                    w = lower;
                }
                id = rs_vocab_find(v, w, wlen);
            }
            out[words] = id >= 0 ? id : unk_id;
        }
        words++;
    }
    for (size_t j = words; j < max_tokens; j++) out[j] = pad_id;
    return words;
}

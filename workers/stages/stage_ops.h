/* stage_ops.h — the stages' arithmetic as pure functions over flat buffers.
 *
 * Each function reads its inputs and writes only its output buffers; no
 * allocation, no global state. The pipeline (pipeline.c) checks dtypes and
 * shapes, sizes the outputs from the arena and calls these; the unit tests
 * call them directly. */
#ifndef RS_STAGE_OPS_H
#define RS_STAGE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/tensor.h"

/* True for dtypes cast/normalize convert (integers, BOOL, FP32, FP64). */
bool rs_stage_numeric(rs_dtype dt);

/* out[i] = (float)in[i] * scale + offset for n elements of dtype dt. */
void rs_stage_normalize(rs_dtype dt, const void *in, size_t n, float scale, float offset,
                        float *out);

/* Converts n elements. Float -> integer truncates toward zero and saturates
 * at the target's range; NaN -> 0. Integer -> integer saturates. Any -> BOOL
 * is (x != 0). Both dtypes must satisfy rs_stage_numeric. */
void rs_stage_cast(rs_dtype from, const void *in, rs_dtype to, void *out, size_t n);

/* Row-wise softmax over cols (max subtracted first for stability). */
void rs_stage_softmax(const float *in, size_t rows, size_t cols, float *out);

/* Row-wise index of the largest value; ties go to the lower index. */
void rs_stage_argmax(const float *in, size_t rows, size_t cols, int64_t *out);

/* Row-wise k largest values (descending, ties to the lower index) and their
 * indices; 1 <= k <= cols. */
void rs_stage_topk(const float *in, size_t rows, size_t cols, size_t k, float *scores,
                   int64_t *ids);

/* ---- vocabularies and label lists (tokenize, topk) ---- */

/* A read-only token table: strings in one blob, XXH3-hashed open addressing. */
typedef struct rs_vocab {
    char *blob;          /* tokens, each NUL-terminated */
    uint32_t *offsets;   /* offsets[id] into blob */
    uint32_t *lens;      /* lens[id] */
    uint32_t count;
    uint32_t *slots;     /* hash table of id+1 (0 = empty), power-of-two size */
    uint32_t slot_mask;
} rs_vocab;

#define RS_VOCAB_MAX_ENTRIES (1u << 20)
#define RS_VOCAB_MAX_TOKEN_BYTES 256

/* Loads one entry per line (id = 0-based line). Empty lines, entries over
 * RS_VOCAB_MAX_TOKEN_BYTES and, with unique, duplicates are refused with
 * "<file>:<line>: <why>". tokens: entries may not contain whitespace (they
 * could never match a whitespace-split word); labels may. */
int rs_vocab_load(rs_vocab *v, const char *path, bool tokens, char *why, size_t why_bytes);
void rs_vocab_free(rs_vocab *v);
/* id of the token, or -1 when absent. */
int64_t rs_vocab_find(const rs_vocab *v, const char *s, size_t len);

/* Splits text on ASCII whitespace, maps each word through v (unknown ->
 * unk_id, lowercased first when lowercase), writes exactly max_tokens ids
 * (truncated, padded with pad_id). Returns the number of words seen. */
size_t rs_stage_tokenize(const rs_vocab *v, const char *text, size_t len, bool lowercase,
                         int64_t unk_id, int64_t pad_id, int64_t *out, size_t max_tokens);

#endif

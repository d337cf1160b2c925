/* gen_mlp_weights — writes a dense network's .safetensors with deterministic
 * pseudo-random weights, for benchmarks (models/mlp-bench): generated at
 * build time, never committed.
 *
 *   gen_mlp_weights OUT.safetensors 1024,4096,4096,1024 relu,relu,none [seed]
 *
 * Weights are uniform in +-sqrt(3/in) (unit variance through each layer),
 * biases 0.01; the stream is xorshift64* from the seed, so every build
 * produces the same bytes. */
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_MAX_LAYERS 16

static uint64_t gen_state;

static float gen_uniform(void) {
    gen_state ^= gen_state >> 12;
    gen_state ^= gen_state << 25;
    gen_state ^= gen_state >> 27;
    uint64_t r = gen_state * 2685821657736338717ULL;
    return (float)((double)(r >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static int gen_sizes(const char *text, long *sizes) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", text);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == GEN_MAX_LAYERS + 1) return -1;
        sizes[n] = strtol(t, NULL, 10);
        if (sizes[n] < 1 || sizes[n] > 65536) return -1;
        n++;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s OUT.safetensors SIZES(a,b,c) ACTIVATIONS(x,y) [seed]\n", argv[0]);
        return 2;
    }
    long sizes[GEN_MAX_LAYERS + 1];
    int n = gen_sizes(argv[2], sizes);
    if (n < 2) {
        fprintf(stderr, "gen_mlp_weights: bad layer sizes '%s'\n", argv[2]);
        return 2;
    }
    gen_state = argc == 5 ? strtoull(argv[4], NULL, 10) | 1 : 0x9E3779B97F4A7C15ULL;
    json_object *hdr = json_object_new_object(), *md = json_object_new_object();
    json_object_object_add(md, "format", json_object_new_string("ringserve-dense"));
    json_object_object_add(md, "activations", json_object_new_string(argv[3]));
    json_object_object_add(hdr, "__metadata__", md);
    uint64_t off = 0;
    for (int i = 0; i + 1 < n; i++) {
        const char *what[2] = {"weight", "bias"};
        for (int k = 0; k < 2; k++) {
            uint64_t elems = k == 0 ? (uint64_t)sizes[i + 1] * (uint64_t)sizes[i] : (uint64_t)sizes[i + 1];
            json_object *t = json_object_new_object(), *shape = json_object_new_array(),
                        *offs = json_object_new_array();
            json_object_array_add(shape, json_object_new_int64(sizes[i + 1]));
            if (k == 0) json_object_array_add(shape, json_object_new_int64(sizes[i]));
            json_object_array_add(offs, json_object_new_int64((int64_t)off));
            json_object_array_add(offs, json_object_new_int64((int64_t)(off + elems * 4)));
            json_object_object_add(t, "dtype", json_object_new_string("F32"));
            json_object_object_add(t, "shape", shape);
            json_object_object_add(t, "data_offsets", offs);
            char name[64];
            snprintf(name, sizeof(name), "layers.%d.%s", i, what[k]);
            json_object_object_add(hdr, name, t);
            off += elems * 4;
        }
    }
    const char *text = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
    size_t hlen = strlen(text), padded = (hlen + 7) & ~(size_t)7;
    FILE *f = fopen(argv[1], "wb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(text, 1, hlen, f);
    for (size_t i = hlen; i < padded; i++) fputc(' ', f);
    json_object_put(hdr);
    float *buf = malloc(sizeof(float) * 65536);
    for (int i = 0; i + 1 < n; i++) {
        float a = sqrtf(3.0f / (float)sizes[i]);
        for (long o = 0; o < sizes[i + 1]; o++) {
            for (long k = 0; k < sizes[i]; k++) buf[k] = a * gen_uniform();
            fwrite(buf, sizeof(float), (size_t)sizes[i], f);
        }
        for (long o = 0; o < sizes[i + 1]; o++) buf[o] = 0.01f;
        fwrite(buf, sizeof(float), (size_t)sizes[i + 1], f);
    }
    free(buf);
    if (fclose(f) != 0) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}

/* fixture.h — temporary model repositories for the registry and backend
 * tests: folders, model.yaml files and small .safetensors files. */
#ifndef RS_TEST_REGISTRY_FIXTURE_H
#define RS_TEST_REGISTRY_FIXTURE_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline void fixture_tmpdir(char out[64]) {
    snprintf(out, 64, "/tmp/rs_registry_XXXXXX");
    if (!mkdtemp(out)) abort();
}

static inline void fixture_mkdirs(const char *root, const char *rel) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
}

static inline void fixture_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) abort();
    fclose(f);
}

/* Writes <root>/<name>/<version>/model.yaml. */
static inline void fixture_model(const char *root, const char *name, unsigned version,
                                 const char *text) {
    char rel[256], path[512];
    snprintf(rel, sizeof(rel), "%s/%u", name, version);
    fixture_mkdirs(root, rel);
    snprintf(path, sizeof(path), "%s/%s/model.yaml", root, rel);
    fixture_write(path, text, strlen(text));
}

/* A safetensors file: header JSON as given (padded to 8 bytes), then data. */
static inline void fixture_safetensors(const char *path, const char *header, const void *data,
                                       size_t data_len) {
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7;
    size_t total = 8 + padded + data_len;
    uint8_t *buf = calloc(1, total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    if (data_len) memcpy(buf + 8 + padded, data, data_len);
    fixture_write(path, buf, total);
    free(buf);
}

static inline int fixture_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fixture_rmtree(const char *root) {
    nftw(root, fixture_rm, 16, FTW_DEPTH | FTW_PHYS);
}

#endif

/* registry.c — scans model repositories into a fixed set of models and an
 * open-addressing hash table keyed by (name, version), built once at
 * start-up. The latest version of each model is also stored under version 0
 * so that "latest" is one probe like any other lookup. */
#include "engine/model_registry/registry.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/common/log.h"

typedef struct rs_registry_slot {
    const rs_model *model; /* NULL = empty */
    uint32_t version;      /* key version: the model's, or 0 for "latest" */
    uint64_t hash;
} rs_registry_slot;

struct rs_registry {
    size_t count;
    rs_model **models; /* sorted by name, then version */
    size_t skipped;
    size_t slot_mask;
    rs_registry_slot *slots;
};

/* ---- config section ---- */

void rs_registry_config_default(rs_registry_config *out, const char *repo) {
    memset(out, 0, sizeof(*out));
    out->repo_count = 1;
    snprintf(out->repos[0], sizeof(out->repos[0]), "%s", repo ? repo : "models");
}

static int rs_registry_repo_path(const rs_cfg_node *n, const char *base, char *out,
                                 rs_err *err) {
    const char *text = rs_cfg_scalar(n);
    if (!text || !text[0]) {
        rs_cfg_fail(n, err, "expected a repository path");
        return -1;
    }
    int w = (text[0] == '/' || !base[0]) ? snprintf(out, PATH_MAX, "%s", text)
                                         : snprintf(out, PATH_MAX, "%s/%s", base, text);
    if (w < 0 || w >= PATH_MAX) {
        rs_cfg_fail(n, err, "'%.40s...': path too long", text);
        return -1;
    }
    return 0;
}

/* "name" or "name:N". */
static int rs_registry_load_entry(const rs_cfg_node *n, rs_registry_load *out, rs_err *err) {
    const char *text = rs_cfg_scalar(n);
    if (!text || !text[0]) {
        rs_cfg_fail(n, err, "expected a model name or name:version");
        return -1;
    }
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    out->version = 0;
    if (len == 0 || len > RS_MAX_NAME_BYTES) {
        rs_cfg_fail(n, err, "'%s': expected a model name or name:version", text);
        return -1;
    }
    memcpy(out->name, text, len);
    out->name[len] = '\0';
    if (colon) {
        char *end = NULL;
        long v = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end != '\0' || v < 1 || v > RS_MODEL_MAX_VERSION) {
            rs_cfg_fail(n, err, "'%s': version must be in [1, %d]", text, RS_MODEL_MAX_VERSION);
            return -1;
        }
        out->version = (uint32_t)v;
    }
    return 0;
}

int rs_registry_config_parse(const rs_cfg_node *section, rs_registry_config *out, rs_err *err) {
    static const char *const keys[] = {"repository", "load", "skip_bad_models", NULL};
    rs_registry_config_default(out, "models");
    if (rs_cfg_present(section) && rs_cfg_check_keys(section, keys, err) < 0) return -1;
    /* Relative paths are relative to the config file's folder. */
    char base[PATH_MAX] = "";
    if (section->cfg) {
        snprintf(base, sizeof(base), "%s", rs_cfg_file(section->cfg));
        char *slash = strrchr(base, '/');
        if (slash) *slash = '\0';
        else base[0] = '\0';
    }
    rs_cfg_node repo = rs_cfg_get(section, "repository");
    if (rs_cfg_present(&repo)) {
        if (rs_cfg_is_seq(&repo)) {
            size_t n = rs_cfg_len(&repo);
            if (n == 0 || n > RS_REGISTRY_MAX_REPOS) {
                rs_cfg_fail(&repo, err, "expected 1..%d repository paths", RS_REGISTRY_MAX_REPOS);
                return -1;
            }
            for (size_t i = 0; i < n; i++) {
                rs_cfg_node it = rs_cfg_at(&repo, i);
                if (rs_registry_repo_path(&it, base, out->repos[i], err) < 0) return -1;
            }
            out->repo_count = (uint32_t)n;
        } else {
            if (rs_registry_repo_path(&repo, base, out->repos[0], err) < 0) return -1;
            out->repo_count = 1;
        }
    } else if (base[0]) {
        snprintf(out->repos[0], sizeof(out->repos[0]), "%s/models", base);
    }
    rs_cfg_node load = rs_cfg_get(section, "load");
    if (rs_cfg_present(&load)) {
        size_t n = rs_cfg_len(&load);
        if (!rs_cfg_is_seq(&load) || n > RS_REGISTRY_MAX_LOAD) {
            rs_cfg_fail(&load, err, "expected a list of at most %d models", RS_REGISTRY_MAX_LOAD);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            rs_cfg_node it = rs_cfg_at(&load, i);
            if (rs_registry_load_entry(&it, &out->load[i], err) < 0) return -1;
        }
        out->load_count = (uint32_t)n;
    }
    return rs_cfg_bool(section, "skip_bad_models", false, false, &out->skip_bad_models, err);
}

/* ---- scanning ---- */

static bool rs_registry_selected(const rs_registry_config *cfg, const char *name,
                                 uint32_t version) {
    if (cfg->load_count == 0) return true;
    for (uint32_t i = 0; i < cfg->load_count; i++)
        if (strcmp(cfg->load[i].name, name) == 0 &&
            (cfg->load[i].version == 0 || cfg->load[i].version == version))
            return true;
    return false;
}

/* Version folders are plain positive numbers; anything else is not a version. */
static uint32_t rs_registry_version_of(const char *s) {
    if (!s[0] || s[0] == '0' || strlen(s) > 6) return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return (uint32_t)strtoul(s, NULL, 10);
}

static int rs_registry_names(const char *dir, char ***names, size_t *count, rs_err *err) {
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    if (n < 0) {
        rs_err_set(err, "%s: cannot read model repository: %s", dir, strerror(errno));
        return -1;
    }
    *names = calloc((size_t)n + 1, sizeof(char *));
    *count = 0;
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.' && *names) (*names)[(*count)++] = strdup(list[i]->d_name);
        free(list[i]);
    }
    free(list);
    if (!*names) {
        rs_err_set(err, "%s: out of memory", dir);
        return -1;
    }
    return 0;
}

static void rs_registry_free_names(char **names, size_t count) {
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
}

static bool rs_registry_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const rs_model *rs_registry_linear_find(const rs_registry *r, const char *name,
                                               uint32_t version) {
    for (size_t i = 0; i < r->count; i++)
        if (r->models[i]->version == version && strcmp(r->models[i]->name, name) == 0)
            return r->models[i];
    return NULL;
}

/* Parses one version folder; returns 0 (added, skipped or not a model) or -1. */
static int rs_registry_add(rs_registry *r, const rs_registry_config *cfg, const char *repo,
                           const char *name, const char *ver, rs_err *err) {
    uint32_t version = rs_registry_version_of(ver);
    char dir[PATH_MAX], file[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s/%s", repo, name, ver);
    if (version == 0 || !rs_registry_is_dir(dir)) return 0;
    snprintf(file, sizeof(file), "%s/model.yaml", dir);
    if (access(file, F_OK) != 0) return 0; /* e.g. a model generated at build time */
    if (!rs_registry_selected(cfg, name, version)) return 0;
    if (rs_registry_linear_find(r, name, version)) {
        RS_WARN("%s: model %s version %u already loaded from an earlier repository; ignored",
                file, name, version);
        return 0;
    }
    if (r->count == RS_REGISTRY_MAX_MODELS) {
        rs_err_set(err, "%s: more than %d model versions", file, RS_REGISTRY_MAX_MODELS);
        return -1;
    }
    rs_model *m = calloc(1, sizeof(*m));
    if (!m) {
        rs_err_set(err, "%s: out of memory", file);
        return -1;
    }
    if (rs_model_parse_file(file, name, version, m, err) < 0) {
        free(m);
        if (!cfg->skip_bad_models) return -1;
        RS_WARN("skipping bad model: %s", err->msg);
        rs_err_clear(err);
        r->skipped++;
        return 0;
    }
    if (m->placement.device == RS_MODEL_DEVICE_GPU && m->placement.numa == RS_MODEL_NUMA_AUTO &&
        m->placement.gpu_count > 0)
        m->placement.numa_resolved =
            cfg->gpu_numa ? cfg->gpu_numa(m->placement.gpus[0], cfg->gpu_numa_ctx) : -1;
    r->models[r->count++] = m;
    return 0;
}

static int rs_registry_scan(rs_registry *r, const rs_registry_config *cfg, const char *repo,
                            rs_err *err) {
    char **names = NULL;
    size_t n = 0;
    if (rs_registry_names(repo, &names, &n, err) < 0) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", repo, names[i]);
        if (!rs_registry_is_dir(path)) continue;
        char **vers = NULL;
        size_t nv = 0;
        if (rs_registry_names(path, &vers, &nv, err) < 0) {
            rc = -1;
            break;
        }
        for (size_t j = 0; j < nv && rc == 0; j++)
            rc = rs_registry_add(r, cfg, repo, names[i], vers[j], err);
        rs_registry_free_names(vers, nv);
    }
    rs_registry_free_names(names, n);
    return rc;
}

/* ---- hash table ---- */

static uint64_t rs_registry_hash(const char *name, size_t len, uint32_t version) {
    return XXH3_64bits_withSeed(name, len, version);
}

static void rs_registry_insert(rs_registry *r, const rs_model *m, uint32_t version) {
    uint64_t h = rs_registry_hash(m->name, strlen(m->name), version);
    size_t i = h & r->slot_mask;
    while (r->slots[i].model) i = (i + 1) & r->slot_mask;
    r->slots[i] = (rs_registry_slot){.model = m, .version = version, .hash = h};
}

const rs_model *rs_registry_findn(const rs_registry *r, const char *name, size_t name_len,
                                  uint32_t version) {
    uint64_t h = rs_registry_hash(name, name_len, version);
    for (size_t i = h & r->slot_mask;; i = (i + 1) & r->slot_mask) {
        const rs_registry_slot *s = &r->slots[i];
        if (!s->model) return NULL;
        if (s->hash == h && s->version == version && strncmp(s->model->name, name, name_len) == 0 &&
            s->model->name[name_len] == '\0')
            return s->model;
    }
}

const rs_model *rs_registry_find(const rs_registry *r, const char *name, uint32_t version) {
    return rs_registry_findn(r, name, strlen(name), version);
}

static int rs_registry_cmp(const void *a, const void *b) {
    const rs_model *x = *(rs_model *const *)a, *y = *(rs_model *const *)b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return (x->version > y->version) - (x->version < y->version);
}

/* Builds the table and renders each model's metadata (with all versions). */
static int rs_registry_index(rs_registry *r, rs_err *err) {
    qsort(r->models, r->count, sizeof(*r->models), rs_registry_cmp);
    size_t cap = 16;
    while (cap < 4 * r->count) cap *= 2; /* <= 50% full: counts latest twice */
    r->slots = calloc(cap, sizeof(*r->slots));
    if (!r->slots) {
        rs_err_set(err, "model registry: out of memory");
        return -1;
    }
    r->slot_mask = cap - 1;
    uint32_t versions[RS_REGISTRY_MAX_MODELS];
    for (size_t i = 0; i < r->count;) {
        size_t j = i;
        while (j < r->count && strcmp(r->models[j]->name, r->models[i]->name) == 0) {
            versions[j - i] = r->models[j]->version;
            j++;
        }
        for (size_t k = i; k < j; k++) {
            rs_registry_insert(r, r->models[k], r->models[k]->version);
            r->models[k]->metadata_json = rs_model_metadata_render(r->models[k], versions, j - i);
            if (!r->models[k]->metadata_json) {
                rs_err_set(err, "%s: cannot render model metadata", r->models[k]->file);
                return -1;
            }
        }
        rs_registry_insert(r, r->models[j - 1], 0);
        i = j;
    }
    return 0;
}

rs_registry *rs_registry_create(const rs_registry_config *cfg, rs_err *err) {
    rs_registry *r = calloc(1, sizeof(*r));
    if (r) r->models = calloc(RS_REGISTRY_MAX_MODELS, sizeof(*r->models));
    if (!r || !r->models) {
        free(r);
        rs_err_set(err, "model registry: out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < cfg->repo_count; i++) {
        if (rs_registry_scan(r, cfg, cfg->repos[i], err) < 0) {
            rs_registry_destroy(r);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < cfg->load_count; i++) {
        const rs_registry_load *l = &cfg->load[i];
        bool found = false;
        for (size_t k = 0; k < r->count && !found; k++)
            found = strcmp(r->models[k]->name, l->name) == 0 &&
                    (l->version == 0 || r->models[k]->version == l->version);
        if (!found) {
            char what[RS_MAX_NAME_BYTES + 16];
            if (l->version) snprintf(what, sizeof(what), "%s:%u", l->name, l->version);
            else snprintf(what, sizeof(what), "%s", l->name);
            rs_err_set(err, "models.load: '%s': no such model in %s%s", what, cfg->repos[0],
                       cfg->repo_count > 1 ? " (or the other repositories)" : "");
            rs_registry_destroy(r);
            return NULL;
        }
    }
    if (rs_registry_index(r, err) < 0) {
        rs_registry_destroy(r);
        return NULL;
    }
    return r;
}

void rs_registry_destroy(rs_registry *r) {
    if (!r) return;
    for (size_t i = 0; i < r->count; i++) {
        free(r->models[i]->metadata_json);
        free(r->models[i]);
    }
    free(r->models);
    free(r->slots);
    free(r);
}

size_t rs_registry_count(const rs_registry *r) { return r->count; }
size_t rs_registry_skipped(const rs_registry *r) { return r->skipped; }

const rs_model *rs_registry_at(const rs_registry *r, size_t i) {
    RS_ASSERT(i < r->count);
    return r->models[i];
}

/* backend.c — the table of backends: the built-ins plus plugins dlopen'ed
 * from --backend-dir at start-up. The ABI version is the first field of a
 * plugin's table and is checked before anything else in it is read. */
#include "workers/backend.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/log.h"

typedef struct rs_backend_plugin {
    const rs_backend_ops *ops;
    void *handle;
} rs_backend_plugin;

/* Filled at start-up, before any compute thread runs; read-only after. */
static rs_backend_plugin rs_plugins[RS_BACKEND_MAX];
static size_t rs_plugin_count;

const rs_backend_ops *rs_backend_find(const char *name) {
    const rs_backend_ops *builtins[] = {rs_backend_identity(), rs_backend_dense()};
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
        if (strcmp(builtins[i]->name, name) == 0) return builtins[i];
    for (size_t i = 0; i < rs_plugin_count; i++)
        if (strcmp(rs_plugins[i].ops->name, name) == 0) return rs_plugins[i].ops;
    return NULL;
}

int rs_backend_load_plugin(const char *path, rs_err *err) {
    if (rs_plugin_count == RS_BACKEND_MAX) {
        rs_err_set(err, "%s: too many backend plugins (max %d)", path, RS_BACKEND_MAX);
        return -1;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        rs_err_set(err, "%s: cannot load backend plugin: %s", path, dlerror());
        return -1;
    }
    rs_backend_entry_fn entry;
    *(void **)&entry = dlsym(h, RS_BACKEND_ENTRY_SYMBOL);
    const rs_backend_ops *ops = entry ? entry() : NULL;
    const char *why = NULL;
    char buf[160];
    if (!entry) why = "no " RS_BACKEND_ENTRY_SYMBOL " symbol: not a ringserve backend plugin";
    else if (!ops) why = RS_BACKEND_ENTRY_SYMBOL "() returned NULL";
    else if (ops->abi_version != RS_BACKEND_ABI_VERSION) {
        snprintf(buf, sizeof(buf), "backend ABI version %u, this ringserve needs %u",
                 ops->abi_version, RS_BACKEND_ABI_VERSION);
        why = buf;
    } else if (!ops->name || !ops->name[0] || !ops->load || !ops->infer || !ops->unload)
        why = "incomplete backend table (name, load, infer and unload are required)";
    else if (rs_backend_find(ops->name)) {
        snprintf(buf, sizeof(buf), "backend '%s' is already registered", ops->name);
        why = buf;
    }
    if (why) {
        rs_err_set(err, "%s: %s", path, why);
        dlclose(h);
        return -1;
    }
    rs_plugins[rs_plugin_count++] = (rs_backend_plugin){.ops = ops, .handle = h};
    RS_INFO("backend plugin '%s' loaded from %s", ops->name, path);
    return 0;
}

static int rs_backend_so_filter(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

int rs_backend_load_dir(const char *dir, rs_err *err) {
    struct dirent **list = NULL;
    int n = scandir(dir, &list, rs_backend_so_filter, alphasort);
    if (n < 0) {
        rs_err_set(err, "%s: cannot read backend directory", dir);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
        if (rc == 0) rc = rs_backend_load_plugin(path, err);
        free(list[i]);
    }
    free(list);
    return rc;
}

void rs_backend_unload_plugins(void) {
    while (rs_plugin_count > 0) dlclose(rs_plugins[--rs_plugin_count].handle);
}

int rs_backend_check_model(const rs_model *m, rs_err *err) {
    if (rs_backend_find(m->backend)) return 0;
    rs_err_set(err, "%s: backend: '%s': no such backend (built-in: identity, dense; plugins "
               "come from --backend-dir)",
               m->file, m->backend);
    return -1;
}

/* kv_config.c — the `cache:` section: defaults, ranges, unknown keys. */
#include <stdio.h>
#include <string.h>

#include "engine/kvstore/kvstore.h"

void rs_kv_config_default(rs_kv_config *out) {
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", "ringserve-cache");
    out->capacity_mb = 64;
    out->max_value_kb = 256;
    out->default_ttl_s = 300;
    out->persist[0] = '\0';
    out->snapshot_interval_s = 60;
}

int rs_kv_config_parse(const rs_cfg_node *section, rs_kv_config *out, rs_err *err) {
    rs_kv_config_default(out);
    if (!section || !rs_cfg_present(section)) return 0;
    if (!rs_cfg_is_map(section)) {
        rs_cfg_fail(section, err, "expected a mapping (name, capacity_mb, max_value_kb, ...)");
        return -1;
    }
    static const char *const allowed[] = {
        "name", "capacity_mb", "max_value_kb", "default_ttl_s", "persist", "snapshot_interval_s",
        NULL};
    if (rs_cfg_check_keys(section, allowed, err) != 0) return -1;
    if (rs_cfg_str(section, "name", false, out->name, out->name, sizeof(out->name), err) != 0)
        return -1;
    rs_cfg_node name = rs_cfg_get(section, "name");
    size_t n = strlen(out->name);
    for (size_t i = 0; i < n || n == 0; i++) {
        char c = n ? out->name[i] : '\0';
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (c == '.' && i > 0);
        if (!ok) {
            rs_cfg_fail(&name, err,
                        "%s: a shared-memory name: 1+ letters, digits, '.', '_' or '-' "
                        "(no '/', not starting with '.')",
                        out->name);
            return -1;
        }
    }
    if (rs_cfg_u64(section, "capacity_mb", false, out->capacity_mb, 1, 65536, &out->capacity_mb,
                   err) != 0)
        return -1;
    if (rs_cfg_u64(section, "max_value_kb", false, out->max_value_kb, 1, 16384, &out->max_value_kb,
                   err) != 0)
        return -1;
    if (out->max_value_kb * 1024ull > out->capacity_mb << 20) {
        rs_cfg_node mv = rs_cfg_get(section, "max_value_kb");
        rs_cfg_fail(rs_cfg_present(&mv) ? &mv : section, err,
                    "%llu: larger than capacity_mb (%llu MiB)",
                    (unsigned long long)out->max_value_kb, (unsigned long long)out->capacity_mb);
        return -1;
    }
    if (rs_cfg_u64(section, "default_ttl_s", false, out->default_ttl_s, 0, 365ull * 86400,
                   &out->default_ttl_s, err) != 0)
        return -1;
    if (rs_cfg_str(section, "persist", false, "", out->persist, sizeof(out->persist), err) != 0)
        return -1;
    if (rs_cfg_u64(section, "snapshot_interval_s", false, out->snapshot_interval_s, 1, 86400,
                   &out->snapshot_interval_s, err) != 0)
        return -1;
    return 0;
}

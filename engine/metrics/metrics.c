/* metrics.c — registry, shards and the Prometheus text renderer (see metrics.h). */
#include "engine/metrics/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common/log.h"

#define NAME_BYTES 96
#define HELP_BYTES 160
#define LABELS_BYTES 256

typedef struct family {
    rs_metric_kind kind;
    char name[NAME_BYTES];
    char help[HELP_BYTES];
    uint32_t label_count;
    char label_names[RS_METRICS_MAX_LABELS][32];
    uint32_t sub_bits, nb; /* histograms */
    double scale;
    uint32_t series_count;
} family;

typedef struct series {
    rs_metric_family family;
    rs_metric_id slot;
    char labels[LABELS_BYTES]; /* rendered: a="x",b="y" */
} series;

struct rs_metrics {
    uint32_t shard_count, max_families, max_series, max_slots;
    uint32_t family_count, series_count, slot_count;
    bool frozen;
    family *families;
    series *series;
    uint8_t *sub_bits; /* per slot */
    uint32_t *buckets; /* per slot */
    uint64_t *slab;    /* shard_count * stride slots */
    size_t stride;     /* slots per shard, rounded to a cache line */
    rs_metrics_shard *shards;
};

rs_metrics *rs_metrics_create(uint32_t shards, uint32_t max_families, uint32_t max_series,
                              uint32_t max_slots, rs_err *err) {
    if (shards == 0 || max_families == 0 || max_series == 0 || max_slots == 0) {
        rs_err_set(err, "metrics: shards, families, series and slots must all be >= 1");
        return NULL;
    }
    rs_metrics *m = calloc(1, sizeof(*m));
    if (!m) goto oom;
    m->shard_count = shards;
    m->max_families = max_families;
    m->max_series = max_series;
    m->max_slots = max_slots;
    m->families = calloc(max_families, sizeof(family));
    m->series = calloc(max_series, sizeof(series));
    m->sub_bits = calloc(max_slots, 1);
    m->buckets = calloc(max_slots, sizeof(uint32_t));
    m->shards = calloc(shards, sizeof(rs_metrics_shard));
    if (!m->families || !m->series || !m->sub_bits || !m->buckets || !m->shards) goto oom;
    return m;
oom:
    rs_metrics_destroy(m);
    rs_err_set(err, "metrics: out of memory");
    return NULL;
}

void rs_metrics_destroy(rs_metrics *m) {
    if (!m) return;
    free(m->families);
    free(m->series);
    free(m->sub_bits);
    free(m->buckets);
    free(m->slab);
    free(m->shards);
    free(m);
}

static bool valid_name(const char *s, bool allow_colon) {
    if (!s || !*s) return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static uint32_t bucket_count(uint32_t sub_bits, uint64_t max_value) {
    /* index of max_value without clamping, + its own bucket, + Inf */
    return rs_metrics_bucket_index(max_value, sub_bits, UINT32_MAX) + 2;
}

int rs_metrics_add_family(rs_metrics *m, rs_metric_kind kind, const char *name, const char *help,
                          const char *const *label_names, const rs_histogram_spec *hist,
                          rs_metric_family *out, rs_err *err) {
    if (m->frozen) {
        rs_err_set(err, "metrics: %s: registry is frozen", name);
        return -1;
    }
    if (m->family_count == m->max_families) {
        rs_err_set(err, "metrics: %s: more than %u families", name, m->max_families);
        return -1;
    }
    if (!valid_name(name, true) || strlen(name) >= NAME_BYTES - 8) {
        rs_err_set(err, "metrics: '%s': not a valid metric name", name ? name : "");
        return -1;
    }
    family *f = &m->families[m->family_count];
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    snprintf(f->name, sizeof(f->name), "%s", name);
    snprintf(f->help, sizeof(f->help), "%s", help ? help : "");
    for (uint32_t i = 0; label_names && label_names[i]; i++) {
        if (i == RS_METRICS_MAX_LABELS) {
            rs_err_set(err, "metrics: %s: more than %d labels", name, RS_METRICS_MAX_LABELS);
            return -1;
        }
        if (!valid_name(label_names[i], false) || strlen(label_names[i]) >= 32) {
            rs_err_set(err, "metrics: %s: '%s': not a valid label name", name, label_names[i]);
            return -1;
        }
        snprintf(f->label_names[i], 32, "%s", label_names[i]);
        f->label_count = i + 1;
    }
    if (kind == RS_METRIC_HISTOGRAM) {
        if (!hist || hist->sub_bits > 4 || hist->max_value < 1 || hist->max_value > (1ull << 62) ||
            !(hist->scale > 0)) {
            rs_err_set(err,
                       "metrics: %s: histogram needs sub_bits 0..4, max_value 1..2^62, "
                       "scale > 0",
                       name);
            return -1;
        }
        f->sub_bits = hist->sub_bits;
        f->nb = bucket_count(hist->sub_bits, hist->max_value);
        f->scale = hist->scale;
    }
    *out = m->family_count++;
    return 0;
}

/* Appends with snprintf semantics: len grows past cap when cut. */
typedef struct sbuf {
    char *p;
    size_t cap, len;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
}

static void sb_label_value(sbuf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\')
            sb_printf(b, "\\\\");
        else if (*v == '"')
            sb_printf(b, "\\\"");
        else if (*v == '\n')
            sb_printf(b, "\\n");
        else
            sb_printf(b, "%c", *v);
    }
}

int rs_metrics_add_series(rs_metrics *m, rs_metric_family fam, const char *const *label_values,
                          rs_metric_id *out, rs_err *err) {
    if (m->frozen || fam >= m->family_count) {
        rs_err_set(err, "metrics: series: %s", m->frozen ? "registry is frozen" : "no such family");
        return -1;
    }
    family *f = &m->families[fam];
    if (m->series_count == m->max_series) {
        rs_err_set(err, "metrics: %s: more than %u series", f->name, m->max_series);
        return -1;
    }
    uint32_t slots = f->kind == RS_METRIC_HISTOGRAM ? f->nb + 2 : 1;
    if (m->slot_count + slots > m->max_slots) {
        rs_err_set(err, "metrics: %s: more than %u slots", f->name, m->max_slots);
        return -1;
    }
    series *s = &m->series[m->series_count];
    sbuf b = {s->labels, sizeof(s->labels), 0};
    for (uint32_t i = 0; i < f->label_count; i++) {
        if (!label_values || !label_values[i]) {
            rs_err_set(err, "metrics: %s: label '%s' has no value", f->name, f->label_names[i]);
            return -1;
        }
        sb_printf(&b, "%s%s=\"", i ? "," : "", f->label_names[i]);
        sb_label_value(&b, label_values[i]);
        sb_printf(&b, "\"");
    }
    if (b.len >= b.cap) {
        rs_err_set(err, "metrics: %s: labels longer than %d bytes", f->name, LABELS_BYTES - 1);
        return -1;
    }
    s->family = fam;
    s->slot = m->slot_count;
    m->sub_bits[s->slot] = (uint8_t)f->sub_bits;
    m->buckets[s->slot] = f->nb;
    m->slot_count += slots;
    f->series_count++;
    *out = s->slot;
    m->series_count++;
    return 0;
}

int rs_metrics_freeze(rs_metrics *m, rs_err *err) {
    if (m->frozen) return 0;
    /* Pad each shard to whole cache lines so cores never share one. */
    m->stride = ((size_t)m->slot_count + 7) & ~(size_t)7;
    if (m->stride == 0) m->stride = 8;
    m->slab = aligned_alloc(64, m->stride * m->shard_count * sizeof(uint64_t));
    if (!m->slab) {
        rs_err_set(err, "metrics: out of memory for %u shards", m->shard_count);
        return -1;
    }
    memset(m->slab, 0, m->stride * m->shard_count * sizeof(uint64_t));
    for (uint32_t i = 0; i < m->shard_count; i++) {
        m->shards[i].slots = m->slab + m->stride * i;
        m->shards[i].sub_bits = m->sub_bits;
        m->shards[i].buckets = m->buckets;
    }
    m->frozen = true;
    return 0;
}

rs_metrics_shard *rs_metrics_shard_get(rs_metrics *m, uint32_t index) {
    RS_ASSERT(m->frozen && index < m->shard_count);
    return &m->shards[index];
}

static uint64_t slot_sum(const rs_metrics *m, uint32_t slot) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m->shard_count; i++)
        sum += __atomic_load_n(&m->slab[m->stride * i + slot], __ATOMIC_RELAXED);
    return sum;
}

uint64_t rs_metrics_counter_value(const rs_metrics *m, rs_metric_id id) {
    RS_ASSERT(m->frozen);
    return slot_sum(m, id);
}

int64_t rs_metrics_gauge_value(const rs_metrics *m, rs_metric_id id) {
    RS_ASSERT(m->frozen);
    return (int64_t)slot_sum(m, id); /* two's complement wraps back to signed */
}

void rs_metrics_histogram_totals(const rs_metrics *m, rs_metric_id id, uint64_t *count,
                                 uint64_t *sum) {
    RS_ASSERT(m->frozen);
    uint32_t nb = m->buckets[id];
    *sum = slot_sum(m, id + nb);
    *count = slot_sum(m, id + nb + 1);
}

uint64_t rs_metrics_bucket_bound(uint32_t sub_bits, uint32_t nb, uint32_t i) {
    if (i >= nb - 1) return UINT64_MAX;
    uint64_t sub = 1ull << sub_bits;
    uint64_t r = i / sub;
    if (r == 0) return i;
    uint64_t shift = r - 1;
    return ((sub + i % sub) << shift) + (1ull << shift) - 1;
}

static void render_number(sbuf *b, uint64_t v, double scale) {
    if (scale == 1.0)
        sb_printf(b, "%llu", (unsigned long long)v);
    else
        sb_printf(b, "%.9g", (double)v * scale);
}

static const char *kind_name(rs_metric_kind k) {
    return k == RS_METRIC_COUNTER ? "counter" : k == RS_METRIC_GAUGE ? "gauge" : "histogram";
}

static void render_histogram(const rs_metrics *m, const family *f, const series *s, sbuf *b) {
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cum = 0;
    for (uint32_t i = 0; i < f->nb; i++) {
        cum += slot_sum(m, s->slot + i);
        sb_printf(b, "%s_bucket{%s%sle=\"", f->name, s->labels, sep);
        if (i == f->nb - 1)
            sb_printf(b, "+Inf");
        else
            render_number(b, rs_metrics_bucket_bound(f->sub_bits, f->nb, i), f->scale);
        sb_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
    sb_printf(b, "%s_sum%s%s%s ", f->name, open, s->labels, close);
    render_number(b, slot_sum(m, s->slot + f->nb), f->scale);
    sb_printf(b, "\n%s_count%s%s%s %llu\n", f->name, open, s->labels, close,
              (unsigned long long)slot_sum(m, s->slot + f->nb + 1));
}

size_t rs_metrics_render(const rs_metrics *m, char *out, size_t out_bytes) {
    RS_ASSERT(m->frozen);
    sbuf b = {out, out_bytes, 0};
    if (out_bytes) out[0] = 0;
    for (uint32_t fi = 0; fi < m->family_count; fi++) {
        const family *f = &m->families[fi];
        sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                  kind_name(f->kind));
        for (uint32_t si = 0; si < m->series_count; si++) {
            const series *s = &m->series[si];
            if (s->family != fi) continue;
            if (f->kind == RS_METRIC_HISTOGRAM) {
                render_histogram(m, f, s, &b);
                continue;
            }
            const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
            sb_printf(&b, "%s%s%s%s ", f->name, open, s->labels, close);
            if (f->kind == RS_METRIC_GAUGE)
                sb_printf(&b, "%lld\n", (long long)(int64_t)slot_sum(m, s->slot));
            else
                sb_printf(&b, "%llu\n", (unsigned long long)slot_sum(m, s->slot));
        }
    }
    return b.len;
}

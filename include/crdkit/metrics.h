/* crdkit/metrics.h: a Prometheus metrics registry (text exposition 0.0.4).
 *
 * A registry holds metric families (counter, gauge, histogram) with fixed
 * label names; a family hands out series, one per tuple of label values.
 * Series pointers are stable for the registry's life, so hot paths look a
 * series up once and then update it with atomics (no lock, no allocation).
 * Collectors are callbacks run at scrape time for values that are cheaper
 * to read than to maintain (queue depths, a client's request counters).
 *
 * Thread-safety: every function is thread-safe.
 * Ownership: the registry owns its families and series; they are freed by
 * ck_metrics_free. Strings passed in are copied.
 */
#ifndef CRDKIT_METRICS_H
#define CRDKIT_METRICS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_metrics ck_metrics_t;
typedef struct ck_metric ck_metric_t; /* a family */
typedef struct ck_series ck_series_t; /* one labelled series of a family */

typedef enum ck_metric_type {
  CK_METRIC_COUNTER,
  CK_METRIC_GAUGE,
  CK_METRIC_HISTOGRAM,
} ck_metric_type_t;

/* A new, empty registry, or NULL when out of memory. */
ck_metrics_t *ck_metrics_new(void);
/* Free the registry, its families and series. NULL is a no-op. */
void ck_metrics_free(ck_metrics_t *m);

/* Find or create a family. `labels` is a comma-separated list of label
 * names ("controller,result"), or NULL/"" for none. `buckets` (histograms
 * only, ascending upper bounds, +Inf implied) may be NULL for the default
 * bounds {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}.
 * Asking again for an existing name returns the same family when type and
 * labels match, NULL otherwise. NULL when out of memory or `name` is not a
 * valid metric name. */
ck_metric_t *ck_metrics_family(ck_metrics_t *m, ck_metric_type_t type, const char *name,
                               const char *help, const char *labels, const double *buckets,
                               size_t nbuckets);

/* The series for these label values (as many as the family has labels,
 * in order). Created at zero on first use. NULL when out of memory or
 * `f` is NULL (the update functions accept NULL and do nothing, so code
 * without a registry needs no checks). */
ck_series_t *ck_metric_series(ck_metric_t *f, const char *const *values);
/* Shorthands for 0, 1, 2 and 3 labels. */
ck_series_t *ck_metric_series0(ck_metric_t *f);
ck_series_t *ck_metric_series1(ck_metric_t *f, const char *v1);
ck_series_t *ck_metric_series2(ck_metric_t *f, const char *v1, const char *v2);
ck_series_t *ck_metric_series3(ck_metric_t *f, const char *v1, const char *v2, const char *v3);

/* Updates: lock-free, no allocation. A call that does not fit the type is
 * ignored (observe on a counter, add of a negative or NaN to a counter). */
void ck_series_add(ck_series_t *s, double v);   /* counter or gauge */
void ck_series_inc(ck_series_t *s);             /* add 1 */
void ck_series_set(ck_series_t *s, double v);   /* gauge (or a counter mirroring a count) */
void ck_series_observe(ck_series_t *s, double v); /* histogram */
double ck_series_value(const ck_series_t *s);   /* counter/gauge value; histogram count */

/* A collector appends exposition text for its own families at scrape time
 * through ck_metrics_emit*. It runs with no registry lock held. */
typedef struct ck_metrics_writer ck_metrics_writer_t;
typedef void (*ck_metrics_collect_fn)(void *ctx, ck_metrics_writer_t *w);
/* Register a collector; returns an id for ck_metrics_remove_collector, or
 * a negative CK_E* code. */
int ck_metrics_add_collector(ck_metrics_t *m, ck_metrics_collect_fn fn, void *ctx);
/* Remove a collector; returns after any running call of it finished, so
 * its ctx may be freed then. Must not be called from inside a collector
 * (it would wait for itself). Unknown ids are ignored. */
void ck_metrics_remove_collector(ck_metrics_t *m, int id);
/* Inside a collector: one sample. HELP/TYPE lines are written once per
 * name per scrape, and the samples of one name are grouped together in
 * the output whatever order they were emitted in (also with a family of
 * the same name and type). `labels` is "k1,k2" and `values` has as many
 * strings (escaped on output); both may be NULL. For CK_METRIC_HISTOGRAM
 * `name` is the sample's full name (x_bucket with an "le" label, x_sum,
 * x_count) and the TYPE line names x. Invalid names, and a name already
 * used with another type, drop the sample. */
void ck_metrics_emit(ck_metrics_writer_t *w, ck_metric_type_t type, const char *name,
                     const char *help, const char *labels, const char *const *values,
                     double value);

/* The whole registry (families and collectors' samples) as Prometheus
 * text, sorted by metric name, series sorted by label values. Families
 * with labels but no series yet are left out. Returns a malloc'd NUL-terminated string (caller frees) or NULL when out
 * of memory. */
char *ck_metrics_render(ck_metrics_t *m);

#ifdef __cplusplus
}
#endif
#endif

/* The metrics registry and the Prometheus text exposition (format 0.0.4).
 *
 * Families live in an array sorted by name (bsearch on lookup, already in
 * order at scrape time). Each family has its own lock and a small chained
 * hash table of series; families and series are only freed by
 * ck_metrics_free, which is what lets callers keep series pointers and
 * update them without any lock. Values are doubles stored as the bit
 * patterns of atomic uint64s.
 *
 * A scrape gathers text in one block per metric name (families first, then
 * what collectors emit), then writes the blocks sorted by name: collectors
 * may emit names in any order and the output still groups each name's
 * samples under one HELP/TYPE pair, as the format requires. */
#include "crdkit/metrics.h"

#include "crdkit/error.h"
#include "crdkit/log.h"
#include "util/buf.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10};

struct ck_series {
  ck_metric_t *f;
  ck_series_t *next; /* hash chain */
  uint64_t hash;
  char **values;
  _Atomic uint64_t value; /* double bits: counter/gauge value, histogram sum */
  _Atomic uint64_t *buckets; /* histogram: per-bucket (not cumulative) counts, nb+1 */
};

struct ck_metric {
  ck_metrics_t *m;
  ck_metric_type_t type;
  char *name;
  char *help;
  char *labels; /* normalised "a,b" */
  char **label_names;
  size_t nlabels;
  double *bounds;
  size_t nbounds;
  pthread_mutex_t lock; /* guards the series table */
  ck_series_t **table;
  size_t tsize; /* power of two */
  size_t nseries;
};

typedef struct collector {
  int id;
  ck_metrics_collect_fn fn;
  void *ctx;
  int running;
} collector_t;

struct ck_metrics {
  pthread_mutex_t lock; /* families array and collectors */
  pthread_cond_t idle;  /* a collector call finished */
  ck_metric_t **fams;
  size_t nfams, capfams;
  collector_t **colls;
  size_t ncolls, capcolls;
  int next_id;
};

/* ---- doubles in atomics ----------------------------------------------- */

static uint64_t d2u(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

static double u2d(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double v) {
  uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(a, &old, d2u(u2d(old) + v), memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

/* ---- names ------------------------------------------------------------ */

static bool valid_metric_name(const char *s) {
  if (!s || !*s)
    return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(p != s && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

static bool valid_label_name(const char *s, size_t n) {
  if (n == 0 || (n >= 2 && s[0] == '_' && s[1] == '_')) /* "__" is reserved by Prometheus */
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

static void strv_free(char **v, size_t n) {
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* Split "a, b" into names. Returns 0, CK_EINVAL (bad or duplicate name) or
 * CK_ENOMEM. An empty list gives n = 0 and v = NULL. */
static int split_labels(const char *labels, bool histogram, char ***out, size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (!labels || !*labels)
    return 0;
  size_t cap = 1;
  for (const char *p = labels; *p; p++)
    cap += *p == ',';
  char **v = calloc(cap, sizeof *v);
  if (!v)
    return CK_ENOMEM;
  size_t n = 0;
  const char *p = labels;
  for (;;) {
    const char *end = p + strcspn(p, ",");
    const char *a = p, *b = end;
    while (a < b && (*a == ' ' || *a == '\t'))
      a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
      b--;
    size_t len = (size_t)(b - a);
    if (!valid_label_name(a, len) || (histogram && len == 2 && memcmp(a, "le", 2) == 0)) {
      strv_free(v, n);
      return CK_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
      if (strlen(v[i]) == len && memcmp(v[i], a, len) == 0) {
        strv_free(v, n);
        return CK_EINVAL;
      }
    if (!(v[n] = strndup(a, len))) {
      strv_free(v, n);
      return CK_ENOMEM;
    }
    n++;
    if (!*end)
      break;
    p = end + 1;
  }
  *out = v;
  *nout = n;
  return 0;
}

static char *join_labels(char **v, size_t n) {
  ck_buf_t b = {0};
  ck_buf_puts(&b, "");
  for (size_t i = 0; i < n; i++) {
    if (i)
      ck_buf_putc(&b, ',');
    ck_buf_puts(&b, v[i]);
  }
  if (b.oom) {
    ck_buf_free(&b);
    return NULL;
  }
  return ck_buf_steal(&b);
}

/* ---- registry --------------------------------------------------------- */

ck_metrics_t *ck_metrics_new(void) {
  ck_metrics_t *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  pthread_mutex_init(&m->lock, NULL);
  pthread_cond_init(&m->idle, NULL);
  m->next_id = 1;
  return m;
}

static void series_free(ck_series_t *s, size_t nlabels) {
  strv_free(s->values, nlabels);
  free((void *)s->buckets);
  free(s);
}

static void family_free(ck_metric_t *f) {
  if (!f)
    return;
  for (size_t i = 0; f->table && i < f->tsize; i++) {
    ck_series_t *s = f->table[i];
    while (s) {
      ck_series_t *next = s->next;
      series_free(s, f->nlabels);
      s = next;
    }
  }
  free(f->table);
  free(f->name);
  free(f->help);
  free(f->labels);
  strv_free(f->label_names, f->nlabels);
  free(f->bounds);
  pthread_mutex_destroy(&f->lock);
  free(f);
}

void ck_metrics_free(ck_metrics_t *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->nfams; i++)
    family_free(m->fams[i]);
  free(m->fams);
  for (size_t i = 0; i < m->ncolls; i++)
    free(m->colls[i]);
  free(m->colls);
  pthread_cond_destroy(&m->idle);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

/* Index of `name` in the sorted family array, or where it would go. */
static size_t family_pos(const ck_metrics_t *m, const char *name, bool *found) {
  size_t lo = 0, hi = m->nfams;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(m->fams[mid]->name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

static ck_metric_t *family_new(ck_metrics_t *m, ck_metric_type_t type, const char *name,
                               const char *help, char **label_names, size_t nlabels,
                               const double *buckets, size_t nbuckets) {
  ck_metric_t *f = calloc(1, sizeof *f);
  if (!f)
    return NULL;
  pthread_mutex_init(&f->lock, NULL);
  f->m = m;
  f->type = type;
  f->label_names = label_names;
  f->nlabels = nlabels;
  f->name = strdup(name);
  f->help = strdup(help ? help : "");
  f->labels = join_labels(label_names, nlabels);
  f->tsize = 8;
  f->table = calloc(f->tsize, sizeof(ck_series_t *));
  bool ok = f->name && f->help && f->labels && f->table;
  if (ok && type == CK_METRIC_HISTOGRAM) {
    if (!buckets || nbuckets == 0) {
      buckets = default_buckets;
      nbuckets = sizeof default_buckets / sizeof default_buckets[0];
    }
    f->bounds = malloc(nbuckets * sizeof *f->bounds);
    ok = f->bounds != NULL;
    for (size_t i = 0; ok && i < nbuckets; i++) {
      /* +Inf is implied: a trailing +Inf bound from the caller is dropped. */
      if (isinf(buckets[i]) && buckets[i] > 0 && i == nbuckets - 1)
        break;
      f->bounds[f->nbounds++] = buckets[i];
    }
  }
  if (!ok) {
    f->label_names = NULL; /* still the caller's on failure */
    f->nlabels = 0;
    family_free(f);
    return NULL;
  }
  return f;
}

static bool buckets_valid(const double *b, size_t n) {
  for (size_t i = 0; b && i < n; i++) {
    if (isnan(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
      return false;
    if (isinf(b[i]) && (b[i] < 0 || i != n - 1))
      return false;
  }
  return true;
}

ck_metric_t *ck_metrics_family(ck_metrics_t *m, ck_metric_type_t type, const char *name,
                               const char *help, const char *labels, const double *buckets,
                               size_t nbuckets) {
  if (!m || !valid_metric_name(name) ||
      (type != CK_METRIC_COUNTER && type != CK_METRIC_GAUGE && type != CK_METRIC_HISTOGRAM)) {
    CK_WARN("metrics", NULL, "invalid metric family \"%s\"", name ? name : "(null)");
    return NULL;
  }
  if (type == CK_METRIC_HISTOGRAM && !buckets_valid(buckets, nbuckets)) {
    CK_WARN("metrics", NULL, "histogram %s: bucket bounds must be ascending", name);
    return NULL;
  }
  char **names;
  size_t n;
  if (split_labels(labels, type == CK_METRIC_HISTOGRAM, &names, &n) != 0) {
    CK_WARN("metrics", NULL, "metric %s: invalid label names \"%s\"", name, labels);
    return NULL;
  }
  pthread_mutex_lock(&m->lock);
  bool found;
  size_t pos = family_pos(m, name, &found);
  ck_metric_t *f = NULL;
  if (found) {
    f = m->fams[pos];
    bool same = f->type == type && f->nlabels == n;
    for (size_t i = 0; same && i < n; i++)
      same = strcmp(f->label_names[i], names[i]) == 0;
    pthread_mutex_unlock(&m->lock);
    strv_free(names, n);
    if (!same) {
      CK_WARN("metrics", NULL, "metric %s registered again with another type or labels", name);
      return NULL;
    }
    return f;
  }
  if (m->nfams == m->capfams) {
    size_t cap = m->capfams ? m->capfams * 2 : 16;
    ck_metric_t **p = realloc(m->fams, cap * sizeof(ck_metric_t *));
    if (!p)
      goto oom;
    m->fams = p;
    m->capfams = cap;
  }
  f = family_new(m, type, name, help, names, n, buckets, nbuckets);
  if (!f)
    goto oom;
  memmove(m->fams + pos + 1, m->fams + pos, (m->nfams - pos) * sizeof(ck_metric_t *));
  m->fams[pos] = f;
  m->nfams++;
  pthread_mutex_unlock(&m->lock);
  /* A family without labels has exactly one series: make it exist so a
   * scrape shows its zero before the first update. */
  if (n == 0)
    ck_metric_series0(f);
  return f;
oom:
  pthread_mutex_unlock(&m->lock);
  strv_free(names, n);
  return NULL;
}

/* ---- series ----------------------------------------------------------- */

static uint64_t hash_values(const char *const *values, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    for (const unsigned char *p = (const unsigned char *)(values[i] ? values[i] : ""); *p; p++)
      h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* separator: ("ab","") != ("a","b") */
  }
  return h;
}

static bool same_values(const ck_series_t *s, const char *const *values, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
      return false;
  return true;
}

static void table_grow(ck_metric_t *f) {
  size_t nsize = f->tsize * 2;
  ck_series_t **t = calloc(nsize, sizeof(ck_series_t *));
  if (!t)
    return; /* longer chains, still correct */
  for (size_t i = 0; i < f->tsize; i++) {
    ck_series_t *s = f->table[i];
    while (s) {
      ck_series_t *next = s->next;
      size_t b = (size_t)(s->hash & (nsize - 1));
      s->next = t[b];
      t[b] = s;
      s = next;
    }
  }
  free(f->table);
  f->table = t;
  f->tsize = nsize;
}

ck_series_t *ck_metric_series(ck_metric_t *f, const char *const *values) {
  if (!f)
    return NULL;
  size_t n = f->nlabels; /* fixed at creation */
  if (n && !values)
    return NULL;
  uint64_t h = hash_values(values, n);
  pthread_mutex_lock(&f->lock);
  size_t b = (size_t)(h & (f->tsize - 1));
  for (ck_series_t *s = f->table[b]; s; s = s->next)
    if (s->hash == h && same_values(s, values, n)) {
      pthread_mutex_unlock(&f->lock);
      return s;
    }
  ck_series_t *s = calloc(1, sizeof *s);
  bool ok = s != NULL;
  if (ok && n) {
    ok = (s->values = calloc(n, sizeof(char *))) != NULL;
    for (size_t i = 0; ok && i < n; i++)
      ok = (s->values[i] = strdup(values[i] ? values[i] : "")) != NULL;
  }
  if (ok && f->type == CK_METRIC_HISTOGRAM)
    ok = (s->buckets = calloc(f->nbounds + 1, sizeof *s->buckets)) != NULL;
  if (!ok) {
    pthread_mutex_unlock(&f->lock);
    if (s)
      series_free(s, n);
    return NULL;
  }
  s->f = f;
  s->hash = h;
  atomic_init(&s->value, d2u(0.0));
  s->next = f->table[b];
  f->table[b] = s;
  if (++f->nseries > f->tsize * 2)
    table_grow(f);
  pthread_mutex_unlock(&f->lock);
  return s;
}

ck_series_t *ck_metric_series0(ck_metric_t *f) { return ck_metric_series(f, NULL); }

ck_series_t *ck_metric_series1(ck_metric_t *f, const char *v1) {
  const char *v[] = {v1};
  return f && f->nlabels == 1 ? ck_metric_series(f, v) : NULL;
}

ck_series_t *ck_metric_series2(ck_metric_t *f, const char *v1, const char *v2) {
  const char *v[] = {v1, v2};
  return f && f->nlabels == 2 ? ck_metric_series(f, v) : NULL;
}

ck_series_t *ck_metric_series3(ck_metric_t *f, const char *v1, const char *v2, const char *v3) {
  const char *v[] = {v1, v2, v3};
  return f && f->nlabels == 3 ? ck_metric_series(f, v) : NULL;
}

/* ---- updates (lock-free) ---------------------------------------------- */

void ck_series_add(ck_series_t *s, double v) {
  if (!s || s->f->type == CK_METRIC_HISTOGRAM)
    return;
  if (s->f->type == CK_METRIC_COUNTER && !(v >= 0))
    return; /* a counter never goes down (and NaN would stick forever) */
  atomic_add_double(&s->value, v);
}

void ck_series_inc(ck_series_t *s) { ck_series_add(s, 1.0); }

void ck_series_set(ck_series_t *s, double v) {
  if (!s || s->f->type == CK_METRIC_HISTOGRAM)
    return;
  atomic_store_explicit(&s->value, d2u(v), memory_order_relaxed);
}

void ck_series_observe(ck_series_t *s, double v) {
  if (!s || s->f->type != CK_METRIC_HISTOGRAM)
    return;
  const ck_metric_t *f = s->f;
  /* First bound >= v (buckets are "le", inclusive); NaN lands in +Inf. */
  size_t lo = 0, hi = f->nbounds;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (f->bounds[mid] < v || isnan(v))
      lo = mid + 1;
    else
      hi = mid;
  }
  atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
  atomic_add_double(&s->value, v);
}

static uint64_t histogram_count(const ck_series_t *s) {
  uint64_t n = 0;
  for (size_t i = 0; i <= s->f->nbounds; i++)
    n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
  return n;
}

double ck_series_value(const ck_series_t *s) {
  if (!s)
    return 0;
  if (s->f->type == CK_METRIC_HISTOGRAM)
    return (double)histogram_count(s);
  return u2d(atomic_load_explicit(&s->value, memory_order_relaxed));
}

/* ---- collectors ------------------------------------------------------- */

int ck_metrics_add_collector(ck_metrics_t *m, ck_metrics_collect_fn fn, void *ctx) {
  if (!m || !fn)
    return CK_EINVAL;
  collector_t *c = calloc(1, sizeof *c);
  if (!c)
    return CK_ENOMEM;
  c->fn = fn;
  c->ctx = ctx;
  pthread_mutex_lock(&m->lock);
  if (m->ncolls == m->capcolls) {
    size_t cap = m->capcolls ? m->capcolls * 2 : 8;
    collector_t **p = realloc(m->colls, cap * sizeof(collector_t *));
    if (!p) {
      pthread_mutex_unlock(&m->lock);
      free(c);
      return CK_ENOMEM;
    }
    m->colls = p;
    m->capcolls = cap;
  }
  if (m->next_id == INT32_MAX)
    m->next_id = 1;
  c->id = m->next_id++;
  m->colls[m->ncolls++] = c;
  int id = c->id;
  pthread_mutex_unlock(&m->lock);
  return id;
}

void ck_metrics_remove_collector(ck_metrics_t *m, int id) {
  if (!m)
    return;
  pthread_mutex_lock(&m->lock);
  for (size_t i = 0; i < m->ncolls; i++) {
    collector_t *c = m->colls[i];
    if (c->id != id)
      continue;
    /* Out of the list first so no scrape starts it again, then wait for
     * the calls in progress: after this returns, ctx may be freed. */
    memmove(m->colls + i, m->colls + i + 1, (m->ncolls - i - 1) * sizeof(collector_t *));
    m->ncolls--;
    while (c->running > 0)
      pthread_cond_wait(&m->idle, &m->lock);
    free(c);
    break;
  }
  pthread_mutex_unlock(&m->lock);
}

/* ---- exposition ------------------------------------------------------- */

typedef struct block {
  char *name; /* the family name (for histograms, without suffix) */
  ck_metric_type_t type;
  ck_buf_t text;
} block_t;

struct ck_metrics_writer {
  block_t *blocks;
  size_t n, cap;
  bool oom;
};

static const char *type_name(ck_metric_type_t t) {
  switch (t) {
  case CK_METRIC_COUNTER: return "counter";
  case CK_METRIC_GAUGE: return "gauge";
  case CK_METRIC_HISTOGRAM: return "histogram";
  }
  return "untyped";
}

/* Prometheus parses Go's ParseFloat syntax: integers print without an
 * exponent, other values with the shortest digits that round-trip. */
static void put_double(ck_buf_t *b, double v) {
  if (isnan(v)) {
    ck_buf_puts(b, "NaN");
    return;
  }
  if (isinf(v)) {
    ck_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (v == floor(v) && fabs(v) < 1e15) {
    ck_buf_printf(b, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    return;
  }
  char tmp[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  ck_buf_puts(b, tmp);
}

static void put_escaped(ck_buf_t *b, const char *s, bool quote) {
  for (; *s; s++) {
    if (*s == '\\')
      ck_buf_puts(b, "\\\\");
    else if (*s == '\n')
      ck_buf_puts(b, "\\n");
    else if (quote && *s == '"')
      ck_buf_puts(b, "\\\"");
    else
      ck_buf_putc(b, *s);
  }
}

/* The block for `name`, created with its HELP and TYPE lines when new.
 * NULL when out of memory or the name already has another type. */
static block_t *writer_block(ck_metrics_writer_t *w, const char *name, size_t namelen,
                             ck_metric_type_t type, const char *help) {
  for (size_t i = w->n; i-- > 0;) {
    block_t *bl = &w->blocks[i];
    if (strlen(bl->name) == namelen && memcmp(bl->name, name, namelen) == 0)
      return bl->type == type ? bl : NULL;
  }
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 32;
    block_t *p = realloc(w->blocks, cap * sizeof *p);
    if (!p) {
      w->oom = true;
      return NULL;
    }
    w->blocks = p;
    w->cap = cap;
  }
  block_t *bl = &w->blocks[w->n];
  *bl = (block_t){.name = strndup(name, namelen), .type = type};
  if (!bl->name) {
    w->oom = true;
    return NULL;
  }
  w->n++;
  if (help && *help) {
    ck_buf_printf(&bl->text, "# HELP %s ", bl->name);
    put_escaped(&bl->text, help, false);
    ck_buf_putc(&bl->text, '\n');
  }
  ck_buf_printf(&bl->text, "# TYPE %s %s\n", bl->name, type_name(type));
  return bl;
}

/* One sample line. `extra_name`/`extra_value` is an additional last label
 * (the histogram's "le"), or NULL. */
static void put_sample(ck_buf_t *b, const char *name, const char *suffix, char *const *lnames,
                       const char *const *lvalues, size_t n, const char *extra_name,
                       const char *extra_value, double v) {
  ck_buf_puts(b, name);
  if (suffix)
    ck_buf_puts(b, suffix);
  if (n || extra_name) {
    ck_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
      if (i)
        ck_buf_putc(b, ',');
      ck_buf_printf(b, "%s=\"", lnames[i]);
      put_escaped(b, lvalues[i] ? lvalues[i] : "", true);
      ck_buf_putc(b, '"');
    }
    if (extra_name) {
      ck_buf_printf(b, "%s%s=\"%s\"", n ? "," : "", extra_name, extra_value);
    }
    ck_buf_putc(b, '}');
  }
  ck_buf_putc(b, ' ');
  put_double(b, v);
  ck_buf_putc(b, '\n');
}

static int cmp_series(const void *a, const void *b, void *arg) {
  const ck_series_t *x = *(ck_series_t *const *)a, *y = *(ck_series_t *const *)b;
  size_t n = *(const size_t *)arg;
  for (size_t i = 0; i < n; i++) {
    int c = strcmp(x->values[i], y->values[i]);
    if (c)
      return c;
  }
  return 0;
}

static void render_family(ck_metrics_writer_t *w, ck_metric_t *f) {
  pthread_mutex_lock(&f->lock);
  size_t n = f->nseries;
  if (n == 0) {
    pthread_mutex_unlock(&f->lock);
    return; /* like client_golang: a vector without series is not shown */
  }
  ck_series_t **v = malloc(n * sizeof(ck_series_t *));
  if (!v) {
    pthread_mutex_unlock(&f->lock);
    w->oom = true;
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < f->tsize; i++)
    for (ck_series_t *s = f->table[i]; s; s = s->next)
      v[k++] = s;
  pthread_mutex_unlock(&f->lock);
  size_t nl = f->nlabels;
  qsort_r(v, n, sizeof(ck_series_t *), cmp_series, &nl);
  block_t *bl = writer_block(w, f->name, strlen(f->name), f->type, f->help);
  if (!bl) {
    free(v);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    ck_series_t *s = v[i];
    const char *const *vals = (const char *const *)s->values;
    if (f->type != CK_METRIC_HISTOGRAM) {
      put_sample(&bl->text, f->name, NULL, f->label_names, vals, f->nlabels, NULL, NULL,
                 ck_series_value(s));
      continue;
    }
    /* Read the buckets once and derive the count from them, so +Inf and
     * _count agree even while observations race with the scrape. */
    uint64_t cum = 0;
    for (size_t j = 0; j <= f->nbounds; j++) {
      cum += atomic_load_explicit(&s->buckets[j], memory_order_relaxed);
      ck_buf_t le = {0};
      if (j < f->nbounds)
        put_double(&le, f->bounds[j]);
      else
        ck_buf_puts(&le, "+Inf");
      put_sample(&bl->text, f->name, "_bucket", f->label_names, vals, f->nlabels, "le",
                 le.data ? le.data : "", (double)cum);
      w->oom |= le.oom;
      ck_buf_free(&le);
    }
    put_sample(&bl->text, f->name, "_sum", f->label_names, vals, f->nlabels, NULL, NULL,
               u2d(atomic_load_explicit(&s->value, memory_order_relaxed)));
    put_sample(&bl->text, f->name, "_count", f->label_names, vals, f->nlabels, NULL, NULL,
               (double)cum);
  }
  free(v);
}

void ck_metrics_emit(ck_metrics_writer_t *w, ck_metric_type_t type, const char *name,
                     const char *help, const char *labels, const char *const *values,
                     double value) {
  if (!w || !valid_metric_name(name))
    return;
  size_t namelen = strlen(name);
  if (type == CK_METRIC_HISTOGRAM) {
    /* A histogram's samples are name_bucket/_sum/_count under the type of
     * the bare name. */
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    size_t base = 0;
    for (size_t i = 0; i < 3 && !base; i++) {
      size_t sl = strlen(sfx[i]);
      if (namelen > sl && strcmp(name + namelen - sl, sfx[i]) == 0)
        base = namelen - sl;
    }
    if (!base)
      return;
    namelen = base;
  }
  char **lnames = NULL;
  size_t n = 0;
  int rc = split_labels(labels, false, &lnames, &n);
  if (rc != 0) {
    if (rc == CK_ENOMEM)
      w->oom = true;
    else
      CK_DEBUG("metrics", NULL, "collector sample %s dropped (bad label names)", name);
    return;
  }
  if (n && !values) {
    strv_free(lnames, n);
    return;
  }
  block_t *bl = writer_block(w, name, namelen, type, help);
  if (bl)
    put_sample(&bl->text, name, NULL, lnames, values, n, NULL, NULL, value);
  else
    CK_DEBUG("metrics", NULL, "collector sample %s dropped (type conflict)", name);
  strv_free(lnames, n);
}

static int cmp_block(const void *a, const void *b) {
  return strcmp(((const block_t *)a)->name, ((const block_t *)b)->name);
}

static void run_collectors(ck_metrics_t *m, ck_metrics_writer_t *w) {
  pthread_mutex_lock(&m->lock);
  size_t n = m->ncolls;
  int *ids = n ? malloc(n * sizeof *ids) : NULL;
  if (n && !ids) {
    pthread_mutex_unlock(&m->lock);
    w->oom = true;
    return;
  }
  for (size_t i = 0; i < n; i++)
    ids[i] = m->colls[i]->id;
  for (size_t i = 0; i < n; i++) {
    collector_t *c = NULL;
    for (size_t j = 0; j < m->ncolls && !c; j++)
      if (m->colls[j]->id == ids[i])
        c = m->colls[j];
    if (!c)
      continue; /* removed meanwhile */
    c->running++;
    pthread_mutex_unlock(&m->lock);
    c->fn(c->ctx, w);
    pthread_mutex_lock(&m->lock);
    if (--c->running == 0)
      pthread_cond_broadcast(&m->idle);
  }
  pthread_mutex_unlock(&m->lock);
  free(ids);
}

char *ck_metrics_render(ck_metrics_t *m) {
  if (!m)
    return NULL;
  ck_metrics_writer_t w = {0};
  /* Families are never freed before the registry: a copy of the pointer
   * array is all the registry lock is needed for. */
  pthread_mutex_lock(&m->lock);
  size_t nf = m->nfams;
  ck_metric_t **fams = nf ? malloc(nf * sizeof(ck_metric_t *)) : NULL;
  if (fams)
    memcpy(fams, m->fams, nf * sizeof(ck_metric_t *));
  pthread_mutex_unlock(&m->lock);
  if (nf && !fams)
    return NULL;
  for (size_t i = 0; i < nf; i++)
    render_family(&w, fams[i]);
  free(fams);
  run_collectors(m, &w);

  if (w.n)
    qsort(w.blocks, w.n, sizeof *w.blocks, cmp_block);
  ck_buf_t out = {0};
  ck_buf_puts(&out, "");
  for (size_t i = 0; i < w.n; i++) {
    ck_buf_append(&out, w.blocks[i].text.data, w.blocks[i].text.len);
    w.oom |= w.blocks[i].text.oom;
    ck_buf_free(&w.blocks[i].text);
    free(w.blocks[i].name);
  }
  free(w.blocks);
  if (w.oom || out.oom) {
    ck_buf_free(&out);
    return NULL;
  }
  return ck_buf_steal(&out);
}

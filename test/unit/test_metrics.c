/* The metrics registry: families, series, atomics under contention,
 * histograms, collectors, and the text exposition, read back by a small
 * parser of format 0.0.4 that fails the test on anything malformed. */
#include "cktest.h"

#include "crdkit/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a parser of the exposition format -------------------------------- */

#define MAXL 8

typedef struct sample {
  char name[128];
  int nlabels;
  char lk[MAXL][64];
  char lv[MAXL][256];
  double value;
} sample_t;

typedef struct parsed {
  sample_t *s;
  int n;
  char types[64][128]; /* "name type" in order of appearance */
  int ntypes;
  char helps[64][256]; /* "name help" (unescaped) */
  int nhelps;
} parsed_t;

static const char *parse_name(const char *p, char *out, size_t n) {
  size_t i = 0;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
         *p == '_' || *p == ':') {
    cr_assert_lt(i, n - 1, "name too long");
    out[i++] = *p++;
  }
  out[i] = '\0';
  cr_assert_gt(i, 0, "expected a name at \"%.20s\"", p);
  return p;
}

static double parse_value(const char *p) {
  char *end;
  double v = strtod(p, &end);
  cr_assert(end != p && *end == '\0', "bad value \"%s\"", p);
  return v;
}

static void parse_line(parsed_t *r, const char *line) {
  if (strncmp(line, "# TYPE ", 7) == 0) {
    char name[128];
    const char *p = parse_name(line + 7, name, sizeof name);
    cr_assert_eq(*p, ' ');
    p++;
    cr_assert(strcmp(p, "counter") == 0 || strcmp(p, "gauge") == 0 ||
                  strcmp(p, "histogram") == 0,
              "bad type line %s", line);
    for (int i = 0; i < r->ntypes; i++) {
      char other[128];
      sscanf(r->types[i], "%127s", other);
      cr_assert_str_neq(other, name, "second TYPE line for %s", name);
    }
    cr_assert_lt(r->ntypes, 64);
    snprintf(r->types[r->ntypes++], sizeof r->types[0], "%s %s", name, p);
    return;
  }
  if (strncmp(line, "# HELP ", 7) == 0) {
    char name[128], help[256];
    const char *p = parse_name(line + 7, name, sizeof name);
    cr_assert_eq(*p, ' ');
    size_t k = 0;
    for (p++; *p; p++) {
      char c = *p;
      if (c == '\\') {
        p++;
        cr_assert(*p == '\\' || *p == 'n', "bad escape in HELP");
        c = *p == 'n' ? '\n' : '\\';
      }
      cr_assert_lt(k, sizeof help - 1);
      help[k++] = c;
    }
    help[k] = '\0';
    cr_assert_lt(r->nhelps, 64);
    snprintf(r->helps[r->nhelps++], sizeof r->helps[0], "%s %s", name, help);
    return;
  }
  cr_assert_neq(line[0], '#', "unexpected comment %s", line);
  sample_t s = {0};
  const char *p = parse_name(line, s.name, sizeof s.name);
  if (*p == '{') {
    p++;
    while (*p != '}') {
      cr_assert_lt(s.nlabels, MAXL);
      p = parse_name(p, s.lk[s.nlabels], sizeof s.lk[0]);
      cr_assert(p[0] == '=' && p[1] == '"', "bad label in %s", line);
      p += 2;
      size_t k = 0;
      for (; *p != '"'; p++) {
        cr_assert_neq(*p, '\0', "unterminated label value in %s", line);
        cr_assert_neq(*p, '\n');
        char c = *p;
        if (c == '\\') {
          p++;
          cr_assert(*p == '\\' || *p == 'n' || *p == '"', "bad escape in %s", line);
          c = *p == 'n' ? '\n' : *p;
        }
        cr_assert_lt(k, sizeof s.lv[0] - 1);
        s.lv[s.nlabels][k++] = c;
      }
      s.lv[s.nlabels][k] = '\0';
      s.nlabels++;
      p++;
      if (*p == ',')
        p++;
      else
        cr_assert_eq(*p, '}', "bad label list in %s", line);
    }
    p++;
  }
  cr_assert_eq(*p, ' ', "no value separator in %s", line);
  s.value = parse_value(p + 1);
  /* Every sample belongs to a family whose TYPE came before it. */
  bool typed = false;
  for (int i = 0; i < r->ntypes && !typed; i++) {
    char tn[128], tt[32];
    sscanf(r->types[i], "%127s %31s", tn, tt);
    size_t l = strlen(tn);
    if (strcmp(tn, s.name) == 0)
      typed = true;
    else if (strcmp(tt, "histogram") == 0 && strncmp(s.name, tn, l) == 0 &&
             (strcmp(s.name + l, "_bucket") == 0 || strcmp(s.name + l, "_sum") == 0 ||
              strcmp(s.name + l, "_count") == 0))
      typed = true;
  }
  cr_assert(typed, "sample %s without a TYPE line before it", s.name);
  r->s = realloc(r->s, (size_t)(r->n + 1) * sizeof *r->s);
  cr_assert_not_null(r->s);
  r->s[r->n++] = s;
}

static parsed_t *parse(const char *text) {
  cr_assert_not_null(text);
  parsed_t *r = calloc(1, sizeof *r);
  size_t len = strlen(text);
  cr_assert(len == 0 || text[len - 1] == '\n', "output must end with a newline");
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    char line[2048];
    cr_assert_lt((size_t)(nl - p), sizeof line);
    memcpy(line, p, (size_t)(nl - p));
    line[nl - p] = '\0';
    cr_assert_neq(line[0], '\0', "empty line in output");
    parse_line(r, line);
    p = nl + 1;
  }
  return r;
}

static void parsed_free(parsed_t *r) {
  free(r->s);
  free(r);
}

/* The value of the sample `name` with exactly the labels given as
 * key, value pairs (NULL-terminated); NAN when absent. */
static double get(const parsed_t *r, const char *name, ...) {
  const char *k[MAXL], *v[MAXL];
  int n = 0;
  va_list ap;
  va_start(ap, name);
  const char *key;
  while ((key = va_arg(ap, const char *)) != NULL) {
    k[n] = key;
    v[n] = va_arg(ap, const char *);
    n++;
  }
  va_end(ap);
  for (int i = 0; i < r->n; i++) {
    const sample_t *s = &r->s[i];
    if (strcmp(s->name, name) != 0 || s->nlabels != n)
      continue;
    bool match = true;
    for (int j = 0; j < n && match; j++) {
      bool found = false;
      for (int l = 0; l < s->nlabels; l++)
        if (strcmp(s->lk[l], k[j]) == 0 && strcmp(s->lv[l], v[j]) == 0)
          found = true;
      match = found;
    }
    if (match)
      return s->value;
  }
  return NAN;
}

static int count_named(const parsed_t *r, const char *name) {
  int n = 0;
  for (int i = 0; i < r->n; i++)
    n += strcmp(r->s[i].name, name) == 0;
  return n;
}

static parsed_t *render_parse(ck_metrics_t *m) {
  char *text = ck_metrics_render(m);
  cr_assert_not_null(text);
  parsed_t *r = parse(text);
  free(text);
  return r;
}

/* ---- tests ------------------------------------------------------------ */

CK_TEST(metrics, counter_and_gauge) {
  ck_metrics_t *m = ck_metrics_new();
  cr_assert_not_null(m);
  ck_metric_t *c = ck_metrics_family(m, CK_METRIC_COUNTER, "ck_reconcile_total",
                                     "Reconciliations per controller and result.",
                                     "controller,result", NULL, 0);
  cr_assert_not_null(c);
  ck_series_t *ok = ck_metric_series2(c, "cm", "success");
  ck_series_t *bad = ck_metric_series2(c, "cm", "error");
  cr_assert_eq(ck_metric_series2(c, "cm", "success"), ok, "lookup returns the same series");
  for (int i = 0; i < 5; i++)
    ck_series_inc(ok);
  ck_series_add(bad, 2.5);
  ck_series_add(bad, -1); /* ignored: counters never go down */
  cr_assert_eq(ck_series_value(ok), 5.0);
  cr_assert_eq(ck_series_value(bad), 2.5);

  ck_metric_t *g = ck_metrics_family(m, CK_METRIC_GAUGE, "ck_depth", "Depth.", "name", NULL, 0);
  ck_series_t *d = ck_metric_series1(g, "q");
  ck_series_set(d, 10);
  ck_series_add(d, -3);
  ck_metric_t *plain = ck_metrics_family(m, CK_METRIC_GAUGE, "ck_plain", NULL, NULL, NULL, 0);
  cr_assert_not_null(plain);
  /* A label-less family shows its zero before any update. */
  parsed_t *r = render_parse(m);
  cr_assert_eq(get(r, "ck_plain", NULL), 0.0);
  cr_assert_eq(get(r, "ck_reconcile_total", "controller", "cm", "result", "success", NULL), 5.0);
  cr_assert_eq(get(r, "ck_reconcile_total", "controller", "cm", "result", "error", NULL), 2.5);
  cr_assert_eq(get(r, "ck_depth", "name", "q", NULL), 7.0);
  cr_assert_eq(r->n, 4);
  bool found_help = false;
  for (int i = 0; i < r->nhelps; i++)
    found_help |= strcmp(r->helps[i], "ck_depth Depth.") == 0;
  cr_assert(found_help);
  cr_assert_eq(r->nhelps, 2, "no HELP line for an empty help text");
  cr_assert_eq(r->ntypes, 3);
  parsed_free(r);

  /* Wrong arity gives no series, and NULL is accepted everywhere. */
  cr_assert_null(ck_metric_series1(c, "only-one"));
  cr_assert_null(ck_metric_series0(NULL));
  ck_series_inc(NULL);
  ck_series_set(NULL, 1);
  ck_series_observe(NULL, 1);
  cr_assert_eq(ck_series_value(NULL), 0.0);
  ck_metrics_free(m);
  ck_metrics_free(NULL);
}

CK_TEST(metrics, exact_text_and_order) {
  ck_metrics_t *m = ck_metrics_new();
  ck_series_set(ck_metric_series0(ck_metrics_family(m, CK_METRIC_GAUGE, "zeta", "Z.", NULL,
                                                    NULL, 0)),
                1);
  ck_metric_t *a = ck_metrics_family(m, CK_METRIC_COUNTER, "alpha_total", "A\\B\nC", "k", NULL, 0);
  ck_series_inc(ck_metric_series1(a, "y"));
  ck_series_inc(ck_metric_series1(a, "x"));
  double b[] = {0.5, 2};
  ck_metric_t *h = ck_metrics_family(m, CK_METRIC_HISTOGRAM, "mid_seconds", "M.", NULL, b, 2);
  ck_series_observe(ck_metric_series0(h), 1);
  char *text = ck_metrics_render(m);
  const char *want = "# HELP alpha_total A\\\\B\\nC\n"
                     "# TYPE alpha_total counter\n"
                     "alpha_total{k=\"x\"} 1\n"
                     "alpha_total{k=\"y\"} 1\n"
                     "# HELP mid_seconds M.\n"
                     "# TYPE mid_seconds histogram\n"
                     "mid_seconds_bucket{le=\"0.5\"} 0\n"
                     "mid_seconds_bucket{le=\"2\"} 1\n"
                     "mid_seconds_bucket{le=\"+Inf\"} 1\n"
                     "mid_seconds_sum 1\n"
                     "mid_seconds_count 1\n"
                     "# HELP zeta Z.\n"
                     "# TYPE zeta gauge\n"
                     "zeta 1\n";
  cr_assert_str_eq(text, want);
  free(text);
  ck_metrics_free(m);
}

CK_TEST(metrics, histogram_buckets) {
  ck_metrics_t *m = ck_metrics_new();
  double bounds[] = {0.1, 1, 10};
  ck_metric_t *h = ck_metrics_family(m, CK_METRIC_HISTOGRAM, "ck_op_seconds", "Op time.",
                                     "op", bounds, 3);
  cr_assert_not_null(h);
  ck_series_t *s = ck_metric_series1(h, "get");
  double obs[] = {0.05, 0.1, 0.5, 5, 50, 1};
  double sum = 0;
  for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++) {
    ck_series_observe(s, obs[i]);
    sum += obs[i];
  }
  ck_series_add(s, 3); /* ignored for histograms */
  cr_assert_eq(ck_series_value(s), 6.0, "value of a histogram is its count");
  ck_metric_t *dh = ck_metrics_family(m, CK_METRIC_HISTOGRAM, "ck_default_seconds", NULL, NULL,
                                      NULL, 0);
  ck_series_observe(ck_metric_series0(dh), 0.003);
  ck_series_observe(ck_metric_series0(dh), 20);

  parsed_t *r = render_parse(m);
  /* "le" is inclusive: 0.1 falls into le="0.1". Buckets are cumulative. */
  cr_assert_eq(get(r, "ck_op_seconds_bucket", "op", "get", "le", "0.1", NULL), 2.0);
  cr_assert_eq(get(r, "ck_op_seconds_bucket", "op", "get", "le", "1", NULL), 4.0);
  cr_assert_eq(get(r, "ck_op_seconds_bucket", "op", "get", "le", "10", NULL), 5.0);
  cr_assert_eq(get(r, "ck_op_seconds_bucket", "op", "get", "le", "+Inf", NULL), 6.0);
  cr_assert_eq(get(r, "ck_op_seconds_count", "op", "get", NULL), 6.0);
  cr_assert_float_eq(get(r, "ck_op_seconds_sum", "op", "get", NULL), sum, 1e-9);
  cr_assert_eq(count_named(r, "ck_op_seconds_bucket"), 4);
  /* Default bounds: 11 of them plus +Inf. */
  cr_assert_eq(count_named(r, "ck_default_seconds_bucket"), 12);
  cr_assert_eq(get(r, "ck_default_seconds_bucket", "le", "0.005", NULL), 1.0);
  cr_assert_eq(get(r, "ck_default_seconds_bucket", "le", "10", NULL), 1.0);
  cr_assert_eq(get(r, "ck_default_seconds_bucket", "le", "+Inf", NULL), 2.0);
  cr_assert_float_eq(get(r, "ck_default_seconds_sum", NULL), 20.003, 1e-9);
  /* Cumulative buckets never decrease. */
  double prev = 0;
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->s[i].name, "ck_default_seconds_bucket") == 0) {
      cr_assert_geq(r->s[i].value, prev);
      prev = r->s[i].value;
    }
  parsed_free(r);
  ck_metrics_free(m);
}

CK_TEST(metrics, label_escaping) {
  ck_metrics_t *m = ck_metrics_new();
  ck_metric_t *g = ck_metrics_family(m, CK_METRIC_GAUGE, "ck_escape", "x", "v,w", NULL, 0);
  const char *nasty = "a\"b\\c\nd}e,f=g";
  ck_series_set(ck_metric_series2(g, nasty, ""), 1);
  char *text = ck_metrics_render(m);
  cr_assert(strstr(text, "ck_escape{v=\"a\\\"b\\\\c\\nd}e,f=g\",w=\"\"} 1\n") != NULL, "%s",
            text);
  parsed_t *r = parse(text);
  free(text);
  cr_assert_eq(get(r, "ck_escape", "v", nasty, "w", "", NULL), 1.0);
  parsed_free(r);
  ck_metrics_free(m);
}

CK_TEST(metrics, float_formatting) {
  ck_metrics_t *m = ck_metrics_new();
  ck_metric_t *g = ck_metrics_family(m, CK_METRIC_GAUGE, "ck_f", NULL, "k", NULL, 0);
  struct {
    const char *k;
    double v;
    const char *text;
  } cases[] = {
      {"int", 42, "42"},
      {"big", 1e14, "100000000000000"},
      {"neg", -3, "-3"},
      {"frac", 0.1, "0.1"},
      {"tiny", 1.5e-7, NULL},
      {"huge", 1e300, NULL},
      {"third", 1.0 / 3, NULL},
      {"inf", INFINITY, "+Inf"},
      {"ninf", -INFINITY, "-Inf"},
      {"nan", NAN, "NaN"},
  };
  size_t n = sizeof cases / sizeof cases[0];
  for (size_t i = 0; i < n; i++)
    ck_series_set(ck_metric_series1(g, cases[i].k), cases[i].v);
  char *text = ck_metrics_render(m);
  parsed_t *r = parse(text);
  for (size_t i = 0; i < n; i++) {
    double got = get(r, "ck_f", "k", cases[i].k, NULL);
    if (isnan(cases[i].v))
      cr_assert(isnan(got));
    else
      cr_assert_eq(got, cases[i].v, "%s: round trip", cases[i].k);
    if (cases[i].text) {
      char line[128];
      snprintf(line, sizeof line, "ck_f{k=\"%s\"} %s\n", cases[i].k, cases[i].text);
      cr_assert(strstr(text, line) != NULL, "missing %s in\n%s", line, text);
    }
  }
  parsed_free(r);
  free(text);
  ck_metrics_free(m);
}

/* ---- concurrency ------------------------------------------------------- */

#define NTHREADS 8
#define NITER 10000

typedef struct hammer {
  ck_metrics_t *m;
  ck_series_t *counter;
  ck_series_t *gauge;
  ck_series_t *hist;
  int idx;
} hammer_t;

static void *hammer_run(void *arg) {
  hammer_t *h = arg;
  ck_metric_t *lab = ck_metrics_family(h->m, CK_METRIC_COUNTER, "ck_lab_total", NULL, "t,i",
                                       NULL, 0);
  char t[16];
  snprintf(t, sizeof t, "%d", h->idx);
  for (int i = 0; i < NITER; i++) {
    ck_series_inc(h->counter);
    ck_series_add(h->gauge, 0.5);
    ck_series_observe(h->hist, (i % 4) * 0.5); /* 0, 0.5, 1, 1.5 */
    if (i % 100 == 0) {
      /* Series creation racing with updates and other creations. */
      char iv[16];
      snprintf(iv, sizeof iv, "%d", i);
      ck_series_inc(ck_metric_series2(lab, t, iv));
    }
    if (i % 5000 == 0) {
      char *text = ck_metrics_render(h->m); /* scrapes racing with updates */
      cr_assert_not_null(text);
      free(text);
    }
  }
  return NULL;
}

CK_TEST_OPTS(metrics, concurrent_updates_are_exact, .timeout = 120) {
  ck_metrics_t *m = ck_metrics_new();
  ck_series_t *c = ck_metric_series0(
      ck_metrics_family(m, CK_METRIC_COUNTER, "ck_hits_total", NULL, NULL, NULL, 0));
  ck_series_t *g =
      ck_metric_series0(ck_metrics_family(m, CK_METRIC_GAUGE, "ck_level", NULL, NULL, NULL, 0));
  double b[] = {0.25, 1};
  ck_series_t *h = ck_metric_series0(
      ck_metrics_family(m, CK_METRIC_HISTOGRAM, "ck_lat_seconds", NULL, NULL, b, 2));
  pthread_t th[NTHREADS];
  hammer_t args[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    args[i] = (hammer_t){m, c, g, h, i};
    cr_assert_eq(pthread_create(&th[i], NULL, hammer_run, &args[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++)
    pthread_join(th[i], NULL);
  double total = (double)NTHREADS * NITER;
  cr_assert_eq(ck_series_value(c), total);
  cr_assert_eq(ck_series_value(g), total * 0.5);
  parsed_t *r = render_parse(m);
  cr_assert_eq(get(r, "ck_hits_total", NULL), total);
  cr_assert_eq(get(r, "ck_level", NULL), total * 0.5);
  cr_assert_eq(get(r, "ck_lat_seconds_count", NULL), total);
  cr_assert_eq(get(r, "ck_lat_seconds_bucket", "le", "0.25", NULL), total / 4);
  cr_assert_eq(get(r, "ck_lat_seconds_bucket", "le", "1", NULL), total * 3 / 4);
  cr_assert_eq(get(r, "ck_lat_seconds_bucket", "le", "+Inf", NULL), total);
  cr_assert_eq(get(r, "ck_lat_seconds_sum", NULL), (double)NTHREADS * (NITER / 4) * 3.0);
  /* Each thread made 200 distinct series, one increment each. */
  cr_assert_eq(count_named(r, "ck_lab_total"), NTHREADS * (NITER / 100));
  cr_assert_eq(get(r, "ck_lab_total", "t", "3", "i", "700", NULL), 1.0);
  parsed_free(r);
  ck_metrics_free(m);
}

/* ---- collectors -------------------------------------------------------- */

static void collect_two(void *ctx, ck_metrics_writer_t *w) {
  int *calls = ctx;
  (*calls)++;
  const char *v1[] = {"a"}, *v2[] = {"b"};
  /* Interleaved names: the output must still group them. */
  ck_metrics_emit(w, CK_METRIC_GAUGE, "ck_col_depth", "Depth.", "q", v1, 3);
  ck_metrics_emit(w, CK_METRIC_COUNTER, "ck_col_adds_total", "Adds.", "q", v1, 10);
  ck_metrics_emit(w, CK_METRIC_GAUGE, "ck_col_depth", "Depth.", "q", v2, 4);
  ck_metrics_emit(w, CK_METRIC_COUNTER, "ck_col_adds_total", "Adds.", "q", v2, 11);
  /* Same name as a registered family of the same type: joins it. */
  const char *v3[] = {"from-collector"};
  ck_metrics_emit(w, CK_METRIC_COUNTER, "ck_fam_total", NULL, "src", v3, 7);
  /* Histogram samples through a collector. */
  const char *le[] = {"+Inf"};
  ck_metrics_emit(w, CK_METRIC_HISTOGRAM, "ck_col_seconds_bucket", NULL, "le", le, 2);
  ck_metrics_emit(w, CK_METRIC_HISTOGRAM, "ck_col_seconds_sum", NULL, NULL, NULL, 0.75);
  ck_metrics_emit(w, CK_METRIC_HISTOGRAM, "ck_col_seconds_count", NULL, NULL, NULL, 2);
  /* Dropped: type conflict, invalid name, invalid label name. */
  ck_metrics_emit(w, CK_METRIC_COUNTER, "ck_col_depth", NULL, "q", v1, 99);
  ck_metrics_emit(w, CK_METRIC_GAUGE, "bad-name", NULL, NULL, NULL, 1);
  ck_metrics_emit(w, CK_METRIC_GAUGE, "ck_col_other", NULL, "bad-label", v1, 1);
}

CK_TEST(metrics, collectors) {
  ck_metrics_t *m = ck_metrics_new();
  ck_metric_t *f = ck_metrics_family(m, CK_METRIC_COUNTER, "ck_fam_total", "Fam.", "src", NULL, 0);
  ck_series_inc(ck_metric_series1(f, "family"));
  int calls = 0;
  int id = ck_metrics_add_collector(m, collect_two, &calls);
  cr_assert_gt(id, 0);
  char *text = ck_metrics_render(m);
  parsed_t *r = parse(text);
  cr_assert_eq(calls, 1);
  cr_assert_eq(get(r, "ck_col_depth", "q", "a", NULL), 3.0);
  cr_assert_eq(get(r, "ck_col_depth", "q", "b", NULL), 4.0);
  cr_assert_eq(get(r, "ck_col_adds_total", "q", "b", NULL), 11.0);
  cr_assert_eq(get(r, "ck_fam_total", "src", "family", NULL), 1.0);
  cr_assert_eq(get(r, "ck_fam_total", "src", "from-collector", NULL), 7.0);
  cr_assert_eq(get(r, "ck_col_seconds_count", NULL), 2.0);
  cr_assert_eq(count_named(r, "ck_col_depth"), 2, "the conflicting sample is dropped");
  cr_assert_eq(count_named(r, "ck_col_other"), 0);
  cr_assert(strstr(text, "# TYPE ck_col_seconds histogram\n") != NULL);
  cr_assert(strstr(text, "bad-name") == NULL);
  /* Samples of one name are contiguous and names come sorted. */
  for (int i = 1; i < r->n; i++)
    for (int j = i + 1; j < r->n; j++)
      if (strcmp(r->s[j].name, r->s[i - 1].name) == 0)
        cr_assert_str_eq(r->s[i].name, r->s[i - 1].name, "%s is not grouped", r->s[j].name);
  cr_assert(strstr(text, "ck_col_adds_total") < strstr(text, "ck_col_depth"));
  cr_assert(strstr(text, "ck_col_seconds") < strstr(text, "ck_fam_total"));
  parsed_free(r);
  free(text);

  ck_metrics_remove_collector(m, id);
  ck_metrics_remove_collector(m, 12345); /* unknown: ignored */
  r = render_parse(m);
  cr_assert_eq(calls, 1, "a removed collector is not called");
  cr_assert_eq(count_named(r, "ck_col_depth"), 0);
  cr_assert_eq(r->n, 1);
  parsed_free(r);
  cr_assert_lt(ck_metrics_add_collector(m, NULL, NULL), 0);
  ck_metrics_free(m);
}

typedef struct slow {
  atomic_int started;
  atomic_int finished;
} slow_t;

static void collect_slow(void *ctx, ck_metrics_writer_t *w) {
  slow_t *s = ctx;
  atomic_store(&s->started, 1);
  cktest_sleep_ms(300);
  ck_metrics_emit(w, CK_METRIC_GAUGE, "ck_slow", NULL, NULL, NULL, 1);
  atomic_store(&s->finished, 1);
}

static void *render_thread(void *arg) {
  return ck_metrics_render(arg);
}

CK_TEST_OPTS(metrics, remove_waits_for_running_collector, .timeout = 60) {
  ck_metrics_t *m = ck_metrics_new();
  slow_t *s = calloc(1, sizeof *s);
  int id = ck_metrics_add_collector(m, collect_slow, s);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, render_thread, m), 0);
  while (!atomic_load(&s->started))
    cktest_sleep_ms(1);
  ck_metrics_remove_collector(m, id);
  cr_assert_eq(atomic_load(&s->finished), 1, "remove returned while the collector ran");
  free(s); /* what remove allows: ctx is no longer used */
  void *text = NULL;
  pthread_join(th, &text);
  cr_assert(strstr(text, "ck_slow 1\n") != NULL);
  free(text);
  ck_metrics_free(m);
}

/* ---- registration rules ------------------------------------------------ */

CK_TEST(metrics, reregistration) {
  ck_metrics_t *m = ck_metrics_new();
  ck_metric_t *a = ck_metrics_family(m, CK_METRIC_COUNTER, "ck_x_total", "X.", "a,b", NULL, 0);
  cr_assert_not_null(a);
  cr_assert_eq(ck_metrics_family(m, CK_METRIC_COUNTER, "ck_x_total", "other help", " a , b", NULL,
                                 0),
               a, "same type and labels: the same family");
  cr_assert_null(ck_metrics_family(m, CK_METRIC_GAUGE, "ck_x_total", NULL, "a,b", NULL, 0));
  cr_assert_null(ck_metrics_family(m, CK_METRIC_COUNTER, "ck_x_total", NULL, "b,a", NULL, 0));
  cr_assert_null(ck_metrics_family(m, CK_METRIC_COUNTER, "ck_x_total", NULL, "a", NULL, 0));
  cr_assert_null(ck_metrics_family(m, CK_METRIC_COUNTER, "ck_x_total", NULL, NULL, NULL, 0));
  ck_metric_t *n = ck_metrics_family(m, CK_METRIC_GAUGE, "ck_none", NULL, "", NULL, 0);
  cr_assert_eq(ck_metrics_family(m, CK_METRIC_GAUGE, "ck_none", NULL, NULL, NULL, 0), n);
  /* The first registration's series survive a second lookup. */
  ck_series_inc(ck_metric_series2(a, "1", "2"));
  ck_metric_t *again =
      ck_metrics_family(m, CK_METRIC_COUNTER, "ck_x_total", NULL, "a,b", NULL, 0);
  cr_assert_eq(ck_series_value(ck_metric_series2(again, "1", "2")), 1.0);
  ck_metrics_free(m);
}

CK_TEST(metrics, invalid_names) {
  ck_metrics_t *m = ck_metrics_new();
  const char *bad_names[] = {"", "1abc", "a-b", "a b", "é", "a.b", "a{b"};
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
    cr_assert_null(ck_metrics_family(m, CK_METRIC_COUNTER, bad_names[i], NULL, NULL, NULL, 0),
                   "name \"%s\" accepted", bad_names[i]);
  cr_assert_null(ck_metrics_family(m, CK_METRIC_COUNTER, NULL, NULL, NULL, NULL, 0));
  cr_assert_null(ck_metrics_family(NULL, CK_METRIC_COUNTER, "ok", NULL, NULL, NULL, 0));
  cr_assert_not_null(ck_metrics_family(m, CK_METRIC_COUNTER, "ns:sub_x9", NULL, NULL, NULL, 0));
  cr_assert_not_null(ck_metrics_family(m, CK_METRIC_COUNTER, "_x", NULL, "_y,Z9", NULL, 0));
  const char *bad_labels[] = {"__x", "a-b", "a,a", "9a", "a,", ",a", "a b", "a:b"};
  for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++)
    cr_assert_null(ck_metrics_family(m, CK_METRIC_GAUGE, "ck_lbl", NULL, bad_labels[i], NULL, 0),
                   "labels \"%s\" accepted", bad_labels[i]);
  /* "le" is the histogram's own label; buckets must ascend. */
  cr_assert_null(ck_metrics_family(m, CK_METRIC_HISTOGRAM, "ck_h", NULL, "le", NULL, 0));
  cr_assert_not_null(ck_metrics_family(m, CK_METRIC_GAUGE, "ck_g_le", NULL, "le", NULL, 0));
  double desc[] = {1, 0.5};
  cr_assert_null(ck_metrics_family(m, CK_METRIC_HISTOGRAM, "ck_h", NULL, NULL, desc, 2));
  double dup[] = {1, 1};
  cr_assert_null(ck_metrics_family(m, CK_METRIC_HISTOGRAM, "ck_h", NULL, NULL, dup, 2));
  double nan[] = {NAN};
  cr_assert_null(ck_metrics_family(m, CK_METRIC_HISTOGRAM, "ck_h", NULL, NULL, nan, 1));
  double inf[] = {1, INFINITY}; /* an explicit +Inf is the implied one */
  ck_metric_t *h = ck_metrics_family(m, CK_METRIC_HISTOGRAM, "ck_h", NULL, NULL, inf, 2);
  cr_assert_not_null(h);
  ck_series_observe(ck_metric_series0(h), 5);
  parsed_t *r = render_parse(m);
  cr_assert_eq(count_named(r, "ck_h_bucket"), 2);
  cr_assert_eq(get(r, "ck_h_bucket", "le", "+Inf", NULL), 1.0);
  parsed_free(r);
  ck_metrics_free(m);
}

CK_TEST(metrics, empty_registry) {
  ck_metrics_t *m = ck_metrics_new();
  char *text = ck_metrics_render(m);
  cr_assert_str_eq(text, "");
  free(text);
  /* A labelled family without series is not shown at all. */
  cr_assert_not_null(ck_metrics_family(m, CK_METRIC_COUNTER, "ck_unused_total", "U.", "a",
                                       NULL, 0));
  text = ck_metrics_render(m);
  cr_assert_str_eq(text, "");
  free(text);
  cr_assert_null(ck_metrics_render(NULL));
  ck_metrics_free(m);
}

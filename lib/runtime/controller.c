/* Controllers: informer events -> keys in a work queue -> N workers
 * running the reconcile function. */
#include "crdkit/controller.h"

#include "crdkit/log.h"
#include "crdkit/objects.h"
#include "runtime/manager_internal.h"
#include "runtime/store.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SRC_PRIMARY, SRC_OWNS, SRC_WATCHES } src_kind_t;

typedef struct source {
  struct ck_controller *ctl;
  src_kind_t kind;
  ck_informer_t *inf;
  int handler;
  ck_map_fn map;
  void *map_ctx;
} source_t;

struct ck_controller {
  ck_manager_t *m;
  char *name;
  ck_controller_opts_t opts;
  ck_resource_t primary;
  ck_informer_t *inf;
  ck_queue_t *q;
  source_t **src;
  size_t nsrc;
  pthread_t *threads;
  bool *joined;
  int nworkers;
  atomic_int active;

  ck_series_t *ok, *err_total, *requeue, *requeue_after, *errors, *terminal, *time, *active_g;
};

struct ck_reconcile {
  ck_controller_t *ctl;
  const char *key;
  char *ns;
  const char *name;
};

/* ---- event sources -------------------------------------------------------- */

static bool changed(const json_t *old, const json_t *obj, const char *field) {
  json_t *a = json_object_get(json_object_get(old, "metadata"), field);
  json_t *b = json_object_get(json_object_get(obj, "metadata"), field);
  if (!a && !b)
    return false;
  return !(a && b && json_equal(a, b));
}

static bool pass_filters(ck_controller_t *ctl, ck_informer_event_t ev, const json_t *old,
                         const json_t *obj) {
  unsigned f = ctl->opts.filters;
  if (ev == CK_INFORMER_UPDATE && f) {
    bool pass = false;
    if ((f & CK_FILTER_GENERATION) &&
        (ck_obj_generation(old) != ck_obj_generation(obj) ||
         ck_obj_is_deleting(old) != ck_obj_is_deleting(obj)))
      pass = true;
    if ((f & CK_FILTER_LABELS) && changed(old, obj, "labels"))
      pass = true;
    if ((f & CK_FILTER_ANNOTATIONS) && changed(old, obj, "annotations"))
      pass = true;
    if (!pass)
      return false;
  }
  if (ctl->opts.filter && !ctl->opts.filter(ctl->opts.ctx, ev, old, obj))
    return false;
  return true;
}

static void enqueue(void *ectx, const char *key) {
  ck_controller_t *ctl = ectx;
  if (key && *key)
    ck_queue_add(ctl->q, key);
}

/* The owner key named by obj's controller ownerReference, when the owner
 * is of the primary kind. */
static void owner_key(ck_controller_t *ctl, const json_t *obj) {
  const json_t *ref = ck_owner_controller(obj);
  if (!ref)
    return;
  const char *kind = json_string_value(json_object_get(ref, "kind"));
  const char *av = json_string_value(json_object_get(ref, "apiVersion"));
  const char *name = json_string_value(json_object_get(ref, "name"));
  if (!kind || !av || !name || !ctl->primary.kind || strcmp(kind, ctl->primary.kind) != 0)
    return;
  /* Group must match; versions of one group name the same objects. */
  const char *slash = strchr(av, '/');
  const char *group = ctl->primary.group ? ctl->primary.group : "";
  if (slash ? (strlen(group) != (size_t)(slash - av) ||
               strncmp(av, group, (size_t)(slash - av)) != 0)
            : *group != '\0')
    return;
  if (!ctl->primary.namespaced) {
    enqueue(ctl, name);
    return;
  }
  const char *ns = ck_obj_namespace(obj);
  if (!ns)
    return;
  char key[512];
  snprintf(key, sizeof key, "%s/%s", ns, name);
  enqueue(ctl, key);
}

static void on_event(void *ctx, ck_informer_event_t ev, const json_t *old, const json_t *obj) {
  source_t *s = ctx;
  ck_controller_t *ctl = s->ctl;
  switch (s->kind) {
  case SRC_PRIMARY: {
    if (!pass_filters(ctl, ev, old, obj))
      return;
    char *key = ck_store_key_of(obj);
    enqueue(ctl, key);
    free(key);
    break;
  }
  case SRC_OWNS:
    if (old)
      owner_key(ctl, old);
    owner_key(ctl, obj);
    break;
  case SRC_WATCHES:
    if (old)
      s->map(s->map_ctx, old, enqueue, ctl);
    s->map(s->map_ctx, obj, enqueue, ctl);
    break;
  }
}

static int add_source_inf(ck_controller_t *ctl, src_kind_t kind, ck_informer_t *inf,
                          ck_map_fn fn, void *fctx, ck_error_t *err);

static int add_source(ck_controller_t *ctl, src_kind_t kind, const ck_resource_t *res,
                      const char *label, const char *field, ck_transform_fn tf, void *tctx,
                      ck_map_fn fn, void *fctx, ck_error_t *err) {
  ck_informer_t *inf = ck_manager_informer_transformed(ctl->m, res, label, field, tf, tctx, err);
  if (!inf)
    return err ? err->code : CK_EINVAL;
  return add_source_inf(ctl, kind, inf, fn, fctx, err);
}

static int add_source_inf(ck_controller_t *ctl, src_kind_t kind, ck_informer_t *inf,
                          ck_map_fn fn, void *fctx, ck_error_t *err) {
  source_t **n = realloc(ctl->src, (ctl->nsrc + 1) * sizeof(source_t *));
  if (!n)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  ctl->src = n;
  source_t *s = calloc(1, sizeof *s);
  if (!s)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  *s = (source_t){.ctl = ctl, .kind = kind, .inf = inf, .map = fn, .map_ctx = fctx};
  s->handler = ck_informer_add_handler(inf, on_event, s);
  if (s->handler < 0) {
    free(s);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  ctl->src[ctl->nsrc++] = s;
  if (kind == SRC_PRIMARY)
    ctl->inf = inf;
  return 0;
}

int ck_controller_owns(ck_controller_t *ctl, const ck_resource_t *child, ck_error_t *err) {
  if (!child)
    return ck_error_set(err, CK_EINVAL, "controller %s: owns: no resource", ctl->name);
  return add_source(ctl, SRC_OWNS, child, NULL, NULL, NULL, NULL, NULL, NULL, err);
}

int ck_controller_watches(ck_controller_t *ctl, const ck_resource_t *res, ck_map_fn fn, void *ctx,
                          ck_error_t *err) {
  if (!res || !fn)
    return ck_error_set(err, CK_EINVAL, "controller %s: watches needs a resource and a map function",
                        ctl->name);
  return add_source(ctl, SRC_WATCHES, res, NULL, NULL, NULL, NULL, fn, ctx, err);
}

/* ---- lifecycle ------------------------------------------------------------- */

int ck_controller_create(ck_manager_t *m, const ck_controller_opts_t *opts, ck_controller_t **out,
                         ck_error_t *err) {
  *out = NULL;
  if (!opts || !opts->name || !*opts->name || !opts->primary || !opts->reconcile) {
    if (opts && opts->ctx_free)
      opts->ctx_free(opts->ctx);
    return ck_error_set(err, CK_EINVAL, "controller: name, primary resource and reconcile are required");
  }
  ck_controller_t *ctl = calloc(1, sizeof *ctl);
  if (!ctl || !(ctl->name = strdup(opts->name))) {
    free(ctl);
    if (opts->ctx_free)
      opts->ctx_free(opts->ctx);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  ctl->m = m;
  ctl->opts = *opts;
  ctl->opts.name = ctl->name;
  ctl->primary = *opts->primary;
  ctl->nworkers = opts->workers > 0 ? opts->workers : 1;
  ck_metrics_t *mx = ck_manager_metrics(m);
  ck_queue_opts_t qo = {.name = ctl->name, .metrics = mx};
  if (ck_queue_new(&qo, &ctl->q) != 0) {
    ck_controller_destroy(ctl);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  ck_metric_t *total = ck_metrics_family(mx, CK_METRIC_COUNTER, "controller_runtime_reconcile_total",
                                         "Total number of reconciliations per controller",
                                         "controller,result", NULL, 0);
  ctl->ok = ck_metric_series2(total, ctl->name, "success");
  ctl->err_total = ck_metric_series2(total, ctl->name, "error");
  ctl->requeue = ck_metric_series2(total, ctl->name, "requeue");
  ctl->requeue_after = ck_metric_series2(total, ctl->name, "requeue_after");
  ctl->errors = ck_metric_series1(
      ck_metrics_family(mx, CK_METRIC_COUNTER, "controller_runtime_reconcile_errors_total",
                        "Total number of reconciliation errors per controller", "controller", NULL,
                        0),
      ctl->name);
  ctl->terminal = ck_metric_series1(
      ck_metrics_family(mx, CK_METRIC_COUNTER, "controller_runtime_terminal_reconcile_errors_total",
                        "Total number of terminal reconciliation errors per controller",
                        "controller", NULL, 0),
      ctl->name);
  static const double tb[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4,
                              0.45,  0.5,  0.6,   0.7,  0.8, 0.9,  1.0, 1.25, 1.5, 1.75, 2.0,
                              2.5,   3.0,  3.5,   4.0,  4.5, 5,    6,   7,    8,   9,    10,
                              15,    20,   25,    30,   40,  50,   60};
  ctl->time = ck_metric_series1(
      ck_metrics_family(mx, CK_METRIC_HISTOGRAM, "controller_runtime_reconcile_time_seconds",
                        "Length of time per reconciliation per controller", "controller", tb,
                        sizeof tb / sizeof tb[0]),
      ctl->name);
  ctl->active_g = ck_metric_series1(
      ck_metrics_family(mx, CK_METRIC_GAUGE, "controller_runtime_active_workers",
                        "Number of currently used workers per controller", "controller", NULL, 0),
      ctl->name);
  ck_series_set(
      ck_metric_series1(ck_metrics_family(mx, CK_METRIC_GAUGE,
                                          "controller_runtime_max_concurrent_reconciles",
                                          "Maximum number of concurrent reconciles per controller",
                                          "controller", NULL, 0),
                        ctl->name),
      ctl->nworkers);
  int rc = add_source(ctl, SRC_PRIMARY, &ctl->primary, opts->label_selector, opts->field_selector,
                      opts->transform, opts->transform_ctx, NULL, NULL, err);
  if (rc != 0) {
    ck_controller_destroy(ctl);
    return rc;
  }
  *out = ctl;
  return 0;
}

void ck_controller_destroy(ck_controller_t *ctl) {
  if (!ctl)
    return;
  for (size_t i = 0; i < ctl->nsrc; i++) {
    ck_informer_remove_handler(ctl->src[i]->inf, ctl->src[i]->handler);
    free(ctl->src[i]);
  }
  free(ctl->src);
  ck_queue_free(ctl->q);
  free(ctl->threads);
  free(ctl->joined);
  if (ctl->opts.ctx_free)
    ctl->opts.ctx_free(ctl->opts.ctx);
  free(ctl->name);
  free(ctl);
}

/* ---- workers ----------------------------------------------------------------- */

static ck_result_t run_one(ck_controller_t *ctl, const char *key) {
  ck_reconcile_t rc = {.ctl = ctl, .key = key};
  const char *slash = strchr(key, '/');
  char *ns = NULL;
  if (slash) {
    ns = strndup(key, (size_t)(slash - key));
    rc.ns = ns;
    rc.name = slash + 1;
  } else {
    rc.name = key;
  }
  ck_result_t r = ctl->opts.reconcile(ctl->opts.ctx, &rc);
  free(ns);
  /* cppcheck-suppress returnDanglingLifetime ; a ck_result_t holds no pointer */
  return r;
}

static void *worker_main(void *arg) {
  ck_controller_t *ctl = arg;
  char *key = NULL;
  while (ck_queue_get(ctl->q, 200, &key) != CK_ECLOSED) {
    if (!key)
      continue;
    if (!ck_manager_may_reconcile(ctl->m)) {
      /* Lost the lease or past the grace period: not one more reconcile. */
      ck_queue_done(ctl->q, key);
      free(key);
      break;
    }
    ck_series_set(ctl->active_g, atomic_fetch_add(&ctl->active, 1) + 1);
    int64_t t0 = ck_now_ms();
    ck_result_t r = run_one(ctl, key);
    ck_series_observe(ctl->time, (double)(ck_now_ms() - t0) / 1000.0);
    ck_series_set(ctl->active_g, atomic_fetch_sub(&ctl->active, 1) - 1);
    switch (r.kind) {
    case CK_RESULT_DONE:
      ck_series_inc(ctl->ok);
      ck_queue_forget(ctl->q, key);
      break;
    case CK_RESULT_REQUEUE:
      ck_series_inc(ctl->requeue);
      ck_queue_add_rate_limited(ctl->q, key);
      break;
    case CK_RESULT_REQUEUE_AFTER:
      ck_series_inc(ctl->requeue_after);
      ck_queue_forget(ctl->q, key);
      ck_queue_add_after(ctl->q, key, r.after_ms);
      break;
    case CK_RESULT_ERROR:
      ck_series_inc(ctl->err_total);
      ck_series_inc(ctl->errors);
      ck_queue_add_rate_limited(ctl->q, key);
      CK_DEBUG(ctl->name, key, "reconcile failed; retry %d with backoff",
               ck_queue_num_requeues(ctl->q, key));
      break;
    case CK_RESULT_TERMINAL:
      ck_series_inc(ctl->err_total);
      ck_series_inc(ctl->errors);
      ck_series_inc(ctl->terminal);
      ck_queue_forget(ctl->q, key);
      break;
    }
    ck_queue_done(ctl->q, key);
    free(key);
    key = NULL;
  }
  return NULL;
}

int ck_controller_start_workers(ck_controller_t *ctl) {
  ctl->threads = calloc((size_t)ctl->nworkers, sizeof *ctl->threads);
  ctl->joined = calloc((size_t)ctl->nworkers, sizeof *ctl->joined);
  if (!ctl->threads || !ctl->joined)
    return CK_ENOMEM;
  for (int i = 0; i < ctl->nworkers; i++)
    if (pthread_create(&ctl->threads[i], NULL, worker_main, ctl) != 0) {
      for (int j = i; j < ctl->nworkers; j++)
        ctl->joined[j] = true;
      return CK_ENOMEM;
    }
  CK_INFO(ctl->name, NULL, "started %d worker%s", ctl->nworkers, ctl->nworkers == 1 ? "" : "s");
  return 0;
}

void ck_controller_shutdown(ck_controller_t *ctl) {
  ck_queue_shutdown(ctl->q);
}

bool ck_controller_join(ck_controller_t *ctl, int64_t deadline_ms) {
  bool all = true;
  for (int i = 0; ctl->threads && i < ctl->nworkers; i++) {
    if (ctl->joined[i])
      continue;
    int64_t left = deadline_ms - ck_now_ms();
    struct timespec ts = ck_deadline_after_ms(left > 0 ? left : 0);
    if (pthread_timedjoin_np(ctl->threads[i], NULL, &ts) == 0)
      ctl->joined[i] = true;
    else
      all = false;
  }
  return all;
}

static int resync_one(void *ctx, json_t *obj) {
  char *key = ck_store_key_of(obj);
  enqueue(ctx, key);
  free(key);
  return 0;
}

void ck_controller_resync(ck_controller_t *ctl) {
  ck_informer_list(ctl->inf, NULL, resync_one, ctl);
}

int64_t ck_controller_resync_ms(const ck_controller_t *ctl) {
  return ctl->opts.resync_ms;
}

int ck_controller_watches_informer(ck_controller_t *ctl, ck_informer_t *inf, ck_map_fn fn,
                                   void *ctx, ck_error_t *err) {
  if (!inf || !fn)
    return ck_error_set(err, CK_EINVAL, "controller %s: watches needs an informer and a map function",
                        ctl->name);
  return add_source_inf(ctl, SRC_WATCHES, inf, fn, ctx, err);
}

int ck_controller_enqueue(ck_controller_t *ctl, const char *key) {
  return key ? ck_queue_add(ctl->q, key) : CK_EINVAL;
}

ck_informer_t *ck_controller_informer(ck_controller_t *ctl) {
  return ctl->inf;
}

const char *ck_controller_name(const ck_controller_t *ctl) {
  return ctl->name;
}

/* ---- inside a reconcile ---------------------------------------------------- */

const char *ck_reconcile_key(const ck_reconcile_t *rc) { return rc->key; }
const char *ck_reconcile_namespace(const ck_reconcile_t *rc) { return rc->ns; }
const char *ck_reconcile_name(const ck_reconcile_t *rc) { return rc->name; }
ck_client_t *ck_reconcile_client(const ck_reconcile_t *rc) { return ck_manager_client(rc->ctl->m); }
ck_controller_t *ck_reconcile_controller(const ck_reconcile_t *rc) { return rc->ctl; }

json_t *ck_reconcile_get(ck_reconcile_t *rc) {
  return ck_informer_get_key(rc->ctl->inf, rc->key);
}

json_t *ck_reconcile_get_other(ck_reconcile_t *rc, const ck_resource_t *res, const char *ns,
                               const char *name) {
  ck_informer_t *inf = ck_manager_find_informer(rc->ctl->m, res);
  return inf ? ck_informer_get(inf, res->namespaced ? ns : NULL, name) : NULL;
}

void ck_reconcile_observe(ck_reconcile_t *rc, const ck_resource_t *res, const json_t *obj) {
  if (!obj)
    return;
  ck_manager_observe(rc->ctl->m, res, obj);
}

static int observed(ck_reconcile_t *rc, int r, json_t *got, json_t **out) {
  if (r == 0 && got)
    ck_reconcile_observe(rc, &rc->ctl->primary, got);
  if (out)
    *out = got;
  else
    json_decref(got);
  return r;
}

int ck_reconcile_status_update(ck_reconcile_t *rc, const json_t *obj, const json_t *status,
                               json_t **out, ck_error_t *err) {
  json_t *got = NULL;
  int r = ck_status_update(ck_reconcile_client(rc), &rc->ctl->primary, obj, status, &got, err);
  return observed(rc, r, got, out);
}

int ck_reconcile_finalizer_add(ck_reconcile_t *rc, const json_t *obj, const char *finalizer,
                               json_t **out, ck_error_t *err) {
  json_t *got = NULL;
  int r = ck_finalizer_add(ck_reconcile_client(rc), &rc->ctl->primary, obj, finalizer, &got, err);
  return observed(rc, r, got, out);
}

int ck_reconcile_finalizer_remove(ck_reconcile_t *rc, const json_t *obj, const char *finalizer,
                                  json_t **out, ck_error_t *err) {
  json_t *got = NULL;
  int r =
      ck_finalizer_remove(ck_reconcile_client(rc), &rc->ctl->primary, obj, finalizer, &got, err);
  return observed(rc, r, got, out);
}

int ck_reconcile_event(ck_reconcile_t *rc, const json_t *obj, const char *type,
                       const char *reason, const char *note_fmt, ...) {
  char note[1024];
  va_list ap;
  va_start(ap, note_fmt);
  vsnprintf(note, sizeof note, note_fmt, ap);
  va_end(ap);
  ck_recorder_t *r = ck_manager_recorder(rc->ctl->m);
  if (!r)
    return CK_EINVAL;
  return ck_event(r, obj, type, reason, "Reconcile", "%s", note);
}

void ck_reconcile_log(const ck_reconcile_t *rc, ck_log_level_t level, const char *fmt, ...) {
  if (!ck_log_enabled(level))
    return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ck_log(level, rc->ctl->name, rc->key, "%s", msg);
}

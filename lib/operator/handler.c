/* Handlers (crdkit/operator.h) on top of one controller: decides which
 * handler a reconcile runs from the object's status, runs it, and writes
 * the progress back through /status. */
#include "crdkit/operator.h"

#include "crdkit/log.h"
#include "crdkit/objects.h"
#include "util/strmap.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "handler"
#define READY "Ready"

/* What this process remembers of one object (by key; a new uid under
 * the same key starts afresh). */
typedef struct hstate {
  char *key;
  char *uid;
  json_t *spec;        /* the spec handled last; NULL: unknown */
  bool seen;           /* created, updated or resumed in this process */
  int64_t *timer_last; /* ck_now_ms of each timer's last run */
} hstate_t;

typedef struct hctl {
  const ck_handlers_t *hs;
  const ck_args_t *args;
  ck_resource_t res;
  char *finalizer;
  size_t ntimers;
  int64_t *interval_ms; /* per timer */
  pthread_mutex_t mu;
  ck_strmap_t states;
} hctl_t;

struct ck_handler {
  hctl_t *hc;
  ck_reconcile_t *rc;
  const json_t *obj;
  const json_t *spec;
  const json_t *old_spec;
  json_t *diff;
  json_t *status_sets; /* key -> value (null: remove) */
  const char *reason;
  char message[1024];
};

const ck_crd_field_t ck_handler_condition_schema = {
    .type = CK_CRD_OBJECT,
    .description = "A metav1.Condition.",
    .fields = (const ck_crd_field_t[]){
        {.name = "type", .type = CK_CRD_STRING, .required = true, .description = "Ready."},
        {.name = "status", .type = CK_CRD_STRING, .required = true,
         .enum_values = CK_CRD_LIST("True", "False", "Unknown"), .description = "True, False or Unknown."},
        {.name = "reason", .type = CK_CRD_STRING, .description = "Handled, Retrying or Failed."},
        {.name = "message", .type = CK_CRD_STRING, .description = "The handler's message."},
        {.name = "lastTransitionTime", .type = CK_CRD_STRING, .format = "date-time",
         .description = "When status last changed."},
        {.name = "observedGeneration", .type = CK_CRD_INTEGER,
         .description = "The generation the condition is about."},
        {0},
    }};

/* ---- outcomes -------------------------------------------------------------- */

__attribute__((format(printf, 2, 0))) static void set_message(ck_handler_t *h, const char *fmt,
                                                               va_list ap) {
  vsnprintf(h->message, sizeof h->message, fmt, ap);
}

ck_outcome_t ck_retry(ck_handler_t *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_message(h, fmt, ap);
  va_end(ap);
  return (ck_outcome_t){CK_OUTCOME_RETRY, 0};
}

ck_outcome_t ck_retry_after(ck_handler_t *h, int64_t ms, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_message(h, fmt, ap);
  va_end(ap);
  return (ck_outcome_t){CK_OUTCOME_RETRY, ms > 0 ? ms : 1};
}

ck_outcome_t ck_permanent(ck_handler_t *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_message(h, fmt, ap);
  va_end(ap);
  return (ck_outcome_t){CK_OUTCOME_PERMANENT, 0};
}

/* ---- accessors --------------------------------------------------------------- */

const json_t *ck_handler_object(const ck_handler_t *h) { return h->obj; }
const json_t *ck_handler_spec(const ck_handler_t *h) { return h->spec; }
const json_t *ck_handler_old_spec(const ck_handler_t *h) { return h->old_spec; }
const json_t *ck_handler_diff(const ck_handler_t *h) { return h->diff; }
const char *ck_handler_reason(const ck_handler_t *h) { return h->reason; }
ck_reconcile_t *ck_handler_reconcile(ck_handler_t *h) { return h->rc; }
ck_client_t *ck_handler_client(ck_handler_t *h) { return ck_reconcile_client(h->rc); }
const ck_resource_t *ck_handler_resource(const ck_handler_t *h) { return &h->hc->res; }
const ck_args_t *ck_handler_args(const ck_handler_t *h) { return h->hc->args; }

static bool path_under(const char *path, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '.');
}

bool ck_handler_changed(const ck_handler_t *h, const char *path) {
  size_t i;
  json_t *d;
  json_array_foreach(h->diff, i, d) {
    const char *p = json_string_value(json_object_get(d, "path"));
    if (p && (path_under(p, path) || path_under(path, p)))
      return true;
  }
  return false;
}

int ck_handler_status_set(ck_handler_t *h, const char *key, json_t *value) {
  if (!key || !*key || strcmp(key, "observedGeneration") == 0 || strcmp(key, "conditions") == 0) {
    json_decref(value);
    return CK_EINVAL;
  }
  return json_object_set_new(h->status_sets, key, value ? value : json_null()) == 0 ? 0 : CK_ENOMEM;
}

void ck_handler_log(const ck_handler_t *h, ck_log_level_t level, const char *fmt, ...) {
  if (!ck_log_enabled(level))
    return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ck_reconcile_log(h->rc, level, "%s: %s", h->reason, buf);
}

int ck_handler_event(ck_handler_t *h, const char *type, const char *reason, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return ck_reconcile_event(h->rc, h->obj, type, reason, "%s", buf);
}

/* ---- diff -------------------------------------------------------------------- */

static int diff_add(json_t *out, const char *op, const char *path, const json_t *old,
                    const json_t *new) {
  json_t *e = json_pack("{s:s,s:s}", "op", op, "path", path);
  if (!e)
    return CK_ENOMEM;
  if (old)
    json_object_set(e, "old", (json_t *)old);
  if (new)
    json_object_set(e, "new", (json_t *)new);
  return json_array_append_new(out, e) == 0 ? 0 : CK_ENOMEM;
}

/* Objects field by field (keys in sorted order, so the diff is
 * deterministic); anything else as a whole value. */
static int diff_values(json_t *out, const char *path, const json_t *old, const json_t *new) {
  if (json_is_object(old) && json_is_object(new)) {
    json_t *keys = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)old, k, v) {
      json_object_set(keys, k, json_true());
    }
    json_object_foreach((json_t *)new, k, v) {
      json_object_set(keys, k, json_true());
    }
    size_t n = json_object_size(keys), i = 0;
    const char **sorted = calloc(n ? n : 1, sizeof *sorted);
    int rc = sorted ? 0 : CK_ENOMEM;
    json_object_foreach(keys, k, v) {
      if (sorted)
        sorted[i++] = k;
    }
    for (size_t a = 1; rc == 0 && a < n; a++) /* insertion sort: specs are small */
      for (size_t b = a; b > 0 && strcmp(sorted[b - 1], sorted[b]) > 0; b--) {
        const char *t = sorted[b];
        sorted[b] = sorted[b - 1];
        sorted[b - 1] = t;
      }
    for (i = 0; rc == 0 && i < n; i++) {
      size_t plen = strlen(path) + strlen(sorted[i]) + 2;
      char *sub = malloc(plen);
      if (!sub) {
        rc = CK_ENOMEM;
        break;
      }
      snprintf(sub, plen, "%s.%s", path, sorted[i]);
      rc = diff_values(out, sub, json_object_get(old, sorted[i]), json_object_get(new, sorted[i]));
      free(sub);
    }
    free(sorted);
    json_decref(keys);
    return rc;
  }
  if (!old && !new)
    return 0;
  if (!old)
    return diff_add(out, "add", path, NULL, new);
  if (!new)
    return diff_add(out, "remove", path, old, NULL);
  if (json_equal((json_t *)old, (json_t *)new))
    return 0;
  return diff_add(out, "change", path, old, new);
}

/* ---- per-object memory --------------------------------------------------------- */

static void hstate_free(hstate_t *st) {
  if (!st)
    return;
  free(st->key);
  free(st->uid);
  json_decref(st->spec);
  free(st->timer_last);
  free(st);
}

/* The state of key/uid, created (or renewed for a new uid). Called with
 * hc->mu held. NULL when memory ran out. */
static hstate_t *hstate_get(hctl_t *hc, const char *key, const char *uid) {
  hstate_t *st = ck_strmap_get(&hc->states, key);
  if (st && strcmp(st->uid, uid) == 0)
    return st;
  if (st) {
    ck_strmap_del(&hc->states, key);
    hstate_free(st);
  }
  st = calloc(1, sizeof *st);
  if (!st || !(st->key = strdup(key)) || !(st->uid = strdup(uid)) ||
      !(st->timer_last = calloc(hc->ntimers + 1, sizeof *st->timer_last)) ||
      ck_strmap_put(&hc->states, st->key, st, NULL) != 0) {
    hstate_free(st);
    return NULL;
  }
  return st;
}

static void hstate_drop(hctl_t *hc, const char *key) {
  pthread_mutex_lock(&hc->mu);
  hstate_free(ck_strmap_del(&hc->states, key));
  pthread_mutex_unlock(&hc->mu);
}

static void hctl_free(void *p) {
  hctl_t *hc = p;
  if (!hc)
    return;
  size_t pos = 0;
  const char *k;
  void *v;
  while (ck_strmap_next(&hc->states, &pos, &k, &v))
    hstate_free(v);
  ck_strmap_free(&hc->states);
  pthread_mutex_destroy(&hc->mu);
  free(hc->finalizer);
  free(hc->interval_ms);
  free(hc);
}

/* ---- one reconcile --------------------------------------------------------------- */

static ck_outcome_t run(ck_handler_t *h, ck_handler_fn fn, const char *reason) {
  h->reason = reason;
  h->message[0] = 0;
  if (!fn)
    return ck_ok();
  ck_outcome_t o = fn(h, h->hc->hs->ctx);
  if (o.kind == CK_OUTCOME_RETRY)
    ck_handler_log(h, CK_LOG_WARN, "will retry: %s", h->message[0] ? h->message : "(no message)");
  else if (o.kind == CK_OUTCOME_PERMANENT)
    ck_handler_log(h, CK_LOG_ERROR, "failed: %s", h->message[0] ? h->message : "(no message)");
  else
    ck_handler_log(h, CK_LOG_DEBUG, "done");
  return o;
}

/* Write the progress and the handler's status fields through /status.
 * Returns 0, or non-zero after logging (the caller requeues). */
static int write_status(ck_handler_t *h, const json_t *obj, ck_outcome_t o, bool handled,
                        json_t **out) {
  const ck_handlers_t *hs = h->hc->hs;
  const json_t *cur = json_object_get(obj, "status");
  json_t *st = json_is_object(cur) ? json_deep_copy(cur) : json_object();
  if (!st)
    return CK_ENOMEM;
  const char *k;
  json_t *v;
  json_object_foreach(h->status_sets, k, v) {
    if (json_is_null(v))
      json_object_del(st, k);
    else
      json_object_set(st, k, v);
  }
  int64_t gen = ck_obj_generation(obj);
  if (handled) {
    json_object_set_new(st, "observedGeneration", json_integer(gen));
    if (hs->keep_last_spec)
      json_object_set(st, "lastHandledSpec", (json_t *)h->spec);
  }
  ck_condition_t c = {.type = READY, .observed_generation = gen};
  if (o.kind == CK_OUTCOME_OK) {
    c.status = "True";
    c.reason = "Handled";
  } else {
    c.status = "False";
    c.reason = o.kind == CK_OUTCOME_RETRY ? "Retrying" : "Failed";
    c.message = h->message[0] ? h->message : "(no message)";
  }
  /* An event or timer run that went well keeps the condition as it was
   * (a permanent failure stays visible until the next generation). */
  if (!(o.kind == CK_OUTCOME_OK && !handled && ck_condition_find(st, READY)))
    ck_condition_set(st, &c, 0);
  ck_error_t err = {0};
  int rc = ck_reconcile_status_update(h->rc, obj, st, out, &err);
  json_decref(st);
  if (rc != 0)
    ck_handler_log(h, ck_error_is_conflict(&err) ? CK_LOG_DEBUG : CK_LOG_WARN,
                   "writing status: %s", err.message);
  return rc;
}

static ck_result_t outcome_result(ck_outcome_t o) {
  if (o.kind == CK_OUTCOME_RETRY)
    return o.after_ms > 0 ? ck_requeue_after(o.after_ms) : ck_fail();
  return ck_done();
}

static ck_result_t do_delete(hctl_t *hc, ck_handler_t *h, json_t *obj) {
  if (!hc->finalizer || !ck_finalizer_has(obj, hc->finalizer))
    return ck_done();
  ck_outcome_t o = run(h, hc->hs->on_delete, "delete");
  if (o.kind == CK_OUTCOME_RETRY) {
    write_status(h, obj, o, false, NULL);
    return outcome_result(o);
  }
  if (o.kind == CK_OUTCOME_PERMANENT) /* the object goes anyway: say so once */
    ck_handler_event(h, "Warning", "DeleteFailed", "%s", h->message);
  ck_error_t err = {0};
  if (ck_reconcile_finalizer_remove(h->rc, obj, hc->finalizer, NULL, &err) != 0) {
    ck_handler_log(h, CK_LOG_WARN, "removing finalizer %s: %s", hc->finalizer, err.message);
    return ck_fail();
  }
  return ck_done();
}

/* The next timer due for st, in ms from now; -1 when there are none. */
static int64_t run_timers(hctl_t *hc, ck_handler_t *h, hstate_t *st, ck_outcome_t *worst) {
  int64_t next = -1, now = ck_now_ms();
  for (size_t i = 0; i < hc->ntimers; i++) {
    const ck_timer_t *t = &hc->hs->timers[i];
    if (!st->timer_last[i])
      st->timer_last[i] = now; /* first run one interval after it was handled */
    int64_t every = hc->interval_ms[i];
    if (now - st->timer_last[i] >= every) {
      ck_outcome_t o = run(h, t->fn, t->name);
      if (o.kind != CK_OUTCOME_RETRY)
        st->timer_last[i] = now;
      if (o.kind == CK_OUTCOME_PERMANENT)
        ck_handler_event(h, "Warning", "TimerFailed", "%s: %s", t->name, h->message);
      if (o.kind > worst->kind)
        *worst = o;
    }
    int64_t due = st->timer_last[i] + every - now;
    if (due < 1)
      due = 1;
    if (next < 0 || due < next)
      next = due;
  }
  return next;
}

static ck_result_t hreconcile(void *vctx, ck_reconcile_t *rc) {
  hctl_t *hc = vctx;
  const ck_handlers_t *hs = hc->hs;
  json_t *obj = ck_reconcile_get(rc);
  if (!obj) {
    hstate_drop(hc, ck_reconcile_key(rc));
    return ck_done();
  }
  json_t *empty = json_object();
  ck_handler_t h = {.hc = hc, .rc = rc, .obj = obj, .diff = json_array(),
                    .status_sets = json_object(), .reason = "reconcile"};
  const json_t *spec = json_object_get(obj, "spec");
  h.spec = json_is_object(spec) ? spec : empty;
  ck_result_t res = ck_fail(); /* unless a path below decides otherwise */
  json_t *old_ref = NULL;
  if (!empty || !h.diff || !h.status_sets)
    goto out;
  if (ck_obj_is_deleting(obj)) {
    res = do_delete(hc, &h, obj);
    hstate_drop(hc, ck_reconcile_key(rc));
    goto out;
  }
  if (hc->finalizer && !ck_finalizer_has(obj, hc->finalizer)) {
    json_t *after = NULL;
    ck_error_t err = {0};
    if (ck_reconcile_finalizer_add(rc, obj, hc->finalizer, &after, &err) != 0) {
      ck_handler_log(&h, CK_LOG_WARN, "adding finalizer %s: %s", hc->finalizer, err.message);
      goto out;
    }
    json_decref(obj);
    h.obj = obj = after;
    spec = json_object_get(obj, "spec");
    h.spec = json_is_object(spec) ? spec : empty;
  }

  pthread_mutex_lock(&hc->mu);
  hstate_t *st = hstate_get(hc, ck_reconcile_key(rc), ck_obj_uid(obj) ? ck_obj_uid(obj) : "");
  pthread_mutex_unlock(&hc->mu);
  if (!st)
    goto out;
  /* The state is only touched by the one worker reconciling this key. */
  const json_t *status = json_object_get(obj, "status");
  const json_t *og = json_object_get(status, "observedGeneration");
  int64_t gen = ck_obj_generation(obj);
  bool created = hs->compat == CK_COMPAT_PYKUBEOP ? json_object_get(status, "state") != NULL
                                                   : json_is_integer(og);
  ck_handler_fn fn;
  const char *reason;
  bool handles = true; /* a create/update: progress is written */
  if (!created) {
    fn = hs->on_create, reason = "create";
  } else if (json_is_integer(og) && gen > json_integer_value(og)) {
    fn = hs->on_update, reason = "update";
    /* A reference of our own: st->spec is replaced below. */
    old_ref = json_incref(st->spec);
    if (!old_ref && hs->keep_last_spec)
      old_ref = json_incref(json_object_get(status, "lastHandledSpec"));
    h.old_spec = old_ref;
    if (diff_values(h.diff, "spec", h.old_spec ? h.old_spec : empty, h.spec) != 0)
      goto out;
  } else if (!st->seen) {
    fn = hs->on_resume, reason = "resume", handles = false;
  } else {
    fn = hs->on_event, reason = "event", handles = false;
  }
  ck_outcome_t o = run(&h, fn, reason);
  if (o.kind == CK_OUTCOME_PERMANENT)
    ck_handler_event(&h, "Warning", "HandlerFailed", "%s: %s", reason, h.message);
  bool handled = handles && o.kind != CK_OUTCOME_RETRY;
  if (o.kind != CK_OUTCOME_RETRY) {
    st->seen = true;
    if (handles) {
      json_decref(st->spec);
      st->spec = json_deep_copy(h.spec);
    }
  }
  int64_t next_timer = -1;
  if (o.kind != CK_OUTCOME_RETRY && hc->ntimers) {
    ck_outcome_t worst = ck_ok();
    const char *keep = h.reason;
    /* Timers are not updates: no old spec, no diff. */
    h.old_spec = NULL;
    json_array_clear(h.diff);
    next_timer = run_timers(hc, &h, st, &worst);
    h.reason = keep;
    if (worst.kind == CK_OUTCOME_RETRY)
      o = worst;
  }
  json_t *after = NULL;
  if (write_status(&h, obj, o, handled, &after) != 0) {
    res = ck_requeue();
    goto out;
  }
  json_decref(after);
  res = outcome_result(o);
  if (res.kind == CK_RESULT_DONE && next_timer >= 0)
    res = ck_requeue_after(next_timer);
out:
  json_decref(old_ref);
  json_decref(h.diff);
  json_decref(h.status_sets);
  json_decref(empty);
  json_decref(obj);
  return res;
}

/* ---- registration --------------------------------------------------------------- */

static bool crd_status_has(const ck_crd_t *crd, const char *field) {
  for (const ck_crd_version_t *v = crd->versions; v && v->name; v++) {
    if (!v->storage)
      continue;
    if (!v->status)
      return false;
    if (v->status->preserve_unknown_fields)
      return true;
    for (const ck_crd_field_t *f = v->status->fields; f && f->name; f++)
      if (strcmp(f->name, field) == 0)
        return true;
  }
  return false;
}

int ck_handlers_add(ck_manager_t *m, const ck_handlers_t *hs, const ck_args_t *args,
                    ck_error_t *err) {
  if (!m || !hs || (!hs->crd && !hs->resource))
    return ck_error_set(err, CK_EINVAL, "handlers: a CRD table or a resource is required");
  hctl_t *hc = calloc(1, sizeof *hc);
  if (!hc)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  pthread_mutex_init(&hc->mu, NULL);
  hc->hs = hs;
  hc->args = args;
  int rc = 0;
  if (hs->crd)
    rc = ck_crd_resource(hs->crd, NULL, &hc->res, err);
  else
    hc->res = *hs->resource;
  const char *name = hs->name ? hs->name : hc->res.resource;
  for (const ck_timer_t *t = hs->timers; t && t->fn; t++)
    hc->ntimers++;
  if (rc == 0 && !(hc->interval_ms = calloc(hc->ntimers + 1, sizeof *hc->interval_ms)))
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && hs->timers && hc->interval_ms && i < hc->ntimers; i++) {
    const ck_timer_t *t = &hs->timers[i];
    hc->interval_ms[i] = t->interval_ms;
    if (t->interval_flag)
      hc->interval_ms[i] = ck_args_int(args, t->interval_flag, t->interval_ms / 1000) * 1000;
    if (hc->interval_ms[i] <= 0 || !t->name)
      rc = ck_error_set(err, CK_EINVAL, "handlers %s: timer %s needs a name and an interval > 0",
                        name, t->name ? t->name : "(unnamed)");
  }
  if (rc == 0 && hs->keep_last_spec && hs->crd && !crd_status_has(hs->crd, "lastHandledSpec"))
    rc = ck_error_set(err, CK_EINVAL,
                      "handlers %s: keep_last_spec needs status.lastHandledSpec in the CRD "
                      "(add CK_HANDLER_STATUS_FIELDS to the status table)",
                      name);
  if (rc == 0 && hs->on_delete) {
    const char *fin = hs->finalizer;
    char buf[512];
    if (!fin) {
      snprintf(buf, sizeof buf, "%s/%s", hc->res.group && *hc->res.group ? hc->res.group : "crdkit.io",
               name);
      fin = buf;
    }
    if (!(hc->finalizer = strdup(fin)))
      rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  if (rc != 0) {
    hctl_free(hc);
    return rc;
  }
  int workers = hs->workers;
  int64_t mcr = args ? ck_args_int(args, "max-concurrent-reconciles", 0) : 0;
  if (mcr > 0)
    workers = (int)mcr;
  ck_controller_opts_t co = {
      .name = name,
      .primary = &hc->res,
      .reconcile = hreconcile,
      .ctx = hc,
      .ctx_free = hctl_free,
      .workers = workers,
      .filters = CK_FILTER_GENERATION, /* status writes do not come back as work */
  };
  ck_controller_t *ctl = NULL;
  rc = ck_manager_add_controller(m, &co, &ctl, err);
  for (const ck_resource_t *const *o = hs->owns; rc == 0 && o && *o; o++)
    rc = ck_controller_owns(ctl, *o, err);
  return rc;
}

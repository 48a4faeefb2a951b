/* Informers: reflectors (list + watch per namespace) feeding the store and
 * the handlers. */
#include "crdkit/informer.h"

#include "crdkit/log.h"
#include "crdkit/objects.h"
#include "crdkit/watch.h"
#include "runtime/store.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "informer"

typedef struct handler {
  int id;
  ck_informer_handler_fn fn;
  void *ctx;
  unsigned flags; /* CK_HANDLER_* */
} handler_t;

typedef struct reflector {
  struct ck_informer *inf;
  char *ns; /* NULL: all namespaces / cluster-scoped */
  pthread_t thread;
  bool running;
  uint32_t epoch;          /* mark of the current (re)list; under inf->mu */
  bool listing;            /* a (re)list is under way; under inf->mu */
  bool synced;             /* first list done; under inf->mu */
  int64_t failing_since;   /* monotonic ms of the first failure in a row; 0: fine */
  char last_error[256];    /* under inf->mu */
} reflector_t;

struct ck_informer {
  ck_client_t *client;
  ck_resource_t res;
  char *label_selector, *field_selector;
  char **namespaces;
  size_t nnamespaces;
  ck_informer_opts_t opts; /* scalars and callbacks; strings above */
  char name[160];          /* "group/resource" for logs */
  char api_version[160];   /* "group/version" or "v1" */
  ck_store_t *store;

  pthread_mutex_t mu; /* lifecycle, sync and health */
  pthread_cond_t cv;
  bool started, stopping;
  bool watchlist_refused;
  reflector_t *refl;
  size_t nrefl;

  pthread_mutex_t hmu; /* handlers; held while they run */
  handler_t *handlers;
  size_t nhandlers;
  int next_handler_id;

  atomic_uint_fast64_t events, lists, watches, failures;
};

/* ---- helpers ----------------------------------------------------------- */

static char *dup_or_null(const char *s) {
  return s && *s ? strdup(s) : NULL;
}

static bool stopping(ck_informer_t *inf) {
  pthread_mutex_lock(&inf->mu);
  bool s = inf->stopping;
  pthread_mutex_unlock(&inf->mu);
  return s;
}

/* Sleep up to ms, waking early on stop. Returns true when stopping. */
static bool nap(ck_informer_t *inf, int64_t ms) {
  struct timespec dl = ck_deadline_after_ms(ms);
  pthread_mutex_lock(&inf->mu);
  while (!inf->stopping) {
    if (pthread_cond_timedwait(&inf->cv, &inf->mu, &dl) != 0)
      break;
  }
  bool s = inf->stopping;
  pthread_mutex_unlock(&inf->mu);
  return s;
}

static void dispatch(ck_informer_t *inf, ck_informer_event_t ev, const json_t *old,
                     const json_t *obj) {
  pthread_mutex_lock(&inf->hmu);
  for (size_t i = 0; i < inf->nhandlers; i++)
    inf->handlers[i].fn(inf->handlers[i].ctx, ev,
                        inf->handlers[i].flags & CK_HANDLER_NO_OLD ? NULL : old, obj);
  pthread_mutex_unlock(&inf->hmu);
}

/* Whether an update must bring the previous object: some handler reads it. */
static bool want_old(ck_informer_t *inf) {
  pthread_mutex_lock(&inf->hmu);
  bool w = false;
  for (size_t i = 0; i < inf->nhandlers && !w; i++)
    w = !(inf->handlers[i].flags & CK_HANDLER_NO_OLD);
  pthread_mutex_unlock(&inf->hmu);
  return w;
}

/* Take ownership of obj; return what the cache should hold (or NULL). */
static json_t *prepare(ck_informer_t *inf, json_t *obj) {
  /* Items of a List carry no apiVersion/kind; watch events do. Cached
   * objects always have them (owner references and Events need them). */
  if (!json_object_get(obj, "apiVersion"))
    json_object_set_new(obj, "apiVersion", json_string(inf->api_version));
  if (!json_object_get(obj, "kind") && inf->res.kind)
    json_object_set_new(obj, "kind", json_string(inf->res.kind));
  json_t *md = json_object_get(obj, "metadata");
  if (json_is_object(md))
    json_object_del(md, "managedFields");
  if (inf->opts.transform)
    obj = inf->opts.transform(inf->opts.transform_ctx, obj);
  return obj;
}

/* Store obj (owned) and tell the handlers: from a list or the watch, or
 * (observed) the answer to a write, added when not cached only if may_add.
 * kept (may be NULL): a new reference to what the cache now holds when it
 * took obj, else NULL. */
static void apply_kept(ck_informer_t *inf, json_t *obj, uint32_t mark, bool only_newer,
                       bool observed, bool may_add, json_t **kept) {
  obj = prepare(inf, obj);
  if (!obj)
    return;
  json_t *old = NULL;
  int r = observed ? ck_store_observe(inf->store, obj, may_add, want_old(inf), &old)
                   : ck_store_upsert(inf->store, obj, mark, only_newer, want_old(inf), &old);
  if (kept && (r == CK_STORE_ADDED || r == CK_STORE_UPDATED))
    *kept = json_incref(obj);
  if (r == CK_STORE_ADDED)
    dispatch(inf, CK_INFORMER_ADD, NULL, obj);
  else if (r == CK_STORE_UPDATED)
    dispatch(inf, CK_INFORMER_UPDATE, old, obj);
  else if (r < 0)
    CK_WARN(COMP, inf->name, "caching an object failed: %s", ck_strerror(r));
  json_decref(old);
  json_decref(obj);
}

static void apply(ck_informer_t *inf, json_t *obj, uint32_t mark, bool only_newer) {
  apply_kept(inf, obj, mark, only_newer, false, false, NULL);
}

static void remove_obj(ck_informer_t *inf, json_t *obj) {
  char *key = ck_store_key_of(obj);
  if (!key)
    return;
  json_t *last = NULL;
  if (ck_store_delete(inf->store, key, ck_store_rv_of(obj), &last) == 1) {
    /* Deliver the final state the server sent (it may carry a
     * deletionTimestamp the cached copy lacks). */
    json_t *o = prepare(inf, json_incref(obj));
    dispatch(inf, CK_INFORMER_DELETE, NULL, o ? o : last);
    json_decref(o);
  }
  json_decref(last);
  free(key);
}

static void on_swept(void *ctx, json_t *obj) {
  dispatch(ctx, CK_INFORMER_DELETE, NULL, obj);
}

static void fail(reflector_t *r, const char *what, const ck_error_t *err) {
  ck_informer_t *inf = r->inf;
  atomic_fetch_add(&inf->failures, 1);
  pthread_mutex_lock(&inf->mu);
  if (!r->failing_since)
    r->failing_since = ck_now_ms();
  snprintf(r->last_error, sizeof r->last_error, "%s: %s", what,
           err && err->message[0] ? err->message : "failed");
  pthread_mutex_unlock(&inf->mu);
  CK_WARN(COMP, inf->name, "%s%s%s: %s", what, r->ns ? " in namespace " : "", r->ns ? r->ns : "",
          err && err->message[0] ? err->message : "failed");
}

static void fine(reflector_t *r) {
  pthread_mutex_lock(&r->inf->mu);
  if (r->failing_since)
    CK_INFO(COMP, r->inf->name, "recovered%s%s", r->ns ? " in namespace " : "",
            r->ns ? r->ns : "");
  r->failing_since = 0;
  r->last_error[0] = '\0';
  pthread_mutex_unlock(&r->inf->mu);
}

static uint32_t new_epoch(reflector_t *r) {
  pthread_mutex_lock(&r->inf->mu);
  uint32_t e = ++r->epoch;
  r->listing = true; /* until a list completes, even after failures */
  pthread_mutex_unlock(&r->inf->mu);
  return e;
}

/* A list tagged `mark` is complete at resourceVersion rv (may be NULL). */
static void list_done(reflector_t *r, uint32_t mark, const char *rv) {
  ck_informer_t *inf = r->inf;
  uint64_t lrv = rv ? strtoull(rv, NULL, 10) : 0;
  ck_store_sweep(inf->store, inf->res.namespaced ? r->ns : NULL, mark, lrv, on_swept, inf);
  atomic_fetch_add(&inf->lists, 1);
  fine(r);
  pthread_mutex_lock(&inf->mu);
  r->listing = false;
  r->synced = true;
  pthread_cond_broadcast(&inf->cv);
  pthread_mutex_unlock(&inf->mu);
}

/* ---- paginated list ------------------------------------------------------ */

typedef struct list_ctx {
  reflector_t *r;
  uint32_t mark;
} list_ctx_t;

static int on_item(void *ctx, json_t *item) {
  list_ctx_t *lc = ctx;
  if (stopping(lc->r->inf))
    return CK_ECLOSED;
  /* The page is discarded after this call: the item can be modified. */
  apply(lc->r->inf, json_incref(item), lc->mark, false);
  return 0;
}

static int do_list(reflector_t *r, char **rv) {
  ck_informer_t *inf = r->inf;
  list_ctx_t lc = {.r = r, .mark = new_epoch(r)};
  ck_list_opts_t lo = {
      .label_selector = inf->label_selector,
      .field_selector = inf->field_selector,
      .limit = inf->opts.page_size > 0 ? inf->opts.page_size : 500,
  };
  ck_error_t err = {0};
  char *nrv = NULL;
  int rc = ck_object_list_each(inf->client, &inf->res, r->ns, &lo, on_item, &lc, &nrv, &err);
  if (rc != 0) {
    free(nrv);
    if (rc != CK_ECLOSED)
      fail(r, "list", &err);
    return rc;
  }
  free(*rv);
  *rv = nrv;
  list_done(r, lc.mark, nrv);
  CK_DEBUG(COMP, inf->name, "listed %zu objects at resourceVersion %s", ck_store_len(inf->store),
           nrv ? nrv : "?");
  return 0;
}

/* ---- watch --------------------------------------------------------------- */

enum { W_REOPEN, W_RELIST, W_BACKOFF, W_STOP };

/* Consume one watch stream. In the watch-list phase (*initial set) events
 * are tagged with `mark` and the end bookmark completes the list. */
static int consume(reflector_t *r, ck_watch_t *w, char **rv, bool *initial, uint32_t mark) {
  ck_informer_t *inf = r->inf;
  for (;;) {
    if (stopping(inf))
      return W_STOP;
    ck_watch_event_t ev = {0};
    ck_error_t err = {0};
    int rc = ck_watch_next(w, 500, &ev, &err);
    if (rc == CK_ETIMEDOUT)
      continue;
    if (rc == 0) {
      atomic_fetch_add(&inf->events, 1);
      if (ev.type == CK_WATCH_ADDED || ev.type == CK_WATCH_MODIFIED) {
        apply(inf, json_incref(ev.object), mark, !*initial);
      } else if (ev.type == CK_WATCH_DELETED) {
        remove_obj(inf, ev.object);
      } else if (ev.type == CK_WATCH_BOOKMARK && *initial && ck_watch_initial_events_done(w)) {
        *initial = false;
        list_done(r, mark, ck_watch_resource_version(w));
        CK_DEBUG(COMP, inf->name, "watch-list delivered %zu objects", ck_store_len(inf->store));
      }
      ck_watch_event_clear(&ev);
      const char *nrv = ck_watch_resource_version(w);
      if (nrv && *nrv && (!*rv || strcmp(*rv, nrv) != 0)) {
        free(*rv);
        *rv = strdup(nrv);
      }
      if (!*initial)
        fine(r);
      continue;
    }
    if (rc == CK_ECLOSED)
      return *initial ? W_RELIST : W_REOPEN;
    if (rc == CK_EAPI && ck_error_is_gone(&err)) {
      CK_INFO(COMP, inf->name, "resourceVersion %s expired (410): listing again", *rv ? *rv : "");
      return W_RELIST;
    }
    fail(r, "watch", &err);
    return *initial ? W_RELIST : W_BACKOFF;
  }
}

static void *reflector_main(void *arg) {
  reflector_t *r = arg;
  ck_informer_t *inf = r->inf;
  char *rv = NULL;
  bool need_list = true;
  int fails = 0;
  int64_t cap = inf->opts.backoff_max_ms > 0 ? inf->opts.backoff_max_ms : 30000;
  while (!stopping(inf)) {
    bool initial = false;
    uint32_t mark = 0;
    ck_watch_opts_t wo = {
        .label_selector = inf->label_selector,
        .field_selector = inf->field_selector,
        .idle_timeout_s = inf->opts.idle_timeout_s,
    };
    pthread_mutex_lock(&inf->mu);
    bool wl = inf->opts.list_mode == CK_LIST_WATCHLIST && !inf->watchlist_refused;
    pthread_mutex_unlock(&inf->mu);
    if (need_list && wl) {
      initial = true;
      mark = new_epoch(r);
      wo.send_initial_events = true;
    } else if (need_list) {
      int rc = do_list(r, &rv);
      if (rc == CK_ECLOSED)
        break;
      if (rc != 0)
        goto backoff;
      need_list = false;
    }
    if (!initial)
      wo.resource_version = rv;

    ck_watch_t *w = NULL;
    ck_error_t err = {0};
    int rc = ck_watch_open(inf->client, &inf->res, r->ns, &wo, &w, &err);
    if (rc != 0) {
      if (rc == CK_EAPI && ck_error_is_gone(&err)) {
        need_list = true;
        continue;
      }
      if (initial && rc == CK_EAPI && (err.http_status == 400 || err.http_status == 422)) {
        CK_INFO(COMP, inf->name, "the server refuses the watch-list stream (%s): paginated lists",
                err.message);
        pthread_mutex_lock(&inf->mu);
        inf->watchlist_refused = true;
        pthread_mutex_unlock(&inf->mu);
        continue;
      }
      fail(r, "watch", &err);
      goto backoff;
    }
    atomic_fetch_add(&inf->watches, 1);
    int next = consume(r, w, &rv, &initial, mark);
    ck_watch_free(w);
    if (next == W_STOP)
      break;
    if (next == W_REOPEN) {
      fails = 0;
      continue;
    }
    if (next == W_RELIST) {
      need_list = true;
      if (fails == 0) {
        fails = 1; /* relist at once the first time, back off after */
        continue;
      }
    }
  backoff:;
    int64_t d = 800;
    for (int i = 0; i < fails && d < cap; i++)
      d *= 2;
    if (d > cap)
      d = cap;
    d = d / 2 + (int64_t)ck_rand_below((uint64_t)(d / 2 + 1));
    fails++;
    if (nap(inf, d))
      break;
  }
  free(rv);
  return NULL;
}

/* ---- public API ---------------------------------------------------------- */

int ck_informer_new(ck_client_t *c, const ck_resource_t *res, const ck_informer_opts_t *opts,
                    ck_informer_t **out, ck_error_t *err) {
  *out = NULL;
  if (!c || !res || !res->resource || !res->version)
    return ck_error_set(err, CK_EINVAL, "informer: client and resource are required");
  ck_informer_opts_t o = opts ? *opts : (ck_informer_opts_t){0};
  ck_informer_t *inf = calloc(1, sizeof *inf);
  if (!inf)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  inf->client = c;
  inf->res = *res;
  inf->opts = o;
  inf->opts.namespaces = NULL;
  inf->opts.label_selector = inf->opts.field_selector = NULL;
  snprintf(inf->name, sizeof inf->name, "%s%s%s", res->group && *res->group ? res->group : "",
           res->group && *res->group ? "/" : "", res->resource);
  snprintf(inf->api_version, sizeof inf->api_version, "%s%s%s",
           res->group && *res->group ? res->group : "", res->group && *res->group ? "/" : "",
           res->version);
  pthread_mutex_init(&inf->mu, NULL);
  pthread_cond_init(&inf->cv, NULL);
  pthread_mutex_init(&inf->hmu, NULL);
  inf->store = ck_store_new();
  bool oom = !inf->store;
  inf->label_selector = dup_or_null(o.label_selector);
  inf->field_selector = dup_or_null(o.field_selector);
  oom |= (o.label_selector && *o.label_selector && !inf->label_selector);
  oom |= (o.field_selector && *o.field_selector && !inf->field_selector);
  size_t nns = res->namespaced ? o.nnamespaces : 0;
  if (nns) {
    inf->namespaces = calloc(nns, sizeof *inf->namespaces);
    oom |= !inf->namespaces;
    for (size_t i = 0; !oom && i < nns; i++) {
      if (!o.namespaces[i] || !*o.namespaces[i]) {
        ck_informer_free(inf);
        return ck_error_set(err, CK_EINVAL, "informer %s: namespace %zu is empty", res->resource,
                            i);
      }
      oom |= !(inf->namespaces[i] = strdup(o.namespaces[i]));
      inf->nnamespaces = i + 1;
    }
  }
  size_t nr = nns ? nns : 1;
  inf->refl = calloc(nr, sizeof *inf->refl);
  oom |= !inf->refl;
  if (oom) {
    ck_informer_free(inf);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  inf->nrefl = nr;
  for (size_t i = 0; i < nr; i++) {
    inf->refl[i].inf = inf;
    inf->refl[i].ns = nns ? inf->namespaces[i] : NULL;
  }
  *out = inf;
  return 0;
}

int ck_informer_add_handler(ck_informer_t *inf, ck_informer_handler_fn fn, void *ctx) {
  return ck_informer_add_handler_flags(inf, fn, ctx, 0);
}

int ck_informer_add_handler_flags(ck_informer_t *inf, ck_informer_handler_fn fn, void *ctx,
                                  unsigned flags) {
  if (!fn || (flags & ~CK_HANDLER_NO_OLD))
    return CK_EINVAL;
  pthread_mutex_lock(&inf->hmu);
  handler_t *n = realloc(inf->handlers, (inf->nhandlers + 1) * sizeof *n);
  if (!n) {
    pthread_mutex_unlock(&inf->hmu);
    return CK_ENOMEM;
  }
  inf->handlers = n;
  /* Replay under the handler lock: live events wait behind the replay. */
  json_t *all = json_array();
  ck_store_list(inf->store, NULL, (int (*)(void *, json_t *))json_array_append, all);
  for (size_t i = 0; i < json_array_size(all); i++)
    fn(ctx, CK_INFORMER_ADD, NULL, json_array_get(all, i));
  json_decref(all);
  int id = inf->next_handler_id++;
  inf->handlers[inf->nhandlers++] = (handler_t){.id = id, .fn = fn, .ctx = ctx, .flags = flags};
  pthread_mutex_unlock(&inf->hmu);
  return id;
}

void ck_informer_remove_handler(ck_informer_t *inf, int id) {
  pthread_mutex_lock(&inf->hmu);
  for (size_t i = 0; i < inf->nhandlers; i++)
    if (inf->handlers[i].id == id) {
      memmove(&inf->handlers[i], &inf->handlers[i + 1],
              (inf->nhandlers - i - 1) * sizeof *inf->handlers);
      inf->nhandlers--;
      break;
    }
  pthread_mutex_unlock(&inf->hmu);
}

int ck_informer_add_index(ck_informer_t *inf, const char *name, ck_index_fn fn, void *ctx) {
  pthread_mutex_lock(&inf->mu);
  bool started = inf->started;
  pthread_mutex_unlock(&inf->mu);
  if (started)
    return CK_EINVAL;
  return ck_store_add_index(inf->store, name, fn, ctx);
}

int ck_informer_start(ck_informer_t *inf) {
  pthread_mutex_lock(&inf->mu);
  if (inf->started) {
    pthread_mutex_unlock(&inf->mu);
    return 0;
  }
  inf->started = true;
  int rc = 0;
  for (size_t i = 0; i < inf->nrefl; i++) {
    if (pthread_create(&inf->refl[i].thread, NULL, reflector_main, &inf->refl[i]) != 0) {
      rc = CK_ENOMEM;
      inf->stopping = true;
      break;
    }
    inf->refl[i].running = true;
  }
  pthread_mutex_unlock(&inf->mu);
  if (rc)
    ck_informer_stop(inf);
  return rc;
}

void ck_informer_stop(ck_informer_t *inf) {
  pthread_mutex_lock(&inf->mu);
  inf->stopping = true;
  pthread_cond_broadcast(&inf->cv);
  pthread_mutex_unlock(&inf->mu);
  for (size_t i = 0; i < inf->nrefl; i++)
    if (inf->refl[i].running) {
      pthread_join(inf->refl[i].thread, NULL);
      inf->refl[i].running = false;
    }
}

void ck_informer_free(ck_informer_t *inf) {
  if (!inf)
    return;
  if (inf->refl)
    ck_informer_stop(inf);
  ck_store_free(inf->store);
  for (size_t i = 0; i < inf->nnamespaces; i++)
    free(inf->namespaces[i]);
  free(inf->namespaces);
  free(inf->refl);
  free(inf->handlers);
  free(inf->label_selector);
  free(inf->field_selector);
  pthread_mutex_destroy(&inf->mu);
  pthread_cond_destroy(&inf->cv);
  pthread_mutex_destroy(&inf->hmu);
  free(inf);
}

static bool all_synced(ck_informer_t *inf) {
  for (size_t i = 0; i < inf->nrefl; i++)
    if (!inf->refl[i].synced)
      return false;
  return true;
}

bool ck_informer_synced(ck_informer_t *inf) {
  pthread_mutex_lock(&inf->mu);
  bool s = all_synced(inf);
  pthread_mutex_unlock(&inf->mu);
  return s;
}

int ck_informer_wait_synced(ck_informer_t *inf, int64_t timeout_ms) {
  struct timespec dl = ck_deadline_after_ms(timeout_ms < 0 ? 0 : timeout_ms);
  pthread_mutex_lock(&inf->mu);
  int rc = 0;
  while (!all_synced(inf)) {
    if (inf->stopping) {
      rc = CK_ECLOSED;
      break;
    }
    if (timeout_ms < 0)
      pthread_cond_wait(&inf->cv, &inf->mu);
    else if (pthread_cond_timedwait(&inf->cv, &inf->mu, &dl) != 0) {
      rc = all_synced(inf) ? 0 : CK_ETIMEDOUT;
      break;
    }
  }
  pthread_mutex_unlock(&inf->mu);
  return rc;
}

bool ck_informer_healthy(ck_informer_t *inf, char *msg, size_t msglen) {
  int64_t limit = inf->opts.unhealthy_after_ms > 0 ? inf->opts.unhealthy_after_ms : 60000;
  int64_t now = ck_now_ms();
  bool ok = true;
  pthread_mutex_lock(&inf->mu);
  if (inf->stopping) {
    ok = false;
    if (msg && msglen)
      snprintf(msg, msglen, "%s: informer stopped", inf->name);
  }
  for (size_t i = 0; ok && i < inf->nrefl; i++) {
    reflector_t *r = &inf->refl[i];
    if (r->failing_since && now - r->failing_since >= limit) {
      ok = false;
      if (msg && msglen)
        snprintf(msg, msglen, "%s%s%s: failing for %llds: %s", inf->name, r->ns ? " in " : "",
                 r->ns ? r->ns : "", (long long)((now - r->failing_since) / 1000), r->last_error);
    }
  }
  pthread_mutex_unlock(&inf->mu);
  return ok;
}

json_t *ck_informer_get(ck_informer_t *inf, const char *ns, const char *name) {
  return ck_informer_get_memo(inf, ns, name, NULL); /* no memo: a plain get */
}

json_t *ck_informer_get_key(ck_informer_t *inf, const char *key) {
  return key ? ck_store_get(inf->store, key) : NULL;
}

size_t ck_informer_len(ck_informer_t *inf) {
  return ck_store_len(inf->store);
}

int ck_informer_list(ck_informer_t *inf, const char *ns, int (*fn)(void *ctx, json_t *obj),
                     void *ctx) {
  return ck_store_list(inf->store, ns, fn, ctx);
}

int ck_informer_snapshot(ck_informer_t *inf, const char *ns, json_t **out) {
  return ck_store_snapshot(inf->store, ns, NULL, out);
}

ck_informer_memo_t *ck_informer_memo_new(void) {
  return ck_store_memo_new();
}

void ck_informer_memo_clear(ck_informer_memo_t *memo) {
  ck_store_memo_clear(memo);
}

void ck_informer_memo_free(ck_informer_memo_t *memo) {
  ck_store_memo_free(memo);
}

void ck_informer_memo_set_reduce(ck_informer_memo_t *memo, ck_informer_reduce_fn fn, void *ctx) {
  ck_store_memo_set_reduce(memo, fn, ctx);
}

int ck_informer_snapshot_memo(ck_informer_t *inf, const char *ns, ck_informer_memo_t *memo,
                              json_t **out) {
  return ck_store_snapshot(inf->store, ns, memo, out);
}

json_t *ck_informer_get_memo(ck_informer_t *inf, const char *ns, const char *name,
                             ck_informer_memo_t *memo) {
  if (!name)
    return NULL;
  if (!ns || !*ns)
    return ck_store_get_memo(inf->store, name, memo);
  char *key = NULL;
  if (asprintf(&key, "%s/%s", ns, name) < 0)
    return NULL;
  json_t *o = ck_store_get_memo(inf->store, key, memo);
  free(key);
  return o;
}

int ck_informer_by_index(ck_informer_t *inf, const char *index, const char *value,
                         int (*fn)(void *ctx, json_t *obj), void *ctx) {
  if (!index || !value)
    return CK_EINVAL;
  return ck_store_by_index(inf->store, index, value, fn, ctx);
}

/* Whether an object not yet cached may be added by observe: only when the
 * informer's selectors surely admit it. Label selectors are never
 * evaluated here; field selectors only when every term is
 * metadata.name=V or metadata.namespace=V (also with ==). */
static bool selectors_admit(const ck_informer_t *inf, const json_t *obj) {
  if (inf->label_selector && *inf->label_selector)
    return false;
  const char *fs = inf->field_selector;
  if (!fs || !*fs)
    return true;
  const char *name = ck_obj_name(obj), *ns = ck_obj_namespace(obj);
  while (*fs) {
    const char *end = strchr(fs, ',');
    size_t len = end ? (size_t)(end - fs) : strlen(fs);
    const char *want = NULL;
    size_t flen = 0;
    if (strncmp(fs, "metadata.name=", 14) == 0) {
      want = name;
      flen = 14;
    } else if (strncmp(fs, "metadata.namespace=", 19) == 0) {
      want = ns;
      flen = 19;
    } else {
      return false;
    }
    const char *v = fs + flen;
    size_t vlen = len - flen;
    if (vlen && *v == '=') {
      v++;
      vlen--;
    }
    if (!want || strlen(want) != vlen || strncmp(want, v, vlen) != 0)
      return false;
    fs += len;
    if (*fs == ',')
      fs++;
  }
  return true;
}

/* memo (may be NULL): keeps what the cache took, by its key. */
static void observe(ck_informer_t *inf, const json_t *obj, ck_informer_memo_t *memo) {
  const char *ns =
      json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
  reflector_t *r = &inf->refl[0];
  if (inf->res.namespaced && inf->nnamespaces) {
    r = NULL;
    for (size_t i = 0; ns && i < inf->nrefl; i++)
      if (strcmp(inf->refl[i].ns, ns) == 0)
        r = &inf->refl[i];
    if (!r)
      return;
  }
  char *key = ck_store_key_of(obj);
  if (!key)
    return;
  /* A key not cached is added only between lists (a list under way
   * decides what exists) and when the selectors take it; the store also
   * refuses it when the watch has delivered its deletion already. */
  pthread_mutex_lock(&inf->mu);
  bool listing = r->listing;
  pthread_mutex_unlock(&inf->mu);
  bool may_add = !listing && selectors_admit(inf, obj);
  json_t *copy = NULL, *kept = NULL;
  if ((may_add || ck_store_has(inf->store, key)) && (copy = json_deep_copy(obj)) != NULL)
    apply_kept(inf, copy, 0, true, true, may_add, memo ? &kept : NULL);
  if (kept)
    ck_store_memo_remember(memo, key, kept);
  json_decref(kept);
  free(key);
}

void ck_informer_observe(ck_informer_t *inf, const json_t *obj) {
  observe(inf, obj, NULL);
}

void ck_informer_observe_memo(ck_informer_t *inf, const json_t *obj, ck_informer_memo_t *memo) {
  observe(inf, obj, memo);
}

const ck_resource_t *ck_informer_resource(const ck_informer_t *inf) {
  return &inf->res;
}

void ck_informer_get_stats(ck_informer_t *inf, ck_informer_stats_t *out) {
  out->events = atomic_load(&inf->events);
  out->lists = atomic_load(&inf->lists);
  out->watches = atomic_load(&inf->watches);
  out->failures = atomic_load(&inf->failures);
  out->bytes = ck_store_bytes(inf->store);
}

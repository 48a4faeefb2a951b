/* Helpers of the informer suites (test_informer.c,
 * test_informer_restart.c): an event recorder, polling, and fixtures. */
#ifndef INFORMER_HELPERS_H
#define INFORMER_HELPERS_H

#include "cktest.h"

#include "crdkit/informer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- an event recorder ----------------------------------------------------- */

typedef struct rec {
  pthread_mutex_t mu;
  int adds, updates, deletes;
  json_t *log; /* ["ADD ns/name rv", ...] */
} rec_t;

static inline void rec_init(rec_t *r) {
  pthread_mutex_init(&r->mu, NULL);
  r->adds = r->updates = r->deletes = 0;
  r->log = json_array();
}

static inline void rec_free(rec_t *r) {
  json_decref(r->log);
  pthread_mutex_destroy(&r->mu);
}

static inline void on_event(void *ctx, ck_informer_event_t ev, const json_t *old, const json_t *obj) {
  rec_t *r = ctx;
  const char *name = cktest_jstr((json_t *)obj, "metadata.name");
  const char *rv = cktest_jstr((json_t *)obj, "metadata.resourceVersion");
  pthread_mutex_lock(&r->mu);
  const char *what = "?";
  if (ev == CK_INFORMER_ADD) {
    r->adds++;
    what = "ADD";
    cr_assert_null(old);
  } else if (ev == CK_INFORMER_UPDATE) {
    r->updates++;
    what = "UPDATE";
    cr_assert_not_null(old, "an update without the old object");
  } else if (ev == CK_INFORMER_DELETE) {
    r->deletes++;
    what = "DELETE";
  }
  char line[256];
  snprintf(line, sizeof line, "%s %s %s", what, name ? name : "?", rv ? rv : "?");
  json_array_append_new(r->log, json_string(line));
  pthread_mutex_unlock(&r->mu);
}

static inline int rec_count(rec_t *r, const char *prefix) {
  pthread_mutex_lock(&r->mu);
  int n = 0;
  size_t i;
  json_t *l;
  json_array_foreach(r->log, i, l) if (strncmp(json_string_value(l), prefix, strlen(prefix)) == 0)
      n++;
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* Wait until cond(ctx) holds, up to seconds. */
static inline bool eventually(double seconds, bool (*cond)(void *), void *ctx) {
  double dl = cktest_now_s() + seconds;
  while (cktest_now_s() < dl) {
    if (cond(ctx))
      return true;
    cktest_sleep_ms(50);
  }
  return cond(ctx);
}

typedef struct probe {
  ck_informer_t *inf;
  const char *ns, *name;
  const char *key, *value; /* data.key == value; value NULL: absent object */
  rec_t *rec;
  const char *prefix;
  int count;
} probe_t;

static inline bool obj_state(void *ctx) {
  probe_t *p = ctx;
  json_t *o = ck_informer_get(p->inf, p->ns, p->name);
  bool ok;
  if (!p->value)
    ok = o == NULL;
  else if (!p->key)
    ok = o != NULL;
  else {
    const char *v = json_string_value(json_object_get(json_object_get(o, "data"), p->key));
    ok = v && strcmp(v, p->value) == 0;
  }
  json_decref(o);
  return ok;
}


static inline ck_informer_t *start_informer(ck_client_t *c, const ck_resource_t *res, const char *ns,
                                     ck_informer_opts_t *o, rec_t *rec) {
  ck_informer_opts_t d = {0};
  if (!o)
    o = &d;
  const char *nss[1] = {ns};
  if (ns && !o->nnamespaces) {
    o->namespaces = nss;
    o->nnamespaces = 1;
  }
  ck_informer_t *inf = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_informer_new(c, res, o, &inf, &err), 0, "informer: %s", err.message);
  if (rec)
    cr_assert(ck_informer_add_handler(inf, on_event, rec) >= 0);
  cr_assert_eq(ck_informer_start(inf), 0);
  cr_assert_eq(ck_informer_wait_synced(inf, 30000), 0, "informer did not sync in 30 s");
  return inf;
}

static inline void create_cms(ck_client_t *c, const char *ns, const char *prefix, int n,
                       const char *labels_json) {
  for (int i = 0; i < n; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s-%d", prefix, i);
    json_t *cm = cktest_configmap(name, "i", "0");
    if (labels_json)
      json_object_set_new(json_object_get(cm, "metadata"), "labels", cktest_json(labels_json));
    ck_error_t err = {0};
    cr_assert_eq(ck_object_create(c, &ck_res_configmaps, ns, cm, NULL, NULL, &err), 0,
                 "create %s: %s", name, err.message);
    json_decref(cm);
  }
}

static inline int count_fn(void *ctx, json_t *obj) {
  (void)obj;
  (*(int *)ctx)++;
  return 0;
}

static inline int ns_count(ck_informer_t *inf, const char *ns) {
  int n = 0;
  cr_assert_eq(ck_informer_list(inf, ns, count_fn, &n), 0);
  return n;
}

#endif

/* Watch streams against the real apiserver: event order, bookmarks and the
 * server's end of stream, 410 Gone after compaction, the watch-list stream
 * (sendInitialEvents), selectors, 403 at open, the per-event bound, many
 * watches on one client, timeouts, and freeing with events pending. */
#include "cktest.h"

#include "crdkit/crd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------ */






static const char *type_name(ck_watch_type_t t) {
  switch (t) {
  case CK_WATCH_ADDED: return "ADDED";
  case CK_WATCH_MODIFIED: return "MODIFIED";
  case CK_WATCH_DELETED: return "DELETED";
  case CK_WATCH_BOOKMARK: return "BOOKMARK";
  case CK_WATCH_ERROR: return "ERROR";
  default: return "?";
  }
}

/* Create a ConfigMap (optionally labelled); returns its resourceVersion
 * (malloc'd). */
static char *create_cm(ck_client_t *c, const char *ns, const char *name, const char *value,
                       const char *label_key, const char *label_value) {
  json_t *cm = cktest_configmap(name, "k", value);
  if (label_key)
    json_object_set_new(json_object_get(cm, "metadata"), "labels",
                        json_pack("{s:s}", label_key, label_value));
  json_t *out = NULL;
  ck_error_t err = {0};
  int rc = ck_object_create(c, &ck_res_configmaps, ns, cm, NULL, &out, &err);
  json_decref(cm);
  cr_assert_eq(rc, 0, "create %s/%s: %s", ns, name, err.message);
  char *rv = strdup(cktest_jstr(out, "metadata.resourceVersion"));
  json_decref(out);
  return rv;
}

static void patch_cm(ck_client_t *c, const char *ns, const char *name, const char *patch) {
  ck_error_t err = {0};
  int rc = ck_object_patch(c, &ck_res_configmaps, ns, name, CK_PATCH_MERGE, patch, NULL, NULL,
                           &err);
  cr_assert_eq(rc, 0, "patch %s/%s: %s", ns, name, err.message);
}

static void delete_cm(ck_client_t *c, const char *ns, const char *name) {
  ck_error_t err = {0};
  int rc = ck_object_delete(c, &ck_res_configmaps, ns, name, NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete %s/%s: %s", ns, name, err.message);
}

/* The list's resourceVersion (malloc'd). */
static char *list_rv(ck_client_t *c, const ck_resource_t *res, const char *ns) {
  json_t *list = NULL;
  ck_error_t err = {0};
  int rc = ck_object_list(c, res, ns, NULL, &list, &err);
  cr_assert_eq(rc, 0, "list %s: %s", res->resource, err.message);
  const char *rv = cktest_jstr(list, "metadata.resourceVersion");
  cr_assert(rv && *rv);
  char *s = strdup(rv);
  json_decref(list);
  return s;
}

static ck_watch_t *open_watch(ck_client_t *c, const ck_resource_t *res, const char *ns,
                              const ck_watch_opts_t *o) {
  ck_watch_t *w = NULL;
  ck_error_t err = {0};
  int rc = ck_watch_open(c, res, ns, o, &w, &err);
  cr_assert_eq(rc, 0, "watch %s in %s: %s", res->resource, ns ? ns : "*", err.message);
  cr_assert_not_null(w);
  return w;
}

/* The next event that is not a bookmark, within timeout_ms in total. */
static int next_event(ck_watch_t *w, int timeout_ms, ck_watch_event_t *ev, ck_error_t *err) {
  double deadline = cktest_now_s() + timeout_ms / 1000.0;
  for (;;) {
    int left = (int)((deadline - cktest_now_s()) * 1000);
    if (left < 0)
      left = 0;
    int rc = ck_watch_next(w, left, ev, err);
    if (rc == 0 && ev->type == CK_WATCH_BOOKMARK) {
      ck_watch_event_clear(ev);
      continue;
    }
    return rc;
  }
}

/* Expect one event of `type` for the object `name`; returns its version. */
static char *expect_event(ck_watch_t *w, ck_watch_type_t type, const char *name) {
  ck_watch_event_t ev;
  ck_error_t err = {0};
  int rc = next_event(w, 15000, &ev, &err);
  cr_assert_eq(rc, 0, "waiting for %s %s: rc %d (%s) %s", type_name(type), name, rc,
               ck_strerror(rc), err.message);
  const char *got = cktest_jstr(ev.object, "metadata.name");
  cr_assert_eq(ev.type, type, "wanted %s %s, got %s %s", type_name(type), name,
               type_name(ev.type), got ? got : "?");
  cr_assert_str_eq(got, name, "wanted %s %s, got %s %s", type_name(type), name,
                   type_name(ev.type), got);
  const char *rv = cktest_jstr(ev.object, "metadata.resourceVersion");
  cr_assert(rv && *rv);
  cr_assert_str_eq(ck_watch_resource_version(w), rv, "the watch tracks the event's version");
  char *s = strdup(rv);
  ck_watch_event_clear(&ev);
  cr_assert_null(ev.object);
  return s;
}

/* Nothing but bookmarks for `ms`. */
static void expect_quiet(ck_watch_t *w, int ms) {
  ck_watch_event_t ev;
  ck_error_t err = {0};
  int rc = next_event(w, ms, &ev, &err);
  cr_assert_eq(rc, CK_ETIMEDOUT, "expected no event, got rc %d type %s name %s", rc,
               rc == 0 ? type_name(ev.type) : "-",
               rc == 0 ? cktest_jstr(ev.object, "metadata.name") : err.message);
}

/* Versions from etcd are integers; they only grow. */
static long long rv_num(const char *rv) {
  char *end;
  long long v = strtoll(rv, &end, 10);
  cr_assert(end != rv && *end == '\0', "resourceVersion %s", rv);
  return v;
}

static void crd_create(ck_client_t *c, const char *group) {
  char text[2048];
  snprintf(text, sizeof text,
           "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
           "\"metadata\":{\"name\":\"widgets.%s\"},"
           "\"spec\":{\"group\":\"%s\",\"scope\":\"Namespaced\","
           "\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\",\"kind\":\"Widget\","
           "\"listKind\":\"WidgetList\"},"
           "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
           "\"subresources\":{\"status\":{}},"
           "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
           "\"spec\":{\"type\":\"object\",\"properties\":{\"size\":{\"type\":\"integer\"}}},"
           "\"status\":{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":\"string\"}}}"
           "}}}}]}}",
           group, group);
  json_t *crd = cktest_json(text);
  ck_error_t err = {0};
  int rc = ck_object_create(c, &ck_res_crds, NULL, crd, NULL, NULL, &err);
  json_decref(crd);
  cr_assert_eq(rc, 0, "create CRD: %s", err.message);
  char name[256];
  snprintf(name, sizeof name, "widgets.%s", group);
  rc = ck_crd_wait_established(c, name, 30000, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
}

/* ---- order of events ------------------------------------------------------ */

CK_TEST(watch, added_modified_deleted_in_order) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-order");
  free(create_cm(admin, ns, "before", "0", NULL, NULL));
  char *rv0 = list_rv(admin, &ck_res_configmaps, ns);

  ck_watch_opts_t o = {.resource_version = rv0};
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, ns, &o);
  cr_assert_str_eq(ck_watch_resource_version(w), rv0, "starts from the given version");
  cr_assert_not(ck_watch_initial_events_done(w));

  char *rv_created = create_cm(admin, ns, "w1", "1", NULL, NULL);
  patch_cm(admin, ns, "w1", "{\"data\":{\"k\":\"2\"}}");
  free(create_cm(admin, ns, "w2", "1", NULL, NULL));
  delete_cm(admin, ns, "w1");

  /* "before" existed at rv0: not replayed. */
  char *a = expect_event(w, CK_WATCH_ADDED, "w1");
  cr_assert_str_eq(a, rv_created);
  cr_assert_gt(rv_num(a), rv_num(rv0));
  char *m = expect_event(w, CK_WATCH_MODIFIED, "w1");
  cr_assert_gt(rv_num(m), rv_num(a));
  char *a2 = expect_event(w, CK_WATCH_ADDED, "w2");
  cr_assert_gt(rv_num(a2), rv_num(m));
  char *d = expect_event(w, CK_WATCH_DELETED, "w1");
  cr_assert_gt(rv_num(d), rv_num(a2));
  cr_assert_str_eq(ck_watch_resource_version(w), d);
  expect_quiet(w, 300);

  /* The modified object carries the new data. */
  patch_cm(admin, ns, "w2", "{\"data\":{\"k\":\"changed\"}}");
  ck_watch_event_t ev;
  ck_error_t err = {0};
  int rc = next_event(w, 15000, &ev, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_assert_eq(ev.type, CK_WATCH_MODIFIED);
  cr_assert_str_eq(cktest_jstr(ev.object, "data.k"), "changed");
  cr_assert_str_eq(cktest_jstr(ev.object, "metadata.namespace"), ns);
  cr_assert_str_eq(cktest_jstr(ev.object, "kind"), "ConfigMap");
  ck_watch_event_clear(&ev);
  ck_watch_event_clear(&ev); /* twice is harmless */

  /* Resuming from a version seen: only what came after. */
  char *resume = strdup(ck_watch_resource_version(w));
  ck_watch_free(w);
  delete_cm(admin, ns, "w2");
  o.resource_version = resume;
  w = open_watch(admin, &ck_res_configmaps, ns, &o);
  free(expect_event(w, CK_WATCH_DELETED, "w2"));
  expect_quiet(w, 300);
  ck_watch_free(w);

  /* No version ("most recent"): the server first sends the objects that
   * exist as synthetic ADDED events, then the changes. */
  w = open_watch(admin, &ck_res_configmaps, ns, &(ck_watch_opts_t){0});
  cr_assert_str_eq(ck_watch_resource_version(w), "");
  free(expect_event(w, CK_WATCH_ADDED, "before"));
  free(create_cm(admin, ns, "w3", "1", NULL, NULL));
  free(expect_event(w, CK_WATCH_ADDED, "w3"));
  expect_quiet(w, 300);
  ck_watch_free(w);

  free(resume);
  free(a);
  free(m);
  free(a2);
  free(d);
  free(rv_created);
  free(rv0);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* All namespaces: a namespaced resource without a namespace. */
CK_TEST(watch, all_namespaces) {
  ck_client_t *admin = cktest_client("admin");
  char *ns1 = cktest_ns_create(admin, "watch-all");
  char *ns2 = cktest_ns_create(admin, "watch-all");
  /* From the current version (one item is enough to learn it), so the
   * cluster's existing ConfigMaps are not replayed. */
  json_t *page = NULL;
  ck_error_t lerr = {0};
  int lrc = ck_object_list(admin, &ck_res_configmaps, NULL, &(ck_list_opts_t){.limit = 1}, &page,
                           &lerr);
  cr_assert_eq(lrc, 0, "%s", lerr.message);
  ck_watch_opts_t o = {.resource_version = cktest_jstr(page, "metadata.resourceVersion")};
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, NULL, &o);
  json_decref(page);
  /* Other tests write too: pick ours out of the stream. */
  free(create_cm(admin, ns1, "x1", "1", NULL, NULL));
  free(create_cm(admin, ns2, "x2", "1", NULL, NULL));
  bool seen1 = false, seen2 = false;
  double deadline = cktest_now_s() + 15;
  while (!(seen1 && seen2)) {
    ck_watch_event_t ev;
    ck_error_t err = {0};
    int rc = next_event(w, 1000, &ev, &err);
    cr_assert(rc == 0 || rc == CK_ETIMEDOUT, "rc %d %s", rc, err.message);
    if (rc == 0) {
      const char *n = cktest_jstr(ev.object, "metadata.namespace");
      if (n && strcmp(n, ns1) == 0 && ev.type == CK_WATCH_ADDED)
        seen1 = true;
      if (n && strcmp(n, ns2) == 0 && ev.type == CK_WATCH_ADDED)
        seen2 = true;
      ck_watch_event_clear(&ev);
    }
    cr_assert_lt(cktest_now_s(), deadline, "events from both namespaces: %d %d", seen1, seen2);
  }
  ck_watch_free(w);
  cktest_ns_delete(admin, ns1);
  cktest_ns_delete(admin, ns2);
  ck_client_free(admin);
}

/* ---- bookmarks and the server's end of the stream ---------------------- */

CK_TEST_OPTS(watch, bookmarks_until_server_closes, .timeout = 60) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-bm");
  char *rv0 = list_rv(admin, &ck_res_configmaps, ns);

  ck_watch_opts_t o = {.resource_version = rv0, .timeout_seconds = 5};
  double t0 = cktest_now_s();
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, ns, &o);
  char *rv1 = create_cm(admin, ns, "bm", "1", NULL, NULL);

  int events = 0, bookmarks = 0, rc;
  char last_bookmark[64] = "";
  ck_watch_event_t ev;
  ck_error_t err = {0};
  for (;;) {
    rc = ck_watch_next(w, 1000, &ev, &err);
    if (rc == CK_ETIMEDOUT) {
      cr_assert_lt(cktest_now_s() - t0, 15, "the server did not end the stream within 15 s");
      continue;
    }
    if (rc != 0)
      break;
    if (ev.type == CK_WATCH_BOOKMARK) {
      bookmarks++;
      const char *brv = cktest_jstr(ev.object, "metadata.resourceVersion");
      cr_assert(brv && *brv, "a bookmark carries a version");
      snprintf(last_bookmark, sizeof last_bookmark, "%s", brv);
      cr_assert_str_eq(ck_watch_resource_version(w), brv);
      /* Bookmarks carry only the kind and the version. */
      cr_assert_str_eq(cktest_jstr(ev.object, "kind"), "ConfigMap");
      cr_assert_null(cktest_jpath(ev.object, "metadata.name"));
    } else {
      cr_assert_eq(ev.type, CK_WATCH_ADDED);
      cr_assert_str_eq(cktest_jstr(ev.object, "metadata.name"), "bm");
      events++;
    }
    ck_watch_event_clear(&ev);
  }
  double took = cktest_now_s() - t0;
  cr_assert_eq(rc, CK_ECLOSED, "rc %d (%s): %s", rc, ck_strerror(rc), err.message);
  cr_assert_eq(err.code, CK_ECLOSED);
  cr_assert_geq(took, 3.0, "closed after %.1f s, before timeoutSeconds", took);
  cr_assert_lt(took, 15.0);
  cr_assert_eq(events, 1);
  cr_log_info("stream ended after %.1f s with %d bookmark(s)", took, bookmarks);
  const char *v = ck_watch_resource_version(w);
  cr_assert(v && *v, "a version to resume from");
  if (bookmarks)
    cr_assert_str_eq(v, last_bookmark);
  else
    cr_assert_str_eq(v, rv1);
  cr_assert_geq(rv_num(v), rv_num(rv1));

  /* Finished: later calls say so at once. */
  rc = ck_watch_next(w, 5000, &ev, &err);
  cr_assert_eq(rc, CK_ECLOSED);
  cr_assert_null(ev.object);

  /* Resume from it: what happened in between arrives, nothing twice. */
  char *resume = strdup(v);
  ck_watch_free(w);
  patch_cm(admin, ns, "bm", "{\"data\":{\"k\":\"2\"}}");
  o = (ck_watch_opts_t){.resource_version = resume, .timeout_seconds = 30};
  w = open_watch(admin, &ck_res_configmaps, ns, &o);
  free(expect_event(w, CK_WATCH_MODIFIED, "bm"));
  expect_quiet(w, 300);
  ck_watch_free(w);

  /* Without bookmarks requested, none arrive (and the stream still ends). */
  o = (ck_watch_opts_t){.resource_version = resume, .timeout_seconds = 3, .no_bookmarks = true};
  w = open_watch(admin, &ck_res_configmaps, ns, &o);
  t0 = cktest_now_s();
  for (;;) {
    rc = ck_watch_next(w, 1000, &ev, &err);
    if (rc == CK_ETIMEDOUT) {
      cr_assert_lt(cktest_now_s() - t0, 15, "no end of stream");
      continue;
    }
    if (rc != 0)
      break;
    cr_assert_neq(ev.type, CK_WATCH_BOOKMARK, "a bookmark though none was requested");
    ck_watch_event_clear(&ev);
  }
  cr_assert_eq(rc, CK_ECLOSED, "rc %d: %s", rc, err.message);
  ck_watch_free(w);

  free(resume);
  free(rv1);
  free(rv0);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- 410 Gone --------------------------------------------------------------- */

/* The apiserver serves watches from its watch cache, which keeps recent
 * events whatever etcd compacted; a version older than the cache's window
 * is refused with 410. To make that certain, the watch is on a custom
 * resource whose cache starts (with the CRD) after the old version was
 * taken, and etcd is compacted past it as well. */
CK_TEST_OPTS(watch, gone_after_compaction, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-gone");
  ck_error_t err = {0};

  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "old-%d", i);
    free(create_cm(admin, ns, name, "0", NULL, NULL));
  }
  char *old_rv = list_rv(admin, &ck_res_configmaps, ns);
  for (int i = 0; i < 60; i++) {
    char patch[64];
    snprintf(patch, sizeof patch, "{\"data\":{\"k\":\"%d\"}}", i);
    patch_cm(admin, ns, i % 2 ? "old-1" : "old-2", patch);
  }

  char group[64], av[96];
  snprintf(group, sizeof group, "t%08x.crdkit.io", cktest_rand32());
  snprintf(av, sizeof av, "%s/v1", group);
  crd_create(admin, group);
  const ck_resource_t widgets = {group, "v1", "widgets", "Widget", true};
  json_t *wo = json_pack("{s:s,s:s,s:{s:s},s:{s:i}}", "apiVersion", av, "kind", "Widget",
                         "metadata", "name", "w", "spec", "size", 1);
  int rc;
  double deadline = cktest_now_s() + 15;
  while ((rc = ck_object_create(admin, &widgets, ns, wo, NULL, NULL, &err)) != 0 &&
         ck_error_is_not_found(&err) && cktest_now_s() < deadline)
    cktest_sleep_ms(200);
  cr_assert_eq(rc, 0, "create widget: %s", err.message);
  json_decref(wo);
  for (int i = 0; i < 20; i++) {
    char patch[64];
    snprintf(patch, sizeof patch, "{\"spec\":{\"size\":%d}}", i + 2);
    rc = ck_object_patch(admin, &widgets, ns, "w", CK_PATCH_MERGE, patch, NULL, NULL, &err);
    cr_assert_eq(rc, 0, "patch widget: %s", err.message);
  }

  cktest_control("/compact");

  /* From the old version: 410, at open or as the first event. */
  ck_watch_opts_t o = {.resource_version = old_rv, .timeout_seconds = 30};
  ck_watch_t *w = NULL;
  rc = ck_watch_open(admin, &widgets, ns, &o, &w, &err);
  ck_watch_event_t ev = {0};
  if (rc == 0) {
    cr_assert_not_null(w);
    rc = next_event(w, 15000, &ev, &err);
    if (rc == 0)
      cr_assert_fail("an event from a compacted version: %s %s", type_name(ev.type),
                     cktest_jstr(ev.object, "metadata.name"));
    cr_assert_null(ev.object, "no event object after an ERROR");
  } else {
    cr_assert_null(w);
  }
  cr_assert_eq(rc, CK_EAPI, "rc %d (%s): %s", rc, ck_strerror(rc), err.message);
  cr_assert(ck_error_is_gone(&err), "not gone: HTTP %d %s: %s", err.http_status,
            ck_reason_name(err.reason), err.message);
  cr_assert_eq(err.http_status, 410);
  cr_assert(strstr(err.message, "too old") != NULL || strstr(err.message, "compacted") != NULL,
            "%s", err.message);
  if (w) {
    /* The watch is over after the error. */
    rc = ck_watch_next(w, 1000, &ev, &err);
    cr_assert_eq(rc, CK_ECLOSED, "after the ERROR event: rc %d", rc);
    ck_watch_free(w);
  }

  /* Relist and watch from there: works. */
  char *fresh = list_rv(admin, &widgets, ns);
  o.resource_version = fresh;
  w = open_watch(admin, &widgets, ns, &o);
  rc = ck_object_patch(admin, &widgets, ns, "w", CK_PATCH_MERGE, "{\"spec\":{\"size\":100}}",
                       NULL, NULL, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  rc = next_event(w, 15000, &ev, &err);
  cr_assert_eq(rc, 0, "after relist: %s", err.message);
  cr_assert_eq(ev.type, CK_WATCH_MODIFIED);
  cr_assert_eq(json_integer_value(cktest_jpath(ev.object, "spec.size")), 100);
  ck_watch_event_clear(&ev);
  ck_watch_free(w);

  /* A list at the compacted version is refused with 410 as well (etcd). */
  json_t *list = NULL;
  ck_list_opts_t lo = {.resource_version = old_rv, .resource_version_match = "Exact",
                       .limit = 1};
  rc = ck_object_list(admin, &widgets, ns, &lo, &list, &err);
  cr_assert_eq(rc, CK_EAPI, "exact list at a compacted version: rc %d", rc);
  cr_assert(ck_error_is_gone(&err), "HTTP %d %s: %s", err.http_status,
            ck_reason_name(err.reason), err.message);

  free(fresh);
  free(old_rv);
  char crd_name[128];
  snprintf(crd_name, sizeof crd_name, "widgets.%s", group);
  rc = ck_object_delete(admin, &ck_res_crds, NULL, crd_name, NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete CRD: %s", err.message);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- watch-list: sendInitialEvents ----------------------------------------- */

CK_TEST(watch, watch_list_initial_events) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-list");
  free(create_cm(admin, ns, "a", "1", NULL, NULL));
  free(create_cm(admin, ns, "b", "1", NULL, NULL));
  free(create_cm(admin, ns, "c", "1", NULL, NULL));

  ck_watch_opts_t o = {.send_initial_events = true, .timeout_seconds = 60};
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, ns, &o);
  cr_assert_not(ck_watch_initial_events_done(w));

  bool seen[3] = {false, false, false};
  int added = 0;
  ck_watch_event_t ev;
  ck_error_t err = {0};
  int rc;
  for (;;) {
    rc = ck_watch_next(w, 15000, &ev, &err);
    cr_assert_eq(rc, 0, "initial events: rc %d %s", rc, err.message);
    if (ev.type == CK_WATCH_BOOKMARK) {
      bool done = ck_watch_initial_events_done(w);
      json_t *anns = cktest_jpath(ev.object, "metadata.annotations");
      const char *end = json_string_value(json_object_get(anns, "k8s.io/initial-events-end"));
      cr_assert_eq(done, end && strcmp(end, "true") == 0,
                   "initial_events_done %d but annotation %s", done, end ? end : "(none)");
      ck_watch_event_clear(&ev);
      if (done)
        break;
      continue;
    }
    cr_assert_eq(ev.type, CK_WATCH_ADDED, "initial event of type %s", type_name(ev.type));
    cr_assert_not(ck_watch_initial_events_done(w), "done before the bookmark");
    const char *name = cktest_jstr(ev.object, "metadata.name");
    cr_assert(name && strlen(name) == 1 && name[0] >= 'a' && name[0] <= 'c', "name %s", name);
    cr_assert_not(seen[name[0] - 'a'], "%s twice", name);
    seen[name[0] - 'a'] = true;
    added++;
    ck_watch_event_clear(&ev);
  }
  cr_assert_eq(added, 3);
  cr_assert(ck_watch_initial_events_done(w));
  const char *brv = ck_watch_resource_version(w);
  cr_assert(brv && *brv);

  /* Then the changes. */
  free(create_cm(admin, ns, "d", "1", NULL, NULL));
  free(expect_event(w, CK_WATCH_ADDED, "d"));
  patch_cm(admin, ns, "a", "{\"data\":{\"k\":\"2\"}}");
  free(expect_event(w, CK_WATCH_MODIFIED, "a"));
  cr_assert(ck_watch_initial_events_done(w), "stays done");
  ck_watch_free(w);

  /* From a given version: the state at least that new, then the bookmark. */
  char *rv = list_rv(admin, &ck_res_configmaps, ns);
  ck_watch_opts_t ov = {.send_initial_events = true, .resource_version = rv,
                        .timeout_seconds = 60};
  w = open_watch(admin, &ck_res_configmaps, ns, &ov);
  added = 0;
  for (;;) {
    rc = ck_watch_next(w, 15000, &ev, &err);
    cr_assert_eq(rc, 0, "initial events from %s: %s", rv, err.message);
    bool bm = ev.type == CK_WATCH_BOOKMARK;
    if (!bm) {
      cr_assert_eq(ev.type, CK_WATCH_ADDED);
      added++;
    }
    ck_watch_event_clear(&ev);
    if (bm && ck_watch_initial_events_done(w))
      break;
  }
  cr_assert_eq(added, 4, "a, b, c and d: %d", added);
  cr_assert_geq(rv_num(ck_watch_resource_version(w)), rv_num(rv));
  ck_watch_free(w);
  free(rv);

  /* An empty namespace: just the bookmark. */
  char *empty = cktest_ns_create(admin, "watch-list-empty");
  w = open_watch(admin, &ck_res_configmaps, empty, &o);
  rc = ck_watch_next(w, 15000, &ev, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_assert_eq(ev.type, CK_WATCH_BOOKMARK, "got %s", type_name(ev.type));
  cr_assert(ck_watch_initial_events_done(w));
  ck_watch_event_clear(&ev);
  ck_watch_free(w);

  cktest_ns_delete(admin, empty);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- selectors ---------------------------------------------------------- */

CK_TEST(watch, label_and_field_selectors) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-sel");
  ck_watch_opts_t o = {.label_selector = "app=yes"};
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, ns, &o);
  ck_watch_opts_t fo = {.field_selector = "metadata.name=no-1"};
  ck_watch_t *fw = open_watch(admin, &ck_res_configmaps, ns, &fo);

  free(create_cm(admin, ns, "no-1", "1", NULL, NULL));
  free(create_cm(admin, ns, "yes-1", "1", "app", "yes"));
  free(create_cm(admin, ns, "no-2", "1", "app", "no"));
  free(create_cm(admin, ns, "yes-2", "1", "app", "yes"));
  patch_cm(admin, ns, "no-1", "{\"data\":{\"k\":\"2\"}}");
  patch_cm(admin, ns, "yes-2", "{\"data\":{\"k\":\"2\"}}");
  delete_cm(admin, ns, "yes-1");
  delete_cm(admin, ns, "no-2");

  free(expect_event(w, CK_WATCH_ADDED, "yes-1"));
  free(expect_event(w, CK_WATCH_ADDED, "yes-2"));
  free(expect_event(w, CK_WATCH_MODIFIED, "yes-2"));
  free(expect_event(w, CK_WATCH_DELETED, "yes-1"));
  expect_quiet(w, 300);

  free(expect_event(fw, CK_WATCH_ADDED, "no-1"));
  free(expect_event(fw, CK_WATCH_MODIFIED, "no-1"));
  expect_quiet(fw, 100);
  ck_watch_free(fw);

  /* An object starting to match arrives as ADDED; one that stops matching
   * leaves as DELETED. */
  patch_cm(admin, ns, "no-1", "{\"metadata\":{\"labels\":{\"app\":\"yes\"}}}");
  free(expect_event(w, CK_WATCH_ADDED, "no-1"));
  patch_cm(admin, ns, "yes-2", "{\"metadata\":{\"labels\":{\"app\":null}}}");
  free(expect_event(w, CK_WATCH_DELETED, "yes-2"));
  expect_quiet(w, 300);
  ck_watch_free(w);

  /* A malformed selector: refused at open. */
  ck_watch_t *bad = NULL;
  ck_error_t err = {0};
  o.label_selector = "app in (yes";
  int rc = ck_watch_open(admin, &ck_res_configmaps, ns, &o, &bad, &err);
  cr_assert_eq(rc, CK_EAPI, "rc %d", rc);
  cr_assert_null(bad);
  cr_assert_eq(err.http_status, 400, "HTTP %d: %s", err.http_status, err.message);

  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- refused at open -------------------------------------------------------- */

CK_TEST(watch, forbidden_at_open) {
  ck_client_t *admin = cktest_client("admin");
  ck_client_t *user = cktest_client("user");
  char *ns = cktest_ns_create(admin, "watch-403");
  ck_watch_t *w = (ck_watch_t *)&w; /* must be reset */
  ck_error_t err = {0};
  int rc = ck_watch_open(user, &ck_res_configmaps, ns, NULL, &w, &err);
  cr_assert_eq(rc, CK_EAPI, "rc %d (%s)", rc, ck_strerror(rc));
  cr_assert_null(w);
  cr_assert(ck_error_is_forbidden(&err), "reason %s: %s", ck_reason_name(err.reason),
            err.message);
  cr_assert_eq(err.http_status, 403);
  cr_assert(strstr(err.message, "watch") != NULL, "message names the verb: %s", err.message);

  /* All namespaces and cluster-scoped: refused too. */
  rc = ck_watch_open(user, &ck_res_configmaps, NULL, NULL, &w, &err);
  cr_assert(ck_error_is_forbidden(&err), "rc %d", rc);
  rc = ck_watch_open(user, &ck_res_namespaces, NULL, NULL, &w, &err);
  cr_assert(ck_error_is_forbidden(&err), "rc %d", rc);
  cr_assert_null(w);

  /* A resource the server does not have: 404 at open. */
  const ck_resource_t nothing = {"nosuch.example.com", "v1", "things", "Thing", true};
  rc = ck_watch_open(admin, &nothing, ns, NULL, &w, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_not_found(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert_null(w);

  /* Bad arguments: refused locally. */
  rc = ck_watch_open(admin, &ck_res_configmaps, "a/b", NULL, &w, &err);
  cr_assert_eq(rc, CK_EINVAL);
  cr_assert_null(w);

  cktest_ns_delete(admin, ns);
  ck_client_free(user);
  ck_client_free(admin);
}

/* ---- the per-event bound -------------------------------------------------- */

CK_TEST(watch, event_over_the_bound) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-big");
  ck_watch_opts_t o = {.max_event_bytes = 1024};
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, ns, &o);

  /* Small events pass. */
  free(create_cm(admin, ns, "small", "x", NULL, NULL));
  free(expect_event(w, CK_WATCH_ADDED, "small"));

  char *big = malloc(4097);
  memset(big, 'b', 4096);
  big[4096] = '\0';
  free(create_cm(admin, ns, "big", big, NULL, NULL));
  free(big);

  ck_watch_event_t ev;
  ck_error_t err = {0};
  int rc = next_event(w, 15000, &ev, &err);
  cr_assert_eq(rc, CK_ETOOBIG, "rc %d (%s) %s", rc, ck_strerror(rc), err.message);
  cr_assert_null(ev.object);
  cr_assert(strstr(err.message, "1024") != NULL, "message gives the bound: %s", err.message);
  /* The watch is over. */
  rc = ck_watch_next(w, 1000, &ev, &err);
  cr_assert_eq(rc, CK_ECLOSED, "rc %d", rc);
  ck_watch_free(w);

  /* The client is fine, and a watch with the default bound gets it. */
  ck_watch_t *w2 = open_watch(admin, &ck_res_configmaps, ns,
                              &(ck_watch_opts_t){.send_initial_events = true});
  int n = 0;
  for (;;) {
    rc = ck_watch_next(w2, 15000, &ev, &err);
    cr_assert_eq(rc, 0, "%s", err.message);
    if (ev.type == CK_WATCH_BOOKMARK && ck_watch_initial_events_done(w2)) {
      ck_watch_event_clear(&ev);
      break;
    }
    if (ev.type == CK_WATCH_ADDED) {
      const char *name = cktest_jstr(ev.object, "metadata.name");
      if (strcmp(name, "big") == 0)
        cr_assert_eq(strlen(cktest_jstr(ev.object, "data.k")), 4096);
      n++;
    }
    ck_watch_event_clear(&ev);
  }
  cr_assert_eq(n, 2);
  ck_watch_free(w2);

  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- many watches on one client ------------------------------------------ */

#define NWATCH 20

typedef struct {
  ck_watch_t *w;
  const char *ns;
  int got_added, got_modified, bad;
  char what[256];
} watcher_t;

static void *consume(void *arg) {
  watcher_t *wt = arg;
  double deadline = cktest_now_s() + 30;
  while (!(wt->got_added && wt->got_modified) && cktest_now_s() < deadline) {
    ck_watch_event_t ev;
    ck_error_t err = {0};
    int rc = ck_watch_next(wt->w, 500, &ev, &err);
    if (rc == CK_ETIMEDOUT)
      continue;
    if (rc != 0) {
      snprintf(wt->what, sizeof wt->what, "rc %d %s", rc, err.message);
      wt->bad++;
      break;
    }
    const char *name = cktest_jstr(ev.object, "metadata.name");
    const char *ns = cktest_jstr(ev.object, "metadata.namespace");
    if (ev.type == CK_WATCH_BOOKMARK) {
      /* fine */
    } else if (!name || strcmp(name, "m") != 0 || !ns || strcmp(ns, wt->ns) != 0) {
      snprintf(wt->what, sizeof wt->what, "foreign event %s %s/%s", type_name(ev.type),
               ns ? ns : "?", name ? name : "?");
      wt->bad++;
    } else if (ev.type == CK_WATCH_ADDED && !wt->got_modified) {
      wt->got_added++;
    } else if (ev.type == CK_WATCH_MODIFIED && wt->got_added) {
      wt->got_modified++;
    } else {
      snprintf(wt->what, sizeof wt->what, "unexpected %s", type_name(ev.type));
      wt->bad++;
    }
    ck_watch_event_clear(&ev);
  }
  return NULL;
}

CK_TEST_OPTS(watch, many_watches_one_client, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns[NWATCH];
  watcher_t wt[NWATCH];
  pthread_t th[NWATCH];
  for (int i = 0; i < NWATCH; i++) {
    ns[i] = cktest_ns_create(admin, "watch-many");
    wt[i] = (watcher_t){.ns = ns[i]};
    wt[i].w = open_watch(admin, &ck_res_configmaps, ns[i], &(ck_watch_opts_t){0});
  }
  for (int i = 0; i < NWATCH; i++)
    cr_assert_eq(pthread_create(&th[i], NULL, consume, &wt[i]), 0);
  for (int i = 0; i < NWATCH; i++)
    free(create_cm(admin, ns[i], "m", "1", NULL, NULL));
  for (int i = NWATCH - 1; i >= 0; i--)
    patch_cm(admin, ns[i], "m", "{\"data\":{\"k\":\"2\"}}");
  for (int i = 0; i < NWATCH; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(wt[i].bad, 0, "watch %d: %s", i, wt[i].what);
    cr_assert_eq(wt[i].got_added, 1, "watch %d: ADDED %d times", i, wt[i].got_added);
    cr_assert_eq(wt[i].got_modified, 1, "watch %d: MODIFIED %d times", i, wt[i].got_modified);
  }
  /* Ordinary requests still flow next to the 20 streams. */
  char *rv = list_rv(admin, &ck_res_configmaps, ns[0]);
  free(rv);
  for (int i = 0; i < NWATCH; i++) {
    ck_watch_free(wt[i].w);
    cktest_ns_delete(admin, ns[i]);
  }
  ck_client_free(admin);
}

/* ---- timeouts ------------------------------------------------------------- */

CK_TEST(watch, next_times_out_then_works) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-to");
  ck_watch_opts_t o = {.no_bookmarks = true};
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, ns, &o);

  ck_watch_event_t ev;
  ck_error_t err = {0};
  for (int i = 0; i < 3; i++) {
    double t0 = cktest_now_s();
    int rc = ck_watch_next(w, 100, &ev, &err);
    double took = cktest_now_s() - t0;
    cr_assert_eq(rc, CK_ETIMEDOUT, "rc %d (%s)", rc, ck_strerror(rc));
    cr_assert_null(ev.object);
    cr_assert_geq(took, 0.09, "returned after %.3f s", took);
    cr_assert_lt(took, 2.0, "returned after %.3f s", took);
  }
  /* Zero: a poll. */
  int rc = ck_watch_next(w, 0, &ev, &err);
  cr_assert_eq(rc, CK_ETIMEDOUT);

  free(create_cm(admin, ns, "after", "1", NULL, NULL));
  free(expect_event(w, CK_WATCH_ADDED, "after"));

  /* A waiting call wakes up when the event comes. */
  patch_cm(admin, ns, "after", "{\"data\":{\"k\":\"2\"}}");
  double t0 = cktest_now_s();
  rc = ck_watch_next(w, -1, &ev, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_assert_eq(ev.type, CK_WATCH_MODIFIED);
  cr_assert_lt(cktest_now_s() - t0, 10.0);
  ck_watch_event_clear(&ev);

  rc = ck_watch_next(w, 100, &ev, &err);
  cr_assert_eq(rc, CK_ETIMEDOUT);
  ck_watch_free(w);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* A stream with no byte for idle_timeout_s is dead: CK_ETRANSPORT. */
CK_TEST_OPTS(watch, idle_timeout_detects_silence, .timeout = 60) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-idle");
  char *rv = list_rv(admin, &ck_res_configmaps, ns);
  ck_watch_opts_t o = {.resource_version = rv, .no_bookmarks = true, .idle_timeout_s = 2,
                       .timeout_seconds = 60};
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, ns, &o);
  /* Activity keeps it alive past the idle time. */
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "tick-%d", i);
    cktest_sleep_ms(1000);
    free(create_cm(admin, ns, name, "1", NULL, NULL));
    free(expect_event(w, CK_WATCH_ADDED, name));
  }
  /* Then silence. */
  double t0 = cktest_now_s();
  ck_watch_event_t ev;
  ck_error_t err = {0};
  int rc;
  while ((rc = ck_watch_next(w, 1000, &ev, &err)) == CK_ETIMEDOUT)
    cr_assert_lt(cktest_now_s() - t0, 20, "a silent stream was not detected");
  double took = cktest_now_s() - t0;
  cr_assert_eq(rc, CK_ETRANSPORT, "rc %d (%s): %s", rc, ck_strerror(rc), err.message);
  /* "No byte for idle_timeout_s": detected about then, not several seconds
   * later. */
  cr_assert_geq(took, 1.5, "dead after %.1f s", took);
  cr_assert_lt(took, 3.5, "silence detected only after %.1f s (idle_timeout_s 2)", took);
  cr_assert(strstr(err.message, "no data") != NULL || strstr(err.message, "dead") != NULL,
            "%s", err.message);
  rc = ck_watch_next(w, 100, &ev, &err);
  cr_assert_eq(rc, CK_ECLOSED);
  /* Resuming from the last version works. */
  char *resume = strdup(ck_watch_resource_version(w));
  ck_watch_free(w);
  free(create_cm(admin, ns, "after", "1", NULL, NULL));
  o.resource_version = resume;
  o.idle_timeout_s = 0;
  w = open_watch(admin, &ck_res_configmaps, ns, &o);
  free(expect_event(w, CK_WATCH_ADDED, "after"));
  ck_watch_free(w);
  free(resume);
  free(rv);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- freeing ------------------------------------------------------------- */

CK_TEST(watch, free_with_events_pending) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "watch-free");
  char *rv0 = list_rv(admin, &ck_res_configmaps, ns);
  for (int i = 0; i < 30; i++) {
    char name[16];
    snprintf(name, sizeof name, "p-%02d", i);
    free(create_cm(admin, ns, name, "some value", NULL, NULL));
  }
  /* Replayed from rv0: 30 events queue up; take one, leave the rest. */
  ck_watch_opts_t o = {.resource_version = rv0};
  ck_watch_t *w = open_watch(admin, &ck_res_configmaps, ns, &o);
  free(expect_event(w, CK_WATCH_ADDED, "p-00"));
  cktest_sleep_ms(500);
  ck_watch_free(w);

  /* Freed right after open, nothing read. */
  w = open_watch(admin, &ck_res_configmaps, ns, &o);
  ck_watch_free(w);
  ck_watch_free(NULL);

  /* An event taken and not cleared before free: the caller owns it. */
  w = open_watch(admin, &ck_res_configmaps, ns, &o);
  ck_watch_event_t ev;
  ck_error_t err = {0};
  int rc = next_event(w, 15000, &ev, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  ck_watch_free(w);
  cr_assert_str_eq(cktest_jstr(ev.object, "metadata.name"), "p-00", "the event outlives the watch");
  ck_watch_event_clear(&ev);

  /* Many opened and freed in a row, with events flowing: the client stays
   * healthy. */
  for (int i = 0; i < 10; i++) {
    w = open_watch(admin, &ck_res_configmaps, ns, &o);
    if (i % 2)
      ck_watch_next(w, 50, &ev, &err), ck_watch_event_clear(&ev);
    ck_watch_free(w);
  }
  char *rv1 = list_rv(admin, &ck_res_configmaps, ns);
  w = open_watch(admin, &ck_res_configmaps, ns, &(ck_watch_opts_t){.resource_version = rv1});
  free(rv1);
  free(create_cm(admin, ns, "last", "1", NULL, NULL));
  free(expect_event(w, CK_WATCH_ADDED, "last"));
  ck_watch_free(w);

  free(rv0);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- decoding ------------------------------------------------------------ */

CK_TEST(watch, event_decode) {
  ck_watch_event_t ev;
  ck_error_t err = {0};
  const char *l = "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":"
                  "{\"name\":\"x\",\"resourceVersion\":\"5\"}}}";
  cr_assert_eq(ck_watch_event_decode(l, strlen(l), &ev, &err), 0, "%s", err.message);
  cr_assert_eq(ev.type, CK_WATCH_ADDED);
  cr_assert_str_eq(cktest_jstr(ev.object, "metadata.name"), "x");
  ck_watch_event_clear(&ev);

  static const struct {
    const char *type;
    ck_watch_type_t want;
  } types[] = {{"MODIFIED", CK_WATCH_MODIFIED},
               {"DELETED", CK_WATCH_DELETED},
               {"BOOKMARK", CK_WATCH_BOOKMARK},
               {"ERROR", CK_WATCH_ERROR}};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    char line[256];
    snprintf(line, sizeof line, "{\"type\":\"%s\",\"object\":{\"kind\":\"X\"}}", types[i].type);
    cr_assert_eq(ck_watch_event_decode(line, strlen(line), &ev, &err), 0);
    cr_assert_eq(ev.type, types[i].want);
    ck_watch_event_clear(&ev);
  }
  static const char *const bad[] = {
      "not json",
      "{\"type\":\"ADDED\"}",
      "{\"object\":{}}",
      "{\"type\":\"WEIRD\",\"object\":{}}",
      "{\"type\":\"ADDED\",\"object\":[]}",
      "{\"type\":5,\"object\":{}}",
      "[]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = ck_watch_event_decode(bad[i], strlen(bad[i]), &ev, &err);
    cr_assert_eq(rc, CK_EPARSE, "%s: rc %d", bad[i], rc);
    cr_assert_null(ev.object);
    cr_assert_eq(ev.type, 0);
  }
  /* Only `len` bytes count. */
  cr_assert_eq(ck_watch_event_decode(l, 10, &ev, &err), CK_EPARSE);
}

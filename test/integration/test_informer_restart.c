/* Informers across apiserver restarts, in their own binary run with one
 * job: a restart would break whatever else runs at the same time.
 * - after a restart the cache converges;
 * - cut off while objects change and vanish, then 410 Gone: the relist
 *   delivers exactly the difference, deletes included. */
#include "cktest.h"

#include "crdkit/informer.h"
#include "informer_helpers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 410 and restarts -------------------------------------------------------- */

static void crd_create(ck_client_t *admin, const char *group) {
  json_t *crd = json_pack(
      "{s:s,s:s,s:{s:s+},s:{s:s,s:s,s:{s:s,s:s,s:s},s:[{s:s,s:b,s:b,s:{s:{s:s,s:b}}}]}}",
      "apiVersion", "apiextensions.k8s.io/v1", "kind", "CustomResourceDefinition", "metadata",
      "name", "widgets.", group, "spec", "group", group, "scope", "Namespaced", "names", "plural",
      "widgets", "singular", "widget", "kind", "Widget", "versions", "name", "v1", "served", 1,
      "storage", 1, "schema", "openAPIV3Schema", "type", "object",
      "x-kubernetes-preserve-unknown-fields", 1);
  ck_error_t err = {0};
  cr_assert_eq(ck_object_create(admin, &ck_res_crds, NULL, crd, NULL, NULL, &err), 0, "crd: %s",
               err.message);
  json_decref(crd);
}

static void widget_create(ck_client_t *c, const ck_resource_t *res, const char *ns,
                          const char *name, int size) {
  char av[160];
  snprintf(av, sizeof av, "%s/v1", res->group);
  json_t *o = json_pack("{s:s,s:s,s:{s:s},s:{s:i}}", "apiVersion", av, "kind", "Widget",
                        "metadata", "name", name, "spec", "size", size);
  ck_error_t err = {0};
  int rc;
  double dl = cktest_now_s() + 20;
  while ((rc = ck_object_create(c, res, ns, o, NULL, NULL, &err)) != 0 &&
         ck_error_is_not_found(&err) && cktest_now_s() < dl)
    cktest_sleep_ms(200);
  cr_assert_eq(rc, 0, "create widget %s: %s", name, err.message);
  json_decref(o);
}

static void wait_apiserver(ck_client_t *admin) {
  double dl = cktest_now_s() + 60;
  while (cktest_now_s() < dl) {
    if (ck_object_list(admin, &ck_res_namespaces, NULL, &(ck_list_opts_t){.limit = 1}, NULL,
                       NULL) == 0)
      return;
    cktest_sleep_ms(200);
  }
  cr_assert_fail("the apiserver did not come back");
}

typedef struct sizes {
  ck_informer_t *inf;
  const char *ns;
  int n;         /* expected number of objects */
  const char *name;
  int size;      /* expected spec.size of name */
} sizes_t;

static bool converged(void *ctx) {
  sizes_t *s = ctx;
  if ((int)ck_informer_len(s->inf) != s->n)
    return false;
  json_t *o = ck_informer_get(s->inf, s->ns, s->name);
  bool ok = o && json_integer_value(cktest_jpath(o, "spec.size")) == s->size;
  json_decref(o);
  return ok;
}

/* The informer is cut off (its connections go through a relay the test
 * blocks) while objects change and vanish; the apiserver restarts (its
 * watch cache starts over at the current version) and etcd is compacted,
 * so the informer's version is gone: it must relist and deliver exactly
 * the difference, deletes included. */
CK_TEST_OPTS(informer, relist_after_410_delivers_the_difference, .timeout = 240) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-gone");
  char group[64];
  snprintf(group, sizeof group, "g%08x.crdkit.io", cktest_rand32());
  crd_create(admin, group);
  const ck_resource_t widgets = {group, "v1", "widgets", "Widget", true};
  for (int i = 0; i < 6; i++) {
    char name[16];
    snprintf(name, sizeof name, "w%d", i);
    widget_create(admin, &widgets, ns, name, i);
  }

  cktest_proxy_t *px = cktest_proxy_start(cktest_env("CRDKIT_TEST_APISERVER"));
  ck_client_opts_t co = {.max_retries = -1, .connect_timeout_ms = 1000};
  ck_client_t *cut = cktest_client_via_proxy(px, &co);
  rec_t rec;
  rec_init(&rec);
  ck_informer_opts_t o = {.backoff_max_ms = 1000};
  ck_informer_t *inf = start_informer(cut, &widgets, ns, &o, &rec);
  cr_assert_eq(ck_informer_len(inf), 6);

  cktest_proxy_block(px, true);
  ck_error_t err = {0};
  cr_assert_eq(ck_object_delete(admin, &widgets, ns, "w1", NULL, NULL, &err), 0, "%s",
               err.message);
  cr_assert_eq(ck_object_delete(admin, &widgets, ns, "w2", NULL, NULL, &err), 0);
  cr_assert_eq(ck_object_patch(admin, &widgets, ns, "w3", CK_PATCH_MERGE,
                               "{\"spec\":{\"size\":33}}", NULL, NULL, &err),
               0);
  widget_create(admin, &widgets, ns, "w9", 9);
  cktest_control("/apiserver/restart");
  wait_apiserver(admin);
  /* Move etcd on and compact past the informer's version. */
  for (int i = 0; i < 5; i++)
    cr_assert_eq(ck_object_patch(admin, &widgets, ns, "w4", CK_PATCH_MERGE,
                                 "{\"spec\":{\"size\":4}}", NULL, NULL, &err),
                 0, "%s", err.message);
  cktest_control("/compact");
  cktest_proxy_block(px, false);

  sizes_t s = {.inf = inf, .ns = ns, .n = 5, .name = "w3", .size = 33};
  cr_assert(eventually(90, converged, &s), "no convergence: %zu objects",
            ck_informer_len(inf));
  json_t *w9 = ck_informer_get(inf, ns, "w9");
  cr_assert_not_null(w9);
  json_decref(w9);
  cr_assert_eq(rec_count(&rec, "DELETE w1 "), 1, "the delete of w1 was not delivered");
  cr_assert_eq(rec_count(&rec, "DELETE w2 "), 1);
  cr_assert_eq(rec_count(&rec, "DELETE"), 2, "only the vanished objects are deleted");
  cr_assert_eq(rec_count(&rec, "ADD w9 "), 1);
  cr_assert_eq(rec_count(&rec, "UPDATE w3 "), 1);
  cr_assert_eq(rec_count(&rec, "ADD w0 "), 1, "an unchanged object was delivered again");
  cr_assert_eq(rec_count(&rec, "UPDATE w0 "), 0, "an unchanged object was delivered again");
  ck_informer_stats_t st;
  ck_informer_get_stats(inf, &st);
  cr_assert_geq(st.lists, 2, "no relist happened");

  ck_informer_free(inf);
  ck_client_free(cut);
  cktest_proxy_stop(px);
  rec_free(&rec);
  char *crdname = cktest_asprintf("widgets.%s", group);
  ck_object_delete(admin, &ck_res_crds, NULL, crdname, NULL, NULL, NULL);
  free(crdname);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(informer, converges_after_apiserver_restart, .timeout = 180) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-restart");
  create_cms(admin, ns, "r", 5, NULL);
  ck_client_opts_t co = {.max_retries = -1};
  ck_client_t *c = cktest_client_opts("admin", &co);
  ck_informer_opts_t o = {.backoff_max_ms = 1000};
  ck_informer_t *inf = start_informer(c, &ck_res_configmaps, ns, &o, NULL);
  cr_assert_eq(ns_count(inf, ns), 5);
  cktest_control("/apiserver/restart");
  wait_apiserver(admin);
  ck_error_t err = {0};
  cr_assert_eq(ck_object_delete(admin, &ck_res_configmaps, ns, "r-0", NULL, NULL, &err), 0);
  cr_assert_eq(ck_object_patch(admin, &ck_res_configmaps, ns, "r-1", CK_PATCH_MERGE,
                               "{\"data\":{\"i\":\"restarted\"}}", NULL, NULL, &err),
               0);
  probe_t p = {.inf = inf, .ns = ns, .name = "r-1", .key = "i", .value = "restarted"};
  cr_assert(eventually(60, obj_state, &p), "the change after the restart did not arrive");
  probe_t g = {.inf = inf, .ns = ns, .name = "r-0", .value = NULL};
  cr_assert(eventually(20, obj_state, &g));
  cr_assert_eq(ns_count(inf, ns), 4);
  char msg[256];
  cr_assert(ck_informer_healthy(inf, msg, sizeof msg), "%s", msg);
  ck_informer_free(inf);
  ck_client_free(c);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

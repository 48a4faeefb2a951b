/* Finalizers and the status subresource against the real apiserver:
 * guarded JSON patches, retries after a concurrent change, objects that
 * disappear with their last finalizer, and status writes that skip no-op
 * updates and report stale versions as conflicts. */
#include "cktest.h"

#include "crdkit/crd.h"

#include "crdkit/objects.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIN_A "objtest.crdkit.io/a"
#define FIN_B "objtest.crdkit.io/b"
#define FIN_C "objtest.crdkit.io/c"

static json_t *must_get_cm(ck_client_t *c, const char *ns, const char *name) {
  json_t *out = NULL;
  ck_error_t err = {0};
  int rc = ck_object_get(c, &ck_res_configmaps, ns, name, NULL, &out, &err);
  cr_assert_eq(rc, 0, "get %s/%s: %s", ns, name, err.message);
  return out;
}

static size_t nfinalizers(json_t *obj) {
  return json_array_size(cktest_jpath(obj, "metadata.finalizers"));
}

/* ---- finalizers ------------------------------------------------------------- */

CK_TEST_OPTS(objects, finalizer_lifecycle, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "obj-fin");
  ck_error_t err = {0};
  json_t *v1 = cktest_configmap_create(admin, ns, "cm", "k", "v");
  cr_assert_null(cktest_jpath(v1, "metadata.finalizers"));

  /* No finalizers array yet: created. */
  json_t *v2 = NULL;
  int rc = ck_finalizer_add(admin, &ck_res_configmaps, v1, FIN_A, &v2, &err);
  cr_assert_eq(rc, 0, "add A: %s", err.message);
  cr_assert(ck_finalizer_has(v2, FIN_A));
  cr_assert_eq(nfinalizers(v2), 1);
  cr_assert_str_neq(ck_obj_resource_version(v2), ck_obj_resource_version(v1));

  /* Already there: no write, the object comes back as it was. */
  json_t *same = NULL;
  rc = ck_finalizer_add(admin, &ck_res_configmaps, v2, FIN_A, &same, &err);
  cr_assert_eq(rc, 0, "add A again: %s", err.message);
  cr_assert_str_eq(ck_obj_resource_version(same), ck_obj_resource_version(v2));
  json_decref(same);
  json_t *now = must_get_cm(admin, ns, "cm");
  cr_assert_str_eq(ck_obj_resource_version(now), ck_obj_resource_version(v2));
  json_decref(now);

  /* Appended to an existing array. */
  json_t *v3 = NULL;
  rc = ck_finalizer_add(admin, &ck_res_configmaps, v2, FIN_B, &v3, &err);
  cr_assert_eq(rc, 0, "add B: %s", err.message);
  cr_assert_eq(nfinalizers(v3), 2);
  cr_assert_str_eq(json_string_value(json_array_get(cktest_jpath(v3, "metadata.finalizers"), 1)),
                   FIN_B);

  /* The assumption the retry relies on: a JSON patch whose "test" of the
   * resourceVersion fails is refused (the server answers 422, not 409). */
  char *stale_patch = cktest_asprintf(
      "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"%s\"},"
      "{\"op\":\"add\",\"path\":\"/data/x\",\"value\":\"y\"}]",
      ck_obj_resource_version(v1));
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "cm", CK_PATCH_JSON, stale_patch, NULL,
                       NULL, &err);
  free(stale_patch);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(err.http_status == 422 || err.http_status == 409, "HTTP %d", err.http_status);

  /* From a stale copy (v1 predates A and B): the guard fails, the helper
   * re-reads and retries, and nothing written meanwhile is lost. */
  json_t *v4 = NULL;
  rc = ck_finalizer_add(admin, &ck_res_configmaps, v1, FIN_C, &v4, &err);
  cr_assert_eq(rc, 0, "add C from a stale copy: %s", err.message);
  cr_assert_eq(nfinalizers(v4), 3);
  cr_assert(ck_finalizer_has(v4, FIN_A) && ck_finalizer_has(v4, FIN_B) &&
            ck_finalizer_has(v4, FIN_C));

  /* Remove from a stale copy (v3 lacks C): B goes, A and C stay. */
  json_t *v5 = NULL;
  rc = ck_finalizer_remove(admin, &ck_res_configmaps, v3, FIN_B, &v5, &err);
  cr_assert_eq(rc, 0, "remove B: %s", err.message);
  cr_assert_eq(nfinalizers(v5), 2);
  cr_assert_not(ck_finalizer_has(v5, FIN_B));
  cr_assert(ck_finalizer_has(v5, FIN_A) && ck_finalizer_has(v5, FIN_C));

  /* Removing one that is absent: no write. */
  json_t *v5b = NULL;
  rc = ck_finalizer_remove(admin, &ck_res_configmaps, v5, FIN_B, &v5b, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(ck_obj_resource_version(v5b), ck_obj_resource_version(v5));
  json_decref(v5b);

  /* Delete: the finalizers hold the object, now marked as deleting. */
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "cm", NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete: %s", err.message);
  json_t *dying = must_get_cm(admin, ns, "cm");
  cr_assert(ck_obj_is_deleting(dying));
  cr_assert_not(ck_obj_is_deleting(v5));

  /* A new finalizer on a deleting object is refused by the server. */
  rc = ck_finalizer_add(admin, &ck_res_configmaps, dying, FIN_B, NULL, &err);
  cr_assert_eq(rc, CK_EAPI, "adding to a deleting object should fail");
  cr_assert_not(ck_error_is_conflict(&err), "%s", err.message);

  json_t *v6 = NULL;
  rc = ck_finalizer_remove(admin, &ck_res_configmaps, dying, FIN_A, &v6, &err);
  cr_assert_eq(rc, 0, "remove A: %s", err.message);
  cr_assert_eq(nfinalizers(v6), 1);

  /* The last one: the object goes away; out is what the server said. */
  json_t *v7 = NULL;
  rc = ck_finalizer_remove(admin, &ck_res_configmaps, v6, FIN_C, &v7, &err);
  cr_assert_eq(rc, 0, "remove C: %s", err.message);
  cr_assert_not_null(v7);
  cr_assert_str_eq(ck_obj_name(v7), "cm");
  cr_assert_eq(nfinalizers(v7), 0);
  json_t *gone = NULL;
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "cm", NULL, &gone, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_not_found(&err));

  /* Gone: removing is done (out NULL); adding is NotFound. */
  json_t *after = json_incref(v6);
  rc = ck_finalizer_remove(admin, &ck_res_configmaps, v6, FIN_C, &after, &err);
  cr_assert_eq(rc, 0, "remove from a gone object: %s", err.message);
  cr_assert_null(after);
  json_decref(v6); /* the extra reference taken for `after` */
  rc = ck_finalizer_add(admin, &ck_res_configmaps, v6, FIN_B, &after, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_not_found(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert_null(after);

  json_decref(v1);
  json_decref(v2);
  json_decref(v3);
  json_decref(v4);
  json_decref(v5);
  json_decref(v6);
  json_decref(v7);
  json_decref(dying);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST(objects, finalizer_bad_arguments_and_name_only) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "obj-finarg");
  ck_error_t err = {0};
  json_t *cm = cktest_configmap_create(admin, ns, "named", "k", "v");

  cr_assert_eq(ck_finalizer_add(NULL, &ck_res_configmaps, cm, FIN_A, NULL, &err), CK_EINVAL);
  cr_assert_eq(ck_finalizer_add(admin, NULL, cm, FIN_A, NULL, &err), CK_EINVAL);
  cr_assert_eq(ck_finalizer_add(admin, &ck_res_configmaps, NULL, FIN_A, NULL, &err), CK_EINVAL);
  cr_assert_eq(ck_finalizer_add(admin, &ck_res_configmaps, cm, "", NULL, &err), CK_EINVAL);
  cr_assert_eq(ck_finalizer_remove(admin, &ck_res_configmaps, cm, NULL, NULL, &err), CK_EINVAL);
  json_t *no_ns = cktest_json("{\"metadata\":{\"name\":\"named\"}}");
  cr_assert_eq(ck_finalizer_add(admin, &ck_res_configmaps, no_ns, FIN_A, NULL, &err), CK_EINVAL);
  json_decref(no_ns);

  /* Only name and namespace: the helper reads the object first. */
  json_t *ref = json_pack("{s:{s:s,s:s}}", "metadata", "name", "named", "namespace", ns);
  json_t *out = NULL;
  int rc = ck_finalizer_add(admin, &ck_res_configmaps, ref, FIN_A, &out, &err);
  cr_assert_eq(rc, 0, "add by name: %s", err.message);
  cr_assert(ck_finalizer_has(out, FIN_A));
  json_decref(out);
  rc = ck_finalizer_remove(admin, &ck_res_configmaps, ref, FIN_A, &out, &err);
  cr_assert_eq(rc, 0, "remove by name: %s", err.message);
  cr_assert_not(ck_finalizer_has(out, FIN_A));
  cr_assert_str_eq(cktest_jstr(out, "data.k"), "v");
  json_decref(out);
  json_decref(ref);

  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

typedef struct racer {
  ck_client_t *c;
  json_t *obj; /* the same stale copy for everyone */
  char fin[64];
  int rc;
  ck_error_t err;
} racer_t;

static void *race_add(void *arg) {
  racer_t *r = arg;
  r->rc = ck_finalizer_add(r->c, &ck_res_configmaps, r->obj, r->fin, NULL, &r->err);
  return NULL;
}

CK_TEST_OPTS(objects, finalizer_concurrent_adds, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "obj-race");
  json_t *cm = cktest_configmap_create(admin, ns, "race", "k", "v");
  /* Four writers from one copy: each loses at most three races, within
   * the five attempts. */
  enum { N = 4 };
  racer_t rs[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    rs[i] = (racer_t){.c = admin, .obj = cm};
    snprintf(rs[i].fin, sizeof rs[i].fin, "objtest.crdkit.io/racer-%d", i);
    cr_assert_eq(pthread_create(&th[i], NULL, race_add, &rs[i]), 0);
  }
  for (int i = 0; i < N; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < N; i++)
    cr_assert_eq(rs[i].rc, 0, "racer %d: %s", i, rs[i].err.message);
  json_t *now = must_get_cm(admin, ns, "race");
  cr_assert_eq(nfinalizers(now), N);
  for (int i = 0; i < N; i++)
    cr_assert(ck_finalizer_has(now, rs[i].fin), "%s lost", rs[i].fin);

  /* Clean up so the namespace can go. */
  ck_error_t err = {0};
  for (int i = 0; i < N; i++)
    cr_assert_eq(ck_finalizer_remove(admin, &ck_res_configmaps, now, rs[i].fin, NULL, &err), 0,
                 "%s", err.message);
  json_decref(now);
  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- status subresource ---------------------------------------------------- */

static void crd_create(ck_client_t *c, const char *group) {
  char *text = cktest_asprintf(
      "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
      "\"metadata\":{\"name\":\"gadgets.%s\"},"
      "\"spec\":{\"group\":\"%s\",\"scope\":\"Namespaced\","
      "\"names\":{\"plural\":\"gadgets\",\"singular\":\"gadget\",\"kind\":\"Gadget\","
      "\"listKind\":\"GadgetList\"},"
      "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
      "\"subresources\":{\"status\":{}},"
      "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
      "\"spec\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true},"
      "\"status\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}"
      "}}}}]}}",
      group, group);
  json_t *crd = cktest_json(text);
  free(text);
  ck_error_t err = {0};
  int rc = ck_object_create(c, &ck_res_crds, NULL, crd, NULL, NULL, &err);
  json_decref(crd);
  cr_assert_eq(rc, 0, "create CRD: %s", err.message);

  char name[128];
  snprintf(name, sizeof name, "gadgets.%s", group);
  rc = ck_crd_wait_established(c, name, 30000, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
}

CK_TEST_OPTS(objects, status_update, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "obj-status");
  ck_error_t err = {0};
  char group[64];
  snprintf(group, sizeof group, "objtest%08x.crdkit.io", cktest_rand32());
  crd_create(admin, group);
  const ck_resource_t gadgets = {group, "v1", "gadgets", "Gadget", true};

  char *av = cktest_asprintf("%s/v1", group);
  json_t *g = json_pack("{s:s,s:s,s:{s:s},s:{s:i}}", "apiVersion", av, "kind", "Gadget",
                        "metadata", "name", "g1", "spec", "size", 1);
  free(av);
  json_t *v1 = NULL;
  int rc;
  /* Established comes slightly before the storage serves. */
  double deadline = cktest_now_s() + 15;
  while ((rc = ck_object_create(admin, &gadgets, ns, g, NULL, &v1, &err)) != 0 &&
         ck_error_is_not_found(&err) && cktest_now_s() < deadline)
    cktest_sleep_ms(200);
  cr_assert_eq(rc, 0, "create gadget: %s", err.message);
  json_decref(g);
  cr_assert_null(json_object_get(v1, "status"));

  /* No status on the object and an empty one wanted: nothing to write. */
  json_t *empty = json_object();
  json_t *out = NULL;
  rc = ck_status_update(admin, &gadgets, v1, empty, &out, &err);
  cr_assert_eq(rc, 0, "empty status: %s", err.message);
  cr_assert_eq(out, v1, "no request: the object itself comes back");
  json_decref(out);
  json_decref(empty);

  /* Status with conditions through /status; a spec change in the local
   * copy does not travel with it. */
  json_t *local = json_deep_copy(v1);
  json_object_set_new(json_object_get(local, "spec"), "size", json_integer(99));
  json_t *st = json_pack("{s:s}", "phase", "Ready");
  ck_condition_t ready = {.type = "Ready", .status = "True", .reason = "AllGood",
                          .observed_generation = ck_obj_generation(v1)};
  cr_assert_eq(ck_condition_set(st, &ready, 0), 1);
  json_t *v2 = NULL;
  rc = ck_status_update(admin, &gadgets, local, st, &v2, &err);
  cr_assert_eq(rc, 0, "status update: %s", err.message);
  cr_assert_str_eq(cktest_jstr(v2, "status.phase"), "Ready");
  cr_assert(ck_condition_is_true(json_object_get(v2, "status"), "Ready"));
  cr_assert_eq(json_integer_value(cktest_jpath(v2, "spec.size")), 1);
  cr_assert_str_neq(ck_obj_resource_version(v2), ck_obj_resource_version(v1));
  json_t *got = NULL;
  rc = ck_object_get(admin, &gadgets, ns, "g1", NULL, &got, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(cktest_jstr(got, "status.phase"), "Ready");
  cr_assert_eq(json_integer_value(cktest_jpath(got, "spec.size")), 1);
  json_decref(got);
  json_decref(local);

  /* The same status again: no request, the version stays. */
  json_t *st_same = json_deep_copy(st);
  json_t *v3 = NULL;
  rc = ck_status_update(admin, &gadgets, v2, st_same, &v3, &err);
  cr_assert_eq(rc, 0);
  cr_assert_eq(v3, v2);
  rc = ck_object_get(admin, &gadgets, ns, "g1", NULL, &got, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(ck_obj_resource_version(got), ck_obj_resource_version(v2));
  json_decref(got);
  json_decref(v3);
  json_decref(st_same);

  /* From a stale copy (v1): a conflict, and nothing written. */
  json_t *st2 = json_pack("{s:s}", "phase", "Stale");
  rc = ck_status_update(admin, &gadgets, v1, st2, &out, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_conflict(&err), "reason %s (HTTP %d): %s", ck_reason_name(err.reason),
            err.http_status, err.message);
  cr_assert_null(out);
  rc = ck_object_get(admin, &gadgets, ns, "g1", NULL, &got, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(cktest_jstr(got, "status.phase"), "Ready");
  json_decref(got);

  /* The fresh copy writes; replacing drops fields no longer wanted. */
  json_t *v4 = NULL;
  rc = ck_status_update(admin, &gadgets, v2, st2, &v4, &err);
  cr_assert_eq(rc, 0, "status update 2: %s", err.message);
  cr_assert_str_eq(cktest_jstr(v4, "status.phase"), "Stale");
  cr_assert_null(cktest_jpath(v4, "status.conditions"));

  /* Bad arguments, and no resourceVersion to guard the write with. */
  json_t *bad = json_pack("{s:s}", "phase", "x");
  json_t *no_rv = json_deep_copy(v4);
  json_object_del(json_object_get(no_rv, "metadata"), "resourceVersion");
  cr_assert_eq(ck_status_update(admin, &gadgets, no_rv, bad, NULL, &err), CK_EINVAL);
  cr_assert_eq(ck_status_update(admin, &gadgets, v4, NULL, NULL, &err), CK_EINVAL);
  cr_assert_eq(ck_status_update(NULL, &gadgets, v4, bad, NULL, &err), CK_EINVAL);
  json_decref(no_rv);
  json_decref(bad);

  json_decref(st2);
  json_decref(st);
  json_decref(v1);
  json_decref(v2);
  json_decref(v4);
  rc = ck_object_delete(admin, &gadgets, ns, "g1", NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete gadget: %s", err.message);
  char crd_name[128];
  snprintf(crd_name, sizeof crd_name, "gadgets.%s", group);
  rc = ck_object_delete(admin, &ck_res_crds, NULL, crd_name, NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete CRD: %s", err.message);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

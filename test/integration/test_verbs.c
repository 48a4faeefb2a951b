/* The verbs against the real apiserver: get, list (paging, selectors),
 * create, replace, patch (three kinds), server-side apply, delete
 * (preconditions, dry run), field validation, Invalid causes, the status
 * subresource of a custom resource, discovery, 401/403, and the URL paths. */
#include "cktest.h"

#include "crdkit/crd.h"

#include "crdkit/config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

/* A small namespaced CRD with a status subresource, in a group unique to
 * this run. Waits until it is Established. */
static void crd_create(ck_client_t *c, const char *group, const char *kind, const char *plural) {
  char lower[64];
  snprintf(lower, sizeof lower, "%s", kind);
  for (char *p = lower; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  char text[2048];
  snprintf(text, sizeof text,
           "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
           "\"metadata\":{\"name\":\"%s.%s\"},"
           "\"spec\":{\"group\":\"%s\",\"scope\":\"Namespaced\","
           "\"names\":{\"plural\":\"%s\",\"singular\":\"%s\",\"kind\":\"%s\",\"listKind\":\"%sList\"},"
           "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
           "\"subresources\":{\"status\":{}},"
           "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
           "\"spec\":{\"type\":\"object\",\"properties\":{\"size\":{\"type\":\"integer\"}}},"
           "\"status\":{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":\"string\"}}}"
           "}}}}]}}",
           plural, group, group, plural, lower, kind, kind);
  json_t *crd = cktest_json(text);
  ck_error_t err = {0};
  int rc = ck_object_create(c, &ck_res_crds, NULL, crd, NULL, NULL, &err);
  json_decref(crd);
  cr_assert_eq(rc, 0, "create CRD %s.%s: %s", plural, group, err.message);

  char name[256];
  snprintf(name, sizeof name, "%s.%s", plural, group);
  rc = ck_crd_wait_established(c, name, 30000, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
}

static void crd_delete(ck_client_t *c, const char *group, const char *plural) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s", plural, group);
  ck_error_t err = {0};
  int rc = ck_object_delete(c, &ck_res_crds, NULL, name, NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete CRD %s: %s", name, err.message);
}

/* ---- get / create / replace / delete ----------------------------------- */

CK_TEST(verbs, get_create_replace_delete) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-crud");
  ck_error_t err = {0};

  json_t *got = NULL;
  int rc = ck_object_get(admin, &ck_res_configmaps, ns, "crud", NULL, &got, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_not_found(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert_eq(err.http_status, 404);
  cr_assert_null(got);
  cr_assert(strstr(err.message, "crud") != NULL, "message names the object: %s", err.message);

  json_t *created = cktest_configmap_create(admin, ns, "crud", "k", "v1");
  cr_assert_str_eq(cktest_jstr(created, "metadata.namespace"), ns);
  const char *rv1 = cktest_jstr(created, "metadata.resourceVersion");
  cr_assert(rv1 && *rv1);
  cr_assert(cktest_jstr(created, "metadata.uid") != NULL);

  /* A second create of the same name: AlreadyExists (409). */
  json_t *again = cktest_configmap("crud", "k", "other");
  rc = ck_object_create(admin, &ck_res_configmaps, ns, again, NULL, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_already_exists(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert_not(ck_error_is_conflict(&err));
  cr_assert_eq(err.http_status, 409);
  json_decref(again);

  rc = ck_object_get(admin, &ck_res_configmaps, ns, "crud", NULL, &got, &err);
  cr_assert_eq(rc, 0, "get: %s", err.message);
  cr_assert_str_eq(cktest_jstr(got, "data.k"), "v1");
  cr_assert_str_eq(cktest_jstr(got, "metadata.resourceVersion"), rv1);

  /* Replace with the fresh resourceVersion: ok, version moves. */
  json_t *v2 = json_deep_copy(got);
  json_object_set_new(json_object_get(v2, "data"), "k", json_string("v2"));
  json_t *replaced = NULL;
  rc = ck_object_replace(admin, &ck_res_configmaps, ns, "crud", v2, NULL, &replaced, &err);
  cr_assert_eq(rc, 0, "replace: %s", err.message);
  cr_assert_str_eq(cktest_jstr(replaced, "data.k"), "v2");
  cr_assert_str_neq(cktest_jstr(replaced, "metadata.resourceVersion"), rv1);

  /* Replace again with the now stale version: 409 Conflict. */
  json_t *stale = json_deep_copy(got);
  json_object_set_new(json_object_get(stale, "data"), "k", json_string("stale"));
  rc = ck_object_replace(admin, &ck_res_configmaps, ns, "crud", stale, NULL, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_conflict(&err), "reason %s: %s", ck_reason_name(err.reason), err.message);
  cr_assert_eq(err.http_status, 409);

  /* With the fresh version from the replace: ok. */
  json_object_set(cktest_jpath(stale, "metadata"), "resourceVersion",
                  cktest_jpath(replaced, "metadata.resourceVersion"));
  json_t *r3 = NULL;
  rc = ck_object_replace(admin, &ck_res_configmaps, ns, "crud", stale, NULL, &r3, &err);
  cr_assert_eq(rc, 0, "replace with the fresh version: %s", err.message);
  cr_assert_str_eq(cktest_jstr(r3, "data.k"), "stale");
  json_decref(r3);
  json_decref(stale);
  json_decref(replaced);
  json_decref(v2);
  json_decref(got);

  /* Replace of an object that does not exist: NotFound. */
  json_t *ghost = cktest_configmap("ghost", "k", "v");
  rc = ck_object_replace(admin, &ck_res_configmaps, ns, "ghost", ghost, NULL, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_not_found(&err), "reason %s", ck_reason_name(err.reason));
  json_decref(ghost);

  /* Delete returns the object (or a Status); then NotFound everywhere. */
  json_t *del = NULL;
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "crud", NULL, &del, &err);
  cr_assert_eq(rc, 0, "delete: %s", err.message);
  cr_assert_not_null(del);
  json_decref(del);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "crud", NULL, &got, &err);
  cr_assert(ck_error_is_not_found(&err), "after delete: rc %d", rc);
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "crud", NULL, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_not_found(&err), "second delete: reason %s", ck_reason_name(err.reason));

  /* Bad arguments never reach the server. */
  rc = ck_object_get(admin, &ck_res_configmaps, NULL, "crud", NULL, &got, &err);
  cr_assert_eq(rc, CK_EINVAL);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "a/b", NULL, &got, &err);
  cr_assert_eq(rc, CK_EINVAL);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, NULL, NULL, &got, &err);
  cr_assert_eq(rc, CK_EINVAL);
  json_t *cm = cktest_configmap("x", "k", "v");
  rc = ck_object_create(admin, &ck_res_configmaps, NULL, cm, NULL, NULL, &err);
  cr_assert_eq(rc, CK_EINVAL);
  rc = ck_object_create(admin, &ck_res_configmaps, "../kube-system", cm, NULL, NULL, &err);
  cr_assert_eq(rc, CK_EINVAL);
  json_decref(cm);

  json_decref(created);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- list: paging over more than 1,000 objects, selectors -------------- */

#define NCM 1050
#define NTHREADS 10

typedef struct {
  ck_client_t *c;
  const char *ns;
  int first, step;
  int failures;
  ck_error_t err;
} filler_t;

static void *fill(void *arg) {
  filler_t *f = arg;
  for (int i = f->first; i < NCM; i += f->step) {
    char name[32], val[16];
    snprintf(name, sizeof name, "cm-%04d", i);
    snprintf(val, sizeof val, "%d", i);
    json_t *cm = cktest_configmap(name, "i", val);
    json_t *labels = json_pack("{s:s}", "parity", i % 2 ? "odd" : "even");
    if (i % 50 == 0)
      json_object_set_new(labels, "tier", json_string("gold"));
    json_object_set_new(json_object_get(cm, "metadata"), "labels", labels);
    ck_error_t e = {0};
    if (ck_object_create(f->c, &ck_res_configmaps, f->ns, cm, NULL, NULL, &e) != 0) {
      if (f->failures++ == 0)
        f->err = e;
    }
    json_decref(cm);
  }
  return NULL;
}

typedef struct {
  unsigned char seen[NCM];
  int count, dups, bad;
  int stop_after;
} counter_t;

static int count_item(void *ctx, json_t *item) {
  counter_t *k = ctx;
  const char *name = cktest_jstr(item, "metadata.name");
  int i = -1;
  if (!name || sscanf(name, "cm-%d", &i) != 1 || i < 0 || i >= NCM) {
    k->bad++;
  } else if (k->seen[i]++) {
    k->dups++;
  }
  k->count++;
  if (k->stop_after && k->count == k->stop_after)
    return 7;
  return 0;
}

CK_TEST_OPTS(verbs, list_paging_and_selectors, .timeout = 180) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-list");
  ck_error_t err = {0};

  double t0 = cktest_now_s();
  pthread_t th[NTHREADS];
  filler_t fl[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    fl[i] = (filler_t){.c = admin, .ns = ns, .first = i, .step = NTHREADS};
    cr_assert_eq(pthread_create(&th[i], NULL, fill, &fl[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(fl[i].failures, 0, "thread %d: %d creates failed, first: %s", i,
                 fl[i].failures, fl[i].err.message);
  }
  cr_log_info("created %d ConfigMaps in %.1f s", NCM, cktest_now_s() - t0);

  /* Every item exactly once, over the default page size (500). */
  counter_t *k = calloc(1, sizeof *k);
  char *rv = NULL;
  int rc = ck_object_list_each(admin, &ck_res_configmaps, ns, NULL, count_item, k, &rv, &err);
  cr_assert_eq(rc, 0, "list_each: %s", err.message);
  /* kube-root-ca.crt is not there without the controller-manager; count
   * only ours. */
  cr_assert_eq(k->count - k->bad, NCM, "items %d (foreign %d)", k->count, k->bad);
  cr_assert_eq(k->dups, 0, "%d items came twice", k->dups);
  for (int i = 0; i < NCM; i++)
    cr_assert_eq(k->seen[i], 1, "cm-%04d seen %d times", i, k->seen[i]);
  cr_assert(rv && *rv, "the list's resourceVersion");
  free(rv);

  /* Smaller pages: same result. */
  memset(k, 0, sizeof *k);
  ck_list_opts_t lo = {.limit = 100};
  rc = ck_object_list_each(admin, &ck_res_configmaps, ns, &lo, count_item, k, NULL, &err);
  cr_assert_eq(rc, 0, "list_each limit 100: %s", err.message);
  cr_assert_eq(k->count - k->bad, NCM);
  cr_assert_eq(k->dups, 0);

  /* The callback stops the walk: its value comes back, no version. */
  memset(k, 0, sizeof *k);
  k->stop_after = 600;
  rv = (char *)"untouched";
  rc = ck_object_list_each(admin, &ck_res_configmaps, ns, NULL, count_item, k, &rv, &err);
  cr_assert_eq(rc, 7);
  cr_assert_eq(k->count, 600);
  cr_assert_null(rv);

  /* The pages themselves: 500 + 500 + 50 with continue tokens. */
  int pages = 0, total = 0;
  char *cont = NULL;
  do {
    ck_list_opts_t po = {.limit = 500, .continue_token = cont};
    json_t *page = NULL;
    rc = ck_object_list(admin, &ck_res_configmaps, ns, &po, &page, &err);
    cr_assert_eq(rc, 0, "page %d: %s", pages, err.message);
    free(cont);
    cont = NULL;
    size_t n = json_array_size(json_object_get(page, "items"));
    const char *next = cktest_jstr(page, "metadata.continue");
    cr_assert_str_eq(cktest_jstr(page, "kind"), "ConfigMapList");
    if (pages < 2) {
      cr_assert_eq(n, 500, "page %d has %zu items", pages, n);
      cr_assert(next && *next, "page %d has no metadata.continue", pages);
    }
    if (next && *next)
      cont = strdup(next);
    total += (int)n;
    pages++;
    json_decref(page);
  } while (cont && pages < 10);
  cr_assert_null(cont);
  cr_assert_eq(pages, 3);
  cr_assert_geq(total, NCM);

  /* Without a limit ck_object_list returns everything at once. */
  json_t *all = NULL;
  rc = ck_object_list(admin, &ck_res_configmaps, ns, NULL, &all, &err);
  cr_assert_eq(rc, 0, "list: %s", err.message);
  cr_assert_geq(json_array_size(json_object_get(all, "items")), (size_t)NCM);
  cr_assert_null(cktest_jstr(all, "metadata.continue"));
  json_decref(all);

  /* Label selectors: equality, set-based, conjunction. */
  memset(k, 0, sizeof *k);
  ck_list_opts_t ls = {.label_selector = "tier=gold"};
  rc = ck_object_list_each(admin, &ck_res_configmaps, ns, &ls, count_item, k, NULL, &err);
  cr_assert_eq(rc, 0, "selector: %s", err.message);
  cr_assert_eq(k->count, NCM / 50);
  for (int i = 0; i < NCM; i++)
    cr_assert_eq(k->seen[i], i % 50 == 0, "cm-%04d with tier=gold", i);

  memset(k, 0, sizeof *k);
  ls = (ck_list_opts_t){.label_selector = "parity in (odd),tier!=gold", .limit = 200};
  rc = ck_object_list_each(admin, &ck_res_configmaps, ns, &ls, count_item, k, NULL, &err);
  cr_assert_eq(rc, 0, "set selector: %s", err.message);
  cr_assert_eq(k->count, NCM / 2, "odd ones: %d", k->count);
  for (int i = 0; i < NCM; i++)
    cr_assert_eq(k->seen[i], i % 2 == 1);

  memset(k, 0, sizeof *k);
  ls = (ck_list_opts_t){.label_selector = "parity=even,tier=gold"};
  rc = ck_object_list_each(admin, &ck_res_configmaps, ns, &ls, count_item, k, NULL, &err);
  cr_assert_eq(rc, 0);
  cr_assert_eq(k->count, NCM / 50, "every 50th is even: %d", k->count);

  /* A malformed selector: 400 from the server. */
  ls = (ck_list_opts_t){.label_selector = "tier in (gold"};
  rc = ck_object_list_each(admin, &ck_res_configmaps, ns, &ls, count_item, k, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert_eq(err.http_status, 400, "status %d: %s", err.http_status, err.message);

  /* Field selectors. */
  json_t *one = NULL;
  ck_list_opts_t fs = {.field_selector = "metadata.name=cm-0042"};
  rc = ck_object_list(admin, &ck_res_configmaps, ns, &fs, &one, &err);
  cr_assert_eq(rc, 0, "field selector: %s", err.message);
  cr_assert_eq(json_array_size(json_object_get(one, "items")), 1);
  cr_assert_str_eq(cktest_jstr(json_array_get(json_object_get(one, "items"), 0), "metadata.name"),
                   "cm-0042");
  cr_assert_str_eq(cktest_jstr(json_array_get(json_object_get(one, "items"), 0), "data.i"), "42");
  json_decref(one);

  memset(k, 0, sizeof *k);
  fs = (ck_list_opts_t){.field_selector = "metadata.name!=cm-0042", .label_selector = "tier=gold"};
  rc = ck_object_list_each(admin, &ck_res_configmaps, ns, &fs, count_item, k, NULL, &err);
  cr_assert_eq(rc, 0);
  cr_assert_eq(k->count, NCM / 50, "cm-0042 is not gold anyway: %d", k->count);

  memset(k, 0, sizeof *k);
  fs = (ck_list_opts_t){.field_selector = "metadata.name=cm-0050", .label_selector = "tier=gold"};
  rc = ck_object_list_each(admin, &ck_res_configmaps, ns, &fs, count_item, k, NULL, &err);
  cr_assert_eq(rc, 0);
  cr_assert_eq(k->count, 1);
  cr_assert_eq(k->seen[50], 1);

  /* Unsupported field: 400. */
  fs = (ck_list_opts_t){.field_selector = "data.i=1"};
  rc = ck_object_list(admin, &ck_res_configmaps, ns, &fs, &one, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert_eq(err.http_status, 400, "status %d: %s", err.http_status, err.message);

  /* A list at an exact version taken earlier still sees that state. */
  json_t *p1 = NULL;
  ck_list_opts_t lim = {.limit = 1};
  rc = ck_object_list(admin, &ck_res_configmaps, ns, &lim, &p1, &err);
  cr_assert_eq(rc, 0);
  char *rv_then = strdup(cktest_jstr(p1, "metadata.resourceVersion"));
  json_decref(p1);
  json_decref(cktest_configmap_create(admin, ns, "zz-after", "k", "v"));
  json_t *exact = NULL;
  ck_list_opts_t ex = {.resource_version = rv_then, .resource_version_match = "Exact",
                       .field_selector = "metadata.name=zz-after"};
  rc = ck_object_list(admin, &ck_res_configmaps, ns, &ex, &exact, &err);
  cr_assert_eq(rc, 0, "exact list: %s", err.message);
  cr_assert_eq(json_array_size(json_object_get(exact, "items")), 0,
               "the object created later is not in the list at %s", rv_then);
  cr_assert_str_eq(cktest_jstr(exact, "metadata.resourceVersion"), rv_then);
  json_decref(exact);
  free(rv_then);

  free(k);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
  cr_log_info("list test took %.1f s", cktest_now_s() - t0);
}

/* ---- patch --------------------------------------------------------------- */

CK_TEST(verbs, patch_merge_json_strategic) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-patch");
  ck_error_t err = {0};

  json_t *cm = cktest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                           "\"metadata\":{\"name\":\"p\",\"ownerReferences\":[{"
                           "\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"owner-a\","
                           "\"uid\":\"00000000-0000-0000-0000-00000000000a\"}]},"
                           "\"data\":{\"a\":\"1\",\"b\":\"2\"}}");
  int rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, NULL, &err);
  cr_assert_eq(rc, 0, "create: %s", err.message);
  json_decref(cm);

  /* JSON merge patch: null deletes, new keys are added. */
  json_t *out = NULL;
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", CK_PATCH_MERGE,
                       "{\"data\":{\"a\":null,\"c\":\"3\"},\"metadata\":{\"labels\":{\"m\":\"1\"}}}",
                       NULL, &out, &err);
  cr_assert_eq(rc, 0, "merge patch: %s", err.message);
  cr_assert_null(cktest_jpath(out, "data.a"));
  cr_assert_str_eq(cktest_jstr(out, "data.b"), "2");
  cr_assert_str_eq(cktest_jstr(out, "data.c"), "3");
  cr_assert_str_eq(cktest_jstr(out, "metadata.labels.m"), "1");
  json_decref(out);

  /* JSON patch with a passing test op. */
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", CK_PATCH_JSON,
                       "[{\"op\":\"test\",\"path\":\"/data/b\",\"value\":\"2\"},"
                       "{\"op\":\"replace\",\"path\":\"/data/b\",\"value\":\"20\"},"
                       "{\"op\":\"add\",\"path\":\"/data/d\",\"value\":\"4\"},"
                       "{\"op\":\"remove\",\"path\":\"/data/c\"}]",
                       NULL, &out, &err);
  cr_assert_eq(rc, 0, "json patch: %s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "data.b"), "20");
  cr_assert_str_eq(cktest_jstr(out, "data.d"), "4");
  cr_assert_null(cktest_jpath(out, "data.c"));
  char *rv = strdup(cktest_jstr(out, "metadata.resourceVersion"));
  json_decref(out);

  /* A failing test op: the whole patch is refused, nothing changes. */
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", CK_PATCH_JSON,
                       "[{\"op\":\"replace\",\"path\":\"/data/d\",\"value\":\"changed\"},"
                       "{\"op\":\"test\",\"path\":\"/data/b\",\"value\":\"wrong\"}]",
                       NULL, &out, &err);
  cr_assert_eq(rc, CK_EAPI, "failing test op: rc %d", rc);
  cr_assert_null(out);
  /* The apiserver answers 422 Invalid with a generic message here. */
  cr_assert_eq(err.http_status, 422, "status %d %s: %s", err.http_status,
               ck_reason_name(err.reason), err.message);
  cr_assert(ck_error_is_invalid(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert(err.message[0] != '\0');
  json_t *got = NULL;
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "p", NULL, &got, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(cktest_jstr(got, "data.d"), "4");
  cr_assert_str_eq(cktest_jstr(got, "metadata.resourceVersion"), rv);
  json_decref(got);
  free(rv);

  /* A JSON patch that is not an array: 400-class error. */
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", CK_PATCH_JSON, "{\"op\":\"add\"}",
                       NULL, &out, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(err.http_status >= 400 && err.http_status < 500, "status %d", err.http_status);

  /* Strategic merge: ownerReferences merge by uid (a merge patch would
   * replace the list). */
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", CK_PATCH_STRATEGIC,
                       "{\"metadata\":{\"ownerReferences\":[{\"apiVersion\":\"v1\","
                       "\"kind\":\"ConfigMap\",\"name\":\"owner-b\","
                       "\"uid\":\"00000000-0000-0000-0000-00000000000b\"}]},"
                       "\"data\":{\"e\":\"5\"}}",
                       NULL, &out, &err);
  cr_assert_eq(rc, 0, "strategic merge patch: %s", err.message);
  json_t *owners = cktest_jpath(out, "metadata.ownerReferences");
  cr_assert_eq(json_array_size(owners), 2, "both owners kept: %zu", json_array_size(owners));
  cr_assert_str_eq(cktest_jstr(out, "data.e"), "5");
  cr_assert_str_eq(cktest_jstr(out, "data.b"), "20");
  json_decref(out);

  /* The same list through a merge patch replaces it. */
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", CK_PATCH_MERGE,
                       "{\"metadata\":{\"ownerReferences\":[{\"apiVersion\":\"v1\","
                       "\"kind\":\"ConfigMap\",\"name\":\"owner-c\","
                       "\"uid\":\"00000000-0000-0000-0000-00000000000c\"}]}}",
                       NULL, &out, &err);
  cr_assert_eq(rc, 0, "merge patch of the list: %s", err.message);
  owners = cktest_jpath(out, "metadata.ownerReferences");
  cr_assert_eq(json_array_size(owners), 1);
  cr_assert_str_eq(cktest_jstr(json_array_get(owners, 0), "name"), "owner-c");
  json_decref(out);

  /* Strategic $patch: delete directive on a map key. */
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", CK_PATCH_STRATEGIC,
                       "{\"data\":{\"e\":null}}", NULL, &out, &err);
  cr_assert_eq(rc, 0, "strategic delete: %s", err.message);
  cr_assert_null(cktest_jpath(out, "data.e"));
  json_decref(out);

  /* Patch of a missing object: NotFound. Bad patch type: EINVAL. */
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "nope", CK_PATCH_MERGE, "{}", NULL, &out,
                       &err);
  cr_assert(ck_error_is_not_found(&err), "rc %d", rc);
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", (ck_patch_type_t)9, "{}", NULL, &out,
                       &err);
  cr_assert_eq(rc, CK_EINVAL);
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "p", CK_PATCH_MERGE, NULL, NULL, &out, &err);
  cr_assert_eq(rc, CK_EINVAL);

  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- server-side apply --------------------------------------------------- */

/* The managedFields entry of `manager` (borrowed) or NULL. */
static json_t *managed_entry(json_t *obj, const char *manager) {
  size_t i;
  json_t *e;
  json_array_foreach(cktest_jpath(obj, "metadata.managedFields"), i, e) {
    const char *m = cktest_jstr(e, "manager");
    if (m && strcmp(m, manager) == 0)
      return e;
  }
  return NULL;
}

static bool owns_data_key(json_t *obj, const char *manager, const char *key) {
  json_t *e = managed_entry(obj, manager);
  char fk[64];
  snprintf(fk, sizeof fk, "f:%s", key);
  return e && json_object_get(json_object_get(json_object_get(e, "fieldsV1"), "f:data"), fk);
}

CK_TEST(verbs, server_side_apply_conflict_and_force) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-apply");
  ck_error_t err = {0};

  /* No field manager: refused locally. */
  json_t *a = cktest_json("{\"data\":{\"shared\":\"from-alpha\",\"mine\":\"a\"}}");
  int rc = ck_object_apply(admin, &ck_res_configmaps, ns, "ssa", a, NULL, NULL, &err);
  cr_assert_eq(rc, CK_EINVAL);

  /* apiVersion, kind and metadata.name are filled in from res and name. */
  ck_write_opts_t alpha = {.field_manager = "alpha"};
  json_t *out = NULL;
  rc = ck_object_apply(admin, &ck_res_configmaps, ns, "ssa", a, &alpha, &out, &err);
  cr_assert_eq(rc, 0, "apply alpha: %s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "data.shared"), "from-alpha");
  cr_assert(owns_data_key(out, "alpha", "shared"));
  cr_assert_null(json_object_get(a, "kind"), "the caller's object is not modified");
  json_decref(out);

  /* Applying again with the same manager is idempotent. */
  rc = ck_object_apply(admin, &ck_res_configmaps, ns, "ssa", a, &alpha, &out, &err);
  cr_assert_eq(rc, 0, "re-apply alpha: %s", err.message);
  json_decref(out);

  /* A second manager sets the same field: 409 Conflict naming the owner. */
  json_t *b = cktest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                          "\"metadata\":{\"name\":\"ssa\"},\"data\":{\"shared\":\"from-beta\"}}");
  ck_write_opts_t beta = {.field_manager = "beta"};
  rc = ck_object_apply(admin, &ck_res_configmaps, ns, "ssa", b, &beta, &out, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_conflict(&err), "reason %s: %s", ck_reason_name(err.reason), err.message);
  cr_assert_eq(err.http_status, 409);
  cr_assert(strstr(err.message, "alpha") != NULL, "message names the owner: %s", err.message);
  cr_assert_null(out);

  /* Dry run + force: validated, not persisted. */
  ck_write_opts_t dry = {.field_manager = "beta", .force = true, .dry_run = true};
  rc = ck_object_apply(admin, &ck_res_configmaps, ns, "ssa", b, &dry, &out, &err);
  cr_assert_eq(rc, 0, "dry-run forced apply: %s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "data.shared"), "from-beta");
  json_decref(out);
  json_t *got = NULL;
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "ssa", NULL, &got, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(cktest_jstr(got, "data.shared"), "from-alpha");
  json_decref(got);

  /* With force: beta takes the field over; alpha keeps the rest. */
  ck_write_opts_t force = {.field_manager = "beta", .force = true};
  rc = ck_object_apply(admin, &ck_res_configmaps, ns, "ssa", b, &force, &out, &err);
  cr_assert_eq(rc, 0, "forced apply: %s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "data.shared"), "from-beta");
  cr_assert_str_eq(cktest_jstr(out, "data.mine"), "a");
  cr_assert(owns_data_key(out, "beta", "shared"), "beta owns data.shared");
  cr_assert_not(owns_data_key(out, "alpha", "shared"), "alpha lost data.shared");
  cr_assert(owns_data_key(out, "alpha", "mine"), "alpha keeps data.mine");
  json_t *be = managed_entry(out, "beta");
  cr_assert_str_eq(cktest_jstr(be, "operation"), "Apply");
  json_decref(out);

  /* Now alpha is the one in conflict. */
  rc = ck_object_apply(admin, &ck_res_configmaps, ns, "ssa", a, &alpha, &out, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_conflict(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert(strstr(err.message, "beta") != NULL, "message names the new owner: %s", err.message);

  json_decref(a);
  json_decref(b);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- dry run --------------------------------------------------------------- */

CK_TEST(verbs, dry_run_create_replace_delete) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-dry");
  ck_error_t err = {0};

  ck_write_opts_t dry = {.dry_run = true};
  json_t *cm = cktest_configmap("dry", "k", "v");
  json_t *out = NULL;
  int rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, &dry, &out, &err);
  cr_assert_eq(rc, 0, "dry-run create: %s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "metadata.name"), "dry");
  cr_assert_str_eq(cktest_jstr(out, "data.k"), "v");
  json_decref(out);
  json_t *got = NULL;
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "dry", NULL, &got, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_not_found(&err), "dry-run create persisted? reason %s",
            ck_reason_name(err.reason));

  /* A dry-run create is validated: an invalid object is refused. */
  json_t *bad = cktest_configmap("Bad_Name", "k", "v");
  rc = ck_object_create(admin, &ck_res_configmaps, ns, bad, &dry, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_invalid(&err));
  json_decref(bad);

  rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, &out, &err);
  cr_assert_eq(rc, 0, "create: %s", err.message);

  /* Dry-run replace and patch: answer shows the change, store does not. */
  json_object_set_new(json_object_get(out, "data"), "k", json_string("changed"));
  json_t *r = NULL;
  rc = ck_object_replace(admin, &ck_res_configmaps, ns, "dry", out, &dry, &r, &err);
  cr_assert_eq(rc, 0, "dry-run replace: %s", err.message);
  cr_assert_str_eq(cktest_jstr(r, "data.k"), "changed");
  json_decref(r);
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "dry", CK_PATCH_MERGE,
                       "{\"data\":{\"k\":\"patched\"}}", &dry, &r, &err);
  cr_assert_eq(rc, 0, "dry-run patch: %s", err.message);
  cr_assert_str_eq(cktest_jstr(r, "data.k"), "patched");
  json_decref(r);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "dry", NULL, &got, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(cktest_jstr(got, "data.k"), "v");
  json_decref(got);

  /* Dry-run delete keeps it. */
  ck_delete_opts_t dd = {.dry_run = true};
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "dry", &dd, NULL, &err);
  cr_assert_eq(rc, 0, "dry-run delete: %s", err.message);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "dry", NULL, &got, &err);
  cr_assert_eq(rc, 0, "dry-run delete removed the object: %s", err.message);
  cr_assert_str_eq(cktest_jstr(got, "data.k"), "v");
  json_decref(got);

  /* A dry-run delete of a missing object still says NotFound. */
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "missing", &dd, NULL, &err);
  cr_assert(ck_error_is_not_found(&err), "rc %d", rc);

  json_decref(out);
  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- field validation ------------------------------------------------------ */

CK_TEST(verbs, field_validation_strict) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-fv");
  ck_error_t err = {0};

  json_t *cm = cktest_configmap("fv", "k", "v");
  json_object_set_new(cm, "bogusField", json_string("x"));
  json_object_set_new(json_object_get(cm, "metadata"), "madeUpMeta", json_true());

  ck_write_opts_t strict = {.field_validation = CK_VALIDATION_STRICT};
  int rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, &strict, NULL, &err);
  cr_assert_eq(rc, CK_EAPI, "strict create accepted an unknown field");
  cr_assert(err.reason == CK_REASON_BAD_REQUEST || err.reason == CK_REASON_INVALID,
            "reason %s (HTTP %d)", ck_reason_name(err.reason), err.http_status);
  cr_assert(strstr(err.message, "bogusField") != NULL, "message names the field: %s",
            err.message);
  cr_assert(strstr(err.message, "madeUpMeta") != NULL, "message names the field: %s",
            err.message);
  json_t *got = NULL;
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "fv", NULL, &got, &err);
  cr_assert(ck_error_is_not_found(&err), "refused object was stored (rc %d)", rc);

  /* Strict with a duplicate-free, known-fields object is fine. */
  json_t *good = cktest_configmap("fv-good", "k", "v");
  rc = ck_object_create(admin, &ck_res_configmaps, ns, good, &strict, NULL, &err);
  cr_assert_eq(rc, 0, "strict create of a clean object: %s", err.message);
  json_decref(good);

  /* Strict also applies to patches. */
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "fv-good", CK_PATCH_MERGE,
                       "{\"notAField\":1}", &strict, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(strstr(err.message, "notAField") != NULL, "%s", err.message);

  /* Default (Warn) and Ignore: accepted, unknown field dropped. */
  json_t *out = NULL;
  rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, &out, &err);
  cr_assert_eq(rc, 0, "default validation: %s", err.message);
  cr_assert_null(json_object_get(out, "bogusField"));
  cr_assert_str_eq(cktest_jstr(out, "data.k"), "v");
  json_decref(out);

  json_object_set_new(json_object_get(cm, "metadata"), "name", json_string("fv-ignore"));
  ck_write_opts_t ignore = {.field_validation = CK_VALIDATION_IGNORE};
  rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, &ignore, NULL, &err);
  cr_assert_eq(rc, 0, "Ignore: %s", err.message);
  json_object_set_new(json_object_get(cm, "metadata"), "name", json_string("fv-warn"));
  ck_write_opts_t warn = {.field_validation = CK_VALIDATION_WARN};
  rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, &warn, NULL, &err);
  cr_assert_eq(rc, 0, "Warn: %s", err.message);

  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- Invalid with causes ------------------------------------------------- */

CK_TEST(verbs, invalid_with_causes) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-inv");
  ck_error_t err = {0};

  json_t *cm = cktest_configmap("Bad_Name", "k", "v");
  int rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, NULL, &err);
  json_decref(cm);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert_eq(err.code, CK_EAPI);
  cr_assert(ck_error_is_invalid(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert_eq(err.http_status, 422);
  cr_assert_geq(err.ncauses, 1);
  bool found = false;
  for (int i = 0; i < err.ncauses; i++)
    if (strcmp(err.causes[i].field, "metadata.name") == 0) {
      found = true;
      cr_assert_str_eq(err.causes[i].type, "FieldValueInvalid");
      cr_assert(strstr(err.causes[i].message, "Bad_Name") != NULL ||
                    strstr(err.causes[i].message, "RFC 1123") != NULL,
                "cause message: %s", err.causes[i].message);
    }
  cr_assert(found, "no cause with field metadata.name (first: %s)", err.causes[0].field);
  cr_assert(strstr(err.message, "Bad_Name") != NULL, "%s", err.message);

  /* Several causes at once: bad data keys. */
  json_t *multi = cktest_json("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                              "\"metadata\":{\"name\":\"ok\"},"
                              "\"data\":{\"bad key 1\":\"x\",\"bad key 2\":\"y\"}}");
  rc = ck_object_create(admin, &ck_res_configmaps, ns, multi, NULL, NULL, &err);
  json_decref(multi);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_invalid(&err));
  cr_assert_geq(err.ncauses, 2, "causes: %d", err.ncauses);
  int data_causes = 0;
  for (int i = 0; i < err.ncauses; i++)
    if (strncmp(err.causes[i].field, "data[", 5) == 0)
      data_causes++;
  cr_assert_geq(data_causes, 2, "causes on data keys: %d", data_causes);

  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- delete: preconditions, propagation, grace ------------------------- */

CK_TEST(verbs, delete_preconditions_and_options) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-del");
  ck_error_t err = {0};

  json_t *obj = cktest_configmap_create(admin, ns, "pre", "k", "v");
  const char *uid = cktest_jstr(obj, "metadata.uid");
  const char *rv = cktest_jstr(obj, "metadata.resourceVersion");

  ck_delete_opts_t wrong_uid = {.precondition_uid = "00000000-0000-0000-0000-000000000000"};
  int rc = ck_object_delete(admin, &ck_res_configmaps, ns, "pre", &wrong_uid, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_conflict(&err), "reason %s: %s", ck_reason_name(err.reason), err.message);
  cr_assert_eq(err.http_status, 409);
  cr_assert(strstr(err.message, "UID") != NULL || strstr(err.message, "uid") != NULL, "%s",
            err.message);

  /* Make the version stale, then delete with the old one. */
  json_t *patched = NULL;
  rc = ck_object_patch(admin, &ck_res_configmaps, ns, "pre", CK_PATCH_MERGE,
                       "{\"data\":{\"k\":\"v2\"}}", NULL, &patched, &err);
  cr_assert_eq(rc, 0, "patch: %s", err.message);
  ck_delete_opts_t wrong_rv = {.precondition_uid = uid, .precondition_resource_version = rv};
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "pre", &wrong_rv, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_conflict(&err), "reason %s: %s", ck_reason_name(err.reason), err.message);
  json_t *got = NULL;
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "pre", NULL, &got, &err);
  cr_assert_eq(rc, 0, "refused delete removed it: %s", err.message);
  json_decref(got);

  /* The right uid and version: gone. */
  ck_delete_opts_t right = {.precondition_uid = uid,
                            .precondition_resource_version =
                                cktest_jstr(patched, "metadata.resourceVersion")};
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "pre", &right, NULL, &err);
  cr_assert_eq(rc, 0, "delete with right preconditions: %s", err.message);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "pre", NULL, &got, &err);
  cr_assert(ck_error_is_not_found(&err), "rc %d", rc);
  json_decref(patched);
  json_decref(obj);

  /* propagationPolicy and gracePeriodSeconds are accepted. */
  static const char *const policies[] = {"Background", "Foreground", "Orphan"};
  for (int i = 0; i < 3; i++) {
    char name[32];
    snprintf(name, sizeof name, "pol-%d", i);
    json_decref(cktest_configmap_create(admin, ns, name, "k", "v"));
    ck_delete_opts_t o = {.propagation_policy = policies[i], .has_grace_period = true,
                          .grace_period_seconds = 0};
    json_t *out = NULL;
    rc = ck_object_delete(admin, &ck_res_configmaps, ns, name, &o, &out, &err);
    cr_assert_eq(rc, 0, "delete %s: %s", policies[i], err.message);
    json_decref(out);
    /* Foreground/Orphan put a finalizer on objects with dependents; a
     * ConfigMap without dependents (or with the GC not running) may linger
     * with a deletionTimestamp. Either way it is marked deleted. */
    rc = ck_object_get(admin, &ck_res_configmaps, ns, name, NULL, &got, &err);
    if (rc == 0) {
      cr_assert_not_null(cktest_jpath(got, "metadata.deletionTimestamp"), "%s: not being deleted",
                         policies[i]);
      json_decref(got);
    } else {
      cr_assert(ck_error_is_not_found(&err), "%s: rc %d %s", policies[i], rc, err.message);
    }
  }

  /* A bad propagation policy: refused by the server. */
  json_decref(cktest_configmap_create(admin, ns, "pol-bad", "k", "v"));
  ck_delete_opts_t badp = {.propagation_policy = "Sideways"};
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "pol-bad", &badp, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(err.http_status == 400 || err.http_status == 422, "status %d: %s", err.http_status,
            err.message);

  /* A positive grace period is accepted; a ConfigMap goes at once. */
  ck_delete_opts_t grace = {.has_grace_period = true, .grace_period_seconds = 30};
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "pol-bad", &grace, NULL, &err);
  cr_assert_eq(rc, 0, "delete with gracePeriodSeconds=30: %s", err.message);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "pol-bad", NULL, &got, &err);
  cr_assert(ck_error_is_not_found(&err), "rc %d", rc);

  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- status subresource of a custom resource --------------------------- */

CK_TEST_OPTS(verbs, status_subresource, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-status");
  ck_error_t err = {0};
  char group[64];
  snprintf(group, sizeof group, "t%08x.crdkit.io", cktest_rand32());
  crd_create(admin, group, "Widget", "widgets");
  const ck_resource_t widgets = {group, "v1", "widgets", "Widget", true};

  char av[96];
  snprintf(av, sizeof av, "%s/v1", group);
  json_t *w = json_pack("{s:s,s:s,s:{s:s},s:{s:i},s:{s:s}}", "apiVersion", av, "kind", "Widget",
                        "metadata", "name", "w1", "spec", "size", 1, "status", "phase",
                        "created");
  json_t *out = NULL;
  int rc;
  /* The CRD's storage may take a moment after Established. */
  double deadline = cktest_now_s() + 15;
  while ((rc = ck_object_create(admin, &widgets, ns, w, NULL, &out, &err)) != 0 &&
         ck_error_is_not_found(&err) && cktest_now_s() < deadline)
    cktest_sleep_ms(200);
  cr_assert_eq(rc, 0, "create widget: %s", err.message);
  json_decref(w);
  /* Status is ignored on create when the subresource is enabled. */
  cr_assert_null(cktest_jpath(out, "status.phase"), "status set at create: %s",
                 cktest_jstr(out, "status.phase"));
  cr_assert_eq(json_integer_value(cktest_jpath(out, "spec.size")), 1);

  /* Write status through /status with PUT. */
  json_object_set_new(out, "status", json_pack("{s:s}", "phase", "Ready"));
  json_t *st = NULL;
  ck_write_opts_t sub = {.subresource = "status"};
  rc = ck_object_replace(admin, &widgets, ns, "w1", out, &sub, &st, &err);
  cr_assert_eq(rc, 0, "replace status: %s", err.message);
  cr_assert_str_eq(cktest_jstr(st, "status.phase"), "Ready");
  json_decref(out);

  /* Through the main resource: spec changes, status change ignored. */
  json_object_set_new(st, "status", json_pack("{s:s}", "phase", "Hacked"));
  json_object_set_new(json_object_get(st, "spec"), "size", json_integer(2));
  rc = ck_object_replace(admin, &widgets, ns, "w1", st, NULL, &out, &err);
  cr_assert_eq(rc, 0, "replace main: %s", err.message);
  cr_assert_eq(json_integer_value(cktest_jpath(out, "spec.size")), 2);
  cr_assert_str_eq(cktest_jstr(out, "status.phase"), "Ready");
  json_decref(st);
  json_decref(out);

  rc = ck_object_patch(admin, &widgets, ns, "w1", CK_PATCH_MERGE,
                       "{\"status\":{\"phase\":\"HackedByPatch\"}}", NULL, &out, &err);
  cr_assert_eq(rc, 0, "patch main: %s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "status.phase"), "Ready");
  json_decref(out);

  /* Through /status with a merge patch: sticks; a spec change there is
   * ignored. */
  rc = ck_object_patch(admin, &widgets, ns, "w1", CK_PATCH_MERGE,
                       "{\"status\":{\"phase\":\"Done\"},\"spec\":{\"size\":99}}", &sub, &out,
                       &err);
  cr_assert_eq(rc, 0, "patch status: %s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "status.phase"), "Done");
  cr_assert_eq(json_integer_value(cktest_jpath(out, "spec.size")), 2);
  json_decref(out);

  /* GET of /status and of the object agree. */
  json_t *got = NULL;
  rc = ck_object_get(admin, &widgets, ns, "w1", "status", &got, &err);
  cr_assert_eq(rc, 0, "get status: %s", err.message);
  cr_assert_str_eq(cktest_jstr(got, "status.phase"), "Done");
  json_decref(got);
  rc = ck_object_get(admin, &widgets, ns, "w1", NULL, &got, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(cktest_jstr(got, "status.phase"), "Done");
  cr_assert_eq(json_integer_value(cktest_jpath(got, "spec.size")), 2);

  /* Stale version on /status: Conflict as for the object. */
  json_t *stale = json_deep_copy(got);
  json_object_set_new(cktest_jpath(stale, "metadata"), "resourceVersion", json_string("1"));
  rc = ck_object_replace(admin, &widgets, ns, "w1", stale, &sub, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_conflict(&err), "reason %s: %s", ck_reason_name(err.reason), err.message);
  json_decref(stale);
  json_decref(got);

  /* Server-side apply of status through /status. */
  json_t *ap = json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", av, "kind", "Widget",
                         "metadata", "name", "w1", "status", "phase", "Applied");
  ck_write_opts_t apo = {.subresource = "status", .field_manager = "status-writer",
                         .force = true};
  rc = ck_object_apply(admin, &widgets, ns, "w1", ap, &apo, &out, &err);
  cr_assert_eq(rc, 0, "apply status: %s", err.message);
  cr_assert_str_eq(cktest_jstr(out, "status.phase"), "Applied");
  json_decref(out);
  json_decref(ap);

  /* Schema validation of the custom resource: wrong type is Invalid. */
  rc = ck_object_patch(admin, &widgets, ns, "w1", CK_PATCH_MERGE, "{\"spec\":{\"size\":\"big\"}}",
                       NULL, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_invalid(&err), "reason %s: %s", ck_reason_name(err.reason), err.message);
  bool found = false;
  for (int i = 0; i < err.ncauses; i++)
    if (strcmp(err.causes[i].field, "spec.size") == 0)
      found = true;
  cr_assert(found, "a cause names spec.size (%d causes)", err.ncauses);

  rc = ck_object_delete(admin, &widgets, ns, "w1", NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete widget: %s", err.message);
  crd_delete(admin, group, "widgets");
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- discovery -------------------------------------------------------------- */

/* Resolve, retrying while the server's discovery catches up with a new CRD
 * (each miss refreshes the cached list). */
static int resolve_eventually(ck_client_t *c, const char *av, const char *kind,
                              ck_resource_t *out, ck_error_t *err) {
  double deadline = cktest_now_s() + 15;
  int rc;
  while ((rc = ck_discovery_resolve(c, av, kind, out, err)) != 0 && cktest_now_s() < deadline)
    cktest_sleep_ms(200);
  return rc;
}

CK_TEST_OPTS(verbs, discovery, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  ck_error_t err = {0};
  ck_resource_t r = {0};

  int rc = ck_discovery_resolve(admin, "v1", "ConfigMap", &r, &err);
  cr_assert_eq(rc, 0, "resolve ConfigMap: %s", err.message);
  cr_assert_str_eq(r.group, "");
  cr_assert_str_eq(r.version, "v1");
  cr_assert_str_eq(r.resource, "configmaps");
  cr_assert_str_eq(r.kind, "ConfigMap");
  cr_assert(r.namespaced);

  /* A second kind of the same version comes from the cache. */
  rc = ck_discovery_resolve(admin, "v1", "Namespace", &r, &err);
  cr_assert_eq(rc, 0, "resolve Namespace: %s", err.message);
  cr_assert_str_eq(r.resource, "namespaces");
  cr_assert_not(r.namespaced);

  rc = ck_discovery_resolve(admin, "apps/v1", "Deployment", &r, &err);
  cr_assert_eq(rc, 0, "resolve Deployment: %s", err.message);
  cr_assert_str_eq(r.group, "apps");
  cr_assert_str_eq(r.version, "v1");
  cr_assert_str_eq(r.resource, "deployments");
  cr_assert(r.namespaced);

  rc = ck_discovery_resolve(admin, "rbac.authorization.k8s.io/v1", "ClusterRole", &r, &err);
  cr_assert_eq(rc, 0, "resolve ClusterRole: %s", err.message);
  cr_assert_str_eq(r.resource, "clusterroles");
  cr_assert_not(r.namespaced);

  /* The resolved descriptor works with the verbs. */
  json_t *list = NULL;
  rc = ck_discovery_resolve(admin, "v1", "Namespace", &r, &err);
  cr_assert_eq(rc, 0);
  rc = ck_object_list(admin, &r, NULL, &(ck_list_opts_t){.limit = 1}, &list, &err);
  cr_assert_eq(rc, 0, "list with a resolved resource: %s", err.message);
  cr_assert_str_eq(cktest_jstr(list, "kind"), "NamespaceList");
  json_decref(list);

  /* Unknown kind in a served version; subresource kinds do not count. */
  rc = ck_discovery_resolve(admin, "v1", "NoSuchKind", &r, &err);
  cr_assert_eq(rc, CK_EINVAL, "unknown kind: rc %d", rc);
  cr_assert(strstr(err.message, "NoSuchKind") != NULL, "%s", err.message);
  rc = ck_discovery_resolve(admin, "apps/v1", "Scale", &r, &err);
  cr_assert_neq(rc, 0, "Scale is only a subresource kind in apps/v1, got %s", r.resource);
  /* A group/version the server does not serve. */
  rc = ck_discovery_resolve(admin, "nosuch.example.com/v1", "Thing", &r, &err);
  cr_assert_eq(rc, CK_EINVAL, "unknown group: rc %d", rc);
  cr_assert(strstr(err.message, "nosuch.example.com") != NULL, "%s", err.message);
  rc = ck_discovery_resolve(admin, "", "ConfigMap", &r, &err);
  cr_assert_eq(rc, CK_EINVAL);
  rc = ck_discovery_resolve(admin, "v1", NULL, &r, &err);
  cr_assert_eq(rc, CK_EINVAL);

  /* A CRD's kind: found after creation. A second CRD of the same
   * group/version after the first was cached: the miss refreshes. */
  char group[64], av[96];
  snprintf(group, sizeof group, "t%08x.crdkit.io", cktest_rand32());
  snprintf(av, sizeof av, "%s/v1", group);
  rc = ck_discovery_resolve(admin, av, "Gizmo", &r, &err);
  cr_assert_eq(rc, CK_EINVAL, "before the CRD exists: rc %d", rc);
  crd_create(admin, group, "Gizmo", "gizmos");
  ck_resource_t g1 = {0};
  rc = resolve_eventually(admin, av, "Gizmo", &g1, &err);
  cr_assert_eq(rc, 0, "resolve Gizmo: %s", err.message);
  cr_assert_str_eq(g1.group, group);
  cr_assert_str_eq(g1.version, "v1");
  cr_assert_str_eq(g1.resource, "gizmos");
  cr_assert(g1.namespaced);

  crd_create(admin, group, "Doohickey", "doohickeys");
  ck_resource_t g2 = {0};
  rc = resolve_eventually(admin, av, "Doohickey", &g2, &err);
  cr_assert_eq(rc, 0, "resolve Doohickey after a refresh: %s", err.message);
  cr_assert_str_eq(g2.resource, "doohickeys");
  cr_assert_str_eq(g2.group, group);
  /* The first answer's strings are still valid after the refresh. */
  cr_assert_str_eq(g1.resource, "gizmos");
  cr_assert_str_eq(g1.kind, "Gizmo");
  rc = ck_discovery_resolve(admin, av, "Gizmo", &g1, &err);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(g1.resource, "gizmos");

  crd_delete(admin, group, "doohickeys");
  crd_delete(admin, group, "gizmos");
  ck_client_free(admin);
}

/* ---- 403 / 401 ------------------------------------------------------------ */

CK_TEST(verbs, forbidden_for_user) {
  ck_client_t *admin = cktest_client("admin");
  ck_client_t *user = cktest_client("user");
  char *ns = cktest_ns_create(admin, "verbs-403");
  ck_error_t err = {0};
  json_decref(cktest_configmap_create(admin, ns, "guarded", "k", "v"));

  json_t *out = NULL;
  int rc = ck_object_list(user, &ck_res_configmaps, ns, NULL, &out, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert_null(out);
  cr_assert(ck_error_is_forbidden(&err), "list: reason %s", ck_reason_name(err.reason));
  cr_assert_eq(err.http_status, 403);
  cr_assert(strstr(err.message, "list") != NULL, "message names the verb: %s", err.message);

  counter_t *k = calloc(1, sizeof *k);
  rc = ck_object_list_each(user, &ck_res_configmaps, ns, NULL, count_item, k, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_forbidden(&err));
  cr_assert_eq(k->count, 0);
  free(k);

  json_t *cm = cktest_configmap("intruder", "k", "v");
  rc = ck_object_create(user, &ck_res_configmaps, ns, cm, NULL, NULL, &err);
  json_decref(cm);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_forbidden(&err), "create: reason %s", ck_reason_name(err.reason));
  cr_assert(strstr(err.message, "create") != NULL, "%s", err.message);

  rc = ck_object_delete(user, &ck_res_configmaps, ns, "guarded", NULL, NULL, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert(ck_error_is_forbidden(&err), "delete: reason %s", ck_reason_name(err.reason));
  cr_assert(strstr(err.message, "delete") != NULL, "%s", err.message);

  rc = ck_object_patch(user, &ck_res_configmaps, ns, "guarded", CK_PATCH_MERGE, "{}", NULL, NULL,
                       &err);
  cr_assert(ck_error_is_forbidden(&err), "patch: rc %d", rc);
  rc = ck_object_list(user, &ck_res_namespaces, NULL, NULL, &out, &err);
  cr_assert(ck_error_is_forbidden(&err), "cluster list: rc %d", rc);
  cr_assert_not(ck_error_is_unauthorized(&err));

  /* Still there. */
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "guarded", NULL, &out, &err);
  cr_assert_eq(rc, 0);
  json_decref(out);
  cktest_ns_delete(admin, ns);
  ck_client_free(user);
  ck_client_free(admin);
}

/* The value after "key:" on the first line that has it (malloc'd). */
static char *yaml_value(const char *text, const char *key) {
  const char *p = strstr(text, key);
  cr_assert(p, "%s not in the admin kubeconfig", key);
  p += strlen(key);
  while (*p == ' ')
    p++;
  size_t n = strcspn(p, "\r\n");
  char *v = strndup(p, n);
  cr_assert(v && *v);
  return v;
}

CK_TEST(verbs, unauthorized_bogus_token) {
  FILE *f = fopen(cktest_env("KUBECONFIG"), "r");
  cr_assert(f);
  char *text = calloc(1, 1 << 20);
  size_t n = fread(text, 1, (1 << 20) - 1, f);
  fclose(f);
  cr_assert_gt(n, 0);
  char *server = yaml_value(text, "server:");
  char *ca = yaml_value(text, "certificate-authority-data:");
  free(text);

  size_t cap = strlen(ca) + strlen(server) + 1024;
  char *kc = malloc(cap);
  snprintf(kc, cap,
           "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: %s\n"
           "    certificate-authority-data: %s\nusers:\n- name: u\n  user:\n    token: bogus\n"
           "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
           "current-context: x\n",
           server, ca);
  char *path = cktest_tmpfile(kc);
  free(kc);
  free(server);
  free(ca);

  ck_config_opts_t o = {.kubeconfig = path, .no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  int rc = ck_config_load(&o, &cfg, &err);
  cr_assert_eq(rc, 0, "load: %s", err.message);
  cr_assert_str_eq(cfg->token, "bogus");
  ck_client_t *c = NULL;
  rc = ck_client_new(cfg, NULL, &c, &err);
  ck_config_free(cfg);
  unlink(path);
  free(path);
  cr_assert_eq(rc, 0, "client: %s", err.message);

  json_t *out = NULL;
  rc = ck_object_get(c, &ck_res_namespaces, NULL, "default", NULL, &out, &err);
  cr_assert_eq(rc, CK_EAPI, "rc %d: %s", rc, err.message);
  cr_assert_null(out);
  cr_assert_eq(err.http_status, 401);
  cr_assert(ck_error_is_unauthorized(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert_not(ck_error_is_forbidden(&err));

  rc = ck_object_list(c, &ck_res_configmaps, "default", NULL, &out, &err);
  cr_assert(ck_error_is_unauthorized(&err), "list: rc %d", rc);
  json_t *cm = cktest_configmap("x", "k", "v");
  rc = ck_object_create(c, &ck_res_configmaps, "default", cm, NULL, NULL, &err);
  json_decref(cm);
  cr_assert(ck_error_is_unauthorized(&err), "create: rc %d %s", rc, err.message);

  /* A watch is refused the same way, at open. */
  ck_watch_t *w = NULL;
  rc = ck_watch_open(c, &ck_res_configmaps, "default", NULL, &w, &err);
  cr_assert_eq(rc, CK_EAPI, "watch: rc %d %s", rc, err.message);
  cr_assert_null(w);
  cr_assert(ck_error_is_unauthorized(&err), "watch: reason %s", ck_reason_name(err.reason));

  /* Discovery too (not turned into "not served"). */
  ck_resource_t r;
  rc = ck_discovery_resolve(c, "v1", "ConfigMap", &r, &err);
  cr_assert_eq(rc, CK_EAPI, "discovery: rc %d %s", rc, err.message);
  cr_assert(ck_error_is_unauthorized(&err));

  ck_client_free(c);
}

/* ---- URL paths ------------------------------------------------------------ */

static void path_is(char *got, const char *want) {
  cr_assert_not_null(got, "NULL, wanted %s", want);
  cr_assert_str_eq(got, want);
  free(got);
}

CK_TEST(verbs, resource_path) {
  path_is(ck_resource_path(&ck_res_configmaps, "ns1", NULL, NULL),
          "/api/v1/namespaces/ns1/configmaps");
  path_is(ck_resource_path(&ck_res_configmaps, "ns1", "cm", NULL),
          "/api/v1/namespaces/ns1/configmaps/cm");
  path_is(ck_resource_path(&ck_res_configmaps, NULL, NULL, NULL), "/api/v1/configmaps");
  path_is(ck_resource_path(&ck_res_configmaps, "", NULL, NULL), "/api/v1/configmaps");
  path_is(ck_resource_path(&ck_res_leases, "kube-system", NULL, NULL),
          "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases");
  path_is(ck_resource_path(&ck_res_leases, "kube-system", "lock", NULL),
          "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/lock");
  path_is(ck_resource_path(&ck_res_namespaces, NULL, NULL, NULL), "/api/v1/namespaces");
  path_is(ck_resource_path(&ck_res_namespaces, NULL, "default", NULL),
          "/api/v1/namespaces/default");
  /* A namespace given for a cluster-scoped resource is ignored. */
  path_is(ck_resource_path(&ck_res_namespaces, "ignored", "default", NULL),
          "/api/v1/namespaces/default");
  path_is(ck_resource_path(&ck_res_crds, NULL, "widgets.example.com", NULL),
          "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com");
  /* Subresources. */
  path_is(ck_resource_path(&ck_res_namespaces, NULL, "x", "finalize"),
          "/api/v1/namespaces/x/finalize");
  path_is(ck_resource_path(&ck_res_crds, NULL, "widgets.example.com", "status"),
          "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com/status");
  path_is(ck_resource_path(&ck_res_leases, "ns", "l", "status"),
          "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l/status");
  const ck_resource_t deploy = {"apps", "v1", "deployments", "Deployment", true};
  path_is(ck_resource_path(&deploy, "ns", "d", "scale"),
          "/apis/apps/v1/namespaces/ns/deployments/d/scale");
  path_is(ck_resource_path(&ck_res_configmaps, "ns", "cm", ""),
          "/api/v1/namespaces/ns/configmaps/cm");
  /* A subresource without a name makes no sense: ignored. */
  path_is(ck_resource_path(&ck_res_configmaps, "ns", NULL, "status"),
          "/api/v1/namespaces/ns/configmaps");
  /* Names with ':' (RBAC) are fine. */
  const ck_resource_t cr = {"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole",
                            false};
  char *p = ck_resource_path(&cr, NULL, "system:controller:x", NULL);
  cr_assert_not_null(p);
  cr_assert(strncmp(p, "/apis/rbac.authorization.k8s.io/v1/clusterroles/system", 54) == 0, "%s",
            p);
  cr_assert_null(strchr(p + 48, '/'), "%s", p);
  free(p);

  /* Rejected: a namespaced object without a namespace, and names or
   * namespaces that would change the path. */
  cr_assert_null(ck_resource_path(&ck_res_configmaps, NULL, "cm", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "", "cm", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "ns", "a/b", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "ns", "..", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "ns", ".", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "ns", "", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "ns", "a%2fb", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "..", "cm", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "a/b", "cm", NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "..", NULL, NULL));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "x/y", NULL, NULL));
  cr_assert_null(ck_resource_path(&ck_res_namespaces, NULL, "../secrets", NULL));
  cr_assert_null(ck_resource_path(&ck_res_namespaces, NULL, "..", NULL));
  /* ... and subresources that would. */
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "ns", "cm", "../../secrets/s"));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "ns", "cm", ".."));
  cr_assert_null(ck_resource_path(&ck_res_configmaps, "ns", "cm", "status/x"));
  cr_assert_null(ck_resource_path(NULL, "ns", "cm", NULL));
  const ck_resource_t noversion = {"", NULL, "configmaps", "ConfigMap", true};
  cr_assert_null(ck_resource_path(&noversion, "ns", "cm", NULL));
}

/* Many threads resolving through one client, hits and misses mixed: the
 * cache is shared and must stay consistent. */
typedef struct {
  ck_client_t *c;
  int failures;
  char what[128];
} resolver_t;

static void *resolve_many(void *arg) {
  resolver_t *rt = arg;
  static const struct {
    const char *av, *kind, *resource;
    bool namespaced;
  } cases[] = {
      {"v1", "ConfigMap", "configmaps", true},
      {"v1", "Namespace", "namespaces", false},
      {"apps/v1", "Deployment", "deployments", true},
      {"apps/v1", "StatefulSet", "statefulsets", true},
      {"coordination.k8s.io/v1", "Lease", "leases", true},
      {"apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", false},
  };
  for (int i = 0; i < 60; i++) {
    ck_resource_t r = {0};
    ck_error_t e = {0};
    size_t k = (size_t)i % (sizeof cases / sizeof cases[0]);
    int rc = ck_discovery_resolve(rt->c, cases[k].av, cases[k].kind, &r, &e);
    if (rc != 0 || strcmp(r.resource, cases[k].resource) != 0 ||
        r.namespaced != cases[k].namespaced) {
      if (rt->failures++ == 0)
        snprintf(rt->what, sizeof rt->what, "%s %s: rc %d %s", cases[k].av, cases[k].kind, rc,
                 rc ? e.message : r.resource);
    }
    if (i % 20 == 0) { /* a miss now and then */
      rc = ck_discovery_resolve(rt->c, "apps/v1", "NotAKind", &r, &e);
      if (rc != CK_EINVAL && rt->failures++ == 0)
        snprintf(rt->what, sizeof rt->what, "miss: rc %d", rc);
    }
  }
  return NULL;
}

CK_TEST(verbs, discovery_concurrent) {
  ck_client_t *admin = cktest_client("admin");
  enum { N = 8 };
  pthread_t th[N];
  resolver_t rt[N];
  for (int i = 0; i < N; i++) {
    rt[i] = (resolver_t){.c = admin};
    cr_assert_eq(pthread_create(&th[i], NULL, resolve_many, &rt[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(rt[i].failures, 0, "thread %d: %d failures, first: %s", i, rt[i].failures,
                 rt[i].what);
  }
  ck_client_free(admin);
}

/* Bytes held by the ASan allocator (the tests always run under ASan). */
size_t __sanitizer_get_current_allocated_bytes(void);

/* A kind the server does not serve refreshes the cache on every call: the
 * refetched list must not pile up when nothing changed (a controller that
 * waits for a CRD calls resolve in a loop). */
CK_TEST(verbs, discovery_misses_do_not_grow) {
  ck_client_t *admin = cktest_client("admin");
  ck_resource_t r;
  ck_error_t err = {0};
  int rc = ck_discovery_resolve(admin, "v1", "NotYetThere", &r, &err);
  cr_assert_eq(rc, CK_EINVAL);
  size_t before = __sanitizer_get_current_allocated_bytes();
  for (int i = 0; i < 100; i++) {
    rc = ck_discovery_resolve(admin, "v1", "NotYetThere", &r, &err);
    cr_assert_eq(rc, CK_EINVAL);
  }
  size_t after = __sanitizer_get_current_allocated_bytes();
  long growth = (long)after - (long)before;
  cr_assert_lt(growth, 256 * 1024, "100 misses kept %ld bytes", growth);
  /* Hits still work after the misses. */
  rc = ck_discovery_resolve(admin, "v1", "Secret", &r, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_assert_str_eq(r.resource, "secrets");
  ck_client_free(admin);
}

/* ---- list_each: an expired continue token ------------------------------- */

/* Paginated lists are served from the watch cache's snapshots while they
 * last, whatever etcd compacted. Changing a CRD's schema gives its custom
 * resource a new cache; with etcd compacted past the list's version, the
 * rest of the walk then has nothing to read from: 410. */
typedef struct {
  ck_client_t *c;
  const ck_resource_t *res;
  const char *ns, *crd, *probe_token;
  int items;
} expiring_t;

static int expire_midway(void *ctx, json_t *item) {
  expiring_t *x = ctx;
  (void)item;
  if (x->items++ > 0)
    return 0;
  ck_error_t err = {0};
  /* A write (so that compaction moves past the list's version), a new
   * schema (a new cache), then compaction. */
  json_decref(cktest_configmap_create(x->c, x->ns, "bump", "k", "v"));
  int rc = ck_object_patch(
      x->c, &ck_res_crds, NULL, x->crd, CK_PATCH_JSON,
      "[{\"op\":\"add\",\"path\":\"/spec/versions/0/schema/openAPIV3Schema/properties/spec/"
      "properties/color\",\"value\":{\"type\":\"string\"}}]",
      NULL, NULL, &err);
  cr_assert_eq(rc, 0, "update CRD schema: %s", err.message);
  cktest_control("/compact");
  /* Wait until the server has switched to the new storage: the probe token
   * (from a list made just before the walk) expires. */
  double deadline = cktest_now_s() + 20;
  for (;;) {
    json_t *page = NULL;
    ck_list_opts_t o = {.limit = 1, .continue_token = x->probe_token};
    rc = ck_object_list(x->c, x->res, x->ns, &o, &page, &err);
    json_decref(page);
    if (rc != 0) {
      cr_assert(ck_error_is_gone(&err), "probe: rc %d %s", rc, err.message);
      break;
    }
    cr_assert_lt(cktest_now_s(), deadline, "the continue token never expired");
    cktest_sleep_ms(200);
  }
  return 0;
}

CK_TEST_OPTS(verbs, list_each_expired_continue, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "verbs-cont");
  ck_error_t err = {0};
  char group[64], av[96], crd[128];
  snprintf(group, sizeof group, "t%08x.crdkit.io", cktest_rand32());
  snprintf(av, sizeof av, "%s/v1", group);
  snprintf(crd, sizeof crd, "sprockets.%s", group);
  crd_create(admin, group, "Sprocket", "sprockets");
  const ck_resource_t sprockets = {group, "v1", "sprockets", "Sprocket", true};
  for (int i = 0; i < 6; i++) {
    char name[16];
    snprintf(name, sizeof name, "s-%d", i);
    json_t *o = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", av, "kind", "Sprocket", "metadata",
                          "name", name);
    int rc;
    double deadline = cktest_now_s() + 15;
    while ((rc = ck_object_create(admin, &sprockets, ns, o, NULL, NULL, &err)) != 0 &&
           ck_error_is_not_found(&err) && cktest_now_s() < deadline)
      cktest_sleep_ms(200);
    cr_assert_eq(rc, 0, "create %s: %s", name, err.message);
    json_decref(o);
  }

  json_t *first = NULL;
  int rc = ck_object_list(admin, &sprockets, ns, &(ck_list_opts_t){.limit = 2}, &first, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  const char *token = cktest_jstr(first, "metadata.continue");
  cr_assert(token && *token);

  expiring_t x = {.c = admin, .res = &sprockets, .ns = ns, .crd = crd, .probe_token = token};
  char *rv = (char *)"untouched";
  ck_list_opts_t lo = {.limit = 2};
  rc = ck_object_list_each(admin, &sprockets, ns, &lo, expire_midway, &x, &rv, &err);
  cr_assert_eq(rc, CK_EAPI, "rc %d after %d items", rc, x.items);
  cr_assert(ck_error_is_gone(&err), "HTTP %d %s: %s", err.http_status, ck_reason_name(err.reason),
            err.message);
  cr_assert_eq(x.items, 2, "the walk stopped after the first page (%d items)", x.items);
  cr_assert_null(rv, "no version after an error");

  /* Starting over works. */
  x.items = 1; /* no more expiring */
  rc = ck_object_list_each(admin, &sprockets, ns, &lo, expire_midway, &x, &rv, &err);
  cr_assert_eq(rc, 0, "relist: %s", err.message);
  cr_assert_eq(x.items, 1 + 6);
  cr_assert(rv && *rv);
  free(rv);

  json_decref(first);
  crd_delete(admin, group, "sprockets");
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

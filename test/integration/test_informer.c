/* Informers on the real apiserver: changes made with kubectl reach the
 * cache; relists deliver only the difference (deletes included); the
 * cache converges after an apiserver restart; read-your-writes; indexes,
 * selectors, namespaces, transforms; the watch-list stream; health. */
#include "cktest.h"

#include "crdkit/informer.h"
#include "crdkit/objects.h"
#include "informer_helpers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tests ----------------------------------------------------------------- */

CK_TEST_OPTS(informer, kubectl_changes_reach_the_cache, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-kubectl");
  rec_t rec;
  rec_init(&rec);
  ck_informer_t *inf = start_informer(admin, &ck_res_configmaps, ns, NULL, &rec);
  const char *kubectl = cktest_env("CRDKIT_TEST_KUBECTL");

  free(cktest_sh_ok("%s create configmap a -n %s --from-literal=k=1", kubectl, ns));
  free(cktest_sh_ok("%s create configmap b -n %s --from-literal=k=1", kubectl, ns));
  probe_t p = {.inf = inf, .ns = ns, .name = "a", .key = "k", .value = "1"};
  cr_assert(eventually(20, obj_state, &p), "kubectl create did not reach the cache");
  free(cktest_sh_ok("%s patch configmap a -n %s --type merge -p '{\"data\":{\"k\":\"2\"}}'",
                    kubectl, ns));
  p.value = "2";
  cr_assert(eventually(20, obj_state, &p), "kubectl patch did not reach the cache");
  free(cktest_sh_ok("%s label configmap b -n %s color=blue", kubectl, ns));
  free(cktest_sh_ok("%s delete configmap b -n %s", kubectl, ns));
  probe_t gone = {.inf = inf, .ns = ns, .name = "b", .value = NULL};
  cr_assert(eventually(20, obj_state, &gone), "kubectl delete did not reach the cache");

  /* The cached copy has no managedFields (the server's copy does). */
  json_t *a = ck_informer_get(inf, ns, "a");
  cr_assert_not_null(a);
  cr_assert_null(cktest_jpath(a, "metadata.managedFields"));
  json_t *live = NULL;
  cr_assert_eq(ck_object_get(admin, &ck_res_configmaps, ns, "a", NULL, &live, NULL), 0);
  cr_assert_not_null(cktest_jpath(live, "metadata.managedFields"));
  cr_assert_str_eq(cktest_jstr(a, "metadata.resourceVersion"),
                   cktest_jstr(live, "metadata.resourceVersion"));
  /* The caller owns its copy: changing it does not change the cache. */
  json_object_set_new(json_object_get(a, "data"), "k", json_string("mine"));
  json_t *again = ck_informer_get(inf, ns, "a");
  cr_assert_str_eq(cktest_jstr(again, "data.k"), "2");
  json_decref(again);
  json_decref(a);
  json_decref(live);

  cr_assert_eq(rec_count(&rec, "ADD a "), 1);
  cr_assert_eq(rec_count(&rec, "ADD b "), 1);
  cr_assert_geq(rec_count(&rec, "UPDATE a "), 1);
  cr_assert_geq(rec_count(&rec, "UPDATE b "), 1);
  cr_assert_eq(rec_count(&rec, "DELETE b "), 1);
  cr_assert_eq(ck_informer_len(inf), 1);

  ck_informer_free(inf);
  rec_free(&rec);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

static json_t *drop_data(void *ctx, json_t *obj) {
  (void)ctx;
  json_object_del(obj, "data");
  return obj;
}

static void index_color(void *ctx, const json_t *obj, ck_index_emit_fn emit, void *ectx) {
  (void)ctx;
  const char *c = json_string_value(
      json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"), "color"));
  if (c)
    emit(ectx, c);
}

CK_TEST_OPTS(informer, paginated_list_indexes_selectors_transform, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-list");
  create_cms(admin, ns, "red", 23, "{\"color\":\"red\",\"app\":\"x\"}");
  create_cms(admin, ns, "blue", 9, "{\"color\":\"blue\",\"app\":\"x\"}");
  create_cms(admin, ns, "plain", 4, NULL);

  /* Pages of 7: 36 objects in 6 requests. */
  ck_informer_opts_t o = {.page_size = 7, .transform = drop_data};
  const char *nss[1] = {ns};
  o.namespaces = nss;
  o.nnamespaces = 1;
  ck_informer_t *inf = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_informer_new(admin, &ck_res_configmaps, &o, &inf, &err), 0);
  cr_assert_eq(ck_informer_add_index(inf, "color", index_color, NULL), 0);
  cr_assert_eq(ck_informer_add_index(inf, "color", index_color, NULL), CK_EINVAL,
               "an index name twice");
  cr_assert_not(ck_informer_synced(inf));
  cr_assert_eq(ck_informer_start(inf), 0);
  cr_assert_eq(ck_informer_wait_synced(inf, 30000), 0);
  cr_assert_eq(ck_informer_add_index(inf, "late", index_color, NULL), CK_EINVAL);
  /* kube-root-ca.crt is published by the controller-manager only. */
  int total = ns_count(inf, ns);
  cr_assert_geq(total, 36);
  cr_assert_eq(ck_informer_len(inf), (size_t)total);
  int reds = 0, blues = 0, none = 0;
  cr_assert_eq(ck_informer_by_index(inf, "color", "red", count_fn, &reds), 0);
  cr_assert_eq(ck_informer_by_index(inf, "color", "blue", count_fn, &blues), 0);
  cr_assert_eq(ck_informer_by_index(inf, "color", "green", count_fn, &none), 0);
  cr_assert_eq(reds, 23);
  cr_assert_eq(blues, 9);
  cr_assert_eq(none, 0);
  cr_assert_eq(ck_informer_by_index(inf, "nope", "x", count_fn, &none), CK_EINVAL);
  json_t *r0 = ck_informer_get(inf, ns, "red-0");
  cr_assert_not_null(r0);
  /* List items come without apiVersion and kind; the cache fills them. */
  cr_assert_str_eq(cktest_jstr(r0, "apiVersion"), "v1");
  cr_assert_str_eq(cktest_jstr(r0, "kind"), "ConfigMap");
  cr_assert_null(json_object_get(r0, "data"), "the transform's drop is cached");
  json_decref(r0);
  ck_informer_stats_t st;
  ck_informer_get_stats(inf, &st);
  cr_assert_eq(st.lists, 1);
  cr_assert_gt(st.bytes, 0);

  /* A label change moves the object between index values. */
  cr_assert_eq(ck_object_patch(admin, &ck_res_configmaps, ns, "red-0", CK_PATCH_MERGE,
                               "{\"metadata\":{\"labels\":{\"color\":\"blue\"}}}", NULL, NULL,
                               &err),
               0);
  double dl = cktest_now_s() + 20;
  do {
    blues = 0;
    ck_informer_by_index(inf, "color", "blue", count_fn, &blues);
    if (blues == 10)
      break;
    cktest_sleep_ms(50);
  } while (cktest_now_s() < dl);
  cr_assert_eq(blues, 10);
  reds = 0;
  ck_informer_by_index(inf, "color", "red", count_fn, &reds);
  cr_assert_eq(reds, 22);
  ck_informer_free(inf);

  /* Server-side label selector: only the blue ones are fetched at all. */
  ck_informer_opts_t so = {.label_selector = "color=blue"};
  rec_t rec;
  rec_init(&rec);
  inf = start_informer(admin, &ck_res_configmaps, ns, &so, &rec);
  cr_assert_eq(ck_informer_len(inf), 10);
  cr_assert_eq(rec.adds, 10);
  ck_informer_free(inf);
  rec_free(&rec);

  /* A field selector. */
  ck_informer_opts_t fo = {.field_selector = "metadata.name=plain-2"};
  inf = start_informer(admin, &ck_res_configmaps, ns, &fo, NULL);
  cr_assert_eq(ck_informer_len(inf), 1);
  json_t *p2 = ck_informer_get(inf, ns, "plain-2");
  cr_assert_not_null(p2);
  json_decref(p2);
  ck_informer_free(inf);

  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(informer, several_namespaces_and_owner_index, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns1 = cktest_ns_create(admin, "inf-ns1");
  char *ns2 = cktest_ns_create(admin, "inf-ns2");
  char *ns3 = cktest_ns_create(admin, "inf-ns3");
  create_cms(admin, ns1, "a", 3, NULL);
  create_cms(admin, ns2, "b", 2, NULL);
  create_cms(admin, ns3, "c", 4, NULL);
  json_t *child = cktest_configmap("child", "k", "v");
  json_object_set_new(json_object_get(child, "metadata"), "ownerReferences",
                      cktest_json("[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"a-0\","
                                  "\"uid\":\"0b1c2d3e-0000-4000-8000-000000000001\"}]"));
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns1, child, NULL, NULL, NULL), 0);
  json_decref(child);

  const char *nss[2] = {ns1, ns2};
  ck_informer_opts_t o = {.namespaces = nss, .nnamespaces = 2};
  rec_t rec;
  rec_init(&rec);
  ck_informer_t *inf = start_informer(admin, &ck_res_configmaps, NULL, &o, &rec);
  cr_assert_eq(ns_count(inf, ns1), 4);
  cr_assert_eq(ns_count(inf, ns2), 2);
  cr_assert_eq(ns_count(inf, ns3), 0, "a namespace not asked for was cached");
  int owned = 0;
  cr_assert_eq(ck_informer_by_index(inf, CK_INDEX_OWNER, "0b1c2d3e-0000-4000-8000-000000000001",
                                    count_fn, &owned),
               0);
  cr_assert_eq(owned, 1);

  /* Events from ns3 never arrive; from ns2 they do. */
  create_cms(admin, ns3, "late", 1, NULL);
  create_cms(admin, ns2, "late", 1, NULL);
  probe_t p = {.inf = inf, .ns = ns2, .name = "late-0", .value = "", .key = NULL};
  cr_assert(eventually(20, obj_state, &p));
  cr_assert_eq(ns_count(inf, ns3), 0);
  cr_assert_eq(rec_count(&rec, "ADD late-0"), 1);

  /* A handler added late gets the cache replayed as ADDs. */
  rec_t late;
  rec_init(&late);
  int id = ck_informer_add_handler(inf, on_event, &late);
  cr_assert_geq(id, 0);
  cr_assert_eq(late.adds, (int)ck_informer_len(inf));
  ck_informer_remove_handler(inf, id);
  create_cms(admin, ns1, "after", 1, NULL);
  probe_t q = {.inf = inf, .ns = ns1, .name = "after-0", .value = ""};
  cr_assert(eventually(20, obj_state, &q));
  cr_assert_eq(rec_count(&late, "ADD after-0"), 0, "a removed handler was called");

  ck_informer_free(inf);
  rec_free(&rec);
  rec_free(&late);
  cktest_ns_delete(admin, ns1);
  cktest_ns_delete(admin, ns2);
  cktest_ns_delete(admin, ns3);
  ck_client_free(admin);
}

/* Set data.i of ns/o-0 to v with a patch (not observed) and wait until
 * the watch has brought it into the cache. */
static void patch_until_cached(ck_client_t *admin, ck_informer_t *inf, const char *ns,
                               const char *v) {
  char body[64];
  snprintf(body, sizeof body, "{\"data\":{\"i\":\"%s\"}}", v);
  ck_error_t err = {0};
  cr_assert_eq(ck_object_patch(admin, &ck_res_configmaps, ns, "o-0", CK_PATCH_MERGE, body, NULL,
                               NULL, &err),
               0, "%s", err.message);
  probe_t p = {.inf = inf, .ns = ns, .name = "o-0", .key = "i", .value = v};
  cr_assert(eventually(20, obj_state, &p), "data.i=%s never reached the cache", v);
}

CK_TEST_OPTS(informer, read_your_writes, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-ryw");
  create_cms(admin, ns, "o", 1, NULL);
  rec_t rec;
  rec_init(&rec);
  ck_informer_t *inf = start_informer(admin, &ck_res_configmaps, ns, NULL, &rec);

  json_t *out = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_object_patch(admin, &ck_res_configmaps, ns, "o-0", CK_PATCH_MERGE,
                               "{\"data\":{\"i\":\"1\"}}", NULL, &out, &err),
               0);
  ck_informer_observe(inf, out);
  /* At once, with no wait for the watch. */
  json_t *c = ck_informer_get(inf, ns, "o-0");
  cr_assert_str_eq(cktest_jstr(c, "data.i"), "1");
  cr_assert_str_eq(cktest_jstr(c, "metadata.resourceVersion"),
                   cktest_jstr(out, "metadata.resourceVersion"));
  json_decref(c);
  /* An older copy fed later does not win. */
  json_t *older = json_deep_copy(out);
  json_object_set_new(json_object_get(older, "metadata"), "resourceVersion", json_string("1"));
  json_object_set_new(json_object_get(older, "data"), "i", json_string("old"));
  ck_informer_observe(inf, older);
  json_decref(older);
  c = ck_informer_get(inf, ns, "o-0");
  cr_assert_str_eq(cktest_jstr(c, "data.i"), "1");
  json_decref(c);
  json_decref(out);

  /* The watch event of that same version is not delivered a second time:
   * a later change shows that the watch has moved past it. */
  patch_until_cached(admin, inf, ns, "2");
  cr_assert_eq(rec_count(&rec, "UPDATE o-0"), 2, "updates seen: %d",
               rec_count(&rec, "UPDATE o-0"));

  /* A create observed is cached at once too (no selectors here). */
  json_t *cm = cktest_configmap("fresh", "k", "v");
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, &out, &err), 0);
  ck_informer_observe(inf, out);
  json_decref(out);
  json_decref(cm);
  c = ck_informer_get(inf, ns, "fresh");
  cr_assert_not_null(c);
  json_decref(c);

  ck_informer_free(inf);
  rec_free(&rec);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

static bool deleting_cached(void *ctx) {
  probe_t *p = ctx;
  json_t *o = ck_informer_get(p->inf, p->ns, p->name);
  bool ok = o && cktest_jpath(o, "metadata.deletionTimestamp");
  json_decref(o);
  return ok;
}

/* Removing the last finalizer lets the server delete the object; its
 * answer can reach the cache after the watch's DELETED event (another
 * connection, another thread). Observed that late, it must not bring the
 * object back: here the DELETED event is waited for first, so the late
 * order is certain. A new object of that name is still cached at once. */
CK_TEST_OPTS(informer, observe_after_delete_does_not_bring_it_back, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-late");
  json_t *cm = cktest_configmap("f", "k", "v");
  json_object_set_new(json_object_get(cm, "metadata"), "finalizers",
                      json_pack("[s]", "crdkit.io/test"));
  ck_error_t err = {0};
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, NULL, &err), 0, "%s",
               err.message);
  json_decref(cm);
  rec_t rec;
  rec_init(&rec);
  ck_informer_t *inf = start_informer(admin, &ck_res_configmaps, ns, NULL, &rec);
  cr_assert_eq(ck_object_delete(admin, &ck_res_configmaps, ns, "f", NULL, NULL, &err), 0, "%s",
               err.message);
  probe_t p = {.inf = inf, .ns = ns, .name = "f"};
  cr_assert(eventually(20, deleting_cached, &p), "the delete never reached the cache");
  json_t *obj = ck_informer_get(inf, ns, "f");
  json_t *out = NULL;
  cr_assert_eq(ck_finalizer_remove(admin, &ck_res_configmaps, obj, "crdkit.io/test", &out, &err),
               0, "%s", err.message);
  cr_assert_not_null(out, "the server's last copy of the object");
  json_decref(obj);
  probe_t gone = {.inf = inf, .ns = ns, .name = "f", .value = NULL};
  cr_assert(eventually(20, obj_state, &gone), "the deletion never reached the cache");
  ck_informer_observe(inf, out);
  json_decref(out);
  json_t *ghost = ck_informer_get(inf, ns, "f");
  cr_assert_null(ghost, "the late answer brought back a deleted object (rv %s)",
                 cktest_jstr(ghost, "metadata.resourceVersion"));
  cr_assert_eq(rec_count(&rec, "ADD f"), 1, "ADDs of f: %d", rec_count(&rec, "ADD f"));

  /* Created again: newer than the delete, so observed at once. */
  cm = cktest_configmap("f", "k", "again");
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, &out, &err), 0, "%s",
               err.message);
  json_decref(cm);
  ck_informer_observe(inf, out);
  json_decref(out);
  json_t *c = ck_informer_get(inf, ns, "f");
  cr_assert_not_null(c, "a new object of a deleted name was not observed");
  cr_assert_str_eq(cktest_jstr(c, "data.k"), "again");
  json_decref(c);

  ck_informer_free(inf);
  rec_free(&rec);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* A handler registered with CK_HANDLER_NO_OLD: counts updates, and any
 * that brought an old object anyway. */
typedef struct no_old {
  pthread_mutex_t mu;
  int updates, with_old;
} no_old_t;

static void on_no_old(void *ctx, ck_informer_event_t ev, const json_t *old, const json_t *obj) {
  no_old_t *n = ctx;
  (void)obj;
  pthread_mutex_lock(&n->mu);
  if (ev == CK_INFORMER_UPDATE) {
    n->updates++;
    n->with_old += old != NULL;
  }
  pthread_mutex_unlock(&n->mu);
}

static bool no_old_updates(void *ctx) {
  no_old_t *n = ctx;
  pthread_mutex_lock(&n->mu);
  bool ok = n->updates >= 2;
  pthread_mutex_unlock(&n->mu);
  return ok;
}

/* Read-your-writes with a memo: the version observed is handed out by
 * ck_informer_get_memo without a parse (the same json_t each time, equal
 * to a plain get); a newer version from the watch is parsed once. A
 * handler without the old object gets NULL while another still gets it. */
CK_TEST_OPTS(informer, observe_memo_and_handler_without_old, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-memo");
  create_cms(admin, ns, "o", 1, NULL);
  rec_t rec;
  rec_init(&rec);
  ck_informer_t *inf = start_informer(admin, &ck_res_configmaps, ns, NULL, &rec);
  no_old_t n = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cr_assert_eq(ck_informer_add_handler_flags(inf, on_no_old, &n, 0x80), CK_EINVAL,
               "an unknown flag");
  cr_assert_geq(ck_informer_add_handler_flags(inf, on_no_old, &n, CK_HANDLER_NO_OLD), 0);
  ck_informer_memo_t *memo = ck_informer_memo_new();
  cr_assert_not_null(memo);

  json_t *out = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_object_patch(admin, &ck_res_configmaps, ns, "o-0", CK_PATCH_MERGE,
                               "{\"data\":{\"i\":\"1\"}}", NULL, &out, &err),
               0);
  ck_informer_observe_memo(inf, out, memo);
  json_t *a = ck_informer_get_memo(inf, ns, "o-0", memo);
  json_t *b = ck_informer_get_memo(inf, ns, "o-0", memo);
  json_t *plain = ck_informer_get(inf, ns, "o-0");
  cr_assert_not_null(a);
  cr_assert_eq(a, b, "the observed version was parsed again");
  cr_assert(json_equal(a, plain), "the memo's copy is not what the cache holds");
  cr_assert_null(cktest_jpath(a, "metadata.managedFields"), "the memo kept the server's copy");
  json_decref(b);
  json_decref(plain);
  json_decref(out);

  /* A change from elsewhere: the next read is a fresh parse of it. */
  patch_until_cached(admin, inf, ns, "2");
  json_t *c = ck_informer_get_memo(inf, ns, "o-0", memo);
  cr_assert_neq(c, a);
  cr_assert_str_eq(cktest_jstr(c, "data.i"), "2");
  json_decref(a);
  json_decref(c);

  cr_assert(eventually(20, no_old_updates, &n), "updates seen without old: %d", n.updates);
  cr_assert_eq(n.with_old, 0, "%d updates brought the old object", n.with_old);
  cr_assert_geq(rec_count(&rec, "UPDATE o-0"), 2, "the other handler lost updates");

  ck_informer_memo_free(memo);
  ck_informer_free(inf);
  rec_free(&rec);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* An informer narrowed to one name by a field selector takes a create of
 * that name at once (the operator that creates the object it watches must
 * not wait for the watch); another name, or a label selector it cannot
 * evaluate, waits for the watch. */
CK_TEST_OPTS(informer, observe_with_name_selector, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-obs");
  ck_informer_opts_t o = {.field_selector = "metadata.name=target"};
  ck_informer_t *inf = start_informer(admin, &ck_res_configmaps, ns, &o, NULL);
  ck_informer_opts_t lo = {.field_selector = "metadata.name=target", .label_selector = "a=b"};
  ck_informer_t *linf = start_informer(admin, &ck_res_configmaps, ns, &lo, NULL);
  ck_error_t err = {0};
  json_t *out = NULL, *other = NULL;
  json_t *cm = cktest_configmap("target", "k", "v");
  json_t *cm2 = cktest_configmap("other", "k", "v");
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, &out, &err), 0);
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, cm2, NULL, &other, &err), 0);
  ck_informer_observe(inf, out);
  ck_informer_observe(inf, other);
  ck_informer_observe(linf, out);
  json_t *c = ck_informer_get(inf, ns, "target");
  cr_assert_not_null(c, "the selected name was not cached at once");
  json_decref(c);
  c = ck_informer_get(inf, ns, "other");
  cr_assert_null(c, "a name the selector excludes was cached");
  c = ck_informer_get(linf, ns, "target");
  cr_assert_null(c, "cached although the label selector was not evaluated");
  json_decref(out);
  json_decref(other);
  json_decref(cm);
  json_decref(cm2);
  ck_informer_free(inf);
  ck_informer_free(linf);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(informer, watch_list_stream, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "inf-wl");
  create_cms(admin, ns, "w", 12, NULL);
  ck_informer_opts_t o = {.list_mode = CK_LIST_WATCHLIST};
  rec_t rec;
  rec_init(&rec);
  ck_informer_t *inf = start_informer(admin, &ck_res_configmaps, ns, &o, &rec);
  cr_assert_eq(ns_count(inf, ns), 12);
  ck_informer_stats_t st;
  ck_informer_get_stats(inf, &st);
  cr_assert_eq(st.lists, 1);
  cr_assert_eq(st.watches, 1, "the watch-list is one stream, not a list and a watch");
  create_cms(admin, ns, "later", 1, NULL);
  probe_t p = {.inf = inf, .ns = ns, .name = "later-0", .value = ""};
  cr_assert(eventually(20, obj_state, &p));
  cr_assert_eq(rec.adds, 13);
  ck_informer_free(inf);
  rec_free(&rec);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(informer, failing_watch_is_unhealthy_not_silent, .timeout = 60) {
  ck_config_t cfg = {.server = "https://127.0.0.1:1", .insecure_skip_tls_verify = true,
                     .namespace_ = "default", .source = "test"};
  ck_client_t *c = NULL;
  ck_client_opts_t co = {.max_retries = -1, .connect_timeout_ms = 500};
  cr_assert_eq(ck_client_new(&cfg, &co, &c, NULL), 0);
  ck_informer_opts_t o = {.unhealthy_after_ms = 1500, .backoff_max_ms = 400};
  ck_informer_t *inf = NULL;
  cr_assert_eq(ck_informer_new(c, &ck_res_configmaps, &o, &inf, NULL), 0);
  cr_assert_eq(ck_informer_start(inf), 0);
  char msg[512] = "";
  cr_assert(ck_informer_healthy(inf, msg, sizeof msg), "unhealthy at once: %s", msg);
  cr_assert_eq(ck_informer_wait_synced(inf, 3000), CK_ETIMEDOUT);
  double dl = cktest_now_s() + 10;
  while (ck_informer_healthy(inf, msg, sizeof msg) && cktest_now_s() < dl)
    cktest_sleep_ms(100);
  cr_assert_not(ck_informer_healthy(inf, msg, sizeof msg));
  cr_assert(strstr(msg, "configmaps") && strstr(msg, "failing"), "reason: %s", msg);
  ck_informer_stats_t st;
  ck_informer_get_stats(inf, &st);
  cr_assert_geq(st.failures, 2, "it keeps retrying");
  cr_assert_lt(st.failures, 40, "no tight loop: %llu failures", (unsigned long long)st.failures);
  double t0 = cktest_now_s();
  ck_informer_free(inf);
  cr_assert_lt(cktest_now_s() - t0, 5.0, "stop took too long");
  ck_client_free(c);
}

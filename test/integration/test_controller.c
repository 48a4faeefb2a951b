/* Controllers and the manager on the real apiserver: owns, finalizers
 * with kubectl delete, errors that do not stop other objects, requeue
 * after, metrics scraped and parsed, /readyz before and after sync, and
 * a graceful stop under load. */
#include "cktest.h"

#include "crdkit/manager.h"
#include "crdkit/objects.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- harness ----------------------------------------------------------------- */

typedef struct counts {
  pthread_mutex_t mu;
  json_t *by_key; /* key -> number of reconciles */
  atomic_int running, max_running, started, finished;
  int sleep_ms;
  const char *fail_key;     /* always fails */
  const char *after_key;    /* requeue after 300 ms, 3 times */
  const char *finalizer;    /* add it; on deletion record cleanup and remove */
  json_t *cleaned;          /* keys cleaned up */
} counts_t;

static void counts_init(counts_t *c) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  c->by_key = json_object();
  c->cleaned = json_array();
}

static void counts_free(counts_t *c) {
  json_decref(c->by_key);
  json_decref(c->cleaned);
  pthread_mutex_destroy(&c->mu);
}

static int count_of(counts_t *c, const char *key) {
  pthread_mutex_lock(&c->mu);
  int n = (int)json_integer_value(json_object_get(c->by_key, key));
  pthread_mutex_unlock(&c->mu);
  return n;
}

static ck_result_t reconcile(void *ctx, ck_reconcile_t *rc) {
  counts_t *c = ctx;
  const char *key = ck_reconcile_key(rc);
  int now = atomic_fetch_add(&c->running, 1) + 1;
  int max = atomic_load(&c->max_running);
  while (now > max && !atomic_compare_exchange_weak(&c->max_running, &max, now))
    ;
  atomic_fetch_add(&c->started, 1);
  pthread_mutex_lock(&c->mu);
  int n = (int)json_integer_value(json_object_get(c->by_key, key)) + 1;
  json_object_set_new(c->by_key, key, json_integer(n));
  pthread_mutex_unlock(&c->mu);
  if (c->sleep_ms)
    cktest_sleep_ms(c->sleep_ms);
  ck_result_t r = ck_done();
  if (c->fail_key && strcmp(key, c->fail_key) == 0)
    r = ck_fail();
  else if (c->after_key && strcmp(key, c->after_key) == 0 && n < 3)
    r = ck_requeue_after(300);
  else if (c->finalizer) {
    json_t *obj = ck_reconcile_get(rc);
    ck_error_t err = {0};
    if (obj && ck_obj_is_deleting(obj)) {
      if (ck_finalizer_has(obj, c->finalizer)) {
        pthread_mutex_lock(&c->mu);
        json_array_append_new(c->cleaned, json_string(key));
        pthread_mutex_unlock(&c->mu);
        if (ck_reconcile_finalizer_remove(rc, obj, c->finalizer, NULL, &err) != 0)
          r = ck_fail();
      }
    } else if (obj && !ck_finalizer_has(obj, c->finalizer)) {
      if (ck_reconcile_finalizer_add(rc, obj, c->finalizer, NULL, &err) != 0)
        r = ck_fail();
      else
        ck_reconcile_event(rc, obj, "Normal", "FinalizerAdded", "added %s", c->finalizer);
    }
    json_decref(obj);
  }
  atomic_fetch_sub(&c->running, 1);
  atomic_fetch_add(&c->finished, 1);
  return r;
}

typedef struct run {
  ck_manager_t *m;
  pthread_t t;
  int rc;
  ck_error_t err;
} run_t;

static void *run_main(void *arg) {
  run_t *r = arg;
  r->rc = ck_manager_run(r->m, &r->err);
  return NULL;
}

static void run_start(run_t *r, ck_manager_t *m) {
  memset(r, 0, sizeof *r);
  r->m = m;
  cr_assert_eq(pthread_create(&r->t, NULL, run_main, r), 0);
}

static int run_stop(run_t *r) {
  ck_manager_stop(r->m);
  pthread_join(r->t, NULL);
  return r->rc;
}

static ck_manager_t *new_manager(ck_client_t *c, const char **ns, size_t nns) {
  ck_manager_opts_t mo = {.name = "ctl-test", .namespaces = ns, .nnamespaces = nns,
                          .metrics_addr = "127.0.0.1:0", .probe_addr = "127.0.0.1:0",
                          .no_signals = true, .grace_ms = 10000};
  ck_manager_t *m = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_manager_new(c, &mo, &m, &err), 0, "manager: %s", err.message);
  return m;
}

static bool wait_count(counts_t *c, const char *key, int n, double seconds) {
  double dl = cktest_now_s() + seconds;
  while (cktest_now_s() < dl) {
    if (count_of(c, key) >= n)
      return true;
    cktest_sleep_ms(50);
  }
  return count_of(c, key) >= n;
}

static char *http_get(int port, const char *path, long *status) {
  CURL *h = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  char *body = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&body, &len);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
  CURLcode cc = curl_easy_perform(h);
  fclose(f);
  cr_assert_eq(cc, CURLE_OK, "GET %s: %s", url, curl_easy_strerror(cc));
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(h);
  return body;
}

/* The value of the sample `name{labels}` in Prometheus text, -1 when
 * absent. `selector` is the exact text between the braces. */
static double sample(const char *text, const char *name, const char *selector) {
  char want[512];
  snprintf(want, sizeof want, "%s{%s} ", name, selector);
  for (const char *p = text; p && *p;) {
    const char *eol = strchr(p, '\n');
    if (strncmp(p, want, strlen(want)) == 0)
      return strtod(p + strlen(want), NULL);
    p = eol ? eol + 1 : NULL;
  }
  return -1;
}

static void cm_create(ck_client_t *c, const char *ns, const char *name, const char *labels) {
  json_t *cm = cktest_configmap(name, "k", "v");
  if (labels)
    json_object_set_new(json_object_get(cm, "metadata"), "labels", cktest_json(labels));
  ck_error_t err = {0};
  cr_assert_eq(ck_object_create(c, &ck_res_configmaps, ns, cm, NULL, NULL, &err), 0, "%s",
               err.message);
  json_decref(cm);
}

/* ---- tests --------------------------------------------------------------------- */

CK_TEST_OPTS(controller, owns_maps_child_events_to_the_owner, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ctl-owns");
  const char *nss[1] = {ns};
  cm_create(admin, ns, "owner", "{\"role\":\"owner\"}");
  json_t *owner = NULL;
  cr_assert_eq(ck_object_get(admin, &ck_res_configmaps, ns, "owner", NULL, &owner, NULL), 0);

  counts_t c;
  counts_init(&c);
  ck_manager_t *m = new_manager(admin, nss, 1);
  ck_controller_t *ctl = NULL;
  ck_controller_opts_t co = {.name = "owners", .primary = &ck_res_configmaps,
                             .reconcile = reconcile, .ctx = &c, .label_selector = "role=owner"};
  ck_error_t err = {0};
  cr_assert_eq(ck_manager_add_controller(m, &co, &ctl, &err), 0, "%s", err.message);
  cr_assert_eq(ck_manager_add_controller(m, &co, NULL, &err), CK_EINVAL, "a name twice");
  cr_assert_eq(ck_controller_owns(ctl, &ck_res_configmaps, &err), 0);
  run_t r;
  run_start(&r, m);
  char *okey = cktest_asprintf("%s/owner", ns);
  cr_assert(wait_count(&c, okey, 1, 30), "the owner was never reconciled");
  cktest_sleep_ms(500);
  int before = count_of(&c, okey);

  /* A child with a controller reference: its events reconcile the owner. */
  json_t *child = cktest_configmap("child", "k", "1");
  cr_assert_eq(ck_owner_ref_set(child, owner, true), 0);
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, child, NULL, NULL, &err), 0, "%s",
               err.message);
  json_decref(child);
  cr_assert(wait_count(&c, okey, before + 1, 30), "child create did not reach the owner");
  int after_create = count_of(&c, okey);
  cr_assert_eq(ck_object_patch(admin, &ck_res_configmaps, ns, "child", CK_PATCH_MERGE,
                               "{\"data\":{\"k\":\"2\"}}", NULL, NULL, &err),
               0);
  cr_assert(wait_count(&c, okey, after_create + 1, 30), "child update did not reach the owner");
  /* A child without a controller reference maps to nothing. */
  cm_create(admin, ns, "stray", NULL);
  cktest_sleep_ms(1000);
  char *skey = cktest_asprintf("%s/stray", ns);
  cr_assert_eq(count_of(&c, skey), 0);
  char *ckey = cktest_asprintf("%s/child", ns);
  cr_assert_eq(count_of(&c, ckey), 0, "the child itself is not a primary");

  cr_assert_eq(run_stop(&r), 0, "run: %s", r.err.message);
  ck_manager_free(m);
  counts_free(&c);
  json_decref(owner);
  free(okey);
  free(skey);
  free(ckey);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(controller, finalizer_flow_with_kubectl_delete, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ctl-fin");
  const char *nss[1] = {ns};
  counts_t c;
  counts_init(&c);
  c.finalizer = "crdkit.io/test-cleanup";
  ck_manager_t *m = new_manager(admin, nss, 1);
  ck_controller_opts_t co = {.name = "fin", .primary = &ck_res_configmaps, .reconcile = reconcile,
                             .ctx = &c, .filters = CK_FILTER_GENERATION};
  cr_assert_eq(ck_manager_add_controller(m, &co, NULL, NULL), 0);
  run_t r;
  run_start(&r, m);
  cm_create(admin, ns, "guarded", NULL);
  const char *kubectl = cktest_env("CRDKIT_TEST_KUBECTL");
  double dl = cktest_now_s() + 30;
  char *fin = NULL;
  while (cktest_now_s() < dl) {
    free(fin);
    fin = cktest_sh_ok("%s get configmap guarded -n %s -o jsonpath='{.metadata.finalizers}'",
                       kubectl, ns);
    if (strstr(fin, "crdkit.io/test-cleanup"))
      break;
    cktest_sleep_ms(100);
  }
  cr_assert(strstr(fin, "crdkit.io/test-cleanup"), "finalizer not added: %s", fin);
  free(fin);
  /* kubectl delete waits for the finalizer to go: it returns once the
   * controller cleaned up. */
  free(cktest_sh_ok("%s delete configmap guarded -n %s --timeout=60s", kubectl, ns));
  char *out = NULL;
  cr_assert_neq(cktest_sh(&out, "%s get configmap guarded -n %s 2>&1", kubectl, ns), 0);
  cr_assert(strstr(out, "NotFound") || strstr(out, "not found"), "%s", out);
  free(out);
  pthread_mutex_lock(&c.mu);
  cr_assert_eq(json_array_size(c.cleaned), 1);
  pthread_mutex_unlock(&c.mu);
  /* The Event is visible with kubectl. */
  ck_recorder_flush(ck_manager_recorder(m), 10000);
  char *ev = cktest_sh_ok("%s get events -n %s", kubectl, ns);
  cr_assert(strstr(ev, "FinalizerAdded"), "events: %s", ev);
  free(ev);
  cr_assert_eq(run_stop(&r), 0);
  ck_manager_free(m);
  counts_free(&c);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(controller, errors_retry_with_backoff_and_others_go_on, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ctl-err");
  const char *nss[1] = {ns};
  for (int i = 0; i < 10; i++) {
    char name[16];
    snprintf(name, sizeof name, "ok-%d", i);
    cm_create(admin, ns, name, NULL);
  }
  cm_create(admin, ns, "bad", NULL);
  cm_create(admin, ns, "later", NULL);
  counts_t c;
  counts_init(&c);
  char *bad = cktest_asprintf("%s/bad", ns);
  char *later = cktest_asprintf("%s/later", ns);
  c.fail_key = bad;
  c.after_key = later;
  ck_manager_t *m = new_manager(admin, nss, 1);
  ck_controller_opts_t co = {.name = "errs", .primary = &ck_res_configmaps, .reconcile = reconcile,
                             .ctx = &c, .workers = 3};
  cr_assert_eq(ck_manager_add_controller(m, &co, NULL, NULL), 0);
  run_t r;
  run_start(&r, m);
  for (int i = 0; i < 10; i++) {
    char *k = cktest_asprintf("%s/ok-%d", ns, i);
    cr_assert(wait_count(&c, k, 1, 30), "%s never reconciled", k);
    free(k);
  }
  /* Backoff 5 ms doubling: within ~3 s about 9-10 tries, not hundreds. */
  cktest_sleep_ms(3000);
  int tries = count_of(&c, bad);
  cr_assert_geq(tries, 5, "errors are retried: %d", tries);
  cr_assert_leq(tries, 14, "errors back off: %d tries in 3 s", tries);
  cr_assert_eq(count_of(&c, later), 3, "requeue-after ran %d times", count_of(&c, later));
  char *ok0 = cktest_asprintf("%s/ok-0", ns);
  cr_assert_eq(count_of(&c, ok0), 1, "a done object is not requeued");
  free(ok0);

  long st = 0;
  char *metrics = http_get(ck_manager_port(m, 0), "/metrics", &st);
  cr_assert_eq(st, 200);
  cr_assert_geq(sample(metrics, "controller_runtime_reconcile_errors_total", "controller=\"errs\""),
                5.0);
  cr_assert_geq(sample(metrics, "controller_runtime_reconcile_total",
                       "controller=\"errs\",result=\"success\""),
                11.0, "%s", metrics);
  cr_assert_geq(sample(metrics, "controller_runtime_reconcile_total",
                       "controller=\"errs\",result=\"requeue_after\""),
                2.0);
  cr_assert_eq(sample(metrics, "controller_runtime_max_concurrent_reconciles",
                      "controller=\"errs\""),
               3.0);
  cr_assert_geq(sample(metrics, "workqueue_retries_total", "name=\"errs\""), 5.0);
  cr_assert_geq(sample(metrics, "workqueue_adds_total", "name=\"errs\""), 12.0);
  cr_assert_geq(sample(metrics, "controller_runtime_reconcile_time_seconds_count",
                       "controller=\"errs\""),
                16.0);
  cr_assert(strstr(metrics, "rest_client_requests_total{"), "no client metrics");
  free(metrics);
  cr_assert_eq(run_stop(&r), 0);
  ck_manager_free(m);
  counts_free(&c);
  free(bad);
  free(later);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

static const ck_resource_t missing = {"nope.crdkit.io", "v1", "ghosts", "Ghost", true};

CK_TEST_OPTS(controller, readyz_false_before_sync_true_after, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ctl-ready");
  const char *nss[1] = {ns};
  counts_t c;
  counts_init(&c);
  /* A kind the server does not serve: its cache never syncs. */
  ck_manager_t *m = new_manager(admin, nss, 1);
  ck_controller_opts_t co = {.name = "ghosts", .primary = &missing, .reconcile = reconcile,
                             .ctx = &c};
  cr_assert_eq(ck_manager_add_controller(m, &co, NULL, NULL), 0);
  run_t r;
  run_start(&r, m);
  int port = 0;
  for (int i = 0; i < 100 && !(port = ck_manager_port(m, 1)); i++)
    cktest_sleep_ms(50);
  cr_assert_gt(port, 0);
  long st = 0;
  char *body = http_get(port, "/readyz", &st);
  cr_assert_eq(st, 500, "ready without a synced cache: %s", body);
  cr_assert(strstr(body, "ghosts"), "the reason names the cache: %s", body);
  free(body);
  body = http_get(port, "/healthz", &st);
  cr_assert_eq(st, 200);
  free(body);
  cr_assert_eq(run_stop(&r), 0);
  ck_manager_free(m);

  /* A served kind: ready once synced. */
  m = new_manager(admin, nss, 1);
  ck_controller_opts_t co2 = {.name = "cms", .primary = &ck_res_configmaps,
                              .reconcile = reconcile, .ctx = &c};
  cr_assert_eq(ck_manager_add_controller(m, &co2, NULL, NULL), 0);
  run_start(&r, m);
  for (int i = 0; i < 100 && !(port = ck_manager_port(m, 1)); i++)
    cktest_sleep_ms(50);
  double dl = cktest_now_s() + 30;
  st = 0;
  while (cktest_now_s() < dl) {
    body = http_get(port, "/readyz", &st);
    free(body);
    if (st == 200)
      break;
    cktest_sleep_ms(100);
  }
  cr_assert_eq(st, 200, "never ready");
  cr_assert_eq(run_stop(&r), 0);
  ck_manager_free(m);
  counts_free(&c);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(controller, graceful_stop_under_load, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ctl-stop");
  const char *nss[1] = {ns};
  for (int i = 0; i < 40; i++) {
    char name[16];
    snprintf(name, sizeof name, "l-%d", i);
    cm_create(admin, ns, name, NULL);
  }
  counts_t c;
  counts_init(&c);
  c.sleep_ms = 200;
  ck_manager_t *m = new_manager(admin, nss, 1);
  ck_controller_opts_t co = {.name = "slow", .primary = &ck_res_configmaps, .reconcile = reconcile,
                             .ctx = &c, .workers = 4};
  cr_assert_eq(ck_manager_add_controller(m, &co, NULL, NULL), 0);
  run_t r;
  run_start(&r, m);
  double dl = cktest_now_s() + 30;
  while (atomic_load(&c.started) < 6 && cktest_now_s() < dl)
    cktest_sleep_ms(20);
  cr_assert_geq(atomic_load(&c.started), 6);
  double t0 = cktest_now_s();
  cr_assert_eq(run_stop(&r), 0, "%s", r.err.message);
  double took = cktest_now_s() - t0;
  /* Every reconcile that started also finished; none runs after run
   * returned, and never more than the 4 workers at once. */
  int started = atomic_load(&c.started), finished = atomic_load(&c.finished);
  cr_assert_eq(started, finished, "started %d, finished %d", started, finished);
  cktest_sleep_ms(500);
  cr_assert_eq(atomic_load(&c.started), started, "a reconcile ran after the stop");
  cr_assert_leq(atomic_load(&c.max_running), 4);
  cr_assert_lt(took, 10.0, "the stop took %.1f s", took);
  ck_manager_free(m);
  counts_free(&c);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

static void secret_to_target(void *ctx, const json_t *obj, ck_map_emit_fn emit, void *ectx) {
  (void)ctx;
  const char *t = json_string_value(json_object_get(
      json_object_get(json_object_get(obj, "metadata"), "annotations"), "crdkit.io/target"));
  if (t)
    emit(ectx, t);
}

CK_TEST_OPTS(controller, watches_filters_and_shared_informers, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ctl-watch");
  const char *nss[1] = {ns};
  counts_t c, other;
  counts_init(&c);
  counts_init(&other);
  ck_manager_t *m = new_manager(admin, nss, 1);
  ck_controller_t *a = NULL, *b = NULL;
  ck_controller_opts_t ca = {.name = "labels-only", .primary = &ck_res_configmaps,
                             .reconcile = reconcile, .ctx = &c, .filters = CK_FILTER_LABELS};
  ck_controller_opts_t cb = {.name = "all", .primary = &ck_res_configmaps, .reconcile = reconcile,
                             .ctx = &other};
  ck_error_t err = {0};
  cr_assert_eq(ck_manager_add_controller(m, &ca, &a, &err), 0, "%s", err.message);
  cr_assert_eq(ck_manager_add_controller(m, &cb, &b, &err), 0, "%s", err.message);
  cr_assert_eq(ck_controller_informer(a), ck_controller_informer(b),
               "two controllers of one kind share one informer");
  cr_assert_eq(ck_controller_watches(a, &ck_res_secrets, secret_to_target, NULL, &err), 0);
  run_t r;
  run_start(&r, m);
  cm_create(admin, ns, "t", NULL);
  char *key = cktest_asprintf("%s/t", ns);
  cr_assert(wait_count(&c, key, 1, 30));
  cr_assert(wait_count(&other, key, 1, 30));
  /* A data change: "all" reconciles, "labels-only" does not. */
  cr_assert_eq(ck_object_patch(admin, &ck_res_configmaps, ns, "t", CK_PATCH_MERGE,
                               "{\"data\":{\"k\":\"2\"}}", NULL, NULL, &err),
               0);
  cr_assert(wait_count(&other, key, 2, 30));
  cktest_sleep_ms(1000);
  cr_assert_eq(count_of(&c, key), 1, "the label filter let a data change through");
  /* A label change passes. */
  cr_assert_eq(ck_object_patch(admin, &ck_res_configmaps, ns, "t", CK_PATCH_MERGE,
                               "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}", NULL, NULL, &err),
               0);
  cr_assert(wait_count(&c, key, 2, 30), "a label change did not pass the filter");
  /* watches: a Secret mapped to the ConfigMap by its annotation. */
  char *body = cktest_asprintf("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
                               "\"s\",\"annotations\":{\"crdkit.io/target\":\"%s\"}}}",
                               key);
  json_t *sec = cktest_json(body);
  cr_assert_eq(ck_object_create(admin, &ck_res_secrets, ns, sec, NULL, NULL, &err), 0, "%s",
               err.message);
  json_decref(sec);
  free(body);
  cr_assert(wait_count(&c, key, 3, 30), "the Secret's event was not mapped");
  cr_assert_eq(run_stop(&r), 0);
  ck_manager_free(m);
  counts_free(&c);
  counts_free(&other);
  free(key);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(controller, resync_requeues_cached_objects, .timeout = 60) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ctl-resync");
  const char *nss[1] = {ns};
  cm_create(admin, ns, "r", NULL);
  counts_t c;
  counts_init(&c);
  ck_manager_t *m = new_manager(admin, nss, 1);
  ck_controller_opts_t co = {.name = "resync", .primary = &ck_res_configmaps,
                             .reconcile = reconcile, .ctx = &c, .resync_ms = 400};
  cr_assert_eq(ck_manager_add_controller(m, &co, NULL, NULL), 0);
  run_t r;
  run_start(&r, m);
  char *key = cktest_asprintf("%s/r", ns);
  /* No change to the object: only the resync can queue it again. */
  cr_assert(wait_count(&c, key, 4, 30), "resync ran %d times", count_of(&c, key));
  cr_assert_eq(run_stop(&r), 0);
  ck_manager_free(m);
  counts_free(&c);
  free(key);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* A reconcile that reads its object through ck_reconcile_get_other and
 * records whether data.big was there (1) or not (-1). */
static ck_result_t read_other(void *ctx, ck_reconcile_t *rc) {
  json_t *o = ck_reconcile_get_other(rc, &ck_res_configmaps, ck_reconcile_namespace(rc),
                                     ck_reconcile_name(rc));
  if (o)
    atomic_store((atomic_int *)ctx, json_object_get(json_object_get(o, "data"), "big") ? 1 : -1);
  json_decref(o);
  return ck_done();
}

/* Drops data.big from every ConfigMap before it is cached. */
static json_t *drop_big(void *ctx, json_t *obj) {
  atomic_fetch_add((atomic_int *)ctx, 1);
  json_object_del(json_object_get(obj, "data"), "big");
  return obj;
}

CK_TEST_OPTS(controller, transform_shapes_the_primary_cache, .timeout = 60) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ctl-transform");
  const char *nss[1] = {ns};
  json_t *cm = cktest_configmap("t", "k", "v");
  json_object_set_new(json_object_get(cm, "data"), "big", json_string("dropped by the transform"));
  ck_error_t err = {0};
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, NULL, &err), 0, "%s",
               err.message);
  json_decref(cm);
  counts_t c, plain;
  counts_init(&c);
  counts_init(&plain);
  atomic_int calls = 0;
  ck_manager_t *m = new_manager(admin, nss, 1);
  ck_controller_t *a = NULL, *b = NULL, *p = NULL;
  ck_controller_opts_t co = {.name = "tf-a", .primary = &ck_res_configmaps, .reconcile = reconcile,
                             .ctx = &c, .transform = drop_big, .transform_ctx = &calls};
  cr_assert_eq(ck_manager_add_controller(m, &co, &a, &err), 0, "%s", err.message);
  co.name = "tf-b";
  cr_assert_eq(ck_manager_add_controller(m, &co, &b, &err), 0, "%s", err.message);
  ck_controller_opts_t po = {.name = "plain", .primary = &ck_res_configmaps,
                             .reconcile = reconcile, .ctx = &plain};
  cr_assert_eq(ck_manager_add_controller(m, &po, &p, &err), 0, "%s", err.message);
  /* Reading another kind's cache gets whole objects, though the
   * transformed informer of that kind was created first. */
  atomic_int other_saw = 0;
  ck_controller_opts_t oo = {.name = "reader", .primary = &ck_res_configmaps,
                             .reconcile = read_other, .ctx = &other_saw};
  cr_assert_eq(ck_manager_add_controller(m, &oo, NULL, &err), 0, "%s", err.message);
  /* The same transform shares one informer; a controller without it has its own. */
  cr_assert_eq(ck_controller_informer(a), ck_controller_informer(b));
  cr_assert_neq(ck_controller_informer(a), ck_controller_informer(p));
  run_t r;
  run_start(&r, m);
  char *key = cktest_asprintf("%s/t", ns);
  cr_assert(wait_count(&c, key, 1, 30));
  cr_assert(wait_count(&plain, key, 1, 30));
  json_t *got = ck_informer_get(ck_controller_informer(a), ns, "t");
  cr_assert_not_null(got);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(got, "data"), "k")), "v");
  cr_assert_null(json_object_get(json_object_get(got, "data"), "big"), "transformed away");
  json_decref(got);
  got = ck_informer_get(ck_controller_informer(p), ns, "t");
  cr_assert_not_null(json_object_get(json_object_get(got, "data"), "big"));
  json_decref(got);
  cr_assert_geq(atomic_load(&calls), 1);
  double dl = cktest_now_s() + 30;
  while (atomic_load(&other_saw) == 0 && cktest_now_s() < dl)
    cktest_sleep_ms(50);
  cr_assert_eq(atomic_load(&other_saw), 1, "ck_reconcile_get_other read the transformed cache");
  cr_assert_eq(run_stop(&r), 0);
  ck_manager_free(m);
  counts_free(&c);
  counts_free(&plain);
  free(key);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* Handlers (crdkit/operator.h) on the real apiserver: create, update with
 * the old spec and a diff, progress in status, delete through the
 * finalizer also when it happened while the operator was down, resume,
 * retry and permanent outcomes, timers, and pykubeop's status.state rule. */
#include "cktest.h"

#include "crdkit/crd.h"
#include "crdkit/objects.h"
#include "crdkit/operator.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a CRD of our own ------------------------------------------------------------ */

static const ck_crd_field_t gadget_spec[] = {
    {.name = "size", .type = CK_CRD_INTEGER, .description = "Parts."},
    {.name = "color", .type = CK_CRD_STRING, .description = "Paint."},
    {.name = "mode", .type = CK_CRD_STRING, .description = "How the test handler behaves."},
    {0},
};
static const ck_crd_field_t gadget_status[] = {
    CK_HANDLER_STATUS_FIELDS,
    {.name = "size", .type = CK_CRD_INTEGER, .description = "Handled size."},
    {.name = "state", .type = CK_CRD_STRING, .description = "pykubeop's state."},
    {0},
};
static const ck_crd_version_t gadget_versions[] = {
    {.name = "v1", .served = true, .storage = true,
     .spec = &(const ck_crd_field_t){.description = "Spec.", .fields = gadget_spec},
     .status = &(const ck_crd_field_t){.description = "Status.", .fields = gadget_status},
     .status_subresource = true},
    {0},
};

static ck_crd_t gadget_crd(char *group, size_t n) {
  snprintf(group, n, "h%08x.crdkit.io", cktest_rand32());
  return (ck_crd_t){.group = group, .kind = "Gadget", .plural = "gadgets",
                    .versions = gadget_versions};
}

/* ---- the recording handlers ------------------------------------------------------- */

typedef struct rec {
  pthread_mutex_t mu;
  json_t *calls; /* [{reason, name, diff, old}] */
} rec_t;

static rec_t R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void record(ck_handler_t *h) {
  const json_t *obj = ck_handler_object(h);
  /* Read the old spec through: ASan catches one that is not alive. */
  json_t *old_copy = json_deep_copy(ck_handler_old_spec(h));
  json_decref(old_copy);
  json_t *c = json_pack("{s:s,s:s,s:O,s:b,s:b,s:b}", "reason", ck_handler_reason(h), "name",
                        ck_obj_name(obj), "diff", ck_handler_diff(h), "old",
                        ck_handler_old_spec(h) != NULL, "size_changed",
                        ck_handler_changed(h, "spec.size"), "color_changed",
                        ck_handler_changed(h, "spec.color"));
  pthread_mutex_lock(&R.mu);
  json_array_append_new(R.calls, c);
  pthread_mutex_unlock(&R.mu);
}

static int calls(const char *reason, const char *name) {
  int n = 0;
  size_t i;
  json_t *c;
  pthread_mutex_lock(&R.mu);
  json_array_foreach(R.calls, i, c) n += strcmp(cktest_jstr(c, "reason"), reason) == 0 &&
                                         strcmp(cktest_jstr(c, "name"), name) == 0;
  pthread_mutex_unlock(&R.mu);
  return n;
}

static json_t *last_call(const char *reason, const char *name) {
  json_t *out = NULL;
  size_t i;
  json_t *c;
  pthread_mutex_lock(&R.mu);
  json_array_foreach(R.calls, i, c) if (strcmp(cktest_jstr(c, "reason"), reason) == 0 &&
                                        strcmp(cktest_jstr(c, "name"), name) == 0) out = c;
  json_incref(out);
  pthread_mutex_unlock(&R.mu);
  return out;
}

static ck_outcome_t on_change(ck_handler_t *h, void *ctx) {
  (void)ctx;
  record(h);
  const json_t *spec = ck_handler_spec(h);
  const char *mode = ck_field_string(spec, "mode", "");
  const char *name = ck_obj_name(ck_handler_object(h));
  if (strcmp(mode, "retry-twice") == 0 && calls(ck_handler_reason(h), name) < 3)
    return ck_retry_after(h, 200, "not yet (call %d)", calls(ck_handler_reason(h), name));
  if (strcmp(mode, "slow") == 0) /* a timer falls due meanwhile */
    cktest_sleep_ms(450);
  if (strcmp(mode, "permanent") == 0)
    return ck_permanent(h, "size %lld can never work", (long long)ck_field_int(spec, "size", 0));
  ck_handler_status_set(h, "size", json_integer(ck_field_int(spec, "size", 0)));
  if (strcmp(ck_handler_reason(h), "create") == 0)
    ck_handler_status_set(h, "state", json_string("created"));
  return ck_ok();
}

static ck_outcome_t on_other(ck_handler_t *h, void *ctx) {
  (void)ctx;
  record(h);
  return ck_ok();
}

static const ck_timer_t tick_timers[] = {{.name = "tick", .interval_ms = 300, .fn = on_other},
                                         {0}};

/* ---- harness ------------------------------------------------------------------------ */

typedef struct env {
  ck_client_t *c;
  char group[64];
  ck_crd_t crd;
  ck_resource_t res;
  char *ns;
  ck_handlers_t hs[2];
  ck_manager_t *m;
  pthread_t t;
  int rc;
} env_t;

static void *run_main(void *arg) {
  env_t *e = arg;
  ck_error_t err = {0};
  e->rc = ck_manager_run(e->m, &err);
  return NULL;
}

static void env_up(env_t *e, ck_compat_t compat, bool timers) {
  memset(e, 0, sizeof *e);
  pthread_mutex_lock(&R.mu);
  json_decref(R.calls);
  R.calls = json_array();
  pthread_mutex_unlock(&R.mu);
  e->c = cktest_client("admin");
  e->crd = gadget_crd(e->group, sizeof e->group);
  ck_error_t err = {0};
  cr_assert_eq(ck_crd_install(e->c, &e->crd, 30000, &err), 0, "%s", err.message);
  cr_assert_eq(ck_crd_resource(&e->crd, NULL, &e->res, &err), 0);
  e->ns = cktest_ns_create(e->c, "handlers");
  e->hs[0] = (ck_handlers_t){.crd = &e->crd, .name = "gadgets", .on_create = on_change,
                             .on_update = on_change, .on_delete = on_other,
                             .on_resume = on_other, .compat = compat, .keep_last_spec = true,
                             .timers = timers ? tick_timers : NULL, .workers = 2};
}

static void mgr_start(env_t *e) {
  ck_manager_opts_t mo = {.name = "handlers-test", .namespaces = (const char *[]){e->ns},
                          .nnamespaces = 1, .metrics_addr = "0", .probe_addr = "0",
                          .no_signals = true};
  ck_error_t err = {0};
  cr_assert_eq(ck_manager_new(e->c, &mo, &e->m, &err), 0, "%s", err.message);
  cr_assert_eq(ck_handlers_add(e->m, &e->hs[0], NULL, &err), 0, "%s", err.message);
  cr_assert_eq(pthread_create(&e->t, NULL, run_main, e), 0);
}

static void mgr_stop(env_t *e) {
  ck_manager_stop(e->m);
  pthread_join(e->t, NULL);
  cr_assert_eq(e->rc, 0);
  ck_manager_free(e->m);
  e->m = NULL;
}

static void env_down(env_t *e) {
  if (e->m)
    mgr_stop(e);
  /* Objects left with our finalizer would keep the namespace. */
  json_t *list = NULL;
  ck_error_t err = {0};
  if (ck_object_list(e->c, &e->res, e->ns, NULL, &list, &err) == 0) {
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(list, "items"), i, o) {
      ck_object_patch(e->c, &e->res, e->ns, ck_obj_name(o), CK_PATCH_MERGE,
                      "{\"metadata\":{\"finalizers\":null}}", NULL, NULL, &err);
    }
    json_decref(list);
  }
  cktest_ns_delete(e->c, e->ns);
  char *name = ck_crd_name(&e->crd);
  ck_object_delete(e->c, &ck_res_crds, NULL, name, NULL, NULL, &err);
  free(name);
  ck_client_free(e->c);
  pthread_mutex_lock(&R.mu);
  json_decref(R.calls);
  R.calls = NULL;
  pthread_mutex_unlock(&R.mu);
}

static void gadget_create(env_t *e, const char *name, const char *spec) {
  char *text = cktest_asprintf("{\"apiVersion\":\"%s/v1\",\"kind\":\"Gadget\",\"metadata\":"
                               "{\"name\":\"%s\"},\"spec\":%s}",
                               e->group, name, spec);
  json_t *o = cktest_json(text);
  free(text);
  ck_error_t err = {0};
  int rc = -1;
  for (int i = 0; i < 100 && rc != 0; i++) { /* storage may lag the CRD a moment (404) */
    rc = ck_object_create(e->c, &e->res, e->ns, o, NULL, NULL, &err);
    if (rc != 0)
      cktest_sleep_ms(100);
  }
  cr_assert_eq(rc, 0, "create %s: %s", name, err.message);
  json_decref(o);
}

static void gadget_patch(env_t *e, const char *name, const char *patch) {
  ck_error_t err = {0};
  cr_assert_eq(ck_object_patch(e->c, &e->res, e->ns, name, CK_PATCH_MERGE, patch, NULL, NULL, &err),
               0, "patch %s: %s", name, err.message);
}

static json_t *gadget_get(env_t *e, const char *name) {
  json_t *o = NULL;
  ck_error_t err = {0};
  if (ck_object_get(e->c, &e->res, e->ns, name, NULL, &o, &err) != 0)
    return NULL;
  return o;
}

/* Wait until status.observedGeneration == gen and Ready has `reason`. */
static json_t *wait_status(env_t *e, const char *name, int64_t gen, const char *reason) {
  double dl = cktest_now_s() + 20;
  json_t *o = NULL;
  while (cktest_now_s() < dl) {
    json_decref(o);
    o = gadget_get(e, name);
    const json_t *st = json_object_get(o, "status");
    const json_t *c = ck_condition_find(st, "Ready");
    if (o && json_integer_value(json_object_get(st, "observedGeneration")) == gen && c &&
        strcmp(json_string_value(json_object_get(c, "reason")), reason) == 0)
      return o;
    cktest_sleep_ms(50);
  }
  char *d = json_dumps(o, JSON_COMPACT);
  cr_assert_fail("%s: no generation %lld with Ready reason %s: %s", name, (long long)gen, reason, d);
  return NULL;
}

static bool wait_calls(const char *reason, const char *name, int n, double seconds) {
  double dl = cktest_now_s() + seconds;
  while (calls(reason, name) < n && cktest_now_s() < dl)
    cktest_sleep_ms(50);
  return calls(reason, name) >= n;
}

/* ---- tests ---------------------------------------------------------------------------- */

CK_TEST(handlers, create_update_diff_and_progress) {
  env_t e;
  env_up(&e, CK_COMPAT_NONE, false);
  mgr_start(&e);
  gadget_create(&e, "g1", "{\"size\":1,\"color\":\"red\"}");
  json_t *o = wait_status(&e, "g1", 1, "Handled");
  cr_assert_eq(json_integer_value(cktest_jpath(o, "status.size")), 1);
  cr_assert(ck_condition_is_true(json_object_get(o, "status"), "Ready"));
  char fin[128];
  snprintf(fin, sizeof fin, "%s/gadgets", e.group);
  cr_assert(ck_finalizer_has(o, fin), "the default finalizer <group>/<controller> is set");
  json_decref(o);
  cr_assert_eq(calls("create", "g1"), 1);

  gadget_patch(&e, "g1", "{\"spec\":{\"size\":2}}");
  o = wait_status(&e, "g1", 2, "Handled");
  cr_assert_eq(json_integer_value(cktest_jpath(o, "status.size")), 2);
  cr_assert(json_is_object(cktest_jpath(o, "status.lastHandledSpec")));
  json_decref(o);
  json_t *u = last_call("update", "g1");
  cr_assert(u);
  cr_assert(json_is_true(json_object_get(u, "old")), "the old spec is known");
  cr_assert(json_is_true(json_object_get(u, "size_changed")));
  cr_assert(json_is_false(json_object_get(u, "color_changed")));
  json_t *want = cktest_json("[{\"op\":\"change\",\"path\":\"spec.size\",\"old\":1,\"new\":2}]");
  cr_assert(json_equal(json_object_get(u, "diff"), want), "diff: %s",
            json_dumps(json_object_get(u, "diff"), JSON_COMPACT));
  json_decref(want);
  json_decref(u);
  /* Our own status writes came back as events but ran no handler. */
  cr_assert_eq(calls("create", "g1"), 1);
  cr_assert_eq(calls("update", "g1"), 1);
  env_down(&e);
}

CK_TEST(handlers, delete_while_down_resume_and_update_after_restart) {
  env_t e;
  env_up(&e, CK_COMPAT_NONE, false);
  mgr_start(&e);
  gadget_create(&e, "gone", "{\"size\":1}");
  gadget_create(&e, "kept", "{\"size\":5,\"color\":\"blue\"}");
  json_decref(wait_status(&e, "gone", 1, "Handled"));
  json_decref(wait_status(&e, "kept", 1, "Handled"));
  mgr_stop(&e);
  /* While the operator is down: one object deleted (the finalizer holds
   * it), the other changed. */
  ck_error_t err = {0};
  cr_assert_eq(ck_object_delete(e.c, &e.res, e.ns, "gone", NULL, NULL, &err), 0, "%s", err.message);
  json_t *o = gadget_get(&e, "gone");
  cr_assert(o && ck_obj_is_deleting(o), "the finalizer keeps the object");
  json_decref(o);
  gadget_patch(&e, "kept", "{\"spec\":{\"color\":\"green\"}}");
  mgr_start(&e);
  cr_assert(wait_calls("delete", "gone", 1, 20), "on_delete ran after the restart");
  double dl = cktest_now_s() + 20;
  while ((o = gadget_get(&e, "gone")) && cktest_now_s() < dl) {
    json_decref(o);
    cktest_sleep_ms(50);
  }
  cr_assert_null(o, "the object went once on_delete was done");
  json_decref(wait_status(&e, "kept", 2, "Handled"));
  json_t *u = last_call("update", "kept");
  cr_assert(u, "the change made while down is an update");
  /* The old spec survived the restart in status.lastHandledSpec. */
  cr_assert(json_is_true(json_object_get(u, "old")));
  json_t *want = cktest_json(
      "[{\"op\":\"change\",\"path\":\"spec.color\",\"old\":\"blue\",\"new\":\"green\"}]");
  cr_assert(json_equal(json_object_get(u, "diff"), want), "diff: %s",
            json_dumps(json_object_get(u, "diff"), JSON_COMPACT));
  json_decref(want);
  json_decref(u);
  cr_assert_eq(calls("resume", "kept"), 0, "an updated object is updated, not resumed");
  mgr_stop(&e);
  /* A third start: nothing changed, so the object is resumed once. */
  mgr_start(&e);
  cr_assert(wait_calls("resume", "kept", 1, 20));
  cr_assert_eq(calls("create", "kept"), 1);
  cr_assert_eq(calls("update", "kept"), 1);
  env_down(&e);
}

CK_TEST(handlers, retry_then_permanent) {
  env_t e;
  env_up(&e, CK_COMPAT_NONE, false);
  mgr_start(&e);
  gadget_create(&e, "flaky", "{\"size\":1,\"mode\":\"retry-twice\"}");
  gadget_create(&e, "doomed", "{\"size\":7,\"mode\":\"permanent\"}");
  json_t *o = wait_status(&e, "doomed", 1, "Failed");
  const json_t *c = ck_condition_find(json_object_get(o, "status"), "Ready");
  cr_assert_str_eq(json_string_value(json_object_get(c, "status")), "False");
  cr_assert_str_eq(json_string_value(json_object_get(c, "message")), "size 7 can never work");
  json_decref(o);
  o = wait_status(&e, "flaky", 1, "Handled");
  json_decref(o);
  cr_assert_eq(calls("create", "flaky"), 3, "two retries, then done");
  /* A Warning Event names the failure. */
  char *ev = cktest_sh_ok("%s -n %s get events.events.k8s.io -o jsonpath='{.items[*].reason}'",
                          cktest_env("CRDKIT_TEST_KUBECTL"), e.ns);
  cr_assert(strstr(ev, "HandlerFailed"), "events: %s", ev);
  free(ev);
  /* Not retried: the flaky object needed 3 calls meanwhile; the doomed
   * one had exactly one. Only a new generation runs it again. */
  cr_assert_eq(calls("create", "doomed"), 1);
  gadget_patch(&e, "doomed", "{\"spec\":{\"mode\":\"fine\"}}");
  json_decref(wait_status(&e, "doomed", 2, "Handled"));
  cr_assert_eq(calls("update", "doomed"), 1);
  env_down(&e);
}

CK_TEST(handlers, timers) {
  env_t e;
  env_up(&e, CK_COMPAT_NONE, true);
  mgr_start(&e);
  gadget_create(&e, "ticking", "{\"size\":1}");
  json_decref(wait_status(&e, "ticking", 1, "Handled"));
  double t0 = cktest_now_s();
  cr_assert(wait_calls("tick", "ticking", 3, 10), "the 300 ms timer ran 3 times");
  cr_assert_geq(cktest_now_s() - t0, 0.5, "not faster than its interval");
  /* Updates while it ticks: an update and a due timer share a reconcile,
   * and the timer sees no old spec or diff of the update. */
  int ticks = calls("tick", "ticking");
  gadget_patch(&e, "ticking", "{\"spec\":{\"size\":2,\"mode\":\"slow\"}}");
  json_decref(wait_status(&e, "ticking", 2, "Handled"));
  cr_assert(wait_calls("tick", "ticking", ticks + 2, 10));
  size_t i;
  json_t *c;
  pthread_mutex_lock(&R.mu);
  json_array_foreach(R.calls, i, c) if (strcmp(cktest_jstr(c, "reason"), "tick") == 0) {
    cr_assert(json_is_false(json_object_get(c, "old")), "a timer got an old spec");
    cr_assert_eq(json_array_size(json_object_get(c, "diff")), 0, "a timer got a diff");
  }
  pthread_mutex_unlock(&R.mu);
  env_down(&e);
}

CK_TEST(handlers, pykubeop_state_rule) {
  env_t e;
  env_up(&e, CK_COMPAT_PYKUBEOP, false);
  gadget_create(&e, "processed", "{\"size\":1}");
  gadget_create(&e, "fresh", "{\"size\":2}");
  /* status.state set before the operator starts: pykubeop skips it. */
  json_t *o = gadget_get(&e, "processed");
  json_t *st = cktest_json("{\"state\":\"processed\"}");
  ck_error_t err = {0};
  cr_assert_eq(ck_status_update(e.c, &e.res, o, st, NULL, &err), 0, "%s", err.message);
  json_decref(st);
  json_decref(o);
  mgr_start(&e);
  o = wait_status(&e, "fresh", 1, "Handled");
  cr_assert_str_eq(cktest_jstr(o, "status.state"), "created");
  json_decref(o);
  cr_assert(wait_calls("resume", "processed", 1, 20));
  cr_assert_eq(calls("create", "processed"), 0, "status.state set: no create");
  cr_assert_eq(calls("create", "fresh"), 1);
  env_down(&e);
}

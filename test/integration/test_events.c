/* The Events recorder against the real apiserver: what `kubectl describe`
 * shows, aggregation into a series, Warning events, argument checks,
 * sending on free, and a server that cannot be reached. */
#include "cktest.h"

#include "crdkit/config.h"
#include "crdkit/events.h"
#include "crdkit/objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTROLLER "crdkit.io/events-test"

static ck_recorder_t *must_recorder(ck_client_t *c, int backlog) {
  ck_recorder_opts_t o = {.controller = CONTROLLER, .instance = "test-instance",
                          .backlog = backlog};
  ck_recorder_t *r = NULL;
  ck_error_t err = {0};
  int rc = ck_recorder_new(c, &o, &r, &err);
  cr_assert_eq(rc, 0, "recorder: %s", err.message);
  return r;
}

/* The events.k8s.io Events in `ns` about the object with `uid`, and with
 * `reason` unless NULL. New reference to an array. */
static json_t *events_about(ck_client_t *c, const char *ns, const char *uid, const char *reason) {
  json_t *list = NULL;
  ck_error_t err = {0};
  int rc = ck_object_list(c, &ck_res_events, ns, NULL, &list, &err);
  cr_assert_eq(rc, 0, "list events: %s", err.message);
  json_t *out = json_array();
  size_t i;
  json_t *ev;
  json_array_foreach(json_object_get(list, "items"), i, ev) {
    const char *ruid = cktest_jstr(ev, "regarding.uid");
    const char *rs = cktest_jstr(ev, "reason");
    if (ruid && strcmp(ruid, uid) == 0 && (!reason || (rs && strcmp(rs, reason) == 0)))
      json_array_append(out, ev);
  }
  json_decref(list);
  return out;
}

CK_TEST_OPTS(events, visible_in_kubectl_describe, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ev-describe");
  json_t *cm = cktest_configmap_create(admin, ns, "described", "k", "v");
  ck_recorder_t *r = must_recorder(admin, 0);

  cr_assert_eq(ck_event(r, cm, "Normal", "Synced", "Reconcile", "configmap %s synced in %d ms",
                        "described", 42),
               0);
  cr_assert_eq(ck_recorder_flush(r, 30000), 0);
  cr_assert_eq(ck_recorder_sent(r), 1);
  cr_assert_eq(ck_recorder_dropped(r), 0);

  char *out = cktest_sh_ok("%s describe configmap described -n %s 2>&1",
                           cktest_env("CRDKIT_TEST_KUBECTL"), ns);
  const char *events = strstr(out, "Events:");
  cr_assert_not_null(events, "no Events section:\n%s", out);
  cr_assert(strstr(events, "Synced") != NULL, "reason missing:\n%s", out);
  cr_assert(strstr(events, "configmap described synced in 42 ms") != NULL, "note missing:\n%s",
            out);
  cr_assert(strstr(events, "Normal") != NULL, "type missing:\n%s", out);
  free(out);

  /* The object itself, field by field. */
  json_t *found = events_about(admin, ns, ck_obj_uid(cm), "Synced");
  cr_assert_eq(json_array_size(found), 1);
  json_t *ev = json_array_get(found, 0);
  const char *name = ck_obj_name(ev);
  cr_assert(strncmp(name, "described.", 10) == 0, "name %s", name);
  cr_assert_eq(strlen(name), strlen("described.") + 16, "name %s", name);
  for (const char *p = name + 10; *p; p++)
    cr_assert(strchr("0123456789abcdef", *p) != NULL, "name %s", name);
  cr_assert_str_eq(cktest_jstr(ev, "reportingController"), CONTROLLER);
  cr_assert_str_eq(cktest_jstr(ev, "reportingInstance"), "test-instance");
  cr_assert_str_eq(cktest_jstr(ev, "action"), "Reconcile");
  cr_assert_str_eq(cktest_jstr(ev, "type"), "Normal");
  cr_assert_str_eq(cktest_jstr(ev, "regarding.kind"), "ConfigMap");
  cr_assert_str_eq(cktest_jstr(ev, "regarding.apiVersion"), "v1");
  cr_assert_str_eq(cktest_jstr(ev, "regarding.namespace"), ns);
  cr_assert_str_eq(cktest_jstr(ev, "regarding.name"), "described");
  cr_assert_str_eq(cktest_jstr(ev, "regarding.resourceVersion"), ck_obj_resource_version(cm));
  cr_assert_null(cktest_jpath(ev, "series"));
  /* MicroTime: 2026-11-22T10:00:00.000000Z */
  const char *t = cktest_jstr(ev, "eventTime");
  cr_assert(t && strlen(t) == 27 && t[19] == '.' && t[26] == 'Z', "eventTime %s", t);
  json_decref(found);

  ck_recorder_free(r, 5000);
  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(events, repeats_aggregate_into_a_series, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ev-series");
  json_t *cm = cktest_configmap_create(admin, ns, "repeated", "k", "v");
  ck_recorder_t *r = must_recorder(admin, 0);

  for (int i = 0; i < 5; i++)
    cr_assert_eq(ck_event(r, cm, "Normal", "Retrying", "Reconcile", "waiting for %s", "x"), 0);
  /* A different note is a different event. */
  cr_assert_eq(ck_event(r, cm, "Normal", "Retrying", "Reconcile", "waiting for %s", "y"), 0);
  cr_assert_eq(ck_recorder_flush(r, 30000), 0);
  cr_assert_eq(ck_recorder_sent(r), 6);
  cr_assert_eq(ck_recorder_dropped(r), 0);

  json_t *found = events_about(admin, ns, ck_obj_uid(cm), "Retrying");
  cr_assert_eq(json_array_size(found), 2, "%zu events", json_array_size(found));
  int64_t counts[2];
  for (size_t i = 0; i < 2; i++) {
    json_t *ev = json_array_get(found, i);
    json_t *c = cktest_jpath(ev, "series.count");
    counts[i] = c ? json_integer_value(c) : 1;
    if (strcmp(cktest_jstr(ev, "note"), "waiting for x") == 0) {
      cr_assert_eq(counts[i], 5);
      const char *last = cktest_jstr(ev, "series.lastObservedTime");
      cr_assert(last && strlen(last) == 27, "lastObservedTime %s", last);
    } else {
      cr_assert_str_eq(cktest_jstr(ev, "note"), "waiting for y");
      cr_assert_eq(counts[i], 1);
      cr_assert_null(cktest_jpath(ev, "series"));
    }
  }
  json_decref(found);

  /* A later repeat updates the same object (count 6). */
  cr_assert_eq(ck_event(r, cm, "Normal", "Retrying", "Reconcile", "waiting for x"), 0);
  cr_assert_eq(ck_recorder_flush(r, 30000), 0);
  found = events_about(admin, ns, ck_obj_uid(cm), "Retrying");
  cr_assert_eq(json_array_size(found), 2);
  bool six = false;
  size_t i;
  json_t *ev;
  json_array_foreach(found, i, ev) {
    if (json_integer_value(cktest_jpath(ev, "series.count")) == 6)
      six = true;
  }
  cr_assert(six, "no Event with series.count 6");
  cr_assert_eq(ck_recorder_sent(r), 7);
  json_decref(found);

  ck_recorder_free(r, 5000);
  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(events, warning_and_cluster_scoped, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ev-warn");
  json_t *cm = cktest_configmap_create(admin, ns, "warned", "k", "v");
  ck_recorder_t *r = must_recorder(admin, 0);

  cr_assert_eq(ck_event(r, cm, "Warning", "InvalidSpec", "Validate", "key %s is bad", "k"), 0);

  /* A cluster-scoped object: its events live in "default". */
  json_t *nsobj = NULL;
  ck_error_t err = {0};
  int rc = ck_object_get(admin, &ck_res_namespaces, NULL, ns, NULL, &nsobj, &err);
  cr_assert_eq(rc, 0, "get namespace: %s", err.message);
  cr_assert_eq(ck_event(r, nsobj, "Normal", "Observed", "Watch", "namespace seen"), 0);
  cr_assert_eq(ck_recorder_flush(r, 30000), 0);
  cr_assert_eq(ck_recorder_sent(r), 2, "sent %llu dropped %llu",
               (unsigned long long)ck_recorder_sent(r), (unsigned long long)ck_recorder_dropped(r));

  json_t *found = events_about(admin, ns, ck_obj_uid(cm), "InvalidSpec");
  cr_assert_eq(json_array_size(found), 1);
  cr_assert_str_eq(cktest_jstr(json_array_get(found, 0), "type"), "Warning");
  cr_assert_str_eq(cktest_jstr(json_array_get(found, 0), "note"), "key k is bad");
  json_decref(found);
  char *out = cktest_sh_ok("%s describe configmap warned -n %s 2>&1",
                           cktest_env("CRDKIT_TEST_KUBECTL"), ns);
  cr_assert(strstr(out, "Warning") && strstr(out, "InvalidSpec"), "describe:\n%s", out);
  free(out);

  found = events_about(admin, "default", ck_obj_uid(nsobj), "Observed");
  cr_assert_eq(json_array_size(found), 1);
  json_t *ev = json_array_get(found, 0);
  cr_assert_str_eq(cktest_jstr(ev, "regarding.kind"), "Namespace");
  cr_assert_null(cktest_jpath(ev, "regarding.namespace"));
  rc = ck_object_delete(admin, &ck_res_events, "default", ck_obj_name(ev), NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete event: %s", err.message);
  json_decref(found);

  ck_recorder_free(r, 5000);
  json_decref(nsobj);
  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(events, bad_arguments_and_long_notes, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ev-args");
  json_t *cm = cktest_configmap_create(admin, ns, "args", "k", "v");
  ck_error_t err = {0};
  ck_recorder_t *r = NULL;

  ck_recorder_opts_t none = {0};
  cr_assert_eq(ck_recorder_new(admin, &none, &r, &err), CK_EINVAL);
  cr_assert_null(r);
  ck_recorder_opts_t ok = {.controller = CONTROLLER};
  cr_assert_eq(ck_recorder_new(NULL, &ok, &r, &err), CK_EINVAL);
  cr_assert_eq(ck_recorder_new(admin, NULL, &r, &err), CK_EINVAL);
  ck_recorder_opts_t neg = {.controller = CONTROLLER, .backlog = -1};
  cr_assert_eq(ck_recorder_new(admin, &neg, &r, &err), CK_EINVAL);
  /* Default instance: "<controller>-<hostname>". */
  cr_assert_eq(ck_recorder_new(admin, &ok, &r, &err), 0, "%s", err.message);

  json_t *nameless = cktest_json("{\"kind\":\"ConfigMap\",\"metadata\":{\"namespace\":\"x\"}}");
  json_t *kindless = cktest_json("{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"}}");
  char long_reason[200];
  memset(long_reason, 'A', sizeof long_reason - 1);
  long_reason[sizeof long_reason - 1] = '\0';
  cr_assert_eq(ck_event(NULL, cm, "Normal", "R", "A", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, NULL, "Normal", "R", "A", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, nameless, "Normal", "R", "A", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, kindless, "Normal", "R", "A", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, cm, "Info", "R", "A", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, cm, NULL, "R", "A", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, cm, "Normal", "", "A", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, cm, "Normal", long_reason, "A", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, cm, "Normal", "R", NULL, "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, cm, "Normal", "R", "", "n"), CK_EINVAL);
  cr_assert_eq(ck_event(r, cm, "Normal", "R", "A", "%s", "\xff\xfe not UTF-8"), CK_EINVAL);
  json_decref(nameless);
  json_decref(kindless);

  /* A note over the 1 KiB limit is cut, not refused; a multi-byte
   * character straddling the cut is left out whole. */
  char big[3000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  cr_assert_eq(ck_event(r, cm, "Normal", "LongNote", "Reconcile", "%s", big), 0);
  char utf[1100];
  memset(utf, 'y', 1023);
  strcpy(utf + 1023, "\xc3\xa9tail"); /* é at bytes 1023..1024 */
  cr_assert_eq(ck_event(r, cm, "Normal", "LongUtf8", "Reconcile", "%s", utf), 0);
  cr_assert_eq(ck_recorder_flush(r, 30000), 0);
  cr_assert_eq(ck_recorder_sent(r), 2, "sent %llu dropped %llu",
               (unsigned long long)ck_recorder_sent(r), (unsigned long long)ck_recorder_dropped(r));

  json_t *found = events_about(admin, ns, ck_obj_uid(cm), "LongNote");
  cr_assert_eq(json_array_size(found), 1);
  json_t *ev = json_array_get(found, 0);
  cr_assert_eq(strlen(cktest_jstr(ev, "note")), 1024);
  const char *inst = cktest_jstr(ev, "reportingInstance");
  cr_assert(inst && strncmp(inst, CONTROLLER "-", strlen(CONTROLLER) + 1) == 0, "instance %s",
            inst);
  json_decref(found);
  found = events_about(admin, ns, ck_obj_uid(cm), "LongUtf8");
  cr_assert_eq(json_array_size(found), 1);
  cr_assert_eq(strlen(cktest_jstr(json_array_get(found, 0), "note")), 1023);
  json_decref(found);

  ck_recorder_free(r, 5000);
  ck_recorder_free(NULL, 0);
  cr_assert_eq(ck_recorder_flush(NULL, 0), CK_EINVAL);
  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

CK_TEST_OPTS(events, free_sends_pending, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "ev-free");
  json_t *cm = cktest_configmap_create(admin, ns, "pending", "k", "v");
  ck_recorder_t *r = must_recorder(admin, 0);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(ck_event(r, cm, "Normal", "Step", "Reconcile", "step %d", i), 0);
  /* Repeats still waiting for their once-a-second slot go out too. */
  for (int i = 0; i < 3; i++)
    cr_assert_eq(ck_event(r, cm, "Normal", "Step", "Reconcile", "step 0"), 0);
  ck_recorder_free(r, 20000);

  json_t *found = events_about(admin, ns, ck_obj_uid(cm), "Step");
  cr_assert_eq(json_array_size(found), 3);
  int64_t total = 0;
  size_t i;
  json_t *ev;
  json_array_foreach(found, i, ev) {
    json_t *c = cktest_jpath(ev, "series.count");
    total += c ? json_integer_value(c) : 1;
  }
  cr_assert_eq(total, 6, "occurrences on the server: %lld", (long long)total);
  json_decref(found);
  json_decref(cm);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* A client for a port where nothing listens. */
static ck_client_t *unreachable_client(const ck_client_opts_t *opts) {
  const char *kc = "apiVersion: v1\nkind: Config\n"
                   "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n"
                   "    insecure-skip-tls-verify: true\n"
                   "users:\n- name: u\n  user:\n    token: nothing\n"
                   "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: default}\n"
                   "current-context: x\n";
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  int rc = ck_config_from_kubeconfig(kc, strlen(kc), "<test>", NULL, &cfg, &err);
  cr_assert_eq(rc, 0, "kubeconfig: %s", err.message);
  ck_client_t *c = NULL;
  rc = ck_client_new(cfg, opts, &c, &err);
  ck_config_free(cfg);
  cr_assert_eq(rc, 0, "client: %s", err.message);
  return c;
}

static json_t *fake_cm(int i) {
  char name[32];
  snprintf(name, sizeof name, "cm-%d", i);
  return json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                   "metadata", "name", name, "namespace", "default", "uid", name);
}

CK_TEST_OPTS(events, unreachable_server_never_blocks, .timeout = 120) {
  /* The client's own retries (default options) hold one write for a few
   * seconds; meanwhile ck_event must return at once and the backlog
   * sheds the oldest. */
  ck_client_t *c = unreachable_client(NULL);
  ck_recorder_t *r = must_recorder(c, 10);
  int64_t t0 = cktest_now_ms();
  for (int i = 0; i < 50; i++) {
    json_t *o = fake_cm(i);
    cr_assert_eq(ck_event(r, o, "Normal", "Unsent", "Reconcile", "event %d", i), 0);
    json_decref(o);
  }
  int64_t took = cktest_now_ms() - t0;
  cr_assert_lt(took, 2000, "50 ck_event calls took %lld ms", (long long)took);
  /* At most one write in flight and ten waiting: the rest were dropped. */
  cr_assert_geq(ck_recorder_dropped(r), 39, "dropped %llu",
                (unsigned long long)ck_recorder_dropped(r));
  cr_assert_eq(ck_recorder_flush(r, 50), CK_ETIMEDOUT);

  /* free waits for the write in flight (bounded by the client's retry
   * budget, about 5 s here), not for the whole backlog. */
  t0 = cktest_now_ms();
  ck_recorder_free(r, 1000);
  took = cktest_now_ms() - t0;
  cr_assert_lt(took, 15000, "free took %lld ms", (long long)took);
  ck_client_free(c);

  /* Without client retries a write fails at once. After a failure the
   * recorder pauses before trying again, so flush times out, and free
   * gives up on a server it just found unreachable instead of spending
   * its whole timeout. */
  ck_client_opts_t no_retry = {.max_retries = -1};
  c = unreachable_client(&no_retry);
  r = must_recorder(c, 0);
  for (int i = 0; i < 20; i++) {
    json_t *o = fake_cm(i % 5);
    cr_assert_eq(ck_event(r, o, "Warning", "Unsent", "Reconcile", "event"), 0);
    json_decref(o);
  }
  double deadline = cktest_now_s() + 20;
  while (ck_recorder_dropped(r) == 0 && cktest_now_s() < deadline)
    cktest_sleep_ms(20);
  cr_assert_gt(ck_recorder_dropped(r), 0, "the first write never failed");
  cr_assert_eq(ck_recorder_sent(r), 0);
  t0 = cktest_now_ms();
  cr_assert_eq(ck_recorder_flush(r, 300), CK_ETIMEDOUT);
  took = cktest_now_ms() - t0;
  cr_assert_lt(took, 300 + 1500, "flush(300) took %lld ms", (long long)took);
  t0 = cktest_now_ms();
  ck_recorder_free(r, 10000);
  took = cktest_now_ms() - t0;
  cr_assert_lt(took, 5000, "free(10000) took %lld ms", (long long)took);
  ck_client_free(c);
}

/* Pure helpers of crdkit/objects.h: conditions (metav1.Condition rules),
 * owner references and the metadata accessors. No network. */
#include "cktest.h"

#include "crdkit/objects.h"

#include <stdlib.h>
#include <string.h>

#define T0 1767323045 /* 2026-01-02T03:04:05Z */
#define T0_S "2026-01-02T03:04:05Z"
#define T1 1767326645 /* an hour later */
#define T1_S "2026-01-02T04:04:05Z"

/* ---- conditions ---------------------------------------------------------- */

/* One step applied to the status left by the previous step. */
typedef struct cond_step {
  ck_condition_t cond;
  int64_t now;
  int want_rc;         /* 1 changed, 0 unchanged, <0 error */
  const char *want_ltt; /* lastTransitionTime afterwards (NULL: no condition) */
  const char *want_reason;
  const char *want_message;
  int64_t want_og; /* 0: key absent */
} cond_step_t;

static const cond_step_t steps[] = {
    /* New condition: stamped with now. */
    {{"Ready", "False", "Creating", "waiting for pods", 1}, T0, 1, T0_S, "Creating",
     "waiting for pods", 1},
    /* Same again, later: nothing changes, time stays. */
    {{"Ready", "False", "Creating", "waiting for pods", 1}, T1, 0, T0_S, "Creating",
     "waiting for pods", 1},
    /* Reason, message and generation change without a flip: time stays. */
    {{"Ready", "False", "Scaling", "2/3 pods", 2}, T1, 1, T0_S, "Scaling", "2/3 pods", 2},
    /* Status flips: time moves. */
    {{"Ready", "True", "Available", NULL, 2}, T1, 1, T1_S, "Available", "", 2},
    /* observedGeneration 0 removes the key. */
    {{"Ready", "True", "Available", NULL, 0}, T0, 1, T1_S, "Available", "", 0},
    /* Unknown is a status too: flips again. */
    {{"Ready", "Unknown", "Lost", "no heartbeat", 0}, T0, 1, T0_S, "Lost", "no heartbeat", 0},
    /* Invalid input changes nothing. */
    {{"Ready", "Yes", "Lost", NULL, 0}, T1, CK_EINVAL, T0_S, "Lost", "no heartbeat", 0},
    {{"Ready", "True", "not camel", NULL, 0}, T1, CK_EINVAL, T0_S, "Lost", "no heartbeat", 0},
    {{"Ready", "True", "Trailing:", NULL, 0}, T1, CK_EINVAL, T0_S, "Lost", "no heartbeat", 0},
    {{"Ready", "True", "", NULL, 0}, T1, CK_EINVAL, T0_S, "Lost", "no heartbeat", 0},
    {{"Ready", "True", NULL, NULL, 0}, T1, CK_EINVAL, T0_S, "Lost", "no heartbeat", 0},
    {{"Ready", NULL, "Why", NULL, 0}, T1, CK_EINVAL, T0_S, "Lost", "no heartbeat", 0},
    {{"Ready", "True", "Why", NULL, -1}, T1, CK_EINVAL, T0_S, "Lost", "no heartbeat", 0},
    {{"Ready", "True", "Why", "\xff\xfe", 0}, T1, CK_EINVAL, T0_S, "Lost", "no heartbeat", 0},
    /* Punctuation the API allows inside a reason. */
    {{"Ready", "Unknown", "Lost_Again,Twice:x1", "no heartbeat", 0}, T1, 1, T0_S,
     "Lost_Again,Twice:x1", "no heartbeat", 0},
};

CK_TEST(conditions, table) {
  json_t *status = json_object();
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    const cond_step_t *s = &steps[i];
    int rc = ck_condition_set(status, &s->cond, s->now);
    cr_assert_eq(rc, s->want_rc, "step %zu: rc %d, want %d", i, rc, s->want_rc);
    const json_t *c = ck_condition_find(status, "Ready");
    cr_assert_not_null(c, "step %zu: condition missing", i);
    json_t *cc = (json_t *)c;
    cr_assert_str_eq(cktest_jstr(cc, "type"), "Ready", "step %zu", i);
    cr_assert_str_eq(cktest_jstr(cc, "lastTransitionTime"), s->want_ltt, "step %zu", i);
    cr_assert_str_eq(cktest_jstr(cc, "reason"), s->want_reason, "step %zu", i);
    cr_assert_str_eq(cktest_jstr(cc, "message"), s->want_message, "step %zu", i);
    json_t *og = json_object_get(c, "observedGeneration");
    if (s->want_og)
      cr_assert_eq(json_integer_value(og), s->want_og, "step %zu", i);
    else
      cr_assert_null(og, "step %zu: observedGeneration should be absent", i);
    cr_assert_eq(json_array_size(json_object_get(status, "conditions")), 1, "step %zu", i);
  }
  json_decref(status);
}

CK_TEST(conditions, several_types_find_remove) {
  json_t *status = json_pack("{s:s}", "phase", "Running");
  cr_assert_not(ck_condition_is_true(status, "Ready"));
  cr_assert_null(ck_condition_find(status, "Ready"));
  cr_assert_eq(ck_condition_remove(status, "Ready"), 0);

  ck_condition_t ready = {.type = "Ready", .status = "True", .reason = "Ok"};
  ck_condition_t degraded = {.type = "Degraded", .status = "False", .reason = "Fine",
                             .message = "all good"};
  cr_assert_eq(ck_condition_set(status, &ready, T0), 1);
  cr_assert_eq(ck_condition_set(status, &degraded, T1), 1);
  cr_assert_eq(json_array_size(json_object_get(status, "conditions")), 2);
  cr_assert(ck_condition_is_true(status, "Ready"));
  cr_assert_not(ck_condition_is_true(status, "Degraded"));
  cr_assert_str_eq(cktest_jstr((json_t *)ck_condition_find(status, "Degraded"),
                               "lastTransitionTime"),
                   T1_S);
  /* Other status fields are left alone. */
  cr_assert_str_eq(cktest_jstr(status, "phase"), "Running");

  cr_assert_eq(ck_condition_remove(status, "Ready"), 1);
  cr_assert_eq(ck_condition_remove(status, "Ready"), 0);
  cr_assert_null(ck_condition_find(status, "Ready"));
  cr_assert_not_null(ck_condition_find(status, "Degraded"));
  cr_assert_eq(json_array_size(json_object_get(status, "conditions")), 1);

  /* Not a status object / conditions not an array: refused, untouched. */
  json_t *bad = json_pack("{s:s}", "conditions", "nope");
  cr_assert_eq(ck_condition_set(bad, &ready, T0), CK_EINVAL);
  cr_assert_str_eq(cktest_jstr(bad, "conditions"), "nope");
  json_t *arr = json_array();
  cr_assert_eq(ck_condition_set(arr, &ready, T0), CK_EINVAL);
  cr_assert_eq(ck_condition_set(NULL, &ready, T0), CK_EINVAL);
  cr_assert_eq(ck_condition_set(status, NULL, T0), CK_EINVAL);
  cr_assert_null(ck_condition_find(NULL, "Ready"));
  cr_assert_not(ck_condition_is_true(NULL, "Ready"));
  json_decref(bad);
  json_decref(arr);
  json_decref(status);
}

CK_TEST(conditions, now_zero_uses_the_clock) {
  json_t *status = json_object();
  ck_condition_t c = {.type = "Ready", .status = "True", .reason = "Ok"};
  cr_assert_eq(ck_condition_set(status, &c, 0), 1);
  const char *ltt = cktest_jstr((json_t *)ck_condition_find(status, "Ready"),
                                "lastTransitionTime");
  cr_assert_not_null(ltt);
  /* RFC 3339 in UTC, whole seconds, and not our fixed 2026-01-02 stamp. */
  cr_assert_eq(strlen(ltt), 20, "%s", ltt);
  cr_assert_eq(ltt[19], 'Z', "%s", ltt);
  cr_assert_str_neq(ltt, T0_S);
  json_decref(status);
}

/* ---- owner references ------------------------------------------------------- */

static json_t *owner(const char *kind, const char *name, const char *uid) {
  return json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "apiVersion", "example.io/v1", "kind", kind,
                   "metadata", "name", name, "namespace", "ns", "uid", uid);
}

CK_TEST(owner_refs, add_update_and_controller) {
  json_t *child = json_pack("{s:{s:s}}", "metadata", "name", "child");
  json_t *a = owner("App", "a", "uid-a"), *b = owner("App", "b", "uid-b");
  cr_assert_null(ck_owner_controller(child));

  cr_assert_eq(ck_owner_ref_set(child, a, false), 0);
  json_t *refs = cktest_jpath(child, "metadata.ownerReferences");
  cr_assert_eq(json_array_size(refs), 1);
  json_t *r0 = json_array_get(refs, 0);
  cr_assert_str_eq(cktest_jstr(r0, "apiVersion"), "example.io/v1");
  cr_assert_str_eq(cktest_jstr(r0, "kind"), "App");
  cr_assert_str_eq(cktest_jstr(r0, "name"), "a");
  cr_assert_str_eq(cktest_jstr(r0, "uid"), "uid-a");
  cr_assert_null(json_object_get(r0, "controller"));
  cr_assert_null(json_object_get(r0, "blockOwnerDeletion"));
  cr_assert_null(ck_owner_controller(child));

  /* Same uid again, now as controller: updated in place, not appended. */
  cr_assert_eq(ck_owner_ref_set(child, a, true), 0);
  cr_assert_eq(json_array_size(refs), 1);
  r0 = json_array_get(refs, 0);
  cr_assert(json_is_true(json_object_get(r0, "controller")));
  cr_assert(json_is_true(json_object_get(r0, "blockOwnerDeletion")));
  cr_assert_eq(ck_owner_controller(child), r0);

  /* A second owner is fine, a second controller is not. */
  cr_assert_eq(ck_owner_ref_set(child, b, false), 0);
  cr_assert_eq(json_array_size(refs), 2);
  cr_assert_eq(ck_owner_ref_set(child, b, true), CK_EINVAL);
  cr_assert_eq(json_array_size(refs), 2);
  cr_assert_null(json_object_get(json_array_get(refs, 1), "controller"));
  cr_assert_str_eq(cktest_jstr((json_t *)ck_owner_controller(child), "uid"), "uid-a");

  /* Same name, new uid (the owner was re-created): a separate reference. */
  json_t *a2 = owner("App", "a", "uid-a2");
  cr_assert_eq(ck_owner_ref_set(child, a2, false), 0);
  cr_assert_eq(json_array_size(refs), 3);

  /* Updating a changed kind/name keeps the position. */
  json_t *a_renamed = owner("Application", "a-new", "uid-a");
  cr_assert_eq(ck_owner_ref_set(child, a_renamed, true), 0);
  cr_assert_eq(json_array_size(refs), 3);
  cr_assert_str_eq(cktest_jstr(json_array_get(refs, 0), "kind"), "Application");
  cr_assert_str_eq(cktest_jstr(json_array_get(refs, 0), "name"), "a-new");

  json_decref(a);
  json_decref(a2);
  json_decref(a_renamed);
  json_decref(b);
  json_decref(child);
}

CK_TEST(owner_refs, invalid_owner_or_child) {
  json_t *child = json_object(); /* no metadata yet: created */
  json_t *ok = owner("App", "a", "uid-a");
  cr_assert_eq(ck_owner_ref_set(child, ok, true), 0);
  cr_assert_eq(json_array_size(cktest_jpath(child, "metadata.ownerReferences")), 1);

  const char *bad_owners[] = {
      "{\"kind\":\"App\",\"metadata\":{\"name\":\"a\",\"uid\":\"u\"}}",
      "{\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\",\"uid\":\"u\"}}",
      "{\"apiVersion\":\"v1\",\"kind\":\"App\",\"metadata\":{\"uid\":\"u\"}}",
      "{\"apiVersion\":\"v1\",\"kind\":\"App\",\"metadata\":{\"name\":\"a\"}}",
      "{\"apiVersion\":\"v1\",\"kind\":\"App\",\"metadata\":{\"name\":\"a\",\"uid\":\"\"}}",
      "{\"apiVersion\":\"\",\"kind\":\"App\",\"metadata\":{\"name\":\"a\",\"uid\":\"u\"}}",
  };
  for (size_t i = 0; i < sizeof bad_owners / sizeof bad_owners[0]; i++) {
    json_t *o = cktest_json(bad_owners[i]);
    cr_assert_eq(ck_owner_ref_set(child, o, false), CK_EINVAL, "owner %zu", i);
    json_decref(o);
  }
  cr_assert_eq(json_array_size(cktest_jpath(child, "metadata.ownerReferences")), 1);
  cr_assert_eq(ck_owner_ref_set(NULL, ok, false), CK_EINVAL);
  cr_assert_eq(ck_owner_ref_set(child, NULL, false), CK_EINVAL);
  json_t *weird = cktest_json("{\"metadata\":{\"ownerReferences\":{}}}");
  cr_assert_eq(ck_owner_ref_set(weird, ok, false), CK_EINVAL);
  json_decref(weird);
  json_decref(ok);
  json_decref(child);
}

/* ---- accessors ------------------------------------------------------------- */

CK_TEST(accessors, metadata) {
  json_t *o = cktest_json("{\"metadata\":{\"name\":\"n\",\"namespace\":\"ns\",\"uid\":\"u1\","
                          "\"resourceVersion\":\"42\",\"generation\":7,"
                          "\"deletionTimestamp\":\"2026-01-02T03:04:05Z\","
                          "\"finalizers\":[\"a.io/x\",\"b.io/y\"]}}");
  cr_assert_str_eq(ck_obj_name(o), "n");
  cr_assert_str_eq(ck_obj_namespace(o), "ns");
  cr_assert_str_eq(ck_obj_uid(o), "u1");
  cr_assert_str_eq(ck_obj_resource_version(o), "42");
  cr_assert_eq(ck_obj_generation(o), 7);
  cr_assert(ck_obj_is_deleting(o));
  char *key = ck_obj_key(o);
  cr_assert_str_eq(key, "ns/n");
  free(key);
  cr_assert(ck_finalizer_has(o, "b.io/y"));
  cr_assert_not(ck_finalizer_has(o, "b.io"));
  cr_assert_not(ck_finalizer_has(o, NULL));

  json_t *cluster = cktest_json("{\"metadata\":{\"name\":\"node-1\",\"generation\":\"x\"}}");
  key = ck_obj_key(cluster);
  cr_assert_str_eq(key, "node-1");
  free(key);
  cr_assert_null(ck_obj_namespace(cluster));
  cr_assert_null(ck_obj_uid(cluster));
  cr_assert_eq(ck_obj_generation(cluster), 0);
  cr_assert_not(ck_obj_is_deleting(cluster));
  cr_assert_not(ck_finalizer_has(cluster, "a.io/x"));

  json_t *empty = json_object();
  cr_assert_null(ck_obj_name(empty));
  cr_assert_null(ck_obj_key(empty));
  cr_assert_null(ck_obj_name(NULL));
  cr_assert_null(ck_obj_key(NULL));
  cr_assert_eq(ck_obj_generation(NULL), 0);
  json_decref(empty);
  json_decref(cluster);
  json_decref(o);
}

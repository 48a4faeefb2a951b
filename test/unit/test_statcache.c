/* What the AWSAuth cache keeps of a status (operators/aws-auth/statcache.c):
 * the digest of a whole status equals the digest of what the operator
 * wants exactly when the status says it, and every field it compares
 * changes it; the transform keeps the digest, the transition times and
 * foreign conditions; a status built on the reduced one carries the
 * transition times; bad statuses match nothing and never crash. */
#include "cktest.h"

#include "statcache.h"

#include <stdlib.h>
#include <string.h>

/* A want as the operator computes it for a valid, applied object. */
static aa_status_want_t want_of(const json_t *arns) {
  aa_status_want_t w = {.generation = 3, .type = "mapRoles", .entries = 2, .arns = arns,
                        .warnings = NULL};
  static const char *const status[AA_NCONDS] = {"False", "False", "False", "False", "True"};
  static const char *const reason[AA_NCONDS] = {"Valid", "NoConflict", "Active", "Healthy",
                                                "Applied"};
  for (int i = 0; i < AA_NCONDS; i++)
    w.c[i] = (ck_condition_t){.type = aa_cond_types[i], .status = status[i],
                              .reason = reason[i], .message = i == 4 ? "2 entries in x/y" : "",
                              .observed_generation = 3};
  return w;
}

/* The status build_status writes for w, on top of base (borrowed). */
static json_t *status_of(const aa_status_want_t *w, const json_t *base, int64_t now) {
  json_t *s = base ? json_deep_copy(base) : json_object();
  json_object_set_new(s, "observedGeneration", json_integer(w->generation));
  json_object_set_new(s, "type", json_string(w->type));
  json_object_set_new(s, "entries", json_integer(w->entries));
  json_object_set_new(s, "arns", w->arns ? json_deep_copy(w->arns) : json_array());
  json_object_set_new(s, "warnings", w->warnings ? json_deep_copy(w->warnings) : json_array());
  for (int i = 0; i < AA_NCONDS; i++)
    cr_assert_geq(ck_condition_set(s, &w->c[i], now), 0);
  return s;
}

static void digest_eq(const json_t *status, const aa_status_want_t *w, bool eq) {
  char a[33], b[33];
  cr_assert_eq(aa_status_digest(status, a), 0);
  cr_assert_eq(aa_status_want_digest(w, b), 0);
  cr_assert_eq(strlen(a), 32);
  cr_assert_eq(strcmp(a, b) == 0, eq, "%s vs %s", a, b);
}

CK_TEST(statcache, digest_matches_exactly_what_is_compared) {
  json_t *arns = cktest_json("[\"arn:aws:iam::111122223333:role/a\",\"arn:aws:iam::111122223333:role/b\"]");
  aa_status_want_t w = want_of(arns);
  json_t *s = status_of(&w, NULL, 1700000000);
  digest_eq(s, &w, true);
  /* Transition times are not compared: a status written earlier matches. */
  json_t *older = status_of(&w, NULL, 1600000000);
  digest_eq(older, &w, true);

  /* Every compared field of the status changes the digest. */
  static const char *const edits[] = {
      "{\"observedGeneration\": 2}", "{\"observedGeneration\": \"3\"}", "{\"type\": \"mapUsers\"}",
      "{\"entries\": 1}", "{\"arns\": [\"arn:aws:iam::111122223333:role/a\"]}",
      "{\"arns\": null}", "{\"warnings\": [\"w\"]}", "{\"conditions\": []}",
  };
  for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
    json_t *e = json_deep_copy(s);
    json_t *edit = cktest_json(edits[i]);
    json_object_update(e, edit);
    json_decref(edit);
    digest_eq(e, &w, false);
    json_decref(e);
  }
  json_t *e = json_deep_copy(s);
  json_object_del(e, "entries");
  digest_eq(e, &w, false);
  json_decref(e);
  /* ... and so does every compared field of each condition. */
  static const char *const fields[] = {"status", "reason", "message", "observedGeneration"};
  for (int c = 0; c < AA_NCONDS; c++)
    for (size_t f = 0; f < 4; f++) {
      json_t *x = json_deep_copy(s);
      json_t *cond = (json_t *)ck_condition_find(x, aa_cond_types[c]);
      cr_assert_not_null(cond);
      json_object_set_new(cond, fields[f], f == 3 ? json_integer(9) : json_string("Unknown"));
      digest_eq(x, &w, false);
      json_decref(x);
    }
  /* The want side: each of its fields too. */
  aa_status_want_t w2 = w;
  w2.c[4].message = "3 entries in x/y";
  digest_eq(s, &w2, false);
  w2 = w;
  w2.generation = 4;
  digest_eq(s, &w2, false);
  w2 = w;
  w2.arns = NULL;
  digest_eq(s, &w2, false);
  /* Bad statuses match nothing and do not crash. */
  json_t *bad = json_string("garbage");
  digest_eq(bad, &w, false);
  digest_eq(NULL, &w, false);
  json_decref(bad);
  /* A want whose conditions are out of order is refused. */
  w2 = w;
  w2.c[0] = w.c[1];
  char d[33];
  cr_assert_eq(aa_status_want_digest(&w2, d), CK_EINVAL);
  cr_assert_str_eq(d, "");
  json_decref(s);
  json_decref(older);
  json_decref(arns);
}

CK_TEST(statcache, transform_keeps_digest_times_and_foreign_conditions) {
  json_t *arns = cktest_json("[\"arn:aws:iam::111122223333:role/a\"]");
  aa_status_want_t w = want_of(arns);
  w.entries = 1;
  json_t *s = status_of(&w, NULL, 1700000000);
  /* All conditions share one time but the third. */
  json_object_set_new((json_t *)ck_condition_find(s, aa_cond_types[2]), "lastTransitionTime",
                      json_string("2021-05-05T05:05:05Z"));
  json_array_append_new(json_object_get(s, "conditions"),
                        cktest_json("{\"type\":\"Custom\",\"status\":\"True\",\"reason\":\"Mine\","
                                    "\"message\":\"kept\",\"lastTransitionTime\":"
                                    "\"2020-01-01T00:00:00Z\"}"));
  json_t *obj = json_pack("{s:{s:s},s:{},s:O}", "metadata", "name", "a", "spec", "status", s);
  char *text = json_dumps(obj, JSON_COMPACT);
  size_t whole = strlen(text);
  free(text);
  obj = aa_status_transform(NULL, obj);
  cr_assert_not_null(obj);
  json_t *t = json_object_get(obj, "status");
  cr_assert_null(json_object_get(t, "arns"));
  cr_assert_null(json_object_get(t, "conditions"));
  /* A time is written only where it differs from the one before: the
   * first, the third, and the fourth (back to the first's). */
  const char *tl = json_string_value(json_object_get(t, "t"));
  cr_assert_not_null(tl);
  int ats = 0;
  for (const char *p = tl; *p; p++)
    ats += *p == '@';
  cr_assert_eq(ats, 3, "t: %s", tl);
  text = json_dumps(obj, JSON_COMPACT);
  cr_assert_lt(strlen(text), whole / 2, "reduced: %s", text);
  free(text);
  /* The cached digest is the whole status's, and it matches the want. */
  char a[33], b[33], c[33];
  cr_assert_eq(aa_status_digest(s, a), 0);
  cr_assert_eq(aa_obj_status_digest(obj, b), 0);
  cr_assert_eq(aa_status_want_digest(&w, c), 0);
  cr_assert_str_eq(a, b);
  cr_assert_str_eq(b, c);
  /* Transforming again (our own copy observed) changes nothing. */
  json_t *again = aa_status_transform(NULL, json_deep_copy(obj));
  cr_assert(json_equal(again, obj));
  json_decref(again);

  /* The base keeps each condition's status and time, and the foreign one. */
  json_t *base = aa_status_base(t);
  cr_assert_not_null(base);
  cr_assert_eq(json_array_size(json_object_get(base, "conditions")), AA_NCONDS + 1);
  for (int i = 0; i < AA_NCONDS; i++) {
    const json_t *orig = ck_condition_find(s, aa_cond_types[i]);
    const json_t *got = ck_condition_find(base, aa_cond_types[i]);
    cr_assert_not_null(got, "%s", aa_cond_types[i]);
    cr_assert(json_equal(json_object_get(orig, "status"), json_object_get(got, "status")));
    cr_assert(json_equal(json_object_get(orig, "lastTransitionTime"),
                         json_object_get(got, "lastTransitionTime")));
  }
  cr_assert(json_equal((json_t *)ck_condition_find(s, "Custom"),
                       (json_t *)ck_condition_find(base, "Custom")));
  /* The next status built on it keeps the times where nothing flipped and
   * equals the one built on the whole status. */
  w.c[4].message = "1 entries in x/z";
  json_t *next_reduced = status_of(&w, base, 1800000000);
  json_t *next_whole = status_of(&w, s, 1800000000);
  for (int i = 0; i < AA_NCONDS + 1; i++) {
    const char *type = i < AA_NCONDS ? aa_cond_types[i] : "Custom";
    cr_assert(json_equal((json_t *)ck_condition_find(next_reduced, type),
                         (json_t *)ck_condition_find(next_whole, type)),
              "%s", type);
  }
  cr_assert_str_eq(json_string_value(json_object_get(ck_condition_find(next_reduced, "Ready"),
                                                     "lastTransitionTime")),
                   json_string_value(json_object_get(ck_condition_find(s, "Ready"),
                                                     "lastTransitionTime")));
  /* A base from a whole status is a copy of it. */
  json_t *copy = aa_status_base(s);
  cr_assert(json_equal(copy, s));
  json_decref(copy);
  json_decref(next_reduced);
  json_decref(next_whole);
  json_decref(base);
  json_decref(obj);
  json_decref(s);
  json_decref(arns);
}

CK_TEST(statcache, odd_statuses) {
  /* No status: left alone; a status that is not an object: a digest that
   * matches nothing; times with separators in them are dropped (they get a
   * new time), not spliced. */
  json_t *o = aa_status_transform(NULL, cktest_json("{\"spec\":{}}"));
  cr_assert_null(json_object_get(o, "status"));
  json_decref(o);
  o = aa_status_transform(NULL, cktest_json("{\"status\":\"text\"}"));
  cr_assert(json_is_string(json_object_get(json_object_get(o, "status"), AA_STATUS_DIGEST_KEY)));
  json_t *base = aa_status_base(json_object_get(o, "status"));
  cr_assert_eq(json_array_size(json_object_get(base, "conditions")), 0);
  json_decref(base);
  json_decref(o);
  o = aa_status_transform(NULL, cktest_json(
      "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
      "\"lastTransitionTime\":\"x,Invalid=True@y\"},{\"type\":\"Invalid\",\"status\":\"False\","
      "\"lastTransitionTime\":\"2020-01-01T00:00:00Z\"},7,{\"type\":5}]}}"));
  base = aa_status_base(json_object_get(o, "status"));
  cr_assert_null(ck_condition_find(base, "Ready"));
  const json_t *inv = ck_condition_find(base, "Invalid");
  cr_assert_str_eq(json_string_value(json_object_get(inv, "status")), "False");
  /* the two malformed entries are "other conditions", kept as they were */
  cr_assert_eq(json_array_size(json_object_get(base, "conditions")), 3);
  json_decref(base);
  json_decref(o);
  /* A cached "t" that is not well formed yields what parses. */
  json_t *cached = cktest_json("{\"" AA_STATUS_DIGEST_KEY "\":\"0123456789abcdef0123456789abcdef\","
                               "\"t\":\"=,Ready=@,Ready=True@,Ready=True@2020-01-01T00:00:00Z,,\"}");
  base = aa_status_base(cached);
  cr_assert_eq(json_array_size(json_object_get(base, "conditions")), 1);
  json_decref(base);
  json_decref(cached);
}

/* metav1.Condition in a status object. */
#include "crdkit/objects.h"

#include "crdkit/error.h"
#include "util/timeutil.h"

#include <string.h>

/* The API's own limits (metav1.Condition validation), checked here so a
 * bad condition fails at the call that made it, not at a later write. */
#define REASON_MAX 1024
#define TYPE_MAX 316
#define MESSAGE_MAX 32768

static bool is_alpha(char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); }
static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$ */
static bool valid_reason(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > REASON_MAX || !is_alpha(s[0]))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '_' && s[i] != ',' && s[i] != ':')
      return false;
  return s[n - 1] != ',' && s[n - 1] != ':';
}

static bool valid_status(const char *s) {
  return s && (strcmp(s, "True") == 0 || strcmp(s, "False") == 0 || strcmp(s, "Unknown") == 0);
}

static bool str_eq(const json_t *v, const char *s) {
  return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* Sets key to a string unless it already holds it: 1 changed, 0 same,
 * CK_ENOMEM. */
static int set_str(json_t *o, const char *key, const char *val) {
  if (str_eq(json_object_get(o, key), val))
    return 0;
  json_t *s = json_string(val);
  if (!s || json_object_set_new(o, key, s))
    return CK_ENOMEM;
  return 1;
}

static int find_index(const json_t *status, const char *type) {
  const json_t *conds = json_object_get(status, "conditions");
  size_t i;
  const json_t *c;
  json_array_foreach(conds, i, c) {
    if (str_eq(json_object_get(c, "type"), type))
      return (int)i;
  }
  return -1;
}

const json_t *ck_condition_find(const json_t *status, const char *type) {
  if (!type)
    return NULL;
  int i = find_index(status, type);
  return i < 0 ? NULL : json_array_get(json_object_get(status, "conditions"), (size_t)i);
}

bool ck_condition_is_true(const json_t *status, const char *type) {
  return str_eq(json_object_get(ck_condition_find(status, type), "status"), "True");
}

int ck_condition_remove(json_t *status, const char *type) {
  if (!type)
    return 0;
  int i = find_index(status, type);
  if (i < 0)
    return 0;
  json_array_remove(json_object_get(status, "conditions"), (size_t)i);
  return 1;
}

int ck_condition_set(json_t *status, const ck_condition_t *cond, int64_t now) {
  if (!json_is_object(status) || !cond || !cond->type || !*cond->type ||
      strlen(cond->type) > TYPE_MAX || !valid_status(cond->status) ||
      !valid_reason(cond->reason) || (cond->message && strlen(cond->message) > MESSAGE_MAX) ||
      cond->observed_generation < 0)
    return CK_EINVAL;
  json_t *conds = json_object_get(status, "conditions");
  if (conds && !json_is_array(conds))
    return CK_EINVAL;
  /* Validate UTF-8 before touching anything, so a failure changes nothing. */
  json_t *msg = json_string(cond->message ? cond->message : "");
  if (!msg)
    return cond->message ? CK_EINVAL : CK_ENOMEM;

  char ts[32];
  ck_rfc3339_format(now ? now : ck_wall_s(), ts);
  int idx = find_index(status, cond->type);
  if (idx < 0) {
    /* message is required by the API even when empty. */
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:o}", "type", cond->type, "status", cond->status,
                          "lastTransitionTime", ts, "reason", cond->reason, "message", msg);
    if (!c)
      return CK_ENOMEM;
    if (cond->observed_generation > 0 &&
        json_object_set_new(c, "observedGeneration", json_integer(cond->observed_generation))) {
      json_decref(c);
      return CK_ENOMEM;
    }
    if (!conds) {
      conds = json_array();
      if (!conds || json_object_set_new(status, "conditions", conds)) {
        json_decref(c);
        return CK_ENOMEM;
      }
    }
    return json_array_append_new(conds, c) ? CK_ENOMEM : 1;
  }

  json_t *c = json_array_get(conds, (size_t)idx);
  int changed = 0, r;
  /* The transition time records when status last flipped, which is what
   * `kubectl wait` users and alerting read; touching it on every reason or
   * message change would hide how long a condition has really held. */
  bool flipped = !str_eq(json_object_get(c, "status"), cond->status);
  if (flipped || !json_is_string(json_object_get(c, "lastTransitionTime"))) {
    if ((r = set_str(c, "lastTransitionTime", ts)) < 0)
      goto fail;
    changed |= r;
  }
  if ((r = set_str(c, "status", cond->status)) < 0)
    goto fail;
  changed |= r;
  if ((r = set_str(c, "reason", cond->reason)) < 0)
    goto fail;
  changed |= r;
  if (!json_equal(json_object_get(c, "message"), msg)) {
    if (json_object_set(c, "message", msg))
      goto fail;
    changed = 1;
  }
  json_t *og = json_object_get(c, "observedGeneration");
  if (cond->observed_generation > 0) {
    if (!json_is_integer(og) || json_integer_value(og) != cond->observed_generation) {
      if (json_object_set_new(c, "observedGeneration", json_integer(cond->observed_generation)))
        goto fail;
      changed = 1;
    }
  } else if (og) {
    json_object_del(c, "observedGeneration");
    changed = 1;
  }
  json_decref(msg);
  return changed;
fail:
  json_decref(msg);
  return CK_ENOMEM;
}

/* One AWSAuth object -> its status skeleton and the entries it asks for.
 * The CRD's CEL rules should already refuse most of this; the operator
 * checks again because a CRD can be edited or installed in an older
 * version, and aws-auth is too dangerous to trust it. */
#include "awsauth.h"
#include "statcache.h"

#include "util/strmap.h"
#include "util/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static int invalid(aa_obj_status_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int invalid(aa_obj_status_t *st, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  st->valid = false;
  json_array_clear(st->arns);
  free(st->invalid_msg);
  st->invalid_msg = strdup(msg);
  return st->invalid_msg ? 0 : CK_ENOMEM;
}

static int add_warnings(aa_obj_status_t *st, const char *where, const char *warn) {
  if (!warn[0])
    return 0;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s: %s", where, warn);
  return json_array_append_new(st->warnings, json_string(msg)) ? CK_ENOMEM : 0;
}

/* Validate spec.<list>[i] into a normalised entry. Returns 0 with *entry
 * set, 0 with *entry NULL after marking st invalid, or CK_ENOMEM. */
static int parse_item(aa_obj_status_t *st, aa_kind_t kind, size_t i, const json_t *item,
                      json_t **entry) {
  *entry = NULL;
  const char *list = aa_kind_key(kind);
  const char *arn_f = kind == AA_ROLES ? "rolearn" : "userarn";
  const char *other_f = kind == AA_ROLES ? "userarn" : "rolearn";
  char where[64], warn[1024], why[512];
  snprintf(where, sizeof where, "spec.%s[%zu]", list, i);
  if (!json_is_object(item))
    return invalid(st, "%s: must be an object", where);
  if (json_object_get(item, other_f))
    return invalid(st, "%s: has %s; %s", where, other_f,
                   kind == AA_ROLES ? "user ARNs go under mapUsers" : "role ARNs go under mapRoles");
  const json_t *arn = json_object_get(item, arn_f);
  if (!json_is_string(arn))
    return invalid(st, "%s.%s: required string", where, arn_f);
  char *norm = NULL;
  warn[0] = '\0';
  if (strlen(json_string_value(arn)) != json_string_length(arn))
    return invalid(st, "%s.%s: contains a NUL character", where, arn_f);
  int rc = aa_arn_normalize(kind, json_string_value(arn), &norm, warn, sizeof warn, why,
                            sizeof why);
  if (rc == CK_ENOMEM)
    return rc;
  if (rc)
    return invalid(st, "%s.%s: %s", where, arn_f, why);
  char fw[96];
  snprintf(fw, sizeof fw, "%s.%s", where, arn_f);
  if ((rc = add_warnings(st, fw, warn)) != 0) {
    free(norm);
    return rc;
  }
  const json_t *user = json_object_get(item, "username");
  const json_t *groups = json_object_get(item, "groups");
  json_t *e = json_object();
  json_t *g = json_array();
  if (!e || !g || json_object_set_new(e, arn_f, json_string(norm))) {
    free(norm);
    json_decref(e);
    json_decref(g);
    return CK_ENOMEM;
  }
  free(norm);
  if (!json_is_string(user)) {
    json_decref(e);
    json_decref(g);
    return invalid(st, "%s.username: required string", where);
  }
  warn[0] = '\0';
  if (aa_name_check(json_string_value(user), json_string_length(user), false, warn, sizeof warn,
                    why, sizeof why)) {
    json_decref(e);
    json_decref(g);
    return invalid(st, "%s.username: %s", where, why);
  }
  snprintf(fw, sizeof fw, "%s.username", where);
  rc = add_warnings(st, fw, warn);
  json_object_set(e, "username", (json_t *)user);
  if (groups && !json_is_array(groups)) {
    json_decref(e);
    json_decref(g);
    return invalid(st, "%s.groups: must be a list of strings", where);
  }
  if (json_array_size(groups) > AA_MAX_GROUPS) {
    json_decref(e);
    json_decref(g);
    return invalid(st, "%s.groups: more than %d groups", where, AA_MAX_GROUPS);
  }
  size_t j;
  json_t *x;
  json_array_foreach(groups, j, x) {
    snprintf(fw, sizeof fw, "%s.groups[%zu]", where, j);
    warn[0] = '\0';
    if (!json_is_string(x) || aa_name_check(json_string_value(x), json_string_length(x), true,
                                            warn, sizeof warn, why, sizeof why)) {
      json_decref(e);
      json_decref(g);
      return invalid(st, "%s: %s", fw, json_is_string(x) ? why : "must be a string");
    }
    if (!rc)
      rc = add_warnings(st, fw, warn);
    if (!rc && json_array_append(g, x))
      rc = CK_ENOMEM;
  }
  if (rc || json_object_set_new(e, "groups", g)) {
    json_decref(e);
    return CK_ENOMEM;
  }
  *entry = e;
  return 0;
}

int aa_obj_status_copy(aa_obj_status_t *dst, const aa_obj_status_t *src) {
  *dst = *src;
  dst->ns = dst->name = dst->uid = dst->invalid_msg = dst->conflict_msg = NULL;
  dst->arns = json_incref(src->arns);
  dst->warnings = json_incref(src->warnings);
  bool ok = (!src->ns || (dst->ns = strdup(src->ns))) && (!src->name || (dst->name = strdup(src->name))) &&
            (!src->uid || (dst->uid = strdup(src->uid))) &&
            (!src->invalid_msg || (dst->invalid_msg = strdup(src->invalid_msg))) &&
            (!src->conflict_msg || (dst->conflict_msg = strdup(src->conflict_msg)));
  if (ok)
    return 0;
  aa_obj_status_clear(dst);
  return CK_ENOMEM;
}

void aa_obj_status_clear(aa_obj_status_t *st) {
  free(st->ns);
  free(st->name);
  free(st->uid);
  free(st->invalid_msg);
  free(st->conflict_msg);
  json_decref(st->arns);
  json_decref(st->warnings);
  memset(st, 0, sizeof *st);
}

int aa_object_parse(const json_t *obj, const char *finalizer, aa_obj_status_t *st,
                    json_t **desired) {
  memset(st, 0, sizeof *st);
  *desired = NULL;
  const json_t *md = json_object_get(obj, "metadata");
  const json_t *spec = json_object_get(obj, "spec");
  st->ns = strdup(jstr(md, "namespace"));
  st->name = strdup(jstr(md, "name"));
  st->uid = strdup(jstr(md, "uid"));
  st->arns = json_array();
  st->warnings = json_array();
  if (!st->ns || !st->name || !st->uid || !st->arns || !st->warnings)
    return CK_ENOMEM;
  st->generation = json_integer_value(json_object_get(md, "generation"));
  const char *ts = json_string_value(json_object_get(md, "creationTimestamp"));
  if (!ts || ck_rfc3339_parse(ts, &st->created))
    st->created = INT64_MAX;
  if (aa_obj_status_digest(obj, st->status_digest) == CK_ENOMEM)
    return CK_ENOMEM;
  st->deleting = json_object_get(md, "deletionTimestamp") != NULL &&
                 !json_is_null(json_object_get(md, "deletionTimestamp"));
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(md, "finalizers"), i, f) {
    if (json_is_string(f) && strcmp(json_string_value(f), finalizer) == 0)
      st->has_finalizer = true;
  }
  st->valid = true;
  /* deletionPolicy first: a deleting object needs it even when the rest
   * of its spec is invalid. */
  const json_t *pol = json_object_get(spec, "deletionPolicy");
  if (pol && !json_is_null(pol)) {
    if (json_is_string(pol) && strcmp(json_string_value(pol), "Retain") == 0)
      st->retain = true;
    else if (!json_is_string(pol) || strcmp(json_string_value(pol), "Delete") != 0)
      return invalid(st, "spec.deletionPolicy: must be Delete or Retain");
  }
  if (!st->name[0] || !st->ns[0])
    return invalid(st, "metadata.namespace/name: required");
  if (!json_is_object(spec))
    return invalid(st, "spec: required object");
  const json_t *sus = json_object_get(spec, "suspend");
  const json_t *tko = json_object_get(spec, "takeOver");
  if (sus && !json_is_boolean(sus) && !json_is_null(sus))
    return invalid(st, "spec.suspend: must be a boolean");
  if (tko && !json_is_boolean(tko) && !json_is_null(tko))
    return invalid(st, "spec.takeOver: must be a boolean");
  st->suspended = json_is_true(sus);
  st->take_over = json_is_true(tko);
  const json_t *roles = json_object_get(spec, "mapRoles");
  const json_t *users = json_object_get(spec, "mapUsers");
  if (json_is_null(roles))
    roles = NULL;
  if (json_is_null(users))
    users = NULL;
  if ((roles != NULL) == (users != NULL))
    return invalid(st, "spec: exactly one of mapRoles or mapUsers must be set%s",
                   roles ? ", not both" : "");
  st->kind = roles ? AA_ROLES : AA_USERS;
  const json_t *items = roles ? roles : users;
  if (!json_is_array(items))
    return invalid(st, "spec.%s: must be a list", aa_kind_key(st->kind));
  if (json_array_size(items) > AA_MAX_ENTRIES)
    return invalid(st, "spec.%s: more than %d entries", aa_kind_key(st->kind), AA_MAX_ENTRIES);
  json_t *out = json_array();
  size_t n = json_array_size(items);
  /* Two entries of one object with the same key: which one applies would
   * depend on order, so refuse. Lower-cased ARNs seen so far map to 1 +
   * their index (linear for an object of AA_MAX_ENTRIES entries); an
   * object of one entry, the usual case, allocates nothing for it. */
  bool check = n > 1;
  char **low = check ? calloc(n, sizeof *low) : NULL;
  ck_strmap_t seen = {0};
  int rc = out && (low || !check) ? 0 : CK_ENOMEM;
  bool stopped = false; /* an entry was refused (st says why) */
  const char *arn_f = st->kind == AA_ROLES ? "rolearn" : "userarn";
  json_t *item;
  json_array_foreach(items, i, item) {
    if (rc)
      break;
    json_t *e = NULL;
    rc = parse_item(st, st->kind, i, item, &e);
    if (rc || !e) {
      stopped = true;
      break;
    }
    const char *arn = json_string_value(json_object_get(e, arn_f));
    if (check) {
      if (!(low[i] = strdup(arn))) {
        json_decref(e);
        rc = CK_ENOMEM;
        break;
      }
      for (char *p = low[i]; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
          *p = (char)(*p + 32);
      void *prev = ck_strmap_get(&seen, low[i]);
      if (prev) {
        json_decref(e);
        rc = invalid(st, "spec.%s[%zu]: same ARN as spec.%s[%zu] (after normalisation)",
                     aa_kind_key(st->kind), i, aa_kind_key(st->kind),
                     (size_t)(uintptr_t)prev - 1);
        stopped = true;
        break;
      }
      if (ck_strmap_put(&seen, low[i], (void *)(uintptr_t)(i + 1), NULL)) {
        json_decref(e);
        rc = CK_ENOMEM;
        break;
      }
    }
    if (json_array_append(st->arns, json_object_get(e, arn_f)) || json_array_append_new(out, e)) {
      rc = CK_ENOMEM;
      break;
    }
  }
  ck_strmap_free(&seen);
  for (size_t k = 0; low && k < n; k++)
    free(low[k]);
  free(low);
  if (rc || stopped) {
    json_decref(out);
    return rc;
  }
  *desired = out;
  return 0;
}

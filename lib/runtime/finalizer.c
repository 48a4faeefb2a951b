/* Finalizers, written with JSON patches guarded by resourceVersion. */
#include "crdkit/objects.h"

#include "crdkit/error.h"
#include "crdkit/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTEMPTS 5

bool ck_finalizer_has(const json_t *obj, const char *finalizer) {
  if (!finalizer)
    return false;
  const json_t *list = json_object_get(json_object_get(obj, "metadata"), "finalizers");
  size_t i;
  const json_t *f;
  json_array_foreach(list, i, f) {
    if (json_is_string(f) && strcmp(json_string_value(f), finalizer) == 0)
      return true;
  }
  return false;
}

/* The apiserver answers a failed JSON-patch "test" op with 422 Invalid and
 * no field causes (kube-apiserver 1.36), not 409; a write that raced with
 * a newer one can also come back as a plain 409. Both mean "re-read". */
static bool maybe_stale(int rc, const ck_error_t *e) {
  if (rc != CK_EAPI)
    return false;
  return ck_error_is_conflict(e) || (e->http_status == 422 && e->ncauses == 0);
}

/* [test rv, <op>] as JSON text, or NULL when out of memory. `value` is
 * stolen. */
static char *guarded_patch(const char *rv, const char *op, const char *path, json_t *value) {
  json_t *p = json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:o}]", "op", "test", "path",
                        "/metadata/resourceVersion", "value", rv, "op", op, "path", path,
                        "value", value);
  char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
  json_decref(p);
  return text;
}

/* The patch that applies the change to `cur`, or NULL with *done set when
 * `cur` needs no change. *oom on allocation failure. */
static char *make_patch(const json_t *cur, const char *finalizer, bool add, bool *done,
                        bool *oom) {
  *done = add == ck_finalizer_has(cur, finalizer);
  if (*done)
    return NULL;
  const char *rv = ck_obj_resource_version(cur);
  const json_t *list = json_object_get(json_object_get(cur, "metadata"), "finalizers");
  char *text;
  if (add && json_is_array(list))
    text = guarded_patch(rv, "add", "/metadata/finalizers/-", json_string(finalizer));
  else if (add)
    text = guarded_patch(rv, "add", "/metadata/finalizers", json_pack("[s]", finalizer));
  else {
    /* One "replace" with the filtered list rather than a "remove" per
     * index: it removes duplicates too, and the test op guarantees the
     * list filtered here is the one on the server. */
    json_t *keep = json_array();
    size_t i;
    const json_t *f;
    json_array_foreach(list, i, f) {
      if (!(json_is_string(f) && strcmp(json_string_value(f), finalizer) == 0) && keep)
        json_array_append(keep, (json_t *)f);
    }
    text = keep ? guarded_patch(rv, "replace", "/metadata/finalizers", keep) : NULL;
  }
  *oom = text == NULL;
  return text;
}

static int finalizer_change(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                            const char *finalizer, bool add, json_t **out, ck_error_t *err) {
  const char *what = add ? "ck_finalizer_add" : "ck_finalizer_remove";
  if (out)
    *out = NULL;
  const char *name = ck_obj_name(obj);
  const char *ns = res && res->namespaced ? ck_obj_namespace(obj) : NULL;
  if (!c || !res || !json_is_object(obj) || !name || !*name || !finalizer || !*finalizer)
    return ck_error_set(err, CK_EINVAL, "%s: client, resource, named object and finalizer needed",
                        what);
  if (res->namespaced && (!ns || !*ns))
    return ck_error_set(err, CK_EINVAL, "%s: %s %s has no namespace", what, res->kind, name);

  /* Intermediate failures stay local: a call that succeeds after a retry
   * leaves err untouched. */
  ck_error_t e = {0};
  /* The caller's copy is borrowed; re-reads are ours. */
  json_t *fresh = NULL;
  const json_t *cur = obj;
  int rc = 0;
  for (int attempt = 0;; attempt++) {
    const char *rv = ck_obj_resource_version(cur);
    if (!rv || !*rv) {
      /* A caller may pass just a name: read the object to guard on. */
      json_t *got = NULL;
      rc = ck_object_get(c, res, ns, name, NULL, &got, &e);
      json_decref(fresh);
      fresh = got;
      cur = fresh;
      if (rc)
        break;
      rv = ck_obj_resource_version(cur);
      if (!rv || !*rv) {
        rc = ck_error_set(&e, CK_EPARSE, "%s: %s %s has no resourceVersion", what, res->kind,
                          name);
        break;
      }
    }
    bool done = false, oom = false;
    char *patch = make_patch(cur, finalizer, add, &done, &oom);
    if (done) {
      if (out)
        *out = json_incref((json_t *)cur);
      rc = 0;
      break;
    }
    if (oom) {
      rc = ck_error_set(&e, CK_ENOMEM, "%s: out of memory", what);
      break;
    }
    char tested_rv[64];
    snprintf(tested_rv, sizeof tested_rv, "%s", rv);
    rc = ck_object_patch(c, res, ns, name, CK_PATCH_JSON, patch, NULL, out, &e);
    free(patch);
    if (rc == 0 || !maybe_stale(rc, &e))
      break;

    ck_error_t patch_err = e;
    if (attempt + 1 < MAX_ATTEMPTS) {
      CK_DEBUG("finalizer", name, "%s %s: %s; reading it again (attempt %d)", what, finalizer,
               e.message, attempt + 1);
      json_t *got = NULL;
      rc = ck_object_get(c, res, ns, name, NULL, &got, &e);
      json_decref(fresh);
      fresh = got;
      cur = fresh;
      if (rc)
        break;
      const char *now_rv = ck_obj_resource_version(cur);
      if (patch_err.http_status == 422 && now_rv && strcmp(tested_rv, now_rv) == 0) {
        /* The version did not move, so the 422 was about the patch itself. */
        e = patch_err;
        rc = CK_EAPI;
        break;
      }
      continue;
    }
    /* Every attempt lost the race: a conflict, whatever the last code. */
    e = patch_err;
    e.http_status = 409;
    e.reason = CK_REASON_CONFLICT;
    snprintf(e.message, sizeof e.message, "%s %s: %s %s kept changing (%d attempts)", what,
             finalizer, res->kind, name, MAX_ATTEMPTS);
    rc = CK_EAPI;
    break;
  }
  /* Removing from an object that is gone has nothing left to do. */
  bool gone = !add && rc == CK_EAPI && ck_error_is_not_found(&e);
  if (gone)
    rc = 0;
  if ((rc || gone) && out) {
    json_decref(*out);
    *out = NULL;
  }
  if (rc && err)
    *err = e;
  json_decref(fresh);
  return rc;
}

int ck_finalizer_add(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                     const char *finalizer, json_t **out, ck_error_t *err) {
  return finalizer_change(c, res, obj, finalizer, true, out, err);
}

int ck_finalizer_remove(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                        const char *finalizer, json_t **out, ck_error_t *err) {
  return finalizer_change(c, res, obj, finalizer, false, out, err);
}

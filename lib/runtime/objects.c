/* Metadata accessors, owner references and the status subresource write. */
#include "crdkit/objects.h"
#include "util/base64.h"

#include "crdkit/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- metadata accessors ------------------------------------------------- */

static const char *meta_str(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(json_object_get(obj, "metadata"), key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *ck_obj_name(const json_t *obj) { return meta_str(obj, "name"); }
const char *ck_obj_namespace(const json_t *obj) { return meta_str(obj, "namespace"); }
const char *ck_obj_uid(const json_t *obj) { return meta_str(obj, "uid"); }
const char *ck_obj_resource_version(const json_t *obj) {
  return meta_str(obj, "resourceVersion");
}

int64_t ck_obj_generation(const json_t *obj) {
  const json_t *v = json_object_get(json_object_get(obj, "metadata"), "generation");
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

bool ck_obj_is_deleting(const json_t *obj) {
  const char *ts = meta_str(obj, "deletionTimestamp");
  return ts && *ts;
}

char *ck_obj_key(const json_t *obj) {
  const char *name = ck_obj_name(obj);
  if (!name)
    return NULL;
  const char *ns = ck_obj_namespace(obj);
  char *out = NULL;
  int n = ns && *ns ? asprintf(&out, "%s/%s", ns, name) : asprintf(&out, "%s", name);
  return n < 0 ? NULL : out;
}

/* ---- owner references ---------------------------------------------------- */

static bool ref_is_controller(const json_t *ref) {
  return json_is_true(json_object_get(ref, "controller"));
}

const json_t *ck_owner_controller(const json_t *obj) {
  const json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
  size_t i;
  const json_t *ref;
  json_array_foreach(refs, i, ref) {
    if (ref_is_controller(ref))
      return ref;
  }
  return NULL;
}

int ck_owner_ref_set(json_t *child, const json_t *owner, bool controller) {
  const json_t *av = json_object_get(owner, "apiVersion");
  const json_t *kind = json_object_get(owner, "kind");
  const char *name = ck_obj_name(owner), *uid = ck_obj_uid(owner);
  if (!json_is_object(child) || !json_is_string(av) || !*json_string_value(av) ||
      !json_is_string(kind) || !*json_string_value(kind) || !name || !*name || !uid || !*uid)
    return CK_EINVAL;

  json_t *meta = json_object_get(child, "metadata");
  if (meta && !json_is_object(meta))
    return CK_EINVAL;
  json_t *refs = meta ? json_object_get(meta, "ownerReferences") : NULL;
  if (refs && !json_is_array(refs))
    return CK_EINVAL;

  /* Matching by uid: an owner deleted and re-created under the same name
   * is a different owner, and its stale reference must stay visible to
   * the garbage collector rather than be silently rewritten. */
  size_t at = (size_t)-1, i;
  json_t *ref;
  json_array_foreach(refs, i, ref) {
    const json_t *ruid = json_object_get(ref, "uid");
    if (json_is_string(ruid) && strcmp(json_string_value(ruid), uid) == 0)
      at = i;
    else if (controller && ref_is_controller(ref))
      return CK_EINVAL; /* an object has at most one managing controller */
  }

  json_t *nref = json_pack("{s:s,s:s,s:s,s:s}", "apiVersion", json_string_value(av), "kind",
                           json_string_value(kind), "name", name, "uid", uid);
  if (!nref)
    return CK_ENOMEM;
  if (controller &&
      (json_object_set_new(nref, "controller", json_true()) ||
       json_object_set_new(nref, "blockOwnerDeletion", json_true()))) {
    json_decref(nref);
    return CK_ENOMEM;
  }
  if (!meta) {
    meta = json_object();
    if (!meta || json_object_set_new(child, "metadata", meta)) {
      json_decref(nref);
      return CK_ENOMEM;
    }
  }
  if (!refs) {
    refs = json_array();
    if (!refs || json_object_set_new(meta, "ownerReferences", refs)) {
      json_decref(nref);
      return CK_ENOMEM;
    }
  }
  int rc = at != (size_t)-1 ? json_array_set_new(refs, at, nref) : json_array_append_new(refs, nref);
  return rc ? CK_ENOMEM : 0;
}

/* ---- status subresource --------------------------------------------------- */

/* A JSON patch whose "test" op fails is answered 422 Invalid with no
 * field causes (checked against kube-apiserver 1.36), while a real
 * validation error names its fields. With the test op guarding the
 * resourceVersion, the causeless 422 means "someone else wrote first":
 * report it as the Conflict callers already handle. */
static void stale_to_conflict(int rc, ck_error_t *err, const char *rv) {
  if (rc != CK_EAPI || !err || err->http_status != 422 || err->ncauses != 0)
    return;
  err->http_status = 409;
  err->reason = CK_REASON_CONFLICT;
  snprintf(err->message, sizeof err->message,
           "the object has been modified (resourceVersion %s is stale): read it again and "
           "recompute the status",
           rv);
}

int ck_status_update(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                     const json_t *status, json_t **out, ck_error_t *err) {
  if (out)
    *out = NULL;
  const char *name = ck_obj_name(obj), *rv = ck_obj_resource_version(obj);
  const char *ns = res && res->namespaced ? ck_obj_namespace(obj) : NULL;
  if (!c || !res || !json_is_object(obj) || !json_is_object(status) || !name)
    return ck_error_set(err, CK_EINVAL, "ck_status_update: client, resource, object with a "
                                        "name and a status object needed");
  if (res->namespaced && !ns)
    return ck_error_set(err, CK_EINVAL, "ck_status_update: %s %s has no namespace", res->kind,
                        name);

  /* An object without status reads as status {}: the server keeps no
   * difference worth a write, and a controller that computes an empty
   * status on a fresh object must not write on every reconcile. */
  const json_t *cur = json_object_get(obj, "status");
  bool same = cur ? json_equal((json_t *)cur, (json_t *)status)
                  : json_object_size(status) == 0;
  if (same) {
    if (out)
      *out = json_incref((json_t *)obj);
    return 0;
  }
  if (!rv || !*rv)
    return ck_error_set(err, CK_EINVAL, "ck_status_update: %s %s has no resourceVersion",
                        res->kind, name);

  json_t *patch = json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:O}]", "op", "test", "path",
                            "/metadata/resourceVersion", "value", rv, "op", "add", "path",
                            "/status", "value", status);
  char *text = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
  json_decref(patch);
  if (!text)
    return ck_error_set(err, CK_ENOMEM, "ck_status_update: out of memory");
  ck_write_opts_t wo = {.subresource = "status"};
  int rc = ck_object_patch(c, res, ns, name, CK_PATCH_JSON, text, &wo, out, err);
  free(text);
  stale_to_conflict(rc, err, rv);
  return rc;
}

int ck_secret_text(ck_client_t *c, const char *ns, const char *name, const char *key, char **out,
                   ck_error_t *err) {
  *out = NULL;
  json_t *secret = NULL;
  int rc = ck_object_get(c, &ck_res_secrets, ns, name, NULL, &secret, err);
  if (rc != 0)
    return rc;
  const char *b64 = json_string_value(json_object_get(json_object_get(secret, "data"), key));
  unsigned char *bytes = NULL;
  size_t n = 0;
  if (!b64)
    rc = ck_error_set(err, CK_EINVAL, "Secret %s/%s has no key %s", ns, name, key);
  else if (ck_base64_decode(b64, &bytes, &n) != 0)
    rc = ck_error_set(err, CK_EINVAL, "Secret %s/%s key %s is not valid base64", ns, name, key);
  else if (memchr(bytes, 0, n))
    rc = ck_error_set(err, CK_EINVAL, "Secret %s/%s key %s holds a NUL byte, not text", ns, name,
                      key);
  json_decref(secret);
  if (rc != 0) {
    free(bytes);
    return rc;
  }
  *out = (char *)bytes; /* ck_base64_decode NUL-terminates */
  return 0;
}

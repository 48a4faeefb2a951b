/* crdkit/objects.h: helpers for the objects a controller reads and writes:
 * finalizers, owner references, status and conditions.
 *
 * Object arguments are jansson values; `const json_t *` inputs are only
 * read, `json_t *` inputs are modified in place (documented per call),
 * `json_t **out` receives a new reference (caller json_decref's) holding
 * the object as the server returned it after a write: feed it back to the
 * cache (ck_informer_observe) so the next reconcile does not act on an
 * older copy. Any `out` may be NULL.
 * Thread-safety: all functions are thread-safe for distinct objects.
 */
#ifndef CRDKIT_OBJECTS_H
#define CRDKIT_OBJECTS_H

#include "crdkit/client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- metadata accessors (borrowed strings, NULL when absent) ---------- */
const char *ck_obj_name(const json_t *obj);
const char *ck_obj_namespace(const json_t *obj);
const char *ck_obj_uid(const json_t *obj);
const char *ck_obj_resource_version(const json_t *obj);
int64_t ck_obj_generation(const json_t *obj); /* 0 when absent */
bool ck_obj_is_deleting(const json_t *obj);   /* deletionTimestamp set */
/* "namespace/name", or "name" for cluster-scoped objects. malloc'd. */
char *ck_obj_key(const json_t *obj);

/* ---- finalizers -------------------------------------------------------- */
bool ck_finalizer_has(const json_t *obj, const char *finalizer);

/* Add `finalizer` to the object on the server unless present. `obj` is
 * borrowed and only read; it needs metadata.name (and namespace for a
 * namespaced `res`); without metadata.resourceVersion it is read first.
 * The write is a JSON patch whose first op tests metadata.resourceVersion,
 * so it never overwrites a change it did not see; when that test fails
 * (the apiserver answers 422 Invalid without causes, or 409 Conflict) it
 * re-reads the object and tries again, up to 5 attempts in all, then
 * returns a Conflict (CK_EAPI, ck_error_is_conflict). A missing
 * metadata.finalizers array is created. Returns 0 (also when it was
 * already there: no request, *out then holds a new reference to `obj`),
 * CK_EINVAL, CK_EAPI (NotFound when the object is gone; Forbidden/Invalid
 * when the object is being deleted), or another CK_E* code. */
int ck_finalizer_add(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                     const char *finalizer, json_t **out, ck_error_t *err);

/* Remove `finalizer` (all occurrences) the same way. An object that is
 * already gone counts as success (returns 0, *out NULL). Removing the
 * last finalizer of an object being deleted lets the server delete it:
 * *out is then the object as the server last returned it. */
int ck_finalizer_remove(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                        const char *finalizer, json_t **out, ck_error_t *err);

/* ---- owner references -------------------------------------------------- */
/* Add or update (by uid) an ownerReference to `owner` in `child` (modified
 * in place). controller=true also sets blockOwnerDeletion. Returns 0,
 * CK_EINVAL when owner lacks apiVersion/kind/name/uid or child already has
 * a different controller, or CK_ENOMEM. */
int ck_owner_ref_set(json_t *child, const json_t *owner, bool controller);

/* The ownerReference with controller=true (borrowed), or NULL. */
const json_t *ck_owner_controller(const json_t *obj);

/* ---- Secrets -------------------------------------------------------------- */
/* The text under `key` in Secret ns/name (its data, base64-decoded).
 * *out is malloc'd (caller frees), NUL-terminated. Returns 0; CK_EAPI
 * (e.g. ck_error_is_not_found) from the GET; CK_EINVAL when the key is
 * absent, not base64, or holds a NUL byte (err names the Secret and key,
 * never the value). */
int ck_secret_text(ck_client_t *c, const char *ns, const char *name, const char *key, char **out,
                   ck_error_t *err);

/* ---- conditions (metav1.Condition) ------------------------------------- */
typedef struct ck_condition {
  const char *type;    /* "Ready" */
  const char *status;  /* "True", "False", "Unknown" */
  const char *reason;  /* CamelCase, required by the API */
  const char *message; /* may be NULL */
  int64_t observed_generation; /* 0: omitted */
} ck_condition_t;

/* Set a condition in `status` (a status object, modified in place; its
 * "conditions" array is created when missing). lastTransitionTime changes
 * only when `status` flips (or the condition is new); reason, message and
 * observedGeneration are updated. Returns 1 when anything changed, 0 when
 * nothing did, or a negative CK_E* code. `now` is the epoch second to
 * stamp (0: the current time). */
int ck_condition_set(json_t *status, const ck_condition_t *cond, int64_t now);

/* The condition of that type in `status` (borrowed), or NULL. */
const json_t *ck_condition_find(const json_t *status, const char *type);

/* True when the condition exists with status "True". */
bool ck_condition_is_true(const json_t *status, const char *type);

/* Remove a condition; returns 1 when removed, 0 when absent. */
int ck_condition_remove(json_t *status, const char *type);

/* ---- status subresource ------------------------------------------------ */
/* Write `status` (borrowed; the whole new status object) through the
 * /status subresource of `obj` (borrowed; needs name, namespace when
 * namespaced, and resourceVersion). Only the status travels: other
 * changes in `obj` are not sent. When `status` equals obj.status
 * (json_equal; a missing obj.status equals {}) no request is made: 0 with
 * *out = a new reference to `obj`. Otherwise the write is a JSON patch
 * [test /metadata/resourceVersion, add /status]. A stale resourceVersion
 * is returned as a Conflict (CK_EAPI, ck_error_is_conflict, http_status
 * 409, although the apiserver answers a failed test op with 422): requeue
 * and recompute from fresh state. CK_EINVAL for bad arguments or a
 * missing resourceVersion. */
int ck_status_update(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                     const json_t *status, json_t **out, ck_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

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

/* Add `finalizer` to the object on the server unless present. Uses a JSON
 * patch guarded by the object's resourceVersion; on 409 Conflict it
 * re-reads the object and tries again (up to 5 times). Returns 0 (also
 * when it was already there; *out then holds the current object),
 * CK_EAPI (NotFound when the object is gone), or another CK_E* code. */
int ck_finalizer_add(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                     const char *finalizer, json_t **out, ck_error_t *err);

/* Remove `finalizer` (all occurrences) the same way. An object that is
 * already gone counts as success (returns 0, *out NULL). */
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
/* Write `status` (borrowed) through the /status subresource, only when it
 * differs from obj.status (then returns 0 with *out = new reference to
 * obj, no request made). The write is a JSON patch replacing /status,
 * guarded by obj's resourceVersion: a 409 Conflict is returned as is
 * (requeue and recompute from fresh state). */
int ck_status_update(ck_client_t *c, const ck_resource_t *res, const json_t *obj,
                     const json_t *status, json_t **out, ck_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

/* Result helpers of the aws-auth core: freeing, reasons, and the
 * ConfigMap object a reconcile writes. */
#include "awsauth.h"

#include <stdlib.h>
#include <string.h>

const char *aa_block_reason(aa_block_t b) {
  static const char *const names[] = {"",
                                      "LiveDataUnparsable",
                                      "OwnershipAnnotationUnreadable",
                                      "TooManyRemovals",
                                      "NodeRoleProtected",
                                      "NoAWSAuthObjects",
                                      "TooBig",
                                      "RoundTripMismatch"};
  return (unsigned)b < sizeof names / sizeof *names ? names[b] : "Unknown";
}

void aa_result_free(aa_result_t *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->nobjs; i++)
    aa_obj_status_clear(&r->objs[i]);
  free(r->objs);
  free(r->blocked_msg);
  free(r->map_roles);
  free(r->map_users);
  free(r->owners);
  free(r->parse_error);
  json_decref(r->drift);
  free(r);
}

/* A copy of cm that the write can change: new top-level, metadata,
 * annotations and data objects; everything below them (the strings of a
 * large data map, labels, managedFields) is shared, not copied. NULL when
 * out of memory. */
static json_t *copy_for_write(const json_t *cm) {
  json_t *c = json_copy((json_t *)cm);
  if (!c)
    return NULL;
  json_t *md = json_object_get(c, "metadata");
  json_t *md2 = json_is_object(md) ? json_copy(md) : NULL;
  if (md2 && json_object_set_new(c, "metadata", md2))
    md2 = NULL;
  json_t *ann = json_object_get(md2, "annotations");
  bool ok = !json_is_object(md) || md2;
  if (ok && json_is_object(ann))
    ok = !json_object_set_new(md2, "annotations", json_copy(ann));
  json_t *data = json_object_get(c, "data");
  if (ok && json_is_object(data))
    ok = !json_object_set_new(c, "data", json_copy(data));
  if (!ok) {
    json_decref(c);
    return NULL;
  }
  return c;
}

int aa_apply(const json_t *live, const json_t *last_known, const aa_result_t *r, json_t **out,
             ck_error_t *err) {
  *out = NULL;
  if (r->blocked)
    return ck_error_set(err, CK_EINVAL, "aws-auth: blocked (%s): nothing to apply",
                        aa_block_reason(r->blocked));
  json_t *cm;
  if (live) {
    cm = copy_for_write(live);
  } else if (last_known) {
    cm = copy_for_write(last_known);
    /* A create must not carry the old object's server-side identity. */
    json_t *md = json_object_get(cm, "metadata");
    static const char *const drop[] = {"resourceVersion", "uid", "creationTimestamp",
                                       "managedFields", "deletionTimestamp", "generation",
                                       "selfLink", "ownerReferences"};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
      json_object_del(md, drop[i]);
  } else {
    cm = json_pack("{s:s,s:s,s:{s:s,s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                   "name", "aws-auth", "namespace", "kube-system");
  }
  if (!cm)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  json_t *md = json_object_get(cm, "metadata");
  if (!json_is_object(md)) {
    md = json_object();
    json_object_set_new(cm, "metadata", md);
  }
  json_t *ann = json_object_get(md, "annotations");
  if (!json_is_object(ann)) {
    ann = json_object();
    json_object_set_new(md, "annotations", ann);
  }
  json_t *data = json_object_get(cm, "data");
  if (!json_is_object(data)) {
    data = json_object();
    json_object_set_new(cm, "data", data);
  }
  int bad = !md || !ann || !data ||
            json_object_set_new(ann, AA_OWNERS_ANNOTATION, json_string(r->owners)) ||
            (r->map_roles && json_object_set_new(data, "mapRoles", json_string(r->map_roles))) ||
            (r->map_users && json_object_set_new(data, "mapUsers", json_string(r->map_users)));
  if (bad) {
    json_decref(cm);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  *out = cm;
  return 0;
}

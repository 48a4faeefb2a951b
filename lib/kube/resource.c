/* Resource paths and the verbs: get, list, create, replace, patch, apply,
 * delete. */
#include "crdkit/client.h"

#include "kube/kube_internal.h"
#include "util/jsonin.h"
#include "util/jsonout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ck_resource_t ck_res_configmaps = {"", "v1", "configmaps", "ConfigMap", true};
const ck_resource_t ck_res_secrets = {"", "v1", "secrets", "Secret", true};
const ck_resource_t ck_res_namespaces = {"", "v1", "namespaces", "Namespace", false};
const ck_resource_t ck_res_leases = {"coordination.k8s.io", "v1", "leases", "Lease", true};
const ck_resource_t ck_res_events = {"events.k8s.io", "v1", "events", "Event", true};
const ck_resource_t ck_res_crds = {"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                   "CustomResourceDefinition", false};

static bool valid_segment(const char *s) {
  return s && *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/') &&
         !strchr(s, '%');
}

char *ck_resource_path(const ck_resource_t *res, const char *ns, const char *name,
                       const char *subresource) {
  if (!res || !res->version || !res->resource)
    return NULL;
  if (res->namespaced && name && !valid_segment(ns))
    return NULL;
  if (name && !valid_segment(name))
    return NULL;
  /* A subresource is one path segment too ("status", "scale"). */
  if (name && subresource && *subresource && !valid_segment(subresource))
    return NULL;
  ck_buf_t b = {0};
  if (!res->group || !*res->group)
    ck_buf_printf(&b, "/api/%s", res->version);
  else
    ck_buf_printf(&b, "/apis/%s/%s", res->group, res->version);
  if (res->namespaced && ns && *ns) {
    if (!valid_segment(ns)) {
      ck_buf_free(&b);
      return NULL;
    }
    ck_buf_puts(&b, "/namespaces/");
    ck_buf_urlencode(&b, ns);
  }
  ck_buf_putc(&b, '/');
  ck_buf_puts(&b, res->resource);
  if (name) {
    ck_buf_putc(&b, '/');
    ck_buf_urlencode(&b, name);
    if (subresource && *subresource) {
      ck_buf_putc(&b, '/');
      ck_buf_puts(&b, subresource);
    }
  }
  if (b.oom) {
    ck_buf_free(&b);
    return NULL;
  }
  return ck_buf_steal(&b);
}

/* Query string builder: "?a=b&c=d". */
static void q_add(ck_buf_t *b, const char *k, const char *v) {
  if (!v || !*v)
    return;
  ck_buf_putc(b, strchr(b->data ? b->data : "", '?') ? '&' : '?');
  ck_buf_puts(b, k);
  ck_buf_putc(b, '=');
  ck_buf_urlencode(b, v);
}

static void q_add_long(ck_buf_t *b, const char *k, long v) {
  char s[32];
  snprintf(s, sizeof s, "%ld", v);
  q_add(b, k, s);
}

static void q_write_opts(ck_buf_t *b, const ck_write_opts_t *o) {
  if (!o)
    return;
  if (o->dry_run)
    q_add(b, "dryRun", "All");
  q_add(b, "fieldManager", o->field_manager);
  if (o->force)
    q_add(b, "force", "true");
  static const char *const fv[] = {NULL, "Ignore", "Warn", "Strict"};
  if (o->field_validation > 0 && o->field_validation <= CK_VALIDATION_STRICT)
    q_add(b, "fieldValidation", fv[o->field_validation]);
}

static int bad_path(const ck_resource_t *res, const char *ns, const char *name, ck_error_t *err) {
  return ck_error_set(err, CK_EINVAL, "%s: invalid or missing %s (namespace \"%s\", name \"%s\")",
                      res && res->resource ? res->resource : "resource",
                      res && res->namespaced && !valid_segment(ns) ? "namespace" : "name",
                      ns ? ns : "", name ? name : "");
}

/* Send and decode the JSON answer into *out (if wanted). Takes `path`. */
static int send_json(ck_client_t *c, const char *method, ck_buf_t *path, const char *ctype,
                     const char *body, size_t body_len, json_t **out, ck_error_t *err) {
  if (out)
    *out = NULL;
  if (path->oom) {
    ck_buf_free(path);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  ck_request_t req = {.method = method, .path = path->data, .content_type = ctype,
                      .body = body, .body_len = body_len};
  ck_response_t resp;
  int rc = ck_client_request(c, &req, &resp, err);
  if (rc == 0 && out) {
    ck_json_err_t je;
    *out = ck_json_loadb(resp.body, resp.body_len, false, &je);
    if (!*out)
      rc = ck_error_set(err, CK_EPARSE, "%s %s: answer is not JSON (byte %zu: %s)", method,
                        path->data, je.position, je.text);
  }
  ck_response_free(&resp);
  ck_buf_free(path);
  return rc;
}

static int object_path(ck_buf_t *b, const ck_resource_t *res, const char *ns, const char *name,
                       const char *sub, ck_error_t *err) {
  char *p = ck_resource_path(res, ns, name, sub);
  if (!p)
    return bad_path(res, ns, name, err);
  ck_buf_puts(b, p);
  free(p);
  return 0;
}

int ck_object_get(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                  const char *subresource, json_t **out, ck_error_t *err) {
  if (!name)
    return bad_path(res, ns, name, err);
  ck_buf_t p = {0};
  int rc = object_path(&p, res, ns, name, subresource, err);
  if (rc)
    return ck_buf_free(&p), rc;
  return send_json(c, "GET", &p, NULL, NULL, 0, out, err);
}

/* The path of a list request into *p. */
static int list_path(ck_buf_t *p, const ck_resource_t *res, const char *ns,
                     const ck_list_opts_t *o, ck_error_t *err) {
  char *base = ck_resource_path(res, res && res->namespaced ? ns : NULL, NULL, NULL);
  if (!base)
    return bad_path(res, ns, "", err);
  ck_buf_puts(p, base);
  free(base);
  if (o) {
    q_add(p, "labelSelector", o->label_selector);
    q_add(p, "fieldSelector", o->field_selector);
    if (o->limit > 0)
      q_add_long(p, "limit", o->limit);
    q_add(p, "continue", o->continue_token);
    q_add(p, "resourceVersion", o->resource_version);
    q_add(p, "resourceVersionMatch", o->resource_version_match);
  }
  return 0;
}

int ck_object_list(ck_client_t *c, const ck_resource_t *res, const char *ns,
                   const ck_list_opts_t *o, json_t **out, ck_error_t *err) {
  ck_buf_t p = {0};
  int rc = list_path(&p, res, ns, o, err);
  if (rc)
    return ck_buf_free(&p), rc;
  return send_json(c, "GET", &p, NULL, NULL, 0, out, err);
}

/* One page of ck_object_list_each: its items to fn, one parsed at a time;
 * *meta the page's metadata (new reference). */
static int list_page(ck_client_t *c, const ck_resource_t *res, const char *ns,
                     const ck_list_opts_t *o, int (*fn)(void *ctx, json_t *item), void *ctx,
                     json_t **meta, ck_error_t *err) {
  *meta = NULL;
  ck_buf_t p = {0};
  int rc = list_path(&p, res, ns, o, err);
  if (!rc && p.oom)
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  if (rc)
    return ck_buf_free(&p), rc;
  ck_request_t req = {.method = "GET", .path = p.data};
  ck_response_t resp;
  rc = ck_client_request(c, &req, &resp, err);
  if (rc == 0) {
    rc = ck_list_page_each(resp.body, resp.body_len, fn, ctx, meta, err);
    if (rc == CK_EPARSE)
      ck_error_prefix(err, "GET %s: ", p.data);
  }
  ck_response_free(&resp);
  ck_buf_free(&p);
  return rc;
}

int ck_object_list_each(ck_client_t *c, const ck_resource_t *res, const char *ns,
                        const ck_list_opts_t *opts, int (*fn)(void *ctx, json_t *item),
                        void *ctx, char **rv_out, ck_error_t *err) {
  ck_list_opts_t o = opts ? *opts : (ck_list_opts_t){0};
  if (o.limit <= 0)
    o.limit = 500;
  char *cont = NULL;
  int rc = 0;
  if (rv_out)
    *rv_out = NULL;
  for (;;) {
    o.continue_token = cont;
    if (cont) { /* a continue token carries its own version */
      o.resource_version = NULL;
      o.resource_version_match = NULL;
    }
    json_t *meta = NULL;
    rc = list_page(c, res, ns, &o, fn, ctx, &meta, err);
    free(cont);
    cont = NULL;
    if (rc)
      break;
    const char *next = json_string_value(json_object_get(meta, "continue"));
    if (rc == 0 && rv_out) {
      const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
      free(*rv_out);
      *rv_out = rv ? strdup(rv) : NULL;
    }
    if (rc == 0 && next && *next && !(cont = strdup(next)))
      rc = ck_error_set(err, CK_ENOMEM, "out of memory");
    json_decref(meta);
    if (rc || !cont)
      break;
  }
  if (rc && rv_out) {
    free(*rv_out);
    *rv_out = NULL;
  }
  return rc;
}

static char *dump(json_t *obj, size_t *len) {
  *len = 0;
  /* As json_dumps(obj, JSON_COMPACT): an object or an array only. */
  return json_is_object(obj) || json_is_array(obj) ? ck_json_dumps(obj, len) : NULL;
}

int ck_object_create(ck_client_t *c, const ck_resource_t *res, const char *ns, json_t *obj,
                     const ck_write_opts_t *opts, json_t **out, ck_error_t *err) {
  char *base = ck_resource_path(res, ns, NULL, NULL);
  if (!base || (res->namespaced && !valid_segment(ns))) {
    free(base);
    return bad_path(res, ns, "", err);
  }
  ck_buf_t p = {0};
  ck_buf_puts(&p, base);
  free(base);
  q_write_opts(&p, opts);
  size_t len;
  char *body = dump(obj, &len);
  if (!body) {
    ck_buf_free(&p);
    return ck_error_set(err, CK_EINVAL, "create %s: the object cannot be encoded", res->resource);
  }
  int rc = send_json(c, "POST", &p, NULL, body, len, out, err);
  free(body);
  return rc;
}

int ck_object_replace(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                      json_t *obj, const ck_write_opts_t *opts, json_t **out, ck_error_t *err) {
  ck_buf_t p = {0};
  int rc = object_path(&p, res, ns, name, opts ? opts->subresource : NULL, err);
  if (rc)
    return ck_buf_free(&p), rc;
  q_write_opts(&p, opts);
  size_t len;
  char *body = dump(obj, &len);
  if (!body) {
    ck_buf_free(&p);
    return ck_error_set(err, CK_EINVAL, "replace %s: the object cannot be encoded", name);
  }
  rc = send_json(c, "PUT", &p, NULL, body, len, out, err);
  free(body);
  return rc;
}

int ck_object_patch(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                    ck_patch_type_t type, const char *patch, const ck_write_opts_t *opts,
                    json_t **out, ck_error_t *err) {
  static const char *const ctypes[] = {"application/merge-patch+json",
                                       "application/json-patch+json",
                                       "application/strategic-merge-patch+json"};
  if ((unsigned)type > CK_PATCH_STRATEGIC || !patch)
    return ck_error_set(err, CK_EINVAL, "patch %s: bad patch type or empty patch",
                        name ? name : "");
  ck_buf_t p = {0};
  int rc = object_path(&p, res, ns, name, opts ? opts->subresource : NULL, err);
  if (rc)
    return ck_buf_free(&p), rc;
  q_write_opts(&p, opts);
  return send_json(c, "PATCH", &p, ctypes[type], patch, strlen(patch), out, err);
}

int ck_object_apply(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                    json_t *obj, const ck_write_opts_t *opts, json_t **out, ck_error_t *err) {
  if (!opts || !opts->field_manager || !*opts->field_manager)
    return ck_error_set(err, CK_EINVAL, "apply %s: a field manager is required",
                        name ? name : "");
  json_t *body_obj = json_deep_copy(obj);
  if (!body_obj)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  if (!json_object_get(body_obj, "apiVersion")) {
    char av[256];
    snprintf(av, sizeof av, "%s%s%s", res->group && *res->group ? res->group : "",
             res->group && *res->group ? "/" : "", res->version);
    json_object_set_new(body_obj, "apiVersion", json_string(av));
  }
  if (!json_object_get(body_obj, "kind") && res->kind)
    json_object_set_new(body_obj, "kind", json_string(res->kind));
  json_t *meta = json_object_get(body_obj, "metadata");
  if (!json_is_object(meta)) {
    meta = json_object();
    json_object_set_new(body_obj, "metadata", meta);
  }
  if (!json_object_get(meta, "name") && name)
    json_object_set_new(meta, "name", json_string(name));
  ck_buf_t p = {0};
  int rc = object_path(&p, res, ns, name, opts->subresource, err);
  if (rc) {
    json_decref(body_obj);
    return ck_buf_free(&p), rc;
  }
  q_write_opts(&p, opts);
  size_t len;
  char *body = dump(body_obj, &len);
  json_decref(body_obj);
  if (!body) {
    ck_buf_free(&p);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  rc = send_json(c, "PATCH", &p, "application/apply-patch+yaml", body, len, out, err);
  free(body);
  return rc;
}

int ck_object_delete(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                     const ck_delete_opts_t *o, json_t **out, ck_error_t *err) {
  ck_buf_t p = {0};
  int rc = object_path(&p, res, ns, name, NULL, err);
  if (rc)
    return ck_buf_free(&p), rc;
  char *body = NULL;
  size_t len = 0;
  if (o) {
    json_t *d = json_pack("{s:s,s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
    if (o->propagation_policy)
      json_object_set_new(d, "propagationPolicy", json_string(o->propagation_policy));
    if (o->has_grace_period)
      json_object_set_new(d, "gracePeriodSeconds", json_integer(o->grace_period_seconds));
    if (o->dry_run)
      json_object_set_new(d, "dryRun", json_pack("[s]", "All"));
    if (o->precondition_uid || o->precondition_resource_version) {
      json_t *pre = json_object();
      if (o->precondition_uid)
        json_object_set_new(pre, "uid", json_string(o->precondition_uid));
      if (o->precondition_resource_version)
        json_object_set_new(pre, "resourceVersion",
                            json_string(o->precondition_resource_version));
      json_object_set_new(d, "preconditions", pre);
    }
    body = d ? dump(d, &len) : NULL;
    json_decref(d);
    if (!body) {
      ck_buf_free(&p);
      return ck_error_set(err, CK_ENOMEM, "out of memory");
    }
  }
  rc = send_json(c, "DELETE", &p, NULL, body, len, out, err);
  free(body);
  return rc;
}

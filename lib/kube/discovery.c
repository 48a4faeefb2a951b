/* Discovery: kind -> resource and scope, cached per group/version and
 * refreshed once on a miss. Cached lists are never freed before the client,
 * so the strings handed out stay valid. */
#include "crdkit/client.h"

#include "kube/kube_internal.h"

#include <stdio.h>
#include <string.h>

pthread_mutex_t *ck_client_disc_lock(ck_client_t *c);
json_t **ck_client_disc_cache(ck_client_t *c);

static bool lookup(json_t *lists, const char *group, const char *version, const char *kind,
                   ck_resource_t *out) {
  /* newest list first */
  for (size_t i = json_array_size(lists); i-- > 0;) {
    json_t *res = json_object_get(json_array_get(lists, i), "resources");
    size_t k;
    json_t *r;
    json_array_foreach(res, k, r) {
      const char *name = json_string_value(json_object_get(r, "name"));
      const char *rk = json_string_value(json_object_get(r, "kind"));
      if (name && rk && !strchr(name, '/') && strcmp(rk, kind) == 0) {
        out->group = group;
        out->version = version;
        out->resource = name;
        out->kind = rk;
        out->namespaced = json_is_true(json_object_get(r, "namespaced"));
        return true;
      }
    }
  }
  return false;
}

int ck_discovery_resolve(ck_client_t *c, const char *api_version, const char *kind,
                         ck_resource_t *out, ck_error_t *err) {
  if (!api_version || !*api_version || !kind || !*kind)
    return ck_error_set(err, CK_EINVAL, "discovery: apiVersion and kind are required");
  pthread_mutex_t *lock = ck_client_disc_lock(c);
  json_t **cache = ck_client_disc_cache(c);
  pthread_mutex_lock(lock);
  if (!*cache)
    *cache = json_object();
  json_t *entry = json_object_get(*cache, api_version);
  if (!entry) {
    /* One entry per group/version holding: the group and version strings
     * (stable storage) and the lists fetched so far. */
    const char *slash = strchr(api_version, '/');
    char group[256] = "";
    if (slash)
      snprintf(group, sizeof group, "%.*s", (int)(slash - api_version), api_version);
    entry = json_pack("{s:s,s:s,s:[]}", "group", group, "version", slash ? slash + 1 : api_version,
                      "lists");
    if (entry)
      json_object_set_new(*cache, api_version, entry);
  }
  if (!entry) {
    pthread_mutex_unlock(lock);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  const char *group = json_string_value(json_object_get(entry, "group"));
  const char *version = json_string_value(json_object_get(entry, "version"));
  json_t *lists = json_object_get(entry, "lists");
  if (lookup(lists, group, version, kind, out)) {
    pthread_mutex_unlock(lock);
    return 0;
  }
  pthread_mutex_unlock(lock);

  /* Miss: fetch the group/version's resource list (outside the lock). */
  char path[600];
  if (*group)
    snprintf(path, sizeof path, "/apis/%s/%s", group, version);
  else
    snprintf(path, sizeof path, "/api/%s", version);
  ck_request_t req = {.method = "GET", .path = path};
  ck_response_t resp;
  int rc = ck_client_request(c, &req, &resp, err);
  json_t *list = rc == 0 ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
  ck_response_free(&resp);
  if (rc)
    return ck_error_is_not_found(err)
               ? ck_error_set(err, CK_EINVAL, "the server does not serve %s", api_version)
               : rc;
  if (!list)
    return ck_error_set(err, CK_EPARSE, "discovery %s: answer is not JSON", path);
  pthread_mutex_lock(lock);
  /* Keep the new list only when it differs from the newest one: repeated
   * misses must not pile up identical copies (old lists stay, since their
   * strings may have been handed out). */
  size_t nlists = json_array_size(lists);
  if (nlists > 0 && json_equal(json_array_get(lists, nlists - 1), list))
    json_decref(list);
  else
    json_array_append_new(lists, list);
  bool found = lookup(lists, group, version, kind, out);
  pthread_mutex_unlock(lock);
  if (!found)
    return ck_error_set(err, CK_EINVAL, "the server serves no kind %s in %s", kind, api_version);
  return 0;
}

/* Installing a CRD table: create or update, then wait until the apiserver
 * serves it (Established, with its names accepted). */
#include "crd_internal.h"

#include "crdkit/client.h"
#include "crdkit/crd.h"
#include "crdkit/objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static const char *cond_field(const json_t *status, const char *type, const char *key) {
  const json_t *v = json_object_get(ck_condition_find(status, type), key);
  return json_is_string(v) ? json_string_value(v) : "";
}

int ck_crd_wait_established(ck_client_t *c, const char *name, int64_t timeout_ms,
                            ck_error_t *err) {
  if (!c || !name)
    return ck_error_set(err, CK_EINVAL, "CRD: client and name are required");
  if (timeout_ms <= 0)
    timeout_ms = 60000;
  int64_t deadline = mono_ms() + timeout_ms;
  /* Establishing takes a few hundred milliseconds on a healthy server:
   * poll fast first, then back off so a slow one is not hammered. */
  int64_t pause = 50;
  for (;;) {
    json_t *crd = NULL;
    int rc = ck_object_get(c, &ck_res_crds, NULL, name, NULL, &crd, err);
    if (rc)
      return ck_error_prefix(err, "CRD %s: ", name);
    const json_t *st = json_object_get(crd, "status");
    bool established = ck_condition_is_true(st, "Established");
    bool names = ck_condition_is_true(st, "NamesAccepted");
    const json_t *na = ck_condition_find(st, "NamesAccepted");
    bool names_refused = na && json_is_string(json_object_get(na, "status")) &&
                         strcmp(json_string_value(json_object_get(na, "status")), "False") == 0;
    if (names_refused || ck_condition_is_true(st, "Terminating")) {
      /* Neither clears by waiting: a name conflict needs the other CRD
       * gone, a deleting CRD is going away. */
      const char *which = names_refused ? "NamesAccepted" : "Terminating";
      rc = ck_error_set(err, CK_EINVAL, "CRD %s: %s=%s (%s: %s)", name, which,
                        names_refused ? "False" : "True", cond_field(st, which, "reason"),
                        cond_field(st, which, "message"));
      json_decref(crd);
      return rc;
    }
    if (established && names) {
      json_decref(crd);
      return 0;
    }
    int64_t now = mono_ms();
    if (now >= deadline) {
      const char *s = cond_field(st, "Established", "status");
      rc = ck_error_set(err, CK_ETIMEDOUT,
                        "CRD %s: not Established within %lld ms (Established=%s%s%s%s%s)", name,
                        (long long)timeout_ms, *s ? s : "absent",
                        *cond_field(st, "Established", "reason") ? ", " : "",
                        cond_field(st, "Established", "reason"),
                        *cond_field(st, "Established", "message") ? ": " : "",
                        cond_field(st, "Established", "message"));
      json_decref(crd);
      return rc;
    }
    json_decref(crd);
    sleep_ms(pause < deadline - now ? pause : deadline - now);
    if (pause < 500)
      pause *= 2;
  }
}

/* Put our spec and labels on the stored object; its other metadata
 * (resourceVersion, other labels, annotations, finalizers) stays. Returns
 * 1 when something changed, 0 when not, CK_ENOMEM. */
static int merge_into(json_t *cur, const json_t *want) {
  int changed = 0;
  json_t *spec = json_object_get(want, "spec");
  if (!json_equal(json_object_get(cur, "spec"), spec)) {
    if (json_object_set(cur, "spec", spec) != 0)
      return CK_ENOMEM;
    changed = 1;
  }
  const json_t *labels = json_object_get(json_object_get(want, "metadata"), "labels");
  if (json_object_size(labels)) {
    json_t *meta = json_object_get(cur, "metadata");
    json_t *have = json_object_get(meta, "labels");
    if (!json_is_object(have)) {
      have = json_object();
      if (!have || json_object_set_new(meta, "labels", have) != 0)
        return CK_ENOMEM;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)labels, k, v) {
      if (!json_equal(json_object_get(have, k), v)) {
        if (json_object_set(have, k, (json_t *)v) != 0)
          return CK_ENOMEM;
        changed = 1;
      }
    }
  }
  return changed;
}

int ck_crd_install(ck_client_t *c, const ck_crd_t *crd, int64_t timeout_ms, ck_error_t *err) {
  if (!c)
    return ck_error_set(err, CK_EINVAL, "CRD: client is required");
  if (timeout_ms <= 0)
    timeout_ms = 60000;
  int64_t deadline = mono_ms() + timeout_ms;
  json_t *want = NULL;
  int rc = ck_crd_to_json(crd, &want, err);
  if (rc)
    return rc;
  char *name = ck_crd_name(crd);
  if (!name) {
    json_decref(want);
    return ck_error_set(err, CK_ENOMEM, "CRD: out of memory");
  }
  /* Create-or-update races with other installers (several replicas of
   * an operator starting at once): AlreadyExists and Conflict mean
   * "read again", a few times. */
  rc = CK_EAPI;
  for (int attempt = 0; attempt < 5; attempt++) {
    json_t *cur = NULL;
    rc = ck_object_get(c, &ck_res_crds, NULL, name, NULL, &cur, err);
    if (rc && ck_error_is_not_found(err)) {
      rc = ck_object_create(c, &ck_res_crds, NULL, want, NULL, NULL, err);
      if (rc && ck_error_is_already_exists(err))
        continue;
      break;
    }
    if (rc)
      break;
    rc = merge_into(cur, want);
    if (rc == 1) {
      /* PUT with the read resourceVersion: a concurrent writer makes it
       * a Conflict instead of being overwritten blindly. */
      rc = ck_object_replace(c, &ck_res_crds, NULL, name, cur, NULL, NULL, err);
      json_decref(cur);
      if (rc && ck_error_is_conflict(err))
        continue;
      break;
    }
    json_decref(cur);
    if (rc < 0)
      ck_error_set(err, rc, "out of memory");
    break;
  }
  json_decref(want);
  if (rc) {
    ck_error_prefix(err, "CRD %s: ", name);
    free(name);
    return rc;
  }
  int64_t left = deadline - mono_ms();
  rc = ck_crd_wait_established(c, name, left > 0 ? left : 1, err);
  free(name);
  return rc;
}

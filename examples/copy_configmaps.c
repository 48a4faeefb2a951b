/* Keep "<name>-copy" in sync with every ConfigMap labelled
 * crdkit.io/copy=true; the copy is owned by its source, so deleting the
 * source lets the garbage collector remove the copy.
 * Usage: example-copy-configmaps [NAMESPACE] (default: all namespaces) */
#include <crdkit/client.h>
#include <crdkit/manager.h>
#include <crdkit/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ck_result_t reconcile(void *ctx, ck_reconcile_t *rc) {
  (void)ctx;
  json_t *src = ck_reconcile_get(rc);
  if (!src || ck_obj_is_deleting(src)) { /* the copy goes with its owner */
    json_decref(src);
    return ck_done();
  }
  char name[300];
  snprintf(name, sizeof name, "%s-copy", ck_reconcile_name(rc));
  json_t *copy = json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:O?}", "apiVersion", "v1", "kind",
                           "ConfigMap", "metadata", "name", name, "labels", "crdkit.io/copy-of",
                           ck_reconcile_name(rc), "data", json_object_get(src, "data"));
  ck_owner_ref_set(copy, src, true);
  ck_write_opts_t wo = {.field_manager = "copy-configmaps", .force = true};
  ck_error_t err = {0};
  json_t *out = NULL;
  int r = ck_object_apply(ck_reconcile_client(rc), &ck_res_configmaps, ck_reconcile_namespace(rc),
                          name, copy, &wo, &out, &err);
  json_decref(copy);
  if (r != 0) {
    ck_reconcile_log(rc, CK_LOG_WARN, "apply %s: %s", name, err.message);
    ck_reconcile_event(rc, src, "Warning", "CopyFailed", "%s: %s", name, err.message);
    json_decref(src);
    return ck_fail();
  }
  ck_reconcile_observe(rc, &ck_res_configmaps, out);
  ck_reconcile_log(rc, CK_LOG_INFO, "copied to %s", name);
  json_decref(out);
  json_decref(src);
  return ck_done();
}

int main(int argc, char **argv) {
  ck_error_t err = {0};
  ck_config_t *cfg = NULL;
  ck_client_t *client = NULL;
  ck_manager_t *mgr = NULL;
  const char *ns[1] = {argc > 1 ? argv[1] : NULL};
  int rc = ck_config_load(&(ck_config_opts_t){0}, &cfg, &err);
  if (rc == 0)
    rc = ck_client_new(cfg, NULL, &client, &err);
  ck_manager_opts_t mo = {.name = "copy-configmaps", .namespaces = ns, .nnamespaces = argc > 1,
                          .metrics_addr = getenv("METRICS_ADDR"), .probe_addr = getenv("PROBE_ADDR")};
  if (rc == 0)
    rc = ck_manager_new(client, &mo, &mgr, &err);
  ck_controller_t *ctl = NULL;
  ck_controller_opts_t co = {.name = "copy-configmaps", .primary = &ck_res_configmaps,
                             .reconcile = reconcile, .label_selector = "crdkit.io/copy=true"};
  if (rc == 0)
    rc = ck_manager_add_controller(mgr, &co, &ctl, &err);
  if (rc == 0)
    rc = ck_controller_owns(ctl, &ck_res_configmaps, &err);
  if (rc == 0)
    rc = ck_manager_run(mgr, &err);
  if (rc != 0)
    fprintf(stderr, "copy-configmaps: %s\n", err.message);
  ck_manager_free(mgr);
  ck_client_free(client);
  ck_config_free(cfg);
  return rc == 0 ? 0 : 1;
}

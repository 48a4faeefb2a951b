/* A manager with leader election, for the failover tests of
 * test_manager.c. While it leads, its controller reconciles the
 * ConfigMap "tick" every ~150 ms and appends "IDENTITY SEQ WALL_MS" to
 * data.log of the ConfigMap "writes" with a conditional update, so the
 * writes of all replicas are totally ordered.
 * Usage: manager_proc KUBECONFIG NAMESPACE IDENTITY
 * Exit: 0 after SIGTERM, 1 when leadership was lost or on errors. */
#include "crdkit/log.h"
#include "crdkit/manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static const char *identity;
static long seq;

static ck_result_t reconcile(void *ctx, ck_reconcile_t *rc) {
  (void)ctx;
  if (strcmp(ck_reconcile_name(rc), "tick") != 0)
    return ck_done();
  ck_client_t *c = ck_reconcile_client(rc);
  json_t *w = NULL;
  ck_error_t err = {0};
  if (ck_object_get(c, &ck_res_configmaps, ck_reconcile_namespace(rc), "writes", NULL, &w,
                    &err) != 0)
    return ck_fail();
  json_t *data = json_object_get(w, "data");
  if (!json_is_object(data)) {
    data = json_object();
    json_object_set_new(w, "data", data);
  }
  const char *log = json_string_value(json_object_get(data, "log"));
  struct timeval tv;
  gettimeofday(&tv, NULL);
  long long ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
  size_t n = (log ? strlen(log) : 0) + 256;
  char *nl = malloc(n);
  snprintf(nl, n, "%s%s %ld %lld\n", log ? log : "", identity, seq + 1, ms);
  json_object_set_new(data, "log", json_string(nl));
  free(nl);
  int r = ck_object_replace(c, &ck_res_configmaps, ck_reconcile_namespace(rc), "writes", w, NULL,
                            NULL, &err);
  json_decref(w);
  if (r != 0)
    return ck_requeue();
  seq++;
  return ck_requeue_after(150);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: manager_proc KUBECONFIG NAMESPACE IDENTITY\n");
    return 2;
  }
  identity = argv[3];
  if (getenv("MANAGER_PROC_DEBUG"))
    ck_log_set_level(CK_LOG_DEBUG);
  ck_error_t err = {0};
  ck_config_t *cfg = NULL;
  ck_client_t *client = NULL;
  ck_manager_t *m = NULL;
  int rc = ck_config_load(&(ck_config_opts_t){.kubeconfig = argv[1]}, &cfg, &err);
  if (rc == 0)
    rc = ck_client_new(cfg, &(ck_client_opts_t){.request_timeout_ms = 1500}, &client, &err);
  const char *ns[1] = {argv[2]};
  ck_manager_opts_t mo = {.name = "failover", .namespaces = ns, .nnamespaces = 1,
                          .metrics_addr = "0", .probe_addr = "0", .leader_elect = true,
                          .lease_namespace = argv[2], .leader_identity = identity,
                          .lease_ms = 3000, .renew_deadline_ms = 2000, .retry_ms = 500};
  if (rc == 0)
    rc = ck_manager_new(client, &mo, &m, &err);
  ck_controller_opts_t co = {.name = "tick", .primary = &ck_res_configmaps,
                             .reconcile = reconcile, .field_selector = "metadata.name=tick"};
  if (rc == 0)
    rc = ck_manager_add_controller(m, &co, NULL, &err);
  if (rc == 0)
    rc = ck_manager_run(m, &err);
  if (rc != 0)
    fprintf(stderr, "manager_proc %s: %s\n", identity, err.message);
  ck_manager_free(m);
  ck_client_free(client);
  ck_config_free(cfg);
  return rc == 0 ? 0 : 1;
}

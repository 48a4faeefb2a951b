/* rest_client_* metrics from real requests: ck_metrics_register_client on
 * clients of the real apiserver (200, 201, 403, 404), and on a client whose
 * server does not answer (code "<error>"). */
#include "cktest.h"

#include "crdkit/config.h"
#include "crdkit/metrics.h"
#include "crdkit/runtime_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of the line starting with `prefix` (name and labels exactly
 * as rendered, labels in the family's order), or -1 when absent. */
static double value_of(const char *text, const char *prefix) {
  size_t n = strlen(prefix);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  return -1;
}

/* "host:port" of the client's server, as the metrics label it. */
static void host_of(ck_client_t *c, char *out, size_t n) {
  const char *s = strstr(ck_client_server(c), "://");
  cr_assert_not_null(s);
  s += 3;
  snprintf(out, n, "%.*s", (int)strcspn(s, "/"), s);
}

static double total(const char *text, const char *code, const char *method, const char *host) {
  char prefix[512];
  snprintf(prefix, sizeof prefix,
           "rest_client_requests_total{code=\"%s\",method=\"%s\",host=\"%s\"}", code, method,
           host);
  return value_of(text, prefix);
}

/* suffix "_count", "_sum" or "_bucket" (then `le` is set). */
static double duration(const char *text, const char *suffix, const char *verb, const char *host,
                       const char *le) {
  char prefix[512];
  snprintf(prefix, sizeof prefix,
           "rest_client_request_duration_seconds%s{verb=\"%s\",host=\"%s\"%s%s%s}", suffix,
           verb, host, le ? ",le=\"" : "", le ? le : "", le ? "\"" : "");
  return value_of(text, prefix);
}

CK_TEST_OPTS(client_metrics, counts_and_durations, .timeout = 120) {
  ck_client_t *admin = cktest_client("admin");
  ck_client_t *user = cktest_client("user");
  char *ns = cktest_ns_create(admin, "cmetrics");
  char host[256];
  host_of(admin, host, sizeof host);

  ck_metrics_t *m = ck_metrics_new();
  cr_assert_eq(ck_metrics_register_client(m, admin), 0);
  cr_assert_eq(ck_metrics_register_client(m, user), 0, "clients may share a registry");
  ck_error_t err = {0};

  json_t *got = NULL;
  int rc = ck_object_get(admin, &ck_res_configmaps, ns, "missing", NULL, &got, &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert_eq(err.http_status, 404);
  json_t *cm = cktest_configmap("cm", "k", "v");
  rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, NULL, &err);
  json_decref(cm);
  cr_assert_eq(rc, 0, "create: %s", err.message);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "cm", NULL, &got, &err);
  cr_assert_eq(rc, 0, "get: %s", err.message);
  json_decref(got);
  rc = ck_object_list(admin, &ck_res_configmaps, ns, NULL, &got, &err);
  cr_assert_eq(rc, 0, "list: %s", err.message);
  json_decref(got);
  rc = ck_object_get(user, &ck_res_configmaps, ns, "cm", NULL, &got, &err);
  cr_assert_eq(err.http_status, 403, "user: rc %d %s", rc, err.message);
  rc = ck_object_delete(admin, &ck_res_configmaps, ns, "cm", NULL, NULL, &err);
  cr_assert_eq(rc, 0, "delete: %s", err.message);

  char *text = ck_metrics_render(m);
  cr_assert_not_null(text);
  cr_assert_eq(total(text, "404", "GET", host), 1.0, "%s", text);
  cr_assert_eq(total(text, "200", "GET", host), 2.0, "%s", text);
  cr_assert_eq(total(text, "201", "POST", host), 1.0, "%s", text);
  cr_assert_eq(total(text, "403", "GET", host), 1.0, "%s", text);
  cr_assert_eq(total(text, "200", "DELETE", host), 1.0, "%s", text);
  cr_assert(strstr(text, "# TYPE rest_client_requests_total counter\n") != NULL);
  cr_assert(strstr(text, "# TYPE rest_client_request_duration_seconds histogram\n") != NULL);

  cr_assert_eq(duration(text, "_count", "GET", host, NULL), 4.0, "%s", text);
  cr_assert_eq(duration(text, "_count", "POST", host, NULL), 1.0, "%s", text);
  cr_assert_eq(duration(text, "_count", "DELETE", host, NULL), 1.0, "%s", text);
  cr_assert_eq(duration(text, "_bucket", "GET", host, "+Inf"), 4.0, "%s", text);
  /* Local requests take well under the 60 s bound; durations are real. */
  cr_assert_eq(duration(text, "_bucket", "GET", host, "60"), 4.0, "%s", text);
  double s = duration(text, "_sum", "GET", host, NULL);
  cr_assert(s > 0 && s < 240, "GET duration sum %f", s);
  free(text);

  /* Without the observer nothing more is counted. */
  ck_client_set_observer(admin, NULL, NULL);
  rc = ck_object_get(admin, &ck_res_configmaps, ns, "missing", NULL, &got, &err);
  cr_assert_eq(err.http_status, 404);
  text = ck_metrics_render(m);
  cr_assert_eq(total(text, "404", "GET", host), 1.0, "%s", text);
  free(text);

  cktest_ns_delete(admin, ns);
  ck_client_free(user);
  ck_client_free(admin);
  ck_metrics_free(m);
}

CK_TEST_OPTS(client_metrics, no_answer_is_error_code, .timeout = 120) {
  ck_config_opts_t o = {.kubeconfig = cktest_env("KUBECONFIG"), .no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  free(cfg->server);
  cfg->server = strdup("https://127.0.0.1:1"); /* nothing listens on port 1 */
  free(cfg->tls_server_name);
  cfg->tls_server_name = NULL;
  ck_client_opts_t copts = {.max_retries = 1, .max_retry_wait_ms = 50};
  ck_client_t *c = NULL;
  cr_assert_eq(ck_client_new(cfg, &copts, &c, &err), 0, "%s", err.message);
  ck_config_free(cfg);

  ck_metrics_t *m = ck_metrics_new();
  cr_assert_eq(ck_metrics_register_client(m, c), 0);
  int rc = ck_object_get(c, &ck_res_configmaps, "default", "x", NULL, NULL, &err);
  cr_assert_eq(rc, CK_ETRANSPORT, "rc %d: %s", rc, err.message);
  char *text = ck_metrics_render(m);
  /* One retry: two attempts, both without an answer. */
  cr_assert_eq(value_of(text, "rest_client_requests_total{code=\"<error>\",method=\"GET\","
                              "host=\"127.0.0.1:1\"}"),
               2.0, "%s", text);
  cr_assert_eq(value_of(text, "rest_client_request_duration_seconds_count{verb=\"GET\","
                              "host=\"127.0.0.1:1\"}"),
               2.0, "%s", text);
  free(text);

  /* A registry holding one of the names with other labels is refused. */
  ck_metrics_t *bad = ck_metrics_new();
  cr_assert_not_null(ck_metrics_family(bad, CK_METRIC_COUNTER, "rest_client_requests_total",
                                       NULL, "code", NULL, 0));
  cr_assert_eq(ck_metrics_register_client(bad, c), CK_EINVAL);
  cr_assert_eq(ck_metrics_register_client(NULL, c), CK_EINVAL);
  ck_client_free(c);
  ck_metrics_free(bad);
  ck_metrics_free(m);
}

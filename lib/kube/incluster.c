/* In-cluster configuration from the service-account mount. */
#include "crdkit/config.h"

#include "kube/kube_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

int ck_config_in_cluster(ck_config_t **out, ck_error_t *err) {
  *out = NULL;
  const char *host = getenv("KUBERNETES_SERVICE_HOST");
  const char *port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    return ck_error_set(err, CK_ECONFIG,
                        "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  const char *dir = getenv("CRDKIT_SERVICEACCOUNT_DIR");
  if (!dir || !*dir)
    dir = SA_DIR;
  ck_config_t *cfg = calloc(1, sizeof *cfg);
  if (!cfg)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  cfg->in_cluster = true;
  char path[4096];
  size_t n = strlen(host) + strlen(port) + 16;
  cfg->server = malloc(n);
  if (cfg->server) /* IPv6 literals need brackets */
    snprintf(cfg->server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
  snprintf(path, sizeof path, "%s/token", dir);
  cfg->token_file = strdup(path);
  int rc = 0;
  char *data = NULL;
  size_t len = 0;
  ck_error_t e;
  snprintf(path, sizeof path, "%s/ca.crt", dir);
  if (ck_read_file(path, 1u << 20, &data, &len, &e) != 0) {
    rc = ck_error_set(err, CK_ECONFIG, "in-cluster: %s", e.message);
  } else {
    cfg->ca_pem = (unsigned char *)data;
    cfg->ca_pem_len = len;
  }
  snprintf(path, sizeof path, "%s/token", dir);
  if (rc == 0 && ck_read_file(path, 1u << 20, &data, &len, &e) != 0)
    rc = ck_error_set(err, CK_ECONFIG, "in-cluster: %s", e.message);
  else if (rc == 0)
    free(data);
  snprintf(path, sizeof path, "%s/namespace", dir);
  if (rc == 0 && ck_read_file(path, 4096, &data, &len, &e) == 0) {
    while (len && (data[len - 1] == '\n' || data[len - 1] == ' '))
      data[--len] = '\0';
    cfg->namespace_ = data;
  }
  if (rc == 0 && !cfg->namespace_)
    cfg->namespace_ = strdup("default");
  snprintf(path, sizeof path, "in-cluster (%s)", dir);
  cfg->source = strdup(path);
  if (rc == 0 && (!cfg->server || !cfg->token_file || !cfg->namespace_ || !cfg->source))
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  if (rc) {
    ck_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

/* crdkit/config.h: where the API server is and who we are to it.
 *
 * Precedence of ck_config_load (the same as kubectl's, plus in-cluster):
 *   1. opts->kubeconfig, an explicit path (a ':'-separated list is allowed);
 *   2. the KUBECONFIG environment variable, a ':'-separated list merged in
 *      order (the first file to define a cluster/user/context name or
 *      current-context wins, as in kubectl);
 *   3. ~/.kube/config when it exists;
 *   4. in-cluster: KUBERNETES_SERVICE_HOST/PORT and the service-account
 *      files (token, ca.crt, namespace).
 *
 * Certificate and key data stay in memory; nothing is written to disk.
 * Relative paths in a kubeconfig resolve against that file's directory.
 */
#ifndef CRDKIT_CONFIG_H
#define CRDKIT_CONFIG_H

#include "crdkit/error.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An exec credential plugin (client.authentication.k8s.io/v1 or v1beta1). */
typedef struct ck_exec_config {
  char *api_version;
  char *command;       /* as configured; resolved at run time */
  char **args;         /* NULL-terminated */
  char **env;          /* NULL-terminated "NAME=VALUE" */
  char *install_hint;  /* may be NULL */
  char *interactive_mode; /* "Never", "IfAvailable", "Always" or NULL */
  bool provide_cluster_info;
  char *base_dir;      /* directory of the kubeconfig that defined it */
} ck_exec_config_t;

typedef struct ck_config {
  char *server;           /* "https://host:port", no trailing slash */
  char *tls_server_name;  /* may be NULL */
  char *proxy_url;        /* may be NULL */
  bool insecure_skip_tls_verify;
  unsigned char *ca_pem;  /* may be NULL: the system's trust store */
  size_t ca_pem_len;
  unsigned char *cert_pem; /* client certificate, may be NULL */
  size_t cert_pem_len;
  unsigned char *key_pem;
  size_t key_pem_len;
  char *token;            /* static bearer token, may be NULL */
  char *token_file;       /* re-read at most a minute stale, may be NULL */
  ck_exec_config_t *exec; /* may be NULL */
  char *namespace_;       /* the context's namespace, or "default" */
  char *context;          /* context used; NULL for in-cluster */
  char *source;           /* where it came from, for messages */
  bool in_cluster;
} ck_config_t;

typedef struct ck_config_opts {
  const char *kubeconfig; /* explicit path or list; NULL: precedence above */
  const char *context;    /* NULL: current-context */
  const char *namespace_; /* overrides the context's namespace */
  bool no_in_cluster;     /* never fall back to in-cluster */
} ck_config_opts_t;

/* Load configuration by the precedence above. On success *out is a new
 * config (free with ck_config_free). Errors (CK_ECONFIG, CK_EIO,
 * CK_EINVAL) name the file, context and field. `opts` may be NULL. */
int ck_config_load(const ck_config_opts_t *opts, ck_config_t **out, ck_error_t *err);

/* Parse one kubeconfig held in memory. `source` names it in messages and
 * its directory resolves relative paths (NULL: "<memory>", cwd). */
int ck_config_from_kubeconfig(const char *data, size_t len, const char *source,
                              const ck_config_opts_t *opts, ck_config_t **out, ck_error_t *err);

/* In-cluster configuration. The service-account directory is
 * /var/run/secrets/kubernetes.io/serviceaccount unless the environment
 * variable CRDKIT_SERVICEACCOUNT_DIR names another. */
int ck_config_in_cluster(ck_config_t **out, ck_error_t *err);

/* Deep copy; NULL on allocation failure. */
ck_config_t *ck_config_dup(const ck_config_t *cfg);

/* Free a config and everything it holds; NULL is a no-op. */
void ck_config_free(ck_config_t *cfg);

#ifdef __cplusplus
}
#endif
#endif

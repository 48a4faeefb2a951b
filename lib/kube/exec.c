/* Exec credential plugins (client.authentication.k8s.io/v1, v1beta1):
 * spawned with an argv array and the configured environment, never through
 * a shell; KUBERNETES_EXEC_INFO describes the request. */
#include "kube/kube_internal.h"

#include "util/base64.h"
#include "util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define EXEC_MAX_OUTPUT (1u << 20)
#define EXEC_TIMEOUT_MS 300000LL /* 5 minutes */

void ck_exec_result_clear(ck_exec_result_t *r) {
  if (r->token)
    OPENSSL_cleanse(r->token, strlen(r->token));
  free(r->token);
  free(r->cert_pem);
  if (r->key_pem)
    OPENSSL_cleanse(r->key_pem, r->key_len);
  free(r->key_pem);
  memset(r, 0, sizeof *r);
}

int ck_exec_decode(const char *text, size_t len, const char *api_version, ck_exec_result_t *out,
                   ck_error_t *err) {
  memset(out, 0, sizeof *out);
  json_error_t je;
  json_t *doc = json_loadb(text, len, 0, &je);
  if (!doc)
    return ck_error_set(err, CK_EAUTH, "exec plugin output is not JSON (line %d: %s)", je.line,
                        je.text);
  int rc = 0;
  const char *kind = json_string_value(json_object_get(doc, "kind"));
  const char *av = json_string_value(json_object_get(doc, "apiVersion"));
  json_t *st = json_object_get(doc, "status");
  const char *token = json_string_value(json_object_get(st, "token"));
  const char *cert = json_string_value(json_object_get(st, "clientCertificateData"));
  const char *key = json_string_value(json_object_get(st, "clientKeyData"));
  const char *exp = json_string_value(json_object_get(st, "expirationTimestamp"));
  if (!kind || strcmp(kind, "ExecCredential") != 0)
    rc = ck_error_set(err, CK_EAUTH, "exec plugin output: kind is not ExecCredential");
  else if (!av || (api_version && strcmp(av, api_version) != 0))
    rc = ck_error_set(err, CK_EAUTH, "exec plugin output: apiVersion \"%s\", expected \"%s\"",
                      av ? av : "", api_version ? api_version : "");
  else if (!json_is_object(st))
    rc = ck_error_set(err, CK_EAUTH, "exec plugin output: status is missing");
  else if (!!cert != !!key)
    rc = ck_error_set(err, CK_EAUTH,
                      "exec plugin output: clientCertificateData and clientKeyData must be "
                      "given together");
  else if (!token && !cert)
    rc = ck_error_set(err, CK_EAUTH,
                      "exec plugin output: status has neither token nor clientCertificateData");
  else if (exp && ck_rfc3339_parse(exp, &out->expires) != 0)
    rc = ck_error_set(err, CK_EAUTH,
                      "exec plugin output: expirationTimestamp \"%.64s\" is not RFC 3339", exp);
  if (rc == 0 && token && !(out->token = strdup(token)))
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  if (rc == 0 && cert) {
    out->cert_len = strlen(cert);
    out->key_len = strlen(key);
    out->cert_pem = (unsigned char *)strdup(cert);
    out->key_pem = (unsigned char *)strdup(key);
    if (!out->cert_pem || !out->key_pem)
      rc = ck_error_set(err, CK_ENOMEM, "out of memory");
    else if (ck_check_cert_key(out->cert_pem, out->cert_len, out->key_pem, out->key_len, err))
      rc = ck_error_set_code(err, CK_EAUTH); /* a bad credential, like every error here */
    if (rc)
      ck_error_prefix(err, "exec plugin output: ");
  }
  json_decref(doc);
  if (rc)
    ck_exec_result_clear(out);
  return rc;
}

/* KUBERNETES_EXEC_INFO for this plugin. */
static char *exec_info(const ck_exec_config_t *e, const ck_config_t *cfg) {
  json_t *spec = json_pack("{s:b}", "interactive", 0);
  if (e->provide_cluster_info && spec) {
    json_t *cluster = json_pack("{s:s}", "server", cfg->server);
    if (cluster && cfg->tls_server_name)
      json_object_set_new(cluster, "tls-server-name", json_string(cfg->tls_server_name));
    if (cluster && cfg->insecure_skip_tls_verify)
      json_object_set_new(cluster, "insecure-skip-tls-verify", json_true());
    if (cluster && cfg->ca_pem) {
      char *b64 = ck_base64_encode(cfg->ca_pem, cfg->ca_pem_len);
      if (b64)
        json_object_set_new(cluster, "certificate-authority-data", json_string(b64));
      free(b64);
    }
    if (cluster)
      json_object_set_new(spec, "cluster", cluster);
  }
  json_t *info = json_pack("{s:s,s:s,s:o}", "kind", "ExecCredential", "apiVersion",
                           e->api_version, "spec", spec);
  char *s = info ? json_dumps(info, JSON_COMPACT) : NULL;
  json_decref(info);
  return s;
}

/* environ + configured env (overriding) + KUBERNETES_EXEC_INFO. */
static char **build_env(const ck_exec_config_t *e, const char *info) {
  size_t n = 0, m = 0;
  while (environ[n])
    n++;
  while (e->env && e->env[m])
    m++;
  char **env = calloc(n + m + 2, sizeof *env);
  if (!env)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    bool overridden = strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) == 0;
    for (size_t j = 0; j < m && !overridden; j++)
      overridden = strncmp(e->env[j], environ[i], nl) == 0 && e->env[j][nl] == '=';
    if (!overridden)
      env[k++] = environ[i]; /* borrowed */
  }
  for (size_t j = 0; j < m; j++)
    env[k++] = e->env[j]; /* borrowed */
  size_t len = strlen(info) + 22;
  char *kv = malloc(len);
  if (!kv) {
    free(env);
    return NULL;
  }
  snprintf(kv, len, "KUBERNETES_EXEC_INFO=%s", info);
  env[k++] = kv; /* owned: freed by the caller as env[k-1] */
  env[k] = NULL;
  return env;
}

static int missing_command(const ck_exec_config_t *e, ck_error_t *err) {
  return ck_error_set(err, CK_EAUTH, "exec plugin \"%s\" not found%s%s", e->command,
                      e->install_hint ? ": " : " (is it installed and on PATH?)",
                      e->install_hint ? e->install_hint : "");
}

int ck_exec_run(const ck_exec_config_t *e, const ck_config_t *cfg, ck_exec_result_t *out,
                ck_error_t *err) {
  memset(out, 0, sizeof *out);
  /* A command with a '/' but not absolute is relative to the kubeconfig. */
  char *cmd = NULL;
  if (strchr(e->command, '/') && e->command[0] != '/' && e->base_dir) {
    size_t n = strlen(e->base_dir) + strlen(e->command) + 2;
    if ((cmd = malloc(n)))
      snprintf(cmd, n, "%s/%s", e->base_dir, e->command);
  } else {
    cmd = strdup(e->command);
  }
  size_t nargs = 0;
  while (e->args && e->args[nargs])
    nargs++;
  char **argv = calloc(nargs + 2, sizeof *argv);
  char *info = exec_info(e, cfg);
  char **env = info ? build_env(e, info) : NULL;
  if (!cmd || !argv || !env) {
    free(cmd);
    free(argv);
    free(info);
    free(env);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  argv[0] = cmd;
  for (size_t i = 0; i < nargs; i++)
    argv[i + 1] = e->args[i];
  size_t nenv = 0;
  while (env[nenv])
    nenv++;

  int rc = 0, pipefd[2] = {-1, -1};
  pid_t pid = -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    rc = ck_error_set(err, CK_EAUTH, "exec plugin: pipe: %s", strerror(errno));
  } else {
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    int se = posix_spawnp(&pid, cmd, &fa, NULL, argv, env);
    if (se == ENOENT)
      rc = missing_command(e, err);
    else if (se)
      rc = ck_error_set(err, CK_EAUTH, "exec plugin \"%s\": cannot start: %s", e->command,
                        strerror(se));
    close(pipefd[1]);
  }
  posix_spawn_file_actions_destroy(&fa);

  ck_buf_t o = {0};
  if (rc == 0) {
    int64_t deadline = ck_now_ms() + EXEC_TIMEOUT_MS;
    for (;;) {
      int64_t left = deadline - ck_now_ms();
      if (left <= 0) {
        rc = ck_error_set(err, CK_EAUTH, "exec plugin \"%s\" did not finish within %lld s",
                          e->command, EXEC_TIMEOUT_MS / 1000);
        kill(pid, SIGKILL);
        break;
      }
      struct pollfd p = {pipefd[0], POLLIN, 0};
      int pr = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
      if (pr < 0 && errno == EINTR)
        continue;
      if (pr <= 0)
        continue;
      char chunk[4096];
      ssize_t r = read(pipefd[0], chunk, sizeof chunk);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      if (o.len + (size_t)r > EXEC_MAX_OUTPUT) {
        rc = ck_error_set(err, CK_EAUTH, "exec plugin \"%s\" wrote more than %u bytes",
                          e->command, EXEC_MAX_OUTPUT);
        kill(pid, SIGKILL);
        break;
      }
      ck_buf_append(&o, chunk, (size_t)r);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        rc = missing_command(e, err);
      else
        rc = ck_error_set(err, CK_EAUTH, "exec plugin \"%s\" failed (%s %d)", e->command,
                          WIFEXITED(status) ? "exit status" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
  }
  if (pipefd[0] >= 0)
    close(pipefd[0]);
  if (rc == 0)
    rc = o.oom ? ck_error_set(err, CK_ENOMEM, "out of memory")
               : ck_exec_decode(o.data ? o.data : "", o.len, e->api_version, out, err);
  if (o.data)
    OPENSSL_cleanse(o.data, o.len);
  ck_buf_free(&o);
  free(env[nenv - 1]);
  free(env);
  free(info);
  free(argv);
  free(cmd);
  return rc;
}

/* Credentials against the real apiserver: exec plugins (cached until their
 * expiry, re-run on 401, installHint when missing), token files (cached,
 * re-read on 401), client certificates inline and from files, the
 * in-cluster configuration, tls-server-name and TLS verification.
 *
 * Identities are checked with SelfSubjectReview (POST
 * authentication.k8s.io/v1 selfsubjectreviews), which tells who the
 * apiserver took the caller for. ServiceAccount tokens come from the
 * TokenRequest API (`kubectl create token`). */
#include "cktest.h"

#include "crdkit/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* lib/kube/auth.c refreshes exec credentials this long before their
 * expirationTimestamp (EXEC_EXPIRY_MARGIN_S). */
#define EXEC_MARGIN_S 10
/* The plugin's credentials expire this long after it ran: fresh for
 * EXEC_LIFETIME_S - EXEC_MARGIN_S = 10 s. */
#define EXEC_LIFETIME_S 20

/* ---- small helpers ----------------------------------------------------- */


static void sleep_until_ms(int64_t t) {
  for (int64_t left = t - cktest_now_ms(); left > 0; left = t - cktest_now_ms()) {
    struct timespec ts = {left / 1000, (left % 1000) * 1000000};
    nanosleep(&ts, NULL);
  }
}



/* Replace a file atomically (write a sibling, rename over it), as the
 * kubelet rotates projected tokens. */
static void write_file(const char *path, const char *data, mode_t mode) {
  char *tmp = cktest_asprintf("%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  cr_assert(f, "fopen %s: %s", tmp, strerror(errno));
  cr_assert_eq(fwrite(data, 1, strlen(data), f), strlen(data));
  cr_assert_eq(fclose(f), 0);
  cr_assert_eq(chmod(tmp, mode), 0);
  cr_assert_eq(rename(tmp, path), 0, "rename %s: %s", tmp, strerror(errno));
  free(tmp);
}

static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  int n = 0, ch;
  while ((ch = fgetc(f)) != EOF)
    n += ch == '\n';
  fclose(f);
  return n;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert(f, "fopen %s: %s", path, strerror(errno));
  char *buf = calloc(1, 65536);
  cr_assert(buf);
  size_t n = fread(buf, 1, 65535, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

typedef struct count_query {
  const char *method;
  int code;
  uint64_t count;
} count_query_t;

static void count_cb(void *ctx, const char *method, int code, uint64_t count) {
  count_query_t *q = ctx;
  if (strcmp(method, q->method) == 0 && code == q->code)
    q->count += count;
}

/* How many requests `method` got answer `code` (0: transport error). */
static uint64_t req_count(ck_client_t *c, const char *method, int code) {
  count_query_t q = {method, code, 0};
  ck_client_foreach_request_count(c, count_cb, &q);
  return q.count;
}

static void total_cb(void *ctx, const char *method, int code, uint64_t count) {
  (void)method;
  (void)code;
  *(uint64_t *)ctx += count;
}

static uint64_t req_total(ck_client_t *c) {
  uint64_t n = 0;
  ck_client_foreach_request_count(c, total_cb, &n);
  return n;
}

/* Who the apiserver takes this client for. Returns 0 and a malloc'd user
 * name, or the request's error. */
static int whoami(ck_client_t *c, char **user, ck_error_t *err) {
  static const char body[] =
      "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"SelfSubjectReview\"}";
  ck_request_t req = {.method = "POST",
                      .path = "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                      .body = body,
                      .body_len = sizeof body - 1};
  ck_response_t resp;
  *user = NULL;
  int rc = ck_client_request(c, &req, &resp, err);
  if (rc == 0) {
    json_t *doc = cktest_json(resp.body);
    const char *name = json_string_value(
        json_object_get(json_object_get(json_object_get(doc, "status"), "userInfo"), "username"));
    cr_assert(name, "SelfSubjectReview without a user name: %s", resp.body);
    *user = strdup(name);
    json_decref(doc);
  }
  ck_response_free(&resp);
  return rc;
}

static void assert_whoami(ck_client_t *c, const char *expected) {
  ck_error_t err = {0};
  char *user = NULL;
  int rc = whoami(c, &user, &err);
  cr_assert_eq(rc, 0, "SelfSubjectReview: %s", err.message);
  cr_assert_str_eq(user, expected);
  free(user);
}

/* A request the ServiceAccount of the fixture may make (list configmaps
 * in its namespace). */
static int list_cms(ck_client_t *c, const char *ns, ck_error_t *err) {
  json_t *list = NULL;
  int rc = ck_object_list(c, &ck_res_configmaps, ns, NULL, &list, err);
  if (rc == 0)
    cr_assert(json_is_array(json_object_get(list, "items")), "a list without items");
  json_decref(list);
  return rc;
}

static ck_client_t *client_from(const char *kubeconfig, const ck_client_opts_t *opts) {
  ck_config_opts_t o = {.kubeconfig = kubeconfig, .no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  int rc = ck_config_load(&o, &cfg, &err);
  cr_assert_eq(rc, 0, "loading %s: %s", kubeconfig, err.message);
  ck_client_t *c = NULL;
  rc = ck_client_new(cfg, opts, &c, &err);
  ck_config_free(cfg);
  cr_assert_eq(rc, 0, "client: %s", err.message);
  return c;
}

/* ---- the fixture: a namespace, a ServiceAccount that may read its
 * configmaps, a temporary directory, and the admin kubeconfig's parts. ---- */

typedef struct fx {
  ck_client_t *admin;
  const char *kubectl;
  const char *admin_kc;
  char *ns;
  const char *sa;
  char *sa_user; /* system:serviceaccount:NS:SA */
  char *dir;
  char *server;
  char *ca_b64;
  char *cert_b64;
  char *key_b64;
} fx_t;

static void fx_setup(fx_t *fx, const char *prefix, bool with_sa) {
  memset(fx, 0, sizeof *fx);
  fx->kubectl = cktest_env("CRDKIT_TEST_KUBECTL");
  fx->admin_kc = cktest_env("KUBECONFIG");
  fx->admin = cktest_client("admin");
  char tmpl[] = "/tmp/cktest-auth-XXXXXX";
  cr_assert(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
  fx->dir = strdup(tmpl);
  fx->server = cktest_sh_ok("awk '$1 == \"server:\" {print $2; exit}' '%s'", fx->admin_kc);
  fx->ca_b64 =
      cktest_sh_ok("awk '$1 == \"certificate-authority-data:\" {print $2; exit}' '%s'", fx->admin_kc);
  fx->cert_b64 =
      cktest_sh_ok("awk '$1 == \"client-certificate-data:\" {print $2; exit}' '%s'", fx->admin_kc);
  fx->key_b64 = cktest_sh_ok("awk '$1 == \"client-key-data:\" {print $2; exit}' '%s'", fx->admin_kc);
  cr_assert(strncmp(fx->server, "https://", 8) == 0 && fx->ca_b64[0] && fx->cert_b64[0] &&
                fx->key_b64[0],
            "unexpected admin kubeconfig %s", fx->admin_kc);
  if (!with_sa)
    return;
  fx->ns = cktest_ns_create(fx->admin, prefix);
  fx->sa = "ck-sa";
  fx->sa_user = cktest_asprintf("system:serviceaccount:%s:%s", fx->ns, fx->sa);
  /* The built-in "view" ClusterRole is aggregated by kube-controller-manager,
   * which the harness does not run: an explicit Role gives view-like rights. */
  free(cktest_sh_ok("'%s' --kubeconfig='%s' -n '%s' create serviceaccount '%s' && "
              "'%s' --kubeconfig='%s' -n '%s' create role cm-view --verb=get,list,watch "
              "--resource=configmaps && "
              "'%s' --kubeconfig='%s' -n '%s' create rolebinding cm-view --role=cm-view "
              "--serviceaccount='%s:%s'",
              fx->kubectl, fx->admin_kc, fx->ns, fx->sa, fx->kubectl, fx->admin_kc, fx->ns,
              fx->kubectl, fx->admin_kc, fx->ns, fx->ns, fx->sa));
  /* Wait until the RBAC authorizer's cache has the binding. */
  int64_t deadline = cktest_now_ms() + 20000;
  for (;;) {
    char *out = NULL;
    int st = cktest_sh(&out,
                       "'%s' --kubeconfig='%s' -n '%s' auth can-i list configmaps --as='%s' "
                       "2>/dev/null",
                       fx->kubectl, fx->admin_kc, fx->ns, fx->sa_user);
    bool yes = st == 0 && strncmp(out, "yes", 3) == 0;
    free(out);
    if (yes)
      break;
    cr_assert(cktest_now_ms() < deadline, "the RoleBinding for %s did not take effect", fx->sa_user);
    sleep_until_ms(cktest_now_ms() + 100);
  }
}

static void fx_teardown(fx_t *fx) {
  cktest_sh(NULL, "rm -rf '%s'", fx->dir);
  if (fx->ns)
    cktest_ns_delete(fx->admin, fx->ns);
  ck_client_free(fx->admin);
  free(fx->sa_user);
  free(fx->dir);
  free(fx->server);
  free(fx->ca_b64);
  free(fx->cert_b64);
  free(fx->key_b64);
}

static char *fx_path(const fx_t *fx, const char *name) {
  return cktest_asprintf("%s/%s", fx->dir, name);
}

/* A fresh ServiceAccount token; `extra` adds kubectl flags (may be ""). */
static char *fx_token(const fx_t *fx, const char *extra) {
  char *tok = cktest_sh_ok("'%s' --kubeconfig='%s' -n '%s' create token '%s' --duration=10m %s",
                     fx->kubectl, fx->admin_kc, fx->ns, fx->sa, extra);
  cr_assert(strlen(tok) > 20 && !strchr(tok, '\n'), "not a token: %s", tok);
  return tok;
}

/* Write a kubeconfig into the fixture's directory; returns its path.
 * `cluster` and `user` are YAML lines indented under cluster: / user:. */
static char *fx_kubeconfig(const fx_t *fx, const char *file, const char *server,
                           const char *cluster, const char *user) {
  char *path = fx_path(fx, file);
  char *text = cktest_asprintf("apiVersion: v1\n"
                         "kind: Config\n"
                         "clusters:\n"
                         "- name: c\n"
                         "  cluster:\n"
                         "    server: %s\n"
                         "%s"
                         "users:\n"
                         "- name: u\n"
                         "  user:\n"
                         "%s"
                         "contexts:\n"
                         "- name: x\n"
                         "  context:\n"
                         "    cluster: c\n"
                         "    user: u\n"
                         "    namespace: %s\n"
                         "current-context: x\n",
                         server ? server : fx->server, cluster, user, fx->ns ? fx->ns : "default");
  write_file(path, text, 0600);
  free(text);
  return path;
}

/* cluster: lines with the admin kubeconfig's CA. */
static char *fx_ca_lines(const fx_t *fx) {
  return cktest_asprintf("    certificate-authority-data: %s\n", fx->ca_b64);
}

/* ---- exec plugins ------------------------------------------------------ */

/* The plugin: counts its runs in $CK_COUNTER, records the
 * KUBERNETES_EXEC_INFO it got, mints a ServiceAccount token (or prints a
 * bogus one on its first run when $CK_BOGUS_FIRST is 1) and prints an
 * ExecCredential, expiring $CK_EXPIRY_S seconds from now when that is > 0.
 * Its parameters come through the kubeconfig's exec.env. */
static const char plugin_script[] =
    "#!/bin/sh\n"
    "set -e\n"
    "echo run >> \"$CK_COUNTER\"\n"
    "printf '%s\\n' \"$KUBERNETES_EXEC_INFO\" > \"$CK_COUNTER.info\"\n"
    "n=$(wc -l < \"$CK_COUNTER\")\n"
    "if [ \"$CK_BOGUS_FIRST\" = 1 ] && [ \"$n\" -eq 1 ]; then\n"
    "  tok=bogus-token-of-the-first-run\n"
    "else\n"
    "  tok=$(\"$CK_KUBECTL\" --kubeconfig=\"$CK_ADMIN\" -n \"$CK_NS\" create token \"$CK_SA\" "
    "--duration=10m)\n"
    "fi\n"
    "if [ \"$CK_EXPIRY_S\" -gt 0 ]; then\n"
    "  exp=$(date -u -d @$(( $(date +%s) + CK_EXPIRY_S )) +%Y-%m-%dT%H:%M:%SZ)\n"
    "  printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
    "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%s\"}}\\n' \"$tok\" \"$exp\"\n"
    "else\n"
    "  printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
    "\"status\":{\"token\":\"%s\"}}\\n' \"$tok\"\n"
    "fi\n";

/* Write the plugin and a kubeconfig running it; returns the kubeconfig's
 * path and the counter file's in *counter. */
static char *exec_setup(const fx_t *fx, const char *name, int expiry_s, bool bogus_first,
                        char **counter) {
  char *script = fx_path(fx, "plugin.sh");
  write_file(script, plugin_script, 0755);
  char *file = cktest_asprintf("%s.count", name);
  *counter = fx_path(fx, file);
  free(file);
  char *ca = fx_ca_lines(fx);
  char *user = cktest_asprintf("    exec:\n"
                         "      apiVersion: client.authentication.k8s.io/v1\n"
                         "      command: %s\n"
                         "      interactiveMode: Never\n"
                         "      env:\n"
                         "      - {name: CK_COUNTER, value: '%s'}\n"
                         "      - {name: CK_KUBECTL, value: '%s'}\n"
                         "      - {name: CK_ADMIN, value: '%s'}\n"
                         "      - {name: CK_NS, value: '%s'}\n"
                         "      - {name: CK_SA, value: '%s'}\n"
                         "      - {name: CK_EXPIRY_S, value: '%d'}\n"
                         "      - {name: CK_BOGUS_FIRST, value: '%d'}\n",
                         script, *counter, fx->kubectl, fx->admin_kc, fx->ns, fx->sa, expiry_s,
                         bogus_first ? 1 : 0);
  char *kc_name = cktest_asprintf("%s.kubeconfig", name);
  char *kc = fx_kubeconfig(fx, kc_name, NULL, ca, user);
  free(kc_name);
  free(user);
  free(ca);
  free(script);
  return kc;
}

CK_TEST_OPTS(auth, exec_plugin_cached_until_expiry_then_rerun, .timeout = 120) {
  fx_t fx;
  fx_setup(&fx, "auth-exec", true);
  char *counter;
  char *kc = exec_setup(&fx, "expiring", EXEC_LIFETIME_S, false, &counter);
  ck_client_t *c = client_from(kc, NULL);
  ck_error_t err = {0};

  cr_assert_eq(count_lines(counter), 0, "the plugin ran before any request");
  int64_t t0 = cktest_now_ms();
  for (int i = 0; i < 3; i++)
    cr_assert_eq(list_cms(c, fx.ns, &err), 0, "request %d: %s", i, err.message);
  int64_t t1 = cktest_now_ms();
  cr_assert_eq(count_lines(counter), 1, "3 quick requests ran the plugin %d times (cached: 1)",
               count_lines(counter));
  /* The plugin's token is the one presented. */
  assert_whoami(c, fx.sa_user);
  cr_assert_eq(count_lines(counter), 1);

  /* It ran after t0, so its credential expires after t0 + LIFETIME and is
   * fresh until at least t0 + LIFETIME - MARGIN - 1 s (whole seconds):
   * 4 s later it is still cached. */
  sleep_until_ms(t0 + 4000);
  cr_assert_eq(list_cms(c, fx.ns, &err), 0, "%s", err.message);
  cr_assert_eq(count_lines(counter), 1, "re-run %.1f s after the first run, long before expiry",
               (double)(cktest_now_ms() - t0) / 1000);

  /* It ran before t1: from t1 + LIFETIME - MARGIN on it is within the
   * refresh margin of its expiry, and the next request runs it again. */
  sleep_until_ms(t1 + (EXEC_LIFETIME_S - EXEC_MARGIN_S) * 1000 + 300);
  cr_assert_eq(list_cms(c, fx.ns, &err), 0, "%s", err.message);
  cr_assert_eq(count_lines(counter), 2, "not re-run near expiry (%d runs)", count_lines(counter));
  cr_assert_eq(list_cms(c, fx.ns, &err), 0, "%s", err.message);
  assert_whoami(c, fx.sa_user);
  cr_assert_eq(count_lines(counter), 2, "the new credential is cached too");
  cr_assert_eq(req_count(c, "GET", 401), 0, "no request was refused");

  /* KUBERNETES_EXEC_INFO: a v1 ExecCredential, not interactive. */
  char *info_path = cktest_asprintf("%s.info", counter);
  char *info = read_text(info_path);
  json_t *j = cktest_json(info);
  cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "ExecCredential");
  cr_assert_str_eq(json_string_value(json_object_get(j, "apiVersion")),
                   "client.authentication.k8s.io/v1");
  cr_assert(json_is_false(json_object_get(json_object_get(j, "spec"), "interactive")), "%s", info);
  json_decref(j);
  free(info);
  free(info_path);

  ck_client_free(c);
  free(kc);
  free(counter);
  fx_teardown(&fx);
}

CK_TEST(auth, exec_plugin_rerun_once_on_401) {
  fx_t fx;
  fx_setup(&fx, "auth-exec401", true);
  char *counter;
  char *kc = exec_setup(&fx, "bogus-first", 0, true, &counter);
  ck_client_t *c = client_from(kc, NULL);
  ck_error_t err = {0};

  /* First run: a bogus token, refused with 401; the client drops it, runs
   * the plugin again and retries once with the real token. */
  int rc = list_cms(c, fx.ns, &err);
  cr_assert_eq(rc, 0, "the request failed (%d): %s", rc, err.message);
  cr_assert_eq(count_lines(counter), 2, "plugin runs: %d, expected 2", count_lines(counter));
  cr_assert_eq(req_count(c, "GET", 401), 1);
  cr_assert_eq(req_count(c, "GET", 200), 1);

  /* No expiry: the second credential stays cached. */
  cr_assert_eq(list_cms(c, fx.ns, &err), 0, "%s", err.message);
  assert_whoami(c, fx.sa_user);
  cr_assert_eq(count_lines(counter), 2);
  cr_assert_eq(req_count(c, "GET", 401), 1);

  ck_client_free(c);
  free(kc);
  free(counter);
  fx_teardown(&fx);
}

CK_TEST(auth, exec_plugin_missing_shows_install_hint) {
  fx_t fx;
  fx_setup(&fx, "auth-hint", false);
  char *ca = fx_ca_lines(&fx);
  static const char hint[] = "install crdkit-test-login from https://example.invalid/login";
  const char *commands[] = {"/nonexistent/dir/crdkit-test-login", "crdkit-test-login-not-on-path"};
  for (size_t i = 0; i < 2; i++) {
    char *user = cktest_asprintf("    exec:\n"
                           "      apiVersion: client.authentication.k8s.io/v1\n"
                           "      command: %s\n"
                           "      interactiveMode: Never\n"
                           "      installHint: %s\n",
                           commands[i], hint);
    char *kc = fx_kubeconfig(&fx, "hint.kubeconfig", NULL, ca, user);
    ck_client_t *c = client_from(kc, NULL);
    ck_error_t err = {0};
    int rc = list_cms(c, "default", &err);
    cr_assert_eq(rc, CK_EAUTH, "%s: rc %d (%s)", commands[i], rc, err.message);
    cr_assert_eq(err.code, CK_EAUTH);
    cr_assert(strstr(err.message, hint), "no installHint in: %s", err.message);
    cr_assert(strstr(err.message, commands[i]), "the command is not named: %s", err.message);
    cr_assert_eq(req_total(c), 0, "a request was sent without a credential");
    ck_client_free(c);
    free(kc);
    free(user);
  }
  free(ca);
  fx_teardown(&fx);
}

/* ---- token files ------------------------------------------------------- */

CK_TEST(auth, token_file_reread_after_401) {
  fx_t fx;
  fx_setup(&fx, "auth-tokfile", true);
  char *tokfile = fx_path(&fx, "token");
  write_file(tokfile, "bogus-token-in-the-file\n", 0600);
  char *ca = fx_ca_lines(&fx);
  char *user = cktest_asprintf("    tokenFile: token\n"); /* relative to the kubeconfig */
  char *kc = fx_kubeconfig(&fx, "tokfile.kubeconfig", NULL, ca, user);
  ck_client_t *c = client_from(kc, NULL);
  ck_error_t err = {0};

  /* Bogus: 401, and the retry after re-reading the file gets the same. */
  int rc = list_cms(c, fx.ns, &err);
  cr_assert_eq(rc, CK_EAPI, "rc %d: %s", rc, err.message);
  cr_assert(ck_error_is_unauthorized(&err), "%d %s", err.http_status, err.message);
  uint64_t refused = req_count(c, "GET", 401);
  cr_assert_eq(refused, 2, "one retry after the 401 expected, %llu refusals",
               (unsigned long long)refused);

  /* A valid token lands in the file. The client keeps the file's content
   * for up to a minute, so this request presents the stale token first;
   * its 401 makes the client re-read the file, and the retry succeeds. */
  char *tok = fx_token(&fx, "");
  char *line = cktest_asprintf("%s\n", tok);
  write_file(tokfile, line, 0600);
  rc = list_cms(c, fx.ns, &err);
  cr_assert_eq(rc, 0, "rc %d: %s", rc, err.message);
  cr_assert_eq(req_count(c, "GET", 401), refused + 1, "the new token was used without a 401 "
                                                      "(re-read on every request?)");
  cr_assert_eq(req_count(c, "GET", 200), 1);
  assert_whoami(c, fx.sa_user);

  ck_client_free(c);
  free(line);
  free(tok);
  free(kc);
  free(user);
  free(ca);
  free(tokfile);
  fx_teardown(&fx);
}

CK_TEST_OPTS(auth, token_file_cached_then_rotated_on_401, .timeout = 120) {
  fx_t fx;
  fx_setup(&fx, "auth-tokrot", true);
  /* Token A is bound to a Secret: deleting the Secret revokes it. */
  free(cktest_sh_ok("'%s' --kubeconfig='%s' -n '%s' create secret generic bind-a", fx.kubectl,
              fx.admin_kc, fx.ns));
  char *tok_a = fx_token(&fx, "--bound-object-kind=Secret --bound-object-name=bind-a");
  char *tokfile = fx_path(&fx, "token");
  write_file(tokfile, tok_a, 0600);
  char *ca = fx_ca_lines(&fx);
  char *user = cktest_asprintf("    tokenFile: %s\n", tokfile);
  char *kc = fx_kubeconfig(&fx, "tokrot.kubeconfig", NULL, ca, user);
  ck_client_t *c = client_from(kc, NULL);
  ck_error_t err = {0};
  int64_t t_read = cktest_now_ms();
  cr_assert_eq(list_cms(c, fx.ns, &err), 0, "%s", err.message);

  /* The file changes to garbage: the cached token A is still used (the
   * file is re-read at most once a minute, or after a 401). */
  write_file(tokfile, "garbage-token\n", 0600);
  cr_assert_eq(list_cms(c, fx.ns, &err), 0, "the file was re-read at once: %s", err.message);

  /* Rotation: token B in the file, A revoked. */
  char *tok_b = fx_token(&fx, "");
  write_file(tokfile, tok_b, 0600);
  free(cktest_sh_ok("'%s' --kubeconfig='%s' -n '%s' delete secret bind-a", fx.kubectl, fx.admin_kc,
              fx.ns));
  /* Until the apiserver's token cache (10 s) lets A go, watched through a
   * second client holding A as a static token. */
  char *user_a = cktest_asprintf("    token: %s\n", tok_a);
  char *kc_a = fx_kubeconfig(&fx, "static-a.kubeconfig", NULL, ca, user_a);
  ck_client_opts_t no_retry = {.max_retries = -1};
  ck_client_t *ca_client = client_from(kc_a, &no_retry);
  int64_t deadline = cktest_now_ms() + 40000;
  for (;;) {
    ck_error_t e = {0};
    int rc = list_cms(ca_client, fx.ns, &e);
    if (rc == CK_EAPI && ck_error_is_unauthorized(&e))
      break;
    cr_assert(rc == 0, "token A: unexpected rc %d: %s", rc, e.message);
    cr_assert(cktest_now_ms() < deadline, "token A is still accepted after its Secret was deleted");
    sleep_until_ms(cktest_now_ms() + 200);
  }
  /* The proof below needs the cached A to still be within its minute. */
  cr_assert(cktest_now_ms() - t_read < 55000, "too slow: the token file cache may have expired");
  cr_assert_eq(req_count(c, "GET", 401), 0);

  /* One call: A is refused, the 401 makes the client re-read the file, the
   * retry with B succeeds. */
  int rc = list_cms(c, fx.ns, &err);
  cr_assert_eq(rc, 0, "rc %d: %s", rc, err.message);
  cr_assert_eq(req_count(c, "GET", 401), 1);
  cr_assert_eq(req_count(c, "GET", 200), 3);
  assert_whoami(c, fx.sa_user);

  ck_client_free(ca_client);
  ck_client_free(c);
  free(kc_a);
  free(user_a);
  free(kc);
  free(user);
  free(ca);
  free(tokfile);
  free(tok_b);
  free(tok_a);
  fx_teardown(&fx);
}

/* ---- client certificates ------------------------------------------------ */

CK_TEST(auth, client_certificate_inline_and_from_files) {
  fx_t fx;
  fx_setup(&fx, "auth-cert", false);
  /* Inline (client-certificate-data) in the harness's kubeconfigs. */
  ck_client_t *admin = cktest_client("admin");
  assert_whoami(admin, "admin");
  ck_client_t *user = cktest_client("user");
  assert_whoami(user, "crdkit-user");
  ck_client_free(user);
  ck_client_free(admin);

  /* From files: an absolute certificate path and a key path relative to
   * the kubeconfig's directory. */
  char *crt = fx_path(&fx, "admin.crt");
  char *key = fx_path(&fx, "admin.key");
  free(cktest_sh_ok("printf %%s '%s' | base64 -d > '%s' && printf %%s '%s' | base64 -d > '%s' && "
              "chmod 600 '%s'",
              fx.cert_b64, crt, fx.key_b64, key, key));
  char *text = read_text(crt);
  cr_assert(strstr(text, "-----BEGIN CERTIFICATE-----"), "%s", text);
  free(text);
  char *ca = fx_ca_lines(&fx);
  char *lines = cktest_asprintf("    client-certificate: %s\n"
                          "    client-key: admin.key\n",
                          crt);
  char *kc = fx_kubeconfig(&fx, "certfiles.kubeconfig", NULL, ca, lines);
  ck_client_t *c = client_from(kc, NULL);
  assert_whoami(c, "admin");
  ck_error_t err = {0};
  json_t *got = NULL;
  int rc = ck_object_get(c, &ck_res_namespaces, NULL, "default", NULL, &got, &err);
  cr_assert_eq(rc, 0, "GET namespace default: %s", err.message);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(got, "metadata"), "name")),
                   "default");
  json_decref(got);

  ck_client_free(c);
  free(kc);
  free(lines);
  free(ca);
  free(key);
  free(crt);
  fx_teardown(&fx);
}

/* ---- in-cluster --------------------------------------------------------- */

typedef struct saved_env {
  const char *name;
  char *value; /* NULL: was unset */
} saved_env_t;

static void env_save(saved_env_t *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *v = getenv(s[i].name);
    s[i].value = v ? strdup(v) : NULL;
  }
}

static void env_restore(saved_env_t *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i].value)
      setenv(s[i].name, s[i].value, 1);
    else
      unsetenv(s[i].name);
    free(s[i].value);
    s[i].value = NULL;
  }
}

CK_TEST(auth, in_cluster_config) {
  fx_t fx;
  fx_setup(&fx, "auth-incluster", true);
  const char *apiserver = cktest_env("CRDKIT_TEST_APISERVER");
  const char *colon = strrchr(apiserver, ':');
  cr_assert(colon && atoi(colon + 1) > 0, "no port in %s", apiserver);
  const char *port = colon + 1;

  /* A service-account mount: token, ca.crt, namespace. */
  char *sadir = fx_path(&fx, "serviceaccount");
  cr_assert_eq(mkdir(sadir, 0700), 0);
  char *tok = fx_token(&fx, "");
  char *p = cktest_asprintf("%s/token", sadir);
  write_file(p, tok, 0600);
  free(p);
  p = cktest_asprintf("%s/namespace", sadir);
  write_file(p, fx.ns, 0600);
  free(p);
  free(cktest_sh_ok("printf %%s '%s' | base64 -d > '%s/ca.crt'", fx.ca_b64, sadir));

  saved_env_t env[] = {{"KUBERNETES_SERVICE_HOST", NULL}, {"KUBERNETES_SERVICE_PORT", NULL},
                       {"CRDKIT_SERVICEACCOUNT_DIR", NULL}, {"KUBECONFIG", NULL},
                       {"HOME", NULL}};
  const size_t nenv = sizeof env / sizeof env[0];
  env_save(env, nenv);
  setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", port, 1);
  setenv("CRDKIT_SERVICEACCOUNT_DIR", sadir, 1);

  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  int rc = ck_config_in_cluster(&cfg, &err);
  cr_assert_eq(rc, 0, "in-cluster: %s", err.message);
  cr_assert(cfg->in_cluster);
  char *want_server = cktest_asprintf("https://127.0.0.1:%s", port);
  cr_assert_str_eq(cfg->server, want_server);
  ck_client_t *c = NULL;
  rc = ck_client_new(cfg, NULL, &c, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  ck_config_free(cfg);
  cr_assert_str_eq(ck_client_namespace(c), fx.ns);
  cr_assert_eq(list_cms(c, ck_client_namespace(c), &err), 0, "%s", err.message);
  assert_whoami(c, fx.sa_user);
  ck_client_free(c);

  /* ck_config_load: no KUBECONFIG, no ~/.kube/config -> in-cluster. */
  char *home = fx_path(&fx, "home");
  cr_assert_eq(mkdir(home, 0700), 0);
  unsetenv("KUBECONFIG");
  setenv("HOME", home, 1);
  rc = ck_config_load(NULL, &cfg, &err);
  cr_assert_eq(rc, 0, "fallback: %s", err.message);
  cr_assert(cfg->in_cluster, "loaded from %s", cfg->source ? cfg->source : "?");
  cr_assert_str_eq(cfg->server, want_server);
  cr_assert_str_eq(cfg->namespace_, fx.ns);
  rc = ck_client_new(cfg, NULL, &c, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  ck_config_free(cfg);
  cr_assert_eq(list_cms(c, fx.ns, &err), 0, "%s", err.message);
  assert_whoami(c, fx.sa_user);
  ck_client_free(c);

  /* Without the service variables there is nothing to fall back to. */
  unsetenv("KUBERNETES_SERVICE_HOST");
  rc = ck_config_load(NULL, &cfg, &err);
  cr_assert_eq(rc, CK_ECONFIG, "rc %d", rc);
  cr_assert_null(cfg);
  cr_assert(strstr(err.message, "KUBERNETES_SERVICE_HOST"), "%s", err.message);

  env_restore(env, nenv);
  cr_assert_str_eq(getenv("KUBECONFIG"), fx.admin_kc);
  cr_assert_null(getenv("CRDKIT_SERVICEACCOUNT_DIR"));

  free(home);
  free(want_server);
  free(tok);
  free(sadir);
  fx_teardown(&fx);
}

/* ---- TLS ---------------------------------------------------------------- */

CK_TEST(auth, tls_server_name) {
  fx_t fx;
  fx_setup(&fx, "auth-tsn", false);
  const char *apiserver = cktest_env("CRDKIT_TEST_APISERVER");
  const char *colon = strrchr(apiserver, ':');
  cr_assert(colon);
  char *server = cktest_asprintf("https://127.0.0.1:%s", colon + 1);
  char *user = cktest_asprintf("    client-certificate-data: %s\n"
                         "    client-key-data: %s\n",
                         fx.cert_b64, fx.key_b64);

  /* The certificate names kubernetes.default: verified against that name
   * while connecting to 127.0.0.1. */
  char *cl = cktest_asprintf("    certificate-authority-data: %s\n"
                       "    tls-server-name: kubernetes.default\n",
                       fx.ca_b64);
  char *kc = fx_kubeconfig(&fx, "tsn-ok.kubeconfig", server, cl, user);
  ck_client_t *c = client_from(kc, NULL);
  assert_whoami(c, "admin");
  ck_client_free(c);
  free(kc);
  free(cl);

  /* A name the certificate does not carry: refused by verification. */
  cl = cktest_asprintf("    certificate-authority-data: %s\n"
                 "    tls-server-name: wrong.example\n",
                 fx.ca_b64);
  kc = fx_kubeconfig(&fx, "tsn-bad.kubeconfig", server, cl, user);
  ck_client_opts_t o = {.max_retries = 2};
  c = client_from(kc, &o);
  ck_error_t err = {0};
  int rc = list_cms(c, "default", &err);
  cr_assert_eq(rc, CK_ETRANSPORT, "rc %d: %s", rc, err.message);
  cr_assert(strstr(err.message, "wrong.example"), "%s", err.message);
  cr_assert(strstr(err.message, "/api/v1/namespaces/default/configmaps"), "%s", err.message);
  cr_assert_eq(req_count(c, "GET", 0), 1, "a certificate mismatch is not worth a retry");
  ck_client_free(c);
  free(kc);
  free(cl);

  free(user);
  free(server);
  fx_teardown(&fx);
}

CK_TEST(auth, tls_verified_by_default) {
  fx_t fx;
  fx_setup(&fx, "auth-tlsverify", false);
  char *user = cktest_asprintf("    client-certificate-data: %s\n"
                         "    client-key-data: %s\n",
                         fx.cert_b64, fx.key_b64);
  /* No certificate-authority: the system's roots, which do not include
   * the test cluster's CA. */
  char *kc = fx_kubeconfig(&fx, "noca.kubeconfig", NULL, "", user);
  ck_client_t *c = client_from(kc, NULL);
  ck_error_t err = {0};
  int rc = list_cms(c, "default", &err);
  cr_assert_eq(rc, CK_ETRANSPORT, "rc %d: %s", rc, err.message);
  cr_assert(strstr(err.message, "certificate"), "no certificate problem named: %s", err.message);
  cr_assert_eq(req_count(c, "GET", 200), 0);
  ck_client_free(c);
  free(kc);

  /* Only verification failed: skipping it (explicitly) connects. */
  kc = fx_kubeconfig(&fx, "insecure.kubeconfig", NULL, "    insecure-skip-tls-verify: true\n",
                     user);
  c = client_from(kc, NULL);
  assert_whoami(c, "admin");
  ck_client_free(c);
  free(kc);

  free(user);
  fx_teardown(&fx);
}

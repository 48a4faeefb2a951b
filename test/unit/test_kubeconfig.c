/* Unit tests of kubeconfig loading (lib/kube/kubeconfig.c), with temp files. */
#include "cktest.h"

#include "crdkit/config.h"
#include "crdkit/log.h"
#include "util/base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASSERT_HAS(msg, sub)                                                                       \
  cr_assert(strstr((msg), (sub)), "want \"%s\" in \"%s\"", (sub), (msg))





/* A self-signed certificate and its key: dir/<name>.crt, dir/<name>.key. */
static void make_cert(const cktest_dir_t *d, const char *name) {
  char *out = NULL;
  int rc = cktest_sh(&out,
                     "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                     "-nodes -subj /CN=%s -days 1 -keyout %s.key -out %s.crt 2>&1",
                     d->path, name, name, name);
  cr_assert_eq(rc, 0, "openssl: %s", out);
  free(out);
}

/* Base64 of a file's content (malloc'd). */
static char *b64_file(const cktest_dir_t *d, const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", d->path, name);
  char *data = cktest_read_text(path);
  char *b = ck_base64_encode((const unsigned char *)data, strlen(data));
  free(data);
  cr_assert_not_null(b);
  return b;
}

/* A one-cluster kubeconfig: context "ctx" -> cluster "cl", user "me",
 * namespace "team". `server` is the cluster's server entry, `cluster_extra`
 * is appended to the cluster's flow mapping (", key: value"), `user` is
 * the user's value. */
static char *kcs(const char *server, const char *cluster_extra, const char *user) {
  char *s = NULL;
  cr_assert(asprintf(&s,
                     "apiVersion: v1\n"
                     "kind: Config\n"
                     "current-context: ctx\n"
                     "clusters:\n"
                     "- name: cl\n"
                     "  cluster: {%s%s}\n"
                     "contexts:\n"
                     "- name: ctx\n"
                     "  context: {cluster: cl, user: me, namespace: team}\n"
                     "users:\n"
                     "- name: me\n"
                     "  user: %s\n",
                     server, cluster_extra ? cluster_extra : "", user ? user : "{token: t0k3n}") > 0);
  return s;
}

static char *kc(const char *cluster_extra, const char *user) {
  return kcs("server: \"https://127.0.0.1:6443/\"", cluster_extra, user);
}

static ck_config_t *load_ok(const char *yaml, const char *source, const ck_config_opts_t *o) {
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  int rc = ck_config_from_kubeconfig(yaml, strlen(yaml), source, o, &cfg, &err);
  cr_assert_eq(rc, 0, "rc %d: %s\n%s", rc, err.message, yaml);
  cr_assert_not_null(cfg);
  return cfg;
}

/* Expect failure `code`; the message must name the source (when given). */
static void load_fail(const char *yaml, const char *source, const ck_config_opts_t *o, int code,
                      ck_error_t *err) {
  ck_config_t *cfg = (ck_config_t *)0x1;
  memset(err, 0, sizeof *err);
  int rc = ck_config_from_kubeconfig(yaml, strlen(yaml), source, o, &cfg, err);
  cr_assert_eq(rc, code, "rc %d, want %d: %s\n%s", rc, code, err->message, yaml);
  cr_assert_eq(err->code, code);
  cr_assert_null(cfg, "out must be NULL on failure");
  if (source)
    ASSERT_HAS(err->message, source);
}

/* Same with the kcs() template; also the context must be named. */
static void kcs_fail(const cktest_dir_t *d, const char *server, const char *cluster_extra,
                     const char *user, ck_error_t *err) {
  char *yaml = kcs(server, cluster_extra, user);
  char src[256];
  snprintf(src, sizeof src, "%s/config", d->path);
  load_fail(yaml, src, NULL, CK_ECONFIG, err);
  ASSERT_HAS(err->message, "context \"ctx\"");
  free(yaml);
}

static void kc_fail(const cktest_dir_t *d, const char *cluster_extra, const char *user,
                    ck_error_t *err) {
  kcs_fail(d, "server: \"https://127.0.0.1:6443/\"", cluster_extra, user, err);
}

static void kc_fail_mem(const char *cluster_extra, const char *user, ck_error_t *err) {
  cktest_dir_t d = {"/nonexistent-dir"};
  kc_fail(&d, cluster_extra, user, err);
}

/* ---- contexts and namespaces -------------------------------------------------- */

static const char *const two_contexts =
    "apiVersion: v1\n"
    "kind: Config\n"
    "preferences: {}\n"
    "current-context: b\n"
    "clusters:\n"
    "- name: ca\n"
    "  cluster:\n"
    "    server: https://a.example:6443\n"
    "- name: cb\n"
    "  cluster:\n"
    "    server: https://b.example:443//\n"
    "contexts:\n"
    "- name: a\n"
    "  context:\n"
    "    cluster: ca\n"
    "    user: ua\n"
    "- name: b\n"
    "  context:\n"
    "    cluster: cb\n"
    "    user: ub\n"
    "    namespace: ns-b\n"
    "users:\n"
    "- name: ua\n"
    "  user:\n"
    "    token: token-a\n"
    "- name: ub\n"
    "  user:\n"
    "    token: token-b\n";

CK_TEST(kubeconfig, current_context) {
  ck_config_t *cfg = load_ok(two_contexts, "/etc/kc/config", NULL);
  cr_assert_str_eq(cfg->context, "b");
  cr_assert_str_eq(cfg->server, "https://b.example:443", "trailing slashes are dropped");
  cr_assert_str_eq(cfg->token, "token-b");
  cr_assert_str_eq(cfg->namespace_, "ns-b");
  cr_assert_str_eq(cfg->source, "/etc/kc/config");
  cr_assert_not(cfg->in_cluster);
  cr_assert_null(cfg->ca_pem);
  cr_assert_null(cfg->cert_pem);
  cr_assert_null(cfg->exec);
  cr_assert_not(cfg->insecure_skip_tls_verify);
  ck_config_free(cfg);
}

CK_TEST(kubeconfig, explicit_context_and_default_namespace) {
  ck_config_opts_t o = {.context = "a"};
  ck_config_t *cfg = load_ok(two_contexts, NULL, &o);
  cr_assert_str_eq(cfg->context, "a");
  cr_assert_str_eq(cfg->server, "https://a.example:6443");
  cr_assert_str_eq(cfg->token, "token-a");
  cr_assert_str_eq(cfg->namespace_, "default");
  cr_assert_str_eq(cfg->source, "<memory>");
  ck_config_free(cfg);
}

CK_TEST(kubeconfig, namespace_override) {
  ck_config_opts_t o = {.namespace_ = "over"};
  ck_config_t *cfg = load_ok(two_contexts, NULL, &o);
  cr_assert_str_eq(cfg->context, "b");
  cr_assert_str_eq(cfg->namespace_, "over");
  ck_config_free(cfg);
  o.context = "a";
  cfg = load_ok(two_contexts, NULL, &o);
  cr_assert_str_eq(cfg->namespace_, "over");
  ck_config_free(cfg);
}

CK_TEST(kubeconfig, unknown_context_is_an_error) {
  ck_config_opts_t o = {.context = "nope"};
  ck_error_t err;
  load_fail(two_contexts, "/etc/kc/config", &o, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "context \"nope\"");
  ASSERT_HAS(err.message, "not found");
}

CK_TEST(kubeconfig, no_current_context) {
  const char *yaml = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n";
  ck_error_t err;
  load_fail(yaml, "/k/config", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "current-context");
  /* An empty file is an empty config: same error. */
  load_fail("", "/k/empty", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "current-context");
}

CK_TEST(kubeconfig, missing_cluster_user_context_are_named) {
  ck_error_t err;
  const char *no_cluster = "current-context: c\n"
                           "contexts: [{name: c, context: {cluster: gone-cluster, user: u}}]\n"
                           "users: [{name: u, user: {token: x}}]\n";
  load_fail(no_cluster, "/k/one", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "gone-cluster");
  ASSERT_HAS(err.message, "context \"c\"");

  const char *no_user = "current-context: c\n"
                        "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
                        "contexts: [{name: c, context: {cluster: k, user: gone-user}}]\n";
  load_fail(no_user, "/k/two", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "gone-user");
  ASSERT_HAS(err.message, "context \"c\"");

  const char *no_context = "current-context: gone-context\n"
                           "clusters: [{name: k, cluster: {server: 'https://x'}}]\n";
  load_fail(no_context, "/k/three", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "gone-context");

  const char *ctx_no_cluster = "current-context: c\ncontexts: [{name: c, context: {user: u}}]\n";
  load_fail(ctx_no_cluster, "/k/four", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "cluster");
  ASSERT_HAS(err.message, "context \"c\"");
}

CK_TEST(kubeconfig, context_without_user_is_anonymous) {
  const char *yaml = "current-context: c\n"
                     "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:8080'}}]\n"
                     "contexts: [{name: c, context: {cluster: k}}]\n";
  ck_config_t *cfg = load_ok(yaml, NULL, NULL);
  cr_assert_str_eq(cfg->server, "http://127.0.0.1:8080");
  cr_assert_null(cfg->token);
  cr_assert_null(cfg->cert_pem);
  ck_config_free(cfg);
}

CK_TEST(kubeconfig, structural_errors) {
  ck_error_t err;
  load_fail("- a\n- b\n", "/k/list", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "not a kubeconfig");
  load_fail("kind: Pod\n", "/k/pod", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "Pod");
  load_fail("clusters: {a: b}\ncurrent-context: x\n", "/k/clmap", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "clusters");
  cktest_dir_t d = {"/k"};
  kcs_fail(&d, "server: null", NULL, NULL, &err);
  ASSERT_HAS(err.message, "server: required");
  kcs_fail(&d, "proxy-url: 'http://p'", NULL, NULL, &err);
  ASSERT_HAS(err.message, "server: required");
  kcs_fail(&d, "server: 'ftp://x'", NULL, NULL, &err);
  ASSERT_HAS(err.message, "ftp://x");
  kcs_fail(&d, "server: 12", NULL, NULL, &err);
  ASSERT_HAS(err.message, "server");
  kc_fail_mem(", tls-server-name: [a]", NULL, &err);
  ASSERT_HAS(err.message, "tls-server-name");
  kc_fail_mem(", insecure-skip-tls-verify: maybe", NULL, &err);
  ASSERT_HAS(err.message, "insecure-skip-tls-verify");
  kc_fail_mem(NULL, "{token: [1]}", &err);
  ASSERT_HAS(err.message, "token");
}

CK_TEST(kubeconfig, bad_yaml_names_file_and_line) {
  ck_error_t err;
  const char *yaml = "apiVersion: v1\nclusters:\n- name: a\n  cluster: [1, 2\ncontexts: []\n";
  load_fail(yaml, "/k/broken.yaml", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "kubeconfig /k/broken.yaml: ");
  ASSERT_HAS(err.message, "line ");

  const char *dup = "apiVersion: v1\nkind: Config\nkind: Config\n";
  load_fail(dup, "/k/dup.yaml", NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "line 3");
  ASSERT_HAS(err.message, "duplicate");

  /* Through ck_config_load, with a real file. */
  cktest_dir_t d;
  cktest_dir_make(&d);
  char *path = cktest_dir_put(&d, "config", "apiVersion: v1\n  kind: [\n", 0644);
  ck_config_opts_t o = {.kubeconfig = path};
  ck_config_t *cfg = (ck_config_t *)0x1;
  cr_assert_eq(ck_config_load(&o, &cfg, &err), CK_ECONFIG);
  cr_assert_null(cfg);
  ASSERT_HAS(err.message, path);
  ASSERT_HAS(err.message, "line ");
  free(path);
  cktest_dir_remove(&d);
}

CK_TEST(kubeconfig, yaml_11_values) {
  /* kubectl reads kubeconfigs with YAML 1.1 rules. */
  char *yaml = kc(", insecure-skip-tls-verify: yes", NULL);
  ck_config_t *cfg = load_ok(yaml, NULL, NULL);
  cr_assert(cfg->insecure_skip_tls_verify);
  ck_config_free(cfg);
  free(yaml);
}

/* ---- ck_config_load and KUBECONFIG ------------------------------------------ */

static const char *const merge1 = "apiVersion: v1\n"
                                  "kind: Config\n"
                                  "current-context: first\n"
                                  "clusters:\n"
                                  "- name: shared\n"
                                  "  cluster: {server: 'https://one.example'}\n"
                                  "contexts:\n"
                                  "- name: first\n"
                                  "  context: {cluster: shared, user: only-in-two}\n"
                                  "- name: both\n"
                                  "  context: {cluster: shared, user: only-in-two, namespace: n1}\n";

static const char *const merge2 = "apiVersion: v1\n"
                                  "kind: Config\n"
                                  "current-context: second\n"
                                  "clusters:\n"
                                  "- name: shared\n"
                                  "  cluster: {server: 'https://two.example'}\n"
                                  "- name: own\n"
                                  "  cluster: {server: 'https://own.example'}\n"
                                  "contexts:\n"
                                  "- name: second\n"
                                  "  context: {cluster: own, user: only-in-two}\n"
                                  "- name: both\n"
                                  "  context: {cluster: own, user: only-in-two, namespace: n2}\n"
                                  "users:\n"
                                  "- name: only-in-two\n"
                                  "  user: {token: from-two}\n";

CK_TEST(kubeconfig, kubeconfig_env_merged_in_order) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  char *f1 = cktest_dir_put(&d, "one", merge1, 0644);
  char *f2 = cktest_dir_put(&d, "two", merge2, 0644);
  char list[512];
  snprintf(list, sizeof list, "%s/missing-a:%s::%s:%s/missing-b", d.path, f1, f2, d.path);
  cr_assert_eq(setenv("KUBECONFIG", list, 1), 0);

  ck_config_opts_t o = {.no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  cr_assert_str_eq(cfg->context, "first", "the first current-context wins");
  cr_assert_str_eq(cfg->server, "https://one.example", "the first cluster definition wins");
  cr_assert_str_eq(cfg->token, "from-two", "a user from the second file");
  char want_src[512];
  snprintf(want_src, sizeof want_src, "%s:%s", f1, f2);
  cr_assert_str_eq(cfg->source, want_src, "missing files are skipped");
  ck_config_free(cfg);

  o.context = "both";
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  cr_assert_str_eq(cfg->namespace_, "n1", "the first context definition wins");
  cr_assert_str_eq(cfg->server, "https://one.example");
  ck_config_free(cfg);

  o.context = "second";
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  cr_assert_str_eq(cfg->server, "https://own.example");
  ck_config_free(cfg);

  /* Reverse order: the other file wins. */
  snprintf(list, sizeof list, "%s:%s", f2, f1);
  setenv("KUBECONFIG", list, 1);
  o.context = NULL;
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  cr_assert_str_eq(cfg->context, "second");
  cr_assert_str_eq(cfg->server, "https://own.example");
  ck_config_free(cfg);
  o.context = "both";
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  cr_assert_str_eq(cfg->namespace_, "n2");
  cr_assert_str_eq(cfg->server, "https://own.example");
  ck_config_free(cfg);

  /* A file listed twice is read once. */
  snprintf(list, sizeof list, "%s:%s", f1, f1);
  setenv("KUBECONFIG", list, 1);
  o.context = NULL;
  cr_assert_eq(ck_config_load(&o, &cfg, &err), CK_ECONFIG, "no user in f1 alone");
  ASSERT_HAS(err.message, "only-in-two");

  free(f1);
  free(f2);
  cktest_dir_remove(&d);
}

CK_TEST(kubeconfig, explicit_list_and_precedence_over_env) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  char *f1 = cktest_dir_put(&d, "one", merge1, 0644);
  char *f2 = cktest_dir_put(&d, "two", merge2, 0644);
  setenv("KUBECONFIG", f2, 1);
  char list[512];
  snprintf(list, sizeof list, "%s:%s", f1, f2);
  ck_config_opts_t o = {.kubeconfig = list, .no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  cr_assert_str_eq(cfg->context, "first");
  ck_config_free(cfg);
  /* The explicit path beats KUBECONFIG. */
  o.kubeconfig = f2;
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  cr_assert_str_eq(cfg->context, "second");
  cr_assert_str_eq(cfg->source, f2);
  ck_config_free(cfg);
  free(f1);
  free(f2);
  cktest_dir_remove(&d);
}

CK_TEST(kubeconfig, missing_explicit_path_is_an_error) {
  ck_config_opts_t o = {.kubeconfig = "/nonexistent/cktest/kubeconfig", .no_in_cluster = true};
  ck_config_t *cfg = (ck_config_t *)0x1;
  ck_error_t err = {0};
  cr_assert_eq(ck_config_load(&o, &cfg, &err), CK_ECONFIG);
  cr_assert_null(cfg);
  ASSERT_HAS(err.message, "/nonexistent/cktest/kubeconfig");
}

CK_TEST(kubeconfig, kubeconfig_env_all_missing) {
  setenv("KUBECONFIG", "/nonexistent/a:/nonexistent/b", 1);
  ck_config_opts_t o = {.no_in_cluster = true};
  ck_config_t *cfg = (ck_config_t *)0x1;
  ck_error_t err = {0};
  cr_assert_eq(ck_config_load(&o, &cfg, &err), CK_ECONFIG);
  cr_assert_null(cfg);
  ASSERT_HAS(err.message, "/nonexistent/a:/nonexistent/b");
}

CK_TEST(kubeconfig, home_kube_config_and_nothing_at_all) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  cr_assert_eq(cktest_sh(NULL, "mkdir -p '%s/.kube'", d.path), 0);
  char *path = cktest_dir_put(&d, ".kube/config", two_contexts, 0644);
  unsetenv("KUBECONFIG");
  setenv("HOME", d.path, 1);
  ck_config_opts_t o = {.no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  cr_assert_str_eq(cfg->source, path);
  cr_assert_str_eq(cfg->context, "b");
  ck_config_free(cfg);
  free(path);
  cktest_dir_remove(&d);

  /* No file at all and no in-cluster fallback. */
  cr_assert_eq(ck_config_load(&o, &cfg, &err), CK_ECONFIG);
  cr_assert_null(cfg);
  ASSERT_HAS(err.message, "kubeconfig");
}

/* ---- TLS material ------------------------------------------------------------ */

CK_TEST(kubeconfig, relative_paths_resolve_against_the_kubeconfig_dir) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  make_cert(&d, "ca");
  make_cert(&d, "client");
  cr_assert_eq(cktest_sh(NULL, "mkdir '%s/sub'", d.path), 0);
  free(cktest_dir_put(&d, "sub/token", "file-token\n", 0644));
  char *yaml = kc(", certificate-authority: ca.crt",
                  "{client-certificate: client.crt, client-key: ./client.key, "
                  "tokenFile: sub/token}");
  char *path = cktest_dir_put(&d, "config", yaml, 0644);
  cr_assert_eq(chdir("/"), 0); /* not the kubeconfig's directory */

  ck_config_opts_t o = {.kubeconfig = path};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_config_load(&o, &cfg, &err), 0, "%s", err.message);
  char p[256];
  snprintf(p, sizeof p, "%s/ca.crt", d.path);
  char *ca = cktest_read_text(p);
  cr_assert_eq(cfg->ca_pem_len, strlen(ca));
  cr_assert_eq(memcmp(cfg->ca_pem, ca, cfg->ca_pem_len), 0);
  snprintf(p, sizeof p, "%s/client.crt", d.path);
  char *crt = cktest_read_text(p);
  cr_assert_eq(cfg->cert_pem_len, strlen(crt));
  cr_assert_eq(memcmp(cfg->cert_pem, crt, cfg->cert_pem_len), 0);
  snprintf(p, sizeof p, "%s/client.key", d.path);
  char *key = cktest_read_text(p);
  cr_assert_eq(cfg->key_pem_len, strlen(key));
  cr_assert_eq(memcmp(cfg->key_pem, key, cfg->key_pem_len), 0);
  snprintf(p, sizeof p, "%s/sub/token", d.path);
  cr_assert_str_eq(cfg->token_file, p);
  cr_assert_null(cfg->token);
  ck_config_free(cfg);

  /* The same through ck_config_from_kubeconfig with the path as source. */
  cfg = load_ok(yaml, path, NULL);
  cr_assert_str_eq(cfg->token_file, p);
  cr_assert_not_null(cfg->ca_pem);
  ck_config_free(cfg);

  /* A relative file that is not there names the field and the full path. */
  char *bad = kc(", certificate-authority: nope.crt", NULL);
  load_fail(bad, path, NULL, CK_ECONFIG, &err);
  ASSERT_HAS(err.message, "certificate-authority");
  snprintf(p, sizeof p, "%s/nope.crt", d.path);
  ASSERT_HAS(err.message, p);
  ASSERT_HAS(err.message, "context \"ctx\"");
  free(bad);

  free(ca);
  free(crt);
  free(key);
  free(yaml);
  free(path);
  cktest_dir_remove(&d);
}

CK_TEST(kubeconfig, certificate_authority_data) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  make_cert(&d, "ca");
  make_cert(&d, "client");
  char *ca64 = b64_file(&d, "ca.crt");
  char *crt64 = b64_file(&d, "client.crt");
  char *key64 = b64_file(&d, "client.key");
  char extra[8192], user[16384];
  snprintf(extra, sizeof extra, ", certificate-authority-data: %s", ca64);
  snprintf(user, sizeof user, "{client-certificate-data: %s, client-key-data: %s}", crt64, key64);
  char *yaml = kc(extra, user);
  ck_config_t *cfg = load_ok(yaml, NULL, NULL);
  char p[256];
  snprintf(p, sizeof p, "%s/ca.crt", d.path);
  char *ca = cktest_read_text(p);
  cr_assert_eq(cfg->ca_pem_len, strlen(ca));
  cr_assert_eq(memcmp(cfg->ca_pem, ca, strlen(ca)), 0);
  cr_assert_not_null(cfg->cert_pem);
  cr_assert_not_null(cfg->key_pem);
  cr_assert_null(cfg->token);

  /* A copy is deep and equal. */
  ck_config_t *dup = ck_config_dup(cfg);
  cr_assert_not_null(dup);
  cr_assert_neq(dup->ca_pem, cfg->ca_pem);
  cr_assert_eq(memcmp(dup->ca_pem, cfg->ca_pem, cfg->ca_pem_len), 0);
  cr_assert_eq(dup->key_pem_len, cfg->key_pem_len);
  cr_assert_str_eq(dup->server, cfg->server);
  ck_config_free(dup);
  ck_config_free(cfg);
  free(yaml);

  /* Valid base64 that is not a certificate. */
  ck_error_t err;
  kc_fail(&d, ", certificate-authority-data: aGVsbG8=", NULL, &err);
  ASSERT_HAS(err.message, "certificate-authority");
  /* Not base64. */
  kc_fail(&d, ", certificate-authority-data: 'not base64!'", NULL, &err);
  ASSERT_HAS(err.message, "certificate-authority-data");

  free(ca);
  free(ca64);
  free(crt64);
  free(key64);
  cktest_dir_remove(&d);
}

static int g_insecure_warnings;
static void count_insecure(void *ctx, ck_log_level_t level, const char *line) {
  (void)ctx;
  if (level == CK_LOG_WARN && strstr(line, "insecure-skip-tls-verify"))
    g_insecure_warnings++;
}

CK_TEST(kubeconfig, insecure_skip_tls_verify) {
  ck_log_set_sink(count_insecure, NULL);
  char *yaml = kc(", insecure-skip-tls-verify: true", NULL);
  ck_config_t *cfg = load_ok(yaml, NULL, NULL);
  free(yaml);
  ck_log_set_sink(NULL, NULL);
  cr_assert(cfg->insecure_skip_tls_verify);
  cr_assert_null(cfg->ca_pem);
  cr_assert_eq(g_insecure_warnings, 1, "a warning is logged");
  ck_config_free(cfg);

  cktest_dir_t d;
  cktest_dir_make(&d);
  make_cert(&d, "ca");
  char *ca64 = b64_file(&d, "ca.crt");
  char extra[8192];
  snprintf(extra, sizeof extra, ", insecure-skip-tls-verify: true, certificate-authority-data: %s",
           ca64);
  ck_error_t err;
  kc_fail(&d, extra, NULL, &err);
  ASSERT_HAS(err.message, "insecure-skip-tls-verify");
  ASSERT_HAS(err.message, "certificate authority");
  ASSERT_HAS(err.message, "cluster \"cl\"");
  free(ca64);
  cktest_dir_remove(&d);
}

CK_TEST(kubeconfig, tls_server_name_and_proxy_url) {
  char *yaml = kc(", tls-server-name: api.internal, proxy-url: 'http://proxy:3128'", NULL);
  ck_config_t *cfg = load_ok(yaml, NULL, NULL);
  cr_assert_str_eq(cfg->tls_server_name, "api.internal");
  cr_assert_str_eq(cfg->proxy_url, "http://proxy:3128");
  ck_config_free(cfg);
  free(yaml);
  yaml = kc(NULL, NULL);
  cfg = load_ok(yaml, NULL, NULL);
  cr_assert_null(cfg->tls_server_name);
  cr_assert_null(cfg->proxy_url);
  ck_config_free(cfg);
  free(yaml);
}

CK_TEST(kubeconfig, client_cert_errors) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  make_cert(&d, "one");
  make_cert(&d, "two");
  char *crt1 = b64_file(&d, "one.crt");
  char *key2 = b64_file(&d, "two.key");
  char *key1 = b64_file(&d, "one.key");
  char user[16384];
  ck_error_t err;

  /* A key that does not belong to the certificate. */
  snprintf(user, sizeof user, "{client-certificate-data: %s, client-key-data: %s}", crt1, key2);
  kc_fail(&d, NULL, user, &err);
  ASSERT_HAS(err.message, "does not match");
  ASSERT_HAS(err.message, "user \"me\"");
  /* Same with files. */
  kc_fail(&d, NULL, "{client-certificate: one.crt, client-key: two.key}", &err);
  ASSERT_HAS(err.message, "does not match");
  /* The matching pair from files works. */
  char *yaml = kc(NULL, "{client-certificate: one.crt, client-key: one.key}");
  char src[256];
  snprintf(src, sizeof src, "%s/config", d.path);
  ck_config_t *cfg = load_ok(yaml, src, NULL);
  cr_assert_not_null(cfg->cert_pem);
  ck_config_free(cfg);
  free(yaml);

  /* Bad base64 names the field. */
  snprintf(user, sizeof user, "{client-certificate-data: %s, client-key-data: '%%%%not-base64'}",
           crt1);
  kc_fail(&d, NULL, user, &err);
  ASSERT_HAS(err.message, "client-key-data");
  ASSERT_HAS(err.message, "base64");

  /* One without the other. */
  snprintf(user, sizeof user, "{client-certificate-data: %s}", crt1);
  kc_fail(&d, NULL, user, &err);
  ASSERT_HAS(err.message, "client-key");
  snprintf(user, sizeof user, "{client-key-data: %s}", key1);
  kc_fail(&d, NULL, user, &err);
  ASSERT_HAS(err.message, "client-certificate");

  /* Garbage in place of the PEM. */
  snprintf(user, sizeof user, "{client-certificate-data: aGVsbG8=, client-key-data: %s}", key1);
  kc_fail(&d, NULL, user, &err);
  ASSERT_HAS(err.message, "certificate");
  snprintf(user, sizeof user, "{client-certificate-data: %s, client-key-data: aGVsbG8=}", crt1);
  kc_fail(&d, NULL, user, &err);
  ASSERT_HAS(err.message, "key");

  /* A missing key file. */
  kc_fail(&d, NULL, "{client-certificate: one.crt, client-key: absent.key}", &err);
  ASSERT_HAS(err.message, "client-key");
  ASSERT_HAS(err.message, "absent.key");

  free(crt1);
  free(key1);
  free(key2);
  cktest_dir_remove(&d);
}

/* ---- tokens --------------------------------------------------------------------- */

CK_TEST(kubeconfig, token_and_token_file) {
  char *yaml = kc(NULL, "{token: 'abc.def'}");
  ck_config_t *cfg = load_ok(yaml, NULL, NULL);
  free(yaml);
  cr_assert_str_eq(cfg->token, "abc.def");
  cr_assert_null(cfg->token_file);
  ck_config_free(cfg);

  cktest_dir_t d;
  cktest_dir_make(&d);
  char *tok = cktest_dir_put(&d, "tok", "secret\n", 0644);
  char user[512];
  snprintf(user, sizeof user, "{tokenFile: '%s'}", tok);
  yaml = kc(NULL, user);
  cfg = load_ok(yaml, NULL, NULL);
  cr_assert_str_eq(cfg->token_file, tok, "an absolute path stays as it is");
  ck_config_free(cfg);
  free(yaml);

  ck_error_t err;
  kc_fail(&d, NULL, "{tokenFile: no-such-token}", &err);
  ASSERT_HAS(err.message, "tokenFile");
  ASSERT_HAS(err.message, "no-such-token");
  free(tok);
  cktest_dir_remove(&d);
}

/* ---- exec ------------------------------------------------------------------------- */

CK_TEST(kubeconfig, exec_v1) {
  const char *user = "{exec: {apiVersion: client.authentication.k8s.io/v1, command: my-plugin, "
                     "args: [get-token, --cluster, c1], "
                     "env: [{name: FOO, value: bar}, {name: EMPTY, value: ''}], "
                     "installHint: 'install it with: apt install my-plugin', "
                     "interactiveMode: Never, provideClusterInfo: true}}";
  char *yaml = kc(NULL, user);
  ck_config_t *cfg = load_ok(yaml, "/etc/kube/config", NULL);
  ck_exec_config_t *e = cfg->exec;
  cr_assert_not_null(e);
  cr_assert_str_eq(e->api_version, "client.authentication.k8s.io/v1");
  cr_assert_str_eq(e->command, "my-plugin");
  cr_assert_str_eq(e->args[0], "get-token");
  cr_assert_str_eq(e->args[1], "--cluster");
  cr_assert_str_eq(e->args[2], "c1");
  cr_assert_null(e->args[3]);
  cr_assert_str_eq(e->env[0], "FOO=bar");
  cr_assert_str_eq(e->env[1], "EMPTY=");
  cr_assert_null(e->env[2]);
  cr_assert_str_eq(e->install_hint, "install it with: apt install my-plugin");
  cr_assert_str_eq(e->interactive_mode, "Never");
  cr_assert(e->provide_cluster_info);
  cr_assert_str_eq(e->base_dir, "/etc/kube");

  ck_config_t *dup = ck_config_dup(cfg);
  cr_assert_not_null(dup);
  cr_assert_not_null(dup->exec);
  cr_assert_neq(dup->exec, cfg->exec);
  cr_assert_str_eq(dup->exec->env[0], "FOO=bar");
  cr_assert_str_eq(dup->exec->install_hint, e->install_hint);
  cr_assert(dup->exec->provide_cluster_info);
  ck_config_free(dup);
  ck_config_free(cfg);
  free(yaml);
}

CK_TEST(kubeconfig, exec_v1beta1_minimal) {
  char *yaml = kc(NULL, "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, "
                        "command: /usr/bin/plugin}}");
  ck_config_t *cfg = load_ok(yaml, NULL, NULL);
  cr_assert_not_null(cfg->exec);
  cr_assert_str_eq(cfg->exec->command, "/usr/bin/plugin");
  cr_assert_null(cfg->exec->interactive_mode);
  cr_assert_null(cfg->exec->install_hint);
  cr_assert_null(cfg->exec->args[0]);
  cr_assert_null(cfg->exec->env[0]);
  cr_assert_not(cfg->exec->provide_cluster_info);
  ck_config_free(cfg);
  free(yaml);
}

CK_TEST(kubeconfig, exec_errors) {
  ck_error_t err;
  kc_fail_mem(NULL, "{exec: {apiVersion: client.authentication.k8s.io/v1, command: p}}", &err);
  ASSERT_HAS(err.message, "interactiveMode");
  kc_fail_mem(NULL, "{exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: p}}",
              &err);
  ASSERT_HAS(err.message, "v1alpha1");
  kc_fail_mem(NULL,
              "{exec: {apiVersion: client.authentication.k8s.io/v1, command: p, "
              "interactiveMode: Always}}",
              &err);
  ASSERT_HAS(err.message, "Always");
  kc_fail_mem(NULL,
              "{exec: {apiVersion: client.authentication.k8s.io/v1, command: p, "
              "interactiveMode: Sometimes}}",
              &err);
  ASSERT_HAS(err.message, "Sometimes");
  kc_fail_mem(NULL, "{exec: {apiVersion: client.authentication.k8s.io/v1beta1}}", &err);
  ASSERT_HAS(err.message, "exec.command");
  kc_fail_mem(NULL, "{exec: {command: p}}", &err);
  ASSERT_HAS(err.message, "exec.apiVersion");
  kc_fail_mem(NULL,
              "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: p, "
              "env: [{value: x}]}}",
              &err);
  ASSERT_HAS(err.message, "exec.env");
  kc_fail_mem(NULL,
              "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: p, "
              "env: [{name: 'A=B', value: x}]}}",
              &err);
  ASSERT_HAS(err.message, "exec.env");
  kc_fail_mem(NULL,
              "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: p, "
              "args: [a, [b]]}}",
              &err);
  ASSERT_HAS(err.message, "exec.args");
  kc_fail_mem(NULL,
              "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: p, "
              "args: a}}",
              &err);
  ASSERT_HAS(err.message, "exec.args");
  kc_fail_mem(NULL, "{exec: [p]}", &err);
  ASSERT_HAS(err.message, "exec");
}

/* ---- removed authentication methods ------------------------------------------- */

CK_TEST(kubeconfig, auth_provider_gcp_and_azure_rejected) {
  ck_error_t err;
  kc_fail_mem(NULL, "{auth-provider: {name: gcp, config: {access-token: x}}}", &err);
  ASSERT_HAS(err.message, "gcp");
  ASSERT_HAS(err.message, "removed");
  ASSERT_HAS(err.message, "exec");
  kc_fail_mem(NULL, "{auth-provider: {name: azure}}", &err);
  ASSERT_HAS(err.message, "\"azure\"");
  ASSERT_HAS(err.message, "removed");
  kc_fail_mem(NULL, "{auth-provider: {name: oidc}}", &err);
  ASSERT_HAS(err.message, "oidc");
}

CK_TEST(kubeconfig, basic_auth_rejected) {
  ck_error_t err;
  kc_fail_mem(NULL, "{username: admin, password: secret}", &err);
  ASSERT_HAS(err.message, "username/password");
  cr_assert_null(strstr(err.message, "secret"), "the password is not echoed: %s", err.message);
  kc_fail_mem(NULL, "{password: secret}", &err);
  ASSERT_HAS(err.message, "username/password");
}

CK_TEST(kubeconfig, impersonation_rejected) {
  ck_error_t err;
  kc_fail_mem(NULL, "{token: x, as: someone}", &err);
  ASSERT_HAS(err.message, "impersonation");
}

CK_TEST(kubeconfig, every_error_names_file_and_context) {
  /* A sample of errors from each stage; kc_fail checks file + context. */
  cktest_dir_t d;
  cktest_dir_make(&d);
  static const struct {
    const char *cluster_extra;
    const char *user;
    const char *what;
  } cases[] = {
      {", tls-server-name: {a: b}", NULL, "tls-server-name"},
      {", certificate-authority: missing.crt", NULL, "missing.crt"},
      {", certificate-authority-data: '***'", NULL, "certificate-authority-data"},
      {NULL, "{client-key-data: '***'}", "client-key-data"},
      {NULL, "{tokenFile: missing-token}", "tokenFile"},
      {NULL, "{exec: {command: x}}", "apiVersion"},
      {NULL, "{auth-provider: {name: gcp}}", "gcp"},
      {NULL, "{username: u, password: p}", "username"},
      {NULL, "[not, a, mapping]", "user"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ck_error_t err;
    kc_fail(&d, cases[i].cluster_extra, cases[i].user, &err);
    ASSERT_HAS(err.message, cases[i].what);
  }
  ck_error_t err;
  kcs_fail(&d, "server: ''", NULL, NULL, &err);
  ASSERT_HAS(err.message, "server");
  cktest_dir_remove(&d);
}

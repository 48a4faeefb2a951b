/* Unit tests of exec credential plugins (lib/kube/exec.c). */
#include "cktest.h"

#include "kube/kube_internal.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASSERT_HAS(msg, sub)                                                                       \
  cr_assert(strstr((msg), (sub)), "want \"%s\" in \"%s\"", (sub), (msg))

#define V1 "client.authentication.k8s.io/v1"
#define V1BETA1 "client.authentication.k8s.io/v1beta1"





/* A fresh self-signed certificate and key as PEM text (malloc'd). */
static void make_pair(const cktest_dir_t *d, const char *name, char **cert, char **key) {
  char *out = NULL;
  int rc = cktest_sh(&out,
                     "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                     "-nodes -subj /CN=%s -days 1 -keyout %s.key -out %s.crt 2>&1",
                     d->path, name, name, name);
  cr_assert_eq(rc, 0, "openssl: %s", out);
  free(out);
  char p[256];
  snprintf(p, sizeof p, "%s/%s.crt", d->path, name);
  *cert = cktest_read_text(p);
  snprintf(p, sizeof p, "%s/%s.key", d->path, name);
  *key = cktest_read_text(p);
}

/* ExecCredential JSON text (malloc'd); NULL arguments are left out. */
static char *credential(const char *api, const char *kind, const char *token, const char *cert,
                        const char *key, const char *exp) {
  json_t *st = json_object();
  if (token)
    json_object_set_new(st, "token", json_string(token));
  if (cert)
    json_object_set_new(st, "clientCertificateData", json_string(cert));
  if (key)
    json_object_set_new(st, "clientKeyData", json_string(key));
  if (exp)
    json_object_set_new(st, "expirationTimestamp", json_string(exp));
  json_t *doc = json_object();
  if (api)
    json_object_set_new(doc, "apiVersion", json_string(api));
  if (kind)
    json_object_set_new(doc, "kind", json_string(kind));
  json_object_set_new(doc, "status", st);
  char *s = json_dumps(doc, 0);
  json_decref(doc);
  return s;
}

static int decode(const char *text, const char *api, ck_exec_result_t *r, ck_error_t *err) {
  memset(err, 0, sizeof *err);
  return ck_exec_decode(text, strlen(text), api, r, err);
}

static void decode_fail(const char *text, const char *api, const char *want) {
  ck_exec_result_t r;
  ck_error_t err;
  int rc = decode(text, api, &r, &err);
  cr_assert_eq(rc, CK_EAUTH, "rc %d for %s", rc, text);
  cr_assert_eq(err.code, CK_EAUTH);
  ASSERT_HAS(err.message, want);
  cr_assert_null(r.token);
  cr_assert_null(r.cert_pem);
  cr_assert_null(r.key_pem);
}

/* ---- ck_exec_decode --------------------------------------------------------------- */

CK_TEST(exec_decode, token) {
  char *c = credential(V1, "ExecCredential", "tok-123", NULL, NULL, "2026-01-02T03:04:05Z");
  ck_exec_result_t r;
  ck_error_t err;
  cr_assert_eq(decode(c, V1, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.token, "tok-123");
  cr_assert_eq(r.expires, 1767323045);
  cr_assert_null(r.cert_pem);
  ck_exec_result_clear(&r);
  cr_assert_null(r.token);
  free(c);

  /* No expiry: 0. Any apiVersion when none is expected. */
  c = credential(V1BETA1, "ExecCredential", "t", NULL, NULL, NULL);
  cr_assert_eq(decode(c, NULL, &r, &err), 0, "%s", err.message);
  cr_assert_eq(r.expires, 0);
  ck_exec_result_clear(&r);
  free(c);

  /* Fractional seconds and an offset. */
  c = credential(V1, "ExecCredential", "t", NULL, NULL, "2026-01-02T05:04:05.123+02:00");
  cr_assert_eq(decode(c, V1, &r, &err), 0, "%s", err.message);
  cr_assert_eq(r.expires, 1767323045);
  ck_exec_result_clear(&r);
  free(c);
}

CK_TEST(exec_decode, cert_and_key) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  char *cert, *key;
  make_pair(&d, "p", &cert, &key);
  char *c = credential(V1BETA1, "ExecCredential", NULL, cert, key, NULL);
  ck_exec_result_t r;
  ck_error_t err;
  cr_assert_eq(decode(c, V1BETA1, &r, &err), 0, "%s", err.message);
  cr_assert_null(r.token);
  cr_assert_eq(r.cert_len, strlen(cert));
  cr_assert_eq(memcmp(r.cert_pem, cert, r.cert_len), 0);
  cr_assert_eq(r.key_len, strlen(key));
  cr_assert_eq(memcmp(r.key_pem, key, r.key_len), 0);
  ck_exec_result_clear(&r);
  free(c);

  /* Both a token and a certificate: both kept. */
  c = credential(V1BETA1, "ExecCredential", "tk", cert, key, NULL);
  cr_assert_eq(decode(c, V1BETA1, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.token, "tk");
  cr_assert_not_null(r.cert_pem);
  ck_exec_result_clear(&r);
  free(c);
  free(cert);
  free(key);
  cktest_dir_remove(&d);
}

CK_TEST(exec_decode, mismatched_pair) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  char *cert1, *key1, *cert2, *key2;
  make_pair(&d, "one", &cert1, &key1);
  make_pair(&d, "two", &cert2, &key2);
  char *c = credential(V1, "ExecCredential", "tk", cert1, key2, NULL);
  decode_fail(c, V1, "does not match");
  decode_fail(c, V1, "exec plugin output");
  free(c);
  /* Garbage instead of PEM. */
  c = credential(V1, "ExecCredential", NULL, "not a cert", key1, NULL);
  decode_fail(c, V1, "certificate");
  free(c);
  c = credential(V1, "ExecCredential", NULL, cert1, "not a key", NULL);
  decode_fail(c, V1, "key");
  free(c);
  free(cert1);
  free(key1);
  free(cert2);
  free(key2);
  cktest_dir_remove(&d);
}

CK_TEST(exec_decode, cert_without_key) {
  char *c = credential(V1, "ExecCredential", NULL, "-----BEGIN CERTIFICATE-----", NULL, NULL);
  decode_fail(c, V1, "together");
  free(c);
  c = credential(V1, "ExecCredential", "tk", NULL, "-----BEGIN PRIVATE KEY-----", NULL);
  decode_fail(c, V1, "together");
  free(c);
}

CK_TEST(exec_decode, missing_status) {
  decode_fail("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\"}", V1, "status");
  decode_fail("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":\"x\"}", V1,
              "status");
  /* A status with nothing usable. */
  char *c = credential(V1, "ExecCredential", NULL, NULL, NULL, NULL);
  decode_fail(c, V1, "neither token nor clientCertificateData");
  free(c);
  c = credential(V1, "ExecCredential", "", NULL, NULL, NULL);
  ck_exec_result_t r;
  ck_error_t err;
  int rc = decode(c, V1, &r, &err);
  /* An empty token is still a (useless) string: accepted or refused, but
   * never a crash or a leak. */
  if (rc == 0)
    ck_exec_result_clear(&r);
  free(c);
}

CK_TEST(exec_decode, wrong_api_version) {
  char *c = credential(V1BETA1, "ExecCredential", "t", NULL, NULL, NULL);
  decode_fail(c, V1, "apiVersion");
  decode_fail(c, V1, "\"" V1BETA1 "\"");
  decode_fail(c, V1, "expected \"" V1 "\"");
  free(c);
  c = credential(NULL, "ExecCredential", "t", NULL, NULL, NULL);
  decode_fail(c, V1, "apiVersion");
  decode_fail(c, NULL, "apiVersion");
  free(c);
}

CK_TEST(exec_decode, wrong_kind) {
  char *c = credential(V1, "Credential", "t", NULL, NULL, NULL);
  decode_fail(c, V1, "kind");
  free(c);
  c = credential(V1, NULL, "t", NULL, NULL, NULL);
  decode_fail(c, V1, "ExecCredential");
  free(c);
}

CK_TEST(exec_decode, bad_expiration_timestamp) {
  static const char *const bad[] = {"tomorrow", "2026-01-02", "2026-01-02T03:04:05",
                                    "1767323045", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *c = credential(V1, "ExecCredential", "t", NULL, NULL, bad[i]);
    decode_fail(c, V1, "expirationTimestamp");
    free(c);
  }
}

CK_TEST(exec_decode, not_json) {
  decode_fail("", V1, "not JSON");
  decode_fail("token: abc\n", V1, "not JSON");
  decode_fail("{\"kind\":", V1, "not JSON");
  decode_fail("[]", V1, "kind");
}

/* ---- ck_exec_run ------------------------------------------------------------------- */

static ck_exec_config_t exec_cfg(const char *command, char **args, char **env) {
  static char *none[] = {NULL};
  ck_exec_config_t e = {
      .api_version = (char *)V1BETA1,
      .command = (char *)command,
      .args = args ? args : none,
      .env = env ? env : none,
  };
  return e;
}

static ck_config_t cluster_cfg(void) {
  ck_config_t c = {.server = (char *)"https://k.example:6443",
                   .tls_server_name = (char *)"api.internal"};
  return c;
}

static const char *const print_script =
    "#!/bin/sh\n"
    "cat <<'EOF'\n"
    "{\"apiVersion\": \"client.authentication.k8s.io/v1beta1\", \"kind\": \"ExecCredential\",\n"
    " \"status\": {\"token\": \"from-script\", \"expirationTimestamp\": \"2030-01-01T00:00:00Z\"}}\n"
    "EOF\n";

CK_TEST(exec_run, prints_a_credential) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  char *path = cktest_dir_put(&d, "plugin", print_script, 0755);
  ck_exec_config_t e = exec_cfg(path, NULL, NULL);
  ck_config_t cfg = cluster_cfg();
  ck_exec_result_t r;
  ck_error_t err = {0};
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.token, "from-script");
  cr_assert_eq(r.expires, 1893456000);
  ck_exec_result_clear(&r);
  free(path);
  cktest_dir_remove(&d);
}

CK_TEST(exec_run, environment_and_arguments_arrive) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  char *path = cktest_dir_put(
      &d, "plugin",
      "#!/bin/sh\n"
      "[ -n \"$KUBERNETES_EXEC_INFO\" ] || { echo 'no KUBERNETES_EXEC_INFO' >&2; exit 3; }\n"
      "case \"$KUBERNETES_EXEC_INFO\" in\n"
      "  *'\"apiVersion\":\"client.authentication.k8s.io/v1beta1\"'*) ;;\n"
      "  *) echo \"bad info: $KUBERNETES_EXEC_INFO\" >&2; exit 4 ;;\n"
      "esac\n"
      "case \"$KUBERNETES_EXEC_INFO\" in\n"
      "  *'\"kind\":\"ExecCredential\"'*'\"interactive\":false'*) ;;\n"
      "  *) echo \"bad info: $KUBERNETES_EXEC_INFO\" >&2; exit 5 ;;\n"
      "esac\n"
      "case \"$KUBERNETES_EXEC_INFO\" in\n"
      "  *'\"server\":\"https://k.example:6443\"'*'\"tls-server-name\":\"api.internal\"'*) ;;\n"
      "  *) echo \"no cluster info: $KUBERNETES_EXEC_INFO\" >&2; exit 6 ;;\n"
      "esac\n"
      "[ \"$CK_FOO\" = 'bar baz' ] || { echo \"CK_FOO=$CK_FOO\" >&2; exit 7; }\n"
      "[ \"$CK_OVERRIDE\" = new ] || { echo \"CK_OVERRIDE=$CK_OVERRIDE\" >&2; exit 8; }\n"
      "[ \"$CK_INHERITED\" = kept ] || { echo \"CK_INHERITED=$CK_INHERITED\" >&2; exit 9; }\n"
      "[ \"$#\" = 2 ] && [ \"$1\" = --flag ] && [ \"$2\" = 'two words' ] || exit 10\n"
      "if read line; then exit 11; fi\n" /* stdin is /dev/null */
      "printf '{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\"}}'"
      " client.authentication.k8s.io/v1beta1 \"env-ok-$CK_FOO\"\n", 0755);
  setenv("CK_OVERRIDE", "old", 1);
  setenv("CK_INHERITED", "kept", 1);
  setenv("KUBERNETES_EXEC_INFO", "stale", 1);
  char *args[] = {(char *)"--flag", (char *)"two words", NULL};
  char *env[] = {(char *)"CK_FOO=bar baz", (char *)"CK_OVERRIDE=new", NULL};
  ck_exec_config_t e = exec_cfg(path, args, env);
  e.provide_cluster_info = true;
  ck_config_t cfg = cluster_cfg();
  ck_exec_result_t r;
  ck_error_t err = {0};
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.token, "env-ok-bar baz");
  ck_exec_result_clear(&r);
  cr_assert_str_eq(getenv("CK_OVERRIDE"), "old", "the parent's environment is not changed");

  /* Without provideClusterInfo the script sees no cluster. */
  e.provide_cluster_info = false;
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "exit status 6");
  free(path);
  cktest_dir_remove(&d);
}

CK_TEST(exec_run, failing_plugin) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  char *path = cktest_dir_put(&d, "plugin", "#!/bin/sh\necho 'error: not logged in' >&2\nexit 1\n", 0755);
  ck_exec_config_t e = exec_cfg(path, NULL, NULL);
  ck_config_t cfg = cluster_cfg();
  ck_exec_result_t r;
  ck_error_t err = {0};
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  cr_assert_eq(err.code, CK_EAUTH);
  ASSERT_HAS(err.message, path);
  ASSERT_HAS(err.message, "exit status 1");
  cr_assert_null(r.token);
  free(path);

  /* Killed by a signal. */
  path = cktest_dir_put(&d, "killed", "#!/bin/sh\nkill -9 $$\n", 0755);
  e.command = path;
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "signal 9");
  free(path);

  /* Success but garbage output. */
  path = cktest_dir_put(&d, "garbage", "#!/bin/sh\necho hello\n", 0755);
  e.command = path;
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "not JSON");
  free(path);

  /* A credential of the wrong version. */
  path = cktest_dir_put(&d, "v1", "#!/bin/sh\necho '{\"apiVersion\":\"" V1 "\",\"kind\":"
                           "\"ExecCredential\",\"status\":{\"token\":\"x\"}}'\n", 0755);
  e.command = path;
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "apiVersion");
  free(path);
  cktest_dir_remove(&d);
}

CK_TEST(exec_run, missing_command_shows_install_hint) {
  ck_exec_config_t e = exec_cfg("cktest-no-such-plugin-7f3a", NULL, NULL);
  e.install_hint = (char *)"Install it from https://example.com/plugin (brew install plugin)";
  ck_config_t cfg = cluster_cfg();
  ck_exec_result_t r;
  ck_error_t err = {0};
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "cktest-no-such-plugin-7f3a");
  ASSERT_HAS(err.message, "not found");
  ASSERT_HAS(err.message, "Install it from https://example.com/plugin (brew install plugin)");

  /* An absolute path that is not there, and no hint. */
  e = exec_cfg("/nonexistent/cktest/plugin", NULL, NULL);
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "/nonexistent/cktest/plugin");
  ASSERT_HAS(err.message, "not found");
  ASSERT_HAS(err.message, "installed");
}

CK_TEST(exec_run, relative_command_resolves_against_base_dir) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  cr_assert_eq(cktest_sh(NULL, "mkdir '%s/bin'", d.path), 0);
  char *path = cktest_dir_put(&d, "bin/plugin", print_script, 0755);
  cr_assert_eq(chdir("/"), 0);
  ck_exec_config_t e = exec_cfg("bin/plugin", NULL, NULL);
  e.base_dir = d.path;
  ck_config_t cfg = cluster_cfg();
  ck_exec_result_t r;
  ck_error_t err = {0};
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.token, "from-script");
  ck_exec_result_clear(&r);

  e.command = (char *)"./bin/plugin";
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.token, "from-script");
  ck_exec_result_clear(&r);

  /* Not found relative to base_dir (the cwd has no bin/plugin either). */
  e.command = (char *)"bin/other";
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "not found");

  /* A bare name is looked up in PATH, not in base_dir. */
  char *bare = cktest_dir_put(&d, "cktest-bare-plugin", print_script, 0755);
  e.command = (char *)"cktest-bare-plugin";
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "not found");
  char newpath[512];
  snprintf(newpath, sizeof newpath, "%s:%s", d.path, getenv("PATH") ? getenv("PATH") : "/bin");
  setenv("PATH", newpath, 1);
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.token, "from-script");
  ck_exec_result_clear(&r);
  free(bare);
  free(path);
  cktest_dir_remove(&d);
}

CK_TEST_OPTS(exec_run, output_over_1mib_rejected, .timeout = 30) {
  cktest_dir_t d;
  cktest_dir_make(&d);
  /* Endless output: the plugin must be stopped, not waited for. */
  char *path = cktest_dir_put(&d, "chatty", "#!/bin/sh\nexec yes '{\"padding\": \"xxxxxxxxxxxxxxxx\"}'\n", 0755);
  ck_exec_config_t e = exec_cfg(path, NULL, NULL);
  ck_config_t cfg = cluster_cfg();
  ck_exec_result_t r;
  ck_error_t err = {0};
  int64_t t0 = ck_now_ms();
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  cr_assert_lt(ck_now_ms() - t0, 10000);
  ASSERT_HAS(err.message, "more than 1048576 bytes");
  cr_assert_null(r.token);
  free(path);

  /* Just over the bound, then exiting. */
  path = cktest_dir_put(&d, "big", "#!/bin/sh\nhead -c 1048577 /dev/zero | tr '\\0' ' '\n", 0755);
  e.command = path;
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), CK_EAUTH);
  ASSERT_HAS(err.message, "more than");
  free(path);

  /* A large but allowed credential (padding inside the JSON) is fine. */
  path = cktest_dir_put(&d, "padded",
                "#!/bin/sh\n"
                "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
                "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"big\"}}'\n"
                "head -c 900000 /dev/zero | tr '\\0' ' '\n", 0755);
  e.command = path;
  cr_assert_eq(ck_exec_run(&e, &cfg, &r, &err), 0, "%s", err.message);
  cr_assert_str_eq(r.token, "big");
  ck_exec_result_clear(&r);
  free(path);
  cktest_dir_remove(&d);
}

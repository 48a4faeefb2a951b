#include "cktest.h"

#include "crdkit/config.h"

#include <curl/curl.h>
#include <errno.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Weak, so test binaries also link without sanitizers (then there is no
 * leak check: `make test` always builds with them). */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

void cktest_leak_check(void) {
  if (__lsan_do_recoverable_leak_check)
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                 "memory leaked during the test (see the LeakSanitizer report above)");
}

const char *cktest_env(const char *name) {
  const char *v = getenv(name);
  cr_assert(v && *v,
            "%s is not set: this test needs the real apiserver (run `make test`, or "
            "`eval $(scripts/testenv up)` first)",
            name);
  return v;
}

ck_client_t *cktest_client(const char *who) { return cktest_client_opts(who, NULL); }

ck_client_t *cktest_client_opts(const char *who, const ck_client_opts_t *opts) {
  const char *path = strcmp(who, "user") == 0 ? cktest_env("CRDKIT_TEST_USER_KUBECONFIG")
                                              : cktest_env("KUBECONFIG");
  ck_config_opts_t o = {.kubeconfig = path, .no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  int rc = ck_config_load(&o, &cfg, &err);
  cr_assert_eq(rc, 0, "loading %s: %s", path, err.message);
  ck_client_t *c = NULL;
  rc = ck_client_new(cfg, opts, &c, &err);
  ck_config_free(cfg);
  cr_assert_eq(rc, 0, "client: %s", err.message);
  return c;
}

char *cktest_ns_create(ck_client_t *admin, const char *prefix) {
  char *name = malloc(64);
  snprintf(name, 64, "%s-%08x", prefix, cktest_rand32());
  json_t *ns = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                         "metadata", "name", name);
  ck_error_t err = {0};
  int rc = ck_object_create(admin, &ck_res_namespaces, NULL, ns, NULL, NULL, &err);
  json_decref(ns);
  cr_assert_eq(rc, 0, "create namespace %s: %s", name, err.message);
  return name;
}

void cktest_ns_delete(ck_client_t *admin, char *ns) {
  ck_error_t err = {0};
  /* Without kube-controller-manager the namespace stays Terminating; the
   * harness removes everything when it stops. */
  ck_object_delete(admin, &ck_res_namespaces, NULL, ns, NULL, NULL, &err);
  free(ns);
}

void cktest_control(const char *path) {
  const char *base = cktest_env("CRDKIT_TEST_CONTROL");
  char url[512];
  snprintf(url, sizeof url, "%s%s", base, path);
  CURL *e = curl_easy_init();
  cr_assert(e);
  FILE *devnull = fopen("/dev/null", "w");
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 180L);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, devnull);
  CURLcode rc = curl_easy_perform(e);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  fclose(devnull);
  cr_assert_eq(rc, CURLE_OK, "control %s: %s", path, curl_easy_strerror(rc));
  cr_assert_eq(code, 200, "control %s answered HTTP %ld", path, code);
}

int cktest_sh(char **out, const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  cr_assert(p, "popen %s", cmd);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 1024)
      buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  int st = pclose(p);
  if (out)
    *out = buf;
  else
    free(buf);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

json_t *cktest_json(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  cr_assert(j, "not JSON: %s (%s)", je.text, text);
  return j;
}

json_t *cktest_configmap(const char *name, const char *key, const char *value) {
  return json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                   "metadata", "name", name, "data", key, value);
}

char *cktest_tmpfile(const char *data) {
  char *path = strdup("/tmp/cktest-XXXXXX");
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  size_t len = strlen(data);
  cr_assert_eq(write(fd, data, len), (ssize_t)len);
  close(fd);
  return path;
}

json_t *cktest_configmap_create(ck_client_t *c, const char *ns, const char *name,
                                const char *key, const char *value) {
  json_t *cm = cktest_configmap(name, key, value);
  json_t *out = NULL;
  ck_error_t err = {0};
  int rc = ck_object_create(c, &ck_res_configmaps, ns, cm, NULL, &out, &err);
  json_decref(cm);
  cr_assert_eq(rc, 0, "create %s/%s: %s", ns, name, err.message);
  cr_assert_not_null(out);
  return out;
}

void cktest_dir_make(cktest_dir_t *d) {
  snprintf(d->path, sizeof d->path, "/tmp/cktest-XXXXXX");
  cr_assert_not_null(mkdtemp(d->path));
}

void cktest_dir_remove(cktest_dir_t *d) {
  cr_assert_eq(cktest_sh(NULL, "rm -rf '%s'", d->path), 0);
}

char *cktest_dir_put(const cktest_dir_t *d, const char *name, const char *data, int mode) {
  char *path = cktest_asprintf("%s/%s", d->path, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  cr_assert_eq(fwrite(data, 1, strlen(data), f), strlen(data));
  fclose(f);
  cr_assert_eq(chmod(path, (mode_t)mode), 0, "chmod %s", path);
  return path;
}

char *cktest_read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  char *buf = calloc(1, 65536);
  size_t n = fread(buf, 1, 65535, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

char *cktest_bin_path(const char *name) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  cr_assert(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  cr_assert(slash);
  *slash = '\0';
  char *path = cktest_asprintf("%s/%s", self, name);
  cr_assert(access(path, X_OK) == 0, "%s is not built (is it in test/meson.build?)", path);
  return path;
}

char *cktest_sh_ok(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char *out = NULL;
  int st = cktest_sh(&out, "%s", cmd);
  cr_assert_eq(st, 0, "`%s` exited with %d: %s", cmd, st, out);
  size_t n = strlen(out);
  while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
    out[--n] = '\0';
  return out;
}

char *cktest_asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  cr_assert(n >= 0 && s, "out of memory");
  return s;
}

json_t *cktest_jpath(json_t *o, const char *path) {
  char key[128];
  while (o && *path) {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    cr_assert_lt(n, sizeof key);
    memcpy(key, path, n);
    key[n] = '\0';
    o = json_object_get(o, key);
    path += n + (dot ? 1 : 0);
  }
  return o;
}

const char *cktest_jstr(json_t *o, const char *path) {
  return json_string_value(cktest_jpath(o, path));
}

double cktest_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t cktest_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cktest_sleep_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

unsigned cktest_rand32(void) {
  unsigned r;
  cr_assert_eq(getrandom(&r, sizeof r, 0), (ssize_t)sizeof r);
  return r;
}

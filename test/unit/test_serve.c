/* The embedded HTTP server on localhost: /metrics, /healthz, /readyz,
 * 404/405, address parsing, bind errors, and shutdown with clients still
 * connected. Fetches go through libcurl. */
#include "cktest.h"

#include "crdkit/serve.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct resp {
  long code;
  char *body;
  size_t len;
  char ctype[128];
  char allow[64];
} resp_t;

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
  resp_t *r = ctx;
  char *nb = realloc(r->body, r->len + size * n + 1);
  cr_assert_not_null(nb);
  memcpy(nb + r->len, p, size * n);
  r->len += size * n;
  nb[r->len] = '\0';
  r->body = nb;
  return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx) {
  resp_t *r = ctx;
  size_t len = size * n;
  if (len > 6 && strncasecmp(p, "Allow:", 6) == 0)
    snprintf(r->allow, sizeof r->allow, "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
  return len;
}

/* One request to http://HOST:port/path; fails the test when no answer. */
static resp_t fetch_host(const char *method, const char *host, int port, const char *path) {
  resp_t r = {0};
  r.body = calloc(1, 1);
  char url[256];
  snprintf(url, sizeof url, "http://%s:%d%s", host, port, path);
  CURL *e = curl_easy_init();
  cr_assert_not_null(e);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &r);
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "x=1");
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLcode rc = curl_easy_perform(e);
  cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.code);
  char *ct = NULL;
  curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
  snprintf(r.ctype, sizeof r.ctype, "%s", ct ? ct : "");
  curl_easy_cleanup(e);
  return r;
}

static resp_t fetch(const char *method, int port, const char *path) {
  return fetch_host(method, "127.0.0.1", port, path);
}

static void resp_free(resp_t *r) {
  free(r->body);
  r->body = NULL;
}

static ck_server_t *start(const char *maddr, const char *paddr, ck_metrics_t *m) {
  ck_server_opts_t o = {.metrics_addr = maddr, .probe_addr = paddr, .metrics = m};
  ck_server_t *s = NULL;
  ck_error_t err = {0};
  int rc = ck_server_start(&o, &s, &err);
  cr_assert_eq(rc, 0, "start %s %s: %s", maddr, paddr, err.message);
  cr_assert_not_null(s);
  return s;
}

/* ---- tests ------------------------------------------------------------ */

CK_TEST_OPTS(serve, metrics_endpoint, .timeout = 60) {
  ck_metrics_t *m = ck_metrics_new();
  ck_series_t *c = ck_metric_series1(
      ck_metrics_family(m, CK_METRIC_COUNTER, "ck_served_total", "Served.", "kind", NULL, 0),
      "test");
  ck_series_add(c, 41);
  ck_server_t *s = start("127.0.0.1:0", "0", m);
  int port = ck_server_port(s, 0);
  cr_assert_gt(port, 0);
  cr_assert_eq(ck_server_port(s, 1), 0, "probes are off");

  ck_series_inc(c);
  resp_t r = fetch("GET", port, "/metrics");
  cr_assert_eq(r.code, 200);
  cr_assert_str_eq(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
  cr_assert(strstr(r.body, "# TYPE ck_served_total counter\n") != NULL, "%s", r.body);
  cr_assert(strstr(r.body, "ck_served_total{kind=\"test\"} 42\n") != NULL, "%s", r.body);
  resp_free(&r);

  r = fetch("HEAD", port, "/metrics");
  cr_assert_eq(r.code, 200);
  cr_assert_eq(r.len, 0, "HEAD has no body");
  resp_free(&r);

  r = fetch("POST", port, "/metrics");
  cr_assert_eq(r.code, 405);
  cr_assert_str_eq(r.allow, "GET, HEAD");
  resp_free(&r);
  r = fetch("DELETE", port, "/metrics");
  cr_assert_eq(r.code, 405);
  resp_free(&r);

  r = fetch("GET", port, "/nope");
  cr_assert_eq(r.code, 404);
  resp_free(&r);
  r = fetch("GET", port, "/healthz");
  cr_assert_eq(r.code, 404, "probes are not served on a separate metrics listener");
  resp_free(&r);
  r = fetch("GET", port, "/metrics/extra");
  cr_assert_eq(r.code, 404);
  resp_free(&r);
  ck_server_free(s);
  ck_metrics_free(m);
}

CK_TEST_OPTS(serve, metrics_without_registry_is_404, .timeout = 60) {
  ck_server_t *s = start("127.0.0.1:0", "0", NULL);
  resp_t r = fetch("GET", ck_server_port(s, 0), "/metrics");
  cr_assert_eq(r.code, 404);
  resp_free(&r);
  ck_server_free(s);
}

static bool check_flag(void *ctx, char *msg, size_t msglen) {
  if (atomic_load((atomic_bool *)ctx))
    return true;
  snprintf(msg, msglen, "caches not synced");
  return false;
}

static bool check_ok(void *ctx, char *msg, size_t msglen) {
  (void)ctx;
  (void)msg;
  (void)msglen;
  return true;
}

static bool check_silent_fail(void *ctx, char *msg, size_t msglen) {
  (void)ctx;
  (void)msg;
  (void)msglen;
  return false;
}

CK_TEST_OPTS(serve, probes, .timeout = 60) {
  ck_server_t *s = start("0", "127.0.0.1:0", NULL);
  cr_assert_eq(ck_server_port(s, 0), 0);
  int port = ck_server_port(s, 1);
  cr_assert_gt(port, 0);

  /* No checks: healthy and ready. */
  resp_t r = fetch("GET", port, "/healthz");
  cr_assert_eq(r.code, 200);
  cr_assert_str_eq(r.body, "ok");
  cr_assert_str_eq(r.ctype, "text/plain; charset=utf-8");
  resp_free(&r);
  r = fetch("GET", port, "/readyz");
  cr_assert_eq(r.code, 200);
  resp_free(&r);

  atomic_bool synced = false;
  cr_assert_eq(ck_server_add_check(s, CK_CHECK_HEALTHZ, "ping", check_ok, NULL), 0);
  cr_assert_eq(ck_server_add_check(s, CK_CHECK_READYZ, "informer", check_ok, NULL), 0);
  cr_assert_eq(ck_server_add_check(s, CK_CHECK_READYZ, "cache-sync", check_flag, &synced), 0);

  r = fetch("GET", port, "/readyz");
  cr_assert_eq(r.code, 500);
  cr_assert(strstr(r.body, "[+]informer ok\n") != NULL, "%s", r.body);
  cr_assert(strstr(r.body, "[-]cache-sync failed: caches not synced\n") != NULL, "%s", r.body);
  cr_assert(strstr(r.body, "[+]informer ok\n") < strstr(r.body, "[-]cache-sync"),
            "checks in registration order");
  cr_assert(strstr(r.body, "ping") == NULL, "healthz checks do not run for readyz");
  resp_free(&r);
  r = fetch("GET", port, "/healthz");
  cr_assert_eq(r.code, 200, "a readiness failure does not fail liveness");
  cr_assert_str_eq(r.body, "ok");
  resp_free(&r);
  r = fetch("GET", port, "/healthz?verbose");
  cr_assert_eq(r.code, 200);
  cr_assert(strstr(r.body, "[+]ping ok\n") != NULL, "%s", r.body);
  resp_free(&r);

  atomic_store(&synced, true);
  r = fetch("GET", port, "/readyz");
  cr_assert_eq(r.code, 200);
  cr_assert_str_eq(r.body, "ok");
  resp_free(&r);
  r = fetch("GET", port, "/readyz?verbose=1");
  cr_assert_eq(r.code, 200);
  cr_assert(strstr(r.body, "[+]informer ok\n[+]cache-sync ok\n") != NULL, "%s", r.body);
  resp_free(&r);
  r = fetch("HEAD", port, "/readyz");
  cr_assert_eq(r.code, 200);
  resp_free(&r);

  atomic_store(&synced, false);
  cr_assert_eq(ck_server_add_check(s, CK_CHECK_HEALTHZ, "silent", check_silent_fail, NULL), 0);
  r = fetch("GET", port, "/readyz");
  cr_assert_eq(r.code, 500, "flips back");
  resp_free(&r);
  r = fetch("GET", port, "/healthz");
  cr_assert_eq(r.code, 500);
  cr_assert(strstr(r.body, "[-]silent failed: ") != NULL, "%s", r.body);
  resp_free(&r);

  r = fetch("GET", port, "/metrics");
  cr_assert_eq(r.code, 404, "metrics are not served on a separate probe listener");
  resp_free(&r);
  r = fetch("PUT", port, "/healthz");
  cr_assert_eq(r.code, 405);
  resp_free(&r);
  cr_assert_eq(ck_server_add_check(NULL, CK_CHECK_HEALTHZ, "x", check_ok, NULL), CK_EINVAL);
  ck_server_free(s);
}

CK_TEST_OPTS(serve, one_listener_for_the_same_address, .timeout = 60) {
  ck_metrics_t *m = ck_metrics_new();
  ck_metrics_family(m, CK_METRIC_GAUGE, "ck_shared", NULL, NULL, NULL, 0);
  ck_server_t *s = start("127.0.0.1:0", "127.0.0.1:0", m);
  int port = ck_server_port(s, 0);
  cr_assert_gt(port, 0);
  cr_assert_eq(ck_server_port(s, 1), port);
  resp_t r = fetch("GET", port, "/metrics");
  cr_assert_eq(r.code, 200);
  cr_assert(strstr(r.body, "ck_shared 0\n") != NULL);
  resp_free(&r);
  r = fetch("GET", port, "/healthz");
  cr_assert_eq(r.code, 200);
  resp_free(&r);
  ck_server_free(s);

  /* Two different free ports: two listeners. */
  s = start("127.0.0.1:0", "localhost:0", m);
  cr_assert_neq(ck_server_port(s, 0), ck_server_port(s, 1));
  cr_assert_gt(ck_server_port(s, 1), 0);
  ck_server_free(s);
  ck_metrics_free(m);
}

CK_TEST_OPTS(serve, all_interfaces_and_ipv6, .timeout = 60) {
  ck_server_t *s = start(":0", "0", NULL);
  resp_t r = fetch("GET", ck_server_port(s, 0), "/nothing");
  cr_assert_eq(r.code, 404, "\":PORT\" listens on the loopback too");
  resp_free(&r);
  ck_server_free(s);

  /* IPv6 loopback: served when the host has it, else an error naming it. */
  ck_server_opts_t o = {.metrics_addr = "0", .probe_addr = "[::1]:0"};
  ck_error_t err = {0};
  int rc = ck_server_start(&o, &s, &err);
  if (rc == 0) {
    r = fetch_host("GET", "[::1]", ck_server_port(s, 1), "/healthz");
    cr_assert_eq(r.code, 200);
    resp_free(&r);
    ck_server_free(s);
  } else {
    cr_assert_eq(rc, CK_EIO);
    cr_assert(strstr(err.message, "probe address [::1]:0") != NULL, "%s", err.message);
  }
}

CK_TEST(serve, disabled_and_bad_addresses) {
  ck_server_t *s = start("0", "0", NULL);
  cr_assert_eq(ck_server_port(s, 0), 0);
  cr_assert_eq(ck_server_port(s, 1), 0);
  ck_server_free(s);
  ck_server_free(NULL);
  cr_assert_eq(ck_server_port(NULL, 0), 0);

  const char *bad[] = {"", "8080", "abc", ":", ":99999", ":80x", "::1:80", "[::1]80",
                       "[::1]", "[]:80", "host:-1", ":123456"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_server_opts_t o = {.metrics_addr = bad[i], .probe_addr = "0"};
    ck_error_t err = {0};
    s = NULL;
    int rc = ck_server_start(&o, &s, &err);
    cr_assert_eq(rc, CK_EINVAL, "\"%s\" accepted (rc %d)", bad[i], rc);
    cr_assert_null(s);
    char want[64];
    snprintf(want, sizeof want, "metrics address \"%s\"", bad[i]);
    cr_assert(strstr(err.message, want) != NULL, "%s", err.message);
  }
  ck_server_opts_t o = {.metrics_addr = "0", .probe_addr = "no-such-host.invalid:80"};
  ck_error_t err = {0};
  cr_assert_neq(ck_server_start(&o, &s, &err), 0);
  cr_assert(strstr(err.message, "probe address no-such-host.invalid:80") != NULL, "%s",
            err.message);
}

CK_TEST_OPTS(serve, bind_conflict_names_the_address, .timeout = 60) {
  ck_server_t *a = start("127.0.0.1:0", "0", NULL);
  int port = ck_server_port(a, 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);

  ck_server_opts_t o = {.metrics_addr = addr, .probe_addr = "0"};
  ck_server_t *b = NULL;
  ck_error_t err = {0};
  int rc = ck_server_start(&o, &b, &err);
  cr_assert_eq(rc, CK_EIO);
  cr_assert_null(b);
  char want[128];
  snprintf(want, sizeof want, "metrics address %s: address in use", addr);
  cr_assert_str_eq(err.message, want);

  /* The probe listener failing releases the metrics listener it opened. */
  o = (ck_server_opts_t){.metrics_addr = "127.0.0.1:0", .probe_addr = addr};
  rc = ck_server_start(&o, &b, &err);
  cr_assert_eq(rc, CK_EIO);
  snprintf(want, sizeof want, "probe address %s: address in use", addr);
  cr_assert_str_eq(err.message, want);

  ck_server_free(a);
  /* Free again: the port can be bound once more. */
  o = (ck_server_opts_t){.metrics_addr = addr, .probe_addr = "0"};
  rc = ck_server_start(&o, &b, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_assert_eq(ck_server_port(b, 0), port);
  ck_server_free(b);
}

static int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(fd, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

CK_TEST_OPTS(serve, slow_clients_do_not_block, .timeout = 60) {
  ck_metrics_t *m = ck_metrics_new();
  ck_server_t *s = start("127.0.0.1:0", "127.0.0.1:0", m);
  int port = ck_server_port(s, 0);
  /* One client sends half a request and stalls, another sends nothing. */
  int half = raw_connect(port);
  const char *partial = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
  cr_assert_eq(write(half, partial, strlen(partial)), (ssize_t)strlen(partial));
  int idle = raw_connect(port);

  int64_t t0 = cktest_now_ms();
  resp_t r = fetch("GET", port, "/healthz");
  cr_assert_eq(r.code, 200, "served while other clients stall");
  resp_free(&r);
  /* Generous bound; the connection timeout (10 s) would be far over it. */
  cr_assert_lt(cktest_now_ms() - t0, 5000);

  t0 = cktest_now_ms();
  ck_server_free(s);
  cr_assert_lt(cktest_now_ms() - t0, 5000, "free waited for stalled clients");
  /* The server closed them: a read sees end of file (or a reset). */
  char buf[16];
  cr_assert_leq(read(half, buf, sizeof buf), 0);
  close(half);
  close(idle);
  ck_metrics_free(m);
}

typedef struct scraper {
  int port;
  int ok;
} scraper_t;

static void *scrape_loop(void *arg) {
  scraper_t *sc = arg;
  for (int i = 0; i < 20; i++) {
    resp_t r = fetch("GET", sc->port, "/metrics");
    sc->ok += r.code == 200 && strstr(r.body, "ck_busy_total") != NULL;
    resp_free(&r);
  }
  return NULL;
}

CK_TEST_OPTS(serve, concurrent_scrapes, .timeout = 120) {
  ck_metrics_t *m = ck_metrics_new();
  ck_series_t *c = ck_metric_series0(
      ck_metrics_family(m, CK_METRIC_COUNTER, "ck_busy_total", NULL, NULL, NULL, 0));
  ck_server_t *s = start("127.0.0.1:0", "0", m);
  scraper_t sc[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    sc[i] = (scraper_t){ck_server_port(s, 0), 0};
    cr_assert_eq(pthread_create(&th[i], NULL, scrape_loop, &sc[i]), 0);
  }
  for (int i = 0; i < 10000; i++)
    ck_series_inc(c);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(sc[i].ok, 20);
  }
  resp_t r = fetch("GET", ck_server_port(s, 0), "/metrics");
  cr_assert(strstr(r.body, "ck_busy_total 10000\n") != NULL, "%s", r.body);
  resp_free(&r);
  ck_server_free(s);
  ck_metrics_free(m);
}

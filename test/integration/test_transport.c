/* The transport on the real apiserver: connection reuse and HTTP/2
 * multiplexing (observed with ck_client_connections_opened), one client
 * shared by many threads, the User-Agent, connect/request timeouts and
 * retries, the client-side rate limit, request counters, and 429 with
 * Retry-After provoked with API Priority and Fairness. */
#include "cktest.h"

#include "ck_version.h"
#include "crdkit/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */






/* A client from kubeconfig text held in memory. */
static ck_client_t *client_from_text(const char *kubeconfig, const ck_client_opts_t *opts) {
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  int rc = ck_config_from_kubeconfig(kubeconfig, strlen(kubeconfig), "<test>", NULL, &cfg, &err);
  cr_assert_eq(rc, 0, "kubeconfig: %s\n%s", err.message, kubeconfig);
  ck_client_t *c = NULL;
  rc = ck_client_new(cfg, opts, &c, &err);
  ck_config_free(cfg);
  cr_assert_eq(rc, 0, "client: %s", err.message);
  return c;
}

static char *kubeconfig_text(const char *server, const char *cluster_lines,
                             const char *user_lines) {
  return cktest_asprintf("apiVersion: v1\nkind: Config\n"
                   "clusters:\n- name: c\n  cluster:\n    server: %s\n%s"
                   "users:\n- name: u\n  user:\n%s"
                   "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                   "current-context: x\n",
                   server, cluster_lines, user_lines);
}

typedef struct count_query {
  const char *method;
  int code;
  uint64_t count;
  uint64_t total;
} count_query_t;

static void count_cb(void *ctx, const char *method, int code, uint64_t count) {
  count_query_t *q = ctx;
  if (strcmp(method, q->method) == 0 && code == q->code)
    q->count += count;
  q->total += count;
}

static uint64_t req_count(ck_client_t *c, const char *method, int code) {
  count_query_t q = {method, code, 0, 0};
  ck_client_foreach_request_count(c, count_cb, &q);
  return q.count;
}

static uint64_t req_total(ck_client_t *c) {
  count_query_t q = {"", -1, 0, 0};
  ck_client_foreach_request_count(c, count_cb, &q);
  return q.total;
}

static int get_path(ck_client_t *c, const char *path, ck_error_t *err) {
  ck_request_t req = {.method = "GET", .path = path};
  ck_response_t resp;
  int rc = ck_client_request(c, &req, &resp, err);
  if (rc == 0)
    cr_assert(resp.body && resp.body[0] == '{', "GET %s: not JSON", path);
  ck_response_free(&resp);
  return rc;
}

/* ---- connection reuse ---------------------------------------------------- */

CK_TEST(transport, sequential_requests_reuse_a_connection) {
  ck_client_t *c = cktest_client("admin");
  cr_assert_eq(ck_client_connections_opened(c), 0, "connections before any request");
  ck_error_t err = {0};
  for (int i = 0; i < 50; i++)
    cr_assert_eq(get_path(c, "/api/v1/namespaces/default", &err), 0, "GET %d: %s", i,
                 err.message);
  uint64_t n = ck_client_connections_opened(c);
  cr_log_info("50 sequential GETs opened %llu connection(s)", (unsigned long long)n);
  cr_assert(n >= 1 && n <= 2, "50 sequential GETs opened %llu connections",
            (unsigned long long)n);
  cr_assert_eq(req_count(c, "GET", 200), 50);
  ck_client_free(c);
}

CK_TEST(transport, http1_sequential_requests_reuse_a_connection) {
  ck_client_opts_t o = {.http1 = true};
  ck_client_t *c = cktest_client_opts("admin", &o);
  ck_error_t err = {0};
  for (int i = 0; i < 50; i++)
    cr_assert_eq(get_path(c, "/api/v1/namespaces/default", &err), 0, "GET %d: %s", i,
                 err.message);
  uint64_t n = ck_client_connections_opened(c);
  cr_assert(n >= 1 && n <= 2, "HTTP/1.1: 50 sequential GETs opened %llu connections",
            (unsigned long long)n);
  ck_client_free(c);
}

typedef struct getter {
  ck_client_t *c;
  const char *path;
  int n;
  int failures;
  ck_error_t err;
} getter_t;

static void *getter_main(void *arg) {
  getter_t *g = arg;
  for (int i = 0; i < g->n; i++) {
    ck_error_t e = {0};
    if (get_path(g->c, g->path, &e) != 0) {
      g->failures++;
      g->err = e;
    }
  }
  return NULL;
}

#define NWATCH 20
#define NCREATE 5
#define NGETTER 4

/* 20 watches open at once, plus concurrent requests from 4 threads and 5
 * creations that every watch must see. Returns the connections opened. */
static uint64_t many_watches(const ck_client_opts_t *opts, const char *prefix) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, prefix);
  ck_client_t *c = cktest_client_opts("admin", opts);
  ck_error_t err = {0};
  ck_watch_t *w[NWATCH];
  ck_watch_opts_t wo = {.no_bookmarks = true, .timeout_seconds = 120};
  for (int i = 0; i < NWATCH; i++) {
    int rc = ck_watch_open(c, &ck_res_configmaps, ns, &wo, &w[i], &err);
    cr_assert_eq(rc, 0, "watch %d: %s", i, err.message);
  }
  char *path = ck_resource_path(&ck_res_configmaps, ns, NULL, NULL);
  getter_t g[NGETTER];
  pthread_t th[NGETTER];
  for (int i = 0; i < NGETTER; i++) {
    g[i] = (getter_t){.c = c, .path = path, .n = 10};
    cr_assert_eq(pthread_create(&th[i], NULL, getter_main, &g[i]), 0);
  }
  for (int i = 0; i < NCREATE; i++) {
    char name[32];
    snprintf(name, sizeof name, "cm-%d", i);
    json_t *cm = cktest_configmap(name, "k", "v");
    int rc = ck_object_create(c, &ck_res_configmaps, ns, cm, NULL, NULL, &err);
    json_decref(cm);
    cr_assert_eq(rc, 0, "create %s: %s", name, err.message);
  }
  for (int i = 0; i < NGETTER; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(g[i].failures, 0, "thread %d: %d failures, last: %s", i, g[i].failures,
                 g[i].err.message);
  }
  /* Every watch is live: it delivers the 5 ADDED events in order. */
  for (int i = 0; i < NWATCH; i++) {
    for (int k = 0; k < NCREATE; k++) {
      ck_watch_event_t ev;
      int rc = ck_watch_next(w[i], 20000, &ev, &err);
      cr_assert_eq(rc, 0, "watch %d event %d: rc %d %s", i, k, rc, err.message);
      cr_assert_eq(ev.type, CK_WATCH_ADDED, "watch %d event %d: type %d", i, k, ev.type);
      char name[32];
      snprintf(name, sizeof name, "cm-%d", k);
      cr_assert_str_eq(
          json_string_value(json_object_get(json_object_get(ev.object, "metadata"), "name")),
          name);
      ck_watch_event_clear(&ev);
    }
  }
  /* Connections are counted as transfers finish: end the watches first. */
  for (int i = 0; i < NWATCH; i++)
    ck_watch_free(w[i]);
  cr_assert_eq(req_count(c, "WATCH", 200), NWATCH);
  cr_assert_eq(req_count(c, "GET", 200), NGETTER * 10);
  uint64_t n = ck_client_connections_opened(c);
  free(path);
  ck_client_free(c);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
  return n;
}

CK_TEST_OPTS(transport, http2_multiplexes_watches_and_requests, .timeout = 120) {
  ck_client_opts_t o = {0};
  uint64_t n = many_watches(&o, "tr-h2");
  cr_log_info("HTTP/2: 20 watches + 45 requests opened %llu connection(s)",
              (unsigned long long)n);
  cr_assert(n >= 1 && n <= 2, "HTTP/2: 20 concurrent watches and 45 requests opened %llu "
                              "connections",
            (unsigned long long)n);
}

CK_TEST_OPTS(transport, http1_watches_need_their_own_connections, .timeout = 120) {
  ck_client_opts_t o = {.http1 = true};
  uint64_t n = many_watches(&o, "tr-h1");
  cr_log_info("HTTP/1.1: 20 watches + 45 requests opened %llu connection(s)",
              (unsigned long long)n);
  /* A watch holds its HTTP/1.1 connection while it is open. */
  cr_assert(n >= NWATCH, "HTTP/1.1: 20 concurrent watches opened only %llu connections",
            (unsigned long long)n);
  /* Requests still reuse idle connections while the watches hold theirs:
   * at most one per request in flight at a time (4 threads + the creating
   * one), not one per request (45). */
  cr_assert(n <= NWATCH + NGETTER + 2,
            "HTTP/1.1: %llu connections for 20 watches and 45 requests: requests did not reuse "
            "connections",
            (unsigned long long)n);
}

/* ---- thread safety ------------------------------------------------------- */

typedef struct worker {
  ck_client_t *c;
  const char *ns;
  int id;
  int ok;
  char failure[1100];
} worker_t;

/* 50 requests: create its ConfigMap, read it 48 times, delete it. */
static void *worker_main(void *arg) {
  worker_t *wk = arg;
  char name[32], value[32];
  snprintf(name, sizeof name, "w-%d", wk->id);
  snprintf(value, sizeof value, "value-%d", wk->id);
  ck_error_t err = {0};
  json_t *cm = cktest_configmap(name, "k", value);
  int rc = ck_object_create(wk->c, &ck_res_configmaps, wk->ns, cm, NULL, NULL, &err);
  json_decref(cm);
  if (rc) {
    snprintf(wk->failure, sizeof wk->failure, "create: %s", err.message);
    return NULL;
  }
  wk->ok++;
  for (int i = 0; i < 48; i++) {
    json_t *got = NULL;
    rc = ck_object_get(wk->c, &ck_res_configmaps, wk->ns, name, NULL, &got, &err);
    const char *v = json_string_value(json_object_get(json_object_get(got, "data"), "k"));
    bool same = v && strcmp(v, value) == 0;
    json_decref(got);
    if (rc || !same) {
      snprintf(wk->failure, sizeof wk->failure, "get %d: rc %d %s", i, rc,
               rc ? err.message : "wrong data (another thread's answer?)");
      return NULL;
    }
    wk->ok++;
  }
  rc = ck_object_delete(wk->c, &ck_res_configmaps, wk->ns, name, NULL, NULL, &err);
  if (rc) {
    snprintf(wk->failure, sizeof wk->failure, "delete: %s", err.message);
    return NULL;
  }
  wk->ok++;
  return NULL;
}

CK_TEST_OPTS(transport, one_client_shared_by_8_threads, .timeout = 120) {
  ck_client_t *c = cktest_client("admin");
  char *ns = cktest_ns_create(c, "tr-threads");
  uint64_t before = req_total(c);
  worker_t wk[8];
  pthread_t th[8];
  for (int i = 0; i < 8; i++) {
    wk[i] = (worker_t){.c = c, .ns = ns, .id = i};
    cr_assert_eq(pthread_create(&th[i], NULL, worker_main, &wk[i]), 0);
  }
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 8; i++)
    cr_assert_eq(wk[i].ok, 50, "thread %d: %d of 50 requests succeeded; %s", i, wk[i].ok,
                 wk[i].failure);
  cr_assert_eq(req_count(c, "POST", 201), 8 + 1 /* the namespace */);
  cr_assert_eq(req_count(c, "GET", 200), 8 * 48);
  cr_assert_eq(req_count(c, "DELETE", 200), 8);
  cr_assert_eq(req_total(c) - before, 400);
  cktest_ns_delete(c, ns);
  ck_client_free(c);
}

/* ---- User-Agent ------------------------------------------------------------ */

static const char *manager_of(json_t *obj) {
  json_t *mf = json_object_get(json_object_get(obj, "metadata"), "managedFields");
  return json_string_value(json_object_get(json_array_get(mf, 0), "manager"));
}

typedef struct capture {
  int lfd;
  char req[8192];
  size_t len;
} capture_t;

/* Accept one connection, keep the request head, answer 200 "{}". */
static void *capture_main(void *arg) {
  capture_t *cap = arg;
  int fd = accept(cap->lfd, NULL, NULL);
  if (fd < 0)
    return NULL;
  while (cap->len + 1 < sizeof cap->req) {
    ssize_t r = read(fd, cap->req + cap->len, sizeof cap->req - 1 - cap->len);
    if (r <= 0)
      break;
    cap->len += (size_t)r;
    cap->req[cap->len] = '\0';
    if (strstr(cap->req, "\r\n\r\n"))
      break;
  }
  static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
  ssize_t w = write(fd, answer, sizeof answer - 1);
  (void)w;
  close(fd);
  return NULL;
}

static int listen_local(int backlog, int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
  if (backlog >= 0)
    cr_assert_eq(listen(fd, backlog), 0);
  socklen_t l = sizeof a;
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

CK_TEST(transport, user_agent) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "tr-ua");
  ck_error_t err = {0};

  /* The apiserver names a create's field manager after the User-Agent's
   * program name when the request gives none. */
  json_t *cm = cktest_configmap("ua-default", "k", "v");
  json_t *out = NULL;
  int rc = ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, &out, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_assert_str_eq(manager_of(out), "crdkit");
  json_decref(out);
  json_decref(cm);

  ck_client_opts_t o = {.user_agent = "ckprobe/9.9 (test)"};
  ck_client_t *custom = cktest_client_opts("admin", &o);
  cm = cktest_configmap("ua-custom", "k", "v");
  rc = ck_object_create(custom, &ck_res_configmaps, ns, cm, NULL, &out, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_assert_str_eq(manager_of(out), "ckprobe");
  json_decref(out);
  json_decref(cm);
  ck_client_free(custom);

  /* The whole header, as sent: captured by a plain-HTTP listener. */
  capture_t cap = {0};
  int port;
  cap.lfd = listen_local(4, &port);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, capture_main, &cap), 0);
  char *server = cktest_asprintf("http://127.0.0.1:%d", port);
  char *kc = kubeconfig_text(server, "", "    {}\n");
  ck_client_opts_t once = {.max_retries = -1};
  ck_client_t *c = client_from_text(kc, &once);
  rc = get_path(c, "/version", &err);
  pthread_join(th, NULL);
  close(cap.lfd);
  cr_assert_eq(rc, 0, "%s", err.message);
  cr_assert(strncmp(cap.req, "GET /version HTTP/1.1\r\n", 23) == 0, "request: %s", cap.req);
  cr_assert(strstr(cap.req, "\r\nUser-Agent: crdkit/" CK_VERSION "\r\n"), "request: %s", cap.req);
  cr_assert(strstr(cap.req, "\r\nAccept: application/json\r\n"), "request: %s", cap.req);
  ck_client_free(c);
  free(kc);
  free(server);

  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- timeouts and retries ------------------------------------------------ */

CK_TEST(transport, refused_connection_fails_fast_after_retries) {
  /* A bound socket that does not listen: connections are refused, and the
   * port stays ours. */
  int port;
  int fd = listen_local(-1, &port);
  char *server = cktest_asprintf("https://127.0.0.1:%d", port);
  char *kc = kubeconfig_text(server, "", "    {}\n");
  ck_client_opts_t o = {.max_retries = 2};
  ck_client_t *c = client_from_text(kc, &o);
  ck_error_t err = {0};
  const char *path = "/api/v1/namespaces/default/configmaps/nothing-listens";
  int64_t t0 = cktest_now_ms();
  int rc = get_path(c, path, &err);
  int64_t took = cktest_now_ms() - t0;
  cr_assert_eq(rc, CK_ETRANSPORT, "rc %d: %s", rc, err.message);
  cr_assert_eq(err.code, CK_ETRANSPORT);
  cr_assert(strstr(err.message, path), "the path is not named: %s", err.message);
  cr_assert_eq(req_count(c, "GET", 0), 3, "1 attempt + 2 retries expected");
  /* backoff 100 ms and 200 ms (+ up to 50% jitter) */
  cr_assert(took >= 300 && took < 5000, "took %lld ms", (long long)took);
  ck_client_free(c);
  free(kc);
  free(server);
  close(fd);
}

CK_TEST(transport, connect_timeout_honoured) {
  /* A listener whose accept queue is full drops new SYNs: connecting
   * hangs until the client's connect timeout. */
  int port;
  int lfd = listen_local(0, &port);
  int fill[4];
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; i < 4; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert(fill[i] >= 0);
    int r = connect(fill[i], (struct sockaddr *)&a, sizeof a);
    cr_assert(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
  }
  cktest_sleep_ms(100);
  char *server = cktest_asprintf("https://127.0.0.1:%d", port);
  char *kc = kubeconfig_text(server, "", "    {}\n");
  ck_client_opts_t o = {.connect_timeout_ms = 500, .max_retries = -1};
  ck_client_t *c = client_from_text(kc, &o);
  ck_error_t err = {0};
  const char *path = "/api/v1/namespaces/default/configmaps/blackhole";
  int64_t t0 = cktest_now_ms();
  int rc = get_path(c, path, &err);
  int64_t took = cktest_now_ms() - t0;
  cr_assert_eq(rc, CK_ETIMEDOUT, "rc %d: %s", rc, err.message);
  cr_assert(strstr(err.message, path), "the path is not named: %s", err.message);
  cr_assert(strcasestr(err.message, "timeout") || strcasestr(err.message, "timed out"), "%s",
            err.message);
  cr_assert(took >= 450 && took < 3000, "connect timeout 500 ms, took %lld ms", (long long)took);
  ck_client_free(c);
  free(kc);
  free(server);
  for (int i = 0; i < 4; i++)
    close(fill[i]);
  close(lfd);
}

CK_TEST(transport, request_timeout_honoured) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "tr-timeout");
  /* A watch sent as a plain request: the server keeps it open for 30 s,
   * the request's own timeout ends it. */
  char *path = cktest_asprintf("/api/v1/namespaces/%s/configmaps?watch=true&timeoutSeconds=30", ns);
  ck_request_t req = {.method = "GET", .path = path, .timeout_ms = 700};
  ck_response_t resp;
  ck_error_t err = {0};
  int64_t t0 = cktest_now_ms();
  int rc = ck_client_request(admin, &req, &resp, &err);
  int64_t took = cktest_now_ms() - t0;
  ck_response_free(&resp);
  cr_assert_eq(rc, CK_ETIMEDOUT, "rc %d: %s", rc, err.message);
  cr_assert(strstr(err.message, path), "the path is not named: %s", err.message);
  cr_assert(took >= 650 && took < 5000, "timeout 700 ms, took %lld ms", (long long)took);
  cr_assert_eq(req_count(admin, "GET", 0), 1, "a timed-out request is not retried");
  free(path);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- rate limit and counters ---------------------------------------------- */

CK_TEST(transport, client_side_qps_limit) {
  ck_client_opts_t o = {.qps = 20, .burst = 1};
  ck_client_t *c = cktest_client_opts("admin", &o);
  ck_error_t err = {0};
  int64_t t0 = cktest_now_ms();
  for (int i = 0; i < 21; i++)
    cr_assert_eq(get_path(c, "/api/v1/namespaces/default", &err), 0, "%s", err.message);
  int64_t took = cktest_now_ms() - t0;
  cr_log_info("21 requests at qps=20 burst=1 took %lld ms", (long long)took);
  /* 1 from the bucket, 20 more at 20 per second. */
  cr_assert(took >= 950, "21 requests at qps=20, burst=1 took only %lld ms", (long long)took);
  cr_assert(took < 10000, "took %lld ms", (long long)took);
  ck_client_free(c);
}

typedef struct all_counts {
  int n;
  char method[8][16];
  int code[8];
  uint64_t count[8];
} all_counts_t;

static void all_cb(void *ctx, const char *method, int code, uint64_t count) {
  all_counts_t *a = ctx;
  cr_assert(a->n < 8);
  snprintf(a->method[a->n], sizeof a->method[a->n], "%s", method);
  a->code[a->n] = code;
  a->count[a->n] = count;
  a->n++;
}

CK_TEST(transport, request_counts) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "tr-counts");
  json_t *cm = cktest_configmap("counted", "k", "v");
  ck_error_t err = {0};
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, cm, NULL, NULL, &err), 0, "%s",
               err.message);
  json_decref(cm);

  ck_client_t *c = cktest_client("admin");
  all_counts_t a = {0};
  ck_client_foreach_request_count(c, all_cb, &a);
  cr_assert_eq(a.n, 0, "counters of a new client");
  for (int i = 0; i < 3; i++) {
    json_t *got = NULL;
    cr_assert_eq(ck_object_get(c, &ck_res_configmaps, ns, "counted", NULL, &got, &err), 0, "%s",
                 err.message);
    json_decref(got);
  }
  json_t *got = NULL;
  int rc = ck_object_get(c, &ck_res_configmaps, ns, "absent", NULL, &got, &err);
  cr_assert(rc == CK_EAPI && ck_error_is_not_found(&err), "rc %d %s", rc, err.message);
  cr_assert_null(got);

  a.n = 0;
  ck_client_foreach_request_count(c, all_cb, &a);
  cr_assert_eq(a.n, 2, "%d counters", a.n);
  uint64_t ok = 0, nf = 0;
  for (int i = 0; i < a.n; i++) {
    cr_assert_str_eq(a.method[i], "GET");
    if (a.code[i] == 200)
      ok = a.count[i];
    else if (a.code[i] == 404)
      nf = a.count[i];
    else
      cr_assert_fail("unexpected code %d", a.code[i]);
  }
  cr_assert_eq(ok, 3);
  cr_assert_eq(nf, 1);
  ck_client_free(c);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- 429 and Retry-After from API Priority and Fairness ------------------- */

typedef struct blocker {
  ck_client_t *c;
  char *path;
  int rc;
  ck_error_t err;
  int64_t end_ms;
  bool done;
} blocker_t;

static void *blocker_main(void *arg) {
  blocker_t *b = arg;
  ck_request_t req = {.method = "GET", .path = b->path, .timeout_ms = 30000};
  b->rc = ck_client_request(b->c, &req, NULL, &b->err);
  b->end_ms = cktest_now_ms();
  __atomic_store_n(&b->done, true, __ATOMIC_RELEASE);
  return NULL;
}

CK_TEST_OPTS(transport, retry_after_429_from_priority_and_fairness, .timeout = 120) {
  const char *kubectl = cktest_env("CRDKIT_TEST_KUBECTL");
  const char *akc = cktest_env("KUBECONFIG");
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "tr-apf");
  /* A ServiceAccount whose requests go to a priority level with no seats
   * and no queues: a request runs only while no other one does (APF lets
   * one through when nothing executes), others get 429 + Retry-After. */
  free(cktest_sh_ok("'%s' --kubeconfig='%s' -n '%s' create serviceaccount apf && "
              "'%s' --kubeconfig='%s' -n '%s' create role cm-view --verb=get,list "
              "--resource=configmaps && "
              "'%s' --kubeconfig='%s' -n '%s' create rolebinding cm-view --role=cm-view "
              "--serviceaccount='%s:apf'",
              kubectl, akc, ns, kubectl, akc, ns, kubectl, akc, ns, ns));
  char *manifest = cktest_asprintf(
      "apiVersion: flowcontrol.apiserver.k8s.io/v1\n"
      "kind: PriorityLevelConfiguration\n"
      "metadata: {name: %s}\n"
      "spec:\n"
      "  type: Limited\n"
      "  limited:\n"
      "    nominalConcurrencyShares: 0\n"
      "    lendablePercent: 0\n"
      "    borrowingLimitPercent: 0\n"
      "    limitResponse: {type: Reject}\n"
      "---\n"
      "apiVersion: flowcontrol.apiserver.k8s.io/v1\n"
      "kind: FlowSchema\n"
      "metadata: {name: %s}\n"
      "spec:\n"
      "  priorityLevelConfiguration: {name: %s}\n"
      "  matchingPrecedence: 500\n"
      "  distinguisherMethod: {type: ByUser}\n"
      "  rules:\n"
      "  - subjects:\n"
      "    - kind: ServiceAccount\n"
      "      serviceAccount: {name: apf, namespace: %s}\n"
      "    resourceRules:\n"
      "    - {verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*']}\n"
      "    nonResourceRules:\n"
      "    - {verbs: ['*'], nonResourceURLs: ['*']}\n",
      ns, ns, ns, ns);
  char *mfile = cktest_tmpfile(manifest);
  free(cktest_sh_ok("'%s' --kubeconfig='%s' apply -f '%s' && "
              "'%s' --kubeconfig='%s' wait --for=condition=Dangling=False flowschema/%s "
              "--timeout=30s",
              kubectl, akc, mfile, kubectl, akc, ns));
  char *token =
      cktest_sh_ok("'%s' --kubeconfig='%s' -n '%s' create token apf --duration=10m", kubectl, akc, ns);
  char *server = cktest_sh_ok("awk '$1 == \"server:\" {print $2; exit}' '%s'", akc);
  char *ca = cktest_sh_ok("awk '$1 == \"certificate-authority-data:\" {print $2; exit}' '%s'", akc);
  char *cl = cktest_asprintf("    certificate-authority-data: %s\n", ca);
  char *ul = cktest_asprintf("    token: %s\n", token);
  char *kc = kubeconfig_text(server, cl, ul);
  /* Wait until the RoleBinding is in effect (403 before). */
  ck_client_opts_t no_retry = {.max_retries = -1};
  ck_client_t *probe = client_from_text(kc, &no_retry);
  char *list = cktest_asprintf("/api/v1/namespaces/%s/configmaps", ns);
  ck_error_t err = {0};
  int64_t deadline = cktest_now_ms() + 20000;
  while (get_path(probe, list, &err) != 0) {
    cr_assert(err.http_status == 403 && cktest_now_ms() < deadline, "%s", err.message);
    cktest_sleep_ms(100);
  }

  /* The blocker: a list at a resourceVersion far in the future waits ~3 s
   * for the watch cache, holding the only seat, then fails with 504. */
  blocker_t b = {.c = client_from_text(kc, &no_retry)};
  b.path = cktest_asprintf("%s?resourceVersion=999999999&resourceVersionMatch=NotOlderThan", list);
  pthread_t th;
  int64_t t_block = cktest_now_ms();
  cr_assert_eq(pthread_create(&th, NULL, blocker_main, &b), 0);

  /* Without retries: the 429 and its Retry-After come back. */
  int rc = 0;
  for (;;) {
    cktest_sleep_ms(100);
    rc = get_path(probe, list, &err);
    if (rc != 0 || __atomic_load_n(&b.done, __ATOMIC_ACQUIRE))
      break;
  }
  cr_assert_eq(rc, CK_EAPI, "never throttled while the blocker ran: rc %d %s", rc, err.message);
  cr_assert_eq(err.http_status, 429, "%d %s", err.http_status, err.message);
  cr_assert(ck_error_is_too_many_requests(&err), "reason %s", ck_reason_name(err.reason));
  cr_assert_eq(err.retry_after_s, 1, "Retry-After: %d", err.retry_after_s);

  /* With retries: throttled until the blocker is done, waiting the
   * Retry-After (1 s) before each new attempt, then served. */
  ck_client_opts_t retry = {.max_retries = 20, .max_retry_wait_ms = 5000};
  ck_client_t *c = client_from_text(kc, &retry);
  int64_t t0 = cktest_now_ms();
  rc = get_path(c, list, &err);
  int64_t took = cktest_now_ms() - t0;
  pthread_join(th, NULL);
  cr_assert_eq(rc, 0, "rc %d: %s", rc, err.message);
  uint64_t throttled = req_count(c, "GET", 429);
  cr_log_info("served after %llu 429s and %lld ms; blocker held the seat %lld ms",
              (unsigned long long)throttled, (long long)took, (long long)(b.end_ms - t_block));
  cr_assert(throttled >= 1, "the retrying request was never throttled (took %lld ms)",
            (long long)took);
  cr_assert_eq(req_count(c, "GET", 200), 1);
  cr_assert((int64_t)throttled * 1000 <= took,
            "%llu attempts throttled in %lld ms: Retry-After: 1 was not waited for",
            (unsigned long long)throttled, (long long)took);
  /* The blocker really held the seat until the server gave up on it. */
  cr_assert_eq(b.rc, CK_EAPI, "blocker: rc %d %s", b.rc, b.err.message);
  cr_assert_eq(b.err.http_status, 504, "blocker: %d %s", b.err.http_status, b.err.message);
  cr_assert(t0 + took + 50 >= b.end_ms, "served before the seat was free");

  free(cktest_sh_ok("'%s' --kubeconfig='%s' delete flowschema/%s prioritylevelconfiguration/%s", kubectl,
              akc, ns, ns));
  ck_client_free(c);
  ck_client_free(b.c);
  free(b.path);
  ck_client_free(probe);
  free(list);
  free(kc);
  free(ul);
  free(cl);
  free(ca);
  free(server);
  free(token);
  unlink(mfile);
  free(mfile);
  free(manifest);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

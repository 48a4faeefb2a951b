/* The client: configuration, credentials, retries, rate limit and request
 * accounting on top of the transport. */
#include "crdkit/client.h"

#include "ck_version.h"
#include "kube/kube_internal.h"
#include "util/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COUNTERS 64

typedef struct req_counter {
  char method[8];
  int code;
  uint64_t count;
} req_counter_t;

struct ck_client {
  ck_config_t *cfg;
  ck_client_opts_t opts;
  char user_agent[128];
  ck_transport_t *transport;
  ck_auth_t *auth;
  char *connect_to;         /* "tlsname:port:host:port" for tls-server-name */
  char *url_base;           /* server URL, host replaced by tls-server-name */
  struct curl_slist *connect_to_list;
  /* rate limiter */
  pthread_mutex_t rl_lock;
  double tokens;
  int64_t rl_last_ms;
  /* request counters */
  pthread_mutex_t stat_lock;
  req_counter_t counters[MAX_COUNTERS];
  int ncounters;
  ck_request_observer_fn observer; /* under stat_lock */
  void *observer_ctx;
  char host[256]; /* "host[:port]" of the server URL, for the observer */
  /* discovery cache (discovery.c) */
  pthread_mutex_t disc_lock;
  json_t *disc;
};

/* ---- lifecycle -------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void init_curl(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* Split "https://host:port/path" into host and port. */
static int split_server(const char *server, char *host, size_t hn, int *port) {
  const char *p = strstr(server, "://");
  if (!p)
    return -1;
  bool https = strncmp(server, "https", 5) == 0;
  p += 3;
  const char *end = p + strcspn(p, "/");
  const char *colon = NULL;
  if (*p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb)
      return -1;
    colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    snprintf(host, hn, "%.*s", (int)(rb - p + 1), p);
  } else {
    colon = memchr(p, ':', (size_t)(end - p));
    snprintf(host, hn, "%.*s", (int)((colon ? colon : end) - p), p);
  }
  if (colon) {
    char *endp = NULL;
    long v = strtol(colon + 1, &endp, 10);
    *port = endp != colon + 1 && v > 0 && v < 65536 ? (int)v : -1;
  } else {
    *port = https ? 443 : 80;
  }
  return *port > 0 && *port < 65536 ? 0 : -1;
}

int ck_client_new(const ck_config_t *cfg, const ck_client_opts_t *opts, ck_client_t **out,
                  ck_error_t *err) {
  *out = NULL;
  pthread_once(&curl_once, init_curl);
  if (curl_init_rc != CURLE_OK)
    return ck_error_set(err, CK_ETRANSPORT, "libcurl initialisation failed");
  if (!cfg || !cfg->server)
    return ck_error_set(err, CK_EINVAL, "ck_client_new: no configuration");
  ck_client_t *c = calloc(1, sizeof *c);
  if (!c)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  pthread_mutex_init(&c->rl_lock, NULL);
  pthread_mutex_init(&c->stat_lock, NULL);
  pthread_mutex_init(&c->disc_lock, NULL);
  if (opts)
    c->opts = *opts;
  c->opts.user_agent = NULL;
  snprintf(c->user_agent, sizeof c->user_agent, "%s",
           opts && opts->user_agent ? opts->user_agent : "crdkit/" CK_VERSION);
  if (c->opts.connect_timeout_ms <= 0)
    c->opts.connect_timeout_ms = 10000;
  if (c->opts.request_timeout_ms <= 0)
    c->opts.request_timeout_ms = 60000;
  if (c->opts.max_retries == 0)
    c->opts.max_retries = 5;
  if (c->opts.max_retry_wait_ms <= 0)
    c->opts.max_retry_wait_ms = 30000;
  if (c->opts.qps > 0 && c->opts.burst <= 0)
    c->opts.burst = c->opts.qps < 1 ? 1 : (int)c->opts.qps;
  c->tokens = c->opts.burst;
  c->rl_last_ms = ck_now_ms();
  const char *hp = strstr(cfg->server, "://");
  hp = hp ? hp + 3 : cfg->server;
  snprintf(c->host, sizeof c->host, "%.*s", (int)strcspn(hp, "/"), hp);

  int rc = 0;
  if (!(c->cfg = ck_config_dup(cfg)))
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  if (rc == 0)
    rc = ck_auth_new(cfg, &c->auth, err);
  if (rc == 0 && cfg->tls_server_name) {
    /* Verify the certificate against tls-server-name while connecting to
     * the configured host: request that name, connect to the server. */
    char host[256];
    int port;
    if (split_server(cfg->server, host, sizeof host, &port) != 0) {
      rc = ck_error_set(err, CK_ECONFIG, "%s: server \"%s\" has no usable host:port",
                        cfg->source ? cfg->source : "config", cfg->server);
    } else {
      size_t n = strlen(cfg->tls_server_name) + strlen(host) + 32;
      c->connect_to = malloc(n);
      c->url_base = malloc(n);
      if (c->connect_to && c->url_base) {
        snprintf(c->connect_to, n, "%s:%d:%s:%d", cfg->tls_server_name, port, host, port);
        snprintf(c->url_base, n, "https://%s:%d", cfg->tls_server_name, port);
        c->connect_to_list = curl_slist_append(NULL, c->connect_to);
      }
      if (!c->connect_to_list)
        rc = ck_error_set(err, CK_ENOMEM, "out of memory");
    }
  }
  if (rc == 0)
    rc = ck_transport_new(&c->transport, err);
  if (rc) {
    ck_client_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void ck_client_free(ck_client_t *c) {
  if (!c)
    return;
  ck_transport_free(c->transport);
  ck_auth_free(c->auth);
  ck_config_free(c->cfg);
  curl_slist_free_all(c->connect_to_list);
  free(c->connect_to);
  free(c->url_base);
  json_decref(c->disc);
  pthread_mutex_destroy(&c->rl_lock);
  pthread_mutex_destroy(&c->stat_lock);
  pthread_mutex_destroy(&c->disc_lock);
  free(c);
}

/* transport.c */

uint64_t ck_client_connections_opened(ck_client_t *c) {
  return ck_transport_connections_opened(c->transport);
}

const char *ck_client_namespace(const ck_client_t *c) { return c->cfg->namespace_; }
const char *ck_client_server(const ck_client_t *c) { return c->cfg->server; }
ck_transport_t *ck_client_transport(ck_client_t *c) { return c->transport; }
ck_auth_t *ck_client_auth(ck_client_t *c) { return c->auth; }
long ck_client_connect_timeout_ms(const ck_client_t *c) { return c->opts.connect_timeout_ms; }

/* Discovery cache access for discovery.c. */
pthread_mutex_t *ck_client_disc_lock(ck_client_t *c);
json_t **ck_client_disc_cache(ck_client_t *c);
pthread_mutex_t *ck_client_disc_lock(ck_client_t *c) { return &c->disc_lock; }
json_t **ck_client_disc_cache(ck_client_t *c) { return &c->disc; }

void ck_client_count_request(ck_client_t *c, const char *method, long code) {
  pthread_mutex_lock(&c->stat_lock);
  int i;
  for (i = 0; i < c->ncounters; i++)
    if (c->counters[i].code == (int)code && strcmp(c->counters[i].method, method) == 0)
      break;
  if (i == c->ncounters && i < MAX_COUNTERS) {
    snprintf(c->counters[i].method, sizeof c->counters[i].method, "%s", method);
    c->counters[i].code = (int)code;
    c->ncounters++;
  }
  if (i < MAX_COUNTERS)
    c->counters[i].count++;
  pthread_mutex_unlock(&c->stat_lock);
}

void ck_client_set_observer(ck_client_t *c, ck_request_observer_fn fn, void *ctx) {
  pthread_mutex_lock(&c->stat_lock);
  c->observer = fn;
  c->observer_ctx = ctx;
  pthread_mutex_unlock(&c->stat_lock);
}

/* Report one finished attempt to the observer, outside the lock so a slow
 * observer does not serialise the client's requests. */
static void observe_attempt(ck_client_t *c, const char *method, long code, ck_xfer_t *x) {
  pthread_mutex_lock(&c->stat_lock);
  ck_request_observer_fn fn = c->observer;
  void *ctx = c->observer_ctx;
  pthread_mutex_unlock(&c->stat_lock);
  if (!fn)
    return;
  curl_off_t us = 0;
  curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
  fn(ctx, method, c->host, (int)code, (double)us / 1e6);
}

void ck_client_foreach_request_count(ck_client_t *c,
                                     void (*fn)(void *ctx, const char *method, int code,
                                                uint64_t count),
                                     void *ctx) {
  req_counter_t copy[MAX_COUNTERS];
  pthread_mutex_lock(&c->stat_lock);
  int n = c->ncounters;
  memcpy(copy, c->counters, sizeof copy);
  pthread_mutex_unlock(&c->stat_lock);
  for (int i = 0; i < n; i++)
    fn(ctx, copy[i].method, copy[i].code, copy[i].count);
}

/* ---- building a transfer ---------------------------------------------- */

int ck_client_prepare(ck_client_t *c, ck_xfer_t *x, const char *method, const char *path,
                      const char *content_type, const char *body, size_t body_len,
                      long timeout_ms, ck_cred_t *cred, ck_error_t *err) {
  if (ck_xfer_init(x, c->transport) != 0)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  CURL *e = x->easy;
  ck_buf_t url = {0};
  ck_buf_puts(&url, c->url_base ? c->url_base : c->cfg->server);
  ck_buf_puts(&url, path);
  if (url.oom) {
    ck_buf_free(&url);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  curl_easy_setopt(e, CURLOPT_URL, url.data);
  ck_buf_free(&url); /* libcurl copies strings */
  if (c->connect_to_list)
    curl_easy_setopt(e, CURLOPT_CONNECT_TO, c->connect_to_list);
  curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
  if (timeout_ms > 0)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   c->opts.http1 ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl can decode */
  if (c->cfg->proxy_url)
    curl_easy_setopt(e, CURLOPT_PROXY, c->cfg->proxy_url);
  else
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*"); /* as client-go: no env proxy for the API */
  if (c->cfg->insecure_skip_tls_verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  } else {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  }
  if (c->cfg->ca_pem) {
    struct curl_blob b = {c->cfg->ca_pem, c->cfg->ca_pem_len, CURL_BLOB_NOCOPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
  }
  if (cred->cert_pem) {
    struct curl_blob cb = {cred->cert_pem, cred->cert_len, CURL_BLOB_COPY};
    struct curl_blob kb = {cred->key_pem, cred->key_len, CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
  }
  struct curl_slist *h = NULL;
  h = curl_slist_append(h, "Accept: application/json");
  if (cred->bearer) {
    size_t n = strlen(cred->bearer) + 32;
    char *line = malloc(n);
    if (line) {
      snprintf(line, n, "Authorization: Bearer %s", cred->bearer);
      h = curl_slist_append(h, line);
      memset(line, 0, n);
      free(line);
    }
  }
  if (body) {
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
    h = curl_slist_append(h, ct);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  }
  h = curl_slist_append(h, "Expect:");
  if (!h)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  x->headers = h;
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  if (strcmp(method, "GET") == 0)
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  else if (strcmp(method, "POST") != 0 || !body)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  return 0;
}

int ck_xfer_transport_error(const ck_xfer_t *x, const char *method, const char *path,
                            ck_error_t *err) {
  if (x->body_too_big)
    return ck_error_set(err, CK_ETOOBIG, "%s %s: the answer exceeds the size bound", method,
                        path);
  int code = x->result == CURLE_OPERATION_TIMEDOUT ? CK_ETIMEDOUT : CK_ETRANSPORT;
  return ck_error_set(err, code, "%s %s: %s", method, path,
                      x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result));
}

/* ---- retries and rate limiting ---------------------------------------- */

static void rate_limit(ck_client_t *c) {
  if (c->opts.qps <= 0)
    return;
  for (;;) {
    pthread_mutex_lock(&c->rl_lock);
    int64_t now = ck_now_ms();
    c->tokens += (double)(now - c->rl_last_ms) * c->opts.qps / 1000.0;
    if (c->tokens > c->opts.burst)
      c->tokens = c->opts.burst;
    c->rl_last_ms = now;
    if (c->tokens >= 1) {
      c->tokens -= 1;
      pthread_mutex_unlock(&c->rl_lock);
      return;
    }
    int64_t wait = (int64_t)ceil((1 - c->tokens) * 1000.0 / c->opts.qps);
    pthread_mutex_unlock(&c->rl_lock);
    ck_sleep_ms(wait);
  }
}

/* curl results meaning nothing reached the server. */
static bool not_sent(CURLcode r) {
  return r == CURLE_COULDNT_CONNECT || r == CURLE_COULDNT_RESOLVE_HOST ||
         r == CURLE_COULDNT_RESOLVE_PROXY || r == CURLE_SSL_CONNECT_ERROR;
}

/* curl results that may happen after the request was sent. */
static bool broken_connection(CURLcode r) {
  return r == CURLE_SEND_ERROR || r == CURLE_RECV_ERROR || r == CURLE_GOT_NOTHING ||
         r == CURLE_HTTP2 || r == CURLE_HTTP2_STREAM || r == CURLE_PARTIAL_FILE;
}

static bool idempotent(const char *method) {
  return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
         strcmp(method, "OPTIONS") == 0;
}

static int64_t backoff_ms(const ck_client_t *c, int attempt, int retry_after_s) {
  int64_t base = retry_after_s > 0 ? (int64_t)retry_after_s * 1000 : 100LL << (attempt < 8 ? attempt : 8);
  if (base > c->opts.max_retry_wait_ms)
    base = c->opts.max_retry_wait_ms;
  /* jitter: +0..50% so many clients don't retry in step */
  return base + (int64_t)ck_rand_below((uint64_t)(base / 2 + 1));
}

int ck_client_request(ck_client_t *c, const ck_request_t *req, ck_response_t *resp,
                      ck_error_t *err) {
  if (resp)
    memset(resp, 0, sizeof *resp);
  if (!req || !req->method || !req->path || req->path[0] != '/')
    return ck_error_set(err, CK_EINVAL, "ck_client_request: method and an absolute path needed");
  long timeout = req->timeout_ms > 0 ? req->timeout_ms : c->opts.request_timeout_ms;
  int max_retries = c->opts.max_retries < 0 ? 0 : c->opts.max_retries;
  bool reauth_done = false;
  for (int attempt = 0;; attempt++) {
    rate_limit(c);
    ck_cred_t cred;
    int rc = ck_auth_get(c->auth, &cred, err);
    if (rc)
      return rc;
    ck_xfer_t x;
    rc = ck_client_prepare(c, &x, req->method, req->path, req->content_type, req->body,
                           req->body_len, timeout, &cred, err);
    if (rc == 0 && (rc = ck_transport_submit(c->transport, &x)) != 0)
      ck_error_set(err, rc, "%s %s: the client is shutting down", req->method, req->path);
    if (rc == 0)
      ck_transport_wait(c->transport, &x, -1);
    uint64_t gen = cred.generation;
    ck_cred_clear(&cred);
    if (rc) {
      ck_xfer_cleanup(&x);
      return rc;
    }
    if (x.result != CURLE_OK && x.status >= 400 && broken_connection(x.result)) {
      /* The answer's status line arrived, then the stream was reset (the
       * apiserver does so for some HTTP/2 error answers, which libcurl 7.88
       * reports as a transfer error): the HTTP status is the answer. */
      x.result = CURLE_OK;
    }
    if (x.result != CURLE_OK) {
      curl_off_t sent = 0;
      curl_easy_getinfo(x.easy, CURLINFO_REQUEST_SIZE, &sent);
      bool retry = attempt < max_retries &&
                   (not_sent(x.result) || (sent == 0 && broken_connection(x.result)) ||
                    (idempotent(req->method) && broken_connection(x.result)));
      rc = ck_xfer_transport_error(&x, req->method, req->path, err);
      ck_client_count_request(c, req->method, 0);
      observe_attempt(c, req->method, 0, &x);
      ck_xfer_cleanup(&x);
      if (!retry)
        return rc;
      int64_t wait = backoff_ms(c, attempt, 0);
      CK_DEBUG("client", NULL, "%s; retrying in %lld ms", err ? err->message : "transport error",
               (long long)wait);
      ck_sleep_ms(wait);
      continue;
    }
    ck_client_count_request(c, req->method, x.status);
    observe_attempt(c, req->method, x.status, &x);
    if (x.status >= 200 && x.status < 300) {
      if (resp) {
        resp->status = x.status;
        resp->body_len = x.body.len;
        resp->body = ck_buf_steal(&x.body);
      }
      ck_xfer_cleanup(&x);
      return 0;
    }
    ck_status_decode(x.status, x.body.data, x.body.len, x.retry_after[0] ? x.retry_after : NULL,
                     req->path, err);
    int retry_after = err ? err->retry_after_s : 0;
    bool retry = false;
    if (x.status == 429 || x.status == 503)
      retry = attempt < max_retries; /* the server did not process it */
    else if (x.status == 401 && !reauth_done && ck_auth_invalidate(c->auth, gen))
      retry = reauth_done = true; /* once, with a fresh credential */
    if (!retry) {
      if (resp) {
        resp->status = x.status;
        resp->body_len = x.body.len;
        resp->body = ck_buf_steal(&x.body);
      }
      ck_xfer_cleanup(&x);
      return CK_EAPI;
    }
    ck_xfer_cleanup(&x);
    if (x.status != 401) {
      int64_t wait = backoff_ms(c, attempt, retry_after);
      CK_DEBUG("client", NULL, "%s %s: HTTP %ld; retrying in %lld ms", req->method, req->path,
               x.status, (long long)wait);
      ck_sleep_ms(wait);
    }
  }
}

void ck_response_free(ck_response_t *resp) {
  if (!resp)
    return;
  free(resp->body);
  resp->body = NULL;
  resp->body_len = 0;
}

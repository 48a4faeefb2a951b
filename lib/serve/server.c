/* The embedded HTTP server: /metrics, /healthz and /readyz over
 * libmicrohttpd.
 *
 * We create and bind the listening sockets ourselves and hand them to
 * libmicrohttpd (MHD_OPTION_LISTEN_SOCKET): that is how an error can name
 * the address and the errno, and how "HOST:PORT" with a host name, or a
 * dual-stack ":PORT", is resolved the same way everywhere. Each daemon runs
 * one internal polling thread; with a connection limit and an idle timeout
 * a slow or silent client holds one slot for a while, never the thread.
 * The handlers only read state (a metrics render, the checks), so one
 * thread is enough for scrapes and probes. */
#include "crdkit/serve.h"

#include "crdkit/log.h"
#include "util/buf.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_LIMIT 64u
#define CONN_TIMEOUT_S 10u
#define CHECK_MSG_MAX 256

typedef struct check {
  struct check *next;
  ck_check_kind_t kind;
  char *name;
  ck_check_fn fn;
  void *ctx;
} check_t;

typedef struct listener {
  ck_server_t *s;
  struct MHD_Daemon *d;
  int port;
  bool metrics; /* serves /metrics */
  bool probes;  /* serves /healthz and /readyz */
} listener_t;

struct ck_server {
  ck_metrics_t *metrics;
  listener_t l[2]; /* [0] metrics, [1] probes (unused when shared) */
  bool shared;
  pthread_mutex_t lock; /* checks list */
  check_t *checks;
  check_t **tail;
  size_t nchecks;
};

/* ---- addresses -------------------------------------------------------- */

typedef struct addr {
  bool off;
  bool any; /* ":PORT" */
  char host[256];
  int port;
} addr_t;

static int parse_addr(const char *what, const char *text, addr_t *a, ck_error_t *err) {
  memset(a, 0, sizeof *a);
  if (strcmp(text, "0") == 0) {
    a->off = true;
    return 0;
  }
  const char *colon;
  if (text[0] == '[') {
    const char *rb = strchr(text, ']');
    if (!rb || rb == text + 1 || rb[1] != ':')
      goto bad;
    if ((size_t)(rb - text - 1) >= sizeof a->host)
      goto bad;
    memcpy(a->host, text + 1, (size_t)(rb - text - 1));
    colon = rb + 1;
  } else {
    colon = strrchr(text, ':');
    if (!colon || memchr(text, ':', (size_t)(colon - text)) != NULL) /* bare IPv6 */
      goto bad;
    if ((size_t)(colon - text) >= sizeof a->host)
      goto bad;
    memcpy(a->host, text, (size_t)(colon - text));
    a->any = colon == text;
  }
  const char *p = colon + 1;
  if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
    goto bad;
  a->port = (int)strtol(p, NULL, 10);
  if (a->port > 65535)
    goto bad;
  return 0;
bad:
  return ck_error_set(err, CK_EINVAL,
                      "%s address \"%s\": expected HOST:PORT, :PORT, [IPv6]:PORT or 0", what,
                      text);
}

static const char *errno_text(int e, char *buf, size_t n) {
  if (e == EADDRINUSE)
    return "address in use";
  if (e == EADDRNOTAVAIL)
    return "address not available on this host";
  return strerror_r(e, buf, n); /* GNU variant: returns the text */
}

static int listen_on(const struct sockaddr *sa, socklen_t len, bool dual, int *fd_out) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return errno;
  int one = 1, zero = 0;
  /* Lets a restarted process bind while old connections sit in TIME_WAIT;
   * on Linux it does not let two listeners share a port. */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (sa->sa_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof one);
  if (bind(fd, sa, len) != 0 || listen(fd, 64) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  *fd_out = fd;
  return 0;
}

/* Bind and listen; the bound port goes to *port. */
static int bind_addr(const char *what, const char *text, const addr_t *a, int *fd_out,
                     int *port, ck_error_t *err) {
  int e = 0;
  *fd_out = -1;
  if (a->any) {
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)a->port),
                              .sin6_addr = IN6ADDR_ANY_INIT};
    e = listen_on((struct sockaddr *)&s6, sizeof s6, true, fd_out);
    if (e == EAFNOSUPPORT || e == EADDRNOTAVAIL) { /* a host without IPv6 */
      struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port),
                               .sin_addr = {htonl(INADDR_ANY)}};
      e = listen_on((struct sockaddr *)&s4, sizeof s4, false, fd_out);
    }
  } else {
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", a->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(a->host, portstr, &hints, &res);
    if (g != 0)
      return ck_error_set(err, CK_EINVAL, "%s address %s: %s", what, text,
                          g == EAI_SYSTEM ? "cannot resolve host" : gai_strerror(g));
    e = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
      if ((e = listen_on(ai->ai_addr, ai->ai_addrlen, false, fd_out)) == 0)
        break;
    freeaddrinfo(res);
  }
  if (e) {
    char buf[128];
    return ck_error_set(err, CK_EIO, "%s address %s: %s", what, text,
                        errno_text(e, buf, sizeof buf));
  }
  struct sockaddr_storage ss = {0};
  socklen_t sl = sizeof ss;
  *port = a->port;
  if (getsockname(*fd_out, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET)
      *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
      *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  return 0;
}

/* ---- answers ---------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *ctype,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode,
                             const char *allow) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
  if (!r) {
    if (mode == MHD_RESPMEM_MUST_FREE)
      free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (allow)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result ret = MHD_queue_response(conn, code, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned code, const char *text,
                                  const char *allow) {
  return reply(conn, code, "text/plain; charset=utf-8", (char *)text, strlen(text),
               MHD_RESPMEM_PERSISTENT, allow);
}

static enum MHD_Result serve_metrics(ck_server_t *s, struct MHD_Connection *conn) {
  char *text = ck_metrics_render(s->metrics);
  if (!text)
    return reply_text(conn, 500, "out of memory\n", NULL);
  return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text),
               MHD_RESPMEM_MUST_FREE, NULL);
}

static enum MHD_Result serve_checks(ck_server_t *s, struct MHD_Connection *conn,
                                    ck_check_kind_t kind, const char *what) {
  const char *v = NULL;
  size_t vlen = 0;
  bool verbose = MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "verbose", 7, &v,
                                               &vlen) == MHD_YES &&
                 !(v && (strcmp(v, "false") == 0 || strcmp(v, "0") == 0));
  /* Checks are appended under the lock and never removed while the
   * server lives: the first n nodes can be walked without it. */
  pthread_mutex_lock(&s->lock);
  check_t *c = s->checks;
  size_t n = s->nchecks;
  pthread_mutex_unlock(&s->lock);

  ck_buf_t b = {0};
  bool ok = true;
  for (size_t i = 0; i < n; i++, c = c->next) {
    if (c->kind != kind)
      continue;
    char msg[CHECK_MSG_MAX] = "";
    bool pass = c->fn(c->ctx, msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    if (pass)
      ck_buf_printf(&b, "[+]%s ok\n", c->name);
    else
      ck_buf_printf(&b, "[-]%s failed: %s\n", c->name, msg[0] ? msg : "reason unknown");
    ok &= pass;
  }
  if (ok && !verbose) {
    ck_buf_free(&b);
    return reply_text(conn, 200, "ok", NULL);
  }
  ck_buf_printf(&b, "%s check %s\n", what, ok ? "passed" : "failed");
  if (b.oom) {
    ck_buf_free(&b);
    return reply_text(conn, 500, "out of memory\n", NULL);
  }
  size_t len = b.len;
  return reply(conn, ok ? 200 : 500, "text/plain; charset=utf-8", ck_buf_steal(&b), len,
               MHD_RESPMEM_MUST_FREE, NULL);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)con_cls;
  listener_t *l = cls;
  ck_server_t *s = l->s;
  enum { NONE, METRICS, HEALTHZ, READYZ } route = NONE;
  if (l->metrics && s->metrics && strcmp(url, "/metrics") == 0)
    route = METRICS;
  else if (l->probes && strcmp(url, "/healthz") == 0)
    route = HEALTHZ;
  else if (l->probes && strcmp(url, "/readyz") == 0)
    route = READYZ;
  /* Answered on the first call, before any request body: none of these
   * paths takes one (libmicrohttpd then discards it or closes). */
  if (route == NONE)
    return reply_text(conn, 404, "404 page not found\n", NULL);
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return reply_text(conn, 405, "405 method not allowed\n", "GET, HEAD");
  switch (route) {
  case METRICS: return serve_metrics(s, conn);
  case HEALTHZ: return serve_checks(s, conn, CK_CHECK_HEALTHZ, "healthz");
  case READYZ: return serve_checks(s, conn, CK_CHECK_READYZ, "readyz");
  case NONE: break;
  }
  return MHD_NO;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
                                                          va_list ap) {
  (void)cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  line[strcspn(line, "\n")] = '\0';
  CK_DEBUG("serve", NULL, "libmicrohttpd: %s", line);
}

/* ---- lifecycle -------------------------------------------------------- */

static int start_listener(ck_server_t *s, listener_t *l, const char *what, const char *text,
                          const addr_t *a, ck_error_t *err) {
  int fd = -1, port = 0;
  int rc = bind_addr(what, text, a, &fd, &port, err);
  if (rc)
    return rc;
  l->s = s;
  l->port = port;
  l->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0,
                          NULL, NULL, handle, l,
                          /* first: libmicrohttpd logs options it reads before it */
                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                          MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                          MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                          CONN_TIMEOUT_S, MHD_OPTION_END);
  if (!l->d) {
    close(fd);
    return ck_error_set(err, CK_EIO, "%s address %s: cannot start the HTTP server", what, text);
  }
  CK_INFO("serve", NULL, "serving %s on %s (port %d)",
          l->metrics && l->probes ? "metrics and probes" : l->metrics ? "metrics" : "probes",
          text, port);
  return 0;
}

int ck_server_start(const ck_server_opts_t *opts, ck_server_t **out, ck_error_t *err) {
  *out = NULL;
  const char *maddr = opts && opts->metrics_addr ? opts->metrics_addr : ":8080";
  const char *paddr = opts && opts->probe_addr ? opts->probe_addr : ":8081";
  addr_t ma, pa;
  int rc = parse_addr("metrics", maddr, &ma, err);
  if (rc == 0)
    rc = parse_addr("probe", paddr, &pa, err);
  if (rc)
    return rc;
  ck_server_t *s = calloc(1, sizeof *s);
  if (!s)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  pthread_mutex_init(&s->lock, NULL);
  s->tail = &s->checks;
  s->metrics = opts ? opts->metrics : NULL;
  /* Same host and port: one listener. Port 0 means "any free port", so
   * two ":0" are the same address only when written identically. */
  s->shared = !ma.off && !pa.off && ma.any == pa.any && strcmp(ma.host, pa.host) == 0 &&
              ma.port == pa.port && (ma.port != 0 || strcmp(maddr, paddr) == 0);
  if (!ma.off) {
    s->l[0].metrics = true;
    s->l[0].probes = s->shared;
    rc = start_listener(s, &s->l[0], "metrics", maddr, &ma, err);
  }
  if (rc == 0 && !pa.off && !s->shared) {
    s->l[1].probes = true;
    rc = start_listener(s, &s->l[1], "probe", paddr, &pa, err);
  }
  if (rc) {
    ck_server_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int ck_server_add_check(ck_server_t *s, ck_check_kind_t kind, const char *name, ck_check_fn fn,
                        void *ctx) {
  if (!s || !name || !fn)
    return CK_EINVAL;
  check_t *c = calloc(1, sizeof *c);
  if (!c || !(c->name = strdup(name))) {
    free(c);
    return CK_ENOMEM;
  }
  c->kind = kind;
  c->fn = fn;
  c->ctx = ctx;
  pthread_mutex_lock(&s->lock);
  *s->tail = c;
  s->tail = &c->next;
  s->nchecks++;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

int ck_server_port(const ck_server_t *s, int which) {
  if (!s)
    return 0;
  if (which == 0)
    return s->l[0].d ? s->l[0].port : 0;
  if (s->shared)
    return s->l[0].port;
  return s->l[1].d ? s->l[1].port : 0;
}

void ck_server_free(ck_server_t *s) {
  if (!s)
    return;
  /* Joins the polling thread (an answer being built completes first),
   * closes the connections and the listening socket. */
  for (int i = 0; i < 2; i++)
    if (s->l[i].d)
      MHD_stop_daemon(s->l[i].d);
  check_t *c = s->checks;
  while (c) {
    check_t *next = c->next;
    free(c->name);
    free(c);
    c = next;
  }
  pthread_mutex_destroy(&s->lock);
  free(s);
}

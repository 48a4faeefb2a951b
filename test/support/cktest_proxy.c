/* A TCP relay between a client and the apiserver, so a test can cut a
 * client off (its connections dropped, new ones refused) or freeze it
 * (connections stay open, bytes stop moving) while the cluster changes
 * behind its back. TLS passes through untouched. */
#include "cktest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXCONN 64

struct cktest_proxy {
  int lfd;
  int port;
  struct sockaddr_in upstream;
  pthread_t thread;
  atomic_bool stop, blocked, frozen;
  atomic_int generation; /* bumped by block: relays of older generations end */
  pthread_mutex_t mu;
  int nrelays;
};

typedef struct relay {
  cktest_proxy_t *p;
  int a, b;
  int gen;
} relay_t;

static void *relay_main(void *arg) {
  relay_t *r = arg;
  char buf[16384];
  struct pollfd fds[2] = {{.fd = r->a, .events = POLLIN}, {.fd = r->b, .events = POLLIN}};
  while (!atomic_load(&r->p->stop) && atomic_load(&r->p->generation) == r->gen) {
    if (atomic_load(&r->p->frozen)) {
      usleep(10000);
      continue;
    }
    int n = poll(fds, 2, 100);
    if (n < 0 && errno != EINTR)
      break;
    bool done = false;
    for (int i = 0; i < 2 && n > 0; i++) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        done = true;
        break;
      }
      int to = i == 0 ? r->b : r->a;
      for (ssize_t off = 0; off < got;) {
        ssize_t w = write(to, buf + off, (size_t)(got - off));
        if (w <= 0) {
          done = true;
          break;
        }
        off += w;
      }
    }
    if (done)
      break;
  }
  close(r->a);
  close(r->b);
  pthread_mutex_lock(&r->p->mu);
  r->p->nrelays--;
  pthread_mutex_unlock(&r->p->mu);
  free(r);
  return NULL;
}

static void *accept_main(void *arg) {
  cktest_proxy_t *p = arg;
  struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
  while (!atomic_load(&p->stop)) {
    if (poll(&pfd, 1, 100) <= 0)
      continue;
    int c = accept(p->lfd, NULL, NULL);
    if (c < 0)
      continue;
    if (atomic_load(&p->blocked)) {
      close(c);
      continue;
    }
    int u = socket(AF_INET, SOCK_STREAM, 0);
    if (u < 0 || connect(u, (struct sockaddr *)&p->upstream, sizeof p->upstream) != 0) {
      if (u >= 0)
        close(u);
      close(c);
      continue;
    }
    relay_t *r = calloc(1, sizeof *r);
    r->p = p;
    r->a = c;
    r->b = u;
    r->gen = atomic_load(&p->generation);
    pthread_mutex_lock(&p->mu);
    p->nrelays++;
    pthread_mutex_unlock(&p->mu);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, relay_main, r) != 0) {
      close(c);
      close(u);
      free(r);
      pthread_mutex_lock(&p->mu);
      p->nrelays--;
      pthread_mutex_unlock(&p->mu);
    }
    pthread_attr_destroy(&at);
  }
  return NULL;
}

cktest_proxy_t *cktest_proxy_start(const char *upstream_url) {
  /* "https://127.0.0.1:PORT" */
  const char *hp = strstr(upstream_url, "://");
  cr_assert(hp, "bad upstream %s", upstream_url);
  hp += 3;
  char host[64];
  int port = 0;
  cr_assert(sscanf(hp, "%63[^:]:%d", host, &port) == 2, "bad upstream %s", upstream_url);
  cktest_proxy_t *p = calloc(1, sizeof *p);
  cr_assert(p);
  pthread_mutex_init(&p->mu, NULL);
  p->upstream.sin_family = AF_INET;
  p->upstream.sin_port = htons((uint16_t)port);
  cr_assert(inet_pton(AF_INET, host, &p->upstream.sin_addr) == 1, "upstream host %s", host);
  p->lfd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(p->lfd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  cr_assert(bind(p->lfd, (struct sockaddr *)&a, sizeof a) == 0);
  cr_assert(listen(p->lfd, MAXCONN) == 0);
  socklen_t al = sizeof a;
  getsockname(p->lfd, (struct sockaddr *)&a, &al);
  p->port = ntohs(a.sin_port);
  cr_assert(pthread_create(&p->thread, NULL, accept_main, p) == 0);
  return p;
}

char *cktest_proxy_url(cktest_proxy_t *p) {
  return cktest_asprintf("https://127.0.0.1:%d", p->port);
}

void cktest_proxy_block(cktest_proxy_t *p, bool blocked) {
  atomic_store(&p->blocked, blocked);
  if (blocked)
    atomic_fetch_add(&p->generation, 1);
}

void cktest_proxy_freeze(cktest_proxy_t *p, bool frozen) {
  atomic_store(&p->frozen, frozen);
}

void cktest_proxy_stop(cktest_proxy_t *p) {
  atomic_store(&p->stop, true);
  pthread_join(p->thread, NULL);
  close(p->lfd);
  /* Relays notice the stop within their poll interval. */
  for (int i = 0; i < 100; i++) {
    pthread_mutex_lock(&p->mu);
    int n = p->nrelays;
    pthread_mutex_unlock(&p->mu);
    if (n == 0)
      break;
    usleep(20000);
  }
  pthread_mutex_destroy(&p->mu);
  free(p);
}

ck_client_t *cktest_client_via_proxy(cktest_proxy_t *p, const ck_client_opts_t *opts) {
  ck_config_opts_t co = {.kubeconfig = cktest_env("KUBECONFIG"), .no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_config_load(&co, &cfg, &err), 0, "config: %s", err.message);
  free(cfg->server);
  cfg->server = cktest_proxy_url(p);
  ck_client_t *c = NULL;
  cr_assert_eq(ck_client_new(cfg, opts, &c, &err), 0, "client: %s", err.message);
  ck_config_free(cfg);
  return c;
}

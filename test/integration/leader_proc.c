/* A leader-election candidate as its own process, for the failover tests:
 *
 *   leader_proc KUBECONFIG NAMESPACE LEASE_NAME IDENTITY CONFIGMAP
 *
 * Campaigns with short timings (lease 3 s, renew deadline 2 s, retry
 * 0.5 s). While leader it appends "IDENTITY SEQ WALL_MS\n" to data.log of
 * the ConfigMap about every 200 ms. Each write is a PUT guarded by the
 * resourceVersion it read, so the log is a total order of writes, and
 * is_leader is checked right before each write: a candidate that wrote
 * after another one took over shows up as interleaved identities.
 * SIGTERM: stop (releasing the Lease) and exit 0. Exit 2 on setup errors. */
#include "crdkit/client.h"
#include "crdkit/config.h"
#include "crdkit/leader.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_term;

static void on_term(int sig) {
  (void)sig;
  g_term = 1;
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL); /* a signal cuts it short: fine, the loop checks */
}

/* One append. Returns 1 when written, 0 when skipped (not leader, or a
 * conflict: read again next round), -1 on other errors. */
static int append_line(ck_client_t *c, ck_leader_t *l, const char *ns, const char *cm_name,
                       const char *identity, long long seq) {
  json_t *cm = NULL;
  ck_error_t err = {0};
  if (ck_object_get(c, &ck_res_configmaps, ns, cm_name, NULL, &cm, &err) != 0) {
    fprintf(stderr, "leader_proc %s: get configmap: %s\n", identity, err.message);
    return -1;
  }
  json_t *data = json_object_get(cm, "data");
  if (!json_is_object(data)) {
    data = json_object();
    json_object_set_new(cm, "data", data);
  }
  const char *old = json_string_value(json_object_get(data, "log"));
  size_t n = (old ? strlen(old) : 0) + strlen(identity) + 64;
  char *text = malloc(n);
  if (!text) {
    json_decref(cm);
    return -1;
  }
  snprintf(text, n, "%s%s %lld %lld\n", old ? old : "", identity, seq, wall_ms());
  json_object_set_new(data, "log", json_string(text));
  free(text);
  int rc = 0;
  if (ck_leader_is_leader(l)) {
    rc = ck_object_replace(c, &ck_res_configmaps, ns, cm_name, cm, NULL, NULL, &err);
    if (rc == 0)
      rc = 1;
    else if (ck_error_is_conflict(&err))
      rc = 0;
    else {
      fprintf(stderr, "leader_proc %s: replace configmap: %s\n", identity, err.message);
      rc = -1;
    }
  }
  json_decref(cm);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s KUBECONFIG NAMESPACE LEASE_NAME IDENTITY CONFIGMAP\n", argv[0]);
    return 2;
  }
  const char *kubeconfig = argv[1], *ns = argv[2], *lease = argv[3], *identity = argv[4],
             *cm_name = argv[5];

  /* A test that fails mid-way must not leave a candidate running. */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    return 2;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);

  ck_config_opts_t co = {.kubeconfig = kubeconfig, .no_in_cluster = true};
  ck_config_t *cfg = NULL;
  ck_error_t err = {0};
  if (ck_config_load(&co, &cfg, &err) != 0) {
    fprintf(stderr, "leader_proc: %s\n", err.message);
    return 2;
  }
  ck_client_t *c = NULL;
  int rc = ck_client_new(cfg, NULL, &c, &err);
  ck_config_free(cfg);
  if (rc != 0) {
    fprintf(stderr, "leader_proc: %s\n", err.message);
    return 2;
  }
  ck_leader_opts_t lo = {.namespace = ns, .name = lease, .identity = identity,
                         .lease_ms = 3000, .renew_deadline_ms = 2000, .retry_ms = 500};
  ck_leader_t *l = NULL;
  if (ck_leader_new(c, &lo, &l, &err) != 0 || ck_leader_start(l) != 0) {
    fprintf(stderr, "leader_proc: %s\n", err.message);
    ck_leader_free(l);
    ck_client_free(c);
    return 2;
  }

  long long seq = 0;
  while (!g_term) {
    if (ck_leader_is_leader(l)) {
      int r = append_line(c, l, ns, cm_name, identity, seq);
      if (r == 1)
        seq++;
      if (r == 0)
        continue; /* conflict: read again at once */
    }
    nap_ms(200);
  }

  ck_leader_stop(l);
  ck_leader_free(l);
  ck_client_free(c);
  return 0;
}

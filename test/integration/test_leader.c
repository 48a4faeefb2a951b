/* Leader election against the real apiserver: option checks, acquire and
 * renew, the metrics gauge, release on stop, two in-process candidates,
 * stepping down when someone else took the Lease, and failover between
 * two processes (leader_proc) after SIGKILL (waits for the lease) and
 * SIGTERM (release: at once), checked through a ConfigMap log that every
 * leader appends to with conditional writes. */
#include "cktest.h"

#include "crdkit/leader.h"
#include "crdkit/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- helpers ------------------------------------------------------------ */

typedef struct counts {
  atomic_int started, stopped, new_leader;
  char last_other[128]; /* written on the elector thread, read after stop */
} counts_t;

static void cb_started(void *ctx) { atomic_fetch_add(&((counts_t *)ctx)->started, 1); }
static void cb_stopped(void *ctx) { atomic_fetch_add(&((counts_t *)ctx)->stopped, 1); }
static void cb_new_leader(void *ctx, const char *id) {
  counts_t *k = ctx;
  snprintf(k->last_other, sizeof k->last_other, "%s", id);
  atomic_fetch_add(&k->new_leader, 1);
}

static ck_leader_t *must_leader(ck_client_t *c, const char *ns, const char *lease,
                                const char *identity, int64_t lease_ms, int64_t renew_ms,
                                int64_t retry_ms, counts_t *k, ck_metrics_t *m) {
  ck_leader_opts_t o = {.namespace = ns, .name = lease, .identity = identity,
                        .lease_ms = lease_ms, .renew_deadline_ms = renew_ms,
                        .retry_ms = retry_ms, .on_started = cb_started,
                        .on_stopped = cb_stopped, .on_new_leader = cb_new_leader,
                        .ctx = k, .metrics = m};
  ck_leader_t *l = NULL;
  ck_error_t err = {0};
  int rc = ck_leader_new(c, &o, &l, &err);
  cr_assert_eq(rc, 0, "ck_leader_new: %s", err.message);
  cr_assert_eq(ck_leader_start(l), 0);
  return l;
}

static json_t *get_lease(ck_client_t *c, const char *ns, const char *name) {
  json_t *o = NULL;
  ck_error_t err = {0};
  int rc = ck_object_get(c, &ck_res_leases, ns, name, NULL, &o, &err);
  cr_assert_eq(rc, 0, "get lease %s/%s: %s", ns, name, err.message);
  return o;
}

/* The gauge's value for `name`, or -1 when the series is not rendered. */
static double gauge_value(ck_metrics_t *m, const char *name) {
  char *text = ck_metrics_render(m);
  cr_assert_not_null(text);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "leader_election_master_status{name=\"%s\"} ", name);
  double v = -1;
  for (char *line = text; line && *line;) {
    if (strncmp(line, prefix, strlen(prefix)) == 0)
      v = strtod(line + strlen(prefix), NULL);
    char *nl = strchr(line, '\n');
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  return v;
}

/* MicroTime ("2026-11-22T10:00:00.123456Z") in epoch milliseconds. */
static long long micro_time_ms(const char *s) {
  cr_assert_not_null(s);
  struct tm tm = {0};
  long usec = 0;
  int n = sscanf(s, "%d-%d-%dT%d:%d:%d.%6ldZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &usec);
  cr_assert_eq(n, 7, "not a MicroTime: %s", s);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (long long)timegm(&tm) * 1000 + usec / 1000;
}

static bool wait_for(bool (*pred)(void *), void *arg, int64_t timeout_ms) {
  int64_t until = cktest_now_ms() + timeout_ms;
  while (cktest_now_ms() < until) {
    if (pred(arg))
      return true;
    cktest_sleep_ms(20);
  }
  return pred(arg);
}

static bool not_leader(void *l) { return !ck_leader_is_leader(l); }

/* Callbacks run on the elector thread just after the flag changed. */
static void wait_count(atomic_int *n, int want) {
  int64_t until = cktest_now_ms() + 2000;
  while (atomic_load(n) < want && cktest_now_ms() < until)
    cktest_sleep_ms(5);
  cr_assert_eq(atomic_load(n), want);
}

/* ---- options ------------------------------------------------------------ */

CK_TEST(leader, options) {
  ck_client_t *c = cktest_client("admin");
  ck_leader_t *l = NULL;
  ck_error_t err = {0};
  ck_leader_opts_t o = {.namespace = "ns", .name = "lease"};

  cr_assert_eq(ck_leader_new(NULL, &o, &l, &err), CK_EINVAL);
  cr_assert_eq(ck_leader_new(c, NULL, &l, &err), CK_EINVAL);
  cr_assert_null(l);
  ck_leader_opts_t bad = o;
  bad.namespace = NULL;
  cr_assert_eq(ck_leader_new(c, &bad, &l, &err), CK_EINVAL);
  bad = o;
  bad.name = "";
  cr_assert_eq(ck_leader_new(c, &bad, &l, &err), CK_EINVAL);
  bad = o;
  bad.name = "a/b";
  cr_assert_eq(ck_leader_new(c, &bad, &l, &err), CK_EINVAL);
  bad = o;
  bad.identity = "";
  cr_assert_eq(ck_leader_new(c, &bad, &l, &err), CK_EINVAL);
  /* lease > renew deadline > retry > 0, defaults included. */
  bad = o;
  bad.lease_ms = 5000; /* defaults: renew 10,000 */
  cr_assert_eq(ck_leader_new(c, &bad, &l, &err), CK_EINVAL);
  cr_assert(strstr(err.message, "renew_deadline_ms") != NULL, "%s", err.message);
  bad = o;
  bad.lease_ms = 3000, bad.renew_deadline_ms = 3000, bad.retry_ms = 500;
  cr_assert_eq(ck_leader_new(c, &bad, &l, &err), CK_EINVAL);
  bad = o;
  bad.lease_ms = 3000, bad.renew_deadline_ms = 2000, bad.retry_ms = 2000;
  cr_assert_eq(ck_leader_new(c, &bad, &l, &err), CK_EINVAL);
  bad = o;
  bad.lease_ms = 3000, bad.renew_deadline_ms = 2000, bad.retry_ms = -1;
  cr_assert_eq(ck_leader_new(c, &bad, &l, &err), CK_EINVAL);
  cr_assert_null(l);

  /* Defaults are valid; the default identity is "<hostname>_<hex>". The
   * gauge exists (at 0) from the start. */
  ck_metrics_t *m = ck_metrics_new();
  o.metrics = m;
  cr_assert_eq(ck_leader_new(c, &o, &l, &err), 0, "%s", err.message);
  o.metrics = NULL;
  cr_assert_eq(gauge_value(m, "lease"), 0.0);
  const char *id = ck_leader_identity(l);
  cr_assert(id && strchr(id, '_') && strlen(strchr(id, '_')) > 8, "identity %s", id);
  ck_leader_t *l2 = NULL;
  cr_assert_eq(ck_leader_new(c, &o, &l2, &err), 0);
  cr_assert_str_neq(ck_leader_identity(l2), id, "identities must differ");
  ck_leader_opts_t named = o;
  named.identity = "me";
  ck_leader_t *l3 = NULL;
  cr_assert_eq(ck_leader_new(c, &named, &l3, &err), 0);
  cr_assert_str_eq(ck_leader_identity(l3), "me");

  /* Never started: not leader, a wait times out; after stop it is closed
   * and cannot start again. */
  cr_assert_not(ck_leader_is_leader(l));
  cr_assert_eq(ck_leader_wait(l, 50), CK_ETIMEDOUT);
  ck_leader_stop(l);
  ck_leader_stop(l);
  cr_assert_eq(ck_leader_wait(l, 50), CK_ECLOSED);
  cr_assert_eq(ck_leader_wait(l, -1), CK_ECLOSED);
  cr_assert_eq(ck_leader_start(l), CK_ECLOSED);
  ck_leader_free(l);
  ck_leader_free(l2);
  ck_leader_free(l3);
  ck_leader_free(NULL);
  ck_metrics_free(m);
  ck_client_free(c);
}

/* ---- one candidate ------------------------------------------------------- */

CK_TEST_OPTS(leader, single_acquires_and_renews, .timeout = 60) {
  ck_client_t *c = cktest_client("admin");
  char *ns = cktest_ns_create(c, "leader-single");
  ck_metrics_t *m = ck_metrics_new();
  cr_assert_not_null(m);
  counts_t k = {0};
  ck_leader_t *l = must_leader(c, ns, "single", "solo", 3000, 2000, 300, &k, m);

  cr_assert_eq(ck_leader_wait(l, 10000), 0, "did not become leader within 10 s");
  cr_assert(ck_leader_is_leader(l));
  wait_count(&k.started, 1);
  cr_assert_eq(atomic_load(&k.stopped), 0);
  cr_assert_eq(gauge_value(m, "single"), 1.0);

  json_t *a = get_lease(c, ns, "single");
  cr_assert_str_eq(cktest_jstr(a, "spec.holderIdentity"), "solo");
  cr_assert_eq(json_integer_value(cktest_jpath(a, "spec.leaseDurationSeconds")), 3);
  cr_assert_eq(json_integer_value(cktest_jpath(a, "spec.leaseTransitions")), 0);
  const char *renew1 = cktest_jstr(a, "spec.renewTime");
  long long r1 = micro_time_ms(renew1);
  cr_assert_not_null(strchr(renew1, '.'), "renewTime has microseconds: %s", renew1);

  cktest_sleep_ms(1500);
  cr_assert(ck_leader_is_leader(l), "still leader while renewing");
  json_t *b = get_lease(c, ns, "single");
  cr_assert_str_eq(cktest_jstr(b, "spec.holderIdentity"), "solo");
  long long r2 = micro_time_ms(cktest_jstr(b, "spec.renewTime"));
  cr_assert_gt(r2, r1, "renewTime moved");
  cr_assert_str_eq(cktest_jstr(b, "spec.acquireTime"), cktest_jstr(a, "spec.acquireTime"),
                   "acquireTime stays while the same holder renews");
  cr_assert_eq(json_integer_value(cktest_jpath(b, "spec.leaseTransitions")), 0);
  cr_assert_str_neq(cktest_jstr(b, "metadata.resourceVersion"),
                    cktest_jstr(a, "metadata.resourceVersion"));
  json_decref(a);
  json_decref(b);
  cr_assert_eq(atomic_load(&k.started), 1, "no second acquisition while renewing");
  cr_assert_eq(atomic_load(&k.new_leader), 0);

  ck_leader_stop(l);
  cr_assert_not(ck_leader_is_leader(l));
  cr_assert_eq(atomic_load(&k.stopped), 1);
  cr_assert_eq(gauge_value(m, "single"), 0.0);
  ck_leader_free(l);
  ck_metrics_free(m);
  cktest_ns_delete(c, ns);
  ck_client_free(c);
}

/* ---- release on stop -------------------------------------------------- */

CK_TEST_OPTS(leader, release_on_stop_hands_over, .timeout = 60) {
  ck_client_t *c = cktest_client("admin");
  char *ns = cktest_ns_create(c, "leader-release");
  counts_t k1 = {0}, k2 = {0};
  /* A long lease: a take-over well under it proves the release worked. */
  ck_leader_t *l1 = must_leader(c, ns, "rel", "first", 15000, 10000, 500, &k1, NULL);
  cr_assert_eq(ck_leader_wait(l1, 10000), 0);
  ck_leader_t *l2 = must_leader(c, ns, "rel", "second", 15000, 10000, 500, &k2, NULL);
  cktest_sleep_ms(1200); /* let the second candidate observe the holder */
  cr_assert_not(ck_leader_is_leader(l2));
  cr_assert_eq(atomic_load(&k2.new_leader), 1);
  cr_assert_str_eq(k2.last_other, "first");

  ck_leader_stop(l1);
  int64_t t_stop = cktest_now_ms();
  cr_assert_not(ck_leader_is_leader(l1));
  cr_assert_eq(atomic_load(&k1.stopped), 1);
  json_t *rel = get_lease(c, ns, "rel");
  const char *holder = cktest_jstr(rel, "spec.holderIdentity");
  /* Released, unless the second candidate was already quicker. */
  if (!holder || strcmp(holder, "second") != 0) {
    cr_assert(holder == NULL || *holder == '\0', "holder after release: %s", holder);
    cr_assert_eq(json_integer_value(cktest_jpath(rel, "spec.leaseDurationSeconds")), 1);
  }
  json_decref(rel);

  cr_assert_eq(ck_leader_wait(l2, 10000), 0);
  int64_t took = cktest_now_ms() - t_stop;
  cr_assert_lt(took, 5000, "take-over after release took %lld ms (lease 15 s)", (long long)took);
  json_t *now = get_lease(c, ns, "rel");
  cr_assert_str_eq(cktest_jstr(now, "spec.holderIdentity"), "second");
  cr_assert_eq(json_integer_value(cktest_jpath(now, "spec.leaseTransitions")), 1);
  cr_assert_eq(json_integer_value(cktest_jpath(now, "spec.leaseDurationSeconds")), 15);
  json_decref(now);
  wait_count(&k2.started, 1);

  ck_leader_free(l1);
  ck_leader_free(l2);
  cktest_ns_delete(c, ns);
  ck_client_free(c);
}

/* ---- two candidates in one process -------------------------------------- */

CK_TEST_OPTS(leader, two_candidates_one_leads, .timeout = 60) {
  ck_client_t *c1 = cktest_client("admin");
  ck_client_t *c2 = cktest_client("admin");
  char *ns = cktest_ns_create(c1, "leader-two");
  counts_t k1 = {0}, k2 = {0};
  ck_leader_t *a = must_leader(c1, ns, "two", "cand-a", 3000, 2000, 300, &k1, NULL);
  ck_leader_t *b = must_leader(c2, ns, "two", "cand-b", 3000, 2000, 300, &k2, NULL);

  int64_t until = cktest_now_ms() + 10000;
  while (!ck_leader_is_leader(a) && !ck_leader_is_leader(b))
    cr_assert_lt(cktest_now_ms(), until, "nobody became leader within 10 s");

  /* For 3 s (past a lease duration): exactly one leads, always the same. */
  bool a_leads = ck_leader_is_leader(a);
  int samples = 0;
  until = cktest_now_ms() + 3000;
  while (cktest_now_ms() < until) {
    bool la = ck_leader_is_leader(a), lb = ck_leader_is_leader(b);
    cr_assert(la != lb, "exactly one leader (a=%d b=%d)", la, lb);
    cr_assert_eq(la, a_leads, "leadership changed without a failure");
    samples++;
    cktest_sleep_ms(50);
  }
  cr_assert_gt(samples, 10);
  json_t *lease = get_lease(c1, ns, "two");
  cr_assert_str_eq(cktest_jstr(lease, "spec.holderIdentity"), a_leads ? "cand-a" : "cand-b");
  json_decref(lease);
  counts_t *follower = a_leads ? &k2 : &k1;
  cr_assert_eq(atomic_load(&follower->started), 0);
  cr_assert_geq(atomic_load(&follower->new_leader), 1);
  cr_assert_str_eq(follower->last_other, a_leads ? "cand-a" : "cand-b");
  wait_count(&(a_leads ? &k1 : &k2)->started, 1);

  ck_leader_free(a);
  ck_leader_free(b);
  cktest_ns_delete(c1, ns);
  ck_client_free(c1);
  ck_client_free(c2);
}

/* ---- the Lease taken away ------------------------------------------------ */

CK_TEST_OPTS(leader, steps_down_when_lease_taken, .timeout = 60) {
  ck_client_t *c = cktest_client("admin");
  ck_client_t *intruder = cktest_client("admin");
  char *ns = cktest_ns_create(c, "leader-taken");
  counts_t k = {0};
  ck_metrics_t *m = ck_metrics_new();
  /* Long lease and deadline: stepping down within a few seconds can only
   * come from seeing the other holder, not from a missed renew. */
  ck_leader_t *l = must_leader(c, ns, "taken", "victim", 20000, 15000, 500, &k, m);
  cr_assert_eq(ck_leader_wait(l, 10000), 0);
  cr_assert_eq(gauge_value(m, "taken"), 1.0);

  /* Someone else force-writes the holder (with a fresh resourceVersion,
   * retried on a conflict with the leader's own renew). */
  for (int i = 0;; i++) {
    json_t *lease = get_lease(intruder, ns, "taken");
    json_t *spec = cktest_jpath(lease, "spec");
    json_object_set_new(spec, "holderIdentity", json_string("intruder"));
    json_object_set_new(spec, "renewTime", json_string("2030-01-01T00:00:00.000000Z"));
    ck_error_t err = {0};
    int rc = ck_object_replace(intruder, &ck_res_leases, ns, "taken", lease, NULL, NULL, &err);
    json_decref(lease);
    if (rc == 0)
      break;
    cr_assert(ck_error_is_conflict(&err) && i < 20, "replace: %s", err.message);
  }
  int64_t t0 = cktest_now_ms();
  cr_assert(wait_for(not_leader, l, 5000), "leader did not step down within 5 s");
  int64_t took = cktest_now_ms() - t0;
  cr_assert_lt(took, 5000, "stepped down after %lld ms (renew deadline 15 s)", (long long)took);
  wait_count(&k.stopped, 1);
  cr_assert_eq(gauge_value(m, "taken"), 0.0);
  cr_assert_geq(atomic_load(&k.new_leader), 1);

  /* Still campaigning, but the intruder's lease is valid: no re-take,
   * and stopping a non-leader must not release someone else's Lease. */
  cktest_sleep_ms(1500);
  cr_assert_not(ck_leader_is_leader(l));
  ck_leader_stop(l);
  cr_assert_str_eq(k.last_other, "intruder");
  cr_assert_eq(atomic_load(&k.stopped), 1, "on_stopped once");
  cr_assert_eq(atomic_load(&k.started), 1);
  json_t *lease = get_lease(c, ns, "taken");
  cr_assert_str_eq(cktest_jstr(lease, "spec.holderIdentity"), "intruder");
  json_decref(lease);

  ck_leader_free(l);
  ck_metrics_free(m);
  cktest_ns_delete(c, ns);
  ck_client_free(intruder);
  ck_client_free(c);
}

/* ---- renew deadline ------------------------------------------------------ */

static _Atomic long long g_stopped_wall_ms;

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cb_stopped_at(void *ctx) {
  atomic_store(&g_stopped_wall_ms, wall_ms());
  cb_stopped(ctx);
}

CK_TEST_OPTS(leader, steps_down_on_renew_deadline, .timeout = 60) {
  const int64_t lease_ms = 6000, renew_ms = 3000;
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "leader-deadline");
  /* Through a relay that can be frozen: bytes stop moving both ways, as on
   * a partitioned network, so the leader's renews time out while the
   * apiserver keeps serving everyone else. */
  cktest_proxy_t *px = cktest_proxy_start(ck_client_server(admin));
  ck_client_t *via = cktest_client_via_proxy(px, NULL);
  ck_error_t err = {0};

  counts_t k = {0};
  ck_leader_opts_t o = {.namespace = ns, .name = "dl", .identity = "cut-off",
                        .lease_ms = lease_ms, .renew_deadline_ms = renew_ms, .retry_ms = 300,
                        .on_started = cb_started, .on_stopped = cb_stopped_at,
                        .on_new_leader = cb_new_leader, .ctx = &k};
  ck_leader_t *l = NULL;
  cr_assert_eq(ck_leader_new(via, &o, &l, &err), 0, "%s", err.message);
  cr_assert_eq(ck_leader_start(l), 0);
  cr_assert_eq(ck_leader_wait(l, 10000), 0);
  cktest_sleep_ms(1000); /* a few renews through the proxy */
  cr_assert(ck_leader_is_leader(l));

  cktest_proxy_freeze(px, true);
  int64_t t_freeze = cktest_now_ms();
  cr_assert(wait_for(not_leader, l, renew_ms + 2000), "still leader %lld ms after the cut",
            (long long)(cktest_now_ms() - t_freeze));
  long long down_wall = wall_ms();
  int64_t down_after = cktest_now_ms() - t_freeze;
  wait_count(&k.stopped, 1);
  /* The last renew that reached the server: others may take the Lease
   * lease_ms after they saw it, never earlier. */
  json_t *lease = get_lease(admin, ns, "dl");
  cr_assert_str_eq(cktest_jstr(lease, "spec.holderIdentity"), "cut-off");
  long long last_renew = micro_time_ms(cktest_jstr(lease, "spec.renewTime"));
  json_decref(lease);
  cr_assert_leq(down_after, renew_ms + 500, "stepped down %lld ms after the cut",
                (long long)down_after);
  cr_assert_lt(down_wall, last_renew + lease_ms, "is_leader false before the lease expired");
  long long stopped_wall = atomic_load(&g_stopped_wall_ms);
  cr_assert_lt(stopped_wall, last_renew + lease_ms,
               "on_stopped ran %lld ms after the last renew (lease %lld ms)",
               stopped_wall - last_renew, (long long)lease_ms);

  cktest_proxy_freeze(px, false);
  ck_leader_free(l);
  ck_client_free(via);
  cktest_proxy_stop(px);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

/* ---- failover between processes ---------------------------------------- */

typedef struct entry {
  char id[32];
  long long seq, wall_ms;
} entry_t;

/* The ConfigMap's log, parsed; returns the number of lines. */
static size_t read_log(ck_client_t *c, const char *ns, entry_t **out) {
  json_t *cm = NULL;
  ck_error_t err = {0};
  cr_assert_eq(ck_object_get(c, &ck_res_configmaps, ns, "log", NULL, &cm, &err), 0, "%s",
               err.message);
  const char *text = cktest_jstr(cm, "data.log");
  size_t n = 0, cap = 16;
  entry_t *v = malloc(cap * sizeof *v);
  for (const char *p = text ? text : ""; *p;) {
    const char *nl = strchr(p, '\n');
    cr_assert_not_null(nl, "log line without newline: %s", p);
    if (n == cap)
      v = realloc(v, (cap *= 2) * sizeof *v);
    cr_assert_eq(sscanf(p, "%31s %lld %lld", v[n].id, &v[n].seq, &v[n].wall_ms), 3,
                 "bad log line: %.*s", (int)(nl - p), p);
    n++;
    p = nl + 1;
  }
  json_decref(cm);
  *out = v;
  return n;
}

typedef struct span {
  long long first_ms, last_ms;
  size_t count;
} span_t;

/* Checks that the log is blocks of one identity each, in `order`, with
 * each writer's sequence numbers counting up, and returns their spans. */
static void check_blocks(entry_t *v, size_t n, const char *const *order, size_t norder,
                         span_t *spans) {
  size_t b = 0;
  memset(spans, 0, norder * sizeof *spans);
  for (size_t i = 0; i < n; i++) {
    while (b < norder && strcmp(v[i].id, order[b]) != 0)
      b++;
    cr_assert_lt(b, norder, "line %zu by %s breaks the order of leaders (interleaved?)", i,
                 v[i].id);
    if (spans[b].count == 0)
      spans[b].first_ms = v[i].wall_ms;
    else
      cr_assert_eq(v[i].seq, v[i - 1].seq + 1, "%s's writes are consecutive", v[i].id);
    spans[b].last_ms = v[i].wall_ms;
    spans[b].count++;
  }
}

static pid_t spawn_candidate(const char *ns, const char *identity) {
  char *bin = cktest_bin_path("leader_proc");
  char *argv[] = {bin, (char *)cktest_env("KUBECONFIG"), (char *)ns, "fo-lease",
                  (char *)identity, "log", NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, bin, NULL, NULL, argv, environ);
  free(bin);
  cr_assert_eq(rc, 0, "posix_spawn leader_proc: %s", strerror(rc));
  return pid;
}

/* Wait for a process to end; returns its exit status, or -1 for a signal
 * or when it is still running after timeout_ms (then it is killed). */
static int reap(pid_t pid, int64_t timeout_ms) {
  int64_t until = cktest_now_ms() + timeout_ms;
  int st;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (cktest_now_ms() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    cktest_sleep_ms(20);
  }
}

/* Wait until `who` has written at least `min` lines; returns the count. */
static size_t wait_writes(ck_client_t *c, const char *ns, const char *who, size_t min,
                          int64_t timeout_ms) {
  int64_t until = cktest_now_ms() + timeout_ms;
  for (;;) {
    entry_t *v;
    size_t n = read_log(c, ns, &v), mine = 0;
    for (size_t i = 0; i < n; i++)
      mine += strcmp(v[i].id, who) == 0;
    free(v);
    if (mine >= min)
      return mine;
    cr_assert_lt(cktest_now_ms(), until, "%s wrote %zu of %zu lines within %lld ms", who, mine,
                 min, (long long)timeout_ms);
    cktest_sleep_ms(100);
  }
}

CK_TEST_OPTS(leader, failover_processes, .timeout = 90) {
  const int64_t lease_ms = 3000; /* leader_proc's timings */
  ck_client_t *c = cktest_client("admin");
  char *ns = cktest_ns_create(c, "leader-fo");
  json_t *cm = cktest_configmap("log", "log", "");
  ck_error_t err = {0};
  cr_assert_eq(ck_object_create(c, &ck_res_configmaps, ns, cm, NULL, NULL, &err), 0, "%s",
               err.message);
  json_decref(cm);

  pid_t a = spawn_candidate(ns, "A");
  wait_writes(c, ns, "A", 1, 20000);
  pid_t b = spawn_candidate(ns, "B");
  cktest_sleep_ms(1500); /* B campaigns and observes A renewing */
  wait_writes(c, ns, "A", 5, 10000);

  /* (1) SIGKILL: no release; B must wait out the lease. */
  cr_assert_eq(kill(a, SIGKILL), 0);
  cr_assert_eq(reap(a, 5000), -1, "A died of the signal");
  cktest_sleep_ms(200); /* anything A had in flight has landed */
  json_t *lease = get_lease(c, ns, "fo-lease");
  const char *holder = cktest_jstr(lease, "spec.holderIdentity");
  if (strcmp(holder, "A") == 0) {
    long long a_renew = micro_time_ms(cktest_jstr(lease, "spec.renewTime"));
    wait_writes(c, ns, "B", 1, 20000);
    entry_t *v;
    size_t n = read_log(c, ns, &v);
    const char *order[] = {"A", "B"};
    span_t s[2];
    check_blocks(v, n, order, 2, s);
    free(v);
    /* B counts the lease from when it saw A's last renew, which came
     * after A stamped renewTime (same host, same wall clock). */
    cr_assert_geq(s[1].first_ms, a_renew + lease_ms - 50,
                  "B wrote %lld ms after A's last renew (lease %lld ms)",
                  s[1].first_ms - a_renew, (long long)lease_ms);
    /* A may write up to its renew deadline (2 s) after its last renew. */
    long long gap = s[1].first_ms - s[0].last_ms;
    cr_log_info("SIGKILL: B's first write %lld ms after A's last renew, %lld ms after A's "
                "last write", s[1].first_ms - a_renew, gap);
    cr_assert_geq(gap, lease_ms - 2000, "gap between A and B: %lld ms", gap);
    cr_assert_lt(gap, 15000, "gap between A and B: %lld ms", gap);
  } else {
    cr_assert_fail("A was killed while leading, yet the Lease names %s", holder);
  }
  json_decref(lease);
  lease = get_lease(c, ns, "fo-lease");
  cr_assert_str_eq(cktest_jstr(lease, "spec.holderIdentity"), "B");
  cr_assert_eq(json_integer_value(cktest_jpath(lease, "spec.leaseTransitions")), 1);
  json_decref(lease);

  /* (2) SIGTERM: B releases; the standby C takes over at once. */
  pid_t cc = spawn_candidate(ns, "C");
  cktest_sleep_ms(1500);
  wait_writes(c, ns, "B", 5, 10000);
  cr_assert_eq(kill(b, SIGTERM), 0);
  cr_assert_eq(reap(b, 15000), 0, "B exits 0 after SIGTERM (no leaks, released)");
  wait_writes(c, ns, "C", 3, 10000);
  entry_t *v;
  size_t n = read_log(c, ns, &v);
  const char *order[] = {"A", "B", "C"};
  span_t s[3];
  check_blocks(v, n, order, 3, s);
  free(v);
  cr_assert_gt(s[1].count, 0);
  long long gap = s[2].first_ms - s[1].last_ms;
  cr_log_info("SIGTERM: C's first write %lld ms after B's last write", gap);
  cr_assert_geq(gap, 0);
  cr_assert_lt(gap, lease_ms - 500, "C took over %lld ms after B's last write", gap);
  lease = get_lease(c, ns, "fo-lease");
  cr_assert_str_eq(cktest_jstr(lease, "spec.holderIdentity"), "C");
  cr_assert_eq(json_integer_value(cktest_jpath(lease, "spec.leaseTransitions")), 2);
  json_decref(lease);

  cr_assert_eq(kill(cc, SIGTERM), 0);
  cr_assert_eq(reap(cc, 15000), 0, "C exits 0 after SIGTERM");
  lease = get_lease(c, ns, "fo-lease");
  const char *h = cktest_jstr(lease, "spec.holderIdentity");
  cr_assert(h == NULL || *h == '\0', "released by C: holder %s", h);
  json_decref(lease);

  cktest_ns_delete(c, ns);
  ck_client_free(c);
}

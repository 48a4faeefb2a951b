/* Leader failover of whole managers, as separate processes
 * (manager_proc): a released Lease is taken over at once, a killed
 * leader's only after the lease duration, and at no moment do two
 * replicas reconcile: the writes they make while leading never
 * interleave. */
#include "cktest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn(const char *ns, const char *id, const char *logpath) {
  char *bin = cktest_bin_path("manager_proc");
  const char *kc = cktest_env("KUBECONFIG");
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    /* Never outlive a failed test: die with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    FILE *f = freopen(logpath, "w", stderr);
    FILE *g = freopen("/dev/null", "w", stdout);
    (void)f;
    (void)g;
    execl(bin, bin, kc, ns, id, (char *)NULL);
    _exit(127);
  }
  free(bin);
  return pid;
}

static int wait_exit(pid_t pid, double seconds) {
  double dl = cktest_now_s() + seconds;
  int st = 0;
  while (cktest_now_s() < dl) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    cktest_sleep_ms(50);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  cr_assert_fail("process %d did not exit within %.0f s", (int)pid, seconds);
  return -1;
}

typedef struct line {
  char id[16];
  long seq;
  long long ms;
} line_t;

/* Parse data.log of "writes". Returns the number of lines (max cap). */
static int read_log(ck_client_t *admin, const char *ns, line_t *out, int cap) {
  json_t *w = NULL;
  cr_assert_eq(ck_object_get(admin, &ck_res_configmaps, ns, "writes", NULL, &w, NULL), 0);
  const char *log = cktest_jstr(w, "data.log");
  int n = 0;
  for (const char *p = log ? log : ""; *p && n < cap;) {
    line_t l = {0};
    if (sscanf(p, "%15s %ld %lld", l.id, &l.seq, &l.ms) == 3)
      out[n++] = l;
    const char *nl = strchr(p, '\n');
    if (!nl)
      break;
    p = nl + 1;
  }
  json_decref(w);
  return n;
}

static int count_id(const line_t *l, int n, const char *id) {
  int k = 0;
  for (int i = 0; i < n; i++)
    k += strcmp(l[i].id, id) == 0;
  return k;
}

static bool wait_writes(ck_client_t *admin, const char *ns, const char *id, int n, double secs) {
  static line_t lines[4096];
  double dl = cktest_now_s() + secs;
  while (cktest_now_s() < dl) {
    int k = read_log(admin, ns, lines, 4096);
    if (count_id(lines, k, id) >= n)
      return true;
    cktest_sleep_ms(100);
  }
  return false;
}

static char *dump(const char *path) {
  char *out = NULL;
  cktest_sh(&out, "tail -n 20 %s", path);
  return out;
}

CK_TEST_OPTS(manager, leader_failover_between_processes, .timeout = 180) {
  ck_client_t *admin = cktest_client("admin");
  char *ns = cktest_ns_create(admin, "mgr-failover");
  json_t *w = cktest_configmap("writes", "log", "");
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, w, NULL, NULL, NULL), 0);
  json_decref(w);
  json_t *t = cktest_configmap("tick", "k", "v");
  cr_assert_eq(ck_object_create(admin, &ck_res_configmaps, ns, t, NULL, NULL, NULL), 0);
  json_decref(t);
  char *la = cktest_tmpfile(""), *lb = cktest_tmpfile(""), *lc = cktest_tmpfile("");

  pid_t a = spawn(ns, "A", la);
  cr_assert(wait_writes(admin, ns, "A", 3, 40), "A never led: %s", dump(la));
  pid_t b = spawn(ns, "B", lb);
  cktest_sleep_ms(2500);
  static line_t l[4096];
  int n = read_log(admin, ns, l, 4096);
  cr_assert_eq(count_id(l, n, "B"), 0, "B reconciled while A led");

  /* SIGTERM: A finishes, releases the Lease, exits 0; B takes over at
   * once, well within the lease duration (3 s). */
  cr_assert_eq(kill(a, SIGTERM), 0);
  int rc = wait_exit(a, 20);
  cr_assert_eq(rc, 0, "A exited %d after SIGTERM: %s", rc, dump(la));
  cr_assert(wait_writes(admin, ns, "B", 3, 20), "B never took over: %s", dump(lb));
  n = read_log(admin, ns, l, 4096);
  long long a_last = 0, b_first = 0;
  for (int i = 0; i < n; i++) {
    if (!strcmp(l[i].id, "A"))
      a_last = l[i].ms;
    if (!strcmp(l[i].id, "B") && !b_first)
      b_first = l[i].ms;
  }
  cr_assert_lt(b_first - a_last, 2500, "takeover after release took %lld ms", b_first - a_last);

  /* SIGKILL: nobody releases; C waits out the lease (3 s) before leading. */
  pid_t c = spawn(ns, "C", lc);
  cktest_sleep_ms(2000);
  cr_assert_eq(kill(b, SIGKILL), 0);
  wait_exit(b, 10);
  cr_assert(wait_writes(admin, ns, "C", 3, 30), "C never took over: %s", dump(lc));
  n = read_log(admin, ns, l, 4096);
  long long b_last = 0, c_first = 0;
  for (int i = 0; i < n; i++) {
    if (!strcmp(l[i].id, "B"))
      b_last = l[i].ms;
    if (!strcmp(l[i].id, "C") && !c_first)
      c_first = l[i].ms;
  }
  cr_assert_geq(c_first - b_last, 2000, "C led %lld ms after B's last write: before the lease could expire",
                c_first - b_last);
  cr_assert_eq(kill(c, SIGTERM), 0);
  cr_assert_eq(wait_exit(c, 20), 0, "C: %s", dump(lc));

  /* The writes: runs of one identity, never interleaved, in order A, B, C. */
  n = read_log(admin, ns, l, 4096);
  char order[8] = "";
  for (int i = 0; i < n; i++) {
    size_t k = strlen(order);
    if (!k || order[k - 1] != l[i].id[0]) {
      cr_assert_lt(k, 7);
      order[k] = l[i].id[0];
      order[k + 1] = '\0';
    }
    if (i)
      cr_assert_geq(l[i].ms, l[i - 1].ms - 50, "writes out of order");
  }
  cr_assert_str_eq(order, "ABC", "leaders interleaved: %s", order);
  /* The Lease history: two transitions after the first acquisition. */
  json_t *lease = NULL;
  cr_assert_eq(ck_object_get(admin, &ck_res_leases, ns, "failover-leader", NULL, &lease, NULL), 0);
  cr_assert_geq(json_integer_value(cktest_jpath(lease, "spec.leaseTransitions")), 2);
  const char *holder = cktest_jstr(lease, "spec.holderIdentity");
  cr_assert(!holder || !*holder, "C released the Lease on SIGTERM: %s", holder);
  json_decref(lease);

  unlink(la);
  unlink(lb);
  unlink(lc);
  free(la);
  free(lb);
  free(lc);
  cktest_ns_delete(admin, ns);
  ck_client_free(admin);
}

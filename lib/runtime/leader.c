/* Leader election on a coordination.k8s.io/v1 Lease (see crdkit/leader.h).
 *
 * One elector thread owns the whole protocol state (observed record, last
 * Lease object); other threads only read the leader flag and the time of
 * the last successful renew, under `mu`. is_leader checks that time
 * itself, so it turns false on the renew deadline even while the elector
 * thread is still blocked in a request. */
#include "crdkit/leader.h"

#include "crdkit/log.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMP "leader"

struct ck_leader {
  ck_client_t *client;
  char *ns, *name, *identity, *key;
  char *obj_path, *coll_path;
  int64_t lease_ms, renew_ms, retry_ms;
  void (*on_started)(void *ctx);
  void (*on_stopped)(void *ctx);
  void (*on_new_leader)(void *ctx, const char *identity);
  void *ctx;
  ck_series_t *gauge;

  pthread_mutex_t mu; /* guards the fields down to `last_ok_ms` */
  pthread_cond_t cond;
  bool started, stopping, exited, leader;
  int64_t last_ok_ms; /* monotonic send time of the last successful write */

  pthread_mutex_t join_mu; /* serialises pthread_join between stoppers */
  bool joined;
  pthread_t thread;

  /* elector thread only */
  json_t *lease;         /* the Lease as our last successful write left it */
  char *obs_holder, *obs_renew, *obs_rv;
  int64_t obs_ms;        /* when we first saw the observed record */
  int64_t obs_duration_ms;
  char *reported;        /* the other leader last passed to on_new_leader */
};

typedef enum { TRY_HELD, TRY_OTHER, TRY_ERROR } try_result_t;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static bool str_eq(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

/* MicroTime: the API rejects a renewTime without the microsecond part. */
static void micro_time_now(char out[40]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 40 - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static char *default_identity(void) {
  char host[256];
  if (gethostname(host, sizeof host) != 0 || !host[0])
    snprintf(host, sizeof host, "unknown");
  host[sizeof host - 1] = '\0';
  char buf[320];
  snprintf(buf, sizeof buf, "%s_%08llx%08llx", host,
           (unsigned long long)ck_rand_below(1ULL << 32),
           (unsigned long long)ck_rand_below(1ULL << 32));
  return strdup(buf);
}

/* ---- requests ----------------------------------------------------------- */

/* One request bounded by `deadline` (monotonic ms): a renew must give up in
 * time to step down before the renew deadline. *out gets the decoded body
 * of a 2xx answer (new reference). */
static int lease_request(ck_leader_t *l, const char *method, const char *path, json_t *body,
                         int64_t deadline, json_t **out, ck_error_t *err) {
  if (out)
    *out = NULL;
  int64_t left = deadline - ck_now_ms();
  if (left <= 0)
    return ck_error_set(err, CK_ETIMEDOUT, "%s %s: renew deadline passed", method, path);
  char *text = NULL;
  if (body) {
    text = json_dumps(body, JSON_COMPACT);
    if (!text)
      return ck_error_set(err, CK_ENOMEM, "encoding the Lease");
  }
  ck_request_t req = {.method = method, .path = path, .body = text,
                      .body_len = text ? strlen(text) : 0, .timeout_ms = (long)left};
  ck_response_t resp;
  int rc = ck_client_request(l->client, &req, &resp, err);
  free(text);
  if (rc == 0 && out) {
    json_error_t je;
    *out = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, &je);
    if (!*out || !json_is_object(*out)) {
      json_decref(*out);
      *out = NULL;
      rc = ck_error_set(err, CK_EPARSE, "%s %s: answer is not a JSON object: %s", method, path,
                        je.text);
    }
  }
  ck_response_free(&resp);
  return rc;
}

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static json_t *spec_of(json_t *lease) {
  json_t *spec = json_object_get(lease, "spec");
  if (!json_is_object(spec)) {
    spec = json_object();
    json_object_set_new(lease, "spec", spec);
  }
  return spec;
}

static void keep_lease(ck_leader_t *l, json_t *lease) {
  json_decref(l->lease);
  l->lease = lease;
}

/* Remember the record we saw; the clock restarts only when it changed. */
static void observe(ck_leader_t *l, json_t *lease, int64_t now) {
  json_t *spec = json_object_get(lease, "spec");
  const char *holder = jstr(spec, "holderIdentity");
  const char *renew = jstr(spec, "renewTime");
  const char *rv = jstr(json_object_get(lease, "metadata"), "resourceVersion");
  json_int_t dur_s = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
  if (l->obs_ms >= 0 && str_eq(holder, l->obs_holder) && str_eq(renew, l->obs_renew) &&
      str_eq(rv, l->obs_rv))
    return;
  free(l->obs_holder);
  free(l->obs_renew);
  free(l->obs_rv);
  l->obs_holder = dup_or_null(holder);
  l->obs_renew = dup_or_null(renew);
  l->obs_rv = dup_or_null(rv);
  l->obs_ms = now;
  /* The holder's own declared duration: candidates may be configured
   * differently, and the holder's renew deadline matches its lease. */
  l->obs_duration_ms = dur_s >= 1 ? (int64_t)dur_s * 1000 : l->lease_ms;
}

static void report_other(ck_leader_t *l, const char *holder) {
  if (!holder || !*holder || strcmp(holder, l->identity) == 0 || str_eq(holder, l->reported))
    return;
  free(l->reported);
  l->reported = strdup(holder);
  CK_INFO(COMP, l->key, "new leader %s", holder);
  if (l->on_new_leader)
    l->on_new_leader(l->ctx, holder);
}

static void fill_spec(ck_leader_t *l, json_t *spec, const char *now, bool keep_acquire,
                      json_int_t transitions) {
  json_object_set_new(spec, "holderIdentity", json_string(l->identity));
  json_object_set_new(spec, "leaseDurationSeconds",
                      json_integer((json_int_t)((l->lease_ms + 999) / 1000)));
  if (!keep_acquire || !json_is_string(json_object_get(spec, "acquireTime")))
    json_object_set_new(spec, "acquireTime", json_string(now));
  json_object_set_new(spec, "renewTime", json_string(now));
  json_object_set_new(spec, "leaseTransitions", json_integer(transitions));
}

/* client-go's tryAcquireOrRenew: read, decide, write with the read's
 * resourceVersion so concurrent candidates cannot both win. */
static try_result_t try_acquire_or_renew(ck_leader_t *l, int64_t deadline) {
  ck_error_t err = {0};
  json_t *lease = NULL;
  int rc = lease_request(l, "GET", l->obj_path, NULL, deadline, &lease, &err);
  if (rc == CK_EAPI && ck_error_is_not_found(&err)) {
    char now[40];
    micro_time_now(now);
    lease = json_pack("{s:s,s:s,s:{s:s,s:s},s:{}}", "apiVersion", "coordination.k8s.io/v1",
                      "kind", "Lease", "metadata", "name", l->name, "namespace", l->ns, "spec");
    if (!lease)
      return TRY_ERROR;
    fill_spec(l, spec_of(lease), now, false, 0);
    json_t *created = NULL;
    rc = lease_request(l, "POST", l->coll_path, lease, deadline, &created, &err);
    json_decref(lease);
    if (rc) {
      CK_DEBUG(COMP, l->key, "creating the Lease: %s", err.message);
      return TRY_ERROR;
    }
    observe(l, created, ck_now_ms());
    keep_lease(l, created);
    return TRY_HELD;
  }
  if (rc) {
    CK_DEBUG(COMP, l->key, "reading the Lease: %s", err.message);
    return TRY_ERROR;
  }

  int64_t now_ms = ck_now_ms();
  observe(l, lease, now_ms);
  json_t *spec = spec_of(lease);
  const char *holder = jstr(spec, "holderIdentity");
  bool ours = holder && strcmp(holder, l->identity) == 0;
  if (holder && *holder && !ours) {
    report_other(l, holder);
    if (now_ms - l->obs_ms < l->obs_duration_ms) {
      json_decref(lease);
      return TRY_OTHER;
    }
  }

  char now[40];
  micro_time_now(now);
  json_int_t transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
  fill_spec(l, spec, now, ours, ours ? transitions : transitions + 1);
  json_t *written = NULL;
  rc = lease_request(l, "PUT", l->obj_path, lease, deadline, &written, &err);
  json_decref(lease);
  if (rc) {
    CK_DEBUG(COMP, l->key, "%s the Lease: %s", ours ? "renewing" : "taking", err.message);
    return TRY_ERROR;
  }
  if (!ours)
    CK_DEBUG(COMP, l->key, "took the Lease from '%s'", holder ? holder : "");
  observe(l, written, ck_now_ms());
  keep_lease(l, written);
  return TRY_HELD;
}

/* Give the Lease back so a standby need not wait for it to expire. One
 * attempt: a conflict means someone else already holds it. */
static void release(ck_leader_t *l) {
  if (!l->lease)
    return;
  json_t *spec = spec_of(l->lease);
  if (!str_eq(jstr(spec, "holderIdentity"), l->identity))
    return;
  char now[40];
  micro_time_now(now);
  json_object_set_new(spec, "holderIdentity", json_string(""));
  json_object_set_new(spec, "leaseDurationSeconds", json_integer(1)); /* API minimum */
  json_object_set_new(spec, "acquireTime", json_string(now));
  json_object_set_new(spec, "renewTime", json_string(now));
  ck_error_t err = {0};
  json_t *written = NULL;
  int rc = lease_request(l, "PUT", l->obj_path, l->lease, ck_now_ms() + l->renew_ms, &written,
                         &err);
  if (rc)
    CK_WARN(COMP, l->key, "releasing the Lease: %s", err.message);
  else
    CK_INFO(COMP, l->key, "released the Lease");
  keep_lease(l, written);
}

/* ---- the elector thread ------------------------------------------------ */

/* Sleep until `until` (monotonic ms) or a stop. Returns true when stopping. */
static bool wait_until(ck_leader_t *l, int64_t until) {
  pthread_mutex_lock(&l->mu);
  while (!l->stopping) {
    int64_t left = until - ck_now_ms();
    if (left <= 0)
      break;
    struct timespec ts = ck_deadline_after_ms(left);
    pthread_cond_timedwait(&l->cond, &l->mu, &ts);
  }
  bool stopping = l->stopping;
  pthread_mutex_unlock(&l->mu);
  return stopping;
}

static bool is_stopping(ck_leader_t *l) {
  pthread_mutex_lock(&l->mu);
  bool s = l->stopping;
  pthread_mutex_unlock(&l->mu);
  return s;
}

static void set_leader(ck_leader_t *l, bool leader, int64_t last_ok) {
  pthread_mutex_lock(&l->mu);
  l->leader = leader;
  l->last_ok_ms = last_ok;
  /* Under the lock so a reader that saw the flag also sees the gauge. */
  ck_series_set(l->gauge, leader ? 1 : 0);
  pthread_cond_broadcast(&l->cond);
  pthread_mutex_unlock(&l->mu);
}

/* Campaign until we hold the Lease; false when stopping first. */
static bool campaign(ck_leader_t *l) {
  for (;;) {
    if (is_stopping(l))
      return false;
    int64_t t0 = ck_now_ms();
    /* Bounded so a stop never waits long for an answer. */
    if (try_acquire_or_renew(l, t0 + l->renew_ms) == TRY_HELD) {
      set_leader(l, true, t0);
      return true;
    }
    /* Jitter (client-go's factor 1.2) so standbys do not poll in step. */
    int64_t wait = l->retry_ms + (int64_t)ck_rand_below((uint64_t)(l->retry_ms * 12 / 10) + 1);
    if (wait_until(l, t0 + wait))
      return false;
  }
}

/* Renew every retry period; returns when leadership ended (then the caller
 * steps down) or a stop was asked (still leader). */
static void lead(ck_leader_t *l) {
  int64_t last_ok = l->last_ok_ms, next = last_ok + l->retry_ms;
  for (;;) {
    if (wait_until(l, next))
      return;
    int64_t t0 = ck_now_ms(), deadline = last_ok + l->renew_ms;
    if (t0 >= deadline) {
      CK_INFO(COMP, l->key, "lost leadership: no renew within %lld ms",
              (long long)l->renew_ms);
      return;
    }
    try_result_t r = try_acquire_or_renew(l, deadline);
    if (r == TRY_HELD) {
      /* The send time, not the answer time: others start counting the
       * lease only after the server stored it. */
      last_ok = t0;
      pthread_mutex_lock(&l->mu);
      l->last_ok_ms = t0;
      pthread_mutex_unlock(&l->mu);
    } else if (r == TRY_OTHER) {
      CK_INFO(COMP, l->key, "lost leadership: the Lease is held by %s",
              l->obs_holder ? l->obs_holder : "another candidate");
      return;
    }
    next = t0 + l->retry_ms;
  }
}

static void step_down(ck_leader_t *l) {
  set_leader(l, false, 0);
  if (l->on_stopped)
    l->on_stopped(l->ctx);
}

static void *elector_main(void *arg) {
  ck_leader_t *l = arg;
  while (campaign(l)) {
    CK_INFO(COMP, l->key, "became leader (%s)", l->identity);
    free(l->reported);
    l->reported = NULL;
    if (l->on_started)
      l->on_started(l->ctx);
    lead(l);
    if (is_stopping(l)) {
      /* Not leader before anyone else can take over, and the callback
       * runs before the release so the work is told to stop first. Past
       * the renew deadline the release is still safe: it is conditional
       * on our own last write being the current one. */
      step_down(l);
      release(l);
      CK_INFO(COMP, l->key, "stopped leading");
      break;
    }
    step_down(l);
  }
  pthread_mutex_lock(&l->mu);
  l->exited = true;
  pthread_cond_broadcast(&l->cond);
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* ---- public API ---------------------------------------------------------- */

int ck_leader_new(ck_client_t *c, const ck_leader_opts_t *opts, ck_leader_t **out,
                  ck_error_t *err) {
  if (out)
    *out = NULL;
  if (!c || !opts || !out)
    return ck_error_set(err, CK_EINVAL, "leader: client, options and out are required");
  if (!opts->namespace || !*opts->namespace || !opts->name || !*opts->name)
    return ck_error_set(err, CK_EINVAL, "leader: the Lease namespace and name are required");
  if (opts->identity && !*opts->identity)
    return ck_error_set(err, CK_EINVAL, "leader: identity must not be empty");
  int64_t lease = opts->lease_ms ? opts->lease_ms : 15000;
  int64_t renew = opts->renew_deadline_ms ? opts->renew_deadline_ms : 10000;
  int64_t retry = opts->retry_ms ? opts->retry_ms : 2000;
  if (lease <= 0 || renew <= 0 || retry <= 0 || !(lease > renew && renew > retry))
    return ck_error_set(err, CK_EINVAL,
                        "leader: need lease_ms (%lld) > renew_deadline_ms (%lld) > retry_ms "
                        "(%lld) > 0",
                        (long long)lease, (long long)renew, (long long)retry);
  /* Checked before allocating so no partly built leader needs freeing. */
  char *obj_path = ck_resource_path(&ck_res_leases, opts->namespace, opts->name, NULL);
  if (!obj_path)
    return ck_error_set(err, CK_EINVAL, "leader: invalid Lease name '%s/%s'", opts->namespace,
                        opts->name);

  ck_leader_t *l = calloc(1, sizeof *l);
  if (!l) {
    free(obj_path);
    return ck_error_set(err, CK_ENOMEM, "leader: out of memory");
  }
  l->client = c;
  l->obj_path = obj_path;
  l->coll_path = ck_resource_path(&ck_res_leases, opts->namespace, NULL, NULL);
  l->ns = strdup(opts->namespace);
  l->name = strdup(opts->name);
  l->identity = opts->identity ? strdup(opts->identity) : default_identity();
  size_t klen = strlen(opts->namespace) + strlen(opts->name) + 2;
  l->key = malloc(klen);
  if (l->key)
    snprintf(l->key, klen, "%s/%s", opts->namespace, opts->name);
  l->lease_ms = lease;
  l->renew_ms = renew;
  l->retry_ms = retry;
  l->on_started = opts->on_started;
  l->on_stopped = opts->on_stopped;
  l->on_new_leader = opts->on_new_leader;
  l->ctx = opts->ctx;
  l->obs_ms = -1;
  pthread_mutex_init(&l->mu, NULL);
  pthread_mutex_init(&l->join_mu, NULL);
  pthread_cond_init(&l->cond, NULL);
  if (!l->coll_path || !l->ns || !l->name || !l->identity || !l->key) {
    ck_leader_free(l);
    return ck_error_set(err, CK_ENOMEM, "leader: out of memory");
  }
  if (opts->metrics) {
    ck_metric_t *f = ck_metrics_family(opts->metrics, CK_METRIC_GAUGE,
                                       "leader_election_master_status",
                                       "1 while this process leads the named Lease, else 0.",
                                       "name", NULL, 0);
    l->gauge = ck_metric_series1(f, opts->name);
    ck_series_set(l->gauge, 0);
  }
  *out = l;
  return 0;
}

int ck_leader_start(ck_leader_t *l) {
  if (!l)
    return CK_EINVAL;
  pthread_mutex_lock(&l->mu);
  int rc = 0;
  if (l->stopping) {
    rc = CK_ECLOSED;
  } else if (!l->started) {
    if (pthread_create(&l->thread, NULL, elector_main, l) != 0)
      rc = CK_ENOMEM;
    else
      l->started = true;
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

bool ck_leader_is_leader(ck_leader_t *l) {
  if (!l)
    return false;
  pthread_mutex_lock(&l->mu);
  bool r = l->leader && ck_now_ms() - l->last_ok_ms < l->renew_ms;
  pthread_mutex_unlock(&l->mu);
  return r;
}

int ck_leader_wait(ck_leader_t *l, int64_t timeout_ms) {
  if (!l)
    return CK_EINVAL;
  int64_t until = timeout_ms >= 0 ? ck_now_ms() + timeout_ms : 0;
  int rc;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    if (l->leader && ck_now_ms() - l->last_ok_ms < l->renew_ms) {
      rc = 0;
      break;
    }
    if (l->stopping || l->exited) {
      rc = CK_ECLOSED;
      break;
    }
    if (timeout_ms < 0) {
      pthread_cond_wait(&l->cond, &l->mu);
      continue;
    }
    int64_t left = until - ck_now_ms();
    if (left <= 0) {
      rc = CK_ETIMEDOUT;
      break;
    }
    struct timespec ts = ck_deadline_after_ms(left);
    pthread_cond_timedwait(&l->cond, &l->mu, &ts);
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

const char *ck_leader_identity(const ck_leader_t *l) { return l ? l->identity : NULL; }

void ck_leader_stop(ck_leader_t *l) {
  if (!l)
    return;
  pthread_mutex_lock(&l->mu);
  l->stopping = true;
  bool started = l->started;
  pthread_cond_broadcast(&l->cond);
  pthread_mutex_unlock(&l->mu);
  /* From a callback (the elector thread itself) a join would deadlock:
   * the thread sees `stopping` once the callback returns. */
  if (!started || pthread_equal(pthread_self(), l->thread))
    return;
  pthread_mutex_lock(&l->join_mu);
  if (!l->joined) {
    pthread_join(l->thread, NULL);
    l->joined = true;
  }
  pthread_mutex_unlock(&l->join_mu);
}

void ck_leader_free(ck_leader_t *l) {
  if (!l)
    return;
  ck_leader_stop(l);
  pthread_mutex_destroy(&l->mu);
  pthread_mutex_destroy(&l->join_mu);
  pthread_cond_destroy(&l->cond);
  json_decref(l->lease);
  free(l->obs_holder);
  free(l->obs_renew);
  free(l->obs_rv);
  free(l->reported);
  free(l->ns);
  free(l->name);
  free(l->identity);
  free(l->key);
  free(l->obj_path);
  free(l->coll_path);
  free(l);
}

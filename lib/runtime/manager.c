/* The manager: shared informers, controllers, the HTTP server, leader
 * election, signals and the graceful stop. */
#include "crdkit/manager.h"

#include "crdkit/leader.h"
#include "crdkit/log.h"
#include "crdkit/runtime_metrics.h"
#include "crdkit/serve.h"
#include "runtime/manager_internal.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "manager"

typedef struct shared {
  ck_resource_t res;
  bool own_scope; /* ns below instead of the manager's namespaces */
  char *ns;
  char *label, *field;
  ck_transform_fn transform; /* part of the identity: a transformed cache is not shared */
  void *transform_ctx;
  ck_informer_t *inf;
} shared_t;

struct ck_manager {
  ck_client_t *client;
  ck_manager_opts_t opts;
  char *name, *lease_ns, *lease_name, *metrics_addr, *probe_addr, *identity;
  char **namespaces;
  size_t nnamespaces;
  ck_metrics_t *metrics;
  ck_recorder_t *recorder;
  ck_server_t *server;
  ck_leader_t *leader;
  shared_t **inf;
  size_t ninf;
  ck_controller_t **ctl;
  size_t nctl;
  atomic_bool stop;     /* asked to stop */
  atomic_bool leading;  /* workers may reconcile */
  atomic_bool lost;     /* leadership lost */
  atomic_bool running;
  bool workers_started;
};

static char *dupz(const char *s) {
  return s ? strdup(s) : NULL;
}

int ck_manager_new(ck_client_t *c, const ck_manager_opts_t *opts, ck_manager_t **out,
                   ck_error_t *err) {
  *out = NULL;
  if (!c || !opts || !opts->name || !*opts->name)
    return ck_error_set(err, CK_EINVAL, "manager: a client and a name are required");
  ck_manager_t *m = calloc(1, sizeof *m);
  if (!m)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  m->client = c;
  m->opts = *opts;
  m->name = strdup(opts->name);
  m->lease_ns = dupz(opts->lease_namespace ? opts->lease_namespace : ck_client_namespace(c));
  char ln[256];
  snprintf(ln, sizeof ln, "%s-leader", opts->name);
  m->lease_name = strdup(opts->lease_name ? opts->lease_name : ln);
  m->metrics_addr = strdup(opts->metrics_addr ? opts->metrics_addr : ":8080");
  m->probe_addr = strdup(opts->probe_addr ? opts->probe_addr : ":8081");
  m->metrics = ck_metrics_new();
  m->identity = dupz(opts->leader_identity);
  bool oom = (opts->leader_identity && !m->identity) || !m->name || !m->lease_name || !m->metrics_addr || !m->probe_addr || !m->metrics;
  if (opts->nnamespaces) {
    m->namespaces = calloc(opts->nnamespaces, sizeof *m->namespaces);
    oom |= !m->namespaces;
    for (size_t i = 0; !oom && i < opts->nnamespaces; i++) {
      oom |= !(m->namespaces[i] = strdup(opts->namespaces[i] ? opts->namespaces[i] : ""));
      m->nnamespaces = i + 1;
    }
  }
  if (oom) {
    ck_manager_free(m);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  char rc_name[300];
  snprintf(rc_name, sizeof rc_name, "%s%s", strchr(m->name, '/') ? "" : "crdkit.io/", m->name);
  ck_recorder_opts_t ro = {.controller = rc_name};
  int rc = ck_recorder_new(c, &ro, &m->recorder, err);
  if (rc != 0) {
    ck_manager_free(m);
    return rc;
  }
  ck_metrics_register_client(m->metrics, c);
  *out = m;
  return 0;
}

void ck_manager_free(ck_manager_t *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->nctl; i++)
    ck_controller_destroy(m->ctl[i]);
  free(m->ctl);
  for (size_t i = 0; i < m->ninf; i++) {
    ck_informer_free(m->inf[i]->inf);
    free(m->inf[i]->ns);
    free(m->inf[i]->label);
    free(m->inf[i]->field);
    free(m->inf[i]);
  }
  free(m->inf);
  ck_leader_free(m->leader);
  ck_server_free(m->server);
  ck_recorder_free(m->recorder, 2000);
  if (m->client)
    ck_client_set_observer(m->client, NULL, NULL);
  ck_metrics_free(m->metrics);
  for (size_t i = 0; i < m->nnamespaces; i++)
    free(m->namespaces[i]);
  free(m->namespaces);
  free(m->name);
  free(m->lease_ns);
  free(m->lease_name);
  free(m->metrics_addr);
  free(m->probe_addr);
  free(m->identity);
  free(m);
}

static bool same_res(const ck_resource_t *a, const ck_resource_t *b) {
  return strcmp(a->group ? a->group : "", b->group ? b->group : "") == 0 &&
         strcmp(a->version, b->version) == 0 && strcmp(a->resource, b->resource) == 0;
}

static bool same_str(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

static ck_informer_t *informer_for(ck_manager_t *m, const ck_resource_t *res, bool own_scope,
                                   const char *ns, const char *label_selector,
                                   const char *field_selector, ck_transform_fn transform,
                                   void *transform_ctx, ck_error_t *err) {
  for (size_t i = 0; i < m->ninf; i++)
    if (same_res(&m->inf[i]->res, res) && m->inf[i]->own_scope == own_scope &&
        same_str(m->inf[i]->ns, ns) && same_str(m->inf[i]->label, label_selector) &&
        same_str(m->inf[i]->field, field_selector) && m->inf[i]->transform == transform &&
        m->inf[i]->transform_ctx == transform_ctx)
      return m->inf[i]->inf;
  if (atomic_load(&m->running)) {
    ck_error_set(err, CK_EINVAL, "manager %s: informer for %s requested while running", m->name,
                 res->resource);
    return NULL;
  }
  shared_t **n = realloc(m->inf, (m->ninf + 1) * sizeof(shared_t *));
  if (!n) {
    ck_error_set(err, CK_ENOMEM, "out of memory");
    return NULL;
  }
  m->inf = n;
  shared_t *s = calloc(1, sizeof *s);
  if (!s) {
    ck_error_set(err, CK_ENOMEM, "out of memory");
    return NULL;
  }
  s->res = *res;
  s->own_scope = own_scope;
  s->ns = dupz(ns && *ns ? ns : NULL);
  s->label = dupz(label_selector && *label_selector ? label_selector : NULL);
  s->field = dupz(field_selector && *field_selector ? field_selector : NULL);
  s->transform = transform;
  s->transform_ctx = transform_ctx;
  const char *one[1] = {s->ns};
  ck_informer_opts_t io = {
      .namespaces = own_scope ? one : (const char *const *)m->namespaces,
      .nnamespaces = own_scope ? (s->ns ? 1 : 0) : m->nnamespaces,
      .label_selector = s->label,
      .field_selector = s->field,
      .transform = transform,
      .transform_ctx = transform_ctx,
      .list_mode = m->opts.list_mode,
  };
  if (ck_informer_new(m->client, res, &io, &s->inf, err) != 0) {
    free(s->ns);
    free(s->label);
    free(s->field);
    free(s);
    return NULL;
  }
  m->inf[m->ninf++] = s;
  return s->inf;
}

ck_informer_t *ck_manager_informer(ck_manager_t *m, const ck_resource_t *res,
                                   const char *label_selector, const char *field_selector,
                                   ck_error_t *err) {
  return informer_for(m, res, false, NULL, label_selector, field_selector, NULL, NULL, err);
}

ck_informer_t *ck_manager_informer_transformed(ck_manager_t *m, const ck_resource_t *res,
                                               const char *label_selector,
                                               const char *field_selector,
                                               ck_transform_fn transform, void *transform_ctx,
                                               ck_error_t *err) {
  return informer_for(m, res, false, NULL, label_selector, field_selector, transform,
                      transform_ctx, err);
}

ck_informer_t *ck_manager_informer_in(ck_manager_t *m, const ck_resource_t *res, const char *ns,
                                      const char *label_selector, const char *field_selector,
                                      ck_error_t *err) {
  return informer_for(m, res, true, ns, label_selector, field_selector, NULL, NULL, err);
}

ck_informer_t *ck_manager_find_informer(ck_manager_t *m, const ck_resource_t *res) {
  /* A cache without a transform holds whole objects: prefer it to one
   * shaped for some controller. */
  ck_informer_t *shaped = NULL;
  for (size_t i = 0; i < m->ninf; i++) {
    if (!same_res(&m->inf[i]->res, res))
      continue;
    if (!m->inf[i]->transform)
      return m->inf[i]->inf;
    if (!shaped)
      shaped = m->inf[i]->inf;
  }
  return shaped;
}

void ck_manager_observe(ck_manager_t *m, const ck_resource_t *res, const json_t *obj) {
  for (size_t i = 0; i < m->ninf; i++)
    if (same_res(&m->inf[i]->res, res))
      ck_informer_observe(m->inf[i]->inf, obj);
}

int ck_manager_add_controller(ck_manager_t *m, const ck_controller_opts_t *opts,
                              ck_controller_t **out, ck_error_t *err) {
  if (out)
    *out = NULL;
  int rc = 0;
  if (atomic_load(&m->running))
    rc = ck_error_set(err, CK_EINVAL, "manager %s: controllers are added before run", m->name);
  for (size_t i = 0; rc == 0 && opts && opts->name && i < m->nctl; i++)
    if (strcmp(ck_controller_name(m->ctl[i]), opts->name) == 0)
      rc = ck_error_set(err, CK_EINVAL, "manager %s: a controller named %s exists", m->name,
                        opts->name);
  ck_controller_t **n = rc == 0 ? realloc(m->ctl, (m->nctl + 1) * sizeof(ck_controller_t *)) : NULL;
  if (rc == 0 && !n)
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  if (rc != 0) {
    if (opts && opts->ctx_free) /* the controller owned its ctx from the call on */
      opts->ctx_free(opts->ctx);
    return rc;
  }
  m->ctl = n;
  ck_controller_t *ctl = NULL;
  rc = ck_controller_create(m, opts, &ctl, err);
  if (rc != 0)
    return rc;
  m->ctl[m->nctl++] = ctl;
  if (out)
    *out = ctl;
  return 0;
}

ck_metrics_t *ck_manager_metrics(ck_manager_t *m) { return m->metrics; }
ck_recorder_t *ck_manager_recorder(ck_manager_t *m) { return m->recorder; }
ck_client_t *ck_manager_client(ck_manager_t *m) { return m->client; }

int ck_manager_port(ck_manager_t *m, int which) {
  return m->server ? ck_server_port(m->server, which) : 0;
}

bool ck_manager_may_reconcile(ck_manager_t *m) {
  /* The elector's own clock as well: it turns false at the renew deadline
   * even while a renew request is still stuck, before on_stopped runs. */
  return atomic_load(&m->leading) && (!m->leader || ck_leader_is_leader(m->leader));
}

bool ck_manager_is_leading(ck_manager_t *m) {
  return ck_manager_may_reconcile(m);
}

void ck_manager_stop(ck_manager_t *m) {
  atomic_store(&m->stop, true);
}

/* ---- probes --------------------------------------------------------------- */

static bool check_ping(void *ctx, char *msg, size_t len) {
  (void)ctx;
  (void)msg;
  (void)len;
  return true;
}

static bool check_caches(void *ctx, char *msg, size_t len) {
  ck_manager_t *m = ctx;
  for (size_t i = 0; i < m->ninf; i++) {
    ck_informer_t *inf = m->inf[i]->inf;
    if (!ck_informer_healthy(inf, msg, len))
      return false;
    if (!ck_informer_synced(inf)) {
      snprintf(msg, len, "cache of %s not synced yet", m->inf[i]->res.resource);
      return false;
    }
  }
  return true;
}

/* ---- leader callbacks ------------------------------------------------------- */

static void on_started(void *ctx) {
  ck_manager_t *m = ctx;
  atomic_store(&m->leading, true);
}

static void on_stopped(void *ctx) {
  ck_manager_t *m = ctx;
  atomic_store(&m->leading, false);
  if (!atomic_load(&m->stop))
    atomic_store(&m->lost, true);
}

/* ---- signals ---------------------------------------------------------------- */

static ck_manager_t *_Atomic signalled_mgr;

static void on_signal(int sig) {
  (void)sig;
  ck_manager_t *m = atomic_load(&signalled_mgr);
  if (m)
    atomic_store(&m->stop, true);
}

/* ---- run -------------------------------------------------------------------- */

static bool all_synced(ck_manager_t *m) {
  for (size_t i = 0; i < m->ninf; i++)
    if (!ck_informer_synced(m->inf[i]->inf))
      return false;
  return true;
}

static void stop_informers(ck_manager_t *m) {
  for (size_t i = 0; i < m->ninf; i++)
    ck_informer_stop(m->inf[i]->inf);
}

static bool stop_workers(ck_manager_t *m, int64_t deadline) {
  for (size_t i = 0; i < m->nctl; i++)
    ck_controller_shutdown(m->ctl[i]);
  bool all = true;
  for (size_t i = 0; i < m->nctl; i++)
    all &= ck_controller_join(m->ctl[i], deadline);
  if (!all) {
    /* Past the grace period: no reconcile starts any more. */
    atomic_store(&m->leading, false);
    for (size_t i = 0; i < m->nctl; i++)
      all &= ck_controller_join(m->ctl[i], ck_now_ms() + 1000);
  }
  return all;
}

int ck_manager_run(ck_manager_t *m, ck_error_t *err) {
  if (atomic_exchange(&m->running, true))
    return ck_error_set(err, CK_EINVAL, "manager %s: already ran", m->name);
  ck_server_opts_t so = {.metrics_addr = m->metrics_addr, .probe_addr = m->probe_addr,
                         .metrics = m->metrics};
  int rc = ck_server_start(&so, &m->server, err);
  if (rc != 0)
    return rc;
  ck_server_add_check(m->server, CK_CHECK_HEALTHZ, "ping", check_ping, m);
  ck_server_add_check(m->server, CK_CHECK_READYZ, "informers", check_caches, m);

  struct sigaction old_term, old_int;
  if (!m->opts.no_signals) {
    atomic_store(&signalled_mgr, m);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
  }

  for (size_t i = 0; i < m->ninf; i++)
    if ((rc = ck_informer_start(m->inf[i]->inf)) != 0) {
      ck_error_set(err, rc, "manager %s: starting informers failed", m->name);
      goto out;
    }
  CK_INFO(COMP, m->name, "started %zu informer%s and %zu controller%s", m->ninf,
          m->ninf == 1 ? "" : "s", m->nctl, m->nctl == 1 ? "" : "s");

  if (m->opts.leader_elect) {
    ck_leader_opts_t lo = {
        .namespace = m->lease_ns,
        .name = m->lease_name,
        .identity = m->identity,
        .lease_ms = m->opts.lease_ms,
        .renew_deadline_ms = m->opts.renew_deadline_ms,
        .retry_ms = m->opts.retry_ms,
        .on_started = on_started,
        .on_stopped = on_stopped,
        .ctx = m,
        .metrics = m->metrics,
    };
    if ((rc = ck_leader_new(m->client, &lo, &m->leader, err)) != 0 ||
        (rc = ck_leader_start(m->leader)) != 0)
      goto out;
  } else {
    atomic_store(&m->leading, true);
  }

  int64_t sync_limit = m->opts.sync_timeout_ms > 0 ? m->opts.sync_timeout_ms : 120000;
  int64_t t0 = ck_now_ms(), next_resync = 0;
  bool warned = false;
  while (!atomic_load(&m->stop) && !atomic_load(&m->lost)) {
    bool synced = all_synced(m);
    if (!synced && !warned && ck_now_ms() - t0 > sync_limit) {
      CK_WARN(COMP, m->name, "caches have not synced after %llds",
              (long long)((ck_now_ms() - t0) / 1000));
      warned = true;
    }
    if (synced && !m->workers_started && atomic_load(&m->leading)) {
      for (size_t i = 0; i < m->nctl; i++)
        if ((rc = ck_controller_start_workers(m->ctl[i])) != 0) {
          ck_error_set(err, rc, "manager %s: starting workers failed", m->name);
          m->workers_started = true;
          atomic_store(&m->stop, true);
          break;
        }
      m->workers_started = true;
      next_resync = ck_now_ms();
    }
    if (m->workers_started && ck_now_ms() >= next_resync) {
      int64_t soonest = 0;
      for (size_t i = 0; i < m->nctl; i++) {
        int64_t every = ck_controller_resync_ms(m->ctl[i]);
        if (every > 0 && next_resync > 0)
          ck_controller_resync(m->ctl[i]);
        if (every > 0 && (!soonest || every < soonest))
          soonest = every;
      }
      next_resync = soonest ? ck_now_ms() + soonest : INT64_MAX;
    }
    ck_sleep_ms(50);
  }

  int64_t grace = m->opts.grace_ms > 0 ? m->opts.grace_ms : 30000;
  if (atomic_load(&m->lost)) {
    CK_ERROR(COMP, m->name, "leader election lost: stopped reconciling");
    atomic_store(&m->leading, false);
    stop_informers(m);
    stop_workers(m, ck_now_ms() + grace);
    rc = ck_error_set(err, CK_ECLOSED, "manager %s: leader election lost", m->name);
    goto out;
  }

  CK_INFO(COMP, m->name, "stopping: waiting for in-flight reconciles");
  stop_informers(m);
  if (!stop_workers(m, ck_now_ms() + grace)) {
    /* Reconciles may still write: the Lease is not released (below), it
     * expires. */
    rc = ck_error_set(err, CK_ETIMEDOUT,
                      "manager %s: reconciles still running after the grace period", m->name);
    goto out;
  }
  ck_recorder_flush(m->recorder, 2000);
  CK_INFO(COMP, m->name, "stopped");
  rc = 0;

out:
  if (m->leader && rc != CK_ETIMEDOUT)
    ck_leader_stop(m->leader); /* releases the Lease when held */
  if (!m->opts.no_signals) {
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    atomic_store(&signalled_mgr, NULL);
  }
  ck_server_free(m->server);
  m->server = NULL;
  return rc;
}

/* crdkit/manager.h: the manager runs an operator: shared informers,
 * controllers, the metrics/probe server and leader election.
 *
 * ck_manager_run:
 *   1. starts the HTTP server (/metrics, /healthz, /readyz);
 *   2. starts every informer (standby replicas keep warm caches too);
 *   3. with leader election, waits for the Lease; then starts the workers;
 *   4. runs until SIGTERM/SIGINT (or ck_manager_stop), then stops the
 *      watches, lets in-flight reconciles finish within the grace period
 *      (keys still waiting are handed out until the queue is empty or the
 *      grace period ends), releases the Lease and returns 0.
 * A leader that fails to renew stops reconciling at once (before the
 * Lease can expire for others) and ck_manager_run returns CK_ECLOSED with
 * "leader election lost": exit non-zero and let the Deployment restart.
 *
 * /readyz passes when every informer has synced and none has a watch
 * failing for long; /healthz while the manager runs.
 */
#ifndef CRDKIT_MANAGER_H
#define CRDKIT_MANAGER_H

#include "crdkit/client.h"
#include "crdkit/controller.h"
#include "crdkit/events.h"
#include "crdkit/informer.h"
#include "crdkit/metrics.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_manager ck_manager_t;

typedef struct ck_manager_opts {
  const char *name;               /* operator name: logs, Lease, Events; required */
  const char *const *namespaces;  /* watched namespaces; NULL/0: all */
  size_t nnamespaces;
  const char *metrics_addr;       /* NULL: ":8080"; "0": off */
  const char *probe_addr;         /* NULL: ":8081"; "0": off */
  bool leader_elect;
  const char *lease_namespace;    /* NULL: the client's namespace */
  const char *lease_name;         /* NULL: "<name>-leader" */
  const char *leader_identity;    /* NULL: "<hostname>_<random>" (use the pod name) */
  int64_t lease_ms, renew_deadline_ms, retry_ms; /* 0: 15 s, 10 s, 2 s */
  int64_t grace_ms;               /* graceful stop bound; 0: 30 s */
  bool no_signals;                /* do not handle SIGTERM/SIGINT */
  ck_list_mode_t list_mode;       /* for every informer */
  int64_t sync_timeout_ms;        /* warn when caches take longer; 0: 120 s */
} ck_manager_opts_t;

/* The client is borrowed and must outlive the manager. Strings copied. */
int ck_manager_new(ck_client_t *c, const ck_manager_opts_t *opts, ck_manager_t **out,
                   ck_error_t *err);

/* Free a manager that is not running (after ck_manager_run returned, or
 * never run). NULL is a no-op. */
void ck_manager_free(ck_manager_t *m);

/* Add a controller (before run). *out (may be NULL) is borrowed: it lives
 * as long as the manager. opts->ctx_free, when set, owns opts->ctx from
 * this call on: it runs when the manager is freed, or here on failure. */
int ck_manager_add_controller(ck_manager_t *m, const ck_controller_opts_t *opts,
                              ck_controller_t **out, ck_error_t *err);

/* The shared informer for res with these server-side selectors (NULL:
 * none), created on first use (before run) with the manager's namespaces.
 * Borrowed. */
ck_informer_t *ck_manager_informer(ck_manager_t *m, const ck_resource_t *res,
                                   const char *label_selector, const char *field_selector,
                                   ck_error_t *err);

/* The same with its own namespace scope instead of the manager's: `ns`
 * one namespace, or NULL for all (e.g. the operator watches its objects
 * in a few namespaces but one ConfigMap in kube-system). Shared with
 * other requests of the same scope and selectors. Borrowed. */
ck_informer_t *ck_manager_informer_in(ck_manager_t *m, const ck_resource_t *res, const char *ns,
                                      const char *label_selector, const char *field_selector,
                                      ck_error_t *err);

ck_metrics_t *ck_manager_metrics(ck_manager_t *m);   /* borrowed */
ck_recorder_t *ck_manager_recorder(ck_manager_t *m); /* borrowed */
ck_client_t *ck_manager_client(ck_manager_t *m);     /* borrowed */
/* The bound port of the metrics (0) or probe (1) listener once running. */
int ck_manager_port(ck_manager_t *m, int which);

/* Run until stopped (see above). Returns 0 after a graceful stop,
 * CK_ECLOSED when leadership was lost, CK_ETIMEDOUT when reconciles were
 * still running at the end of the grace period (their threads are left
 * behind: exit the process), or an error from starting up (e.g. the
 * server address is taken). */
int ck_manager_run(ck_manager_t *m, ck_error_t *err);

/* Ask a running manager to stop (from any thread; async-signal-safe). */
void ck_manager_stop(ck_manager_t *m);

/* True while workers may reconcile (leader, or no leader election). */
bool ck_manager_is_leading(ck_manager_t *m);

#ifdef __cplusplus
}
#endif
#endif

/* crdkit/leader.h: leader election on a coordination.k8s.io/v1 Lease.
 *
 * client-go's algorithm: a candidate acquires the Lease when it is free
 * (no holder, or renewTime + leaseDurationSeconds passed as observed by
 * this candidate's own monotonic clock since it last saw the record
 * change), then renews every retry period. Every write carries the
 * Lease's resourceVersion, so two candidates never both succeed.
 *
 * Safety: a leader that has not renewed within renew_deadline_ms stops
 * being leader (on_stopped runs) before the lease can expire for others
 * (renew_deadline_ms < lease_ms). Graceful stop releases the Lease
 * (holderIdentity cleared, leaseDurationSeconds 1) so a standby takes
 * over at once.
 *
 * Callbacks run on the elector's own thread; they must return promptly.
 * is_leader turns true just before on_started runs and false just before
 * on_stopped runs. A callback may call ck_leader_stop (it then returns at
 * once; the elector ends after the callback) but not ck_leader_free.
 * Every request is bounded by the renew deadline: while leader, by the
 * time left until it, so a renew gives up in time to step down.
 * Thread-safety: all functions are thread-safe.
 */
#ifndef CRDKIT_LEADER_H
#define CRDKIT_LEADER_H

#include "crdkit/client.h"
#include "crdkit/metrics.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_leader ck_leader_t;

typedef struct ck_leader_opts {
  const char *namespace; /* of the Lease; required */
  const char *name;      /* of the Lease; required */
  const char *identity;  /* NULL: "<hostname>_<random hex>" */
  int64_t lease_ms;      /* 0: 15,000 */
  int64_t renew_deadline_ms; /* 0: 10,000 */
  int64_t retry_ms;      /* 0: 2,000 */
  /* Became leader / stopped being leader (lost or released) / someone
   * else (identity, borrowed for the call) is observed to lead. Any may
   * be NULL. */
  void (*on_started)(void *ctx);
  void (*on_stopped)(void *ctx);
  void (*on_new_leader)(void *ctx, const char *identity);
  void *ctx;
  ck_metrics_t *metrics; /* borrowed; leader_election_master_status{name} */
} ck_leader_opts_t;

/* Validate the options (lease_ms > renew_deadline_ms > retry_ms, names
 * set) and copy them. Does not contact the server. */
int ck_leader_new(ck_client_t *c, const ck_leader_opts_t *opts, ck_leader_t **out,
                  ck_error_t *err);

/* Start campaigning on a background thread. Returns 0 (also when already
 * started), CK_ENOMEM, or CK_ECLOSED after ck_leader_stop. */
int ck_leader_start(ck_leader_t *l);

/* True while this candidate holds the lease and renewed it within the
 * renew deadline (checked against the clock at each call, so it turns
 * false on time even while a renew request is still hanging). */
bool ck_leader_is_leader(ck_leader_t *l);

/* Wait until leader (0), or timeout_ms passed (CK_ETIMEDOUT; < 0: wait
 * forever), or the elector stopped (CK_ECLOSED). */
int ck_leader_wait(ck_leader_t *l, int64_t timeout_ms);

/* This candidate's identity (borrowed, lives as long as l). */
const char *ck_leader_identity(const ck_leader_t *l);

/* Stop campaigning and wait for the elector thread; if leader: is_leader
 * turns false, on_stopped runs, then the lease is released (one attempt,
 * bounded by the renew deadline). Returns within about the renew deadline
 * (an answer being awaited). Idempotent. */
void ck_leader_stop(ck_leader_t *l);

/* Stop and free. NULL is a no-op. */
void ck_leader_free(ck_leader_t *l);

#ifdef __cplusplus
}
#endif
#endif

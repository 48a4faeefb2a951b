/* crdkit/workqueue.h: the rate-limited work queue of controllers.
 *
 * Semantics of client-go's workqueue:
 * - a key waits at most once (adding a waiting key again is a no-op);
 * - a key handed out by ck_queue_get is "processing" until ck_queue_done;
 *   it is never handed to a second worker meanwhile. Added again while
 *   processing, it is queued once more when ck_queue_done is called;
 * - keys come out in the order they were first queued (FIFO), so a burst
 *   of initial-list keys cannot starve later events, nor later events the
 *   initial list;
 * - ck_queue_add_after queues a key after a delay (a shorter delay for a
 *   key already waiting for its timer wins). As in client-go, the timer is
 *   independent of a copy of the key already queued: when it fires the key
 *   is added again (a no-op if it is still waiting);
 * - ck_queue_add_rate_limited delays by the larger of the key's own
 *   exponential backoff (base 5 ms doubling to 1000 s) and the overall
 *   token bucket (10 per second, burst 100); ck_queue_forget resets the
 *   key's backoff (call it after a success).
 * - ck_queue_shutdown refuses new adds and drops pending timers; the keys
 *   already waiting are still handed out (drain), including a key added
 *   again while processing (handed out after its ck_queue_done), then
 *   ck_queue_get returns CK_ECLOSED.
 *
 * Keys are NUL-terminated strings, copied on add.
 * Thread-safety: every function is thread-safe.
 */
#ifndef CRDKIT_WORKQUEUE_H
#define CRDKIT_WORKQUEUE_H

#include "crdkit/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_queue ck_queue_t;

typedef struct ck_queue_opts {
  const char *name;      /* label "name" of the workqueue_* metrics; copied; NULL: "" */
  ck_metrics_t *metrics; /* borrowed; NULL: no metrics. Must outlive the queue */
  int64_t base_delay_ms; /* per-key backoff start; 0: 5 */
  int64_t max_delay_ms;  /* per-key backoff cap; 0: 1,000,000 (1000 s) */
  double qps;            /* overall bucket rate; 0: 10; < 0: no bucket */
  int burst;             /* overall bucket size; 0: 100 */
} ck_queue_opts_t;

/* Create a queue (and its timer thread). `opts` may be NULL. Returns 0 or
 * CK_ENOMEM (or the registry's error when its collector cannot be added);
 * free with ck_queue_free. Metrics registered when opts->metrics is set:
 * workqueue_depth, workqueue_adds_total, workqueue_queue_duration_seconds,
 * workqueue_work_duration_seconds, workqueue_unfinished_work_seconds,
 * workqueue_longest_running_processor_seconds, workqueue_retries_total,
 * all labelled name=opts->name. The two *_seconds gauges of running work
 * are computed at scrape time by a collector, removed by ck_queue_free. */
int ck_queue_new(const ck_queue_opts_t *opts, ck_queue_t **out);

/* Shut down (if not yet) and free. No thread may be inside a call. */
void ck_queue_free(ck_queue_t *q);

/* Queue `key` now. Returns 0, CK_ECLOSED after shutdown, or CK_ENOMEM. */
int ck_queue_add(ck_queue_t *q, const char *key);

/* Queue `key` after `delay_ms` (<= 0: now). Same returns as ck_queue_add. */
int ck_queue_add_after(ck_queue_t *q, const char *key, int64_t delay_ms);

/* Queue `key` after its backoff (counts a retry). Same returns. */
int ck_queue_add_rate_limited(ck_queue_t *q, const char *key);

/* Reset the key's backoff. */
void ck_queue_forget(ck_queue_t *q, const char *key);

/* How many times the key was rate-limited since its last forget. */
int ck_queue_num_requeues(ck_queue_t *q, const char *key);

/* The next key: waits up to timeout_ms (< 0: forever; 0: do not wait).
 * On 0, *key is a malloc'd copy the caller frees, after calling
 * ck_queue_done with it. Otherwise *key is NULL and the return is
 * CK_ETIMEDOUT, CK_ECLOSED once shut down and drained, or CK_ENOMEM (the
 * key stays queued). */
int ck_queue_get(ck_queue_t *q, int64_t timeout_ms, char **key);

/* Processing of `key` finished (requeues it if it was added meanwhile).
 * A key that is not being processed is ignored. */
void ck_queue_done(ck_queue_t *q, const char *key);

/* Refuse further adds, drop delayed keys, wake waiting getters once the
 * waiting keys are drained. Idempotent. */
void ck_queue_shutdown(ck_queue_t *q);

/* Wait until nothing is waiting or processing, or timeout_ms passed
 * (< 0: forever). Keys whose delay has not yet run out do not count.
 * Returns 0 or CK_ETIMEDOUT. For graceful stops. */
int ck_queue_wait_idle(ck_queue_t *q, int64_t timeout_ms);

/* Keys waiting (not counting delayed ones or those processing). */
size_t ck_queue_len(ck_queue_t *q);

#ifdef __cplusplus
}
#endif
#endif

/* crdkit/events.h: Kubernetes Events (events.k8s.io/v1), as
 * `kubectl describe` and `kubectl events` show them.
 *
 * A recorder sends events from a background thread so a reconcile never
 * waits on them. Repeats of the same (object, type, reason, action, note)
 * within 10 minutes are aggregated: the first creates the Event, later
 * ones update its series (count, lastObservedTime) at most once per
 * second per event. A bounded backlog (1000) drops the oldest events
 * when the server is unreachable, counting what it dropped.
 *
 * Thread-safety: all functions are thread-safe.
 */
#ifndef CRDKIT_EVENTS_H
#define CRDKIT_EVENTS_H

#include "crdkit/client.h"

#include <jansson.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_recorder ck_recorder_t;

typedef struct ck_recorder_opts {
  const char *controller; /* reportingController, e.g. "crdkit.io/aws-auth"; required */
  const char *instance;   /* reportingInstance; NULL: "<controller>-<hostname>" */
  int backlog;            /* 0: 1000 */
} ck_recorder_opts_t;

/* The client is borrowed and must outlive the recorder. Strings copied. */
int ck_recorder_new(ck_client_t *c, const ck_recorder_opts_t *opts, ck_recorder_t **out,
                    ck_error_t *err);

/* Send what is pending (waits up to timeout_ms), stop and free. NULL is a
 * no-op. */
void ck_recorder_free(ck_recorder_t *r, int64_t timeout_ms);

/* Record an event about `regarding` (borrowed; its apiVersion, kind,
 * namespace, name, uid and resourceVersion are copied). `type` is
 * "Normal" or "Warning"; `reason` CamelCase; `action` what was done
 * ("Reconcile", "Update"); `note` printf-style, cut to 1 KiB. Never
 * blocks on the network; returns 0, CK_EINVAL for a bad argument, or
 * CK_ENOMEM. */
int ck_event(ck_recorder_t *r, const json_t *regarding, const char *type, const char *reason,
             const char *action, const char *note_fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Wait until every recorded event was sent (or dropped). 0 or
 * CK_ETIMEDOUT. For tests and shutdown. */
int ck_recorder_flush(ck_recorder_t *r, int64_t timeout_ms);

/* Events sent and dropped so far. */
uint64_t ck_recorder_sent(ck_recorder_t *r);
uint64_t ck_recorder_dropped(ck_recorder_t *r);

#ifdef __cplusplus
}
#endif
#endif

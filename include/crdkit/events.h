/* crdkit/events.h: Kubernetes Events (events.k8s.io/v1), as
 * `kubectl describe` and `kubectl events` show them.
 *
 * A recorder sends events from a background thread so a reconcile never
 * waits on them. Repeats of the same (object uid, type, reason, action,
 * note) less than 10 minutes after the previous one are aggregated: the
 * first creates the Event, later ones merge-patch its series (count,
 * lastObservedTime) at most once per second per event; repeats within
 * that second are counted and go out with the next write. A bounded
 * backlog (1000 events waiting to be written) drops the oldest when the
 * server is slow or unreachable. A write that fails after the client's
 * own retries is dropped too (logged as a warning); after a connection
 * or server error the recorder pauses (1 s doubling to 30 s) before the
 * next write. An Event that expired on the server is created again with
 * the whole count.
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
  const char *controller; /* reportingController, e.g. "crdkit.io/aws-auth"; required,
                             at most 128 bytes */
  const char *instance;   /* reportingInstance; NULL: "<controller>-<hostname>"
                             (cut to 128 bytes) */
  int backlog;            /* events waiting to be written; 0: 1000 */
} ck_recorder_opts_t;

/* The client is borrowed and must outlive the recorder. Strings copied. */
int ck_recorder_new(ck_client_t *c, const ck_recorder_opts_t *opts, ck_recorder_t **out,
                    ck_error_t *err);

/* Send what is pending (waits up to timeout_ms; repeats waiting for
 * their one-second slot go out at once), drop the rest, stop and free.
 * A write already in flight is waited for: it is bounded by the client's
 * request timeout and retries, not by timeout_ms. A recorder that just
 * found the server unreachable drops the backlog at once. After free,
 * the client may be freed. NULL is a no-op. */
void ck_recorder_free(ck_recorder_t *r, int64_t timeout_ms);

/* Record an event about `regarding` (borrowed; its apiVersion, kind,
 * namespace, name, uid and resourceVersion are copied; kind and name are
 * required). The Event is named "<name>.<16 hex>" and lives in the
 * object's namespace, "default" for a cluster-scoped object. `type` is
 * "Normal" or "Warning"; `reason` CamelCase and `action` what was done
 * ("Reconcile", "Update"), both 1 to 128 bytes; `note` printf-style, cut
 * to 1024 bytes on a UTF-8 character boundary (invalid UTF-8 is
 * refused). Never blocks on the network; returns 0, CK_EINVAL for a bad
 * argument (or a recorder being freed), or CK_ENOMEM. */
int ck_event(ck_recorder_t *r, const json_t *regarding, const char *type, const char *reason,
             const char *action, const char *note_fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Wait until every recorded event was sent (or dropped). 0 or
 * CK_ETIMEDOUT. For tests and shutdown. */
int ck_recorder_flush(ck_recorder_t *r, int64_t timeout_ms);

/* Events (occurrences: an aggregated repeat counts once) written and
 * dropped so far. Once flushed, sent + dropped equals the number of
 * ck_event calls that returned 0. */
uint64_t ck_recorder_sent(ck_recorder_t *r);
uint64_t ck_recorder_dropped(ck_recorder_t *r);

#ifdef __cplusplus
}
#endif
#endif

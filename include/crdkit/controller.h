/* crdkit/controller.h: controllers: level-based reconcile of one primary
 * kind, fed by shared informers through a rate-limited work queue.
 *
 * A controller is created by a manager (crdkit/manager.h), which shares
 * informers between controllers and runs them. Events of the primary kind
 * queue the object's key; `owns` maps a child's events to the owner named
 * by its controller ownerReference; `watches` maps any kind through a
 * function. N workers take keys from the queue; a key is never reconciled
 * by two workers at once. The reconcile reads the current state from the
 * cache (ck_reconcile_get), never from the event that queued it.
 *
 * Results: ck_done() forgets the key's backoff; ck_requeue() queues it
 * again with backoff; ck_requeue_after(ms) after a delay; ck_fail()
 * counts an error and retries with backoff; ck_fail_terminal() counts it
 * and does not retry (until the object changes). One failing object never
 * stops the others.
 *
 * Threads: reconcile functions run on worker threads, several at once for
 * different keys; everything in this header is thread-safe.
 */
#ifndef CRDKIT_CONTROLLER_H
#define CRDKIT_CONTROLLER_H

#include "crdkit/client.h"
#include "crdkit/events.h"
#include "crdkit/informer.h"
#include "crdkit/log.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_controller ck_controller_t;
typedef struct ck_reconcile ck_reconcile_t;

typedef enum ck_result_kind {
  CK_RESULT_DONE = 0,
  CK_RESULT_REQUEUE,
  CK_RESULT_REQUEUE_AFTER,
  CK_RESULT_ERROR,
  CK_RESULT_TERMINAL,
} ck_result_kind_t;

typedef struct ck_result {
  ck_result_kind_t kind;
  int64_t after_ms;
} ck_result_t;

static inline ck_result_t ck_done(void) { return (ck_result_t){CK_RESULT_DONE, 0}; }
static inline ck_result_t ck_requeue(void) { return (ck_result_t){CK_RESULT_REQUEUE, 0}; }
static inline ck_result_t ck_requeue_after(int64_t ms) {
  return (ck_result_t){CK_RESULT_REQUEUE_AFTER, ms};
}
static inline ck_result_t ck_fail(void) { return (ck_result_t){CK_RESULT_ERROR, 0}; }
static inline ck_result_t ck_fail_terminal(void) { return (ck_result_t){CK_RESULT_TERMINAL, 0}; }

typedef ck_result_t (*ck_reconcile_fn)(void *ctx, ck_reconcile_t *rc);

/* Event filters for the primary kind's updates (adds and deletes always
 * pass). With none set every update passes; with several, an update
 * passes when any of them sees a change. */
enum {
  CK_FILTER_GENERATION = 1 << 0, /* metadata.generation changed, or deletion began */
  CK_FILTER_LABELS = 1 << 1,     /* metadata.labels changed */
  CK_FILTER_ANNOTATIONS = 1 << 2,
};

typedef struct ck_controller_opts {
  const char *name;             /* metrics and logs; required, unique */
  const ck_resource_t *primary; /* required; strings must outlive the controller */
  ck_reconcile_fn reconcile;    /* required */
  void *ctx;
  void (*ctx_free)(void *ctx);  /* called with ctx when the controller is freed
                                   (with the manager, or when adding it failed); may be NULL */
  int workers;                  /* 0: 1 */
  unsigned filters;             /* CK_FILTER_* */
  /* Custom filter for the primary kind (after `filters`): return false to
   * ignore the event. old is NULL except for updates. */
  bool (*filter)(void *ctx, ck_informer_event_t ev, const json_t *old, const json_t *obj);
  const char *label_selector;   /* server-side, for the primary informer */
  const char *field_selector;
  /* For the primary informer: its cache holds what the transform returns
   * (see ck_transform_fn). Controllers of one primary kind share an
   * informer only when selectors, transform and transform_ctx are all the
   * same. */
  ck_transform_fn transform;
  void *transform_ctx;
  int64_t resync_ms;            /* requeue every cached object this often; 0: off */
} ck_controller_opts_t;

/* Child events map to the owner (of the primary kind) named by their
 * controller ownerReference. Before the manager runs. */
int ck_controller_owns(ck_controller_t *ctl, const ck_resource_t *child, ck_error_t *err);

/* Any kind, mapped to primary keys by fn: call emit(ectx, "ns/name") for
 * each key to reconcile. Before the manager runs. */
typedef void (*ck_map_emit_fn)(void *ectx, const char *key);
typedef void (*ck_map_fn)(void *ctx, const json_t *obj, ck_map_emit_fn emit, void *ectx);
int ck_controller_watches(ck_controller_t *ctl, const ck_resource_t *res, ck_map_fn fn, void *ctx,
                          ck_error_t *err);

/* The same for an informer the caller chose (e.g. from
 * ck_manager_informer_in). Mapping the primary informer itself to one
 * fixed key coalesces every change into one reconcile of the whole set. */
int ck_controller_watches_informer(ck_controller_t *ctl, ck_informer_t *inf, ck_map_fn fn,
                                   void *ctx, ck_error_t *err);

/* Queue a key by hand (e.g. from an external trigger). */
int ck_controller_enqueue(ck_controller_t *ctl, const char *key);

/* The informer of the primary kind (borrowed, shared). */
ck_informer_t *ck_controller_informer(ck_controller_t *ctl);
const char *ck_controller_name(const ck_controller_t *ctl);

/* ---- inside a reconcile ------------------------------------------------ */

/* The key, namespace (NULL for cluster-scoped) and name being reconciled
 * (borrowed for the call). */
const char *ck_reconcile_key(const ck_reconcile_t *rc);
const char *ck_reconcile_namespace(const ck_reconcile_t *rc);
const char *ck_reconcile_name(const ck_reconcile_t *rc);
ck_client_t *ck_reconcile_client(const ck_reconcile_t *rc);
ck_controller_t *ck_reconcile_controller(const ck_reconcile_t *rc);

/* The primary object from the cache: a new reference the caller owns, or
 * NULL when it no longer exists. */
json_t *ck_reconcile_get(ck_reconcile_t *rc);

/* The cached object of another kind the manager has an informer for (the
 * kinds named in owns/watches, or added with ck_manager_informer). NULL
 * when absent or not cached. New reference. */
json_t *ck_reconcile_get_other(ck_reconcile_t *rc, const ck_resource_t *res, const char *ns,
                               const char *name);

/* Read-your-writes: tell the caches about an object this reconcile wrote
 * (borrowed), so the next reconcile sees at least this version. */
void ck_reconcile_observe(ck_reconcile_t *rc, const ck_resource_t *res, const json_t *obj);

/* The helpers of crdkit/objects.h, with ck_reconcile_observe done for
 * the result. `obj` is the primary object as read; *out (may be NULL)
 * gets the object after the write. */
int ck_reconcile_status_update(ck_reconcile_t *rc, const json_t *obj, const json_t *status,
                               json_t **out, ck_error_t *err);
int ck_reconcile_finalizer_add(ck_reconcile_t *rc, const json_t *obj, const char *finalizer,
                               json_t **out, ck_error_t *err);
int ck_reconcile_finalizer_remove(ck_reconcile_t *rc, const json_t *obj, const char *finalizer,
                                  json_t **out, ck_error_t *err);

/* An Event about obj from this controller (see crdkit/events.h). */
int ck_reconcile_event(ck_reconcile_t *rc, const json_t *obj, const char *type,
                       const char *reason, const char *note_fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Log with the controller name and object key on the line. */
void ck_reconcile_log(const ck_reconcile_t *rc, ck_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif

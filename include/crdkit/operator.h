/* crdkit/operator.h: write an operator as handlers, run it with the
 * standard command line.
 *
 * Handlers (kopf-style, on top of a controller):
 *
 *   on_create  an object not handled yet (no status.observedGeneration)
 *   on_update  metadata.generation > status.observedGeneration; the old
 *              spec (when known, see below) and a field diff are given
 *   on_delete  the object is being deleted; backed by a finalizer, so it
 *              runs even when the delete happened while the operator was
 *              down; the finalizer is removed once the handler is done
 *   on_resume  once per process start, for an object already handled
 *   on_event   every other reconcile of a handled object (an owned child
 *              changed, a resync): refresh derived status here
 *   timers     every interval_ms per object, after it was handled
 *
 * Outcomes: ck_ok(); ck_retry(h, fmt, ...) is a temporary error, retried
 * with backoff (ck_retry_after for a fixed delay); ck_permanent(h, fmt,
 * ...) is recorded in status and a Warning Event and not retried until
 * the object's generation changes.
 *
 * Progress lives in status, written through the /status subresource in
 * one write per reconcile (and only when it changed):
 *   status.observedGeneration  the generation handled (done or permanent)
 *   status.conditions[Ready]   True/Handled, False/Retrying or
 *                              False/Failed with the handler's message
 * plus whatever the handler set with ck_handler_status_set. Nothing is
 * kept in annotations. The CRD's status schema must allow these fields
 * (ck_handler_status_fields gives table rows for them).
 *
 * The old spec for on_update is the last spec handled by this process;
 * after a restart it is unknown (NULL, and the diff lists every field as
 * added) unless .keep_last_spec stores it in status.lastHandledSpec.
 *
 * pykubeop compatibility (.compat = CK_COMPAT_PYKUBEOP): an object is
 * "created" when status.state is set, as pykubeop decides for ADDED
 * events: on_create runs for objects without status.state (at every
 * start, until a handler sets it), never for objects with it. The rest
 * is unchanged.
 *
 * Threads: handlers run on the controller's workers, several at once for
 * different objects, never two at once for one object.
 */
#ifndef CRDKIT_OPERATOR_H
#define CRDKIT_OPERATOR_H
#include "crdkit/controller.h"
#include "crdkit/crd.h"
#include "crdkit/manager.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_handler ck_handler_t; /* one handler call */
typedef struct ck_args ck_args_t;       /* the parsed command line */

typedef enum ck_outcome_kind {
  CK_OUTCOME_OK = 0,
  CK_OUTCOME_RETRY,
  CK_OUTCOME_PERMANENT,
} ck_outcome_kind_t;

typedef struct ck_outcome {
  ck_outcome_kind_t kind;
  int64_t after_ms; /* RETRY: 0 = backoff, else this delay */
} ck_outcome_t;

static inline ck_outcome_t ck_ok(void) { return (ck_outcome_t){CK_OUTCOME_OK, 0}; }
/* The message goes to the log, the Ready condition and (permanent) an
 * Event. */
ck_outcome_t ck_retry(ck_handler_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ck_outcome_t ck_retry_after(ck_handler_t *h, int64_t ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ck_outcome_t ck_permanent(ck_handler_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef ck_outcome_t (*ck_handler_fn)(ck_handler_t *h, void *ctx);

typedef struct ck_timer {
  const char *name;    /* logs; required */
  int64_t interval_ms; /* > 0, unless interval_flag is set */
  ck_handler_fn fn;
  /* A CK_FLAG_INT flag of the operator, in seconds, that sets the
   * interval instead (e.g. "recheck-seconds"); NULL: interval_ms. */
  const char *interval_flag;
} ck_timer_t;

typedef enum ck_compat {
  CK_COMPAT_NONE = 0,
  CK_COMPAT_PYKUBEOP, /* status.state decides what is created (see above) */
} ck_compat_t;

typedef struct ck_handlers {
  const char *name;          /* controller name; NULL: the CRD's plural */
  const ck_crd_t *crd;       /* the primary kind (storage version), or: */
  const ck_resource_t *resource; /* when crd is NULL; must outlive the manager */
  ck_handler_fn on_create, on_update, on_delete, on_resume, on_event;
  const ck_timer_t *timers;  /* {0}-terminated, may be NULL */
  void *ctx;                 /* passed to every handler */
  const char *finalizer;     /* NULL: "<group>/<name>" (when on_delete is set) */
  const ck_resource_t *const *owns; /* NULL-terminated: children whose events
                                       reconcile their controller owner */
  int workers;               /* 0: 1 (or --max-concurrent-reconciles) */
  ck_compat_t compat;
  bool keep_last_spec;       /* store the handled spec in status.lastHandledSpec */
} ck_handlers_t;

/* Add a controller running these handlers to a manager that has not run
 * yet. `hs` and everything it points to must outlive the manager (static
 * tables do). `args` (may be NULL) is what ck_handler_args returns.
 * Returns 0, CK_EINVAL (no kind, a timer without interval, a bad CRD
 * table; keep_last_spec with a CRD whose status has no lastHandledSpec),
 * or errors of ck_manager_add_controller. */
int ck_handlers_add(ck_manager_t *m, const ck_handlers_t *hs, const ck_args_t *args,
                    ck_error_t *err);

/* Rows for a CRD status table: observedGeneration and conditions (and
 * lastHandledSpec, preserving unknown fields). Borrowed static rows;
 * copy the ones you need into your own {0}-terminated table, or use
 * CK_HANDLER_STATUS_FIELDS inside one. */
#define CK_HANDLER_STATUS_FIELDS                                                                   \
  {.name = "observedGeneration", .type = CK_CRD_INTEGER,                                           \
   .description = "The metadata.generation the operator handled last."},                          \
  {.name = "conditions", .type = CK_CRD_ARRAY, .description = "Ready: handled or not, and why.",   \
   .list_type = CK_CRD_LIST_MAP, .list_map_keys = CK_CRD_LIST("type"),                              \
   .items = &ck_handler_condition_schema},                                                         \
  {.name = "lastHandledSpec", .type = CK_CRD_OBJECT, .preserve_unknown_fields = true,              \
   .description = "The spec handled last (only with keep_last_spec)."}
extern const ck_crd_field_t ck_handler_condition_schema;

/* ---- inside a handler --------------------------------------------------- */

/* The object as read from the cache at the start of the call (borrowed
 * for the call; do not modify). */
const json_t *ck_handler_object(const ck_handler_t *h);
/* Its spec, or an empty object (borrowed). */
const json_t *ck_handler_spec(const ck_handler_t *h);
/* on_update: the spec handled before, or NULL when unknown. */
const json_t *ck_handler_old_spec(const ck_handler_t *h);
/* on_update: the changes from the old spec to the new one, an array of
 * {"op": "add"|"change"|"remove", "path": "spec.a.b", "old": v, "new": v}
 * (objects are compared field by field, arrays as whole values). Empty in
 * other handlers. Borrowed. */
const json_t *ck_handler_diff(const ck_handler_t *h);
/* True when the diff has an entry at `path` or below it ("spec.size"). */
bool ck_handler_changed(const ck_handler_t *h, const char *path);
/* "create", "update", "delete", "resume", "event" or the timer's name. */
const char *ck_handler_reason(const ck_handler_t *h);
ck_reconcile_t *ck_handler_reconcile(ck_handler_t *h); /* the underlying reconcile */
ck_client_t *ck_handler_client(ck_handler_t *h);
const ck_resource_t *ck_handler_resource(const ck_handler_t *h);
const ck_args_t *ck_handler_args(const ck_handler_t *h); /* NULL without ck_operator_main */
/* Set status.<key> to value (a new reference is stolen; NULL removes the
 * key). Written with the progress fields when the handler returns, also
 * on a retry. "observedGeneration" and "conditions" are the framework's. */
int ck_handler_status_set(ck_handler_t *h, const char *key, json_t *value);
/* Log with the controller and object key on the line. */
void ck_handler_log(const ck_handler_t *h, ck_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A Normal or Warning Event about the object. */
int ck_handler_event(ck_handler_t *h, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- reading fields ----------------------------------------------------- */

/* The value at a dotted path ("spec.size"; no array indexing), borrowed,
 * or NULL. */
const json_t *ck_field(const json_t *obj, const char *path);
/* Typed reads: the value, or `def` when the path is absent or holds
 * another type. */
const char *ck_field_string(const json_t *obj, const char *path, const char *def);
int64_t ck_field_int(const json_t *obj, const char *path, int64_t def);
bool ck_field_bool(const json_t *obj, const char *path, bool def);

/* ---- the standard command line ------------------------------------------ */

typedef enum ck_flag_type {
  CK_FLAG_STRING = 0,
  CK_FLAG_INT,
  CK_FLAG_BOOL, /* no value on the command line; env: true/false/1/0 */
  CK_FLAG_ENUM, /* one of .choices */
} ck_flag_type_t;

/* An operator's own flag (pykubeop's add_arguments). */
typedef struct ck_flag {
  const char *name;     /* "mongo-uri": --mongo-uri, env <PREFIX>_MONGO_URI */
  ck_flag_type_t type;
  const char *help;     /* one line for --help */
  const char *def;      /* default, as text; NULL: unset */
  const char *const *choices; /* CK_FLAG_ENUM: NULL-terminated */
  int64_t min, max;     /* CK_FLAG_INT: bounds when min < max */
  bool required;        /* an error when neither flag nor env var sets it */
} ck_flag_t;

typedef struct ck_operator {
  const char *name;        /* "rabbitmq-operator": logs, Lease, Events */
  const char *version;     /* --version */
  const char *description; /* --help: what it does, one paragraph */
  const char *env_prefix;  /* NULL: name upper-cased, '-' -> '_' */
  const ck_crd_t *crd;     /* --print-crd, --create-crd; may be NULL */
  const ck_handlers_t *handlers; /* {0}-terminated array (crd and resource NULL ends it) */
  const ck_flag_t *flags;  /* {0}-terminated, may be NULL */
  const char *const *default_namespaces; /* NULL-terminated; NULL: all namespaces */
  /* Called after flags are parsed and the manager is made, before it
   * runs (extra informers, checks of flag combinations). Non-zero stops
   * the operator with err's message. May be NULL. */
  int (*setup)(ck_manager_t *m, const ck_args_t *args, void *ctx, ck_error_t *err);
  void *ctx;
} ck_operator_t;

/* The operator's main: parses the standard flags and the operator's own
 * (each also from an environment variable <PREFIX>_<FLAG>; --namespace
 * takes a comma-separated list there; the command line wins), then
 * --help, --version and --print-crd print to stdout and return 0;
 * otherwise it loads the kubeconfig (--kubeconfig, --context, KUBECONFIG,
 * in-cluster), installs the CRD with --create-crd, adds the handlers and
 * runs the manager until SIGTERM/SIGINT.
 *
 * Standard flags: --kubeconfig, --context, --namespace NS (repeatable),
 * --all-namespaces, --create-crd, --print-crd, --log-level, --log-format
 * text|json, --metrics-bind-address, --health-probe-bind-address,
 * --leader-elect, --max-concurrent-reconciles N, --version, --help.
 *
 * Returns the process exit status: 0 after a graceful stop, 1 for a
 * runtime error (message on stderr), 2 for a bad command line (the
 * message names the flag or variable and the accepted values). Never
 * exits; this and the stderr log are the only places the library writes. */
int ck_operator_main(int argc, char **argv, const ck_operator_t *op);

/* Parsed flags (borrowed strings, valid while the operator runs). A
 * standard flag is read by its name too ("namespace" gives the first).
 * Unknown names: NULL / def. */
const char *ck_args_string(const ck_args_t *a, const char *name);
int64_t ck_args_int(const ck_args_t *a, const char *name, int64_t def);
bool ck_args_bool(const ck_args_t *a, const char *name);

#ifdef __cplusplus
}
#endif
#endif

/* crdkit/client.h: the Kubernetes API client.
 *
 * One ck_client_t holds one connection pool (libcurl multi, keep-alive,
 * HTTP/2 multiplexing when the server offers it) driven by one I/O thread.
 * Every function here is thread-safe: share one client between all threads.
 * Calls block the calling thread, never the I/O thread.
 *
 * Objects are jansson values. Unless stated otherwise, `json_t *` inputs
 * are borrowed (the caller keeps its reference) and `json_t **out`
 * receives a new reference the caller must json_decref. Any `out` may be
 * NULL when the result is not wanted.
 *
 * Errors: 0 on success, else a negative CK_E* code; an API error Status
 * gives CK_EAPI with err->http_status, err->reason and err->message (and
 * err->causes for Invalid). See crdkit/error.h for the predicates.
 */
#ifndef CRDKIT_CLIENT_H
#define CRDKIT_CLIENT_H

#include "crdkit/config.h"
#include "crdkit/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_client ck_client_t;

typedef struct ck_client_opts {
  const char *user_agent;   /* NULL: "crdkit/<version>" */
  long connect_timeout_ms;  /* 0: 10,000 */
  long request_timeout_ms;  /* 0: 60,000 (not for watches) */
  int max_retries;          /* 429/503/connection retries; 0: 5, <0: none */
  long max_retry_wait_ms;   /* cap of one backoff or Retry-After; 0: 30,000 */
  double qps;               /* client-side rate limit; 0: off */
  int burst;                /* bucket size with qps; 0: max(1, qps) */
  bool http1;               /* force HTTP/1.1 (default: HTTP/2 when offered) */
} ck_client_opts_t;

/* Create a client. `cfg` is copied (the caller may free it afterwards);
 * `opts` may be NULL. Free with ck_client_free. */
int ck_client_new(const ck_config_t *cfg, const ck_client_opts_t *opts, ck_client_t **out,
                  ck_error_t *err);

/* Stop the I/O thread, cancel open watches and free everything. Watches
 * must be freed before the client. NULL is a no-op. */
void ck_client_free(ck_client_t *c);

/* The namespace of the configuration's context (borrowed). */
const char *ck_client_namespace(const ck_client_t *c);

/* The server URL (borrowed). */
const char *ck_client_server(const ck_client_t *c);

/* Counters of requests by HTTP code, for metrics (rest_client_requests_total).
 * Calls fn once per (method, code) pair seen so far. */
void ck_client_foreach_request_count(ck_client_t *c,
                                     void (*fn)(void *ctx, const char *method, int code,
                                                uint64_t count),
                                     void *ctx);

/* An observer of finished requests, for rest_client_requests_total and
 * rest_client_request_duration_seconds. Called once per attempt of
 * ck_client_request and the verbs (a retried request reports every
 * attempt, as client-go counts them), never for watch streams. `method` is
 * "GET", "POST"...; `host` is the server's "host[:port]"; `code` is the
 * HTTP status, or 0 when no answer came (connection or TLS failure,
 * timeout); `seconds` is the attempt's transfer time (connect included,
 * rate-limit waits and backoff excluded). Runs on the thread that made
 * the request, never the I/O thread, possibly on many threads at once;
 * the strings are borrowed for the call. It must not block for long. */
typedef void (*ck_request_observer_fn)(void *ctx, const char *method, const char *host, int code,
                                       double seconds);

/* Install (fn NULL: remove) the client's one observer. `ctx` is borrowed:
 * keep it valid until the client is freed (a request on another thread
 * may have picked up the old observer just before a replacement).
 * Thread-safe. */
void ck_client_set_observer(ck_client_t *c, ck_request_observer_fn fn, void *ctx);

/* Number of connections (TCP, and TLS over it) the client has opened so
 * far, summed over finished transfers (requests, and watches once they
 * ended or were freed): a transfer that reused a pooled connection or
 * was multiplexed onto one (HTTP/2) adds nothing. For tests and
 * diagnostics of connection reuse. */
uint64_t ck_client_connections_opened(ck_client_t *c);

/* ---- raw requests ---------------------------------------------------- */

typedef struct ck_request {
  const char *method;       /* "GET", "POST", ... */
  const char *path;         /* "/api/v1/namespaces/x/configmaps?limit=5" */
  const char *content_type; /* NULL: application/json when a body is set */
  const char *body;         /* may be NULL */
  size_t body_len;
  long timeout_ms;          /* 0: the client's request timeout */
} ck_request_t;

typedef struct ck_response {
  long status;  /* HTTP status, 0 when no answer came */
  char *body;   /* NUL-terminated; free with ck_response_free */
  size_t body_len;
} ck_response_t;

/* Send one request, with the client's retries, rate limit and credentials.
 * Returns 0 for a 2xx answer; a non-2xx answer gives CK_EAPI with the
 * decoded Status in err, and `resp` (if not NULL) still holds the body. */
int ck_client_request(ck_client_t *c, const ck_request_t *req, ck_response_t *resp,
                      ck_error_t *err);

void ck_response_free(ck_response_t *resp);

/* ---- resources ------------------------------------------------------- */

/* A group/version/resource and its scope. Strings are borrowed: keep them
 * alive while the descriptor is used (string literals are typical). */
typedef struct ck_resource {
  const char *group;    /* "" for the core group */
  const char *version;  /* "v1" */
  const char *resource; /* plural, "configmaps" */
  const char *kind;     /* "ConfigMap" (used for apply bodies and messages) */
  bool namespaced;
} ck_resource_t;

extern const ck_resource_t ck_res_configmaps;
extern const ck_resource_t ck_res_secrets;
extern const ck_resource_t ck_res_namespaces;
extern const ck_resource_t ck_res_leases;
extern const ck_resource_t ck_res_events;
extern const ck_resource_t ck_res_crds;

/* Build the URL path of a collection (name NULL) or object, with an
 * optional subresource. Returns a malloc'd string (caller frees) or NULL
 * when a namespaced resource has no namespace or memory ran out. */
char *ck_resource_path(const ck_resource_t *res, const char *ns, const char *name,
                       const char *subresource);

/* Discovery: find the resource for an apiVersion ("apps/v1") and kind. The
 * result is cached per group/version and refreshed once on a miss; its
 * strings live as long as the client. Returns CK_EAPI/NotFound-like
 * CK_EINVAL when the server does not serve the kind. */
int ck_discovery_resolve(ck_client_t *c, const char *api_version, const char *kind,
                         ck_resource_t *out, ck_error_t *err);

/* ---- verbs ------------------------------------------------------------ */

typedef enum ck_field_validation {
  CK_VALIDATION_DEFAULT = 0, /* the server's default (Warn) */
  CK_VALIDATION_IGNORE,
  CK_VALIDATION_WARN,
  CK_VALIDATION_STRICT,
} ck_field_validation_t;

/* Options of create, replace, patch and apply. {0} is valid. */
typedef struct ck_write_opts {
  const char *subresource;   /* e.g. "status"; NULL: the object itself */
  bool dry_run;              /* dryRun=All: validated, not persisted */
  const char *field_manager; /* required for apply */
  bool force;                /* apply: take over conflicting fields */
  ck_field_validation_t field_validation;
} ck_write_opts_t;

typedef struct ck_list_opts {
  const char *label_selector;
  const char *field_selector;
  long limit;                 /* page size; 0: 500 for ck_object_list_each,
                                 none for ck_object_list */
  const char *continue_token; /* ck_object_list only */
  const char *resource_version;
  const char *resource_version_match; /* "NotOlderThan", "Exact" */
} ck_list_opts_t;

typedef struct ck_delete_opts {
  const char *propagation_policy;  /* "Foreground", "Background", "Orphan" */
  const char *precondition_uid;
  const char *precondition_resource_version;
  bool has_grace_period;
  long grace_period_seconds;
  bool dry_run;
} ck_delete_opts_t;

typedef enum ck_patch_type {
  CK_PATCH_MERGE,     /* application/merge-patch+json */
  CK_PATCH_JSON,      /* application/json-patch+json */
  CK_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in kinds) */
} ck_patch_type_t;

int ck_object_get(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                  const char *subresource, json_t **out, ck_error_t *err);

/* One page. *out is the List object; its metadata.continue is set when
 * more pages exist. */
int ck_object_list(ck_client_t *c, const ck_resource_t *res, const char *ns,
                   const ck_list_opts_t *opts, json_t **out, ck_error_t *err);

/* Every page, item by item: fn gets each item (borrowed; json_incref to
 * keep it) and returns 0 to go on or non-zero to stop (that value is
 * returned). The list's resourceVersion goes to *rv_out (malloc'd, caller
 * frees) when rv_out is not NULL. A 410 on an expired continue token is
 * returned (CK_EAPI, ck_error_is_gone) so the caller can start over. */
int ck_object_list_each(ck_client_t *c, const ck_resource_t *res, const char *ns,
                        const ck_list_opts_t *opts, int (*fn)(void *ctx, json_t *item),
                        void *ctx, char **rv_out, ck_error_t *err);

int ck_object_create(ck_client_t *c, const ck_resource_t *res, const char *ns, json_t *obj,
                     const ck_write_opts_t *opts, json_t **out, ck_error_t *err);

/* PUT: the object's metadata.resourceVersion makes it conditional
 * (409 Conflict when stale). */
int ck_object_replace(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                      json_t *obj, const ck_write_opts_t *opts, json_t **out, ck_error_t *err);

/* `patch` is the patch document as JSON text. */
int ck_object_patch(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                    ck_patch_type_t type, const char *patch, const ck_write_opts_t *opts,
                    json_t **out, ck_error_t *err);

/* Server-side apply of `obj` (apiVersion/kind/metadata.name set by the
 * caller, or filled from `res` and `name`); opts->field_manager required. */
int ck_object_apply(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                    json_t *obj, const ck_write_opts_t *opts, json_t **out, ck_error_t *err);

int ck_object_delete(ck_client_t *c, const ck_resource_t *res, const char *ns, const char *name,
                     const ck_delete_opts_t *opts, json_t **out, ck_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

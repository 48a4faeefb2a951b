/* crdkit/serve.h: the embedded HTTP server (libmicrohttpd) for metrics and
 * probes.
 *
 * Two listeners, as operator-sdk scaffolds them: metrics (`/metrics`,
 * default ":8080") and probes (`/healthz`, `/readyz`, default ":8081").
 * Addresses are "HOST:PORT", ":PORT" (all interfaces), or "0" to disable
 * that listener; port 0 picks a free port (see ck_server_port). Both may
 * be the same address, then one listener serves all paths.
 *
 * Checks: /healthz and /readyz run every registered check of their kind;
 * all pass -> 200 "ok", any fails -> 500 with one line per check
 * ("[+]name ok" / "[-]name failed: reason"), like the kube-apiserver's
 * verbose probe output. `?verbose` lists the checks on success too.
 *
 * With two listeners, each serves only its own paths (404 for the others).
 * Any method but GET and HEAD answers 405. Each listener has one
 * libmicrohttpd polling thread, at most 64 connections and a 10 s idle
 * timeout, so a stalled client cannot hold the server.
 *
 * Thread-safety: all functions are thread-safe; checks and the metrics
 * render run on the server's threads and must not block for long.
 */
#ifndef CRDKIT_SERVE_H
#define CRDKIT_SERVE_H

#include "crdkit/error.h"
#include "crdkit/metrics.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_server ck_server_t;

typedef struct ck_server_opts {
  const char *metrics_addr; /* NULL: ":8080"; "0": off */
  const char *probe_addr;   /* NULL: ":8081"; "0": off */
  ck_metrics_t *metrics;    /* borrowed; NULL: /metrics answers 404 */
} ck_server_opts_t;

typedef enum ck_check_kind {
  CK_CHECK_HEALTHZ,
  CK_CHECK_READYZ,
} ck_check_kind_t;

/* A check returns true when healthy; on false it writes a short reason
 * into msg (NUL-terminated, at most msglen bytes). */
typedef bool (*ck_check_fn)(void *ctx, char *msg, size_t msglen);

/* Start listening. Fails with CK_EINVAL for a malformed address and
 * CK_EIO (naming the address) when it cannot be bound. *out: free with
 * ck_server_free. */
int ck_server_start(const ck_server_opts_t *opts, ck_server_t **out, ck_error_t *err);

/* Register a check (name is copied; `ctx` is borrowed until
 * ck_server_free). May be called before or after the server started
 * answering; checks run in registration order and cannot be removed.
 * Returns 0, CK_EINVAL (NULL s, name or fn) or CK_ENOMEM. */
int ck_server_add_check(ck_server_t *s, ck_check_kind_t kind, const char *name, ck_check_fn fn,
                        void *ctx);

/* The bound port of the metrics (which=0) or probe (which=1) listener, or
 * 0 when that listener is off. */
int ck_server_port(const ck_server_t *s, int which);

/* Stop listening (in-flight answers complete) and free. NULL is a no-op. */
void ck_server_free(ck_server_t *s);

#ifdef __cplusplus
}
#endif
#endif

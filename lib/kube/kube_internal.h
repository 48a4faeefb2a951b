/* Internals of lib/kube shared between its files. */
#ifndef CK_KUBE_INTERNAL_H
#define CK_KUBE_INTERNAL_H

#include "crdkit/client.h"
#include "crdkit/config.h"
#include "crdkit/error.h"
#include "crdkit/log.h"
#include "util/buf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>

static inline int ck_error_set_code(ck_error_t *err, int code) {
  if (err)
    err->code = code;
  return code;
}

/* files and string vectors (kubeconfig.c) */
int ck_read_file(const char *path, size_t max, char **out, size_t *len, ck_error_t *err);
void ck_strv_free(char **v);
char **ck_strv_dup(char *const *v);
int ck_check_cert_key(const unsigned char *cert, size_t cert_len, const unsigned char *key,
                      size_t key_len, ck_error_t *err);

/* ---- API Status (status.c) ------------------------------------------- */

/* Fill err from an HTTP error answer: the Status body when there is one,
 * else the HTTP code. `retry_after` is the header value or NULL. Returns
 * CK_EAPI. */
int ck_status_decode(long http_status, const char *body, size_t len, const char *retry_after,
                     const char *what, ck_error_t *err);
/* Same from an already parsed Status object (watch ERROR events). */
int ck_status_from_json(long http_status, json_t *status, const char *what, ck_error_t *err);

/* ---- List answers (listpage.c) --------------------------------------- */

/* Walk a List answer's text body[0..len) without parsing it whole: fn
 * gets each element of "items" in order, parsed on its own (borrowed:
 * fn takes a reference to keep it); *meta (may be NULL) gets a new
 * reference to the "metadata" object, or NULL when there is none. Every
 * part of the text is checked as a whole parse would check it. Returns
 * 0; fn's non-zero return (the walk stops there); or CK_EPARSE with err
 * giving the byte offset, and then fn may have had the items before the
 * fault. */
int ck_list_page_each(const char *body, size_t len, int (*fn)(void *ctx, json_t *item),
                      void *ctx, json_t **meta, ck_error_t *err);

/* ---- credentials (auth.c, exec.c) ------------------------------------ */

typedef struct ck_auth ck_auth_t;

/* What to present on one request. Strings/blobs are copies owned by the
 * struct; release with ck_cred_clear. */
typedef struct ck_cred {
  char *bearer;
  unsigned char *cert_pem;
  size_t cert_len;
  unsigned char *key_pem;
  size_t key_len;
  uint64_t generation; /* changes when the credential is refreshed */
} ck_cred_t;

int ck_auth_new(const ck_config_t *cfg, ck_auth_t **out, ck_error_t *err);
void ck_auth_free(ck_auth_t *a);
/* Current credential (re-reading token files, running exec plugins). */
int ck_auth_get(ck_auth_t *a, ck_cred_t *out, ck_error_t *err);
/* A request with credential `generation` got 401: drop cached exec
 * credentials so the next ck_auth_get re-runs the plugin. Returns true
 * when a retry with a fresh credential can help. */
bool ck_auth_invalidate(ck_auth_t *a, uint64_t generation);
void ck_cred_clear(ck_cred_t *c);

/* Exec plugin: run it and decode its ExecCredential. */
typedef struct ck_exec_result {
  char *token;
  unsigned char *cert_pem;
  size_t cert_len;
  unsigned char *key_pem;
  size_t key_len;
  int64_t expires; /* epoch seconds, 0: none */
} ck_exec_result_t;

int ck_exec_run(const ck_exec_config_t *e, const ck_config_t *cfg, ck_exec_result_t *out,
                ck_error_t *err);
/* Decode ExecCredential JSON output (exposed for tests/fuzzing). */
int ck_exec_decode(const char *json, size_t len, const char *api_version, ck_exec_result_t *out,
                   ck_error_t *err);
void ck_exec_result_clear(ck_exec_result_t *r);

/* ---- transport (transport.c) ----------------------------------------- */

typedef struct ck_transport ck_transport_t;
typedef struct ck_xfer ck_xfer_t;

/* Streaming sink: called on the I/O thread with each chunk of the body of
 * a 2xx answer. Must not block or call back into the transport. Return
 * 0 to go on, non-zero to abort the transfer. */
typedef int (*ck_xfer_sink_fn)(void *ctx, const char *data, size_t len);

struct ck_xfer {
  CURL *easy;
  struct curl_slist *headers;
  char errbuf[CURL_ERROR_SIZE];
  /* results, valid once done */
  CURLcode result;
  long status;
  char retry_after[32];
  ck_buf_t body;        /* non-2xx bodies, and all bodies without a sink */
  size_t body_max;      /* bound for body; 0: 64 MiB */
  bool body_too_big;
  /* streaming */
  ck_xfer_sink_fn sink;
  void *sink_ctx;
  bool sink_failed;
  /* state, guarded by the transport lock */
  bool headers_done;
  bool done;
  bool added;
  pthread_cond_t cond;
  ck_transport_t *t;
  ck_xfer_t *next_op;
  int op;
};

int ck_transport_new(ck_transport_t **out, ck_error_t *err);
void ck_transport_free(ck_transport_t *t);
/* Initialise x around an easy handle the caller configures (URL, method,
 * TLS...). Returns CK_ENOMEM. */
int ck_xfer_init(ck_xfer_t *x, ck_transport_t *t);
void ck_xfer_cleanup(ck_xfer_t *x);
/* Hand x to the I/O thread. */
int ck_transport_submit(ck_transport_t *t, ck_xfer_t *x);
/* Wait until x is done (timeout_ms < 0: forever). Returns 0 or CK_ETIMEDOUT. */
int ck_transport_wait(ck_transport_t *t, ck_xfer_t *x, int64_t timeout_ms);
/* Wait until the answer's headers arrived or x is done. */
int ck_transport_wait_headers(ck_transport_t *t, ck_xfer_t *x, int64_t timeout_ms);
/* Ask the I/O thread to abort x and wait until it has let go of it. */
void ck_transport_cancel(ck_transport_t *t, ck_xfer_t *x);
/* Connections opened so far (sum of CURLINFO_NUM_CONNECTS of finished
 * transfers). */
uint64_t ck_transport_connections_opened(ck_transport_t *t);
/* Wake waiters of a streaming xfer: used by sinks' consumers. */
pthread_mutex_t *ck_transport_lock(ck_transport_t *t);

/* ---- client internals (client.c) ------------------------------------- */

/* Configure a new easy handle for `method` `path` with TLS, auth and
 * common options. The body (if any) must outlive the transfer. */
int ck_client_prepare(ck_client_t *c, ck_xfer_t *x, const char *method, const char *path,
                      const char *content_type, const char *body, size_t body_len,
                      long timeout_ms, ck_cred_t *cred, ck_error_t *err);
ck_transport_t *ck_client_transport(ck_client_t *c);
ck_auth_t *ck_client_auth(ck_client_t *c);
long ck_client_connect_timeout_ms(const ck_client_t *c);
void ck_client_count_request(ck_client_t *c, const char *method, long code);
/* Map a finished transfer's curl result to an error. */
int ck_xfer_transport_error(const ck_xfer_t *x, const char *method, const char *path,
                            ck_error_t *err);

/* ---- watch framing (framer.c) ---------------------------------------- */

/* Splits a byte stream into lines. Each byte is examined once; a line that
 * lies whole inside one chunk is handed over without copying. */
typedef struct ck_framer {
  ck_buf_t partial;
  size_t max_line; /* 0: unbounded */
  bool overflow;
} ck_framer_t;

typedef int (*ck_line_fn)(void *ctx, const char *line, size_t len);

/* Feed a chunk; calls fn for every complete non-empty line (without the
 * newline; a trailing '\r' is removed). Returns 0, the first non-zero
 * value of fn, or CK_ETOOBIG once a line exceeds max_line. */
int ck_framer_feed(ck_framer_t *f, const char *data, size_t len, ck_line_fn fn, void *ctx);
void ck_framer_free(ck_framer_t *f);

#endif

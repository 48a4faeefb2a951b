/* crdkit/error.h: error codes and the error record every call can fill.
 *
 * Every fallible function returns 0 or a negative CK_E* code, and takes an
 * optional `ck_error_t *err` (NULL allowed) that receives the details. A
 * ck_error_t is a plain value: it owns no heap memory, needs no free, and
 * can be copied with `=`. Calls that succeed leave `err` untouched.
 */
#ifndef CRDKIT_ERROR_H
#define CRDKIT_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
enum {
  CK_OK = 0,
  CK_EINVAL = -1,     /* bad argument or bad input (config, YAML, flags) */
  CK_ENOMEM = -2,     /* allocation failed */
  CK_EIO = -3,        /* a local file could not be read or written */
  CK_ECONFIG = -4,    /* kubeconfig / in-cluster configuration is unusable */
  CK_ETRANSPORT = -5, /* connection, TLS or protocol failure */
  CK_EAPI = -6,       /* the API server answered with an error Status */
  CK_ETIMEDOUT = -7,  /* a deadline passed */
  CK_EPARSE = -8,     /* a response or stream could not be decoded */
  CK_ECLOSED = -9,    /* the object was closed or is shutting down */
  CK_ETOOBIG = -10,   /* an input exceeded a configured bound */
  CK_EAUTH = -11,     /* credentials could not be obtained */
};

/* Reasons of the Kubernetes API (metav1.StatusReason), decoded from the
 * Status object or, when the body has none, from the HTTP code. */
typedef enum ck_reason {
  CK_REASON_NONE = 0,
  CK_REASON_UNKNOWN,
  CK_REASON_BAD_REQUEST,
  CK_REASON_UNAUTHORIZED,
  CK_REASON_FORBIDDEN,
  CK_REASON_NOT_FOUND,
  CK_REASON_ALREADY_EXISTS,
  CK_REASON_CONFLICT,
  CK_REASON_GONE,
  CK_REASON_INVALID,
  CK_REASON_SERVER_TIMEOUT,
  CK_REASON_TIMEOUT,
  CK_REASON_TOO_MANY_REQUESTS,
  CK_REASON_METHOD_NOT_ALLOWED,
  CK_REASON_NOT_ACCEPTABLE,
  CK_REASON_REQUEST_ENTITY_TOO_LARGE,
  CK_REASON_UNSUPPORTED_MEDIA_TYPE,
  CK_REASON_INTERNAL_ERROR,
  CK_REASON_EXPIRED,
  CK_REASON_SERVICE_UNAVAILABLE,
} ck_reason_t;

#define CK_ERROR_MAX_CAUSES 8

/* One field-level cause of an Invalid (422) error. */
typedef struct ck_error_cause {
  char type[48];     /* e.g. "FieldValueRequired" */
  char field[128];   /* e.g. "spec.mapRoles[0].rolearn" */
  char message[256];
} ck_error_cause_t;

typedef struct ck_error {
  int code;            /* the CK_E* value the call returned */
  int http_status;     /* 0 when no HTTP answer was involved */
  ck_reason_t reason;  /* CK_REASON_NONE unless the API server answered */
  char message[1024];  /* human-readable, names the file/field/object */
  int retry_after_s;   /* from Retry-After or details.retryAfterSeconds */
  int ncauses;
  ck_error_cause_t causes[CK_ERROR_MAX_CAUSES];
} ck_error_t;

/* Text of a CK_E* code ("invalid input", ...). Static storage. */
const char *ck_strerror(int code);

/* Name of a reason as the API spells it ("NotFound", ...). Static storage. */
const char *ck_reason_name(ck_reason_t reason);

/* Parse an API reason name; unknown names give CK_REASON_UNKNOWN. */
ck_reason_t ck_reason_from_name(const char *name);

/* Predicates; all accept NULL (false). */
bool ck_error_is_not_found(const ck_error_t *err);
bool ck_error_is_already_exists(const ck_error_t *err);
bool ck_error_is_conflict(const ck_error_t *err);
bool ck_error_is_gone(const ck_error_t *err);
bool ck_error_is_invalid(const ck_error_t *err);
bool ck_error_is_forbidden(const ck_error_t *err);
bool ck_error_is_unauthorized(const ck_error_t *err);
bool ck_error_is_too_many_requests(const ck_error_t *err);
bool ck_error_is_timeout(const ck_error_t *err);

/* Fill `err` (if not NULL) with code and a printf-style message; returns
 * `code` so callers can `return ck_error_set(err, CK_EINVAL, "...")`. */
int ck_error_set(ck_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix err->message with a printf-style context ("kubeconfig /x: ").
 * Returns err->code (or CK_EINVAL when err is NULL). */
int ck_error_prefix(ck_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif

#include "crdkit/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ck_strerror(int code) {
  switch (code) {
  case CK_OK: return "success";
  case CK_EINVAL: return "invalid input";
  case CK_ENOMEM: return "out of memory";
  case CK_EIO: return "file error";
  case CK_ECONFIG: return "configuration error";
  case CK_ETRANSPORT: return "transport error";
  case CK_EAPI: return "API error";
  case CK_ETIMEDOUT: return "timed out";
  case CK_EPARSE: return "cannot decode";
  case CK_ECLOSED: return "closed";
  case CK_ETOOBIG: return "too big";
  case CK_EAUTH: return "authentication error";
  default: return "unknown error";
  }
}

static const struct {
  ck_reason_t reason;
  const char *name;
} reasons[] = {
    {CK_REASON_UNKNOWN, "Unknown"},
    {CK_REASON_BAD_REQUEST, "BadRequest"},
    {CK_REASON_UNAUTHORIZED, "Unauthorized"},
    {CK_REASON_FORBIDDEN, "Forbidden"},
    {CK_REASON_NOT_FOUND, "NotFound"},
    {CK_REASON_ALREADY_EXISTS, "AlreadyExists"},
    {CK_REASON_CONFLICT, "Conflict"},
    {CK_REASON_GONE, "Gone"},
    {CK_REASON_INVALID, "Invalid"},
    {CK_REASON_SERVER_TIMEOUT, "ServerTimeout"},
    {CK_REASON_TIMEOUT, "Timeout"},
    {CK_REASON_TOO_MANY_REQUESTS, "TooManyRequests"},
    {CK_REASON_METHOD_NOT_ALLOWED, "MethodNotAllowed"},
    {CK_REASON_NOT_ACCEPTABLE, "NotAcceptable"},
    {CK_REASON_REQUEST_ENTITY_TOO_LARGE, "RequestEntityTooLarge"},
    {CK_REASON_UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"},
    {CK_REASON_INTERNAL_ERROR, "InternalError"},
    {CK_REASON_EXPIRED, "Expired"},
    {CK_REASON_SERVICE_UNAVAILABLE, "ServiceUnavailable"},
};

const char *ck_reason_name(ck_reason_t reason) {
  if (reason == CK_REASON_NONE)
    return "";
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].reason == reason)
      return reasons[i].name;
  return "Unknown";
}

ck_reason_t ck_reason_from_name(const char *name) {
  if (!name || !*name)
    return CK_REASON_UNKNOWN;
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (strcmp(reasons[i].name, name) == 0)
      return reasons[i].reason;
  return CK_REASON_UNKNOWN;
}

static bool has_reason(const ck_error_t *err, ck_reason_t r) {
  return err && err->code == CK_EAPI && err->reason == r;
}

bool ck_error_is_not_found(const ck_error_t *err) { return has_reason(err, CK_REASON_NOT_FOUND); }
bool ck_error_is_already_exists(const ck_error_t *err) {
  return has_reason(err, CK_REASON_ALREADY_EXISTS);
}
bool ck_error_is_conflict(const ck_error_t *err) { return has_reason(err, CK_REASON_CONFLICT); }
bool ck_error_is_gone(const ck_error_t *err) {
  return has_reason(err, CK_REASON_GONE) || has_reason(err, CK_REASON_EXPIRED) ||
         (err && err->code == CK_EAPI && err->http_status == 410);
}
bool ck_error_is_invalid(const ck_error_t *err) { return has_reason(err, CK_REASON_INVALID); }
bool ck_error_is_forbidden(const ck_error_t *err) { return has_reason(err, CK_REASON_FORBIDDEN); }
bool ck_error_is_unauthorized(const ck_error_t *err) {
  return has_reason(err, CK_REASON_UNAUTHORIZED);
}
bool ck_error_is_too_many_requests(const ck_error_t *err) {
  return has_reason(err, CK_REASON_TOO_MANY_REQUESTS);
}
bool ck_error_is_timeout(const ck_error_t *err) {
  return (err && err->code == CK_ETIMEDOUT) || has_reason(err, CK_REASON_TIMEOUT) ||
         has_reason(err, CK_REASON_SERVER_TIMEOUT);
}

int ck_error_set(ck_error_t *err, int code, const char *fmt, ...) {
  if (!err)
    return code;
  memset(err, 0, sizeof *err);
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return code;
}

int ck_error_prefix(ck_error_t *err, const char *fmt, ...) {
  if (!err)
    return CK_EINVAL;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  char old[sizeof err->message];
  memcpy(old, err->message, sizeof old);
  snprintf(err->message, sizeof err->message, "%s%s", prefix, old);
  return err->code;
}

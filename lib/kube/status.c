/* API Status objects decoded into ck_error_t. */
#include "kube/kube_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ck_reason_t reason_from_http(long code) {
  switch (code) {
  case 400: return CK_REASON_BAD_REQUEST;
  case 401: return CK_REASON_UNAUTHORIZED;
  case 403: return CK_REASON_FORBIDDEN;
  case 404: return CK_REASON_NOT_FOUND;
  case 405: return CK_REASON_METHOD_NOT_ALLOWED;
  case 406: return CK_REASON_NOT_ACCEPTABLE;
  case 409: return CK_REASON_CONFLICT;
  case 410: return CK_REASON_GONE;
  case 413: return CK_REASON_REQUEST_ENTITY_TOO_LARGE;
  case 415: return CK_REASON_UNSUPPORTED_MEDIA_TYPE;
  case 422: return CK_REASON_INVALID;
  case 429: return CK_REASON_TOO_MANY_REQUESTS;
  case 500: return CK_REASON_INTERNAL_ERROR;
  case 503: return CK_REASON_SERVICE_UNAVAILABLE;
  case 504: return CK_REASON_TIMEOUT;
  default: return CK_REASON_UNKNOWN;
  }
}

static void copy(char *dst, size_t n, const char *src) {
  if (!src)
    src = "";
  snprintf(dst, n, "%s", src);
}

int ck_status_from_json(long http_status, json_t *st, const char *what, ck_error_t *err) {
  if (!err)
    return CK_EAPI;
  memset(err, 0, sizeof *err);
  err->code = CK_EAPI;
  json_t *code = json_object_get(st, "code");
  if (json_is_integer(code) && json_integer_value(code) > 0 && json_integer_value(code) < 1000)
    http_status = (long)json_integer_value(code);
  err->http_status = (int)http_status;
  const char *reason = json_string_value(json_object_get(st, "reason"));
  /* As client-go: a reason this library does not know (none, "Unknown",
   * or one newer than it) leaves the HTTP code to decide. */
  err->reason = ck_reason_from_name(reason);
  if (err->reason == CK_REASON_UNKNOWN)
    err->reason = reason_from_http(http_status);
  const char *msg = json_string_value(json_object_get(st, "message"));
  if (msg && *msg)
    snprintf(err->message, sizeof err->message, "%s", msg);
  else
    snprintf(err->message, sizeof err->message, "%s: HTTP %ld %s", what ? what : "request",
             http_status, ck_reason_name(err->reason));
  json_t *details = json_object_get(st, "details");
  json_t *ra = json_object_get(details, "retryAfterSeconds");
  if (json_is_integer(ra) && json_integer_value(ra) > 0 && json_integer_value(ra) < 86400)
    err->retry_after_s = (int)json_integer_value(ra);
  json_t *causes = json_object_get(details, "causes");
  size_t i;
  json_t *c;
  json_array_foreach(causes, i, c) {
    if (err->ncauses >= CK_ERROR_MAX_CAUSES)
      break;
    ck_error_cause_t *dst = &err->causes[err->ncauses++];
    copy(dst->type, sizeof dst->type, json_string_value(json_object_get(c, "reason")));
    copy(dst->field, sizeof dst->field, json_string_value(json_object_get(c, "field")));
    copy(dst->message, sizeof dst->message, json_string_value(json_object_get(c, "message")));
  }
  return CK_EAPI;
}

int ck_status_decode(long http_status, const char *body, size_t len, const char *retry_after,
                     const char *what, ck_error_t *err) {
  json_t *st = NULL;
  if (body && len)
    st = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
  const char *kind = json_string_value(json_object_get(st, "kind"));
  if (!st || !kind || strcmp(kind, "Status") != 0) {
    json_decref(st);
    st = NULL;
  }
  ck_status_from_json(http_status, st, what, err);
  if (err && !st && body && len) {
    /* Not a Status (a proxy's HTML page, plain text): quote the start. */
    size_t n = strlen(err->message);
    snprintf(err->message + n, sizeof err->message - n, ": %.*s", (int)(len < 200 ? len : 200),
             body);
    for (char *p = err->message + n; *p; p++)
      if (*p == '\n' || *p == '\r')
        *p = ' ';
  }
  json_decref(st);
  if (err && retry_after && *retry_after) {
    char *end;
    long s = strtol(retry_after, &end, 10);
    if (end != retry_after && s >= 0 && s < 86400)
      err->retry_after_s = (int)s;
  }
  return CK_EAPI;
}

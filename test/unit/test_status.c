/* Unit tests of API Status decoding (lib/kube/status.c). */
#include "cktest.h"

#include "kube/kube_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_HAS(msg, sub)                                                                       \
  cr_assert(strstr((msg), (sub)), "want \"%s\" in \"%s\"", (sub), (msg))

static ck_error_t decode(long http, const char *body, const char *retry_after) {
  ck_error_t err;
  memset(&err, 0x5a, sizeof err); /* stale content must not survive */
  int rc = ck_status_decode(http, body, body ? strlen(body) : 0, retry_after, "GET /api/v1/x",
                            &err);
  cr_assert_eq(rc, CK_EAPI);
  cr_assert_eq(err.code, CK_EAPI);
  cr_assert_lt(strlen(err.message), sizeof err.message);
  return err;
}

/* The predicates that are true for `e`, as a bit set. */
enum {
  P_NOT_FOUND = 1 << 0,
  P_ALREADY_EXISTS = 1 << 1,
  P_CONFLICT = 1 << 2,
  P_GONE = 1 << 3,
  P_INVALID = 1 << 4,
  P_FORBIDDEN = 1 << 5,
  P_UNAUTHORIZED = 1 << 6,
  P_TOO_MANY = 1 << 7,
  P_TIMEOUT = 1 << 8,
};

static unsigned predicates(const ck_error_t *e) {
  return (ck_error_is_not_found(e) ? P_NOT_FOUND : 0u) |
         (ck_error_is_already_exists(e) ? P_ALREADY_EXISTS : 0u) |
         (ck_error_is_conflict(e) ? P_CONFLICT : 0u) | (ck_error_is_gone(e) ? P_GONE : 0u) |
         (ck_error_is_invalid(e) ? P_INVALID : 0u) |
         (ck_error_is_forbidden(e) ? P_FORBIDDEN : 0u) |
         (ck_error_is_unauthorized(e) ? P_UNAUTHORIZED : 0u) |
         (ck_error_is_too_many_requests(e) ? P_TOO_MANY : 0u) |
         (ck_error_is_timeout(e) ? P_TIMEOUT : 0u);
}

CK_TEST(status, not_found) {
  ck_error_t e = decode(404,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                        "\"status\":\"Failure\",\"message\":\"configmaps \\\"x\\\" not found\","
                        "\"reason\":\"NotFound\",\"details\":{\"name\":\"x\",\"kind\":"
                        "\"configmaps\"},\"code\":404}",
                        NULL);
  cr_assert_eq(e.http_status, 404);
  cr_assert_eq(e.reason, CK_REASON_NOT_FOUND);
  cr_assert_str_eq(e.message, "configmaps \"x\" not found");
  cr_assert_eq(e.ncauses, 0);
  cr_assert_eq(e.retry_after_s, 0);
  cr_assert_eq(predicates(&e), P_NOT_FOUND);
}

CK_TEST(status, already_exists) {
  ck_error_t e = decode(409,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                        "\"message\":\"configmaps \\\"x\\\" already exists\","
                        "\"reason\":\"AlreadyExists\",\"code\":409}",
                        NULL);
  cr_assert_eq(e.http_status, 409);
  cr_assert_eq(e.reason, CK_REASON_ALREADY_EXISTS);
  ASSERT_HAS(e.message, "already exists");
  cr_assert_eq(predicates(&e), P_ALREADY_EXISTS);
}

CK_TEST(status, conflict) {
  ck_error_t e = decode(409,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                        "\"message\":\"Operation cannot be fulfilled on configmaps \\\"x\\\": the "
                        "object has been modified; please apply your changes to the latest "
                        "version and try again\",\"reason\":\"Conflict\",\"code\":409}",
                        NULL);
  cr_assert_eq(e.reason, CK_REASON_CONFLICT);
  ASSERT_HAS(e.message, "has been modified");
  cr_assert_eq(predicates(&e), P_CONFLICT);
}

CK_TEST(status, invalid_with_causes) {
  ck_error_t e = decode(
      422,
      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
      "\"message\":\"ConfigMap \\\"BAD\\\" is invalid: metadata.name: Invalid value\","
      "\"reason\":\"Invalid\",\"details\":{\"name\":\"BAD\",\"kind\":\"ConfigMap\","
      "\"causes\":[{\"reason\":\"FieldValueInvalid\",\"message\":\"Invalid value: \\\"BAD\\\"\","
      "\"field\":\"metadata.name\"},{\"reason\":\"FieldValueRequired\",\"message\":\"Required "
      "value\",\"field\":\"spec.mapRoles[0].rolearn\"},{\"message\":\"no reason or field\"}]},"
      "\"code\":422}",
      NULL);
  cr_assert_eq(e.http_status, 422);
  cr_assert_eq(e.reason, CK_REASON_INVALID);
  cr_assert_eq(predicates(&e), P_INVALID);
  cr_assert_eq(e.ncauses, 3);
  cr_assert_str_eq(e.causes[0].type, "FieldValueInvalid");
  cr_assert_str_eq(e.causes[0].field, "metadata.name");
  cr_assert_str_eq(e.causes[0].message, "Invalid value: \"BAD\"");
  cr_assert_str_eq(e.causes[1].type, "FieldValueRequired");
  cr_assert_str_eq(e.causes[1].field, "spec.mapRoles[0].rolearn");
  cr_assert_str_eq(e.causes[1].message, "Required value");
  cr_assert_str_eq(e.causes[2].type, "");
  cr_assert_str_eq(e.causes[2].field, "");
  cr_assert_str_eq(e.causes[2].message, "no reason or field");
}

CK_TEST(status, more_causes_than_fit) {
  char body[8192];
  int n = snprintf(body, sizeof body,
                   "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"many\","
                   "\"reason\":\"Invalid\",\"code\":422,\"details\":{\"causes\":[");
  for (int i = 0; i < CK_ERROR_MAX_CAUSES + 5; i++)
    n += snprintf(body + n, sizeof body - (size_t)n,
                  "%s{\"reason\":\"FieldValueInvalid\",\"field\":\"spec.f%d\",\"message\":\"m%d\"}",
                  i ? "," : "", i, i);
  snprintf(body + n, sizeof body - (size_t)n, "]}}");
  ck_error_t e = decode(422, body, NULL);
  cr_assert_eq(e.ncauses, CK_ERROR_MAX_CAUSES);
  for (int i = 0; i < CK_ERROR_MAX_CAUSES; i++) {
    char want[32];
    snprintf(want, sizeof want, "spec.f%d", i);
    cr_assert_str_eq(e.causes[i].field, want, "the first causes are kept in order");
  }
  cr_assert(ck_error_is_invalid(&e));
}

CK_TEST(status, long_cause_strings_are_cut) {
  char body[4096];
  char longfield[600];
  memset(longfield, 'f', sizeof longfield - 1);
  longfield[sizeof longfield - 1] = '\0';
  snprintf(body, sizeof body,
           "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"code\":422,\"details\":{\"causes\":"
           "[{\"reason\":\"%s\",\"field\":\"%s\",\"message\":\"%s\"}]}}",
           longfield, longfield, longfield);
  ck_error_t e = decode(422, body, NULL);
  cr_assert_eq(e.ncauses, 1);
  cr_assert_eq(strlen(e.causes[0].type), sizeof e.causes[0].type - 1);
  cr_assert_eq(strlen(e.causes[0].field), sizeof e.causes[0].field - 1);
  cr_assert_eq(strlen(e.causes[0].message), sizeof e.causes[0].message - 1);
}

CK_TEST(status, gone_and_expired) {
  ck_error_t e = decode(410,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                        "\"message\":\"too old resource version: 1 (200)\",\"reason\":\"Gone\","
                        "\"code\":410}",
                        NULL);
  cr_assert_eq(e.reason, CK_REASON_GONE);
  cr_assert_eq(predicates(&e), P_GONE);
  ASSERT_HAS(e.message, "too old resource version");

  e = decode(410,
             "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"The "
             "provided continue parameter is too old to display a consistent list result.\","
             "\"reason\":\"Expired\",\"code\":410}",
             NULL);
  cr_assert_eq(e.reason, CK_REASON_EXPIRED);
  cr_assert_eq(predicates(&e), P_GONE);
}

CK_TEST(status, forbidden) {
  ck_error_t e = decode(403,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                        "\"message\":\"configmaps is forbidden: User \\\"u\\\" cannot list "
                        "resource \\\"configmaps\\\"\",\"reason\":\"Forbidden\",\"details\":"
                        "{\"kind\":\"configmaps\"},\"code\":403}",
                        NULL);
  cr_assert_eq(e.http_status, 403);
  cr_assert_eq(e.reason, CK_REASON_FORBIDDEN);
  cr_assert_eq(predicates(&e), P_FORBIDDEN);
  ASSERT_HAS(e.message, "cannot list");
}

CK_TEST(status, unauthorized) {
  ck_error_t e = decode(401,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                        "\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\","
                        "\"code\":401}\n",
                        NULL);
  cr_assert_eq(e.http_status, 401);
  cr_assert_eq(e.reason, CK_REASON_UNAUTHORIZED);
  cr_assert_eq(predicates(&e), P_UNAUTHORIZED);
  cr_assert_str_eq(e.message, "Unauthorized");
}

static const char *const too_many_body =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Too many "
    "requests, please try again later.\",\"reason\":\"TooManyRequests\",\"details\":"
    "{\"retryAfterSeconds\":7},\"code\":429}";

CK_TEST(status, too_many_requests_retry_after_seconds) {
  ck_error_t e = decode(429, too_many_body, NULL);
  cr_assert_eq(e.http_status, 429);
  cr_assert_eq(e.reason, CK_REASON_TOO_MANY_REQUESTS);
  cr_assert_eq(predicates(&e), P_TOO_MANY);
  cr_assert_eq(e.retry_after_s, 7);
}

CK_TEST(status, too_many_requests_retry_after_header) {
  /* The header is what the server's priority-and-fairness sets. */
  ck_error_t e = decode(429, too_many_body, "3");
  cr_assert_eq(e.retry_after_s, 3, "the header wins");
  e = decode(429, "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"code\":429}", "12");
  cr_assert_eq(e.retry_after_s, 12);
  cr_assert(ck_error_is_too_many_requests(&e));
  /* Without a body at all. */
  e = decode(429, NULL, "5");
  cr_assert_eq(e.retry_after_s, 5);
  cr_assert(ck_error_is_too_many_requests(&e));
  /* Unusable header values are ignored. */
  e = decode(429, too_many_body, "Wed, 21 Oct 2015 07:28:00 GMT");
  cr_assert_eq(e.retry_after_s, 7);
  e = decode(429, NULL, "-4");
  cr_assert_eq(e.retry_after_s, 0);
  e = decode(429, NULL, "999999999");
  cr_assert_eq(e.retry_after_s, 0);
  e = decode(429, NULL, "");
  cr_assert_eq(e.retry_after_s, 0);
  /* Absurd retryAfterSeconds too. */
  e = decode(429,
             "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"code\":429,\"details\":"
             "{\"retryAfterSeconds\":-1}}",
             NULL);
  cr_assert_eq(e.retry_after_s, 0);
}

CK_TEST(status, timeouts) {
  ck_error_t e = decode(504,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                        "\"message\":\"Timeout: request did not complete within requested "
                        "timeout\",\"reason\":\"Timeout\",\"details\":{},\"code\":504}",
                        NULL);
  cr_assert_eq(e.reason, CK_REASON_TIMEOUT);
  cr_assert_eq(predicates(&e), P_TIMEOUT);
  ASSERT_HAS(e.message, "did not complete");

  e = decode(500,
             "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"the server was unable to "
             "return a response in the time allotted\",\"reason\":\"ServerTimeout\","
             "\"details\":{\"retryAfterSeconds\":2},\"code\":500}",
             NULL);
  cr_assert_eq(e.reason, CK_REASON_SERVER_TIMEOUT);
  cr_assert_eq(predicates(&e), P_TIMEOUT);
  cr_assert_eq(e.retry_after_s, 2);

  e = decode(504, "", NULL);
  cr_assert_eq(e.reason, CK_REASON_TIMEOUT);
  cr_assert(ck_error_is_timeout(&e));
}

CK_TEST(status, html_body) {
  const char *html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\n<body>\n"
                     "<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>\n";
  ck_error_t e = decode(503, html, NULL);
  cr_assert_eq(e.http_status, 503);
  cr_assert_eq(e.reason, CK_REASON_SERVICE_UNAVAILABLE);
  ASSERT_HAS(e.message, "GET /api/v1/x");
  ASSERT_HAS(e.message, "503");
  ASSERT_HAS(e.message, "<html>  <head><title>502 Bad Gateway</title></head> <body>");
  cr_assert_null(strchr(e.message, '\n'), "%s", e.message);
  cr_assert_null(strchr(e.message, '\r'), "%s", e.message);
  cr_assert_eq(predicates(&e), 0u);

  e = decode(404, "404 page not found\n", NULL);
  cr_assert_eq(e.reason, CK_REASON_NOT_FOUND);
  cr_assert(ck_error_is_not_found(&e));
  ASSERT_HAS(e.message, "404 page not found");
  cr_assert_null(strchr(e.message, '\n'));

  /* Only the start of a long body is quoted. */
  char big[4000];
  memset(big, 'a', sizeof big - 1);
  memcpy(big + 300, "TAIL", 4);
  big[sizeof big - 1] = '\0';
  e = decode(500, big, NULL);
  cr_assert_eq(e.reason, CK_REASON_INTERNAL_ERROR);
  cr_assert_null(strstr(e.message, "TAIL"), "%s", e.message);
  cr_assert(strstr(e.message, "aaaaaaaaaa"));
  cr_assert_lt(strlen(e.message), 400);
}

CK_TEST(status, json_that_is_not_a_status) {
  ck_error_t e = decode(409, "{\"error\":\"conflict\"}", NULL);
  cr_assert_eq(e.reason, CK_REASON_CONFLICT, "from the HTTP code");
  cr_assert(ck_error_is_conflict(&e));
  ASSERT_HAS(e.message, "{\"error\":\"conflict\"}");
  /* "kind" must be Status. */
  e = decode(404, "{\"kind\":\"ConfigMap\",\"reason\":\"Conflict\",\"message\":\"m\"}", NULL);
  cr_assert_eq(e.reason, CK_REASON_NOT_FOUND);
}

CK_TEST(status, empty_body) {
  ck_error_t e = decode(500, "", NULL);
  cr_assert_eq(e.http_status, 500);
  cr_assert_eq(e.reason, CK_REASON_INTERNAL_ERROR);
  cr_assert_str_eq(e.message, "GET /api/v1/x: HTTP 500 InternalError");
  e = decode(403, NULL, NULL);
  cr_assert_eq(e.reason, CK_REASON_FORBIDDEN);
  cr_assert(ck_error_is_forbidden(&e));
  cr_assert_str_eq(e.message, "GET /api/v1/x: HTTP 403 Forbidden");
  e = decode(418, NULL, NULL);
  cr_assert_eq(e.reason, CK_REASON_UNKNOWN);
  ASSERT_HAS(e.message, "HTTP 418");
  cr_assert_eq(predicates(&e), 0u);
}

CK_TEST(status, status_without_reason_or_message) {
  /* The reason falls back to the code, the message to the request. */
  ck_error_t e = decode(404, "{\"kind\":\"Status\",\"status\":\"Failure\",\"code\":404}", NULL);
  cr_assert_eq(e.reason, CK_REASON_NOT_FOUND);
  cr_assert_str_eq(e.message, "GET /api/v1/x: HTTP 404 NotFound");
  /* The body's code wins over the transport's. */
  e = decode(500, "{\"kind\":\"Status\",\"code\":409,\"reason\":\"Conflict\",\"message\":\"c\"}",
             NULL);
  cr_assert_eq(e.http_status, 409);
  cr_assert(ck_error_is_conflict(&e));
}

CK_TEST(status, unknown_reason_falls_back_to_the_code) {
  /* As client-go does: a reason it does not know (a newer server, an
   * aggregated API) leaves the HTTP code to decide. */
  ck_error_t e = decode(404,
                        "{\"kind\":\"Status\",\"reason\":\"SomethingNew\",\"message\":\"gone "
                        "fishing\",\"code\":404}",
                        NULL);
  cr_assert(ck_error_is_not_found(&e));
  cr_assert_str_eq(e.message, "gone fishing");
  e = decode(409, "{\"kind\":\"Status\",\"reason\":\"Unknown\",\"code\":409}", NULL);
  cr_assert(ck_error_is_conflict(&e));
  e = decode(418, "{\"kind\":\"Status\",\"reason\":\"Teapot\",\"code\":418}", NULL);
  cr_assert_eq(e.reason, CK_REASON_UNKNOWN);
}

CK_TEST(status, from_json_and_null_err) {
  json_t *st = cktest_json("{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"too old "
                           "resource version\",\"reason\":\"Expired\",\"code\":410}");
  ck_error_t e;
  cr_assert_eq(ck_status_from_json(500, st, "watch", &e), CK_EAPI);
  cr_assert_eq(e.http_status, 410);
  cr_assert(ck_error_is_gone(&e));
  cr_assert_eq(ck_status_from_json(500, st, "watch", NULL), CK_EAPI);
  json_decref(st);
  cr_assert_eq(ck_status_from_json(500, NULL, "watch", &e), CK_EAPI);
  cr_assert_eq(e.reason, CK_REASON_INTERNAL_ERROR);
  cr_assert_str_eq(e.message, "watch: HTTP 500 InternalError");
  cr_assert_eq(ck_status_decode(404, "x", 1, "1", NULL, NULL), CK_EAPI);
  cr_assert_eq(ck_status_decode(404, NULL, 0, NULL, NULL, &e), CK_EAPI);
  ASSERT_HAS(e.message, "HTTP 404");
}

CK_TEST(status, body_is_bounded_by_len) {
  const char *body = "{\"kind\":\"Status\",\"reason\":\"Gone\",\"code\":410}TRAILING";
  ck_error_t e;
  cr_assert_eq(ck_status_decode(410, body, strlen(body) - 8, NULL, "x", &e), CK_EAPI);
  cr_assert_eq(e.reason, CK_REASON_GONE);
  cr_assert_null(strstr(e.message, "TRAILING"));
}

CK_TEST(status, predicates_need_an_api_error) {
  ck_error_t e = decode(404, "", NULL);
  cr_assert(ck_error_is_not_found(&e));
  e.code = CK_ETRANSPORT;
  cr_assert_not(ck_error_is_not_found(&e));
  cr_assert_eq(predicates(&e), 0u);
  e = (ck_error_t){.code = CK_ETIMEDOUT};
  cr_assert_eq(predicates(&e), P_TIMEOUT);
  cr_assert_eq(predicates(NULL), 0u);
}

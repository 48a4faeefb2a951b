/* Unit tests of lib/util: buffers, base64, RFC 3339, errors, logging, JSON in and out. */
#include "cktest.h"

#include "crdkit/error.h"
#include "crdkit/log.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/jsonin.h"
#include "util/jsonout.h"
#include "util/timeutil.h"

#include <stdlib.h>
#include <string.h>

/* ---- ck_buf ------------------------------------------------------------ */

CK_TEST(buf, zeroed_is_empty_and_steal_gives_empty_string) {
  ck_buf_t b = {0};
  cr_assert_eq(b.len, 0);
  char *s = ck_buf_steal(&b);
  cr_assert_not_null(s);
  cr_assert_str_eq(s, "");
  cr_assert_null(b.data);
  free(s);
}

CK_TEST(buf, append_puts_putc_grow_and_stay_terminated) {
  ck_buf_t b = {0};
  ck_buf_append(&b, "ab", 2);
  ck_buf_puts(&b, "cd");
  ck_buf_putc(&b, 'e');
  ck_buf_append(&b, "xyz", 0);
  cr_assert_eq(b.len, 5);
  cr_assert_str_eq(b.data, "abcde");
  /* Grow well past the initial capacity. */
  for (int i = 0; i < 1000; i++)
    ck_buf_puts(&b, "0123456789");
  cr_assert_eq(b.len, 5 + 10000);
  cr_assert_eq(strlen(b.data), b.len);
  cr_assert(b.cap > b.len);
  cr_assert_eq(memcmp(b.data + 5 + 9990, "0123456789", 10), 0);
  cr_assert_not(b.oom);
  ck_buf_reset(&b);
  cr_assert_eq(b.len, 0);
  cr_assert_str_eq(b.data, "");
  ck_buf_puts(&b, "again");
  cr_assert_str_eq(b.data, "again");
  ck_buf_free(&b);
  cr_assert_null(b.data);
  cr_assert_eq(b.len, 0);
}

CK_TEST(buf, append_binary_with_nul) {
  ck_buf_t b = {0};
  ck_buf_append(&b, "a\0b", 3);
  cr_assert_eq(b.len, 3);
  cr_assert_eq(memcmp(b.data, "a\0b", 4), 0);
  ck_buf_free(&b);
}

CK_TEST(buf, printf_appends) {
  ck_buf_t b = {0};
  ck_buf_puts(&b, "n=");
  ck_buf_printf(&b, "%d,%s,%05.1f", 42, "x", 3.14159);
  cr_assert_str_eq(b.data, "n=42,x,003.1");
  cr_assert_eq(b.len, strlen("n=42,x,003.1"));
  /* A long formatted string (bigger than any initial capacity). */
  char big[3000];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ck_buf_printf(&b, "[%s]", big);
  cr_assert_eq(b.len, strlen("n=42,x,003.1") + 2 + 2999);
  cr_assert_eq(b.data[b.len - 1], ']');
  cr_assert_eq(b.data[b.len], '\0');
  ck_buf_free(&b);
}

CK_TEST(buf, reserve_huge_sets_oom_and_ignores_appends) {
  ck_buf_t b = {0};
  ck_buf_puts(&b, "x");
  cr_assert_not(ck_buf_reserve(&b, SIZE_MAX));
  cr_assert(b.oom);
  ck_buf_puts(&b, "more");
  cr_assert_eq(b.len, 1);
  ck_buf_free(&b);
}

CK_TEST(buf, json_string_escapes_quotes_backslashes_and_controls) {
  ck_buf_t b = {0};
  ck_buf_json_string(&b, "a\"b\\c\nd\re\tf\x01g\x1fh\x7f\xc3\xa9");
  cr_assert_str_eq(b.data, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh\x7f\xc3\xa9\"");
  /* And it really is a JSON string with the original value. */
  json_error_t je;
  json_t *j = json_loads(b.data, JSON_DECODE_ANY, &je);
  cr_assert_not_null(j, "not JSON: %s: %s", je.text, b.data);
  cr_assert_str_eq(json_string_value(j), "a\"b\\c\nd\re\tf\x01g\x1fh\x7f\xc3\xa9");
  json_decref(j);
  ck_buf_reset(&b);
  ck_buf_json_string(&b, "");
  cr_assert_str_eq(b.data, "\"\"");
  ck_buf_free(&b);
}

CK_TEST(buf, urlencode_keeps_unreserved_and_encodes_the_rest) {
  ck_buf_t b = {0};
  ck_buf_urlencode(&b, "AZaz09-_.~");
  cr_assert_str_eq(b.data, "AZaz09-_.~");
  ck_buf_reset(&b);
  ck_buf_urlencode(&b, "app in (a,b)&x=1/2+3%#?\xc3\xa9");
  cr_assert_str_eq(b.data, "app%20in%20%28a%2Cb%29%26x%3D1%2F2%2B3%25%23%3F%C3%A9");
  ck_buf_reset(&b);
  ck_buf_urlencode(&b, "");
  cr_assert_eq(b.len, 0);
  ck_buf_free(&b);
}

/* ---- base64 ------------------------------------------------------------ */

static void b64_ok(const char *in, const char *want, size_t want_len) {
  unsigned char *out = NULL;
  size_t len = 99;
  int rc = ck_base64_decode(in, &out, &len);
  cr_assert_eq(rc, 0, "decode \"%s\": %d", in, rc);
  cr_assert_eq(len, want_len, "decode \"%s\": length %zu, want %zu", in, len, want_len);
  cr_assert_eq(memcmp(out, want, want_len), 0, "decode \"%s\"", in);
  cr_assert_eq(out[len], '\0', "decode \"%s\": not NUL-terminated", in);
  free(out);
}

static void b64_bad(const char *in) {
  unsigned char *out = NULL;
  size_t len = 0;
  int rc = ck_base64_decode(in, &out, &len);
  cr_assert_eq(rc, CK_EINVAL, "decode \"%s\" should fail, got %d", in, rc);
  cr_assert_null(out, "decode \"%s\" set out on failure", in);
}

CK_TEST(base64, decode_valid) {
  b64_ok("", "", 0);
  b64_ok("Zg==", "f", 1);
  b64_ok("Zm8=", "fo", 2);
  b64_ok("Zm9v", "foo", 3);
  b64_ok("Zm9vYg==", "foob", 4);
  b64_ok("Zm9vYmE=", "fooba", 5);
  b64_ok("Zm9vYmFy", "foobar", 6);
  b64_ok("+/+/", "\xfb\xff\xbf", 3);
  b64_ok("AAEC", "\x00\x01\x02", 3);
}

CK_TEST(base64, decode_padding_optional) {
  b64_ok("Zg", "f", 1);
  b64_ok("Zm8", "fo", 2);
  b64_ok("Zm9vYg", "foob", 4);
}

CK_TEST(base64, decode_ignores_whitespace) {
  b64_ok("Zm9v\nYmFy\n", "foobar", 6);
  b64_ok("  Zm9v\r\n\tYmE=\n", "fooba", 5);
  b64_ok("Z m 8 =", "fo", 2);
  b64_ok("\n", "", 0);
}

CK_TEST(base64, decode_rejects_invalid_characters) {
  b64_bad("Zm9v!");
  b64_bad("Zm9v-_");  /* URL alphabet is not the standard one */
  b64_bad("Zm\x80v");
  b64_bad("Zm9v\vYmFy"); /* vertical tab is not skipped */
  b64_bad("Zm.v");
}

CK_TEST(base64, decode_rejects_bad_padding_and_length) {
  b64_bad("Z");        /* one char cannot encode a byte */
  b64_bad("Zm9vY");    /* 5 chars: 4n+1 */
  b64_bad("Zg=");      /* padding that does not complete a quantum */
  b64_bad("Zg===");    /* too much padding */
  b64_bad("Zm9v=");    /* padding after a complete quantum */
  b64_bad("Zg==Zg=="); /* data after padding */
  b64_bad("Z===");
  b64_bad("=");
}

CK_TEST(base64, encode_and_round_trip) {
  static const struct {
    const char *in;
    const char *out;
  } cases[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
               {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *e = ck_base64_encode((const unsigned char *)cases[i].in, strlen(cases[i].in));
    cr_assert_not_null(e);
    cr_assert_str_eq(e, cases[i].out);
    free(e);
  }
  unsigned char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (unsigned char)i;
  for (size_t n = 0; n <= sizeof all; n += 37) {
    char *e = ck_base64_encode(all, n);
    cr_assert_not_null(e);
    cr_assert_eq(strlen(e), (n + 2) / 3 * 4);
    unsigned char *d = NULL;
    size_t dlen = 0;
    cr_assert_eq(ck_base64_decode(e, &d, &dlen), 0);
    cr_assert_eq(dlen, n);
    cr_assert_eq(memcmp(d, all, n), 0);
    free(d);
    free(e);
  }
}

/* ---- RFC 3339 ---------------------------------------------------------- */

static int64_t rfc_ok(const char *s) {
  int64_t t = -1;
  int rc = ck_rfc3339_parse(s, &t);
  cr_assert_eq(rc, 0, "parse \"%s\": %d", s, rc);
  return t;
}

CK_TEST(rfc3339, utc_z) {
  cr_assert_eq(rfc_ok("1970-01-01T00:00:00Z"), 0);
  cr_assert_eq(rfc_ok("2026-01-02T03:04:05Z"), 1767323045);
  cr_assert_eq(rfc_ok("2026-01-02t03:04:05z"), 1767323045);
  cr_assert_eq(rfc_ok("2026-01-02 03:04:05Z"), 1767323045);
  cr_assert_eq(rfc_ok("2000-02-29T12:00:00Z"), 951825600);
}

CK_TEST(rfc3339, fractional_seconds_are_dropped) {
  cr_assert_eq(rfc_ok("2026-01-02T03:04:05.999999999Z"), 1767323045);
  cr_assert_eq(rfc_ok("2026-01-02T03:04:05.1Z"), 1767323045);
  cr_assert_eq(rfc_ok("2026-01-02T03:04:05.5+01:00"), 1767323045 - 3600);
}

CK_TEST(rfc3339, numeric_offsets) {
  cr_assert_eq(rfc_ok("2026-01-02T03:04:05+00:00"), 1767323045);
  cr_assert_eq(rfc_ok("2026-01-02T03:04:05-00:00"), 1767323045);
  cr_assert_eq(rfc_ok("2026-01-02T05:04:05+02:00"), 1767323045);
  cr_assert_eq(rfc_ok("2026-01-01T22:34:05-04:30"), 1767323045);
  cr_assert_eq(rfc_ok("2026-01-02T08:49:05+05:45"), 1767323045);
}

CK_TEST(rfc3339, format_round_trip) {
  char out[32];
  ck_rfc3339_format(1767323045, out);
  cr_assert_str_eq(out, "2026-01-02T03:04:05Z");
  cr_assert_eq(rfc_ok(out), 1767323045);
}

CK_TEST(rfc3339, invalid) {
  static const char *const bad[] = {
      "",
      "2026",
      "2026-01-02",
      "2026-01-02T03:04:05",        /* no zone */
      "2026-01-02T03:04Z",          /* no seconds */
      "2026-01-02T03:04:05.Z",      /* empty fraction */
      "2026-01-02T03:04:05+0100",   /* offset without colon */
      "2026-01-02T03:04:05+01",     /* short offset */
      "2026-01-02T03:04:05ZZ",      /* trailing garbage */
      "2026-01-02T03:04:05Z ",      /* trailing space */
      "2026-13-02T03:04:05Z",       /* month 13 */
      "2026-00-02T03:04:05Z",       /* month 0 */
      "2026-01-32T03:04:05Z",       /* day 32 */
      "2026-01-00T03:04:05Z",       /* day 0 */
      "2026-01-02T24:04:05Z",       /* hour 24 */
      "2026-01-02T03:60:05Z",       /* minute 60 */
      "2026-01-02T03:04:61Z",       /* second 61 */
      "2026/01/02T03:04:05Z",
      "26-01-02T03:04:05Z",
      "2026-1-02T03:04:05Z",
      "2026-01-02X03:04:05Z",
      "Fri, 02 Jan 2026 03:04:05 GMT",
      NULL,
  };
  for (size_t i = 0; bad[i]; i++) {
    int64_t t = 12345;
    cr_assert_eq(ck_rfc3339_parse(bad[i], &t), CK_EINVAL, "\"%s\" should be rejected", bad[i]);
    cr_assert_eq(t, 12345, "\"%s\": out changed on failure", bad[i]);
  }
  int64_t t;
  cr_assert_eq(ck_rfc3339_parse(NULL, &t), CK_EINVAL);
}

/* ---- errors ------------------------------------------------------------ */

CK_TEST(error, strerror_names_every_code) {
  cr_assert_str_eq(ck_strerror(CK_OK), "success");
  cr_assert_str_eq(ck_strerror(CK_EINVAL), "invalid input");
  cr_assert_str_eq(ck_strerror(CK_ETOOBIG), "too big");
  cr_assert_str_eq(ck_strerror(CK_EAUTH), "authentication error");
  for (int c = CK_EAUTH; c <= CK_OK; c++)
    cr_assert_str_neq(ck_strerror(c), "unknown error", "code %d", c);
  cr_assert_str_eq(ck_strerror(-999), "unknown error");
}

CK_TEST(error, reason_names_round_trip) {
  for (int r = CK_REASON_UNKNOWN; r <= CK_REASON_SERVICE_UNAVAILABLE; r++) {
    const char *name = ck_reason_name((ck_reason_t)r);
    cr_assert(name && *name, "reason %d has no name", r);
    cr_assert_eq(ck_reason_from_name(name), (ck_reason_t)r, "%s", name);
  }
  cr_assert_str_eq(ck_reason_name(CK_REASON_NONE), "");
  cr_assert_str_eq(ck_reason_name(CK_REASON_NOT_FOUND), "NotFound");
  cr_assert_eq(ck_reason_from_name("AlreadyExists"), CK_REASON_ALREADY_EXISTS);
  cr_assert_eq(ck_reason_from_name("TooManyRequests"), CK_REASON_TOO_MANY_REQUESTS);
  cr_assert_eq(ck_reason_from_name("notfound"), CK_REASON_UNKNOWN); /* case matters */
  cr_assert_eq(ck_reason_from_name("SomethingNew"), CK_REASON_UNKNOWN);
  cr_assert_eq(ck_reason_from_name(""), CK_REASON_UNKNOWN);
  cr_assert_eq(ck_reason_from_name(NULL), CK_REASON_UNKNOWN);
}

static ck_error_t api_err(ck_reason_t r, int http) {
  ck_error_t e = {.code = CK_EAPI, .reason = r, .http_status = http};
  return e;
}

CK_TEST(error, predicates) {
  ck_error_t e;
  e = api_err(CK_REASON_NOT_FOUND, 404);
  cr_assert(ck_error_is_not_found(&e));
  cr_assert_not(ck_error_is_already_exists(&e));
  cr_assert_not(ck_error_is_gone(&e));
  e = api_err(CK_REASON_ALREADY_EXISTS, 409);
  cr_assert(ck_error_is_already_exists(&e));
  cr_assert_not(ck_error_is_conflict(&e));
  e = api_err(CK_REASON_CONFLICT, 409);
  cr_assert(ck_error_is_conflict(&e));
  cr_assert_not(ck_error_is_already_exists(&e));
  e = api_err(CK_REASON_GONE, 410);
  cr_assert(ck_error_is_gone(&e));
  e = api_err(CK_REASON_EXPIRED, 410);
  cr_assert(ck_error_is_gone(&e));
  e = api_err(CK_REASON_UNKNOWN, 410);
  cr_assert(ck_error_is_gone(&e), "HTTP 410 alone means Gone");
  e = api_err(CK_REASON_INVALID, 422);
  cr_assert(ck_error_is_invalid(&e));
  e = api_err(CK_REASON_FORBIDDEN, 403);
  cr_assert(ck_error_is_forbidden(&e));
  cr_assert_not(ck_error_is_unauthorized(&e));
  e = api_err(CK_REASON_UNAUTHORIZED, 401);
  cr_assert(ck_error_is_unauthorized(&e));
  cr_assert_not(ck_error_is_forbidden(&e));
  e = api_err(CK_REASON_TOO_MANY_REQUESTS, 429);
  cr_assert(ck_error_is_too_many_requests(&e));
  e = api_err(CK_REASON_TIMEOUT, 504);
  cr_assert(ck_error_is_timeout(&e));
  e = api_err(CK_REASON_SERVER_TIMEOUT, 500);
  cr_assert(ck_error_is_timeout(&e));
  e = (ck_error_t){.code = CK_ETIMEDOUT};
  cr_assert(ck_error_is_timeout(&e));
  cr_assert_not(ck_error_is_not_found(&e));

  /* A reason only counts on an API error. */
  e = (ck_error_t){.code = CK_EINVAL, .reason = CK_REASON_NOT_FOUND, .http_status = 410};
  cr_assert_not(ck_error_is_not_found(&e));
  cr_assert_not(ck_error_is_gone(&e));

  cr_assert_not(ck_error_is_not_found(NULL));
  cr_assert_not(ck_error_is_already_exists(NULL));
  cr_assert_not(ck_error_is_conflict(NULL));
  cr_assert_not(ck_error_is_gone(NULL));
  cr_assert_not(ck_error_is_invalid(NULL));
  cr_assert_not(ck_error_is_forbidden(NULL));
  cr_assert_not(ck_error_is_unauthorized(NULL));
  cr_assert_not(ck_error_is_too_many_requests(NULL));
  cr_assert_not(ck_error_is_timeout(NULL));
}

CK_TEST(error, set_and_prefix) {
  ck_error_t e = {.http_status = 500, .ncauses = 3, .reason = CK_REASON_GONE};
  cr_assert_eq(ck_error_set(&e, CK_EINVAL, "bad %s %d", "thing", 7), CK_EINVAL);
  cr_assert_eq(e.code, CK_EINVAL);
  cr_assert_str_eq(e.message, "bad thing 7");
  cr_assert_eq(e.http_status, 0, "ck_error_set starts from a clean record");
  cr_assert_eq(e.ncauses, 0);
  cr_assert_eq(e.reason, CK_REASON_NONE);
  cr_assert_eq(ck_error_prefix(&e, "file %s: ", "/x"), CK_EINVAL);
  cr_assert_str_eq(e.message, "file /x: bad thing 7");
  cr_assert_eq(ck_error_set(NULL, CK_EIO, "x"), CK_EIO);
  cr_assert_eq(ck_error_prefix(NULL, "x"), CK_EINVAL);
  /* Overlong messages are cut, never overflow. */
  char big[2000];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ck_error_set(&e, CK_EIO, "%s", big);
  cr_assert_eq(strlen(e.message), sizeof e.message - 1);
  ck_error_prefix(&e, "p: ");
  cr_assert_eq(strlen(e.message), sizeof e.message - 1);
  cr_assert_eq(strncmp(e.message, "p: mmm", 6), 0);
}

/* ---- logging ----------------------------------------------------------- */

CK_TEST(log, level_parse) {
  ck_log_level_t l = CK_LOG_TRACE;
  cr_assert_eq(ck_log_level_parse("error", &l), 0);
  cr_assert_eq(l, CK_LOG_ERROR);
  cr_assert_eq(ck_log_level_parse("WARN", &l), 0);
  cr_assert_eq(l, CK_LOG_WARN);
  cr_assert_eq(ck_log_level_parse("warning", &l), 0);
  cr_assert_eq(l, CK_LOG_WARN);
  cr_assert_eq(ck_log_level_parse("Info", &l), 0);
  cr_assert_eq(l, CK_LOG_INFO);
  cr_assert_eq(ck_log_level_parse("debug", &l), 0);
  cr_assert_eq(l, CK_LOG_DEBUG);
  cr_assert_eq(ck_log_level_parse("trace", &l), 0);
  cr_assert_eq(l, CK_LOG_TRACE);
  l = CK_LOG_INFO;
  cr_assert_eq(ck_log_level_parse("verbose", &l), CK_EINVAL);
  cr_assert_eq(ck_log_level_parse("", &l), CK_EINVAL);
  cr_assert_eq(ck_log_level_parse("info ", &l), CK_EINVAL);
  cr_assert_eq(ck_log_level_parse("3", &l), CK_EINVAL);
  cr_assert_eq(ck_log_level_parse(NULL, &l), CK_EINVAL);
  cr_assert_eq(l, CK_LOG_INFO, "out untouched on failure");
}

CK_TEST(log, format_parse) {
  ck_log_format_t f = CK_LOG_FORMAT_AUTO;
  cr_assert_eq(ck_log_format_parse("json", &f), 0);
  cr_assert_eq(f, CK_LOG_FORMAT_JSON);
  cr_assert_eq(ck_log_format_parse("TEXT", &f), 0);
  cr_assert_eq(f, CK_LOG_FORMAT_TEXT);
  cr_assert_eq(ck_log_format_parse("auto", &f), 0);
  cr_assert_eq(f, CK_LOG_FORMAT_AUTO);
  f = CK_LOG_FORMAT_TEXT;
  cr_assert_eq(ck_log_format_parse("yaml", &f), CK_EINVAL);
  cr_assert_eq(ck_log_format_parse("", &f), CK_EINVAL);
  cr_assert_eq(ck_log_format_parse(NULL, &f), CK_EINVAL);
  cr_assert_eq(f, CK_LOG_FORMAT_TEXT);
}

typedef struct captured {
  int n;
  ck_log_level_t level[8];
  char line[8][8192];
} captured_t;

static void capture(void *ctx, ck_log_level_t level, const char *line) {
  captured_t *c = ctx;
  if (c->n < 8) {
    c->level[c->n] = level;
    snprintf(c->line[c->n], sizeof c->line[0], "%s", line);
  }
  c->n++;
}

CK_TEST(log, levels_filter) {
  static captured_t cap;
  memset(&cap, 0, sizeof cap);
  ck_log_set_sink(capture, &cap);
  ck_log_set_format(CK_LOG_FORMAT_JSON);
  ck_log_set_level(CK_LOG_WARN);
  cr_assert_eq(ck_log_get_level(), CK_LOG_WARN);
  cr_assert(ck_log_enabled(CK_LOG_ERROR));
  cr_assert(ck_log_enabled(CK_LOG_WARN));
  cr_assert_not(ck_log_enabled(CK_LOG_INFO));
  ck_log(CK_LOG_INFO, NULL, NULL, "hidden");
  CK_DEBUG(NULL, NULL, "hidden too");
  CK_WARN("c", NULL, "shown");
  CK_ERROR(NULL, NULL, "shown %d", 2);
  ck_log_set_sink(NULL, NULL);
  ck_log_set_level(CK_LOG_INFO);
  cr_assert_eq(cap.n, 2);
  cr_assert_eq(cap.level[0], CK_LOG_WARN);
  cr_assert_eq(cap.level[1], CK_LOG_ERROR);
  cr_assert(strstr(cap.line[0], "shown"));
  cr_assert(strstr(cap.line[1], "shown 2"));
}

CK_TEST(log, json_line_is_valid_json_with_fields) {
  static captured_t cap;
  memset(&cap, 0, sizeof cap);
  ck_log_set_sink(capture, &cap);
  ck_log_set_format(CK_LOG_FORMAT_JSON);
  ck_log_set_level(CK_LOG_DEBUG);
  ck_log(CK_LOG_INFO, "my\"ctl", "ns/na\\me", "reconciled %d objects\nin \"%s\"\t\x01", 3, "x");
  ck_log(CK_LOG_DEBUG, NULL, NULL, "bare");
  ck_log_set_sink(NULL, NULL);
  ck_log_set_level(CK_LOG_INFO);
  cr_assert_eq(cap.n, 2);
  cr_assert_null(strchr(cap.line[0], '\n'), "a JSON line has no raw newline: %s", cap.line[0]);

  json_t *j = cktest_json(cap.line[0]);
  cr_assert(json_is_object(j));
  cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
  cr_assert_str_eq(json_string_value(json_object_get(j, "controller")), "my\"ctl");
  cr_assert_str_eq(json_string_value(json_object_get(j, "object")), "ns/na\\me");
  cr_assert_str_eq(json_string_value(json_object_get(j, "msg")),
                   "reconciled 3 objects\nin \"x\"\t\x01");
  const char *ts = json_string_value(json_object_get(j, "ts"));
  cr_assert_not_null(ts);
  /* "2026-01-02T03:04:05.678Z" */
  cr_assert_eq(strlen(ts), 24, "ts %s", ts);
  cr_assert_eq(ts[10], 'T');
  cr_assert_eq(ts[23], 'Z');
  json_decref(j);

  j = cktest_json(cap.line[1]);
  cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "debug");
  cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "bare");
  cr_assert_null(json_object_get(j, "controller"));
  cr_assert_null(json_object_get(j, "object"));
  json_decref(j);
}

CK_TEST(log, text_line) {
  static captured_t cap;
  memset(&cap, 0, sizeof cap);
  ck_log_set_sink(capture, &cap);
  ck_log_set_format(CK_LOG_FORMAT_TEXT);
  ck_log(CK_LOG_ERROR, "ctl", "ns/x", "boom %s", "now");
  ck_log_set_sink(NULL, NULL);
  ck_log_set_format(CK_LOG_FORMAT_AUTO);
  cr_assert_eq(cap.n, 1);
  cr_assert(strstr(cap.line[0], "error"), "%s", cap.line[0]);
  cr_assert(strstr(cap.line[0], "[ctl] ns/x: boom now"), "%s", cap.line[0]);
  cr_assert_neq(cap.line[0][0], '{');
}

CK_TEST(log, long_message_is_cut_not_overflowed) {
  static captured_t cap;
  memset(&cap, 0, sizeof cap);
  ck_log_set_sink(capture, &cap);
  ck_log_set_format(CK_LOG_FORMAT_JSON);
  char *big = malloc(10000);
  memset(big, 'z', 9999);
  big[9999] = '\0';
  ck_log(CK_LOG_ERROR, NULL, NULL, "%s", big);
  free(big);
  ck_log_set_sink(NULL, NULL);
  cr_assert_eq(cap.n, 1);
  json_t *j = cktest_json(cap.line[0]);
  const char *msg = json_string_value(json_object_get(j, "msg"));
  cr_assert_not_null(msg);
  cr_assert(strlen(msg) > 1000 && strlen(msg) < 9999, "len %zu", strlen(msg));
  json_decref(j);
}

/* ---- ck_json_dump -------------------------------------------------------- */

/* Byte for byte what jansson writes, for everything a parse can give and
 * what code builds: escapes, UTF-8 of every length, NUL inside strings
 * and keys, key order, integers at their limits, reals, empty containers. */
CK_TEST(jsonout, same_bytes_as_jansson) {
  const char *docs[] = {
      "{}", "[]", "[[],{},[[]],{\"a\":{}}]",
      "{\"b\":1,\"a\":2,\"c\":[true,false,null]}",
      "{\"s\":\"quote \\\" backslash \\\\ slash / nl \\n cr \\r tab \\t bs \\b ff \\f\"}",
      "[\"\\u0001\\u001f\\u007f \\u0080 \\u00e9 \\u20ac \\ud83d\\ude00 \\u2028\"]",
      "{\"k\\\"ey\\n\":\"v\",\"\\u00e9t\\u00e9\":\"\\u00e9\"}",
      "[9223372036854775807,-9223372036854775808,0,-1,1.5,-0.0,1e300,2.5e-8,0.1]",
      "{\"data\":{\"mapRoles\":\"- rolearn: \\\"arn:aws:iam::1:role/a\\\"\\n  groups:\\n    - \\\"g\\\"\\n\"}}",
  };
  for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
    json_error_t je;
    json_t *v = json_loads(docs[i], 0, &je);
    cr_assert_not_null(v, "doc %zu: %s", i, je.text);
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t len = 0;
    char *got = ck_json_dumps(v, &len);
    cr_assert_not_null(got, "doc %zu", i);
    cr_assert_str_eq(got, want, "doc %zu", i);
    cr_assert_eq(len, strlen(want));
    free(got);
    free(want);
    json_decref(v);
  }
  /* NUL inside a string and a key (built, as jansson's parser refuses
   * \u0000 by default); a top-level scalar. */
  json_t *o = json_object();
  json_object_setn_new(o, "a\0b", 3, json_stringn("x\0y", 3));
  json_t *vals[] = {o, json_stringn("\0", 1), json_integer(-42), json_true(), json_null()};
  for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
    char *want = json_dumps(vals[i], JSON_COMPACT | JSON_ENCODE_ANY);
    char *got = ck_json_dumps(vals[i], NULL);
    cr_assert(want && got, "value %zu", i);
    cr_assert_str_eq(got, want, "value %zu", i);
    free(got);
    free(want);
    json_decref(vals[i]);
  }
}

/* What jansson cannot encode is refused, and nothing of it is left in the
 * buffer: a string that is not UTF-8 (only the unchecked constructors
 * make one), nesting past the limit. */
CK_TEST(jsonout, refuses_what_jansson_refuses_and_leaves_nothing) {
  const char *bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *v = json_pack("{s:[o]}", "k", json_stringn_nocheck(bad[i], strlen(bad[i])));
    cr_assert_null(json_dumps(v, JSON_COMPACT), "jansson encodes bad[%zu]", i);
    ck_buf_t b = {0};
    ck_buf_puts(&b, "kept");
    cr_assert_eq(ck_json_dump(v, &b), CK_EINVAL, "bad[%zu]", i);
    cr_assert_eq(b.len, 4);
    cr_assert_str_eq(b.data, "kept");
    ck_buf_free(&b);
    cr_assert_null(ck_json_dumps(v, NULL));
    json_decref(v);
  }
  json_t *deep = json_array();
  for (int i = 0; i < CK_JSON_MAX_DEPTH + 1; i++) {
    json_t *outer = json_array();
    json_array_append_new(outer, deep);
    deep = outer;
  }
  ck_buf_t b = {0};
  cr_assert_eq(ck_json_dump(deep, &b), CK_EINVAL);
  cr_assert_eq(b.len, 0);
  ck_buf_free(&b);
  json_decref(deep);
  cr_assert_eq(ck_json_dump(NULL, &b), CK_EINVAL);
}

/* ---- ck_json_loadb ------------------------------------------------------- */

/* Accepts what jansson accepts, with an equal tree, and refuses what it
 * refuses: each text with flags 0 and with JSON_DECODE_ANY. */
CK_TEST(jsonin, same_verdicts_and_trees_as_jansson) {
  static const char *texts[] = {
      "{}", "[]", " \t\r\n[ ] \n", "{\"a\":1,\"b\":[true,false,null],\"a\":2}",
      "[0,-0,1,-1,9223372036854775807,-9223372036854775808,9223372036854775808,"
      "-9223372036854775809]",
      "[9223372036854775807]", "[-9223372036854775808]", "[9223372036854775808]",
      "[0.5,-1.5e-3,1E+2,1e-400,2.5E8,-0.0]", "[1e400]", "[-1e400]",
      "[01]", "[1.]", "[.5]", "[1e]", "[1e+]", "[-]", "[+1]", "[1x]", "[1 2]", "[1,]", "[,1]",
      "[\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\u00e9\\u20AC\\ud83d\\ude00\"]",
      "[\"\\u0000\"]", "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]", "[\"\\ud800x\"]",
      "[\"\\u12\"]", "[\"\\x\"]", "[\"a\tb\"]", "[\"a\x7f" "b\"]", "[\"\xc3\xa9\"]",
      "[\"\xc3\"]", "[\"\xff\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]",
      "[\"\xe2\x82\xac\xf0\x9f\x98\x80\"]", "[\"unterminated]", "{\"a\" 1}", "{\"a\":}",
      "{a:1}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "[tru]", "[truex]", "[nul]", "true", "null",
      "1", "\"s\"", "", "   ", "[] x", "[]]", "\xef\xbb\xbf[]", "[[[[]]]]", "{\"\":\"\"}",
  };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    for (int any = 0; any < 2; any++) {
      json_t *want = json_loadb(texts[i], strlen(texts[i]), any ? JSON_DECODE_ANY : 0, NULL);
      ck_json_err_t e;
      json_t *got = ck_json_loadb(texts[i], strlen(texts[i]), any != 0, &e);
      cr_assert_eq(want != NULL, got != NULL, "text %zu (any %d): jansson %s, ours %s (%s)", i,
                   any, want ? "accepts" : "refuses", got ? "accepts" : "refuses",
                   got ? "" : e.text);
      if (want) {
        cr_assert(json_equal(want, got), "text %zu: different trees", i);
        cr_assert_eq(json_typeof(want), json_typeof(got));
      } else {
        cr_assert(e.text[0], "text %zu: no reason", i);
        cr_assert_leq(e.position, strlen(texts[i]), "text %zu", i);
      }
      json_decref(want);
      json_decref(got);
    }
  }
}

/* Types as jansson gives them (an integer stays an integer, -0 too), the
 * fault's place, the depth limit, and a NUL jansson would skip. */
CK_TEST(jsonin, types_positions_depth) {
  json_t *v = ck_json_loadb("[-0,1.0,\"x\\u0041\"]", 18, false, NULL);
  cr_assert_not_null(v);
  cr_assert(json_is_integer(json_array_get(v, 0)));
  cr_assert(json_is_real(json_array_get(v, 1)));
  cr_assert_str_eq(json_string_value(json_array_get(v, 2)), "xA");
  json_decref(v);
  ck_json_err_t e;
  cr_assert_null(ck_json_loadb("{\"a\": [1, 2,, 3]}", 17, false, &e));
  cr_assert_eq(e.position, 12, "%zu: %s", e.position, e.text);
  cr_assert_null(ck_json_loadb("[1]\0", 4, false, &e));
  cr_assert_null(ck_json_loadb("[1\0]", 4, false, &e), "a NUL after a number");
  cr_assert_null(ck_json_loadb(NULL, 0, true, &e));
  /* CK_JSON_PARSE_MAX_DEPTH values deep is the most. */
  for (int extra = 0; extra < 2; extra++) {
    size_t d = CK_JSON_PARSE_MAX_DEPTH + (size_t)extra;
    char *t = malloc(2 * d + 1);
    memset(t, '[', d);
    memset(t + d, ']', d);
    t[2 * d] = '\0';
    json_t *want = json_loadb(t, 2 * d, 0, NULL);
    json_t *got = ck_json_loadb(t, 2 * d, false, &e);
    cr_assert_eq(got != NULL, extra == 0, "depth %zu", d);
    cr_assert_eq(want != NULL, got != NULL, "depth %zu: jansson differs", d);
    if (!got)
      cr_assert(strstr(e.text, "depth"), "%s", e.text);
    json_decref(want);
    json_decref(got);
    free(t);
  }
}

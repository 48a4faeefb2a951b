/* Unit tests of the watch line framer and watch event decoding. */
#include "cktest.h"

#include "crdkit/watch.h"
#include "kube/kube_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- framer ---------------------------------------------------------------- */

typedef struct lines {
  int n;
  char *line[64];
  const char *ptr[64];  /* where the callback saw the line */
  const char *chunk;    /* the chunk being fed */
  size_t chunk_len;
  int inside[64];       /* the line pointer lay inside the chunk */
  int stop_at;          /* return an error at this line (1-based); 0: never */
} lines_t;

static int collect(void *ctx, const char *line, size_t len) {
  lines_t *l = ctx;
  cr_assert_lt(l->n, 64);
  cr_assert_gt(len, 0, "empty lines are not passed on");
  /* Not strndup: the line is not NUL-terminated. */
  l->line[l->n] = malloc(len + 1);
  memcpy(l->line[l->n], line, len);
  l->line[l->n][len] = '\0';
  l->ptr[l->n] = line;
  l->inside[l->n] = l->chunk && line >= l->chunk && line + len <= l->chunk + l->chunk_len;
  l->n++;
  if (l->stop_at && l->n == l->stop_at)
    return 42;
  return 0;
}

static void lines_free(lines_t *l) {
  for (int i = 0; i < l->n; i++)
    free(l->line[i]);
  memset(l, 0, sizeof *l);
}

static int feed(ck_framer_t *f, lines_t *l, const char *data, size_t len) {
  l->chunk = data;
  l->chunk_len = len;
  return ck_framer_feed(f, data, len, collect, l);
}

CK_TEST(framer, whole_lines_in_one_chunk) {
  ck_framer_t f = {0};
  lines_t l = {0};
  const char *in = "{\"a\":1}\n{\"b\":2}\n";
  cr_assert_eq(feed(&f, &l, in, strlen(in)), 0);
  cr_assert_eq(l.n, 2);
  cr_assert_str_eq(l.line[0], "{\"a\":1}");
  cr_assert_str_eq(l.line[1], "{\"b\":2}");
  cr_assert_eq(f.partial.len, 0);
  lines_free(&l);
  ck_framer_free(&f);
}

CK_TEST(framer, whole_line_is_passed_without_copying) {
  ck_framer_t f = {0};
  lines_t l = {0};
  char chunk[] = "first\nsecond\nthird-partial";
  cr_assert_eq(feed(&f, &l, chunk, strlen(chunk)), 0);
  cr_assert_eq(l.n, 2);
  cr_assert_eq(l.ptr[0], chunk, "the first line is the chunk itself");
  cr_assert_eq(l.ptr[1], chunk + 6);
  cr_assert(l.inside[0] && l.inside[1]);
  /* The partial line is copied (the chunk goes away), then completed. */
  char chunk2[] = "-end\nfourth\n";
  cr_assert_eq(feed(&f, &l, chunk2, strlen(chunk2)), 0);
  cr_assert_eq(l.n, 4);
  cr_assert_str_eq(l.line[2], "third-partial-end");
  cr_assert_not(l.inside[2], "a line across chunks comes from the framer's buffer");
  cr_assert_str_eq(l.line[3], "fourth");
  cr_assert_eq(l.ptr[3], chunk2 + 5, "a whole line after a completed one is not copied");
  lines_free(&l);
  ck_framer_free(&f);
}

CK_TEST(framer, split_at_every_position) {
  const char *in = "{\"type\":\"ADDED\"}\r\n\n{\"type\":\"MODIFIED\",\"x\":\"\xc3\xa9\"}\n"
                   "\r\nlast\n";
  const char *want[] = {"{\"type\":\"ADDED\"}", "{\"type\":\"MODIFIED\",\"x\":\"\xc3\xa9\"}",
                        "last"};
  size_t len = strlen(in);
  for (size_t a = 0; a <= len; a++) {
    for (size_t b = a; b <= len; b++) {
      /* Three chunks: [0,a) [a,b) [b,len), fed from separate copies so the
       * framer cannot rely on the previous chunk staying around. */
      ck_framer_t f = {.max_line = 1000};
      lines_t l = {0};
      size_t cuts[4] = {0, a, b, len};
      for (int k = 0; k < 3; k++) {
        size_t n = cuts[k + 1] - cuts[k];
        char *copy = malloc(n + 1);
        memcpy(copy, in + cuts[k], n);
        cr_assert_eq(feed(&f, &l, copy, n), 0, "cuts %zu,%zu", a, b);
        memset(copy, '#', n);
        free(copy);
      }
      cr_assert_eq(l.n, 3, "cuts %zu,%zu: %d lines", a, b, l.n);
      for (int i = 0; i < 3; i++)
        cr_assert_str_eq(l.line[i], want[i], "cuts %zu,%zu line %d", a, b, i);
      cr_assert_eq(f.partial.len, 0);
      lines_free(&l);
      ck_framer_free(&f);
    }
  }
}

CK_TEST(framer, byte_by_byte) {
  const char *in = "alpha\r\nbeta\n\n\ngamma\r\n";
  ck_framer_t f = {0};
  lines_t l = {0};
  for (size_t i = 0; in[i]; i++) {
    char c = in[i];
    cr_assert_eq(feed(&f, &l, &c, 1), 0);
  }
  cr_assert_eq(l.n, 3);
  cr_assert_str_eq(l.line[0], "alpha");
  cr_assert_str_eq(l.line[1], "beta");
  cr_assert_str_eq(l.line[2], "gamma");
  lines_free(&l);
  ck_framer_free(&f);
}

CK_TEST(framer, crlf_and_empty_lines) {
  ck_framer_t f = {0};
  lines_t l = {0};
  const char *in = "\n\r\n\n a \r\nb\r\r\n\r\n";
  cr_assert_eq(feed(&f, &l, in, strlen(in)), 0);
  cr_assert_eq(l.n, 2);
  cr_assert_str_eq(l.line[0], " a ", "only the newline and one \\r go");
  cr_assert_str_eq(l.line[1], "b\r", "only one trailing \\r is removed");
  /* A "\r" split from its "\n". */
  cr_assert_eq(feed(&f, &l, "c\r", 2), 0);
  cr_assert_eq(l.n, 2);
  cr_assert_eq(feed(&f, &l, "\n", 1), 0);
  cr_assert_eq(l.n, 3);
  cr_assert_str_eq(l.line[2], "c");
  lines_free(&l);
  ck_framer_free(&f);
}

CK_TEST(framer, incomplete_line_is_held) {
  ck_framer_t f = {0};
  lines_t l = {0};
  cr_assert_eq(feed(&f, &l, "no newline yet", 14), 0);
  cr_assert_eq(l.n, 0);
  cr_assert_eq(f.partial.len, 14);
  cr_assert_eq(feed(&f, &l, "", 0), 0);
  cr_assert_eq(l.n, 0);
  /* Freeing with a partial line held releases it. */
  ck_framer_free(&f);
  cr_assert_null(f.partial.data);
}

CK_TEST(framer, max_line_overflow) {
  /* A whole line inside one chunk. */
  ck_framer_t f = {.max_line = 8};
  lines_t l = {0};
  cr_assert_eq(feed(&f, &l, "12345678\n123456789\nok\n", 22), CK_ETOOBIG);
  cr_assert_eq(l.n, 1, "the line at the limit passes");
  cr_assert_str_eq(l.line[0], "12345678");
  cr_assert(f.overflow);
  /* Once over, the framer stays failed. */
  cr_assert_eq(feed(&f, &l, "ok\n", 3), CK_ETOOBIG);
  cr_assert_eq(l.n, 1);
  lines_free(&l);
  ck_framer_free(&f);

  /* A partial line that grows too long without a newline. */
  f = (ck_framer_t){.max_line = 8};
  cr_assert_eq(feed(&f, &l, "12345", 5), 0);
  cr_assert_eq(feed(&f, &l, "678", 3), 0);
  cr_assert_eq(feed(&f, &l, "9", 1), CK_ETOOBIG);
  cr_assert_eq(l.n, 0);
  cr_assert(f.partial.len <= 8, "the framer does not buffer past the bound");
  ck_framer_free(&f);

  /* A partial line completed past the bound. */
  f = (ck_framer_t){.max_line = 8};
  cr_assert_eq(feed(&f, &l, "123456", 6), 0);
  cr_assert_eq(feed(&f, &l, "789\n", 4), CK_ETOOBIG);
  cr_assert_eq(l.n, 0);
  ck_framer_free(&f);

  /* Exactly at the bound across chunks is fine. */
  f = (ck_framer_t){.max_line = 8};
  cr_assert_eq(feed(&f, &l, "1234", 4), 0);
  cr_assert_eq(feed(&f, &l, "5678\n", 5), 0);
  cr_assert_eq(l.n, 1);
  cr_assert_str_eq(l.line[0], "12345678");
  lines_free(&l);
  ck_framer_free(&f);

  /* Unbounded with max_line 0. */
  f = (ck_framer_t){0};
  char *big = malloc(100001);
  memset(big, 'x', 100000);
  big[100000] = '\n';
  cr_assert_eq(feed(&f, &l, big, 50000), 0);
  cr_assert_eq(feed(&f, &l, big + 50000, 50001), 0);
  cr_assert_eq(l.n, 1);
  cr_assert_eq(strlen(l.line[0]), 100000);
  free(big);
  lines_free(&l);
  ck_framer_free(&f);
}

CK_TEST(framer, callback_error_stops) {
  ck_framer_t f = {0};
  lines_t l = {.stop_at = 2};
  const char *in = "one\ntwo\nthree\nfour\n";
  cr_assert_eq(feed(&f, &l, in, strlen(in)), 42);
  cr_assert_eq(l.n, 2, "no line after the failing one");
  cr_assert_str_eq(l.line[1], "two");
  lines_free(&l);
  ck_framer_free(&f);

  /* Also when the failing line was assembled from pieces. */
  f = (ck_framer_t){0};
  l = (lines_t){.stop_at = 1};
  cr_assert_eq(feed(&f, &l, "on", 2), 0);
  cr_assert_eq(feed(&f, &l, "e\ntwo\n", 6), 42);
  cr_assert_eq(l.n, 1);
  cr_assert_str_eq(l.line[0], "one");
  lines_free(&l);
  ck_framer_free(&f);
}

/* ---- watch event decoding ----------------------------------------------------- */

static void decode_ok(const char *line, ck_watch_type_t want, const char *name) {
  ck_watch_event_t ev;
  ck_error_t err = {0};
  int rc = ck_watch_event_decode(line, strlen(line), &ev, &err);
  cr_assert_eq(rc, 0, "%s: %s", line, err.message);
  cr_assert_eq(ev.type, want, "%s", line);
  cr_assert(json_is_object(ev.object));
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev.object, "metadata"),
                                                     "name")),
                   name);
  ck_watch_event_clear(&ev);
  cr_assert_null(ev.object);
  cr_assert_eq(ev.type, 0);
}

CK_TEST(watch_event, each_type) {
  decode_ok("{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}}",
            CK_WATCH_ADDED, "a");
  decode_ok("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"m\"}}}", CK_WATCH_MODIFIED,
            "m");
  decode_ok("{\"object\":{\"metadata\":{\"name\":\"d\"}},\"type\":\"DELETED\"}", CK_WATCH_DELETED,
            "d");
  decode_ok("{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"name\":\"\","
            "\"resourceVersion\":\"12\"}}}",
            CK_WATCH_BOOKMARK, "");
  decode_ok("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
            "\"metadata\":{\"name\":\"e\"}}}",
            CK_WATCH_ERROR, "e");
}

CK_TEST(watch_event, object_outlives_the_line) {
  char *line = strdup("{\"type\":\"ADDED\",\"object\":{\"data\":{\"k\":\"v\"}}}");
  ck_watch_event_t ev;
  cr_assert_eq(ck_watch_event_decode(line, strlen(line), &ev, NULL), 0);
  memset(line, 'x', strlen(line));
  free(line);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev.object, "data"), "k")),
                   "v");
  ck_watch_event_clear(&ev);
  ck_watch_event_clear(NULL);
}

CK_TEST(watch_event, len_bounds_the_input) {
  const char *line = "{\"type\":\"ADDED\",\"object\":{}}GARBAGE";
  ck_watch_event_t ev;
  ck_error_t err = {0};
  cr_assert_eq(ck_watch_event_decode(line, strlen(line) - 7, &ev, &err), 0, "%s", err.message);
  cr_assert_eq(ev.type, CK_WATCH_ADDED);
  ck_watch_event_clear(&ev);
}

static void decode_bad(const char *line, const char *what) {
  ck_watch_event_t ev = {.type = CK_WATCH_ADDED};
  ck_error_t err = {0};
  int rc = ck_watch_event_decode(line, strlen(line), &ev, &err);
  cr_assert_eq(rc, CK_EPARSE, "%s: rc %d", line, rc);
  cr_assert_eq(err.code, CK_EPARSE);
  cr_assert_null(ev.object, "%s", line);
  cr_assert(strstr(err.message, what), "%s: want \"%s\" in \"%s\"", line, what, err.message);
}

CK_TEST(watch_event, bad_json) {
  decode_bad("{\"type\":\"ADDED\",\"object\":{}", "not JSON");
  decode_bad("", "not JSON");
  decode_bad("<html>", "not JSON");
  decode_bad("{\"type\":\"ADDED\",\"object\":{}} {}", "not JSON");
}

CK_TEST(watch_event, missing_or_bad_object) {
  decode_bad("{\"type\":\"ADDED\"}", "object");
  decode_bad("{\"type\":\"ADDED\",\"object\":null}", "object");
  decode_bad("{\"type\":\"ADDED\",\"object\":[1]}", "object");
  decode_bad("{\"type\":\"ADDED\",\"object\":\"x\"}", "object");
  decode_bad("{\"object\":{}}", "type");
  decode_bad("{\"type\":7,\"object\":{}}", "type");
  decode_bad("[]", "type");
}

CK_TEST(watch_event, unknown_type) {
  decode_bad("{\"type\":\"RENAMED\",\"object\":{}}", "RENAMED");
  decode_bad("{\"type\":\"added\",\"object\":{}}", "unknown type");
  decode_bad("{\"type\":\"\",\"object\":{}}", "unknown type");
}

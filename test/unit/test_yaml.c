/* Unit tests of lib/util/yaml: schemas, aliases, bounds, errors. */
#include "cktest.h"

#include "util/timeutil.h"
#include "util/yaml.h"

#include <stdlib.h>
#include <string.h>

/* Convert `text` or fail the test. New reference. */
static json_t *yaml_ok(const char *text, const ck_yaml_opts_t *o) {
  json_t *out = NULL;
  ck_error_t err = {0};
  int rc = ck_yaml_to_json(text, strlen(text), o, &out, &err);
  cr_assert_eq(rc, 0, "YAML %s: rc %d: %s", text, rc, err.message);
  cr_assert_not_null(out);
  return out;
}

/* Convert `text` expecting failure code `want`; err is filled. */
static void yaml_fail(const char *text, size_t len, const ck_yaml_opts_t *o, int want,
                      ck_error_t *err) {
  json_t *out = (json_t *)0x1;
  memset(err, 0, sizeof *err);
  int rc = ck_yaml_to_json(text, len, o, &out, err);
  cr_assert_eq(rc, want, "YAML %s: rc %d, want %d (%s)", text, rc, want, err->message);
  cr_assert_null(out, "out must be NULL on failure");
  cr_assert_eq(err->code, want);
  cr_assert(err->message[0], "no message");
}

/* `text` under `schema` must equal the JSON `want` (types included). */
static void expect(const char *text, ck_yaml_schema_t schema, const char *want) {
  ck_yaml_opts_t o = {.schema = schema};
  json_t *got = yaml_ok(text, &o);
  json_t *w = cktest_json(want);
  char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
  cr_assert(json_equal(got, w), "%s YAML \"%s\": got %s, want %s",
            schema == CK_YAML_11 ? "1.1" : "core", text, g, want);
  /* json_equal treats 1 and 1.0 alike in some versions: check types too. */
  cr_assert_str_eq(g, want, "%s YAML \"%s\"", schema == CK_YAML_11 ? "1.1" : "core", text);
  free(g);
  json_decref(w);
  json_decref(got);
}

static void both(const char *text, const char *want) {
  expect(text, CK_YAML_CORE, want);
  expect(text, CK_YAML_11, want);
}

/* ---- scalar resolution --------------------------------------------------- */

CK_TEST(yaml, booleans_11_vs_core) {
  static const char *const t11[] = {"yes", "Yes", "YES", "on", "On", "ON", "y", "Y", NULL};
  static const char *const f11[] = {"no", "No", "NO", "off", "Off", "OFF", "n", "N", NULL};
  char doc[64], want[64];
  for (size_t i = 0; t11[i]; i++) {
    snprintf(doc, sizeof doc, "[%s]", t11[i]);
    expect(doc, CK_YAML_11, "[true]");
    snprintf(want, sizeof want, "[\"%s\"]", t11[i]);
    expect(doc, CK_YAML_CORE, want);
  }
  for (size_t i = 0; f11[i]; i++) {
    snprintf(doc, sizeof doc, "[%s]", f11[i]);
    expect(doc, CK_YAML_11, "[false]");
    snprintf(want, sizeof want, "[\"%s\"]", f11[i]);
    expect(doc, CK_YAML_CORE, want);
  }
  both("[true, True, TRUE, false, False, FALSE]", "[true, true, true, false, false, false]");
  /* Not booleans in either schema. */
  both("[tRUE, yES, nO, oN, 'true', \"yes\"]",
       "[\"tRUE\", \"yES\", \"nO\", \"oN\", \"true\", \"yes\"]");
}

CK_TEST(yaml, block_mapping_values) {
  expect("enabled: yes\nport: 012\nname: n\n", CK_YAML_11,
         "{\"enabled\": true, \"name\": false, \"port\": 10}");
  expect("enabled: yes\nport: 012\nname: n\n", CK_YAML_CORE,
         "{\"enabled\": \"yes\", \"name\": \"n\", \"port\": 12}");
}

CK_TEST(yaml, integers) {
  /* A leading 0 is octal in 1.1 and decimal in the core schema. */
  expect("[012]", CK_YAML_11, "[10]");
  expect("[012]", CK_YAML_CORE, "[12]");
  expect("[-012]", CK_YAML_11, "[-10]");
  expect("[0o17]", CK_YAML_CORE, "[15]");
  expect("[0o17]", CK_YAML_11, "[\"0o17\"]");
  expect("[0b101]", CK_YAML_11, "[5]");
  expect("[0b101]", CK_YAML_CORE, "[\"0b101\"]");
  both("[0x1F, 0x1f, 0xff]", "[31, 31, 255]");
  expect("[1_000, 0x_1F]", CK_YAML_11, "[1000, 31]");
  expect("[1_000]", CK_YAML_CORE, "[\"1_000\"]");
  both("[0, -0, 7, -42, 9223372036854775807, -9223372036854775808]",
       "[0, 0, 7, -42, 9223372036854775807, -9223372036854775808]");
  /* The core schema allows a sign: [-+]?[0-9]+ */
  both("[+1, +0]", "[1, 0]");
  /* Not integers. */
  both("[0x, 0xG1, 12a, 1-2, 1.2.3]", "[\"0x\", \"0xG1\", \"12a\", \"1-2\", \"1.2.3\"]");
  expect("[09]", CK_YAML_CORE, "[9]");
}

CK_TEST(yaml, null_forms) {
  both("[~, null, Null, NULL, ]", "[null, null, null, null]");
  both("a:\nb: ~\nc: null\n", "{\"a\": null, \"b\": null, \"c\": null}");
  both("[nULL, 'null', \"~\", '']", "[\"nULL\", \"null\", \"~\", \"\"]");
}

CK_TEST(yaml, floats) {
  both("[1.5, -2.5, .5, 1., 1e3, 1.5E-2, -1e+2]", "[1.5, -2.5, 0.5, 1.0, 1000.0, 0.015, -100.0]");
  expect("[1_000.5]", CK_YAML_11, "[1000.5]");
  expect("[1_000.5]", CK_YAML_CORE, "[\"1_000.5\"]");
  /* JSON has no infinities or NaN: they stay strings. */
  both("[.inf, -.inf, +.inf, .Inf, .NaN, .nan]",
       "[\".inf\", \"-.inf\", \"+.inf\", \".Inf\", \".NaN\", \".nan\"]");
  /* Out of the range of a double: a string, not infinity. */
  both("[1e999]", "[\"1e999\"]");
  both("[., 1e, e3, .e3, 1.5e+]", "[\".\", \"1e\", \"e3\", \".e3\", \"1.5e+\"]");
}

CK_TEST(yaml, quoted_scalars_stay_strings) {
  both("['yes', \"012\", '0x1F', \"1.5\", 'null', \"true\", '~', \"1_000\"]",
       "[\"yes\", \"012\", \"0x1F\", \"1.5\", \"null\", \"true\", \"~\", \"1_000\"]");
  both("a: |\n  123\nb: >\n  true\n",
       "{\"a\": \"123\\n\", \"b\": \"true\\n\"}");
}

CK_TEST(yaml, str_tag_forces_string) {
  both("[!!str 012, !!str yes, !!str true, !!str ~, !!str 1.5]",
       "[\"012\", \"yes\", \"true\", \"~\", \"1.5\"]");
  both("[!!str , ! 12]", "[\"\", \"12\"]");
  both("v: !!str 0x1F\n", "{\"v\": \"0x1F\"}");
}

CK_TEST(yaml, resolve_plain_directly) {
  json_t *v = ck_yaml_resolve_plain("0777", 4, CK_YAML_11);
  cr_assert(json_is_integer(v));
  cr_assert_eq(json_integer_value(v), 0777);
  json_decref(v);
  v = ck_yaml_resolve_plain("0777", 4, CK_YAML_CORE);
  cr_assert(json_is_integer(v));
  cr_assert_eq(json_integer_value(v), 777);
  json_decref(v);
  v = ck_yaml_resolve_plain("off", 3, CK_YAML_11);
  cr_assert(json_is_false(v));
  json_decref(v);
  v = ck_yaml_resolve_plain("offx", 3, CK_YAML_11); /* only len bytes count */
  cr_assert(json_is_false(v));
  json_decref(v);
  v = ck_yaml_resolve_plain("", 0, CK_YAML_CORE);
  cr_assert(json_is_null(v));
  json_decref(v);
}

CK_TEST(yaml, keys_are_strings) {
  expect("1: a\ntrue: b\nnull: c\n012: d\n", CK_YAML_CORE,
         "{\"1\": \"a\", \"12\": \"d\", \"null\": \"c\", \"true\": \"b\"}");
  expect("yes: a\n012: b\n1.5: c\n", CK_YAML_11,
         "{\"1.5\": \"c\", \"10\": \"b\", \"true\": \"a\"}");
  /* go-yaml v2's famous one: "y" and "n" are booleans, keys too. */
  expect("x: 1\ny: 2\nn: 3\n", CK_YAML_11, "{\"false\": 3, \"true\": 2, \"x\": 1}");
  expect("x: 1\ny: 2\nn: 3\n", CK_YAML_CORE, "{\"n\": 3, \"x\": 1, \"y\": 2}");
}

/* ---- structure ------------------------------------------------------------ */

CK_TEST(yaml, nested_structures) {
  both("apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://x\n"
       "users: []\nextra: {k: [1, {z: null}]}\n",
       "{\"apiVersion\": \"v1\", \"clusters\": [{\"cluster\": {\"server\": \"https://x\"}, "
       "\"name\": \"a\"}], \"extra\": {\"k\": [1, {\"z\": null}]}, \"kind\": \"Config\", "
       "\"users\": []}");
}

CK_TEST(yaml, anchors_and_aliases) {
  both("base: &b {x: 1, z: [1, 2]}\ncopy: *b\ns: &s hello\nt: *s\nl: &l [a]\nm: [*l, *s]\n",
       "{\"base\": {\"x\": 1, \"z\": [1, 2]}, \"copy\": {\"x\": 1, \"z\": [1, 2]}, "
       "\"l\": [\"a\"], \"m\": [[\"a\"], \"hello\"], \"s\": \"hello\", \"t\": \"hello\"}");
  /* A redefined anchor: later aliases see the new value. */
  both("[&a 1, *a, &a 2, *a]", "[1, 1, 2, 2]");
  /* An alias used as a key. */
  both("- &k name\n- {*k : v}\n", "[\"name\", {\"name\": \"v\"}]");
}

CK_TEST(yaml, unknown_and_recursive_aliases_fail) {
  ck_error_t err;
  yaml_fail("a: *nope\n", 9, NULL, CK_EINVAL, &err);
  cr_assert(strstr(err.message, "nope"), "%s", err.message);
  const char *rec = "a: &a [1, *a]\n";
  yaml_fail(rec, strlen(rec), NULL, CK_EINVAL, &err);
  cr_assert(strstr(err.message, "*a"), "%s", err.message);
  cr_assert(strstr(err.message, "line 1"), "%s", err.message);
}

CK_TEST(yaml, aliases_do_not_cross_documents) {
  ck_yaml_opts_t o = {.multi_doc = true};
  ck_error_t err;
  const char *text = "--- &a x\n--- *a\n";
  yaml_fail(text, strlen(text), &o, CK_EINVAL, &err);
}

CK_TEST_OPTS(yaml, billion_laughs_fails_fast, .timeout = 10) {
  const char *bomb = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
                     "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                     "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                     "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                     "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                     "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
  ck_error_t err;
  int64_t t0 = ck_now_ms();
  yaml_fail(bomb, strlen(bomb), NULL, CK_ETOOBIG, &err);
  int64_t ms = ck_now_ms() - t0;
  cr_assert_lt(ms, 1000, "took %lld ms", (long long)ms);
  cr_assert(strstr(err.message, "nodes"), "%s", err.message);
  cr_assert(strstr(err.message, "line "), "%s", err.message);

  /* With a small bound, an alias expansion counts its whole subtree. */
  ck_yaml_opts_t o = {.max_nodes = 50};
  const char *small = "a: &a [1,2,3,4,5,6,7,8,9]\nb: [*a,*a,*a,*a,*a]\n";
  /* 1 root + 2 keys + 10 (a) + 1 (b) + 5*10 aliases = 64 > 50 */
  yaml_fail(small, strlen(small), &o, CK_ETOOBIG, &err);
  o.max_nodes = 64;
  json_t *j = yaml_ok(small, &o);
  cr_assert_eq(json_array_size(json_object_get(j, "b")), 5);
  cr_assert_eq(json_array_size(json_array_get(json_object_get(j, "b"), 4)), 9);
  json_decref(j);
  o.max_nodes = 63;
  yaml_fail(small, strlen(small), &o, CK_ETOOBIG, &err);
}

CK_TEST(yaml, max_nodes_counts_plain_nodes) {
  ck_yaml_opts_t o = {.max_nodes = 6};
  json_t *j = yaml_ok("[1, 2, 3, 4, 5]", &o);
  cr_assert_eq(json_array_size(j), 5);
  json_decref(j);
  o.max_nodes = 5;
  ck_error_t err;
  yaml_fail("[1, 2, 3, 4, 5]", 15, &o, CK_ETOOBIG, &err);
}

static char *nested(int levels, char open, char close) {
  char *s = malloc((size_t)levels * 2 + 1);
  for (int i = 0; i < levels; i++) {
    s[i] = open;
    s[levels * 2 - 1 - i] = close;
  }
  s[levels * 2] = '\0';
  return s;
}

CK_TEST(yaml, max_depth) {
  ck_yaml_opts_t o = {.max_depth = 5};
  char *ok = nested(5, '[', ']');
  json_t *j = yaml_ok(ok, &o);
  cr_assert(json_is_array(json_array_get(json_array_get(json_array_get(json_array_get(j, 0), 0), 0), 0)));
  json_decref(j);
  free(ok);
  char *deep = nested(6, '[', ']');
  ck_error_t err;
  yaml_fail(deep, strlen(deep), &o, CK_ETOOBIG, &err);
  cr_assert(strstr(err.message, "nesting"), "%s", err.message);
  free(deep);

  /* The default is 100. */
  char *d100 = nested(100, '[', ']');
  j = yaml_ok(d100, NULL);
  json_decref(j);
  free(d100);
  char *d101 = nested(101, '[', ']');
  yaml_fail(d101, strlen(d101), NULL, CK_ETOOBIG, &err);
  free(d101);

  /* Block mappings count too. */
  o.max_depth = 2;
  const char *blk = "a:\n  b:\n    c: 1\n";
  yaml_fail(blk, strlen(blk), &o, CK_ETOOBIG, &err);
  cr_assert(strstr(err.message, "line 3"), "%s", err.message); /* {c: 1} is the third */
  o.max_depth = 3;
  j = yaml_ok(blk, &o);
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(json_object_get(j, "a"), "b"), "c")), 1);
  json_decref(j);
}

CK_TEST_OPTS(yaml, very_deep_input_is_bounded, .timeout = 10) {
  char *deep = nested(100000, '[', ']');
  ck_error_t err;
  yaml_fail(deep, strlen(deep), NULL, CK_ETOOBIG, &err);
  free(deep);
}

CK_TEST(yaml, duplicate_keys) {
  ck_error_t err;
  const char *dup = "a: 1\nb: 2\na: 3\n";
  yaml_fail(dup, strlen(dup), NULL, CK_EINVAL, &err);
  cr_assert(strstr(err.message, "duplicate key \"a\""), "%s", err.message);
  cr_assert(strstr(err.message, "line 3"), "%s", err.message);

  ck_yaml_opts_t o = {.allow_dup_keys = true};
  json_t *j = yaml_ok(dup, &o);
  cr_assert_eq(json_object_size(j), 2);
  cr_assert_eq(json_integer_value(json_object_get(j, "a")), 3, "the last duplicate wins");
  json_decref(j);

  /* Keys that resolve to the same text are duplicates too. */
  ck_yaml_opts_t o11 = {.schema = CK_YAML_11};
  const char *spelled = "yes: 1\ntrue: 2\n";
  yaml_fail(spelled, strlen(spelled), &o11, CK_EINVAL, &err);
  /* Nested mappings have their own keys. */
  j = yaml_ok("a: {x: 1}\nb: {x: 2}\n", NULL);
  json_decref(j);
  const char *flow = "{x: 1, x: 2}";
  yaml_fail(flow, strlen(flow), NULL, CK_EINVAL, &err);
}

CK_TEST(yaml, multi_doc) {
  ck_yaml_opts_t o = {.multi_doc = true};
  json_t *j = yaml_ok("a: 1\n---\nb: 2\n---\n- x\n", &o);
  json_t *w = cktest_json("[{\"a\": 1}, {\"b\": 2}, [\"x\"]]");
  cr_assert(json_equal(j, w));
  json_decref(w);
  json_decref(j);

  /* An empty document in the middle is null; no document is []. */
  j = yaml_ok("--- 1\n---\n--- 3\n", &o);
  w = cktest_json("[1, null, 3]");
  cr_assert(json_equal(j, w));
  json_decref(w);
  json_decref(j);
  j = yaml_ok("", &o);
  cr_assert(json_is_array(j));
  cr_assert_eq(json_array_size(j), 0);
  json_decref(j);

  /* Without multi_doc a second document is an error. */
  ck_error_t err;
  const char *two = "a: 1\n---\nb: 2\n";
  yaml_fail(two, strlen(two), NULL, CK_EINVAL, &err);
  cr_assert(strstr(err.message, "document"), "%s", err.message);
  /* But explicit markers around one document are fine. */
  j = yaml_ok("---\na: 1\n...\n", NULL);
  cr_assert_eq(json_integer_value(json_object_get(j, "a")), 1);
  json_decref(j);
}

CK_TEST(yaml, empty_document_is_null) {
  static const char *const empties[] = {"", "\n\n", "# just a comment\n", "---\n", "--- \n...\n",
                                        NULL};
  for (size_t i = 0; empties[i]; i++) {
    json_t *j = yaml_ok(empties[i], NULL);
    cr_assert(json_is_null(j), "\"%s\" should be null", empties[i]);
    json_decref(j);
  }
  json_t *out = NULL;
  cr_assert_eq(ck_yaml_to_json(NULL, 0, NULL, &out, NULL), 0);
  cr_assert(json_is_null(out));
  json_decref(out);
}

/* ---- errors ---------------------------------------------------------------- */

CK_TEST_OPTS(yaml, syntax_errors_report_the_line, .timeout = 10) {
  static const struct {
    const char *text;
    const char *line;
  } cases[] = {
      {"a: 1\nb: [1, 2\nc: 3\n", NULL},
      {"a: 1\nb: c: d\n", "line 2, column 5: "},
      {"a: 1\n  b: 2\n", NULL},
      {"a: 'unterminated\n", "line 1, column "},
      {"a: 1\n- b\n", "line 2"},
      {"key: value\n\tbad: tab\n", NULL},
      {"a: \"x\" y\n", "line 1"},
      {"[1, 2]]\n", "line 1, column 7: "},
      {"a: 1\n---\n- x\n  y: 2\n", "line 3"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ck_error_t err;
    yaml_fail(cases[i].text, strlen(cases[i].text), NULL, CK_EINVAL, &err);
    cr_assert_eq(strncmp(err.message, "line ", 5), 0, "\"%s\": no line in \"%s\"",
                 cases[i].text, err.message);
    cr_assert_null(strstr(err.message, "memory"), "\"%s\": %s", cases[i].text, err.message);
    if (cases[i].line)
      cr_assert(strstr(err.message, cases[i].line), "\"%s\": want %s in \"%s\"", cases[i].text,
                cases[i].line, err.message);
  }
}

CK_TEST(yaml, nul_byte_rejected) {
  static const char text[] = "a: 1\nb: x\0y\n";
  ck_error_t err;
  yaml_fail(text, sizeof text - 1, NULL, CK_EINVAL, &err);
  cr_assert(strstr(err.message, "NUL"), "%s", err.message);
  cr_assert(strstr(err.message, "line 2"), "%s", err.message);
  /* A NUL right at the end (C strings that were measured with one too many). */
  static const char tail[] = "a: 1\n";
  yaml_fail(tail, sizeof tail, NULL, CK_EINVAL, &err);
}

CK_TEST_OPTS(yaml, bad_directives_rejected, .timeout = 10) {
  static const char *const bad[] = {
      "%",
      "%\n---\na: 1\n",
      "%YAML\n---\na: 1\n",
      "%YAML 2.0\n---\na: 1\n",
      "%YAML 1.\n---\na: 1\n",
      "%YAML 1.1.1\n---\na: 1\n",
      "%FOO bar\n---\na: 1\n",
      "%TAG ! tag:example.com,2000:\n---\na: 1\n",
      "a: 1\n%YAML 1.2\n",
      "%YAML 1.2\n%YAML 1.2\n---\n",
      NULL,
  };
  for (size_t i = 0; bad[i]; i++) {
    ck_error_t err;
    yaml_fail(bad[i], strlen(bad[i]), NULL, CK_EINVAL, &err);
    cr_assert(strstr(err.message, "line "), "\"%s\": %s", bad[i], err.message);
  }
  /* A well-formed %YAML directive is fine, and '%' elsewhere is text. */
  json_t *j = yaml_ok("%YAML 1.2\n---\na: 50%\n", NULL);
  cr_assert_str_eq(json_string_value(json_object_get(j, "a")), "50%");
  json_decref(j);
  j = yaml_ok("%YAML 1.1\n---\n- '%x'\n", NULL);
  cr_assert_str_eq(json_string_value(json_array_get(j, 0)), "%x");
  json_decref(j);
}

CK_TEST(yaml, complex_keys_rejected) {
  static const char *const bad[] = {
      "? [a, b]\n: 1\n",
      "? {a: 1}\n: 2\n",
      "{[1, 2]: x}\n",
      "- &m {a: 1}\n- {*m : x}\n",
      NULL,
  };
  for (size_t i = 0; bad[i]; i++) {
    ck_error_t err;
    yaml_fail(bad[i], strlen(bad[i]), NULL, CK_EINVAL, &err);
    cr_assert(strstr(err.message, "key"), "\"%s\": %s", bad[i], err.message);
  }
  /* "? scalar" is an ordinary key. */
  json_t *j = yaml_ok("? a\n: 1\n", NULL);
  cr_assert_eq(json_integer_value(json_object_get(j, "a")), 1);
  json_decref(j);
}

CK_TEST(yaml, invalid_utf8_rejected) {
  static const char *const bad[] = {
      "a: \xff\xfe\n",       /* libfyaml 0.7 made this "" */
      "\xff: 1\n",           /* ... and this null */
      "a: x\xffy\n",
      "a: '\xc3'\n",         /* truncated sequence */
      "a: \xc0\xaf\n",       /* overlong '/' */
      "a: \xed\xa0\x80\n",   /* a surrogate */
      "a: \xf4\x90\x80\x80\n", /* past U+10FFFF */
      "a: |\n  \x80\n",
      NULL,
  };
  for (size_t i = 0; bad[i]; i++) {
    ck_error_t err;
    yaml_fail(bad[i], strlen(bad[i]), NULL, CK_EINVAL, &err);
    cr_assert(strstr(err.message, "UTF-8"), "%s", err.message);
  }
  /* Real UTF-8 (2, 3 and 4 bytes, and a BOM) is fine. */
  json_t *j = yaml_ok("\xef\xbb\xbf" "a: h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n", NULL);
  cr_assert_str_eq(json_string_value(json_object_get(j, "a")),
                   "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  json_decref(j);
}

CK_TEST(yaml, null_err_is_allowed) {
  json_t *out = NULL;
  cr_assert_eq(ck_yaml_to_json("a: [", 4, NULL, &out, NULL), CK_EINVAL);
  cr_assert_null(out);
  cr_assert_eq(ck_yaml_to_json("a: 1", 4, NULL, &out, NULL), 0);
  json_decref(out);
}

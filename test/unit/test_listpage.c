/* Unit tests of the item-by-item walk of List answers (lib/kube/listpage.c):
 * for any text, the walk gives what a whole parse gives, or an error. */
#include "cktest.h"

#include "kube/kube_internal.h"

#include <stdlib.h>
#include <string.h>

static int collect(void *ctx, json_t *item) {
  return json_array_append((json_t *)ctx, item) ? CK_ENOMEM : 0;
}

static int stop_at_two(void *ctx, json_t *item) {
  json_array_append((json_t *)ctx, item);
  return json_array_size((json_t *)ctx) == 2 ? 42 : 0;
}

/* Walk text; on success, compare with jansson's parse of the whole. */
static int walk(const char *text, json_t **items, json_t **meta, ck_error_t *err) {
  *items = json_array();
  int rc = ck_list_page_each(text, strlen(text), collect, *items, meta, err);
  json_t *whole = json_loads(text, JSON_DECODE_ANY, NULL);
  if (rc == 0) {
    cr_assert_not_null(whole, "the walk took what a whole parse refuses: %s", text);
    json_t *want = json_object_get(whole, "items");
    if (json_is_null(want) || !want)
      cr_assert_eq(json_array_size(*items), 0);
    else
      cr_assert(json_equal(want, *items), "items differ: %s", text);
    if (meta) {
      json_t *wm = json_object_get(whole, "metadata");
      cr_assert(wm ? json_equal(wm, *meta) : *meta == NULL, "metadata differs: %s", text);
    }
  }
  json_decref(whole);
  return rc;
}

Test(listpage, pages_the_apiserver_writes) {
  static const char *const ok[] = {
      "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"7\","
      "\"continue\":\"abc\"},\"items\":[{\"metadata\":{\"name\":\"a\"},\"data\":{\"k\":\"}]\\\"[{\"}},"
      "{\"metadata\":{\"name\":\"b\"},\"n\":[1,-2.5e3,true,false,null,{}],\"s\":\"\\u00e9\\\\\"}]}",
      "{\"items\":[],\"metadata\":{}}",
      " {\n \"items\" : [ {\"a\" : 1} , {\"b\":[ ]} ] ,\n \"metadata\" : {\"x\":\"y\"} } \n",
      "{\"items\":null,\"metadata\":{\"resourceVersion\":\"1\"}}",
      "{\"items\":[1,\"s\",null,[2]]}",
      "{}",
      "{\"it\\u0065ms\":[{\"a\":1}]}",
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    json_t *items = NULL, *meta = NULL;
    ck_error_t err = {0};
    cr_assert_eq(walk(ok[i], &items, &meta, &err), 0, "case %zu: %s", i, err.message);
    json_decref(items);
    json_decref(meta);
  }
  /* The escaped name is still "items". */
  json_t *items = NULL, *meta = NULL;
  ck_error_t err = {0};
  cr_assert_eq(walk(ok[6], &items, NULL, &err), 0);
  cr_assert_eq(json_array_size(items), 1);
  json_decref(items);
  cr_assert_eq(walk(ok[0], &items, &meta, &err), 0);
  cr_assert_str_eq(json_string_value(json_object_get(meta, "continue")), "abc");
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(items, 0), "data"), "k")),
                   "}]\"[{");
  json_decref(items);
  json_decref(meta);
}

Test(listpage, bad_text_is_an_error_naming_the_byte) {
  static const char *const bad[] = {
      "", "   ", "[]", "null", "{", "{\"items\":[", "{\"items\":[{\"a\":1}", "{\"items\":[{\"a\":1},]}",
      "{\"items\":[{\"a\":1}}", "{\"items\":{}}", "{\"items\":[{\"a\":tru}]}", "{\"items\":[{\"a\":\"x}]}",
      "{\"items\":[]} x", "{\"items\":[],}", "{,}", "{\"metadata\":{\"a\":1]}", "{\"metadata\" {}}",
      "{\"kind\":\"x\" \"items\":[]}", "{\"kind\":nul}", "{items:[]}", "{\"items\":[\"\\q\"]}",
      "{\"items\":[{\"a\":\"\\u0000\"}]}", "{\"items\":[]]}", "{\"items\":[1 2]}",
      "{\"items\":[{\"a\":1}]", "{\"items\":[\"\\",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *items = NULL, *meta = (json_t *)"untouched";
    ck_error_t err = {0};
    int rc = walk(bad[i], &items, &meta, &err);
    cr_assert_eq(rc, CK_EPARSE, "case %zu (%s): %d", i, bad[i], rc);
    cr_assert_null(meta, "case %zu: metadata left after an error", i);
    cr_assert(strstr(err.message, "at byte"), "case %zu: %s", i, err.message);
    json_decref(items);
  }
}

Test(listpage, callback_stops_the_walk) {
  const char *text = "{\"items\":[{\"a\":1},{\"a\":2},{\"a\":3}],\"metadata\":{\"x\":1}}";
  json_t *got = json_array(), *meta = NULL;
  cr_assert_eq(ck_list_page_each(text, strlen(text), stop_at_two, got, &meta, NULL), 42);
  cr_assert_eq(json_array_size(got), 2);
  cr_assert_null(meta);
  json_decref(got);
}

/* Every prefix of a valid page is refused, never walked past its end. */
Test(listpage, truncated_pages) {
  const char *text = "{\"metadata\":{\"resourceVersion\":\"9\"},\"items\":[{\"a\":\"x\\\"y\"},"
                     "{\"b\":[1,{\"c\":null}]}]}";
  size_t n = strlen(text);
  for (size_t k = 0; k < n; k++) {
    char *cut = malloc(k + 1);
    memcpy(cut, text, k);
    cut[k] = '\0';
    json_t *got = json_array();
    int rc = ck_list_page_each(cut, k, collect, got, NULL, NULL);
    cr_assert_eq(rc, CK_EPARSE, "prefix of %zu bytes: %d", k, rc);
    json_decref(got);
    free(cut);
  }
}

/* The informer cache fed with whatever the API server might send: a
 * sequence of JSON objects (one per line) applied as upserts, deletes,
 * sweeps and observed answers (by the line's last byte), then read back
 * through every index. Must never crash or leak, and the store's counts
 * must stay consistent. (The store's JSON reader and writer are checked
 * against jansson's by fuzz_json.) */
#include "runtime/store.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int count(void *ctx, json_t *obj) {
  (void)obj;
  (*(size_t *)ctx)++;
  return 0;
}

static void swept(void *ctx, json_t *obj) {
  (void)obj;
  (*(size_t *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ck_store_t *s = ck_store_new();
  if (!s)
    return 0;
  const char *p = (const char *)data, *end = p + size;
  uint32_t mark = 1;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    json_t *o = json_loadb(p, len, 0, NULL);
    if (o && len) {
      char op = p[len - 1];
      char *key = ck_store_key_of(o);
      if (op == ' ' && key) {
        json_t *last = NULL;
        ck_store_delete(s, key, ck_store_rv_of(o), &last);
        json_decref(last);
      } else if (op == '\r') { /* the answer to a write, observed */
        json_t *old = NULL;
        ck_store_observe(s, o, (len & 1) != 0, true, &old);
        json_decref(old);
      } else if (op == '\t') {
        size_t n = 0;
        ck_store_sweep(s, NULL, mark++, ck_store_rv_of(o), swept, &n);
      } else {
        json_t *old = NULL;
        ck_store_upsert(s, o, mark, (len & 1) != 0, true, &old);
        json_decref(old);
      }
      if (key) {
        json_t *g = ck_store_get(s, key);
        json_decref(g);
      }
      free(key);
    }
    json_decref(o);
    p += len + 1;
  }
  size_t all = 0, by_ns = 0;
  ck_store_list(s, NULL, count, &all);
  if (all != ck_store_len(s))
    abort();
  ck_store_by_index(s, CK_INDEX_OWNER, "u", count, &by_ns);
  ck_store_list(s, "ns", count, &by_ns);
  ck_store_free(s);
  return 0;
}

/* The item-by-item walk of List answers: never a crash, a leak or a read
 * past the text, and whatever it accepts a whole parse accepts too, with
 * the same items and metadata. */
#include "kube/kube_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int collect(void *ctx, json_t *item) {
  return json_array_append((json_t *)ctx, item) ? CK_ENOMEM : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size ? size : 1); /* exactly size bytes: ASan sees any overread */
  if (!text)
    return 0;
  memcpy(text, data, size);
  json_t *items = json_array(), *meta = NULL;
  ck_error_t err;
  int rc = ck_list_page_each(text, size, collect, items, &meta, &err);
  if (rc == 0) {
    json_t *whole = json_loadb(text, size, JSON_DECODE_ANY, NULL);
    if (!whole)
      abort(); /* accepted what a whole parse refuses */
    /* (With a repeated member name the whole parse keeps the last one:
     * compare only when each is there once.) */
    const char *p = text;
    int nitems = 0;
    while ((p = memmem(p, size - (size_t)(p - text), "items", 5)) != NULL) {
      nitems++;
      p += 5;
    }
    json_t *want = json_object_get(whole, "items");
    if (nitems <= 1 && want && !json_is_null(want) && !json_equal(want, items))
      abort();
    json_decref(whole);
  } else if (meta) {
    abort(); /* metadata left after an error */
  }
  json_decref(meta);
  json_decref(items);
  free(text);
  return 0;
}

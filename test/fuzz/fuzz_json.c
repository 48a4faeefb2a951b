/* The library's JSON reader and writer against jansson's, on any bytes:
 * ck_json_loadb must accept exactly what json_loadb accepts (flags 0 and
 * JSON_DECODE_ANY, chosen by the first byte) with an equal tree (but for
 * the NUL bytes jansson skips, below), and
 * ck_json_dumps must write exactly what json_dumps writes. */
#include "util/jsonin.h"
#include "util/jsonout.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  bool any = data[0] & 1;
  const char *text = (const char *)data + 1;
  size_t n = size - 1;
  json_t *want = json_loadb(text, n, any ? JSON_DECODE_ANY : 0, NULL);
  ck_json_err_t e;
  json_t *got = ck_json_loadb(text, n, any, &e);
  /* jansson skips a NUL byte that ends a number or a literal ("[1\0]" is
   * [1] to it); ours refuses every NUL outside a string's escapes. With a
   * NUL in the text only what both accept is compared. */
  bool nul = memchr(text, '\0', n) != NULL;
  if ((want == NULL) != (got == NULL) && !(nul && want && !got))
    abort();
  if (!got && e.position > n)
    abort();
  if (want && got && !json_equal(want, got))
    abort();
  if (got) {
    char *a = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = ck_json_dumps(got, NULL);
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
      abort();
    free(a);
    free(b);
  }
  json_decref(want);
  json_decref(got);
  return 0;
}

/* The watch framer and event decoder. The first byte picks a chunk size so
 * lines are split across chunks in many ways; each framed line is decoded
 * as a watch event. */
#include "crdkit/watch.h"

#include "kube/kube_internal.h"

#include <stddef.h>
#include <stdint.h>

static int on_line(void *ctx, const char *line, size_t len) {
  (void)ctx;
  ck_watch_event_t ev;
  ck_error_t err;
  if (ck_watch_event_decode(line, len, &ev, &err) == 0)
    ck_watch_event_clear(&ev);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  size_t chunk = (size_t)data[0] % 64 + 1;
  data++;
  size--;
  ck_framer_t f = {.max_line = 4096};
  for (size_t off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    if (ck_framer_feed(&f, (const char *)data + off, n, on_line, NULL) != 0)
      break;
  }
  ck_framer_free(&f);
  return 0;
}

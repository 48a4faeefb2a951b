/* API Status decoding of arbitrary error bodies. */
#include "kube/kube_internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ck_error_t err;
  long code = size ? 400 + data[0] % 200 : 500;
  ck_status_decode(code, (const char *)data, size, size > 1 ? "12" : NULL, "/fuzz", &err);
  /* The message must be a terminated string. */
  if (strlen(err.message) >= sizeof err.message)
    __builtin_trap();
  return 0;
}

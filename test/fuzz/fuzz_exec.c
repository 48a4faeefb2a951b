/* ExecCredential decoding of arbitrary plugin output. */
#include "kube/kube_internal.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ck_exec_result_t r;
  ck_error_t err;
  if (ck_exec_decode((const char *)data, size, "client.authentication.k8s.io/v1", &r, &err) == 0)
    ck_exec_result_clear(&r);
  return 0;
}

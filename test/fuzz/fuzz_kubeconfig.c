/* kubeconfig parsing: any bytes give a config or an error, never a crash,
 * a hang or a leak. */
#include "crdkit/config.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ck_config_t *cfg = NULL;
  ck_error_t err;
  if (ck_config_from_kubeconfig((const char *)data, size, "/fuzz/kubeconfig", NULL, &cfg,
                                &err) == 0)
    ck_config_free(cfg);
  return 0;
}

/* Newline framing of watch streams without rescanning. */
#include "kube/kube_internal.h"

#include <string.h>

static int emit(ck_line_fn fn, void *ctx, const char *line, size_t len) {
  if (len && line[len - 1] == '\r')
    len--;
  if (len == 0)
    return 0;
  return fn(ctx, line, len);
}

int ck_framer_feed(ck_framer_t *f, const char *data, size_t len, ck_line_fn fn, void *ctx) {
  if (f->overflow)
    return CK_ETOOBIG;
  while (len > 0) {
    const char *nl = memchr(data, '\n', len);
    if (!nl) {
      /* No end of line in the rest of this chunk: keep it for later. */
      if (f->max_line && f->partial.len + len > f->max_line) {
        f->overflow = true;
        return CK_ETOOBIG;
      }
      ck_buf_append(&f->partial, data, len);
      return f->partial.oom ? CK_ENOMEM : 0;
    }
    size_t n = (size_t)(nl - data);
    int rc;
    if (f->partial.len == 0) {
      if (f->max_line && n > f->max_line) {
        f->overflow = true;
        return CK_ETOOBIG;
      }
      rc = emit(fn, ctx, data, n); /* whole line inside the chunk: no copy */
    } else {
      if (f->max_line && f->partial.len + n > f->max_line) {
        f->overflow = true;
        return CK_ETOOBIG;
      }
      ck_buf_append(&f->partial, data, n);
      if (f->partial.oom)
        return CK_ENOMEM;
      rc = emit(fn, ctx, f->partial.data, f->partial.len);
      ck_buf_reset(&f->partial);
    }
    if (rc)
      return rc;
    data = nl + 1;
    len -= n + 1;
  }
  return 0;
}

void ck_framer_free(ck_framer_t *f) { ck_buf_free(&f->partial); }

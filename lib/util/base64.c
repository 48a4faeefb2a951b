#include "util/base64.h"

#include "crdkit/error.h"

#include <stdlib.h>
#include <string.h>

static int val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int ck_base64_decode(const char *in, unsigned char **out, size_t *outlen) {
  size_t n = strlen(in);
  unsigned char *o = malloc(n / 4 * 3 + 4);
  if (!o)
    return CK_ENOMEM;
  size_t len = 0;
  unsigned acc = 0;
  int bits = 0, pad = 0, count = 0;
  for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
    if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
      continue;
    if (*p == '=') {
      pad++;
      continue;
    }
    int v = val(*p);
    if (v < 0 || pad) {
      free(o);
      return CK_EINVAL;
    }
    count++;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[len++] = (unsigned char)((acc >> bits) & 0xff);
    }
  }
  if (count % 4 == 1 || pad > 2 || (pad && (count + pad) % 4 != 0)) {
    free(o);
    return CK_EINVAL;
  }
  o[len] = '\0';
  *out = o;
  *outlen = len;
  return 0;
}

char *ck_base64_encode(const unsigned char *in, size_t len) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *o = malloc((len + 2) / 3 * 4 + 1);
  if (!o)
    return NULL;
  size_t j = 0;
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < len) v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < len) v |= in[i + 2];
    o[j++] = tbl[(v >> 18) & 63];
    o[j++] = tbl[(v >> 12) & 63];
    o[j++] = tbl[(v >> 6) & 63];
    o[j++] = tbl[v & 63];
    if (i + 1 >= len)
      o[j - 2] = '=';
    if (i + 2 >= len)
      o[j - 1] = '=';
  }
  o[j] = '\0';
  return o;
}

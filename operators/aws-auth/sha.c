/* SHA-256 for the aws-auth core: one fetch of the algorithm per process,
 * shared by the entry hashes, the ownership records, the status digests
 * and the digest of our own writes. */
#include "awsauth.h"

#include <openssl/evp.h>
#include <pthread.h>

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *aa_sha256_md(void) {
  pthread_once(&sha256_once, sha256_fetch);
  return sha256_md;
}

bool aa_sha256(const void *data, size_t len, unsigned char out[32]) {
  const EVP_MD *md = aa_sha256_md();
  unsigned int n = 0;
  return md && EVP_Digest(data, len, out, &n, md, NULL) == 1 && n == 32;
}

void aa_hex(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

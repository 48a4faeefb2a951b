#include "util/timeutil.h"

#include "crdkit/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int64_t ck_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ck_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ck_wall_s(void) { return (int64_t)time(NULL); }

void ck_sleep_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if ((*p)[i] < '0' || (*p)[i] > '9')
      return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

int ck_rfc3339_parse(const char *s, int64_t *out) {
  if (!s)
    return CK_EINVAL;
  int Y, M, D, h, m, sec;
  const char *p = s;
  if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
      digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
    return CK_EINVAL;
  p++;
  if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
      digits(&p, 2, &sec))
    return CK_EINVAL;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return CK_EINVAL;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  int offset = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1, oh, om;
    if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
      return CK_EINVAL;
    offset = sign * (oh * 3600 + om * 60);
  } else {
    return CK_EINVAL;
  }
  if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
    return CK_EINVAL;
  struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                  .tm_hour = h, .tm_min = m, .tm_sec = sec};
  *out = (int64_t)timegm(&tm) - offset;
  return 0;
}

void ck_rfc3339_format(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct timespec ck_deadline_after_ms(int64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(ms / 1000);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

uint64_t ck_rand_below(uint64_t n) {
  if (n == 0)
    return 0;
  uint64_t v;
  if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
    v = (uint64_t)ck_now_ms() * 6364136223846793005ULL;
  return v % n;
}

/* Time helpers (private). */
#ifndef CK_UTIL_TIMEUTIL_H
#define CK_UTIL_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock. */
int64_t ck_now_ms(void);
/* The same clock in microseconds (timings finer than a millisecond). */
int64_t ck_now_us(void);
/* Seconds since the epoch, wall clock. */
int64_t ck_wall_s(void);
/* Sleep for `ms` milliseconds (restarts on EINTR). */
void ck_sleep_ms(int64_t ms);
/* Parse RFC 3339 ("2026-01-02T03:04:05Z", fractional seconds and numeric
 * offsets accepted) into epoch seconds. Returns 0 or CK_EINVAL. */
int ck_rfc3339_parse(const char *s, int64_t *out);
/* Format epoch seconds as "YYYY-MM-DDTHH:MM:SSZ" into out[21+]. */
void ck_rfc3339_format(int64_t t, char out[32]);
/* Absolute CLOCK_REALTIME timespec `ms` from now (for pthread_cond_timedwait). */
struct timespec ck_deadline_after_ms(int64_t ms);
/* A uniformly random number in [0, n). Thread-safe. */
uint64_t ck_rand_below(uint64_t n);

#endif

#include "crdkit/log.h"

#include "crdkit/error.h"
#include "util/buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = CK_LOG_INFO;
static atomic_int g_format = CK_LOG_FORMAT_AUTO;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ck_log_sink_fn g_sink;
static void *g_sink_ctx;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void ck_log_set_level(ck_log_level_t level) { atomic_store(&g_level, (int)level); }
ck_log_level_t ck_log_get_level(void) { return (ck_log_level_t)atomic_load(&g_level); }
void ck_log_set_format(ck_log_format_t format) { atomic_store(&g_format, (int)format); }
bool ck_log_enabled(ck_log_level_t level) { return (int)level <= atomic_load(&g_level); }

void ck_log_set_sink(ck_log_sink_fn fn, void *ctx) {
  pthread_mutex_lock(&g_lock);
  g_sink = fn;
  g_sink_ctx = ctx;
  pthread_mutex_unlock(&g_lock);
}

int ck_log_level_parse(const char *s, ck_log_level_t *out) {
  for (int i = 0; s && i <= CK_LOG_TRACE; i++)
    if (strcasecmp(s, level_names[i]) == 0) {
      *out = (ck_log_level_t)i;
      return 0;
    }
  if (s && strcasecmp(s, "warning") == 0) {
    *out = CK_LOG_WARN;
    return 0;
  }
  return CK_EINVAL;
}

int ck_log_format_parse(const char *s, ck_log_format_t *out) {
  if (!s)
    return CK_EINVAL;
  if (strcasecmp(s, "text") == 0)
    *out = CK_LOG_FORMAT_TEXT;
  else if (strcasecmp(s, "json") == 0)
    *out = CK_LOG_FORMAT_JSON;
  else if (strcasecmp(s, "auto") == 0)
    *out = CK_LOG_FORMAT_AUTO;
  else
    return CK_EINVAL;
  return 0;
}

static void timestamp(char *out, size_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + len, n - len, ".%03ldZ", ts.tv_nsec / 1000000);
}

void ck_log(ck_log_level_t level, const char *component, const char *key, const char *fmt, ...) {
  if (!ck_log_enabled(level))
    return;
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char ts[40];
  timestamp(ts, sizeof ts);

  int format = atomic_load(&g_format);
  if (format == CK_LOG_FORMAT_AUTO)
    format = isatty(STDERR_FILENO) ? CK_LOG_FORMAT_TEXT : CK_LOG_FORMAT_JSON;

  ck_buf_t b = {0};
  const char *lvl = level_names[level <= CK_LOG_TRACE ? level : CK_LOG_TRACE];
  if (format == CK_LOG_FORMAT_JSON) {
    ck_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, lvl);
    if (component) {
      ck_buf_puts(&b, ",\"controller\":");
      ck_buf_json_string(&b, component);
    }
    if (key) {
      ck_buf_puts(&b, ",\"object\":");
      ck_buf_json_string(&b, key);
    }
    ck_buf_puts(&b, ",\"msg\":");
    ck_buf_json_string(&b, msg);
    ck_buf_puts(&b, "}");
  } else {
    ck_buf_printf(&b, "%s %-5s", ts, lvl);
    if (component)
      ck_buf_printf(&b, " [%s]", component);
    if (key)
      ck_buf_printf(&b, " %s:", key);
    ck_buf_printf(&b, " %s", msg);
  }
  const char *line = b.data ? b.data : "";
  pthread_mutex_lock(&g_lock);
  if (g_sink)
    g_sink(g_sink_ctx, level, line);
  else
    fprintf(stderr, "%s\n", line);
  pthread_mutex_unlock(&g_lock);
  ck_buf_free(&b);
}

/* crdkit/log.h: levelled logging, readable text on a terminal, JSON lines
 * otherwise (or when asked).
 *
 * The library never writes to stdout: log lines go to stderr unless a sink
 * is installed. Every line may carry a component (e.g. the controller name)
 * and an object key ("namespace/name"). All functions are thread-safe; the
 * settings are process-wide.
 */
#ifndef CRDKIT_LOG_H
#define CRDKIT_LOG_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ck_log_level {
  CK_LOG_ERROR = 0,
  CK_LOG_WARN,
  CK_LOG_INFO,
  CK_LOG_DEBUG,
  CK_LOG_TRACE,
} ck_log_level_t;

typedef enum ck_log_format {
  CK_LOG_FORMAT_AUTO = 0, /* text if stderr is a terminal, else JSON */
  CK_LOG_FORMAT_TEXT,
  CK_LOG_FORMAT_JSON,
} ck_log_format_t;

/* A sink receives each formatted line (no trailing newline). `line` is
 * borrowed for the duration of the call. Called with an internal lock held:
 * a sink must not log. */
typedef void (*ck_log_sink_fn)(void *ctx, ck_log_level_t level, const char *line);

void ck_log_set_level(ck_log_level_t level);
ck_log_level_t ck_log_get_level(void);
void ck_log_set_format(ck_log_format_t format);
/* Install a sink (NULL restores stderr). */
void ck_log_set_sink(ck_log_sink_fn fn, void *ctx);

/* Parse "error|warn|info|debug|trace" (case-insensitive). Returns 0 or
 * CK_EINVAL. */
int ck_log_level_parse(const char *s, ck_log_level_t *out);
/* Parse "text|json|auto". Returns 0 or CK_EINVAL. */
int ck_log_format_parse(const char *s, ck_log_format_t *out);

bool ck_log_enabled(ck_log_level_t level);

/* Log one line. `component` and `key` may be NULL. */
void ck_log(ck_log_level_t level, const char *component, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define ck_log_at(lvl, comp, key, ...)                                                             \
  do {                                                                                             \
    if (ck_log_enabled(lvl))                                                                       \
      ck_log(lvl, comp, key, __VA_ARGS__);                                                         \
  } while (0)
#define CK_ERROR(comp, key, ...) ck_log_at(CK_LOG_ERROR, comp, key, __VA_ARGS__)
#define CK_WARN(comp, key, ...) ck_log_at(CK_LOG_WARN, comp, key, __VA_ARGS__)
#define CK_INFO(comp, key, ...) ck_log_at(CK_LOG_INFO, comp, key, __VA_ARGS__)
#define CK_DEBUG(comp, key, ...) ck_log_at(CK_LOG_DEBUG, comp, key, __VA_ARGS__)
#define CK_TRACE(comp, key, ...) ck_log_at(CK_LOG_TRACE, comp, key, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif

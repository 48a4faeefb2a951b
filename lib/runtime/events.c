/* The Events recorder: aggregation, a bounded backlog and one sender
 * thread.
 *
 * Every distinct (regarding uid, type, reason, action, note) is an entry
 * in a hash table, kept 10 minutes after its last occurrence so repeats
 * update one Event's series instead of creating an object each. An entry
 * with occurrences not yet written sits in a FIFO (the backlog); the
 * thread takes the oldest entry that is ready (new, or last written at
 * least a second ago), writes it with the lock released, and accounts the
 * occurrences it carried as sent or dropped. */
#include "crdkit/events.h"

#include "crdkit/error.h"
#include "crdkit/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOTE_MAX 1024            /* events.k8s.io/v1 validation limit, bytes */
#define FIELD_MAX 128            /* reason, action, reportingInstance */
#define NAME_MAX_LEN 253         /* a DNS subdomain */
#define WINDOW_MS (10LL * 60 * 1000)
#define SERIES_INTERVAL_MS 1000
#define PURGE_EVERY_MS (60LL * 1000)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS (30LL * 1000)
#define NBUCKETS 1024

typedef struct ev_entry {
  struct ev_entry *hnext; /* hash chain */
  struct ev_entry *qnext; /* backlog FIFO */
  uint64_t hash;
  char *key;
  json_t *body; /* the Event as first created, without series */
  char *name;
  char *ns;
  int64_t count;        /* occurrences observed: series.count */
  int64_t accounted;    /* occurrences counted as sent or dropped */
  int64_t last_obs_us;  /* wall clock, for series.lastObservedTime */
  int64_t last_obs_ms;  /* monotonic, for the aggregation window */
  int64_t next_write_ms; /* monotonic: series writes at most once a second */
  bool created, queued, inflight;
} ev_entry_t;

struct ck_recorder {
  ck_client_t *client;
  char *controller;
  char *instance;
  int backlog;
  size_t max_entries;

  pthread_mutex_t mu;
  pthread_cond_t wake; /* for the thread: work, stop */
  pthread_cond_t idle; /* for flush: backlog empty, nothing in flight */
  pthread_t thread;

  ev_entry_t *buckets[NBUCKETS];
  size_t nentries;
  ev_entry_t *qhead, *qtail;
  int qlen;
  bool busy; /* a write is in flight */

  bool stopping;
  int64_t stop_deadline_ms;
  int64_t backoff_ms;
  int64_t backoff_until_ms;
  int64_t next_purge_ms;

  uint64_t sent, dropped;
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

static int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* MicroTime as the API writes it: "2026-11-22T10:00:00.000000Z". */
static void micro_time(int64_t us, char out[40]) {
  char sec[32];
  ck_rfc3339_format(us / 1000000, sec);
  size_t n = strlen(sec);
  if (n && sec[n - 1] == 'Z')
    sec[n - 1] = '\0';
  snprintf(out, 40, "%s.%06lldZ", sec, (long long)(us % 1000000));
}

/* Cut at most `max` bytes without splitting a UTF-8 sequence. */
static void utf8_cut(char *s, size_t max) {
  size_t n = strlen(s);
  if (n <= max)
    return;
  size_t i = max;
  while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
    i--;
  s[i] = '\0';
}

static const char *jstr(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static void entry_free(ev_entry_t *e) {
  if (!e)
    return;
  free(e->key);
  free(e->name);
  free(e->ns);
  json_decref(e->body);
  free(e);
}

static void hash_remove(ck_recorder_t *r, ev_entry_t *e) {
  ev_entry_t **pp = &r->buckets[e->hash % NBUCKETS];
  while (*pp && *pp != e)
    pp = &(*pp)->hnext;
  if (*pp) {
    *pp = e->hnext;
    r->nentries--;
  }
}

static void queue_push(ck_recorder_t *r, ev_entry_t *e) {
  e->qnext = NULL;
  e->queued = true;
  if (r->qtail)
    r->qtail->qnext = e;
  else
    r->qhead = e;
  r->qtail = e;
  r->qlen++;
}

/* Unlink `e`, whose predecessor in the FIFO is `prev` (NULL for the head). */
static void queue_unlink(ck_recorder_t *r, ev_entry_t *prev, ev_entry_t *e) {
  if (prev)
    prev->qnext = e->qnext;
  else
    r->qhead = e->qnext;
  if (r->qtail == e)
    r->qtail = prev;
  e->qnext = NULL;
  e->queued = false;
  r->qlen--;
}

/* Give up on the occurrences `e` holds unwritten. An Event never created
 * is forgotten; a created one stays so later repeats still update it. */
static void entry_drop(ck_recorder_t *r, ev_entry_t *e) {
  if (e->count > e->accounted)
    r->dropped += (uint64_t)(e->count - e->accounted);
  e->accounted = e->count;
  if (!e->created && !e->inflight) {
    hash_remove(r, e);
    entry_free(e);
  }
}

/* Backlog full: drop the oldest queued entry (never the one in flight,
 * which the thread still uses). */
static void drop_oldest(ck_recorder_t *r) {
  ev_entry_t *prev = NULL;
  for (ev_entry_t *e = r->qhead; e; prev = e, e = e->qnext) {
    if (e->inflight)
      continue;
    queue_unlink(r, prev, e);
    entry_drop(r, e);
    return;
  }
}

/* Forget entries idle past the window; with `force`, also the least
 * recently seen idle one so the table stays bounded. */
static void purge(ck_recorder_t *r, int64_t now_ms, bool force) {
  ev_entry_t *oldest = NULL;
  for (size_t b = 0; b < NBUCKETS; b++) {
    ev_entry_t **pp = &r->buckets[b];
    while (*pp) {
      ev_entry_t *e = *pp;
      bool idle = !e->queued && !e->inflight;
      if (idle && now_ms - e->last_obs_ms >= WINDOW_MS) {
        *pp = e->hnext;
        r->nentries--;
        entry_free(e);
        continue;
      }
      if (idle && (!oldest || e->last_obs_ms < oldest->last_obs_ms))
        oldest = e;
      pp = &e->hnext;
    }
  }
  if (force && oldest && r->nentries >= r->max_entries) {
    hash_remove(r, oldest);
    entry_free(oldest);
  }
}

/* "<name>.<16 hex>", the regarding name cut so the whole stays a valid
 * object name. */
static char *event_name(const char *regarding_name) {
  char *out = NULL;
  int keep = NAME_MAX_LEN - 17;
  uint64_t rnd = ck_rand_below(UINT64_MAX);
  if (asprintf(&out, "%.*s.%016llx", keep, regarding_name, (unsigned long long)rnd) < 0)
    return NULL;
  return out;
}

/* ---- the sender thread ---------------------------------------------------- */

static bool retryable(int rc, const ck_error_t *e) {
  if (rc == CK_ETRANSPORT || rc == CK_ETIMEDOUT)
    return true;
  return rc == CK_EAPI && (e->http_status >= 500 || e->http_status == 429 || e->http_status == 0);
}

/* Build the request for `e` (lock held): the JSON body of a create in
 * *create, or the merge patch text of a series update in *patch. */
static int prepare(const ev_entry_t *e, json_t **create, char **patch) {
  *create = NULL;
  *patch = NULL;
  char last[40];
  micro_time(e->last_obs_us, last);
  json_t *series = NULL;
  /* The API wants count >= 2 in a series: one occurrence has none. */
  if (e->count >= 2) {
    series = json_pack("{s:I,s:s}", "count", (json_int_t)e->count, "lastObservedTime", last);
    if (!series)
      return CK_ENOMEM;
  }
  if (e->created) {
    json_t *p = json_pack("{s:o}", "series", series);
    *patch = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    return *patch ? 0 : CK_ENOMEM;
  }
  json_t *body = json_deep_copy(e->body);
  if (!body) {
    json_decref(series);
    return CK_ENOMEM;
  }
  json_t *meta = json_object_get(body, "metadata");
  if (json_object_set_new(meta, "name", json_string(e->name)) ||
      (series && json_object_set_new(body, "series", series))) {
    json_decref(body);
    return CK_ENOMEM;
  }
  *create = body;
  return 0;
}

/* Send one entry: lock held on entry and exit, released for the request. */
static void send_one(ck_recorder_t *r, ev_entry_t *e) {
  json_t *create = NULL;
  char *patch = NULL;
  if (prepare(e, &create, &patch)) {
    entry_drop(r, e);
    return;
  }
  int64_t snap = e->count;
  bool was_created = e->created;
  char *name = strdup(e->name), *ns = strdup(e->ns);
  e->inflight = true;
  r->busy = true;
  pthread_mutex_unlock(&r->mu);

  ck_error_t err = {0};
  int rc;
  if (!name || !ns)
    rc = ck_error_set(&err, CK_ENOMEM, "out of memory");
  else if (create)
    rc = ck_object_create(r->client, &ck_res_events, ns, create, NULL, NULL, &err);
  else
    rc = ck_object_patch(r->client, &ck_res_events, ns, name, CK_PATCH_MERGE, patch, NULL, NULL,
                         &err);
  json_decref(create);
  free(patch);

  pthread_mutex_lock(&r->mu);
  e->inflight = false;
  r->busy = false;
  e->next_write_ms = ck_now_ms() + SERIES_INTERVAL_MS;
  if (rc == 0) {
    e->created = true;
    if (snap > e->accounted) {
      r->sent += (uint64_t)(snap - e->accounted);
      e->accounted = snap;
    }
    r->backoff_ms = 0;
  } else if (was_created && ck_error_is_not_found(&err)) {
    /* The Event expired (the apiserver keeps them an hour) or was deleted:
     * start a new one carrying the whole count. */
    char *fresh = event_name(jstr(json_object_get(e->body, "regarding"), "name"));
    if (fresh) {
      free(e->name);
      e->name = fresh;
      e->created = false;
      if (!e->queued)
        queue_push(r, e);
    } else {
      entry_drop(r, e);
    }
  } else {
    CK_WARN("events", NULL, "event %s/%s not recorded: %s", ns ? ns : "", name ? name : "",
            err.message);
    if (snap > e->accounted) {
      r->dropped += (uint64_t)(snap - e->accounted);
      e->accounted = snap;
    }
    if (retryable(rc, &err)) {
      /* The client already retried; pausing here keeps a dead server from
       * costing a full retry cycle per event while the backlog absorbs
       * (and, past its bound, sheds) what comes meanwhile. */
      r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
      if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
      r->backoff_until_ms = ck_now_ms() + r->backoff_ms;
    }
    if (!e->created && !e->queued) {
      hash_remove(r, e);
      entry_free(e);
    }
  }
  free(name);
  free(ns);
  pthread_cond_broadcast(&r->idle);
}

static void drop_all(ck_recorder_t *r) {
  while (r->qhead) {
    ev_entry_t *e = r->qhead;
    queue_unlink(r, NULL, e);
    entry_drop(r, e);
  }
}

static void timed_wait(ck_recorder_t *r, int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = ck_deadline_after_ms(ms);
  pthread_cond_timedwait(&r->wake, &r->mu, &ts);
}

static void *sender_main(void *arg) {
  ck_recorder_t *r = arg;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    int64_t now = ck_now_ms();
    if (r->stopping) {
      /* Past the deadline, or nothing to send, or a server that was just
       * unreachable: waiting longer would only delay shutdown. */
      if (!r->qhead || now >= r->stop_deadline_ms || r->backoff_until_ms > now) {
        drop_all(r);
        pthread_cond_broadcast(&r->idle);
        break;
      }
    }
    if (now >= r->next_purge_ms) {
      purge(r, now, false);
      r->next_purge_ms = now + PURGE_EVERY_MS;
    }
    if (!r->qhead) {
      pthread_cond_broadcast(&r->idle);
      timed_wait(r, r->next_purge_ms - now);
      continue;
    }
    if (r->backoff_until_ms > now) {
      timed_wait(r, r->backoff_until_ms - now);
      continue;
    }
    /* The oldest ready entry; a stopping recorder sends everything now. */
    ev_entry_t *prev = NULL, *pick = NULL;
    int64_t soonest = INT64_MAX;
    for (ev_entry_t *e = r->qhead, *p = NULL; e; p = e, e = e->qnext) {
      if (!e->created || r->stopping || e->next_write_ms <= now) {
        pick = e;
        prev = p;
        break;
      }
      if (e->next_write_ms < soonest)
        soonest = e->next_write_ms;
    }
    if (!pick) {
      int64_t until = soonest < r->next_purge_ms ? soonest : r->next_purge_ms;
      timed_wait(r, until - now);
      continue;
    }
    queue_unlink(r, prev, pick);
    send_one(r, pick);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* ---- public API ------------------------------------------------------------ */

int ck_recorder_new(ck_client_t *c, const ck_recorder_opts_t *opts, ck_recorder_t **out,
                    ck_error_t *err) {
  if (out)
    *out = NULL;
  if (!c || !opts || !out || !opts->controller || !*opts->controller ||
      strlen(opts->controller) > FIELD_MAX || opts->backlog < 0)
    return ck_error_set(err, CK_EINVAL,
                        "ck_recorder_new: client, output and a controller name (at most %d "
                        "characters) needed",
                        FIELD_MAX);
  ck_recorder_t *r = calloc(1, sizeof *r);
  if (!r)
    return ck_error_set(err, CK_ENOMEM, "ck_recorder_new: out of memory");
  r->client = c;
  r->backlog = opts->backlog ? opts->backlog : 1000;
  r->max_entries = (size_t)r->backlog * 4 > 4096 ? (size_t)r->backlog * 4 : 4096;
  r->controller = strdup(opts->controller);
  if (opts->instance && *opts->instance) {
    r->instance = strdup(opts->instance);
  } else {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !*host)
      snprintf(host, sizeof host, "unknown");
    if (asprintf(&r->instance, "%s-%s", opts->controller, host) < 0)
      r->instance = NULL;
  }
  if (!r->controller || !r->instance) {
    free(r->controller);
    free(r->instance);
    free(r);
    return ck_error_set(err, CK_ENOMEM, "ck_recorder_new: out of memory");
  }
  utf8_cut(r->instance, FIELD_MAX);
  r->next_purge_ms = ck_now_ms() + PURGE_EVERY_MS;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->wake, NULL);
  pthread_cond_init(&r->idle, NULL);
  int prc = pthread_create(&r->thread, NULL, sender_main, r);
  if (prc != 0) {
    pthread_cond_destroy(&r->idle);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mu);
    free(r->controller);
    free(r->instance);
    free(r);
    return ck_error_set(err, CK_ENOMEM, "ck_recorder_new: cannot start a thread: %s",
                        strerror(prc));
  }
  *out = r;
  return 0;
}

void ck_recorder_free(ck_recorder_t *r, int64_t timeout_ms) {
  if (!r)
    return;
  pthread_mutex_lock(&r->mu);
  r->stopping = true;
  r->stop_deadline_ms = ck_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  pthread_cond_broadcast(&r->wake);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);

  uint64_t dropped = r->dropped;
  if (dropped)
    CK_DEBUG("events", NULL, "recorder stopped; %llu events were dropped",
             (unsigned long long)dropped);
  for (size_t b = 0; b < NBUCKETS; b++) {
    ev_entry_t *e = r->buckets[b];
    while (e) {
      ev_entry_t *next = e->hnext;
      entry_free(e);
      e = next;
    }
  }
  pthread_cond_destroy(&r->idle);
  pthread_cond_destroy(&r->wake);
  pthread_mutex_destroy(&r->mu);
  free(r->controller);
  free(r->instance);
  free(r);
}

/* The Event body without name and series (those change per write). */
static json_t *event_body(const ck_recorder_t *r, const json_t *regarding, const char *ns,
                          const char *type, const char *reason, const char *action,
                          const char *note, int64_t us) {
  const json_t *meta = json_object_get(regarding, "metadata");
  json_t *reg = json_object();
  static const char *const top[] = {"apiVersion", "kind"};
  static const char *const from_meta[] = {"namespace", "name", "uid", "resourceVersion"};
  for (size_t i = 0; reg && i < 2; i++) {
    const char *v = jstr(regarding, top[i]);
    if (v && *v && json_object_set_new(reg, top[i], json_string(v)))
      goto oom;
  }
  for (size_t i = 0; reg && i < 4; i++) {
    const char *v = jstr(meta, from_meta[i]);
    if (v && *v && json_object_set_new(reg, from_meta[i], json_string(v)))
      goto oom;
  }
  if (!reg)
    return NULL;
  char when[40];
  micro_time(us, when);
  json_t *body = json_pack("{s:s,s:s,s:{s:s},s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "apiVersion",
                           "events.k8s.io/v1", "kind", "Event", "metadata", "namespace", ns,
                           "eventTime", when, "reportingController", r->controller,
                           "reportingInstance", r->instance, "action", action, "reason", reason,
                           "type", type, "note", note, "regarding", reg);
  return body;
oom:
  json_decref(reg);
  return NULL;
}

static bool valid_word(const char *s) { return s && *s && strlen(s) <= FIELD_MAX; }

int ck_event(ck_recorder_t *r, const json_t *regarding, const char *type, const char *reason,
             const char *action, const char *note_fmt, ...) {
  if (!r || !json_is_object(regarding) || !type ||
      (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0) || !valid_word(reason) ||
      !valid_word(action) || !note_fmt)
    return CK_EINVAL;
  const json_t *meta = json_object_get(regarding, "metadata");
  const char *name = jstr(meta, "name"), *kind = jstr(regarding, "kind");
  const char *rns = jstr(meta, "namespace"), *uid = jstr(meta, "uid");
  if (!name || !*name || !kind || !*kind)
    return CK_EINVAL;
  /* Cluster-scoped objects get their events in "default", as the API's
   * validation allows and kubectl looks for them. */
  const char *ns = rns && *rns ? rns : "default";

  char note[NOTE_MAX + 8];
  va_list ap;
  va_start(ap, note_fmt);
  vsnprintf(note, sizeof note, note_fmt, ap);
  va_end(ap);
  utf8_cut(note, NOTE_MAX);

  char *key = NULL;
  if (asprintf(&key, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", uid ? uid : "", ns, kind,
               name, type, reason, action, note) < 0)
    return CK_ENOMEM;
  uint64_t h = fnv1a(key);
  int64_t now_ms = ck_now_ms(), now_us = wall_us();

  pthread_mutex_lock(&r->mu);
  if (r->stopping) {
    pthread_mutex_unlock(&r->mu);
    free(key);
    return CK_EINVAL;
  }
  ev_entry_t *e = r->buckets[h % NBUCKETS];
  while (e && !(e->hash == h && strcmp(e->key, key) == 0))
    e = e->hnext;
  if (e && !e->queued && !e->inflight && now_ms - e->last_obs_ms >= WINDOW_MS) {
    /* Outside the window a repeat is news: a new Event. */
    hash_remove(r, e);
    entry_free(e);
    e = NULL;
  }
  if (e) {
    free(key);
    e->count++;
    e->last_obs_us = now_us;
    e->last_obs_ms = now_ms;
  } else {
    e = calloc(1, sizeof *e);
    int rc = CK_ENOMEM;
    if (e) {
      e->key = key;
      e->hash = h;
      e->name = event_name(name);
      e->ns = strdup(ns);
      e->body = event_body(r, regarding, ns, type, reason, action, note, now_us);
      /* json_string in event_body refuses invalid UTF-8. */
      if (e->name && e->ns && e->body)
        rc = 0;
      else if (e->name && e->ns)
        rc = CK_EINVAL;
    } else {
      free(key);
    }
    if (rc) {
      entry_free(e);
      pthread_mutex_unlock(&r->mu);
      return rc;
    }
    e->count = 1;
    e->last_obs_us = now_us;
    e->last_obs_ms = now_ms;
    if (r->nentries >= r->max_entries)
      purge(r, now_ms, true);
    e->hnext = r->buckets[h % NBUCKETS];
    r->buckets[h % NBUCKETS] = e;
    r->nentries++;
  }
  if (!e->queued) {
    if (r->qlen >= r->backlog)
      drop_oldest(r);
    queue_push(r, e);
  }
  pthread_cond_signal(&r->wake);
  pthread_mutex_unlock(&r->mu);
  return 0;
}

int ck_recorder_flush(ck_recorder_t *r, int64_t timeout_ms) {
  if (!r)
    return CK_EINVAL;
  int64_t deadline = ck_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  int rc = 0;
  pthread_mutex_lock(&r->mu);
  while (r->qhead || r->busy) {
    int64_t left = deadline - ck_now_ms();
    if (left <= 0) {
      rc = CK_ETIMEDOUT;
      break;
    }
    struct timespec ts = ck_deadline_after_ms(left);
    pthread_cond_timedwait(&r->idle, &r->mu, &ts);
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

uint64_t ck_recorder_sent(ck_recorder_t *r) {
  if (!r)
    return 0;
  pthread_mutex_lock(&r->mu);
  uint64_t v = r->sent;
  pthread_mutex_unlock(&r->mu);
  return v;
}

uint64_t ck_recorder_dropped(ck_recorder_t *r) {
  if (!r)
    return 0;
  pthread_mutex_lock(&r->mu);
  uint64_t v = r->dropped;
  pthread_mutex_unlock(&r->mu);
  return v;
}

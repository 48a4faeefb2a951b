/* ck_operator_main: the standard command line of an operator, its
 * environment variables, and the run (crdkit/operator.h). */
#include "crdkit/operator.h"

#include "crdkit/client.h"
#include "crdkit/config.h"
#include "crdkit/log.h"
#include "ck_version.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct ck_args {
  json_t *values;     /* flag name -> string ("true"/"false" for booleans) */
  json_t *namespaces; /* array of strings */
};

static const char *const log_levels[] = {"error", "warn", "info", "debug", "trace", NULL};
static const char *const log_formats[] = {"text", "json", "auto", NULL};

/* The standard flags; "namespace" is repeatable and handled apart. */
static const ck_flag_t std_flags[] = {
    {.name = "kubeconfig", .help = "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"},
    {.name = "context", .help = "kubeconfig context (default: the current one)"},
    {.name = "namespace", .help = "watch this namespace (repeatable; env: comma-separated)"},
    {.name = "all-namespaces", .type = CK_FLAG_BOOL, .help = "watch every namespace"},
    {.name = "create-crd", .type = CK_FLAG_BOOL, .help = "create or update the CRD at start-up"},
    {.name = "print-crd", .type = CK_FLAG_BOOL, .help = "print the CRD (YAML) and exit"},
    {.name = "log-level", .type = CK_FLAG_ENUM, .choices = log_levels, .def = "info",
     .help = "log level"},
    {.name = "log-format", .type = CK_FLAG_ENUM, .choices = log_formats, .def = "auto",
     .help = "log format (auto: text on a terminal, else json)"},
    {.name = "metrics-bind-address", .def = ":8080", .help = "/metrics address (0: off)"},
    {.name = "health-probe-bind-address", .def = ":8081",
     .help = "/healthz and /readyz address (0: off)"},
    {.name = "leader-elect", .type = CK_FLAG_BOOL,
     .help = "run as one of several replicas: only the Lease holder works"},
    {.name = "leader-election-namespace", .help = "namespace of the Lease (default: the client's)"},
    {.name = "max-concurrent-reconciles", .type = CK_FLAG_INT, .min = 1, .max = 1024,
     .help = "workers per controller (default: the operator's choice)"},
    {0},
};

/* ---- args --------------------------------------------------------------------- */

const char *ck_args_string(const ck_args_t *a, const char *name) {
  if (!a || !name)
    return NULL;
  if (strcmp(name, "namespace") == 0)
    return json_string_value(json_array_get(a->namespaces, 0));
  return json_string_value(json_object_get(a->values, name));
}

int64_t ck_args_int(const ck_args_t *a, const char *name, int64_t def) {
  const char *s = ck_args_string(a, name);
  if (!s)
    return def;
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  return (*s && !*end) ? (int64_t)v : def;
}

bool ck_args_bool(const ck_args_t *a, const char *name) {
  const char *s = ck_args_string(a, name);
  return s && strcmp(s, "true") == 0;
}

/* ---- parsing ---------------------------------------------------------------------- */

typedef struct parser {
  const ck_operator_t *op;
  char prefix[128];
  const ck_flag_t **flags; /* standard then the operator's */
  size_t n, nstd;
  ck_args_t args;
} parser_t;

static void env_name(const parser_t *p, const char *flag, char *out, size_t len) {
  int n = snprintf(out, len, "%s_", p->prefix);
  for (size_t i = 0; flag[i] && (size_t)n + 1 < len; i++, n++)
    out[n] = (char)(flag[i] == '-' ? '_' : toupper((unsigned char)flag[i]));
  out[(size_t)n < len ? (size_t)n : len - 1] = 0;
}

static int bad(const parser_t *p, const char *where, const char *value, const char *accepted) {
  fprintf(stderr, "%s: %s: \"%s\" is not %s\n", p->op->name, where, value, accepted);
  return 2;
}

static void choices_text(const ck_flag_t *f, char *out, size_t len) {
  size_t n = 0;
  out[0] = 0;
  for (const char *const *c = f->choices; c && *c && n + 1 < len; c++)
    n += (size_t)snprintf(out + n, len - n, "%s%s", c == f->choices ? "" : c[1] ? ", " : " or ", *c);
}

/* Check and store one value; `where` is "--flag" or "ENV_VAR". */
static int set_value(parser_t *p, const ck_flag_t *f, const char *where, const char *v) {
  char acc[256];
  switch (f->type) {
  case CK_FLAG_INT: {
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    bool bounded = f->min < f->max;
    if (!*v || *end || (bounded && (x < f->min || x > f->max))) {
      if (bounded)
        snprintf(acc, sizeof acc, "a whole number from %lld to %lld", (long long)f->min,
                 (long long)f->max);
      else
        snprintf(acc, sizeof acc, "a whole number");
      return bad(p, where, v, acc);
    }
    break;
  }
  case CK_FLAG_BOOL:
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0)
      v = "true";
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0 || !*v)
      v = "false";
    else
      return bad(p, where, v, "true or false");
    break;
  case CK_FLAG_ENUM: {
    bool ok = false;
    for (const char *const *c = f->choices; c && *c; c++)
      ok = ok || strcmp(*c, v) == 0;
    if (!ok) {
      char list[200];
      choices_text(f, list, sizeof list);
      snprintf(acc, sizeof acc, "one of %s", list);
      return bad(p, where, v, acc);
    }
    break;
  }
  case CK_FLAG_STRING: break;
  }
  if (strcmp(f->name, "namespace") == 0) {
    if (!*v)
      return bad(p, where, v, "a namespace name");
    json_array_append_new(p->args.namespaces, json_string(v));
    return 0;
  }
  json_object_set_new(p->args.values, f->name, json_string(v));
  return 0;
}

static int from_env(parser_t *p) {
  for (size_t i = 0; i < p->n; i++) {
    const ck_flag_t *f = p->flags[i];
    char var[256];
    env_name(p, f->name, var, sizeof var);
    const char *v = getenv(var);
    if (f->def && strcmp(f->name, "namespace") != 0)
      json_object_set_new(p->args.values, f->name, json_string(f->def));
    if (!v || !*v)
      continue;
    if (strcmp(f->name, "namespace") == 0) { /* a comma-separated list */
      char *copy = strdup(v), *save = NULL;
      int rc = copy ? 0 : 1;
      for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && t;
           t = strtok_r(NULL, ",", &save))
        rc = set_value(p, f, var, t);
      free(copy);
      if (rc)
        return rc;
      continue;
    }
    int rc = set_value(p, f, var, v);
    if (rc)
      return rc;
  }
  return 0;
}

static void usage(const parser_t *p, FILE *f) {
  const ck_operator_t *op = p->op;
  fprintf(f, "usage: %s [options]\n\n", op->name);
  if (op->description)
    fprintf(f, "%s\n\n", op->description);
  for (int part = 0; part < (p->n > p->nstd ? 2 : 1); part++) {
    fputs(part == 0 ? "Options:\n" : "\nOptions of this operator:\n", f);
    for (size_t i = 0; i < p->n; i++) {
      const ck_flag_t *fl = p->flags[i];
      if ((i < p->nstd) != (part == 0))
        continue;
      char head[160], var[256], extra[300] = "";
      const char *arg = fl->type == CK_FLAG_BOOL ? "" : fl->type == CK_FLAG_INT ? " N" : " VALUE";
      snprintf(head, sizeof head, "--%s%s", fl->name, arg);
      env_name(p, fl->name, var, sizeof var);
      size_t n = 0;
      if (fl->type == CK_FLAG_ENUM) {
        char list[200];
        choices_text(fl, list, sizeof list);
        n += (size_t)snprintf(extra + n, sizeof extra - n, " (%s)", list);
      }
      if (fl->def)
        n += (size_t)snprintf(extra + n, sizeof extra - n, " [default %s]", fl->def);
      if (fl->required)
        snprintf(extra + n, sizeof extra - n, " [required]");
      fprintf(f, "  %-32s %s%s\n  %-32s env %s\n", head, fl->help ? fl->help : "", extra, "",
              var);
    }
    if (part == 0)
      fputs("  --version                        print the version and exit\n"
            "  --help                           this text\n",
            f);
  }
}

static void parser_free(parser_t *p) {
  free(p->flags);
  json_decref(p->args.values);
  json_decref(p->args.namespaces);
}

/* Returns -1 to go on, else an exit status. */
static int parse(parser_t *p, int argc, char **argv) {
  const ck_operator_t *op = p->op;
  const char *src = op->env_prefix ? op->env_prefix : op->name;
  size_t k = 0;
  for (; src[k] && k + 1 < sizeof p->prefix; k++)
    p->prefix[k] = (char)(isalnum((unsigned char)src[k]) ? toupper((unsigned char)src[k]) : '_');
  p->prefix[k] = 0;
  size_t nstd = sizeof std_flags / sizeof std_flags[0] - 1, nop = 0;
  for (const ck_flag_t *f = op->flags; f && f->name; f++)
    nop++;
  p->flags = calloc(nstd + nop + 1, sizeof(const ck_flag_t *));
  struct option *lo = calloc(nstd + nop + 3, sizeof *lo);
  p->args.values = json_object();
  p->args.namespaces = json_array();
  if (!p->flags || !lo || !p->args.values || !p->args.namespaces) {
    free(lo);
    fprintf(stderr, "%s: out of memory\n", op->name);
    return 1;
  }
  for (size_t i = 0; i < nstd; i++)
    p->flags[p->n++] = &std_flags[i];
  p->nstd = nstd;
  for (size_t i = 0; i < nop; i++) {
    for (size_t j = 0; j < p->n; j++)
      if (strcmp(p->flags[j]->name, op->flags[i].name) == 0) {
        fprintf(stderr, "%s: flag --%s is defined twice (it is a standard flag or repeated)\n",
                op->name, op->flags[i].name);
        free(lo);
        return 2;
      }
    p->flags[p->n++] = &op->flags[i];
  }
  for (size_t i = 0; i < p->n; i++)
    lo[i] = (struct option){p->flags[i]->name,
                            p->flags[i]->type == CK_FLAG_BOOL ? no_argument : required_argument,
                            NULL, (int)(256 + i)};
  lo[p->n] = (struct option){"version", no_argument, NULL, 'V'};
  lo[p->n + 1] = (struct option){"help", no_argument, NULL, 'h'};
  /* --help and --version work whatever the environment holds. */
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
        strcmp(argv[i], "--version") == 0) {
      if (argv[i][2] == 'v')
        printf("%s %s (crdkit %s)\n", op->name, op->version ? op->version : "", CK_VERSION);
      else
        usage(p, stdout);
      free(lo);
      return 0;
    }
  int rc = from_env(p);
  bool ns_from_flags = false;
  opterr = 1;
  optind = 1;
  int ch;
  while (rc == 0 && (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    if (ch == 'h') {
      usage(p, stdout);
      rc = -2;
    } else if (ch == 'V') {
      printf("%s %s (crdkit %s)\n", op->name, op->version ? op->version : "", CK_VERSION);
      rc = -2;
    } else if (ch >= 256 && (size_t)(ch - 256) < p->n) {
      const ck_flag_t *f = p->flags[ch - 256];
      if (strcmp(f->name, "namespace") == 0 && !ns_from_flags) {
        json_array_clear(p->args.namespaces); /* the command line replaces the environment */
        ns_from_flags = true;
      }
      char where[160];
      snprintf(where, sizeof where, "--%s", f->name);
      rc = set_value(p, f, where, f->type == CK_FLAG_BOOL ? "true" : optarg);
    } else {
      fprintf(stderr, "(see %s --help)\n", op->name);
      rc = 2;
    }
  }
  free(lo);
  if (rc == -2)
    return 0;
  if (rc)
    return rc;
  if (optind < argc) {
    fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", op->name, argv[optind]);
    return 2;
  }
  for (size_t i = 0; i < p->n; i++)
    if (p->flags[i]->required && !ck_args_string(&p->args, p->flags[i]->name)) {
      char var[256];
      env_name(p, p->flags[i]->name, var, sizeof var);
      fprintf(stderr, "%s: --%s (or %s) is required\n", op->name, p->flags[i]->name, var);
      return 2;
    }
  if ((ck_args_bool(&p->args, "create-crd") || ck_args_bool(&p->args, "print-crd")) && !op->crd) {
    fprintf(stderr, "%s: this operator has no CRD of its own (--create-crd, --print-crd)\n",
            op->name);
    return 2;
  }
  if (ck_args_bool(&p->args, "all-namespaces") && json_array_size(p->args.namespaces)) {
    fprintf(stderr, "%s: --all-namespaces and --namespace exclude each other\n", op->name);
    return 2;
  }
  ck_log_level_t lvl;
  ck_log_format_t fmt;
  if (ck_log_level_parse(ck_args_string(&p->args, "log-level"), &lvl) == 0)
    ck_log_set_level(lvl);
  if (ck_log_format_parse(ck_args_string(&p->args, "log-format"), &fmt) == 0)
    ck_log_set_format(fmt);
  return -1;
}

/* ---- run ---------------------------------------------------------------------------- */

static int print_crd(const ck_operator_t *op) {
  ck_error_t err = {0};
  char *yaml = NULL;
  if (ck_crd_to_yaml(op->crd, &yaml, &err) != 0) {
    fprintf(stderr, "%s: %s\n", op->name, err.message);
    return 1;
  }
  fputs(yaml, stdout);
  free(yaml);
  return 0;
}

static int run(const ck_operator_t *op, const ck_args_t *a) {
  ck_error_t err = {0};
  ck_config_t *cfg = NULL;
  ck_client_t *client = NULL;
  ck_manager_t *m = NULL;
  ck_config_opts_t co = {.kubeconfig = ck_args_string(a, "kubeconfig"),
                         .context = ck_args_string(a, "context")};
  const char *nss[256];
  size_t nns = 0;
  if (!ck_args_bool(a, "all-namespaces")) {
    size_t i;
    json_t *v;
    json_array_foreach(a->namespaces, i, v) {
      if (nns < 256)
        nss[nns++] = json_string_value(v);
    }
    for (const char *const *d = op->default_namespaces; !json_array_size(a->namespaces) && d && *d;
         d++)
      if (nns < 256)
        nss[nns++] = *d;
  }
  int rc = ck_config_load(&co, &cfg, &err);
  if (rc == 0)
    rc = ck_client_new(cfg, NULL, &client, &err);
  if (rc == 0 && ck_args_bool(a, "create-crd")) {
    rc = ck_crd_install(client, op->crd, 60000, &err);
    if (rc == 0)
      ck_log(CK_LOG_INFO, op->name, NULL, "CRD installed and Established");
  }
  ck_manager_opts_t mo = {
      .name = op->name,
      .namespaces = nns ? nss : NULL,
      .nnamespaces = nns,
      .metrics_addr = ck_args_string(a, "metrics-bind-address"),
      .probe_addr = ck_args_string(a, "health-probe-bind-address"),
      .leader_elect = ck_args_bool(a, "leader-elect"),
      .lease_namespace = ck_args_string(a, "leader-election-namespace"),
      .leader_identity = getenv("POD_NAME"),
  };
  if (rc == 0)
    rc = ck_manager_new(client, &mo, &m, &err);
  for (const ck_handlers_t *h = op->handlers; rc == 0 && h && (h->crd || h->resource); h++)
    rc = ck_handlers_add(m, h, a, &err);
  if (rc == 0 && op->setup)
    rc = op->setup(m, a, op->ctx, &err);
  if (rc == 0)
    rc = ck_manager_run(m, &err);
  if (rc != 0)
    fprintf(stderr, "%s: %s\n", op->name, err.message);
  ck_manager_free(m);
  ck_client_free(client);
  ck_config_free(cfg);
  return rc == 0 ? 0 : 1;
}

int ck_operator_main(int argc, char **argv, const ck_operator_t *op) {
  if (!op || !op->name) {
    fputs("ck_operator_main: the operator needs a name\n", stderr);
    return 2;
  }
  parser_t p = {.op = op};
  int rc = parse(&p, argc, argv);
  if (rc == -1)
    rc = ck_args_bool(&p.args, "print-crd") ? print_crd(op) : run(op, &p.args);
  parser_free(&p);
  return rc;
}

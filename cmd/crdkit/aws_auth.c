/* crdkit aws-auth: argument parsing and dispatch to operators/aws-auth. */
#include "aws_auth.h"

#include "crdkit/log.h"
#include "operator.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fputs(
      "usage: crdkit aws-auth <command> [options]\n"
      "\n"
      "Keeps kube-system/aws-auth (the EKS IAM mapping) in sync with AWSAuth resources\n"
      "(crdkit.io/v1alpha1), keeping every entry no AWSAuth owns exactly as it is.\n"
      "\n"
      "Commands:\n"
      "  run        run the operator until SIGTERM/SIGINT\n"
      "  render     print the ConfigMap that AWSAuth files would produce, offline\n"
      "             (exit 1 when an object is invalid or conflicted: fails a CI step)\n"
      "  restore    put a previous revision of mapRoles/mapUsers back from the history\n"
      "  print-crd  print the AWSAuth CRD (also: --print-crd)\n"
      "\n"
      "run options:\n"
      "  --namespace NS              honour AWSAuth objects in NS (repeatable;\n"
      "                              default kube-system)           [AWSAUTH_NAMESPACE]\n"
      "  --all-namespaces            honour them in every namespace\n"
      "  --create-crd                install or update the CRD at start-up\n"
      "  --dry-run                   log the changes aws-auth would get, write nothing\n"
      "  --drift repair|report       owned entries edited by others: put them back\n"
      "                              (default) or only report them  [AWSAUTH_DRIFT]\n"
      "  --max-removals N            refuse writes removing more owned entries at once\n"
      "                              (default 10; -1: no limit)\n"
      "  --no-create-configmap       never create aws-auth when it does not exist\n"
      "  --history N                 revisions kept in aws-auth-history (default 10)\n"
      "  --configmap NS/NAME         the ConfigMap to manage (default kube-system/aws-auth)\n"
      "  --leader-elect              run as one of several replicas (a Lease)\n"
      "  --metrics-bind-address A    /metrics address (default :8080; 0: off)\n"
      "  --health-probe-bind-address A  /healthz, /readyz (default :8081; 0: off)\n"
      "  --kubeconfig FILE, --context NAME\n"
      "  --log-level error|warn|info|debug|trace, --log-format text|json\n"
      "\n"
      "render options:\n"
      "  -f, --filename PATH         AWSAuth YAML files or directories (repeatable)\n"
      "  --live FILE                 the current aws-auth ConfigMap (YAML), to merge into\n"
      "\n"
      "restore options:\n"
      "  --revision N                the revision to restore (default: the newest)\n"
      "  --list                      list the revisions\n"
      "  --configmap NS/NAME, --kubeconfig FILE, --context NAME\n",
      f);
}

enum {
  O_NS = 256, O_ALLNS, O_CREATE_CRD, O_DRY, O_DRIFT, O_MAXREM, O_NOCREATE, O_HISTORY, O_CM,
  O_LEADER, O_METRICS, O_PROBE, O_KUBECONFIG, O_CONTEXT, O_LOGLEVEL, O_LOGFORMAT, O_LIVE,
  O_REVISION, O_LIST, O_PRINTCRD,
};

static const struct option longopts[] = {
    {"namespace", required_argument, NULL, O_NS},
    {"all-namespaces", no_argument, NULL, O_ALLNS},
    {"create-crd", no_argument, NULL, O_CREATE_CRD},
    {"dry-run", no_argument, NULL, O_DRY},
    {"drift", required_argument, NULL, O_DRIFT},
    {"max-removals", required_argument, NULL, O_MAXREM},
    {"no-create-configmap", no_argument, NULL, O_NOCREATE},
    {"history", required_argument, NULL, O_HISTORY},
    {"configmap", required_argument, NULL, O_CM},
    {"leader-elect", no_argument, NULL, O_LEADER},
    {"metrics-bind-address", required_argument, NULL, O_METRICS},
    {"health-probe-bind-address", required_argument, NULL, O_PROBE},
    {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
    {"context", required_argument, NULL, O_CONTEXT},
    {"log-level", required_argument, NULL, O_LOGLEVEL},
    {"log-format", required_argument, NULL, O_LOGFORMAT},
    {"filename", required_argument, NULL, 'f'},
    {"live", required_argument, NULL, O_LIVE},
    {"revision", required_argument, NULL, O_REVISION},
    {"list", no_argument, NULL, O_LIST},
    {"print-crd", no_argument, NULL, O_PRINTCRD},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int bad(const char *flag, const char *value, const char *accepted) {
  fprintf(stderr, "crdkit aws-auth: %s: \"%s\" is not %s\n", flag, value, accepted);
  return 2;
}

static bool parse_int(const char *s, long lo, long hi, int *out) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < lo || v > hi)
    return false;
  *out = (int)v;
  return true;
}

int aws_auth_main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--print-crd") == 0)
    cmd = "print-crd";
  if (strcmp(cmd, "run") != 0 && strcmp(cmd, "render") != 0 && strcmp(cmd, "restore") != 0 &&
      strcmp(cmd, "print-crd") != 0) {
    fprintf(stderr, "crdkit aws-auth: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
  }
  aa_run_opts_t o = {0};
  const char *nss[64];
  size_t nns = 0;
  const char *files[64];
  size_t nfiles = 0;
  const char *live = NULL;
  int revision = 0;
  bool list = false, print_crd = strcmp(cmd, "print-crd") == 0;
  char cm_ns[256] = "", cm_name[256] = "";
  const char *env_ns = getenv("AWSAUTH_NAMESPACE");
  if (env_ns && *env_ns)
    nss[nns++] = env_ns;
  const char *env_drift = getenv("AWSAUTH_DRIFT");
  if (env_drift && *env_drift) {
    if (strcmp(env_drift, "repair") == 0)
      o.drift = AA_DRIFT_REPAIR;
    else if (strcmp(env_drift, "report") == 0)
      o.drift = AA_DRIFT_REPORT;
    else
      return bad("AWSAUTH_DRIFT", env_drift, "repair or report");
  }
  bool ns_from_flag = false;
  int ch;
  optind = 2;
  while ((ch = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
    switch (ch) {
    case O_NS:
      if (!ns_from_flag)
        nns = 0; /* flags replace the environment's namespace */
      ns_from_flag = true;
      if (nns == 64)
        return bad("--namespace", optarg, "allowed: at most 64 namespaces");
      if (!*optarg)
        return bad("--namespace", optarg, "a namespace name");
      nss[nns++] = optarg;
      break;
    case O_ALLNS: o.all_namespaces = true; break;
    case O_CREATE_CRD: o.create_crd = true; break;
    case O_DRY: o.dry_run = true; break;
    case O_DRIFT:
      if (strcmp(optarg, "repair") == 0)
        o.drift = AA_DRIFT_REPAIR;
      else if (strcmp(optarg, "report") == 0)
        o.drift = AA_DRIFT_REPORT;
      else
        return bad("--drift", optarg, "repair or report");
      break;
    case O_MAXREM:
      if (!parse_int(optarg, -1, 1000000, &o.max_removals))
        return bad("--max-removals", optarg, "a number from -1 (no limit) up");
      if (o.max_removals == 0)
        return bad("--max-removals", optarg, "a positive number, or -1 for no limit");
      break;
    case O_NOCREATE: o.no_create_configmap = true; break;
    case O_HISTORY:
      if (!parse_int(optarg, 1, 1000, &o.history))
        return bad("--history", optarg, "a number from 1 to 1000");
      break;
    case O_CM: {
      const char *slash = strchr(optarg, '/');
      if (!slash || slash == optarg || !slash[1] || strchr(slash + 1, '/') ||
          (size_t)(slash - optarg) >= sizeof cm_ns || strlen(slash + 1) >= sizeof cm_name)
        return bad("--configmap", optarg, "NAMESPACE/NAME");
      snprintf(cm_ns, sizeof cm_ns, "%.*s", (int)(slash - optarg), optarg);
      snprintf(cm_name, sizeof cm_name, "%s", slash + 1);
      o.configmap_ns = cm_ns;
      o.configmap_name = cm_name;
      break;
    }
    case O_LEADER: o.leader_elect = true; break;
    case O_METRICS: o.metrics_addr = optarg; break;
    case O_PROBE: o.probe_addr = optarg; break;
    case O_KUBECONFIG: o.kubeconfig = optarg; break;
    case O_CONTEXT: o.context = optarg; break;
    case O_LOGLEVEL: {
      ck_log_level_t l;
      if (ck_log_level_parse(optarg, &l) != 0)
        return bad("--log-level", optarg, "one of error, warn, info, debug, trace");
      ck_log_set_level(l);
      break;
    }
    case O_LOGFORMAT: {
      ck_log_format_t fmt;
      if (ck_log_format_parse(optarg, &fmt) != 0)
        return bad("--log-format", optarg, "text, json or auto");
      ck_log_set_format(fmt);
      break;
    }
    case 'f':
      if (nfiles == 64)
        return bad("--filename", optarg, "allowed: at most 64 paths");
      files[nfiles++] = optarg;
      break;
    case O_LIVE: live = optarg; break;
    case O_REVISION:
      if (!parse_int(optarg, 1, 1000000000, &revision))
        return bad("--revision", optarg, "a revision number (see --list)");
      break;
    case O_LIST: list = true; break;
    case O_PRINTCRD: print_crd = true; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "crdkit aws-auth %s: unexpected argument \"%s\"\n", cmd, argv[optind]);
    return 2;
  }
  o.namespaces = nss;
  o.nnamespaces = nns;
  ck_error_t err = {0};
  int rc;
  if (print_crd) {
    rc = aa_print_crd(stdout, &err);
  } else if (strcmp(cmd, "render") == 0) {
    if (!nfiles) {
      fprintf(stderr, "crdkit aws-auth render: -f PATH is required (AWSAuth YAML files)\n");
      return 2;
    }
    rc = aa_render(files, nfiles, live, stdout, stderr, &err);
    if (rc == 1)
      return 1;
  } else if (strcmp(cmd, "restore") == 0) {
    rc = aa_restore(&o, revision, list, stdout, &err);
  } else {
    rc = aa_operator_run(&o, &err);
  }
  if (rc != 0) {
    fprintf(stderr, "crdkit aws-auth %s: %s\n", cmd, err.message);
    return 1;
  }
  return 0;
}

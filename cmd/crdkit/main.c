/* crdkit: one binary for the built-in operators and tools. Argument
 * parsing and dispatch only. */
#include "aws_auth.h"
#include "ck_version.h"
#include "crdkit/client.h"
#include "crdkit/config.h"
#include "crdkit/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f,
          "usage: crdkit <command> [options]\n"
          "\n"
          "Commands:\n"
          "  aws-auth       the aws-auth operator: keep kube-system/aws-auth in sync with\n"
          "                 AWSAuth resources (crdkit aws-auth --help)\n"
          "  cluster-info   connect with the current kubeconfig and print the server's\n"
          "                 address and version (a quick check of credentials and TLS)\n"
          "  version        print crdkit's version\n"
          "  help           this text\n"
          "\n"
          "Common options:\n"
          "  --kubeconfig FILE   kubeconfig to use (else KUBECONFIG, ~/.kube/config,\n"
          "                      in-cluster)\n"
          "  --context NAME      kubeconfig context (default: current-context)\n"
          "  --log-level LEVEL   error, warn, info, debug or trace (default: info)\n");
}

static int cluster_info(int argc, char **argv) {
  ck_config_opts_t copts = {0};
  static const struct option longopts[] = {
      {"kubeconfig", required_argument, NULL, 'k'},
      {"context", required_argument, NULL, 'c'},
      {"log-level", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'k': copts.kubeconfig = optarg; break;
    case 'c': copts.context = optarg; break;
    case 'l': {
      ck_log_level_t lvl;
      if (ck_log_level_parse(optarg, &lvl) != 0) {
        fprintf(stderr, "crdkit: --log-level: \"%s\" is not one of error, warn, info, debug, trace\n",
                optarg);
        return 2;
      }
      ck_log_set_level(lvl);
      break;
    }
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  ck_error_t err = {0};
  ck_config_t *cfg = NULL;
  ck_client_t *client = NULL;
  int rc = ck_config_load(&copts, &cfg, &err);
  if (rc == 0)
    rc = ck_client_new(cfg, NULL, &client, &err);
  ck_response_t resp = {0};
  if (rc == 0) {
    ck_request_t req = {.method = "GET", .path = "/version"};
    rc = ck_client_request(client, &req, &resp, &err);
  }
  if (rc == 0) {
    json_t *v = json_loadb(resp.body, resp.body_len, 0, NULL);
    printf("server:    %s\ncontext:   %s\nnamespace: %s\nversion:   %s\n", cfg->server,
           cfg->context ? cfg->context : "(in-cluster)", cfg->namespace_,
           v ? json_string_value(json_object_get(v, "gitVersion")) : "?");
    json_decref(v);
  } else {
    fprintf(stderr, "crdkit: %s\n", err.message);
  }
  ck_response_free(&resp);
  ck_client_free(client);
  ck_config_free(cfg);
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("crdkit %s\n", CK_VERSION);
    return 0;
  }
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "cluster-info") == 0)
    return cluster_info(argc - 1, argv + 1);
  if (strcmp(cmd, "aws-auth") == 0)
    return aws_auth_main(argc - 1, argv + 1);
  fprintf(stderr, "crdkit: unknown command \"%s\"\n\n", cmd);
  usage(stderr);
  return 2;
}

/*
 * main.c -- the command line of sisfeed(8).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <curl/curl.h>

#include "sisfeed.h"

#define DEFAULT_CONFIG	"/etc/sisfeed/sisfeed.yaml"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: sisfeed [-c FILE] [-v | -q] run [--override | --approve ID]\n"
	    "%39s[--reason TEXT]\n"
	    "       sisfeed [-c FILE] plan\n"
	    "       sisfeed [-c FILE] pause --until DATE [--hold KINDS]\n"
	    "       sisfeed [-c FILE] resume\n"
	    "       sisfeed [-c FILE] export [-o FILE]\n"
	    "       sisfeed [-c FILE] status [--json]\n"
	    "       sisfeed [-c FILE] check [--mail]\n"
	    "       sisfeed [-c FILE] restore [--initial | FILE]\n"
	    "       sisfeed validate [--profile NAME] FILE\n"
	    "       sisfeed diff OLD NEW\n"
	    "       sisfeed -h | --help | -V | --version\n"
	    "\n"
	    "  run       the nightly job: read the export, diff it with the\n"
	    "            snapshot, block mass changes, deliver, advance\n"
	    "  plan      what a run would do now; delivers nothing\n"
	    "  export    write tonight's IMS Enterprise file\n"
	    "  status    OK, WARNING, CRITICAL or UNKNOWN (exit 0-3), and why\n"
	    "  check     validate the config, log in to the server, mail test\n"
	    "  restore   put back a lost snapshot (from history/ or FILE)\n"
	    "  validate  check an IMS Enterprise file\n"
	    "  diff      the change set between two IMS files\n"
	    "\n"
	    "Exit: 0 delivered or nothing to do, 1 failed, 2 usage or config\n"
	    "error, 3 blocked by the safety filter, 4 another run is going.\n"
	    "-c FILE (or --config=FILE): default " DEFAULT_CONFIG "; see\n"
	    "sisfeed(8).\n", "");
}

/*
 * --reason goes with --approve or --override, and is required with
 * them when safety.approval_reason is required.  0, or -1 (said).
 */
static int
approval_reason_check(const struct config *cfg, const struct run_options *ro)
{
	int approving = ro->approve != NULL || ro->override;

	if (ro->reason != NULL && !approving) {
		fprintf(stderr, "sisfeed: --reason goes with --approve or "
		    "--override\n");
		return -1;
	}
	if (ro->reason != NULL && (*ro->reason == '\0' ||
	    strlen(ro->reason) >= 256)) {
		fprintf(stderr, "sisfeed: --reason: say why in 1 to 255 "
		    "bytes\n");
		return -1;
	}
	if (approving && ro->reason == NULL && cfg->nets.approval_reason) {
		fprintf(stderr, "sisfeed: %s: safety.approval_reason is "
		    "required: say why with --reason TEXT\n", cfg->path);
		return -1;
	}
	return 0;
}

static int
cmd_run(const struct config *cfg, int argc, char *argv[], int plan)
{
	static const struct option opts[] = {
		{ "override", no_argument, NULL, 'O' },
		{ "approve", required_argument, NULL, 'A' },
		{ "reason", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_options ro;
	int ch;

	memset(&ro, 0, sizeof(ro));
	ro.plan = plan;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'O':
			ro.override = 1;
			break;
		case 'A':
			if (strlen(optarg) != 16 ||
			    strspn(optarg, "0123456789abcdef") != 16) {
				fprintf(stderr, "sisfeed: --approve: '%s' is "
				    "not an approval id (16 hex digits, as "
				    "the blocked run printed)\n", optarg);
				return EXIT_USAGE;
			}
			ro.approve = optarg;
			break;
		case 'R':
			ro.reason = optarg;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (plan && (ro.override || ro.approve)) ||
	    (ro.override && ro.approve != NULL)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (approval_reason_check(cfg, &ro) == -1)
		return EXIT_USAGE;
	return run_main(cfg, &ro);
}

static int
cmd_export(const struct config *cfg, int argc, char *argv[])
{
	const char *out = NULL;
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "o:")) != -1) {
		if (ch != 'o') {
			usage(stderr);
			return EXIT_USAGE;
		}
		out = optarg;
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return run_export(cfg, out);
}

static int
cmd_check(const struct config *cfg, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "mail", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, mail = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'm') {
			usage(stderr);
			return EXIT_USAGE;
		}
		mail = 1;
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return run_check(cfg, mail);
}

/* restore [--initial | FILE] */
static int
cmd_restore(const struct config *cfg, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "initial", no_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, initial = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'i') {
			usage(stderr);
			return EXIT_USAGE;
		}
		initial = 1;
	}
	if (argc - optind > (initial ? 0 : 1)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return run_restore(cfg, optind < argc ? argv[optind] : NULL, initial);
}

/* status as another user than the state's owner: the sudo line. */
static char	*status_as_owner;

/* status [--json]: the Nagios plugin codes; 3 (UNKNOWN) on usage. */
static int
cmd_status(const struct config *cfg, int argc, char *argv[])
{
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json") != 0)) {
		usage(stderr);
		return 3;
	}
	return monitor_status(cfg, argc == 2, status_as_owner);
}

/* 1 if a command's arguments ask for help (-h or --help). */
static int
wants_help(int argc, char *argv[])
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}

/* The command line as given, for the sudo line owner_become prints. */
static int	 given_argc;
static char	**given_argv;

/*
 * Every command but export touches the state directory, so runs as its
 * owner (root drops to it).  status as another user reads what it
 * may, and keeps the sudo line to show if that is not enough.  0, or
 * -1 when refused (the error says the sudo line).
 */
static int
become_owner(const struct config *cfg, const char *cmd)
{
	if (strcmp(cmd, "export") == 0)
		return 0;
	if (owner_become(cfg, given_argc, given_argv) == 0)
		return 0;
	if (strcmp(cmd, "status") == 0 && geteuid() != 0) {
		error_clear();
		status_as_owner = owner_sudo_line(cfg, given_argc,
		    given_argv);
		return 0;
	}
	return -1;
}

/*
 * pause --until DATE [--hold deletes,deactivations], and resume.
 */
static int
cmd_pause(const struct config *cfg, int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "until", required_argument, NULL, 'u' },
		{ "hold", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *until = NULL;
	unsigned mask = HOLD_DELETES | HOLD_DEACTIVATIONS;
	int ch;

	if (strcmp(argv[0], "resume") == 0) {
		if (argc != 1) {
			usage(stderr);
			return EXIT_USAGE;
		}
		return pause_resume(cfg);
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'u')
			until = optarg;
		else if (ch == 'H' && pause_hold_parse(optarg, &mask) == -1) {
			fprintf(stderr, "sisfeed: --hold: %s\n", error_last());
			return EXIT_USAGE;
		} else if (ch != 'H') {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || until == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return pause_command(cfg, until, mask);
}

/* Commands that need the config, and how to run them. */
static int
with_config(const char *path, const char *cmd, int argc, char *argv[])
{
	struct config *cfg;
	int rc;

	if ((cfg = config_load(path)) == NULL) {
		log_error("%s", error_last());
		return EXIT_USAGE;
	}
	if (become_owner(cfg, cmd) == -1) {
		log_error("%s", error_last());
		config_free(cfg);
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "run") == 0)
		rc = cmd_run(cfg, argc, argv, 0);
	else if (strcmp(cmd, "plan") == 0)
		rc = cmd_run(cfg, argc, argv, 1);
	else if (strcmp(cmd, "export") == 0)
		rc = cmd_export(cfg, argc, argv);
	else if (strcmp(cmd, "status") == 0)
		rc = cmd_status(cfg, argc, argv);
	else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)
		rc = cmd_pause(cfg, argc, argv);
	else if (strcmp(cmd, "restore") == 0)
		rc = cmd_restore(cfg, argc, argv);
	else
		rc = cmd_check(cfg, argc, argv);
	config_free(cfg);
	free(status_as_owner);
	status_as_owner = NULL;
	return rc;
}

static int
dispatch(const char *config, int argc, char *argv[])
{
	const char *cmd = argv[0];

	if (wants_help(argc, argv)) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "validate") == 0) {
		if (argc == 4 && strcmp(argv[1], "--profile") == 0)
			return run_validate(argv[3], argv[2]);
		if (argc != 2) {
			usage(stderr);
			return EXIT_USAGE;
		}
		return run_validate(argv[1], NULL);
	}
	if (strcmp(cmd, "diff") == 0) {
		if (argc != 3) {
			usage(stderr);
			return EXIT_USAGE;
		}
		return run_diff(argv[1], argv[2]);
	}
	if (strcmp(cmd, "run") == 0 || strcmp(cmd, "plan") == 0 ||
	    strcmp(cmd, "export") == 0 || strcmp(cmd, "status") == 0 ||
	    strcmp(cmd, "check") == 0 || strcmp(cmd, "pause") == 0 ||
	    strcmp(cmd, "resume") == 0 ||
	    strcmp(cmd, "restore") == 0)
		return with_config(config, cmd, argc, argv);
	fprintf(stderr, "sisfeed: unknown command '%s'\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = DEFAULT_CONFIG;
	int ch, rc;

	given_argc = argc;
	given_argv = argv;
	/* Global options stop at the command ("+"). */
	while ((ch = getopt_long(argc, argv, "+c:vqhV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'v':
			log_verbosity = 2;
			break;
		case 'q':
			log_verbosity = 0;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("sisfeed %s\n", SISFEED_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	LIBXML_TEST_VERSION
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "sisfeed: curl_global_init failed\n");
		return EXIT_FAILED;
	}
	rc = dispatch(config, argc, argv);
	curl_global_cleanup();
	xmlCleanupParser();
	return rc;
}

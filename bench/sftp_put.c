/*
 * sftp_put.c -- the bench driver for agent/sftp.c (bench/run-bench-sftp).
 *
 *	sftp_put HOST PORT USER IDENTITY KNOWN_HOSTS REMOTE_DIR FILE NAME
 *		upload FILE as REMOTE_DIR/NAME with sftp_upload(); print
 *		"BYTES SECONDS" on stdout; exit 0 or 1 (error on stderr)
 *	sftp_put --free-port
 *		print a free TCP port on 127.0.0.1
 *	sftp_put --wait-port PORT
 *		wait (at most 10 s) until something accepts on 127.0.0.1:PORT
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sisfeed.h"

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int s;

	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(s, (struct sockaddr *)&sin, &len) == -1) {
		close(s);
		return -1;
	}
	close(s);
	printf("%d\n", ntohs(sin.sin_port));
	return 0;
}

static int
wait_port(int port)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	struct sockaddr_in sin;
	int i, s, ok;

	for (i = 0; i < 500; i++) {
		if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			return -1;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((unsigned short)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(s);
		if (ok)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

int
main(int argc, char *argv[])
{
	struct config cfg;
	struct timespec t0, t1;
	struct stat st;
	double secs;

	if (argc == 2 && strcmp(argv[1], "--free-port") == 0)
		return free_port() == 0 ? 0 : 1;
	if (argc == 3 && strcmp(argv[1], "--wait-port") == 0)
		return wait_port(atoi(argv[2])) == 0 ? 0 : 1;
	if (argc != 9) {
		fprintf(stderr, "usage: sftp_put HOST PORT USER IDENTITY "
		    "KNOWN_HOSTS REMOTE_DIR FILE NAME\n");
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.delivery.sftp = 1;
	cfg.delivery.s.host = argv[1];
	cfg.delivery.s.port = atoi(argv[2]);
	cfg.delivery.s.user = argv[3];
	cfg.delivery.s.identity = argv[4];
	cfg.delivery.s.known_hosts = argv[5];
	cfg.delivery.s.remote_dir = argv[6];
	cfg.delivery.s.timeout = 30;
	if (getenv("SISFEED_VERBOSE") != NULL)
		log_verbosity = 2;
	if (stat(argv[7], &st) == -1) {
		perror(argv[7]);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sftp_upload(&cfg, argv[7], argv[8]) == -1) {
		fprintf(stderr, "sftp_put: %s\n", error_last());
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%lld %.3f\n", (long long)st.st_size, secs);
	return 0;
}

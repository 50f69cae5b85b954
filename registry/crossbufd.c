/* SPDX-License-Identifier: MIT */
/*
 * crossbufd: the host broker of virtio shared objects. Holds the UUID -> buffer table for
 * every device process of every VM on the host, and hands buffers out according to the
 * policy in its config file. It never maps a buffer.
 */
#include "broker.h"
#include "config.h"
#include "macro.h"
#include "policy.h"

#include <crossbuf/crossbuf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_CONFIG      CROSSBUF_SYSCONFDIR "/crossbuf/crossbufd.conf"
#define SD_LISTEN_FDS_START 3

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: crossbufd [OPTION...]\n"
		"The crossbuf broker: resolves virtio shared-object UUIDs to host buffers.\n"
		"\n"
		"  -s, --socket=PATH       listen on PATH (default: $CROSSBUF_SOCKET, else %s)\n"
		"  -c, --config=FILE       policy file (default: %s; absent = built-in defaults)\n"
		"  -m, --socket-mode=MODE  permissions of a socket it creates (octal, default 0660)\n"
		"      --state-file=PATH   where the registered UUIDs are recorded, so that a\n"
		"                          restarted broker holds them for their exporters\n"
		"                          (default: $RUNTIME_DIRECTORY/crossbufd.state when systemd\n"
		"                          sets it, else none; empty: none)\n"
		"      --hold-time=SECONDS how long a restarted broker holds them (0 to 3600,\n"
		"                          default 10)\n"
		"  -v, --verbose           log every request\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n"
		"\n"
		"Started by systemd with socket activation, it uses the socket it is given.\n",
		crossbuf_default_socket_path(), DEFAULT_CONFIG);
}

/* The socket systemd passed (LISTEN_PID/LISTEN_FDS), -ENOENT if none, <0 if unusable. */
static int
activated_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int type = 0;
	socklen_t len = sizeof(type);
	int fd = SD_LISTEN_FDS_START;

	if (pid == NULL || fds == NULL)
		return -ENOENT;
	if (strtol(pid, NULL, 10) != getpid())
		return -ENOENT;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (strtol(fds, NULL, 10) != 1) {
		fprintf(stderr, "crossbufd: expected one activated socket, got LISTEN_FDS=%s\n",
			fds);
		return -EINVAL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr, "crossbufd: the activated fd is not a SOCK_SEQPACKET socket\n");
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return negative_errno();
	return fd;
}

/*
 * Creates and binds the listening socket. A socket file left by a dead broker is replaced;
 * one a live broker answers on is not.
 */
static int
listen_socket(const char *path, mode_t mode)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	g_autofree char *dir = NULL;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "crossbufd: socket path too long: %s\n", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	dir = g_path_get_dirname(path);
	if (g_mkdir_with_parents(dir, 0755) < 0) {
		fprintf(stderr, "crossbufd: cannot create %s: %s\n", dir, g_strerror(errno));
		return negative_errno();
	}

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		fprintf(stderr, "crossbufd: another broker is listening on %s\n", path);
		return -EADDRINUSE;
	}
	if (errno == ECONNREFUSED)
		unlink(path);
	fd = safe_close(fd);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, mode) < 0 ||
	    listen(fd, 128) < 0) {
		int r = negative_errno();
		fprintf(stderr, "crossbufd: cannot listen on %s: %s\n", path, g_strerror(-r));
		return r;
	}
	return TAKE_FD(fd);
}

/*
 * The state file when none is named: in systemd's RuntimeDirectory= (the first, if several),
 * which outlives a restart of the service; NULL without one.
 */
static char *
default_state_file(void)
{
	const char *runtime = getenv("RUNTIME_DIRECTORY");

	if (runtime != NULL && runtime[0] == '/') {
		g_autofree char *first = g_strndup(runtime, strcspn(runtime, ":"));

		return g_build_filename(first, "crossbufd.state", NULL);
	}
	return NULL;
}

/* As many fds as the hard limit allows: every entry holds one. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "crossbufd: cannot raise RLIMIT_NOFILE: %s\n",
				g_strerror(errno));
	}
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, 's'},
		{"config", required_argument, NULL, 'c'},
		{"socket-mode", required_argument, NULL, 'm'},
		{"state-file", required_argument, NULL, 'S'},
		{"hold-time", required_argument, NULL, 'H'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *socket_path = NULL, *config = DEFAULT_CONFIG, *state_option = NULL;
	g_autofree char *error = NULL, *state_file = NULL;
	struct cb_policy *policy = NULL;
	struct cb_broker *broker = NULL;
	bool verbose = false, created = false;
	mode_t mode = 0660;
	unsigned hold_ms = CB_BROKER_HOLD_MS;
	sigset_t mask;
	int opt, fd, r;

	while ((opt = getopt_long(argc, argv, "s:c:m:vhV", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'm': {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);
			if (*optarg == '\0' || *end != '\0' || m > 0777) {
				fprintf(stderr, "crossbufd: bad --socket-mode '%s'\n", optarg);
				return 2;
			}
			mode = (mode_t)m;
			break;
		}
		case 'S':
			state_option = optarg;
			break;
		case 'H': {
			char *end;
			unsigned long t;

			errno = 0;
			t = strtoul(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' || errno != 0 ||
			    t > 3600) {
				fprintf(stderr, "crossbufd: bad --hold-time '%s' (0 to 3600 s)\n",
					optarg);
				return 2;
			}
			hold_ms = (unsigned)t * 1000;
			break;
		}
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("crossbufd %s\n", CROSSBUF_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "crossbufd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	r = cb_policy_load(config, geteuid(), &policy, &error);
	if (r < 0) {
		fprintf(stderr, "crossbufd: %s\n", error != NULL ? error : g_strerror(-r));
		return 1;
	}
	raise_fd_limit();
	/* SIGPIPE never: every send uses MSG_NOSIGNAL, but be sure. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	fd = activated_socket();
	if (fd == -ENOENT) {
		if (socket_path == NULL)
			socket_path = getenv("CROSSBUF_SOCKET");
		if (socket_path == NULL || socket_path[0] == '\0')
			socket_path = crossbuf_default_socket_path();
		fd = listen_socket(socket_path, mode);
		created = fd >= 0;
	} else if (fd >= 0) {
		int flags = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		socket_path = "(socket activation)";
	}
	if (fd < 0) {
		cb_policy_free(policy);
		return 1;
	}

	if (state_option != NULL)
		state_file = state_option[0] != '\0' ? g_strdup(state_option) : NULL;
	else
		state_file = default_state_file();
	r = cb_broker_new(fd, policy, state_file, hold_ms, verbose, &broker);
	if (r < 0) {
		fprintf(stderr, "crossbufd: cannot start: %s\n", g_strerror(-r));
		cb_policy_free(policy);
		if (created)
			unlink(socket_path);
		return 1;
	}
	fprintf(stderr, "crossbufd %s: listening on %s, state file %s\n", CROSSBUF_VERSION,
		socket_path, state_file != NULL ? state_file : "(none)");
	r = cb_broker_run(broker);
	cb_broker_free(broker);
	cb_policy_free(policy);
	if (created)
		unlink(socket_path);
	if (r < 0) {
		fprintf(stderr, "crossbufd: %s\n", g_strerror(-r));
		return 1;
	}
	fprintf(stderr, "crossbufd: stopped\n");
	return 0;
}

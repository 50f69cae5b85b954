/* SPDX-License-Identifier: MIT */
#include "broker-fixture.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void
spawn(struct broker *b, unsigned nofile)
{
	const char *exe = g_getenv("CROSSBUFD");
	pid_t pid;

	g_assert_nonnull(exe);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		/* Never outlive a test that failed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);

		/* Keep test output readable: the broker logs to a file in its folder. */
		g_autofree char *log = g_build_filename(b->dir, "broker.log", NULL);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		{
			g_autofree char *state = g_strdup_printf("--state-file=%s", b->state);
			g_autofree char *hold =
				g_strdup_printf("--hold-time=%s", b->hold ? b->hold : "10");
			char limit[32];

			if (nofile > 0) {
				/*
				 * Through prlimit(1): under valgrind, setrlimit() here would only
				 * change valgrind's view of this process, not the broker's real
				 * limit.
				 */
				g_snprintf(limit, sizeof(limit), "--nofile=%u", nofile);
				execlp("prlimit", "prlimit", limit, exe, "--socket", b->socket,
				       "--config", b->config, state, hold, (char *)NULL);
			} else {
				execl(exe, exe, "--socket", b->socket, "--config", b->config, state,
				      hold, (char *)NULL);
			}
		}
		_exit(127);
	}
	b->pid = pid;

	/* Wait until it accepts connections. */
	for (int i = 0; i < 500; i++) {
		int fd = broker_raw_connect(b);
		if (fd >= 0) {
			close(fd);
			return;
		}
		g_usleep(10000);
	}
	g_error("crossbufd did not start");
}

void
broker_start(struct broker *b, const char *config_text, unsigned nofile)
{
	memset(b, 0, sizeof(*b));
	b->dir = g_dir_make_tmp("crossbuf-test-XXXXXX", NULL);
	g_assert_nonnull(b->dir);
	b->socket = g_build_filename(b->dir, "broker.sock", NULL);
	b->config = g_build_filename(b->dir, "crossbufd.conf", NULL);
	b->state = g_build_filename(b->dir, "crossbufd.state", NULL);
	if (config_text != NULL)
		g_assert_true(g_file_set_contents(b->config, config_text, -1, NULL));
	spawn(b, nofile);
}

void
broker_restart(struct broker *b, unsigned nofile)
{
	spawn(b, nofile);
}

void
broker_kill(struct broker *b)
{
	int status;

	g_assert_cmpint(kill(b->pid, SIGKILL), ==, 0);
	g_assert_cmpint(waitpid(b->pid, &status, 0), ==, b->pid);
	b->pid = 0;
}

void
broker_stop(struct broker *b)
{
	int status;

	if (b->pid > 0) {
		g_assert_cmpint(kill(b->pid, SIGTERM), ==, 0);
		g_assert_cmpint(waitpid(b->pid, &status, 0), ==, b->pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			g_autofree char *log = g_build_filename(b->dir, "broker.log", NULL);
			g_autofree char *text = NULL;
			g_file_get_contents(log, &text, NULL, NULL);
			g_error("crossbufd did not exit cleanly (status 0x%x); log:\n%s", status,
				text != NULL ? text : "");
		}
	}
	{
		g_autofree char *log = g_build_filename(b->dir, "broker.log", NULL);
		unlink(log);
	}
	unlink(b->config);
	unlink(b->socket);
	if (b->state != NULL)
		unlink(b->state);
	rmdir(b->dir);
	g_free(b->dir);
	g_free(b->socket);
	g_free(b->config);
	g_free(b->state);
}

struct crossbuf_client *
broker_client(const struct broker *b, const char *domain, uint32_t rights)
{
	struct crossbuf_client *c;

	g_assert_cmpint(crossbuf_client_new(&c), ==, 0);
	if (domain != NULL)
		g_assert_cmpint(crossbuf_client_set_domain(c, domain), ==, 0);
	g_assert_cmpint(crossbuf_client_set_rights(c, rights), ==, 0);
	g_assert_cmpint(crossbuf_client_connect(c, b->socket), ==, 0);
	return c;
}

int
broker_raw_connect(const struct broker *b)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	g_strlcpy(addr.sun_path, b->socket, sizeof(addr.sun_path));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

void
broker_wait_entries(const struct broker *b, uint64_t entries)
{
	struct crossbuf_client *admin = broker_client(b, NULL, CROSSBUF_RIGHT_ADMIN);
	struct crossbuf_stats st = {0};

	for (int i = 0; i < 500; i++) {
		g_assert_cmpint(crossbuf_client_get_stats(admin, &st), ==, 0);
		if (st.entries == entries)
			break;
		g_usleep(10000);
	}
	crossbuf_client_unref(admin);
	g_assert_cmpuint(st.entries, ==, entries);
}

int
broker_fd_count(const struct broker *b)
{
	int last = -1, same = 0;

	for (int i = 0; i < 500 && same < 5; i++) {
		int n = cb_test_count_fds(b->pid);
		same = n == last ? same + 1 : 0;
		last = n;
		g_usleep(10000);
	}
	return last;
}

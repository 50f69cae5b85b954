/* SPDX-License-Identifier: MIT */
#include "spawn.h"

#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool
is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *
guest_find_exe(const char *name)
{
	static const char *const where[] = {".", "../registry", "../gpu-bridge", "../media-device"};
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		for (size_t i = 0; i < ARRAY_SIZE(where); i++) {
			char path[PATH_MAX];

			if (snprintf(path, sizeof(path), "%s/%s/%s", self, where[i], name) <
				    (int)sizeof(path) &&
			    is_executable(path))
				return strdup(path);
		}
	}
	return strdup(name); /* execvp searches $PATH */
}

int
guest_proc_start(struct guest_proc *p, const char *name, char *const argv[], const char *log)
{
	pid_t parent = getpid();
	int fd;

	memset(p, 0, sizeof(*p));
	p->name = name;
	p->log = strdup(log);
	if (p->log == NULL)
		return -ENOMEM;
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return negative_errno();
	p->pid = fork();
	if (p->pid < 0) {
		int r = negative_errno();
		p->pid = 0;
		close(fd);
		return r;
	}
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		dup2(fd, STDERR_FILENO);
		execvp(argv[0], argv);
		fprintf(stderr, "%s: cannot run %s: %s\n", name, argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	return 0;
}

bool
guest_proc_running(struct guest_proc *p)
{
	if (p->pid <= 0)
		return false;
	if (waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
		p->pid = 0;
		return false;
	}
	return true;
}

int
guest_proc_wait_socket(struct guest_proc *p, const char *path, int timeout_ms)
{
	struct stat st;

	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (!guest_proc_running(p))
			return -ECHILD;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

int
guest_proc_kill(struct guest_proc *p, int sig)
{
	if (p->pid <= 0)
		return -ESRCH;
	return kill(p->pid, sig) < 0 ? negative_errno() : 0;
}

int
guest_proc_stop(struct guest_proc *p, int timeout_ms)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		for (int waited = 0; guest_proc_running(p); waited += 10) {
			if (waited >= timeout_ms) {
				kill(p->pid, SIGKILL);
				waitpid(p->pid, &p->status, 0);
				p->pid = 0;
				return -ETIMEDOUT;
			}
			usleep(10000);
		}
	}
	return WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0 ? 0 : -ECHILD;
}

void
guest_proc_clear(struct guest_proc *p)
{
	free(p->log);
	p->log = NULL;
}

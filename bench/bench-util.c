/* SPDX-License-Identifier: MIT */
#include "bench-util.h"

#include <dirent.h>
#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double
bench_clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

uint64_t
bench_percentile_u64(uint64_t *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	/* Nearest rank: the smallest value with at least p% of the values at or below it. */
	rank = (size_t)((p / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

double
bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

unsigned
bench_cpus(int *cpus, unsigned max)
{
	cpu_set_t set;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++) {
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	}
	return n;
}

static int
set_affinity(pid_t tid, const int *cpus, unsigned n)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (unsigned i = 0; i < n; i++)
		CPU_SET(cpus[i], &set);
	return sched_setaffinity(tid, sizeof(set), &set) < 0 ? -errno : 0;
}

int
bench_pin_self(int cpu)
{
	return set_affinity(0, &cpu, 1);
}

/* Sets the affinity of every thread of the process (but the caller's unless with_self). */
static int
set_affinity_all(bool with_self, const int *cpus, unsigned n)
{
	pid_t self = gettid();
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int count = 0, r = 0;

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL && r == 0) {
		pid_t tid = (pid_t)strtol(e->d_name, NULL, 10);

		if (tid <= 0 || (tid == self && !with_self))
			continue;
		/* A thread that exited since readdir() is not an error. */
		r = set_affinity(tid, cpus, n);
		if (r == -ESRCH)
			r = 0;
		else if (r == 0)
			count++;
	}
	closedir(d);
	return r < 0 ? r : count;
}

int
bench_pin_others(int cpu)
{
	return set_affinity_all(false, &cpu, 1);
}

int
bench_unpin_all(const int *cpus, unsigned n)
{
	int r = set_affinity_all(true, cpus, n);

	return r < 0 ? r : 0;
}

unsigned
bench_env_uint(const char *name, unsigned def, unsigned max)
{
	const char *v = getenv(name);
	char *end = NULL;
	unsigned long n;

	if (v == NULL || v[0] == '\0')
		return def;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n == 0 || n >= max)
		return def;
	return (unsigned)n;
}

char *
bench_make_stream(const char *dir, unsigned width, unsigned height, unsigned frames)
{
	char *path = g_strdup_printf("%s/testsrc2-%ux%u.h264", dir, width, height);
	g_autofree char *src = g_strdup_printf("testsrc2=size=%ux%u:rate=30", width, height);
	g_autofree char *nframes = g_strdup_printf("%u", frames);
	const char *argv[] = {"ffmpeg",  "-hide_banner", "-loglevel", "error", "-y",
			      "-f",      "lavfi",        "-i",        src,     "-frames:v",
			      nframes,   "-pix_fmt",     "yuv420p",   "-c:v",  "libx264",
			      "-preset", "fast",         path,        NULL};
	gint status = -1;

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
			  &status, NULL) ||
	    !g_spawn_check_wait_status(status, NULL)) {
		g_free(path);
		return NULL;
	}
	return path;
}

int
bench_memfd(void)
{
	int fd = memfd_create("crossbuf-bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, BENCH_SIZE) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

void
bench_info(struct crossbuf_buffer_info *info)
{
	memset(info, 0, sizeof(*info));
	info->width = BENCH_WIDTH;
	info->height = BENCH_HEIGHT;
	info->fourcc = DRM_FORMAT_NV12;
	info->num_planes = 2;
	info->modifier = DRM_FORMAT_MOD_LINEAR;
	info->planes[0] = (struct crossbuf_plane){.offset = 0, .stride = BENCH_WIDTH};
	info->planes[1] = (struct crossbuf_plane){.offset = BENCH_WIDTH * BENCH_HEIGHT,
						  .stride = BENCH_WIDTH};
	info->device_kind = CROSSBUF_DEVICE_GPU;
	info->resource_id = 1;
}

uint64_t
bench_raise_nofile(uint64_t *ret_hard)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (ret_hard != NULL)
		*ret_hard = rl.rlim_max;
	return rl.rlim_cur;
}

const char *
bench_crossbufd_path(int *argc, char **argv)
{
	const char *path = NULL;
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--crossbufd") == 0 && i + 1 < *argc) {
			path = argv[++i];
			continue;
		}
		argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	if (path == NULL)
		path = getenv("CROSSBUFD");
	return path != NULL && path[0] != '\0' ? path : NULL;
}

static int
raw_connect(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void
broker_free_paths(struct bench_broker *b)
{
	g_autofree char *log = g_build_filename(b->dir, "broker.log", NULL);

	unlink(log);
	unlink(b->config);
	unlink(b->socket);
	rmdir(b->dir);
	g_free(b->dir);
	g_free(b->socket);
	g_free(b->config);
	memset(b, 0, sizeof(*b));
}

int
bench_broker_start(struct bench_broker *b, const char *exe, const char *config_text)
{
	pid_t pid;
	int status;

	memset(b, 0, sizeof(*b));
	b->dir = g_dir_make_tmp("crossbuf-bench-XXXXXX", NULL);
	if (b->dir == NULL)
		return -EIO;
	b->socket = g_build_filename(b->dir, "broker.sock", NULL);
	b->config = g_build_filename(b->dir, "crossbufd.conf", NULL);
	if (config_text != NULL && !g_file_set_contents(b->config, config_text, -1, NULL)) {
		broker_free_paths(b);
		return -EIO;
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		broker_free_paths(b);
		return -errno;
	}
	if (pid == 0) {
		g_autofree char *log = g_build_filename(b->dir, "broker.log", NULL);
		int fd;

		/* Never outlive the benchmark. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(exe, exe, "--socket", b->socket, "--config", b->config, (char *)NULL);
		_exit(127);
	}
	b->pid = pid;

	for (int i = 0; i < 500; i++) {
		int fd = raw_connect(b->socket);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "crossbufd (%s) exited at start (status 0x%x)\n", exe,
				status);
			b->pid = 0;
			broker_free_paths(b);
			return -EIO;
		}
		g_usleep(10000);
	}
	fprintf(stderr, "crossbufd (%s) did not start listening\n", exe);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	broker_free_paths(b);
	return -ETIMEDOUT;
}

int
bench_broker_stop(struct bench_broker *b)
{
	int status = 0, r = 0;

	if (b->pid > 0) {
		kill(b->pid, SIGTERM);
		if (waitpid(b->pid, &status, 0) != b->pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			g_autofree char *log = g_build_filename(b->dir, "broker.log", NULL);
			g_autofree char *text = NULL;

			g_file_get_contents(log, &text, NULL, NULL);
			fprintf(stderr, "crossbufd did not exit cleanly (status 0x%x); log:\n%s\n",
				status, text != NULL ? text : "");
			r = -EIO;
		}
	}
	broker_free_paths(b);
	return r;
}

struct crossbuf_client *
bench_broker_client(const struct bench_broker *b, uint32_t rights)
{
	struct crossbuf_client *c = NULL;
	int r;

	r = crossbuf_client_new(&c);
	if (r == 0)
		r = crossbuf_client_set_rights(c, rights);
	if (r == 0)
		r = crossbuf_client_connect(c, b->socket);
	if (r < 0) {
		fprintf(stderr, "cannot connect to crossbufd: %s\n", strerror(-r));
		return crossbuf_client_unref(c);
	}
	return c;
}

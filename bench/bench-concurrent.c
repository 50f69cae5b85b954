/* SPDX-License-Identifier: MIT */
/*
 * Sixteen clients at once against one crossbufd, and a check that nothing was lost.
 *
 * Each client is a process of its own with its own libcrossbuf connection (as device
 * processes are), doing a fixed number of mixed operations on its own entries: 25% export
 * (one sealed memfd shared by all exports, a broker-generated UUID), 50% lookup (the fd is
 * closed at once), 25% remove; a client that holds no entry exports. The baseline is the
 * same total number of operations from one client, measured in the same run against the
 * same broker; the two alternate, and each figure is the median (throughput) or pools the
 * samples (latency) of all repetitions.
 *
 * Correctness, checked after every run while the clients are still connected (an exporter's
 * entries go with its connection): each client tracks what it exported and removed; the
 * admin client's crossbuf_client_list() must show exactly the union of their live sets,
 * each UUID once and owned by the pid that exported it; the stats' entries equals that
 * count and their exports/lookups/removes grew by what the clients did. Once the clients
 * have exited the broker must hold no entry. Any difference is printed and makes the
 * program exit 1; timings never do.
 *
 * Usage: bench-concurrent [--crossbufd PATH] [operations [repetitions]]
 */
#include "bench-util.h"
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_CLIENTS 16
#define MAX_LIVE  3500 /* per client, under the broker's default 4096 entries per client */

enum op_kind {
	OP_EXPORT,
	OP_LOOKUP,
	OP_REMOVE,
	N_OPS,
};

static const char *const op_name[N_OPS] = {"export", "lookup", "remove"};

/* What a client reports, in memory shared with the parent. */
struct client_result {
	pid_t pid;
	int error; /* the first failure, 0 if none */
	char what[96];
	uint64_t start_ns, end_ns;
	uint64_t count[N_OPS];
	uint32_t n_live;
};

/* One run's shared memory: results, then per client its latencies, kinds and live UUIDs. */
struct shared {
	void *mem;
	size_t size;
	unsigned n_clients, ops;
	struct client_result *results;
	uint32_t *lat;                       /* [n_clients][ops] nanoseconds */
	uint8_t *kind;                       /* [n_clients][ops] enum op_kind */
	uint8_t (*live)[CROSSBUF_UUID_SIZE]; /* [n_clients][MAX_LIVE] */
};

static int
shared_new(struct shared *sh, unsigned n_clients, unsigned ops)
{
	size_t results = ALIGN_UP(sizeof(struct client_result) * n_clients, 64);
	size_t lat = ALIGN_UP(sizeof(uint32_t) * n_clients * ops, 64);
	size_t kind = ALIGN_UP((size_t)n_clients * ops, 64);
	size_t live = (size_t)n_clients * MAX_LIVE * CROSSBUF_UUID_SIZE;
	uint8_t *p;

	sh->size = results + lat + kind + live;
	sh->mem = mmap(NULL, sh->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh->mem == MAP_FAILED)
		return -errno;
	p = sh->mem;
	sh->n_clients = n_clients;
	sh->ops = ops;
	sh->results = (struct client_result *)p;
	sh->lat = (uint32_t *)(p + results);
	sh->kind = p + results + lat;
	sh->live = (uint8_t(*)[CROSSBUF_UUID_SIZE])(p + results + lat + kind);
	return 0;
}

/* --- A client ----------------------------------------------------------------------------- */

_printf_(3, 4) static void
fail(struct client_result *res, int error, const char *fmt, ...)
{
	va_list ap;

	if (res->error != 0)
		return;
	res->error = error < 0 ? error : -EIO;
	va_start(ap, fmt);
	vsnprintf(res->what, sizeof(res->what), fmt, ap);
	va_end(ap);
}

static void
client_ops(struct crossbuf_client *c, struct shared *sh, unsigned idx, int memfd, GRand *rand)
{
	struct client_result *res = &sh->results[idx];
	uint32_t *lat = sh->lat + (size_t)idx * sh->ops;
	uint8_t *kind = sh->kind + (size_t)idx * sh->ops;
	uint8_t(*live)[CROSSBUF_UUID_SIZE] = sh->live + (size_t)idx * MAX_LIVE;
	GHashTable *seen = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
						 (GDestroyNotify)g_bytes_unref, NULL);
	struct crossbuf_buffer_info info, got;
	uint32_t n_live = 0;

	bench_info(&info);
	res->start_ns = bench_now_ns();
	for (unsigned i = 0; i < sh->ops && res->error == 0; i++) {
		unsigned dice = (unsigned)g_rand_int_range(rand, 0, 100);
		enum op_kind op = dice < 25 ? OP_EXPORT : dice < 75 ? OP_LOOKUP : OP_REMOVE;
		uint32_t pick =
			n_live > 0 ? (uint32_t)g_rand_int_range(rand, 0, (gint32)n_live) : 0;
		uint64_t t0, t1;
		int fd = -1, r;

		if (n_live == 0)
			op = OP_EXPORT;
		else if (n_live == MAX_LIVE && op == OP_EXPORT)
			op = OP_REMOVE;

		t0 = bench_now_ns();
		switch (op) {
		case OP_EXPORT:
			r = crossbuf_client_export(c, memfd, &info, live[n_live]);
			break;
		case OP_LOOKUP:
			r = crossbuf_client_lookup(c, live[pick], &got, &fd);
			if (r == 0)
				close(fd);
			break;
		case OP_REMOVE:
			r = crossbuf_client_remove(c, live[pick]);
			break;
		case N_OPS:
			r = -EINVAL;
			break;
		}
		t1 = bench_now_ns();
		lat[i] = (uint32_t)MIN(t1 - t0, UINT32_MAX);
		kind[i] = (uint8_t)op;
		res->count[op]++;

		if (r < 0) {
			fail(res, r, "%s failed: %s", op_name[op], strerror(-r));
			break;
		}
		switch (op) {
		case OP_EXPORT: {
			GBytes *key = g_bytes_new(live[n_live], CROSSBUF_UUID_SIZE);
			if (!g_hash_table_add(seen, key)) {
				char u[CROSSBUF_UUID_STRING_SIZE];
				crossbuf_uuid_to_string(live[n_live], u);
				fail(res, -EEXIST, "export returned %s a second time", u);
			}
			n_live++;
			break;
		}
		case OP_LOOKUP:
			if (fd < 0 || got.size != BENCH_SIZE ||
			    got.fd_kind != CROSSBUF_FD_KIND_MEMFD)
				fail(res, -EPROTO, "lookup returned fd %d, size %llu, kind %u", fd,
				     (unsigned long long)got.size, got.fd_kind);
			break;
		case OP_REMOVE:
			memcpy(live[pick], live[n_live - 1], CROSSBUF_UUID_SIZE);
			n_live--;
			break;
		case N_OPS:
			break;
		}
	}
	res->end_ns = bench_now_ns();
	res->n_live = n_live;
	g_hash_table_destroy(seen);
}

/*
 * A client process: connects, says ready, waits for go (EOF on go_fd), runs its operations,
 * says done, and stays connected until released (EOF on release_fd).
 */
static _Noreturn void
client_main(const struct bench_broker *b, struct shared *sh, unsigned idx, int memfd, guint32 seed,
	    int ready_fd, int go_fd, int release_fd)
{
	struct client_result *res = &sh->results[idx];
	struct crossbuf_client *c;
	GRand *rand = g_rand_new_with_seed(seed);
	char byte = 'r';

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	res->pid = getpid();
	c = bench_broker_client(b, 0);
	if (c == NULL)
		fail(res, -ENOTCONN, "cannot connect");
	if (write(ready_fd, &byte, 1) != 1)
		_exit(1);
	if (read(go_fd, &byte, 1) != 0)
		_exit(1);
	if (c != NULL)
		client_ops(c, sh, idx, memfd, rand);
	byte = 'd';
	if (write(ready_fd, &byte, 1) != 1)
		_exit(1);
	if (read(release_fd, &byte, 1) != 0)
		_exit(1);
	crossbuf_client_unref(c);
	g_rand_free(rand);
	_exit(res->error == 0 ? 0 : 1);
}

/* --- The parent ------------------------------------------------------------------------ */

struct run_result {
	double ops_per_s;
	double broker_busy; /* the broker's CPU time over the run's wall time */
	uint64_t live;
};

/* User plus system CPU time of a process in seconds, from /proc (clock-tick resolution). */
static double
cpu_seconds(pid_t pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
	g_autofree char *text = NULL;
	unsigned long utime, stime;
	const char *p;

	if (!g_file_get_contents(path, &text, NULL, NULL) || (p = strrchr(text, ')')) == NULL)
		return 0;
	/* After "pid (comm)": state, then fields 4..13, then utime and stime. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
		   &stime) != 2)
		return 0;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Latency samples pooled over the repetitions of one configuration. */
struct pool {
	GArray *lat[N_OPS]; /* uint64_t */
};

struct check {
	GHashTable *expected; /* uuid bytes -> client index + 1 */
	GHashTable *listed;   /* uuid bytes, set */
	const struct shared *sh;
	unsigned extra, twice, wrong_owner;
};

static guint
uuid_hash(gconstpointer p)
{
	guint h;

	memcpy(&h, p, sizeof(h));
	return h;
}

static gboolean
uuid_equal(gconstpointer a, gconstpointer b)
{
	return memcmp(a, b, CROSSBUF_UUID_SIZE) == 0;
}

static int
check_entry(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
	    const struct crossbuf_buffer_info *info, const struct crossbuf_owner_info *owner)
{
	struct check *ck = userdata;
	gpointer idx;
	char u[CROSSBUF_UUID_STRING_SIZE];

	crossbuf_uuid_to_string(uuid, u);
	if (!g_hash_table_add(ck->listed, (gpointer)g_memdup2(uuid, CROSSBUF_UUID_SIZE))) {
		if (ck->twice++ < 5)
			fprintf(stderr, "entry %s listed twice\n", u);
		return 0;
	}
	idx = g_hash_table_lookup(ck->expected, uuid);
	if (idx == NULL) {
		if (ck->extra++ < 5)
			fprintf(stderr, "entry %s is listed but no client holds it\n", u);
		return 0;
	}
	if (owner->pid != ck->sh->results[GPOINTER_TO_UINT(idx) - 1].pid) {
		if (ck->wrong_owner++ < 5)
			fprintf(stderr, "entry %s is owned by pid %d, exported by pid %d\n", u,
				(int)owner->pid,
				(int)ck->sh->results[GPOINTER_TO_UINT(idx) - 1].pid);
	}
	return 0;
}

/* Compares the broker's view with the clients'; returns the live count, or -1 on a mismatch. */
static int64_t
verify(const struct bench_broker *b, const struct shared *sh, const struct crossbuf_stats *before)
{
	struct check ck = {.sh = sh};
	struct crossbuf_client *admin = bench_broker_client(b, CROSSBUF_RIGHT_ADMIN);
	struct crossbuf_stats after;
	uint64_t sum[N_OPS] = {0};
	unsigned dup_live = 0, lost = 0;
	int64_t ret = -1;
	int r;

	if (admin == NULL)
		return -1;
	ck.expected = g_hash_table_new(uuid_hash, uuid_equal);
	ck.listed = g_hash_table_new_full(uuid_hash, uuid_equal, g_free, NULL);
	for (unsigned i = 0; i < sh->n_clients; i++) {
		const struct client_result *res = &sh->results[i];
		for (int k = 0; k < N_OPS; k++)
			sum[k] += res->count[k];
		for (uint32_t j = 0; j < res->n_live; j++) {
			const uint8_t *uuid = sh->live[(size_t)i * MAX_LIVE + j];
			if (!g_hash_table_insert(ck.expected, (gpointer)uuid,
						 GUINT_TO_POINTER(i + 1)))
				dup_live++;
		}
	}
	r = crossbuf_client_list(admin, check_entry, &ck);
	if (r == 0)
		r = crossbuf_client_get_stats(admin, &after);
	if (r < 0) {
		fprintf(stderr, "admin list/stats: %s\n", strerror(-r));
		goto out;
	}
	{
		GHashTableIter iter;
		gpointer key;

		g_hash_table_iter_init(&iter, ck.expected);
		while (g_hash_table_iter_next(&iter, &key, NULL)) {
			if (!g_hash_table_contains(ck.listed, key) && lost++ < 5) {
				char u[CROSSBUF_UUID_STRING_SIZE];
				crossbuf_uuid_to_string(key, u);
				fprintf(stderr, "entry %s was lost\n", u);
			}
		}
	}
	if (dup_live > 0)
		fprintf(stderr, "%u UUIDs are live in two clients\n", dup_live);
	if (after.entries != g_hash_table_size(ck.expected) ||
	    after.exports - before->exports != sum[OP_EXPORT] ||
	    after.lookups - before->lookups != sum[OP_LOOKUP] ||
	    after.removes - before->removes != sum[OP_REMOVE]) {
		fprintf(stderr,
			"stats disagree: entries %llu (clients hold %u), exports +%llu (%llu), "
			"lookups +%llu (%llu), removes +%llu (%llu)\n",
			(unsigned long long)after.entries, g_hash_table_size(ck.expected),
			(unsigned long long)(after.exports - before->exports),
			(unsigned long long)sum[OP_EXPORT],
			(unsigned long long)(after.lookups - before->lookups),
			(unsigned long long)sum[OP_LOOKUP],
			(unsigned long long)(after.removes - before->removes),
			(unsigned long long)sum[OP_REMOVE]);
		goto out;
	}
	if (lost == 0 && ck.extra == 0 && ck.twice == 0 && ck.wrong_owner == 0 && dup_live == 0)
		ret = g_hash_table_size(ck.expected);
	else
		fprintf(stderr, "%u lost, %u extra, %u listed twice, %u with the wrong owner\n",
			lost, ck.extra, ck.twice, ck.wrong_owner);
out:
	g_hash_table_destroy(ck.listed);
	g_hash_table_destroy(ck.expected);
	crossbuf_client_unref(admin);
	return ret;
}

static int
stats_now(const struct bench_broker *b, struct crossbuf_stats *ret)
{
	struct crossbuf_client *admin = bench_broker_client(b, CROSSBUF_RIGHT_ADMIN);
	int r = admin != NULL ? crossbuf_client_get_stats(admin, ret) : -ENOTCONN;

	crossbuf_client_unref(admin);
	return r;
}

/* Waits (up to 5 s) for the broker to hold no entry once every client is gone. */
static int
wait_empty(const struct bench_broker *b)
{
	struct crossbuf_stats st = {0};

	for (int i = 0; i < 500; i++) {
		/* The admin client asking is the one client left. */
		if (stats_now(b, &st) == 0 && st.entries == 0 && st.clients == 1)
			return 0;
		g_usleep(10000);
	}
	fprintf(stderr, "%llu entries and %llu other clients left after every client exited\n",
		(unsigned long long)st.entries, (unsigned long long)st.clients - 1);
	return -1;
}

static int
run(const struct bench_broker *b, unsigned n_clients, unsigned total_ops, int memfd, guint32 seed,
    struct pool *pool, struct run_result *out)
{
	unsigned ops = total_ops / n_clients;
	struct shared sh;
	struct crossbuf_stats before;
	int ready[2] = {-1, -1}, go[2] = {-1, -1}, release[2] = {-1, -1};
	pid_t pids[N_CLIENTS];
	unsigned started = 0, failed = 0;
	uint64_t first = UINT64_MAX, last = 0;
	int64_t live;
	double cpu0 = 0;
	char byte;
	int r = -1;

	if (shared_new(&sh, n_clients, ops) < 0) {
		fprintf(stderr, "mmap: %s\n", strerror(errno));
		return -1;
	}
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 ||
	    pipe2(release, O_CLOEXEC) < 0) {
		fprintf(stderr, "pipe: %s\n", strerror(errno));
		goto out;
	}
	if (stats_now(b, &before) < 0)
		goto out;
	fflush(NULL);
	for (; started < n_clients; started++) {
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "fork: %s\n", strerror(errno));
			goto out;
		}
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			close(release[1]);
			client_main(b, &sh, started, memfd, seed + started, ready[1], go[0],
				    release[0]);
		}
		pids[started] = pid;
	}
	close(ready[1]);
	ready[1] = -1;
	for (unsigned i = 0; i < n_clients; i++) {
		if (read(ready[0], &byte, 1) != 1)
			goto out;
	}
	/* Go: every client sees EOF at once. */
	cpu0 = cpu_seconds(b->pid);
	close(go[1]);
	go[1] = -1;
	for (unsigned i = 0; i < n_clients; i++) {
		if (read(ready[0], &byte, 1) != 1)
			goto out;
	}
	out->broker_busy = cpu_seconds(b->pid) - cpu0;

	for (unsigned i = 0; i < n_clients; i++) {
		const struct client_result *res = &sh.results[i];
		if (res->error != 0) {
			fprintf(stderr, "client %u (pid %d): %s\n", i, (int)res->pid, res->what);
			failed++;
		}
		first = MIN(first, res->start_ns);
		last = MAX(last, res->end_ns);
		for (unsigned j = 0; j < ops; j++) {
			uint64_t v = sh.lat[(size_t)i * ops + j];
			g_array_append_val(pool->lat[sh.kind[(size_t)i * ops + j]], v);
		}
	}
	live = failed == 0 ? verify(b, &sh, &before) : -1;
	if (live >= 0) {
		out->ops_per_s = (double)ops * n_clients * 1e9 / (double)(last - first);
		out->broker_busy /= (double)(last - first) / 1e9;
		out->live = (uint64_t)live;
		r = 0;
	}

out:
	/* Release the clients; their entries go with their connections. */
	safe_close(go[1]);
	safe_close(release[1]);
	for (unsigned i = 0; i < started; i++) {
		int status;
		if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			r = -1;
	}
	if (r == 0)
		r = wait_empty(b);
	safe_close(ready[0]);
	safe_close(ready[1]);
	safe_close(go[0]);
	safe_close(release[0]);
	munmap(sh.mem, sh.size);
	return r;
}

static void
print_row(unsigned n_clients, double *rates, double *busy, unsigned reps, double base,
	  struct pool *pool)
{
	double rate = bench_median(rates, reps);

	printf("%8u  %9.0f  %6.2f  %6.0f%%", n_clients, rate, rate / base,
	       100 * bench_median(busy, reps));
	for (int k = 0; k < N_OPS; k++) {
		GArray *a = pool->lat[k];
		uint64_t p50 = bench_percentile_u64((uint64_t *)(void *)a->data, a->len, 50);
		uint64_t p99 = bench_percentile_u64((uint64_t *)(void *)a->data, a->len, 99);
		printf("   %6.1f %7.1f", p50 / 1e3, p99 / 1e3);
	}
	printf("\n");
}

int
main(int argc, char **argv)
{
	const char *exe = bench_crossbufd_path(&argc, argv);
	static const unsigned configs[2] = {1, N_CLIENTS};
	unsigned total = 96000, reps = 3;
	struct bench_broker broker;
	struct pool pools[2];
	double *rates[2], *busy[2];
	uint64_t last_live[2] = {0};
	int memfd, ret = EXIT_SUCCESS;
	guint32 seed;

	if (argc > 1)
		total = (unsigned)CLAMP(atoi(argv[1]), N_CLIENTS, 10000000);
	if (argc > 2)
		reps = (unsigned)CLAMP(atoi(argv[2]), 1, 100);
	total = total / N_CLIENTS * N_CLIENTS;
	if (exe == NULL) {
		fprintf(stderr, "bench-concurrent: set $CROSSBUFD or pass --crossbufd PATH\n");
		return 77;
	}
	memfd = bench_memfd();
	if (memfd < 0) {
		fprintf(stderr, "memfd: %s\n", strerror(-memfd));
		return EXIT_FAILURE;
	}
	if (bench_broker_start(&broker, exe, NULL) < 0) {
		close(memfd);
		return EXIT_FAILURE;
	}
	seed = g_random_int();
	for (int c = 0; c < 2; c++) {
		rates[c] = g_new0(double, reps);
		busy[c] = g_new0(double, reps);
		for (int k = 0; k < N_OPS; k++)
			pools[c].lat[k] = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	}

	for (unsigned rep = 0; rep < reps && ret == EXIT_SUCCESS; rep++) {
		for (int k = 0; k < 2; k++) {
			/* Alternate which configuration goes first. */
			int c = (int)((rep + (unsigned)k) % 2);
			struct run_result res = {0};

			if (run(&broker, configs[c], total, memfd, seed + rep * 1000, &pools[c],
				&res) < 0) {
				fprintf(stderr, "%u client(s), repetition %u: FAILED\n", configs[c],
					rep + 1);
				ret = EXIT_FAILURE;
				break;
			}
			rates[c][rep] = res.ops_per_s;
			busy[c][rep] = res.broker_busy;
			last_live[c] = res.live;
		}
	}

	if (ret == EXIT_SUCCESS) {
		double base = bench_median(rates[0], reps);

#ifndef __OPTIMIZE__
		printf("# note: unoptimised build; use a release build for real numbers\n");
#endif
		printf("# %u operations per run (25%% export, 50%% lookup, 25%% remove)\n"
		       "# against one crossbufd, from 1 client and from %u client processes\n"
		       "# (%u each), %u alternating repetitions; throughput is the median,\n"
		       "# latencies pool every repetition (microseconds); 'broker' is\n"
		       "# crossbufd's CPU time over the run's wall time (100%% = one core,\n"
		       "# the most a single-threaded broker can use).\n",
		       total, N_CLIENTS, total / N_CLIENTS, reps);
		printf("# clients      ops/s   ratio   broker   export p50     p99"
		       "   lookup p50     p99   remove p50     p99\n");
		print_row(configs[0], rates[0], busy[0], reps, base, &pools[0]);
		print_row(configs[1], rates[1], busy[1], reps, base, &pools[1]);
		printf("# correctness: after every run the broker listed exactly the entries\n"
		       "# the clients hold (last runs: %llu and %llu), each once with its\n"
		       "# exporter's pid; stats agree; no entry left once the clients exited: OK\n",
		       (unsigned long long)last_live[0], (unsigned long long)last_live[1]);
	}

	for (int c = 0; c < 2; c++) {
		g_free(rates[c]);
		g_free(busy[c]);
		for (int k = 0; k < N_OPS; k++)
			g_array_free(pools[c].lat[k], TRUE);
	}
	if (bench_broker_stop(&broker) < 0)
		ret = EXIT_FAILURE;
	close(memfd);
	return ret;
}

/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the benchmarks: clocks, medians and percentiles, numbers from the
 * environment, the H.264 test streams of the decoding benchmarks, sealed memfds with a small
 * NV12 layout, the fd limit, and a private crossbufd started the way the broker tests start
 * theirs (tests/registry/broker-fixture.c).
 */
#pragma once

#include <crossbuf/crossbuf.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* The NV12 frame every benchmark exports: small, so that copying it is never the cost. */
#define BENCH_WIDTH  64
#define BENCH_HEIGHT 64
#define BENCH_SIZE   (BENCH_WIDTH * BENCH_HEIGHT * 3 / 2)

uint64_t bench_now_ns(void);
/* The clock id's time in seconds. */
double bench_clock_s(clockid_t id);

/* Sorts v in place; the nearest-rank percentile p (0..100) of its n values. */
uint64_t bench_percentile_u64(uint64_t *v, size_t n, double p);
/* Sorts v in place; the median of its n values. */
double bench_median(double *v, size_t n);

/*
 * CPU placement. A shared VM's vCPUs need not be equally fast (another tenant on a host
 * core's sibling, interrupts landing on one of them: on the 2-vCPU machine of
 * docs/performance.md one decoded 5% slower than the other for minutes), so a benchmark that
 * compares threads puts the threads it compares on the same CPU.
 *
 * bench_cpus: the CPUs the calling thread may run on, ascending, at most max of them: their
 * count (0 on error). bench_pin_self: pins the calling thread to cpu. bench_pin_others: pins
 * every other thread of the process to cpu, returns how many. bench_unpin_all: lets every
 * thread of the process run on the n CPUs again. All but bench_cpus return -errno on error.
 */
unsigned bench_cpus(int *cpus, unsigned max);
int bench_pin_self(int cpu);
int bench_pin_others(int cpu);
int bench_unpin_all(const int *cpus, unsigned n);

/* $name as a number in 1..max-1, else def (unset, empty, 0, too large or not a number). */
unsigned bench_env_uint(const char *name, unsigned def, unsigned max);

/*
 * An H.264 stream of frames frames of ffmpeg's testsrc2 at width x height, 30 fps, yuv420p,
 * libx264 -preset fast, written to dir/testsrc2-WxH.h264 by ffmpeg: its path (g_free() it),
 * or NULL when ffmpeg or its libx264 encoder is missing or failed.
 */
char *bench_make_stream(const char *dir, unsigned width, unsigned height, unsigned frames);

/* A memfd of BENCH_SIZE bytes sealed against shrinking and growing: new fd, or -errno. */
int bench_memfd(void);
/* Fills info (zeroed first) with the NV12 layout of a bench_memfd(). */
void bench_info(struct crossbuf_buffer_info *info);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the resulting soft limit. */
uint64_t bench_raise_nofile(uint64_t *ret_hard);

/*
 * The crossbufd binary: --crossbufd PATH if argv has it (the option is removed from
 * argv), else $CROSSBUFD; NULL if neither is set.
 */
const char *bench_crossbufd_path(int *argc, char **argv);

struct bench_broker {
	pid_t pid;
	char *dir;
	char *socket;
	char *config;
};

/*
 * Starts exe with its own socket, config (config_text, or no file: the built-in defaults)
 * and log in a fresh folder under $TMPDIR, and waits until it accepts connections.
 * 0 or -errno.
 */
int bench_broker_start(struct bench_broker *b, const char *exe, const char *config_text);
/*
 * Stops it with SIGTERM. Returns 0 if it exited cleanly, else -EIO after printing its log.
 * Removes the folder either way.
 */
int bench_broker_stop(struct bench_broker *b);
/* A client of the broker's "default" domain with the given rights, or NULL (message printed). */
struct crossbuf_client *bench_broker_client(const struct bench_broker *b, uint32_t rights);

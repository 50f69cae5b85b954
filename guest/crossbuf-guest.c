/* SPDX-License-Identifier: MIT */
/*
 * crossbuf-guest: a VMM and a guest in one process, to run the zero-copy decode-to-display
 * pipeline (pipeline.h) against crossbuf's devices over vhost-user.
 *
 *   crossbuf-guest --input CLIP [--framemd5 FILE] [--out DIR] [--protected] ...
 *       starts crossbufd, crossbuf-gpu (memfd backend) and crossbuf-media itself, runs the
 *       pipeline, stops them;
 *   crossbuf-guest --gpu-socket P --media-socket P [--broker P] --input CLIP ...
 *       uses devices someone else started.
 *
 * Ownership: main() owns the processes it started, their scratch directory, the VM and the
 * pipeline's result. Exit status: 0 when the whole clip was displayed and every check
 * passed, 1 when something failed (the summary says what), 2 for a usage error.
 */
#include "config.h"
#include "log.h"
#include "macro.h"
#include "pipeline.h"
#include "spawn.h"
#include "vm.h"

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_RAM_MIB  64
#define STOP_TIMEOUT_MS  5000
#define START_TIMEOUT_MS 10000

struct options {
	struct pipeline_options pipeline;
	const char *gpu_socket, *media_socket;
	const char *dump_ram;
	uint64_t ram_size;
	struct guest_vm_options vm;
	bool keep_logs;
	bool verbose;
};

/* The devices crossbuf-guest started, in its scratch directory. */
struct host {
	char *dir;
	char *broker_socket, *gpu_socket, *media_socket;
	struct guest_proc broker, gpu, media;
};

static void
usage(FILE *f)
{
	fputs("Usage: crossbuf-guest --input CLIP [OPTIONS]\n"
	      "\n"
	      "Plays VMM and guest at once: decodes CLIP on a virtio-media device straight into\n"
	      "virtio-gpu scanout buffers shared by UUID, and shows every frame. Without device\n"
	      "sockets it starts crossbufd, crossbuf-gpu and crossbuf-media itself.\n"
	      "\n"
	      "  -i, --input=CLIP          H.264, HEVC, VP8 or VP9 in any container FFmpeg reads\n"
	      "  -m, --framemd5=FILE       check every displayed frame against FILE, made with\n"
	      "                            ffmpeg -i CLIP -pix_fmt nv12 -f framemd5 FILE\n"
	      "  -o, --out=DIR             PNG snapshots of the scanout go to DIR\n"
	      "      --snapshot-every=N    keep every Nth frame as DIR/frame-N.png (default 25;\n"
	      "                            DIR/scanout-0.png is always the last one)\n"
	      "  -p, --protected           allocate the scanout buffers protected and prove that no\n"
	      "                            frame row reached guest-visible memory\n"
	      "      --realtime            display at the clip's frame rate (default: as fast as\n"
	      "                            the decoder goes)\n"
	      "      --frames=N            feed only the first N coded frames\n"
	      "      --buffers=N           scanout buffers beyond the decoder's minimum (default 2)\n"
	      "      --progress            a line per displayed frame on stdout\n"
	      "      --dump-guest-ram=FILE write guest RAM to FILE on exit\n"
	      "      --ram-size=MIB        guest RAM (default 64)\n"
	      "      --timeout=SECONDS     how long a device may take to answer a request, or\n"
	      "                            the decoder to make progress (0.1 to 3600, default 10)\n"
	      "      --gpu-socket=PATH     a running crossbuf-gpu (or other vhost-user-gpu backend)\n"
	      "      --media-socket=PATH   a running crossbuf-media\n"
	      "      --broker=PATH         the crossbufd those devices use (for the checks)\n"
	      "      --domain=NAME         registry domain of the devices\n"
	      "      --keep-logs           keep the started processes' logs (their directory is\n"
	      "                            printed)\n"
	      "  -v, --verbose             say what is started and negotiated\n"
	      "  -h, --help, -V, --version\n",
	      f);
}

static int
parse_uint(const char *arg, const char *what, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || errno != 0 || v > max) {
		cb_log("%s: \"%s\" is not a number from 0 to %u", what, arg, max);
		return -EINVAL;
	}
	*ret = (unsigned)v;
	return 0;
}

/* Seconds, with a fraction if wanted, to milliseconds: 0.1 s to GUEST_VM_TIMEOUT_MAX_MS. */
static int
parse_timeout(const char *arg, unsigned *ret_ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (*arg == '\0' || *end != '\0' || errno != 0 || !(v >= 0.1) ||
	    v > GUEST_VM_TIMEOUT_MAX_MS / 1000) {
		cb_log("--timeout: \"%s\" is not a number of seconds from 0.1 to %d", arg,
		       GUEST_VM_TIMEOUT_MAX_MS / 1000);
		return -EINVAL;
	}
	*ret_ms = (unsigned)(v * 1000 + 0.5);
	return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_SNAPSHOT = 256,
		OPT_REALTIME,
		OPT_FRAMES,
		OPT_BUFFERS,
		OPT_PROGRESS,
		OPT_DUMP,
		OPT_RAM,
		OPT_TIMEOUT,
		OPT_GPU,
		OPT_MEDIA,
		OPT_BROKER,
		OPT_DOMAIN,
		OPT_KEEP
	};
	static const struct option options[] = {
		{"input", required_argument, NULL, 'i'},
		{"framemd5", required_argument, NULL, 'm'},
		{"out", required_argument, NULL, 'o'},
		{"snapshot-every", required_argument, NULL, OPT_SNAPSHOT},
		{"protected", no_argument, NULL, 'p'},
		{"realtime", no_argument, NULL, OPT_REALTIME},
		{"frames", required_argument, NULL, OPT_FRAMES},
		{"buffers", required_argument, NULL, OPT_BUFFERS},
		{"progress", no_argument, NULL, OPT_PROGRESS},
		{"dump-guest-ram", required_argument, NULL, OPT_DUMP},
		{"ram-size", required_argument, NULL, OPT_RAM},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"gpu-socket", required_argument, NULL, OPT_GPU},
		{"media-socket", required_argument, NULL, OPT_MEDIA},
		{"broker", required_argument, NULL, OPT_BROKER},
		{"domain", required_argument, NULL, OPT_DOMAIN},
		{"keep-logs", no_argument, NULL, OPT_KEEP},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	unsigned ram_mib = DEFAULT_RAM_MIB;
	int opt;

	o->pipeline.extra_buffers = 2;
	o->pipeline.snapshot_every = 25;
	while ((opt = getopt_long(argc, argv, "i:m:o:pvhV", options, NULL)) >= 0) {
		switch (opt) {
		case 'i':
			o->pipeline.input = optarg;
			break;
		case 'm':
			o->pipeline.framemd5 = optarg;
			break;
		case 'o':
			o->pipeline.out_dir = optarg;
			break;
		case OPT_SNAPSHOT:
			if (parse_uint(optarg, "--snapshot-every", 1000000,
				       &o->pipeline.snapshot_every) < 0)
				return -EINVAL;
			break;
		case 'p':
			o->pipeline.protected_ = true;
			break;
		case OPT_REALTIME:
			o->pipeline.realtime = true;
			break;
		case OPT_FRAMES:
			if (parse_uint(optarg, "--frames", 10000000, &o->pipeline.max_packets) < 0)
				return -EINVAL;
			break;
		case OPT_BUFFERS:
			if (parse_uint(optarg, "--buffers", 16, &o->pipeline.extra_buffers) < 0)
				return -EINVAL;
			break;
		case OPT_PROGRESS:
			o->pipeline.progress = true;
			break;
		case OPT_DUMP:
			o->dump_ram = optarg;
			break;
		case OPT_RAM:
			if (parse_uint(optarg, "--ram-size", 65536, &ram_mib) < 0 || ram_mib < 4) {
				cb_log("--ram-size: 4 to 65536 MiB");
				return -EINVAL;
			}
			break;
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, &o->vm.timeout_ms) < 0)
				return -EINVAL;
			break;
		case OPT_GPU:
			o->gpu_socket = optarg;
			break;
		case OPT_MEDIA:
			o->media_socket = optarg;
			break;
		case OPT_BROKER:
			o->pipeline.broker = optarg;
			break;
		case OPT_DOMAIN:
			o->pipeline.domain = optarg;
			break;
		case OPT_KEEP:
			o->keep_logs = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("crossbuf-guest %s\n", CROSSBUF_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	o->ram_size = (uint64_t)ram_mib << 20;
	if (optind != argc) {
		cb_log("unexpected argument \"%s\"", argv[optind]);
		return -EINVAL;
	}
	if (o->pipeline.input == NULL) {
		usage(stderr);
		return -EINVAL;
	}
	if ((o->gpu_socket == NULL) != (o->media_socket == NULL)) {
		cb_log("--gpu-socket and --media-socket go together (or neither: then both "
		       "devices are started here)");
		return -EINVAL;
	}
	if (o->gpu_socket == NULL && (o->pipeline.broker || o->pipeline.domain)) {
		cb_log("--broker and --domain describe devices given with --gpu-socket and "
		       "--media-socket");
		return -EINVAL;
	}
	return 0;
}

/* ---- the host side: crossbufd and both devices ---- */

static void
print_log(const struct guest_proc *p)
{
	g_autofree char *text = NULL;

	if (p->log && g_file_get_contents(p->log, &text, NULL, NULL) && text[0])
		fprintf(stderr, "---- %s log (%s) ----\n%s", p->name, p->log, text);
}

static int
start_one(struct host *h, struct guest_proc *p, const char *name, GPtrArray *args,
	  const char *socket, bool verbose)
{
	g_autofree char *log = g_strdup_printf("%s/%s.log", h->dir, name);
	g_autofree char *exe = guest_find_exe(name);
	int r;

	g_ptr_array_insert(args, 0, g_strdup(exe));
	g_ptr_array_add(args, NULL);
	if (verbose) {
		g_autofree char *line = g_strjoinv(" ", (char **)args->pdata);
		cb_log("starting %s", line);
	}
	r = guest_proc_start(p, name, (char *const *)args->pdata, log);
	g_ptr_array_free(args, true);
	if (r < 0) {
		cb_log("cannot start %s: %s", name, strerror(-r));
		return r;
	}
	r = guest_proc_wait_socket(p, socket, START_TIMEOUT_MS);
	if (r < 0) {
		cb_log("%s did not come up (%s)", name,
		       r == -ECHILD ? "it exited" : "no socket after 10 s");
		print_log(p);
	}
	return r;
}

static GPtrArray *
args_new(const char *first, ...)
{
	GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
	va_list ap;

	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *))
		g_ptr_array_add(a, g_strdup(s));
	va_end(ap);
	return a;
}

static int
host_start(struct host *h, const struct options *o)
{
	GPtrArray *args;
	int r;

	h->dir = g_dir_make_tmp("crossbuf-guest-XXXXXX", NULL);
	if (h->dir == NULL)
		return -errno;
	h->broker_socket = g_strdup_printf("%s/broker.sock", h->dir);
	h->gpu_socket = g_strdup_printf("%s/gpu.sock", h->dir);
	h->media_socket = g_strdup_printf("%s/media.sock", h->dir);

	/* No policy file: only this user may connect, with every right. */
	args = args_new("--socket", h->broker_socket, NULL);
	r = start_one(h, &h->broker, "crossbufd", args, h->broker_socket, o->verbose);
	if (r < 0)
		return r;
	args = args_new("--socket-path", h->gpu_socket, "--broker", h->broker_socket, "--backend",
			"memfd", NULL);
	if (o->pipeline.out_dir) {
		g_ptr_array_add(args, g_strdup("--png-dir"));
		g_ptr_array_add(args, g_strdup(o->pipeline.out_dir));
	}
	if (o->pipeline.protected_)
		g_ptr_array_add(args, g_strdup("--protect=NV12"));
	r = start_one(h, &h->gpu, "crossbuf-gpu", args, h->gpu_socket, o->verbose);
	if (r < 0)
		return r;
	args = args_new("--socket-path", h->media_socket, "--broker", h->broker_socket, NULL);
	if (o->pipeline.protected_)
		g_ptr_array_add(args, g_strdup("--protected"));
	return start_one(h, &h->media, "crossbuf-media", args, h->media_socket, o->verbose);
}

/* Stops what was started, in reverse order; says so when one did not end cleanly. */
static int
host_stop(struct host *h, bool keep_logs, bool failed)
{
	struct guest_proc *procs[] = {&h->media, &h->gpu, &h->broker};
	int ret = 0;

	for (size_t i = 0; i < ARRAY_SIZE(procs); i++) {
		struct guest_proc *p = procs[i];
		bool was_running = p->pid > 0;
		int r;

		if (p->name == NULL)
			continue;
		r = guest_proc_stop(p, STOP_TIMEOUT_MS);
		if (r < 0) {
			cb_log("%s %s", p->name,
			       r == -ETIMEDOUT ? "did not stop on SIGTERM: killed"
			       : was_running   ? "exited with an error"
					       : "had died before the end");
			ret = -EIO;
		}
		if (r < 0 || failed)
			print_log(p);
	}
	if (h->dir) {
		if (keep_logs || ret < 0) {
			cb_log("logs kept in %s", h->dir);
		} else {
			for (size_t i = 0; i < ARRAY_SIZE(procs); i++) {
				if (procs[i]->log)
					g_unlink(procs[i]->log);
			}
			g_rmdir(h->dir);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(procs); i++)
		guest_proc_clear(procs[i]);
	g_free(h->broker_socket);
	g_free(h->gpu_socket);
	g_free(h->media_socket);
	g_free(h->dir);
	return ret;
}

static int
dump_ram(struct guest_vm *vm, const char *path)
{
	uint64_t size;
	const uint8_t *ram = guest_vm_ram(vm, &size);
	FILE *f = fopen(path, "we");
	int r = 0;

	if (f == NULL || fwrite(ram, 1, size, f) != size)
		r = -errno;
	if (f && fclose(f) != 0 && r == 0)
		r = -errno;
	if (r < 0)
		cb_log("--dump-guest-ram %s: %s", path, strerror(-r));
	else
		cb_log("guest RAM (%" G_GUINT64_FORMAT " bytes) written to %s", size, path);
	return r;
}

int
main(int argc, char **argv)
{
	struct options o = {0};
	struct host h = {0};
	struct pipeline_result result;
	struct guest_vm *vm = NULL;
	int r;

	signal(SIGPIPE, SIG_IGN);
	if (parse_options(argc, argv, &o) < 0)
		return 2;
	if (o.pipeline.out_dir && g_mkdir_with_parents(o.pipeline.out_dir, 0755) < 0) {
		cb_log("--out %s: %s", o.pipeline.out_dir, strerror(errno));
		return 1;
	}
	if (o.pipeline.out_dir)
		o.pipeline.png_dir = o.pipeline.out_dir;
	if (o.gpu_socket == NULL) {
		r = host_start(&h, &o);
		if (r < 0) {
			host_stop(&h, o.keep_logs, true);
			return 1;
		}
		o.gpu_socket = h.gpu_socket;
		o.media_socket = h.media_socket;
		o.pipeline.broker = h.broker_socket;
	} else if (o.pipeline.out_dir) {
		/* Someone else's crossbuf-gpu writes its PNGs where it was told to. */
		o.pipeline.png_dir = NULL;
	}

	r = guest_vm_new_with(o.gpu_socket, o.media_socket, o.ram_size, &o.vm, &vm);
	if (r < 0) {
		cb_log("cannot bring up the guest's devices: %s", strerror(-r));
		host_stop(&h, o.keep_logs, true);
		return 1;
	}
	if (o.verbose)
		cb_log("guest with %" G_GUINT64_FORMAT " MiB RAM: virtio-gpu at %s, virtio-media "
		       "at %s",
		       o.ram_size >> 20, o.gpu_socket, o.media_socket);

	r = pipeline_run(vm, &o.pipeline, &result);
	pipeline_print_summary(stdout, &o.pipeline, &result);
	fflush(stdout);
	if (o.dump_ram && dump_ram(vm, o.dump_ram) < 0 && r == 0)
		r = -EIO;
	guest_vm_free(vm);
	if (host_stop(&h, o.keep_logs, r < 0) < 0 && r == 0)
		r = -EIO;
	if (r < 0)
		cb_log("%s", result.error[0] ? result.error : strerror(-r));
	return r < 0 ? 1 : 0;
}

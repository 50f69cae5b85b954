/* SPDX-License-Identifier: MIT */
/*
 * crossbuf-gpu: the gpu-bridge as a vhost-user-gpu backend.
 *
 *   crossbuf-gpu --socket-path PATH [--broker PATH] [--domain NAME]
 *                [--backend memfd|gbm|virgl|auto] [--png-dir DIR]
 *
 * QEMU connects with -chardev socket,path=PATH -device vhost-user-gpu-pci,chardev=...; the
 * control (0) and cursor (1) queues go to gpu_device_process(), config space is the device's
 * struct virtio_gpu_config, and the display protocol socket (GPU_SET_SOCKET) becomes a
 * display sink (vhost-gpu-display.c). ASSIGN_UUID exports into crossbufd (--broker) or a
 * registry embedded in this process, and announces the UUID to the VMM with
 * SHARED_OBJECT_ADD when the frontend agreed to it.
 *
 * Ownership: main() owns the backend, the device, the sinks, the registry client; the device
 * borrows the allocation backend, the sink and the backend's guest memory table.
 */
#include "config.h"
#include "crossbuf/crossbuf.h"
#include "device.h"
#include "formats.h"
#include "log.h"
#include "macro.h"
#include "vhost-gpu-display.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The vhost-user backend library; plain "backend.h" is the gpu-bridge's allocation backends. */
#include "../vhost-user/backend.h"

/* Formats --protect can name at once. */
#define GPU_MAX_PROTECT 16

#define QUEUE_CONTROL 0
#define QUEUE_CURSOR  1

struct app {
	struct vu_backend *vu;
	struct gpu_device *dev;
	struct gpu_sink *display; /* vhost-gpu-display, wrapping png (may be NULL) */
	struct gpu_sink *png;
	struct crossbuf_client *client;
	bool resetting; /* the VMM forgets shared objects on its own then */
	/* --protect: image resources of these formats are created protected */
	uint32_t protect_fourccs[GPU_MAX_PROTECT];
	unsigned n_protect;
	bool display_features_logged;
};

static struct vu_backend *stop_target;

/* ---- export: registry plus the VMM's shared object table ---- */

static int
export_uuid(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE], int fd,
	    const struct crossbuf_buffer_info *info)
{
	struct app *a = userdata;
	char s[CROSSBUF_UUID_STRING_SIZE];
	int r = crossbuf_client_export_uuid(a->client, uuid, fd, info);

	crossbuf_uuid_to_string(uuid, s);
	if (r < 0) {
		if (r != -EEXIST)
			cb_log("export of resource %u as %s refused: %s", info->resource_id, s,
			       strerror(-r));
		return r;
	}
	r = vu_backend_shared_object_add(a->vu, uuid);
	if (r < 0 && r != -EOPNOTSUPP)
		cb_log("SHARED_OBJECT_ADD %s: %s (the registry still has it)", s, strerror(-r));
	return 0;
}

static int
export_remove(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	struct app *a = userdata;

	if (a->vu != NULL && !a->resetting && vu_backend_connected(a->vu))
		vu_backend_shared_object_remove(a->vu, uuid);
	return crossbuf_client_remove(a->client, uuid);
}

static const struct gpu_exporter exporter = {
	.export_uuid = export_uuid,
	.remove = export_remove,
};

/* ---- vhost-user device callbacks ---- */

static int
dev_set_features(void *data, uint64_t features)
{
	struct app *a = data;
	uint64_t gpu = features & gpu_device_get_features(a->dev);
	int r = gpu_device_set_features(a->dev, gpu);

	cb_log("negotiated features 0x%" PRIx64
	       ": virtio-gpu%s%s%s%s%s, protocol features 0x%" PRIx64,
	       features, gpu & (1ull << VIRTIO_GPU_F_EDID) ? " EDID" : "",
	       gpu & (1ull << VIRTIO_GPU_F_RESOURCE_UUID) ? " RESOURCE_UUID" : "",
	       gpu & (1ull << VIRTIO_GPU_F_RESOURCE_BLOB) ? " RESOURCE_BLOB" : "",
	       gpu & (1ull << VIRTIO_GPU_F_VIRGL) ? " VIRGL" : "",
	       gpu & (1ull << VIRTIO_GPU_F_CONTEXT_INIT) ? " CONTEXT_INIT" : "",
	       vu_backend_protocol_features(a->vu));
	return r;
}

static int
dev_get_config(void *data, uint32_t offset, void *buf, uint32_t len)
{
	struct app *a = data;
	struct virtio_gpu_config c;

	gpu_device_get_config(a->dev, &c);
	if (offset > sizeof(c) || len > sizeof(c) - offset)
		return -EINVAL;
	memcpy(buf, (uint8_t *)&c + offset, len);
	return 0;
}

static int
dev_set_config(void *data, uint32_t offset, const void *buf, uint32_t len)
{
	/* Only events_clear is writable; no display events are raised, so nothing to clear. */
	if (offset != offsetof(struct virtio_gpu_config, events_clear) || len != 4)
		return -EINVAL;
	return 0;
}

static void
dev_handle(void *data, unsigned queue, struct vu_elem *elem)
{
	struct app *a = data;
	size_t written = gpu_device_process(a->dev, &elem->req);

	vu_backend_complete(a->vu, elem, (uint32_t)written);
}

static void
dev_reset(void *data)
{
	struct app *a = data;

	a->resetting = true;
	gpu_device_reset(a->dev);
	a->resetting = false;
}

static void
display_readable(void *data, int fd)
{
	struct app *a = data;
	bool asked = !a->display_features_logged;
	int r = vgpu_display_dispatch(a->display);

	if (r < 0) {
		cb_log("display socket closed: %s", strerror(-r));
		return;
	}
	if (asked && vgpu_display_features_known(a->display)) {
		uint64_t f = vgpu_display_protocol_features(a->display);
		cb_log("display protocol features 0x%" PRIx64 "%s", f,
		       f & (1ull << VGPU_PROTOCOL_F_DMABUF2) ? ": DMABUF2" : "");
		a->display_features_logged = true;
	}
}

static void
display_closing(void *userdata, int fd)
{
	struct app *a = userdata;

	vu_backend_remove_watch(a->vu, fd);
}

static int
dev_gpu_set_socket(void *data, int fd)
{
	struct app *a = data;
	int r = vgpu_display_set_socket(a->display, fd);

	if (r < 0) {
		cb_log("display socket refused: %s", strerror(-r));
		return r;
	}
	a->display_features_logged = false;
	r = vu_backend_add_watch(a->vu, fd, display_readable, a);
	if (r < 0) {
		vgpu_display_close(a->display);
		return r;
	}
	cb_log("display socket attached: scanouts go to the frontend");
	return 0;
}

static void
dev_connection_ended(void *data, int error, const char *why)
{
	struct app *a = data;

	vgpu_display_close(a->display);
	if (error == 0)
		cb_log("frontend disconnected");
	else
		cb_log("connection ended: %s (%s)", why ? why : "", strerror(-error));
}

static void
dev_mem_table_changed(void *data)
{
	struct app *a = data;
	unsigned dropped = gpu_device_guest_mem_changed(a->dev);

	if (dropped > 0)
		cb_log("memory table changed: %u backings no longer map, dropped", dropped);
}

static int
guest_memfd(void *userdata, uint64_t gpa, uint64_t len, int *ret_fd, uint64_t *ret_offset)
{
	struct app *a = userdata;

	return guest_mem_fd(vu_backend_guest_mem(a->vu), gpa, len, ret_fd, ret_offset);
}

/* ---- main ---- */

/* ---- the registry connection ---- */

/*
 * Readable when crossbufd sent something or went away: a restarted broker gets this
 * process's exports back at once, not at the next ASSIGN_UUID, so that consumers resolving
 * them meanwhile find them.
 */
static void
registry_readable(void *userdata, int fd)
{
	struct app *a = userdata;
	int r = crossbuf_client_dispatch(a->client);

	(void)fd;
	if (r < 0)
		cb_log("registry connection: %s; exports resume when crossbufd is back",
		       strerror(-r));
}

/* ---- protection policy ---- */

static bool
protect_class(void *userdata, const struct gpu_resource_class *c)
{
	const struct app *a = userdata;

	for (unsigned i = 0; i < a->n_protect; i++) {
		if (c->fourcc != 0 && c->fourcc == a->protect_fourccs[i])
			return true;
	}
	return false;
}

/* "NV12,YV12" or "yuv" (every YUV format) into a->protect_fourccs. */
static int
parse_protect(struct app *a, const char *arg)
{
	static const char *const yuv[] = {"NV12", "NV21", "YV12", "IYUV"};
	char *copy = strdup(arg), *save = NULL;
	int r = 0;

	if (copy == NULL)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok && r == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		bool all_yuv = strcasecmp(tok, "yuv") == 0;

		for (size_t i = 0; i < (all_yuv ? ARRAY_SIZE(yuv) : 1) && r == 0; i++) {
			const struct gpu_format *f = gpu_format_from_name(all_yuv ? yuv[i] : tok);

			if (f == NULL) {
				cb_log("--protect: unknown format \"%s\"", tok);
				r = -EINVAL;
			} else if (a->n_protect == GPU_MAX_PROTECT) {
				cb_log("--protect: more than %u formats", GPU_MAX_PROTECT);
				r = -E2BIG;
			} else {
				a->protect_fourccs[a->n_protect++] = f->fourcc;
			}
		}
	}
	free(copy);
	return r;
}

static void
on_signal(int sig)
{
	if (stop_target)
		vu_backend_stop(stop_target);
}

static void
usage(FILE *f)
{
	fputs("Usage: crossbuf-gpu --socket-path PATH [OPTIONS]\n"
	      "\n"
	      "A virtio-gpu device (vhost-user-gpu backend) whose resources become shared\n"
	      "virtio objects in the crossbuf registry.\n"
	      "\n"
	      "  --socket-path PATH   listen for the VMM's vhost-user connection here\n"
	      "  --broker PATH        export into the crossbufd at PATH (default: a registry\n"
	      "                       embedded in this process)\n"
	      "  --domain NAME        registry domain (one VM), default \"" CROSSBUF_DEFAULT_DOMAIN
	      "\"\n"
	      "  --backend KIND       memfd, gbm, virgl or auto (default auto)\n"
	      "  --render-node PATH   render node for gbm/virgl (default: the first that opens)\n"
	      "  --png-dir DIR        also write every flushed scanout to DIR/scanout-N.png\n"
	      "  --width W --height H preferred mode of scanout 0 (default 1024x768)\n"
	      "  --protect FORMATS    create image resources of these formats protected\n"
	      "                       (comma-separated: NV12,YV12,... or yuv for all YUV)\n"
	      "  --allow-unsealed-memory  accept guest RAM that is not sealed against shrinking\n"
	      "  --help, --version\n",
	      f);
}

int
main(int argc, char **argv)
{
	enum {
		OPT_BROKER = 256,
		OPT_DOMAIN,
		OPT_BACKEND,
		OPT_RENDER,
		OPT_PNG,
		OPT_UNSEALED,
		OPT_WIDTH,
		OPT_HEIGHT,
		OPT_PROTECT,
		OPT_VERSION
	};
	static const struct option options[] = {
		{"socket-path", required_argument, NULL, 's'},
		{"broker", required_argument, NULL, OPT_BROKER},
		{"domain", required_argument, NULL, OPT_DOMAIN},
		{"backend", required_argument, NULL, OPT_BACKEND},
		{"render-node", required_argument, NULL, OPT_RENDER},
		{"png-dir", required_argument, NULL, OPT_PNG},
		{"width", required_argument, NULL, OPT_WIDTH},
		{"height", required_argument, NULL, OPT_HEIGHT},
		{"protect", required_argument, NULL, OPT_PROTECT},
		{"allow-unsealed-memory", no_argument, NULL, OPT_UNSEALED},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{0},
	};
	const char *socket_path = NULL, *broker = NULL, *domain = NULL, *render_node = NULL;
	const char *png_dir = NULL;
	enum gpu_backend_choice choice = GPU_BACKEND_AUTO;
	bool unsealed = false;
	uint32_t width = 0, height = 0;
	struct app a = {0};
	struct gpu_backend *backend = NULL;
	struct crossbuf_registry *registry = NULL;
	struct gpu_device *probe = NULL;
	struct gpu_device_config config = {0};
	static struct guest_mem no_mem;
	char reason[256];
	int opt, r, ret = 1;

	while ((opt = getopt_long(argc, argv, "s:h", options, NULL)) >= 0) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case OPT_BROKER:
			broker = optarg;
			break;
		case OPT_DOMAIN:
			domain = optarg;
			break;
		case OPT_BACKEND:
			if (gpu_backend_choice_from_string(optarg, &choice) < 0) {
				cb_log("unknown backend \"%s\" (memfd, gbm, virgl, auto)", optarg);
				return 2;
			}
			break;
		case OPT_RENDER:
			render_node = optarg;
			break;
		case OPT_PNG:
			png_dir = optarg;
			break;
		case OPT_WIDTH:
		case OPT_HEIGHT: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v == 0 || v > GPU_MAX_DIMENSION) {
				cb_log("bad size \"%s\"", optarg);
				return 2;
			}
			*(opt == OPT_WIDTH ? &width : &height) = (uint32_t)v;
			break;
		}
		case OPT_UNSEALED:
			unsealed = true;
			break;
		case OPT_PROTECT:
			if (parse_protect(&a, optarg) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("crossbuf-gpu %s\n", CROSSBUF_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (socket_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((width == 0) != (height == 0)) {
		cb_log("--width and --height go together");
		return 2;
	}

	/* The registry first: without it ASSIGN_UUID could only fail. */
	r = crossbuf_client_new(&a.client);
	if (r >= 0)
		r = crossbuf_client_set_device_kind(a.client, CROSSBUF_DEVICE_GPU);
	if (r >= 0 && domain)
		r = crossbuf_client_set_domain(a.client, domain);
	if (r < 0) {
		cb_log("registry client: %s", strerror(-r));
		goto out;
	}
	if (broker) {
		r = crossbuf_client_connect(a.client, broker);
		if (r < 0) {
			cb_log("cannot reach crossbufd at %s: %s", broker, strerror(-r));
			goto out;
		}
		cb_log("registry: crossbufd at %s, domain %s", broker,
		       domain ? domain : CROSSBUF_DEFAULT_DOMAIN);
	} else {
		r = crossbuf_registry_new(&registry);
		if (r >= 0)
			r = crossbuf_client_connect_embedded(a.client, registry);
		if (r < 0) {
			cb_log("embedded registry: %s", strerror(-r));
			goto out;
		}
		cb_log("registry: embedded in this process, domain %s",
		       domain ? domain : CROSSBUF_DEFAULT_DOMAIN);
	}

	r = gpu_backend_select(choice, render_node, &backend, reason, sizeof(reason));
	cb_log("%s", reason);
	if (r < 0)
		goto out;

	if (png_dir) {
		r = gpu_sink_png_new(png_dir, false, &a.png);
		if (r < 0) {
			cb_log("PNG sink in %s: %s", png_dir, strerror(-r));
			goto out;
		}
		cb_log("writing scanouts to %s/scanout-N.png", png_dir);
	}
	r = vgpu_display_new(a.png, &a.display);
	if (r < 0)
		goto out;
	vgpu_display_set_closing_callback(a.display, display_closing, &a);

	config.backend = backend;
	config.sink = a.display;
	config.num_scanouts = 1;
	config.scanouts[0].width = width;
	config.scanouts[0].height = height;
	config.guest_memfd = guest_memfd;
	config.guest_memfd_userdata = &a;
	if (a.n_protect > 0) {
		config.protect = protect_class;
		config.protect_userdata = &a;
		cb_log("resources of %u format(s) are created protected", a.n_protect);
	}

	/* The features the device offers, to describe the vhost-user device with. */
	config.mem = &no_mem;
	r = gpu_device_new(&config, &probe);
	if (r < 0) {
		cb_log("device: %s", strerror(-r));
		goto out;
	}
	{
		const struct vu_backend_device vdev = {
			.features = gpu_device_get_features(probe),
			.n_queues = 2,
			.max_queue_size = 1024,
			.config_size = sizeof(struct virtio_gpu_config),
			.require_sealed_memory = !unsealed,
			.set_features = dev_set_features,
			.get_config = dev_get_config,
			.set_config = dev_set_config,
			.handle = dev_handle,
			.reset = dev_reset,
			.gpu_set_socket = dev_gpu_set_socket,
			.connection_ended = dev_connection_ended,
			.mem_table_changed = dev_mem_table_changed,
		};
		gpu_device_free(probe);
		r = vu_backend_new(&vdev, &a, &a.vu);
		if (r < 0) {
			cb_log("vhost-user backend: %s", strerror(-r));
			goto out;
		}
	}
	config.mem = vu_backend_guest_mem(a.vu);
	r = gpu_device_new(&config, &a.dev);
	if (r < 0) {
		cb_log("device: %s", strerror(-r));
		goto out;
	}
	gpu_device_set_exporter(a.dev, &exporter, &a);
	vgpu_display_set_device(a.display, a.dev);
	cb_log("offering virtio-gpu features 0x%" PRIx64, gpu_device_get_features(a.dev));

	if (broker) {
		r = vu_backend_add_watch(a.vu, crossbuf_client_get_fd(a.client), registry_readable,
					 &a);
		if (r < 0) {
			cb_log("watching the registry connection: %s", strerror(-r));
			goto out;
		}
	}
	r = vu_backend_listen(a.vu, socket_path);
	if (r < 0) {
		cb_log("cannot listen on %s: %s", socket_path, strerror(-r));
		goto out;
	}
	stop_target = a.vu;
	{
		struct sigaction sa = {.sa_handler = on_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	cb_log("listening on %s", socket_path);
	r = vu_backend_run(a.vu);
	if (r < 0) {
		cb_log("backend loop: %s", strerror(-r));
		goto out;
	}
	cb_log("stopping");
	ret = 0;
out:
	stop_target = NULL;
	/* The backend ends its connection first (reset frees the resources), then the rest. */
	a.vu = vu_backend_free(a.vu);
	gpu_device_free(a.dev);
	gpu_sink_destroy(a.display);
	gpu_sink_destroy(a.png);
	gpu_backend_destroy(backend);
	crossbuf_client_unref(a.client);
	crossbuf_registry_unref(registry);
	return ret;
}

/* SPDX-License-Identifier: MIT */
/*
 * crossbuf-gpu as a process, driven the way QEMU and a Linux guest drive a vhost-user-gpu
 * backend: crossbuf-guest's VM (guest/vm.h: the vhost-user frontend library playing the VMM,
 * guest RAM in a memfd, rings; the guest driver library encoding virtio-gpu requests into
 * them) with the gpu device only, its frontend for what lies below the driver
 * (GPU_SET_SOCKET, raw messages), a socketpair playing QEMU's display end, and a real
 * crossbufd resolving exported UUIDs.
 */
#include "broker-fixture.h"
#include "crossbuf/crossbuf.h"
#include "frontend.h"
#include "guest-driver.h"
#include "macro.h"
#include "testutil.h"
#include "vhost-gpu-display.h"
#include "vm.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/virtio_config.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RAM_SIZE   (64u << 20)
#define TIMEOUT_MS 5000
#define W          64
#define H          48

struct gpu_proc {
	pid_t pid;
	char *dir;
	char *socket;
	char *png_dir;
	char *log;
};

/* crossbuf-guest's VM with the gpu only, and shorthands for its frontend and driver. */
struct vm {
	struct guest_vm *vm;
	struct vu_frontend *f;
	struct gpu_guest *g;
};

/* ---- the process ---- */

static void
gpu_start(struct gpu_proc *p, const char *broker, bool png)
{
	const char *exe = g_getenv("CROSSBUF_GPU");

	g_assert_nonnull(exe);
	memset(p, 0, sizeof(*p));
	p->dir = g_dir_make_tmp("crossbuf-vgpu-XXXXXX", NULL);
	g_assert_nonnull(p->dir);
	p->socket = g_build_filename(p->dir, "gpu.sock", NULL);
	p->log = g_build_filename(p->dir, "gpu.log", NULL);
	if (png) {
		p->png_dir = g_build_filename(p->dir, "png", NULL);
		g_assert_cmpint(g_mkdir(p->png_dir, 0700), ==, 0);
	}
	p->pid = fork();
	g_assert_cmpint(p->pid, >=, 0);
	if (p->pid == 0) {
		const char *argv[12];
		unsigned n = 0;
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		argv[n++] = exe;
		argv[n++] = "--socket-path";
		argv[n++] = p->socket;
		argv[n++] = "--backend";
		argv[n++] = "memfd";
		if (broker) {
			argv[n++] = "--broker";
			argv[n++] = broker;
		}
		if (png) {
			argv[n++] = "--png-dir";
			argv[n++] = p->png_dir;
		}
		argv[n] = NULL;
		execv(exe, (char **)argv);
		_exit(127);
	}
	for (int i = 0; i < 500 && !g_file_test(p->socket, G_FILE_TEST_EXISTS); i++)
		g_usleep(10000);
	g_assert_true(g_file_test(p->socket, G_FILE_TEST_EXISTS));
}

static char *
gpu_log(const struct gpu_proc *p)
{
	char *text = NULL;

	g_file_get_contents(p->log, &text, NULL, NULL);
	return text != NULL ? text : g_strdup("");
}

static int gpu_stop(struct gpu_proc *p);

/* gpu_stop(), handing out its log first. */
static int
gpu_stop_keep_log(struct gpu_proc *p, char **ret_log)
{
	int status;

	g_assert_cmpint(kill(p->pid, SIGTERM), ==, 0);
	g_assert_cmpint(waitpid(p->pid, &status, 0), ==, p->pid);
	*ret_log = gpu_log(p);
	p->pid = 0;
	g_assert_cmpint(gpu_stop(p), ==, 0);
	return status;
}

/* SIGTERM (unless it was stopped already); returns the exit status. */
static int
gpu_stop(struct gpu_proc *p)
{
	int status = 0;

	if (p->pid > 0) {
		g_assert_cmpint(kill(p->pid, SIGTERM), ==, 0);
		g_assert_cmpint(waitpid(p->pid, &status, 0), ==, p->pid);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		g_autofree char *text = gpu_log(p);
		g_printerr("crossbuf-gpu log:\n%s", text);
	}
	if (p->png_dir) {
		g_autofree char *png = g_build_filename(p->png_dir, "scanout-0.png", NULL);
		g_unlink(png);
		g_rmdir(p->png_dir);
	}
	g_unlink(p->log);
	g_unlink(p->socket);
	g_rmdir(p->dir);
	g_free(p->dir);
	g_free(p->socket);
	g_free(p->png_dir);
	g_free(p->log);
	return status;
}

/* ---- the VMM and the guest ---- */

static void
vm_connect(struct vm *vm, const struct gpu_proc *p)
{
	memset(vm, 0, sizeof(*vm));
	g_assert_cmpint(guest_vm_new(p->socket, NULL, RAM_SIZE, &vm->vm), ==, 0);
	vm->f = guest_vm_frontend(vm->vm, GUEST_VM_GPU);
	vm->g = guest_vm_gpu(vm->vm);
	g_assert_nonnull(vm->f);
	g_assert_nonnull(vm->g);
	g_assert_null(guest_vm_media(vm->vm));
}

static void
vm_free(struct vm *vm)
{
	guest_vm_free(vm->vm);
	memset(vm, 0, sizeof(*vm));
}

/* Guest RAM for a resource, attached as its backing in 4 KiB pages. */
static uint8_t *
vm_attach(struct vm *vm, uint32_t id, uint64_t size)
{
	struct virtio_gpu_mem_entry entries[1024];
	uint64_t gpa;
	int n;

	g_assert_cmpint(vu_frontend_alloc(vm->f, size, 4096, &gpa), ==, 0);
	n = gpu_guest_backing_pages(gpa, size, 4096, entries, G_N_ELEMENTS(entries));
	g_assert_cmpint(n, >, 0);
	g_assert_cmpint(gpu_guest_attach_backing(vm->g, id, entries, (uint32_t)n), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	return vu_frontend_ram(vm->f, gpa, size);
}

/* An XRGB resource holding pattern seed, transferred to the host. */
static uint8_t *
vm_xrgb(struct vm *vm, uint32_t id, uint32_t seed)
{
	uint8_t *px;

	g_assert_cmpint(
		gpu_guest_resource_create_2d(vm->g, id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, W, H), ==,
		VIRTIO_GPU_RESP_OK_NODATA);
	px = vm_attach(vm, id, W * H * 4);
	cb_test_pattern(px, W * H * 4, seed);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(vm->g, id, 0, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	return px;
}

static void
vm_create_nv12(struct vm *vm, uint32_t id)
{
	struct virtio_gpu_resource_create_3d c = {
		.resource_id = id,
		.target = 2,     /* PIPE_TEXTURE_2D */
		.format = 166,   /* virgl NV12 */
		.bind = 1u << 1, /* VIRGL_BIND_RENDER_TARGET */
		.width = W,
		.height = H,
		.depth = 1,
		.array_size = 1,
	};

	g_assert_cmpint(gpu_guest_resource_create_3d(vm->g, &c), ==, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
vm_transfer_3d(struct vm *vm, uint32_t id)
{
	struct virtio_gpu_box box = {.w = W, .h = H, .d = 1};

	g_assert_cmpint(gpu_guest_transfer_3d(vm->g, true, id, &box, 0, 0, 0, 0), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
}

/* ---- the display end (QEMU's side of GPU_SET_SOCKET) ---- */

static int
display_attach(struct vm *vm)
{
	struct vu_msg msg;
	struct timeval tv = {.tv_sec = 5};
	int sv[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	g_assert_cmpint(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), ==, 0);
	vu_msg_init(&msg, VU_REQ_GPU_SET_SOCKET, 0, 0);
	msg.fds[0] = sv[1];
	msg.n_fds = 1;
	g_assert_cmpint(vu_frontend_request(vm->f, &msg, true, NULL), ==, 0);
	close(sv[1]);
	return sv[0];
}

static void
read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (uint8_t *)buf + done, len - done);
		g_assert_cmpint(n, >, 0);
		done += (size_t)n;
	}
}

/* Reads one message; its payload (up to cap bytes) goes to payload. */
static struct vgpu_msg_hdr
display_read(int fd, void *payload, size_t cap)
{
	struct vgpu_msg_hdr hdr;

	read_all(fd, &hdr, sizeof(hdr));
	g_assert_cmpuint(hdr.flags, ==, 0);
	g_assert_cmpuint(hdr.size, <=, cap);
	read_all(fd, payload, hdr.size);
	return hdr;
}

/* The backend closed its end: end of file, or ECONNRESET if it left bytes unread. */
static void
assert_display_closed(int fd)
{
	char c;
	ssize_t n = read(fd, &c, 1);

	if (n < 0)
		g_assert_cmpint(errno, ==, ECONNRESET);
	else
		g_assert_cmpint(n, ==, 0);
}

static void
display_handshake(int fd, uint64_t offer)
{
	struct vgpu_msg_hdr hdr;
	uint64_t agreed;
	struct {
		struct vgpu_msg_hdr hdr;
		uint64_t features;
	} __attribute__((packed)) reply = {
		{VGPU_REQ_GET_PROTOCOL_FEATURES, VGPU_MSG_FLAG_REPLY, 8},
		offer,
	};

	hdr = display_read(fd, NULL, 0);
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_GET_PROTOCOL_FEATURES);
	g_assert_cmpint(write(fd, &reply, sizeof(reply)), ==, sizeof(reply));
	hdr = display_read(fd, &agreed, sizeof(agreed));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_SET_PROTOCOL_FEATURES);
	g_assert_cmpuint(hdr.size, ==, 8);
	/* only DMABUF2 is taken: the device answers GET_EDID itself */
	g_assert_cmpuint(agreed, ==, offer & (1ull << VGPU_PROTOCOL_F_DMABUF2));
}

/* ---- tests ---- */

static void
test_negotiate(void)
{
	struct gpu_proc p;
	struct vm vm;
	struct virtio_gpu_config cfg;
	struct gpu_guest_reply reply;

	gpu_start(&p, NULL, false);
	vm_connect(&vm, &p);
	g_assert_cmphex(vu_frontend_features(vm.f) & GUEST_VM_GPU_FEATURES, ==,
			GUEST_VM_GPU_FEATURES);
	g_assert_cmphex(vu_frontend_protocol_features(vm.f), ==, GUEST_VM_GPU_PROTOCOL_FEATURES);
	g_assert_cmpint(vu_frontend_get_config(vm.f, 0, &cfg, sizeof(cfg)), ==, 0);
	g_assert_cmpuint(cfg.num_scanouts, ==, 1);
	g_assert_cmpuint(cfg.num_capsets, ==, 0);
	g_assert_cmpint(gpu_guest_get_display_info(vm.g, &reply), ==,
			VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	g_assert_cmpuint(reply.display_info.pmodes[0].enabled, ==, 1);
	g_assert_cmpuint(reply.display_info.pmodes[0].r.width, ==, 1024);
	g_assert_cmpuint(reply.display_info.pmodes[0].r.height, ==, 768);
	g_assert_cmpint(gpu_guest_get_edid(vm.g, 0, &reply), ==, VIRTIO_GPU_RESP_OK_EDID);
	/* the cursor queue gets no reply data, but its requests are consumed */
	g_assert_cmpint(gpu_guest_move_cursor(vm.g, 0, 10, 10), >=, 0);
	vm_free(&vm);
	g_assert_cmpint(gpu_stop(&p), ==, 0);
}

static void
test_nv12_uuid_through_crossbufd(void)
{
	struct broker b;
	struct gpu_proc p;
	struct vm vm;
	struct crossbuf_client *c;
	struct crossbuf_buffer_info info;
	uint8_t uuid[16], uuid2[16], *guest, *map;
	int fd = -1;

	broker_start(&b, NULL, 0);
	gpu_start(&p, b.socket, false);
	vm_connect(&vm, &p);

	vm_create_nv12(&vm, 7);
	guest = vm_attach(&vm, 7, W * H * 3 / 2);
	cb_test_pattern(guest, W * H * 3 / 2, 77);
	vm_transfer_3d(&vm, 7);
	g_assert_cmpint(gpu_guest_assign_uuid(vm.g, 7, uuid), ==, VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	/* asking again names the same object */
	g_assert_cmpint(gpu_guest_assign_uuid(vm.g, 7, uuid2), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpmem(uuid, 16, uuid2, 16);
	/* the VMM's shared object table heard of it too */
	g_assert_true(vu_frontend_has_shared_object(vm.f, uuid));

	/* another client of the broker resolves it and sees the guest's pixels */
	c = broker_client(&b, NULL, 0);
	g_assert_cmpint(crossbuf_client_lookup(c, uuid, &info, &fd), ==, 0);
	g_assert_cmphex(info.fourcc, ==, DRM_FORMAT_NV12);
	g_assert_cmpuint(info.width, ==, W);
	g_assert_cmpuint(info.height, ==, H);
	g_assert_cmpuint(info.num_planes, ==, 2);
	g_assert_cmpuint(info.device_kind, ==, CROSSBUF_DEVICE_GPU);
	g_assert_cmpuint(info.resource_id, ==, 7);
	map = mmap(NULL, info.size, PROT_READ, MAP_SHARED, fd, 0);
	g_assert_true(map != MAP_FAILED);
	for (unsigned y = 0; y < H; y++)
		g_assert_cmpmem(map + info.planes[0].offset + y * info.planes[0].stride, W,
				guest + y * W, W);
	for (unsigned y = 0; y < H / 2; y++)
		g_assert_cmpmem(map + info.planes[1].offset + y * info.planes[1].stride, W,
				guest + W * H + y * W, W);
	munmap(map, info.size);
	close(fd);

	/* UNREF takes it out of the registry and the VMM's table */
	g_assert_cmpint(gpu_guest_resource_unref(vm.g, 7), ==, VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_false(vu_frontend_has_shared_object(vm.f, uuid));
	g_assert_cmpint(crossbuf_client_lookup(c, uuid, &info, &fd), ==, -ENOENT);

	/* the device's exports go when the VMM disconnects */
	vm_create_nv12(&vm, 8);
	vm_attach(&vm, 8, W * H * 3 / 2);
	g_assert_cmpint(gpu_guest_assign_uuid(vm.g, 8, uuid), ==, VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	vm_free(&vm);
	for (int i = 0; i < 200; i++) {
		if (crossbuf_client_lookup(c, uuid, &info, &fd) == -ENOENT)
			break;
		close(fd);
		g_usleep(10000);
	}
	g_assert_cmpint(crossbuf_client_lookup(c, uuid, &info, &fd), ==, -ENOENT);
	crossbuf_client_unref(c);
	g_assert_cmpint(gpu_stop(&p), ==, 0);
	broker_stop(&b);
}

static void
test_png_scanout(void)
{
	struct gpu_proc p;
	struct vm vm;
	g_autofree char *png = NULL, *data = NULL;
	gsize len = 0;

	gpu_start(&p, NULL, true);
	vm_connect(&vm, &p);
	vm_xrgb(&vm, 1, 5);
	g_assert_cmpint(gpu_guest_set_scanout(vm.g, 0, 1, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_resource_flush(vm.g, 1, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	png = g_build_filename(p.png_dir, "scanout-0.png", NULL);
	g_assert_true(g_file_get_contents(png, &data, &len, NULL));
	g_assert_cmpuint(len, >, 33);
	g_assert_cmpmem(data, 8, "\x89PNG\r\n\x1a\n", 8);
	/* IHDR: width and height, big-endian */
	g_assert_cmpuint(GUINT32_FROM_BE(*(uint32_t *)(data + 16)), ==, W);
	g_assert_cmpuint(GUINT32_FROM_BE(*(uint32_t *)(data + 20)), ==, H);
	vm_free(&vm);
	g_assert_cmpint(gpu_stop(&p), ==, 0);
}

/* BT.601 limited range, as the display sink converts */
static void
assert_close(uint32_t xrgb, uint8_t r, uint8_t g, uint8_t b)
{
	g_assert_cmpint(abs((int)((xrgb >> 16) & 0xff) - r), <=, 2);
	g_assert_cmpint(abs((int)((xrgb >> 8) & 0xff) - g), <=, 2);
	g_assert_cmpint(abs((int)(xrgb & 0xff) - b), <=, 2);
}

static void
test_display_socket(void)
{
	struct gpu_proc p;
	struct vm vm;
	struct vgpu_scanout so;
	struct vgpu_msg_hdr hdr;
	struct gpu_guest_reply reply;
	static uint8_t payload[sizeof(struct vgpu_update) + W * H * 4];
	const struct vgpu_update *u = (const void *)payload;
	const uint32_t *px = (const void *)(payload + sizeof(*u));
	uint8_t *guest;
	int d;

	gpu_start(&p, NULL, false);
	vm_connect(&vm, &p);
	d = display_attach(&vm);
	display_handshake(d, (1ull << VGPU_PROTOCOL_F_EDID) | (1ull << VGPU_PROTOCOL_F_DMABUF2));

	/* XRGB: SCANOUT, then the flushed pixels as they are (X set) */
	guest = vm_xrgb(&vm, 1, 9);
	g_assert_cmpint(gpu_guest_set_scanout(vm.g, 0, 1, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, &so, sizeof(so));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_SCANOUT);
	g_assert_cmpuint(so.scanout_id, ==, 0);
	g_assert_cmpuint(so.width, ==, W);
	g_assert_cmpuint(so.height, ==, H);
	g_assert_cmpint(gpu_guest_resource_flush(vm.g, 1, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, payload, sizeof(payload));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_UPDATE);
	g_assert_cmpuint(hdr.size, ==, sizeof(*u) + W * H * 4);
	g_assert_cmpuint(u->x, ==, 0);
	g_assert_cmpuint(u->width, ==, W);
	g_assert_cmpuint(u->height, ==, H);
	for (unsigned i = 0; i < W * H; i++) {
		uint32_t want;
		memcpy(&want, guest + i * 4, 4);
		g_assert_cmphex(px[i], ==, want | 0xff000000u);
	}
	/* a damaged part only */
	g_assert_cmpint(gpu_guest_resource_flush(vm.g, 1, 8, 4, 16, 2), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, payload, sizeof(payload));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_UPDATE);
	g_assert_cmpuint(hdr.size, ==, sizeof(*u) + 16 * 2 * 4);
	g_assert_cmpuint(u->x, ==, 8);
	g_assert_cmpuint(u->y, ==, 4);
	g_assert_cmphex(px[0], ==, *(uint32_t *)(guest + (4 * W + 8) * 4) | 0xff000000u);

	/* NV12 (a decoder's output): converted to XRGB; BT.601 red */
	vm_create_nv12(&vm, 2);
	guest = vm_attach(&vm, 2, W * H * 3 / 2);
	memset(guest, 81, W * H);
	for (unsigned i = 0; i < W * H / 2; i += 2) {
		guest[W * H + i] = 90;
		guest[W * H + i + 1] = 240;
	}
	vm_transfer_3d(&vm, 2);
	g_assert_cmpint(gpu_guest_set_scanout(vm.g, 0, 2, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, &so, sizeof(so));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_SCANOUT);
	g_assert_cmpint(gpu_guest_resource_flush(vm.g, 2, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, payload, sizeof(payload));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_UPDATE);
	assert_close(px[0], 255, 0, 0);
	assert_close(px[W * H - 1], 255, 0, 0);

	/* disabling: SCANOUT 0x0 */
	g_assert_cmpint(gpu_guest_set_scanout(vm.g, 0, 0, 0, 0, 0, 0), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, &so, sizeof(so));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_SCANOUT);
	g_assert_cmpuint(so.width, ==, 0);

	/* a malformed message from the display end costs the display socket only */
	{
		/* a reply to something never asked, in one write (the backend may hang up at
		 * the header) */
		struct {
			struct vgpu_msg_hdr hdr;
			uint32_t junk;
		} bad = {{VGPU_REQ_GET_EDID, VGPU_MSG_FLAG_REPLY, 4}, 0};
		g_assert_cmpint(write(d, &bad, sizeof(bad)), ==, sizeof(bad));
		assert_display_closed(d);
	}
	g_assert_cmpint(gpu_guest_get_display_info(vm.g, &reply), ==,
			VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	close(d);

	/* a new display socket gets the scanout that is on */
	g_assert_cmpint(gpu_guest_set_scanout(vm.g, 0, 1, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	d = display_attach(&vm);
	hdr = display_read(d, NULL, 0);
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_GET_PROTOCOL_FEATURES);
	hdr = display_read(d, &so, sizeof(so));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_SCANOUT);
	g_assert_cmpuint(so.width, ==, W);
	vm_free(&vm);
	/* the reset disables the scanout, then the display socket goes with the connection */
	hdr = display_read(d, &so, sizeof(so));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_SCANOUT);
	g_assert_cmpuint(so.width, ==, 0);
	assert_display_closed(d);
	close(d);
	g_assert_cmpint(gpu_stop(&p), ==, 0);
}

/* A scanout showing part of a resource: UPDATE is in scanout coordinates, clipped to it. */
static void
test_display_sub_rect(void)
{
	g_autofree char *log = NULL;
	struct gpu_proc p;
	struct vm vm;
	struct vgpu_scanout so;
	struct vgpu_msg_hdr hdr;
	static uint8_t payload[sizeof(struct vgpu_update) + W * H * 4];
	const struct vgpu_update *u = (const void *)payload;
	const uint32_t *px = (const void *)(payload + sizeof(*u));
	uint8_t *guest;
	int d;

	gpu_start(&p, NULL, false);
	vm_connect(&vm, &p);
	d = display_attach(&vm);
	display_handshake(d, 0);
	guest = vm_xrgb(&vm, 1, 11);
	g_assert_cmpint(gpu_guest_set_scanout(vm.g, 0, 1, 8, 4, 32, 16), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, &so, sizeof(so));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_SCANOUT);
	g_assert_cmpuint(so.width, ==, 32);
	g_assert_cmpuint(so.height, ==, 16);
	/* damage over the whole resource: only the visible part, from (8, 4) */
	g_assert_cmpint(gpu_guest_resource_flush(vm.g, 1, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, payload, sizeof(payload));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_UPDATE);
	g_assert_cmpuint(hdr.size, ==, sizeof(*u) + 32 * 16 * 4);
	g_assert_cmpuint(u->x, ==, 0);
	g_assert_cmpuint(u->y, ==, 0);
	g_assert_cmpuint(u->width, ==, 32);
	g_assert_cmpuint(u->height, ==, 16);
	for (unsigned y = 0; y < 16; y++) {
		for (unsigned x = 0; x < 32; x++) {
			uint32_t want;
			memcpy(&want, guest + ((y + 4) * W + x + 8) * 4, 4);
			g_assert_cmphex(px[y * 32 + x], ==, want | 0xff000000u);
		}
	}
	/* damage straddling the edge: the overlap, at (30, 14) of the scanout */
	g_assert_cmpint(gpu_guest_resource_flush(vm.g, 1, 38, 18, 10, 10), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, payload, sizeof(payload));
	g_assert_cmpuint(u->x, ==, 30);
	g_assert_cmpuint(u->y, ==, 14);
	g_assert_cmpuint(u->width, ==, 2);
	g_assert_cmpuint(u->height, ==, 2);
	/* damage outside what the scanout shows sends nothing; the next message is the
	 * disable */
	g_assert_cmpint(gpu_guest_resource_flush(vm.g, 1, 50, 30, 4, 4), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_set_scanout(vm.g, 0, 0, 0, 0, 0, 0), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	hdr = display_read(d, &so, sizeof(so));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_SCANOUT);
	g_assert_cmpuint(so.width, ==, 0);
	close(d);
	vm_free(&vm);
	g_assert_cmpint(gpu_stop_keep_log(&p, &log), ==, 0);
	g_assert_nonnull(strstr(log, "display protocol features 0x0\n"));
}

/* A 64x64 B8G8R8A8 cursor image holding pattern seed, transferred to the host. */
static uint8_t *
vm_cursor(struct vm *vm, uint32_t id, uint32_t seed)
{
	uint8_t *px;

	g_assert_cmpint(
		gpu_guest_resource_create_2d(vm->g, id, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64),
		==, VIRTIO_GPU_RESP_OK_NODATA);
	px = vm_attach(vm, id, 64 * 64 * 4);
	cb_test_pattern(px, 64 * 64 * 4, seed);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(vm->g, id, 0, 0, 0, 64, 64), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	return px;
}

/* Reads a CURSOR_UPDATE and checks position, hot spot and the guest's pixels. */
static void
assert_cursor_update(int d, uint32_t x, uint32_t y, uint32_t hot_x, uint32_t hot_y,
		     const uint8_t *guest)
{
	static struct vgpu_cursor_update up;
	struct vgpu_msg_hdr hdr;

	hdr = display_read(d, &up, sizeof(up));
	g_assert_cmpuint(hdr.request, ==, VGPU_REQ_CURSOR_UPDATE);
	g_assert_cmpuint(hdr.size, ==, 12 + 8 + 64 * 64 * 4);
	g_assert_cmpuint(up.pos.scanout_id, ==, 0);
	g_assert_cmpuint(up.pos.x, ==, x);
	g_assert_cmpuint(up.pos.y, ==, y);
	g_assert_cmpuint(up.hot_x, ==, hot_x);
	g_assert_cmpuint(up.hot_y, ==, hot_y);
	/* B8G8R8A8 is ARGB8888: the guest's bytes, alpha included */
	g_assert_cmpmem(up.data, sizeof(up.data), guest, 64 * 64 * 4);
}

/* Reads a CURSOR_POS or CURSOR_POS_HIDE. */
static void
assert_cursor_pos(int d, uint32_t request, uint32_t x, uint32_t y)
{
	struct vgpu_cursor_pos pos;
	struct vgpu_msg_hdr hdr;

	hdr = display_read(d, &pos, sizeof(pos));
	g_assert_cmpuint(hdr.request, ==, request);
	g_assert_cmpuint(hdr.size, ==, sizeof(pos));
	g_assert_cmpuint(pos.scanout_id, ==, 0);
	g_assert_cmpuint(pos.x, ==, x);
	g_assert_cmpuint(pos.y, ==, y);
}

/* The guest's cursor reaches the VMM: CURSOR_UPDATE, CURSOR_POS, CURSOR_POS_HIDE. */
static void
test_display_cursor(void)
{
	struct gpu_proc p;
	struct vm vm;
	uint8_t *arrow, *hand;
	int d;

	gpu_start(&p, NULL, false);
	vm_connect(&vm, &p);
	arrow = vm_cursor(&vm, 1, 41);
	hand = vm_cursor(&vm, 2, 42);
	/* before a display socket, nothing is sent; the cursor shown arrives with the socket */
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 0, 10, 20, 1, 3, 4), ==, 0);
	d = display_attach(&vm);
	g_assert_cmpuint(display_read(d, NULL, 0).request, ==, VGPU_REQ_GET_PROTOCOL_FEATURES);
	assert_cursor_update(d, 10, 20, 3, 4, arrow);

	/* a move: the position only */
	g_assert_cmpint(gpu_guest_move_cursor(vm.g, 0, 30, 40), ==, 0);
	assert_cursor_pos(d, VGPU_REQ_CURSOR_POS, 30, 40);
	/* a new shape with its hot spot */
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 0, 31, 41, 2, 5, 6), ==, 0);
	assert_cursor_update(d, 31, 41, 5, 6, hand);
	/* resource 0 hides it; a move while hidden stays hidden */
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 0, 50, 60, 0, 0, 0), ==, 0);
	assert_cursor_pos(d, VGPU_REQ_CURSOR_POS_HIDE, 50, 60);
	g_assert_cmpint(gpu_guest_move_cursor(vm.g, 0, 51, 61), ==, 0);
	assert_cursor_pos(d, VGPU_REQ_CURSOR_POS_HIDE, 51, 61);
	/* what cannot be a cursor (not 64x64, unknown) hides it */
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 0, 1, 2, 1, 0, 0), ==, 0);
	assert_cursor_update(d, 1, 2, 0, 0, arrow);
	g_assert_cmpint(
		gpu_guest_resource_create_2d(vm.g, 3, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 32, 32), ==,
		VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 0, 3, 4, 3, 0, 0), ==, 0);
	assert_cursor_pos(d, VGPU_REQ_CURSOR_POS_HIDE, 3, 4);
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 0, 5, 6, 99, 0, 0), ==, 0);
	assert_cursor_pos(d, VGPU_REQ_CURSOR_POS_HIDE, 5, 6);
	/* the cursor's resource freed: hidden where it was */
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 0, 7, 8, 2, 1, 1), ==, 0);
	assert_cursor_update(d, 7, 8, 1, 1, hand);
	g_assert_cmpint(gpu_guest_resource_unref(vm.g, 2), ==, VIRTIO_GPU_RESP_OK_NODATA);
	assert_cursor_pos(d, VGPU_REQ_CURSOR_POS_HIDE, 7, 8);
	/* a scanout that does not exist sends nothing: the next message is the next move */
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 5, 1, 1, 1, 0, 0), ==, 0);
	g_assert_cmpint(gpu_guest_update_cursor(vm.g, 0, 9, 9, 1, 2, 2), ==, 0);
	assert_cursor_update(d, 9, 9, 2, 2, arrow);

	/* the reset at the connection's end hides it, then the display socket goes */
	vm_free(&vm);
	assert_cursor_pos(d, VGPU_REQ_CURSOR_POS_HIDE, 9, 9);
	assert_display_closed(d);
	close(d);
	g_assert_cmpint(gpu_stop(&p), ==, 0);
}

static void
test_mem_table_change(void)
{
	struct gpu_proc p;
	struct vm vm;
	struct gpu_guest_reply reply;
	uint8_t *guest;
	int d;

	gpu_start(&p, NULL, false);
	vm_connect(&vm, &p);
	guest = vm_xrgb(&vm, 1, 3);
	/* the VMM sends the table again (hotplug): backings follow it */
	g_assert_cmpint(vu_frontend_set_mem_table(vm.f), ==, 0);
	cb_test_pattern(guest, W * H * 4, 4);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(vm.g, 1, 0, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	d = display_attach(&vm);
	display_handshake(d, 0);
	g_assert_cmpint(gpu_guest_set_scanout(vm.g, 0, 1, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_resource_flush(vm.g, 1, 0, 0, 1, 1), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	{
		struct vgpu_scanout so;
		uint8_t buf[sizeof(struct vgpu_update) + 4];
		uint32_t got;
		g_assert_cmpuint(display_read(d, &so, sizeof(so)).request, ==, VGPU_REQ_SCANOUT);
		g_assert_cmpuint(display_read(d, buf, sizeof(buf)).request, ==, VGPU_REQ_UPDATE);
		memcpy(&got, buf + sizeof(struct vgpu_update), 4);
		g_assert_cmphex(got, ==, *(uint32_t *)guest | 0xff000000u);
	}
	g_assert_cmpint(gpu_guest_get_display_info(vm.g, &reply), ==,
			VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	close(d);
	vm_free(&vm);
	g_assert_cmpint(gpu_stop(&p), ==, 0);
}

static void
test_malformed(void)
{
	struct gpu_proc p;
	struct vm vm;
	struct gpu_guest_reply reply;
	uint32_t garbage[4] = {VU_REQ_GET_FEATURES, 0xff, 0, 0};
	uint8_t shortreq[8] = {0};

	gpu_start(&p, NULL, false);
	vm_connect(&vm, &p);
	/* a malformed virtio-gpu request is answered with an error, nothing more */
	g_assert_cmpint(gpu_guest_send_raw(vm.g, shortreq, sizeof(shortreq), NULL, 0, 24, &reply),
			==, VIRTIO_GPU_RESP_ERR_UNSPEC);
	/* a malformed vhost-user message ends that connection only */
	g_assert_cmpint(vu_frontend_send_raw(vm.f, garbage, 12, NULL, 0), ==, 0);
	g_assert_cmpint(vu_frontend_wait_hangup(vm.f, TIMEOUT_MS), ==, 0);
	vm_free(&vm);
	/* the next VMM is served */
	vm_connect(&vm, &p);
	g_assert_cmpint(gpu_guest_get_display_info(vm.g, &reply), ==,
			VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	vm_free(&vm);
	g_assert_cmpint(gpu_stop(&p), ==, 0);
}

static void
test_sigterm(void)
{
	struct gpu_proc p;
	struct vm vm;
	g_autofree char *log = NULL;
	int status;

	gpu_start(&p, NULL, false);
	vm_connect(&vm, &p);
	vm_xrgb(&vm, 1, 1);
	/* SIGTERM with a VMM connected and resources alive: a clean exit 0 */
	g_assert_cmpint(kill(p.pid, SIGTERM), ==, 0);
	g_assert_cmpint(waitpid(p.pid, &status, 0), ==, p.pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	g_assert_cmpint(vu_frontend_wait_hangup(vm.f, TIMEOUT_MS), ==, 0);
	vm_free(&vm);
	log = gpu_log(&p);
	g_assert_nonnull(strstr(log, "backend memfd"));
	g_assert_nonnull(strstr(log, "negotiated features"));
	g_assert_nonnull(strstr(log, "RESOURCE_UUID RESOURCE_BLOB"));
	g_assert_nonnull(strstr(log, "stopping"));
	/* the socket path is gone */
	g_assert_false(g_file_test(p.socket, G_FILE_TEST_EXISTS));
	p.pid = 0;
	g_unlink(p.log);
	g_rmdir(p.dir);
	g_free(p.dir);
	g_free(p.socket);
	g_free(p.log);
}

static int
run(const char *const *args)
{
	const char *exe = g_getenv("CROSSBUF_GPU");
	const char *argv[8] = {exe};
	int status = -1;

	for (unsigned i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
				   G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
				   NULL, NULL, NULL, &status, NULL));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_command_line(void)
{
	g_assert_cmpint(run((const char *[]){"--help", NULL}), ==, 0);
	g_assert_cmpint(run((const char *[]){"--version", NULL}), ==, 0);
	g_assert_cmpint(run((const char *[]){NULL}), ==, 2);
	g_assert_cmpint(run((const char *[]){"--socket-path", "/nonexistent/x", "--backend",
					     "vulkan", NULL}),
			==, 2);
	g_assert_cmpint(
		run((const char *[]){"--socket-path", "/nonexistent/x", "--width", "800", NULL}),
		==, 2);
	/* an unreachable broker is a startup error, not a silent embedded registry */
	g_assert_cmpint(run((const char *[]){"--socket-path", "/nonexistent/x", "--broker",
					     "/nonexistent/broker.sock", NULL}),
			==, 1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	cb_test_add("/gpu-bridge/vhost/command-line", test_command_line);
	cb_test_add("/gpu-bridge/vhost/negotiate", test_negotiate);
	cb_test_add("/gpu-bridge/vhost/nv12-uuid-through-crossbufd",
		    test_nv12_uuid_through_crossbufd);
	cb_test_add("/gpu-bridge/vhost/png-scanout", test_png_scanout);
	cb_test_add("/gpu-bridge/vhost/display-socket", test_display_socket);
	cb_test_add("/gpu-bridge/vhost/display-sub-rect", test_display_sub_rect);
	cb_test_add("/gpu-bridge/vhost/display-cursor", test_display_cursor);
	cb_test_add("/gpu-bridge/vhost/mem-table-change", test_mem_table_change);
	cb_test_add("/gpu-bridge/vhost/malformed", test_malformed);
	cb_test_add("/gpu-bridge/vhost/sigterm", test_sigterm);
	return g_test_run();
}

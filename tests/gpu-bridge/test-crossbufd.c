/* SPDX-License-Identifier: MIT */
/*
 * The whole path across processes: a guest creates a resource, attaches backing, draws
 * into it and transfers it, asks for its UUID; another process resolves the UUID through
 * crossbufd, maps the buffer and sees the guest's pixels; UNREF then reaches it as a
 * removal notice.
 */
#include "crossbuf/crossbuf.h"
#include "harness.h"
#include "testutil.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define W     160
#define H     90
#define PITCH (W * 4)
#define SEED  2024

struct broker {
	char *dir, *socket;
	pid_t pid;
};

static bool
can_connect(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool ok;

	g_assert_cmpint(fd, >=, 0);
	g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
	ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
	close(fd);
	return ok;
}

static void
broker_start(struct broker *b)
{
	const char *exe = g_getenv("CROSSBUFD");
	g_autofree char *config = NULL;

	g_assert_nonnull(exe);
	b->dir = g_dir_make_tmp("crossbuf-gpu-XXXXXX", NULL);
	g_assert_nonnull(b->dir);
	b->socket = g_build_filename(b->dir, "broker.sock", NULL);
	/* no config file: the built-in policy lets our own uid do everything */
	config = g_build_filename(b->dir, "absent.conf", NULL);
	b->pid = fork();
	g_assert_cmpint(b->pid, >=, 0);
	if (b->pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, 2);
		execl(exe, exe, "--socket", b->socket, "--config", config, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && !can_connect(b->socket); i++)
		g_usleep(10000);
	g_assert_true(can_connect(b->socket));
}

static void
broker_stop(struct broker *b)
{
	int status;

	g_assert_cmpint(kill(b->pid, SIGTERM), ==, 0);
	g_assert_cmpint(waitpid(b->pid, &status, 0), ==, b->pid);
	g_unlink(b->socket);
	g_rmdir(b->dir);
	g_free(b->socket);
	g_free(b->dir);
}

static int removed_calls;

static void
on_removed(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
	   enum crossbuf_removal_reason reason)
{
	if (memcmp(uuid, userdata, 16) == 0 && reason == CROSSBUF_REMOVED_BY_OWNER)
		removed_calls++;
}

/*
 * The other process (think: the media device of another VMM). Exit codes say what went
 * wrong: 0 all good, 10+ the step that failed.
 */
static int
consumer(const char *socket_path, int in, int out)
{
	struct crossbuf_client *c = NULL;
	struct crossbuf_buffer_info info;
	uint8_t uuid[16], expect[PITCH * H], *map;
	int fd = -1;
	char done = 1;

	if (read(in, uuid, sizeof(uuid)) != sizeof(uuid))
		return 10;
	if (crossbuf_client_new(&c) < 0 ||
	    crossbuf_client_set_device_kind(c, CROSSBUF_DEVICE_MEDIA) < 0 ||
	    crossbuf_client_connect(c, socket_path) < 0)
		return 11;
	if (crossbuf_client_lookup(c, uuid, &info, &fd) < 0)
		return 12;
	if (info.width != W || info.height != H || info.fourcc != DRM_FORMAT_XRGB8888 ||
	    info.device_kind != CROSSBUF_DEVICE_GPU || info.resource_id != 1 ||
	    info.fd_kind != CROSSBUF_FD_KIND_MEMFD)
		return 13;
	map = mmap(NULL, info.size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return 14;
	cb_test_pattern(expect, sizeof(expect), SEED);
	for (unsigned y = 0; y < H; y++) {
		if (memcmp(map + info.planes[0].offset + y * info.planes[0].stride,
			   expect + y * PITCH, PITCH) != 0)
			return 15;
	}
	munmap(map, info.size);
	close(fd);
	crossbuf_client_set_removed_callback(c, on_removed, uuid);
	if (crossbuf_client_watch(c, uuid) < 0)
		return 16;
	if (write(out, &done, 1) != 1)
		return 17;
	for (int i = 0; i < 200 && removed_calls == 0; i++) {
		struct pollfd pfd = {.fd = crossbuf_client_get_fd(c), .events = POLLIN};
		poll(&pfd, 1, 25);
		crossbuf_client_dispatch(c);
	}
	if (removed_calls != 1)
		return 18;
	crossbuf_client_unref(c);
	return 0;
}

static void
test_other_process_sees_pixels(void)
{
	struct broker b;
	struct harness h;
	struct harness_options o = {.no_exporter = true};
	struct crossbuf_client *gpu;
	int to_child[2], from_child[2], status;
	uint8_t uuid[16], *guest;
	char ready;
	pid_t pid;

	broker_start(&b);
	g_assert_cmpint(pipe2(to_child, O_CLOEXEC), ==, 0);
	g_assert_cmpint(pipe2(from_child, O_CLOEXEC), ==, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0)
		_exit(consumer(b.socket, to_child[0], from_child[1]));
	close(to_child[0]);
	close(from_child[1]);

	harness_init(&h, &o);
	g_assert_cmpint(crossbuf_client_new(&gpu), ==, 0);
	g_assert_cmpint(crossbuf_client_set_device_kind(gpu, CROSSBUF_DEVICE_GPU), ==, 0);
	g_assert_cmpint(crossbuf_client_connect(gpu, b.socket), ==, 0);
	g_assert_cmpint(gpu_device_set_crossbuf_client(h.dev, gpu), ==, 0);
	crossbuf_client_unref(gpu); /* the device holds its own reference */

	/* the guest: create, attach backing, draw, transfer, ASSIGN_UUID */
	g_assert_cmpint(
		gpu_guest_resource_create_2d(h.guest, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, W, H),
		==, VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(harness_attach(&h, 1, PITCH * H, &guest), ==, VIRTIO_GPU_RESP_OK_NODATA);
	cb_test_pattern(guest, PITCH * H, SEED);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, W, H), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);

	g_assert_cmpint(write(to_child[1], uuid, sizeof(uuid)), ==, sizeof(uuid));
	/* once the other process has looked and watches, the guest drops the resource */
	if (read(from_child[0], &ready, 1) == 1)
		g_assert_cmpint(gpu_guest_resource_unref(h.guest, 1), ==,
				VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);

	close(to_child[1]);
	close(from_child[0]);
	harness_finish(&h);
	broker_stop(&b);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/gpu-bridge/crossbufd/other-process-sees-pixels",
		    test_other_process_sees_pixels);
	return g_test_run();
}

/* SPDX-License-Identifier: MIT */
#include "echo-device.h"

#include "macro.h"
#include "testutil.h"

#include <endian.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int
set_features(void *data, uint64_t features)
{
	struct echo_device *d = data;

	g_mutex_lock(&d->lock);
	d->features = features;
	g_mutex_unlock(&d->lock);
	return 0;
}

static int
get_config(void *data, uint32_t offset, void *buf, uint32_t len)
{
	struct echo_device *d = data;
	uint32_t v = htole32(ECHO_MAGIC);

	memcpy(d->config, &v, 4);
	v = htole32(d->requests);
	memcpy(d->config + 4, &v, 4);
	memcpy(buf, d->config + offset, len);
	return 0;
}

static int
set_config(void *data, uint32_t offset, const void *buf, uint32_t len)
{
	struct echo_device *d = data;

	if (offset < 8)
		return -EPERM;
	memcpy(d->config + offset, buf, len);
	return 0;
}

static void
queue_start(void *data, unsigned queue)
{
	struct echo_device *d = data;

	g_mutex_lock(&d->lock);
	d->queue_starts++;
	g_mutex_unlock(&d->lock);
}

static void
queue_stop(void *data, unsigned queue)
{
	struct echo_device *d = data;

	if (d->held[queue]) {
		int r = vu_backend_complete(d->backend, d->held[queue], 0);
		d->held[queue] = NULL;
		g_mutex_lock(&d->lock);
		if (r == -ESTALE)
			d->stale_completions++;
		g_mutex_unlock(&d->lock);
	}
	g_mutex_lock(&d->lock);
	d->queue_stops++;
	g_mutex_unlock(&d->lock);
}

static void
on_deferred(void *data, int fd)
{
	struct echo_device *d = data;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	for (unsigned i = 0; i < d->n_deferred; i++) {
		struct vu_elem *e = d->deferred[i];
		int32_t zero = 0;
		size_t n = iov_from_buf(e->req.out, e->req.n_out, 0, &zero, 4);
		vu_backend_complete(d->backend, e, (uint32_t)n);
	}
	d->n_deferred = 0;
}

static int
gpu_set_socket(void *data, int fd)
{
	struct echo_device *d = data;

	if (d->gpu_fd >= 0)
		close(d->gpu_fd);
	d->gpu_fd = fd;
	return write(fd, "gpu", 3) == 3 ? 0 : -EIO;
}

static void
reset(void *data)
{
	struct echo_device *d = data;

	if (d->gpu_fd >= 0)
		d->gpu_fd = (close(d->gpu_fd), -1);
	/* Requests of a stopped queue are dropped; their buffers are no longer ours. */
	for (unsigned i = 0; i < d->n_deferred; i++)
		vu_elem_free(d->deferred[i]);
	d->n_deferred = 0;

	g_mutex_lock(&d->lock);
	d->resets++;
	g_mutex_unlock(&d->lock);
}

static void
connection_ended(void *data, int error, const char *why)
{
	struct echo_device *d = data;

	g_mutex_lock(&d->lock);
	d->connections_ended++;
	d->last_error = error;
	g_strlcpy(d->last_why, why ? why : "", sizeof(d->last_why));
	g_cond_broadcast(&d->cond);
	g_mutex_unlock(&d->lock);
}

static int32_t
do_map(struct echo_device *d, uint64_t arg)
{
	uint8_t *pattern = g_malloc(ECHO_MAP_LEN);
	int fd, r;

	cb_test_pattern(pattern, ECHO_MAP_LEN, (uint32_t)arg);
	fd = cb_test_memfd("echo-map", pattern, ECHO_MAP_LEN);
	g_free(pattern);
	if (fd < 0)
		return fd;
	r = vu_backend_shmem_map(d->backend, 0, arg, fd, 0, ECHO_MAP_LEN, true);
	close(fd);
	return r;
}

static void
handle(void *data, unsigned queue, struct vu_elem *elem)
{
	struct echo_device *d = data;
	const struct cb_request *req = &elem->req;
	uint8_t hdr[16];
	uint64_t arg;
	int32_t result = 0;
	uint32_t written = 0;

	d->requests++;
	if (iov_to_buf(req->in, req->n_in, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
		vu_backend_complete(d->backend, elem, 0);
		return;
	}
	memcpy(&arg, hdr + 8, 8);
	arg = le64toh(arg);
	if (hdr[0] > ECHO_OP_CONFIG_CHANGED) {
		result = (int32_t)htole32((uint32_t)-ENOTTY);
		written = (uint32_t)iov_from_buf(req->out, req->n_out, 0, &result, 4);
		vu_backend_complete(d->backend, elem, written);
		return;
	}
	switch ((enum echo_op)hdr[0]) {
	case ECHO_OP_ECHO: {
		size_t in = iov_size(req->in, req->n_in) - sizeof(hdr);
		size_t out = iov_size(req->out, req->n_out);
		size_t n = MIN(in, out);
		uint8_t *buf = g_malloc(n ? n : 1);

		iov_to_buf(req->in, req->n_in, sizeof(hdr), buf, n);
		for (size_t i = 0; i < n; i++)
			buf[i] ^= 0x5a;
		iov_from_buf(req->out, req->n_out, 0, buf, n);
		g_free(buf);
		vu_backend_complete(d->backend, elem, (uint32_t)n);
		return;
	}
	case ECHO_OP_MAP:
		result = do_map(d, arg);
		break;
	case ECHO_OP_UNMAP:
		result = vu_backend_shmem_unmap(d->backend, 0, arg, ECHO_MAP_LEN);
		break;
	case ECHO_OP_OBJ_ADD:
	case ECHO_OP_OBJ_REMOVE: {
		uint8_t uuid[16];

		if (iov_to_buf(req->in, req->n_in, sizeof(hdr), uuid, 16) != 16)
			result = -EINVAL;
		else if (hdr[0] == ECHO_OP_OBJ_ADD)
			result = vu_backend_shared_object_add(d->backend, uuid);
		else
			result = vu_backend_shared_object_remove(d->backend, uuid);
		break;
	}
	case ECHO_OP_HOLD:
		if (d->held[queue] == NULL) {
			d->held[queue] = elem;
			return;
		}
		result = -EBUSY;
		break;
	case ECHO_OP_CONFIG_CHANGED:
		result = vu_backend_config_changed(d->backend);
		break;
	case ECHO_OP_DEFER:
		if (d->n_deferred < G_N_ELEMENTS(d->deferred)) {
			uint64_t one = 1;
			d->deferred[d->n_deferred++] = elem;
			g_assert_cmpint(write(d->defer_fd, &one, 8), ==, 8);
			return;
		}
		result = -EBUSY;
		break;
	case ECHO_OP_RELEASE:
		if (d->held[queue] == NULL) {
			result = -ENOENT;
			break;
		} else {
			struct vu_elem *held = d->held[queue];
			uint32_t v = htole32(ECHO_RELEASED);
			size_t n = iov_from_buf(held->req.out, held->req.n_out, 0, &v, 4);

			d->held[queue] = NULL;
			result = vu_backend_complete(d->backend, held, (uint32_t)n);
		}
		break;
	}
	result = (int32_t)htole32((uint32_t)result);
	written = (uint32_t)iov_from_buf(req->out, req->n_out, 0, &result, sizeof(result));
	vu_backend_complete(d->backend, elem, written);
}

static gpointer
run(gpointer data)
{
	struct echo_device *d = data;
	return GINT_TO_POINTER(vu_backend_run(d->backend));
}

static struct echo_device *
start(int fd)
{
	static const uint64_t shmem_sizes[] = {ECHO_SHMEM_SIZE};
	const struct vu_backend_device dev = {
		.features = 1ull << ECHO_FEATURE_BIT,
		.n_queues = ECHO_N_QUEUES,
		.max_queue_size = ECHO_MAX_QUEUE,
		.config_size = ECHO_CONFIG_SIZE,
		.n_shmem = 1,
		.shmem_sizes = shmem_sizes,
		.require_sealed_memory = true,
		.set_features = set_features,
		.get_config = get_config,
		.set_config = set_config,
		.queue_start = queue_start,
		.queue_stop = queue_stop,
		.handle = handle,
		.reset = reset,
		.gpu_set_socket = gpu_set_socket,
		.connection_ended = connection_ended,
	};
	struct echo_device *d = g_new0(struct echo_device, 1);
	GError *error = NULL;

	g_mutex_init(&d->lock);
	g_cond_init(&d->cond);
	d->gpu_fd = -1;
	d->defer_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g_assert_cmpint(d->defer_fd, >=, 0);
	d->dir = g_dir_make_tmp("cb-vu-XXXXXX", &error);
	g_assert_no_error(error);
	d->path = g_build_filename(d->dir, "device.sock", NULL);
	g_assert_cmpint(vu_backend_new(&dev, d, &d->backend), ==, 0);
	if (fd >= 0)
		g_assert_cmpint(vu_backend_adopt(d->backend, fd), ==, 0);
	else
		g_assert_cmpint(vu_backend_listen(d->backend, d->path), ==, 0);
	g_assert_cmpint(vu_backend_add_watch(d->backend, d->defer_fd, on_deferred, d), ==, 0);
	g_assert_cmpint(vu_backend_add_watch(d->backend, d->defer_fd, on_deferred, d), ==, -EEXIST);
	d->thread = g_thread_new("echo-device", run, d);
	return d;
}

struct echo_device *
echo_device_start(void)
{
	return start(-1);
}

struct echo_device *
echo_device_start_adopted(int fd)
{
	return start(fd);
}

int
echo_device_stop(struct echo_device *d)
{
	int r;

	vu_backend_stop(d->backend);
	r = GPOINTER_TO_INT(g_thread_join(d->thread));
	for (unsigned i = 0; i < ECHO_N_QUEUES; i++)
		vu_elem_free(d->held[i]);
	g_assert_cmpint(vu_backend_remove_watch(d->backend, d->defer_fd), ==, 0);
	g_assert_cmpint(vu_backend_remove_watch(d->backend, d->defer_fd), ==, -ENOENT);
	vu_backend_free(d->backend);
	close(d->defer_fd);
	if (d->gpu_fd >= 0)
		close(d->gpu_fd);
	g_assert_false(g_file_test(d->path, G_FILE_TEST_EXISTS));
	g_rmdir(d->dir);
	g_free(d->dir);
	g_free(d->path);
	g_mutex_clear(&d->lock);
	g_cond_clear(&d->cond);
	g_free(d);
	return r;
}

int
echo_device_wait_ended(struct echo_device *d, unsigned n)
{
	gint64 end = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
	int r;

	g_mutex_lock(&d->lock);
	while (d->connections_ended < n) {
		if (!g_cond_wait_until(&d->cond, &d->lock, end))
			break;
	}
	g_assert_cmpuint(d->connections_ended, >=, n);
	r = d->last_error;
	g_mutex_unlock(&d->lock);
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * The memfd backend: every buffer is a memfd sealed against shrinking (the registry
 * requires it: a consumer's mapping must never lose pages), laid out by gpu_layout_host()
 * so a video decoder can write into it in place. Protected buffers are memfd_secret(2):
 * out of the kernel's direct map, reachable only through mappings, which the device never
 * gives a guest.
 */
#include "backend.h"
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct memfd_buffer {
	struct gpu_buffer base;
	uint8_t *map;
	size_t map_size;
};

static int
secret_fd(void)
{
#ifdef SYS_memfd_secret
	int fd = (int)syscall(SYS_memfd_secret, (unsigned)O_CLOEXEC);
	return fd < 0 ? negative_errno() : fd;
#else
	return -ENOSYS;
#endif
}

static int
new_fd(bool protected_, uint64_t size)
{
	_cleanup_close_ int fd = -1;

	if (size == 0 || size > (uint64_t)SIZE_MAX / 2 || size > INT64_MAX)
		return -EINVAL;
	if (protected_)
		fd = secret_fd();
	else
		fd = memfd_create("crossbuf-gpu", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return protected_ ? fd : negative_errno();
	if (ftruncate(fd, (off_t)size) < 0)
		return negative_errno();
	/* memfd_secret cannot be sealed; it cannot be shrunk by anyone but its holders. */
	if (!protected_ && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

static int
memfd_buffer_create(struct gpu_backend *backend, const struct gpu_buffer_desc *desc,
		    struct gpu_buffer **ret_buffer)
{
	struct gpu_layout layout = {0};
	struct memfd_buffer *b;
	int r;

	switch (desc->kind) {
	case GPU_BUFFER_IMAGE:
		if (desc->format == NULL)
			return -EINVAL;
		r = gpu_layout_host(desc->format, desc->width, desc->height, &layout);
		if (r < 0)
			return r;
		break;
	case GPU_BUFFER_BLOB: {
		uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
		if (desc->size == 0 || desc->size > UINT64_MAX - page)
			return -EINVAL;
		layout.size = ALIGN_UP(desc->size, page);
		break;
	}
	}

	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->base.backend = backend;
	b->base.layout = layout;
	b->base.protected_ = desc->protected_;
	b->base.cpu_mappable = true;
	b->base.map_info = VIRTIO_GPU_MAP_CACHE_CACHED;
	b->base.fd = new_fd(desc->protected_, layout.size);
	if (b->base.fd < 0) {
		r = b->base.fd;
		free(b);
		return r;
	}
	b->map_size = (size_t)layout.size;
	b->map = mmap(NULL, b->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, b->base.fd, 0);
	if (b->map == MAP_FAILED) {
		r = negative_errno();
		close(b->base.fd);
		free(b);
		/* memfd_secret counts against RLIMIT_MEMLOCK: report that as lack of memory */
		return r == -EAGAIN ? -ENOMEM : r;
	}
	*ret_buffer = &b->base;
	return 0;
}

static void
memfd_buffer_destroy(struct gpu_backend *backend, struct gpu_buffer *buffer)
{
	struct memfd_buffer *b = (struct memfd_buffer *)buffer;

	if (b == NULL)
		return;
	munmap(b->map, b->map_size);
	safe_close(b->base.fd);
	free(b);
}

static int
memfd_begin_cpu(struct gpu_backend *backend, struct gpu_buffer *buffer, unsigned access,
		bool allow_protected, uint8_t **ret_base)
{
	struct memfd_buffer *b = (struct memfd_buffer *)buffer;

	if (buffer->protected_ && !allow_protected)
		return -EPERM;
	*ret_base = b->map;
	return 0;
}

static void
memfd_end_cpu(struct gpu_backend *backend, struct gpu_buffer *buffer, unsigned access)
{
}

static void
memfd_destroy(struct gpu_backend *backend)
{
	free(backend);
}

static const struct gpu_backend_ops memfd_ops = {
	.name = "memfd",
	.destroy = memfd_destroy,
	.buffer_create = memfd_buffer_create,
	.buffer_destroy = memfd_buffer_destroy,
	.begin_cpu = memfd_begin_cpu,
	.end_cpu = memfd_end_cpu,
};

int
gpu_backend_memfd_new(struct gpu_backend **ret_backend)
{
	struct gpu_backend *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	b->ops = &memfd_ops;
	*ret_backend = b;
	return 0;
}

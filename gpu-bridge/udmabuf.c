/* SPDX-License-Identifier: MIT */
#include "udmabuf.h"

#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/udmabuf.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int
gpu_udmabuf_merge(struct gpu_udmabuf_item *items, unsigned n)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	unsigned out = 0;

	for (unsigned i = 0; i < n; i++) {
		struct gpu_udmabuf_item *it = &items[i];
		uint64_t end;
		if (it->size == 0 || it->offset % page != 0 || it->size % page != 0 ||
		    __builtin_add_overflow(it->offset, it->size, &end))
			return -EINVAL;
		if (out > 0 && items[out - 1].memfd == it->memfd &&
		    items[out - 1].offset + items[out - 1].size == it->offset) {
			items[out - 1].size += it->size;
			continue;
		}
		items[out++] = *it;
	}
	return (int)out;
}

int
gpu_udmabuf_create(const char *dev_path, struct gpu_udmabuf_item *items, unsigned n, int *ret_fd)
{
	_cleanup_free_ struct udmabuf_create_list *list = NULL;
	_cleanup_close_ int dev = -1;
	int count, fd;

	count = gpu_udmabuf_merge(items, n);
	if (count < 0)
		return count;
	if (count == 0)
		return -EINVAL;
	if (count > GPU_UDMABUF_MAX_ITEMS)
		return -E2BIG;
	list = calloc(1, sizeof(*list) + (size_t)count * sizeof(list->list[0]));
	if (list == NULL)
		return -ENOMEM;
	list->flags = UDMABUF_FLAGS_CLOEXEC;
	list->count = (uint32_t)count;
	for (int i = 0; i < count; i++) {
		list->list[i].memfd = (uint32_t)items[i].memfd;
		list->list[i].offset = items[i].offset;
		list->list[i].size = items[i].size;
	}
	dev = open(dev_path != NULL ? dev_path : "/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return errno == ENOENT ? -ENODEV : negative_errno();
	fd = ioctl(dev, UDMABUF_CREATE_LIST, list);
	if (fd < 0)
		return negative_errno();
	*ret_fd = fd;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * A RAM disk as a vhost-user-blk backend, to check the backend library against a real VMM:
 * QEMU's vhost-user-blk-pci and the Linux virtio_blk driver in a guest (qemu-interop.sh).
 *
 *   vu-blk-ramdisk SOCKET-PATH
 *
 * Serves one frontend after another until SIGTERM; prints what it negotiated, each
 * connection's end, and "requests: N reads: N" lines, which the script reads.
 */
#include "backend.h"
#include "macro.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECTORS 2048u /* 1 MiB */

struct disk {
	struct vu_backend *backend;
	uint8_t data[SECTORS * 512];
	unsigned requests;
	unsigned reads;
};

static struct vu_backend *backend;

static int
get_config(void *data, uint32_t offset, void *buf, uint32_t len)
{
	struct virtio_blk_config cfg = {.capacity = htole64(SECTORS)};

	memcpy(buf, (uint8_t *)&cfg + offset, len);
	return 0;
}

static int
set_features(void *data, uint64_t features)
{
	fprintf(stderr, "features: %#llx protocol features: %#llx\n", (unsigned long long)features,
		(unsigned long long)vu_backend_protocol_features(backend));
	return 0;
}

static void
handle(void *data, unsigned queue, struct vu_elem *elem)
{
	struct disk *d = data;
	const struct cb_request *req = &elem->req;
	struct virtio_blk_outhdr hdr;
	size_t out = iov_size(req->out, req->n_out), in = iov_size(req->in, req->n_in);
	uint8_t status = VIRTIO_BLK_S_OK;
	uint64_t sector;
	size_t len = 0;

	d->requests++;
	if (out < 1 || iov_to_buf(req->in, req->n_in, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
		vu_backend_complete(d->backend, elem, 0);
		return;
	}
	sector = le64toh(hdr.sector);
	switch (le32toh(hdr.type)) {
	case VIRTIO_BLK_T_IN:
		len = out - 1;
		if (sector > SECTORS || len > (SECTORS - sector) * 512) {
			status = VIRTIO_BLK_S_IOERR;
			len = 0;
			break;
		}
		iov_from_buf(req->out, req->n_out, 0, d->data + sector * 512, len);
		d->reads++;
		break;
	case VIRTIO_BLK_T_OUT:
		if (sector > SECTORS || in - sizeof(hdr) > (SECTORS - sector) * 512) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		iov_to_buf(req->in, req->n_in, sizeof(hdr), d->data + sector * 512,
			   in - sizeof(hdr));
		break;
	case VIRTIO_BLK_T_GET_ID:
		len = MIN(out - 1, (size_t)VIRTIO_BLK_ID_BYTES);
		iov_memset(req->out, req->n_out, 0, 0, len);
		iov_from_buf(req->out, req->n_out, 0, "crossbuf", MIN(len, (size_t)8));
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	iov_from_buf(req->out, req->n_out, out - 1, &status, 1);
	vu_backend_complete(d->backend, elem, (uint32_t)(len + 1));
	fprintf(stderr, "requests: %u reads: %u\n", d->requests, d->reads);
}

static void
connection_ended(void *data, int error, const char *why)
{
	fprintf(stderr, "connection ended: %s (%d)\n", why, error);
}

static void
on_signal(int sig)
{
	vu_backend_stop(backend);
}

int
main(int argc, char **argv)
{
	const struct vu_backend_device dev = {
		.n_queues = 1,
		.max_queue_size = 1024,
		.config_size = sizeof(struct virtio_blk_config),
		.require_sealed_memory = true,
		.get_config = get_config,
		.set_features = set_features,
		.handle = handle,
		.connection_ended = connection_ended,
	};
	struct sigaction sa = {.sa_handler = on_signal};
	struct disk *d;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s SOCKET-PATH\n", argv[0]);
		return 2;
	}
	d = calloc(1, sizeof(*d));
	/* An MBR signature, so the guest finds a (partition-less) disk. */
	d->data[510] = 0x55;
	d->data[511] = 0xaa;
	r = vu_backend_new(&dev, d, &d->backend);
	if (r == 0)
		r = vu_backend_listen(d->backend, argv[1]);
	if (r < 0) {
		fprintf(stderr, "cannot serve %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	backend = d->backend;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "listening on %s\n", argv[1]);
	r = vu_backend_run(d->backend);
	fprintf(stderr, "stopped: %d requests, %d\n", d->requests, r);
	vu_backend_free(d->backend);
	free(d);
	return r < 0 ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The device side of a split virtqueue on its own: guest memory is a memfd mapped as two
 * regions, the test writes rings as a driver would and checks what pop/push/notify make of
 * them, error by error.
 */
#include "testutil.h"
#include "virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define GPA   0x100000ull
#define SIZE  (256u << 10)
#define QSIZE 8
#define DESC  (GPA + 0x0)
#define AVAIL (GPA + 0x1000)
#define USED  (GPA + 0x2000)
#define BUF   (GPA + 0x4000)
#define TABLE (GPA + 0x8000)

struct fixture {
	int fd;
	uint8_t *mem;
	struct guest_mem gm;
	struct vu_virtq vq;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
};

static void
setup(struct fixture *f)
{
	f->fd = cb_test_memfd("guest", NULL, SIZE);
	f->mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	g_assert_true(f->mem != MAP_FAILED);
	guest_mem_init(&f->gm);
	g_assert_cmpint(guest_mem_add_region(&f->gm, GPA, SIZE / 2, f->mem), ==, 0);
	g_assert_cmpint(guest_mem_add_region(&f->gm, GPA + SIZE / 2, SIZE / 2, f->mem + SIZE / 2),
			==, 0);
	f->desc = (void *)(f->mem + (DESC - GPA));
	f->avail = (void *)(f->mem + (AVAIL - GPA));
	f->used = (void *)(f->mem + (USED - GPA));
	g_assert_cmpint(vu_virtq_init(&f->vq, &f->gm, QSIZE, f->desc, f->avail, f->used, 0), ==, 0);
}

static void
teardown(struct fixture *f)
{
	munmap(f->mem, SIZE);
	close(f->fd);
}

static void
set_desc(struct fixture *f, struct vring_desc *t, unsigned i, uint64_t addr, uint32_t len,
	 uint16_t flags, uint16_t next)
{
	t[i] = (struct vring_desc){.addr = htole64(addr),
				   .len = htole32(len),
				   .flags = htole16(flags),
				   .next = htole16(next)};
}

static void
publish(struct fixture *f, uint16_t head)
{
	uint16_t idx = le16toh(f->avail->idx);
	f->avail->ring[idx % QSIZE] = htole16(head);
	f->avail->idx = htole16(idx + 1);
}

static void
test_init(void)
{
	struct fixture f;

	setup(&f);
	g_assert_cmpint(vu_virtq_init(&f.vq, &f.gm, 0, f.desc, f.avail, f.used, 0), ==, -EINVAL);
	g_assert_cmpint(vu_virtq_init(&f.vq, &f.gm, 12, f.desc, f.avail, f.used, 0), ==, -EINVAL);
	g_assert_cmpint(vu_virtq_init(&f.vq, &f.gm, 65536, f.desc, f.avail, f.used, 0), ==,
			-EINVAL);
	g_assert_cmpint(vu_virtq_init(&f.vq, &f.gm, 8, (uint8_t *)f.desc + 4, f.avail, f.used, 0),
			==, -EINVAL);
	g_assert_true(vu_virtq_size_valid(32768));
	g_assert_false(vu_virtq_size_valid(32769));
	g_assert_cmpuint(vu_virtq_desc_bytes(8), ==, 128);
	g_assert_cmpuint(vu_virtq_avail_bytes(8), ==, 22);
	g_assert_cmpuint(vu_virtq_used_bytes(8), ==, 70);
	teardown(&f);
}

static void
test_pop_push(void)
{
	struct fixture f;
	struct vu_elem *e, *e2;
	uint64_t v;
	int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	setup(&f);
	f.vq.call_fd = call;
	g_assert_cmpint(vu_virtq_pop(&f.vq, &e), ==, 0);
	/* Readable, then two writable pieces; the second straddles the region boundary. */
	set_desc(&f, f.desc, 3, BUF, 100, VRING_DESC_F_NEXT, 5);
	set_desc(&f, f.desc, 5, BUF + 0x1000, 50, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(&f, f.desc, 1, GPA + SIZE / 2 - 10, 30, VRING_DESC_F_WRITE, 0);
	publish(&f, 3);
	g_assert_cmpint(vu_virtq_pop(&f.vq, &e), ==, 1);
	g_assert_cmpuint(e->head, ==, 3);
	g_assert_cmpuint(e->req.n_in, ==, 1);
	g_assert_cmpuint(e->req.n_out, ==, 3);
	g_assert_true(e->req.in[0].iov_base == f.mem + (BUF - GPA));
	g_assert_cmpuint(iov_size(e->req.out, e->req.n_out), ==, 80);
	g_assert_cmpuint(e->req.out[1].iov_len, ==, 10);
	g_assert_cmpuint(e->req.out[2].iov_len, ==, 20);
	g_assert_cmpint(vu_virtq_pop(&f.vq, &e2), ==, 0);
	g_assert_cmpint(vu_virtq_push(&f.vq, e, 42), ==, 0);
	g_assert_cmpuint(le16toh(f.used->idx), ==, 1);
	g_assert_cmpuint(le32toh(f.used->ring[0].id), ==, 3);
	g_assert_cmpuint(le32toh(f.used->ring[0].len), ==, 42);
	vu_virtq_notify(&f.vq);
	g_assert_cmpint(read(call, &v, 8), ==, 8);
	/* Interrupts suppressed by the driver: no notification. */
	f.avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	vu_virtq_notify(&f.vq);
	g_assert_cmpint(read(call, &v, 8), <, 0);
	close(call);
	teardown(&f);
}

static void
pop_push(struct fixture *f)
{
	struct vu_elem *e;

	g_assert_cmpint(vu_virtq_pop(&f->vq, &e), ==, 1);
	g_assert_cmpint(vu_virtq_push(&f->vq, e, 0), ==, 0);
}

static bool
notified(int call)
{
	uint64_t v;
	return read(call, &v, 8) == 8;
}

static void
test_event_idx(void)
{
	struct fixture f;
	struct vu_elem *e;
	int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint16_t *used_event, *avail_event;

	setup(&f);
	f.vq.call_fd = call;
	f.vq.event_idx = true;
	used_event = &f.avail->ring[QSIZE];
	avail_event = (uint16_t *)&f.used->ring[QSIZE];
	for (unsigned i = 0; i < 3; i++) {
		set_desc(&f, f.desc, i, BUF, 8, 0, 0);
		publish(&f, i);
	}
	/* The first decision always notifies. */
	pop_push(&f);
	vu_virtq_notify(&f.vq);
	g_assert_true(notified(call));
	/* The driver wants to hear only once used passes 5. */
	*used_event = htole16(5);
	pop_push(&f);
	vu_virtq_notify(&f.vq);
	g_assert_false(notified(call));
	/* ... then after entry 2. */
	*used_event = htole16(2);
	pop_push(&f);
	vu_virtq_notify(&f.vq);
	g_assert_true(notified(call));
	/* An empty ring asks for a kick at the next entry. */
	g_assert_cmpint(vu_virtq_pop(&f.vq, &e), ==, 0);
	g_assert_cmpuint(le16toh(*avail_event), ==, 3);
	close(call);
	teardown(&f);
}

static void
test_indirect(void)
{
	struct fixture f;
	struct vring_desc *t;
	struct vu_elem *e;

	setup(&f);
	t = (void *)(f.mem + (TABLE - GPA));
	set_desc(&f, t, 0, BUF, 16, VRING_DESC_F_NEXT, 2);
	set_desc(&f, t, 2, BUF + 16, 0, VRING_DESC_F_NEXT, 1); /* empty: skipped */
	set_desc(&f, t, 1, BUF + 64, 64, VRING_DESC_F_WRITE, 0);
	set_desc(&f, f.desc, 0, TABLE, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(&f, 0);
	g_assert_cmpint(vu_virtq_pop(&f.vq, &e), ==, 1);
	g_assert_cmpuint(e->req.n_in, ==, 1);
	g_assert_cmpuint(e->req.n_out, ==, 1);
	g_assert_cmpuint(e->req.out[0].iov_len, ==, 64);
	/* The table was copied: changing it now changes nothing popped. */
	set_desc(&f, t, 1, 0, 0, 0, 0);
	g_assert_cmpuint(e->req.out[0].iov_len, ==, 64);
	vu_elem_free(e);
	teardown(&f);
}

struct bad_case {
	const char *name;
	enum vu_virtq_error error;
	void (*make)(struct fixture *f);
};

static void
make_loop(struct fixture *f)
{
	set_desc(f, f->desc, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
	set_desc(f, f->desc, 1, BUF, 8, VRING_DESC_F_NEXT, 0);
	publish(f, 0);
}

static void
make_head(struct fixture *f)
{
	publish(f, QSIZE);
}

static void
make_next(struct fixture *f)
{
	set_desc(f, f->desc, 0, BUF, 8, VRING_DESC_F_NEXT, QSIZE + 1);
	publish(f, 0);
}

static void
make_address(struct fixture *f)
{
	set_desc(f, f->desc, 0, GPA + SIZE - 4, 8, 0, 0);
	publish(f, 0);
}

static void
make_order(struct fixture *f)
{
	set_desc(f, f->desc, 0, BUF, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(f, f->desc, 1, BUF, 8, 0, 0);
	publish(f, 0);
}

static void
make_avail(struct fixture *f)
{
	f->avail->idx = htole16(QSIZE + 1);
}

static void
make_indirect_nested(struct fixture *f)
{
	struct vring_desc *t = (void *)(f->mem + (TABLE - GPA));
	set_desc(f, t, 0, TABLE, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(f, f->desc, 0, TABLE, 16, VRING_DESC_F_INDIRECT, 0);
	publish(f, 0);
}

static void
make_indirect_long(struct fixture *f)
{
	struct vring_desc *t = (void *)(f->mem + (TABLE - GPA));
	for (unsigned i = 0; i <= QSIZE; i++)
		set_desc(f, t, i, BUF, 8, i < QSIZE ? VRING_DESC_F_NEXT : 0, i + 1);
	set_desc(f, f->desc, 0, TABLE, 16 * (QSIZE + 1), VRING_DESC_F_INDIRECT, 0);
	publish(f, 0);
}

static void
make_indirect_address(struct fixture *f)
{
	set_desc(f, f->desc, 0, GPA + SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	publish(f, 0);
}

static const struct bad_case bad_cases[] = {
	{"loop", VU_VIRTQ_ERR_CHAIN_LENGTH, make_loop},
	{"head", VU_VIRTQ_ERR_HEAD_RANGE, make_head},
	{"next", VU_VIRTQ_ERR_HEAD_RANGE, make_next},
	{"address", VU_VIRTQ_ERR_BAD_ADDRESS, make_address},
	{"order", VU_VIRTQ_ERR_ORDER, make_order},
	{"avail-index", VU_VIRTQ_ERR_AVAIL_IDX, make_avail},
	{"indirect-nested", VU_VIRTQ_ERR_INDIRECT, make_indirect_nested},
	{"indirect-too-long", VU_VIRTQ_ERR_INDIRECT, make_indirect_long},
	{"indirect-address", VU_VIRTQ_ERR_BAD_ADDRESS, make_indirect_address},
};

static void
test_bad(const void *data)
{
	const struct bad_case *c = data;
	struct fixture f;
	struct vu_elem *e = NULL;

	setup(&f);
	c->make(&f);
	g_assert_cmpint(vu_virtq_pop(&f.vq, &e), ==, -EIO);
	g_assert_null(e);
	g_assert_cmpint(f.vq.broken, ==, c->error);
	g_assert_nonnull(vu_virtq_error_str(c->error));
	/* Broken stays broken, and nothing reaches the used ring. */
	g_assert_cmpint(vu_virtq_pop(&f.vq, &e), ==, -EIO);
	g_assert_cmpuint(f.used->idx, ==, 0);
	teardown(&f);
}

static void
test_push_unknown(void)
{
	struct fixture f;
	struct vu_elem *e = calloc(1, sizeof(*e));

	setup(&f);
	/* A push with nothing in flight is a device bug; the queue breaks, nothing crashes. */
	g_assert_cmpint(vu_virtq_push(&f.vq, e, 0), ==, -EIO);
	g_assert_cmpint(f.vq.broken, ==, VU_VIRTQ_ERR_USED_ID);
	teardown(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/vhost-user/virtqueue/init", test_init);
	cb_test_add("/vhost-user/virtqueue/pop-push", test_pop_push);
	cb_test_add("/vhost-user/virtqueue/indirect", test_indirect);
	cb_test_add("/vhost-user/virtqueue/event-idx", test_event_idx);
	cb_test_add("/vhost-user/virtqueue/push-unknown", test_push_unknown);
	for (unsigned i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
		char *path = g_strdup_printf("/vhost-user/virtqueue/bad/%s", bad_cases[i].name);
		cb_test_add_data(path, &bad_cases[i], test_bad);
		g_free(path);
	}
	return g_test_run();
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "guest-mem.h"
#include "iov.h"
#include "testutil.h"

static uint8_t low[4096], high[4096];

static void
setup(struct guest_mem *gm)
{
	guest_mem_init(gm);
	g_assert_cmpint(guest_mem_add_region(gm, 0x0, sizeof(low), low), ==, 0);
	g_assert_cmpint(guest_mem_add_region(gm, 0x1000, sizeof(high), high), ==, 0);
}

static void
test_translate_bounds(void)
{
	struct guest_mem gm;

	setup(&gm);
	g_assert_true(guest_mem_translate(&gm, 0x10, 16) == low + 0x10);
	g_assert_true(guest_mem_translate(&gm, 0x1ff0, 16) == high + 0xff0);
	/* spans two regions: not contiguous in the host */
	g_assert_null(guest_mem_translate(&gm, 0xff0, 32));
	g_assert_null(guest_mem_translate(&gm, 0x1ff0, 17));
	g_assert_null(guest_mem_translate(&gm, 0x2000, 1));
	g_assert_null(guest_mem_translate(&gm, 0x10, 0));
	g_assert_null(guest_mem_translate(&gm, UINT64_MAX, 2));
	g_assert_null(guest_mem_translate(&gm, 0x10, UINT64_MAX));
}

static void
test_add_region_refuses(void)
{
	struct guest_mem gm;
	static uint8_t extra[16];

	setup(&gm);
	g_assert_cmpint(guest_mem_add_region(&gm, 0x800, 16, extra), ==, -EINVAL);
	g_assert_cmpint(guest_mem_add_region(&gm, UINT64_MAX - 4, 16, extra), ==, -EINVAL);
	g_assert_cmpint(guest_mem_add_region(&gm, 0x9000, 0, extra), ==, -EINVAL);
	for (unsigned i = 2; i < GUEST_MEM_MAX_REGIONS; i++)
		g_assert_cmpint(guest_mem_add_region(&gm, 0x10000 * (i + 1), 16, extra), ==, 0);
	g_assert_cmpint(guest_mem_add_region(&gm, 0x100000, 16, extra), ==, -ENOSPC);
}

static void
test_read_write_across_regions(void)
{
	struct guest_mem gm;
	uint8_t in[64], out[64];

	setup(&gm);
	cb_test_pattern(in, sizeof(in), 7);
	g_assert_cmpint(guest_mem_write(&gm, 0x1000 - 32, in, sizeof(in)), ==, 0);
	g_assert_cmpmem(low + 4096 - 32, 32, in, 32);
	g_assert_cmpmem(high, 32, in + 32, 32);
	g_assert_cmpint(guest_mem_read(&gm, 0x1000 - 32, out, sizeof(out)), ==, 0);
	g_assert_cmpmem(in, sizeof(in), out, sizeof(out));

	/* a range running off the end writes nothing at all */
	memset(high, 0, sizeof(high));
	g_assert_cmpint(guest_mem_write(&gm, 0x2000 - 8, in, 16), ==, -EFAULT);
	for (unsigned i = 0; i < sizeof(high); i++)
		g_assert_cmpint(high[i], ==, 0);
}

static void
test_sg_to_iov(void)
{
	struct guest_mem gm;
	struct iovec iov[2];
	struct guest_sg_entry good[2] = { { 0x100, 32 }, { 0x1100, 64 } };
	struct guest_sg_entry bad[2] = { { 0x100, 32 }, { 0x1ff0, 64 } };
	struct guest_sg_entry empty[1] = { { 0x100, 0 } };

	setup(&gm);
	g_assert_cmpint(guest_mem_sg_to_iov(&gm, good, 2, iov), ==, 0);
	g_assert_true(iov[0].iov_base == low + 0x100 && iov[0].iov_len == 32);
	g_assert_true(iov[1].iov_base == high + 0x100 && iov[1].iov_len == 64);
	g_assert_cmpint(guest_mem_sg_to_iov(&gm, bad, 2, iov), ==, -EFAULT);
	g_assert_cmpint(guest_mem_sg_to_iov(&gm, empty, 1, iov), ==, -EFAULT);
}

static void
test_iov_copy(void)
{
	uint8_t a[5], b[7], src[12], dst[12];
	struct iovec v[2] = { { a, sizeof(a) }, { b, sizeof(b) } };

	cb_test_pattern(src, sizeof(src), 3);
	g_assert_cmpuint(iov_size(v, 2), ==, 12);
	g_assert_cmpuint(iov_from_buf(v, 2, 0, src, sizeof(src)), ==, 12);
	g_assert_cmpuint(iov_to_buf(v, 2, 0, dst, sizeof(dst)), ==, 12);
	g_assert_cmpmem(src, 12, dst, 12);
	/* offsets and short chains */
	g_assert_cmpuint(iov_to_buf(v, 2, 4, dst, 4), ==, 4);
	g_assert_cmpmem(dst, 4, src + 4, 4);
	g_assert_cmpuint(iov_to_buf(v, 2, 10, dst, 8), ==, 2);
	g_assert_cmpuint(iov_to_buf(v, 2, 40, dst, 8), ==, 0);
	g_assert_cmpuint(iov_memset(v, 2, 3, 0, 4), ==, 4);
	g_assert_cmpint(a[3], ==, 0);
	g_assert_cmpint(b[1], ==, 0);
}

static void
test_region_fd(void)
{
	static uint8_t ram[2][4096];
	struct guest_mem gm;
	uint64_t off = 0;
	int fd = -1;
	int memfd = cb_test_memfd("ram", NULL, 8192);

	guest_mem_init(&gm);
	g_assert_cmpint(guest_mem_add_region(&gm, 0, 4096, ram[0]), ==, 0);
	g_assert_cmpint(guest_mem_add_region_fd(&gm, 0x10000, 4096, ram[1], memfd, 4096), ==, 0);
	/* a region without a file */
	g_assert_cmpint(guest_mem_fd(&gm, 16, 16, &fd, &off), ==, -ENOENT);
	g_assert_cmpint(fd, ==, -1);
	g_assert_cmpint(guest_mem_fd(&gm, 0x10010, 16, &fd, &off), ==, 0);
	g_assert_cmpint(fd, ==, memfd);
	g_assert_cmpuint(off, ==, 4096 + 16);
	/* past the region's end, empty, unmapped */
	g_assert_cmpint(guest_mem_fd(&gm, 0x10ff0, 32, &fd, &off), ==, -ENOENT);
	g_assert_cmpint(guest_mem_fd(&gm, 0x10000, 0, &fd, &off), ==, -ENOENT);
	g_assert_cmpint(guest_mem_fd(&gm, 0x20000, 1, &fd, &off), ==, -ENOENT);
	/* a file offset that wraps */
	g_assert_cmpint(guest_mem_add_region_fd(&gm, 0x30000, 4096, ram[1], memfd, UINT64_MAX),
			==, -EINVAL);
	close(memfd);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/common/guest-mem/translate-bounds", test_translate_bounds);
	cb_test_add("/common/guest-mem/add-region-refuses", test_add_region_refuses);
	cb_test_add("/common/guest-mem/read-write-across-regions", test_read_write_across_regions);
	cb_test_add("/common/guest-mem/sg-to-iov", test_sg_to_iov);
	cb_test_add("/common/guest-mem/region-fd", test_region_fd);
	cb_test_add("/common/iov/copy", test_iov_copy);
	return g_test_run();
}

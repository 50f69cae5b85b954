/* SPDX-License-Identifier: MIT */
/* libcrossbuf on an embedded registry: the same contract the broker gives, in-process. */
#include <crossbuf/crossbuf.h>
#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include "testutil.h"

#define W 64
#define H 32

static struct crossbuf_client *
client_in(struct crossbuf_registry *reg, const char *domain, uint32_t rights)
{
	struct crossbuf_client *c;

	g_assert_cmpint(crossbuf_client_new(&c), ==, 0);
	if (domain != NULL)
		g_assert_cmpint(crossbuf_client_set_domain(c, domain), ==, 0);
	g_assert_cmpint(crossbuf_client_set_rights(c, rights), ==, 0);
	g_assert_cmpint(crossbuf_client_connect_embedded(c, reg), ==, 0);
	return c;
}

static struct crossbuf_buffer_info
nv12_info(uint32_t flags)
{
	struct crossbuf_buffer_info info;

	memset(&info, 0, sizeof(info));
	info.width = W;
	info.height = H;
	info.fourcc = DRM_FORMAT_NV12;
	info.num_planes = 2;
	info.modifier = DRM_FORMAT_MOD_LINEAR;
	info.planes[0] = (struct crossbuf_plane){ .offset = 0, .stride = W };
	info.planes[1] = (struct crossbuf_plane){ .offset = W * H, .stride = W };
	info.flags = flags;
	info.device_kind = CROSSBUF_DEVICE_GPU;
	info.resource_id = 7;
	return info;
}

#define NV12_SIZE (W * H * 3 / 2)

static void
test_export_lookup_shares_bytes(void)
{
	struct crossbuf_registry *reg;
	struct crossbuf_client *exporter, *importer;
	struct crossbuf_buffer_info info = nv12_info(0), got;
	uint8_t pattern[NV12_SIZE], uuid[16];
	uint8_t *map;
	int fd, imported;

	g_assert_cmpint(crossbuf_registry_new(&reg), ==, 0);
	exporter = client_in(reg, NULL, 0);
	importer = client_in(reg, NULL, 0);
	cb_test_pattern(pattern, sizeof(pattern), 1);
	fd = cb_test_memfd("nv12", pattern, sizeof(pattern));

	g_assert_cmpint(crossbuf_client_export(exporter, fd, &info, uuid), ==, 0);
	g_assert_false(crossbuf_uuid_is_reserved(uuid));
	g_assert_cmpint(uuid[6] >> 4, ==, 4);	  /* version 4 */
	g_assert_cmpint(uuid[8] & 0xc0, ==, 0x80); /* RFC 4122 variant */

	g_assert_cmpint(crossbuf_client_lookup(importer, uuid, &got, &imported), ==, 0);
	g_assert_cmpint(imported, !=, fd);
	g_assert_cmpint(fcntl(imported, F_GETFD), ==, FD_CLOEXEC);
	g_assert_cmpuint(got.fd_kind, ==, CROSSBUF_FD_KIND_MEMFD);
	g_assert_cmpuint(got.size, ==, NV12_SIZE);
	g_assert_cmpuint(got.fourcc, ==, DRM_FORMAT_NV12);
	g_assert_cmpuint(got.planes[1].offset, ==, W * H);
	g_assert_cmpuint(got.resource_id, ==, 7);

	/* The importer sees the exporter's bytes, and the exporter sees the importer's. */
	map = mmap(NULL, NV12_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, imported, 0);
	g_assert_true(map != MAP_FAILED);
	g_assert_cmpmem(map, NV12_SIZE, pattern, NV12_SIZE);
	memset(map, 0x5a, 16);
	munmap(map, NV12_SIZE);
	{
		uint8_t back[16], want[16];
		memset(want, 0x5a, sizeof(want));
		g_assert_cmpint(pread(fd, back, sizeof(back), 0), ==, sizeof(back));
		g_assert_cmpmem(back, sizeof(back), want, sizeof(want));
	}

	close(imported);
	close(fd);
	crossbuf_client_unref(importer);
	crossbuf_client_unref(exporter);
	crossbuf_registry_unref(reg);
}

static void
test_refused_fds(void)
{
	struct crossbuf_registry *reg;
	struct crossbuf_client *c;
	struct crossbuf_buffer_info info = nv12_info(0);
	uint8_t uuid[16];
	int sv[2], pipefd[2], unsealed, ro, dirfd_;

	g_assert_cmpint(crossbuf_registry_new(&reg), ==, 0);
	c = client_in(reg, NULL, 0);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	g_assert_cmpint(pipe2(pipefd, O_CLOEXEC), ==, 0);
	unsealed = cb_test_memfd_unsealed("unsealed", NULL, NV12_SIZE);
	dirfd_ = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	{
		int fd = cb_test_memfd("ro", NULL, NV12_SIZE);
		char path[64];
		g_snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ro = open(path, O_RDONLY | O_CLOEXEC);
		close(fd);
	}

	g_assert_cmpint(crossbuf_client_export(c, sv[0], &info, uuid), ==, -EINVAL);
	g_assert_cmpint(crossbuf_client_export(c, pipefd[0], &info, uuid), ==, -EINVAL);
	g_assert_cmpint(crossbuf_client_export(c, unsealed, &info, uuid), ==, -EINVAL);
	g_assert_cmpint(crossbuf_client_export(c, dirfd_, &info, uuid), ==, -EINVAL);
	g_assert_cmpint(crossbuf_client_export(c, ro, &info, uuid), ==, -EINVAL);
	g_assert_cmpint(crossbuf_client_export(c, -1, &info, uuid), ==, -EBADF);
	g_assert_cmpint(crossbuf_client_export(c, 1000, &info, uuid), ==, -EBADF);

	close(sv[0]);
	close(sv[1]);
	close(pipefd[0]);
	close(pipefd[1]);
	close(unsealed);
	close(dirfd_);
	close(ro);
	crossbuf_client_unref(c);
	crossbuf_registry_unref(reg);
}

static void
test_refused_layouts(void)
{
	struct crossbuf_registry *reg;
	struct crossbuf_client *c;
	struct crossbuf_buffer_info info;
	uint8_t uuid[16];
	int fd;

	g_assert_cmpint(crossbuf_registry_new(&reg), ==, 0);
	c = client_in(reg, NULL, 0);
	fd = cb_test_memfd("small", NULL, NV12_SIZE);

	info = nv12_info(0);
	info.height = H + 1; /* one row too many */
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(0);
	info.planes[1].offset = UINT32_MAX;
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(0);
	info.planes[0].stride = W - 1;
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(0);
	info.num_planes = 5;
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(0);
	info.num_planes = 1;
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(CROSSBUF_BUFFER_PROTECTED | CROSSBUF_BUFFER_GUEST_MAPPABLE);
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(1u << 7);
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(0);
	info.reserved[2] = 1;
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(0);
	info.modifier = 0x0100000000000001ull; /* a tiled modifier on a memfd */
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);
	info = nv12_info(0);
	info.planes[3].stride = 4; /* garbage in an unused plane */
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, -EINVAL);

	/* The exact fit is accepted. */
	info = nv12_info(0);
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, 0);

	close(fd);
	crossbuf_client_unref(c);
	crossbuf_registry_unref(reg);
}

static void
test_uuid_rules(void)
{
	struct crossbuf_registry *reg;
	struct crossbuf_client *a, *b;
	struct crossbuf_buffer_info info = nv12_info(0), got;
	uint8_t nil[16] = { 0 }, ones[16], mine[16];
	int fd1, fd2, imported;

	memset(ones, 0xff, sizeof(ones));
	g_assert_cmpint(crossbuf_uuid_from_string("0f8e4b4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", mine), ==, 0);
	g_assert_cmpint(crossbuf_registry_new(&reg), ==, 0);
	a = client_in(reg, NULL, 0);
	b = client_in(reg, NULL, 0);
	fd1 = cb_test_memfd("one", NULL, NV12_SIZE);
	fd2 = cb_test_memfd("two", NULL, NV12_SIZE);
	info.resource_id = 1;

	g_assert_cmpint(crossbuf_client_export_uuid(a, nil, fd1, &info), ==, -EINVAL);
	g_assert_cmpint(crossbuf_client_export_uuid(a, ones, fd1, &info), ==, -EINVAL);
	g_assert_cmpint(crossbuf_client_export_uuid(a, mine, fd1, &info), ==, 0);
	/* A duplicate never replaces, whoever sends it. */
	info.resource_id = 2;
	g_assert_cmpint(crossbuf_client_export_uuid(b, mine, fd2, &info), ==, -EEXIST);
	g_assert_cmpint(crossbuf_client_export_uuid(a, mine, fd2, &info), ==, -EEXIST);
	g_assert_cmpint(crossbuf_client_lookup(b, mine, &got, &imported), ==, 0);
	g_assert_cmpuint(got.resource_id, ==, 1);
	close(imported);

	close(fd1);
	close(fd2);
	crossbuf_client_unref(a);
	crossbuf_client_unref(b);
	crossbuf_registry_unref(reg);
}

struct removals {
	unsigned count;
	uint8_t last[16];
	enum crossbuf_removal_reason reason;
};

static void
on_removed(void *userdata, const uint8_t uuid[16], enum crossbuf_removal_reason reason)
{
	struct removals *r = userdata;

	r->count++;
	memcpy(r->last, uuid, 16);
	r->reason = reason;
}

static void
test_ownership_and_watch(void)
{
	struct crossbuf_registry *reg;
	struct crossbuf_client *owner, *other;
	struct crossbuf_buffer_info info = nv12_info(0), got;
	struct removals seen = { 0 };
	uint8_t u1[16], u2[16];
	int fd, imported;

	g_assert_cmpint(crossbuf_registry_new(&reg), ==, 0);
	owner = client_in(reg, NULL, 0);
	other = client_in(reg, NULL, 0);
	crossbuf_client_set_removed_callback(other, on_removed, &seen);
	fd = cb_test_memfd("buf", NULL, NV12_SIZE);
	g_assert_cmpint(crossbuf_client_export(owner, fd, &info, u1), ==, 0);
	g_assert_cmpint(crossbuf_client_export(owner, fd, &info, u2), ==, 0);
	g_assert_cmpmem(u1, 16, u1, 16);
	g_assert_true(memcmp(u1, u2, 16) != 0);

	g_assert_cmpint(crossbuf_client_remove(other, u1), ==, -EPERM);
	g_assert_cmpint(crossbuf_client_watch(other, u1), ==, 0);
	g_assert_cmpint(crossbuf_client_watch(other, u1), ==, -EALREADY);
	g_assert_cmpint(crossbuf_client_watch(other, u2), ==, 0);
	g_assert_cmpint(crossbuf_client_dispatch(other), ==, 0);

	/* The importer's fd outlives the entry. */
	g_assert_cmpint(crossbuf_client_lookup(other, u1, &got, &imported), ==, 0);
	g_assert_cmpint(crossbuf_client_remove(owner, u1), ==, 0);
	g_assert_cmpint(crossbuf_client_lookup(other, u1, &got, &imported), ==, -ENOENT);
	g_assert_cmpint(crossbuf_client_remove(owner, u1), ==, -ENOENT);
	g_assert_cmpint(fcntl(imported, F_GETFD), >=, 0);
	close(imported);

	{
		struct pollfd pfd = { .fd = crossbuf_client_get_fd(other), .events = POLLIN };
		g_assert_cmpint(poll(&pfd, 1, 1000), ==, 1);
	}
	g_assert_cmpint(crossbuf_client_dispatch(other), ==, 1);
	g_assert_cmpuint(seen.count, ==, 1);
	g_assert_cmpmem(seen.last, 16, u1, 16);
	g_assert_cmpint(seen.reason, ==, CROSSBUF_REMOVED_BY_OWNER);

	/* The owner going away takes its entries with it and tells the watchers. */
	owner = crossbuf_client_unref(owner);
	g_assert_cmpint(crossbuf_client_dispatch(other), ==, 1);
	g_assert_cmpuint(seen.count, ==, 2);
	g_assert_cmpmem(seen.last, 16, u2, 16);
	g_assert_cmpint(seen.reason, ==, CROSSBUF_REMOVED_OWNER_GONE);
	g_assert_cmpint(crossbuf_client_lookup(other, u2, &got, &imported), ==, -ENOENT);
	g_assert_cmpint(crossbuf_client_unwatch(other, u2), ==, -ENOENT);

	close(fd);
	crossbuf_client_unref(other);
	crossbuf_registry_unref(reg);
}

static void
test_domains_isolated(void)
{
	struct crossbuf_registry *reg;
	struct crossbuf_client *vm0, *vm1;
	struct crossbuf_buffer_info info = nv12_info(0), got;
	uint8_t uuid[16];
	int fd, fd2, imported;

	g_assert_cmpint(crossbuf_registry_new(&reg), ==, 0);
	vm0 = client_in(reg, "vm0", 0);
	vm1 = client_in(reg, "vm1", 0);
	fd = cb_test_memfd("vm0", NULL, NV12_SIZE);
	fd2 = cb_test_memfd("vm1", NULL, NV12_SIZE);
	g_assert_cmpint(crossbuf_client_export(vm0, fd, &info, uuid), ==, 0);
	g_assert_cmpint(crossbuf_client_lookup(vm1, uuid, &got, &imported), ==, -ENOENT);
	g_assert_cmpint(crossbuf_client_remove(vm1, uuid), ==, -ENOENT);
	g_assert_cmpint(crossbuf_client_watch(vm1, uuid), ==, -ENOENT);
	/* The same UUID in another domain is another entry: no existence leak via EEXIST. */
	g_assert_cmpint(crossbuf_client_export_uuid(vm1, uuid, fd2, &info), ==, 0);
	g_assert_cmpint(crossbuf_client_lookup(vm1, uuid, &got, &imported), ==, 0);
	close(imported);
	g_assert_cmpint(crossbuf_client_lookup(vm0, uuid, &got, &imported), ==, 0);
	close(imported);

	g_assert_cmpint(crossbuf_client_set_domain(vm0, "vm2"), ==, -EBUSY);
	close(fd);
	close(fd2);
	crossbuf_client_unref(vm0);
	crossbuf_client_unref(vm1);
	crossbuf_registry_unref(reg);
}

static void
test_protected_needs_right(void)
{
	struct crossbuf_registry *reg;
	struct crossbuf_client *exporter, *plain, *authorized;
	struct crossbuf_buffer_info info = nv12_info(CROSSBUF_BUFFER_PROTECTED), got;
	uint8_t uuid[16];
	int fd, imported = -1;

	fd = cb_test_memfd_secret(NV12_SIZE);
	if (fd < 0) {
		g_test_skip("memfd_secret is not available");
		return;
	}
	g_assert_cmpint(crossbuf_registry_new(&reg), ==, 0);
	exporter = client_in(reg, NULL, 0);
	plain = client_in(reg, NULL, 0);
	authorized = client_in(reg, NULL, CROSSBUF_RIGHT_PROTECTED);
	g_assert_cmpint(crossbuf_client_export(exporter, fd, &info, uuid), ==, 0);
	g_assert_cmpint(crossbuf_client_lookup(plain, uuid, &got, &imported), ==, -EACCES);
	g_assert_cmpint(imported, ==, -1);
	g_assert_cmpint(crossbuf_client_lookup(authorized, uuid, &got, &imported), ==, 0);
	g_assert_cmpuint(got.fd_kind, ==, CROSSBUF_FD_KIND_MEMFD_SECRET);
	g_assert_cmpuint(got.flags, ==, CROSSBUF_BUFFER_PROTECTED);
	close(imported);
	close(fd);
	crossbuf_client_unref(exporter);
	crossbuf_client_unref(plain);
	crossbuf_client_unref(authorized);
	crossbuf_registry_unref(reg);
}

static void
test_admin_list_and_stats(void)
{
	struct crossbuf_registry *reg;
	struct crossbuf_client *c, *admin;
	struct crossbuf_buffer_info info = nv12_info(0);
	struct crossbuf_stats stats;
	uint8_t uuid[16];
	int fd;

	g_assert_cmpint(crossbuf_registry_new(&reg), ==, 0);
	c = client_in(reg, "vm0", 0);
	admin = client_in(reg, "admin", CROSSBUF_RIGHT_ADMIN);
	fd = cb_test_memfd("buf", NULL, NV12_SIZE);
	for (int i = 0; i < 3; i++)
		g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, 0);
	g_assert_cmpint(crossbuf_client_get_stats(c, &stats), ==, -EPERM);
	g_assert_cmpint(crossbuf_client_get_stats(admin, &stats), ==, 0);
	g_assert_cmpuint(stats.entries, ==, 3);
	g_assert_cmpuint(stats.clients, ==, 2);
	g_assert_cmpuint(stats.exports, ==, 3);
	g_assert_cmpuint(stats.refused, ==, 1);
	close(fd);
	crossbuf_client_unref(c);
	crossbuf_client_unref(admin);
	crossbuf_registry_unref(reg);
}

static void
test_uuid_strings(void)
{
	uint8_t u[16], v[16];
	char s[CROSSBUF_UUID_STRING_SIZE];

	crossbuf_uuid_generate(u);
	crossbuf_uuid_to_string(u, s);
	g_assert_cmpuint(strlen(s), ==, 36);
	g_assert_cmpint(crossbuf_uuid_from_string(s, v), ==, 0);
	g_assert_cmpmem(u, 16, v, 16);
	g_assert_cmpint(crossbuf_uuid_from_string("0F8E4B4A-1C2D-4E5F-8A9B-0C1D2E3F4A5B", v), ==, 0);
	g_assert_cmpint(crossbuf_uuid_from_string("0f8e4b4a-1c2d-4e5f-8a9b-0c1d2e3f4a5", v), ==,
			-EINVAL);
	g_assert_cmpint(crossbuf_uuid_from_string("0f8e4b4a-1c2d-4e5f-8a9b-0c1d2e3f4a5bb", v), ==,
			-EINVAL);
	g_assert_cmpint(crossbuf_uuid_from_string("0f8e4b4a_1c2d-4e5f-8a9b-0c1d2e3f4a5b", v), ==,
			-EINVAL);
	g_assert_cmpint(crossbuf_uuid_from_string("", v), ==, -EINVAL);
	g_assert_cmpint(crossbuf_uuid_from_string(NULL, v), ==, -EINVAL);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/registry/embedded/export-lookup-shares-bytes", test_export_lookup_shares_bytes);
	cb_test_add("/registry/embedded/refused-fds", test_refused_fds);
	cb_test_add("/registry/embedded/refused-layouts", test_refused_layouts);
	cb_test_add("/registry/embedded/uuid-rules", test_uuid_rules);
	cb_test_add("/registry/embedded/ownership-and-watch", test_ownership_and_watch);
	cb_test_add("/registry/embedded/domains-isolated", test_domains_isolated);
	cb_test_add("/registry/embedded/protected-needs-right", test_protected_needs_right);
	cb_test_add("/registry/embedded/admin-list-and-stats", test_admin_list_and_stats);
	cb_test_add("/registry/uuid/strings", test_uuid_strings);
	return g_test_run();
}

/* SPDX-License-Identifier: MIT */
/* The request decoder and response encoder, fed by hand-built chains. */
#include "formats.h"
#include "protocol.h"
#include "testutil.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

static int
decode(const void *cmd, size_t len, struct gpu_request *r)
{
	struct iovec in = {.iov_base = (void *)cmd, .iov_len = len};
	struct cb_request req = {.in = &in, .n_in = 1};
	return gpu_request_decode(&req, r);
}

static void
test_short_header(void)
{
	uint8_t buf[23] = {0};
	struct gpu_request r;

	g_assert_cmpint(decode(buf, sizeof(buf), &r), ==, -EBADMSG);
	g_assert_cmpuint(r.hdr.type, ==, 0);
	gpu_request_finish(&r);
	g_assert_cmpint(decode(buf, 0, &r), ==, -EBADMSG);
	gpu_request_finish(&r);
}

static void
test_short_body_keeps_fence(void)
{
	struct virtio_gpu_resource_create_2d cmd = {0};
	struct gpu_request r;

	cmd.hdr.type = htole32(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
	cmd.hdr.flags = htole32(VIRTIO_GPU_FLAG_FENCE);
	cmd.hdr.fence_id = htole64(77);
	g_assert_cmpint(decode(&cmd, sizeof(cmd) - 1, &r), ==, -EBADMSG);
	g_assert_cmpuint(r.hdr.fence_id, ==, 77);
	g_assert_cmpuint(gpu_decode_error_response(-EBADMSG), ==, VIRTIO_GPU_RESP_ERR_UNSPEC);
	gpu_request_finish(&r);
}

static void
test_unknown_types(void)
{
	static const uint32_t types[] = {0,      0x00ff, 0x010e, 0x020a,
					 0x0302, 0x1100, 0x1205, 0xffffffff};
	struct virtio_gpu_ctrl_hdr hdr[8] = {0};
	struct gpu_request r;

	for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
		hdr[0].type = htole32(types[i]);
		g_assert_cmpint(decode(hdr, sizeof(hdr), &r), ==, -EOPNOTSUPP);
		gpu_request_finish(&r);
	}
}

static void
test_create_2d_split_descriptors(void)
{
	struct virtio_gpu_resource_create_2d cmd = {0};
	struct iovec in[3];
	struct cb_request req = {.in = in, .n_in = 3};
	struct gpu_request r;

	cmd.hdr.type = htole32(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
	cmd.resource_id = htole32(5);
	cmd.format = htole32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
	cmd.width = htole32(640);
	cmd.height = htole32(480);
	/* a header split in the middle of fence_id */
	in[0] = (struct iovec){.iov_base = &cmd, .iov_len = 11};
	in[1] = (struct iovec){.iov_base = (uint8_t *)&cmd + 11, .iov_len = 20};
	in[2] = (struct iovec){.iov_base = (uint8_t *)&cmd + 31, .iov_len = sizeof(cmd) - 31};
	g_assert_cmpint(gpu_request_decode(&req, &r), ==, 0);
	g_assert_cmpuint(r.create_2d.resource_id, ==, 5);
	g_assert_cmpuint(r.create_2d.format, ==, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
	g_assert_cmpuint(r.create_2d.width, ==, 640);
	g_assert_cmpuint(r.create_2d.height, ==, 480);
	gpu_request_finish(&r);
}

static void
test_resource_id_requests(void)
{
	/* six requests that are a header and a resource_id, decoded by one case */
	static const uint32_t types[] = {
		VIRTIO_GPU_CMD_RESOURCE_UNREF,       VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING,
		VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID, VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB,
		VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE,  VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE,
	};
	struct gpu_request r;

	for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
		struct virtio_gpu_resource_unref cmd = {0};
		size_t size = gpu_request_wire_size(types[i]);

		g_assert_cmpuint(size, ==, sizeof(cmd));
		cmd.hdr.type = htole32(types[i]);
		cmd.resource_id = htole32(0x1000 + i);
		cmd.padding = htole32(0xffffffff);
		g_assert_cmpint(decode(&cmd, size, &r), ==, 0);
		g_assert_cmpuint(r.resource.resource_id, ==, 0x1000 + i);
		gpu_request_finish(&r);
		/* the trailing padding is part of the struct: one byte short is refused */
		g_assert_cmpint(decode(&cmd, size - 1, &r), ==, -EBADMSG);
		gpu_request_finish(&r);
	}
}

static void
test_attach_backing_entries(void)
{
	struct {
		struct virtio_gpu_resource_attach_backing cmd;
		struct virtio_gpu_mem_entry e[3];
	} __attribute__((packed)) m = {0};
	struct gpu_request r;

	m.cmd.hdr.type = htole32(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
	m.cmd.resource_id = htole32(9);
	m.cmd.nr_entries = htole32(3);
	for (int i = 0; i < 3; i++) {
		m.e[i].addr = htole64(0x1000 * (i + 1));
		m.e[i].length = htole32(4096);
	}
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, 0);
	g_assert_cmpuint(r.attach_backing.backing.n_entries, ==, 3);
	g_assert_cmpuint(r.attach_backing.backing.entries[2].gpa, ==, 0x3000);
	g_assert_cmpuint(r.attach_backing.backing.entries[2].len, ==, 4096);
	gpu_request_finish(&r);

	/* one entry missing */
	g_assert_cmpint(decode(&m, sizeof(m) - 1, &r), ==, -EBADMSG);
	gpu_request_finish(&r);
	/* above the cap: refused before anything is allocated */
	m.cmd.nr_entries = htole32(GPU_MAX_BACKING_ENTRIES + 1);
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, -E2BIG);
	g_assert_cmpuint(gpu_decode_error_response(-E2BIG), ==,
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	gpu_request_finish(&r);
	/* a count that would overflow 32-bit arithmetic */
	m.cmd.nr_entries = htole32(0xffffffff);
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, -E2BIG);
	gpu_request_finish(&r);
	/* no entries: nothing allocated, and no bytes past the struct needed */
	m.cmd.nr_entries = 0;
	g_assert_cmpint(decode(&m, sizeof(m.cmd), &r), ==, 0);
	g_assert_cmpuint(r.attach_backing.backing.n_entries, ==, 0);
	g_assert_null(r.attach_backing.backing.entries);
	gpu_request_finish(&r);
}

static void
test_create_blob(void)
{
	struct {
		struct virtio_gpu_resource_create_blob cmd;
		struct virtio_gpu_mem_entry e[1];
	} __attribute__((packed)) m = {0};
	struct gpu_request r;

	m.cmd.hdr.type = htole32(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB);
	m.cmd.resource_id = htole32(3);
	m.cmd.blob_mem = htole32(VIRTIO_GPU_BLOB_MEM_GUEST);
	m.cmd.blob_flags = htole32(VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE);
	m.cmd.nr_entries = htole32(1);
	m.cmd.blob_id = htole64(0x1122334455667788ull);
	m.cmd.size = htole64(8192);
	m.e[0].addr = htole64(0x2000);
	m.e[0].length = htole32(8192);
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, 0);
	g_assert_cmpuint(r.create_blob.resource_id, ==, 3);
	g_assert_cmpuint(r.create_blob.blob_mem, ==, VIRTIO_GPU_BLOB_MEM_GUEST);
	g_assert_cmpuint(r.create_blob.blob_flags, ==, VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE);
	g_assert_cmpuint(r.create_blob.blob_id, ==, 0x1122334455667788ull);
	g_assert_cmpuint(r.create_blob.size, ==, 8192);
	g_assert_cmpuint(r.create_blob.backing.n_entries, ==, 1);
	g_assert_cmpuint(r.create_blob.backing.entries[0].gpa, ==, 0x2000);
	g_assert_cmpuint(r.create_blob.backing.entries[0].len, ==, 8192);
	gpu_request_finish(&r);

	/* the entry cut short */
	g_assert_cmpint(decode(&m, sizeof(m) - 1, &r), ==, -EBADMSG);
	g_assert_cmpuint(r.hdr.type, ==, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB);
	gpu_request_finish(&r);
	/* above the cap: -E2BIG even though the entries are missing too */
	m.cmd.nr_entries = htole32(GPU_MAX_BACKING_ENTRIES + 1);
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, -E2BIG);
	gpu_request_finish(&r);
	/* at the cap but missing: -EBADMSG */
	m.cmd.nr_entries = htole32(GPU_MAX_BACKING_ENTRIES);
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, -EBADMSG);
	gpu_request_finish(&r);
}

static void
test_set_scanout_blob(void)
{
	struct virtio_gpu_set_scanout_blob cmd = {0};
	struct gpu_request r;

	cmd.hdr.type = htole32(VIRTIO_GPU_CMD_SET_SCANOUT_BLOB);
	cmd.scanout_id = htole32(1);
	cmd.resource_id = htole32(2);
	cmd.width = htole32(64);
	cmd.height = htole32(32);
	cmd.format = htole32(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM);
	cmd.strides[0] = htole32(256);
	cmd.offsets[0] = htole32(4096);
	g_assert_cmpint(decode(&cmd, sizeof(cmd), &r), ==, 0);
	g_assert_cmpuint(r.set_scanout_blob.strides[0], ==, 256);
	g_assert_cmpuint(r.set_scanout_blob.offsets[0], ==, 4096);
	g_assert_cmpuint(r.set_scanout_blob.format, ==, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM);
	gpu_request_finish(&r);
	g_assert_cmpint(decode(&cmd, 95, &r), ==, -EBADMSG);
	gpu_request_finish(&r);
}

static void
test_ctx_create_name(void)
{
	struct virtio_gpu_ctx_create cmd = {0};
	struct gpu_request r;

	cmd.hdr.type = htole32(VIRTIO_GPU_CMD_CTX_CREATE);
	cmd.nlen = htole32(4);
	memcpy(cmd.debug_name, "mesaXXXX", 8);
	g_assert_cmpint(decode(&cmd, sizeof(cmd), &r), ==, 0);
	g_assert_cmpstr(r.ctx_create.name, ==, "mesa");
	gpu_request_finish(&r);
	cmd.nlen = htole32(65);
	g_assert_cmpint(decode(&cmd, sizeof(cmd), &r), ==, -E2BIG);
	gpu_request_finish(&r);
}

static void
test_submit_3d_bounds(void)
{
	struct {
		struct virtio_gpu_cmd_submit cmd;
		uint32_t dw[4];
	} m = {0};
	struct gpu_request r;

	m.cmd.hdr.type = htole32(VIRTIO_GPU_CMD_SUBMIT_3D);
	m.cmd.size = htole32(16);
	m.dw[3] = 0xabcd;
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, 0);
	g_assert_cmpuint(r.submit_3d.size, ==, 16);
	g_assert_cmpuint(((uint32_t *)r.submit_3d.data)[3], ==, 0xabcd);
	gpu_request_finish(&r);
	m.cmd.size = htole32(17);
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, -EBADMSG);
	gpu_request_finish(&r);
	m.cmd.size = htole32(GPU_MAX_SUBMIT_3D_SIZE + 1);
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, -E2BIG);
	gpu_request_finish(&r);
	m.cmd.size = htole32(GPU_MAX_SUBMIT_3D_SIZE);
	g_assert_cmpint(decode(&m, sizeof(m), &r), ==, -EBADMSG);
	gpu_request_finish(&r);
	/* an empty stream: nothing allocated, and no bytes past the struct needed */
	m.cmd.size = 0;
	g_assert_cmpint(decode(&m, sizeof(m.cmd), &r), ==, 0);
	g_assert_cmpuint(r.submit_3d.size, ==, 0);
	g_assert_null(r.submit_3d.data);
	gpu_request_finish(&r);
}

static void
test_wire_sizes(void)
{
	/* protocol-facts §1 */
	g_assert_cmpuint(gpu_request_wire_size(VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID), ==, 32);
	g_assert_cmpuint(gpu_request_wire_size(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D), ==, 40);
	g_assert_cmpuint(gpu_request_wire_size(VIRTIO_GPU_CMD_RESOURCE_UNREF), ==, 32);
	g_assert_cmpuint(gpu_request_wire_size(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB), ==, 56);
	g_assert_cmpuint(gpu_request_wire_size(VIRTIO_GPU_CMD_SET_SCANOUT_BLOB), ==, 96);
	g_assert_cmpuint(gpu_request_wire_size(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), ==, 32);
	g_assert_cmpuint(gpu_request_wire_size(0x1234), ==, 0);
}

static int
encode(const struct gpu_hdr *hdr, const struct gpu_response *resp, void *out, size_t room)
{
	struct iovec iov = {.iov_base = out, .iov_len = room};
	struct cb_request req = {.out = &iov, .n_out = 1};
	return gpu_response_encode(hdr, resp, &req);
}

static void
test_encode_fence_echo(void)
{
	struct gpu_hdr hdr = {.type = VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID,
			      .flags = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX,
			      .fence_id = 0x123456789ull,
			      .ctx_id = 7,
			      .ring_idx = 3};
	struct gpu_response resp = {.type = VIRTIO_GPU_RESP_OK_RESOURCE_UUID};
	struct virtio_gpu_resp_resource_uuid out;

	for (int i = 0; i < 16; i++)
		resp.uuid.uuid[i] = (uint8_t)i;
	g_assert_cmpint(encode(&hdr, &resp, &out, sizeof(out)), ==, 40);
	g_assert_cmpuint(le32toh(out.hdr.type), ==, VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpuint(le32toh(out.hdr.flags), ==,
			 VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX);
	g_assert_cmpuint(le64toh(out.hdr.fence_id), ==, 0x123456789ull);
	g_assert_cmpuint(le32toh(out.hdr.ctx_id), ==, 7);
	g_assert_cmpuint(out.hdr.ring_idx, ==, 3);
	g_assert_cmpmem(out.uuid, 16, resp.uuid.uuid, 16);

	/* unfenced: nothing echoed */
	hdr.flags = 0;
	g_assert_cmpint(encode(&hdr, &resp, &out, sizeof(out)), ==, 40);
	g_assert_cmpuint(out.hdr.flags, ==, 0);
	g_assert_cmpuint(out.hdr.fence_id, ==, 0);
	/* fenced without ring info: no ring_idx */
	hdr.flags = VIRTIO_GPU_FLAG_FENCE;
	g_assert_cmpint(encode(&hdr, &resp, &out, sizeof(out)), ==, 40);
	g_assert_cmpuint(le32toh(out.hdr.flags), ==, VIRTIO_GPU_FLAG_FENCE);
	g_assert_cmpuint(out.hdr.ring_idx, ==, 0);
}

static void
test_encode_no_room(void)
{
	struct gpu_response resp = {.type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO};
	struct virtio_gpu_ctrl_hdr out;
	uint8_t tiny[8];

	g_assert_cmpint(encode(NULL, &resp, &out, sizeof(out)), ==, -EMSGSIZE);
	g_assert_cmpuint(le32toh(out.type), ==, VIRTIO_GPU_RESP_ERR_UNSPEC);
	g_assert_cmpint(encode(NULL, &resp, tiny, sizeof(tiny)), ==, -EMSGSIZE);
}

static void
test_formats(void)
{
	const struct gpu_format *f = gpu_format_from_virgl(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
	struct gpu_layout l;

	g_assert_nonnull(f);
	g_assert_cmpuint(f->fourcc, ==, 0x34325258); /* XR24 */
	g_assert_false(f->yuv);
	g_assert_null(gpu_format_from_virgl(0));
	g_assert_null(gpu_format_from_virgl(999));

	/* H.264 720p needs 738 rows and a 64-byte aligned stride */
	f = gpu_format_from_virgl(166);
	g_assert_nonnull(f);
	g_assert_true(f->yuv);
	g_assert_cmpint(gpu_layout_host(f, 1280, 720, &l), ==, 0);
	g_assert_cmpuint(l.num_planes, ==, 2);
	g_assert_cmpuint(l.planes[0].rows, ==, 738);
	g_assert_cmpuint(l.planes[0].stride % 64, ==, 0);
	g_assert_cmpuint(l.planes[1].offset, ==, (uint64_t)l.planes[0].stride * 738);
	g_assert_cmpuint(l.planes[1].rows, ==, 369);
	g_assert_cmpuint(l.size % 4096, ==, 0);

	/* I420 chroma strides stay 64-byte aligned */
	f = gpu_format_from_virgl(165);
	g_assert_cmpint(gpu_layout_host(f, 720, 480, &l), ==, 0);
	g_assert_cmpuint(l.num_planes, ==, 3);
	g_assert_cmpuint(l.planes[1].stride % 64, ==, 0);
	g_assert_cmpuint(l.planes[2].offset, >, l.planes[1].offset);
	g_assert_cmpint(gpu_layout_host(f, 0, 480, &l), ==, -EINVAL);
	g_assert_cmpint(gpu_layout_host(f, GPU_MAX_DIMENSION + 1, 480, &l), ==, -EINVAL);

	/* YV12 guest layout: Y, then half-stride planes */
	f = gpu_format_from_virgl(163);
	g_assert_cmpint(gpu_layout_guest(f, 64, 32, 0, &l), ==, 0);
	g_assert_cmpuint(l.planes[1].offset, ==, 64 * 32);
	g_assert_cmpuint(l.planes[1].stride, ==, 32);
	g_assert_cmpuint(l.planes[2].offset, ==, 64 * 32 + 32 * 16);
	g_assert_cmpuint(l.size, ==, 64 * 32 * 3 / 2);
	g_assert_cmpint(gpu_layout_guest(f, 64, 32, 63, &l), ==, -EINVAL);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/gpu-bridge/protocol/short-header", test_short_header);
	cb_test_add("/gpu-bridge/protocol/short-body-keeps-fence", test_short_body_keeps_fence);
	cb_test_add("/gpu-bridge/protocol/unknown-types", test_unknown_types);
	cb_test_add("/gpu-bridge/protocol/create-2d-split", test_create_2d_split_descriptors);
	cb_test_add("/gpu-bridge/protocol/resource-id-requests", test_resource_id_requests);
	cb_test_add("/gpu-bridge/protocol/attach-backing-entries", test_attach_backing_entries);
	cb_test_add("/gpu-bridge/protocol/create-blob", test_create_blob);
	cb_test_add("/gpu-bridge/protocol/set-scanout-blob", test_set_scanout_blob);
	cb_test_add("/gpu-bridge/protocol/ctx-create-name", test_ctx_create_name);
	cb_test_add("/gpu-bridge/protocol/submit-3d-bounds", test_submit_3d_bounds);
	cb_test_add("/gpu-bridge/protocol/wire-sizes", test_wire_sizes);
	cb_test_add("/gpu-bridge/protocol/encode-fence-echo", test_encode_fence_echo);
	cb_test_add("/gpu-bridge/protocol/encode-no-room", test_encode_no_room);
	cb_test_add("/gpu-bridge/formats/layouts", test_formats);
	return g_test_run();
}

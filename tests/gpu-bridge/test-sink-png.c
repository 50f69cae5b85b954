/* SPDX-License-Identifier: MIT */
/* The PNG sink: what the guest displays, read back from the files it writes. */
#include "harness.h"
#include "testutil.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct image {
	uint32_t w, h;
	uint8_t *rgb;
	char *comment;
};

static void
read_png(const char *path, struct image *img)
{
	FILE *f = fopen(path, "rbe");
	png_structp png;
	png_infop info;
	png_textp text;
	int n_text = 0;

	g_assert_nonnull(f);
	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png_create_info_struct(png);
	g_assert_nonnull(png);
	g_assert_nonnull(info);
	g_assert_cmpint(setjmp(png_jmpbuf(png)), ==, 0);
	png_init_io(png, f);
	png_read_info(png, info);
	img->w = png_get_image_width(png, info);
	img->h = png_get_image_height(png, info);
	g_assert_cmpint(png_get_color_type(png, info), ==, PNG_COLOR_TYPE_RGB);
	img->rgb = g_malloc((size_t)img->w * img->h * 3);
	for (uint32_t y = 0; y < img->h; y++)
		png_read_row(png, img->rgb + (size_t)y * img->w * 3, NULL);
	png_read_end(png, info);
	img->comment = NULL;
	if (png_get_text(png, info, &text, &n_text) > 0 && n_text > 0)
		img->comment = g_strdup(text[0].text);
	png_destroy_read_struct(&png, &info, NULL);
	fclose(f);
}

static void
image_free(struct image *img)
{
	g_free(img->rgb);
	g_free(img->comment);
}

static char *
make_dir(void)
{
	char *dir = g_dir_make_tmp("crossbuf-png-XXXXXX", NULL);
	g_assert_nonnull(dir);
	return dir;
}

static void
remove_dir(char *dir)
{
	g_autofree char *path = g_build_filename(dir, "scanout-0.png", NULL);
	g_unlink(path);
	g_rmdir(dir);
	g_free(dir);
}

static bool
png_supported(void)
{
	struct gpu_sink *s;

	if (gpu_sink_png_new("/tmp", false, &s) == -EOPNOTSUPP)
		return false;
	gpu_sink_destroy(s);
	return true;
}

static void
test_rgb(void)
{
	char *dir;
	g_autofree char *path = NULL;
	struct harness h;
	struct harness_options o = {0};
	struct image img;
	uint32_t *px;
	unsigned written, placeholders;

	if (!png_supported()) {
		g_test_skip("built without libpng/libswscale");
		return;
	}
	dir = make_dir();
	o.png_dir = dir;
	harness_init(&h, &o);
	g_assert_cmpint(
		gpu_guest_resource_create_2d(h.guest, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 32, 16),
		==, VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(harness_attach(&h, 1, 32 * 16 * 4, (uint8_t **)&px), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	/* XRGB8888: left half red, right half blue */
	for (int y = 0; y < 16; y++)
		for (int x = 0; x < 32; x++)
			px[y * 32 + x] = x < 16 ? 0x00ff0000 : 0x000000ff;
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 32, 16), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 1, 0, 0, 32, 16), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 1, 0, 0, 32, 16), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	gpu_sink_png_stats(h.sink, &written, &placeholders);
	g_assert_cmpuint(written, ==, 1);
	g_assert_cmpuint(placeholders, ==, 0);

	path = g_build_filename(dir, "scanout-0.png", NULL);
	read_png(path, &img);
	g_assert_cmpuint(img.w, ==, 32);
	g_assert_cmpuint(img.h, ==, 16);
	g_assert_cmpuint(img.rgb[0], ==, 255);
	g_assert_cmpuint(img.rgb[1], ==, 0);
	g_assert_cmpuint(img.rgb[2], ==, 0);
	g_assert_cmpuint(img.rgb[31 * 3 + 2], ==, 255);
	g_assert_cmpuint(img.rgb[31 * 3 + 0], ==, 0);
	g_assert_null(img.comment);
	image_free(&img);
	harness_finish(&h);
	remove_dir(dir);
}

static void
test_nv12(void)
{
	char *dir;
	g_autofree char *path = NULL;
	struct harness h;
	struct harness_options o = {0};
	struct virtio_gpu_resource_create_3d c = {0};
	struct image img;
	uint8_t *guest;

	if (!png_supported()) {
		g_test_skip("built without libpng/libswscale");
		return;
	}
	dir = make_dir();
	o.png_dir = dir;
	harness_init(&h, &o);
	c.resource_id = htole32(1);
	c.target = htole32(2);
	c.format = htole32(166);
	c.width = htole32(64);
	c.height = htole32(32);
	c.depth = htole32(1);
	c.array_size = htole32(1);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(harness_attach(&h, 1, 64 * 32 * 3 / 2, &guest), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	/* mid grey: Y 126, neutral chroma -> about (128, 128, 128) in limited range */
	memset(guest, 126, 64 * 32);
	memset(guest + 64 * 32, 128, 64 * 16);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 64, 32), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 1, 0, 0, 64, 32), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 1, 0, 0, 64, 32), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	path = g_build_filename(dir, "scanout-0.png", NULL);
	read_png(path, &img);
	g_assert_cmpuint(img.w, ==, 64);
	for (int i = 0; i < 3; i++) {
		g_assert_cmpint(img.rgb[i], >=, 120);
		g_assert_cmpint(img.rgb[i], <=, 136);
	}
	image_free(&img);
	harness_finish(&h);
	remove_dir(dir);
}

static void
test_protected_placeholder(void)
{
	char *dir;
	g_autofree char *path = NULL;
	struct harness h;
	struct harness_options o = {0};
	struct gpu_request req = {0};
	struct gpu_response resp;
	struct image img;
	unsigned written, placeholders;
	int probe = cb_test_memfd_secret(4096);

	if (!png_supported() || probe < 0) {
		g_test_skip("built without libpng/libswscale, or no memfd_secret");
		return;
	}
	close(probe);
	dir = make_dir();
	o.png_dir = dir;
	harness_init(&h, &o);
	req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_2D;
	req.create_2d.resource_id = 1;
	req.create_2d.format = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM;
	req.create_2d.width = 48;
	req.create_2d.height = 24;
	g_assert_cmpuint(gpu_device_execute(h.dev, &req, GPU_CREATE_PROTECTED, &resp), ==,
			 VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 1, 0, 0, 48, 24), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 1, 0, 0, 48, 24), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	gpu_sink_png_stats(h.sink, &written, &placeholders);
	g_assert_cmpuint(written, ==, 1);
	g_assert_cmpuint(placeholders, ==, 1);
	path = g_build_filename(dir, "scanout-0.png", NULL);
	read_png(path, &img);
	g_assert_cmpuint(img.w, ==, 48);
	g_assert_cmpuint(img.h, ==, 24);
	g_assert_cmpstr(img.comment, ==, "crossbuf: protected content withheld");
	image_free(&img);
	harness_finish(&h);
	remove_dir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/gpu-bridge/sink-png/rgb", test_rgb);
	cb_test_add("/gpu-bridge/sink-png/nv12", test_nv12);
	cb_test_add("/gpu-bridge/sink-png/protected-placeholder", test_protected_placeholder);
	return g_test_run();
}

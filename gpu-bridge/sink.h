/* SPDX-License-Identifier: MIT */
/*
 * Display sinks: where SET_SCANOUT, SET_SCANOUT_BLOB and RESOURCE_FLUSH end up.
 *
 * The device hands a sink a frame description for every flush that touches a scanout. The
 * device enforces protection itself: a sink that is not authorized gets frames of protected
 * resources with data == NULL and must show a placeholder instead. An authorized sink (a
 * compositor with a protected path) gets the pixels.
 *
 * The guest's cursor (the cursor queue's UPDATE_CURSOR and MOVE_CURSOR) reaches a sink
 * through the optional cursor hook, already read out of the cursor resource.
 *
 * Implementations: sink-count.c (counts calls, for tests), sink-png.c (writes what the
 * guest displays to PNG files so a person can look at it; no cursor) and
 * vhost-gpu-display.c (QEMU's vhost-user-gpu display protocol).
 */
#pragma once

#include "formats.h"
#include "protocol.h"

#include <stdbool.h>
#include <stdint.h>

struct gpu_sink;

struct gpu_sink_frame {
	uint32_t scanout_id;
	uint32_t resource_id;
	/* The image being scanned out: format (layout->fourcc), size, planes from data. */
	const struct gpu_layout *layout;
	const uint8_t *data;    /* NULL when withheld (protected, sink not authorized) */
	struct gpu_rect src;    /* the part of the image the scanout shows */
	struct gpu_rect damage; /* what changed, in image coordinates */
	bool protected_;
};

/* A cursor image is always 64x64 pixels (virtio-gpu's cursor size, and QEMU's). */
#define GPU_CURSOR_SIZE 64

/*
 * The cursor of one scanout. x, y are the guest's position (virtio_gpu_cursor_pos, passed
 * through as they came: a Linux guest sends its cursor plane's crtc_x/crtc_y, which wrap
 * below 0); hot_x, hot_y the hot spot inside the image.
 *
 * image is set only when the shape changed (UPDATE_CURSOR with a usable resource): the 64x64
 * pixels as ARGB8888 (uint32_t in host order, alpha in bits 24..31; DRM_FORMAT_ARGB8888),
 * rows of 64 pixels, valid for the call only. Without image the shape is the last one given
 * (a move), or the cursor is hidden (visible false: UPDATE_CURSOR to resource 0 or to a
 * resource that cannot be a cursor, or the cursor's resource was freed or the device reset).
 */
struct gpu_sink_cursor {
	uint32_t scanout_id;
	uint32_t x, y;
	uint32_t hot_x, hot_y;
	bool visible;
	const uint32_t *image; /* GPU_CURSOR_SIZE x GPU_CURSOR_SIZE, or NULL */
};

struct gpu_sink_ops {
	/* A scanout was set (enabled, showing src of resource_id) or disabled. */
	void (*set_scanout)(struct gpu_sink *sink, uint32_t scanout_id, bool enabled,
			    uint32_t resource_id, const struct gpu_rect *src);
	/* Returns 0, or a negative errno (the device still answers the guest OK: display
	 * trouble is the host's). */
	int (*flush)(struct gpu_sink *sink, const struct gpu_sink_frame *frame);
	/* The cursor changed shape, moved or was hidden. Optional: NULL ignores cursors. */
	void (*cursor)(struct gpu_sink *sink, const struct gpu_sink_cursor *cursor);
	void (*destroy)(struct gpu_sink *sink);
};

struct gpu_sink {
	const struct gpu_sink_ops *ops;
	bool authorized; /* may show protected content */
};

static inline void
gpu_sink_destroy(struct gpu_sink *sink)
{
	if (sink != NULL)
		sink->ops->destroy(sink);
}

struct gpu_sink_counts {
	unsigned set_scanouts; /* enabled */
	unsigned disables;
	unsigned flushes;
	unsigned withheld;        /* flushes of protected content shown as a placeholder */
	unsigned protected_shown; /* flushes of protected content shown (authorized sinks) */
	uint32_t last_resource_id;
	uint32_t last_fourcc;
	uint32_t last_pixel; /* first 4 bytes of the damage's first row, if data was given */
	struct gpu_rect last_damage;
	/* cursor calls */
	unsigned cursor_updates;            /* with an image */
	unsigned cursor_moves;              /* visible, no image */
	unsigned cursor_hides;              /* not visible */
	struct gpu_sink_cursor last_cursor; /* image is NULL here: see last_cursor_image */
	uint32_t last_cursor_image[GPU_CURSOR_SIZE * GPU_CURSOR_SIZE]; /* of the last update */
};

int gpu_sink_count_new(bool authorized, struct gpu_sink **ret_sink);
void gpu_sink_count_get(struct gpu_sink *sink, struct gpu_sink_counts *ret_counts);

/*
 * Writes every flushed scanout to dir/scanout-N.png (overwritten each time; RGB, YUV
 * converted with libswscale). Protected frames without authorization are written as a grey
 * placeholder with a tEXt note saying the content was withheld, and counted.
 * -EOPNOTSUPP when built without libpng/libswscale.
 */
int gpu_sink_png_new(const char *dir, bool authorized, struct gpu_sink **ret_sink);
/* Frames written, and how many of them were placeholders. */
void gpu_sink_png_stats(struct gpu_sink *sink, unsigned *ret_written, unsigned *ret_placeholders);

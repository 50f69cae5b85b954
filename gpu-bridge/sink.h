/* SPDX-License-Identifier: MIT */
/*
 * Display sinks: where SET_SCANOUT, SET_SCANOUT_BLOB and RESOURCE_FLUSH end up.
 *
 * The device hands a sink a frame description for every flush that touches a scanout. The
 * device enforces protection itself: a sink that is not authorized gets frames of protected
 * resources with data == NULL and must show a placeholder instead. An authorized sink (a
 * compositor with a protected path) gets the pixels.
 *
 * Implementations: sink-count.c (counts calls, for tests) and sink-png.c (writes what the
 * guest displays to PNG files so a person can look at it).
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

struct gpu_sink_ops {
	/* A scanout was set (enabled, showing src of resource_id) or disabled. */
	void (*set_scanout)(struct gpu_sink *sink, uint32_t scanout_id, bool enabled,
			    uint32_t resource_id, const struct gpu_rect *src);
	/* Returns 0, or a negative errno (the device still answers the guest OK: display
	 * trouble is the host's). */
	int (*flush)(struct gpu_sink *sink, const struct gpu_sink_frame *frame);
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

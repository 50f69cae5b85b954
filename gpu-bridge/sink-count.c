/* SPDX-License-Identifier: MIT */
/* A sink that only counts what reaches it, for tests. */
#include "sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct count_sink {
	struct gpu_sink base;
	struct gpu_sink_counts counts;
};

static void
count_set_scanout(struct gpu_sink *sink, uint32_t scanout_id, bool enabled, uint32_t resource_id,
		  const struct gpu_rect *src)
{
	struct count_sink *s = (struct count_sink *)sink;

	if (enabled)
		s->counts.set_scanouts++;
	else
		s->counts.disables++;
}

static int
count_flush(struct gpu_sink *sink, const struct gpu_sink_frame *frame)
{
	struct count_sink *s = (struct count_sink *)sink;
	const struct gpu_layout *l = frame->layout;

	s->counts.flushes++;
	s->counts.last_resource_id = frame->resource_id;
	s->counts.last_fourcc = l->fourcc;
	s->counts.last_damage = frame->damage;
	s->counts.last_pixel = 0;
	if (frame->protected_) {
		if (frame->data == NULL)
			s->counts.withheld++;
		else
			s->counts.protected_shown++;
	}
	if (frame->data != NULL && l->num_planes > 0 && frame->damage.width > 0 &&
	    frame->damage.height > 0) {
		const struct gpu_format *f = gpu_format_from_fourcc(l->fourcc);
		uint64_t off = l->planes[0].offset +
			       (uint64_t)frame->damage.y * l->planes[0].stride +
			       (uint64_t)frame->damage.x * (f != NULL ? f->cpp[0] : 4);
		if (off + 4 <= l->size)
			memcpy(&s->counts.last_pixel, frame->data + off, 4);
	}
	return 0;
}

static void
count_cursor(struct gpu_sink *sink, const struct gpu_sink_cursor *cursor)
{
	struct count_sink *s = (struct count_sink *)sink;

	if (cursor->image != NULL) {
		s->counts.cursor_updates++;
		memcpy(s->counts.last_cursor_image, cursor->image,
		       sizeof(s->counts.last_cursor_image));
	} else if (cursor->visible) {
		s->counts.cursor_moves++;
	} else {
		s->counts.cursor_hides++;
	}
	s->counts.last_cursor = *cursor;
	s->counts.last_cursor.image = NULL;
}

static void
count_destroy(struct gpu_sink *sink)
{
	free(sink);
}

static const struct gpu_sink_ops count_ops = {
	.set_scanout = count_set_scanout,
	.flush = count_flush,
	.cursor = count_cursor,
	.destroy = count_destroy,
};

int
gpu_sink_count_new(bool authorized, struct gpu_sink **ret_sink)
{
	struct count_sink *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->base.ops = &count_ops;
	s->base.authorized = authorized;
	*ret_sink = &s->base;
	return 0;
}

void
gpu_sink_count_get(struct gpu_sink *sink, struct gpu_sink_counts *ret_counts)
{
	*ret_counts = ((struct count_sink *)sink)->counts;
}

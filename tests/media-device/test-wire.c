/* SPDX-License-Identifier: MIT */
/* The virtio-media wire structs: layouts the static_asserts cannot express. */
#include "testutil.h"
#include "virtio-media.h"

#include <string.h>

static void
test_event_sizing(void)
{
	/* The Linux driver sizes every eventq buffer for DQBUF: every event must fit. */
	g_assert_cmpuint(VIRTIO_MEDIA_EVENT_MAX_SIZE, ==, 608);
	g_assert_cmpuint(sizeof(struct virtio_media_event_error), <=, VIRTIO_MEDIA_EVENT_MAX_SIZE);
	g_assert_cmpuint(sizeof(struct virtio_media_event_event), <=, VIRTIO_MEDIA_EVENT_MAX_SIZE);
}

static void
test_ioctl_codes(void)
{
	/* code is _IOC_NR of the VIDIOC_* value (protocol-facts §2). */
	g_assert_cmpuint(_IOC_NR(VIDIOC_G_FMT), ==, 4);
	g_assert_cmpuint(_IOC_NR(VIDIOC_QBUF), ==, 15);
	g_assert_cmpuint(_IOC_SIZE(VIDIOC_QBUF), ==, sizeof(struct v4l2_buffer));
	g_assert_cmpuint(_IOC_DIR(VIDIOC_STREAMON), ==, _IOC_WRITE);
}

static void
test_memory_slots(void)
{
	g_assert_cmpuint(VIRTIO_MEDIA_MMAP, ==, 1);
	g_assert_cmpuint(VIRTIO_MEDIA_SHARED_PAGES, ==, 2);
	g_assert_cmpuint(VIRTIO_MEDIA_OBJECT, ==, 4);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/wire/event-sizing", test_event_sizing);
	cb_test_add("/media-device/wire/ioctl-codes", test_ioctl_codes);
	cb_test_add("/media-device/wire/memory-slots", test_memory_slots);
	return g_test_run();
}

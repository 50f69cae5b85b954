/* SPDX-License-Identifier: MIT */
/*
 * The decoder's V4L2 controls through the whole device and the user-space driver library:
 * enumeration, types and flags, and the errors (with error_idx) of the control ioctls.
 */
#include "harness.h"

#include <errno.h>
#include <string.h>

/* Runs an extended-control ioctl and returns its result; *ret_idx gets error_idx. */
static int
ext_ctrls(struct vmdrv_session *s, unsigned long request, uint32_t which,
	  struct v4l2_ext_control *ctrls, uint32_t count, uint32_t *ret_idx)
{
	struct v4l2_ext_controls c = {
		.which = which, .count = count, .error_idx = 0xdead, .controls = ctrls};
	int r = vmdrv_ioctl(s, request, &c);

	*ret_idx = c.error_idx;
	return r;
}

static void
test_error_idx(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_ext_control ec[3] = {{.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE},
					 {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE},
					 {.id = V4L2_CID_MIN_BUFFERS_FOR_OUTPUT}};
	uint32_t idx;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);

	/* An unknown control fails validation: count for G and S, its index for TRY. */
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, 0, ec, 3, &idx), ==, -EINVAL);
	g_assert_cmpuint(idx, ==, 3);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, ec, 3, &idx), ==, -EINVAL);
	g_assert_cmpuint(idx, ==, 3);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, 0, ec, 3, &idx), ==, -EINVAL);
	g_assert_cmpuint(idx, ==, 2);

	/* A read-only control: EACCES, at count for S and at the control for TRY. */
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, ec, 2, &idx), ==, -EACCES);
	g_assert_cmpuint(idx, ==, 2);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, V4L2_CTRL_CLASS_USER, ec, 2, &idx), ==,
			-EACCES);
	g_assert_cmpuint(idx, ==, 0);

	/* Default values can be read, not set; other classes are not the decoder's. */
	ec[0].value = -1;
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, V4L2_CTRL_WHICH_DEF_VAL, ec, 1, &idx), ==,
			0);
	g_assert_cmpint(ec[0].value, >=, 1);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, V4L2_CTRL_WHICH_DEF_VAL, ec, 1, &idx), ==,
			-EINVAL);
	g_assert_cmpuint(idx, ==, 1);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, V4L2_CTRL_CLASS_CODEC, ec, 1, &idx), ==,
			-EINVAL);
	g_assert_cmpuint(idx, ==, 1);

	/* No control at all: nothing to refuse. */
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, 0, ec, 0, &idx), ==, 0);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, 0, ec, 0, &idx), ==, 0);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, ec, 0, &idx), ==, 0);

	vmdrv_close(s);
	harness_fini(&h);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/controls/error-idx", test_error_idx);
	return g_test_run();
}

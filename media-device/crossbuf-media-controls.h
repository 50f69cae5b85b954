/* SPDX-License-Identifier: MIT */
/*
 * crossbuf-media-controls.h: the driver-private V4L2 controls of crossbuf's virtio-media
 * decoder (crossbuf-media), for guest applications.
 *
 * The controls are counters of one session (one open of the video node), from its OPEN:
 * read-only, volatile, of type V4L2_CTRL_TYPE_INTEGER64, in the user class. Read them with
 * VIDIOC_G_EXT_CTRLS (struct v4l2_ext_control.value64); VIDIOC_G_CTRL answers EINVAL for
 * 64-bit controls, as in V4L2, and every attempt to set one is EACCES. One G_EXT_CTRLS call
 * reads all the controls it names at the same instant. A counter never decreases during a
 * session; the codec's counters (FRAMES_DECODED, FRAMES_COPIED and their share of
 * BYTES_COPIED) are up to date when a frame's CAPTURE buffer is returned, and after the LAST
 * buffer of a drain they cover every frame of the stream.
 *
 * Why CROSSBUF_CID_BASE is V4L2_CID_USER_BASE + 0x1f00: Linux gives driver-private controls
 * of the user class ranges of 16 ids at V4L2_CID_USER_BASE + 0x1000 + 0x10 * n
 * (V4L2_CID_USER_MEYE_BASE, ..._CCS_BASE, ...; linux/v4l2-controls.h), allocated from the
 * bottom and still far below 0x1f00, so a guest application that includes this header with
 * a newer <linux/v4l2-controls.h> does not meet a clash. The range is crossbuf's: no Linux
 * driver answers for it, and the decoder answers EINVAL for the ids of the range it does
 * not define.
 *
 * Only <linux/v4l2-controls.h> is needed: the header is C99 and works in C++.
 */
#ifndef CROSSBUF_MEDIA_CONTROLS_H
#define CROSSBUF_MEDIA_CONTROLS_H

#include <linux/v4l2-controls.h>

/* The first id of crossbuf's range (16 ids: up to CROSSBUF_CID_BASE + 15). */
#define CROSSBUF_CID_BASE (V4L2_CID_USER_BASE + 0x1f00)

/*
 * Frames the codec finished (display order), corrupt ones included: each is returned in a
 * CAPTURE buffer unless a seek or STREAMOFF dropped it.
 */
#define CROSSBUF_CID_FRAMES_DECODED (CROSSBUF_CID_BASE + 0)
/*
 * Frames the codec could not decode straight into the CAPTURE buffer and copied: with
 * libavcodec, every NV12/NV12M frame (the chroma interleaving copy), none for YUV420 and
 * YUV420M.
 */
#define CROSSBUF_CID_FRAMES_COPIED  (CROSSBUF_CID_BASE + 1)
/*
 * Bytes of decoded pictures the host copied on their way to the CAPTURE buffers: the
 * codec's copies (NV12 chroma interleaving: 2 x ceil(w / 2) x ceil(h / 2) bytes a frame for
 * a visible rectangle reaching column w and row h; a whole frame when the codec cannot
 * decode in place) plus, for SHARED_PAGES CAPTURE buffers, the bytes copied from the
 * device's bounce buffer into the guest pages (each plane's sizeimage, as far as the
 * buffer's pages reach).
 */
#define CROSSBUF_CID_BYTES_COPIED   (CROSSBUF_CID_BASE + 2)
/*
 * Lookups of virtio object UUIDs (VIRTIO_MEDIA_OBJECT planes) in the crossbuf registry;
 * QBUF of a UUID already resolved for that buffer index does not look it up again.
 */
#define CROSSBUF_CID_OBJECT_LOOKUPS (CROSSBUF_CID_BASE + 3)
/*
 * CAPTURE buffers returned with V4L2_BUF_FLAG_ERROR: corrupt frames, frames that got no
 * picture, and buffers whose registry entry went away.
 */
#define CROSSBUF_CID_FRAMES_ERROR   (CROSSBUF_CID_BASE + 4)

#endif

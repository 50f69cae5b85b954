/* SPDX-License-Identifier: MIT */
/*
 * The media device's test bench: a device wired to the user-space driver library in the
 * same process, with memfd-backed guest memory, a memfd-backed shared memory region 0 and
 * optionally an embedded registry with a memfd exporter. Decoding uses the fake codec.
 */
#pragma once

#include "device.h"
#include "fake-codec.h"
#include "guest-mem.h"
#include "testutil.h"
#include "vmdrv.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define HARNESS_GUEST_GPA  0x100000ull
#define HARNESS_GUEST_SIZE (32u << 20)
#define HARNESS_SHM_SIZE   (64u << 20)

struct crossbuf_registry;
struct crossbuf_client;

struct harness {
	struct media_device *dev;
	struct vmdrv *drv;
	struct guest_mem gm;
	int guest_fd;
	uint8_t *guest;
	uint64_t guest_next;
	uint8_t *shm;
	uint64_t shm_next;
	unsigned shm_maps;
	/* with a registry */
	struct crossbuf_registry *registry;
	struct crossbuf_client *dev_client;
	struct crossbuf_client *exporter;
	FILE *record; /* CROSSBUF_MEDIA_RECORD: requests recorded for the fuzz corpus */
};

/* device_rights: CROSSBUF_RIGHT_* of the device's client; registry false: no client. */
void harness_init(struct harness *h, bool registry, uint32_t device_rights);
void harness_fini(struct harness *h);

/* Guest memory for SHARED_PAGES: gpa of len fresh bytes (filled with fill). */
uint64_t harness_guest_alloc(struct harness *h, size_t len, uint8_t fill);
void *harness_guest_ptr(struct harness *h, uint64_t gpa);

/* --- Decoding helpers (g_assert on failure) -------------------------------------------- */

struct stream_out {
	unsigned count;
	void *ptr[8]; /* MMAP OUTPUT buffers as mapped through region 0 */
	uint64_t addr[8];
	uint32_t size;
};

/* S_FMT(OUTPUT, coded), REQBUFS(OUTPUT, MMAP, count), map them, STREAMON; no events. */
void out_setup_coded(struct vmdrv_session *s, uint32_t coded, unsigned count, struct stream_out *o);
/* Subscribes SOURCE_CHANGE and EOS, then out_setup_coded() with H.264. */
void out_setup_mmap(struct vmdrv_session *s, unsigned count, struct stream_out *o);
/* Writes n fake frames (w x h, fills) into OUTPUT buffer index and queues it. */
void out_queue_frames(struct harness *h, struct vmdrv_session *s, struct stream_out *o,
		      unsigned index, uint16_t w, uint16_t h_, const uint8_t *fills, unsigned n,
		      uint8_t flags, uint64_t ts_us);
/* Dequeues one OUTPUT buffer (asserts success) and returns its index. */
unsigned out_dequeue(struct vmdrv_session *s);
/* Waits for a SOURCE_CHANGE event. */
void wait_source_change(struct vmdrv_session *s);

struct stream_cap {
	uint32_t pixfmt;
	unsigned count;
	unsigned num_planes;
	struct v4l2_pix_format_mplane fmt;
	void *ptr[16][3];
	uint64_t addr[16][3];
};

/* G_FMT, S_FMT(pixfmt), REQBUFS(CAPTURE, MMAP, count), map, queue all, STREAMON. */
void cap_setup_mmap(struct vmdrv_session *s, uint32_t pixfmt, unsigned count, struct stream_cap *c);
void cap_queue(struct vmdrv_session *s, struct stream_cap *c, unsigned index);
/* DQBUF(CAPTURE): returns 0 and fills b/planes, or the negative errno. */
int cap_dequeue(struct vmdrv_session *s, struct v4l2_buffer *b, struct v4l2_plane *planes);
/* Checks a decoded NV12/YUV420 picture (planes as the fake codec paints them). */
void check_picture(const struct v4l2_pix_format_mplane *f, uint32_t w, uint32_t h,
		   uint8_t *const planes[3], const uint32_t offsets[3], uint8_t fill);
/* Unmaps a capture setup's mappings. */
void cap_unmap(struct harness *h, struct stream_cap *c);
void out_unmap(struct harness *h, struct stream_out *o);

/* SPDX-License-Identifier: MIT */
/*
 * The decode-to-display pipeline, as a guest with a V4L2 video player and a KMS display
 * runs it:
 *   1. the clip's coded frames go into MMAP OUTPUT buffers of a virtio-media decoder
 *      session (one frame per buffer, its sequence number as timestamp);
 *   2. on SOURCE_CHANGE, NV12 scanout resources are created on virtio-gpu
 *      (RESOURCE_CREATE_3D), named with RESOURCE_ASSIGN_UUID and queued as OBJECT CAPTURE
 *      buffers: the decoder resolves the UUIDs through crossbufd and writes into the GPU's
 *      memory;
 *   3. every decoded frame is put on scanout 0 (SET_SCANOUT + RESOURCE_FLUSH); the buffer
 *      shown before goes back to the decoder, as a page flip frees the old front buffer;
 *   4. resolution changes reallocate the resources; the end of the clip drains the decoder
 *      (DECODER_CMD STOP, the LAST buffer).
 * The guest never maps a frame. What is on the display is checked from the host side, as a
 * compositor sees it: the scanout resource resolved through crossbufd (with the protected
 * right when the run is protected), its visible rectangle hashed like ffmpeg's framemd5 of
 * NV12, and its rows fingerprinted to search guest memory for them at the end.
 */
#pragma once

#include "vm.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct pipeline_options {
	const char *input;       /* the clip */
	const char *framemd5;    /* expected md5s (ffmpeg -pix_fmt nv12 -f framemd5), or NULL */
	const char *out_dir;     /* snapshots go here, or NULL */
	const char *png_dir;     /* where crossbuf-gpu writes scanout-0.png, or NULL if unknown */
	const char *broker;      /* crossbufd, for the display's lookups and stats, or NULL */
	const char *domain;      /* registry domain, NULL for the default */
	bool protected_;         /* the scanout resources must be protected */
	bool realtime;           /* display at the clip's own pace */
	bool progress;           /* a line per displayed frame on stdout */
	unsigned extra_buffers;  /* CAPTURE buffers beyond the decoder's minimum */
	unsigned max_packets;    /* feed only this many coded frames (0: all) */
	unsigned snapshot_every; /* keep a PNG every N frames (0: only the last) */
};

/* Latencies kept for the percentiles; later frames only count toward the mean and max. */
#define PIPELINE_MAX_LATENCIES 100000

struct pipeline_result {
	char codec[32];
	uint32_t width, height; /* of the last resolution */
	unsigned resolutions;   /* SOURCE_CHANGEs acted on */
	unsigned packets;       /* coded frames queued */
	unsigned frames;        /* frames displayed */
	unsigned error_frames;  /* CAPTURE buffers flagged ERROR */
	unsigned resources;     /* scanout resources created */
	double seconds;         /* first packet queued to last frame displayed */
	/* queue of the packet -> its frame on scanout, in ms */
	double latency_p50, latency_p95, latency_max, latency_mean;

	/* the decoder's counters (read-only controls), when it has them */
	bool have_decoder_stats;
	uint64_t decoded, frames_copied, bytes_copied, decoder_lookups, decoder_errors;
	/* crossbufd's counters during the run, when the display could read them */
	bool have_broker_stats;
	uint64_t broker_lookups, broker_exports, broker_removes;

	/* framemd5 */
	bool md5_checked;
	unsigned md5_expected, md5_matched, md5_mismatched;
	/* frame rows searched for in guest-visible memory */
	bool leak_checked;
	uint64_t scanned_bytes;
	size_t rows_fingerprinted;
	size_t leaked_rows;
	uint64_t first_leak_offset;

	unsigned snapshots;
	char error[256]; /* why the run failed */
};

/* Runs the pipeline. 0 when every frame was displayed and every check passed. */
int pipeline_run(struct guest_vm *vm, const struct pipeline_options *o,
		 struct pipeline_result *ret);
void pipeline_print_summary(FILE *f, const struct pipeline_options *o,
			    const struct pipeline_result *r);

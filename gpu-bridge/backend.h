/* SPDX-License-Identifier: MIT */
/*
 * Allocation backends: where a virtio-gpu resource's host memory comes from. One small
 * function table, one file per implementation:
 *
 *   backend-memfd.c  sealed memfds (memfd_secret for protected resources); no GPU needed.
 *   backend-gbm.c    GBM buffer objects on a render node, exported as dma-bufs.
 *   backend-virgl.c  virglrenderer resources (3D rendering, HOST3D blobs).
 *
 * The device core (device.c) never includes a GBM or virglrenderer header.
 *
 * Ownership: a backend owns the buffers it creates until buffer_destroy(); a buffer owns
 * its fd. Everything here runs on the device's thread.
 */
#pragma once

#include "formats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct gpu_backend;

enum gpu_buffer_kind {
	GPU_BUFFER_IMAGE = 0, /* an image with a format (2D, or a 3D 2D-texture) */
	GPU_BUFFER_BLOB = 1,  /* opaque bytes (RESOURCE_CREATE_BLOB, HOST3D memory) */
};

struct gpu_create_3d_args {
	uint32_t target, format, bind, width, height, depth, array_size, last_level;
	uint32_t nr_samples, flags;
};

struct gpu_buffer_desc {
	enum gpu_buffer_kind kind;
	uint32_t resource_id;
	/* GPU_BUFFER_IMAGE */
	const struct gpu_format *format;
	uint32_t width, height;
	/* GPU_BUFFER_BLOB */
	uint64_t size;
	uint32_t ctx_id;
	uint64_t blob_id;
	uint32_t blob_mem, blob_flags;
	/* RESOURCE_CREATE_3D parameters, for backends that render (NULL otherwise) */
	const struct gpu_create_3d_args *args_3d;
	/* Protected content: never CPU-mapped into anything a guest reaches. */
	bool protected_;
	/* May become a scanout (GBM_BO_USE_SCANOUT-like hints). */
	bool scanout;
	/*
	 * BLOB_MEM_HOST3D_GUEST: the guest backing, resolved (borrowed; stays valid until
	 * buffer_destroy()). Renderers that need it at creation take it from here.
	 */
	const struct iovec *backing;
	unsigned n_backing;
};

struct gpu_buffer {
	struct gpu_backend *backend;
	struct gpu_layout layout; /* fourcc 0 for blobs */
	int fd;                   /* owned: dma-buf, sealed memfd or memfd_secret; -1 if none */
	bool protected_;
	bool cpu_mappable; /* begin_cpu() can work */
	uint32_t map_info; /* VIRTIO_GPU_MAP_CACHE_* for MAP_BLOB */
	void *priv;        /* the backend's */
};

enum gpu_cpu_access {
	GPU_CPU_READ = 1u << 0,
	GPU_CPU_WRITE = 1u << 1,
};

/* A region of a resource, in pixels (images) or bytes (blobs: x is the offset, w the size). */
struct gpu_transfer {
	uint32_t x, y, w, h;
	uint64_t offset;       /* where the box starts in the guest backing */
	uint32_t stride;       /* guest row pitch of plane 0 (0: tight) */
	uint32_t layer_stride; /* 3D only */
	uint32_t level;
	uint32_t ctx_id;
};

struct gpu_backend_ops {
	const char *name;
	void (*destroy)(struct gpu_backend *backend);

	/* -EINVAL for an unsupported description, -ENOMEM, or a backend error. */
	int (*buffer_create)(struct gpu_backend *backend, const struct gpu_buffer_desc *desc,
			     struct gpu_buffer **ret_buffer);
	void (*buffer_destroy)(struct gpu_backend *backend, struct gpu_buffer *buffer);

	/*
	 * CPU access to the whole buffer, planes at layout offsets, bracketed by begin/end
	 * (dma-buf sync). -EPERM for protected buffers unless allow_protected.
	 */
	int (*begin_cpu)(struct gpu_backend *backend, struct gpu_buffer *buffer, unsigned access,
			 bool allow_protected, uint8_t **ret_base);
	void (*end_cpu)(struct gpu_backend *backend, struct gpu_buffer *buffer, unsigned access);

	/*
	 * Optional: the backend moves the data itself (virglrenderer transfers). NULL means
	 * the device copies through begin_cpu().
	 */
	int (*transfer)(struct gpu_backend *backend, struct gpu_buffer *buffer, bool to_host,
			const struct gpu_transfer *t, const struct iovec *backing, unsigned n);
	/* Optional: guest backing attached to / detached from a buffer. */
	int (*attach_backing)(struct gpu_backend *backend, struct gpu_buffer *buffer,
			      const struct iovec *backing, unsigned n);
	void (*detach_backing)(struct gpu_backend *backend, struct gpu_buffer *buffer);

	/* Optional 3D: NULL in backends without a renderer (those commands then fail). */
	int (*ctx_create)(struct gpu_backend *backend, uint32_t ctx_id, uint32_t context_init,
			  const char *name);
	void (*ctx_destroy)(struct gpu_backend *backend, uint32_t ctx_id);
	void (*ctx_attach)(struct gpu_backend *backend, uint32_t ctx_id, struct gpu_buffer *buffer);
	void (*ctx_detach)(struct gpu_backend *backend, uint32_t ctx_id, struct gpu_buffer *buffer);
	int (*submit_3d)(struct gpu_backend *backend, uint32_t ctx_id, void *cmds, uint32_t size);
	/* Capability sets: returns how many; info and data by index / id. */
	uint32_t (*num_capsets)(struct gpu_backend *backend);
	int (*capset_info)(struct gpu_backend *backend, uint32_t index, uint32_t *ret_id,
			   uint32_t *ret_max_version, uint32_t *ret_max_size);
	int (*capset)(struct gpu_backend *backend, uint32_t id, uint32_t version, void *buf,
		      uint32_t size);
	/*
	 * Optional: waits until the work submitted so far on ctx_id is done, so a fenced
	 * request can be answered (the memfd and GBM backends are synchronous).
	 */
	int (*sync)(struct gpu_backend *backend, uint32_t ctx_id);
};

struct gpu_backend {
	const struct gpu_backend_ops *ops;
};

static inline void
gpu_backend_destroy(struct gpu_backend *backend)
{
	if (backend != NULL)
		backend->ops->destroy(backend);
}

/* Software buffers in memfds. */
int gpu_backend_memfd_new(struct gpu_backend **ret_backend);
/*
 * GBM on render_node (NULL: the first /dev/dri/renderD* that opens). -ENODEV when there is
 * none, -EOPNOTSUPP when built without GBM.
 */
int gpu_backend_gbm_new(const char *render_node, struct gpu_backend **ret_backend);
/* virglrenderer with EGL on render_node (NULL: its own choice). -EOPNOTSUPP without it. */
int gpu_backend_virgl_new(const char *render_node, struct gpu_backend **ret_backend);

enum gpu_backend_choice {
	GPU_BACKEND_AUTO = 0,
	GPU_BACKEND_MEMFD = 1,
	GPU_BACKEND_GBM = 2,
	GPU_BACKEND_VIRGL = 3,
};

/* "auto", "memfd", "gbm", "virgl" -> choice; -EINVAL for anything else. */
int gpu_backend_choice_from_string(const char *s, enum gpu_backend_choice *ret_choice);

/*
 * Creates the backend asked for; AUTO tries GBM on a render node, then memfd. The sentence
 * written to reason (always, also on failure) says which backend runs and why, for the
 * embedder to log: "gpu-bridge: backend memfd (auto: no render node: ...)".
 */
int gpu_backend_select(enum gpu_backend_choice choice, const char *render_node,
		       struct gpu_backend **ret_backend, char *reason, size_t reason_size);

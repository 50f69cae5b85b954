/* SPDX-License-Identifier: MIT */
/*
 * libcrossbuf: the client side of the crossbuf registry.
 *
 * The registry maps 16-byte UUIDs (virtio "shared object" names) to host buffers: a
 * dma-buf, a sealed memfd or a memfd_secret, with its layout and its access flags.
 * A client talks either to the crossbufd broker over its AF_UNIX socket, or to an
 * embedded registry living in the same process; the calls are the same.
 *
 * Conventions:
 *   - Functions that can fail return 0 or a positive value on success and a negative errno.
 *   - Output parameters are named ret_* and are untouched on failure.
 *   - fd parameters say whether they are borrowed (the caller keeps it) or new (the caller
 *     must close it).
 *   - Objects are reference counted: *_unref() accepts NULL and returns NULL.
 *   - A client is not thread-safe: use it from one thread at a time.
 */
#ifndef CROSSBUF_CROSSBUF_H
#define CROSSBUF_CROSSBUF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CROSSBUF_UUID_SIZE	  16
#define CROSSBUF_UUID_STRING_SIZE 37 /* 36 characters and a NUL */
#define CROSSBUF_MAX_PLANES	  4
#define CROSSBUF_DOMAIN_SIZE	  64 /* including the NUL */
#define CROSSBUF_DEFAULT_DOMAIN	  "default"

/* What kind of kernel object backs a registered buffer. Set by the registry. */
enum crossbuf_fd_kind {
	CROSSBUF_FD_KIND_INVALID = 0,
	CROSSBUF_FD_KIND_DMABUF = 1,	   /* a dma-buf (dmabuf filesystem) */
	CROSSBUF_FD_KIND_MEMFD = 2,	   /* a memfd sealed against shrinking */
	CROSSBUF_FD_KIND_MEMFD_SECRET = 3, /* memfd_secret(2): not in the kernel direct map */
};

/* Which kind of device exported a buffer. */
enum crossbuf_device_kind {
	CROSSBUF_DEVICE_OTHER = 0,
	CROSSBUF_DEVICE_GPU = 1,   /* virtio-gpu (device id 16) */
	CROSSBUF_DEVICE_MEDIA = 2, /* virtio-media (device id 48) */
	CROSSBUF_DEVICE_TOOL = 3,  /* crossbufctl and other tools */
};

enum crossbuf_buffer_flags {
	/*
	 * Protected content: the registry hands the buffer only to clients authorized for
	 * protected buffers, and consumers must never map it into guest-visible memory.
	 */
	CROSSBUF_BUFFER_PROTECTED = 1u << 0,
	/* The guest may map the buffer with its CPU (virtio-gpu MAPPABLE blobs, ...). */
	CROSSBUF_BUFFER_GUEST_MAPPABLE = 1u << 1,
};
#define CROSSBUF_BUFFER_FLAGS_ALL (CROSSBUF_BUFFER_PROTECTED | CROSSBUF_BUFFER_GUEST_MAPPABLE)

struct crossbuf_plane {
	uint32_t offset; /* bytes from the start of the fd */
	uint32_t stride; /* bytes per row */
};

/*
 * Everything the registry records about a buffer. The exporter fills in the layout, flags,
 * device_kind and resource_id; the registry fills in fd_kind and size from the fd itself.
 * Zero the whole struct before filling it in: reserved fields must be zero.
 */
struct crossbuf_buffer_info {
	uint32_t width;
	uint32_t height;
	uint32_t fourcc; /* DRM_FORMAT_* from drm_fourcc.h, 0 for an opaque blob */
	uint32_t num_planes;
	uint64_t modifier; /* DRM_FORMAT_MOD_*, DRM_FORMAT_MOD_LINEAR (0) for memfds */
	struct crossbuf_plane planes[CROSSBUF_MAX_PLANES];
	uint32_t flags;	      /* enum crossbuf_buffer_flags */
	uint32_t device_kind; /* enum crossbuf_device_kind of the exporter */
	uint32_t resource_id; /* the exporter's own name for it, e.g. a virtio-gpu resource id */
	uint32_t fd_kind;     /* enum crossbuf_fd_kind, set by the registry */
	uint64_t size;	      /* bytes in the fd, set by the registry */
	uint64_t reserved[4];
};

/* Who owns an entry, as reported to administrative clients. */
struct crossbuf_owner_info {
	uint32_t client_id; /* the registry's id of the exporting client */
	int32_t pid;	    /* its pid (SO_PEERCRED), or the embedding process' */
	uint32_t uid;
	uint32_t reserved;
	char domain[CROSSBUF_DOMAIN_SIZE];
};

/* Registry-wide counters. */
struct crossbuf_stats {
	uint64_t entries;
	uint64_t clients;
	uint64_t exports;
	uint64_t lookups;
	uint64_t removes;
	uint64_t refused; /* requests answered with an error */
	uint64_t watches; /* watches currently installed */
	uint64_t reserved[9];
};

enum crossbuf_removal_reason {
	CROSSBUF_REMOVED_BY_OWNER = 1,	/* the exporter removed it */
	CROSSBUF_REMOVED_OWNER_GONE = 2, /* the exporter disconnected or died */
};

/* The access a client asks for when it connects; granted only if the policy allows it. */
enum crossbuf_client_rights {
	CROSSBUF_RIGHT_PROTECTED = 1u << 0, /* may look up protected entries */
	CROSSBUF_RIGHT_ADMIN = 1u << 1,	    /* may list entries of every domain and read stats */
};

/* Called from crossbuf_client_dispatch() when a watched entry goes away. */
typedef void (*crossbuf_removed_fn)(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
				    enum crossbuf_removal_reason reason);

/*
 * Called by crossbuf_client_list() once per entry. Return 0 to go on, anything else to stop;
 * crossbuf_client_list() then returns that value.
 */
typedef int (*crossbuf_list_fn)(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
				const struct crossbuf_buffer_info *info,
				const struct crossbuf_owner_info *owner);

/* --- UUIDs ------------------------------------------------------------------------------ */

/* Writes the canonical lower-case form (8-4-4-4-12) and a NUL into out. */
void crossbuf_uuid_to_string(const uint8_t uuid[CROSSBUF_UUID_SIZE],
			     char out[CROSSBUF_UUID_STRING_SIZE]);
/* Parses the canonical form (either case). -EINVAL if s is anything else. */
int crossbuf_uuid_from_string(const char *s, uint8_t ret_uuid[CROSSBUF_UUID_SIZE]);
/* Fills uuid with a random version-4 UUID. */
void crossbuf_uuid_generate(uint8_t ret_uuid[CROSSBUF_UUID_SIZE]);
/* The nil and the all-ones UUIDs are reserved and never name an entry. */
int crossbuf_uuid_is_reserved(const uint8_t uuid[CROSSBUF_UUID_SIZE]);

/* --- Embedded registry ------------------------------------------------------------------ */

struct crossbuf_registry;

/* An in-process registry, for a VMM that hosts the table itself, and for tests. */
int crossbuf_registry_new(struct crossbuf_registry **ret_registry);
struct crossbuf_registry *crossbuf_registry_ref(struct crossbuf_registry *registry);
struct crossbuf_registry *crossbuf_registry_unref(struct crossbuf_registry *registry);

/* --- Client ----------------------------------------------------------------------------- */

struct crossbuf_client;

int crossbuf_client_new(struct crossbuf_client **ret_client);
struct crossbuf_client *crossbuf_client_ref(struct crossbuf_client *client);
/* Dropping the last reference disconnects; the registry then removes the client's exports. */
struct crossbuf_client *crossbuf_client_unref(struct crossbuf_client *client);

/* Settings, valid before connecting. The domain is one VM; default CROSSBUF_DEFAULT_DOMAIN. */
int crossbuf_client_set_domain(struct crossbuf_client *client, const char *domain);
int crossbuf_client_set_device_kind(struct crossbuf_client *client,
				    enum crossbuf_device_kind kind);
/* enum crossbuf_client_rights; connecting fails with -EPERM if the policy refuses any. */
int crossbuf_client_set_rights(struct crossbuf_client *client, uint32_t rights);

/*
 * Connects to crossbufd. socket_path NULL means $CROSSBUF_SOCKET, else
 * crossbuf_default_socket_path(). After a broker restart the client reconnects on its own
 * and registers its live exports again; fds it handed out stay valid.
 */
int crossbuf_client_connect(struct crossbuf_client *client, const char *socket_path);
/* Attaches the client to an in-process registry (takes a reference on it). */
int crossbuf_client_connect_embedded(struct crossbuf_client *client,
				     struct crossbuf_registry *registry);
/* The default broker socket: $XDG_RUNTIME_DIR/crossbuf/broker.sock, or /run/crossbuf/... */
const char *crossbuf_default_socket_path(void);

/*
 * Registers fd (borrowed: the registry keeps its own duplicate) under a new random
 * version-4 UUID, written to ret_uuid. Errors: -EBADF, -EINVAL for an fd that is not a
 * dma-buf, a memfd sealed with F_SEAL_SHRINK, or a memfd_secret, or for a layout that does
 * not fit in it; -EDQUOT when the client holds too many entries.
 */
int crossbuf_client_export(struct crossbuf_client *client, int fd,
			   const struct crossbuf_buffer_info *info,
			   uint8_t ret_uuid[CROSSBUF_UUID_SIZE]);
/* Same, under a UUID the exporter chose. -EEXIST if it is taken: an entry is never replaced. */
int crossbuf_client_export_uuid(struct crossbuf_client *client,
				const uint8_t uuid[CROSSBUF_UUID_SIZE], int fd,
				const struct crossbuf_buffer_info *info);
/*
 * Resolves uuid. *ret_fd is a new fd (the caller closes it). -ENOENT if no entry of the
 * client's domain has this UUID, -EACCES for a protected entry without the right.
 */
int crossbuf_client_lookup(struct crossbuf_client *client, const uint8_t uuid[CROSSBUF_UUID_SIZE],
			   struct crossbuf_buffer_info *ret_info, int *ret_fd);
/* Removes an entry the client exported. -EPERM for another client's entry. */
int crossbuf_client_remove(struct crossbuf_client *client, const uint8_t uuid[CROSSBUF_UUID_SIZE]);

/* Asks to be told when uuid goes away. -ENOENT if it does not exist now. */
int crossbuf_client_watch(struct crossbuf_client *client, const uint8_t uuid[CROSSBUF_UUID_SIZE]);
int crossbuf_client_unwatch(struct crossbuf_client *client,
			    const uint8_t uuid[CROSSBUF_UUID_SIZE]);
void crossbuf_client_set_removed_callback(struct crossbuf_client *client, crossbuf_removed_fn fn,
					  void *userdata);
/* An fd to poll for POLLIN (borrowed, owned by the client); then call dispatch. */
int crossbuf_client_get_fd(struct crossbuf_client *client);
/* Runs the callbacks of pending notifications, without blocking. Returns how many ran. */
int crossbuf_client_dispatch(struct crossbuf_client *client);

/* Administrative: needs CROSSBUF_RIGHT_ADMIN for other domains' entries and for stats. */
int crossbuf_client_list(struct crossbuf_client *client, crossbuf_list_fn fn, void *userdata);
int crossbuf_client_get_stats(struct crossbuf_client *client, struct crossbuf_stats *ret_stats);

#ifdef __cplusplus
}
#endif

#endif /* CROSSBUF_CROSSBUF_H */

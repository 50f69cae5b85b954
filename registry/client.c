/* SPDX-License-Identifier: MIT */
/*
 * libcrossbuf's client: the same calls over the broker socket or on an embedded registry.
 *
 * Socket mode keeps a duplicate of every fd it exported, with its UUID and info, so that
 * after a broker restart it can reconnect and register them again by itself; it also
 * re-installs its watches. Notifications that arrive while a request waits for its reply
 * are queued and run by crossbuf_client_dispatch().
 *
 * crossbuf_client_get_fd() returns an epoll fd that becomes readable when the socket has
 * data or the queue is not empty, and stays the same across reconnects.
 */
#include "core.h"
#include "macro.h"
#include "packet.h"
#include "protocol.h"

#include <assert.h>
#include <crossbuf/crossbuf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How long a request waits for the broker's reply, and for a restarted broker. */
#define REPLY_TIMEOUT_MS     5000
#define RECONNECT_TIMEOUT_MS 5000
/* How long a watched entry may take to come back after a broker restart, and retry steps. */
#define WATCH_GRACE_MS       2000
#define WATCH_RETRY_MS       20

struct crossbuf_registry {
	int ref;
	GMutex lock;
	struct cb_core *core;
};

enum client_mode {
	MODE_NEW,
	MODE_SOCKET,
	MODE_EMBEDDED,
};

struct notification {
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	enum crossbuf_removal_reason reason;
};

/* What socket mode remembers of an export, to register it again after a restart. */
struct live_export {
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	int fd; /* owned duplicate */
	struct crossbuf_buffer_info info;
};

struct crossbuf_client {
	int ref;
	enum client_mode mode;
	char domain[CROSSBUF_DOMAIN_SIZE];
	uint32_t device_kind;
	uint32_t rights;

	int epoll_fd;
	int event_fd;      /* readable while notifications are queued */
	GMutex queue_lock; /* embedded notifications come from other clients' threads */
	GQueue notifications;
	crossbuf_removed_fn removed_fn;
	void *removed_userdata;

	/* embedded */
	struct crossbuf_registry *registry;
	struct cb_session *session;

	/* socket */
	char *socket_path;
	int sock;
	uint32_t serial;
	uint32_t client_id;
	GHashTable *exports; /* uuid bytes -> struct live_export */
	GHashTable *watches; /* uuid bytes -> itself */
};

/* --- UUID keys for GHashTable --------------------------------------------------------- */

static guint
uuid_hash(gconstpointer p)
{
	guint h;

	/* The exports a client holds are its own: no need for a keyed hash here. */
	memcpy(&h, (const uint8_t *)p + 12, sizeof(h));
	return h;
}

static gboolean
uuid_equal(gconstpointer a, gconstpointer b)
{
	return memcmp(a, b, CROSSBUF_UUID_SIZE) == 0;
}

static void
live_export_free(gpointer p)
{
	struct live_export *x = p;

	close(x->fd);
	g_free(x);
}

/* --- Embedded registry ------------------------------------------------------------------ */

CROSSBUF_PUBLIC int
crossbuf_registry_new(struct crossbuf_registry **ret_registry)
{
	struct cb_core_limits limits = {
		.max_entries_per_session = 1u << 20,
		.max_watches_per_session = 1u << 20,
		.max_sessions = 1u << 16,
	};
	struct crossbuf_registry *reg;
	int r;

	if (ret_registry == NULL)
		return -EINVAL;
	reg = g_new0(struct crossbuf_registry, 1);
	r = cb_core_new(&limits, &reg->core);
	if (r < 0) {
		g_free(reg);
		return r;
	}
	reg->ref = 1;
	g_mutex_init(&reg->lock);
	*ret_registry = reg;
	return 0;
}

CROSSBUF_PUBLIC struct crossbuf_registry *
crossbuf_registry_ref(struct crossbuf_registry *reg)
{
	if (reg != NULL)
		g_atomic_int_inc(&reg->ref);
	return reg;
}

CROSSBUF_PUBLIC struct crossbuf_registry *
crossbuf_registry_unref(struct crossbuf_registry *reg)
{
	if (reg == NULL || !g_atomic_int_dec_and_test(&reg->ref))
		return NULL;
	cb_core_free(reg->core);
	g_mutex_clear(&reg->lock);
	g_free(reg);
	return NULL;
}

/* --- Notifications ---------------------------------------------------------------------- */

static void
queue_notification(struct crossbuf_client *c, const uint8_t uuid[CROSSBUF_UUID_SIZE],
		   enum crossbuf_removal_reason reason)
{
	struct notification *n = g_new(struct notification, 1);
	uint64_t one = 1;

	memcpy(n->uuid, uuid, CROSSBUF_UUID_SIZE);
	n->reason = reason;
	g_mutex_lock(&c->queue_lock);
	g_queue_push_tail(&c->notifications, n);
	g_mutex_unlock(&c->queue_lock);
	if (write(c->event_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow at one write per notification; nothing to do. */
	}
}

/* Called by the core with the registry locked; only queues. */
static void
embedded_notify(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
		enum crossbuf_removal_reason reason)
{
	queue_notification(userdata, uuid, reason);
}

/* --- Client object ---------------------------------------------------------------------- */

CROSSBUF_PUBLIC int
crossbuf_client_new(struct crossbuf_client **ret_client)
{
	struct crossbuf_client *c;
	struct epoll_event ev = {.events = EPOLLIN};

	if (ret_client == NULL)
		return -EINVAL;
	c = g_new0(struct crossbuf_client, 1);
	c->ref = 1;
	c->mode = MODE_NEW;
	c->sock = -1;
	c->device_kind = CROSSBUF_DEVICE_OTHER;
	g_strlcpy(c->domain, CROSSBUF_DEFAULT_DOMAIN, sizeof(c->domain));
	g_mutex_init(&c->queue_lock);
	g_queue_init(&c->notifications);
	c->exports = g_hash_table_new_full(uuid_hash, uuid_equal, NULL, live_export_free);
	c->watches = g_hash_table_new_full(uuid_hash, uuid_equal, g_free, NULL);
	c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->epoll_fd < 0 || c->event_fd < 0 ||
	    epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->event_fd, &ev) < 0) {
		int r = negative_errno();
		crossbuf_client_unref(c);
		return r;
	}
	*ret_client = c;
	return 0;
}

CROSSBUF_PUBLIC struct crossbuf_client *
crossbuf_client_ref(struct crossbuf_client *c)
{
	if (c != NULL)
		c->ref++;
	return c;
}

static void
socket_close(struct crossbuf_client *c)
{
	if (c->sock >= 0) {
		epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, c->sock, NULL);
		c->sock = safe_close(c->sock);
	}
}

CROSSBUF_PUBLIC struct crossbuf_client *
crossbuf_client_unref(struct crossbuf_client *c)
{
	if (c == NULL || --c->ref > 0)
		return NULL;
	if (c->session != NULL) {
		g_mutex_lock(&c->registry->lock);
		cb_session_free(c->session);
		g_mutex_unlock(&c->registry->lock);
	}
	crossbuf_registry_unref(c->registry);
	socket_close(c);
	g_hash_table_unref(c->exports);
	g_hash_table_unref(c->watches);
	g_queue_clear_full(&c->notifications, g_free);
	g_mutex_clear(&c->queue_lock);
	safe_close(c->event_fd);
	safe_close(c->epoll_fd);
	g_free(c->socket_path);
	g_free(c);
	return NULL;
}

CROSSBUF_PUBLIC int
crossbuf_client_set_domain(struct crossbuf_client *c, const char *domain)
{
	if (c == NULL || !cb_domain_name_valid(domain))
		return -EINVAL;
	if (c->mode != MODE_NEW)
		return -EBUSY;
	/* NUL-padded: the whole field goes on the wire. */
	memset(c->domain, 0, sizeof(c->domain));
	g_strlcpy(c->domain, domain, sizeof(c->domain));
	return 0;
}

CROSSBUF_PUBLIC int
crossbuf_client_set_device_kind(struct crossbuf_client *c, enum crossbuf_device_kind kind)
{
	if (c == NULL || (unsigned)kind > CROSSBUF_DEVICE_TOOL)
		return -EINVAL;
	if (c->mode != MODE_NEW)
		return -EBUSY;
	c->device_kind = kind;
	return 0;
}

CROSSBUF_PUBLIC int
crossbuf_client_set_rights(struct crossbuf_client *c, uint32_t rights)
{
	if (c == NULL || (rights & ~(CROSSBUF_RIGHT_PROTECTED | CROSSBUF_RIGHT_ADMIN)))
		return -EINVAL;
	if (c->mode != MODE_NEW)
		return -EBUSY;
	c->rights = rights;
	return 0;
}

CROSSBUF_PUBLIC int
crossbuf_client_connect_embedded(struct crossbuf_client *c, struct crossbuf_registry *reg)
{
	struct cb_session_params params = {
		.pid = getpid(),
		.uid = getuid(),
		.domain = c != NULL ? c->domain : NULL,
		.rights = c != NULL ? c->rights : 0,
		.device_kind = c != NULL ? c->device_kind : 0,
		.notify = embedded_notify,
		.userdata = c,
	};
	int r;

	if (c == NULL || reg == NULL)
		return -EINVAL;
	if (c->mode != MODE_NEW)
		return -EISCONN;
	g_mutex_lock(&reg->lock);
	r = cb_session_new(reg->core, &params, &c->session);
	g_mutex_unlock(&reg->lock);
	if (r < 0)
		return r;
	c->registry = crossbuf_registry_ref(reg);
	c->mode = MODE_EMBEDDED;
	return 0;
}

/* --- Socket mode: requests ------------------------------------------------------------ */

/* Handles a packet that is not the reply being waited for. */
static void
handle_event(struct crossbuf_client *c, const uint8_t *buf, size_t len)
{
	struct cb_msg_event_removed ev;

	if (len != sizeof(ev))
		return;
	memcpy(&ev, buf, sizeof(ev));
	if (ev.hdr.type != CB_MSG_EVENT_REMOVED || ev.hdr.size != len)
		return;
	g_hash_table_remove(c->watches, ev.uuid);
	queue_notification(c, ev.uuid, (enum crossbuf_removal_reason)ev.reason);
}

struct reply {
	uint8_t buf[CB_REPLY_MAX_SIZE];
	size_t len;
	int fd; /* new, or -1 */
	int status;
};

/*
 * Sends a request and waits for its reply, queueing events that come first and passing
 * LIST_ENTRY packets to on_entry. Returns 0 when a reply arrived (its status is in
 * reply->status), or a transport error.
 */
static int
transact(struct crossbuf_client *c, void *req, size_t len, int fd, struct reply *reply,
	 void (*on_entry)(void *userdata, const uint8_t *buf, size_t len), void *userdata)
{
	struct cb_msg_header *hdr = req;
	int r;

	if (c->sock < 0)
		return -ENOTCONN;
	hdr->serial = ++c->serial;
	hdr->size = (uint32_t)len;
	r = cb_packet_send(c->sock, req, len, fd);
	if (r < 0)
		return r;

	for (;;) {
		uint8_t buf[CB_MSG_MAX_SIZE];
		struct cb_msg_header in;
		int fds[CB_PACKET_MAX_FDS];
		unsigned nfds;
		size_t n;

		/*
		 * A blocking receive, bounded by SO_RCVTIMEO: one system call per reply, where
		 * poll() first would make two (measured: p50 lookup 1.27x -> 1.2x the floor).
		 */
		r = cb_packet_recv(c->sock, buf, sizeof(buf), 0, &n, fds, &nfds);
		if (r == -EAGAIN)
			return -ETIMEDOUT;
		if (r < 0)
			return r;
		if (n < sizeof(in)) {
			cb_close_fds(fds, nfds);
			return -EPROTO;
		}
		memcpy(&in, buf, sizeof(in));
		if (in.type == CB_MSG_REPLY && in.serial == hdr->serial) {
			struct cb_msg_reply rep;
			if (n < sizeof(rep) || n > sizeof(reply->buf) || nfds > 1) {
				cb_close_fds(fds, nfds);
				return -EPROTO;
			}
			memcpy(&rep, buf, sizeof(rep));
			memcpy(reply->buf, buf, n);
			reply->len = n;
			reply->status = rep.status > 0 ? -EPROTO : rep.status;
			reply->fd = nfds == 1 ? fds[0] : -1;
			return 0;
		}
		cb_close_fds(fds, nfds);
		if (in.type == CB_MSG_LIST_ENTRY && in.serial == hdr->serial && on_entry != NULL)
			on_entry(userdata, buf, n);
		else
			handle_event(c, buf, n);
	}
}

/* The result part of a reply, which must be exactly size bytes. */
static int
reply_result(const struct reply *reply, void *result, size_t size)
{
	if (reply->len != sizeof(struct cb_msg_reply) + size)
		return -EPROTO;
	memcpy(result, reply->buf + sizeof(struct cb_msg_reply), size);
	return 0;
}

static int
socket_open(const char *path)
{
	static const struct timeval reply_timeout = {
		.tv_sec = REPLY_TIMEOUT_MS / 1000,
		.tv_usec = REPLY_TIMEOUT_MS % 1000 * 1000,
	};
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	/* Bounds every blocking wait for a reply (transact). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &reply_timeout, sizeof(reply_timeout)) < 0 ||
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	return fd;
}

static int
hello(struct crossbuf_client *c)
{
	struct cb_msg_hello req = {
		.hdr.type = CB_MSG_HELLO,
		.version = CB_PROTOCOL_VERSION,
		.device_kind = c->device_kind,
		.rights = c->rights,
	};
	struct cb_reply_hello result;
	struct reply reply;
	int r;

	memcpy(req.domain, c->domain, sizeof(req.domain));
	r = transact(c, &req, sizeof(req), -1, &reply, NULL, NULL);
	if (r < 0)
		return r;
	safe_close(reply.fd);
	if (reply.status < 0)
		return reply.status;
	r = reply_result(&reply, &result, sizeof(result));
	if (r < 0)
		return r;
	c->client_id = result.client_id;
	return 0;
}

/* Opens the socket and says HELLO. The old socket, if any, is closed first. */
static int
socket_connect(struct crossbuf_client *c)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int r;

	socket_close(c);
	r = socket_open(c->socket_path);
	if (r < 0)
		return r;
	c->sock = r;
	r = hello(c);
	if (r < 0) {
		socket_close(c);
		return r;
	}
	if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->sock, &ev) < 0) {
		r = negative_errno();
		socket_close(c);
		return r;
	}
	return 0;
}

static int
send_export(struct crossbuf_client *c, const uint8_t *uuid, int fd,
	    const struct crossbuf_buffer_info *info, uint8_t ret_uuid[CROSSBUF_UUID_SIZE])
{
	struct cb_msg_export req = {.hdr.type = CB_MSG_EXPORT};
	struct cb_reply_export result;
	struct reply reply;
	int r;

	if (uuid != NULL)
		memcpy(req.uuid, uuid, CROSSBUF_UUID_SIZE);
	cb_wire_info_from(&req.info, info);
	req.info.fd_kind = 0;
	req.info.size = 0;
	r = transact(c, &req, sizeof(req), fd, &reply, NULL, NULL);
	if (r < 0)
		return r;
	safe_close(reply.fd);
	if (reply.status < 0)
		return reply.status;
	r = reply_result(&reply, &result, sizeof(result));
	if (r < 0)
		return r;
	memcpy(ret_uuid, result.uuid, CROSSBUF_UUID_SIZE);
	return 0;
}

static int
send_uuid_request(struct crossbuf_client *c, enum cb_msg_type type,
		  const uint8_t uuid[CROSSBUF_UUID_SIZE], struct reply *reply)
{
	struct cb_msg_uuid req = {.hdr.type = type};

	memcpy(req.uuid, uuid, CROSSBUF_UUID_SIZE);
	return transact(c, &req, sizeof(req), -1, reply, NULL, NULL);
}

static int64_t
now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

/* Installs the watch on uuid again: 1 if the entry is there, 0 if not, or a transport error. */
static int
rewatch(struct crossbuf_client *c, const uint8_t *uuid)
{
	struct reply reply;
	int r = send_uuid_request(c, CB_MSG_WATCH, uuid, &reply);

	if (r < 0)
		return r;
	safe_close(reply.fd);
	return reply.status < 0 ? 0 : 1;
}

/*
 * After a reconnect: registers the live exports again under their UUIDs and re-installs
 * watches. An export the new broker refuses is dropped. A watched entry that is not back is
 * given WATCH_GRACE_MS, as its exporter reconnects to the new broker at the same moment;
 * after that it is reported as removed.
 */
static int
restore_state(struct crossbuf_client *c)
{
	GHashTableIter iter;
	gpointer key, value;
	g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
	int64_t deadline = now_ms() + WATCH_GRACE_MS;

	g_hash_table_iter_init(&iter, c->exports);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		struct live_export *x = value;
		uint8_t uuid[CROSSBUF_UUID_SIZE];
		int r = send_export(c, x->uuid, x->fd, &x->info, uuid);
		if (r == -EPIPE || r == -ECONNRESET || r == -ETIMEDOUT)
			return r;
		if (r < 0)
			g_hash_table_iter_remove(&iter);
	}
	g_hash_table_iter_init(&iter, c->watches);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		int r = rewatch(c, key);
		if (r < 0)
			return r;
		if (r == 0)
			g_ptr_array_add(lost, g_memdup2(key, CROSSBUF_UUID_SIZE));
	}
	while (lost->len > 0 && now_ms() < deadline) {
		g_usleep(WATCH_RETRY_MS * 1000);
		for (guint i = lost->len; i-- > 0;) {
			int r = rewatch(c, lost->pdata[i]);
			if (r < 0)
				return r;
			if (r == 1)
				g_ptr_array_remove_index_fast(lost, i);
		}
	}
	for (guint i = 0; i < lost->len; i++) {
		g_hash_table_remove(c->watches, lost->pdata[i]);
		queue_notification(c, lost->pdata[i], CROSSBUF_REMOVED_OWNER_GONE);
	}
	return 0;
}

/* Reconnects to a restarted broker, retrying for RECONNECT_TIMEOUT_MS. */
static int
reconnect(struct crossbuf_client *c)
{
	int64_t deadline = now_ms() + RECONNECT_TIMEOUT_MS;
	unsigned delay_ms = 5;
	int r;

	for (;;) {
		r = socket_connect(c);
		if (r == 0) {
			r = restore_state(c);
			if (r == 0)
				return 0;
			socket_close(c);
		}
		/* Refusals by policy are final; only an absent or restarting broker is retried. */
		if (r != -ENOENT && r != -ECONNREFUSED && r != -ECONNRESET && r != -EPIPE)
			return r;
		if (now_ms() >= deadline)
			return r;
		g_usleep(delay_ms * 1000);
		delay_ms = MIN(delay_ms * 2, 200u);
	}
}

static bool
connection_lost(int r)
{
	return r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN;
}

/*
 * Runs fn (one request) and, if the broker went away, reconnects and runs it once more.
 * fn returns the request's final result or a transport error.
 */
#define WITH_RECONNECT(c, expr)                                                                    \
	({                                                                                         \
		int _r = (expr);                                                                   \
		if (connection_lost(_r)) {                                                         \
			_r = reconnect(c);                                                         \
			if (_r == 0)                                                               \
				_r = (expr);                                                       \
		}                                                                                  \
		_r;                                                                                \
	})

CROSSBUF_PUBLIC int
crossbuf_client_connect(struct crossbuf_client *c, const char *socket_path)
{
	int r;

	if (c == NULL)
		return -EINVAL;
	if (c->mode != MODE_NEW)
		return -EISCONN;
	if (socket_path == NULL)
		socket_path = getenv("CROSSBUF_SOCKET");
	if (socket_path == NULL || socket_path[0] == '\0')
		socket_path = crossbuf_default_socket_path();
	c->socket_path = g_strdup(socket_path);
	r = socket_connect(c);
	if (r < 0) {
		g_clear_pointer(&c->socket_path, g_free);
		return r;
	}
	c->mode = MODE_SOCKET;
	return 0;
}

/* --- Operations ------------------------------------------------------------------------- */

static int
check_info(const struct crossbuf_buffer_info *info)
{
	return info == NULL ? -EINVAL : 0;
}

static int
embedded_export(struct crossbuf_client *c, const uint8_t *uuid, int fd,
		const struct crossbuf_buffer_info *info, uint8_t *ret_uuid)
{
	const char *reason;
	int copy, r;

	/* The registry keeps its own duplicate; the caller keeps fd. */
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return errno == EBADF ? -EBADF : negative_errno();
	g_mutex_lock(&c->registry->lock);
	r = cb_session_export(c->session, uuid, copy, info, ret_uuid, &reason);
	g_mutex_unlock(&c->registry->lock);
	return r;
}

static int
socket_export(struct crossbuf_client *c, const uint8_t *uuid, int fd,
	      const struct crossbuf_buffer_info *info, uint8_t *ret_uuid)
{
	struct live_export *x;
	uint8_t got[CROSSBUF_UUID_SIZE];
	int keep, r;

	if (uuid != NULL && crossbuf_uuid_is_reserved(uuid))
		return -EINVAL;
	/* Keep our own duplicate first: without it we could not re-register after a restart. */
	keep = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (keep < 0)
		return errno == EBADF ? -EBADF : negative_errno();
	r = WITH_RECONNECT(c, send_export(c, uuid, fd, info, got));
	if (r < 0) {
		close(keep);
		return r;
	}
	x = g_new0(struct live_export, 1);
	memcpy(x->uuid, got, CROSSBUF_UUID_SIZE);
	x->fd = keep;
	x->info = *info;
	g_hash_table_replace(c->exports, x->uuid, x);
	if (ret_uuid != NULL)
		memcpy(ret_uuid, got, CROSSBUF_UUID_SIZE);
	return 0;
}

static int
client_export(struct crossbuf_client *c, const uint8_t *uuid, int fd,
	      const struct crossbuf_buffer_info *info, uint8_t *ret_uuid)
{
	if (c == NULL || check_info(info) < 0)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	switch (c->mode) {
	case MODE_NEW:
		return -ENOTCONN;
	case MODE_EMBEDDED:
		return embedded_export(c, uuid, fd, info, ret_uuid);
	case MODE_SOCKET:
		return socket_export(c, uuid, fd, info, ret_uuid);
	}
	return -EINVAL;
}

CROSSBUF_PUBLIC int
crossbuf_client_export(struct crossbuf_client *c, int fd, const struct crossbuf_buffer_info *info,
		       uint8_t ret_uuid[CROSSBUF_UUID_SIZE])
{
	if (ret_uuid == NULL)
		return -EINVAL;
	return client_export(c, NULL, fd, info, ret_uuid);
}

CROSSBUF_PUBLIC int
crossbuf_client_export_uuid(struct crossbuf_client *c, const uint8_t uuid[CROSSBUF_UUID_SIZE],
			    int fd, const struct crossbuf_buffer_info *info)
{
	if (uuid == NULL)
		return -EINVAL;
	return client_export(c, uuid, fd, info, NULL);
}

static int
socket_lookup(struct crossbuf_client *c, const uint8_t uuid[CROSSBUF_UUID_SIZE],
	      struct crossbuf_buffer_info *ret_info, int *ret_fd)
{
	struct cb_reply_lookup result;
	struct reply reply;
	int r;

	r = WITH_RECONNECT(c, send_uuid_request(c, CB_MSG_LOOKUP, uuid, &reply));
	if (r < 0)
		return r;
	if (reply.status < 0) {
		safe_close(reply.fd);
		return reply.status;
	}
	r = reply_result(&reply, &result, sizeof(result));
	if (r < 0 || reply.fd < 0) {
		safe_close(reply.fd);
		return -EPROTO;
	}
	cb_wire_info_to(ret_info, &result.info);
	*ret_fd = reply.fd;
	return 0;
}

static int
embedded_lookup(struct crossbuf_client *c, const uint8_t uuid[CROSSBUF_UUID_SIZE],
		struct crossbuf_buffer_info *ret_info, int *ret_fd)
{
	struct crossbuf_buffer_info info;
	int fd = -1, r;

	g_mutex_lock(&c->registry->lock);
	r = cb_session_lookup(c->session, uuid, &info, &fd);
	if (r == 0) {
		/* Duplicate under the lock: the stored fd may go as soon as it is released. */
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			r = negative_errno();
	}
	g_mutex_unlock(&c->registry->lock);
	if (r < 0)
		return r;
	*ret_info = info;
	*ret_fd = fd;
	return 0;
}

CROSSBUF_PUBLIC int
crossbuf_client_lookup(struct crossbuf_client *c, const uint8_t uuid[CROSSBUF_UUID_SIZE],
		       struct crossbuf_buffer_info *ret_info, int *ret_fd)
{
	if (c == NULL || uuid == NULL || ret_info == NULL || ret_fd == NULL)
		return -EINVAL;
	switch (c->mode) {
	case MODE_NEW:
		return -ENOTCONN;
	case MODE_EMBEDDED:
		return embedded_lookup(c, uuid, ret_info, ret_fd);
	case MODE_SOCKET:
		return socket_lookup(c, uuid, ret_info, ret_fd);
	}
	return -EINVAL;
}

/* REMOVE, WATCH and UNWATCH: a UUID in, a status out. */
static int
uuid_op(struct crossbuf_client *c, enum cb_msg_type type, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	struct reply reply;
	int r;

	if (c == NULL || uuid == NULL)
		return -EINVAL;
	switch (c->mode) {
	case MODE_NEW:
		return -ENOTCONN;
	case MODE_EMBEDDED:
		g_mutex_lock(&c->registry->lock);
		if (type == CB_MSG_REMOVE)
			r = cb_session_remove(c->session, uuid);
		else if (type == CB_MSG_WATCH)
			r = cb_session_watch(c->session, uuid);
		else
			r = cb_session_unwatch(c->session, uuid);
		g_mutex_unlock(&c->registry->lock);
		return r;
	case MODE_SOCKET:
		r = WITH_RECONNECT(c, send_uuid_request(c, type, uuid, &reply));
		if (r < 0)
			return r;
		safe_close(reply.fd);
		if (reply.status < 0)
			return reply.status;
		if (type == CB_MSG_REMOVE)
			g_hash_table_remove(c->exports, uuid);
		else if (type == CB_MSG_WATCH)
			g_hash_table_add(c->watches, g_memdup2(uuid, CROSSBUF_UUID_SIZE));
		else
			g_hash_table_remove(c->watches, uuid);
		return 0;
	}
	return -EINVAL;
}

CROSSBUF_PUBLIC int
crossbuf_client_remove(struct crossbuf_client *c, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	return uuid_op(c, CB_MSG_REMOVE, uuid);
}

CROSSBUF_PUBLIC int
crossbuf_client_watch(struct crossbuf_client *c, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	return uuid_op(c, CB_MSG_WATCH, uuid);
}

CROSSBUF_PUBLIC int
crossbuf_client_unwatch(struct crossbuf_client *c, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	return uuid_op(c, CB_MSG_UNWATCH, uuid);
}

CROSSBUF_PUBLIC void
crossbuf_client_set_removed_callback(struct crossbuf_client *c, crossbuf_removed_fn fn,
				     void *userdata)
{
	if (c == NULL)
		return;
	c->removed_fn = fn;
	c->removed_userdata = userdata;
}

CROSSBUF_PUBLIC int
crossbuf_client_get_fd(struct crossbuf_client *c)
{
	return c != NULL ? c->epoll_fd : -EINVAL;
}

/* Reads every packet the broker has sent, without blocking. */
static int
socket_drain(struct crossbuf_client *c)
{
	for (;;) {
		uint8_t buf[CB_MSG_MAX_SIZE];
		int fds[CB_PACKET_MAX_FDS];
		unsigned nfds;
		size_t n;
		int r;

		if (c->sock < 0)
			return -ENOTCONN;
		r = cb_packet_recv(c->sock, buf, sizeof(buf), MSG_DONTWAIT, &n, fds, &nfds);
		if (r == -EAGAIN)
			return 0;
		if (r < 0)
			return r;
		cb_close_fds(fds, nfds);
		handle_event(c, buf, n);
	}
}

CROSSBUF_PUBLIC int
crossbuf_client_dispatch(struct crossbuf_client *c)
{
	uint64_t count;
	int ran = 0, r = 0;

	if (c == NULL)
		return -EINVAL;
	if (c->mode == MODE_SOCKET) {
		r = socket_drain(c);
		if (connection_lost(r))
			r = reconnect(c);
	}
	if (read(c->event_fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: nothing was queued */
	}
	for (;;) {
		struct notification *n;

		g_mutex_lock(&c->queue_lock);
		n = g_queue_pop_head(&c->notifications);
		g_mutex_unlock(&c->queue_lock);
		if (n == NULL)
			break;
		if (c->removed_fn != NULL)
			c->removed_fn(c->removed_userdata, n->uuid, n->reason);
		g_free(n);
		ran++;
	}
	return r < 0 ? r : ran;
}

/* --- Administration --------------------------------------------------------------------- */

struct list_ctx {
	crossbuf_list_fn fn;
	void *userdata;
	int stop; /* the callback's non-zero return */
	int bad;  /* a malformed entry arrived */
};

static void
on_list_entry(void *userdata, const uint8_t *buf, size_t len)
{
	struct list_ctx *ctx = userdata;
	struct cb_msg_list_entry m;
	struct crossbuf_buffer_info info;
	struct crossbuf_owner_info owner = {0};

	if (ctx->stop != 0)
		return;
	if (len != sizeof(m)) {
		ctx->bad = 1;
		return;
	}
	memcpy(&m, buf, sizeof(m));
	cb_wire_info_to(&info, &m.info);
	owner.client_id = m.client_id;
	owner.pid = m.pid;
	owner.uid = m.uid;
	memcpy(owner.domain, m.domain, sizeof(owner.domain));
	owner.domain[CROSSBUF_DOMAIN_SIZE - 1] = '\0';
	ctx->stop = ctx->fn(ctx->userdata, m.uuid, &info, &owner);
}

static int
socket_list(struct crossbuf_client *c, struct list_ctx *ctx)
{
	struct cb_msg_header req = {.type = CB_MSG_LIST};
	struct reply reply;
	int r;

	r = WITH_RECONNECT(c, transact(c, &req, sizeof(req), -1, &reply, on_list_entry, ctx));
	if (r < 0)
		return r;
	safe_close(reply.fd);
	if (reply.status < 0)
		return reply.status;
	if (ctx->bad)
		return -EPROTO;
	return ctx->stop;
}

CROSSBUF_PUBLIC int
crossbuf_client_list(struct crossbuf_client *c, crossbuf_list_fn fn, void *userdata)
{
	struct list_ctx ctx = {.fn = fn, .userdata = userdata};
	int r;

	if (c == NULL || fn == NULL)
		return -EINVAL;
	switch (c->mode) {
	case MODE_NEW:
		return -ENOTCONN;
	case MODE_EMBEDDED:
		g_mutex_lock(&c->registry->lock);
		r = cb_session_list(c->session, fn, userdata);
		g_mutex_unlock(&c->registry->lock);
		return r;
	case MODE_SOCKET:
		return socket_list(c, &ctx);
	}
	return -EINVAL;
}

static int
socket_stats(struct crossbuf_client *c, struct crossbuf_stats *ret_stats)
{
	struct cb_msg_header req = {.type = CB_MSG_STATS};
	struct cb_reply_stats result;
	struct reply reply;
	int r;

	r = WITH_RECONNECT(c, transact(c, &req, sizeof(req), -1, &reply, NULL, NULL));
	if (r < 0)
		return r;
	safe_close(reply.fd);
	if (reply.status < 0)
		return reply.status;
	r = reply_result(&reply, &result, sizeof(result));
	if (r < 0)
		return r;
	*ret_stats = (struct crossbuf_stats){
		.entries = result.entries,
		.clients = result.clients,
		.exports = result.exports,
		.lookups = result.lookups,
		.removes = result.removes,
		.refused = result.refused,
		.watches = result.watches,
	};
	return 0;
}

CROSSBUF_PUBLIC int
crossbuf_client_get_stats(struct crossbuf_client *c, struct crossbuf_stats *ret_stats)
{
	int r;

	if (c == NULL || ret_stats == NULL)
		return -EINVAL;
	switch (c->mode) {
	case MODE_NEW:
		return -ENOTCONN;
	case MODE_EMBEDDED:
		g_mutex_lock(&c->registry->lock);
		r = cb_session_stats(c->session, ret_stats);
		g_mutex_unlock(&c->registry->lock);
		return r;
	case MODE_SOCKET:
		return socket_stats(c, ret_stats);
	}
	return -EINVAL;
}

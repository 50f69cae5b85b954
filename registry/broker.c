/* SPDX-License-Identifier: MIT */
#include "broker.h"

#include "core.h"
#include "macro.h"
#include "packet.h"
#include "policy.h"
#include "protocol.h"
#include "state.h"

#include <crossbuf/crossbuf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

/*
 * Limits on what one client can make the broker hold. A client whose queue of unsent
 * packets passes MAX_QUEUED (it does not read its events) is disconnected; LIST answers
 * are cut at MAX_LIST_ENTRIES. A client that sends MAX_PROTOCOL_ERRORS malformed
 * messages is disconnected.
 */
#define MAX_QUEUED              1024
#define MAX_LIST_ENTRIES        65536
#define MAX_PROTOCOL_ERRORS     64
/* Connections that have not said HELLO yet, beyond max_clients sessions. */
#define MAX_PENDING_CONNECTIONS 64

struct out_packet {
	size_t len;
	int fd; /* owned, or -1 */
	uint8_t buf[];
};

struct conn {
	struct cb_broker *broker;
	int fd;
	struct ucred cred;
	gid_t *groups; /* its supplementary groups (SO_PEERGROUPS); NULL: unknown */
	size_t n_groups;
	struct cb_session *session; /* NULL until HELLO */
	GQueue out;                 /* struct out_packet waiting for the socket */
	unsigned protocol_errors;
	bool dead;       /* to be freed once the current event is handled */
	bool list_reply; /* exempt from MAX_QUEUED while answering LIST */
	uint32_t events; /* the epoll events registered */
};

struct cb_broker {
	int listen_fd;
	int epoll_fd;
	int signal_fd;
	int reserve_fd; /* closed to accept-and-drop a client when out of fds */
	const struct cb_policy *policy;
	struct cb_core *core;
	struct cb_state *state; /* NULL: no state file */
	int timer_fd;           /* the end of the reservations; -1 when none are pending */
	unsigned hold_ms;
	bool state_failed; /* the last write to the state file failed (logged once) */
	GHashTable *conns; /* struct conn * set */
	GPtrArray *dead;   /* conns to free after the current event */
	unsigned n_pending;
	bool verbose;
	bool quit;
	bool peergroups_logged;
};

_printf_(2, 3) static void conn_log(const struct conn *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "crossbufd: client pid %d uid %u: ", (int)c->cred.pid, c->cred.uid);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
uuid_str(const uint8_t uuid[CROSSBUF_UUID_SIZE], char out[CROSSBUF_UUID_STRING_SIZE])
{
	crossbuf_uuid_to_string(uuid, out);
}

static void
conn_kill(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why != NULL)
		conn_log(c, "disconnecting: %s", why);
	c->dead = true;
	epoll_ctl(c->broker->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	g_ptr_array_add(c->broker->dead, c);
}

static void
out_packet_free(gpointer p)
{
	struct out_packet *o = p;

	safe_close(o->fd);
	g_free(o);
}

static void
conn_free(struct conn *c)
{
	/* Ending the session removes the client's entries and tells their watchers. */
	cb_session_free(c->session);
	if (c->session == NULL)
		c->broker->n_pending--;
	g_queue_clear_full(&c->out, out_packet_free);
	close(c->fd);
	g_free(c->groups);
	g_free(c);
}

static void
reap_dead(struct cb_broker *b)
{
	/* Freeing one can kill others (their queues overflow with its removals). */
	while (b->dead->len > 0) {
		struct conn *c = g_ptr_array_steal_index_fast(b->dead, b->dead->len - 1);
		g_hash_table_remove(b->conns, c);
		conn_free(c);
	}
}

static void
conn_update_events(struct conn *c)
{
	/* While replies wait to be sent, read no more requests: the client must read first. */
	uint32_t want = g_queue_is_empty(&c->out) ? EPOLLIN : EPOLLOUT;
	struct epoll_event ev = {.events = want, .data.ptr = c};

	if (c->dead || want == c->events)
		return;
	if (epoll_ctl(c->broker->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		conn_kill(c, "epoll failed");
		return;
	}
	c->events = want;
}

/* Sends what is queued. */
static void
conn_flush(struct conn *c)
{
	struct out_packet *o;

	while (!c->dead && (o = g_queue_peek_head(&c->out)) != NULL) {
		int r = cb_packet_send(c->fd, o->buf, o->len, o->fd);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			conn_kill(c, r == -EPIPE ? NULL : "send failed");
			return;
		}
		out_packet_free(g_queue_pop_head(&c->out));
	}
	conn_update_events(c);
}

/* Sends a packet with an fd (borrowed) or queues it, with a duplicate of the fd. */
static void
conn_send(struct conn *c, const void *buf, size_t len, int fd)
{
	struct out_packet *o;

	if (c->dead)
		return;
	if (g_queue_is_empty(&c->out)) {
		int r = cb_packet_send(c->fd, buf, len, fd);
		if (r == 0)
			return;
		if (r != -EAGAIN) {
			conn_kill(c, r == -EPIPE ? NULL : "send failed");
			return;
		}
	}
	if (g_queue_get_length(&c->out) >= MAX_QUEUED && !c->list_reply) {
		conn_kill(c, "it does not read what the broker sends");
		return;
	}
	o = g_malloc(sizeof(*o) + len);
	o->len = len;
	o->fd = -1;
	memcpy(o->buf, buf, len);
	if (fd >= 0) {
		o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (o->fd < 0) {
			g_free(o);
			conn_kill(c, "out of fds while queueing a reply");
			return;
		}
	}
	g_queue_push_tail(&c->out, o);
	conn_update_events(c);
}

static void
reply(struct conn *c, uint32_t serial, uint32_t request, int status, const void *result,
      size_t result_size, int fd)
{
	uint8_t buf[CB_REPLY_MAX_SIZE];
	size_t len = cb_reply_encode(buf, serial, request, status, result, result_size);

	conn_send(c, buf, len, status < 0 ? -1 : fd);
}

/* A watched entry is gone: called by the core, possibly while handling another client. */
static void
notify_removed(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
	       enum crossbuf_removal_reason reason)
{
	struct conn *c = userdata;
	struct cb_msg_event_removed ev = {
		.hdr = {.type = CB_MSG_EVENT_REMOVED, .size = sizeof(ev)},
		.reason = reason,
	};

	memcpy(ev.uuid, uuid, CROSSBUF_UUID_SIZE);
	conn_send(c, &ev, sizeof(ev), -1);
}

static int
handle_hello(struct conn *c, const struct cb_request_msg *m, struct cb_reply_hello *result)
{
	struct cb_broker *b = c->broker;
	struct cb_session_params params = {
		.pid = c->cred.pid,
		.uid = c->cred.uid,
		.domain = m->hello.domain,
		.device_kind = m->hello.device_kind,
		.notify = notify_removed,
		.userdata = c,
	};
	uint32_t allowed;
	int r;

	if (c->session != NULL)
		return -EISCONN;
	if (m->hello.device_kind > CROSSBUF_DEVICE_TOOL ||
	    (m->hello.rights & ~(CROSSBUF_RIGHT_PROTECTED | CROSSBUF_RIGHT_ADMIN)))
		return -EINVAL;
	/*
	 * The groups the peer had when it connected, from the kernel: no user database lookup
	 * (which may block on NSS) in the broker's loop. Only a kernel without SO_PEERGROUPS
	 * (before 4.13) leaves them unknown, and then the database is asked.
	 */
	if (c->groups != NULL)
		r = cb_policy_check_groups(b->policy, m->hello.domain, c->cred.uid, c->cred.gid,
					   c->groups, c->n_groups, &allowed);
	else
		r = cb_policy_check(b->policy, m->hello.domain, c->cred.uid, c->cred.gid, &allowed);
	if (r < 0) {
		conn_log(c, "refused: may not join domain '%s'", m->hello.domain);
		return r;
	}
	if (m->hello.rights & ~allowed) {
		conn_log(c, "refused: asked for rights 0x%x in domain '%s', allowed 0x%x",
			 m->hello.rights, m->hello.domain, allowed);
		return -EPERM;
	}
	params.rights = m->hello.rights;
	r = cb_session_new(b->core, &params, &c->session);
	if (r < 0) {
		conn_log(c, "refused: %s", r == -EUSERS ? "too many clients" : g_strerror(-r));
		return r;
	}
	b->n_pending--;
	*result = (struct cb_reply_hello){
		.version = CB_PROTOCOL_VERSION,
		.client_id = cb_session_id(c->session),
		.rights = params.rights,
		.max_entries = cb_policy_limits(b->policy)->max_entries_per_client,
	};
	if (b->verbose)
		conn_log(c, "joined domain '%s' as client %u", m->hello.domain, result->client_id);
	return 0;
}

struct list_ctx {
	struct conn *conn;
	uint32_t serial;
	uint32_t count;
};

static int
send_list_entry(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
		const struct crossbuf_buffer_info *info, const struct crossbuf_owner_info *owner)
{
	struct list_ctx *ctx = userdata;
	struct cb_msg_list_entry m = {
		.hdr = {.type = CB_MSG_LIST_ENTRY, .serial = ctx->serial, .size = sizeof(m)},
		.client_id = owner->client_id,
		.pid = owner->pid,
		.uid = owner->uid,
	};

	if (ctx->count >= MAX_LIST_ENTRIES || ctx->conn->dead)
		return 1;
	memcpy(m.uuid, uuid, CROSSBUF_UUID_SIZE);
	cb_wire_info_from(&m.info, info);
	memcpy(m.domain, owner->domain, sizeof(m.domain));
	conn_send(ctx->conn, &m, sizeof(m), -1);
	ctx->count++;
	return 0;
}

/* fd is TAKEN: an EXPORT's buffer, -1 for every other request. */
static void
handle_request(struct conn *c, const struct cb_request_msg *m, int fd)
{
	_cleanup_close_ int owned = fd;
	struct cb_session *s = c->session;
	char u[CROSSBUF_UUID_STRING_SIZE];
	int r;

	if (s == NULL && m->type != CB_MSG_HELLO) {
		reply(c, m->serial, m->type, -EPERM, NULL, 0, -1);
		return;
	}
	switch ((enum cb_msg_type)m->type) {
	case CB_MSG_HELLO: {
		struct cb_reply_hello result;
		r = handle_hello(c, m, &result);
		reply(c, m->serial, m->type, r, &result, sizeof(result), -1);
		if (r < 0 && c->session == NULL)
			conn_kill(c, NULL);
		return;
	}
	case CB_MSG_EXPORT: {
		struct cb_reply_export result;
		const char *reason = NULL;
		r = cb_session_export(s, m->export.has_uuid ? m->export.uuid : NULL, TAKE_FD(owned),
				      &m->export.info, result.uuid, &reason);
		if (r < 0) {
			uuid_str(m->export.uuid, u);
			conn_log(c, "export %s refused: %s", m->export.has_uuid ? u : "(new)",
				 reason != NULL ? reason : g_strerror(-r));
		} else if (c->broker->verbose) {
			uuid_str(result.uuid, u);
			conn_log(c, "exported %s", u);
		}
		reply(c, m->serial, m->type, r, &result, sizeof(result), -1);
		return;
	}
	case CB_MSG_LOOKUP: {
		struct crossbuf_buffer_info info;
		struct cb_reply_lookup result;
		int entry_fd = -1;
		r = cb_session_lookup(s, m->uuid, &info, &entry_fd);
		if (r == -EACCES) {
			uuid_str(m->uuid, u);
			conn_log(c, "lookup of protected %s refused: no protected right", u);
		}
		if (r == 0)
			cb_wire_info_from(&result.info, &info);
		/* The core's fd goes straight into the reply: the kernel duplicates it. */
		reply(c, m->serial, m->type, r, &result, sizeof(result), entry_fd);
		return;
	}
	case CB_MSG_REMOVE:
		r = cb_session_remove(s, m->uuid);
		if (r == -EPERM) {
			uuid_str(m->uuid, u);
			conn_log(c, "remove of %s refused: not its owner", u);
		}
		reply(c, m->serial, m->type, r, NULL, 0, -1);
		return;
	case CB_MSG_WATCH:
		r = cb_session_watch(s, m->uuid);
		reply(c, m->serial, m->type, r, NULL, 0, -1);
		return;
	case CB_MSG_UNWATCH:
		r = cb_session_unwatch(s, m->uuid);
		reply(c, m->serial, m->type, r, NULL, 0, -1);
		return;
	case CB_MSG_LIST: {
		struct list_ctx ctx = {.conn = c, .serial = m->serial};
		struct cb_reply_list result = {0};
		c->list_reply = true;
		r = cb_session_list(s, send_list_entry, &ctx);
		c->list_reply = false;
		result.count = ctx.count;
		reply(c, m->serial, m->type, r < 0 ? r : 0, &result, sizeof(result), -1);
		return;
	}
	case CB_MSG_STATS: {
		struct crossbuf_stats st;
		struct cb_reply_stats result = {0};
		r = cb_session_stats(s, &st);
		if (r == 0) {
			result.entries = st.entries;
			result.clients = st.clients;
			result.exports = st.exports;
			result.lookups = st.lookups;
			result.removes = st.removes;
			result.refused = st.refused;
			result.watches = st.watches;
		}
		reply(c, m->serial, m->type, r, &result, sizeof(result), -1);
		return;
	}
	case CB_MSG_REPLY:
	case CB_MSG_LIST_ENTRY:
	case CB_MSG_EVENT_REMOVED:
		break;
	}
	/* cb_request_decode() lets no other type through. */
	reply(c, m->serial, m->type, -EOPNOTSUPP, NULL, 0, -1);
}

static void
conn_readable(struct conn *c)
{
	uint8_t buf[CB_MSG_MAX_SIZE];
	int fds[CB_PACKET_MAX_FDS];
	unsigned nfds = 0;
	size_t len;
	struct cb_request_msg m;
	uint32_t serial, type;
	int r;

	len = 0;
	/* One request per wakeup, so that one busy client cannot starve the others. */
	r = cb_packet_recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT, &len, fds, &nfds);
	if (r == -EAGAIN)
		return;
	if (r == -ECONNRESET) {
		conn_kill(c, NULL);
		return;
	}
	if (r < 0) {
		/* Its fds are closed; answer the request it carried, if its header arrived. */
		struct cb_msg_header hdr = {0};
		if (len >= sizeof(hdr))
			memcpy(&hdr, buf, sizeof(hdr));
		conn_log(c, "%s request dropped: %s", cb_msg_type_name(hdr.type), g_strerror(-r));
		reply(c, hdr.serial, hdr.type, r, NULL, 0, -1);
		if (r == -EMFILE)
			return; /* the broker's fault, not the client's */
		goto protocol_error;
	}
	r = cb_request_decode(buf, len, nfds, &m, &serial, &type);
	if (r < 0) {
		cb_close_fds(fds, nfds);
		conn_log(c, "malformed %s request: %s", cb_msg_type_name(type), g_strerror(-r));
		reply(c, serial, type, r, NULL, 0, -1);
		goto protocol_error;
	}
	if (c->broker->verbose)
		conn_log(c, "%s", cb_msg_type_name(m.type));
	/* An EXPORT's fd is taken by the core; no other request carries one. */
	handle_request(c, &m, nfds == 1 ? TAKE_FD(fds[0]) : -1);
	cb_close_fds(fds, nfds);
	return;

protocol_error:
	if (++c->protocol_errors >= MAX_PROTOCOL_ERRORS)
		conn_kill(c, "too many malformed messages");
}

static void
conn_event(struct conn *c, uint32_t events)
{
	if (events & EPOLLOUT)
		conn_flush(c);
	if (!c->dead && (events & EPOLLIN))
		conn_readable(c);
	if (!c->dead && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN))
		conn_kill(c, NULL);
}

/* The peer's supplementary groups as the kernel recorded them at connect(). 0 or -errno. */
static int
peer_groups(int fd, gid_t **ret_groups, size_t *ret_n)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *groups = NULL;
	int r = -ERANGE;

	for (int tries = 0; tries < 2 && r == -ERANGE; tries++) {
		/* After ERANGE, len is the size needed. */
		groups = g_renew(gid_t, groups, len / sizeof(gid_t) + 1);
		r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0 ? negative_errno()
										: 0;
	}
	if (r < 0) {
		g_free(groups);
		return r;
	}
	*ret_groups = groups;
	*ret_n = len / sizeof(gid_t);
	return 0;
}

static void
accept_one(struct cb_broker *b)
{
	const struct cb_policy_limits *limits = cb_policy_limits(b->policy);
	struct conn *c;
	struct epoll_event ev;
	socklen_t len;
	int fd, r;

	fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			/*
			 * Out of fds: the pending connection would keep the listening socket
			 * readable forever. Use the reserve fd to accept it and drop it.
			 */
			fprintf(stderr, "crossbufd: out of fds, dropping a new client\n");
			b->reserve_fd = safe_close(b->reserve_fd);
			fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			safe_close(fd);
			b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		}
		return;
	}
	if (b->n_pending >= MAX_PENDING_CONNECTIONS ||
	    g_hash_table_size(b->conns) >= limits->max_clients + MAX_PENDING_CONNECTIONS) {
		close(fd);
		return;
	}
	c = g_new0(struct conn, 1);
	c->broker = b;
	c->fd = fd;
	g_queue_init(&c->out);
	len = sizeof(c->cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		close(fd);
		g_free(c);
		return;
	}
	r = peer_groups(fd, &c->groups, &c->n_groups);
	if (r < 0 && !b->peergroups_logged) {
		fprintf(stderr,
			"crossbufd: SO_PEERGROUPS: %s; clients' supplementary groups are "
			"looked up in the user database\n",
			g_strerror(-r));
		b->peergroups_logged = true;
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = c};
	if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		g_free(c->groups);
		g_free(c);
		return;
	}
	c->events = EPOLLIN;
	b->n_pending++;
	g_hash_table_add(b->conns, c);
}

/* Logs the first of a run of failed writes to the state file, and the end of the run. */
static void
state_result(struct cb_broker *b, int r, const char *what)
{
	if (r < 0 && !b->state_failed)
		fprintf(stderr,
			"crossbufd: cannot %s the state file: %s; UUIDs may not be held for "
			"their exporters after a restart\n",
			what, g_strerror(-r));
	else if (r == 0 && b->state_failed)
		fprintf(stderr, "crossbufd: the state file is written again\n");
	b->state_failed = r < 0;
}

/* Replaces the state file with the registered entries and the pending reservations. */
static void
state_rewrite(struct cb_broker *b)
{
	cb_state_rewrite_begin(b->state);
	cb_core_walk(b->core, cb_state_rewrite_add, b->state);
	state_result(b, cb_state_rewrite_finish(b->state), "rewrite");
}

static void
on_record(void *userdata, const struct cb_entry_record *record, bool added)
{
	struct cb_broker *b = userdata;
	size_t live = (size_t)cb_core_entries(b->core) + cb_core_reservations(b->core);

	state_result(b, cb_state_append(b->state, record, added), "append to");
	if (cb_state_appended(b->state) > 2 * live + STATE_SLACK_RECORDS)
		state_rewrite(b);
}

/*
 * Reads the state file a previous broker left: its entries are held for their exporters
 * for hold_ms. A file too large to read is logged and replaced.
 */
static int
state_open(struct cb_broker *b, const char *path)
{
	g_autoptr(GPtrArray) entries = NULL;
	struct itimerspec when = {.it_value = {.tv_sec = b->hold_ms / 1000,
					       .tv_nsec = (long)(b->hold_ms % 1000) * 1000000L}};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &b->timer_fd};
	unsigned skipped = 0, held = 0;
	int r;

	r = cb_state_open(path, &b->state, &entries, &skipped);
	if (r == -EFBIG) {
		fprintf(stderr, "crossbufd: %s is larger than %zu bytes: not read, replaced\n",
			path, STATE_MAX_FILE_SIZE);
		if (unlink(path) < 0)
			return negative_errno();
		r = cb_state_open(path, &b->state, &entries, &skipped);
	}
	if (r < 0) {
		fprintf(stderr, "crossbufd: cannot open the state file %s: %s\n", path,
			g_strerror(-r));
		return r;
	}
	if (skipped > 0)
		fprintf(stderr, "crossbufd: %s: %u lines skipped (cut short or damaged)\n", path,
			skipped);
	for (unsigned i = 0; b->hold_ms > 0 && i < entries->len; i++)
		held += cb_core_reserve(b->core, entries->pdata[i]) == 0;
	state_rewrite(b);
	cb_core_set_record_fn(b->core, on_record, b);
	if (held == 0)
		return 0;
	fprintf(stderr, "crossbufd: %u UUIDs held for their exporters for %.1f s\n", held,
		b->hold_ms / 1000.0);
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timer_fd < 0 || timerfd_settime(b->timer_fd, 0, &when, NULL) < 0 ||
	    epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, b->timer_fd, &ev) < 0)
		return negative_errno();
	return 0;
}

/* The reclaim time is over: what was not registered again is free for anyone. */
static void
reservations_end(struct cb_broker *b)
{
	unsigned left = cb_core_reservations(b->core);

	epoll_ctl(b->epoll_fd, EPOLL_CTL_DEL, b->timer_fd, NULL);
	b->timer_fd = safe_close(b->timer_fd);
	cb_core_end_reservations(b->core);
	if (left > 0)
		fprintf(stderr, "crossbufd: %u held UUIDs were not registered again: released\n",
			left);
	state_rewrite(b);
}

int
cb_broker_new(int listen_fd, const struct cb_policy *policy, const char *state_path,
	      unsigned hold_ms, bool verbose, struct cb_broker **ret_broker)
{
	const struct cb_policy_limits *pl = cb_policy_limits(policy);
	struct cb_core_limits limits = {
		.max_entries_per_session = pl->max_entries_per_client,
		.max_watches_per_session = pl->max_watches_per_client,
		.max_sessions = pl->max_clients,
	};
	struct cb_broker *b = g_new0(struct cb_broker, 1);
	struct epoll_event ev;
	sigset_t mask;
	int r;

	b->listen_fd = listen_fd;
	b->timer_fd = -1;
	b->hold_ms = hold_ms;
	b->policy = policy;
	b->verbose = verbose;
	b->conns = g_hash_table_new(NULL, NULL);
	b->dead = g_ptr_array_new();
	b->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	b->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (b->epoll_fd < 0 || b->signal_fd < 0 || b->reserve_fd < 0) {
		r = negative_errno();
		goto fail;
	}
	r = cb_core_new(&limits, &b->core);
	if (r < 0)
		goto fail;
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &b->listen_fd};
	if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		r = negative_errno();
		goto fail;
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &b->signal_fd};
	if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, b->signal_fd, &ev) < 0) {
		r = negative_errno();
		goto fail;
	}
	if (state_path != NULL && (r = state_open(b, state_path)) < 0)
		goto fail;
	*ret_broker = b;
	return 0;
fail:
	cb_broker_free(b);
	return r;
}

int
cb_broker_run(struct cb_broker *b)
{
	while (!b->quit) {
		struct epoll_event events[32];
		int n = epoll_wait(b->epoll_fd, events, G_N_ELEMENTS(events), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;
			if (p == &b->listen_fd) {
				accept_one(b);
			} else if (p == &b->timer_fd) {
				reservations_end(b);
			} else if (p == &b->signal_fd) {
				struct signalfd_siginfo si;
				if (read(b->signal_fd, &si, sizeof(si)) == sizeof(si))
					b->quit = true;
			} else {
				struct conn *c = p;
				if (!c->dead)
					conn_event(c, events[i].events);
			}
		}
		reap_dead(b);
	}
	return 0;
}

void
cb_broker_free(struct cb_broker *b)
{
	GHashTableIter iter;
	gpointer key;

	if (b == NULL)
		return;
	/*
	 * The entries go with their clients now, but only because the broker stops: the state
	 * file keeps them, for the next broker to hold for their exporters.
	 */
	if (b->core != NULL)
		cb_core_set_record_fn(b->core, NULL, NULL);
	if (b->conns != NULL) {
		g_hash_table_iter_init(&iter, b->conns);
		while (g_hash_table_iter_next(&iter, &key, NULL))
			conn_kill(key, NULL);
		reap_dead(b);
		g_hash_table_unref(b->conns);
	}
	if (b->dead != NULL)
		g_ptr_array_unref(b->dead);
	cb_core_free(b->core);
	cb_state_free(b->state);
	safe_close(b->timer_fd);
	safe_close(b->listen_fd);
	safe_close(b->epoll_fd);
	safe_close(b->signal_fd);
	safe_close(b->reserve_fd);
	g_free(b);
}

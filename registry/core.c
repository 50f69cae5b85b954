/* SPDX-License-Identifier: MIT */
#include "core.h"

#include "buffer.h"
#include "macro.h"
#include "table.h"

#include <assert.h>
#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

struct watch;

struct entry {
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	int fd;            /* owned */
	uint64_t dev, ino; /* the fd's inode, for the state file */
	struct crossbuf_buffer_info info;
	struct cb_session *owner;
	LIST_ENTRY(entry) owner_link;
	LIST_HEAD(, watch) watchers;
};

/* One session watching one entry; on both the entry's and the session's list. */
struct watch {
	struct entry *entry;
	struct cb_session *session;
	LIST_ENTRY(watch) entry_link;
	LIST_ENTRY(watch) session_link;
};

struct domain {
	char *name;
	struct cb_table *table;
	unsigned n_sessions; /* the domain goes with its last session */
};

struct cb_session {
	struct cb_core *core;
	struct domain *domain;
	uint32_t id;
	pid_t pid;
	uid_t uid;
	uint32_t rights;
	uint32_t device_kind;
	cb_session_notify_fn notify;
	void *userdata;
	unsigned n_entries;
	unsigned n_watches;
	LIST_HEAD(, entry) entries;
	LIST_HEAD(, watch) watches;
};

/* A UUID held for its owner after a broker restart (cb_core_reserve()). */
struct reservation {
	struct cb_entry_record record; /* record.domain points at domain */
	char domain[CROSSBUF_DOMAIN_SIZE];
};

struct cb_core {
	struct cb_core_limits limits;
	GHashTable *domains;      /* name -> struct domain */
	GHashTable *reservations; /* reservation_key() -> struct reservation */
	cb_core_record_fn record_fn;
	void *record_data;
	unsigned n_sessions;
	uint32_t next_session_id;
	struct crossbuf_stats stats;
};

int
cb_domain_name_valid(const char *domain)
{
	size_t len = domain != NULL ? strnlen(domain, CROSSBUF_DOMAIN_SIZE) : 0;

	if (len == 0 || len >= CROSSBUF_DOMAIN_SIZE)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = domain[i];
		if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

static void
domain_free(gpointer p)
{
	struct domain *d = p;

	assert(cb_table_count(d->table) == 0);
	cb_table_free(d->table);
	g_free(d->name);
	g_free(d);
}

int
cb_core_new(const struct cb_core_limits *limits, struct cb_core **ret_core)
{
	struct cb_core *core = g_new0(struct cb_core, 1);

	core->limits = *limits;
	core->domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, domain_free);
	core->reservations = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	core->next_session_id = 1;
	*ret_core = core;
	return 0;
}

void
cb_core_free(struct cb_core *core)
{
	if (core == NULL)
		return;
	/* Sessions belong to their callers, who must have ended them. */
	assert(core->n_sessions == 0);
	g_hash_table_unref(core->domains);
	g_hash_table_unref(core->reservations);
	g_free(core);
}

static int
domain_get(struct cb_core *core, const char *name, struct domain **ret)
{
	struct domain *d = g_hash_table_lookup(core->domains, name);
	int r;

	if (d == NULL) {
		d = g_new0(struct domain, 1);
		r = cb_table_new(&d->table);
		if (r < 0) {
			g_free(d);
			return r;
		}
		d->name = g_strdup(name);
		g_hash_table_insert(core->domains, d->name, d);
	}
	d->n_sessions++;
	*ret = d;
	return 0;
}

static void
domain_put(struct cb_core *core, struct domain *d)
{
	assert(d->n_sessions > 0);
	if (--d->n_sessions == 0)
		g_hash_table_remove(core->domains, d->name);
}

int
cb_session_new(struct cb_core *core, const struct cb_session_params *params,
	       struct cb_session **ret_session)
{
	struct cb_session *s;
	struct domain *d;
	int r;

	assert(cb_domain_name_valid(params->domain));
	if (core->n_sessions >= core->limits.max_sessions)
		return -EUSERS;
	r = domain_get(core, params->domain, &d);
	if (r < 0)
		return r;

	s = g_new0(struct cb_session, 1);
	s->core = core;
	s->domain = d;
	s->id = core->next_session_id++;
	if (core->next_session_id == 0)
		core->next_session_id = 1;
	s->pid = params->pid;
	s->uid = params->uid;
	s->rights = params->rights;
	s->device_kind = params->device_kind;
	s->notify = params->notify;
	s->userdata = params->userdata;
	LIST_INIT(&s->entries);
	LIST_INIT(&s->watches);
	core->n_sessions++;
	core->stats.clients = core->n_sessions;
	*ret_session = s;
	return 0;
}

static void
watch_free(struct watch *w)
{
	LIST_REMOVE(w, entry_link);
	LIST_REMOVE(w, session_link);
	w->session->n_watches--;
	w->session->core->stats.watches--;
	g_free(w);
}

static struct cb_entry_record
entry_record(const struct entry *e)
{
	struct cb_entry_record r = {.domain = e->owner->domain->name,
				    .dev = e->dev,
				    .ino = e->ino,
				    .flags = e->info.flags};

	memcpy(r.uuid, e->uuid, CROSSBUF_UUID_SIZE);
	return r;
}

static void
record(struct cb_core *core, const struct entry *e, bool added)
{
	if (core->record_fn != NULL) {
		struct cb_entry_record r = entry_record(e);

		core->record_fn(core->record_data, &r, added);
	}
}

/* "DOMAIN/UUID": the reservations' key. */
static char *
reservation_key(const char *domain, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	char text[CROSSBUF_UUID_STRING_SIZE];

	crossbuf_uuid_to_string(uuid, text);
	return g_strdup_printf("%s/%s", domain, text);
}

/* Takes e out of its domain and its owner, tells its watchers why, and frees it. */
static void
entry_destroy(struct cb_core *core, struct entry *e, enum crossbuf_removal_reason reason)
{
	struct cb_session *owner = e->owner;
	struct watch *w;
	void *removed;

	record(core, e, false);
	removed = cb_table_remove(owner->domain->table, e->uuid);
	assert(removed == e);
	(void)removed;
	LIST_REMOVE(e, owner_link);
	owner->n_entries--;
	core->stats.entries--;

	while ((w = LIST_FIRST(&e->watchers)) != NULL) {
		struct cb_session *watcher = w->session;
		watch_free(w);
		if (watcher->notify != NULL)
			watcher->notify(watcher->userdata, e->uuid, reason);
	}
	close(e->fd);
	g_free(e);
}

void
cb_session_free(struct cb_session *s)
{
	struct cb_core *core;
	struct entry *e;
	struct watch *w;

	if (s == NULL)
		return;
	core = s->core;
	/* Its own watches first, so it is not told about its own entries going. */
	while ((w = LIST_FIRST(&s->watches)) != NULL)
		watch_free(w);
	while ((e = LIST_FIRST(&s->entries)) != NULL)
		entry_destroy(core, e, CROSSBUF_REMOVED_OWNER_GONE);
	domain_put(core, s->domain);
	core->n_sessions--;
	core->stats.clients = core->n_sessions;
	g_free(s);
}

uint32_t
cb_session_id(const struct cb_session *s)
{
	return s->id;
}

const char *
cb_session_domain(const struct cb_session *s)
{
	return s->domain->name;
}

static int
refused(struct cb_core *core, int r)
{
	core->stats.refused++;
	return r;
}

int
cb_session_export(struct cb_session *s, const uint8_t *uuid, int fd,
		  const struct crossbuf_buffer_info *info, uint8_t *ret_uuid,
		  const char **ret_reason)
{
	struct cb_core *core = s->core;
	_cleanup_close_ int owned = fd;
	enum crossbuf_fd_kind kind;
	g_autofree char *key = NULL;
	struct reservation *held = NULL;
	uint64_t size;
	struct stat st;
	struct entry *e;
	int r;

	*ret_reason = NULL;
	if (uuid != NULL && crossbuf_uuid_is_reserved(uuid)) {
		*ret_reason = "the nil and all-ones UUIDs are reserved";
		return refused(core, -EINVAL);
	}
	if (s->n_entries >= core->limits.max_entries_per_session) {
		*ret_reason = "too many entries for this client";
		return refused(core, -EDQUOT);
	}
	r = cb_buffer_classify(fd, &kind, &size, ret_reason);
	if (r < 0)
		return refused(core, r);
	r = cb_buffer_info_check(info, kind, size, ret_reason);
	if (r < 0)
		return refused(core, r);
	if (fstat(fd, &st) < 0)
		return refused(core, negative_errno());
	if (uuid != NULL && g_hash_table_size(core->reservations) > 0) {
		key = reservation_key(s->domain->name, uuid);
		held = g_hash_table_lookup(core->reservations, key);
		if (held != NULL && (held->record.dev != (uint64_t)st.st_dev ||
				     held->record.ino != (uint64_t)st.st_ino ||
				     ((held->record.flags & CROSSBUF_BUFFER_PROTECTED) &&
				      !(info->flags & CROSSBUF_BUFFER_PROTECTED)))) {
			*ret_reason = "the UUID is held for its exporter after a broker restart";
			return refused(core, -EEXIST);
		}
	}

	e = g_new0(struct entry, 1);
	if (uuid != NULL) {
		memcpy(e->uuid, uuid, CROSSBUF_UUID_SIZE);
	} else {
		/* A collision of random v4 UUIDs means a broken RNG; never loop on it. */
		crossbuf_uuid_generate(e->uuid);
	}
	r = cb_table_insert(s->domain->table, e->uuid, e);
	if (r < 0) {
		g_free(e);
		*ret_reason = r == -EEXIST ? "the UUID is already registered" : NULL;
		return refused(core, r);
	}
	e->fd = TAKE_FD(owned);
	e->dev = (uint64_t)st.st_dev;
	e->ino = (uint64_t)st.st_ino;
	e->info = *info;
	e->info.fd_kind = kind;
	e->info.size = size;
	e->owner = s;
	LIST_INIT(&e->watchers);
	LIST_INSERT_HEAD(&s->entries, e, owner_link);
	s->n_entries++;
	core->stats.entries++;
	core->stats.exports++;
	if (held != NULL)
		g_hash_table_remove(core->reservations, key); /* its owner is back */
	record(core, e, true);
	if (ret_uuid != NULL)
		memcpy(ret_uuid, e->uuid, CROSSBUF_UUID_SIZE);
	return 0;
}

int
cb_session_lookup(struct cb_session *s, const uint8_t uuid[CROSSBUF_UUID_SIZE],
		  struct crossbuf_buffer_info *ret_info, int *ret_fd)
{
	struct cb_core *core = s->core;
	struct entry *e = cb_table_get(s->domain->table, uuid);

	if (e == NULL)
		return refused(core, -ENOENT);
	if ((e->info.flags & CROSSBUF_BUFFER_PROTECTED) && !(s->rights & CROSSBUF_RIGHT_PROTECTED))
		return refused(core, -EACCES);
	core->stats.lookups++;
	*ret_info = e->info;
	*ret_fd = e->fd;
	return 0;
}

int
cb_session_remove(struct cb_session *s, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	struct cb_core *core = s->core;
	struct entry *e = cb_table_get(s->domain->table, uuid);

	if (e == NULL)
		return refused(core, -ENOENT);
	if (e->owner != s)
		return refused(core, -EPERM);
	entry_destroy(core, e, CROSSBUF_REMOVED_BY_OWNER);
	core->stats.removes++;
	return 0;
}

static struct watch *
find_watch(struct entry *e, struct cb_session *s)
{
	struct watch *w;

	LIST_FOREACH(w, &e->watchers, entry_link) {
		if (w->session == s)
			return w;
	}
	return NULL;
}

int
cb_session_watch(struct cb_session *s, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	struct cb_core *core = s->core;
	struct entry *e = cb_table_get(s->domain->table, uuid);
	struct watch *w;

	if (e == NULL)
		return refused(core, -ENOENT);
	if (find_watch(e, s) != NULL)
		return refused(core, -EALREADY);
	if (s->n_watches >= core->limits.max_watches_per_session)
		return refused(core, -EDQUOT);
	w = g_new0(struct watch, 1);
	w->entry = e;
	w->session = s;
	LIST_INSERT_HEAD(&e->watchers, w, entry_link);
	LIST_INSERT_HEAD(&s->watches, w, session_link);
	s->n_watches++;
	core->stats.watches++;
	return 0;
}

int
cb_session_unwatch(struct cb_session *s, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	struct entry *e = cb_table_get(s->domain->table, uuid);
	struct watch *w = e != NULL ? find_watch(e, s) : NULL;

	if (w == NULL)
		return refused(s->core, -ENOENT);
	watch_free(w);
	return 0;
}

static int
list_domain(struct domain *d, crossbuf_list_fn fn, void *userdata)
{
	struct cb_table_iter iter;
	const uint8_t *uuid;
	void *value;

	cb_table_iter_init(&iter);
	while (cb_table_iter_next(d->table, &iter, &uuid, &value)) {
		const struct entry *e = value;
		struct crossbuf_owner_info owner = {
			.client_id = e->owner->id,
			.pid = e->owner->pid,
			.uid = e->owner->uid,
		};
		int r;

		g_strlcpy(owner.domain, d->name, sizeof(owner.domain));
		r = fn(userdata, e->uuid, &e->info, &owner);
		if (r != 0)
			return r;
	}
	return 0;
}

int
cb_session_list(struct cb_session *s, crossbuf_list_fn fn, void *userdata)
{
	GHashTableIter iter;
	gpointer value;

	if (!(s->rights & CROSSBUF_RIGHT_ADMIN))
		return refused(s->core, -EPERM);
	g_hash_table_iter_init(&iter, s->core->domains);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		int r = list_domain(value, fn, userdata);
		if (r != 0)
			return r;
	}
	return 0;
}

int
cb_session_stats(struct cb_session *s, struct crossbuf_stats *ret_stats)
{
	if (!(s->rights & CROSSBUF_RIGHT_ADMIN))
		return refused(s->core, -EPERM);
	*ret_stats = s->core->stats;
	return 0;
}

/* --- Across a broker restart ------------------------------------------------------------- */

void
cb_core_set_record_fn(struct cb_core *core, cb_core_record_fn fn, void *userdata)
{
	core->record_fn = fn;
	core->record_data = userdata;
}

int
cb_core_reserve(struct cb_core *core, const struct cb_entry_record *record)
{
	struct domain *d;
	struct reservation *res;
	char *key;

	if (!cb_domain_name_valid(record->domain) || crossbuf_uuid_is_reserved(record->uuid))
		return -EINVAL;
	d = g_hash_table_lookup(core->domains, record->domain);
	if (d != NULL && cb_table_get(d->table, record->uuid) != NULL)
		return -EEXIST;
	key = reservation_key(record->domain, record->uuid);
	if (g_hash_table_contains(core->reservations, key)) {
		g_free(key);
		return -EEXIST;
	}
	res = g_new0(struct reservation, 1);
	res->record = *record;
	g_strlcpy(res->domain, record->domain, sizeof(res->domain));
	res->record.domain = res->domain;
	g_hash_table_insert(core->reservations, key, res);
	return 0;
}

void
cb_core_end_reservations(struct cb_core *core)
{
	g_hash_table_remove_all(core->reservations);
}

unsigned
cb_core_reservations(const struct cb_core *core)
{
	return g_hash_table_size(core->reservations);
}

unsigned
cb_core_entries(const struct cb_core *core)
{
	return (unsigned)core->stats.entries;
}

void
cb_core_walk(struct cb_core *core, cb_core_record_fn fn, void *userdata)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, core->domains);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct domain *d = value;
		struct cb_table_iter ti;
		const uint8_t *uuid;
		void *e;

		cb_table_iter_init(&ti);
		while (cb_table_iter_next(d->table, &ti, &uuid, &e)) {
			struct cb_entry_record r = entry_record(e);

			fn(userdata, &r, true);
		}
	}
	g_hash_table_iter_init(&iter, core->reservations);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		const struct reservation *res = value;

		fn(userdata, &res->record, true);
	}
}

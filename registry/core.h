/* SPDX-License-Identifier: MIT */
/*
 * The registry's logic, shared by crossbufd and the embedded registry: domains, entries,
 * sessions (one per client), ownership, watches and counters. It knows nothing of sockets;
 * the broker and the embedded client each map their clients onto sessions.
 *
 * Each domain (one VM) has its own table, so a client can neither see, resolve nor remove
 * another domain's entries, nor learn that a UUID exists there. An entry belongs to the
 * session that exported it; when that session ends, its entries go and their watchers are
 * told. The core owns one duplicate of every stored fd and a copy of every UUID.
 *
 * Not thread-safe: the broker is single-threaded, the embedded registry locks around it.
 */
#pragma once

#include <crossbuf/crossbuf.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cb_core;
struct cb_session;

struct cb_core_limits {
	uint32_t max_entries_per_session;
	uint32_t max_watches_per_session;
	uint32_t max_sessions;
};

/* Tells a session that a watched entry is gone. Must not call back into the core. */
typedef void (*cb_session_notify_fn)(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
				     enum crossbuf_removal_reason reason);

struct cb_session_params {
	pid_t pid;
	uid_t uid;
	const char *domain; /* validated by cb_domain_name_valid() */
	uint32_t rights;    /* enum crossbuf_client_rights granted */
	uint32_t device_kind;
	cb_session_notify_fn notify;
	void *userdata;
};

int cb_core_new(const struct cb_core_limits *limits, struct cb_core **ret_core);
/* Ends every session first. Accepts NULL. */
void cb_core_free(struct cb_core *core);

/* -EUSERS when max_sessions are open. */
int cb_session_new(struct cb_core *core, const struct cb_session_params *params,
		   struct cb_session **ret_session);
/* Removes the session's entries (watchers told OWNER_GONE) and its watches. Accepts NULL. */
void cb_session_free(struct cb_session *session);
uint32_t cb_session_id(const struct cb_session *session);
const char *cb_session_domain(const struct cb_session *session);

/*
 * Stores fd (TAKEN, even on failure) under uuid, or under a fresh random UUID when uuid is
 * NULL; the UUID is written to ret_uuid (may be NULL). -EEXIST, -EINVAL (reserved UUID,
 * bad fd or info, with *ret_reason), -EDQUOT, -ENOMEM.
 */
int cb_session_export(struct cb_session *session, const uint8_t *uuid, int fd,
		      const struct crossbuf_buffer_info *info, uint8_t *ret_uuid,
		      const char **ret_reason);
/*
 * Resolves uuid in the session's domain. *ret_fd is BORROWED: the core's own fd, valid until
 * the entry is removed; dup it or send it before calling into the core again.
 * -ENOENT, -EACCES (protected entry, no right).
 */
int cb_session_lookup(struct cb_session *session, const uint8_t uuid[CROSSBUF_UUID_SIZE],
		      struct crossbuf_buffer_info *ret_info, int *ret_fd);
/* -ENOENT, -EPERM (exported by another session). */
int cb_session_remove(struct cb_session *session, const uint8_t uuid[CROSSBUF_UUID_SIZE]);
/* -ENOENT, -EALREADY (already watching), -EDQUOT. */
int cb_session_watch(struct cb_session *session, const uint8_t uuid[CROSSBUF_UUID_SIZE]);
/* -ENOENT if not watching. */
int cb_session_unwatch(struct cb_session *session, const uint8_t uuid[CROSSBUF_UUID_SIZE]);

/*
 * Calls fn for every entry the session may see: all domains with CROSSBUF_RIGHT_ADMIN, else
 * -EPERM. Stops at the first non-zero return of fn and returns it. fn must not modify the
 * registry.
 */
int cb_session_list(struct cb_session *session, crossbuf_list_fn fn, void *userdata);
/* -EPERM without CROSSBUF_RIGHT_ADMIN. */
int cb_session_stats(struct cb_session *session, struct crossbuf_stats *ret_stats);

/* 1..63 bytes of [A-Za-z0-9._-]. */
int cb_domain_name_valid(const char *domain);

/*
 * Across a broker restart (crossbufd's state file, state.h). An entry is recorded by what
 * names it and the buffer it holds: the fd's inode, which only a process holding that
 * buffer can show again.
 */
struct cb_entry_record {
	const char *domain;
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	uint64_t dev, ino; /* st_dev and st_ino of the buffer's fd */
	uint32_t flags;    /* crossbuf_buffer_info.flags */
};

/* An entry was registered (added) or went away. Must not call back into the core. */
typedef void (*cb_core_record_fn)(void *userdata, const struct cb_entry_record *record, bool added);
/* fn (NULL: none) is told of every entry registered and removed from now on. */
void cb_core_set_record_fn(struct cb_core *core, cb_core_record_fn fn, void *userdata);

/*
 * Holds record->uuid in record->domain for the exporter that had it before a restart: until
 * cb_core_end_reservations(), an export of that UUID there succeeds only with the same
 * buffer (same inode) and, if the entry was protected, protected again; any other is
 * -EEXIST. The first matching export takes the reservation. -EEXIST if the UUID is already
 * registered or reserved there, -EINVAL for a bad domain or reserved UUID.
 */
int cb_core_reserve(struct cb_core *core, const struct cb_entry_record *record);
void cb_core_end_reservations(struct cb_core *core);
unsigned cb_core_reservations(const struct cb_core *core);
/* The registered entries. */
unsigned cb_core_entries(const struct cb_core *core);

/* Calls fn (added = true) for every registered entry and every reservation. */
void cb_core_walk(struct cb_core *core, cb_core_record_fn fn, void *userdata);

/* SPDX-License-Identifier: MIT */
/*
 * Who may do what in the broker, from a GKeyFile config (see docs/security.md):
 *
 *   [broker]
 *   max-entries-per-client=4096
 *   max-watches-per-client=4096
 *   max-clients=256
 *
 *   [domain vm0]
 *   uids=1000;1001          # users whose clients may join domain vm0
 *   gids=kvm                # or groups (names or numbers)
 *   protected-uids=1000     # may also look up protected entries of vm0
 *   protected-gids=
 *
 *   [admin]
 *   uids=0                  # may list every domain's entries and read stats
 *   gids=
 *
 * Defaults when no file exists or a key is absent: the broker's own uid and root may join
 * any domain, hold protected rights and administer; nobody else may do anything.
 *
 * In detail: an absent uids key (of a domain, of a domain not in the file, or of [admin])
 * stands for root and the broker's uid; an absent gids key for no group. A key that is
 * present replaces its default, and an empty value means nobody. Only uids/gids decide who
 * may join a domain: protected-* and [admin] add rights to a peer that may join, never
 * admission. Lists are ';'-separated (a trailing ';' is fine); a '#' that starts a value or
 * follows a blank starts a comment. Unknown groups, unknown keys and repeated keys are errors.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct cb_policy;

struct cb_policy_limits {
	uint32_t max_entries_per_client;
	uint32_t max_watches_per_client;
	uint32_t max_clients;
};

/* Built-in defaults only (no file). */
int cb_policy_new_default(uid_t broker_uid, struct cb_policy **ret_policy);
/*
 * Loads path. A missing file gives the defaults; a malformed one (syntax, unknown group,
 * unknown user or group name, a limit out of range) is -EINVAL with the reason in
 * *ret_error (g_free it; ret_error may be NULL), naming the file, group and key. A file that
 * cannot be read is a negative errno too, also with a reason.
 */
int cb_policy_load(const char *path, uid_t broker_uid, struct cb_policy **ret_policy,
		   char **ret_error);
void cb_policy_free(struct cb_policy *policy);

const struct cb_policy_limits *cb_policy_limits(const struct cb_policy *policy);

/*
 * The rights (enum crossbuf_client_rights) a peer with uid/gid (and its supplementary
 * groups, looked up by uid in the user database) holds in domain, or -EPERM if it may not
 * join domain at all. The lookup may block (NSS): the broker uses cb_policy_check_groups().
 */
int cb_policy_check(const struct cb_policy *policy, const char *domain, uid_t uid, gid_t gid,
		    uint32_t *ret_rights);
/*
 * The same with the peer's supplementary groups given (n_groups of them, as SO_PEERGROUPS
 * reports them for a socket peer): no lookup, never blocks.
 */
int cb_policy_check_groups(const struct cb_policy *policy, const char *domain, uid_t uid, gid_t gid,
			   const gid_t *groups, size_t n_groups, uint32_t *ret_rights);

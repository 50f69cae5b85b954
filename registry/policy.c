/* SPDX-License-Identifier: MIT */
#include "policy.h"

#include "macro.h"

#include <assert.h>
#include <crossbuf/crossbuf.h>
#include <errno.h>
#include <glib.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#define DEFAULT_MAX_ENTRIES_PER_CLIENT 4096
#define DEFAULT_MAX_WATCHES_PER_CLIENT 4096
#define DEFAULT_MAX_CLIENTS            256

#define DOMAIN_GROUP_PREFIX "domain "

/* A list of uids or gids; NULL stands for "key absent": the default applies. */
struct domain_rule {
	GArray *uids;
	GArray *gids;
	GArray *protected_uids;
	GArray *protected_gids;
};

struct cb_policy {
	uid_t broker_uid;
	struct cb_policy_limits limits;
	GHashTable *domains; /* name -> struct domain_rule */
	GArray *admin_uids;
	GArray *admin_gids;
};

static void
array_unref0(GArray *a)
{
	if (a)
		g_array_unref(a);
}

static void
domain_rule_free(gpointer p)
{
	struct domain_rule *rule = p;

	array_unref0(rule->uids);
	array_unref0(rule->gids);
	array_unref0(rule->protected_uids);
	array_unref0(rule->protected_gids);
	g_free(rule);
}

static bool
domain_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= CROSSBUF_DOMAIN_SIZE)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static struct cb_policy *
policy_alloc(uid_t broker_uid)
{
	struct cb_policy *policy = g_new0(struct cb_policy, 1);

	policy->broker_uid = broker_uid;
	policy->limits = (struct cb_policy_limits){
		.max_entries_per_client = DEFAULT_MAX_ENTRIES_PER_CLIENT,
		.max_watches_per_client = DEFAULT_MAX_WATCHES_PER_CLIENT,
		.max_clients = DEFAULT_MAX_CLIENTS,
	};
	policy->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, domain_rule_free);
	return policy;
}

int
cb_policy_new_default(uid_t broker_uid, struct cb_policy **ret_policy)
{
	if (!ret_policy)
		return -EINVAL;
	*ret_policy = policy_alloc(broker_uid);
	return 0;
}

void
cb_policy_free(struct cb_policy *policy)
{
	if (!policy)
		return;
	g_hash_table_unref(policy->domains);
	array_unref0(policy->admin_uids);
	array_unref0(policy->admin_gids);
	g_free(policy);
}

const struct cb_policy_limits *
cb_policy_limits(const struct cb_policy *policy)
{
	assert(policy);
	return &policy->limits;
}

/* --- Loading ------------------------------------------------------------------------------ */

struct loader {
	const char *path;
	GKeyFile *file;
	char *error;
};

/* Records the first error, naming the file, the group and the key. Returns -EINVAL. */
static int fail(struct loader *l, const char *group, const char *key, const char *fmt, ...)
	_printf_(4, 5);

static int
fail(struct loader *l, const char *group, const char *key, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (!l->error) {
		g_autofree char *e = NULL;

		if (key)
			e = g_strdup_printf("%s: [%s] %s: %s", l->path, group, key, msg);
		else
			e = g_strdup_printf("%s: [%s]: %s", l->path, group, msg);
		/* The message ends up in logs: never pass on bytes that are not UTF-8. */
		l->error = g_utf8_make_valid(e, -1);
	}
	return -EINVAL;
}

/*
 * The raw value with a trailing comment cut off and the blanks around it trimmed. GKeyFile
 * only knows whole-line comments; a '#' that starts the value or follows a blank starts one
 * here too (no number, user or group name holds one), so "uids=1000  # me" means 1000.
 */
static int
get_value(struct loader *l, const char *group, const char *key, char **ret_value)
{
	char *v = g_key_file_get_value(l->file, group, key, NULL);

	assert(v);
	if (!g_utf8_validate(v, -1, NULL)) {
		g_free(v);
		return fail(l, group, key, "value is not valid UTF-8");
	}
	for (char *p = v; *p; p++) {
		if (*p == '#' && (p == v || g_ascii_isspace(p[-1]))) {
			*p = '\0';
			break;
		}
	}
	*ret_value = g_strstrip(v);
	return 0;
}

static int
parse_limit(struct loader *l, const char *group, const char *key, uint32_t max, uint32_t *ret_value)
{
	g_autofree char *v = NULL;
	guint64 n;
	int r;

	r = get_value(l, group, key, &v);
	if (r < 0)
		return r;

	if (!g_ascii_string_to_unsigned(v, 10, 1, max, &n, NULL))
		return fail(l, group, key, "'%s' is not a whole number from 1 to %u", v, max);
	*ret_value = (uint32_t)n;
	return 0;
}

/* getpwnam_r/getgrnam_r want a buffer; grow it on ERANGE. */
#define NSS_BUFFER_MAX (1u << 20)

static int
lookup_user(const char *name, uint32_t *ret_uid)
{
	size_t size = 1024;

	for (;;) {
		g_autofree char *buf = g_malloc(size);
		struct passwd pw, *res = NULL;
		int r = getpwnam_r(name, &pw, buf, size, &res);

		if (r == ERANGE && size < NSS_BUFFER_MAX) {
			size *= 2;
			continue;
		}
		if (r != 0)
			return -r;
		if (!res)
			return -ENOENT;
		*ret_uid = (uint32_t)pw.pw_uid;
		return 0;
	}
}

static int
lookup_group(const char *name, uint32_t *ret_gid)
{
	size_t size = 1024;

	for (;;) {
		g_autofree char *buf = g_malloc(size);
		struct group gr, *res = NULL;
		int r = getgrnam_r(name, &gr, buf, size, &res);

		if (r == ERANGE && size < NSS_BUFFER_MAX) {
			size *= 2;
			continue;
		}
		if (r != 0)
			return -r;
		if (!res)
			return -ENOENT;
		*ret_gid = (uint32_t)gr.gr_gid;
		return 0;
	}
}

static bool
all_digits(const char *s)
{
	for (; *s; s++) {
		if (!g_ascii_isdigit(*s))
			return false;
	}
	return true;
}

/*
 * A ';'-separated list of numeric ids or names (a trailing ';' is allowed, as in every
 * GKeyFile list). An empty value is an empty list: nobody.
 */
static int
parse_ids(struct loader *l, const char *group, const char *key, bool groups, GArray **ret_ids)
{
	const char *what = groups ? "group" : "user";
	g_autofree char *v = NULL;
	g_auto(GStrv) items = NULL;
	g_autoptr(GArray) ids = NULL;
	size_t n;
	int r;

	r = get_value(l, group, key, &v);
	if (r < 0)
		return r;
	ids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	items = g_strsplit(v, ";", -1);
	n = g_strv_length(items);
	for (size_t i = 0; i < n; i++) {
		char *item = g_strstrip(items[i]);
		uint32_t id;

		if (*item == '\0') {
			if (i + 1 == n)
				break; /* "a;b;" and "" */
			return fail(l, group, key, "empty entry in '%s'", v);
		}
		if (all_digits(item)) {
			guint64 u;

			/* (uid_t)-1 means "no id" to the kernel: never a real one. */
			if (!g_ascii_string_to_unsigned(item, 10, 0, UINT32_MAX - 1, &u, NULL))
				return fail(l, group, key, "%s id '%s' is out of range 0..%u", what,
					    item, UINT32_MAX - 1);
			id = (uint32_t)u;
		} else {
			r = groups ? lookup_group(item, &id) : lookup_user(item, &id);
			if (r == -ENOENT)
				return fail(l, group, key, "unknown %s '%s'", what, item);
			if (r < 0)
				return fail(l, group, key, "cannot look up %s '%s': %s", what, item,
					    g_strerror(-r));
		}
		g_array_append_val(ids, id);
	}
	*ret_ids = g_steal_pointer(&ids);
	return 0;
}

static bool
is_one_of(const char *s, const char *const *set)
{
	for (; *set; set++) {
		if (strcmp(s, *set) == 0)
			return true;
	}
	return false;
}

/* Refuses keys outside allowed and keys given twice (GKeyFile would keep the last). */
static int
check_keys(struct loader *l, const char *group, const char *const *allowed, GStrv *ret_keys)
{
	g_auto(GStrv) keys = g_key_file_get_keys(l->file, group, NULL, NULL);

	for (size_t i = 0; keys && keys[i]; i++) {
		if (!is_one_of(keys[i], allowed))
			return fail(l, group, keys[i], "unknown key");
		for (size_t j = 0; j < i; j++) {
			if (strcmp(keys[i], keys[j]) == 0)
				return fail(l, group, keys[i], "given more than once");
		}
	}
	*ret_keys = g_steal_pointer(&keys);
	return 0;
}

static int
load_broker(struct loader *l, struct cb_policy *policy, const char *group)
{
	static const char *const allowed[] = {"max-entries-per-client", "max-watches-per-client",
					      "max-clients", NULL};
	struct cb_policy_limits *lim = &policy->limits;
	g_auto(GStrv) keys = NULL;
	int r;

	r = check_keys(l, group, allowed, &keys);
	for (size_t i = 0; r == 0 && keys[i]; i++) {
		if (strcmp(keys[i], "max-entries-per-client") == 0)
			r = parse_limit(l, group, keys[i], 1000000, &lim->max_entries_per_client);
		else if (strcmp(keys[i], "max-watches-per-client") == 0)
			r = parse_limit(l, group, keys[i], 1000000, &lim->max_watches_per_client);
		else
			r = parse_limit(l, group, keys[i], 65536, &lim->max_clients);
	}
	return r;
}

static int
load_admin(struct loader *l, struct cb_policy *policy, const char *group)
{
	static const char *const allowed[] = {"uids", "gids", NULL};
	g_auto(GStrv) keys = NULL;
	int r;

	r = check_keys(l, group, allowed, &keys);
	for (size_t i = 0; r == 0 && keys[i]; i++) {
		if (strcmp(keys[i], "uids") == 0)
			r = parse_ids(l, group, keys[i], false, &policy->admin_uids);
		else
			r = parse_ids(l, group, keys[i], true, &policy->admin_gids);
	}
	return r;
}

static int
load_domain(struct loader *l, struct cb_policy *policy, const char *group)
{
	static const char *const allowed[] = {"uids", "gids", "protected-uids", "protected-gids",
					      NULL};
	const char *name = group + strlen(DOMAIN_GROUP_PREFIX);
	struct domain_rule *rule;
	g_auto(GStrv) keys = NULL;
	int r;

	if (!domain_name_valid(name))
		return fail(l, group, NULL,
			    "domain name must be 1 to %d characters of A-Z a-z 0-9 . _ -",
			    CROSSBUF_DOMAIN_SIZE - 1);
	r = check_keys(l, group, allowed, &keys);
	if (r < 0)
		return r;

	/* GKeyFile merges a group given twice, so each name arrives here once. */
	rule = g_new0(struct domain_rule, 1);
	g_hash_table_insert(policy->domains, g_strdup(name), rule);
	for (size_t i = 0; r == 0 && keys[i]; i++) {
		if (strcmp(keys[i], "uids") == 0)
			r = parse_ids(l, group, keys[i], false, &rule->uids);
		else if (strcmp(keys[i], "gids") == 0)
			r = parse_ids(l, group, keys[i], true, &rule->gids);
		else if (strcmp(keys[i], "protected-uids") == 0)
			r = parse_ids(l, group, keys[i], false, &rule->protected_uids);
		else
			r = parse_ids(l, group, keys[i], true, &rule->protected_gids);
	}
	return r;
}

/* GKeyFile's parse errors (and "not a regular file") are -EINVAL; file errors roughly keep
 * their errno. */
static int
load_error_to_errno(const GError *error)
{
	if (error->domain != G_FILE_ERROR)
		return -EINVAL;
	if (error->code == G_FILE_ERROR_ACCES || error->code == G_FILE_ERROR_PERM)
		return -EACCES;
	if (error->code == G_FILE_ERROR_NOMEM)
		return -ENOMEM;
	return -EIO;
}

int
cb_policy_load(const char *path, uid_t broker_uid, struct cb_policy **ret_policy, char **ret_error)
{
	g_autoptr(GKeyFile) file = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) groups = NULL;
	struct loader l = {.path = path};
	struct cb_policy *policy;
	int r = 0;

	if (!path || !ret_policy)
		return -EINVAL;

	file = g_key_file_new();
	/* Keep "key[locale]" entries so that they show up as the unknown keys they are. */
	if (!g_key_file_load_from_file(file, path, G_KEY_FILE_KEEP_TRANSLATIONS, &error)) {
		if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return cb_policy_new_default(broker_uid, ret_policy);
		if (ret_error)
			*ret_error = g_strdup_printf("%s: %s", path, error->message);
		return load_error_to_errno(error);
	}
	l.file = file;

	policy = policy_alloc(broker_uid);
	groups = g_key_file_get_groups(file, NULL);
	for (size_t i = 0; r == 0 && groups[i]; i++) {
		const char *g = groups[i];

		if (strcmp(g, "broker") == 0)
			r = load_broker(&l, policy, g);
		else if (strcmp(g, "admin") == 0)
			r = load_admin(&l, policy, g);
		else if (g_str_has_prefix(g, DOMAIN_GROUP_PREFIX))
			r = load_domain(&l, policy, g);
		else
			r = fail(&l, g, NULL,
				 "unknown group (expected [broker], [admin] or [domain NAME])");
	}
	if (r < 0) {
		cb_policy_free(policy);
		if (ret_error)
			*ret_error = TAKE_PTR(l.error);
		g_free(l.error);
		return r;
	}
	*ret_policy = policy;
	return 0;
}

/* --- Checking ----------------------------------------------------------------------------- */

/*
 * The peer's groups: its gid and its supplementary ones, given by the caller or looked up
 * for its user on first use.
 */
struct peer {
	uid_t uid;
	gid_t gid;
	bool loaded;
	bool owned; /* groups were allocated by peer_load_groups() */
	const gid_t *groups;
	int n_groups;
};

static void
peer_load_groups(struct peer *peer)
{
	size_t size = 1024;
	char *buf = NULL;
	struct passwd pw, *res = NULL;

	gid_t *groups = NULL;

	peer->loaded = true;
	peer->owned = true;
	for (;;) {
		int r;

		buf = g_realloc(buf, size);
		r = getpwuid_r(peer->uid, &pw, buf, size, &res);
		if (r == ERANGE && size < NSS_BUFFER_MAX) {
			size *= 2;
			continue;
		}
		break;
	}
	if (res) {
		int n = 16;

		for (;;) {
			int want = n;

			groups = g_renew(gid_t, groups, n);
			if (getgrouplist(pw.pw_name, peer->gid, groups, &n) >= 0)
				break;
			/* n now holds the number needed (glibc), else double it. */
			if (n <= want)
				n = want * 2;
			if (n > 65536) {
				n = 0;
				break;
			}
		}
		peer->n_groups = n;
	}
	peer->groups = groups;
	g_free(buf);
}

static bool
array_has(const GArray *ids, uint32_t id)
{
	for (guint i = 0; i < ids->len; i++) {
		if (g_array_index(ids, uint32_t, i) == id)
			return true;
	}
	return false;
}

static bool
uid_matches(const struct cb_policy *policy, const GArray *uids, const struct peer *peer)
{
	if (!uids)
		return peer->uid == 0 || peer->uid == policy->broker_uid;
	return array_has(uids, peer->uid);
}

/* Absent gid keys match nobody. */
static bool
gid_matches(const GArray *gids, struct peer *peer)
{
	if (!gids || gids->len == 0)
		return false;
	if (array_has(gids, peer->gid))
		return true;
	if (!peer->loaded)
		peer_load_groups(peer);
	for (int i = 0; i < peer->n_groups; i++) {
		if (array_has(gids, peer->groups[i]))
			return true;
	}
	return false;
}

static int
check(const struct cb_policy *policy, const char *domain, struct peer peer, uint32_t *ret_rights)
{
	static const struct domain_rule absent = {0};
	const struct domain_rule *rule;
	uint32_t rights = 0;
	int r = 0;

	if (!policy || !domain || !ret_rights || !domain_name_valid(domain))
		return -EINVAL;

	rule = g_hash_table_lookup(policy->domains, domain);
	if (!rule)
		rule = &absent;

	if (!uid_matches(policy, rule->uids, &peer) && !gid_matches(rule->gids, &peer)) {
		r = -EPERM;
		goto out;
	}
	if (uid_matches(policy, rule->protected_uids, &peer) ||
	    gid_matches(rule->protected_gids, &peer))
		rights |= CROSSBUF_RIGHT_PROTECTED;
	if (uid_matches(policy, policy->admin_uids, &peer) ||
	    gid_matches(policy->admin_gids, &peer))
		rights |= CROSSBUF_RIGHT_ADMIN;
	*ret_rights = rights;
out:
	if (peer.owned)
		g_free((gid_t *)peer.groups);
	return r;
}

int
cb_policy_check(const struct cb_policy *policy, const char *domain, uid_t uid, gid_t gid,
		uint32_t *ret_rights)
{
	return check(policy, domain, (struct peer){.uid = uid, .gid = gid}, ret_rights);
}

int
cb_policy_check_groups(const struct cb_policy *policy, const char *domain, uid_t uid, gid_t gid,
		       const gid_t *groups, size_t n_groups, uint32_t *ret_rights)
{
	struct peer peer = {.uid = uid,
			    .gid = gid,
			    .loaded = true,
			    .groups = groups,
			    .n_groups = (int)MIN(n_groups, (size_t)INT_MAX)};

	if (n_groups > 0 && groups == NULL)
		return -EINVAL;
	return check(policy, domain, peer, ret_rights);
}

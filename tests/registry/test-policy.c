/* SPDX-License-Identifier: MIT */
#include "policy.h"
#include "testutil.h"

#include <crossbuf/crossbuf.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>

#define BROKER_UID 4242u
#define NOBODY_UID 31337u
#define NOBODY_GID 31337u
#define ALL        (CROSSBUF_RIGHT_PROTECTED | CROSSBUF_RIGHT_ADMIN)

static char *tmpdir;

/* Writes content to a fresh file in the test's directory; g_free the path, then unlink it. */
static char *
write_config(const char *content)
{
	static unsigned counter;
	char *path = g_strdup_printf("%s/policy-%u.conf", tmpdir, counter++);

	g_assert_true(g_file_set_contents(path, content, -1, NULL));
	return path;
}

static struct cb_policy *
load_ok(const char *content)
{
	g_autofree char *path = write_config(content);
	g_autofree char *error = NULL;
	struct cb_policy *policy = NULL;
	int r = cb_policy_load(path, BROKER_UID, &policy, &error);

	if (r < 0)
		g_error("loading %s failed: %d %s", content, r, error);
	g_assert_null(error);
	g_assert_nonnull(policy);
	g_unlink(path);
	return policy;
}

/* -EPERM, or the rights as a non-negative number. */
static int
check(const struct cb_policy *policy, const char *domain, uid_t uid, gid_t gid)
{
	uint32_t rights = 0xdead;
	int r = cb_policy_check(policy, domain, uid, gid, &rights);

	if (r < 0) {
		g_assert_cmpuint(rights, ==, 0xdead);
		return r;
	}
	g_assert_cmpint(r, ==, 0);
	return (int)rights;
}

static void
assert_default_limits(const struct cb_policy *policy)
{
	const struct cb_policy_limits *lim = cb_policy_limits(policy);

	g_assert_cmpuint(lim->max_entries_per_client, ==, 4096);
	g_assert_cmpuint(lim->max_watches_per_client, ==, 4096);
	g_assert_cmpuint(lim->max_clients, ==, 256);
}

/* Root and the broker's uid may do everything anywhere; nobody else anything. */
static void
assert_default_rights(const struct cb_policy *policy)
{
	const char *domains[] = {"default", "vm0", "a", "x.y_z-9"};

	for (size_t i = 0; i < G_N_ELEMENTS(domains); i++) {
		g_assert_cmpint(check(policy, domains[i], 0, 0), ==, ALL);
		g_assert_cmpint(check(policy, domains[i], BROKER_UID, 100), ==, ALL);
		g_assert_cmpint(check(policy, domains[i], NOBODY_UID, NOBODY_GID), ==, -EPERM);
		/* Group 0 is not root. */
		g_assert_cmpint(check(policy, domains[i], NOBODY_UID, 0), ==, -EPERM);
	}
}

static void
test_defaults(void)
{
	struct cb_policy *policy = NULL;

	g_assert_cmpint(cb_policy_new_default(BROKER_UID, &policy), ==, 0);
	assert_default_limits(policy);
	assert_default_rights(policy);
	cb_policy_free(policy);
	cb_policy_free(NULL);
}

static void
test_missing_file(void)
{
	g_autofree char *path = g_build_filename(tmpdir, "does-not-exist.conf", NULL);
	g_autofree char *error = NULL;
	struct cb_policy *policy = NULL;

	g_assert_cmpint(cb_policy_load(path, BROKER_UID, &policy, &error), ==, 0);
	g_assert_null(error);
	assert_default_limits(policy);
	assert_default_rights(policy);
	cb_policy_free(policy);
}

static void
test_empty_file(void)
{
	struct cb_policy *policy = load_ok("# nothing here\n\n");

	assert_default_limits(policy);
	assert_default_rights(policy);
	cb_policy_free(policy);

	/* Empty groups change nothing either. */
	policy = load_ok("[broker]\n[admin]\n[domain vm0]\n");
	assert_default_limits(policy);
	assert_default_rights(policy);
	cb_policy_free(policy);
}

static void
test_broker_limits(void)
{
	struct cb_policy *policy;
	const struct cb_policy_limits *lim;

	policy = load_ok("[broker]\nmax-entries-per-client=10\nmax-watches-per-client=20\n"
			 "max-clients=30\n");
	lim = cb_policy_limits(policy);
	g_assert_cmpuint(lim->max_entries_per_client, ==, 10);
	g_assert_cmpuint(lim->max_watches_per_client, ==, 20);
	g_assert_cmpuint(lim->max_clients, ==, 30);
	cb_policy_free(policy);

	/* Each key alone; the others keep their defaults. Bounds are inclusive. */
	policy = load_ok("[broker]\nmax-entries-per-client=1000000\n");
	lim = cb_policy_limits(policy);
	g_assert_cmpuint(lim->max_entries_per_client, ==, 1000000);
	g_assert_cmpuint(lim->max_watches_per_client, ==, 4096);
	g_assert_cmpuint(lim->max_clients, ==, 256);
	cb_policy_free(policy);

	policy = load_ok("[broker]\nmax-watches-per-client=1\n");
	lim = cb_policy_limits(policy);
	g_assert_cmpuint(lim->max_entries_per_client, ==, 4096);
	g_assert_cmpuint(lim->max_watches_per_client, ==, 1);
	cb_policy_free(policy);

	policy = load_ok("[broker]\nmax-clients=65536\n");
	lim = cb_policy_limits(policy);
	g_assert_cmpuint(lim->max_clients, ==, 65536);
	g_assert_cmpuint(lim->max_entries_per_client, ==, 4096);
	cb_policy_free(policy);

	/* Blanks and a trailing comment around a number. */
	policy = load_ok("[broker]\nmax-clients =  7   # seven\n");
	g_assert_cmpuint(cb_policy_limits(policy)->max_clients, ==, 7);
	cb_policy_free(policy);
}

static void
test_domain_uids(void)
{
	struct cb_policy *policy = load_ok("[domain vm0]\n"
					   "uids=1000;1001\n"
					   "protected-uids=1000\n");

	g_assert_cmpint(check(policy, "vm0", 1000, 1000), ==, CROSSBUF_RIGHT_PROTECTED);
	g_assert_cmpint(check(policy, "vm0", 1001, 1001), ==, 0);
	g_assert_cmpint(check(policy, "vm0", 1002, 1000), ==, -EPERM);
	/* Present keys replace the default: root is not listed for vm0 ... */
	g_assert_cmpint(check(policy, "vm0", 0, 0), ==, -EPERM);
	g_assert_cmpint(check(policy, "vm0", BROKER_UID, 0), ==, -EPERM);
	/* ... but still joins every other domain, and [admin] is absent so root administers. */
	g_assert_cmpint(check(policy, "vm1", 0, 0), ==, ALL);
	g_assert_cmpint(check(policy, "vm1", 1000, 1000), ==, -EPERM);
	/* Domain names are exact. */
	g_assert_cmpint(check(policy, "VM0", 1000, 1000), ==, -EPERM);
	g_assert_cmpint(check(policy, "vm00", 1000, 1000), ==, -EPERM);
	cb_policy_free(policy);

	/* Absent protected-uids: root and the broker's uid, so 1000 joins without rights. */
	policy = load_ok("[domain vm0]\nuids=1000;0\n");
	g_assert_cmpint(check(policy, "vm0", 1000, 1000), ==, 0);
	g_assert_cmpint(check(policy, "vm0", 0, 0), ==, ALL);
	cb_policy_free(policy);

	/* An empty value means nobody: not even root. */
	policy = load_ok("[domain locked]\nuids=\n");
	g_assert_cmpint(check(policy, "locked", 0, 0), ==, -EPERM);
	g_assert_cmpint(check(policy, "locked", BROKER_UID, 0), ==, -EPERM);
	cb_policy_free(policy);

	/* Protected rights do not let a peer in by themselves. */
	policy = load_ok("[domain vm0]\nuids=1001\nprotected-uids=1000;1001\n");
	g_assert_cmpint(check(policy, "vm0", 1000, 1000), ==, -EPERM);
	g_assert_cmpint(check(policy, "vm0", 1001, 1001), ==, CROSSBUF_RIGHT_PROTECTED);
	cb_policy_free(policy);

	/* Several domains, a trailing ';', blanks around entries. */
	policy = load_ok("[domain a]\nuids= 5 ; 6;\n[domain b]\nuids=7\nprotected-uids=\n");
	g_assert_cmpint(check(policy, "a", 5, 5), ==, 0);
	g_assert_cmpint(check(policy, "a", 6, 6), ==, 0);
	g_assert_cmpint(check(policy, "a", 7, 7), ==, -EPERM);
	g_assert_cmpint(check(policy, "b", 7, 7), ==, 0);
	g_assert_cmpint(check(policy, "b", 5, 5), ==, -EPERM);
	cb_policy_free(policy);

	/* The largest uid there is; (uid_t)-1 is refused in test_malformed. */
	policy = load_ok("[domain a]\nuids=4294967294\n");
	g_assert_cmpint(check(policy, "a", 4294967294u, 1), ==, 0);
	cb_policy_free(policy);
}

static void
test_domain_gids(void)
{
	struct cb_policy *policy = load_ok("[domain vm0]\n"
					   "uids=1000\n"
					   "gids=2000;2001\n"
					   "protected-gids=2001\n");

	g_assert_cmpint(check(policy, "vm0", 1000, 1000), ==, 0);
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, 2000), ==, 0);
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, 2001), ==, CROSSBUF_RIGHT_PROTECTED);
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, 2002), ==, -EPERM);
	/* protected-uids is absent: root and the broker's uid, who are not let in here. */
	g_assert_cmpint(check(policy, "vm0", 0, 0), ==, -EPERM);
	cb_policy_free(policy);

	/* gids alone: uids absent still means root and the broker's uid. */
	policy = load_ok("[domain vm0]\ngids=2000\n");
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, 2000), ==, 0);
	g_assert_cmpint(check(policy, "vm0", 0, 0), ==, ALL);
	g_assert_cmpint(check(policy, "vm0", BROKER_UID, 2), ==, ALL);
	cb_policy_free(policy);
}

static void
test_admin(void)
{
	struct cb_policy *policy = load_ok("[admin]\nuids=1000\ngids=3000\n"
					   "[domain vm0]\nuids=1000;1001;0\ngids=3000\n");

	g_assert_cmpint(check(policy, "vm0", 1000, 1000), ==, CROSSBUF_RIGHT_ADMIN);
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, 3000), ==, CROSSBUF_RIGHT_ADMIN);
	g_assert_cmpint(check(policy, "vm0", 1001, 1001), ==, 0);
	/* [admin] uids replaces root's default admin right; protected-uids is still default. */
	g_assert_cmpint(check(policy, "vm0", 0, 0), ==, CROSSBUF_RIGHT_PROTECTED);
	/* Admin rights do not let a peer into a domain it may not join. */
	g_assert_cmpint(check(policy, "vm1", 1000, 1000), ==, -EPERM);
	g_assert_cmpint(check(policy, "vm1", 0, 0), ==, CROSSBUF_RIGHT_PROTECTED);
	cb_policy_free(policy);

	policy = load_ok("[admin]\nuids=\n");
	g_assert_cmpint(check(policy, "default", 0, 0), ==, CROSSBUF_RIGHT_PROTECTED);
	cb_policy_free(policy);
}

/* Names resolve to the same ids as numbers. */
static void
test_names(void)
{
	struct passwd *pw = getpwuid(1);
	struct group *gr;
	g_autofree char *user = NULL, *group = NULL, *conf = NULL;
	struct cb_policy *policy;
	uid_t uid;
	gid_t gid;

	if (!pw) {
		g_test_skip("no user with uid 1 to name");
		return;
	}
	user = g_strdup(pw->pw_name);
	uid = pw->pw_uid;
	gr = getgrgid(1);
	if (!gr) {
		g_test_skip("no group with gid 1 to name");
		return;
	}
	group = g_strdup(gr->gr_name);
	gid = gr->gr_gid;

	conf = g_strdup_printf("[domain vm0]\nuids=%s;root\ngids=%s\nprotected-uids=%s\n"
			       "protected-gids=%s\n[admin]\nuids=%s\ngids=%s\n",
			       user, user, group, group, user, group);
	policy = load_ok(conf);
	g_assert_cmpint(check(policy, "vm0", uid, NOBODY_GID), ==, ALL);
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, gid), ==, ALL);
	g_assert_cmpint(check(policy, "vm0", 0, 0), ==, 0);
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, NOBODY_GID), ==, -EPERM);
	cb_policy_free(policy);
}

/* A user's supplementary groups (from the group database) count, looked up by uid. */
static void
test_supplementary_groups(void)
{
	struct group *gr;
	struct passwd *pw = NULL;
	g_autofree char *conf = NULL;
	gid_t member_gid = 0;
	uid_t uid = 0;
	gid_t primary = 0;
	struct cb_policy *policy;

	setgrent();
	while ((gr = getgrent()) != NULL) {
		for (char **m = gr->gr_mem; *m; m++) {
			pw = getpwnam(*m);
			if (pw && pw->pw_gid != gr->gr_gid && pw->pw_uid != 0) {
				member_gid = gr->gr_gid;
				uid = pw->pw_uid;
				primary = pw->pw_gid;
				break;
			}
			pw = NULL;
		}
		if (pw)
			break;
	}
	endgrent();
	if (!pw) {
		g_test_skip("no user with a supplementary group on this machine");
		return;
	}

	conf = g_strdup_printf("[domain vm0]\nuids=\ngids=%u\nprotected-gids=%u\n",
			       (unsigned)member_gid, (unsigned)member_gid);
	policy = load_ok(conf);
	g_assert_cmpint(check(policy, "vm0", uid, primary), ==,
			CROSSBUF_RIGHT_PROTECTED | CROSSBUF_RIGHT_ADMIN * (uid == BROKER_UID));
	/* The group list belongs to the user: another uid with the same primary gid gets none. */
	if (primary != member_gid)
		g_assert_cmpint(check(policy, "vm0", NOBODY_UID, primary), ==, -EPERM);
	cb_policy_free(policy);
}

/* The example of policy.h's comment, with groups that exist everywhere. */
static void
test_documented_example(void)
{
	struct cb_policy *policy =
		load_ok("[broker]\n"
			"max-entries-per-client=4096\n"
			"max-watches-per-client=4096\n"
			"max-clients=256\n"
			"\n"
			"[domain vm0]\n"
			"uids=1000;1001          # users whose clients may join\n"
			"gids=root               # or groups (names or numbers)\n"
			"protected-uids=1000     # may also look up protected\n"
			"protected-gids=\n"
			"\n"
			"[admin]\n"
			"uids=0                  # may list every domain\n"
			"gids=\n");

	assert_default_limits(policy);
	g_assert_cmpint(check(policy, "vm0", 1000, 1000), ==, CROSSBUF_RIGHT_PROTECTED);
	g_assert_cmpint(check(policy, "vm0", 1001, 1001), ==, 0);
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, 0), ==, 0);
	g_assert_cmpint(check(policy, "vm0", 0, 0), ==, CROSSBUF_RIGHT_ADMIN);
	g_assert_cmpint(check(policy, "vm0", NOBODY_UID, NOBODY_GID), ==, -EPERM);
	cb_policy_free(policy);
}

struct malformed {
	const char *name;
	const char *content;
	const char *message; /* what follows "PATH: " */
};

static const struct malformed malformed_cases[] = {
	{"syntax", "[broker\nmax-clients=1\n", NULL},
	{"key-outside-group", "max-clients=1\n", NULL},
	{"not-key-value", "[broker]\nmax-clients\n", NULL},
	{"unknown-group", "[brokr]\n",
	 "[brokr]: unknown group (expected [broker], [admin] or [domain NAME])"},
	{"domain-without-name", "[domain]\n",
	 "[domain]: unknown group (expected [broker], [admin] or [domain NAME])"},
	{"unknown-key-broker", "[broker]\nmax-client=1\n", "[broker] max-client: unknown key"},
	{"unknown-key-admin", "[admin]\nprotected-uids=1\n", "[admin] protected-uids: unknown key"},
	{"unknown-key-domain", "[domain vm0]\nuid=1\n", "[domain vm0] uid: unknown key"},
	{"translated-key", "[domain vm0]\nuids[de]=1\n", "[domain vm0] uids[de]: unknown key"},
	{"repeated-key", "[broker]\nmax-clients=1\nmax-clients=2\n",
	 "[broker] max-clients: given more than once"},
	{"repeated-key-across-groups", "[domain a]\nuids=1\n[domain b]\n[domain a]\nuids=2\n",
	 "[domain a] uids: given more than once"},
	{"limit-zero", "[broker]\nmax-clients=0\n",
	 "[broker] max-clients: '0' is not a whole number from 1 to 65536"},
	{"limit-too-big", "[broker]\nmax-clients=65537\n",
	 "[broker] max-clients: '65537' is not a whole number from 1 to 65536"},
	{"entries-too-big", "[broker]\nmax-entries-per-client=1000001\n",
	 "[broker] max-entries-per-client: '1000001' is not a whole number from 1 to 1000000"},
	{"entries-zero", "[broker]\nmax-entries-per-client=0\n",
	 "[broker] max-entries-per-client: '0' is not a whole number from 1 to 1000000"},
	{"watches-too-big", "[broker]\nmax-watches-per-client=99999999999999999999\n",
	 "[broker] max-watches-per-client: '99999999999999999999' is not a whole number from 1 "
	 "to 1000000"},
	{"limit-negative", "[broker]\nmax-watches-per-client=-1\n",
	 "[broker] max-watches-per-client: '-1' is not a whole number from 1 to 1000000"},
	{"limit-not-number", "[broker]\nmax-clients=lots\n",
	 "[broker] max-clients: 'lots' is not a whole number from 1 to 65536"},
	{"limit-trailing-junk", "[broker]\nmax-clients=12abc\n",
	 "[broker] max-clients: '12abc' is not a whole number from 1 to 65536"},
	{"limit-hex", "[broker]\nmax-clients=0x10\n",
	 "[broker] max-clients: '0x10' is not a whole number from 1 to 65536"},
	{"limit-empty", "[broker]\nmax-clients=\n",
	 "[broker] max-clients: '' is not a whole number from 1 to 65536"},
	{"unknown-user", "[domain vm0]\nuids=1000;no-such-user-xyz\n",
	 "[domain vm0] uids: unknown user 'no-such-user-xyz'"},
	{"unknown-group-name", "[domain vm0]\ngids=no-such-group-xyz\n",
	 "[domain vm0] gids: unknown group 'no-such-group-xyz'"},
	{"unknown-protected-user", "[domain vm0]\nprotected-uids=no-such-user-xyz\n",
	 "[domain vm0] protected-uids: unknown user 'no-such-user-xyz'"},
	{"unknown-protected-group", "[domain vm0]\nprotected-gids=no-such-group-xyz\n",
	 "[domain vm0] protected-gids: unknown group 'no-such-group-xyz'"},
	{"unknown-admin-user", "[admin]\nuids=no-such-user-xyz\n",
	 "[admin] uids: unknown user 'no-such-user-xyz'"},
	{"unknown-admin-group", "[admin]\ngids=no-such-group-xyz\n",
	 "[admin] gids: unknown group 'no-such-group-xyz'"},
	{"uid-minus-one", "[domain vm0]\nuids=4294967295\n",
	 "[domain vm0] uids: user id '4294967295' is out of range 0..4294967294"},
	{"gid-too-big", "[admin]\ngids=99999999999\n",
	 "[admin] gids: group id '99999999999' is out of range 0..4294967294"},
	{"uid-negative", "[domain vm0]\nuids=-5\n", "[domain vm0] uids: unknown user '-5'"},
	{"empty-entry", "[domain vm0]\nuids=1;;2\n", "[domain vm0] uids: empty entry in '1;;2'"},
	{"only-separator", "[domain vm0]\nuids=;\n", "[domain vm0] uids: empty entry in ';'"},
	{"domain-bad-char", "[domain vm/0]\n",
	 "[domain vm/0]: domain name must be 1 to 63 characters of A-Z a-z 0-9 . _ -"},
	{"domain-space", "[domain vm 0]\n",
	 "[domain vm 0]: domain name must be 1 to 63 characters of A-Z a-z 0-9 . _ -"},
	{"domain-empty", "[domain ]\n",
	 "[domain ]: domain name must be 1 to 63 characters of A-Z a-z 0-9 . _ -"},
	{"domain-too-long",
	 "[domain 0123456789012345678901234567890123456789012345678901234567890123]\n",
	 "[domain 0123456789012345678901234567890123456789012345678901234567890123]: domain "
	 "name must be 1 to 63 characters of A-Z a-z 0-9 . _ -"},
	{"domain-not-ascii", "[domain vm\xc3\xa9]\n",
	 "[domain vm\xc3\xa9]: domain name must be 1 to 63 characters of A-Z a-z 0-9 . _ -"},
	{"not-utf8", "[domain vm0]\nuids=\xff\n", "[domain vm0] uids: value is not valid UTF-8"},
	{"not-utf8-group", "[domain vm\xff]\n", NULL},
	{"not-utf8-key", "[domain vm0]\nu\xffids=1\n", NULL},
};

static void
test_malformed(const void *data)
{
	const struct malformed *m = data;
	g_autofree char *path = write_config(m->content);
	g_autofree char *error = NULL;
	g_autofree char *prefix = g_strdup_printf("%s: ", path);
	struct cb_policy *policy = NULL;

	g_assert_cmpint(cb_policy_load(path, BROKER_UID, &policy, &error), ==, -EINVAL);
	g_assert_null(policy);
	g_assert_nonnull(error);
	g_assert_true(g_utf8_validate(error, -1, NULL));
	g_test_message("%s", error);
	g_assert_true(g_str_has_prefix(error, prefix));
	if (m->message)
		g_assert_cmpstr(error + strlen(prefix), ==, m->message);
	else
		g_assert_cmpuint(strlen(error), >, strlen(prefix));
	g_unlink(path);
}

static void
test_longest_domain_name(void)
{
	const char *name = "012345678901234567890123456789012345678901234567890123456789._-";
	g_autofree char *conf = g_strdup_printf("[domain %s]\nuids=77\n", name);
	struct cb_policy *policy;

	g_assert_cmpuint(strlen(name), ==, 63);
	policy = load_ok(conf);
	g_assert_cmpint(check(policy, name, 77, 77), ==, 0);
	cb_policy_free(policy);
}

static void
test_unreadable(void)
{
	g_autofree char *error = NULL;
	struct cb_policy *policy = NULL;

	/* A directory cannot be read as a file (GKeyFile calls it "not a regular file"). */
	g_assert_cmpint(cb_policy_load(tmpdir, BROKER_UID, &policy, &error), <, 0);
	g_assert_null(policy);
	g_assert_nonnull(error);
	g_assert_true(g_str_has_prefix(error, tmpdir));
}

/* ret_error is optional. */
static void
test_no_error_string(void)
{
	g_autofree char *path = write_config("[broker]\nmax-clients=0\n");
	struct cb_policy *policy = NULL;

	g_assert_cmpint(cb_policy_load(path, BROKER_UID, &policy, NULL), ==, -EINVAL);
	g_assert_null(policy);
	g_assert_cmpint(cb_policy_load(tmpdir, BROKER_UID, &policy, NULL), <, 0);
	g_assert_null(policy);
	g_unlink(path);
}

static void
test_check_arguments(void)
{
	struct cb_policy *policy = NULL;
	uint32_t rights;
	char long_name[80];

	memset(long_name, 'a', sizeof(long_name));
	long_name[64] = '\0';
	g_assert_cmpint(cb_policy_new_default(BROKER_UID, &policy), ==, 0);
	g_assert_cmpint(cb_policy_check(policy, "", 0, 0, &rights), ==, -EINVAL);
	g_assert_cmpint(cb_policy_check(policy, "a b", 0, 0, &rights), ==, -EINVAL);
	g_assert_cmpint(cb_policy_check(policy, long_name, 0, 0, &rights), ==, -EINVAL);
	long_name[63] = '\0';
	g_assert_cmpint(cb_policy_check(policy, long_name, 0, 0, &rights), ==, 0);
	g_assert_cmpint(cb_policy_check(policy, NULL, 0, 0, &rights), ==, -EINVAL);
	g_assert_cmpint(cb_policy_check(policy, "vm0", 0, 0, NULL), ==, -EINVAL);
	g_assert_cmpint(cb_policy_check(NULL, "vm0", 0, 0, &rights), ==, -EINVAL);
	cb_policy_free(policy);
}

int
main(int argc, char **argv)
{
	int r;

	g_test_init(&argc, &argv, NULL);
	tmpdir = g_dir_make_tmp("crossbuf-policy-XXXXXX", NULL);
	g_assert_nonnull(tmpdir);

	cb_test_add("/registry/policy/defaults", test_defaults);
	cb_test_add("/registry/policy/missing-file", test_missing_file);
	cb_test_add("/registry/policy/empty-file", test_empty_file);
	cb_test_add("/registry/policy/broker-limits", test_broker_limits);
	cb_test_add("/registry/policy/domain-uids", test_domain_uids);
	cb_test_add("/registry/policy/domain-gids", test_domain_gids);
	cb_test_add("/registry/policy/admin", test_admin);
	cb_test_add("/registry/policy/names", test_names);
	cb_test_add("/registry/policy/supplementary-groups", test_supplementary_groups);
	cb_test_add("/registry/policy/documented-example", test_documented_example);
	cb_test_add("/registry/policy/longest-domain-name", test_longest_domain_name);
	cb_test_add("/registry/policy/unreadable", test_unreadable);
	cb_test_add("/registry/policy/no-error-string", test_no_error_string);
	cb_test_add("/registry/policy/check-arguments", test_check_arguments);
	for (size_t i = 0; i < G_N_ELEMENTS(malformed_cases); i++) {
		g_autofree char *p =
			g_strdup_printf("/registry/policy/malformed/%s", malformed_cases[i].name);
		cb_test_add_data(p, &malformed_cases[i], test_malformed);
	}

	r = g_test_run();
	g_rmdir(tmpdir);
	g_free(tmpdir);
	return r;
}

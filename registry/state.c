/* SPDX-License-Identifier: MIT */
#include "state.h"

#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "crossbufd-state 1\n"

struct cb_state {
	char *path;
	int fd;           /* O_APPEND */
	size_t appended;  /* records since the last rewrite */
	GString *rewrite; /* the new file's text while a rewrite is going on */
};

/* One line for record: "+ ..." or "- ...", with its newline. */
static void
format_record(GString *out, const struct cb_entry_record *r, bool added)
{
	char uuid[CROSSBUF_UUID_STRING_SIZE];

	crossbuf_uuid_to_string(r->uuid, uuid);
	if (added)
		g_string_append_printf(out, "+ %s %s %" PRIu64 " %" PRIu64 " %" PRIu32 "\n",
				       r->domain, uuid, r->dev, r->ino, r->flags);
	else
		g_string_append_printf(out, "- %s %s\n", r->domain, uuid);
}

static bool
parse_u64(const char *s, uint64_t *ret)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*ret = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* Parses one line (without its newline) into *r; domain points into line. */
static bool
parse_record(char *line, struct cb_entry_record *r, bool *ret_added)
{
	char *field[6];
	unsigned n = 0;
	uint64_t flags;
	char *save = NULL;

	for (char *t = strtok_r(line, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if (n == G_N_ELEMENTS(field))
			return false;
		field[n++] = t;
	}
	if (n < 3 || strlen(field[0]) != 1 || !cb_domain_name_valid(field[1]) ||
	    crossbuf_uuid_from_string(field[2], r->uuid) < 0 || crossbuf_uuid_is_reserved(r->uuid))
		return false;
	r->domain = field[1];
	if (field[0][0] == '-' && n == 3) {
		*ret_added = false;
		return true;
	}
	if (field[0][0] != '+' || n != 6 || !parse_u64(field[3], &r->dev) ||
	    !parse_u64(field[4], &r->ino) || !parse_u64(field[5], &flags) || flags > UINT32_MAX)
		return false;
	r->flags = (uint32_t)flags;
	*ret_added = true;
	return true;
}

static void
record_free(gpointer p)
{
	struct cb_entry_record *r = p;

	g_free((char *)r->domain);
	g_free(r);
}

/* Replays text's records: what they leave registered goes to entries. */
static void
replay(char *text, GPtrArray *entries, unsigned *ret_skipped)
{
	/* "DOMAIN/UUID" -> struct cb_entry_record, owned by the table until moved to entries. */
	g_autoptr(GHashTable) live =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, record_free);
	GHashTableIter iter;
	gpointer k, value;
	char *line = text, *next;

	*ret_skipped = 0;
	if (!g_str_has_prefix(text, HEADER)) {
		(*ret_skipped)++;
		return;
	}
	for (line = text + strlen(HEADER); *line != '\0'; line = next) {
		struct cb_entry_record r = {0};
		char uuid[CROSSBUF_UUID_STRING_SIZE];
		bool added;
		char *key;

		next = strchr(line, '\n');
		if (next == NULL) {
			/* A last line without its newline: a write the broker never finished. */
			(*ret_skipped)++;
			break;
		}
		*next++ = '\0';
		if (!parse_record(line, &r, &added)) {
			(*ret_skipped)++;
			continue;
		}
		crossbuf_uuid_to_string(r.uuid, uuid);
		key = g_strdup_printf("%s/%s", r.domain, uuid);
		if (added) {
			struct cb_entry_record *copy = g_memdup2(&r, sizeof(r));

			copy->domain = g_strdup(r.domain);
			g_hash_table_replace(live, key, copy);
		} else {
			g_hash_table_remove(live, key);
			g_free(key);
		}
	}
	/* The records move to entries; their keys go. */
	g_hash_table_iter_init(&iter, live);
	while (g_hash_table_iter_next(&iter, &k, &value)) {
		g_hash_table_iter_steal(&iter);
		g_ptr_array_add(entries, value);
		g_free(k);
	}
}

int
cb_state_open(const char *path, struct cb_state **ret_state, GPtrArray **ret_entries,
	      unsigned *ret_skipped)
{
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(record_free);
	g_autofree char *text = NULL;
	struct cb_state *state;
	struct stat st;
	size_t done = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > STATE_MAX_FILE_SIZE)
		return -EFBIG;
	text = g_malloc((size_t)st.st_size + 1);
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, text + done, (size_t)st.st_size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			break;
		done += (size_t)n;
	}
	text[done] = '\0';
	*ret_skipped = 0;
	if (done > 0)
		replay(text, entries, ret_skipped);

	state = g_new0(struct cb_state, 1);
	state->path = g_strdup(path);
	state->fd = TAKE_FD(fd);
	*ret_state = state;
	*ret_entries = g_steal_pointer(&entries);
	return 0;
}

void
cb_state_free(struct cb_state *state)
{
	if (state == NULL)
		return;
	if (state->rewrite != NULL)
		g_string_free(state->rewrite, TRUE);
	safe_close(state->fd);
	g_free(state->path);
	g_free(state);
}

/* Writes all of buf to fd. */
static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
cb_state_append(struct cb_state *state, const struct cb_entry_record *record, bool added)
{
	g_autoptr(GString) line = g_string_sized_new(128);

	format_record(line, record, added);
	state->appended++;
	return write_all(state->fd, line->str, line->len);
}

int
cb_state_rewrite_begin(struct cb_state *state)
{
	if (state->rewrite != NULL)
		g_string_free(state->rewrite, TRUE);
	state->rewrite = g_string_new(HEADER);
	return 0;
}

void
cb_state_rewrite_add(void *userdata, const struct cb_entry_record *record, bool added)
{
	struct cb_state *state = userdata;

	if (added && state->rewrite != NULL)
		format_record(state->rewrite, record, true);
}

int
cb_state_rewrite_finish(struct cb_state *state)
{
	g_autofree char *tmp = g_strdup_printf("%s.new", state->path);
	g_autoptr(GString) text = g_steal_pointer(&state->rewrite);
	_cleanup_close_ int fd = -1;
	int r;

	if (text == NULL)
		return -EINVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return negative_errno();
	r = write_all(fd, text->str, text->len);
	if (r == 0 && rename(tmp, state->path) < 0)
		r = negative_errno();
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	/* Append to the new file from now on. */
	safe_close(state->fd);
	state->fd = TAKE_FD(fd);
	if (fcntl(state->fd, F_SETFL, O_APPEND) < 0)
		return negative_errno();
	state->appended = 0;
	return 0;
}

size_t
cb_state_appended(const struct cb_state *state)
{
	return state->appended;
}

/* SPDX-License-Identifier: MIT */
/*
 * crossbufd's state file: which buffer each registered UUID names, kept on disk so that a
 * restarted broker can hold every UUID for the exporter that had it (core.h, reservations)
 * instead of giving it to whichever client of the domain registers it first.
 *
 * The file is a journal of text lines, appended as entries come and go, and rewritten
 * whole (a temporary file renamed over it) when the broker starts, when the reservations
 * end, and when it has grown to twice the live entries plus STATE_SLACK_RECORDS:
 *
 *   crossbufd-state 1
 *   + DOMAIN UUID DEV INO FLAGS      an entry was registered
 *   - DOMAIN UUID                    an entry went away
 *
 * UUID is in the canonical 8-4-4-4-12 form; DEV and INO are the buffer's st_dev and st_ino,
 * FLAGS its crossbuf_buffer_info.flags, all three in decimal. Reading stops at STATE_MAX_FILE_SIZE;
 * a line that does not parse (a write cut short by a crash, or damage) is skipped and counted,
 * never fatal. The file holds no fd and no buffer content: only names.
 */
#pragma once

#include "core.h"

#include <glib.h>
#include <stddef.h>

#define STATE_MAX_FILE_SIZE ((size_t)256 << 20)
#define STATE_SLACK_RECORDS 1024

struct cb_state;

/*
 * Opens path (creating it, mode 0600) and reads the entries its records leave registered:
 * *ret_entries gets a GPtrArray of struct cb_entry_record (free it with
 * g_ptr_array_unref()), *ret_skipped the lines that did not parse. A file larger than
 * STATE_MAX_FILE_SIZE is not read (-EFBIG). -errno.
 */
int cb_state_open(const char *path, struct cb_state **ret_state, GPtrArray **ret_entries,
		  unsigned *ret_skipped);
void cb_state_free(struct cb_state *state);

/* Appends one record. -errno (the file is then as it was, or one line short). */
int cb_state_append(struct cb_state *state, const struct cb_entry_record *record, bool added);

/* Starts a rewrite: records given to cb_state_rewrite_add() replace the file at _finish(). */
int cb_state_rewrite_begin(struct cb_state *state);
void cb_state_rewrite_add(void *state, const struct cb_entry_record *record, bool added);
/* Replaces the file with the records added since _begin(). -errno (the old file stays). */
int cb_state_rewrite_finish(struct cb_state *state);

/* Records appended since the file was last rewritten. */
size_t cb_state_appended(const struct cb_state *state);

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: one packet as the broker receives it. The first input byte is the
 * number of fds that came with it (mod 3); the rest is the packet. What decodes is then
 * acted on by a registry core, as the broker would, so the logic behind the parser is
 * fuzzed too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cb_core *core;
static struct cb_session *session;
static int buffer_fd = -1;

static void
setup(void)
{
	struct cb_core_limits limits = {
		.max_entries_per_session = 64,
		.max_watches_per_session = 64,
		.max_sessions = 4,
	};
	struct cb_session_params params = {
		.domain = "fuzz",
		.rights = CROSSBUF_RIGHT_ADMIN,
	};

	if (cb_core_new(&limits, &core) < 0 || cb_session_new(core, &params, &session) < 0)
		abort();
	buffer_fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (buffer_fd < 0 || ftruncate(buffer_fd, 1 << 16) < 0 ||
	    fcntl(buffer_fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		abort();
}

static int
count_entry(void *userdata, const uint8_t uuid[16], const struct crossbuf_buffer_info *info,
	    const struct crossbuf_owner_info *owner)
{
	(*(unsigned *)userdata)++;
	return 0;
}

static void
act(const struct cb_request_msg *m)
{
	struct crossbuf_buffer_info info;
	struct crossbuf_stats stats;
	const char *reason;
	uint8_t uuid[16];
	unsigned n = 0;
	int fd;

	switch (m->type) {
	case CB_MSG_EXPORT:
		cb_session_export(session, m->export.has_uuid ? m->export.uuid : NULL,
				  fcntl(buffer_fd, F_DUPFD_CLOEXEC, 3), &m->export.info, uuid,
				  &reason);
		break;
	case CB_MSG_LOOKUP:
		cb_session_lookup(session, m->uuid, &info, &fd);
		break;
	case CB_MSG_REMOVE:
		cb_session_remove(session, m->uuid);
		break;
	case CB_MSG_WATCH:
		cb_session_watch(session, m->uuid);
		break;
	case CB_MSG_UNWATCH:
		cb_session_unwatch(session, m->uuid);
		break;
	case CB_MSG_LIST:
		cb_session_list(session, count_entry, &n);
		break;
	case CB_MSG_STATS:
		cb_session_stats(session, &stats);
		break;
	case CB_MSG_HELLO:
	case CB_MSG_REPLY:
	case CB_MSG_LIST_ENTRY:
	case CB_MSG_EVENT_REMOVED:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_request_msg m;
	uint32_t serial, type;
	uint8_t reply[CB_REPLY_MAX_SIZE];

	if (core == NULL)
		setup();
	if (size < 1)
		return 0;
	if (cb_request_decode(data + 1, size - 1, data[0] % 3, &m, &serial, &type) == 0)
		act(&m);
	else
		cb_reply_encode(reply, serial, type, -EBADMSG, NULL, 0);
	return 0;
}

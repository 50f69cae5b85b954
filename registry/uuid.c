/* SPDX-License-Identifier: MIT */
#include <crossbuf/crossbuf.h>
#include <errno.h>
#include <string.h>
#include <uuid/uuid.h>

#include "macro.h"

CROSSBUF_PUBLIC void
crossbuf_uuid_to_string(const uint8_t uuid[CROSSBUF_UUID_SIZE], char out[CROSSBUF_UUID_STRING_SIZE])
{
	uuid_unparse_lower(uuid, out);
}

CROSSBUF_PUBLIC int
crossbuf_uuid_from_string(const char *s, uint8_t ret_uuid[CROSSBUF_UUID_SIZE])
{
	uuid_t u;

	/* libuuid also accepts a trailing NUL only; check the length ourselves. */
	if (s == NULL || ret_uuid == NULL || strlen(s) != CROSSBUF_UUID_STRING_SIZE - 1)
		return -EINVAL;
	if (uuid_parse(s, u) < 0)
		return -EINVAL;
	memcpy(ret_uuid, u, CROSSBUF_UUID_SIZE);
	return 0;
}

CROSSBUF_PUBLIC void
crossbuf_uuid_generate(uint8_t ret_uuid[CROSSBUF_UUID_SIZE])
{
	/* uuid_generate_random() always gives RFC 4122 version 4 from the kernel's CSPRNG. */
	uuid_generate_random(ret_uuid);
}

CROSSBUF_PUBLIC int
crossbuf_uuid_is_reserved(const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	uint8_t all_zero = 0, all_ones = 0xff;

	for (unsigned i = 0; i < CROSSBUF_UUID_SIZE; i++) {
		all_zero |= uuid[i];
		all_ones &= uuid[i];
	}
	return all_zero == 0 || all_ones == 0xff;
}

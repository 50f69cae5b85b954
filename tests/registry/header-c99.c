/* SPDX-License-Identifier: MIT */
/* The public header compiles on its own as strict C99 (built with -std=c99 -pedantic). */
#include <crossbuf/crossbuf.h>

int crossbuf_header_c99_check(void);

int
crossbuf_header_c99_check(void)
{
	struct crossbuf_buffer_info info = { 0 };
	return (int)sizeof(info) + CROSSBUF_UUID_SIZE;
}

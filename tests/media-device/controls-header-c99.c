/* SPDX-License-Identifier: MIT */
/*
 * crossbuf-media-controls.h compiles on its own as strict C99 (built with -std=c99
 * -pedantic), as a guest application includes it.
 */
#include "crossbuf-media-controls.h"

unsigned crossbuf_media_controls_c99_check(void);

unsigned
crossbuf_media_controls_c99_check(void)
{
	return CROSSBUF_CID_FRAMES_DECODED + CROSSBUF_CID_FRAMES_COPIED +
	       CROSSBUF_CID_BYTES_COPIED + CROSSBUF_CID_OBJECT_LOOKUPS + CROSSBUF_CID_FRAMES_ERROR;
}

/* SPDX-License-Identifier: MIT */
/*
 * The messages of crossbuf's executables (crossbuf-gpu, crossbuf-media, crossbuf-guest): one
 * line on stderr, "PROGRAM: message", PROGRAM the executable's name. Lines of several threads
 * do not mix: each is written by one fprintf() call (messages are cut at 4 KiB).
 */
#pragma once

#include "macro.h"

void cb_log(const char *fmt, ...) _printf_(1, 2);

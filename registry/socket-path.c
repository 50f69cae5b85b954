/* SPDX-License-Identifier: MIT */
#include <crossbuf/crossbuf.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "macro.h"

/*
 * $XDG_RUNTIME_DIR/crossbuf/broker.sock for a user's broker, /run/crossbuf/broker.sock
 * (the systemd socket unit's) otherwise.
 */
CROSSBUF_PUBLIC const char *
crossbuf_default_socket_path(void)
{
	static char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *runtime = getenv("XDG_RUNTIME_DIR");

	if (path[0] == '\0') {
		if (runtime != NULL && runtime[0] == '/' &&
		    strlen(runtime) + sizeof("/crossbuf/broker.sock") <= sizeof(path))
			g_snprintf(path, sizeof(path), "%s/crossbuf/broker.sock", runtime);
		else
			g_strlcpy(path, "/run/crossbuf/broker.sock", sizeof(path));
	}
	return path;
}

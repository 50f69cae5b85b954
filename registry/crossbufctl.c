/* SPDX-License-Identifier: MIT */
/* crossbufctl: export, resolve, list and watch crossbuf registry entries by hand. */
#include <crossbuf/crossbuf.h>
#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib.h>
#include <inttypes.h>
#include <linux/dma-buf.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "buffer.h"
#include "config.h"
#include "macro.h"

/* The largest FILE `export` copies into memory. */
#define MAX_EXPORT_SIZE (1ull << 32)

struct options {
	const char *socket;
	const char *domain;
	bool json;
	/* export */
	uint32_t width, height, fourcc, stride;
	uint64_t modifier;
	bool protected_, mappable, hold;
	/* lookup */
	const char *out;
};

static int
fail(int r, const char *what)
{
	fprintf(stderr, "crossbufctl: %s: %s\n", what, g_strerror(-r));
	return 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: crossbufctl [OPTION...] COMMAND [ARG...]\n"
		"\n"
		"Commands:\n"
		"  export FILE --hold  copy FILE into a sealed memfd, register it, print its UUID\n"
		"                      and keep the entry until killed\n"
		"      --width=W --height=H --format=FOURCC (NV12, XRGB8888, ...) --stride=BYTES\n"
		"      --modifier=N --protected --guest-mappable\n"
		"  lookup UUID [--out FILE]  print an entry; write its contents to FILE\n"
		"  list [--json]       every entry (needs the admin right)\n"
		"  stats [--json]      registry counters (needs the admin right)\n"
		"  watch UUID...       print a line when each entry goes away\n"
		"\n"
		"Options:\n"
		"  -s, --socket=PATH   broker socket (default: $CROSSBUF_SOCKET, else %s)\n"
		"  -d, --domain=NAME   the domain (VM) to act in (default: %s)\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n",
		crossbuf_default_socket_path(), CROSSBUF_DEFAULT_DOMAIN);
}

static int
parse_u32(const char *s, uint32_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (*s == '\0' || *end != '\0' || errno != 0 || v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static int
parse_fourcc(const char *s, uint32_t *ret)
{
	size_t n = strlen(s);

	if (g_ascii_strcasecmp(s, "XRGB8888") == 0)
		*ret = DRM_FORMAT_XRGB8888;
	else if (g_ascii_strcasecmp(s, "ARGB8888") == 0)
		*ret = DRM_FORMAT_ARGB8888;
	else if (g_ascii_strcasecmp(s, "XBGR8888") == 0)
		*ret = DRM_FORMAT_XBGR8888;
	else if (g_ascii_strcasecmp(s, "ABGR8888") == 0)
		*ret = DRM_FORMAT_ABGR8888;
	else if (g_ascii_strcasecmp(s, "YUV420") == 0)
		*ret = DRM_FORMAT_YUV420;
	else if (n >= 1 && n <= 4) {
		char c[4] = { ' ', ' ', ' ', ' ' };
		memcpy(c, s, n);
		*ret = fourcc_code(c[0], c[1], c[2], c[3]);
	} else
		return -EINVAL;
	return cb_format_lookup(*ret) != NULL ? 0 : -EINVAL;
}

static void
fourcc_str(uint32_t fourcc, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)((fourcc >> (8 * i)) & 0xff);
		out[i] = g_ascii_isprint(c) ? c : '?';
	}
	out[4] = '\0';
}

static const char *
fd_kind_name(uint32_t kind)
{
	switch ((enum crossbuf_fd_kind)kind) {
	case CROSSBUF_FD_KIND_DMABUF:
		return "dma-buf";
	case CROSSBUF_FD_KIND_MEMFD:
		return "memfd";
	case CROSSBUF_FD_KIND_MEMFD_SECRET:
		return "memfd_secret";
	case CROSSBUF_FD_KIND_INVALID:
		break;
	}
	return "unknown";
}

static const char *
device_kind_name(uint32_t kind)
{
	switch ((enum crossbuf_device_kind)kind) {
	case CROSSBUF_DEVICE_GPU:
		return "gpu";
	case CROSSBUF_DEVICE_MEDIA:
		return "media";
	case CROSSBUF_DEVICE_TOOL:
		return "tool";
	case CROSSBUF_DEVICE_OTHER:
		break;
	}
	return "other";
}

static int
connect_client(const struct options *o, uint32_t rights, struct crossbuf_client **ret)
{
	struct crossbuf_client *c;
	int r;

	r = crossbuf_client_new(&c);
	if (r < 0)
		return r;
	r = crossbuf_client_set_domain(c, o->domain);
	if (r == 0)
		r = crossbuf_client_set_device_kind(c, CROSSBUF_DEVICE_TOOL);
	if (r == 0)
		r = crossbuf_client_set_rights(c, rights);
	if (r == 0)
		r = crossbuf_client_connect(c, o->socket);
	if (r < 0) {
		crossbuf_client_unref(c);
		return r;
	}
	*ret = c;
	return 0;
}

/* --- export ------------------------------------------------------------------------------ */

/* A buffer of size bytes holding FILE's contents: a sealed memfd, or a memfd_secret. */
static int
make_buffer(const uint8_t *data, size_t len, uint64_t size, bool secret)
{
	_cleanup_close_ int fd = -1;
	void *map;

	if (secret) {
#ifdef SYS_memfd_secret
		fd = (int)syscall(SYS_memfd_secret, (unsigned)O_CLOEXEC);
#endif
		if (fd < 0)
			return negative_errno();
	} else {
		fd = memfd_create("crossbufctl-export", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return negative_errno();
	}
	if (ftruncate(fd, (off_t)size) < 0)
		return negative_errno();
	/* memfd_secret cannot be written with write(): only through a mapping. */
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return negative_errno();
	memcpy(map, data, len);
	munmap(map, size);
	if (!secret && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

/* Fills in the plane layout of a known format, planes one after the other. */
static int
layout(const struct options *o, struct crossbuf_buffer_info *info, uint64_t *ret_size)
{
	const struct cb_format_desc *desc;
	uint64_t offset = 0;

	if (o->fourcc == 0) {
		if (o->width || o->height || o->stride) {
			fprintf(stderr, "crossbufctl: --width/--height/--stride need --format\n");
			return -EINVAL;
		}
		return 0;
	}
	desc = cb_format_lookup(o->fourcc);
	if (o->width == 0 || o->height == 0) {
		fprintf(stderr, "crossbufctl: --format needs --width and --height\n");
		return -EINVAL;
	}
	info->width = o->width;
	info->height = o->height;
	info->fourcc = o->fourcc;
	info->modifier = o->modifier;
	info->num_planes = desc->num_planes;
	for (unsigned i = 0; i < desc->num_planes; i++) {
		uint64_t stride, rows;
		if (i == 0) {
			stride = o->stride ? o->stride : (uint64_t)o->width * desc->cpp[0];
			rows = o->height;
		} else {
			stride = (info->planes[0].stride + desc->hsub - 1) / desc->hsub *
				 desc->cpp[i] / desc->cpp[0];
			rows = (o->height + desc->vsub - 1) / desc->vsub;
		}
		if (offset > UINT32_MAX || stride > UINT32_MAX) {
			fprintf(stderr, "crossbufctl: the layout does not fit in 32-bit offsets\n");
			return -EINVAL;
		}
		info->planes[i].offset = (uint32_t)offset;
		info->planes[i].stride = (uint32_t)stride;
		offset += stride * rows;
	}
	*ret_size = offset;
	return 0;
}

static int
wait_for_signal(struct crossbuf_client *c)
{
	sigset_t mask;
	int sfd, r = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		return negative_errno();
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = crossbuf_client_get_fd(c), .events = POLLIN },
		};
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			r = negative_errno();
			break;
		}
		if (p[0].revents)
			break;
		/* Keeps the connection, and re-registers after a broker restart. */
		if (p[1].revents && (r = crossbuf_client_dispatch(c)) < 0) {
			fail(r, "lost the broker");
			break;
		}
	}
	close(sfd);
	return r < 0 ? r : 0;
}

static int
cmd_export(const struct options *o, const char *file)
{
	struct crossbuf_buffer_info info;
	g_autofree char *data = NULL;
	g_autoptr(GError) error = NULL;
	struct crossbuf_client *c = NULL;
	char s[CROSSBUF_UUID_STRING_SIZE];
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	_cleanup_close_ int fd = -1;
	uint64_t size = 0;
	gsize len;
	int r;

	if (!o->hold) {
		fprintf(stderr, "crossbufctl: export needs --hold: an entry lives as long as its "
				"exporter, so crossbufctl keeps it until it is killed\n");
		return 2;
	}
	memset(&info, 0, sizeof(info));
	if (layout(o, &info, &size) < 0)
		return 2;
	if (!g_file_get_contents(file, &data, &len, &error)) {
		fprintf(stderr, "crossbufctl: %s\n", error->message);
		return 1;
	}
	if (len > MAX_EXPORT_SIZE) {
		fprintf(stderr, "crossbufctl: %s is larger than 4 GiB\n", file);
		return 1;
	}
	if (size == 0)
		size = len;
	if (size == 0) {
		fprintf(stderr, "crossbufctl: %s is empty\n", file);
		return 1;
	}
	if (len > size) {
		fprintf(stderr,
			"crossbufctl: %s holds %zu bytes, more than the layout's %" PRIu64 "\n",
			file, (size_t)len, size);
		return 1;
	}
	info.flags = (o->protected_ ? CROSSBUF_BUFFER_PROTECTED : 0) |
		     (o->mappable ? CROSSBUF_BUFFER_GUEST_MAPPABLE : 0);
	info.device_kind = CROSSBUF_DEVICE_TOOL;

	fd = make_buffer((const uint8_t *)data, len, size, o->protected_);
	if (fd < 0)
		return fail(fd, o->protected_ ? "memfd_secret" : "memfd");
	r = connect_client(o, 0, &c);
	if (r < 0)
		return fail(r, "cannot connect to the broker");
	r = crossbuf_client_export(c, fd, &info, uuid);
	if (r < 0) {
		crossbuf_client_unref(c);
		return fail(r, "export refused");
	}
	crossbuf_uuid_to_string(uuid, s);
	printf("%s\n", s);
	fflush(stdout);
	r = wait_for_signal(c);
	crossbuf_client_unref(c);
	return r < 0 ? 1 : 0;
}

/* --- lookup ------------------------------------------------------------------------------ */

static void
print_info(const char *uuid, const struct crossbuf_buffer_info *info)
{
	char fcc[5];

	printf("uuid:      %s\n", uuid);
	printf("kind:      %s\n", fd_kind_name(info->fd_kind));
	printf("size:      %" PRIu64 "\n", info->size);
	if (info->fourcc != 0) {
		fourcc_str(info->fourcc, fcc);
		printf("format:    %s %ux%u modifier 0x%" PRIx64 "\n", fcc, info->width,
		       info->height, info->modifier);
		for (unsigned i = 0; i < info->num_planes && i < CROSSBUF_MAX_PLANES; i++)
			printf("plane %u:   offset %u stride %u\n", i, info->planes[i].offset,
			       info->planes[i].stride);
	} else {
		printf("format:    opaque\n");
	}
	printf("flags:     %s%s%s\n", info->flags == 0 ? "none" : "",
	       info->flags & CROSSBUF_BUFFER_PROTECTED ? "protected " : "",
	       info->flags & CROSSBUF_BUFFER_GUEST_MAPPABLE ? "guest-mappable" : "");
	printf("exporter:  %s, resource %u\n", device_kind_name(info->device_kind),
	       info->resource_id);
}

static void
dmabuf_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags };

	while (ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync) < 0 && (errno == EINTR || errno == EAGAIN))
		;
}

static int
write_contents(int fd, const struct crossbuf_buffer_info *info, const char *path)
{
	g_autoptr(GError) error = NULL;
	uint8_t *map;
	gboolean ok;

	map = mmap(NULL, info->size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return negative_errno();
	if (info->fd_kind == CROSSBUF_FD_KIND_DMABUF)
		dmabuf_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	ok = g_file_set_contents(path, (const char *)map, (gssize)info->size, &error);
	if (info->fd_kind == CROSSBUF_FD_KIND_DMABUF)
		dmabuf_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	munmap(map, info->size);
	if (!ok) {
		fprintf(stderr, "crossbufctl: %s\n", error->message);
		return -EIO;
	}
	return 0;
}

static int
cmd_lookup(const struct options *o, const char *uuid_s)
{
	struct crossbuf_buffer_info info;
	struct crossbuf_client *c;
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	int fd, r;

	if (crossbuf_uuid_from_string(uuid_s, uuid) < 0) {
		fprintf(stderr, "crossbufctl: '%s' is not a UUID\n", uuid_s);
		return 2;
	}
	r = connect_client(o, 0, &c);
	if (r < 0)
		return fail(r, "cannot connect to the broker");
	r = crossbuf_client_lookup(c, uuid, &info, &fd);
	crossbuf_client_unref(c);
	if (r == -EACCES) {
		fprintf(stderr, "crossbufctl: %s is protected and this user may not resolve it\n",
			uuid_s);
		return 1;
	}
	if (r < 0)
		return fail(r, "lookup");
	print_info(uuid_s, &info);
	if (o->out != NULL) {
		if (info.flags & CROSSBUF_BUFFER_PROTECTED) {
			fprintf(stderr, "crossbufctl: protected buffer: contents not written\n");
			r = -EACCES;
		} else {
			r = write_contents(fd, &info, o->out);
			if (r < 0 && r != -EIO)
				fail(r, "reading the buffer");
		}
	}
	close(fd);
	return r < 0 ? 1 : 0;
}

/* --- list, stats, watch ------------------------------------------------------------------ */

static int
print_entry(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
	    const struct crossbuf_buffer_info *info, const struct crossbuf_owner_info *owner)
{
	const struct options *o = userdata;
	char s[CROSSBUF_UUID_STRING_SIZE], fcc[5];
	static bool first = true;

	crossbuf_uuid_to_string(uuid, s);
	fourcc_str(info->fourcc, fcc);
	if (o->json) {
		g_autofree char *domain = g_strescape(owner->domain, NULL);
		printf("%s\n  {\"uuid\": \"%s\", \"domain\": \"%s\", \"owner_client\": %u, "
		       "\"owner_pid\": %d, \"owner_uid\": %u, \"kind\": \"%s\", \"size\": %" PRIu64
		       ", \"fourcc\": \"%s\", \"width\": %u, \"height\": %u, \"modifier\": %" PRIu64
		       ", \"protected\": %s, \"guest_mappable\": %s, \"device\": \"%s\", "
		       "\"resource_id\": %u}",
		       first ? "" : ",", s, domain, owner->client_id, owner->pid, owner->uid,
		       fd_kind_name(info->fd_kind), info->size, info->fourcc ? fcc : "",
		       info->width, info->height, info->modifier,
		       info->flags & CROSSBUF_BUFFER_PROTECTED ? "true" : "false",
		       info->flags & CROSSBUF_BUFFER_GUEST_MAPPABLE ? "true" : "false",
		       device_kind_name(info->device_kind), info->resource_id);
	} else {
		printf("%s  %-12s %-12s %10" PRIu64 "  %-4s %5ux%-5u %s%s pid %d resource %u\n", s,
		       owner->domain, fd_kind_name(info->fd_kind), info->size,
		       info->fourcc ? fcc : "-", info->width, info->height,
		       device_kind_name(info->device_kind),
		       info->flags & CROSSBUF_BUFFER_PROTECTED ? " protected" : "", owner->pid,
		       info->resource_id);
	}
	first = false;
	return 0;
}

static int
cmd_list(const struct options *o)
{
	struct crossbuf_client *c;
	int r;

	r = connect_client(o, CROSSBUF_RIGHT_ADMIN, &c);
	if (r < 0)
		return fail(r, "cannot connect to the broker as an administrator");
	if (o->json)
		printf("[");
	r = crossbuf_client_list(c, print_entry, (void *)o);
	if (o->json)
		printf("\n]\n");
	crossbuf_client_unref(c);
	return r < 0 ? fail(r, "list") : 0;
}

static int
cmd_stats(const struct options *o)
{
	struct crossbuf_client *c;
	struct crossbuf_stats st;
	int r;

	r = connect_client(o, CROSSBUF_RIGHT_ADMIN, &c);
	if (r < 0)
		return fail(r, "cannot connect to the broker as an administrator");
	r = crossbuf_client_get_stats(c, &st);
	crossbuf_client_unref(c);
	if (r < 0)
		return fail(r, "stats");
	if (o->json)
		printf("{\"entries\": %" PRIu64 ", \"clients\": %" PRIu64 ", \"exports\": %" PRIu64
		       ", \"lookups\": %" PRIu64 ", \"removes\": %" PRIu64 ", \"refused\": %" PRIu64
		       ", \"watches\": %" PRIu64 "}\n",
		       st.entries, st.clients, st.exports, st.lookups, st.removes, st.refused,
		       st.watches);
	else
		printf("entries:  %" PRIu64 "\nclients:  %" PRIu64 "\nexports:  %" PRIu64
		       "\nlookups:  %" PRIu64 "\nremoves:  %" PRIu64 "\nrefused:  %" PRIu64
		       "\nwatches:  %" PRIu64 "\n",
		       st.entries, st.clients, st.exports, st.lookups, st.removes, st.refused,
		       st.watches);
	return 0;
}

struct watch_state {
	unsigned left;
};

static void
on_removed(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
	   enum crossbuf_removal_reason reason)
{
	struct watch_state *w = userdata;
	char s[CROSSBUF_UUID_STRING_SIZE];

	crossbuf_uuid_to_string(uuid, s);
	printf("%s removed (%s)\n", s,
	       reason == CROSSBUF_REMOVED_BY_OWNER ? "by its owner" : "its owner is gone");
	fflush(stdout);
	w->left--;
}

static int
cmd_watch(const struct options *o, int n, char **uuids)
{
	struct watch_state w = { 0 };
	struct crossbuf_client *c;
	int r;

	if (n == 0) {
		fprintf(stderr, "crossbufctl: watch needs at least one UUID\n");
		return 2;
	}
	r = connect_client(o, 0, &c);
	if (r < 0)
		return fail(r, "cannot connect to the broker");
	crossbuf_client_set_removed_callback(c, on_removed, &w);
	for (int i = 0; i < n; i++) {
		uint8_t uuid[CROSSBUF_UUID_SIZE];
		if (crossbuf_uuid_from_string(uuids[i], uuid) < 0) {
			fprintf(stderr, "crossbufctl: '%s' is not a UUID\n", uuids[i]);
			crossbuf_client_unref(c);
			return 2;
		}
		r = crossbuf_client_watch(c, uuid);
		if (r < 0) {
			fprintf(stderr, "crossbufctl: cannot watch %s: %s\n", uuids[i],
				g_strerror(-r));
			crossbuf_client_unref(c);
			return 1;
		}
		w.left++;
	}
	printf("watching %u entries\n", w.left);
	fflush(stdout);
	while (w.left > 0) {
		struct pollfd p = { .fd = crossbuf_client_get_fd(c), .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		r = crossbuf_client_dispatch(c);
		if (r < 0) {
			fail(r, "lost the broker");
			break;
		}
	}
	crossbuf_client_unref(c);
	return w.left == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	enum { OPT_WIDTH = 256, OPT_HEIGHT, OPT_FORMAT, OPT_STRIDE, OPT_MODIFIER, OPT_PROTECTED,
	       OPT_MAPPABLE, OPT_HOLD, OPT_OUT, OPT_JSON };
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "domain", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "width", required_argument, NULL, OPT_WIDTH },
		{ "height", required_argument, NULL, OPT_HEIGHT },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "stride", required_argument, NULL, OPT_STRIDE },
		{ "modifier", required_argument, NULL, OPT_MODIFIER },
		{ "protected", no_argument, NULL, OPT_PROTECTED },
		{ "guest-mappable", no_argument, NULL, OPT_MAPPABLE },
		{ "hold", no_argument, NULL, OPT_HOLD },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct options o = { .domain = CROSSBUF_DEFAULT_DOMAIN };
	const char *cmd;
	int opt;

	/* Options may come before or after the command. */
	while ((opt = getopt_long(argc, argv, "s:d:hV", options, NULL)) != -1) {
		int bad = 0;
		switch (opt) {
		case 's':
			o.socket = optarg;
			break;
		case 'd':
			o.domain = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("crossbufctl %s\n", CROSSBUF_VERSION);
			return 0;
		case OPT_WIDTH:
			bad = parse_u32(optarg, &o.width);
			break;
		case OPT_HEIGHT:
			bad = parse_u32(optarg, &o.height);
			break;
		case OPT_STRIDE:
			bad = parse_u32(optarg, &o.stride);
			break;
		case OPT_FORMAT:
			bad = parse_fourcc(optarg, &o.fourcc);
			break;
		case OPT_MODIFIER: {
			char *end;
			errno = 0;
			o.modifier = strtoull(optarg, &end, 0);
			bad = *optarg == '\0' || *end != '\0' || errno != 0;
			break;
		}
		case OPT_PROTECTED:
			o.protected_ = true;
			break;
		case OPT_MAPPABLE:
			o.mappable = true;
			break;
		case OPT_HOLD:
			o.hold = true;
			break;
		case OPT_OUT:
			o.out = optarg;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "crossbufctl: bad value '%s' for --%s\n", optarg,
				options[opt - OPT_WIDTH + 4].name);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "export") == 0 && argc - optind == 1)
		return cmd_export(&o, argv[optind]);
	if (strcmp(cmd, "lookup") == 0 && argc - optind == 1)
		return cmd_lookup(&o, argv[optind]);
	if (strcmp(cmd, "list") == 0 && argc == optind)
		return cmd_list(&o);
	if (strcmp(cmd, "stats") == 0 && argc == optind)
		return cmd_stats(&o);
	if (strcmp(cmd, "watch") == 0)
		return cmd_watch(&o, argc - optind, argv + optind);
	fprintf(stderr, "crossbufctl: unknown command or wrong arguments: %s\n", cmd);
	usage(stderr);
	return 2;
}

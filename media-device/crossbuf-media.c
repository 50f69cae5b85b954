/* SPDX-License-Identifier: MIT */
/*
 * crossbuf-media: the virtio-media device (virtio id 48) as a vhost-user backend.
 *
 * The transport-independent device (device.h) gets the commandq's chains from the backend
 * library (vhost-user/backend.h); its events go on the eventq, its MMAP buffers into shared
 * memory region 0 through the backend channel (SHMEM_MAP/UNMAP). Buffers named by UUID are
 * resolved through libcrossbuf, connected to crossbufd (--broker) or to a registry embedded
 * in this process.
 *
 * Threads: everything runs on the backend's dispatch thread except the decoders' workers,
 * which only call send_event(). Events are therefore queued under a mutex and delivered from
 * the dispatch thread (an eventfd watched in the backend's loop), as eventq buffers come.
 *
 * Ownership: the media device is created at start, and again after every connection ends or
 * RESET_OWNER (reset callback), so each frontend starts with no session and no mapping. The
 * registry client (and the embedded registry) live as long as the process.
 */
#include "backend.h"
#include "config.h"
#include "crossbuf/crossbuf.h"
#include "device.h"
#include "log.h"
#include "macro.h"
#include "message.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Shared memory region 0: where every MMAP plane the driver maps is placed. */
#define SHM_SIZE          (1ull << 30)
#define PAGE              4096u
/* Both queues; the eventq holds at most this many of the driver's buffers. */
#define QUEUE_SIZE_MAX    1024u
/*
 * Events waiting for an eventq buffer. A driver that returns eventq buffers as the Linux one
 * does never comes near: this is a DQBUF for every buffer of every possible session (64
 * sessions, two queues of 32 buffers) plus 16 other events each. At the cap new events are
 * dropped, counted and logged: the driver loses those DQBUFs (STREAMOFF gets the buffers
 * back) but the device's memory stays bounded whatever the guest does.
 */
#define EVENT_BACKLOG_MAX (MEDIA_DEVICE_MAX_SESSIONS * (2 * 32 + 16))

struct pending_event {
	struct pending_event *next;
	size_t len;
	uint8_t data[];
};

struct shm_range {
	uint64_t addr;
	uint64_t len;
};

struct vmedia {
	struct vu_backend *backend;
	struct media_device *dev;           /* NULL only if re-creating it after a reset failed */
	struct crossbuf_registry *registry; /* embedded registry, or NULL with --broker */
	struct crossbuf_client *client;
	const char *card;

	/* Events from any thread, delivered on the dispatch thread. */
	pthread_mutex_t lock;
	struct pending_event *ev_head, *ev_tail;
	unsigned n_events;
	uint64_t dropped; /* events dropped at the cap since the connection began */
	int event_fd;     /* signalled when an event is queued */

	/* The driver's eventq buffers, in the order they came (a ring). */
	struct vu_elem *held[QUEUE_SIZE_MAX];
	unsigned held_first, n_held;

	/* Region 0 in use, sorted by address. */
	struct shm_range ranges[MEDIA_DEVICE_MAX_MAPPINGS];
	unsigned n_ranges;

	bool logged_ready;
};

static struct vu_backend *stop_target;

/* ---- events ---- */

static void
events_clear(struct vmedia *m)
{
	struct pending_event *e;

	pthread_mutex_lock(&m->lock);
	e = m->ev_head;
	m->ev_head = m->ev_tail = NULL;
	m->n_events = 0;
	pthread_mutex_unlock(&m->lock);
	while (e) {
		struct pending_event *next = e->next;
		free(e);
		e = next;
	}
}

/* The device's send_event: any thread, never waits for the guest. */
static void
send_event(void *userdata, const void *event, size_t len)
{
	struct vmedia *m = userdata;
	struct pending_event *e;
	uint64_t one = 1;
	ssize_t n _unused_;

	pthread_mutex_lock(&m->lock);
	if (m->n_events >= EVENT_BACKLOG_MAX) {
		if (m->dropped++ == 0)
			cb_log("the driver returns no eventq buffers: %u events wait, dropping "
			       "new ones",
			       m->n_events);
		pthread_mutex_unlock(&m->lock);
		return;
	}
	e = malloc(sizeof(*e) + len);
	if (e == NULL) {
		m->dropped++;
		pthread_mutex_unlock(&m->lock);
		return;
	}
	e->next = NULL;
	e->len = len;
	memcpy(e->data, event, len);
	if (m->ev_tail)
		m->ev_tail->next = e;
	else
		m->ev_head = e;
	m->ev_tail = e;
	m->n_events++;
	pthread_mutex_unlock(&m->lock);
	n = write(m->event_fd, &one, sizeof(one));
}

static struct pending_event *
event_pop(struct vmedia *m)
{
	struct pending_event *e;

	pthread_mutex_lock(&m->lock);
	e = m->ev_head;
	if (e) {
		m->ev_head = e->next;
		if (m->ev_head == NULL)
			m->ev_tail = NULL;
		m->n_events--;
	}
	pthread_mutex_unlock(&m->lock);
	return e;
}

static void
event_push_front(struct vmedia *m, struct pending_event *e)
{
	pthread_mutex_lock(&m->lock);
	e->next = m->ev_head;
	m->ev_head = e;
	if (m->ev_tail == NULL)
		m->ev_tail = e;
	m->n_events++;
	pthread_mutex_unlock(&m->lock);
}

static struct vu_elem *
held_pop(struct vmedia *m)
{
	struct vu_elem *elem;

	if (m->n_held == 0)
		return NULL;
	elem = m->held[m->held_first];
	m->held_first = (m->held_first + 1) % QUEUE_SIZE_MAX;
	m->n_held--;
	return elem;
}

/* Frees the held eventq buffers without touching them (their queue stopped). */
static void
held_drop(struct vmedia *m)
{
	struct vu_elem *elem;

	while ((elem = held_pop(m)) != NULL)
		vu_elem_free(elem);
	m->held_first = 0;
}

/* Dispatch thread: fills eventq buffers with waiting events, oldest first. */
static void
events_flush(struct vmedia *m)
{
	while (m->n_held > 0) {
		struct pending_event *e = event_pop(m);
		struct vu_elem *elem;

		if (e == NULL)
			return;
		elem = held_pop(m);
		if (iov_size(elem->req.out, elem->req.n_out) < e->len) {
			/* Too small for this event: returned empty, the event waits for the next.
			 */
			event_push_front(m, e);
			vu_backend_complete(m->backend, elem, 0);
			continue;
		}
		iov_from_buf(elem->req.out, elem->req.n_out, 0, e->data, e->len);
		vu_backend_complete(m->backend, elem, (uint32_t)e->len);
		free(e);
	}
}

static void
on_event_fd(void *data, int fd)
{
	struct vmedia *m = data;
	uint64_t v;
	ssize_t n _unused_ = read(fd, &v, sizeof(v));

	events_flush(m);
}

static void
on_registry_fd(void *data, int fd)
{
	struct vmedia *m = data;

	(void)fd;
	if (m->dev && media_device_dispatch_registry(m->dev) < 0)
		cb_log("registry connection lost; OBJECT buffers fail until it is back");
	events_flush(m);
}

/* ---- shared memory region 0 ---- */

/* First fit; -ENOSPC when no gap is large enough or the table is full. */
static int
shm_alloc(struct vmedia *m, uint64_t len, uint64_t *ret_addr)
{
	uint64_t at = 0;
	unsigned i;

	if (m->n_ranges == ARRAY_SIZE(m->ranges) || len > SHM_SIZE)
		return -ENOSPC;
	for (i = 0; i < m->n_ranges; i++) {
		if (m->ranges[i].addr - at >= len)
			break;
		at = m->ranges[i].addr + m->ranges[i].len;
	}
	if (i == m->n_ranges && SHM_SIZE - at < len)
		return -ENOSPC;
	memmove(&m->ranges[i + 1], &m->ranges[i], (m->n_ranges - i) * sizeof(m->ranges[0]));
	m->ranges[i] = (struct shm_range){at, len};
	m->n_ranges++;
	*ret_addr = at;
	return 0;
}

static int
shm_find(struct vmedia *m, uint64_t addr)
{
	for (unsigned i = 0; i < m->n_ranges; i++) {
		if (m->ranges[i].addr == addr)
			return (int)i;
	}
	return -ENOENT;
}

static void
shm_release(struct vmedia *m, unsigned i)
{
	memmove(&m->ranges[i], &m->ranges[i + 1], (m->n_ranges - i - 1) * sizeof(m->ranges[0]));
	m->n_ranges--;
}

static int
shm_map(void *userdata, int fd, uint64_t len, bool writable, uint64_t *ret_addr)
{
	struct vmedia *m = userdata;
	uint64_t addr, alen = ALIGN_UP(len, (uint64_t)PAGE);
	int r;

	r = shm_alloc(m, alen, &addr);
	if (r < 0)
		return r;
	r = vu_backend_shmem_map(m->backend, VIRTIO_MEDIA_SHM_MMAP, addr, fd, 0, alen, writable);
	if (r < 0) {
		shm_release(m, (unsigned)shm_find(m, addr));
		return r;
	}
	*ret_addr = addr;
	return 0;
}

static int
shm_unmap(void *userdata, uint64_t addr)
{
	struct vmedia *m = userdata;
	int i = shm_find(m, addr), r;

	if (i < 0)
		return -EINVAL;
	r = vu_backend_shmem_unmap(m->backend, VIRTIO_MEDIA_SHM_MMAP, addr, m->ranges[i].len);
	shm_release(m, (unsigned)i);
	return r;
}

/* ---- the device ---- */

static const struct media_device_ops device_ops = {
	.send_event = send_event,
	.shm_map = shm_map,
	.shm_unmap = shm_unmap,
};

static int
device_create(struct vmedia *m)
{
	struct media_device_params p = {
		.ops = &device_ops,
		.userdata = m,
		.card = m->card,
		.guest_mem = vu_backend_guest_mem(m->backend),
		.client = m->client,
	};

	return media_device_new(&p, &m->dev);
}

static int
get_config(void *data, uint32_t offset, void *buf, uint32_t len)
{
	struct vmedia *m = data;
	struct virtio_media_config cfg = {0};

	if (m->dev)
		media_device_get_config(m->dev, &cfg);
	/* The backend keeps [offset, offset + len) within config_size. */
	memcpy(buf, (const uint8_t *)&cfg + offset, len);
	return 0;
}

static int
set_config(void *data, uint32_t offset, const void *buf, uint32_t len)
{
	/* Read-only for the driver. */
	return -EPERM;
}

static const char *
yes_no(uint64_t bits, unsigned bit)
{
	return bits & (1ull << bit) ? "yes" : "no";
}

static void
queue_start(void *data, unsigned queue)
{
	struct vmedia *m = data;
	uint64_t f = vu_backend_features(m->backend);
	uint64_t p = vu_backend_protocol_features(m->backend);

	if (!m->logged_ready) {
		m->logged_ready = true;
		cb_log("negotiated features 0x%" PRIx64 " (EVENT_IDX %s, INDIRECT_DESC %s), "
		       "protocol features 0x%" PRIx64 " (REPLY_ACK %s, BACKEND_REQ %s, CONFIG %s, "
		       "SHMEM %s, SHARED_OBJECT %s)",
		       f, yes_no(f, VIRTIO_RING_F_EVENT_IDX),
		       yes_no(f, VIRTIO_RING_F_INDIRECT_DESC), p,
		       yes_no(p, VU_PROTOCOL_F_REPLY_ACK), yes_no(p, VU_PROTOCOL_F_BACKEND_REQ),
		       yes_no(p, VU_PROTOCOL_F_CONFIG), yes_no(p, VU_PROTOCOL_F_SHMEM),
		       yes_no(p, VU_PROTOCOL_F_SHARED_OBJECT));
		if (!(p & (1ull << VU_PROTOCOL_F_SHMEM)))
			cb_log("no SHMEM: CMD_MMAP will fail, MMAP buffers cannot be mapped");
	}
	cb_log("%s started", queue == VIRTIO_MEDIA_COMMANDQ ? "commandq" : "eventq");
	if (queue == VIRTIO_MEDIA_EVENTQ)
		events_flush(m);
}

static void
queue_stop(void *data, unsigned queue)
{
	struct vmedia *m = data;

	/* The commandq's chains are completed as they come: only the eventq holds any. */
	if (queue == VIRTIO_MEDIA_EVENTQ)
		held_drop(m);
}

static void
handle(void *data, unsigned queue, struct vu_elem *elem)
{
	struct vmedia *m = data;

	if (queue == VIRTIO_MEDIA_COMMANDQ) {
		size_t used = m->dev ? media_device_handle_command(m->dev, &elem->req) : 0;

		vu_backend_complete(m->backend, elem, (uint32_t)MIN(used, (size_t)UINT32_MAX));
	} else if (m->n_held == QUEUE_SIZE_MAX) {
		/* Cannot happen with a queue of at most QUEUE_SIZE_MAX entries. */
		vu_backend_complete(m->backend, elem, 0);
	} else {
		m->held[(m->held_first + m->n_held) % QUEUE_SIZE_MAX] = elem;
		m->n_held++;
	}
	events_flush(m);
}

static void
reset(void *data)
{
	struct vmedia *m = data;
	int r;

	/* Every queue stopped: nothing is held. Sessions, workers and mappings go. */
	held_drop(m);
	media_device_free(m->dev);
	m->dev = NULL;
	events_clear(m);
	m->n_ranges = 0;
	r = device_create(m);
	if (r < 0)
		cb_log("cannot re-create the device: %s; requests get no answer", strerror(-r));
}

static void
connection_ended(void *data, int error, const char *why)
{
	struct vmedia *m = data;

	if (error == 0)
		cb_log("frontend disconnected");
	else
		cb_log("connection ended: %s (%s)", why ? why : "?", strerror(-error));
	if (m->dropped > 0)
		cb_log("%" PRIu64 " events were dropped for want of eventq buffers", m->dropped);
	m->dropped = 0;
	m->logged_ready = false;
}

/* ---- main ---- */

static void
on_signal(int sig)
{
	(void)sig;
	if (stop_target)
		vu_backend_stop(stop_target);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: crossbuf-media --socket-path PATH [OPTION...]\n"
		"The crossbuf virtio-media decoder (virtio id 48) as a vhost-user backend.\n"
		"\n"
		"  -s, --socket-path=PATH  listen for the VMM on PATH (required)\n"
		"  -b, --broker=PATH       resolve buffer UUIDs through the crossbufd at PATH\n"
		"                          (default: a registry embedded in this process)\n"
		"  -d, --domain=NAME       the registry domain (the VM), default \"%s\"\n"
		"  -c, --card=NAME         the card name in the config space\n"
		"  -p, --protected         ask the registry for the right to protected buffers\n"
		"  -u, --allow-unsealed-memory\n"
		"                          accept guest RAM without F_SEAL_SHRINK (hugetlbfs,\n"
		"                          memory-backend-file); a VMM shrinking it would crash us\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n"
		"\n"
		"SIGTERM or SIGINT stops it; it exits 0 then.\n",
		CROSSBUF_DEFAULT_DOMAIN);
}

static int
registry_connect(struct vmedia *m, const char *broker, const char *domain, bool protected_)
{
	int r;

	r = crossbuf_client_new(&m->client);
	if (r < 0)
		return r;
	if ((r = crossbuf_client_set_domain(m->client, domain)) < 0 ||
	    (r = crossbuf_client_set_device_kind(m->client, CROSSBUF_DEVICE_MEDIA)) < 0 ||
	    (r = crossbuf_client_set_rights(m->client, protected_ ? CROSSBUF_RIGHT_PROTECTED : 0)) <
		    0)
		return r;
	if (broker)
		return crossbuf_client_connect(m->client, broker);
	r = crossbuf_registry_new(&m->registry);
	if (r < 0)
		return r;
	return crossbuf_client_connect_embedded(m->client, m->registry);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"socket-path", required_argument, NULL, 's'},
		{"broker", required_argument, NULL, 'b'},
		{"domain", required_argument, NULL, 'd'},
		{"card", required_argument, NULL, 'c'},
		{"protected", no_argument, NULL, 'p'},
		{"allow-unsealed-memory", no_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	static const uint64_t shmem_sizes[] = {SHM_SIZE};
	struct vu_backend_device vdev = {
		.features = 0,
		.n_queues = 2,
		.max_queue_size = QUEUE_SIZE_MAX,
		.config_size = sizeof(struct virtio_media_config),
		.n_shmem = 1,
		.shmem_sizes = shmem_sizes,
		/* SHARED_PAGES buffers live in guest RAM: a file shrunk under them is SIGBUS. */
		.require_sealed_memory = true,
		.get_config = get_config,
		.set_config = set_config,
		.queue_start = queue_start,
		.queue_stop = queue_stop,
		.handle = handle,
		.reset = reset,
		.connection_ended = connection_ended,
	};
	const char *socket_path = NULL, *broker = NULL, *domain = CROSSBUF_DEFAULT_DOMAIN;
	struct vmedia m = {.event_fd = -1};
	struct sigaction sa = {.sa_handler = on_signal};
	bool protected_ = false;
	int opt, r, status = 1;

	while ((opt = getopt_long(argc, argv, "s:b:d:c:puhV", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'b':
			broker = optarg;
			break;
		case 'd':
			domain = optarg;
			break;
		case 'c':
			m.card = optarg;
			break;
		case 'p':
			protected_ = true;
			break;
		case 'u':
			vdev.require_sealed_memory = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("crossbuf-media %s\n", CROSSBUF_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || socket_path == NULL) {
		if (optind < argc)
			cb_log("unexpected argument '%s'", argv[optind]);
		else
			cb_log("--socket-path is required");
		usage(stderr);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&m.lock, NULL);
	m.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m.event_fd < 0) {
		cb_log("eventfd: %s", strerror(errno));
		goto out;
	}
	r = registry_connect(&m, broker, domain, protected_);
	if (r < 0) {
		cb_log("cannot connect to the registry%s%s (domain \"%s\"): %s",
		       broker ? " at " : "", broker ? broker : "", domain, strerror(-r));
		goto out;
	}
	r = vu_backend_new(&vdev, &m, &m.backend);
	if (r < 0) {
		cb_log("cannot create the backend: %s", strerror(-r));
		goto out;
	}
	r = device_create(&m);
	if (r < 0) {
		cb_log("cannot create the device: %s", strerror(-r));
		goto out;
	}
	if ((r = vu_backend_add_watch(m.backend, m.event_fd, on_event_fd, &m)) < 0 ||
	    (r = vu_backend_add_watch(m.backend, crossbuf_client_get_fd(m.client), on_registry_fd,
				      &m)) < 0) {
		cb_log("cannot watch fds: %s", strerror(-r));
		goto out;
	}
	r = vu_backend_listen(m.backend, socket_path);
	if (r < 0) {
		cb_log("cannot listen on %s: %s", socket_path, strerror(-r));
		goto out;
	}
	stop_target = m.backend;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	cb_log("%s listening on %s; registry: %s%s, domain \"%s\"%s%s", CROSSBUF_VERSION,
	       socket_path, broker ? "crossbufd at " : "embedded", broker ? broker : "", domain,
	       protected_ ? ", protected buffers allowed" : "",
	       vdev.require_sealed_memory ? "" : ", unsealed guest memory accepted");

	r = vu_backend_run(m.backend);
	if (r < 0)
		cb_log("stopped on an error: %s", strerror(-r));
	else
		cb_log("stopped");
	status = r < 0 ? 1 : 0;
out:
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	stop_target = NULL;
	/* Ends a connection (reset re-creates the device once more), then frees the rest. */
	m.backend = vu_backend_free(m.backend);
	media_device_free(m.dev);
	events_clear(&m);
	crossbuf_client_unref(m.client);
	crossbuf_registry_unref(m.registry);
	safe_close(m.event_fd);
	pthread_mutex_destroy(&m.lock);
	return status;
}

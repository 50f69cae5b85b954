/* SPDX-License-Identifier: MIT */
/*
 * crossbuf-media as a process, driven through its vhost-user socket by the frontend library
 * playing VMM and guest at once: negotiation, config space, sessions and ioctls through the
 * user-space driver (vmdrv), real streams decoded into MMAP buffers (mapped through shared
 * memory region 0 by SHMEM_MAP) and into OBJECT buffers exported to a real crossbufd,
 * malformed vhost-user input followed by a new frontend, and SIGTERM → exit 0.
 *
 * The guest is crossbuf-guest's VM (guest/vm.h) with the media device only: its pump thread
 * owns the frontend's queues; vmdrv's submit hands it a request and waits; the pump puts the
 * request on the commandq, returns eventq buffers to vmdrv as events and serves the backend
 * channel. The tests reach below the driver through the VM's frontend.
 */
#include "broker-fixture.h"
#include "codec.h"
#include "frontend.h"
#include "macro.h"
#include "testutil.h"
#include "vm.h"
#include "vmdrv.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ring.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RAM_SIZE   (16u << 20)
#define N_OUT      4
#define OUT_SIZE   (256u << 10)
#define MAX_CAP    16
#define IDLE_LIMIT 2000 /* polls of 5 ms without progress */

/* ---- the device process ---- */

struct media_proc {
	pid_t pid;
	char *dir;
	char *socket;
	char *log;
};

static void
media_start(struct media_proc *p, const char *broker_socket)
{
	const char *exe = g_getenv("CROSSBUF_MEDIA");
	pid_t pid;

	g_assert_nonnull(exe);
	memset(p, 0, sizeof(*p));
	p->dir = g_dir_make_tmp("crossbuf-media-XXXXXX", NULL);
	g_assert_nonnull(p->dir);
	p->socket = g_build_filename(p->dir, "media.sock", NULL);
	p->log = g_build_filename(p->dir, "media.log", NULL);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (broker_socket)
			execl(exe, exe, "--socket-path", p->socket, "--broker", broker_socket,
			      "--card", "test card", (char *)NULL);
		else
			execl(exe, exe, "--socket-path", p->socket, "--card", "test card",
			      (char *)NULL);
		_exit(127);
	}
	p->pid = pid;
	/* Until the process binds its socket (guest_vm_connect() waits for the listen). */
	for (int i = 0; i < 500 && !g_file_test(p->socket, G_FILE_TEST_EXISTS); i++)
		g_usleep(10000);
	g_assert_true(g_file_test(p->socket, G_FILE_TEST_EXISTS));
}

static char *
media_log(const struct media_proc *p)
{
	char *text = NULL;

	g_file_get_contents(p->log, &text, NULL, NULL);
	return text ? text : g_strdup("");
}

/* SIGTERM: the process must exit 0 by itself. */
static void
media_stop(struct media_proc *p)
{
	int status = 0;
	char *log = media_log(p);

	g_assert_cmpint(kill(p->pid, SIGTERM), ==, 0);
	g_assert_cmpint(waitpid(p->pid, &status, 0), ==, p->pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		g_error("crossbuf-media did not exit cleanly (status 0x%x); log:\n%s", status, log);
	g_free(log);
	log = media_log(p);
	g_assert_nonnull(strstr(log, "stopped"));
	g_test_message("crossbuf-media log:\n%s", log);
	g_free(log);
	/* The backend removes its socket; nothing else is left but the log. */
	g_assert_false(g_file_test(p->socket, G_FILE_TEST_EXISTS));
	unlink(p->log);
	g_assert_cmpint(rmdir(p->dir), ==, 0);
	g_free(p->dir);
	g_free(p->socket);
	g_free(p->log);
}

/* A bare frontend, for malformed messages. */
static struct vu_frontend *
frontend_connect(const struct media_proc *p)
{
	struct vu_frontend *f = NULL;

	g_assert_cmpint(guest_vm_connect(p->socket, RAM_SIZE, &f), ==, 0);
	return f;
}

/* ---- the guest ---- */

/* crossbuf-guest's VM with the media device only, and shorthands into it. */
struct guest {
	struct guest_vm *vm;
	struct vu_frontend *f;
	struct vmdrv *drv;
	uint8_t *shm;
	uint64_t shm_size;
};

/* Eventq buffers the guest posts (1..GUEST_VM_MEDIA_EVENT_BUFFERS): fewer make events wait. */
static unsigned n_evbuf = GUEST_VM_MEDIA_EVENT_BUFFERS;

/*
 * Connects as QEMU would, then checks what the VM found: every protocol feature asked for
 * agreed, both queues, the config space, shared memory region 0 and no other.
 */
static void
guest_init(struct guest *g, const struct media_proc *p)
{
	const struct guest_vm_options opts = {.media_event_buffers = n_evbuf};
	const struct virtio_media_config *cfg;

	memset(g, 0, sizeof(*g));
	g_assert_cmpint(guest_vm_new_with(NULL, p->socket, RAM_SIZE, &opts, &g->vm), ==, 0);
	g->f = guest_vm_frontend(g->vm, GUEST_VM_MEDIA);
	g->drv = guest_vm_media(g->vm);
	g_assert_nonnull(g->f);
	g_assert_nonnull(g->drv);
	g_assert_null(guest_vm_gpu(g->vm));
	g_assert_false(guest_vm_media_dead(g->vm));
	g_assert_cmphex(vu_frontend_protocol_features(g->f), ==, GUEST_VM_MEDIA_PROTOCOL_FEATURES);
	g_assert_true(vu_frontend_features(g->f) & (1ull << VIRTIO_RING_F_EVENT_IDX));
	g_assert_cmpuint(vu_frontend_queue_num(g->f), ==, 2);

	cfg = guest_vm_media_config(g->vm);
	g_assert_nonnull(cfg);
	g_assert_cmpuint(cfg->device_caps, ==, V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_STREAMING);
	g_assert_cmpuint(cfg->device_type, ==, 0);
	g_assert_cmpstr((const char *)cfg->card, ==, "test card");

	g->shm = guest_vm_media_shm(g->vm, &g->shm_size);
	g_assert_nonnull(g->shm);
	g_assert_cmpuint(g->shm_size, ==, 1ull << 30);
	for (unsigned i = 0; i < VU_MAX_SHMEM; i++)
		g_assert_true((vu_frontend_shmem(g->f, i, NULL) != NULL) == (i == 0));
}

static void
guest_fini(struct guest *g)
{
	/* Sessions still open are dropped with the connection (their CLOSE fails). */
	guest_vm_free(g->vm);
	memset(g, 0, sizeof(*g));
}

/* ---- a few ioctls ---- */

static void
check_session_basics(struct guest *g)
{
	struct vmdrv_session *s;
	struct v4l2_capability cap = {0};
	struct v4l2_fmtdesc fd = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	bool h264 = false;
	uint8_t bad[8] = {0x77};
	uint8_t resp[16];

	g_assert_cmpint(vmdrv_open(g->drv, &s), ==, 0);
	g_assert_cmpuint(vmdrv_session_id(s), >, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCAP, &cap), ==, 0);
	g_assert_cmpstr((const char *)cap.card, ==, "test card");
	for (fd.index = 0; vmdrv_ioctl(s, VIDIOC_ENUM_FMT, &fd) == 0; fd.index++)
		h264 |= fd.pixelformat == V4L2_PIX_FMT_H264;
	g_assert_cmpuint(fd.index, >, 0);
	g_assert_true(h264);
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
	f.fmt.pix_mp.width = 176;
	f.fmt.pix_mp.height = 100;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, V4L2_PIX_FMT_H264);
	/* An unknown command gets an error status, the device stays up. */
	g_assert_cmpint(vmdrv_raw(g->drv, bad, sizeof(bad), resp, sizeof(resp)), >=, 8);
	g_assert_cmpuint(resp[0], !=, 0);
	vmdrv_close(s);
}

/* ---- decoding a stream ---- */

struct unit {
	size_t off, len;
	uint64_t ts_us;
};

struct stream {
	uint8_t *data;
	size_t len;
	struct unit units[512];
	unsigned n_units;
	char *md5[512];
	unsigned n_md5;
};

static void
stream_load_ivf(struct stream *st, const char *name)
{
	char *path = cb_test_data_path(name), *md5_name = g_strdup_printf("%s.nv12.framemd5", name);
	char *md5_path = cb_test_data_path(md5_name), *text;
	gsize len;
	uint16_t hdr_len;
	char **lines;

	memset(st, 0, sizeof(*st));
	g_assert_true(g_file_get_contents(path, (char **)&st->data, &len, NULL));
	st->len = len;
	g_assert_true(st->len >= 32 && memcmp(st->data, "DKIF", 4) == 0);
	memcpy(&hdr_len, st->data + 6, 2);
	for (size_t off = hdr_len; off + 12 <= st->len;) {
		uint32_t size;
		uint64_t pts;

		memcpy(&size, st->data + off, 4);
		memcpy(&pts, st->data + off + 4, 8);
		g_assert_cmpuint(off + 12 + size, <=, st->len);
		g_assert_cmpuint(st->n_units, <, G_N_ELEMENTS(st->units));
		st->units[st->n_units++] = (struct unit){off + 12, size, pts * 1000};
		off += 12 + size;
	}
	g_assert_true(g_file_get_contents(md5_path, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		char **fields;

		if (**l == '#' || **l == '\0')
			continue;
		fields = g_strsplit(*l, ",", -1);
		g_assert_cmpuint(g_strv_length(fields), ==, 6);
		g_assert_cmpuint(st->n_md5, <, G_N_ELEMENTS(st->md5));
		st->md5[st->n_md5++] = g_strdup(g_strstrip(fields[5]));
		g_strfreev(fields);
	}
	g_strfreev(lines);
	g_free(text);
	g_free(md5_path);
	g_free(md5_name);
	g_free(path);
}

static void
stream_free(struct stream *st)
{
	for (unsigned i = 0; i < st->n_md5; i++)
		g_free(st->md5[i]);
	g_free(st->data);
}

struct capture {
	struct crossbuf_client *exporter; /* OBJECT buffers exported here; NULL: MMAP */
	bool streaming;
	unsigned count;
	struct v4l2_pix_format_mplane fmt;
	struct v4l2_rect visible;
	uint8_t *map[MAX_CAP];
	size_t map_len[MAX_CAP];
	int fd[MAX_CAP];
	uint64_t addr[MAX_CAP];
	uint8_t uuid[MAX_CAP][16];
	/* SHARED_PAGES: guest pages, one sg entry per page */
	bool shared;
	struct virtio_media_sg_entry sg[MAX_CAP][64];
	unsigned n_sg[MAX_CAP];
};

/* CAPTURE buffers in guest pages (SHARED_PAGES) instead of MMAP when there is no exporter. */
static bool capture_shared_pages;

static uint32_t
capture_memory(const struct capture *c)
{
	if (c->exporter)
		return V4L2_MEMORY_DMABUF;
	return c->shared ? V4L2_MEMORY_USERPTR : V4L2_MEMORY_MMAP;
}

static void
capture_queue(struct vmdrv_session *s, struct capture *c, unsigned i)
{
	struct v4l2_plane p[1] = {{0}};
	struct v4l2_buffer b = {.index = i,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = capture_memory(c),
				.length = 1,
				.m.planes = p};

	if (c->exporter) {
		struct vmdrv_mem mem = {.uuids = (const uint8_t(*)[16])c->uuid[i]};

		g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &mem), ==, 0);
	} else if (c->shared) {
		struct vmdrv_mem mem = {.sg = {c->sg[i]}, .n_sg = {c->n_sg[i]}};

		p[0].length = c->fmt.plane_fmt[0].sizeimage;
		g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &mem), ==, 0);
	} else {
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &b), ==, 0);
	}
}

static void
capture_setup(struct guest *g, struct vmdrv_session *s, struct capture *c)
{
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};
	struct v4l2_selection sel = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
				     .target = V4L2_SEL_TGT_COMPOSE};
	struct v4l2_control ctl = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = capture_memory(c)};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, 0);
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_NV12;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, V4L2_PIX_FMT_NV12);
	g_assert_cmpuint(f.fmt.pix_mp.num_planes, ==, 1);
	c->fmt = f.fmt.pix_mp;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_SELECTION, &sel), ==, 0);
	c->visible = sel.r;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_CTRL, &ctl), ==, 0);
	rb.count = MIN((unsigned)ctl.value + 2, (unsigned)MAX_CAP);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	c->count = MIN(rb.count, (unsigned)MAX_CAP);
	for (unsigned i = 0; i < c->count; i++) {
		if (c->exporter) {
			struct crossbuf_buffer_info info = {.device_kind = CROSSBUF_DEVICE_TOOL};

			c->map_len[i] = ALIGN_UP(c->fmt.plane_fmt[0].sizeimage, 4096u);
			c->fd[i] = cb_test_memfd("capture", NULL, c->map_len[i]);
			c->map[i] = mmap(NULL, c->map_len[i], PROT_READ, MAP_SHARED, c->fd[i], 0);
			g_assert_true(c->map[i] != MAP_FAILED);
			g_assert_cmpint(
				crossbuf_client_export(c->exporter, c->fd[i], &info, c->uuid[i]),
				==, 0);
		} else if (c->shared) {
			uint64_t gpa;

			/* The guest allocates; the pump never does, so this thread may. */
			c->map_len[i] = ALIGN_UP(c->fmt.plane_fmt[0].sizeimage, 4096u);
			g_assert_cmpuint(c->map_len[i] / 4096, <=, G_N_ELEMENTS(c->sg[i]));
			g_assert_cmpint(vu_frontend_alloc(g->f, c->map_len[i], 4096, &gpa), ==, 0);
			c->map[i] = vu_frontend_ram(g->f, gpa, c->map_len[i]);
			memset(c->map[i], 0xee, c->map_len[i]);
			c->n_sg[i] = (unsigned)(c->map_len[i] / 4096);
			for (unsigned k = 0; k < c->n_sg[i]; k++)
				c->sg[i][k] =
					(struct virtio_media_sg_entry){gpa + 4096ull * k, 4096};
		} else {
			struct v4l2_plane p[1];
			struct v4l2_buffer b = {.index = i,
						.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
						.memory = V4L2_MEMORY_MMAP,
						.length = 1,
						.m.planes = p};
			uint64_t len;
			void *ptr;

			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &b), ==, 0);
			g_assert_cmpint(
				vmdrv_mmap(s, p[0].m.mem_offset, false, &ptr, &c->addr[i], &len),
				==, 0);
			g_assert_cmpuint(len, >=, c->fmt.plane_fmt[0].sizeimage);
			/* Region 0 as the VMM mapped it: the device's own memfd. */
			g_assert_true((uint8_t *)ptr >= g->shm &&
				      (uint8_t *)ptr + len <= g->shm + g->shm_size);
			c->map[i] = ptr;
		}
		capture_queue(s, c, i);
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	c->streaming = true;
}

static void
capture_release(struct guest *g, struct vmdrv_session *s, struct capture *c)
{
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = capture_memory(c)};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	if (c->streaming)
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	c->streaming = false;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	for (unsigned i = 0; i < c->count; i++) {
		if (c->exporter) {
			g_assert_cmpint(crossbuf_client_remove(c->exporter, c->uuid[i]), ==, 0);
			munmap(c->map[i], c->map_len[i]);
			close(c->fd[i]);
		} else if (!c->shared) {
			g_assert_cmpint(vmdrv_munmap(g->drv, c->addr[i]), ==, 0);
		}
	}
	c->count = 0;
}

/* framemd5 of the visible rectangle as tightly packed NV12. */
static char *
picture_md5(const struct capture *c, unsigned index)
{
	GChecksum *sum = g_checksum_new(G_CHECKSUM_MD5);
	const struct v4l2_rect *v = &c->visible;
	uint32_t stride = c->fmt.plane_fmt[0].bytesperline;
	const uint8_t *y = c->map[index], *uv = y + (size_t)stride * c->fmt.height;
	char *r;

	for (uint32_t row = 0; row < v->height; row++)
		g_checksum_update(sum, y + (size_t)(v->top + row) * stride + v->left, v->width);
	for (uint32_t row = 0; row < (v->height + 1) / 2; row++)
		g_checksum_update(sum, uv + (size_t)(v->top / 2 + row) * stride + v->left,
				  (v->width + 1) / 2 * 2);
	r = g_strdup(g_checksum_get_string(sum));
	g_checksum_free(sum);
	return r;
}

/*
 * Decodes an IVF stream as a V4L2 client does; every frame's md5 must equal ffmpeg's. With
 * stop_after > 0, returns after that many frames leaving the session as it is (decoding,
 * buffers mapped), for a frontend that goes away mid-stream.
 */
static void
decode_ivf(struct guest *g, const char *name, uint32_t coded, struct crossbuf_client *exporter,
	   unsigned stop_after)
{
	struct capture c = {.exporter = exporter, .shared = !exporter && capture_shared_pages};
	struct vmdrv_session *s;
	struct stream *st = g_new0(struct stream, 1);
	void *out_ptr[N_OUT];
	uint64_t out_addr[N_OUT];
	bool out_free[N_OUT], draining = false, done = false;
	unsigned next = 0, frames = 0, idle = 0;
	int otype = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;

	stream_load_ivf(st, name);
	g_assert_cmpint(vmdrv_open(g->drv, &s), ==, 0);
	{
		struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
		struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						 .memory = V4L2_MEMORY_MMAP,
						 .count = N_OUT};
		struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};

		f.fmt.pix_mp.pixelformat = coded;
		f.fmt.pix_mp.plane_fmt[0].sizeimage = OUT_SIZE;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
		g_assert_cmpuint(rb.count, ==, N_OUT);
		for (unsigned i = 0; i < N_OUT; i++) {
			struct v4l2_plane p[1];
			struct v4l2_buffer b = {.index = i,
						.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						.memory = V4L2_MEMORY_MMAP,
						.length = 1,
						.m.planes = p};
			uint64_t len;

			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &b), ==, 0);
			g_assert_cmpint(vmdrv_mmap(s, p[0].m.mem_offset, true, &out_ptr[i],
						   &out_addr[i], &len),
					==, 0);
			out_free[i] = true;
		}
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &otype), ==, 0);
	}
	vmdrv_set_timeout(s, 0);

	while (!done) {
		struct v4l2_plane p[1];
		struct v4l2_buffer b;
		struct v4l2_event ev;
		bool progress = false;

		for (unsigned i = 0; i < N_OUT && next < st->n_units; i++) {
			struct v4l2_plane op[1] = {{0}};
			struct v4l2_buffer ob = {.index = i,
						 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						 .memory = V4L2_MEMORY_MMAP,
						 .length = 1,
						 .m.planes = op};
			const struct unit *u = &st->units[next];

			if (!out_free[i])
				continue;
			g_assert_cmpuint(u->len, <=, OUT_SIZE);
			/* The bitstream goes through region 0 into the device's memfd. */
			memcpy(out_ptr[i], st->data + u->off, u->len);
			op[0].bytesused = (uint32_t)u->len;
			ob.timestamp.tv_sec = (time_t)(u->ts_us / 1000000);
			ob.timestamp.tv_usec = (suseconds_t)(u->ts_us % 1000000);
			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &ob), ==, 0);
			out_free[i] = false;
			next++;
			progress = true;
		}
		if (next == st->n_units && !draining) {
			struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP};

			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
			draining = true;
		}
		b = (struct v4l2_buffer){
			.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, .length = 1, .m.planes = p};
		while (vmdrv_ioctl(s, VIDIOC_DQBUF, &b) == 0) {
			out_free[b.index] = true;
			progress = true;
		}
		if (vmdrv_ioctl(s, VIDIOC_DQEVENT, &ev) == 0) {
			g_assert_cmpuint(ev.type, ==, V4L2_EVENT_SOURCE_CHANGE);
			g_assert_cmpuint(c.count, ==, 0); /* one resolution in these streams */
			capture_setup(g, s, &c);
			progress = true;
		}
		while (c.streaming) {
			b = (struct v4l2_buffer){.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
						 .length = 1,
						 .m.planes = p};
			if (vmdrv_ioctl(s, VIDIOC_DQBUF, &b) != 0)
				break;
			progress = true;
			if (p[0].bytesused > 0 && !(b.flags & V4L2_BUF_FLAG_ERROR)) {
				char *md5 = picture_md5(&c, b.index);

				g_assert_cmpuint(frames, <, st->n_md5);
				if (strcmp(md5, st->md5[frames]) != 0)
					g_error("%s frame %u: md5 %s, want %s", name, frames, md5,
						st->md5[frames]);
				g_free(md5);
				frames++;
				if (frames == stop_after) {
					stream_free(st);
					g_free(st);
					return;
				}
			}
			if (b.flags & V4L2_BUF_FLAG_LAST) {
				g_assert_true(draining);
				done = true;
				break;
			}
			capture_queue(s, &c, b.index);
		}
		if (progress) {
			idle = 0;
		} else {
			vmdrv_poll(s, 5);
			if (++idle > IDLE_LIMIT)
				g_error("%s: stuck after %u frames (%u units queued)", name, frames,
					next);
		}
	}
	g_assert_cmpuint(frames, ==, st->n_md5);
	g_test_message("%s: %u frames decoded into %s buffers", name, frames,
		       exporter   ? "OBJECT"
		       : c.shared ? "SHARED_PAGES"
				  : "MMAP");
	capture_release(g, s, &c);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &otype), ==, 0);
	for (unsigned i = 0; i < N_OUT; i++)
		g_assert_cmpint(vmdrv_munmap(g->drv, out_addr[i]), ==, 0);
	vmdrv_close(s);
	stream_free(st);
	g_free(st);
}

/* ---- tests ---- */

static void
test_cli(void)
{
	const char *exe = g_getenv("CROSSBUF_MEDIA");
	char *out = NULL, *err = NULL;
	int status;
	char *argv_help[] = {(char *)exe, "--help", NULL};
	char *argv_version[] = {(char *)exe, "--version", NULL};
	char *argv_none[] = {(char *)exe, NULL};
	char *argv_broker[] = {(char *)exe,
			       "--socket-path",
			       "/nonexistent/s",
			       "--broker",
			       "/nonexistent/broker.sock",
			       NULL};

	g_assert_nonnull(exe);
	g_assert_true(g_spawn_sync(NULL, argv_help, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
				   &status, NULL));
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_assert_nonnull(strstr(out, "--socket-path"));
	g_assert_nonnull(strstr(out, "--broker"));
	g_assert_nonnull(strstr(out, "--domain"));
	g_free(out);
	g_free(err);
	g_assert_true(g_spawn_sync(NULL, argv_version, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
				   &err, &status, NULL));
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_assert_true(g_str_has_prefix(out, "crossbuf-media "));
	g_free(out);
	g_free(err);
	/* No socket path: a usage error. */
	g_assert_true(g_spawn_sync(NULL, argv_none, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
				   &status, NULL));
	g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	g_free(out);
	g_free(err);
	/* A broker that is not there: a clear error, exit 1. */
	g_assert_true(g_spawn_sync(NULL, argv_broker, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
				   &status, NULL));
	g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	g_assert_nonnull(strstr(err, "registry"));
	g_free(out);
	g_free(err);
}

static void
test_session(void)
{
	struct media_proc p;
	struct guest g;

	media_start(&p, NULL);
	guest_init(&g, &p);
	check_session_basics(&g);
	/* EXPBUF of an MMAP buffer registers it in the embedded registry: a UUID comes back. */
	{
		struct vmdrv_session *s;
		struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
		struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						 .memory = V4L2_MEMORY_MMAP,
						 .count = 1};
		struct v4l2_exportbuffer e = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
		uint8_t uuid[16] = {0}, zero[16] = {0};

		g_assert_cmpint(vmdrv_open(g.drv, &s), ==, 0);
		f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
		g_assert_cmpint(vmdrv_expbuf(s, &e, uuid), ==, 0);
		g_assert_true(memcmp(uuid, zero, 16) != 0);
		vmdrv_close(s);
	}
	guest_fini(&g);
	media_stop(&p);
}

static void
test_decode_mmap(void)
{
	struct media_proc p;
	struct guest g;

	if (!codec_supports(V4L2_PIX_FMT_VP9)) {
		g_test_skip("this libavcodec cannot decode VP9");
		return;
	}
	media_start(&p, NULL);
	guest_init(&g, &p);
	decode_ivf(&g, "vp9-176x100.ivf", V4L2_PIX_FMT_VP9, NULL, 0);
	guest_fini(&g);
	media_stop(&p);
}

static void
test_decode_object_broker(void)
{
	struct broker br;
	struct crossbuf_client *exporter;
	struct media_proc p;
	struct guest g;

	if (!codec_supports(V4L2_PIX_FMT_VP8)) {
		g_test_skip("this libavcodec cannot decode VP8");
		return;
	}
	broker_start(&br, NULL, 0);
	exporter = broker_client(&br, NULL, 0);
	media_start(&p, br.socket);
	guest_init(&g, &p);
	decode_ivf(&g, "vp8-176x100.ivf", V4L2_PIX_FMT_VP8, exporter, 0);
	guest_fini(&g);
	media_stop(&p);
	/* Every entry was removed; the device's connection to the broker went with it. */
	broker_wait_entries(&br, 0);
	crossbuf_client_unref(exporter);
	broker_stop(&br);
}

/*
 * CAPTURE buffers in guest pages: the device resolves them through the guest memory table
 * the backend mapped (vu_backend_guest_mem()) and copies each picture there.
 */
static void
test_decode_shared_pages(void)
{
	struct media_proc p;
	struct guest g;

	if (!codec_supports(V4L2_PIX_FMT_VP9)) {
		g_test_skip("this libavcodec cannot decode VP9");
		return;
	}
	media_start(&p, NULL);
	guest_init(&g, &p);
	capture_shared_pages = true;
	decode_ivf(&g, "vp9-176x100.ivf", V4L2_PIX_FMT_VP9, NULL, 0);
	capture_shared_pages = false;
	guest_fini(&g);
	media_stop(&p);
}

/* Only one eventq buffer: events wait in the device's backlog and go out one by one. */
static void
test_decode_one_event_buffer(void)
{
	struct media_proc p;
	struct guest g;

	if (!codec_supports(V4L2_PIX_FMT_VP9)) {
		g_test_skip("this libavcodec cannot decode VP9");
		return;
	}
	media_start(&p, NULL);
	n_evbuf = 1;
	guest_init(&g, &p);
	decode_ivf(&g, "vp9-176x100.ivf", V4L2_PIX_FMT_VP9, NULL, 0);
	guest_fini(&g);
	n_evbuf = GUEST_VM_MEDIA_EVENT_BUFFERS;
	media_stop(&p);
}

/* The device process' open fds once they stop changing (its workers wind down). */
static int
settled_fd_count(pid_t pid)
{
	int last = -1, same = 0;

	for (int i = 0; i < 500 && same < 5; i++) {
		int n = cb_test_count_fds(pid);

		same = n == last ? same + 1 : 0;
		last = n;
		g_usleep(10000);
	}
	return last;
}

/*
 * The frontend goes away in the middle of a stream, a session decoding and its buffers
 * mapped: the device releases everything (the process is back to its idle fd count) and the
 * next frontend decodes the stream whole.
 */
static void
test_disconnect_mid_stream(void)
{
	struct media_proc p;
	struct guest g;
	int idle;

	if (!codec_supports(V4L2_PIX_FMT_VP9)) {
		g_test_skip("this libavcodec cannot decode VP9");
		return;
	}
	media_start(&p, NULL);
	idle = settled_fd_count(p.pid);
	g_assert_cmpint(idle, >, 0);
	guest_init(&g, &p);
	decode_ivf(&g, "vp9-176x100.ivf", V4L2_PIX_FMT_VP9, NULL, 3);
	g_assert_cmpint(cb_test_count_fds(p.pid), >, idle);
	guest_fini(&g);
	g_assert_cmpint(settled_fd_count(p.pid), ==, idle);

	guest_init(&g, &p);
	decode_ivf(&g, "vp9-176x100.ivf", V4L2_PIX_FMT_VP9, NULL, 0);
	guest_fini(&g);
	g_assert_cmpint(settled_fd_count(p.pid), ==, idle);
	media_stop(&p);
}

/*
 * The exporter removes a CAPTURE object while it is queued: the broker tells the device on
 * the registry client's fd, which crossbuf-media watches in its loop, and the buffer comes
 * back flagged ERROR with no further command from the guest (DQBUF is served from events).
 */
static void
test_object_removed_while_queued(void)
{
	struct broker br;
	struct crossbuf_client *exporter;
	struct media_proc p;
	struct guest g;
	struct stream *st = g_new0(struct stream, 1);
	struct capture c = {0};
	struct vmdrv_session *s;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {
		.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, .memory = V4L2_MEMORY_MMAP, .count = 1};
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};
	struct v4l2_plane op[1] = {{0}}, cp[1];
	struct v4l2_buffer ob = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				 .memory = V4L2_MEMORY_MMAP,
				 .length = 1,
				 .m.planes = op};
	struct v4l2_event ev;
	int otype = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	uint64_t addr, len;
	unsigned victim;
	bool seen = false;
	void *ptr;

	if (!codec_supports(V4L2_PIX_FMT_VP8)) {
		g_test_skip("this libavcodec cannot decode VP8");
		g_free(st);
		return;
	}
	stream_load_ivf(st, "vp8-176x100.ivf");
	broker_start(&br, NULL, 0);
	exporter = broker_client(&br, NULL, 0);
	c.exporter = exporter;
	media_start(&p, br.socket);
	guest_init(&g, &p);
	g_assert_cmpint(vmdrv_open(g.drv, &s), ==, 0);
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_VP8;
	f.fmt.pix_mp.plane_fmt[0].sizeimage = OUT_SIZE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &ob), ==, 0);
	g_assert_cmpint(vmdrv_mmap(s, op[0].m.mem_offset, true, &ptr, &addr, &len), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &otype), ==, 0);
	/* The first frame only: its header makes the device ask for CAPTURE buffers. */
	memcpy(ptr, st->data + st->units[0].off, st->units[0].len);
	op[0].bytesused = (uint32_t)st->units[0].len;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &ob), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQEVENT, &ev), ==, 0);
	g_assert_cmpuint(ev.type, ==, V4L2_EVENT_SOURCE_CHANGE);
	capture_setup(&g, s, &c);
	g_assert_cmpuint(c.count, >=, 2);
	/* The first frame takes one buffer at most: the last queued stays free. */
	victim = c.count - 1;
	g_assert_cmpint(crossbuf_client_remove(exporter, c.uuid[victim]), ==, 0);
	vmdrv_set_timeout(s, 5000);
	for (unsigned i = 0; i < c.count && !seen; i++) {
		struct v4l2_buffer b = {
			.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, .length = 1, .m.planes = cp};

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, 0);
		if (b.index == victim) {
			g_assert_true(b.flags & V4L2_BUF_FLAG_ERROR);
			g_assert_cmpuint(cp[0].bytesused, ==, 0);
			seen = true;
		}
	}
	g_assert_true(seen);
	/* Its UUID is gone: queuing it again is refused. */
	{
		struct v4l2_buffer b = {.index = victim,
					.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					.memory = V4L2_MEMORY_DMABUF,
					.length = 1,
					.m.planes = cp};
		struct vmdrv_mem mem = {.uuids = (const uint8_t(*)[16])c.uuid[victim]};

		memset(cp, 0, sizeof(cp));
		g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &mem), ==, -EINVAL);
	}
	/* Release: the victim's entry is already gone. */
	g_assert_cmpint(crossbuf_client_export_uuid(exporter, c.uuid[victim], c.fd[victim],
						    &(struct crossbuf_buffer_info){
							    .device_kind = CROSSBUF_DEVICE_TOOL}),
			==, 0);
	capture_release(&g, s, &c);
	g_assert_cmpint(vmdrv_munmap(g.drv, addr), ==, 0);
	vmdrv_close(s);
	guest_fini(&g);
	media_stop(&p);
	broker_wait_entries(&br, 0);
	crossbuf_client_unref(exporter);
	broker_stop(&br);
	stream_free(st);
	g_free(st);
}

/* A frontend whose connection the device must end; the next one must be served. */
static void
check_next_frontend_served(struct media_proc *p)
{
	struct guest g;

	guest_init(&g, p);
	check_session_basics(&g);
	guest_fini(&g);
}

static void
test_malformed(void)
{
	struct media_proc p;
	struct vu_frontend *f;
	struct guest g;
	char *log;

	media_start(&p, NULL);

	/* A header with bad version bits. */
	f = frontend_connect(&p);
	{
		uint32_t hdr[3] = {VU_REQ_GET_FEATURES, 0x7, 0};

		g_assert_cmpint(vu_frontend_send_raw(f, hdr, sizeof(hdr), NULL, 0), ==, 0);
		g_assert_cmpint(vu_frontend_wait_hangup(f, 5000), ==, 0);
	}
	vu_frontend_free(f);
	check_next_frontend_served(&p);

	/* A payload larger than any request's. */
	f = frontend_connect(&p);
	{
		uint32_t hdr[3] = {VU_REQ_SET_FEATURES, 0x1, 1u << 20};

		g_assert_cmpint(vu_frontend_send_raw(f, hdr, sizeof(hdr), NULL, 0), ==, 0);
		g_assert_cmpint(vu_frontend_wait_hangup(f, 5000), ==, 0);
	}
	vu_frontend_free(f);

	/* A broken commandq ring, with a session open and an MMAP buffer mapped. */
	guest_init(&g, &p);
	{
		struct vmdrv_session *s;
		struct v4l2_format fmt = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
		struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						 .memory = V4L2_MEMORY_MMAP,
						 .count = 1};
		struct v4l2_plane pl[1];
		struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					.memory = V4L2_MEMORY_MMAP,
					.length = 1,
					.m.planes = pl};
		uint64_t addr, len;
		void *ptr;

		g_assert_cmpint(vmdrv_open(g.drv, &s), ==, 0);
		fmt.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &fmt), ==, 0);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &b), ==, 0);
		g_assert_cmpint(vmdrv_mmap(s, pl[0].m.mem_offset, true, &ptr, &addr, &len), ==, 0);
		memset(ptr, 0xab, len); /* writable through region 0 */

		/*
		 * Publish a head beyond the ring. The pump touches only the eventq and the
		 * backend channel while no request is in flight.
		 */
		g_assert_cmpint(vu_frontend_queue_publish_raw(g.f, VIRTIO_MEDIA_COMMANDQ,
							      GUEST_VM_MEDIA_QUEUE_SIZE + 3),
				==, 0);
		g_assert_cmpint(vu_frontend_queue_kick(g.f, VIRTIO_MEDIA_COMMANDQ), ==, 0);
		for (int i = 0; i < 500 && !guest_vm_media_dead(g.vm); i++)
			g_usleep(10000);
		g_assert_true(guest_vm_media_dead(g.vm));
		/* The session went with the connection: CLOSE fails, the driver forgets it. */
		vmdrv_close(s);
	}
	guest_fini(&g);
	check_next_frontend_served(&p);

	log = media_log(&p);
	g_assert_nonnull(strstr(log, "negotiated features"));
	g_assert_nonnull(strstr(log, "connection ended"));
	g_free(log);
	media_stop(&p);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	cb_test_add("/media-device-vhost/cli", test_cli);
	cb_test_add("/media-device-vhost/session-ioctls-expbuf", test_session);
	cb_test_add("/media-device-vhost/decode-vp9-mmap", test_decode_mmap);
	cb_test_add("/media-device-vhost/decode-vp8-object-broker", test_decode_object_broker);
	cb_test_add("/media-device-vhost/decode-vp9-shared-pages", test_decode_shared_pages);
	cb_test_add("/media-device-vhost/object-removed-while-queued",
		    test_object_removed_while_queued);
	cb_test_add("/media-device-vhost/decode-vp9-one-eventq-buffer",
		    test_decode_one_event_buffer);
	cb_test_add("/media-device-vhost/disconnect-mid-stream", test_disconnect_mid_stream);
	cb_test_add("/media-device-vhost/malformed-then-next-frontend", test_malformed);
	return g_test_run();
}

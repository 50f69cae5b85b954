/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every crossbuf component. Private: never installed. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define CROSSBUF_PUBLIC __attribute__((visibility("default")))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define ALIGN_UP(v, a) (((v) + (a)-1) / (a) * (a))

static inline void
freep(void *p)
{
	free(*(void **)p);
}

static inline void
closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_(f)	   __attribute__((cleanup(f)))
#define _cleanup_free_	   _cleanup_(freep)
#define _cleanup_close_	   _cleanup_(closep)
#define _unused_	   __attribute__((unused))
#define _printf_(a, b)	   __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

/* Hands the value out of a cleanup variable, leaving a harmless value behind. */
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p_ = (p);                                                           \
		(p) = NULL;                                                                        \
		_p_;                                                                               \
	})

/* close() that keeps errno and returns -1, for "fd = safe_close(fd);" */
static inline int
safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

/* -errno of the last failing libc call, never 0 even if errno was not set. */
static inline int
negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* a * b, or -EOVERFLOW; for sizes from a guest or a peer. */
static inline int
mul_size(size_t a, size_t b, size_t *ret)
{
	size_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return -EOVERFLOW;
	*ret = r;
	return 0;
}

static inline int
add_size(size_t a, size_t b, size_t *ret)
{
	size_t r;
	if (__builtin_add_overflow(a, b, &r))
		return -EOVERFLOW;
	*ret = r;
	return 0;
}

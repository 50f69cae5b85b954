/* SPDX-License-Identifier: MIT */
/* Backend choice: by option, or automatically (GBM on a render node, else memfd). */
#include "backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifndef GPU_WITH_GBM
int
gpu_backend_gbm_new(const char *render_node, struct gpu_backend **ret_backend)
{
	return -EOPNOTSUPP;
}
#endif

#ifndef GPU_WITH_VIRGL
int
gpu_backend_virgl_new(const char *render_node, struct gpu_backend **ret_backend)
{
	return -EOPNOTSUPP;
}
#endif

int
gpu_backend_choice_from_string(const char *s, enum gpu_backend_choice *ret_choice)
{
	static const struct {
		const char *name;
		enum gpu_backend_choice choice;
	} names[] = {
		{"auto", GPU_BACKEND_AUTO},
		{"memfd", GPU_BACKEND_MEMFD},
		{"gbm", GPU_BACKEND_GBM},
		{"virgl", GPU_BACKEND_VIRGL},
	};

	if (s == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*ret_choice = names[i].choice;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *
why(int error)
{
	switch (error) {
	case -EOPNOTSUPP:
		return "not built in";
	case -ENODEV:
		return "no usable render node";
	default:
		return strerror(-error);
	}
}

int
gpu_backend_select(enum gpu_backend_choice choice, const char *render_node,
		   struct gpu_backend **ret_backend, char *reason, size_t reason_size)
{
	const char *node = render_node != NULL ? render_node : "the first /dev/dri/renderD*";
	int r;

	switch (choice) {
	case GPU_BACKEND_MEMFD:
		r = gpu_backend_memfd_new(ret_backend);
		snprintf(reason, reason_size, "gpu-bridge: backend memfd (asked for)%s%s",
			 r < 0 ? ": failed: " : "", r < 0 ? why(r) : "");
		return r;
	case GPU_BACKEND_GBM:
		r = gpu_backend_gbm_new(render_node, ret_backend);
		snprintf(reason, reason_size, "gpu-bridge: backend gbm on %s (asked for)%s%s", node,
			 r < 0 ? ": failed: " : "", r < 0 ? why(r) : "");
		return r;
	case GPU_BACKEND_VIRGL:
		r = gpu_backend_virgl_new(render_node, ret_backend);
		snprintf(reason, reason_size, "gpu-bridge: backend virgl on %s (asked for)%s%s",
			 node, r < 0 ? ": failed: " : "", r < 0 ? why(r) : "");
		return r;
	case GPU_BACKEND_AUTO:
		r = gpu_backend_gbm_new(render_node, ret_backend);
		if (r == 0) {
			snprintf(reason, reason_size,
				 "gpu-bridge: backend gbm (auto: a render node opened: %s)", node);
			return 0;
		}
		int gbm_error = r;
		r = gpu_backend_memfd_new(ret_backend);
		snprintf(reason, reason_size,
			 "gpu-bridge: backend memfd (auto: gbm unavailable: %s; software buffers, "
			 "no GPU)%s%s",
			 why(gbm_error), r < 0 ? ": failed: " : "", r < 0 ? why(r) : "");
		return r;
	}
	snprintf(reason, reason_size, "gpu-bridge: unknown backend choice %d", (int)choice);
	return -EINVAL;
}

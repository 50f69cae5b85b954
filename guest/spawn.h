/* SPDX-License-Identifier: MIT */
/*
 * The host processes crossbuf-guest starts when it is given no device sockets: crossbufd,
 * crossbuf-gpu and crossbuf-media, each with its stderr in a log file. They die with
 * crossbuf-guest (PR_SET_PDEATHSIG) and are stopped with SIGTERM, then SIGKILL.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct guest_proc {
	const char *name; /* "crossbufd", ... (borrowed) */
	pid_t pid;        /* 0: not running */
	char *log;        /* path of its stderr */
	int status;       /* wait status once stopped */
};

/*
 * Where the executable name is: next to this program (installed together), in the build
 * tree's sibling directories (../registry, ../gpu-bridge, ../media-device), else on $PATH.
 * Returns a malloc'd path or name.
 */
char *guest_find_exe(const char *name);

/* Starts exe with argv (argv[0] included, NULL-terminated), stderr into log. */
int guest_proc_start(struct guest_proc *p, const char *name, char *const argv[], const char *log);
/* Waits until the process created the socket path: -ECHILD if it exited first. */
int guest_proc_wait_socket(struct guest_proc *p, const char *path, int timeout_ms);
/* Whether it is still running (reaps it if not). */
bool guest_proc_running(struct guest_proc *p);
/* SIGTERM, then SIGKILL after timeout_ms. Returns 0 if it exited with status 0. */
int guest_proc_stop(struct guest_proc *p, int timeout_ms);
/* Sends sig without waiting (the tests' device-killed scenarios). */
int guest_proc_kill(struct guest_proc *p, int sig);
void guest_proc_clear(struct guest_proc *p);

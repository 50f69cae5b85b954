/* SPDX-License-Identifier: MIT */
/* Runs a real crossbufd in a temporary folder for a test. */
#pragma once

#include <crossbuf/crossbuf.h>
#include <stdbool.h>
#include <sys/types.h>

struct broker {
	pid_t pid;
	char *dir;
	char *socket;
	char *config;
	char *state;      /* its state file, in the folder */
	const char *hold; /* its --hold-time, NULL: the default */
};

/*
 * Starts $CROSSBUFD with config_text (NULL: no config file, built-in defaults) on a socket
 * in a new temporary folder, with a state file there, and waits until it accepts.
 * nofile > 0 sets its RLIMIT_NOFILE.
 */
void broker_start(struct broker *b, const char *config_text, unsigned nofile);
/* Starts it again on the same socket, config and state file (after broker_kill). */
void broker_restart(struct broker *b, unsigned nofile);
/* SIGKILL, wait. */
void broker_kill(struct broker *b);
/* SIGTERM, wait for a clean exit, remove the folder. */
void broker_stop(struct broker *b);

/* A connected library client. */
struct crossbuf_client *broker_client(const struct broker *b, const char *domain, uint32_t rights);
/* A raw SOCK_SEQPACKET connection to the broker, for speaking malformed protocol. */
int broker_raw_connect(const struct broker *b);
/*
 * The broker's open fds once it is idle: the count after it stays the same for 50 ms
 * (closed connections are reaped asynchronously).
 */
int broker_fd_count(const struct broker *b);
/* Waits until the broker holds `entries` entries (admin stats), or fails the test. */
void broker_wait_entries(const struct broker *b, uint64_t entries);

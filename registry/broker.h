/* SPDX-License-Identifier: MIT */
/*
 * crossbufd's event loop: accepts clients on a listening SOCK_SEQPACKET socket, maps each
 * onto a registry session once it has said HELLO and the policy admits it, and answers its
 * requests. Single-threaded; never blocks on a client.
 */
#pragma once

#include <stdbool.h>

struct cb_broker;
struct cb_policy;

/*
 * Takes listen_fd (even on failure) and keeps policy (borrowed: it must outlive the
 * broker). verbose logs every request.
 */
int cb_broker_new(int listen_fd, const struct cb_policy *policy, bool verbose,
		  struct cb_broker **ret_broker);
/* Runs until SIGTERM or SIGINT (blocked by the caller and read through a signalfd). */
int cb_broker_run(struct cb_broker *broker);
void cb_broker_free(struct cb_broker *broker);

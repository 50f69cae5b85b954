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
 * After a restart, how long the UUIDs of the state file stay held for their exporters by
 * default: a libcrossbuf client retries its reconnection for 5 s, then registers its entries
 * again.
 */
#define CB_BROKER_HOLD_MS 10000

/*
 * Takes listen_fd (even on failure) and keeps policy (borrowed: it must outlive the
 * broker). state_path (NULL: none) is the state file (state.h): every entry is recorded
 * there, and the UUIDs a previous broker left there are held for their exporters for
 * hold_ms (0: not held). verbose logs every request.
 */
int cb_broker_new(int listen_fd, const struct cb_policy *policy, const char *state_path,
		  unsigned hold_ms, bool verbose, struct cb_broker **ret_broker);
/* Runs until SIGTERM or SIGINT (blocked by the caller and read through a signalfd). */
int cb_broker_run(struct cb_broker *broker);
void cb_broker_free(struct cb_broker *broker);

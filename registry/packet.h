/* SPDX-License-Identifier: MIT */
/* Sending and receiving one SOCK_SEQPACKET packet with fds (SCM_RIGHTS). */
#pragma once

#include <stddef.h>

#define CB_PACKET_MAX_FDS 4 /* room for fds per receive; a packet with more is refused */

/*
 * Sends len bytes and, if fd >= 0, that fd (borrowed). Never raises SIGPIPE.
 * -EAGAIN on a non-blocking socket whose buffer is full, -EPIPE when the peer is gone.
 */
int cb_packet_send(int sock, const void *buf, size_t len, int fd);

/*
 * Receives one packet into buf (cap bytes) and its fds (new, close-on-exec) into fds
 * (CB_PACKET_MAX_FDS slots), *ret_len and *ret_nfds set. Returns 0, or:
 *   -ECONNRESET  the peer closed the connection (end of stream);
 *   -EAGAIN      nothing to read on a non-blocking socket;
 *   -EMSGSIZE    the packet was longer than cap (it is dropped, its fds closed);
 *   -EMFILE      the kernel dropped fds (our fd table is full);
 *   -ETOOMANYREFS more fds than CB_PACKET_MAX_FDS (all closed).
 * On every error no fd is left open. For -EMSGSIZE, -EMFILE and -ETOOMANYREFS the bytes
 * that did arrive are in buf and *ret_len says how many, so that the caller can answer
 * the request they belong to.
 */
int cb_packet_recv(int sock, void *buf, size_t cap, int flags, size_t *ret_len, int *fds,
		   unsigned *ret_nfds);

/* Closes n fds of an array. */
void cb_close_fds(int *fds, unsigned n);

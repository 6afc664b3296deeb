/* SPDX-License-Identifier: MIT */
/*
 * Authentication of the signalling between a peer and punchd (SPEC.md §4).
 *
 * Proof of possession: both sides hold X25519 key pairs; the MAC key of a
 * peer-server pair is derived from X25519(peer, server), which only the two
 * holders of the secret keys can compute. A REGISTER carrying a valid MAC
 * thus proves that the sender owns the key it registers; the server's
 * answers prove the same of the server (a peer may pin the server's key).
 *
 * Cookies (draft §6.2, SPEC.md §4): punchd keeps no state for a source
 * until it has answered a cookie sent to that address. A cookie is a MAC of
 * the source address and a time period under a secret of the server, so
 * checking it needs no table.
 */
#ifndef PUNCH_CRYPTO_AUTH_H
#define PUNCH_CRYPTO_AUTH_H

#include "crypto/identity.h"

#define PUNCH_AUTH_KEY_LEN 32
#define PUNCH_AUTH_MAC_LEN 16
#define PUNCH_AUTH_COOKIE_LEN 16
#define PUNCH_AUTH_SECRET_LEN 32

/* The MAC key shared by `self` and the holder of peer_public.
 * Returns 0 or PUNCH_ERR_INTEGRITY (peer_public is a low-order point, whose
 * shared secret is all zero and proves nothing). */
int punch_auth_derive(const punch_identity *self, const uint8_t peer_public[PUNCH_KEY_LEN],
                      uint8_t key[PUNCH_AUTH_KEY_LEN]);

/* mac = BLAKE2b-128 keyed with key, over msg. */
void punch_auth_mac(const uint8_t key[PUNCH_AUTH_KEY_LEN], const uint8_t *msg, size_t len,
                    uint8_t mac[PUNCH_AUTH_MAC_LEN]);
/* Constant-time check. Returns 0 or PUNCH_ERR_INTEGRITY. */
int punch_auth_verify(const uint8_t key[PUNCH_AUTH_KEY_LEN], const uint8_t *msg, size_t len,
                      const uint8_t mac[PUNCH_AUTH_MAC_LEN]);

/* The cookie for source `src` in time period `period` (e.g. now / 60 s). */
void punch_auth_cookie(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                       uint64_t period, uint8_t cookie[PUNCH_AUTH_COOKIE_LEN]);
/* Accept a cookie made for src in this period or the one before, so a
 * cookie handed out just before a period ends still works. Returns 0 or
 * PUNCH_ERR_INTEGRITY. */
int punch_auth_cookie_check(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                            uint64_t period, const uint8_t cookie[PUNCH_AUTH_COOKIE_LEN]);

#endif

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
/* Address-validation token: expiry (4 bytes, seconds of the issuer's
 * clock), serial (4 bytes), both big-endian, then a 16-byte MAC. */
#define PUNCH_AUTH_TOKEN_LEN 24

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

/* Address-validation tokens (like QUIC's NEW_TOKEN, RFC 9000 §8.1.3): a
 * server hands one to a peer whose address it has verified; presented
 * later, it proves again that the holder of `key` received at `src`'s IP
 * (the port is not bound: a NAT gives a restarted peer a new one) before
 * expiry_s, without a cookie round trip. serial orders the tokens of one
 * key (newer ones have higher serials; the server refuses replays below
 * the newest it saw). The MAC is the cookie's keyed BLAKE2b over the
 * server secret, in a domain of its own. */
void punch_auth_token(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                      const uint8_t key[PUNCH_KEY_LEN], uint32_t expiry_s, uint32_t serial,
                      uint8_t token[PUNCH_AUTH_TOKEN_LEN]);
/* Check a token for src's IP and key at now_s: 0, PUNCH_ERR_INTEGRITY
 * (forged, another IP, another key, another server secret) or
 * PUNCH_ERR_LIMIT (authentic, but past its expiry). *serial gets its serial. */
int punch_auth_token_check(const uint8_t secret[PUNCH_AUTH_SECRET_LEN], const punch_addr *src,
                           const uint8_t key[PUNCH_KEY_LEN], uint32_t now_s,
                           const uint8_t token[PUNCH_AUTH_TOKEN_LEN], uint32_t *serial);

#endif

/* SPDX-License-Identifier: MIT */
/* One hexadecimal digit's value, for the parsers that read hex text (IPv6
 * addresses, /proc/net/if_inet6, URL escapes). */
#ifndef PUNCH_WIRE_HEX_H
#define PUNCH_WIRE_HEX_H

/* 0..15, or -1 when c is not a hex digit. */
static inline int punch_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif

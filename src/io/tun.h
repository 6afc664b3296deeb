/* SPDX-License-Identifier: MIT */
/*
 * Network interfaces for the programs that make their own: TUN devices,
 * iproute2 for addresses and routes, /proc/sys settings. Shared by
 * punch-nat and punch vpn.
 */
#ifndef PUNCH_IO_TUN_H
#define PUNCH_IO_TUN_H

#include <stdbool.h>

/* IFNAMSIZ without <net/if.h> (which clashes with <linux/if.h>). */
#define PUNCH_IFNAMSIZ 16

/* Open a TUN device carrying bare IP packets (IFF_TUN | IFF_NO_PI),
 * non-blocking. name may hold one "%d" for the kernel to number it; out_name
 * gets the name it got. Closing the fd deletes the device, and with it its
 * addresses and routes. Returns the fd, or PUNCH_ERR_IO with errno set
 * (ENOENT: no /dev/net/tun; EPERM: no CAP_NET_ADMIN; EBUSY: name in use). */
int punch_tun_open(const char *name, char out_name[PUNCH_IFNAMSIZ]);

/* Run `ip ARGS...` (iproute2), ARGS from fmt split at spaces, no shell; with
 * quiet, ip's own complaints are discarded. Returns 0 when ip exited 0,
 * else -1. */
int punch_ip_run(bool quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write value to a file such as /proc/sys/net/ipv4/ip_forward. Returns 0,
 * or -1 with errno set. */
int punch_sysctl_write(const char *path, const char *value);

#endif

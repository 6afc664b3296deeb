/* SPDX-License-Identifier: MIT */
/* linkem — one emulated link of the punch lab.
 *
 * The kernel here has no netem qdisc, so delay, jitter and loss come from
 * this program: it sits in a namespace of its own holding two interfaces (the
 * far ends of two veth pairs) and bridges them at layer 2 with AF_PACKET
 * sockets. Every frame read on one side is dropped with probability `loss`
 * (seeded PRNG, so a run can be repeated) or held until now + delay ± jitter
 * and then written, unchanged, on the other side. Both directions, each with
 * its own queue and PRNG stream.
 *
 * Timing: one timerfd armed at the earliest deadline (absolute
 * CLOCK_MONOTONIC, timer slack 1 ns), SCHED_FIFO when allowed, so a frame
 * leaves within tens of microseconds of its deadline even on a busy machine.
 * Queues are binary heaps ordered by (deadline, arrival number): with no
 * jitter deadlines are monotonic and frames leave in arrival order; with
 * jitter they may overtake each other, as on a real jittery path.
 *
 * Memory: a fixed pool of frame slots per direction, allocated at start; no
 * allocation per frame. A frame that finds the pool empty is counted as
 * overflow and dropped (a full router queue).
 *
 * Frames are read and written with PACKET_VNET_HDR, so checksum-offloaded
 * (CHECKSUM_PARTIAL) frames from the veths keep working. GSO super-frames do
 * not fit a slot; the lab turns TSO/GSO/GRO off on the veth ends next to us
 * and we count any that still arrive as oversize. */
#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <math.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define LINKEM_VERSION "0.1.0"
#define SLOT_SIZE 2048u            /* vnet header + a 1500-byte-MTU frame (+VLAN) */
#define DEFAULT_SLOTS 8192u        /* 100 ms at ~80k frames/s per direction */
#define READ_BURST 64              /* frames read per wakeup before looking at timers */
#define NS_PER_MS 1000000.0
#define MAX_SPIN_NS 200000         /* never busy-wait longer than this per wakeup */
#define SPIN_MARGIN_NS 20000

struct pending {
    uint64_t due_ns;
    uint64_t seq;
    uint32_t slot;
    uint32_t len;
};

struct params {
    uint64_t delay_ns;
    uint64_t jitter_ns;
    double loss;                   /* probability 0..1 */
};

struct counters {
    uint64_t rx, tx, lost, overflow, oversize, txerr;
};

struct direction {
    const char *from, *to;
    int in_fd, out_fd;
    struct params p;
    uint64_t rng;
    uint8_t *slots;                /* nslots * SLOT_SIZE */
    uint32_t *free_list;
    uint32_t nfree;
    struct pending *heap;
    uint32_t heap_len;
    uint64_t seq;
    uint64_t last_due;
    struct counters c;
    uint8_t scratch[SLOT_SIZE];    /* receives frames we will not keep */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* When the frame reached the interface: the kernel's receive timestamp
 * (CLOCK_REALTIME, mapped onto CLOCK_MONOTONIC), so the time we took to wake
 * up does not add to the delay; our own clock if there is none. */
static uint64_t arrival_ns(struct msghdr *mh)
{
    uint64_t mono = mono_ns();
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts, real;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            clock_gettime(CLOCK_REALTIME, &real);
            int64_t age = ((int64_t)real.tv_sec - ts.tv_sec) * 1000000000 + (real.tv_nsec - ts.tv_nsec);
            if (age >= 0 && age < 100000000)    /* sane: under 100 ms old */
                return mono - (uint64_t)age;
        }
    }
    return mono;
}

/* splitmix64: tiny, good enough for loss and jitter, reproducible from a seed */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static bool pending_before(const struct pending *a, const struct pending *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_push(struct direction *d, struct pending e)
{
    uint32_t i = d->heap_len++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!pending_before(&e, &d->heap[parent]))
            break;
        d->heap[i] = d->heap[parent];
        i = parent;
    }
    d->heap[i] = e;
}

static void heap_pop(struct direction *d)
{
    struct pending last = d->heap[--d->heap_len];
    uint32_t i = 0, n = d->heap_len;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        const struct pending *best = &last;
        if (l < n && pending_before(&d->heap[l], best)) {
            m = l;
            best = &d->heap[l];
        }
        if (r < n && pending_before(&d->heap[r], best))
            m = r;
        if (m == i)
            break;
        d->heap[i] = d->heap[m];
        i = m;
    }
    if (n > 0)
        d->heap[i] = last;
}

static void send_frame(struct direction *d, const uint8_t *buf, size_t len)
{
    if (send(d->out_fd, buf, len, MSG_DONTWAIT) < 0)
        d->c.txerr++;
    else
        d->c.tx++;
}

/* Reads up to READ_BURST frames arriving on d->in_fd. */
static void read_burst(struct direction *d)
{
    for (int i = 0; i < READ_BURST; i++) {
        bool keep = d->nfree > 0 && (d->p.delay_ns > 0 || d->p.jitter_ns > 0);
        uint32_t slot = keep ? d->free_list[d->nfree - 1] : 0;
        uint8_t *buf = keep ? d->slots + (size_t)slot * SLOT_SIZE : d->scratch;
        struct iovec iov = { .iov_base = buf, .iov_len = SLOT_SIZE };
        union { char buf[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr align; } ctl;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof ctl.buf };
        ssize_t n = recvmsg(d->in_fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
            return;                /* EAGAIN: drained (or a transient error) */
        uint64_t now = arrival_ns(&mh);
        d->c.rx++;
        if ((size_t)n > SLOT_SIZE) {
            d->c.oversize++;
            continue;
        }
        if (d->p.loss > 0 && rng_unit(&d->rng) < d->p.loss) {
            d->c.lost++;
            continue;
        }
        if (d->p.delay_ns == 0 && d->p.jitter_ns == 0) {
            send_frame(d, buf, (size_t)n);
            continue;
        }
        if (!keep) {
            d->c.overflow++;
            continue;
        }
        int64_t delay = (int64_t)d->p.delay_ns;
        if (d->p.jitter_ns > 0)
            delay += (int64_t)llround((rng_unit(&d->rng) * 2.0 - 1.0) * (double)d->p.jitter_ns);
        if (delay < 0)
            delay = 0;
        uint64_t due = now + (uint64_t)delay;
        /* without jitter, frames leave in arrival order: the timestamp
         * mapping may wobble by a few ns, the order must not */
        if (d->p.jitter_ns == 0 && due < d->last_due)
            due = d->last_due;
        d->last_due = due;
        d->nfree--;
        heap_push(d, (struct pending){ .due_ns = due, .seq = d->seq++,
                                       .slot = slot, .len = (uint32_t)n });
    }
}

static void flush_due(struct direction *d, uint64_t now)
{
    while (d->heap_len > 0 && d->heap[0].due_ns <= now) {
        struct pending e = d->heap[0];
        heap_pop(d);
        send_frame(d, d->slots + (size_t)e.slot * SLOT_SIZE, e.len);
        d->free_list[d->nfree++] = e.slot;
    }
}

static uint64_t next_due(const struct direction *dir)
{
    uint64_t next = 0;
    for (int i = 0; i < 2; i++)
        if (dir[i].heap_len > 0 && (next == 0 || dir[i].heap[0].due_ns < next))
            next = dir[i].heap[0].due_ns;
    return next;
}

static int open_port(const char *ifname)
{
    unsigned idx = if_nametoindex(ifname);
    if (idx == 0) {
        fprintf(stderr, "linkem: no interface '%s' in this namespace\n", ifname);
        return -1;
    }
    /* protocol 0: receive nothing until bound to the one interface */
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("linkem: socket(AF_PACKET)");
        return -1;
    }
    int one = 1, buf = 8 << 20;
    struct packet_mreq mr = { .mr_ifindex = (int)idx, .mr_type = PACKET_MR_PROMISC };
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)idx };
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        fprintf(stderr, "linkem: setting up '%s': %s\n", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    /* best effort: bigger buffers absorb bursts (FORCE needs CAP_NET_ADMIN) */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    return fd;
}

static int direction_init(struct direction *d, uint32_t nslots, uint64_t seed)
{
    d->rng = seed;
    d->slots = malloc((size_t)nslots * SLOT_SIZE);
    d->free_list = malloc(nslots * sizeof *d->free_list);
    d->heap = malloc(nslots * sizeof *d->heap);
    if (!d->slots || !d->free_list || !d->heap)
        return -1;
    for (uint32_t i = 0; i < nslots; i++)
        d->free_list[i] = nslots - 1 - i;
    d->nfree = nslots;
    return 0;
}

static void direction_free(struct direction *d)
{
    free(d->slots);
    free(d->free_list);
    free(d->heap);
}

/* "10ms", "250us", "1.5s", "10" (ms) -> ns; -1 on bad input */
static int64_t parse_duration(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    double mult = NS_PER_MS;
    if (end == s || !(v >= 0))
        return -1;
    if (strcmp(end, "us") == 0)
        mult = 1e3;
    else if (strcmp(end, "s") == 0)
        mult = 1e9;
    else if (strcmp(end, "ms") != 0 && *end != '\0')
        return -1;
    if (v * mult > 60e9)
        return -1;
    return (int64_t)llround(v * mult);
}

/* "1%", "1.5" (percent) -> probability; -1 on bad input */
static double parse_percent(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || (*end != '\0' && strcmp(end, "%") != 0) || !(v >= 0 && v <= 100))
        return -1;
    return v / 100.0;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: linkem [OPTIONS] IF0 IF1\n"
        "Bridge two interfaces of this namespace, adding delay, jitter and loss\n"
        "to both directions (each value applies to each direction separately).\n"
        "  --delay D      one-way delay, e.g. 10ms, 250us, 0.1s (default 0)\n"
        "  --jitter J     uniform extra delay in [-J,+J]; frames may be reordered\n"
        "  --loss P       drop probability per frame, e.g. 1%% (default 0)\n"
        "  --seed N       PRNG seed for loss and jitter (default 1)\n"
        "  --slots N      frames that may be in flight per direction (default %u)\n"
        "  --pidfile F    write our PID to F once both ports are open\n"
        "  --no-rt        do not ask for SCHED_FIFO\n"
        "  --help, --version\n"
        "SIGTERM/SIGINT: print counters to stderr and exit 0.\n", DEFAULT_SLOTS);
}

static void print_counters(const struct direction *d)
{
    fprintf(stderr, "linkem: %s->%s rx=%llu tx=%llu lost=%llu overflow=%llu oversize=%llu txerr=%llu\n",
            d->from, d->to, (unsigned long long)d->c.rx, (unsigned long long)d->c.tx,
            (unsigned long long)d->c.lost, (unsigned long long)d->c.overflow,
            (unsigned long long)d->c.oversize, (unsigned long long)d->c.txerr);
}

static int write_pidfile(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "delay", required_argument, NULL, 'd' }, { "jitter", required_argument, NULL, 'j' },
        { "loss", required_argument, NULL, 'l' },  { "seed", required_argument, NULL, 's' },
        { "slots", required_argument, NULL, 'n' }, { "pidfile", required_argument, NULL, 'p' },
        { "no-rt", no_argument, NULL, 'R' },       { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },     { NULL, 0, NULL, 0 },
    };
    struct params p = { 0 };
    uint64_t seed = 1;
    unsigned long nslots = DEFAULT_SLOTS;
    const char *pidfile = NULL;
    bool rt = true;
    int opt, rc = 1;
    char *end;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int64_t ns;
        switch (opt) {
        case 'd':
        case 'j':
            if ((ns = parse_duration(optarg)) < 0) {
                fprintf(stderr, "linkem: bad duration '%s' (e.g. 10ms, 250us)\n", optarg);
                return 2;
            }
            *(opt == 'd' ? &p.delay_ns : &p.jitter_ns) = (uint64_t)ns;
            break;
        case 'l':
            if ((p.loss = parse_percent(optarg)) < 0) {
                fprintf(stderr, "linkem: bad loss '%s' (e.g. 1%%)\n", optarg);
                return 2;
            }
            break;
        case 's':
            seed = strtoull(optarg, &end, 0);
            if (*optarg == '\0' || *end != '\0') {
                fprintf(stderr, "linkem: bad seed '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n':
            nslots = strtoul(optarg, &end, 0);
            if (*optarg == '\0' || *end != '\0' || nslots < 1 || nslots > (1u << 20)) {
                fprintf(stderr, "linkem: bad slot count '%s' (1..1048576)\n", optarg);
                return 2;
            }
            break;
        case 'p': pidfile = optarg; break;
        case 'R': rt = false; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("linkem %s\n", LINKEM_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 2;
    }

    struct direction *dir = calloc(2, sizeof *dir);
    int fd0 = -1, fd1 = -1, tfd = -1, sfd = -1, ep = -1;
    if (!dir)
        goto cleanup;
    dir[0].from = dir[1].to = argv[optind];
    dir[0].to = dir[1].from = argv[optind + 1];
    if ((fd0 = open_port(argv[optind])) < 0 || (fd1 = open_port(argv[optind + 1])) < 0)
        goto cleanup;
    dir[0].in_fd = dir[1].out_fd = fd0;
    dir[0].out_fd = dir[1].in_fd = fd1;
    dir[0].p = dir[1].p = p;
    if (direction_init(&dir[0], (uint32_t)nslots, seed) < 0 ||
        direction_init(&dir[1], (uint32_t)nslots, seed ^ 0x5deece66dull)) {
        fprintf(stderr, "linkem: out of memory for %lu slots\n", nslots);
        goto cleanup;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || tfd < 0 || ep < 0) {
        perror("linkem: setup");
        goto cleanup;
    }
    int fds[4] = { fd0, fd1, tfd, sfd };
    for (int i = 0; i < 4; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            perror("linkem: epoll_ctl");
            goto cleanup;
        }
    }

    /* the default 50 us slack would be a tenth of our error budget */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (rt) {
        struct sched_param sp = { .sched_priority = 10 };
        if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
            fprintf(stderr, "linkem: no SCHED_FIFO (%s); timing may be looser\n", strerror(errno));
    }
    /* Stay on one CPU: frames we send wait in that CPU's backlog when the
     * softirq is deferred, and a migration would let later frames overtake
     * them on the other CPU (seen as reordering between chained links). */
    int cpu = sched_getcpu();
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        (void)sched_setaffinity(0, sizeof set, &set);
    }
    if (pidfile && write_pidfile(pidfile) < 0) {
        fprintf(stderr, "linkem: cannot write pidfile '%s': %s\n", pidfile, strerror(errno));
        goto cleanup;
    }

    /* The timer fires late by the machine's wakeup latency (tens to a few
     * hundred microseconds in a VM). We learn that lateness (EWMA), arm the
     * timer that much early and spin the rest of the way, so frames leave
     * on time; the spin is bounded by MAX_SPIN_NS per wakeup. */
    uint64_t armed = 0;            /* when the timer is set to fire, 0 = disarmed */
    uint64_t early = 50000;        /* how early we arm it, ns */
    for (;;) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("linkem: epoll_wait");
            goto cleanup;
        }
        for (int i = 0; i < n; i++) {
            switch (evs[i].data.u32) {
            case 0: read_burst(&dir[0]); break;
            case 1: read_burst(&dir[1]); break;
            case 2: {
                uint64_t ticks, late = mono_ns() - armed;
                if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                    perror("linkem: timerfd");
                if (late > MAX_SPIN_NS)
                    late = MAX_SPIN_NS;
                early = (early * 7 + late) / 8;
                armed = 0;
                break;
            }
            default: {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    rc = 0;
                    goto cleanup;
                }
            }
            }
        }
        uint64_t now = mono_ns();
        flush_due(&dir[0], now);
        flush_due(&dir[1], now);
        uint64_t next = next_due(dir);
        if (next != 0 && next - now <= early + SPIN_MARGIN_NS) {
            while ((now = mono_ns()) < next)
                ;                  /* at most early + margin <= MAX_SPIN_NS */
            flush_due(&dir[0], now);
            flush_due(&dir[1], now);
            next = next_due(dir);
        }
        uint64_t at = next == 0 ? 0 : next - (next - now > early ? early : next - now);
        if (at != armed) {
            struct itimerspec its = { 0 };
            its.it_value.tv_sec = (time_t)(at / 1000000000u);
            its.it_value.tv_nsec = (long)(at % 1000000000u);
            if (at != 0 && its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
                its.it_value.tv_nsec = 1;
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);   /* at == 0 disarms */
            armed = at;
        }
    }

cleanup:
    if (dir) {
        if (rc == 0) {
            print_counters(&dir[0]);
            print_counters(&dir[1]);
        }
        direction_free(&dir[0]);
        direction_free(&dir[1]);
        free(dir);
    }
    if (rc == 0 && pidfile)
        unlink(pidfile);
    int all_fds[] = { fd0, fd1, tfd, sfd, ep };
    for (size_t i = 0; i < sizeof all_fds / sizeof all_fds[0]; i++)
        if (all_fds[i] >= 0)
            close(all_fds[i]);
    return rc;
}

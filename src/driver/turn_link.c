/* SPDX-License-Identifier: MIT */
/* The TURN server over TCP or TLS: see turn_link.h. */
#include "driver/turn_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/turn.h"
#include "io/net.h"
#include "io/tcp.h"
#include "wire/turn_stream.h"

/* Bytes read from the connection per wakeup. */
#define READ_BUDGET (64u * 1024)
/* Room kept for a TLS record's header, tag and padding around a message. */
#define TLS_RECORD_SLACK 256u

typedef enum link_state { L_CONNECTING, L_HANDSHAKE, L_UP, L_DOWN } link_state;

struct punch_turn_link {
    punch_turn_link_cfg cfg;
    punch_loop *loop;
    punch_loop_timer timer;    /* the connection's (and handshake's) deadline */
    int fd;                    /* -1 once down */
    link_state st;
    unsigned tries;            /* connections tried again since the last one up */
    const char *told;          /* the kind of failure told since then (a literal) */
    bool gone;                 /* PUNCH_TURN_LINK_TRIES failed: down for good */
    char host[256];            /* the URL's host (TLS) */
    unsigned events;           /* what the loop waits for on fd */
    char name[PUNCH_ADDR_STRLEN + 8];
    SSL_CTX *ctx;
    SSL *ssl;                  /* over rbio (what came in) and wbio (what goes out) */
    BIO *rbio, *wbio;
    punch_tcp_out out;         /* bytes for the socket: TLS records, or the messages */
    punch_tcp_out early;       /* TLS: the messages queued before the handshake ended */
    punch_frame_reader rd;     /* STUN and ChannelData cut from the stream */
};

static void set_events(punch_turn_link *l, unsigned events)
{
    if (l->fd >= 0 && events != l->events && punch_loop_set_events(l->loop, l->fd, events) == 0)
        l->events = events;
}

uint64_t punch_turn_link_retry_ms(unsigned tries)
{
    uint64_t ms = PUNCH_TURN_LINK_RETRY_MS;
    for (unsigned i = 1; i < tries && ms < PUNCH_TURN_LINK_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms < PUNCH_TURN_LINK_RETRY_MAX_MS ? ms : PUNCH_TURN_LINK_RETRY_MAX_MS;
}

/* Down: the socket closed, the next try timed (the TLS state stays until
 * then: a caller up the stack may be inside it). Told once per kind of
 * failure (what) between two connections, and when given up. */
static void down(punch_turn_link *l, const char *what, const char *detail)
{
    if (l->st == L_DOWN)
        return;
    l->st = L_DOWN;
    if (l->fd >= 0) {
        punch_loop_unwatch(l->loop, l->fd);
        close(l->fd);
        l->fd = -1;
    }
    punch_tcp_out_clear(&l->out);
    l->gone = l->tries >= PUNCH_TURN_LINK_TRIES;
    punch_loop_timer_set(l->loop, l->timer,
                         l->gone ? PUNCH_LOOP_NEVER
                                 : punch_clock_ms() + punch_turn_link_retry_ms(l->tries + 1));
    if (!l->gone && l->told && strcmp(l->told, what) == 0)
        return;
    l->told = what;
    char reason[256], line[512], end[64] = "";
    snprintf(reason, sizeof(reason), "%s%s%s%s", l->cfg.tls ? "TLS: " : "TCP: ", what,
             detail ? ": " : "", detail ? detail : "");
    if (l->gone && l->tries > 0)
        snprintf(end, sizeof(end), " (given up after %u tries to connect again)", l->tries);
    snprintf(line, sizeof(line), "the TURN server %s over %s%s", l->name, reason, end);
    l->cfg.on_down(l->cfg.arg, line, reason);
}

/* OpenSSL's latest reason, or errno's. */
static const char *tls_error(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : errno ? strerror(errno) : "the server ended the handshake";
}

/* What TLS wrote, moved to the socket's buffer. False when it does not fit. */
static bool take_records(punch_turn_link *l)
{
    uint8_t buf[4096];
    int n;
    while (l->wbio && (n = BIO_read(l->wbio, buf, sizeof(buf))) > 0)
        if (punch_tcp_out_bytes(&l->out, buf, (size_t)n) != 0)
            return false;
    return true;
}

/* Write what waits for the socket; wait for it to be writable if needed. */
static void flush(punch_turn_link *l)
{
    if (l->st == L_DOWN || l->st == L_CONNECTING)
        return;
    if (!take_records(l)) {
        down(l, "the connection fell too far behind", NULL);
        return;
    }
    if (punch_tcp_out_flush(l->fd, &l->out) != 0) {
        down(l, "the connection broke", strerror(errno));
        return;
    }
    set_events(l, PUNCH_LOOP_IN | (punch_tcp_out_pending(&l->out) ? PUNCH_LOOP_OUT : 0));
}

/* Plain bytes into TLS (its records go to out). */
static bool tls_write(punch_turn_link *l, const uint8_t *buf, size_t len)
{
    return len == 0 || (SSL_write(l->ssl, buf, (int)len) == (int)len && take_records(l));
}

static void up(punch_turn_link *l)
{
    l->st = L_UP;
    punch_loop_timer_set(l->loop, l->timer, PUNCH_LOOP_NEVER);
    if (l->ssl) {
        bool ok = tls_write(l, l->early.buf + l->early.start, l->early.end - l->early.start);
        punch_tcp_out_free(&l->early);
        if (!ok) {
            down(l, "TLS failed", tls_error());
            return;
        }
    }
    flush(l);
    unsigned tries = l->tries;
    l->tries = 0;
    l->told = NULL;
    if (l->st == L_UP && l->cfg.on_up)
        l->cfg.on_up(l->cfg.arg, tries);
}

static void handshake(punch_turn_link *l)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(l->ssl);
    if (rc == 1) {
        up(l);
        return;
    }
    int err = SSL_get_error(l->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        flush(l);
        return;
    }
    long v = SSL_get_verify_result(l->ssl);
    if (v != X509_V_OK)
        down(l, "certificate verification failed", X509_verify_cert_error_string(v));
    else
        down(l, "handshake failed", tls_error());
}

/* Bytes from the server, in order: to TLS, or cut into messages. */
static void take_plain(punch_turn_link *l, const uint8_t *in, size_t len)
{
    while (len > 0 && l->st == L_UP) {
        const uint8_t *msg;
        size_t used, mlen;
        int rc = punch_frame_read(&l->rd, in, len, &used, &msg, &mlen);
        in += used;
        len -= used;
        if (rc < 0) {
            down(l, "sent bytes that are no TURN message", NULL);
            return;
        }
        if (rc == 1)
            l->cfg.on_message(l->cfg.arg, msg, mlen);
    }
}

static void tls_read(punch_turn_link *l)
{
    uint8_t buf[16384];
    while (l->st == L_UP) {
        ERR_clear_error();
        int n = SSL_read(l->ssl, buf, sizeof(buf));
        if (n > 0) {
            take_plain(l, buf, (size_t)n);
            continue;
        }
        int err = SSL_get_error(l->ssl, n);
        if (err == SSL_ERROR_WANT_READ)
            break;
        down(l, err == SSL_ERROR_ZERO_RETURN ? "the server closed the session" : "TLS failed",
             err == SSL_ERROR_ZERO_RETURN ? NULL : tls_error());
    }
    flush(l); /* what reading wrote (a key update's answer) */
}

/* Bytes from the socket. */
static void on_bytes(punch_turn_link *l, const uint8_t *buf, size_t len)
{
    if (!l->ssl) {
        take_plain(l, buf, len);
        return;
    }
    if (BIO_write(l->rbio, buf, (int)len) != (int)len) {
        down(l, "out of memory", NULL);
        return;
    }
    if (l->st == L_HANDSHAKE)
        handshake(l);
    if (l->st == L_UP)
        tls_read(l);
}

static void on_readable(punch_turn_link *l)
{
    uint8_t buf[16384];
    size_t total = 0;
    while (l->st != L_DOWN && total < READ_BUDGET) {
        ssize_t n = recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            down(l, n == 0 ? "the server closed the connection" : "the connection broke",
                 n == 0 ? NULL : strerror(errno));
            return;
        }
        total += (size_t)n;
        on_bytes(l, buf, (size_t)n);
    }
}

static void on_connected(punch_turn_link *l)
{
    if (punch_tcp_connect_result(l->fd) != 0) {
        down(l, "cannot connect", strerror(errno));
        return;
    }
    if (!l->ssl) {
        up(l);
        return;
    }
    l->st = L_HANDSHAKE;
    handshake(l);
}

static void on_fd(void *arg, int fd)
{
    punch_turn_link *l = arg;
    (void)fd;
    if (l->st == L_CONNECTING)
        on_connected(l);
    else if (l->st != L_DOWN)
        flush(l);
    if (l->st != L_DOWN && l->st != L_CONNECTING)
        on_readable(l);
}

static int start_connect(punch_turn_link *l, char *why, size_t cap);

/* The next try after a failure: a new TLS session over a new socket. */
static void reconnect(punch_turn_link *l)
{
    char why[256];
    l->tries++;
    if (start_connect(l, why, sizeof(why)) != 0) {
        l->st = L_CONNECTING; /* so down() takes it */
        down(l, "no new connection", why);
    }
}

static void on_timer(void *arg, uint64_t now_ms)
{
    punch_turn_link *l = arg;
    (void)now_ms;
    if (l->st == L_CONNECTING || l->st == L_HANDSHAKE)
        down(l, l->st == L_CONNECTING ? "no TCP connection in 10 s" : "no TLS handshake in 10 s",
             NULL);
    else if (l->st == L_DOWN && !l->gone)
        reconnect(l);
}

/* The TLS context: trusting the system's CAs or ca_file. */
static int tls_ctx_new(punch_turn_link *l, char *why, size_t cap)
{
    if (!(l->ctx = SSL_CTX_new(TLS_client_method())) ||
        !SSL_CTX_set_min_proto_version(l->ctx, TLS1_2_VERSION)) {
        snprintf(why, cap, "cannot set TLS up: %s", tls_error());
        return PUNCH_ERR_IO;
    }
    SSL_CTX_set_verify(l->ctx, SSL_VERIFY_PEER, NULL);
    int ok = l->cfg.ca_file ? SSL_CTX_load_verify_locations(l->ctx, l->cfg.ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(l->ctx);
    if (!ok) {
        snprintf(why, cap, "cannot read the CA certificates %s: %s",
                 l->cfg.ca_file ? l->cfg.ca_file : "of the system", tls_error());
        return PUNCH_ERR_IO;
    }
    return 0;
}

/* A TLS session (one per connection) checking host, over memory buffers;
 * the previous one, if any, freed. */
static int tls_session_new(punch_turn_link *l, char *why, size_t cap)
{
    SSL_free(l->ssl); /* and its BIOs */
    l->ssl = NULL;
    l->rbio = l->wbio = NULL;
    punch_tcp_out_free(&l->early);
    if (!(l->ssl = SSL_new(l->ctx)) || !(l->rbio = BIO_new(BIO_s_mem())) ||
        !(l->wbio = BIO_new(BIO_s_mem()))) {
        BIO_free(l->rbio);
        l->rbio = NULL;
        snprintf(why, cap, "cannot set TLS up: out of memory");
        return PUNCH_ERR_NOMEM;
    }
    SSL_set_bio(l->ssl, l->rbio, l->wbio); /* the SSL owns them now */
    SSL_set_connect_state(l->ssl);
    /* RFC 7443: TURN's ALPN label (length-prefixed); 0 is success here. */
    static const unsigned char alpn[] = "\x09stun.turn";
    if (SSL_set_alpn_protos(l->ssl, alpn, sizeof(alpn) - 1) != 0) {
        snprintf(why, cap, "cannot set TLS up: %s", tls_error());
        return PUNCH_ERR_IO;
    }
    unsigned char ip[16];
    const char *host = l->host;
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    /* RFC 6125: an address is checked against the certificate's IP
     * addresses; a name against its DNS names, and sent as SNI (RFC 6066). */
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl), host)
                   : SSL_set_tlsext_host_name(l->ssl, host) && SSL_set1_host(l->ssl, host);
    if (!ok) {
        snprintf(why, cap, "cannot check the TURN server's certificate for '%.200s'", host);
        return PUNCH_ERR_INVAL;
    }
    return punch_tcp_out_init(&l->early, PUNCH_TURN_LINK_OUT_BYTES);
}

/* A new socket connecting (non-blocking), its deadline timed; TLS: a new
 * session. why: what failed, without the server's name. */
static int start_connect(punch_turn_link *l, char *why, size_t cap)
{
    int rc = l->cfg.tls ? tls_session_new(l, why, cap) : 0;
    if (rc != 0)
        return rc;
    punch_turn_stream_reader_init(&l->rd);
    if ((l->fd = punch_tcp_connect(&l->cfg.server)) < 0) {
        snprintf(why, cap, "cannot connect: %s", strerror(errno));
        return PUNCH_ERR_IO;
    }
    l->events = 0;
    l->st = L_CONNECTING;
    if (punch_loop_watch(l->loop, l->fd, on_fd, l) != 0) {
        close(l->fd);
        l->fd = -1;
        snprintf(why, cap, "cannot watch the connection");
        return PUNCH_ERR_IO;
    }
    set_events(l, PUNCH_LOOP_OUT);
    punch_loop_timer_set(l->loop, l->timer, punch_clock_ms() + PUNCH_TURN_LINK_CONNECT_MS);
    return 0;
}

int punch_turn_link_new(punch_turn_link **out, punch_loop *loop, const punch_turn_link_cfg *cfg,
                        char *why, size_t cap)
{
    if (!out || !loop || !cfg || !cfg->on_message || !cfg->on_down || (cfg->tls && !cfg->host))
        return PUNCH_ERR_INVAL;
    if (cfg->tls && strlen(cfg->host) >= sizeof(((punch_turn_link *)0)->host)) {
        snprintf(why, cap, "the TURN server's name is too long: '%.40s...'", cfg->host);
        return PUNCH_ERR_INVAL;
    }
    punch_turn_link *l = calloc(1, sizeof(*l));
    if (!l)
        return PUNCH_ERR_NOMEM;
    *l = (punch_turn_link){.cfg = *cfg, .loop = loop, .fd = -1, .st = L_CONNECTING,
                           .timer = 0};
    snprintf(l->host, sizeof(l->host), "%s", cfg->tls ? cfg->host : "");
    char addr[PUNCH_ADDR_STRLEN], what[256] = "";
    snprintf(l->name, sizeof(l->name), "%s", punch_addr_format(&cfg->server, addr));
    int rc = punch_tcp_out_init(&l->out, PUNCH_TURN_LINK_OUT_BYTES);
    if (rc == 0 && cfg->tls)
        rc = tls_ctx_new(l, why, cap);
    if (rc == 0 && punch_loop_timer_add(loop, PUNCH_LOOP_NEVER, on_timer, l, &l->timer) != 0) {
        snprintf(why, cap, "the TURN server %s: cannot time the connection", l->name);
        rc = PUNCH_ERR_IO;
    }
    if (rc == 0 && (rc = start_connect(l, what, sizeof(what))) != 0)
        snprintf(why, cap, "the TURN server %s: %s", l->name, what);
    if (rc != 0) {
        punch_turn_link_free(l);
        return rc;
    }
    l->cfg.host = NULL; /* the caller's: copied */
    l->cfg.ca_file = NULL;
    *out = l;
    return 0;
}

void punch_turn_link_free(punch_turn_link *l)
{
    if (!l)
        return;
    if (l->fd >= 0) {
        punch_loop_unwatch(l->loop, l->fd);
        close(l->fd);
    }
    punch_loop_timer_del(l->loop, l->timer);
    SSL_free(l->ssl); /* and its BIOs */
    SSL_CTX_free(l->ctx);
    punch_tcp_out_free(&l->out);
    punch_tcp_out_free(&l->early);
    free(l);
}

bool punch_turn_link_takes(const punch_turn_link *l, const punch_addr *dst, const uint8_t *buf,
                           size_t len)
{
    return l && punch_addr_equal(dst, &l->cfg.server) && punch_turn_is_turn(buf, len);
}

void punch_turn_link_send(punch_turn_link *l, const uint8_t *msg, size_t len)
{
    uint8_t buf[PUNCH_TURN_STREAM_MAX + 4];
    size_t pad = punch_turn_stream_padding(msg, len);
    if (l->st == L_DOWN || len + pad > sizeof(buf))
        return;
    memcpy(buf, msg, len);
    memset(buf + len, 0, pad); /* RFC 8656 §12.5: ChannelData padded on a stream */
    len += pad;
    int rc;
    if (!l->ssl)
        rc = punch_tcp_out_bytes(&l->out, buf, len);
    else if (l->st != L_UP)
        rc = punch_tcp_out_bytes(&l->early, buf, len);
    else
        rc = punch_tcp_out_room(&l->out) < len + TLS_RECORD_SLACK ? PUNCH_ERR_NOBUFS
             : tls_write(l, buf, len)                              ? 0
                                                                   : PUNCH_ERR_IO;
    if (rc == PUNCH_ERR_IO) {
        down(l, "TLS failed", tls_error());
        return;
    }
    if (rc == 0)
        flush(l);
}

/* SPDX-License-Identifier: MIT */
/*
 * STUN codec: RFC 8489 messages, RFC 5780 behaviour-discovery attributes,
 * RFC 8656 (TURN) attributes and ChannelData framing, and the classic
 * RFC 3489 form (no magic cookie).
 *
 * Decoding works in place over the caller's bytes: it never allocates, never
 * reads outside [buf, buf+len) and never trusts a length field. Encoding
 * writes into a caller's buffer and reports PUNCH_ERR_NOBUFS when it is full.
 */
#ifndef PUNCH_WIRE_STUN_H
#define PUNCH_WIRE_STUN_H

#include "punch/punch.h"

#define PUNCH_STUN_HEADER_LEN 20
#define PUNCH_STUN_MAGIC_COOKIE 0x2112A442u /* RFC 8489 §5 */
#define PUNCH_STUN_TXID_LEN 12
#define PUNCH_STUN_FINGERPRINT_XOR 0x5354554eu /* RFC 8489 §14.7 */
/* The most attributes one decoded message keeps; more is malformed. Real
 * messages carry fewer than 15. */
#define PUNCH_STUN_MAX_ATTRS 32
/* The most unknown comprehension-required types remembered for a 420. */
#define PUNCH_STUN_MAX_UNKNOWN 8

/* Classes (RFC 8489 §5): the C1/C0 bits. */
enum {
    PUNCH_STUN_REQUEST = 0x0,
    PUNCH_STUN_INDICATION = 0x1,
    PUNCH_STUN_SUCCESS = 0x2,
    PUNCH_STUN_ERROR = 0x3,
};

/* Methods. */
enum {
    PUNCH_STUN_BINDING = 0x001,          /* RFC 8489 */
    PUNCH_STUN_ALLOCATE = 0x003,         /* RFC 8656 */
    PUNCH_STUN_REFRESH = 0x004,
    PUNCH_STUN_SEND = 0x006,
    PUNCH_STUN_DATA = 0x007,
    PUNCH_STUN_CREATE_PERMISSION = 0x008,
    PUNCH_STUN_CHANNEL_BIND = 0x009,
};

/* Attribute types. */
enum {
    PUNCH_STUN_ATTR_MAPPED_ADDRESS = 0x0001,      /* RFC 8489 §14.1 */
    PUNCH_STUN_ATTR_RESPONSE_ADDRESS = 0x0002,    /* RFC 3489 */
    PUNCH_STUN_ATTR_CHANGE_REQUEST = 0x0003,      /* RFC 5780 §7.2 */
    PUNCH_STUN_ATTR_SOURCE_ADDRESS = 0x0004,      /* RFC 3489 */
    PUNCH_STUN_ATTR_CHANGED_ADDRESS = 0x0005,     /* RFC 3489 */
    PUNCH_STUN_ATTR_USERNAME = 0x0006,            /* RFC 8489 §14.3 */
    PUNCH_STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,   /* RFC 8489 §14.5 */
    PUNCH_STUN_ATTR_ERROR_CODE = 0x0009,          /* RFC 8489 §14.8 */
    PUNCH_STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,  /* RFC 8489 §14.9 */
    PUNCH_STUN_ATTR_CHANNEL_NUMBER = 0x000C,      /* RFC 8656 §18.1 */
    PUNCH_STUN_ATTR_LIFETIME = 0x000D,            /* RFC 8656 §18.2 */
    PUNCH_STUN_ATTR_XOR_PEER_ADDRESS = 0x0012,    /* RFC 8656 §18.3 */
    PUNCH_STUN_ATTR_DATA = 0x0013,                /* RFC 8656 §18.4 */
    PUNCH_STUN_ATTR_REALM = 0x0014,               /* RFC 8489 §14.9 */
    PUNCH_STUN_ATTR_NONCE = 0x0015,               /* RFC 8489 §14.10 */
    PUNCH_STUN_ATTR_XOR_RELAYED_ADDRESS = 0x0016, /* RFC 8656 §18.5 */
    PUNCH_STUN_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017, /* RFC 8656 §18.6 */
    PUNCH_STUN_ATTR_EVEN_PORT = 0x0018,           /* RFC 8656 §18.7 */
    PUNCH_STUN_ATTR_REQUESTED_TRANSPORT = 0x0019, /* RFC 8656 §18.8 */
    PUNCH_STUN_ATTR_DONT_FRAGMENT = 0x001A,       /* RFC 8656 §18.9 */
    PUNCH_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C, /* RFC 8489 §14.6 */
    PUNCH_STUN_ATTR_PASSWORD_ALGORITHM = 0x001D,  /* RFC 8489 §14.12 */
    PUNCH_STUN_ATTR_USERHASH = 0x001E,            /* RFC 8489 §14.4 */
    PUNCH_STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,  /* RFC 8489 §14.2 */
    PUNCH_STUN_ATTR_RESERVATION_TOKEN = 0x0022,   /* RFC 8656 §18.10 */
    PUNCH_STUN_ATTR_PRIORITY = 0x0024,            /* RFC 8445 §16.1 */
    PUNCH_STUN_ATTR_USE_CANDIDATE = 0x0025,       /* RFC 8445 §16.1 */
    PUNCH_STUN_ATTR_PADDING = 0x0026,             /* RFC 5780 §7.6 */
    PUNCH_STUN_ATTR_RESPONSE_PORT = 0x0027,       /* RFC 5780 §7.5 */
    PUNCH_STUN_ATTR_PASSWORD_ALGORITHMS = 0x8002, /* RFC 8489 §14.11 */
    PUNCH_STUN_ATTR_ALTERNATE_DOMAIN = 0x8003,    /* RFC 8489 §14.16 */
    PUNCH_STUN_ATTR_SOFTWARE = 0x8022,            /* RFC 8489 §14.14 */
    PUNCH_STUN_ATTR_ALTERNATE_SERVER = 0x8023,    /* RFC 8489 §14.15 */
    PUNCH_STUN_ATTR_FINGERPRINT = 0x8028,         /* RFC 8489 §14.7 */
    PUNCH_STUN_ATTR_ICE_CONTROLLED = 0x8029,      /* RFC 8445 §16.1 */
    PUNCH_STUN_ATTR_ICE_CONTROLLING = 0x802A,     /* RFC 8445 §16.1 */
    PUNCH_STUN_ATTR_RESPONSE_ORIGIN = 0x802B,     /* RFC 5780 §7.3 */
    PUNCH_STUN_ATTR_OTHER_ADDRESS = 0x802C,       /* RFC 5780 §7.4 */
};

/* CHANGE-REQUEST flags (RFC 5780 §7.2). */
enum {
    PUNCH_STUN_CHANGE_IP = 0x4,
    PUNCH_STUN_CHANGE_PORT = 0x2,
};

/* ChannelData (RFC 8656 §12): channel numbers 0x4000..0x4FFF. */
#define PUNCH_STUN_CHANNEL_MIN 0x4000u
#define PUNCH_STUN_CHANNEL_MAX 0x4FFFu
#define PUNCH_STUN_CHANNEL_HEADER_LEN 4

typedef struct punch_stun_attr {
    uint16_t type;
    uint16_t len;          /* value length, without padding */
    const uint8_t *value;  /* points into the decoded buffer */
    size_t offset;         /* of the attribute header from the message start */
} punch_stun_attr;

typedef struct punch_stun_msg {
    const uint8_t *buf;    /* the whole message, as given to decode */
    size_t len;
    uint16_t method;
    uint8_t cls;
    bool classic;          /* no magic cookie: an RFC 3489 message */
    uint8_t txid[16];      /* RFC 8489: txid[0..11]; classic: all 16 bytes */
    /* Attributes that count, in order (RFC 8489 §14.5-14.7: what follows
     * MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT
     * is ignored and not listed; duplicates are listed, lookups take the first). */
    size_t n_attrs;
    punch_stun_attr attrs[PUNCH_STUN_MAX_ATTRS];
    /* Comprehension-required (type < 0x8000) types the codec does not know. */
    size_t n_unknown;
    uint16_t unknown[PUNCH_STUN_MAX_UNKNOWN];
    /* Copies of these three attributes; value is NULL when absent. */
    punch_stun_attr integrity;        /* MESSAGE-INTEGRITY */
    punch_stun_attr integrity_sha256; /* MESSAGE-INTEGRITY-SHA256 */
    punch_stun_attr fingerprint;      /* FINGERPRINT, already verified */
} punch_stun_msg;

/* Quick demultiplexing test (RFC 7983): could buf be a STUN message?
 * True when it is at least a header long, the top two bits are zero and the
 * length field is a multiple of 4 matching len. Does not check the cookie. */
bool punch_stun_is_stun(const uint8_t *buf, size_t len);

/* Decode one whole STUN message (exactly len bytes, as a UDP datagram).
 * Checks the header, every attribute's bounds and padding, the placement of
 * MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT, the size of those three, and the
 * FINGERPRINT's CRC when present. Integrity is NOT checked here: see
 * punch_stun_check_integrity.
 * Returns 0, PUNCH_ERR_INVAL (NULL argument) or PUNCH_ERR_MALFORMED. */
int punch_stun_decode(punch_stun_msg *msg, const uint8_t *buf, size_t len);

/* The first attribute of this type that counts, or NULL. */
const punch_stun_attr *punch_stun_find(const punch_stun_msg *msg, uint16_t type);

/* Value readers. Each returns 0, PUNCH_ERR_MALFORMED (bad value for the type)
 * or PUNCH_ERR_INVAL. */
/* MAPPED-ADDRESS style and XOR-*-ADDRESS style: the XOR is undone when the
 * attribute's type is one of the XOR types (XOR-MAPPED, XOR-PEER,
 * XOR-RELAYED). XOR types in a classic message are malformed. */
int punch_stun_read_addr(const punch_stun_msg *msg, const punch_stun_attr *attr,
                         punch_addr *out);
/* A 32-bit value (LIFETIME, CHANGE-REQUEST, PRIORITY, REQUESTED-TRANSPORT
 * as its raw word, ...): the value must be exactly 4 bytes. */
int punch_stun_read_u32(const punch_stun_attr *attr, uint32_t *out);
/* A 64-bit value (ICE-CONTROLLED / ICE-CONTROLLING, RESERVATION-TOKEN). */
int punch_stun_read_u64(const punch_stun_attr *attr, uint64_t *out);
/* ERROR-CODE: code 300..699 and its UTF-8 reason (not NUL-terminated). */
int punch_stun_read_error(const punch_stun_attr *attr, int *code,
                          const char **reason, size_t *reason_len);
/* UNKNOWN-ATTRIBUTES: up to cap types into types[]; *n gets how many. */
int punch_stun_read_unknown(const punch_stun_attr *attr, uint16_t *types,
                            size_t cap, size_t *n);
/* RESPONSE-PORT (RFC 5780 §7.5): 16-bit port and 16 bits of padding. */
int punch_stun_read_port(const punch_stun_attr *attr, uint16_t *port);
/* CHANNEL-NUMBER (RFC 8656 §18.1): 0x4000..0x4FFF. */
int punch_stun_read_channel(const punch_stun_attr *attr, uint16_t *channel);

/* Check MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with
 * key (the short-term password, or a long-term key from
 * punch_stun_long_term_key_md5). Comparison is constant-time.
 * Returns 0, PUNCH_ERR_NOTFOUND (no integrity attribute) or
 * PUNCH_ERR_INTEGRITY. */
int punch_stun_check_integrity(const punch_stun_msg *msg, const uint8_t *key,
                               size_t key_len);

/* RFC 8489 §9.2.2: key = MD5(username ":" realm ":" password); the inputs
 * must already be OpaqueString-prepared. */
void punch_stun_long_term_key_md5(const char *username, const char *realm,
                                  const char *password, uint8_t key[16]);

/* Encoding: a writer over a caller's buffer. Errors are sticky: after one
 * failure every later call does nothing and punch_stun_finish reports it. */
typedef struct punch_stun_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;
    uint8_t pad_byte; /* value of padding bytes; 0 unless set (RFC 5769 uses ' ') */
    bool classic;
} punch_stun_writer;

/* Start a message: header with method, class and transaction id (12 bytes
 * after the magic cookie). Returns 0, PUNCH_ERR_INVAL or PUNCH_ERR_NOBUFS. */
int punch_stun_writer_init(punch_stun_writer *w, uint8_t *buf, size_t cap,
                           uint16_t method, uint8_t cls, const uint8_t txid[12]);
/* Start an RFC 3489 message: no cookie, a 16-byte transaction id. */
int punch_stun_writer_init_classic(punch_stun_writer *w, uint8_t *buf, size_t cap,
                                   uint16_t method, uint8_t cls,
                                   const uint8_t txid[16]);
/* Append an attribute with a raw value (padded). */
int punch_stun_put(punch_stun_writer *w, uint16_t type, const void *value,
                   size_t len);
int punch_stun_put_u32(punch_stun_writer *w, uint16_t type, uint32_t v);
int punch_stun_put_u64(punch_stun_writer *w, uint16_t type, uint64_t v);
/* An address attribute; XOR-ed when the type is an XOR type. */
int punch_stun_put_addr(punch_stun_writer *w, uint16_t type, const punch_addr *a);
/* ERROR-CODE with code 300..699 and a reason phrase. */
int punch_stun_put_error(punch_stun_writer *w, int code, const char *reason);
int punch_stun_put_unknown(punch_stun_writer *w, const uint16_t *types, size_t n);
/* RESPONSE-PORT / CHANNEL-NUMBER: 16 bits then 16 bits of zero (RFFU). */
int punch_stun_put_u16(punch_stun_writer *w, uint16_t type, uint16_t v);
/* MESSAGE-INTEGRITY (HMAC-SHA1) and MESSAGE-INTEGRITY-SHA256 (full 32 bytes)
 * over everything written so far; FINGERPRINT (must come last). */
int punch_stun_put_integrity(punch_stun_writer *w, const uint8_t *key, size_t key_len);
int punch_stun_put_integrity_sha256(punch_stun_writer *w, const uint8_t *key,
                                    size_t key_len);
int punch_stun_put_fingerprint(punch_stun_writer *w);
/* The message length so far (header included) in *len, or the sticky error. */
int punch_stun_finish(const punch_stun_writer *w, size_t *len);

/* ChannelData (RFC 8656 §12.4). encode pads to 4 bytes when pad is true
 * (required over TCP); *out_len gets the bytes written.
 * decode accepts the data alone or padded to a multiple of 4, nothing else.
 * Return 0, PUNCH_ERR_NOBUFS, PUNCH_ERR_INVAL or PUNCH_ERR_MALFORMED. */
int punch_stun_channel_encode(uint8_t *buf, size_t cap, uint16_t channel,
                              const uint8_t *data, size_t data_len, bool pad,
                              size_t *out_len);
int punch_stun_channel_decode(const uint8_t *buf, size_t len, uint16_t *channel,
                              const uint8_t **data, size_t *data_len);

/* Method/class <-> the 14-bit message type field (RFC 8489 §5). */
uint16_t punch_stun_type(uint16_t method, uint8_t cls);

#endif

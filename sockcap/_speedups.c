/* sockcap._speedups: the compiled twin of the engine (sockcap.pipeline.engine.PureEngine
 * is the other; both have the same constructor, methods and behaviour).
 *
 * What it is: one fused loop from capture-file bytes to timeline text for the common
 * frame (pcap records and pcapng Enhanced Packet Blocks; Ethernet, Linux SLL/SLL2,
 * NULL/LOOP, raw IPv4/IPv6; an undamaged IPv4 or IPv6 header followed by a whole TCP or
 * UDP header), with the conversation table (stream numbers, relative seq/ack, window
 * scaling, phases, the keep=False retire rule) and Wireshark's per-segment expert
 * analysis. It is a transcription of sockcap/decode (the inline fast paths),
 * sockcap/analysis/conversation.py, sockcap/analysis/expert.py and the Wireshark-style
 * line of sockcap/render/timeline.py; those Python modules are the reference, and
 * tests/test_engine.py (both twins through one fixture) and tests/test_speedups.py
 * require byte-identical output from both.
 *
 * Three uses (sockcap/pipeline/engine.py: EngineRun, EngineSelect): ``sockcap show``
 * (the line and the --hex rows, -c, --port), ``sockcap stats`` (render=0, keep=1: the
 * conversations forgotten by the same two queues, each leaving a packed Row, a stats
 * row's fields and nothing more, when it goes), and ``sockcap follow --stream N``
 * (target_stream: the packets before stream N are numbered here, and the engine stops
 * right before the packet that starts it, where the Python pipeline takes over).
 * Each notation of ``show`` is written here too, each by its own header: JSON
 * (_speedups_json.h), tcpdump's (_speedups_tcpdump.h), colour for both text notations
 * (_speedups_color.h), --explain's sentences (_speedups_explain.h); and the export's
 * Arrow columns (_speedups_columns.h, _speedups_convcols.h). A view this file does not
 * write (--filters, follow's sections, a story file's sentences) is handed each packet
 * after it was filed and annotated here, as the Python records the pure twin gives (see
 * "the hand-over to a Python view" below).
 *
 * Why C with the CPython API and not Cython or mypyc: the build needs nothing but a C
 * compiler (scripts/setup.sh installs gcc), no build-time dependency that pip must fetch;
 * and a fused loop that never builds a Python object for a common packet is what the
 * speed targets need (mypyc and Cython on the existing modules stayed below 0.25x of
 * tcpdump, issue 17). The extension is optional: setup.py builds it with
 * ``optional=True``, and without it sockcap runs the pure path unchanged.
 *
 * The seam (sockcap/pipeline/engine.py): the capture reader hands its buffer to
 * Engine.pcap / Engine.pcapng, which consume every record that is plain (the same
 * conditions as the reader's own fast loops) and whose frame this file can decode; the
 * first record that is not is left to the Python reader, whose frame goes to
 * Engine.frame (decoded here if it can) or else to sockcap.decode and then
 * Engine.packet, which files the decoded Packet in the same conversation table. So the
 * output never depends on which path decoded a frame.
 *
 * Frames without a time (pcapng Simple Packet Blocks: ts NO_TIMESTAMP = -1, read by the
 * Python reader and handed to Engine.frame) are decoded here too, with the tracker's
 * ``ts >= 0`` guards transcribed (conversation times, the first RTT, the SYN times, the
 * retire rule) and ``-`` in the time column, as sockcap/render/timeline.py prints it.
 * The words come translated and whole (contract.engine_words): templates are filled by
 * placeholder name (template_set, put_template), so every language runs here.
 *
 * Memory safety: every read of frame bytes is checked against the captured length
 * before it is made; every write to the output buffer is preceded by a reserve of at
 * least its size. Timestamps are kept as 128-bit integers (a pcapng timestamp in
 * nanoseconds may exceed 64 bits); sequence arithmetic is done in int64 modulo 2**32,
 * as Python's % does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(__SIZEOF_INT128__)
#error "sockcap._speedups needs a compiler with 128-bit integers; the pure path is used"
#endif

typedef __int128 i128;
typedef unsigned __int128 u128;

#define NS_PER_SEC 1000000000LL
#define MOD32(x) ((int64_t)((uint64_t)(x) & 0xFFFFFFFFULL))
#define HALF32 0x80000000LL

/* Every order, code, flag bit, threshold, record field index and template placeholder
 * shared with the Python side: generated from sockcap/pipeline/contract.py (never copied
 * here by hand; tests/test_engine_contract.py fails when the header is stale). */
#include "_engine_contract.h"

/* ---------------------------------------------------------------- output buffer */

/* The text is made in one buffer that stays allocated, and copied into a bytes object by
 * take(). Writing straight into a bytes object and handing that out saves the copy (~50
 * instructions a packet) but costs more than it saves: each new object of a megabyte or
 * more is fresh memory from the kernel (glibc maps it), ~250 page faults a chunk, and
 * `show` on 1M packets spent 0.1 s more in the kernel (measured; see bench/RESULTS.md). */
typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t n) {
    if (b->len + n <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + n) {
        if (cap > ((size_t)1 << 40)) { PyErr_NoMemory(); return -1; }
        cap *= 2;
    }
    char *q = PyMem_Realloc(b->p, cap);
    if (!q) { PyErr_NoMemory(); return -1; }
    b->p = q;
    b->cap = cap;
    return 0;
}

/* The text so far as bytes (the buffer starts empty again; a very large one is let go). */
static PyObject *buf_take(Buf *b) {
    PyObject *r = PyBytes_FromStringAndSize(b->p ? b->p : "", (Py_ssize_t)b->len);
    b->len = 0;
    if (b->cap > ((size_t)8 << 20)) { PyMem_Free(b->p); b->p = NULL; b->cap = 0; }
    return r;
}

/* Appends without a check: the caller reserved room. */
static inline void put(Buf *b, const char *s, size_t n) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* put() of a short piece from storage with SLACK readable bytes past its end (Text and
 * template pieces are allocated so, endpoint texts are 64-byte arrays), into room
 * reserved with SLACK more: a piece up to SLACK bytes is one fixed-size copy (two vector
 * moves) where memcpy of a variable length is a call and a branch on the size; the bytes
 * past n are overwritten by what comes next or lie past the text's end. */
#define SLACK 32
static inline void put_short(Buf *b, const char *s, size_t n) {
    if (n <= SLACK) {
        memcpy(b->p + b->len, s, SLACK);
        b->len += n;
    } else put(b, s, n);
}

/* "00" "01" … "99": two digits a step, written from the right into their place (no
 * scratch copy, and no store through b->p inside the loop, which the compiler would have
 * to assume may change b->len). */
static const char DIGITS2[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline int count_digits(uint64_t u) {
    int n = 1;
    for (;;) {
        if (u < 10) return n;
        if (u < 100) return n + 1;
        if (u < 1000) return n + 2;
        if (u < 10000) return n + 3;
        u /= 10000;
        n += 4;
    }
}

/* The nd decimal digits of u, ending just before end. */
static inline void digits_before(char *end, uint64_t u) {
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        end -= 2;
        memcpy(end, DIGITS2 + 2 * r, 2);
    }
    if (u >= 10) memcpy(end - 2, DIGITS2 + 2 * u, 2);
    else end[-1] = (char)('0' + u);
}

/* str(v) written at o, right-aligned in width (Python's "%*d"); the end of it. */
static inline char *write_i64(char *o, int64_t v, int width) {
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int nd = count_digits(u), total = nd + (v < 0);
    if (width > total) {
        memset(o, ' ', (size_t)(width - total));
        o += width - total;
    }
    if (v < 0) *o++ = '-';
    digits_before(o + nd, u);
    return o + nd;
}

/* write_i64 into the buffer; room reserved by the caller. */
static inline void put_i64(Buf *b, int64_t v, int width) {
    b->len = (size_t)(write_i64(b->p + b->len, v, width) - b->p);
}

/* A text piece passed in from Python (UTF-8 bytes, owned here). */
typedef struct {
    char *s;
    Py_ssize_t n;
} Text;

static int text_set(Text *t, PyObject *str) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(str, &n);
    if (!s) return -1;
    char *c = PyMem_Calloc((size_t)n + SLACK, 1); /* SLACK: see put_short */
    if (!c) { PyErr_NoMemory(); return -1; }
    memcpy(c, s, (size_t)n);
    PyMem_Free(t->s);
    t->s = c;
    t->n = n;
    return 0;
}

/* A translated template, handed in whole ("client {client} → server {server}") and cut
 * here at its placeholders, which are found by name (the list for each template is the
 * contract's, TEMPLATE_PLACES): piece[0] value piece[1] value ... piece[n]. A template
 * that names a placeholder its message does not have, or uses a format spec, is refused
 * when the engine is made; one may leave a placeholder out or repeat it. */
#define MAX_GAPS 16 /* --explain's longest sentences have 9 (_speedups_explain.h) */
typedef struct {
    Text piece[MAX_GAPS + 1];
    int place[MAX_GAPS]; /* which placeholder fills the gap after piece[i] */
    int n;               /* gaps */
    size_t fixed;        /* bytes of all the pieces */
} Template;

static void template_free(Template *t) {
    for (int i = 0; i <= MAX_GAPS; i++) { PyMem_Free(t->piece[i].s); t->piece[i].s = NULL; }
}

static int template_piece(Template *t, const char *s, size_t n) {
    char *c = PyMem_Calloc(n + SLACK, 1); /* SLACK: see put_short */
    if (!c) { PyErr_NoMemory(); return -1; }
    memcpy(c, s, n);
    t->piece[t->n].s = c;
    t->piece[t->n].n = (Py_ssize_t)n;
    t->fixed += n;
    return 0;
}

/* Python's str.format syntax for the subset used: {name}, {{ and }}. */
static int template_set(Template *t, PyObject *str, const char *const *places) {
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(str, &len);
    if (!s) return -1;
    template_free(t);
    t->n = 0;
    t->fixed = 0;
    char *acc = PyMem_Malloc((size_t)len + 1);
    if (!acc) { PyErr_NoMemory(); return -1; }
    size_t k = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        char ch = s[i];
        if ((ch == '{' || ch == '}') && i + 1 < len && s[i + 1] == ch) { acc[k++] = ch; i++; continue; }
        if (ch == '}') goto bad;
        if (ch != '{') { acc[k++] = ch; continue; }
        const char *close = memchr(s + i, '}', (size_t)(len - i));
        if (!close || t->n == MAX_GAPS) goto bad;
        size_t nlen = (size_t)(close - (s + i + 1));
        int found = -1;
        for (int p = 0; places[p]; p++)
            if (strlen(places[p]) == nlen && memcmp(places[p], s + i + 1, nlen) == 0) found = p;
        if (found < 0) goto bad;
        if (template_piece(t, acc, k) < 0) { PyMem_Free(acc); return -1; }
        t->place[t->n++] = found;
        k = 0;
        i = close - s;
    }
    int rc = template_piece(t, acc, k);
    PyMem_Free(acc);
    return rc;
bad:
    PyMem_Free(acc);
    PyErr_Format(PyExc_ValueError, "template %R: only the placeholders {%s...} are known",
                 str, places[0]);
    return -1;
}

/* ---------------------------------------------------------------- packets */

typedef struct {
    i128 ts;
    int64_t wirelen;
    const uint8_t *data;
    Py_ssize_t caplen;
    int fam;              /* 4 or 6 (0: none) */
    uint8_t src[16], dst[16];
    int proto;            /* -1 when not IP */
    int64_t sport, dport, seq, ack, window;
    int flags;
    int has_wscale, wscale, mptcp;
    int64_t mss;          /* a SYN's MSS option, -1 when it has none */
    char fragment;        /* an IP fragment (Packet.fragment; never on the fast path) */
    int64_t mptcp_maps;
    int64_t payload_off, payload_len;
    int64_t tcp_off;      /* where the TCP header starts (decoded here; 0 from Python) */
    /* set for packets decoded by Python only */
    const char *trunc;
    Py_ssize_t trunc_n;
    PyObject *packet;     /* the sockcap.decode Packet it was read from (view mode) */
    PyObject *notes;      /* tuple of note texts (str), or NULL */
    PyObject *where;      /* str for packets outside a conversation, or NULL */
    PyObject *proto_name; /* str, idem */
    PyObject *info;       /* an ICMP message's Info text (str), or NULL */
    int quoted_kind;      /* an ICMP error's note kind + 1 (0: none), counted in the */
    int quoted_proto, quoted_fam; /* conversation of the datagram it quotes, if any */
    uint8_t quoted_src[16], quoted_dst[16];
    int64_t quoted_sport, quoted_dport;
    /* for the Packet a view is handed (_speedups_packet.h): set by decode_fast */
    int64_t linktype;
    Py_ssize_t ip_off;    /* where the IP header starts in data */
    PyObject *data_obj;   /* the frame's bytes object (Engine.frame), or NULL */
} Pkt;

static inline uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static inline uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* TCP options in [i, stop), stop <= captured length: 0 if one is malformed
 * (sockcap.decode.transport.parse_tcp_options with the header wholly captured). */
static int tcp_options(const uint8_t *d, Py_ssize_t i, Py_ssize_t stop, Pkt *p) {
    p->has_wscale = 0;
    p->mss = -1;
    p->mptcp = 0;
    p->mptcp_maps = 0;
    while (i < stop) {
        uint8_t kind = d[i];
        if (kind == OPT_NOP) { i++; continue; }
        if (kind == OPT_EOL) break;
        if (i + 1 >= stop) return 0;
        int len = d[i + 1];
        Py_ssize_t after = i + len;
        if (len < 2 || after > stop) return 0;
        switch (kind) {
        case OPT_MSS: if (len != 4) return 0; break;
        case OPT_WSCALE: if (len != 3) return 0; break;
        case OPT_SACK_PERMITTED: if (len != 2) return 0; break;
        case OPT_TIMESTAMPS: if (len != 10) return 0; break;
        case OPT_SACK: if (len < 10 || (len - 2) % 8) return 0; break;
        default: break;
        }
        if (kind == OPT_WSCALE) {
            p->has_wscale = 1;
            p->wscale = d[i + 2];
        } else if (kind == OPT_MSS) {
            p->mss = be16(d + i + 2);
        } else if (kind == OPT_MPTCP) {
            p->mptcp = 1;
            if (len - 2 > 1 && (d[i + 2] >> 4) == MPTCP_DSS && (d[i + 3] & MPTCP_DSS_MAPPING)) p->mptcp_maps++;
        }
        i = after;
    }
    return 1;
}

static int decode_tcp_at(const uint8_t *d, Py_ssize_t t, Py_ssize_t payload_off, Pkt *p) {
    p->proto = 6;
    p->sport = be16(d + t);
    p->dport = be16(d + t + 2);
    p->seq = be32(d + t + 4);
    p->ack = be32(d + t + 8);
    p->flags = (int)(be16(d + t + 12) & 0x1FF);
    p->window = be16(d + t + 14);
    p->payload_off = payload_off;
    p->tcp_off = t;
    return tcp_options(d, t + 20, payload_off, p);
}

static void no_options(Pkt *p) {
    p->has_wscale = 0;
    p->mss = -1;
    p->mptcp = 0;
    p->mptcp_maps = 0;
}

static int decode_ipv4(const uint8_t *d, Py_ssize_t end, Py_ssize_t off, Pkt *p) {
    if (end < off + 28 || d[off] != 0x45) return 0;
    int proto = d[off + 9];
    int64_t total = be16(d + off + 2);
    uint32_t frag = be16(d + off + 6);
    if (frag & 0x3FFF) return 0;
    if (off + total > p->wirelen) return 0;
    p->fam = 4;
    memset(p->src, 0, 16);
    memset(p->dst, 0, 16);
    memcpy(p->src, d + off + 12, 4);
    memcpy(p->dst, d + off + 16, 4);
    if (proto == 6) {
        if (end < off + 40) return 0;
        int64_t hlen = TCP_HEADER_LEN(d + off + 20);
        if (!(40 <= 20 + hlen && 20 + hlen <= total)) return 0;
        Py_ssize_t payload_off = off + 20 + hlen;
        if (payload_off > end) return 0;
        if (!decode_tcp_at(d, off + 20, payload_off, p)) return 0;
        p->payload_len = total - 20 - hlen;
        return 1;
    }
    if (proto == 17) {
        int64_t length = be16(d + off + 24);
        if (!(length == total - 20 && total - 20 >= 8)) return 0;
        if (be16(d + off + 20) == L2TP_PORT || be16(d + off + 22) == L2TP_PORT) return 0;
        p->proto = 17;
        p->sport = be16(d + off + 20);
        p->dport = be16(d + off + 22);
        p->seq = p->ack = p->window = -1;
        p->flags = 0;
        no_options(p);
        p->payload_off = off + 28;
        p->payload_len = length - 8;
        return 1;
    }
    return 0;
}

static int decode_ipv6(const uint8_t *d, Py_ssize_t end, Py_ssize_t off, Pkt *p) {
    if (end < off + 48 || (d[off] >> 4) != 6) return 0;
    int proto = d[off + 6];
    int64_t plen = be16(d + off + 4);
    if (off + 40 + plen > p->wirelen) return 0;
    p->fam = 6;
    memcpy(p->src, d + off + 8, 16);
    memcpy(p->dst, d + off + 24, 16);
    if (proto == 6) {
        if (end < off + 60) return 0;
        int64_t hlen = TCP_HEADER_LEN(d + off + 40);
        if (!(20 <= hlen && hlen <= plen)) return 0;
        Py_ssize_t payload_off = off + 40 + hlen;
        if (payload_off > end) return 0;
        if (!decode_tcp_at(d, off + 40, payload_off, p)) return 0;
        p->payload_len = plen - hlen;
        return 1;
    }
    if (proto == 17) {
        int64_t length = be16(d + off + 44);
        if (!(length == plen && plen >= 8)) return 0;
        if (be16(d + off + 40) == L2TP_PORT || be16(d + off + 42) == L2TP_PORT) return 0;
        p->proto = 17;
        p->sport = be16(d + off + 40);
        p->dport = be16(d + off + 42);
        p->seq = p->ack = p->window = -1;
        p->flags = 0;
        no_options(p);
        p->payload_off = off + 48;
        p->payload_len = length - 8;
        return 1;
    }
    return 0;
}

static int family_ethertype(uint32_t family) {
    for (int i = 0; i < N_FAMILY_ETHERTYPES; i++)
        if ((uint32_t)FAMILY_ETHERTYPES[i][0] == family) return FAMILY_ETHERTYPES[i][1];
    return -1;
}

/* 1: decoded here, with the same fields sockcap.decode.decode_frame gives; 0: not a
 * frame this path decodes (the Python decoder takes it). Reads nothing past ``end``. */
static int decode_fast(const uint8_t *d, Py_ssize_t end, int64_t linktype, Pkt *p) {
    Py_ssize_t off;
    int et;
    switch (linktype) {
    case LINKTYPE_ETHERNET:
        off = LINK_HEADER_LEN_ETHERNET;
        if (end < off) return 0;
        et = (int)be16(d + off - 2);
        break;
    case LINKTYPE_LINUX_SLL:
        off = LINK_HEADER_LEN_LINUX_SLL;
        if (end < off) return 0;
        et = (int)be16(d + off - 2);
        break;
    case LINKTYPE_LINUX_SLL2:
        off = LINK_HEADER_LEN_LINUX_SLL2;
        if (end < off) return 0;
        et = (int)be16(d);
        break;
    case LINKTYPE_NULL: {
        off = LINK_HEADER_LEN_NULL;
        if (end < off) return 0;
        uint32_t f = le32(d);
        et = family_ethertype(f);
        if (et < 0 && (f & 0x00FFFFFF) == 0) et = family_ethertype(f >> 24);
        break;
    }
    case LINKTYPE_LOOP:
        off = LINK_HEADER_LEN_LOOP;
        if (end < off) return 0;
        et = family_ethertype(be32(d));
        break;
    case LINKTYPE_RAW: case LINKTYPE_RAW_BSD_0: case LINKTYPE_RAW_BSD_1:
        if (end < 1) return 0;
        et = (d[0] >> 4) == 4 ? ETHERTYPE_IPV4 : (d[0] >> 4) == 6 ? ETHERTYPE_IPV6 : -1;
        off = LINK_HEADER_LEN_RAW;
        break;
    case LINKTYPE_IPV4: et = ETHERTYPE_IPV4; off = LINK_HEADER_LEN_IPV4; break;
    case LINKTYPE_IPV6: et = ETHERTYPE_IPV6; off = LINK_HEADER_LEN_IPV6; break;
    default: return 0;
    }
    p->data = d;
    p->caplen = end;
    p->trunc = NULL;
    p->trunc_n = 0;
    p->fragment = 0;
    p->notes = p->where = p->proto_name = p->info = NULL;
    p->packet = NULL;
    p->quoted_kind = 0;
    p->packet = p->data_obj = NULL;
    p->linktype = linktype;
    p->ip_off = off;
    if (et == ETHERTYPE_IPV4) return decode_ipv4(d, end, off, p);
    if (et == ETHERTYPE_IPV6) return decode_ipv6(d, end, off, p);
    return 0;
}

/* ---------------------------------------------------------------- conversations */

typedef struct {
    int64_t base;
    int scale;
    char syn, fin;
    int64_t packets, bytes, payload_bytes;
    int64_t nextseq;
    i128 nextseq_ts;
    int64_t lastack;
    i128 lastack_ts;
    int64_t window;
    int64_t dupacks;
    int lastflags;
    int64_t maxseqtobeacked;
    int64_t edge;
    int64_t mptcp_ops;
    int64_t fin_seq; /* absolute sequence number of its first FIN, -1 before it */
    /* what confuses learners (learner_notes; Direction's comments) */
    int64_t mss, addresses, msg_end, data_next, pure_ack;
    i128 data_ts, pure_ack_ts;
} Dir;

typedef struct {
    int fam;
    uint8_t addr[16];
    int64_t port;
} Endpoint;

/* A conversation's key, the same for both directions (make_key): w[0] the protocol,
 * family and the two ports, w[1..2] the lower endpoint's address, w[3..4] the other's
 * (an IPv4 address in the low 32 bits of w[1] or w[3], w[2] and w[4] 0). Built, hashed
 * and compared as words. */
typedef struct { uint64_t w[5]; } Key;

static inline int key_eq(const Key *a, const Key *b) {
    return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
            (a->w[3] ^ b->w[3]) | (a->w[4] ^ b->w[4])) == 0;
}

typedef struct Conv {
    int64_t stream;
    int proto;
    Endpoint client, server;
    int roles;
    Dir dirs[2];
    i128 first_ts, last_ts, syn_ts, synack_ts, ack_ts, mru_syn_ts, first_rtt;
    char handshake_done, closing, reset, rtt_answered, accecn_syn, accecn, refused,
        half_closed, retired, mptcp, rowed;
    char reused;       /* opened by a SYN on an earlier conversation's 5-tuple */
    char time_wait;    /* N_TIME_WAIT was put on a packet */
    char partial_said; /* N_PARTIAL_CHECKSUM was put on a packet (once) */
    int closer;        /* who sent the first FIN: 1 the client, 2 the server, 0 none yet */
    int64_t mptcp_ops;
    uint64_t hash;     /* of its key, kept: forgetting it hashes nothing */
    Key key;           /* the table's slots hold no key */
    int refs;          /* its table entry and queue places holding it */
    char (*ep_text)[64]; /* client, server as endpoint() gives them (rendering only) */
    uint8_t ep_len[2];
    uint32_t note_counts[N_KINDS]; /* saturate at UINT32_MAX, never wrap to 0 */
    uint32_t noted;    /* bit k: kind k is in note_order, so each kind is put there once */
    uint8_t note_order[N_KINDS]; /* kinds in the order first seen (Python dict order) */
    uint8_t n_notes;   /* <= N_KINDS: one place per bit of noted, whatever the counts */
    PyObject *view;    /* its ConvView, once made, while the engine holds the conversation
                        * (a strong reference; the view holds one of refs in turn) */
    struct Zeek *zeek; /* the export's Zeek letters and states (_speedups_columns.h) */
    struct ConvExplain *ex; /* --explain's state of it (_speedups_explain.h), or NULL */
} Conv;
_Static_assert(N_KINDS <= 32, "Conv.noted has a bit per note kind");

/* A finished conversation as ``stats`` prints it (keep=1): the fields of
 * ConversationStats and nothing of the analysis state, 144 bytes where its Conv (with
 * its two table slots) took ~1.1 kB; its expert note counts, when it has any, in the
 * engine's note pool. Rows are filed by stream number, in chunks of ROW_CHUNK, so the
 * table needs no sort and never moves a row (no doubling array's spare half). */
typedef struct {
    i128 start, duration, irtt;
    int64_t packets[2], bytes[2], payload[2];
    uint8_t client[16], server[16];
    int32_t cport, sport;     /* -1..65535 */
    uint32_t notes;           /* 1 + its place in the note pool; 0: no notes */
    uint8_t filled, fam, roles, ended;
} Row;
_Static_assert(sizeof(Row) <= 144, "a stats row stays compact (issue 27)");
#define ROW_SHIFT 12
#define ROW_CHUNK ((size_t)1 << ROW_SHIFT)

/* Items filed by stream number in chunks of ROW_CHUNK (the stats rows of one protocol;
 * --explain's summary rows): no sort, no move, a chunk made when its first item is. */
typedef struct {
    void **chunks;
    size_t n_chunks;
    struct Spill *spill; /* chunks past a budget kept on disk (_speedups_spill.h), or NULL */
} RowTable;

#include "_speedups_spill.h" /* here, not before render(): row_slot and row_at use it */

/* Item ``s`` of a table of ``size``-byte items, its chunk made (zeroed) if need be; NULL
 * (MemoryError set) without memory. */
static void *row_slot(RowTable *t, size_t size, int64_t s) {
    size_t k = (size_t)s >> row_shift(t);
    if (t->spill && spill_on_disk(t->spill, k)) return spill_stage(t, s); /* row_filled */
    if (k >= t->n_chunks) {
        size_t n = t->n_chunks ? t->n_chunks : 16;
        while (n <= k) n *= 2;
        void **chunks = PyMem_Realloc(t->chunks, n * sizeof *chunks);
        if (!chunks) { PyErr_NoMemory(); return NULL; }
        memset(chunks + t->n_chunks, 0, (n - t->n_chunks) * sizeof *chunks);
        t->chunks = chunks;
        t->n_chunks = n;
    }
    if (!t->chunks[k]) {
        if (t->spill && spill_room(t) < 0) return NULL;
        if (!(t->chunks[k] = PyMem_Calloc((size_t)1 << row_shift(t), size))) {
            PyErr_NoMemory();
            return NULL;
        }
        if (t->spill) {
            t->spill->held++;
            if (k < t->spill->low) t->spill->low = k;
        }
    }
    return (char *)t->chunks[k] + ((size_t)s & (((size_t)1 << row_shift(t)) - 1)) * size;
}

/* Item ``s`` if its chunk was made, else NULL; NULL with an error set when a chunk on
 * disk cannot be read back. */
static void *row_at(RowTable *t, size_t size, int64_t s) {
    size_t k = (size_t)s >> row_shift(t);
    if (s >= 0 && t->spill && spill_on_disk(t->spill, k)) return spill_read(t, k, s);
    return s >= 0 && k < t->n_chunks && t->chunks[k]
        ? (char *)t->chunks[k] + ((size_t)s & (((size_t)1 << row_shift(t)) - 1)) * size : NULL;
}

static void rows_free(RowTable *t) {
    spill_free(t);
    for (size_t i = 0; i < t->n_chunks; i++) PyMem_Free(t->chunks[i]);
    PyMem_Free(t->chunks);
    t->chunks = NULL;
    t->n_chunks = 0;
}

/* The conversation table: open addressing with linear probing, at most half full, a
 * 16-byte slot (hash, conversation) a conversation, four to a cache line; the key is
 * the conversation's own (Conv.key), compared only when the full 64-bit hash matches,
 * and a lookup that finds reads the conversation next anyway. A conversation has one
 * key for both directions: its two endpoints in a fixed order (make_key), so a packet
 * costs one hash and one lookup whichever way it goes and a new conversation one entry.
 * The direction is not filed: a packet is from the client when its source is the
 * client's endpoint, the ConversationTracker's rule (its two keys' entries always name
 * one conversation: both are written together and forgotten together).
 * Before (issue 23) each conversation had two 64-byte slots with the key in them, one a
 * direction, hashed again to forget it: on the 1M file the table's functions and the
 * hash took 21 % of `show`'s CPU time (perf). The chained table before that cost a
 * bucket, then an entry, each a miss (a quarter of the loop's time).
 * Deleting shifts the probe run back (Knuth's Algorithm R), so there are no tombstones. */
typedef struct {
    uint64_t hash;
    Conv *conv;      /* NULL: an empty slot */
} Entry;
_Static_assert(sizeof(Entry) == 16, "four slots a cache line");

static void dir_init(Dir *d) {
    memset(d, 0, sizeof *d);
    d->base = -1;
    d->scale = SCALE_UNKNOWN;
    d->window = 0xFFFFFFFFLL;
    d->edge = 0xFFFFFFFFLL;
    d->fin_seq = -1;
    d->mss = d->addresses = d->msg_end = d->data_next = d->pure_ack = -1;
}

/* The key of the conversation between endpoints a and b, the same either way round: the
 * lower endpoint first (by its address's words, then its port; any fixed order would
 * do). A port is 16 bits and bit 16: "no port" (-1, a header cut before it) is not port
 * 65535, as the pure path's tuples keep -1 apart from every port. An IPv4 address is
 * its first 4 bytes alone (the decoders leave the other 12 at 0 anyway). */
static void make_key(Key *k, int proto, int fam, const uint8_t *a, int64_t ap,
                     const uint8_t *b, int64_t bp) {
    uint64_t a0, a1 = 0, b0, b1 = 0;
    if (fam == 4) {
        uint32_t a4, b4;
        memcpy(&a4, a, 4);
        memcpy(&b4, b, 4);
        a0 = a4;
        b0 = b4;
    } else {
        memcpy(&a0, a, 8);
        memcpy(&a1, a + 8, 8);
        memcpy(&b0, b, 8);
        memcpy(&b1, b + 8, 8);
    }
    uint64_t pa = (uint64_t)(uint16_t)ap | (uint64_t)(ap < 0) << 16;
    uint64_t pb = (uint64_t)(uint16_t)bp | (uint64_t)(bp < 0) << 16;
    if (a0 != b0 ? a0 > b0 : a1 != b1 ? a1 > b1 : pa > pb) {
        uint64_t t = a0; a0 = b0; b0 = t;
        t = a1; a1 = b1; b1 = t;
        t = pa; pa = pb; pb = t;
    }
    k->w[0] = (uint64_t)(uint8_t)proto | (uint64_t)(uint8_t)fam << 8 | pa << 16 | pb << 40;
    k->w[1] = a0;
    k->w[2] = a1;
    k->w[3] = b0;
    k->w[4] = b1;
}

/* SipHash-1-3 (Aumasson and Bernstein; the variant CPython hashes str and bytes with) of
 * the key's five 64-bit words, keyed with 16 random bytes per engine. A capture file is
 * input anyone may have crafted: with fixed constants and invertible steps, keys that all
 * share one slot are easy to make, and every lookup then walks one long probe run
 * (400,000 such SYNs took 738 s of CPU where random ones took 1.5 s). Without the key no
 * one can aim at a slot. Nothing shown depends on the hash: the table is only looked
 * up, and walked in slot order only to be rebuilt or freed. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
    v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
    v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
    v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
    v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

static uint64_t siphash13(const uint64_t k[2], const uint64_t *words, int n) {
    uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL, v1 = k[1] ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL, v3 = k[1] ^ 0x7465646279746573ULL;
    for (int i = 0; i < n; i++) {
        uint64_t m = words[i];
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)(8 * n) << 56; /* the length byte of an 8n-byte message */
    v3 ^= last;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static void endpoint_text(Conv *c, int which) {
    Endpoint *e = which ? &c->server : &c->client;
    char addr[INET6_ADDRSTRLEN];
    char *out = c->ep_text[which];
    int n;
    if (e->fam == 6) {
        inet_ntop(AF_INET6, e->addr, addr, sizeof addr);
        n = snprintf(out, 64, "[%s]:%lld", addr, (long long)e->port);
    } else { /* "%u.%u.%u.%u:%lld", without printf's machinery (one a conversation) */
        char *o = out;
        for (int i = 0; i < 4; i++) {
            o = write_i64(o, e->addr[i], 0);
            *o++ = i < 3 ? '.' : ':';
        }
        n = (int)(write_i64(o, e->port, 0) - out); /* -1 too: a TCP header cut before its ports */
    }
    c->ep_len[which] = (uint8_t)(n < 63 ? n : 63);
}

/* ---------------------------------------------------------------- the engine */

#define MEMO 256
typedef struct { /* a key hashed lately (see hash_key) */
    Key key;
    uint64_t hash;
    uint64_t set;
    struct Conv *conv; /* the table's conversation of this key, NULL: not known (find) */
} Memo;

typedef struct { /* a queue of conversations, as a ring; each place holds a reference */
    Conv **items;
    size_t head, len, cap;
} Ring;

typedef struct {
    PyObject_HEAD
    /* options */
    int analyze, keep, hex;
    int64_t port, limit;
    /* words */
    Text ws_flags[512], ace_flags[512];
    Text phases[PH_COUNT];
    Text note_words[N_KINDS];
    Template templates[T_COUNT]; /* contract.TEMPLATES, translated */
    PyObject *note_text;         /* sockcap.codes.note_text, for decoder notes */
    PyObject *row;               /* ConversationStats, built by its fields' names (ROW_*) */
    PyObject *kinds, *roles, *outcomes; /* tuples: the codes of N_*, ROLES_*, END_* */
    /* state */
    Entry *table;                /* nbuckets slots, 64-byte aligned inside table_mem */
    void *table_mem;
    size_t nbuckets, nentries;
    Ring ended, open;            /* the tracker's two queues of conversations to forget */
    RowTable rows[2];            /* keep=1: TCP, UDP rows by stream (stats) */
    long long rows_in_memory;    /* a RowTable's budget (_speedups_spill.h; 0: its default) */
    long long tcpdump_window;    /* connections whose tcpdump bases are kept (_speedups_tcpdump.h) */
    RowTable note_pool;          /* rows' notes: n, then (kind, count) n times, a uint32 an
                                  * item, filed by place (on disk past the budget too: a
                                  * closed connection's TIME_WAIT note is 12 bytes) */
    size_t pool_len;
    int rows_done;               /* the live conversations' rows made (conversation()) */
    int64_t streams[2];          /* TCP, UDP */
    int64_t count, shown;
    i128 first, last, clock_first;
    int done;
    uint64_t note_counts[N_KINDS];
    uint8_t note_order[N_KINDS];
    int n_notes;
    int render;                  /* 0: no text (stats: the conversations are the result) */
    int style;                   /* contract.Style: the notation written (one of STYLES) */
    int color;                   /* write colour (ANSI) too */
    struct JsonWords *json;      /* style JSON: its words (_speedups_json.h) */
    struct Palette *palette;     /* color: its table (_speedups_color.h) */
    uint64_t hash_key[2];        /* SipHash's key: random, one per engine */
    Memo *memo;                  /* keys hashed lately, and their hashes (hash_key) */
    uint64_t probes;             /* slots looked at by every lookup (what the hash costs) */
    int target_proto;            /* follow --stream: hand over before this stream's first */
    int64_t target_stream;       /* packet (-1: never) */
    int handover;
    Buf out;
    /* a view written in Python (see hand_to_view): NULL when the text is this file's */
    PyObject *view, *clock, *phase_codes, *notes_of, *annotated;
    /* called with a conversation's view when the tracker forgets it (ConversationTracker's
     * on_forget): a view that keeps something per conversation lets it go then */
    PyObject *on_forget;
    struct Tcpdump *tcpdump;     /* tcpdump's notation's state (_speedups_tcpdump.h) */
    struct Cols *cols;           /* the export's columns (_speedups_columns.h), or NULL */
    struct Explain *explain;     /* --explain's words and totals (_speedups_explain.h), or NULL */
} Engine;

static void conv_unref(Conv *c) {
    if (--c->refs == 0) {
        PyMem_Free(c->zeek);
        PyMem_Free(c->ex);
        PyMem_Free(c->ep_text);
        PyMem_Free(c);
    } else if (c->refs == 1 && c->view) {
        /* Only its Python view holds it now (the engine let it go): the conversation
         * lets go of the view, which lives on while Python holds it (see conv_view). */
        PyObject *v = c->view;
        c->view = NULL;
        Py_DECREF(v); /* may free the view, and with it the conversation */
    }
}

static Entry *slot_for(Entry *t, size_t n, uint64_t h) {
    size_t i = h & (n - 1);
    while (t[i].conv) i = (i + 1) & (n - 1);
    return &t[i];
}

static int table_grow(Engine *e) {
    size_t n = e->nbuckets ? e->nbuckets * 2 : 1024;
    if (n > ((size_t)1 << 40) / sizeof(Entry)) { PyErr_NoMemory(); return -1; }
    void *mem = PyMem_Calloc(n * sizeof(Entry) + 64, 1);
    if (!mem) { PyErr_NoMemory(); return -1; }
    Entry *t = (Entry *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    for (size_t i = 0; i < e->nbuckets; i++)
        if (e->table[i].conv) *slot_for(t, n, e->table[i].hash) = e->table[i];
    PyMem_Free(e->table_mem);
    e->table_mem = mem;
    e->table = t;
    e->nbuckets = n;
    return 0;
}

/* The memo's slot for key (see hash_key); NULL without a memo. */
static inline Memo *memo_of(Engine *e, const Key *key) {
    if (!e->memo) return NULL;
    const uint64_t *w = key->w;
    uint64_t f = w[0] >> 16 ^ w[0] >> 37 ^ w[1] ^ w[3] ^ w[2] ^ w[4];
    return &e->memo[(f ^ f >> 8 ^ f >> 24) & (MEMO - 1)];
}

/* The key's hash, from the memo when the key was hashed lately: a direct-mapped table of
 * MEMO keys and their hashes, the slot picked by folding the key's words. The packets
 * of the conversations going on at one time come back to the same few keys (the 1M
 * file: TCP echo conversations side by side), and a hit costs five word compares where
 * SipHash costs ~110 instructions. The slot's choice is not keyed, so a crafted file
 * can make every key miss: then each costs its hash, as it did without the memo. The
 * table's placement is the keyed hash's alone.
 *
 * An IPv4 key is hashed as two words (w[0], and both addresses in one: all it holds),
 * where the whole key is five: the same keyed SipHash over a shorter message, 6 rounds
 * rather than 9. */
static uint64_t hash_key(Engine *e, const Key *key) {
    const uint64_t *w = key->w;
    Memo *m = memo_of(e, key);
    if (m && m->set && key_eq(key, &m->key)) return m->hash;
    uint64_t h;
    if ((uint8_t)(w[0] >> 8) == 4) { /* IPv4 */
        uint64_t v4[2] = {w[0], w[1] | w[3] << 32};
        h = siphash13(e->hash_key, v4, 2);
    } else {
        h = siphash13(e->hash_key, w, 5);
    }
    if (m) {
        m->key = *key;
        m->hash = h;
        m->set = 1;
        m->conv = NULL;
    }
    return h;
}

/* The table now files c under key (NULL: nothing): the memo's slot, when it holds key,
 * says so too (table_set, table_del_if), so its conv is always the table's. */
static inline void memo_file(Engine *e, const Key *key, struct Conv *c) {
    Memo *m = memo_of(e, key);
    if (m && m->set && key_eq(key, &m->key)) m->conv = c;
}

static Entry *table_get(Engine *e, const Key *key, uint64_t h);

/* The conversation filed under key (NULL: none) and, in *h, the key's hash. A key in
 * the memo with its conversation known costs five word compares: no hash, no probe of
 * the table, no read of the conversation's key (the table's slot and the conversation's
 * key are two cache lines a packet, ~7 % of `show`'s CPU time on the 1M file, perf).
 * The memo's conv is the table's: set by every lookup, table_set and table_del_if of
 * its key; a conversation is freed only after it left the table (the table holds a
 * reference), so a pointer in the memo is always live. */
static Conv *find_conv(Engine *e, const Key *key, uint64_t *h) {
    Memo *m = memo_of(e, key);
    if (m && m->set && m->conv && key_eq(key, &m->key)) {
        *h = m->hash;
        return m->conv;
    }
    *h = hash_key(e, key); /* (re)fills the memo's slot with this key */
    Entry *x = table_get(e, key, *h);
    Conv *c = x ? x->conv : NULL;
    if (m && m->set && key_eq(key, &m->key)) m->conv = c;
    return c;
}

static Entry *table_get(Engine *e, const Key *key, uint64_t h) {
    if (!e->nbuckets) return NULL;
    size_t mask = e->nbuckets - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) { /* never full: ends at an empty slot */
        Entry *x = &e->table[i];
        e->probes++;
        if (!x->conv) return NULL;
        if (x->hash == h && key_eq(&x->conv->key, key)) return x;
    }
}

/* Files c under its key, whose hash is h (c->hash). */
static int table_set(Engine *e, const Key *key, uint64_t h, Conv *c) {
    Entry *x = table_get(e, key, h);
    if (x) {
        c->refs++;
        conv_unref(x->conv);
        x->conv = c;
        memo_file(e, key, c);
        return 0;
    }
    if ((e->nentries + 1) * 2 > e->nbuckets && table_grow(e) < 0) return -1;
    x = slot_for(e->table, e->nbuckets, h);
    x->hash = h;
    x->conv = c;
    c->refs++;
    e->nentries++;
    memo_file(e, key, c);
    return 0;
}

/* Takes c out of the table if its key still names it (a later conversation on the same
 * endpoints may have taken the key): found by its kept hash and itself, no key needed,
 * as a conversation has one entry. */
static void table_del_if(Engine *e, Conv *c) {
    if (!e->nbuckets) return;
    size_t mask = e->nbuckets - 1, i = c->hash & mask;
    for (;; i = (i + 1) & mask) { /* never full: ends at an empty slot */
        Entry *x = &e->table[i];
        if (!x->conv) return;
        if (x->conv == c) break;
    }
    Entry *x = &e->table[i];
    size_t j = i;
    x->conv = NULL;
    memo_file(e, &c->key, NULL);
    conv_unref(c);
    e->nentries--;
    /* Algorithm R: move back each later entry of the run whose home slot is not
     * cyclically in (i, j], so no lookup stops early at the hole */
    for (;;) {
        j = (j + 1) & mask;
        Entry *y = &e->table[j];
        if (!y->conv) return;
        size_t home = y->hash & mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        e->table[i] = *y;
        y->conv = NULL;
        i = j;
    }
}

static int queue_push(Ring *r, Conv *c) {
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8192;
        Conv **q = PyMem_Malloc(cap * sizeof *q);
        if (!q) { PyErr_NoMemory(); return -1; }
        for (size_t i = 0; i < r->len; i++) q[i] = r->items[(r->head + i) % r->cap];
        PyMem_Free(r->items);
        r->items = q;
        r->head = 0;
        r->cap = cap;
    }
    size_t at = r->head + r->len; /* < 2 cap: (head + len) % cap, no division */
    r->items[at >= r->cap ? at - r->cap : at] = c;
    r->len++;
    return 0;
}

/* The parts of a conversation that leaving a queue reads (open_later, retire_later,
 * forget, conv_unref) and its table slot (table_del_if), asked of the memory ahead: a
 * queue's head is a conversation of thousands ago, long out of the caches, popped at a
 * later new conversation, some packets on. Two stages: the conversation after the next
 * one now, the next one's slot now (its hash was asked for at the pop before). */
static inline void prefetch_leaving(const Engine *e, const Ring *r) {
    if (r->len > 1) {
        size_t next = r->head + 1 == r->cap ? 0 : r->head + 1; /* no division */
        const char *b = (const char *)r->items[next];
        __builtin_prefetch((const void *)((uintptr_t)b - 16)); /* its allocation's header */
        __builtin_prefetch(b + offsetof(Conv, dirs[1].base));
        __builtin_prefetch(b + offsetof(Conv, last_ts));
        __builtin_prefetch(b + offsetof(Conv, hash));
        __builtin_prefetch(b + offsetof(Conv, refs));
        __builtin_prefetch(b + offsetof(Conv, view));
    }
    if (r->len && e->nbuckets)
        __builtin_prefetch(&e->table[r->items[r->head]->hash & (e->nbuckets - 1)]);
}

static Conv *queue_pop(Ring *r) {
    Conv *old = r->items[r->head];
    r->head = r->head + 1 == r->cap ? 0 : r->head + 1; /* (head + 1) % cap, no division */
    r->len--;
    return old;
}

static int end_state(const Conv *c);

/* The note pool's next item ``v``; -1 (error set) without memory or disk. */
static int pool_put(Engine *e, uint32_t v) {
    uint32_t *p = row_slot(&e->note_pool, sizeof v, (int64_t)e->pool_len);
    if (!p) return -1;
    *p = v;
    if (row_filled(&e->note_pool, p) < 0) return -1;
    e->pool_len++;
    return 0;
}

/* The note pool's item at ``i`` (in *v); -1 (error set) when it cannot be read back. */
static int pool_get(Engine *e, size_t i, uint32_t *v) {
    const uint32_t *p = row_at(&e->note_pool, sizeof *v, (int64_t)i);
    if (!p) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no such note");
        return -1;
    }
    *v = *p;
    return 0;
}

/* Its stats row (conversation_stats), filed under its stream; -1 without memory. */
static int row_keep(Engine *e, Conv *c) {
    if (c->rowed) return 0;
    Row *r = row_slot(&e->rows[c->proto == 6 ? 0 : 1], sizeof(Row), c->stream);
    if (!r) return -1;
    uint32_t notes = 0;
    if (c->n_notes) {
        size_t need = e->pool_len + 1 + 2 * (size_t)c->n_notes;
        if (need > UINT32_MAX) { PyErr_NoMemory(); return -1; }
        notes = (uint32_t)e->pool_len + 1;
        if (pool_put(e, c->n_notes) < 0) return -1;
        for (int i = 0; i < c->n_notes; i++) {
            int kind = c->note_order[i];
            if (pool_put(e, (uint32_t)kind) < 0 || pool_put(e, c->note_counts[kind]) < 0)
                return -1;
        }
    }
    r->notes = notes;
    r->irtt = -1;
    if (c->proto == 6 && c->first_rtt > 0 && (c->synack_ts >= 0 || c->rtt_answered))
        r->irtt = c->first_rtt;
    r->start = c->first_ts;
    r->duration = c->first_ts >= 0 ? c->last_ts - c->first_ts : -1;
    for (int i = 0; i < 2; i++) {
        r->packets[i] = c->dirs[i].packets;
        r->bytes[i] = c->dirs[i].bytes;
        r->payload[i] = c->dirs[i].payload_bytes;
    }
    memcpy(r->client, c->client.addr, 16);
    memcpy(r->server, c->server.addr, 16);
    r->cport = (int32_t)c->client.port;
    r->sport = (int32_t)c->server.port;
    r->fam = (uint8_t)c->client.fam;
    r->roles = (uint8_t)c->roles;
    r->ended = (uint8_t)end_state(c);
    r->filled = 1;
    if (row_filled(&e->rows[c->proto == 6 ? 0 : 1], r) < 0) return -1;
    c->rowed = 1;
    return 0;
}

static inline void prefetch_reuse(const Conv *c, const void *ep_text);
/* ConversationTracker._forget: out of the table; then drops the queue's reference */
static int cols_forget(Engine *e, Conv *c);
static int explain_row(Engine *e, Conv *c);
static int forget(Engine *e, Conv *old) {
    if (e->explain && explain_row(e, old) < 0) { conv_unref(old); return -1; } /* the queue's */
    if (e->cols && cols_forget(e, old) < 0) { conv_unref(old); return -1; } /* the queue's */
    if (e->keep && row_keep(e, old) < 0) { conv_unref(old); return -1; } /* the queue's */
    if (e->on_forget && old->view) {
        PyObject *r = PyObject_CallOneArg(e->on_forget, old->view);
        if (r) Py_DECREF(r);
        else PyErr_WriteUnraisable(e->on_forget); /* forgetting goes on regardless */
    }
    table_del_if(e, old);
    if (old->refs == 1) prefetch_reuse(old, old->ep_text); /* about to be freed */
    conv_unref(old); /* the queue's */
    return 0;
}

/* ConversationTracker._retire_later */
static int retire_later(Engine *e, Conv *c, i128 now) {
    c->refs++;
    if (queue_push(&e->ended, c) < 0) { c->refs--; return -1; }
    if (e->ended.len <= RETIRE_AFTER) return 0;
    Conv *old = queue_pop(&e->ended);
    prefetch_leaving(e, &e->ended);
    if (e->ended.len < RETIRE_MAX && now >= 0 /* untimed now: cannot tell */
        && now - old->last_ts < RETIRE_IDLE_NS) {
        return queue_push(&e->ended, old); /* its reference moves with it */
    }
    return forget(e, old);
}

/* ConversationTracker._open_later */
static int open_later(Engine *e, Conv *c, i128 now) {
    c->refs++;
    if (queue_push(&e->open, c) < 0) { c->refs--; return -1; }
    if (e->open.len <= RETIRE_AFTER) return 0;
    Conv *old = queue_pop(&e->open);
    prefetch_leaving(e, &e->open);
    if (old->retired) { conv_unref(old); return 0; } /* ended: the ended queue has it */
    i128 idle = old->dirs[1].base >= 0 ? INACTIVE_NS : RETIRE_IDLE_NS; /* answered or not */
    if (e->open.len < RETIRE_MAX && (now < 0 || now - old->last_ts < idle))
        return queue_push(&e->open, old);
    old->retired = 1; /* in no queue any more */
    return forget(e, old);
}

/* ConversationTracker._new: files the conversation under its key (key, h: the packet's,
 * made and hashed by locate). */
static Conv *conv_new(Engine *e, const Pkt *p, const Key *key, uint64_t h,
                      int *from_client) {
    Conv *c = PyMem_Calloc(1, sizeof *c);
    if (!c) { PyErr_NoMemory(); return NULL; }
    int ix = p->proto == 6 ? 0 : 1;
    c->stream = e->streams[ix]++;
    c->proto = p->proto;
    Endpoint src = {p->fam, {0}, p->sport}, dst = {p->fam, {0}, p->dport};
    memcpy(src.addr, p->src, 16);
    memcpy(dst.addr, p->dst, 16);
    int fs = p->flags & (F_SYN | F_ACK);
    int forward;
    if (p->proto == 17) { c->roles = ROLES_FIRST_SENDER; forward = 1; }
    else if (fs == F_SYN) { c->roles = ROLES_FROM_SYN; forward = 1; }
    else if (fs == (F_SYN | F_ACK)) { c->roles = ROLES_FROM_SYN; forward = 0; }
    else if (p->sport < p->dport) { c->roles = ROLES_GUESSED; forward = 0; }
    else { c->roles = ROLES_GUESSED; forward = 1; }
    c->client = forward ? src : dst;
    c->server = forward ? dst : src;
    /* Python: forward = src == client (the same endpoint both ways counts as forward) */
    if (!forward && src.port == dst.port && memcmp(src.addr, dst.addr, 16) == 0) forward = 1;
    dir_init(&c->dirs[0]);
    dir_init(&c->dirs[1]);
    c->first_ts = c->last_ts = p->ts;
    c->syn_ts = c->synack_ts = c->ack_ts = -1;
    c->hash = h;
    c->key = *key;
    if (e->render) {
        c->ep_text = PyMem_Calloc(2, sizeof *c->ep_text); /* zeroed: put_short reads past a text */
        if (!c->ep_text) { PyErr_NoMemory(); PyMem_Free(c); return NULL; }
        endpoint_text(c, 0);
        endpoint_text(c, 1);
    }
    c->refs = 1; /* ours, until the table holds it */
    if (p->proto == 17) {
        if (retire_later(e, c, p->ts) < 0) { conv_unref(c); return NULL; }
    } else if (open_later(e, c, p->ts) < 0) { conv_unref(c); return NULL; }
    if (table_set(e, key, h, c) < 0) { conv_unref(c); return NULL; }
    conv_unref(c); /* the table holds it now */
    *from_client = forward;
    return c;
}

/* A packet from src:sport to a conversation of its key: from the client when its source
 * is the client's endpoint (a conversation with itself: always), as Python's
 * ``forward = src == client``. */
static int from_client_of(const Conv *c, const uint8_t *src, int64_t sport) {
    return c->client.port == sport && memcmp(c->client.addr, src, 16) == 0;
}

/* ConversationTracker.locate: count the packet and find its conversation. */
static Conv *locate(Engine *e, const Pkt *p, int *from_client) {
    e->count++;
    if (p->sport < 0 || (p->proto != 6 && p->proto != 17)) return NULL;
    Key key;
    make_key(&key, p->proto, p->fam, p->src, p->sport, p->dst, p->dport);
    uint64_t h;
    Conv *c = find_conv(e, &key, &h);
    int fc = c ? from_client_of(c, p->src, p->sport) : 0;
    if (p->proto != 6) {
        if (!c) c = conv_new(e, p, &key, h, &fc);
        *from_client = fc;
        return c;
    }
    int flags = p->flags;
    if (!c || ((flags & (F_SYN | F_ACK)) == F_SYN &&
               c->dirs[fc ? 0 : 1].base >= 0 && p->seq != c->dirs[fc ? 0 : 1].base)) {
        int reused = c != NULL;
        c = conv_new(e, p, &key, h, &fc);
        if (!c) return NULL;
        c->reused = (char)reused;
    }
    Dir *d = &c->dirs[fc ? 0 : 1];
    if (d->base < 0) d->base = (flags & F_SYN) ? p->seq : MOD32(p->seq - 1);
    if (flags & F_ACK) {
        Dir *r = &c->dirs[fc ? 1 : 0];
        if (r->base < 0) r->base = MOD32(p->ack - 1);
    }
    *from_client = fc;
    return c;
}

/* ---------------------------------------------------------------- expert analysis */

static int repeated_ack(int64_t window, int mptcp_moved, Dir *d, Dir *r) {
    if (window != d->window) return window ? A_WINDOW_UPDATE : 0;
    if (window && (r->lastflags & A_KEEP_ALIVE)) return A_KEEP_ALIVE_ACK;
    if (!window) return (r->lastflags & A_ZERO_WINDOW_PROBE) ? A_ZERO_WINDOW_PROBE_ACK : 0;
    if (mptcp_moved) return 0;
    d->dupacks = d->dupacks < 0 ? 1 : d->dupacks + 1;
    return A_DUPLICATE_ACK;
}

static int acked_unseen(Dir *r) {
    if (r->maxseqtobeacked < r->nextseq) {
        r->maxseqtobeacked = r->nextseq;
        return A_ACK_LOST_PACKET;
    }
    int flag = r->dupacks == 0 ? A_ACK_LOST_PACKET : 0;
    r->dupacks = -1;
    return flag;
}

static int retransmission(int64_t seq, int64_t seglen, int flags, i128 ts, Dir *d, Dir *r,
                          i128 first_rtt) {
    int64_t nextseq = d->nextseq;
    int behind = nextseq && MOD32(seq - nextseq) >= HALF32;
    if (seglen > 1 && MOD32(nextseq - 1) == seq) behind = 0;
    if (seglen > 0 && r->lastack && MOD32(r->lastack - seq - seglen) < HALF32)
        return A_SPURIOUS_RETRANSMISSION;
    if (!behind) return 0;
    if ((r->dupacks >= 2 || r->dupacks < 0) && r->lastack == seq && 0 <= ts - r->lastack_ts &&
        ts - r->lastack_ts < FAST_RETRANSMISSION_NS)
        return A_FAST_RETRANSMISSION;
    i128 threshold = first_rtt > 0 ? first_rtt : OUT_OF_ORDER_NS;
    int64_t end = seq + seglen + ((flags & (F_SYN | F_FIN)) ? 1 : 0);
    if (0 <= ts - d->nextseq_ts && ts - d->nextseq_ts < threshold && nextseq != MOD32(end))
        return A_OUT_OF_ORDER;
    return A_RETRANSMISSION;
}

static int analyze_segment(int64_t seq, int64_t ack, int64_t seglen, int flags, int64_t window,
                           i128 ts, Dir *d, Dir *r, i128 first_rtt, int mptcp_moved) {
    int f = 0;
    int64_t nextseq = d->nextseq;
    int64_t lastack = d->lastack;
    int plain = !(flags & (F_SYN | F_FIN | F_RST));
    if (seglen == 1 && seq == nextseq && r->window == 0) {
        f = A_ZERO_WINDOW_PROBE;
    } else {
        if (window == 0 && plain) f = A_ZERO_WINDOW;
        if (seq != nextseq) {
            if (nextseq && 0 < MOD32(seq - nextseq) && MOD32(seq - nextseq) < HALF32 &&
                !(flags & F_RST))
                f |= A_LOST_PACKET;
            if (seglen <= 1 && plain && seq == MOD32(nextseq - 1)) f |= A_KEEP_ALIVE;
        } else if (seglen == 0 && plain && ack == lastack) {
            f |= repeated_ack(window, mptcp_moved, d, r);
        }
        if (seglen > 0 && plain && r->scale != -1 && MOD32(seq + seglen) == r->edge)
            f |= A_WINDOW_FULL;
    }
    if (ack != lastack) d->dupacks = 0;
    if ((flags & F_ACK) && r->maxseqtobeacked && 0 < MOD32(ack - r->maxseqtobeacked) &&
        MOD32(ack - r->maxseqtobeacked) < HALF32)
        f |= acked_unseen(r);
    int64_t nxt = MOD32(seq + seglen + ((flags & (F_SYN | F_FIN)) ? 1 : 0));
    if ((seglen > 0 || (flags & (F_SYN | F_FIN))) && !(f & A_KEEP_ALIVE) &&
        (seq != nextseq ||
         (seglen > 0 && r->lastack && MOD32(r->lastack - seq - seglen) < HALF32)))
        f |= retransmission(seq, seglen, flags, ts, d, r, first_rtt);
    int probe = f & A_ZERO_WINDOW_PROBE;
    if ((!nextseq || (0 < MOD32(nxt - nextseq) && MOD32(nxt - nextseq) < HALF32)) && !probe) {
        d->nextseq = nextseq = nxt;
        d->nextseq_ts = ts;
    }
    if ((seq == d->maxseqtobeacked || !d->maxseqtobeacked) && !probe) d->maxseqtobeacked = nextseq;
    d->window = window;
    d->lastack = ack;
    d->lastack_ts = ts;
    d->lastflags = f;
    int64_t w = (d->scale > 0 && !(flags & F_SYN)) ? window << d->scale : window;
    d->edge = MOD32(ack + w);
    return f;
}

/* ---------------------------------------------------------------- annotate */

typedef struct {
    Conv *conv;
    int from_client;
    int64_t seq, ack, win;
    int phase;
    int bits;   /* analysis flags */
    int own;    /* N_CONNECTION_REFUSED / N_CONNECTION_RESET / N_HALF_CLOSE, or -1 */
    int told;   /* contract.CONFUSION_NOTES found (CONFUSION_BIT of each), or 0 */
    int64_t segments, stall_ms; /* the numbers of N_LARGER_THAN_MTU and N_NAGLE_STALL */
    int64_t dupacks;
} Ann;

static void see_syn(const Pkt *p, Conv *c, Dir *d, Dir *r) {
    d->syn = 1;
    d->scale = SCALE_NONE;
    if (p->has_wscale) d->scale = p->wscale < MAX_WSCALE ? p->wscale : MAX_WSCALE;
    if (p->mss >= 0) d->mss = p->mss;
    if (p->mptcp) c->mptcp = 1;
    if (r->syn && (d->scale == SCALE_NONE || r->scale == SCALE_NONE)) d->scale = r->scale = SCALE_NONE;
    int ecn = p->flags & ECN_BITS;
    /* a SYN without a time (NO_TIMESTAMP) is still seen; 0 also means that no round
     * trip is measured from it (mru_syn_ts) */
    i128 ts = p->ts >= 0 ? p->ts : 0;
    if (p->flags & F_ACK) {
        if (c->synack_ts < 0) c->synack_ts = ts;
        c->accecn = c->accecn_syn && ecn != 0 && ecn != F_ECE && ecn != ECN_BITS;
    } else {
        c->accecn_syn = ecn == ECN_BITS;
        c->mru_syn_ts = ts;
        if (c->syn_ts < 0) c->syn_ts = ts;
    }
}

static int phase_of(const Pkt *p, Conv *c, int from_client, Dir *d) {
    int flags = p->flags;
    if (flags & F_RST) { c->reset = 1; return PH_RESET; }
    if (flags & F_SYN) return (flags & F_ACK) ? PH_HANDSHAKE_2 : PH_HANDSHAKE_1;
    if (flags & F_FIN) {
        if (d->fin_seq < 0) d->fin_seq = MOD32(p->seq + p->payload_len);
        if (!c->closer) c->closer = from_client ? 1 : 2;
        d->fin = 1;
        c->closing = 1;
        return PH_TEARDOWN;
    }
    if (!c->handshake_done && from_client && c->synack_ts >= 0 && (flags & F_ACK) &&
        p->payload_len == 0) {
        c->handshake_done = 1;
        c->ack_ts = p->ts;
        return PH_HANDSHAKE_3;
    }
    if (p->payload_len > 0) { c->handshake_done = 1; return PH_DATA; }
    return c->closing ? PH_TEARDOWN : PH_ACK;
}

/* learner_notes.confusion_note (Python): what would confuse a learner, from the tracker's
 * own state (before phase_of records this packet's FIN), or -1. */
static int confusion_note(const Pkt *p, Conv *c, int from_client, const Dir *d, const Dir *r) {
    if (d->packets == 1 && !r->packets) {
        if (c->reused) return N_PORT_REUSE;
        if (c->roles == ROLES_GUESSED) return N_WINDOW_SCALE_UNKNOWN;
        return -1;
    }
    if ((p->flags & (F_SYN | F_FIN | F_RST | F_ACK)) == F_ACK && !c->time_wait &&
        r->fin_seq >= 0 && c->closer == (from_client ? 1 : 2) &&
        p->ack == MOD32(r->fin_seq + 1)) {
        c->time_wait = 1;
        return N_TIME_WAIT;
    }
    return -1;
}

#define CONFUSION_BIT(kind) (1 << ((kind) - N_FIRST_CONFUSION))

static uint32_t fold16(uint64_t t) {
    while (t >> 16) t = (t & 0xFFFF) + (t >> 16);
    return (uint32_t)t;
}

/* offload.tcp_start: where the TCP header starts, where the ports and the header's own
 * length agree before the payload (-1: none) */
static int64_t tcp_start_of(const Pkt *p) {
    for (int64_t len = 20; len < 64; len += 4) {
        int64_t s = p->payload_off - len;
        if (s < 0) break;
        const uint8_t *t = p->data + s;
        if (s + 13 <= p->caplen && be16(t) == (uint64_t)p->sport && be16(t + 2) == (uint64_t)p->dport &&
            TCP_HEADER_LEN(t) == len)
            return s;
    }
    return -1;
}

/* offload.ip_start: the IP header right before the TCP header at tcp (-1: not found) */
static int64_t ip_start_of(const Pkt *p, int64_t tcp) {
    const uint8_t *d = p->data;
    if (p->fam == 6) {
        int64_t s = tcp - 40;
        return s >= 0 && (d[s] >> 4) == 6 && d[s + 6] == 6 ? s : -1;
    }
    for (int64_t len = 20; len < 64; len += 4) {
        int64_t s = tcp - len;
        if (s < 0) break;
        if (d[s] == (0x40 | len >> 2) && d[s + 9] == 6) return s;
    }
    return -1;
}

/* offload.address_sum: the pseudo-header's addresses, summed and folded */
static int64_t address_sum(const Pkt *p) {
    uint64_t t = 0;
    for (int i = 0; i < (p->fam == 6 ? 16 : 4); i += 2) t += be16(p->src + i) + be16(p->dst + i);
    return fold16(t);
}

/* offload.partial_checksum: 1 when the checksum field holds the pseudo-header's sum and
 * not the real checksum; the bytes are summed only when the O(1) test passes */
static int partial_checksum(const Pkt *p, int64_t start, int64_t addresses) {
    if (p->proto != 6 || p->fragment || p->trunc_n || addresses < 0 || start < 0) return 0;
    int64_t end = p->payload_off + p->payload_len, length = end - start;
    if (end > p->caplen || length > 0xFFFF) return 0;
    const uint8_t *t = p->data + start;
    uint32_t field = be16(t + 16), partial = fold16((uint64_t)addresses + 6 + (uint64_t)length);
    if (field != partial) return 0;
    uint64_t sum = partial;
    for (int64_t i = 0; i + 1 < length; i += 2)
        if (i != 16) sum += be16(t + i);
    if (length & 1) sum += (uint32_t)t[length - 1] << 8;
    return field != (~fold16(sum) & 0xFFFF);
}

/* offload.mtu_cut: the segments a wire would carry when the IP packet is larger than the
 * MTU (mss: the receiver's, or -1), else 0; its size, the MTU and a segment's payload in
 * *cut (for --explain's sentence) */
typedef struct { int64_t size, mtu, segment; } MtuCut;
static int64_t mtu_cut(const Pkt *p, int64_t mss, MtuCut *cut) {
    int64_t tcp = tcp_start_of(p);
    int64_t ip = tcp >= 0 ? ip_start_of(p, tcp) : -1;
    if (ip < 0) return 0;
    int64_t headers = p->payload_off - ip;
    cut->size = headers + p->payload_len;
    if (mss >= 0) {
        cut->segment = mss - (p->payload_off - tcp - 20);
        cut->mtu = mss + (p->fam == 6 ? 60 : 40);
    } else {
        cut->mtu = ETHERNET_MTU;
        cut->segment = cut->mtu - headers;
    }
    return cut->size > cut->mtu && cut->segment > 0
        ? (p->payload_len + cut->segment - 1) / cut->segment : 0;
}

static int64_t larger_than_mtu(const Pkt *p, int64_t mss) {
    MtuCut cut;
    return mtu_cut(p, mss, &cut);
}

/* learner_notes.learner_notes (Python): the rest of contract.CONFUSION_NOTES, as bits */
static int learner_notes(const Pkt *p, Conv *c, Dir *d, const Dir *r, Ann *a) {
    int out = 0, flags = p->flags;
    int64_t plen = p->payload_len, seq = p->seq;
    if (!c->partial_said) {
        if (d->addresses == -1) d->addresses = address_sum(p);
        if (partial_checksum(p, tcp_start_of(p), d->addresses)) {
            c->partial_said = 1;
            out = CONFUSION_BIT(N_PARTIAL_CHECKSUM);
        }
    }
    if ((plen > SMALLEST_MTU_PAYLOAD || (r->mss >= 0 && plen > r->mss - 40)) &&
        (a->segments = larger_than_mtu(p, r->mss)) > 0)
        out |= CONFUSION_BIT(N_LARGER_THAN_MTU);
    if ((flags & (F_SYN | F_RST)) || !plen) {
        if (plen || (flags & (F_SYN | F_FIN | F_RST)) || !(flags & F_ACK)) return out;
        d->pure_ack = p->ack; /* a pure ACK: what a Nagle stall waits for */
        d->pure_ack_ts = p->ts;
        return out;
    }
    if (d->msg_end == seq) out |= CONFUSION_BIT(N_PART_OF_MESSAGE);
    d->msg_end = (flags & (F_PSH | F_FIN)) ? -1 : MOD32(seq + plen);
    if (flags & F_FIN) return out;
    int64_t before = d->data_next;
    i128 before_ts = d->data_ts;
    d->data_next = MOD32(seq + plen);
    d->data_ts = p->ts;
    if (before == seq && r->pure_ack == seq && r->pure_ack_ts - before_ts >= DELAYED_NS &&
        p->ts - r->pure_ack_ts >= 0 && p->ts - r->pure_ack_ts <= RELEASED_NS) {
        out |= CONFUSION_BIT(N_NAGLE_STALL);
        a->stall_ms = (int64_t)((p->ts - before_ts + 500000) / 1000000); /* rounded */
    }
    return out;
}

static void count_note(Engine *e, Conv *c, int kind) {
    if (c->note_counts[kind] < UINT32_MAX) c->note_counts[kind]++;
    if (!(c->noted & 1u << kind)) {
        c->noted |= 1u << kind;
        c->note_order[c->n_notes++] = (uint8_t)kind;
    }
    if (!e->note_counts[kind]++) e->note_order[e->n_notes++] = (uint8_t)kind;
}

/* ConversationTracker._icmp_notes: an ICMP error's note, counted in the conversation of
 * the datagram it quotes when that one is in the table, else only in the totals. */
static void count_quoted(Engine *e, const Pkt *p) {
    int kind = p->quoted_kind - 1;
    Entry *x = NULL;
    if ((p->quoted_proto == 6 || p->quoted_proto == 17) && p->quoted_sport >= 0 &&
        p->quoted_dport >= 0) {
        Key key;
        make_key(&key, p->quoted_proto, p->quoted_fam, p->quoted_src, p->quoted_sport,
                 p->quoted_dst, p->quoted_dport);
        x = table_get(e, &key, hash_key(e, &key));
    }
    if (x && x->conv) count_note(e, x->conv, kind);
    else if (!e->note_counts[kind]++) e->note_order[e->n_notes++] = (uint8_t)kind;
}

static int annotate(Engine *e, const Pkt *p, Conv *c, int from_client, Ann *a) {
    a->conv = c;
    a->from_client = from_client;
    a->seq = a->ack = a->win = -1;
    a->bits = 0;
    a->own = -1;
    a->told = 0;
    a->segments = a->stall_ms = 0;
    a->dupacks = 0;
    if (!c) { a->phase = PH_NONE; return 0; }
    if (p->ts >= 0) { /* a frame without a time (NO_TIMESTAMP) leaves the clock alone */
        /* earliest and latest, not first and last (tshark's duration is max - min) */
        if (p->ts > c->last_ts) c->last_ts = p->ts;
        if (c->first_ts < 0 || p->ts < c->first_ts) c->first_ts = p->ts;
    }
    Dir *d = &c->dirs[from_client ? 0 : 1];
    d->packets++;
    d->bytes += p->wirelen;
    d->payload_bytes += p->payload_len;
    if (p->proto == 17) { a->phase = PH_DATA; return 0; }
    Dir *r = &c->dirs[from_client ? 1 : 0];
    int flags = p->flags;
    if (flags & F_SYN) see_syn(p, c, d, r);
    a->ack = (flags & F_ACK) ? MOD32(p->ack - r->base) : 0;
    if (!(flags & F_SYN) && d->scale >= 0 && r->scale >= 0)
        a->win = p->window * ((int64_t)1 << d->scale);
    else
        a->win = p->window;
    if (!e->analyze) {
        a->seq = MOD32(p->seq - d->base);
        a->phase = phase_of(p, c, from_client, d);
        return 0;
    }
    int bits = 0;
    if (p->window >= 0 && p->ack >= 0) {
        bits = analyze_segment(p->seq, p->ack, p->payload_len, flags, p->window, p->ts, d, r,
                               c->first_rtt, c->mptcp_ops != d->mptcp_ops);
        if (c->mptcp) {
            c->mptcp_ops += p->mptcp_maps;
            d->mptcp_ops = c->mptcp_ops;
        }
    }
    if ((flags & (F_SYN | F_ACK)) == F_ACK && c->mru_syn_ts != 0 && c->first_rtt == 0 &&
        p->ts >= 0) {
        c->first_rtt = p->ts - c->mru_syn_ts;
        c->rtt_answered = !from_client;
    }
    int own = -1;
    if ((flags & F_RST) || r->fin) {
        if (flags & F_RST) {
            if (r->syn && !d->syn) { c->refused = 1; own = N_CONNECTION_REFUSED; }
            else own = N_CONNECTION_RESET;
        } else if (p->payload_len > 0 && !d->fin && !c->half_closed && !(bits & RESENT)) {
            c->half_closed = 1;
            own = N_HALF_CLOSE;
        }
    }
    int told = 0;
    if (p->window >= 0) {
        int one = confusion_note(p, c, from_client, d, r);
        told = (one >= 0 ? CONFUSION_BIT(one) : 0) | learner_notes(p, c, d, r, a);
    }
    a->phase = phase_of(p, c, from_client, d);
    int ended = c->reset || (c->dirs[0].fin && c->dirs[1].fin);
    if ((flags & (F_FIN | F_RST)) && ended && !c->retired) {
        c->retired = 1;
        if (retire_later(e, c, p->ts) < 0) return -1;
    }
    if (bits) {
        for (int i = 0; i < N_FLAG_NOTES; i++)
            if (bits & FLAG_NOTES[i][0]) {
                int kind = FLAG_NOTES[i][1];
                if (kind == N_RETRANSMISSION && (flags & F_SYN)) kind = N_SYN_RETRANSMITTED;
                count_note(e, c, kind);
            }
        if (bits & A_DUPLICATE_ACK) count_note(e, c, N_DUPLICATE_ACK);
    }
    if (own >= 0) count_note(e, c, own);
    for (int k = N_FIRST_CONFUSION; told && k < N_KINDS; k++)
        if (told & CONFUSION_BIT(k)) count_note(e, c, k);
    a->bits = bits;
    a->own = own;
    a->told = told;
    a->dupacks = d->dupacks;
    a->seq = MOD32(p->seq - d->base);
    return 0;
}

/* ---------------------------------------------------------------- rendering */

static const char HEXD[] = "0123456789abcdef";

static int put_text(Buf *b, const Text *t) {
    if (buf_reserve(b, (size_t)t->n) < 0) return -1;
    put(b, t->s, (size_t)t->n);
    return 0;
}

/* A placeholder's value: bytes of UTF-8 text. */
typedef struct {
    const char *s;
    size_t n;
} Val;

/* A template with its placeholders filled (vals: in the contract's order of its names). */
static int put_template(Buf *b, const Template *t, const Val *vals) {
    size_t need = t->fixed;
    for (int i = 0; i < t->n; i++) need += vals[t->place[i]].n;
    if (buf_reserve(b, need) < 0) return -1;
    put(b, t->piece[0].s, (size_t)t->piece[0].n);
    for (int i = 0; i < t->n; i++) {
        put(b, vals[t->place[i]].s, vals[t->place[i]].n);
        put(b, t->piece[i + 1].s, (size_t)t->piece[i + 1].n);
    }
    return 0;
}

static int put_str(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *c = PyUnicode_AsUTF8AndSize(s, &n);
    if (!c) return -1;
    if (buf_reserve(b, (size_t)n) < 0) return -1;
    put(b, c, (size_t)n);
    return 0;
}

/* Python's "%10.6f" % ((ts - first) / 1e9), exactly. */
static int put_time(Buf *b, i128 diff) {
    if (buf_reserve(b, 64) < 0) return -1;
    if (diff >= 0 && diff < ((i128)1 << 43) && (int64_t)diff % 1000 != 500) {
        /* no tie at the sixth decimal and the double's error far below a nanosecond:
         * rounding the integer is rounding the double */
        int64_t micros = ((int64_t)diff + 500) / 1000;
        uint64_t frac = (uint64_t)(micros % 1000000), sec = (uint64_t)(micros / 1000000);
        int nd = count_digits(sec), total = nd + 7;
        char *o = b->p + b->len;
        if (total < 10) {
            memset(o, ' ', (size_t)(10 - total));
            o += 10 - total;
        }
        digits_before(o + nd, sec);
        o += nd;
        *o++ = '.';
        memcpy(o, DIGITS2 + 2 * (frac / 10000), 2);
        memcpy(o + 2, DIGITS2 + 2 * (frac / 100 % 100), 2);
        memcpy(o + 4, DIGITS2 + 2 * (frac % 100), 2);
        b->len = (size_t)(o + 6 - b->p);
        return 0;
    }
    double t;
    if (diff >= INT64_MIN && diff <= INT64_MAX) {
        /* the timeline's (ts - first) / 1e9: the int made a double (rounded to nearest),
         * then divided */
        t = (double)(int64_t)diff / 1e9;
    } else { /* idem for an int past 64 bits: float(int), correctly rounded */
        int neg = diff < 0;
        u128 u = neg ? (u128)0 - (u128)diff : (u128)diff;
        PyObject *hi = PyLong_FromUnsignedLongLong((unsigned long long)(u >> 64));
        PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)u);
        PyObject *sh = PyLong_FromLong(64);
        PyObject *x = NULL, *y = NULL, *v = NULL, *ns = PyLong_FromLongLong(NS_PER_SEC);
        if (hi && lo && sh && ns) x = PyNumber_Lshift(hi, sh);
        if (x) y = PyNumber_Or(x, lo);
        if (y) v = PyNumber_Float(y);
        Py_XDECREF(hi); Py_XDECREF(lo); Py_XDECREF(sh); Py_XDECREF(x); Py_XDECREF(y);
        Py_XDECREF(ns);
        if (!v) return -1;
        t = PyFloat_AsDouble(v) / 1e9;
        Py_DECREF(v);
        if (neg) t = -t;
    }
    char tmp[400];
    int n = snprintf(tmp, sizeof tmp, "%10.6f", t);
    if (n < 0 || (size_t)n >= sizeof tmp) { PyErr_SetString(PyExc_OverflowError, "time"); return -1; }
    if (buf_reserve(b, (size_t)n) < 0) return -1;
    put(b, tmp, (size_t)n);
    return 0;
}

/* The bytes a preview shows as themselves: printable ASCII but the quote and backslash. */
#define PLAIN_16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const uint8_t PLAIN[256] = {
    PLAIN_16(0), PLAIN_16(0),                                       /* 0x00-0x1f */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,                 /* 0x20-0x2f: '"' */
    PLAIN_16(1), PLAIN_16(1),                                       /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,                 /* 0x50-0x5f: '\\' */
    PLAIN_16(1),                                                    /* 0x60-0x6f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,                 /* 0x70-0x7f: DEL */
    PLAIN_16(0), PLAIN_16(0), PLAIN_16(0), PLAIN_16(0),             /* 0x80-0xbf */
    PLAIN_16(0), PLAIN_16(0), PLAIN_16(0), PLAIN_16(0),             /* 0xc0-0xff */
};

/* timeline.preview of the n bytes at s, written at o (room for 4 n + 5 bytes): quoted,
 * escaped, and "…" after the quote when more were captured; the bytes written. */
static size_t preview_to(char *o, const uint8_t *s, int64_t n, int more) {
    char *start = o;
    *o++ = '"';
    for (int64_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (PLAIN[c]) { *o++ = (char)c; continue; }
        *o++ = '\\';
        switch (c) {
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        default:
            *o++ = 'x';
            *o++ = HEXD[c >> 4];
            *o++ = HEXD[c & 15];
        }
    }
    if (more) { memcpy(o, "\"\xe2\x80\xa6", 4); o += 4; }
    else *o++ = '"';
    return (size_t)(o - start);
}

/* timeline.preview(data[off : off + min(plen, 25)]) */
static int put_preview(Buf *b, const Pkt *p) {
    int64_t want = p->payload_len < PREVIEW_CHARS + 1 ? p->payload_len : PREVIEW_CHARS + 1;
    int64_t have = p->caplen - p->payload_off;
    if (have < 0) have = 0;
    int64_t n = want < have ? want : have;
    if (n < 0) n = 0;
    if (buf_reserve(b, 4 + 4 * PREVIEW_CHARS + 8) < 0) return -1;
    const uint8_t *s = p->data + (n ? p->payload_off : 0);
    int64_t shown = n < PREVIEW_CHARS ? n : PREVIEW_CHARS;
    b->len += preview_to(b->p + b->len, s, shown, n > PREVIEW_CHARS);
    return 0;
}

/* timeline.hexdump(data, "      "), one row a line, each preceded by "\n" */
static int put_hexdump(Buf *b, const uint8_t *s, int64_t n) {
    if (n <= 0) return 0;
    if (buf_reserve(b, (size_t)(n / 16 + 1) * 96) < 0) return -1;
    for (int64_t off = 0; off < n; off += 16) {
        int64_t k = n - off < 16 ? n - off : 16;
        char *o = b->p + b->len;
        *o++ = '\n';
        memset(o, ' ', 6);
        o += 6;
        int w = 4; /* "%04llx" */
        while (w < 16 && ((uint64_t)off >> (4 * w))) w++;
        for (int i = w - 1; i >= 0; i--) *o++ = HEXD[((uint64_t)off >> (4 * i)) & 15];
        *o++ = ' ';
        *o++ = ' ';
        for (int i = 0; i < 16; i++) {
            if (i == 8) { *o++ = ' '; *o++ = ' '; }
            else if (i) *o++ = ' ';
            if (i < k) { *o++ = HEXD[s[off + i] >> 4]; *o++ = HEXD[s[off + i] & 15]; }
            else { *o++ = ' '; *o++ = ' '; }
        }
        *o++ = ' ';
        *o++ = ' ';
        for (int i = 0; i < k; i++) {
            uint8_t c = s[off + i];
            *o++ = (c >= 32 && c < 127) ? (char)c : '.';
        }
        b->len = (size_t)(o - b->p);
    }
    return 0;
}

static int put_note(Engine *e, Buf *b, int kind, int64_t dupacks) {
    if (kind == N_DUPLICATE_ACK) {
        char n[24];
        Val v = {n, (size_t)(write_i64(n, dupacks, 0) - n)};
        return put_template(b, &e->templates[T_DUPLICATE_ACK], &v);
    }
    if (kind == N_LARGER_THAN_MTU || kind == N_NAGLE_STALL) { /* {n}: dupacks is the number */
        char n[24];
        Val v = {n, (size_t)(write_i64(n, dupacks, 0) - n)};
        return put_template(b, &e->templates[kind == N_NAGLE_STALL ? T_NAGLE_STALL
                                                                   : T_LARGER_THAN_MTU], &v);
    }
    return put_text(b, &e->note_words[kind]);
}

/* " [|cut]": where a header was cut, as both text lines mark it. */
static int put_cut(Buf *b, const Pkt *p) {
    if (!p->trunc_n) return 0;
    if (buf_reserve(b, (size_t)p->trunc_n + 4) < 0) return -1;
    put(b, " [|", 3);
    put(b, p->trunc, (size_t)p->trunc_n);
    put(b, "]", 1);
    return 0;
}

/* The end of a packet's text line: its --hex rows (the payload's, or the whole frame's
 * when it has no transport ports), then "\n"; both text lines end so. */
static int put_line_end(Engine *e, Buf *b, const Pkt *p) {
    if (e->hex) {
        if (p->sport < 0) {
            if (put_hexdump(b, p->data, p->caplen) < 0) return -1;
        } else {
            int64_t start = p->payload_off < p->caplen ? p->payload_off : p->caplen;
            int64_t stop = p->payload_off + p->payload_len;
            if (stop > p->caplen) stop = p->caplen;
            if (stop > start && put_hexdump(b, p->data + start, stop - start) < 0) return -1;
        }
    }
    if (buf_reserve(b, 1) < 0) return -1;
    put(b, "\n", 1);
    return 0;
}

/* Whether the packet's line has notes to write (put_notes). */
static inline int has_notes(const Pkt *p, const Ann *a) {
    return a->bits || a->own >= 0 || a->told || (p->notes && PyTuple_GET_SIZE(p->notes));
}

/* "  (note; note; ...)": the packet's notes in the reader's language, in the tracker's
 * order (the decoder's, the analysis', the connection's own, the confusions'), as both
 * text lines write them (render(), and tcpdump's notation). */
static int put_notes(Engine *e, Buf *b, const Pkt *p, const Ann *a) {
    int first = 1;
    if (buf_reserve(b, 3) < 0) return -1;
    put(b, "  (", 3);
    if (p->notes) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(p->notes); i++) {
            if (!first) { if (buf_reserve(b, 2) < 0) return -1; put(b, "; ", 2); }
            first = 0;
            PyObject *text = PyObject_CallOneArg(e->note_text, PyTuple_GET_ITEM(p->notes, i));
            if (!text) return -1;
            int rc = PyUnicode_Check(text) ? put_str(b, text) : -1;
            if (rc < 0 && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "note text");
            Py_DECREF(text);
            if (rc < 0) return -1;
        }
    }
    if (a->bits) {
        for (int i = 0; i < N_FLAG_NOTES; i++) {
            if (!(a->bits & FLAG_NOTES[i][0])) continue;
            int kind = FLAG_NOTES[i][1];
            if (kind == N_RETRANSMISSION && (p->flags & F_SYN)) kind = N_SYN_RETRANSMITTED;
            if (!first) { if (buf_reserve(b, 2) < 0) return -1; put(b, "; ", 2); }
            first = 0;
            if (put_note(e, b, kind, 0) < 0) return -1;
        }
        if (a->bits & A_DUPLICATE_ACK) {
            if (!first) { if (buf_reserve(b, 2) < 0) return -1; put(b, "; ", 2); }
            first = 0;
            if (put_note(e, b, N_DUPLICATE_ACK, a->dupacks) < 0) return -1;
        }
    }
    if (a->own >= 0) {
        if (!first) { if (buf_reserve(b, 2) < 0) return -1; put(b, "; ", 2); }
        first = 0;
        if (put_note(e, b, a->own, 0) < 0) return -1;
    }
    for (int k = N_FIRST_CONFUSION; a->told && k < N_KINDS; k++) {
        if (!(a->told & CONFUSION_BIT(k))) continue;
        if (!first) { if (buf_reserve(b, 2) < 0) return -1; put(b, "; ", 2); }
        first = 0;
        if (put_note(e, b, k, k == N_NAGLE_STALL ? a->stall_ms : a->segments) < 0) return -1;
    }
    if (buf_reserve(b, 1) < 0) return -1;
    put(b, ")", 1);
    return 0;
}

#include "_speedups_json.h"
#include "_speedups_color.h"
#include "_speedups_tcpdump.h"
#include "_speedups_plain.h"
#include "_speedups_packet.h"
#include "_speedups_explain.h"
#include "_speedups_reuse.h"

/* put_text of an engine's own Text (text_set: SLACK readable past its end) */
static inline int put_text_short(Buf *b, const Text *t) {
    if (buf_reserve(b, (size_t)t->n + SLACK) < 0) return -1;
    put_short(b, t->s, (size_t)t->n);
    return 0;
}

/* put_template of a template whose values are the conversation's endpoint texts (64-byte
 * arrays: SLACK readable past any text up to SLACK bytes) */
static int put_template_eps(Buf *b, const Template *t, const Val *vals) {
    size_t need = t->fixed + (size_t)(2 * t->n + 1) * SLACK;
    for (int i = 0; i < t->n; i++) need += vals[t->place[i]].n;
    if (buf_reserve(b, need) < 0) return -1;
    put_short(b, t->piece[0].s, (size_t)t->piece[0].n);
    for (int i = 0; i < t->n; i++) {
        put_short(b, vals[t->place[i]].s, vals[t->place[i]].n);
        put_short(b, t->piece[i + 1].s, (size_t)t->piece[i + 1].n);
    }
    return 0;
}

/* The packet's text: the guessed-roles line, the timeline line, the --hex rows; "\n". */
static int render(Engine *e, const Pkt *p, const Ann *a) {
    Buf *b = &e->out;
    Conv *c = a->conv;
    if (c && c->roles == ROLES_GUESSED && c->dirs[0].packets + c->dirs[1].packets == 1) {
        char stream[24];
        Val v[2] = {{stream, (size_t)(write_i64(stream, c->stream, 0) - stream)},
                    {c->ep_text[1], c->ep_len[1]}}; /* {stream}, {server} */
        if (buf_reserve(b, 6) < 0) return -1;
        put(b, "      ", 6);
        if (put_template(b, &e->templates[T_GUESSED_ROLES], v) < 0) return -1;
        if (buf_reserve(b, 1) < 0) return -1;
        put(b, "\n", 1);
    }
    if (e->clock_first < 0) e->clock_first = p->ts;
    if (buf_reserve(b, 256) < 0) return -1;
    put_i64(b, e->count, 4);
    put(b, " ", 1);
    if (p->ts < 0) put(b, "         -", 10); /* NO_TIMESTAMP: timeline.NO_TIME */
    else if (put_time(b, p->ts - e->clock_first) < 0) return -1;
    if (buf_reserve(b, 256) < 0) return -1;
    put(b, "  ", 2);
    if (c) {
        /* "client C → server S" / "server S → client C", in the reader's language */
        Val v[2] = {{c->ep_text[0], c->ep_len[0]}, {c->ep_text[1], c->ep_len[1]}};
        if (put_template_eps(b, &e->templates[a->from_client ? T_FROM_CLIENT : T_FROM_SERVER],
                             v) < 0)
            return -1;
    } else if (put_str(b, p->where) < 0) return -1;
    /* room for every fixed part below that writes without a reserve of its own: the
     * longest, "  TCP [bad header] Seq=N Ack=N  ", is under 80 bytes; ``where`` may have
     * used the room reserved above, whatever its length */
    if (buf_reserve(b, 128) < 0) return -1;
    const Text *phase = &e->phases[a->phase];
    if (a->win >= 0) {
        const Text *names = (c && c->accecn && !(p->flags & F_SYN)) ? &e->ace_flags[p->flags]
                                                                     : &e->ws_flags[p->flags];
        if (buf_reserve(b, 160) < 0) return -1;
        put(b, "  TCP ", 6);
        if (put_text_short(b, names) < 0 || buf_reserve(b, 128) < 0) return -1;
        put(b, " Seq=", 5);
        put_i64(b, a->seq, 0);
        if (p->flags & F_ACK) { /* without ACK (a SYN, a bare RST): no Ack field */
            put(b, " Ack=", 5);
            put_i64(b, a->ack, 0);
        }
        put(b, " Win=", 5);
        put_i64(b, a->win, 0);
        put(b, " Len=", 5);
        put_i64(b, p->payload_len, 0);
        put(b, "  ", 2);
        if (put_text_short(b, phase) < 0) return -1;
        if (p->payload_len > 0) {
            if (buf_reserve(b, 2) < 0) return -1;
            put(b, "  ", 2);
            if (put_preview(b, p) < 0) return -1;
        }
    } else if (a->seq >= 0) {
        put(b, "  TCP [bad header] Seq=", 23);
        put_i64(b, a->seq, 0);
        put(b, " Ack=", 5);
        put_i64(b, a->ack, 0);
        if (p->payload_len > 0) {
            put(b, "  ", 2);
            if (put_preview(b, p) < 0) return -1;
        }
    } else if (!c && p->info) { /* an ICMP message: "ICMP Echo (ping) request ..." */
        put(b, "  ", 2);
        if (put_str(b, p->proto_name) < 0 || buf_reserve(b, 1) < 0) return -1;
        put(b, " ", 1);
        if (put_str(b, p->info) < 0) return -1;
    } else {
        put(b, "  ", 2);
        if (c) {
            if (buf_reserve(b, 4) < 0) return -1;
            put(b, p->proto == 6 ? "TCP" : "UDP", 3);
        } else if (put_str(b, p->proto_name) < 0) return -1;
        if (buf_reserve(b, 32) < 0) return -1;
        put(b, " Len=", 5);
        put_i64(b, p->sport >= 0 ? p->payload_len : p->wirelen, 0);
        if (phase->n) {
            put(b, "  ", 2);
            if (put_text(b, phase) < 0) return -1;
        }
        if (p->payload_len > 0 && p->sport >= 0) {
            if (buf_reserve(b, 2) < 0) return -1;
            put(b, "  ", 2);
            if (put_preview(b, p) < 0) return -1;
        }
    }
    if (put_cut(b, p) < 0) return -1;
    if (has_notes(p, a) && put_notes(e, b, p, a) < 0) return -1;
    return put_line_end(e, b, p);
}

static int set_clock(Engine *e);
static int hand_to_view(Engine *e, const Pkt *p, const Ann *a);
static int cols_packet(Engine *e, const Pkt *p, const Ann *a);
static void cols_free(Engine *e);
static int cols_full(const Engine *e);

/* Would locate() start a new conversation for this packet? (no state changed) */
static int starts_conversation(Engine *e, const Pkt *p) {
    if (p->sport < 0 || (p->proto != 6 && p->proto != 17)) return 0;
    Key key;
    make_key(&key, p->proto, p->fam, p->src, p->sport, p->dst, p->dport);
    Entry *x = table_get(e, &key, hash_key(e, &key));
    if (!x) return 1;
    if (p->proto != 6) return 0;
    const Dir *d = &x->conv->dirs[from_client_of(x->conv, p->src, p->sport) ? 0 : 1];
    return (p->flags & (F_SYN | F_ACK)) == F_SYN && d->base >= 0 && p->seq != d->base;
}

/* Pipeline.map's loop body for one decoded packet: 0 on success, -1 on error, 1 when
 * the packet starts the stream to hand over (nothing done: Python takes it from here). */
static int process(Engine *e, const Pkt *p) {
    if (e->target_stream >= 0 && p->proto == e->target_proto &&
        e->streams[p->proto == 6 ? 0 : 1] == e->target_stream && starts_conversation(e, p)) {
        e->handover = 1;
        return 1;
    }
    if (p->ts > e->last) {
        e->last = p->ts;
        if (e->first < 0) {
            e->first = e->clock_first = p->ts;
            if (e->clock && set_clock(e) < 0) return -1;
        }
    }
    int fc = 1;
    Conv *c = locate(e, p, &fc);
    if (!c && PyErr_Occurred()) return -1;
    Ann a;
    if (annotate(e, p, c, fc, &a) < 0) return -1;
    if (!c && p->quoted_kind && e->analyze) count_quoted(e, p);
    if (e->cols) return cols_packet(e, p, &a); /* the export's row, no text */
    if (!e->render) return 0;
    if (e->port && p->sport != e->port && p->dport != e->port) return 0;
    if (e->limit && e->shown >= e->limit) { e->done = 1; return 0; }
    e->shown++;
    size_t mark = e->out.len;
    if (e->view ? hand_to_view(e, p, &a) < 0
                : (e->style == STYLE_JSON ? render_json(e, p, &a)
                   : e->color ? render_color(e, p, &a, e->style == STYLE_TCPDUMP
                                                           ? render_tcpdump : render)
                   : e->style == STYLE_TCPDUMP ? render_tcpdump(e, p, &a)
                   : render(e, p, &a)) < 0 ||
        (e->explain && explain_line(e, p, &a) < 0)) {
        e->out.len = mark; /* nothing of a packet whose text failed */
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- Python API */

static int i128_from_py(PyObject *o, i128 *out) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (!overflow) { *out = v; return 0; }
    PyObject *sh = PyLong_FromLong(64), *hi = NULL, *lo = NULL, *mask = NULL;
    int rc = -1;
    if (!sh) return -1;
    hi = PyNumber_Rshift(o, sh);
    mask = PyLong_FromUnsignedLongLong(~0ULL);
    if (hi && mask) lo = PyNumber_And(o, mask);
    if (hi && lo) {
        long long h = PyLong_AsLongLongAndOverflow(hi, &overflow);
        unsigned long long l = PyLong_AsUnsignedLongLong(lo);
        if (overflow || (h == -1 && PyErr_Occurred()) || PyErr_Occurred()) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_OverflowError, "timestamp out of range");
        } else {
            *out = (i128)(((u128)(i128)h << 64) | l);
            rc = 0;
        }
    }
    Py_XDECREF(sh); Py_XDECREF(hi); Py_XDECREF(lo); Py_XDECREF(mask);
    return rc;
}

static int64_t as_i64(PyObject *o, int *err) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) *err = 1;
    return v;
}

static int texts_from(PyObject *seq, Text *out, Py_ssize_t n, const char *what) {
    PyObject *f = PySequence_Fast(seq, what);
    if (!f) return -1;
    if (PySequence_Fast_GET_SIZE(f) != n) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items expected", what, n);
        Py_DECREF(f);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (text_set(&out[i], PySequence_Fast_GET_ITEM(f, i)) < 0) { Py_DECREF(f); return -1; }
    Py_DECREF(f);
    return 0;
}

/* A sequence of exactly n objects, kept (the codes a stats row is made of). */
static int objects_from(PyObject *seq, PyObject **slot, Py_ssize_t n, const char *what) {
    PyObject *t = PySequence_Tuple(seq);
    if (!t) return -1;
    if (PyTuple_GET_SIZE(t) != n) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items expected", what, n);
        Py_DECREF(t);
        return -1;
    }
    Py_XSETREF(*slot, t);
    return 0;
}

/* Engine(**contract.engine_words(...) and options): the words come translated, whole. */
/* The notations this engine writes itself (contract.Style; the class attribute ``styles``)
 * and those it writes in colour (``colors``); any other is handed to a Python view. */
static const int STYLES[] = {STYLE_WIRESHARK, STYLE_JSON, STYLE_TCPDUMP};
/* the notations it writes in colour itself (``colors``); JSON has no colour */
static const int COLORED[] = {STYLE_WIRESHARK, STYLE_TCPDUMP};

static int style_rendered(int style) {
    for (size_t i = 0; i < sizeof STYLES / sizeof STYLES[0]; i++)
        if (STYLES[i] == style) return 1;
    return 0;
}

static int style_colored(int style) {
    for (size_t i = 0; i < sizeof COLORED / sizeof COLORED[0]; i++)
        if (COLORED[i] == style) return 1;
    return 0;
}

/* frozenset(codes) of a C array of contract.Style numbers */
static PyObject *style_set(const int *codes, size_t n) {
    PyObject *set = PySet_New(NULL);
    for (size_t i = 0; set && i < n; i++) {
        PyObject *code = PyLong_FromLong(codes[i]);
        if (!code || PySet_Add(set, code) < 0) Py_CLEAR(set);
        Py_XDECREF(code);
    }
    PyObject *frozen = set ? PyFrozenSet_New(set) : NULL;
    Py_XDECREF(set);
    return frozen;
}

static int Engine_init(Engine *e, PyObject *args, PyObject *kw) {
    static char *names[] = {"analyze", "keep", "port", "limit", "hex", "ws_flags", "ace_flags",
                            "phases", "note_words", "templates", "note_text", "row", "kinds",
                            "roles", "outcomes", "render", "target_proto", "target_stream",
                            "view", "clock", "phase_codes", "notes_of", "annotated", "on_forget",
                            "style", "color", "explain", "rows_in_memory",
                            "tcpdump_window", NULL};
    int analyze, keep, hex, render = 1, target_proto = -1, style = STYLE_WIRESHARK;
    long long target_stream = -1, rows_in_memory = 0, tcpdump_window = 0;
    long long port, limit;
    PyObject *ws, *ace, *phases, *notes, *templates, *note_text, *row, *kinds, *roles, *outcomes;
    PyObject *view = Py_None, *clock = Py_None, *phase_codes = Py_None, *notes_of = Py_None,
             *annotated = Py_None, *on_forget = Py_None, *color_table = Py_False,
             *explain = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ppLLpOOOOOOOOOO|piLOOOOOOiOOLL", names, &analyze,
                                     &keep, &port, &limit, &hex, &ws, &ace, &phases, &notes,
                                     &templates, &note_text, &row, &kinds, &roles, &outcomes,
                                     &render, &target_proto, &target_stream, &view, &clock,
                                     &phase_codes, &notes_of, &annotated, &on_forget, &style,
                                     &color_table, &explain, &rows_in_memory,
                                     &tcpdump_window))
        return -1;
    if (tcpdump_window < 0 || tcpdump_window > 0x7FFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "tcpdump_window: 0 (the default) to 2**31 - 1 expected");
        return -1;
    }
    e->tcpdump_window = tcpdump_window ? tcpdump_window : TCPDUMP_WINDOW;
    if (rows_in_memory < 0) {
        PyErr_SetString(PyExc_ValueError, "rows_in_memory: 0 or more expected");
        return -1;
    }
    e->rows_in_memory = rows_in_memory;
    for (int k = 0; k < 3; k++) { /* the budget set once: a second __init__ keeps the first */
        RowTable *t = k < 2 ? &e->rows[k] : &e->note_pool;
        if (keep && !t->spill && !t->n_chunks &&
            spill_setup(t, k < 2 ? sizeof(Row) : sizeof(uint32_t), rows_in_memory) < 0)
            return -1;
    }
    int color = PyObject_IsTrue(color_table);
    if (color < 0) return -1;
    if (!style_rendered(style) || (color && !style_colored(style))) {
        PyErr_Format(PyExc_ValueError, "style %d%s: not written by this engine (see styles)",
                     style, color ? " with colour" : "");
        return -1;
    }
    if (on_forget != Py_None) {
        if (!PyCallable_Check(on_forget)) {
            PyErr_SetString(PyExc_TypeError, "on_forget: a callable expected");
            return -1;
        }
        Py_INCREF(on_forget);
        Py_XSETREF(e->on_forget, on_forget);
    }
    if (view != Py_None) {
        if (!PyCallable_Check(view) || clock == Py_None || !PyCallable_Check(notes_of) ||
            !PyType_Check(annotated) || !PyType_IsSubtype((PyTypeObject *)annotated, &PyTuple_Type)) {
            PyErr_SetString(PyExc_TypeError, "view: a callable with its clock, notes_of and "
                                             "annotated (a NamedTuple) expected");
            return -1;
        }
        if (objects_from(phase_codes, &e->phase_codes, PH_COUNT, "phase_codes") < 0) return -1;
        if (packet_types_load() < 0) return -1; /* the Packet it is handed (_speedups_packet.h) */
        Py_INCREF(view);
        Py_XSETREF(e->view, view);
        Py_INCREF(clock);
        Py_XSETREF(e->clock, clock);
        Py_INCREF(notes_of);
        Py_XSETREF(e->notes_of, notes_of);
        Py_INCREF(annotated);
        Py_XSETREF(e->annotated, annotated);
    }
    if (!PyCallable_Check(note_text) || !PyType_Check(row) ||
        !PyType_IsSubtype((PyTypeObject *)row, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "note_text: a callable, row: a NamedTuple expected");
        return -1;
    }
    PyObject *os = PyImport_ImportModule("os");
    PyObject *random = os ? PyObject_CallMethod(os, "urandom", "i", 16) : NULL;
    Py_XDECREF(os);
    if (!random) return -1;
    if (!PyBytes_Check(random) || PyBytes_GET_SIZE(random) != 16) {
        Py_DECREF(random);
        PyErr_SetString(PyExc_RuntimeError, "urandom(16) gave no 16 bytes");
        return -1;
    }
    memcpy(e->hash_key, PyBytes_AS_STRING(random), 16);
    Py_DECREF(random);
    PyMem_Free(e->memo); /* hashes made with another key: none kept */
    e->memo = PyMem_Calloc(MEMO, sizeof(Memo)); /* NULL: every key hashed, as without */
    Py_INCREF(note_text);
    Py_XSETREF(e->note_text, note_text);
    Py_INCREF(row);
    Py_XSETREF(e->row, row);
    if (objects_from(kinds, &e->kinds, N_KINDS, "kinds") < 0 ||
        objects_from(roles, &e->roles, ROLES_COUNT, "roles") < 0 ||
        objects_from(outcomes, &e->outcomes, END_COUNT, "outcomes") < 0)
        return -1;
    e->analyze = analyze;
    e->keep = keep;
    e->port = port;
    e->limit = limit;
    e->hex = hex;
    if (texts_from(ws, e->ws_flags, 512, "ws_flags") < 0) return -1;
    if (texts_from(ace, e->ace_flags, 512, "ace_flags") < 0) return -1;
    if (texts_from(phases, e->phases, PH_COUNT, "phases") < 0) return -1;
    if (texts_from(notes, e->note_words, N_KINDS, "note_words") < 0) return -1;
    PyObject *f = PySequence_Fast(templates, "templates");
    if (!f) return -1;
    if (PySequence_Fast_GET_SIZE(f) != T_COUNT) {
        PyErr_Format(PyExc_ValueError, "templates: %d items expected", T_COUNT);
        Py_DECREF(f);
        return -1;
    }
    for (int i = 0; i < T_COUNT; i++)
        if (template_set(&e->templates[i], PySequence_Fast_GET_ITEM(f, i), TEMPLATE_PLACES[i]) < 0) {
            Py_DECREF(f);
            return -1;
        }
    Py_DECREF(f);
    if (style == STYLE_JSON && render && view == Py_None && json_init(e, phase_codes, notes_of) < 0)
        return -1;
    e->render = render;
    e->style = style;
    if (color_set(e, color_table) < 0) return -1;
    if (style == STYLE_TCPDUMP) tzset(); /* the TZ of now, as time.tzset() would read it */
    if (explain != Py_None) { /* --explain's sentences, under either text notation's lines */
        if (style == STYLE_JSON || view != Py_None || !render) {
            PyErr_SetString(PyExc_ValueError,
                            "explain: with the Wireshark-style or tcpdump text only");
            return -1;
        }
        if (explain_init(e, explain) < 0) return -1;
    }
    e->target_proto = target_proto;
    e->target_stream = target_stream;
    e->first = e->last = e->clock_first = -1;
    return 0;
}

static void Engine_dealloc(Engine *e) {
    tcpdump_free(e->tcpdump);
    explain_free(e->explain);
    cols_free(e);
    for (size_t i = 0; i < e->nbuckets; i++)
        if (e->table[i].conv) conv_unref(e->table[i].conv);
    PyMem_Free(e->table_mem);
    PyMem_Free(e->memo);
    Ring *rings[2] = {&e->ended, &e->open};
    for (int k = 0; k < 2; k++) {
        Ring *r = rings[k];
        for (size_t i = 0; i < r->len; i++) conv_unref(r->items[(r->head + i) % r->cap]);
        PyMem_Free(r->items);
    }
    for (int k = 0; k < 2; k++) {
        rows_free(&e->rows[k]);
    }
    rows_free(&e->note_pool);
    for (int i = 0; i < 512; i++) { PyMem_Free(e->ws_flags[i].s); PyMem_Free(e->ace_flags[i].s); }
    for (int i = 0; i < PH_COUNT; i++) PyMem_Free(e->phases[i].s);
    for (int i = 0; i < N_KINDS; i++) PyMem_Free(e->note_words[i].s);
    for (int i = 0; i < T_COUNT; i++) template_free(&e->templates[i]);
    color_free(e);
    Py_CLEAR(e->row);
    Py_CLEAR(e->kinds);
    Py_CLEAR(e->roles);
    Py_CLEAR(e->outcomes);
    Py_CLEAR(e->view);
    Py_CLEAR(e->on_forget);
    Py_CLEAR(e->clock);
    Py_CLEAR(e->phase_codes);
    Py_CLEAR(e->notes_of);
    Py_CLEAR(e->annotated);
    PyMem_Free(e->out.p);
    Py_CLEAR(e->note_text);
    json_free(e->json);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static int check_ready(Engine *e) {
    if (!e->ws_flags[0].s) {
        PyErr_SetString(PyExc_RuntimeError, "Engine not initialised");
        return -1;
    }
    return 0;
}

/* pcap(buf, pos, linktype, frac_ns, record_limit, big_endian) -> (pos, count)
 * Consumes the plain records from pos that this path decodes; stops at the first other. */
static PyObject *Engine_pcap(Engine *e, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos;
    long long linktype, mult, limit;
    int big;
    if (check_ready(e) < 0) return NULL;
    if (!PyArg_ParseTuple(args, "y*nLLLp", &view, &pos, &linktype, &mult, &limit, &big))
        return NULL;
    const uint8_t *buf = view.buf;
    Py_ssize_t end = view.len, count = 0;
    int64_t frac_end = mult ? NS_PER_SEC / mult : 0;
    if (pos < 0) pos = end;
    while (!e->done && !e->handover && !cols_full(e) && end - pos >= 16) {
        const uint8_t *h = buf + pos;
        uint32_t sec = big ? be32(h) : le32(h), frac = big ? be32(h + 4) : le32(h + 4);
        uint32_t incl = big ? be32(h + 8) : le32(h + 8), orig = big ? be32(h + 12) : le32(h + 12);
        if (incl > limit || incl > orig || frac >= frac_end) break;
        if ((Py_ssize_t)incl > end - pos - 16) break;
        Pkt p;
        p.ts = (i128)sec * NS_PER_SEC + (i128)frac * mult;
        p.wirelen = orig;
        if (!decode_fast(h + 16, incl, linktype, &p)) break;
        int rc = process(e, &p);
        if (rc < 0) { PyBuffer_Release(&view); return NULL; }
        if (rc) break;
        count++;
        pos += 16 + incl;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("nn", pos, count);
}

typedef struct {
    int64_t linktype, snaplen, mult, div;
    i128 offset;
    int ok;
} Iface;

/* pcapng(buf, pos, interfaces, big_endian) -> (pos, count): plain EPBs, as
 * CaptureReader._plain_epbs takes them. */
static PyObject *Engine_pcapng(Engine *e, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos;
    PyObject *ifaces;
    int big;
    if (check_ready(e) < 0) return NULL;
    if (!PyArg_ParseTuple(args, "y*nO!p", &view, &pos, &PyList_Type, &ifaces, &big)) return NULL;
    const uint8_t *buf = view.buf;
    Py_ssize_t end = view.len, count = 0;
    Py_ssize_t nif = PyList_GET_SIZE(ifaces);
    Iface cache[16];
    int ncache = nif < 16 ? (int)nif : 16;
    for (int i = 0; i < ncache; i++) {
        PyObject *t = PyList_GET_ITEM(ifaces, i);
        cache[i].ok = 0;
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < INTERFACE_FIELDS) continue;
        int err = 0, ov = 0;
        cache[i].linktype = as_i64(PyTuple_GET_ITEM(t, INTERFACE_LINKTYPE), &err);
        cache[i].snaplen = as_i64(PyTuple_GET_ITEM(t, INTERFACE_SNAPLEN), &err);
        cache[i].mult = as_i64(PyTuple_GET_ITEM(t, INTERFACE_MULT), &err);
        cache[i].div = as_i64(PyTuple_GET_ITEM(t, INTERFACE_DIV), &err);
        long long off = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(t, INTERFACE_OFFSET_NS), &ov);
        if (err || ov || (off == -1 && PyErr_Occurred())) { PyErr_Clear(); continue; }
        cache[i].offset = off;
        cache[i].ok = cache[i].mult > 0 && cache[i].mult <= NS_PER_SEC && cache[i].div > 0;
    }
    if (pos < 0) pos = end;
    while (!e->done && !e->handover && !cols_full(e) && end - pos >= 32) {
        const uint8_t *h = buf + pos;
#define U32(q) (big ? be32(q) : le32(q))
        uint32_t btype = U32(h), blen = U32(h + 4);
        if (btype != 6 || blen > end - pos || blen < 32 || (blen & 3)) break;
        uint32_t iface = U32(h + 8), high = U32(h + 12), low = U32(h + 16);
        uint32_t caplen = U32(h + 20), wirelen = U32(h + 24);
        if (iface >= (uint32_t)nif || caplen > blen - 32 || caplen > wirelen ||
            U32(h + blen - 4) != blen)
            break;
        if (iface >= (uint32_t)ncache || !cache[iface].ok) break;
        Iface *f = &cache[iface];
        if (f->snaplen && caplen > f->snaplen) break;
#undef U32
        Pkt p;
        u128 raw = ((u128)high << 32 | low) * (u128)f->mult;
        p.ts = (i128)(raw / (u128)f->div) + f->offset;
        p.wirelen = wirelen;
        if (!decode_fast(h + 28, caplen, f->linktype, &p)) break;
        int rc = process(e, &p);
        if (rc < 0) { PyBuffer_Release(&view); return NULL; }
        if (rc) break;
        count++;
        pos += blen;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("nn", pos, count);
}

/* frame(raw_frame) -> bool: the frame decoded and processed here; False: not touched. */
static PyObject *Engine_frame(Engine *e, PyObject *frame) {
    if (check_ready(e) < 0) return NULL;
    if (!PyTuple_Check(frame) || PyTuple_GET_SIZE(frame) < FRAME_INTERFACE) {
        PyErr_SetString(PyExc_TypeError, "frame: a RawFrame expected");
        return NULL;
    }
    PyObject *data = PyTuple_GET_ITEM(frame, FRAME_DATA);
    if (!PyBytes_Check(data)) Py_RETURN_FALSE;
    int err = 0;
    int64_t linktype = as_i64(PyTuple_GET_ITEM(frame, FRAME_LINKTYPE), &err);
    int64_t wirelen = as_i64(PyTuple_GET_ITEM(frame, FRAME_WIRELEN), &err);
    if (err) { PyErr_Clear(); Py_RETURN_FALSE; }
    Pkt p;
    if (i128_from_py(PyTuple_GET_ITEM(frame, FRAME_TS_NS), &p.ts) < 0) { PyErr_Clear(); Py_RETURN_FALSE; }
    p.wirelen = wirelen;
    if (e->handover || !decode_fast((const uint8_t *)PyBytes_AS_STRING(data),
                                    PyBytes_GET_SIZE(data), linktype, &p))
        Py_RETURN_FALSE;
    p.data_obj = data;
    int rc = process(e, &p);
    if (rc < 0) return NULL;
    return PyBool_FromLong(rc == 0);
}

/* packet(p, notes, where, proto_name[, info, quoted]): a Packet decoded by sockcap.decode,
 * filed and rendered here; ``notes`` are its notes (put in words by note_text only if the
 * packet is shown, as the timeline does), ``where`` and ``proto_name``
 * the timeline's words for a packet outside any conversation (else None); an ICMP
 * message's ``info`` (its Info text, else None) and, for an error quoting a datagram,
 * ``quoted`` = (note kind, proto, src, sport, dst, dport): the note is counted in that
 * datagram's conversation. */
static PyObject *Engine_packet(Engine *e, PyObject *args) {
    PyObject *pk, *notes, *where, *proto_name, *info = Py_None, *quoted = Py_None;
    if (check_ready(e) < 0) return NULL;
    if (!PyArg_ParseTuple(args, "O!O!OO|OO", &PyTuple_Type, &pk, &PyTuple_Type, &notes, &where,
                          &proto_name, &info, &quoted))
        return NULL;
    if (PyTuple_GET_SIZE(pk) < PACKET_FIELDS) { PyErr_SetString(PyExc_TypeError, "a Packet expected"); return NULL; }
    Pkt p;
    memset(&p, 0, sizeof p);
    int err = 0;
#define F(name) PyTuple_GET_ITEM(pk, PACKET_##name) /* a Packet's field, by name */
    if (i128_from_py(F(TS_NS), &p.ts) < 0) return NULL;
    p.wirelen = as_i64(F(WIRELEN), &err);
    PyObject *data = F(DATA);
    if (!PyBytes_Check(data)) { PyErr_SetString(PyExc_TypeError, "data: bytes expected"); return NULL; }
    p.data = (const uint8_t *)PyBytes_AS_STRING(data);
    p.caplen = PyBytes_GET_SIZE(data);
    p.proto = (int)as_i64(F(PROTO), &err);
    p.sport = as_i64(F(SPORT), &err);
    p.dport = as_i64(F(DPORT), &err);
    p.seq = as_i64(F(SEQ), &err);
    p.ack = as_i64(F(ACK), &err);
    p.flags = (int)(as_i64(F(FLAGS), &err) & 0x1FF);
    p.window = as_i64(F(WINDOW), &err);
    p.payload_off = as_i64(F(PAYLOAD_OFF), &err);
    p.payload_len = as_i64(F(PAYLOAD_LEN), &err);
    p.mss = -1;
    p.fragment = (char)PyObject_IsTrue(F(FRAGMENT));
    if (err || p.fragment < 0) return NULL;
    if (p.payload_off < 0) p.payload_off = 0;
    PyObject *trunc = F(TRUNCATED);
    if (!PyUnicode_Check(trunc)) { PyErr_SetString(PyExc_TypeError, "truncated: str expected"); return NULL; }
    p.trunc = PyUnicode_AsUTF8AndSize(trunc, &p.trunc_n);
    if (!p.trunc) return NULL;
    p.packet = pk;
    p.notes = notes;
    p.where = where;
    p.proto_name = proto_name;
    if (info != Py_None) {
        if (!PyUnicode_Check(info)) { PyErr_SetString(PyExc_TypeError, "info: str expected"); return NULL; }
        p.info = info;
    }
    if (quoted != Py_None) {
        const char *qsrc, *qdst;
        int kind, qproto;
        long long qsport, qdport;
        if (!PyArg_ParseTuple(quoted, "iisLsL", &kind, &qproto, &qsrc, &qsport, &qdst, &qdport))
            return NULL;
        if (kind < 0 || kind >= N_KINDS) { PyErr_SetString(PyExc_ValueError, "note kind"); return NULL; }
        p.quoted_kind = kind + 1;
        p.quoted_proto = qproto;
        p.quoted_sport = qsport;
        p.quoted_dport = qdport;
        p.quoted_fam = strchr(qsrc, ':') ? 6 : 4;
        if (inet_pton(p.quoted_fam == 6 ? AF_INET6 : AF_INET, qsrc, p.quoted_src) != 1 ||
            inet_pton(p.quoted_fam == 6 ? AF_INET6 : AF_INET, qdst, p.quoted_dst) != 1)
            p.quoted_sport = -1; /* no address of a conversation: counted in the totals */
    }
    int located = p.sport >= 0 && (p.proto == 6 || p.proto == 17);
    if (located) {
        for (int k = 0; k < 2; k++) {
            PyObject *s = k ? F(DST) : F(SRC);
            const char *txt = PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
            if (!txt) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "address"); return NULL; }
            uint8_t *a = k ? p.dst : p.src;
            if (strchr(txt, ':')) { p.fam = 6; if (inet_pton(AF_INET6, txt, a) != 1) goto bad; }
            else { p.fam = 4; if (inet_pton(AF_INET, txt, a) != 1) goto bad; }
        }
        PyObject *opts = F(OPTIONS);
        if (!PyTuple_Check(opts)) { PyErr_SetString(PyExc_TypeError, "options"); return NULL; }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(opts); i++) {
            PyObject *o = PyTuple_GET_ITEM(opts, i);
            if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) < OPTION_FIELDS ||
                !PyBytes_Check(PyTuple_GET_ITEM(o, OPTION_VALUE)))
                continue;
            long kind = PyLong_AsLong(PyTuple_GET_ITEM(o, OPTION_KIND));
            if (kind == -1 && PyErr_Occurred()) return NULL;
            const uint8_t *v = (const uint8_t *)PyBytes_AS_STRING(PyTuple_GET_ITEM(o, OPTION_VALUE));
            Py_ssize_t n = PyBytes_GET_SIZE(PyTuple_GET_ITEM(o, OPTION_VALUE));
            if (kind == OPT_WSCALE && n == 1) { p.has_wscale = 1; p.wscale = v[0]; }
            else if (kind == OPT_MSS && n == 2) p.mss = be16(v);
            else if (kind == OPT_MPTCP) {
                p.mptcp = 1;
                if (n > 1 && (v[0] >> 4) == MPTCP_DSS && (v[1] & MPTCP_DSS_MAPPING)) p.mptcp_maps++;
            }
        }
    } else if (e->render && (!PyUnicode_Check(where) || !PyUnicode_Check(proto_name))) {
        PyErr_SetString(PyExc_TypeError, "where and proto_name: str expected");
        return NULL;
    }
#undef F
    if (e->handover) Py_RETURN_NONE;
    if (process(e, &p) < 0) return NULL;
    Py_RETURN_NONE;
bad:
    PyErr_SetString(PyExc_ValueError, "address text not understood");
    return NULL;
}

/* take() -> bytes: the text rendered since the last call. */
static PyObject *Engine_take(Engine *e, PyObject *unused) {
    return buf_take(&e->out);
}

static PyObject *i128_to_py(i128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return PyLong_FromLongLong((long long)v);
    int neg = v < 0;
    u128 u = neg ? (u128)0 - (u128)v : (u128)v;
    PyObject *hi = PyLong_FromUnsignedLongLong((unsigned long long)(u >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)u);
    PyObject *sh = PyLong_FromLong(64), *x = NULL, *y = NULL, *r = NULL;
    if (hi && lo && sh) x = PyNumber_Lshift(hi, sh);
    if (x) y = PyNumber_Or(x, lo);
    if (y) r = neg ? PyNumber_Negative(y) : (Py_INCREF(y), y);
    Py_XDECREF(hi); Py_XDECREF(lo); Py_XDECREF(sh); Py_XDECREF(x); Py_XDECREF(y);
    return r;
}

/* state() -> dict: count, shown, first_ts, last_ts, done, note_counts: [(kind, n)] in
 * the order the kinds were first seen (each kind the code handed in, a Note) */
static PyObject *Engine_state(Engine *e, PyObject *unused) {
    PyObject *counts = PyList_New(e->n_notes);
    if (!counts) return NULL;
    for (int i = 0; i < e->n_notes; i++) {
        int k = e->note_order[i];
        PyObject *pair = Py_BuildValue("OK", PyTuple_GET_ITEM(e->kinds, k),
                                       (unsigned long long)e->note_counts[k]);
        if (!pair) { Py_DECREF(counts); return NULL; }
        PyList_SET_ITEM(counts, i, pair);
    }
    PyObject *first = i128_to_py(e->clock_first), *last = i128_to_py(e->last);
    PyObject *r = NULL;
    if (first && last)
        r = Py_BuildValue("{s:L,s:L,s:O,s:O,s:O,s:N,s:(LL),s:N}", "count", (long long)e->count,
                          "shown", (long long)e->shown, "first_ts", first, "last_ts", last,
                          "done", e->done ? Py_True : Py_False, "note_counts", counts,
                          "streams", (long long)e->streams[0], (long long)e->streams[1],
                          "input_first_ts", i128_to_py(e->first));
    else
        Py_DECREF(counts);
    Py_XDECREF(first);
    Py_XDECREF(last);
    return r;
}

static PyObject *addr_text(const Endpoint *ep) {
    char addr[INET6_ADDRSTRLEN];
    if (ep->fam == 6) inet_ntop(AF_INET6, ep->addr, addr, sizeof addr);
    else snprintf(addr, sizeof addr, "%u.%u.%u.%u", ep->addr[0], ep->addr[1], ep->addr[2], ep->addr[3]);
    return PyUnicode_FromString(addr);
}

static int end_state(const Conv *c) {
    if (c->proto != 6) return END_NONE;
    if (c->refused) return END_REFUSED;
    if (c->reset) return END_RESET;
    if (c->syn_ts >= 0 && c->synack_ts < 0 && !c->dirs[1].packets) return END_UNANSWERED;
    if (c->dirs[0].fin && c->dirs[1].fin) return END_CLOSED;
    return c->closing ? END_HALF_CLOSED : END_OPEN;
}

/* (a, b) of two int64 */
static PyObject *pair_ll(int64_t a, int64_t b) { return Py_BuildValue("(LL)", (long long)a, (long long)b); }

/* A row's address as the decoder writes it */
static PyObject *row_addr(int fam, const uint8_t *addr) {
    Endpoint ep = {fam, {0}, 0};
    memcpy(ep.addr, addr, 16);
    return addr_text(&ep);
}

/* The stats row: a ConversationStats, each field set by its name's index (ROW_*,
 * generated from ConversationStats._fields), its codes the ones handed in. */
static PyObject *conv_row(Engine *e, const Row *c, int udp, size_t stream) {
    PyObject *t = PyTuple_New(ROW_FIELDS);
    if (!t) return NULL;
    PyObject *notes = PyDict_New();
    PyTuple_SET_ITEM(t, ROW_NOTES, notes);
    size_t at = c->notes ? (size_t)c->notes - 1 : 0;
    uint32_t many = 0, k, count;
    if (notes && c->notes && pool_get(e, at, &many) < 0) goto fail;
    for (uint32_t i = 0; notes && i < many; i++) {
        if (pool_get(e, at + 1 + 2 * i, &k) < 0 || pool_get(e, at + 2 + 2 * i, &count) < 0)
            goto fail;
        PyObject *n = PyLong_FromUnsignedLong(count);
        if (!n || PyDict_SetItem(notes, PyTuple_GET_ITEM(e->kinds, k), n) < 0) { Py_XDECREF(n); goto fail; }
        Py_DECREF(n);
    }
    PyTuple_SET_ITEM(t, ROW_PROTO, PyUnicode_FromString(udp ? "UDP" : "TCP"));
    PyTuple_SET_ITEM(t, ROW_STREAM, PyLong_FromSize_t(stream));
    PyObject *ca = row_addr(c->fam, c->client), *sa = row_addr(c->fam, c->server);
    PyTuple_SET_ITEM(t, ROW_CLIENT, ca ? Py_BuildValue("(OL)", ca, (long long)c->cport) : NULL);
    PyTuple_SET_ITEM(t, ROW_SERVER, sa ? Py_BuildValue("(OL)", sa, (long long)c->sport) : NULL);
    Py_XDECREF(ca);
    Py_XDECREF(sa);
    PyObject *roles = PyTuple_GET_ITEM(e->roles, c->roles), *ended = PyTuple_GET_ITEM(e->outcomes, c->ended);
    Py_INCREF(roles);
    Py_INCREF(ended);
    PyTuple_SET_ITEM(t, ROW_ROLES, roles);
    PyTuple_SET_ITEM(t, ROW_ENDED, ended);
    PyTuple_SET_ITEM(t, ROW_PACKETS, pair_ll(c->packets[0], c->packets[1]));
    PyTuple_SET_ITEM(t, ROW_BYTES, pair_ll(c->bytes[0], c->bytes[1]));
    PyTuple_SET_ITEM(t, ROW_PAYLOAD, pair_ll(c->payload[0], c->payload[1]));
    PyTuple_SET_ITEM(t, ROW_START_NS, i128_to_py(c->start));
    PyTuple_SET_ITEM(t, ROW_DURATION_NS, i128_to_py(c->duration));
    PyTuple_SET_ITEM(t, ROW_IRTT_NS, i128_to_py(c->irtt));
    for (int f = 0; f < ROW_FIELDS; f++)
        if (!PyTuple_GET_ITEM(t, f)) goto fail;
    return t;
fail:
    Py_DECREF(t);
    return NULL;
}

/* The rows of the conversations still in the queues (made once, when the first row is
 * read: the capture is done by then). Every conversation is in one queue at least
 * until it is forgotten, so with the rows of those forgotten every stream has its row. */
static int rows_finish(Engine *e) {
    if (e->rows_done) return 0;
    Ring *rings[2] = {&e->ended, &e->open};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < rings[k]->len; i++)
            if (row_keep(e, rings[k]->items[(rings[k]->head + i) % rings[k]->cap]) < 0) return -1;
    e->rows_done = 1;
    return 0;
}

/* conversation(i) -> ConversationStats: row i (keep=True), TCP then UDP, each by stream.
 * Rows are made when asked for, so a table of 100k conversations need not be held. */
static PyObject *Engine_conversation(Engine *e, PyObject *arg) {
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (!e->keep || i < 0 || i >= e->streams[0] + e->streams[1]) {
        PyErr_SetString(PyExc_IndexError, "conversation index out of range");
        return NULL;
    }
    if (rows_finish(e) < 0) return NULL;
    int k = i < e->streams[0] ? 0 : 1;
    size_t s = (size_t)(k ? i - e->streams[0] : i);
    const Row *r = row_at(&e->rows[k], sizeof(Row), (int64_t)s);
    if (!r && PyErr_Occurred()) return NULL; /* a chunk on disk not read back */
    if (!r || !r->filled) {
        PyErr_SetString(PyExc_RuntimeError, "no row for this conversation");
        return NULL;
    }
    PyObject *fields = conv_row(e, r, k, s);
    if (!fields) return NULL;
    PyObject *args = PyTuple_Pack(1, fields);
    Py_DECREF(fields);
    if (!args) return NULL;
    /* tuple.__new__(ConversationStats, fields): the record without a Python-level call */
    PyObject *row = PyTuple_Type.tp_new((PyTypeObject *)e->row, args, NULL);
    Py_DECREF(args);
    return row;
}

static PyObject *Engine_conversation_count(Engine *e, PyObject *unused) {
    return PyLong_FromLongLong(e->keep ? (long long)(e->streams[0] + e->streams[1]) : 0);
}

/* ---------------------------------------------------------------- the hand-over to a Python view
 *
 * A view this file does not write (JSON, tcpdump's notation, --filters, --explain, colour,
 * follow's sections) is handed each packet here, after this file has filed and annotated
 * it, as the pure twin hands it: an Annotated(no, packet, conv, from_client, seq, ack, win,
 * phase, notes) of sockcap.analysis.conversation, its packet the Python Packet the engine
 * was given (Engine.packet), its notes the decoder's followed by the analysis' (made by
 * sockcap.analysis.expert.notes_of, the reference), its phase the Phase code. Its ``conv``
 * is a Conversation: a live read-only view of this file's conversation (ConvView below),
 * with every attribute of sockcap.analysis.conversation.Conversation, ``dirs`` a pair of
 * Direction views, one object per conversation while the engine or anything else holds it
 * (views compare conversations by identity and key caches by them). The view returns the packet's
 * text (str, put in the buffer with a newline) or None (it wrote the packet itself).
 *
 * This is the seam where a view moves into C (issue 23): a view this file learns to write
 * stops being handed over; the command's loop (EngineRun) does not change. */

enum { K_I64, K_I128, K_CHAR, K_INT };
typedef struct { size_t off; int kind; } Field;

static PyObject *value_at(const char *base, const Field *f) {
    const char *q = base + f->off;
    switch (f->kind) {
    case K_I64: return PyLong_FromLongLong((long long)*(const int64_t *)q);
    case K_I128: return i128_to_py(*(const i128 *)q);
    case K_CHAR: return PyBool_FromLong(*q);
    default: return PyLong_FromLong(*(const int *)q);
    }
}

typedef struct {
    PyObject_HEAD
    PyObject *roles, *outcomes, *kinds; /* the engine's codes (not the engine: a view
                                           that keeps conversations would make a cycle) */
    Conv *conv;     /* one of conv->refs: it outlives the engine's table while viewed */
} ConvView;

typedef struct {
    PyObject_HEAD
    ConvView *owner;
    int index; /* 0: client -> server */
} DirView;

static PyTypeObject ConvViewType, DirViewType;

static void ConvView_dealloc(ConvView *v) {
    if (v->conv) {
        if (v->conv->view == (PyObject *)v) v->conv->view = NULL;
        conv_unref(v->conv);
    }
    Py_XDECREF(v->roles);
    Py_XDECREF(v->outcomes);
    Py_XDECREF(v->kinds);
    PyObject_Free(v);
}

static void DirView_dealloc(DirView *v) {
    Py_XDECREF(v->owner);
    PyObject_Free(v);
}

/* The one view of conversation c (a new reference). The conversation keeps its view for
 * as long as the engine keeps the conversation, so a view that keys its state by the
 * conversation's identity (follow's sections, the explainer) sees one object per
 * conversation from its first packet to its last; a view kept by Python after that
 * keeps the conversation alive in turn (conv_unref). */
static PyObject *conv_view(Engine *e, Conv *c) {
    if (c->view) {
        Py_INCREF(c->view);
        return c->view;
    }
    ConvView *v = PyObject_New(ConvView, &ConvViewType);
    if (!v) return NULL;
    Py_INCREF(e->roles);
    v->roles = e->roles;
    Py_INCREF(e->outcomes);
    v->outcomes = e->outcomes;
    Py_INCREF(e->kinds);
    v->kinds = e->kinds;
    v->conv = c;
    c->refs++;
    c->view = (PyObject *)v; /* the conversation's reference */
    Py_INCREF(v);            /* the caller's */
    return (PyObject *)v;
}

static PyObject *ConvView_field(ConvView *v, void *f) { return value_at((const char *)v->conv, f); }
static PyObject *DirView_field(DirView *v, void *f) {
    return value_at((const char *)&v->owner->conv->dirs[v->index], f);
}

static PyObject *endpoint_pair(const Endpoint *ep) {
    PyObject *addr = addr_text(ep);
    if (!addr) return NULL;
    return Py_BuildValue("(NL)", addr, (long long)ep->port);
}

static PyObject *ConvView_client(ConvView *v, void *u) { return endpoint_pair(&v->conv->client); }
static PyObject *ConvView_server(ConvView *v, void *u) { return endpoint_pair(&v->conv->server); }

static PyObject *ConvView_roles(ConvView *v, void *u) {
    PyObject *r = PyTuple_GET_ITEM(v->roles, v->conv->roles);
    Py_INCREF(r);
    return r;
}

static PyObject *ConvView_end_state(ConvView *v, void *u) {
    PyObject *r = PyTuple_GET_ITEM(v->outcomes, end_state(v->conv));
    Py_INCREF(r);
    return r;
}

static PyObject *ConvView_ended(ConvView *v, void *u) {
    const Conv *c = v->conv;
    return PyBool_FromLong(c->reset || (c->dirs[0].fin && c->dirs[1].fin));
}

/* Conversation.irtt_ns: the first RTT when the other side answered, else -1. */
static PyObject *ConvView_irtt(ConvView *v, void *u) {
    const Conv *c = v->conv;
    int answered = c->synack_ts >= 0 || c->rtt_answered;
    return i128_to_py(c->first_rtt > 0 && answered ? c->first_rtt : -1);
}

static PyObject *ConvView_dirs(ConvView *v, void *u) {
    PyObject *pair = PyTuple_New(2);
    for (int i = 0; pair && i < 2; i++) {
        DirView *d = PyObject_New(DirView, &DirViewType);
        if (!d) { Py_CLEAR(pair); break; }
        Py_INCREF(v);
        d->owner = v;
        d->index = i;
        PyTuple_SET_ITEM(pair, i, (PyObject *)d);
    }
    return pair;
}

/* {Note: count} in the order first seen, or None before any (as Python's). */
static PyObject *ConvView_note_counts(ConvView *v, void *u) {
    const Conv *c = v->conv;
    if (!c->n_notes) Py_RETURN_NONE;
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < c->n_notes; i++) {
        int k = c->note_order[i];
        PyObject *n = PyLong_FromUnsignedLong(c->note_counts[k]);
        if (!n || PyDict_SetItem(d, PyTuple_GET_ITEM(v->kinds, k), n) < 0) Py_CLEAR(d);
        Py_XDECREF(n);
    }
    return d;
}

#define CONV_FIELD(name, kind) \
    {#name, (getter)ConvView_field, NULL, NULL, (void *)&(const Field){offsetof(Conv, name), kind}}
#define DIR_FIELD(name, kind) \
    {#name, (getter)DirView_field, NULL, NULL, (void *)&(const Field){offsetof(Dir, name), kind}}

static PyGetSetDef ConvView_getset[] = {
    CONV_FIELD(stream, K_I64), CONV_FIELD(proto, K_INT),
    CONV_FIELD(first_ts, K_I128), CONV_FIELD(last_ts, K_I128), CONV_FIELD(syn_ts, K_I128),
    CONV_FIELD(synack_ts, K_I128), CONV_FIELD(ack_ts, K_I128), CONV_FIELD(mru_syn_ts, K_I128),
    CONV_FIELD(first_rtt, K_I128), CONV_FIELD(handshake_done, K_CHAR),
    CONV_FIELD(closing, K_CHAR), CONV_FIELD(reset, K_CHAR), CONV_FIELD(rtt_answered, K_CHAR),
    CONV_FIELD(accecn_syn, K_CHAR), CONV_FIELD(accecn, K_CHAR), CONV_FIELD(refused, K_CHAR),
    CONV_FIELD(half_closed, K_CHAR), CONV_FIELD(retired, K_CHAR), CONV_FIELD(mptcp, K_CHAR),
    CONV_FIELD(mptcp_ops, K_I64), CONV_FIELD(reused, K_CHAR), CONV_FIELD(closer, K_INT),
    CONV_FIELD(time_wait, K_CHAR), CONV_FIELD(partial_said, K_CHAR),
    {"client", (getter)ConvView_client, NULL, NULL, NULL},
    {"server", (getter)ConvView_server, NULL, NULL, NULL},
    {"roles", (getter)ConvView_roles, NULL, NULL, NULL},
    {"dirs", (getter)ConvView_dirs, NULL, NULL, NULL},
    {"note_counts", (getter)ConvView_note_counts, NULL, NULL, NULL},
    {"irtt_ns", (getter)ConvView_irtt, NULL, NULL, NULL},
    {"ended", (getter)ConvView_ended, NULL, NULL, NULL},
    {"end_state", (getter)ConvView_end_state, NULL, NULL, NULL},
    {NULL},
};

static PyGetSetDef DirView_getset[] = {
    DIR_FIELD(base, K_I64), DIR_FIELD(scale, K_INT), DIR_FIELD(syn, K_CHAR),
    DIR_FIELD(fin, K_CHAR), DIR_FIELD(packets, K_I64), DIR_FIELD(bytes, K_I64),
    DIR_FIELD(payload_bytes, K_I64), DIR_FIELD(nextseq, K_I64), DIR_FIELD(nextseq_ts, K_I128),
    DIR_FIELD(lastack, K_I64), DIR_FIELD(lastack_ts, K_I128), DIR_FIELD(window, K_I64),
    DIR_FIELD(dupacks, K_I64), DIR_FIELD(lastflags, K_INT), DIR_FIELD(maxseqtobeacked, K_I64),
    DIR_FIELD(edge, K_I64), DIR_FIELD(mptcp_ops, K_I64), DIR_FIELD(fin_seq, K_I64),
    DIR_FIELD(mss, K_I64), DIR_FIELD(addresses, K_I64), DIR_FIELD(msg_end, K_I64),
    DIR_FIELD(data_next, K_I64), DIR_FIELD(data_ts, K_I128), DIR_FIELD(pure_ack, K_I64),
    DIR_FIELD(pure_ack_ts, K_I128),
    {NULL},
};

static PyTypeObject ConvViewType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sockcap._speedups.Conversation",
    .tp_basicsize = sizeof(ConvView),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A conversation of the compiled engine, read-only, with the attributes of "
              "sockcap.analysis.conversation.Conversation (handed to Python views).",
    .tp_dealloc = (destructor)ConvView_dealloc,
    .tp_getset = ConvView_getset,
};

static PyTypeObject DirViewType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sockcap._speedups.Direction",
    .tp_basicsize = sizeof(DirView),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One direction of a compiled conversation, read-only, with the attributes of "
              "sockcap.analysis.direction.Direction.",
    .tp_dealloc = (destructor)DirView_dealloc,
    .tp_getset = DirView_getset,
};

/* clock.first_ts = the first timestamp (what the view counts relative times from). */
static int set_clock(Engine *e) {
    PyObject *ts = i128_to_py(e->first);
    if (!ts) return -1;
    int rc = PyObject_SetAttrString(e->clock, "first_ts", ts);
    Py_DECREF(ts);
    return rc;
}

/* The packet's notes as the tracker gives them: the decoder's (p->notes), then the
 * analysis' (notes_of) and the connection's own (a new reference). */
static PyObject *view_notes(Engine *e, const Pkt *p, const Ann *a) {
    if (!a->bits && a->own < 0 && !a->told) {
        Py_INCREF(p->notes);
        return p->notes;
    }
    PyObject *extra = a->bits
        ? PyObject_CallFunction(e->notes_of, "iLO", a->bits, (long long)a->dupacks,
                                (p->flags & F_SYN) ? Py_True : Py_False)
        : PyTuple_New(0);
    for (int i = N_FIRST_CONFUSION - 1; i < N_KINDS; i++) { /* the connection's own note, */
        int kind = i < N_FIRST_CONFUSION ? a->own                  /* then the confusions' */
                                         : (a->told & CONFUSION_BIT(i)) ? i : -1;
        if (!extra || kind < 0) continue;
        PyObject *one = kind == N_LARGER_THAN_MTU || kind == N_NAGLE_STALL /* a CountedNote */
            ? PyObject_CallFunction(e->notes_of, "iiO((OL))", 0, 0, Py_False,
                                    PyTuple_GET_ITEM(e->kinds, kind),
                                    (long long)(kind == N_NAGLE_STALL ? a->stall_ms : a->segments))
            : PyTuple_Pack(1, PyTuple_GET_ITEM(e->kinds, kind));
        PyObject *both = one ? PySequence_Concat(extra, one) : NULL;
        Py_XDECREF(one);
        Py_SETREF(extra, both);
    }
    if (!extra) return NULL;
    PyObject *notes = PySequence_Concat(p->notes, extra);
    Py_DECREF(extra);
    return notes;
}

static int hand_to_view(Engine *e, const Pkt *p, const Ann *a) {
    if (!p->packet && p->data) return hand_made_packet(e, p, a); /* decoded here */
    if (!p->packet || !p->notes) {
        PyErr_SetString(PyExc_RuntimeError, "a view is handed Packets given to Engine.packet");
        return -1;
    }
    PyObject *conv = a->conv ? conv_view(e, a->conv) : (Py_INCREF(Py_None), Py_None);
    if (!conv) return -1;
    PyObject *notes = view_notes(e, p, a);
    if (!notes) { Py_DECREF(conv); return -1; }
    PyObject *fields = Py_BuildValue( /* N: conv and notes are given to the tuple */
        "(LONOLLLON)", (long long)e->count, p->packet, conv, a->from_client ? Py_True : Py_False,
        (long long)a->seq, (long long)a->ack, (long long)a->win,
        PyTuple_GET_ITEM(e->phase_codes, a->phase), notes);
    if (!fields) return -1;
    PyObject *args = PyTuple_Pack(1, fields);
    Py_DECREF(fields);
    if (!args) return -1;
    /* tuple.__new__(Annotated, fields): as the tracker builds it, without its __new__ */
    PyObject *ann = PyTuple_Type.tp_new((PyTypeObject *)e->annotated, args, NULL);
    Py_DECREF(args);
    if (!ann) return -1;
    PyObject *text = PyObject_CallOneArg(e->view, ann);
    Py_DECREF(ann);
    if (!text) return -1;
    int rc = 0;
    if (PyUnicode_Check(text)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(text, &n);
        if (!s || buf_reserve(&e->out, (size_t)n + 1) < 0) rc = -1;
        else {
            put(&e->out, s, (size_t)n);
            put(&e->out, "\n", 1);
        }
    } else if (text != Py_None) {
        PyErr_SetString(PyExc_TypeError, "a view returns its text (str) or None");
        rc = -1;
    }
    Py_DECREF(text);
    return rc;
}

#include "_speedups_columns.h"

static PyObject *Engine_get_done(Engine *e, void *unused) { return PyBool_FromLong(e->done); }
static PyObject *Engine_get_pending(Engine *e, void *unused) {
    return PyLong_FromSize_t(e->out.len);
}

static PyObject *Engine_get_handover(Engine *e, void *unused) {
    return PyBool_FromLong(e->handover);
}

/* With a view too: the Packet a view is handed is made here for a frame decoded here
 * (_speedups_packet.h); the others come through Engine.packet from sockcap.decode. */
static PyObject *Engine_get_reads_records(Engine *e, void *unused) {
    return PyBool_FromLong(1);
}

static PyObject *Engine_get_probes(Engine *e, void *unused) {
    return PyLong_FromUnsignedLongLong(e->probes);
}

static PyGetSetDef Engine_getset[] = {
    {"reads_records", (getter)Engine_get_reads_records, NULL,
     "takes plain records from the capture reader's buffer (pcap, pcapng)", NULL},
    {"probes", (getter)Engine_get_probes, NULL,
     "table slots looked at so far: about one a lookup whatever the file holds", NULL},
    {"handover", (getter)Engine_get_handover, NULL,
     "the followed stream starts at the next frame: the Python pipeline takes over", NULL},
    {"done", (getter)Engine_get_done, NULL, "the -c limit was reached: stop reading", NULL},
    {"pending", (getter)Engine_get_pending, NULL, "bytes of text not taken yet", NULL},
    {NULL},
};

static PyMethodDef Engine_methods[] = {
    {"pcap", (PyCFunction)Engine_pcap, METH_VARARGS, "consume plain pcap records"},
    {"pcapng", (PyCFunction)Engine_pcapng, METH_VARARGS, "consume plain pcapng EPBs"},
    {"frame", (PyCFunction)Engine_frame, METH_O, "one RawFrame, if decoded here"},
    {"packet", (PyCFunction)Engine_packet, METH_VARARGS, "one Packet decoded in Python"},
    {"made", (PyCFunction)Engine_made, METH_O, "the Packet a view is handed for a frame decoded here, or None"},
    {"take", (PyCFunction)Engine_take, METH_NOARGS, "the text rendered so far"},
    {"write_to", (PyCFunction)Engine_write_to, METH_O, "the text so far to write(), uncopied"},
    {"state", (PyCFunction)Engine_state, METH_NOARGS, "counters, for the Pipeline"},
    {"conversation", (PyCFunction)Engine_conversation, METH_O, "one stats row"},
    {"conversation_count", (PyCFunction)Engine_conversation_count, METH_NOARGS,
     "conversations kept"},
    {"explained", (PyCFunction)Engine_explained, METH_NOARGS, "--explain's totals"},
    {"explain_rows", (PyCFunction)Engine_explain_rows, METH_O, "--explain's connections"},
    COLUMNS_METHODS
    {NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sockcap._speedups.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled timeline loop: frames in, Wireshark-style text out.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_methods = Engine_methods,
    .tp_getset = Engine_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sockcap._speedups",
    "The compiled hot path of sockcap (see sockcap/_speedups.c).", -1, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&EngineType) < 0 || PyType_Ready(&ConvViewType) < 0 ||
        PyType_Ready(&DirViewType) < 0)
        return NULL;
    PyObject *frozen = style_set(STYLES, sizeof STYLES / sizeof STYLES[0]);
    PyObject *colored = style_set(COLORED, sizeof COLORED / sizeof COLORED[0]);
    if (!frozen || !colored || PyDict_SetItemString(EngineType.tp_dict, "styles", frozen) < 0 ||
        PyDict_SetItemString(EngineType.tp_dict, "colors", colored) < 0 ||
        PyDict_SetItemString(EngineType.tp_dict, "explains", Py_True) < 0) {
        Py_XDECREF(frozen);
        Py_XDECREF(colored);
        return NULL;
    }
    Py_DECREF(colored);
    Py_DECREF(frozen);
    PyType_Modified(&EngineType);
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&EngineType);
    if (PyModule_AddObject(m, "Engine", (PyObject *)&EngineType) < 0) {
        Py_DECREF(&EngineType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

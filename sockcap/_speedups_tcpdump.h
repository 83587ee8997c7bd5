/* tcpdump's notation (``show --style tcpdump``) written by the compiled engine: a
 * transcription of sockcap/render/timeline.py (Timeline._tcpdump and what it calls) and
 * sockcap/render/tcpdump_options.py, which stay the reference (the pure twin's view);
 * tests/test_tcpdump_engine.py and fuzz/differential.py require the same bytes.
 *
 *   21:05:33.123456 IP 127.0.0.1.41234 > 127.0.0.1.5001: Flags [S.], seq 1, ack 2,
 *       win 65483, options [mss 65495,sackOK,TS val 1 ecr 2,nop,wscale 7], length 0
 *
 * Included by _speedups.c just before render(): static functions over its Engine, Pkt,
 * Ann and Buf. The state it keeps (tcpdump's per-connection sequence bases and the text of
 * the last second shown) hangs from Engine.tcpdump, made on the first packet.
 *
 * - The time of day is local time, as tcpdump and the Python view print it: localtime_r
 *   (after tzset() at construction, so the TZ of the environment decides, as for
 *   time.localtime), one call a second of capture; a second the C library cannot convert
 *   (a 64-bit pcapng time far out of range) is shown in UTC, as the view does.
 * - seq/ack follow tcpdump's own rule (print-tcp.c, Timeline._tcpdump_numbers): per
 *   connection (both directions one entry, the 4-tuple ordered by the addresses' *text*,
 *   as the view orders them) the bases set by the first segment with ACK or any SYN-ACK.
 *   A conversation forgotten by the tracker may be followed by a late segment of the same
 *   4-tuple, which both print relative to the old bases, so the bases outlive the
 *   tracker's conversations. tcpdump's own table is never pruned; this one, as the view's
 *   (sockcap.render.timeline says why), holds at most the window's connections
 *   (Engine(tcpdump_window=), TCPDUMP_WINDOW by default) and forgets the least recently
 *   used one: 64 bytes a connection (TdEntry) and 8-16 of index, 18 MiB at most.
 * - A frame decoded here carries its TCP header's offset (Pkt.tcp_off) and its options are
 *   read from the wire bytes; a frame decoded by Python (tunnels, damage, ICMP, other
 *   links; Engine.packet) is written from the handed Packet: its address texts, ``net``,
 *   options tuple; an ICMP message's text comes in ``info``, made by
 *   timeline.tcpdump_icmp_info (the words of print-icmp.c, English as tcpdump's), since
 *   the ICMP decoder is Python's alone (sockcap.decode.icmp).
 * - The only words in the reader's language are the notes and the guessed-roles line:
 *   the engine's note words and templates, as for the Wireshark-style line.
 */
#include <time.h>

typedef struct { /* one connection's bases, both directions (key: its 4-tuple, either way round) */
    Key key;
    uint32_t hash;        /* the low bits of its SipHash (the index's probe start) */
    uint32_t mine, other; /* the forward direction's base, the other's */
    uint32_t older, newer; /* the list by last use: entry number + 1 (0: none) */
} TdEntry;

/* The bases are kept in a dense array of entries, in the order first seen, found through
 * an open-addressing index of 4-byte places (entry number + 1; 0: empty; at most half
 * full). A TCP connection costs its 60-byte entry and 8-16 bytes of index: an array of
 * 64-byte slots at most half full cost 128-256 bytes; the array grows by realloc up to the
 * window.
 *
 * The window: the entries are also a doubly linked list by last use (oldest .. newest);
 * a segment that finds its connection's entry moves it to the newest end. A connection
 * new to a full table takes the oldest entry's place: that entry leaves the index by
 * backward shift (Knuth's algorithm R, as the explainer's 4-tuples: no tombstones, which
 * would fill the index as entries come and go forever), and its number is reused. */
typedef struct Tcpdump {
    TdEntry *ents;
    size_t n, cap;      /* entries used, allocated */
    size_t window;      /* entries at most (>= 1) */
    uint32_t oldest, newest; /* the list's ends: entry number + 1 (0: empty) */
    uint32_t *index;
    size_t slots;       /* a power of two */
    i128 clock_sec;     /* the second whose text is kept (-1: none) */
    char clock_text[8]; /* "HH:MM:SS" */
} Tcpdump;

static void tcpdump_free(Tcpdump *t) {
    if (!t) return;
    PyMem_Free(t->ents);
    PyMem_Free(t->index);
    PyMem_Free(t);
}

static Tcpdump *tcpdump_state(Engine *e) {
    if (e->tcpdump) return e->tcpdump;
    Tcpdump *t = PyMem_Calloc(1, sizeof *t);
    if (!t) { PyErr_NoMemory(); return NULL; }
    t->clock_sec = -1;
    t->window = e->tcpdump_window;
    e->tcpdump = t;
    return t;
}

static int td_grow_index(Tcpdump *t) {
    size_t n = t->slots ? t->slots * 2 : 1024;
    if (n > ((size_t)1 << 32)) { PyErr_NoMemory(); return -1; }
    uint32_t *x = PyMem_Calloc(n, sizeof *x);
    if (!x) { PyErr_NoMemory(); return -1; }
    for (size_t i = 0; i < t->n; i++) {
        size_t j = t->ents[i].hash & (n - 1);
        while (x[j]) j = (j + 1) & (n - 1);
        x[j] = (uint32_t)(i + 1);
    }
    PyMem_Free(t->index);
    t->index = x;
    t->slots = n;
    return 0;
}

/* the list by last use: entry i (0-based) out of it, and in again at the newest end */
static void td_unlink(Tcpdump *t, uint32_t i) {
    TdEntry *x = &t->ents[i];
    if (x->older) t->ents[x->older - 1].newer = x->newer; else t->oldest = x->newer;
    if (x->newer) t->ents[x->newer - 1].older = x->older; else t->newest = x->older;
}

static void td_append(Tcpdump *t, uint32_t i) {
    TdEntry *x = &t->ents[i];
    x->older = t->newest;
    x->newer = 0;
    if (t->newest) t->ents[t->newest - 1].newer = i + 1; else t->oldest = i + 1;
    t->newest = i + 1;
}

/* Entry i out of the index: its slot emptied, and the slots of the cluster after it
 * moved back into the hole when their home is not between the hole and them. */
static void td_unindex(Tcpdump *t, uint32_t i) {
    size_t mask = t->slots - 1, hole = t->ents[i].hash & mask;
    while (t->index[hole] != i + 1) hole = (hole + 1) & mask;
    for (size_t j = (hole + 1) & mask; t->index[j]; j = (j + 1) & mask) {
        size_t home = t->ents[t->index[j] - 1].hash & mask;
        int stays = hole < j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            t->index[hole] = t->index[j];
            hole = j;
        }
    }
    t->index[hole] = 0;
}

/* The entry of key, now the most recently used; a new one (its bases for the caller to
 * set, *fresh = 1) when absent, in the place of the least recently used when the table
 * holds the window's entries; NULL on error. */
static TdEntry *td_entry(Engine *e, Tcpdump *t, const Key *key, int *fresh) {
    if (t->n < t->window && (t->n + 1) * 2 > t->slots && td_grow_index(t) < 0) return NULL;
    uint32_t h = (uint32_t)siphash13(e->hash_key, key->w, 5);
    size_t j = h & (t->slots - 1);
    while (t->index[j]) {
        uint32_t i = t->index[j] - 1;
        TdEntry *x = &t->ents[i];
        if (x->hash == h && key_eq(&x->key, key)) {
            if (t->newest != i + 1) {
                td_unlink(t, i);
                td_append(t, i);
            }
            *fresh = 0;
            return x;
        }
        j = (j + 1) & (t->slots - 1);
    }
    uint32_t i;
    if (t->n >= t->window) { /* full: the least recently used entry's number is reused */
        i = t->oldest - 1;
        td_unindex(t, i);
        td_unlink(t, i);
        j = h & (t->slots - 1); /* the shift may have filled the slot found above */
        while (t->index[j]) j = (j + 1) & (t->slots - 1);
    } else {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 1024;
            if (cap > t->window) cap = t->window;
            TdEntry *a = PyMem_Realloc(t->ents, cap * sizeof *a);
            if (!a) { PyErr_NoMemory(); return NULL; }
            t->ents = a;
            t->cap = cap;
        }
        i = (uint32_t)t->n++;
    }
    TdEntry *x = &t->ents[i];
    x->key = *key;
    x->hash = h;
    t->index[j] = i + 1;
    td_append(t, i);
    *fresh = 1;
    return x;
}

/* ---------------------------------------------------------------- small writers */

/* "%x" of an unsigned 64-bit value */
static char *td_hex64(char *o, uint64_t v) {
    int w = 1;
    while (w < 16 && (v >> (4 * w))) w++;
    for (int i = w - 1; i >= 0; i--) *o++ = HEXD[(v >> (4 * i)) & 15];
    return o;
}

/* "%llu" */
static char *td_u64(char *o, uint64_t v) {
    int nd = count_digits(v);
    digits_before(o + nd, v);
    return o + nd;
}

/* bytes.hex() */
static char *td_hexbytes(char *o, const uint8_t *v, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        *o++ = HEXD[v[i] >> 4];
        *o++ = HEXD[v[i] & 15];
    }
    return o;
}

/* int.from_bytes(v[a:b], "big") with Python's slice bounds; at most 8 bytes */
static uint64_t td_n(const uint8_t *v, Py_ssize_t n, Py_ssize_t a, Py_ssize_t b) {
    if (b > n) b = n;
    uint64_t x = 0;
    for (Py_ssize_t i = a; i < b; i++) x = x << 8 | v[i];
    return x;
}

static char *td_str(char *o, const char *s) {
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

/* str(ipaddress.IPv6Address(a)) (Python 3.11: RFC 5952's zero run, no dotted form). */
static char *td_ipaddress6(char *o, const uint8_t *a) {
    uint32_t w[8];
    for (int i = 0; i < 8; i++) w[i] = be16(a + 2 * i);
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (w[i]) { i++; continue; }
        int j = i;
        while (j < 8 && !w[j]) j++;
        if (j - i > best_len) { best = i; best_len = j - i; }
        i = j;
    }
    if (best_len < 2) best = -1;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            *o++ = ':';
            if (i == 0) *o++ = ':';
            i += best_len - 1;
            continue;
        }
        o = td_hex64(o, w[i]);
        if (i < 7) *o++ = ':';
    }
    return o;
}

/* ---------------------------------------------------------------- options */

static const char *const MPTCP_NAMES[] = {"capable", "join", "dss", "add-addr", "rem-addr",
                                          "prio", "fail", "fast-close", "tcprst"};

static char *td_mptcp_head(char *o, const uint8_t *v, Py_ssize_t n) {
    int sub = v[0] >> 4;
    o = td_str(o, "mptcp ");
    o = write_i64(o, (int64_t)n + 2, 0);
    *o++ = ' ';
    if (sub < 9) return td_str(o, MPTCP_NAMES[sub]);
    o = td_str(o, "unknown-subtype-");
    return write_i64(o, sub, 0);
}

/* tcpdump_options._mptcp: the end of its text, or NULL for a malformed one. */
static char *td_mptcp(char *o, const uint8_t *v, Py_ssize_t n) {
    if (n == 0) return NULL;
    Py_ssize_t length = n + 2;
    int sub = v[0] >> 4;
    o = td_mptcp_head(o, v, n);
    switch (sub) {
    case 0: { /* capable */
        if (length != 4 && length != 8 && length != 12 && length != 20 && length != 22 &&
            length != 24)
            return NULL;
        int version = v[0] & 0x0F;
        if (version == 0 || version == 1) { o = td_str(o, " v"); o = write_i64(o, version, 0); }
        else { o = td_str(o, " Unknown Version ("); o = write_i64(o, version, 0); *o++ = ')'; }
        if (v[1] & 0x80) o = td_str(o, " csum");
        if (length >= 12) {
            o = td_str(o, " {0x");
            o = td_hex64(o, td_n(v, n, 2, 10));
            if (length >= 20) { o = td_str(o, ",0x"); o = td_hex64(o, td_n(v, n, 10, 18)); }
            *o++ = '}';
        }
        return o;
    }
    case 1: /* join */
        if (v[0] & 0x01) o = td_str(o, " backup");
        if (length == 12) {
            o = td_str(o, " id "); o = write_i64(o, v[1], 0);
            o = td_str(o, " token 0x"); o = td_hex64(o, td_n(v, n, 2, 6));
            o = td_str(o, " nonce 0x"); return td_hex64(o, td_n(v, n, 6, 10));
        }
        if (length == 16) {
            o = td_str(o, " id "); o = write_i64(o, v[1], 0);
            o = td_str(o, " hmac 0x"); o = td_hex64(o, td_n(v, n, 2, 10));
            o = td_str(o, " nonce 0x"); return td_hex64(o, td_n(v, n, 10, 14));
        }
        if (length == 24) {
            o = td_str(o, " hmac 0x");
            return td_hexbytes(o, v + 4, n - 4);
        }
        return NULL;
    case 2: { /* dss */
        if (length < 4) return NULL;
        int flags = v[1];
        Py_ssize_t pos = 2;
        if (flags & 0x10) o = td_str(o, " fin");
        if (flags & 0x01) {
            Py_ssize_t size = (flags & 0x02) ? 8 : 4;
            if (pos + size > n) return NULL;
            o = td_str(o, " ack ");
            o = td_u64(o, td_n(v, n, pos, pos + size));
            pos += size;
        }
        if (flags & 0x04) {
            Py_ssize_t size = (flags & 0x08) ? 8 : 4;
            if (pos + size + 6 > n) return NULL;
            o = td_str(o, " seq ");
            o = td_u64(o, td_n(v, n, pos, pos + size));
            pos += size;
            o = td_str(o, " subseq ");
            o = td_u64(o, td_n(v, n, pos, pos + 4));
            o = td_str(o, " len ");
            o = td_u64(o, td_n(v, n, pos + 4, pos + 6));
            pos += 6;
            if (n - pos == 2) { o = td_str(o, " csum 0x"); o = td_hex64(o, td_n(v, n, pos, pos + 2)); }
        }
        return o;
    }
    case 3: { /* add-addr */
        int v4 = length == 8 || length == 10 || length == 16 || length == 18;
        int v6 = length == 20 || length == 22 || length == 28 || length == 30;
        if (!v4 && !v6) return NULL;
        static const char *const kinds[16] = {"v1", "v1-echo", NULL, NULL, "v0-ip4", NULL, "v0-ip6"};
        const char *kind = kinds[v[0] & 0x0F];
        *o++ = ' ';
        o = td_str(o, kind ? kind : "[bad version/echo]");
        o = td_str(o, " id ");
        o = write_i64(o, v[1], 0);
        *o++ = ' ';
        Py_ssize_t size = v4 ? 4 : 16;
        if (v4) {
            for (int i = 0; i < 4; i++) { o = write_i64(o, v[2 + i], 0); if (i < 3) *o++ = '.'; }
        } else o = td_ipaddress6(o, v + 2);
        Py_ssize_t pos = 2 + size;
        if (length == 10 || length == 18 || length == 22 || length == 30) {
            *o++ = ':';
            o = td_u64(o, td_n(v, n, pos, pos + 2));
            pos += 2;
        }
        if (length == 16 || length == 18 || length == 28 || length == 30) {
            o = td_str(o, " hmac 0x");
            o = td_hex64(o, td_n(v, n, pos, pos + 8));
        }
        return o;
    }
    case 4: /* rem-addr */
        if (length < 4) return NULL;
        o = td_str(o, " id");
        for (Py_ssize_t i = 1; i < n; i++) { *o++ = ' '; o = write_i64(o, v[i], 0); }
        return o;
    case 5: /* prio */
        if (length != 3 && length != 4) return NULL;
        o = td_str(o, (v[0] & 0x01) ? " backup" : " non-backup");
        if (length == 4) { o = td_str(o, " id "); o = write_i64(o, v[1], 0); }
        return o;
    case 6: /* fail */
        if (length != 12) return NULL;
        o = td_str(o, " seq ");
        return td_u64(o, td_n(v, n, 2, 10));
    case 7: /* fast-close */
        if (length != 12) return NULL;
        o = td_str(o, " key 0x");
        return td_hex64(o, td_n(v, n, 2, 10));
    default:
        return o;
    }
}

/* tcpdump_options.tcpdump_option: one option's text written at o (room: 96 + 4n bytes);
 * NULL for an option tcpdump calls "[bad opt]". */
static char *td_option(char *o, int kind, const uint8_t *v, Py_ssize_t n, uint32_t sack_base) {
    /* tcpdump_extra_option */
    if (kind == OPT_MPTCP) return td_mptcp(o, v, n);
    if (kind == 20) { /* SCPS */
        if (n != 2) return NULL;
        o = td_str(o, "scps cap ");
        *o++ = HEXD[v[0] >> 4];
        *o++ = HEXD[v[0] & 15];
        o = td_str(o, " id ");
        return write_i64(o, v[1], 0);
    }
    if ((kind == 253 || kind == 254) && n >= 2) {
        uint32_t magic = be16(v);
        if (magic == 0xF989) {
            if (n == 2) return td_str(o, "exp-tfo cookiereq");
            o = td_str(o, "exp-tfo cookie ");
            return td_hexbytes(o, v + 2, n - 2);
        }
        if (magic == 0xACC0) return td_str(o, "exp-acc0");
        if (magic == 0xACC1) return td_str(o, "exp-acc1");
    }
    if (kind == OPT_NOP) return td_str(o, "nop");
    if (kind == OPT_EOL) return td_str(o, "eol");
    if (kind == OPT_MSS && n == 2) { o = td_str(o, "mss "); return write_i64(o, be16(v), 0); }
    if (kind == OPT_WSCALE && n == 1) { o = td_str(o, "wscale "); return write_i64(o, v[0], 0); }
    if (kind == OPT_SACK_PERMITTED) return td_str(o, "sackOK");
    if (kind == OPT_TIMESTAMPS && n == 8) {
        o = td_str(o, "TS val ");
        o = write_i64(o, be32(v), 0);
        o = td_str(o, " ecr ");
        return write_i64(o, be32(v + 4), 0);
    }
    if (kind == OPT_SACK) {
        Py_ssize_t edges = n >= 4 ? (n - 4) / 4 + 1 : 0, blocks = edges / 2;
        o = td_str(o, "sack ");
        o = write_i64(o, blocks, 0);
        *o++ = ' ';
        for (Py_ssize_t i = 0; i < blocks; i++) {
            *o++ = '{';
            o = write_i64(o, (uint32_t)(be32(v + 8 * i) - sack_base), 0);
            *o++ = ':';
            o = write_i64(o, (uint32_t)(be32(v + 8 * i + 4) - sack_base), 0);
            *o++ = '}';
        }
        return o;
    }
    if (kind == OPT_FAST_OPEN) {
        if (n == 0) return td_str(o, "tfo cookiereq");
        o = td_str(o, "tfo cookie ");
        return td_hexbytes(o, v, n);
    }
    if (n) {
        o = td_str(o, "unknown-");
        o = write_i64(o, kind, 0);
        o = td_str(o, " 0x");
        return td_hexbytes(o, v, n);
    }
    o = td_str(o, "opt-");
    return write_i64(o, kind, 0);
}

/* tcpdump_options.tcpdump_option_name: the name before "[bad opt]" */
static char *td_option_name(char *o, int kind, const uint8_t *v, Py_ssize_t n) {
    if (kind == OPT_MPTCP && n) return td_mptcp_head(o, v, n);
    if (kind == 20) return td_str(o, "scps");
    o = td_str(o, "unknown-");
    return write_i64(o, kind, 0);
}

/* One option into the list: 1 written, 0 "[bad opt]" written (the segment's text ends
 * there), -1 error. ``count``: options written so far. */
static int td_put_option(Buf *b, int kind, const uint8_t *v, Py_ssize_t n, uint32_t sack_base,
                         int *count) {
    if (buf_reserve(b, 96 + 4 * (size_t)n) < 0) return -1;
    size_t mark = b->len;
    put(b, *count ? "," : ", options [", *count ? 1 : 11);
    char *end = td_option(b->p + b->len, kind, v, n, sack_base);
    if (end) {
        b->len = (size_t)(end - b->p);
        (*count)++;
        return 1;
    }
    /* ", options [" + ",".join((*texts, name)) + "[bad opt]" + ("]" if texts else "") */
    b->len = mark;
    put(b, *count ? "," : ", options [", *count ? 1 : 11);
    end = td_option_name(b->p + b->len, kind, v, n);
    b->len = (size_t)(end - b->p);
    put(b, "[bad opt]", 9);
    if (*count) put(b, "]", 1);
    return 0;
}

/* The options: 1 all written ("]" closed), 0 a "[bad opt]" ended the text, -1 error. */
static int td_options(Buf *b, const Pkt *p, uint32_t sack_base) {
    int count = 0, rc = 1;
    if (p->packet) { /* decoded by Python: its options tuple, as the view reads it */
        PyObject *opts = PyTuple_GET_ITEM(p->packet, PACKET_OPTIONS);
        if (!PyTuple_Check(opts)) { PyErr_SetString(PyExc_TypeError, "options"); return -1; }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(opts) && rc == 1; i++) {
            PyObject *o = PyTuple_GET_ITEM(opts, i);
            if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) < OPTION_FIELDS ||
                !PyBytes_Check(PyTuple_GET_ITEM(o, OPTION_VALUE))) {
                PyErr_SetString(PyExc_TypeError, "a TcpOption expected");
                return -1;
            }
            long kind = PyLong_AsLong(PyTuple_GET_ITEM(o, OPTION_KIND));
            if (kind == -1 && PyErr_Occurred()) return -1;
            PyObject *val = PyTuple_GET_ITEM(o, OPTION_VALUE);
            rc = td_put_option(b, (int)kind, (const uint8_t *)PyBytes_AS_STRING(val),
                               PyBytes_GET_SIZE(val), sack_base, &count);
        }
    } else { /* decoded here: the header is wholly captured and its options well formed */
        const uint8_t *d = p->data;
        Py_ssize_t i = p->tcp_off + 20, stop = p->payload_off;
        while (i < stop && rc == 1) {
            int kind = d[i];
            if (kind == OPT_NOP || kind == OPT_EOL) {
                rc = td_put_option(b, kind, d, 0, sack_base, &count);
                if (kind == OPT_EOL) break;
                i++;
                continue;
            }
            int len = d[i + 1];
            rc = td_put_option(b, kind, d + i + 2, len - 2, sack_base, &count);
            i += len;
        }
    }
    if (rc == 1 && count) {
        if (buf_reserve(b, 1) < 0) return -1;
        put(b, "]", 1);
    }
    return rc;
}

/* ---------------------------------------------------------------- the line */

/* HH:MM:SS.uuuuuu, local time (Timeline._clock), or "-" for a frame without a time */
static int td_clock(Tcpdump *t, Buf *b, i128 ts) {
    if (buf_reserve(b, 16) < 0) return -1;
    if (ts < 0) {
        put(b, "-              ", 15); /* timeline.NO_CLOCK */
        return 0;
    }
    i128 sec = ts / NS_PER_SEC;
    if (sec != t->clock_sec) {
        struct tm tm;
        int h, m, s;
        time_t tt = (time_t)sec;
        if ((i128)tt == sec && localtime_r(&tt, &tm)) {
            h = tm.tm_hour; m = tm.tm_min; s = tm.tm_sec;
        } else { /* what the C library cannot convert: the time of day in UTC */
            int day = (int)(sec % 86400);
            h = day / 3600; m = day / 60 % 60; s = day % 60;
        }
        char *o = t->clock_text;
        /* "%02d": an hour past 99 cannot come from either branch */
        memcpy(o, DIGITS2 + 2 * (h % 100), 2);
        o[2] = ':';
        memcpy(o + 3, DIGITS2 + 2 * (m % 100), 2);
        o[5] = ':';
        memcpy(o + 6, DIGITS2 + 2 * (s % 100), 2);
        t->clock_sec = sec;
    }
    put(b, t->clock_text, 8);
    uint32_t us = (uint32_t)((ts / 1000) % 1000000);
    char *o = b->p + b->len;
    *o = '.';
    memcpy(o + 1, DIGITS2 + 2 * (us / 10000), 2);
    memcpy(o + 3, DIGITS2 + 2 * (us / 100 % 100), 2);
    memcpy(o + 5, DIGITS2 + 2 * (us % 100), 2);
    b->len += 7;
    return 0;
}

/* An address as text: the Packet's own (decoded by Python), else from its bytes. */
static int td_addr(const Pkt *p, int dst, char *out, Py_ssize_t *n, const char **s) {
    if (p->packet) {
        PyObject *a = PyTuple_GET_ITEM(p->packet, dst ? PACKET_DST : PACKET_SRC);
        if (!PyUnicode_Check(a)) { PyErr_SetString(PyExc_TypeError, "address: str expected"); return -1; }
        *s = PyUnicode_AsUTF8AndSize(a, n);
        return *s ? 0 : -1;
    }
    const uint8_t *x = dst ? p->dst : p->src;
    if (p->fam == 6) {
        inet_ntop(AF_INET6, x, out, INET6_ADDRSTRLEN);
        *n = (Py_ssize_t)strlen(out);
    } else {
        char *o = out;
        for (int i = 0; i < 4; i++) {
            o = write_i64(o, x[i], 0);
            if (i < 3) *o++ = '.';
        }
        *n = o - out;
    }
    *s = out;
    return 0;
}

/* tcpdump_options.urgent_pointer: the header is found where the payload starts */
static uint32_t td_urgent(const Pkt *p) {
    const uint8_t *d = p->data;
    for (int64_t words = 5; words < 16; words++) {
        int64_t start = p->payload_off - 4 * words;
        if (0 <= start && start + 20 <= p->caplen && (int64_t)be16(d + start) == p->sport &&
            TCP_HEADER_LEN(d + start) == 4 * words)
            return be16(d + start + 18);
    }
    return 0;
}

static int td_marks(Engine *e, Buf *b, const Pkt *p, const Ann *a) {
    if (put_cut(b, p) < 0) return -1;
    return has_notes(p, a) ? put_notes(e, b, p, a) : 0;
}

/* Timeline._tcpdump_numbers: seq, ack and the SACK edges' base as tcpdump prints them */
static int td_numbers(Engine *e, Tcpdump *t, const Pkt *p, const char *src, Py_ssize_t sn,
                      const char *dst, Py_ssize_t dn, int64_t *seq, int64_t *ack, uint32_t *base) {
    if (!(p->flags & F_ACK)) {
        *seq = p->seq; *ack = 0; *base = 0;
        return 0;
    }
    /* (p.src, p.sport) <= (p.dst, p.dport), the addresses compared as text */
    int c = memcmp(src, dst, (size_t)(sn < dn ? sn : dn));
    if (!c) c = sn < dn ? -1 : sn > dn ? 1 : 0;
    int forward = c < 0 || (c == 0 && p->sport <= p->dport);
    Key key; /* the same either way round (make_key): forward says which end is which */
    make_key(&key, 6, p->fam, p->src, p->sport, p->dst, p->dport);
    int fresh;
    TdEntry *s = td_entry(e, t, &key, &fresh);
    if (!s) return -1;
    if (fresh || (p->flags & F_SYN)) {
        uint32_t mine = (uint32_t)p->seq, other = (uint32_t)MOD32(p->ack - 1);
        s->mine = forward ? mine : other;
        s->other = forward ? other : mine;
        *seq = p->seq; *ack = p->ack; *base = other;
        return 0;
    }
    uint32_t mine = forward ? s->mine : s->other, other = forward ? s->other : s->mine;
    *seq = MOD32(p->seq - mine);
    *ack = MOD32(p->ack - other);
    *base = other;
    return 0;
}

/* The packet's text in tcpdump's notation: the guessed-roles line, the line, the --hex
 * rows; "\n" (PacketView.styled's lines for the tcpdump style, joined). */
static int render_tcpdump(Engine *e, const Pkt *p, const Ann *a) {
    Buf *b = &e->out;
    Tcpdump *t = tcpdump_state(e);
    if (!t) return -1;
    Conv *c = a->conv;
    if (c && c->roles == ROLES_GUESSED && c->dirs[0].packets + c->dirs[1].packets == 1) {
        char stream[24];
        Val v[2] = {{stream, (size_t)(write_i64(stream, c->stream, 0) - stream)},
                    {c->ep_text[1], c->ep_len[1]}};
        if (buf_reserve(b, 6) < 0) return -1;
        put(b, "      ", 6);
        if (put_template(b, &e->templates[T_GUESSED_ROLES], v) < 0) return -1;
        if (buf_reserve(b, 1) < 0) return -1;
        put(b, "\n", 1);
    }
    if (e->clock_first < 0) e->clock_first = p->ts;
    if (td_clock(t, b, p->ts) < 0) return -1;
    /* "IP6" if p.net == "IPv6" else "IP" */
    int v6 = p->fam == 6;
    if (p->packet) {
        PyObject *net = PyTuple_GET_ITEM(p->packet, PACKET_NET);
        v6 = PyUnicode_Check(net) && PyUnicode_CompareWithASCIIString(net, "IPv6") == 0;
    }
    char sbuf[INET6_ADDRSTRLEN], dbuf[INET6_ADDRSTRLEN];
    const char *src, *dst;
    Py_ssize_t sn, dn;
    if (td_addr(p, 0, sbuf, &sn, &src) < 0 || td_addr(p, 1, dbuf, &dn, &dst) < 0) return -1;
    if (buf_reserve(b, (size_t)(sn + dn) + 128) < 0) return -1;
    put(b, v6 ? " IP6 " : " IP ", v6 ? 5 : 4);
    put(b, src, (size_t)sn);
    if (p->sport < 0) {
        put(b, " > ", 3);
        put(b, dst, (size_t)dn);
        put(b, ": ", 2);
        if (p->info) { /* an ICMP message: timeline.tcpdump_icmp_info's text */
            if (put_str(b, p->info) < 0 || td_marks(e, b, p, a) < 0) return -1;
        } else { /* no marks: as the view */
            if (put_str(b, p->proto_name) < 0 || buf_reserve(b, 40) < 0) return -1;
            put(b, ", length ", 9);
            put_i64(b, p->wirelen, 0);
        }
    } else {
        put(b, ".", 1);
        put_i64(b, p->sport, 0);
        put(b, " > ", 3);
        put(b, dst, (size_t)dn);
        put(b, ".", 1);
        put_i64(b, p->dport, 0);
        put(b, ":", 1);
        if (a->seq < 0) {
            put(b, " UDP, length ", 13);
            put_i64(b, p->payload_len, 0);
        } else {
            int64_t seq, ack;
            uint32_t base;
            if (td_numbers(e, t, p, src, sn, dst, dn, &seq, &ack, &base) < 0) return -1;
            int f = p->flags, n = 0;
            char flags[16];
            static const struct { int bit; char c; } LETTERS[] = {
                {F_FIN, 'F'}, {F_SYN, 'S'}, {F_RST, 'R'}, {F_PSH, 'P'}, {F_ACK, '.'},
                {F_URG, 'U'}, {F_ECE, 'E'}, {F_CWR, 'W'}, {F_AE, 'e'}};
            for (int i = 0; i < 9; i++)
                if (f & LETTERS[i].bit) flags[n++] = LETTERS[i].c;
            if (buf_reserve(b, 160) < 0) return -1;
            put(b, " Flags [", 8);
            if (n) put(b, flags, (size_t)n);
            else put(b, "none", 4);
            put(b, "]", 1);
            int64_t len = p->payload_len;
            if (len > 0) {
                put(b, ", seq ", 6);
                put_i64(b, seq, 0);
                put(b, ":", 1);
                put_i64(b, MOD32(seq + len), 0);
            } else if (f & (F_FIN | F_SYN | F_RST)) {
                put(b, ", seq ", 6);
                put_i64(b, seq, 0);
            }
            if (f & F_ACK) {
                put(b, ", ack ", 6);
                put_i64(b, ack, 0);
            }
            put(b, ", win ", 6);
            put_i64(b, p->window, 0);
            if (f & F_URG) {
                put(b, ", urg ", 6);
                put_i64(b, td_urgent(p), 0);
            }
            int rc = 1;
            if (p->packet || p->tcp_off + 20 < p->payload_off) rc = td_options(b, p, base);
            if (rc < 0) return -1;
            if (rc == 1) {
                if (buf_reserve(b, 32) < 0) return -1;
                put(b, ", length ", 9);
                put_i64(b, len, 0);
            }
        }
        if (td_marks(e, b, p, a) < 0) return -1;
    }
    return put_line_end(e, b, p);
}

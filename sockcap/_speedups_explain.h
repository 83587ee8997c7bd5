/* ``show --explain`` written by the engine: each packet's sentence under its line, with
 * the state it needs kept beside each conversation (included by _speedups.c before
 * render(); everything here is static).
 *
 * Why: the sentences in Python (sockcap/render/explain.py's PacketExplainer, with
 * tcp_sentences.py, segment_cases.py, confusions.py, analysis/zeek.py) cost ~31 µs a
 * packet and the timeline line written in Python ~3.7: `show --explain` took 95x plain
 * `show` on the bench's 1M file (bench/RESULTS.md, issue 23), and the explainer kept
 * every conversation it had seen, 315 MB at the end of that file. Here the case of each
 * packet (Why), the arithmetic and the words are the same, transcribed: those Python
 * modules stay the reference (the pure twin's --explain is them), and
 * tests/test_explain_engine.py requires the two byte for byte (goldens, corpus,
 * hypothesis captures, English and Indonesian), as fuzz/differential.py does over
 * mutated inputs.
 *
 * The state: each conversation's two sides (segment_cases.Side), Zeek's endpoint states
 * and the history letters as far as conn_state() reads them (the RSTOS0 pattern, matched
 * as the letters come), what the confusions keep per side, in a ConvExplain beside the
 * conversation, freed with it: what the engine forgets, the explanation forgets too, so
 * `show --explain` stays bounded like `show`. What outlives a conversation is what the
 * end of the run prints: its summary row (stream, endpoints, Zeek's conn_state, 44
 * bytes), kept on disk past a budget (_speedups_spill.h), and the 4-tuples the last
 * TUPLE_WINDOW SYNs used (the port-reuse sentence names the earlier stream on them; see
 * "the 4-tuples SYNs used" below: bounded by the window, not by the file).
 *
 * The words: every template whole, translated, by name (render.explain_words.TEMPLATES,
 * the E_* numbers and placeholders of the contract's header), the two sides' words, the
 * flags' names; no English here. The end of the run (the connections' states, the
 * "read closely" lines) is worded by Python from what explain_rows() and explained()
 * hand it (sockcap.render.explain.EngineExplanations).
 *
 * Not written here (say so rather than differ): a FIN explained by a recorded close() or
 * shutdown() (only `show` of a story file has calls, and it runs the Python view).
 */

#define EX_PREVIEW 20 /* segment_cases.PREVIEW: characters of a payload in a sentence */
#define COPY_WITHIN_NS 200000000LL /* segment_cases.COPY_WITHIN_NS */
#define MPTCP_FASTCLOSE 7

typedef struct {
    int64_t data_seq, data_len;
    uint8_t data_prev[EX_PREVIEW];
    int8_t data_prev_n, data_prev_more; /* bytes kept; more than EX_PREVIEW captured */
    int64_t fin_seq;
    char fin_again, sacked, has_last;
    int64_t acked, win, dupacks, repeats, syn_len;
    int64_t last_id, last_seq, last_ack, last_flags, last_len, last_no;
    i128 last_ts;
} XSide;

typedef struct ConvExplain {
    XSide side[2];          /* the client's, the server's */
    uint8_t zstate[2];      /* Zeek's endpoint states (Z_* order, zeek.EndpointState) */
    uint8_t zseq_set, said; /* s h f r letters' last seq set; confusions said once */
    uint16_t zonce;
    int8_t zmatch;          /* the RSTOS0 pattern over the letters so far (zeek_letter) */
    char seen, rowed;
    uint32_t zletters;
    int64_t zlast_seq[8];
    uint64_t zcounts[6];
    char data_set[2], pack_set[2];
    int64_t data_next[2], pack[2]; /* confusions' Nagle: next seq, the pure ACK's ack */
    i128 data_ts[2], pack_ts[2];
} ConvExplain;

typedef struct {
    uint8_t set, fam, state, seen; /* seen: bit 0 no SYN-ACK, bit 1 a SYN */
    int32_t cport, sport;
    uint8_t caddr[16], saddr[16];
} XRow;

typedef struct {
    uint64_t w[5];  /* the 4-tuple (tuple_swap) */
    int64_t stream1; /* stream + 1; 0: an empty slot */
    int64_t last;    /* the number of its last SYN */
    uint64_t h;      /* its hash (a deletion's shift and a growth read it) */
} XTuple;            /* 64 bytes */

typedef struct Explain {
    Template t[E_COUNT];
    Text sides[2], flags[512];
    uint64_t counts[W_COUNT];
    uint64_t partial, larger, nagle; /* confusions.counts */
    RowTable rows;                   /* XRow by TCP stream */
    int64_t max_stream;
    XTuple *tuples;                  /* the SYNs' 4-tuples (confusions' _ended) */
    size_t n_tuples, cap_tuples;
    uint32_t *ring;                  /* ring[(m - 1) % window]: the slot SYN m filed (_order) */
    size_t cap_ring;
    int64_t syns, window;            /* SYNs seen (the last one's number); TUPLE_WINDOW */
} Explain;

static int texts_from(PyObject *seq, Text *out, Py_ssize_t n, const char *what);

enum { EZ_INACTIVE, EZ_SYN_SENT, EZ_SYN_ACK_SENT, EZ_PARTIAL, EZ_ESTABLISHED, EZ_CLOSED,
       EZ_RESET };

static void explain_free(Explain *x) {
    if (!x) return;
    for (int i = 0; i < E_COUNT; i++) template_free(&x->t[i]);
    for (int i = 0; i < 2; i++) PyMem_Free(x->sides[i].s);
    for (int i = 0; i < 512; i++) PyMem_Free(x->flags[i].s);
    rows_free(&x->rows);
    PyMem_Free(x->tuples);
    PyMem_Free(x->ring);
    PyMem_Free(x);
}

/* Engine(explain={"templates": [...], "sides": [client, server], "flags": [512]},
 * optionally "tuple_window": N, the port-reuse sentence's window of SYNs) */
static int explain_init(Engine *e, PyObject *words) {
    if (!PyDict_Check(words)) {
        PyErr_SetString(PyExc_TypeError, "explain: explain_words() expected");
        return -1;
    }
    Explain *x = PyMem_Calloc(1, sizeof *x);
    if (!x) { PyErr_NoMemory(); return -1; }
    x->max_stream = -1;
    x->window = TUPLE_WINDOW;
    PyObject *t = PyDict_GetItemString(words, "templates");
    PyObject *s = PyDict_GetItemString(words, "sides");
    PyObject *f = PyDict_GetItemString(words, "flags");
    PyObject *tf = t ? PySequence_Fast(t, "templates") : NULL;
    int rc = -1;
    if (!tf || !s || !f) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "explain: templates, sides, flags");
        goto out;
    }
    if (PySequence_Fast_GET_SIZE(tf) != E_COUNT) {
        PyErr_Format(PyExc_ValueError, "explain: %d templates expected", E_COUNT);
        goto out;
    }
    for (int i = 0; i < E_COUNT; i++)
        if (template_set(&x->t[i], PySequence_Fast_GET_ITEM(tf, i), EXPLAIN_PLACES[i]) < 0) goto out;
    if (texts_from(s, x->sides, 2, "sides") < 0 || texts_from(f, x->flags, 512, "flags") < 0)
        goto out;
    if (spill_setup(&x->rows, sizeof(XRow), e->rows_in_memory) < 0) goto out;
    PyObject *window = PyDict_GetItemString(words, "tuple_window");
    if (window) {
        x->window = PyLong_AsLongLong(window);
        if (x->window == -1 && PyErr_Occurred()) goto out;
        if (x->window < 1) {
            PyErr_SetString(PyExc_ValueError, "explain: tuple_window: 1 or more SYNs expected");
            goto out;
        }
    }
    rc = 0;
out:
    Py_XDECREF(tf);
    if (rc < 0) { explain_free(x); return -1; }
    explain_free(e->explain);
    e->explain = x;
    return 0;
}

/* ------------------------------------------------------------ values for templates */

typedef struct { char b[12][24]; int n; } Nums; /* numbers of one sentence (a packet's confusions: 8 at most) */

static Val num(Nums *k, int64_t v) {
    char *s = k->b[k->n++];
    return (Val){s, (size_t)(write_i64(s, v, 0) - s)};
}

static Val text_val(const Text *t) { return (Val){t->s, (size_t)t->n}; }

/* the captured payload: where it starts and how many bytes (p.payload) */
static int64_t payload_have(const Pkt *p) {
    if (!p->data) return 0;
    int64_t have = p->caplen - p->payload_off;
    if (have > p->payload_len) have = p->payload_len;
    return have < 0 ? 0 : have;
}

static Val pkt_preview(char *buf, const Pkt *p) {
    int64_t have = payload_have(p);
    int64_t n = have < EX_PREVIEW ? have : EX_PREVIEW;
    return (Val){buf, preview_to(buf, n ? p->data + p->payload_off : NULL, n, have > EX_PREVIEW)};
}

/* f"{ns / 1e6:.{digits}f}" */
static Val ms_val(char *buf, i128 ns, int digits) {
    double v = (ns >= INT64_MIN && ns <= INT64_MAX) ? (double)(int64_t)ns / 1e6 : (double)ns / 1e6;
    int n = snprintf(buf, 64, "%.*f", digits, v);
    return (Val){buf, (size_t)(n < 0 ? 0 : n < 64 ? n : 63)};
}

/* ------------------------------------------------------------ the segment's evidence */

/* Packet.ip_id: the IPv4 header's ID, -1 without one */
static int64_t ex_ip_id(const Pkt *p) {
    if (p->packet) {
        PyObject *v = PyTuple_GET_ITEM(p->packet, PACKET_IP_ID);
        long long id = PyLong_AsLongLong(v);
        if (id == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
        return id;
    }
    if (p->fam != 4 || !p->data || p->ip_off + 6 > p->caplen) return -1;
    return be16(p->data + p->ip_off + 4);
}

#define MAX_BLOCKS 8
typedef struct { int64_t left[MAX_BLOCKS], right[MAX_BLOCKS]; int n; int fastclose; } Opts;

static void opt_seen(Opts *o, int kind, const uint8_t *v, Py_ssize_t n, int64_t base) {
    if (kind == OPT_SACK) {
        for (Py_ssize_t i = 0; i + 7 < n && o->n < MAX_BLOCKS; i += 8) {
            o->left[o->n] = MOD32((int64_t)be32(v + i) - base);
            o->right[o->n] = MOD32((int64_t)be32(v + i + 4) - base);
            o->n++;
        }
    } else if (kind == OPT_MPTCP && n > 0 && v[0] >> 4 == MPTCP_FASTCLOSE) {
        o->fastclose = 1;
    }
}

/* segment_cases.sack_blocks and fastclose: the SACK blocks (relative to the Ack) and
 * MPTCP's MP_FASTCLOSE, from the Packet's options or the TCP header decoded here. More
 * than MAX_BLOCKS blocks do not fit a TCP header (40 bytes of options: 4). */
static int read_opts(const Pkt *p, int64_t rel_ack, Opts *o) {
    o->n = o->fastclose = 0;
    int64_t base = MOD32(p->ack - rel_ack);
    if (p->packet) {
        PyObject *opts = PyTuple_GET_ITEM(p->packet, PACKET_OPTIONS);
        if (!PyTuple_Check(opts)) return 0;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(opts); i++) {
            PyObject *opt = PyTuple_GET_ITEM(opts, i);
            if (!PyTuple_Check(opt) || PyTuple_GET_SIZE(opt) < OPTION_FIELDS) continue;
            long kind = PyLong_AsLong(PyTuple_GET_ITEM(opt, OPTION_KIND));
            if (kind == -1 && PyErr_Occurred()) return -1;
            PyObject *value = PyTuple_GET_ITEM(opt, OPTION_VALUE);
            if (!PyBytes_Check(value)) continue;
            opt_seen(o, (int)kind, (const uint8_t *)PyBytes_AS_STRING(value),
                     PyBytes_GET_SIZE(value), base);
        }
        return 0;
    }
    if (!p->data) return 0;
    int64_t t = p->tcp_off ? p->tcp_off : tcp_start_of(p);
    if (t < 0 || t + 20 > p->caplen) return 0;
    int64_t stop = t + TCP_HEADER_LEN(p->data + t);
    if (stop > p->caplen) stop = p->caplen;
    const uint8_t *d = p->data;
    for (int64_t i = t + 20; i < stop;) {
        int kind = d[i];
        if (kind == 0) break;
        if (kind == 1) { i++; continue; }
        if (i + 1 >= stop) break;
        int len = d[i + 1];
        if (len < 2 || i + len > stop) break;
        opt_seen(o, kind, d + i + 2, len - 2, base);
        i += len;
    }
    return 0;
}

/* The note kinds of the packet the sentence reads (segment_cases.note_kinds), as bits. */
static uint32_t ex_kinds(const Pkt *p, const Ann *a) {
    uint32_t k = 0;
    for (int i = 0; a->bits && i < N_FLAG_NOTES; i++)
        if (a->bits & FLAG_NOTES[i][0]) {
            int kind = FLAG_NOTES[i][1];
            if (kind == N_RETRANSMISSION && (p->flags & F_SYN)) kind = N_SYN_RETRANSMITTED;
            k |= 1u << kind;
        }
    if (a->bits & A_DUPLICATE_ACK) k |= 1u << N_DUPLICATE_ACK;
    if (a->own >= 0) k |= 1u << a->own;
    for (int kind = N_FIRST_CONFUSION; a->told && kind < N_KINDS; kind++)
        if (a->told & CONFUSION_BIT(kind)) k |= 1u << kind;
    return k;
}
#define HAS(kinds, kind) ((kinds) >> (kind) & 1u)

/* ------------------------------------------------------------ one segment's sentence */

typedef struct {
    Engine *e;
    const Pkt *p;
    const Ann *a;
    XSide *own, *peer;
    uint32_t kinds;
    Opts opts;
    int opts_read;
    Nums nums;
    char prev[4 * EX_PREVIEW + 8], acked_prev[4 * EX_PREVIEW + 8], ms[64], blocks[MAX_BLOCKS * 48];
} Seg;

static int seg_opts(Seg *s) {
    if (!s->opts_read) {
        if (read_opts(s->p, s->a->ack, &s->opts) < 0) return -1;
        s->opts_read = 1;
    }
    return 0;
}

static Val side_val(Seg *s) { return text_val(&s->e->explain->sides[s->a->from_client ? 0 : 1]); }
static Val other_val(Seg *s) { return text_val(&s->e->explain->sides[s->a->from_client ? 1 : 0]); }

/* Fill template E_x with named values: vals in its placeholders' order (EXPLAIN_PLACES). */
#define SAY(s, x, ...) say((s), (x), (const Val[]){__VA_ARGS__})
static int say(Seg *s, int which, const Val *vals) {
    return put_template(&s->e->out, &s->e->explain->t[which], vals);
}

static Val blocks_val(Seg *s) { /* segment_cases.sack_text */
    char *o = s->blocks;
    for (int i = 0; i < s->opts.n; i++) {
        if (i) { *o++ = ','; *o++ = ' '; }
        o = write_i64(o, s->opts.left[i], 0);
        *o++ = '-';
        o = write_i64(o, s->opts.right[i], 0);
    }
    return (Val){s->blocks, (size_t)(o - s->blocks)};
}

static int is_copy(Seg *s, int64_t ip_id) {
    const XSide *own = s->own;
    const Pkt *p = s->p;
    return own->has_last && ip_id > 0 && own->last_id == ip_id && own->last_seq == p->seq &&
           own->last_ack == p->ack && own->last_flags == p->flags &&
           own->last_len == p->payload_len && 0 <= p->ts - own->last_ts &&
           p->ts - own->last_ts < COPY_WITHIN_NS;
}

static int rst_sentence(Seg *s) {
    const Pkt *p = s->p;
    Nums *k = &s->nums;
    if (s->a->phase == PH_RESET && HAS(s->kinds, N_CONNECTION_REFUSED)) {
        if (say(s, E_REFUSED, (const Val[]){num(k, p->sport), side_val(s)}) < 0) return -1;
        return W_REFUSED;
    }
    if (p->payload_len > 0) {
        if (SAY(s, E_RESET_DATA, side_val(s), other_val(s), num(k, p->payload_len),
                pkt_preview(s->prev, p)) < 0) return -1;
        return W_RESET;
    }
    if (SAY(s, E_RESET, side_val(s), other_val(s)) < 0) return -1;
    return W_RESET;
}

static int syn_sentence(Seg *s) {
    const Pkt *p = s->p;
    Nums *k = &s->nums;
    int again = HAS(s->kinds, N_SYN_RETRANSMITTED) || HAS(s->kinds, N_RETRANSMISSION);
    if (!(p->flags & F_ACK)) {
        if (again) return SAY(s, E_SYN_AGAIN, side_val(s)) < 0 ? -1 : W_SYN_AGAIN;
        if (p->payload_len > 0)
            return SAY(s, E_SYN_DATA, side_val(s), num(k, p->payload_len), pkt_preview(s->prev, p),
                       num(k, p->seq)) < 0 ? -1 : W_SYN_DATA;
        return SAY(s, E_SYN, side_val(s), num(k, p->seq)) < 0 ? -1 : W_SYN;
    }
    if (again) return SAY(s, E_SYN_ACK_AGAIN, side_val(s)) < 0 ? -1 : W_SYN_ACK_AGAIN;
    if (s->peer->syn_len && s->a->ack == s->peer->syn_len + 1)
        return SAY(s, E_SYN_ACK_DATA, side_val(s), num(k, p->seq), num(k, s->a->ack),
                   num(k, s->peer->syn_len)) < 0 ? -1 : W_SYN_ACK;
    return SAY(s, E_SYN_ACK, side_val(s), num(k, p->seq), num(k, s->a->ack)) < 0 ? -1 : W_SYN_ACK;
}

/* -2: not a re-sent segment */
static int resent_sentence(Seg *s) {
    const Pkt *p = s->p;
    Nums *k = &s->nums;
    const XSide *peer = s->peer;
    int64_t length = p->payload_len, seq = s->a->seq;
    uint32_t kinds = s->kinds;
    int asked = length > 0 && peer->acked == seq &&
                (peer->dupacks >= 1 || (peer->sacked && peer->repeats >= 1));
    if (HAS(kinds, N_OUT_OF_ORDER) && !asked)
        return SAY(s, E_OUT_OF_ORDER, side_val(s), num(k, length), num(k, seq)) < 0 ? -1 : W_OUT_OF_ORDER;
    if (!(kinds & (1u << N_RETRANSMISSION | 1u << N_SPURIOUS_RETRANSMISSION |
                   1u << N_FAST_RETRANSMISSION | 1u << N_OUT_OF_ORDER)))
        return -2;
    if (HAS(kinds, N_SPURIOUS_RETRANSMISSION))
        return SAY(s, E_SPURIOUS, side_val(s), num(k, length), num(k, seq), other_val(s),
                   num(k, peer->acked)) < 0 ? -1 : W_SPURIOUS;
    if ((p->flags & F_FIN) && !length)
        return SAY(s, E_FIN_AGAIN, side_val(s), num(k, seq)) < 0 ? -1 : W_FIN_AGAIN;
    if (asked) {
        if (HAS(kinds, N_FAST_RETRANSMISSION) || peer->dupacks >= 3)
            return SAY(s, E_FAST, side_val(s), num(k, length), num(k, seq), num(k, peer->dupacks))
                   < 0 ? -1 : W_FAST;
        return SAY(s, E_SACK_RECOVERY, side_val(s), num(k, length), num(k, seq)) < 0 ? -1
                                                                                      : W_SACK_RECOVERY;
    }
    if (HAS(kinds, N_OUT_OF_ORDER)) return -2;
    return SAY(s, E_TIMEOUT, side_val(s), num(k, length), num(k, seq)) < 0 ? -1 : W_TIMEOUT;
}

static int fin_sentence(Seg *s) {
    const Pkt *p = s->p;
    Nums *k = &s->nums;
    int64_t length = p->payload_len, seq = s->a->seq, ack = s->a->ack, fin = seq + length;
    const XSide *peer = s->peer;
    int peer_fin = peer->fin_seq >= 0 && (p->flags & F_ACK) && ack == peer->fin_seq + 1;
    if (peer_fin && s->own->acked != ack)
        return SAY(s, E_FIN_ACKS_FIN, side_val(s), num(k, fin), num(k, ack), num(k, peer->fin_seq),
                   other_val(s)) < 0 ? -1 : W_FIN_ACKS_FIN;
    if (peer_fin)
        return SAY(s, E_FIN_LAST_ACK, side_val(s), num(k, fin), other_val(s)) < 0 ? -1 : W_FIN_LAST_ACK;
    if (length > 0)
        return SAY(s, E_FIN_DATA, side_val(s), num(k, length), pkt_preview(s->prev, p), num(k, seq),
                   num(k, fin)) < 0 ? -1 : W_FIN_DATA;
    return SAY(s, E_FIN, side_val(s), num(k, seq)) < 0 ? -1 : W_FIN;
}

static int dupack_sentence(Seg *s) {
    Nums *k = &s->nums;
    int64_t ack = s->a->ack;
    const XSide *own = s->own, *peer = s->peer;
    if (seg_opts(s) < 0) return -1;
    Opts *o = &s->opts;
    if (o->n) {
        int64_t left = o->left[0], right = o->right[0];
        if ((MOD32(ack - right) < HALF32 && right != left) ||
            (o->n > 1 && o->left[1] <= left && right <= o->right[1]))
            return SAY(s, E_DSACK, side_val(s), num(k, ack), num(k, left), num(k, right),
                       other_val(s)) < 0 ? -1 : W_DSACK;
    }
    if (o->fastclose)
        return SAY(s, E_FASTCLOSE, side_val(s), num(k, ack)) < 0 ? -1 : W_FASTCLOSE;
    if (peer->fin_seq >= 0 && ack == peer->fin_seq + 1 && peer->fin_again)
        return SAY(s, own->fin_seq >= 0 ? E_FIN_ACK_AGAIN_TIME_WAIT : E_FIN_ACK_AGAIN, side_val(s),
                   other_val(s), num(k, ack), num(k, peer->fin_seq)) < 0 ? -1 : W_FIN_ACK_AGAIN;
    if (o->n)
        return SAY(s, E_DUPLICATE_ACK_SACK, side_val(s), num(k, ack), blocks_val(s)) < 0
                   ? -1 : W_DUPLICATE_ACK_SACK;
    return SAY(s, E_DUPLICATE_ACK, side_val(s), num(k, ack)) < 0 ? -1 : W_DUPLICATE_ACK;
}

enum { ACKED_DATA = 1, ACKED_FIN, ACKED_BYTES, ACKED_BYTES_FIN };

static Val acked_preview(Seg *s) {
    const XSide *peer = s->peer;
    return (Val){s->acked_prev, preview_to(s->acked_prev, peer->data_prev, peer->data_prev_n,
                                           peer->data_prev_more)};
}

static int data_or_ack_sentence(Seg *s) {
    const Pkt *p = s->p;
    Nums *k = &s->nums;
    const XSide *own = s->own, *peer = s->peer;
    int64_t length = p->payload_len, ack = s->a->ack, seq = s->a->seq;
    int what = 0;
    int64_t start = 0, count = 0;
    if ((p->flags & F_ACK) && own->acked >= 0 && MOD32(ack - own->acked) < HALF32 &&
        ack != own->acked) {
        start = own->acked;
        count = ack - own->acked;
        if (peer->fin_seq >= 0 && start <= peer->fin_seq && peer->fin_seq < ack)
            what = count == 1 ? ACKED_FIN : ACKED_BYTES_FIN;
        else if (peer->data_seq == start && peer->data_len == count) what = ACKED_DATA;
        else what = ACKED_BYTES;
    }
    if (length > 0) {
        Val side = side_val(s), len = num(k, length), prev = pkt_preview(s->prev, p),
            sq = num(k, seq);
        int rc;
        if (what == ACKED_DATA)
            rc = SAY(s, E_DATA_ACKED_DATA, side, len, prev, sq, num(k, count), acked_preview(s),
                     num(k, ack), num(k, start));
        else if (what == ACKED_BYTES_FIN)
            rc = SAY(s, E_DATA_ACKED_BYTES_FIN, side, len, prev, sq, num(k, count - 1), other_val(s),
                     num(k, ack), num(k, start));
        else if (what == ACKED_FIN)
            rc = SAY(s, E_DATA_ACKED_FIN, side, len, prev, sq, other_val(s), num(k, ack),
                     num(k, start));
        else if (what)
            rc = SAY(s, E_DATA_ACKED_BYTES, side, len, prev, sq, num(k, count), num(k, ack),
                     num(k, start));
        else
            rc = SAY(s, E_DATA, side, len, prev, sq, num(k, seq + length));
        return rc < 0 ? -1 : W_DATA;
    }
    if (what == ACKED_DATA)
        return SAY(s, E_ACK_DATA, side_val(s), num(k, count), acked_preview(s), num(k, ack),
                   num(k, start)) < 0 ? -1 : W_ACK;
    if (what == ACKED_FIN)
        return SAY(s, E_ACK_FIN, side_val(s), other_val(s), num(k, ack), num(k, start)) < 0 ? -1 : W_ACK;
    if (what == ACKED_BYTES_FIN)
        return SAY(s, E_ACK_BYTES_FIN, side_val(s), num(k, count - 1), other_val(s), num(k, ack),
                   num(k, start)) < 0 ? -1 : W_ACK;
    if (what)
        return SAY(s, E_ACK_BYTES, side_val(s), num(k, count), num(k, ack), num(k, start)) < 0
                   ? -1 : W_ACK;
    if (HAS(s->kinds, N_WINDOW_UPDATE)) {
        if (seg_opts(s) < 0) return -1;
        int64_t win = s->a->win;
        if (s->opts.n)
            return SAY(s, E_WINDOW_SACK, side_val(s), num(k, win), num(k, ack), blocks_val(s)) < 0
                       ? -1 : W_WINDOW_SACK;
        if (own->win >= 0 && win < own->win)
            return SAY(s, E_WINDOW_SMALLER, side_val(s), num(k, win), num(k, own->win)) < 0
                       ? -1 : W_WINDOW_UPDATE;
        return SAY(s, E_WINDOW_LARGER, side_val(s), num(k, win), num(k, own->win)) < 0
                   ? -1 : W_WINDOW_UPDATE;
    }
    return SAY(s, E_ACK, side_val(s), num(k, ack)) < 0 ? -1 : W_ACK;
}

/* tcp_sentences.tcp_sentence: the case (W_*), its sentence written; -1 on error */
static int tcp_sentence(Seg *s, int64_t ip_id) {
    const Pkt *p = s->p;
    const Ann *a = s->a;
    Nums *k = &s->nums;
    int flags = p->flags;
    uint32_t kinds = s->kinds;
    if (((flags & F_SYN) && (flags & (F_FIN | F_RST))) || ((flags & F_FIN) && (flags & F_RST)))
        return SAY(s, E_INVALID_FLAGS, side_val(s), text_val(&s->e->explain->flags[flags & 0x1FF]))
               < 0 ? -1 : W_INVALID_FLAGS;
    if (is_copy(s, ip_id))
        return SAY(s, E_COPY, num(k, s->own->last_no), ms_val(s->ms, p->ts - s->own->last_ts, 3),
                   num(k, ip_id), side_val(s)) < 0 ? -1 : W_COPY;
    if (flags & F_RST) return rst_sentence(s);
    if (flags & F_SYN) return syn_sentence(s);
    int resent = resent_sentence(s);
    if (resent != -2) return resent;
    if (flags & F_FIN) return fin_sentence(s);
    if (a->phase == PH_HANDSHAKE_3)
        return SAY(s, E_HANDSHAKE_ACK, side_val(s), num(k, a->ack)) < 0 ? -1 : W_HANDSHAKE_ACK;
    if (HAS(kinds, N_ZERO_WINDOW))
        return SAY(s, E_ZERO_WINDOW, side_val(s), other_val(s)) < 0 ? -1 : W_ZERO_WINDOW;
    if (HAS(kinds, N_ZERO_WINDOW_PROBE))
        return SAY(s, E_ZERO_WINDOW_PROBE, side_val(s)) < 0 ? -1 : W_ZERO_WINDOW_PROBE;
    if (HAS(kinds, N_KEEP_ALIVE)) {
        if (s->peer->win == 0)
            return SAY(s, E_ZERO_WINDOW_PROBE_KEEP_ALIVE, side_val(s), other_val(s), num(k, a->seq))
                   < 0 ? -1 : W_ZERO_WINDOW_PROBE;
        return SAY(s, E_KEEP_ALIVE, side_val(s), other_val(s), num(k, a->seq)) < 0 ? -1 : W_KEEP_ALIVE;
    }
    if (HAS(kinds, N_DUPLICATE_ACK)) return dupack_sentence(s);
    return data_or_ack_sentence(s);
}

static int resent_why(int why) {
    return why == W_SPURIOUS || why == W_FAST || why == W_SACK_RECOVERY || why == W_TIMEOUT ||
           why == W_FIN_AGAIN || why == W_SYN_AGAIN || why == W_SYN_ACK_AGAIN;
}

/* segment_cases.remember */
static int remember(Seg *s, int why, int64_t ip_id) {
    const Pkt *p = s->p;
    const Ann *a = s->a;
    XSide *own = s->own;
    int flags = p->flags;
    if (why == W_COPY) return 0;
    if (p->payload_len > 0 && !resent_why(why)) {
        own->data_seq = a->seq;
        own->data_len = p->payload_len;
        int64_t have = payload_have(p);
        own->data_prev_n = (int8_t)(have < EX_PREVIEW ? have : EX_PREVIEW);
        own->data_prev_more = have > EX_PREVIEW;
        if (own->data_prev_n) memcpy(own->data_prev, p->data + p->payload_off, (size_t)own->data_prev_n);
    }
    if ((flags & F_SYN) && !(flags & F_ACK)) own->syn_len = p->payload_len;
    if (flags & F_FIN) own->fin_seq = a->seq + p->payload_len;
    own->fin_again = (flags & F_FIN) && resent_why(why);
    if (flags & F_ACK) {
        own->dupacks = HAS(s->kinds, N_DUPLICATE_ACK) ? own->dupacks + 1 : 0;
        own->repeats = (a->ack == own->acked && !p->payload_len) ? own->repeats + 1 : 0;
        if (seg_opts(s) < 0) return -1;
        own->sacked = s->opts.n > 0;
        own->acked = a->ack;
    }
    own->win = a->win;
    own->has_last = 1;
    own->last_id = ip_id;
    own->last_seq = p->seq;
    own->last_ack = p->ack;
    own->last_flags = flags;
    own->last_len = p->payload_len;
    own->last_no = s->e->count;
    own->last_ts = p->ts;
    return 0;
}

/* ------------------------------------------------------------ Zeek's state (zeek.py) */

/* A history letter: counted, and run through the RSTOS0 pattern ``\^?S[^HAFGIQ]*R.*``
 * (matched whole; zmatch: 0 start, 1 after ^, 2 after S, 3 matched, -1 failed). */
static void zeek_letter(ConvExplain *x, char letter) {
    x->zletters++;
    switch (x->zmatch) {
    case 0: x->zmatch = letter == '^' ? 1 : letter == 'S' ? 2 : -1; break;
    case 1: x->zmatch = letter == 'S' ? 2 : -1; break;
    case 2:
        if (letter == 'R') x->zmatch = 3;
        else if (strchr("HAFGIQ", letter)) x->zmatch = -1;
        break;
    default: break;
    }
}

static void z_once(ConvExplain *x, int which, char letter, int orig) {
    uint16_t bit = (uint16_t)(1u << (which + (orig ? 0 : 4)));
    if (x->zonce & bit) return;
    x->zonce |= bit;
    zeek_letter(x, orig ? letter : (char)(letter + 32));
}

static void z_seq(ConvExplain *x, int which, char letter, int orig, int64_t seq) {
    int k = which + (orig ? 0 : 4);
    if ((x->zseq_set >> k & 1) && x->zlast_seq[k] == seq) return;
    x->zseq_set |= (uint8_t)(1u << k);
    x->zlast_seq[k] = seq;
    zeek_letter(x, orig ? letter : (char)(letter + 32));
}

static void z_log(ConvExplain *x, int which, char letter, int orig) {
    uint64_t n = ++x->zcounts[which + (orig ? 0 : 3)];
    while (n % 10 == 0) n /= 10;
    if (n == 1) zeek_letter(x, orig ? letter : (char)(letter + 32));
}

/* ZeekConn.see of a TCP packet */
static void zeek_tcp(ConvExplain *x, const Pkt *p, const Ann *a) {
    int orig = a->from_client, f = p->flags;
    if (!x->zletters && !orig) zeek_letter(x, '^');
    if (f & F_SYN) z_seq(x, (f & F_ACK) ? 1 : 0, (f & F_ACK) ? 'H' : 'S', orig, p->seq);
    if (f & F_FIN) z_seq(x, 2, 'F', orig, p->seq);
    if (f & F_RST) z_seq(x, 3, 'R', orig, p->seq);
    if ((f & F_SYN) && (f & (F_FIN | F_RST))) z_once(x, 3, 'Q', orig);
    if ((f & F_FIN) && (f & F_RST)) z_once(x, 2, 'I', orig);
    if (p->payload_len > 0) z_once(x, 1, 'D', orig);
    else if ((f & F_ACK) && !(f & (F_SYN | F_FIN | F_RST))) z_once(x, 0, 'A', orig);
    if (p->window == 0 && !(f & F_RST)) z_log(x, 1, 'W', orig);
    for (int i = 0; a->bits && i < N_FLAG_NOTES; i++) { /* the notes, in the tracker's order */
        if (!(a->bits & FLAG_NOTES[i][0])) continue;
        int kind = FLAG_NOTES[i][1];
        if (kind == N_RETRANSMISSION && (f & F_SYN)) kind = N_SYN_RETRANSMITTED;
        if (kind == N_RETRANSMISSION || kind == N_FAST_RETRANSMISSION ||
            kind == N_SPURIOUS_RETRANSMISSION)
            z_log(x, 0, 'T', orig);
        else if (kind == N_LOST_SEGMENT)
            z_log(x, 2, 'G', orig);
    }
    int i = orig ? 0 : 1;
    uint8_t *st = x->zstate, own = st[i], peer = st[1 - i];
    if (f & F_RST) own = EZ_RESET;
    else if (f & F_FIN) own = EZ_CLOSED;
    else if (f & F_SYN) { if (own == EZ_INACTIVE) own = (f & F_ACK) ? EZ_SYN_ACK_SENT : EZ_SYN_SENT; }
    else if (own == EZ_INACTIVE) own = EZ_PARTIAL;
    else if ((own == EZ_SYN_SENT || own == EZ_SYN_ACK_SENT) && (f & F_ACK) && peer != EZ_INACTIVE) {
        own = EZ_ESTABLISHED;
        if (peer == EZ_SYN_SENT || peer == EZ_SYN_ACK_SENT) st[1 - i] = EZ_ESTABLISHED;
    }
    st[i] = own;
}

/* ZeekConn.conn_state(True, orig_bytes, resp_bytes) */
static int zeek_conn_state(const ConvExplain *x, int64_t orig_bytes, int64_t resp_bytes) {
    int os_ = x->zstate[0], rs = x->zstate[1];
    int o_inactive = os_ == EZ_INACTIVE || os_ == EZ_PARTIAL;
    int r_inactive = rs == EZ_INACTIVE || rs == EZ_PARTIAL;
    if (rs == EZ_RESET) {
        if (os_ == EZ_SYN_SENT || os_ == EZ_SYN_ACK_SENT ||
            (os_ == EZ_RESET && !orig_bytes && !resp_bytes))
            return ZS_REJ;
        return o_inactive ? ZS_RSTRH : ZS_RSTR;
    }
    if (os_ == EZ_RESET) {
        if (r_inactive) return x->zmatch == 3 ? ZS_RSTOS0 : ZS_OTH;
        return ZS_RSTO;
    }
    if (rs == EZ_CLOSED && os_ == EZ_CLOSED) return ZS_SF;
    if (os_ == EZ_CLOSED) return r_inactive ? ZS_SH : ZS_S2;
    if (rs == EZ_CLOSED) return o_inactive ? ZS_SHR : ZS_S3;
    if (os_ == EZ_SYN_SENT && rs == EZ_INACTIVE) return ZS_S0;
    if (os_ == EZ_ESTABLISHED && rs == EZ_ESTABLISHED) return ZS_S1;
    return ZS_OTH;
}

/* The conversation's summary row (explain.PacketExplainer.summary reads it at the end):
 * made when the engine forgets it, or at the end for those still held. */
static int explain_row(Engine *e, Conv *c) {
    Explain *x = e->explain;
    ConvExplain *cx = c->ex;
    if (!x || !cx || !cx->seen || c->proto != 6) return 0;
    XRow *r = row_slot(&x->rows, sizeof(XRow), c->stream);
    if (!r) return -1;
    r->set = 1;
    r->fam = (uint8_t)c->client.fam;
    r->state = (uint8_t)zeek_conn_state(cx, c->dirs[0].payload_bytes, c->dirs[1].payload_bytes);
    r->seen = (uint8_t)((c->synack_ts < 0 ? 1 : 0) | (c->syn_ts >= 0 ? 2 : 0));
    r->cport = (int32_t)c->client.port;
    r->sport = (int32_t)c->server.port;
    memcpy(r->caddr, c->client.addr, 16);
    memcpy(r->saddr, c->server.addr, 16);
    if (row_filled(&x->rows, r) < 0) return -1;
    if (c->stream > x->max_stream) x->max_stream = c->stream;
    cx->rowed = 1;
    return 0;
}

/* ------------------------------------------------------------ confusions.py */

/* the 4-tuples SYNs used (ConfusionFinder._ended and _order): the same window as the
 * Python twin's. Each SYN (a SYN-ACK too) that reaches confusions() is numbered n = 1, 2,
 * ...; a 4-tuple is filed with the number of its last SYN m, seen by SYN n while
 * n - m < window, then deleted, so the table holds at most `window` 4-tuples whatever the
 * file (at 65,536: 8 MiB of slots at most and a 256 KiB ring, where it grew by two
 * 48-byte slots a connection, 384 MiB for 2M connections).
 *
 * The table: open addressing with linear probing, at most 3/4 full, 64 bytes a slot.
 * The ring: ring[(m - 1) % window] is the slot SYN m filed (made whole at the first SYN
 * for the default window, 256 KiB; a larger window set for a test or by hand grows
 * by doubling until it has `window` entries); at SYN n the slot of SYN n - window is read from it, and its
 * 4-tuple deleted when its last SYN is still n - window (else a later SYN filed it again
 * and it stays). Only SYN m files with last == m, so that test needs no more: a slot
 * the ring names after its 4-tuple moved or went holds another 4-tuple, whose last SYN
 * differs.
 *
 * Deletion by backward shift (Knuth's algorithm R), not tombstones: every SYN past the
 * window deletes one 4-tuple and files one, forever; tombstones would fill the table
 * until a rebuild (a pause of the whole table every so often, and probes over dead
 * slots meanwhile), where the shift moves back only the few slots of the cluster after
 * the hole, keeps each probe as short as in a table that never deleted, and needs no
 * rebuild. Each slot keeps its hash for it (a moved slot's home; a growth rehashes none),
 * and a moved slot's ring entry follows it. */
#define RING_AT(x, m) ((size_t)(((m) - 1) % (x)->window))

/* the slot of the 4-tuple w (hash h), or the empty one where it goes */
static size_t tuple_slot(Explain *x, const uint64_t *w, uint64_t h) {
    size_t mask = x->cap_tuples - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        XTuple *t = &x->tuples[i];
        if (!t->stream1 || (t->h == h && !memcmp(t->w, w, sizeof t->w))) return i;
    }
}

static int tuple_grow(Explain *x) {
    size_t cap = x->cap_tuples ? x->cap_tuples * 2 : 1024;
    if (cap > ((size_t)1 << 32)) { PyErr_NoMemory(); return -1; } /* the ring's uint32_t */
    XTuple *old = x->tuples, *t = PyMem_Calloc(cap, sizeof *t);
    if (!t) { PyErr_NoMemory(); return -1; }
    size_t ocap = x->cap_tuples;
    x->tuples = t;
    x->cap_tuples = cap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].stream1) {
            size_t j = tuple_slot(x, old[i].w, old[i].h);
            t[j] = old[i];
            x->ring[RING_AT(x, old[i].last)] = (uint32_t)j;
        }
    PyMem_Free(old);
    return 0;
}

/* the slot at i emptied: the slots after it in its cluster that may move back, moved */
static void tuple_delete(Explain *x, size_t i) {
    size_t mask = x->cap_tuples - 1;
    for (size_t j = (i + 1) & mask; x->tuples[j].stream1; j = (j + 1) & mask) {
        XTuple *t = &x->tuples[j];
        /* t may fill the hole when the hole lies between its home and j (cyclically) */
        if (((j - (t->h & mask)) & mask) >= ((j - i) & mask)) {
            x->tuples[i] = *t;
            x->ring[RING_AT(x, t->last)] = (uint32_t)i;
            i = j;
        }
    }
    x->tuples[i].stream1 = 0;
    x->n_tuples--;
}

/* the ring grown while the SYNs are fewer than the window (n: this SYN's number) */
static int ring_reserve(Explain *x, int64_t n) {
    size_t r = RING_AT(x, n);
    if (r < x->cap_ring) return 0;
    size_t cap = x->cap_ring ? x->cap_ring * 2 : TUPLE_WINDOW;
    if ((int64_t)cap > x->window) cap = (size_t)x->window;
    uint32_t *ring = PyMem_Realloc(x->ring, cap * sizeof *ring);
    if (!ring) { PyErr_NoMemory(); return -1; }
    x->ring = ring;
    x->cap_ring = cap;
    return 0;
}

/* the earlier stream on the packet's 4-tuple within the window (-1: none; -2: an error),
 * then this one filed there with this SYN's number */
static int64_t tuple_swap(Engine *e, const Pkt *p, int64_t stream) {
    Explain *x = e->explain;
    uint64_t w[5] = {(uint64_t)(uint8_t)p->fam | (uint64_t)(uint32_t)p->sport << 8 |
                     (uint64_t)(uint32_t)p->dport << 40, 0, 0, 0, 0};
    w[0] ^= (uint64_t)(p->sport < 0) << 6 | (uint64_t)(p->dport < 0) << 7;
    memcpy(&w[1], p->src, 16);
    memcpy(&w[3], p->dst, 16);
    int64_t n = ++x->syns;
    size_t r = RING_AT(x, n);
    /* SYN n - window's slot, fetched while the hash is computed (a cache miss each SYN
     * past the window otherwise: a slot of a table of megabytes, anywhere) */
    XTuple *o = n > x->window ? &x->tuples[x->ring[r]] : NULL;
    if (o) __builtin_prefetch(o);
    uint64_t h = siphash13(e->hash_key, w, 5);
    if (o) { /* its 4-tuple deleted, unless filed again since */
        if (o->stream1 && o->last == n - x->window) tuple_delete(x, x->ring[r]);
    } else if (ring_reserve(x, n) < 0) {
        return -2;
    }
    if ((x->n_tuples + 1) * 4 > x->cap_tuples * 3 && tuple_grow(x) < 0) return -2;
    size_t i = tuple_slot(x, w, h);
    XTuple *t = &x->tuples[i];
    int64_t earlier = t->stream1 - 1;
    if (!t->stream1) {
        memcpy(t->w, w, sizeof w);
        t->h = h;
        x->n_tuples++;
    }
    t->stream1 = stream + 1;
    t->last = n;
    x->ring[r] = (uint32_t)i;
    return earlier;
}

/* offload.partial_checksum, with the field and the real sum: 1 when partial */
static int partial_sums(const Pkt *p, uint32_t *field, uint32_t *real) {
    if (p->proto != 6 || p->fragment || p->trunc_n || !p->data) return 0;
    int64_t start = tcp_start_of(p);
    if (start < 0) return 0;
    int64_t end = p->payload_off + p->payload_len, length = end - start;
    if (end > p->caplen || length > 0xFFFF) return 0;
    const uint8_t *t = p->data + start;
    uint32_t f = be16(t + 16), partial = fold16((uint64_t)address_sum(p) + 6 + (uint64_t)length);
    if (f != partial) return 0;
    uint64_t sum = partial;
    for (int64_t i = 0; i + 1 < length; i += 2)
        if (i != 16) sum += be16(t + i);
    if (length & 1) sum += (uint32_t)t[length - 1] << 8;
    uint32_t r = ~fold16(sum) & 0xFFFF;
    if (f == r) return 0;
    *field = f;
    *real = r;
    return 1;
}

/* " " then a confusion's sentence */
static int say_more(Seg *s, int which, const Val *vals) {
    if (buf_reserve(&s->e->out, 1) < 0) return -1;
    put(&s->e->out, " ", 1);
    return say(s, which, vals);
}

/* a side's words with a capital (the confusions' "{side}" starts their sentence) */
static Val capital_side(char *buf, const Text *t) {
    size_t n = (size_t)t->n < 63 ? (size_t)t->n : 63;
    memcpy(buf, t->s, n);
    if (n && buf[0] >= 'a' && buf[0] <= 'z') buf[0] = (char)(buf[0] - 32);
    return (Val){buf, n};
}

#define SAID(kind) (1u << (kind))
enum { XC_PARTIAL, XC_WINDOW_SCALE };

/* ConfusionFinder.find: the sentences after the packet's own */
static int confusions(Seg *s, Conv *c, ConvExplain *cx, int own_fin, int acks_fin) {
    Engine *e = s->e;
    Explain *x = e->explain;
    const Pkt *p = s->p;
    Nums *k = &s->nums;
    int flags = p->flags, me = s->a->from_client ? 0 : 1;
    if (flags & F_SYN) {
        int64_t earlier = tuple_swap(e, p, c->stream);
        if (earlier == -2) return -1;
        if (!(flags & F_ACK) && earlier >= 0 && earlier != c->stream &&
            say_more(s, E_C_PORT_REUSE, (const Val[]){num(k, earlier)}) < 0)
            return -1;
    }
    uint32_t field, real;
    if (partial_sums(p, &field, &real)) {
        x->partial++;
        if (!(cx->said & SAID(XC_PARTIAL))) {
            cx->said |= SAID(XC_PARTIAL);
            char a[16], b[16];
            snprintf(a, sizeof a, "0x%04x", field);
            snprintf(b, sizeof b, "0x%04x", real);
            if (say_more(s, E_C_PARTIAL_CHECKSUM,
                         (const Val[]){{a, strlen(a)}, {b, strlen(b)}}) < 0)
                return -1;
        }
    }
    int64_t mss = c->dirs[s->a->from_client ? 1 : 0].mss;
    int64_t bound = mss < 0 ? SMALLEST_MTU_PAYLOAD
                            : (SMALLEST_MTU_PAYLOAD < mss - 40 ? SMALLEST_MTU_PAYLOAD : mss - 40);
    MtuCut cut;
    int64_t segments = p->payload_len > bound && p->data ? mtu_cut(p, mss, &cut) : 0;
    if (segments) {
        x->larger++;
        if (say_more(s, E_C_LARGER_THAN_MTU,
                     (const Val[]){num(k, cut.size), num(k, cut.mtu), num(k, p->payload_len),
                                   num(k, segments), num(k, cut.segment)}) < 0)
            return -1;
    }
    if (c->syn_ts < 0 && c->synack_ts < 0 && !(cx->said & SAID(XC_WINDOW_SCALE))) {
        cx->said |= SAID(XC_WINDOW_SCALE);
        if (say_more(s, E_C_WINDOW_SCALE_UNKNOWN, (const Val[]){num(k, p->window)}) < 0) return -1;
    }
    if (p->payload_len > 0 && !(flags & (F_PSH | F_FIN | F_SYN | F_RST)) &&
        say_more(s, E_C_PART_OF_MESSAGE, NULL) < 0)
        return -1;
    /* ConfusionFinder._nagle */
    if (!(flags & (F_SYN | F_FIN | F_RST))) {
        if (p->payload_len == 0) {
            if (flags & F_ACK) {
                cx->pack_set[me] = 1;
                cx->pack[me] = s->a->ack;
                cx->pack_ts[me] = p->ts;
            }
        } else {
            int had = cx->data_set[me], acked = cx->pack_set[1 - me];
            int64_t before = cx->data_next[me];
            i128 before_ts = cx->data_ts[me];
            cx->data_set[me] = 1;
            cx->data_next[me] = s->a->seq + p->payload_len;
            cx->data_ts[me] = p->ts;
            if (had && acked && s->a->seq == before && cx->pack[1 - me] == before) {
                i128 waited = cx->pack_ts[1 - me] - before_ts, released = p->ts - cx->pack_ts[1 - me];
                if (waited >= DELAYED_NS && 0 <= released && released <= RELEASED_NS) {
                    x->nagle++;
                    char side[64];
                    if (say_more(s, E_C_NAGLE_STALL,
                                 (const Val[]){capital_side(side, &x->sides[me]),
                                               ms_val(s->ms, p->ts - before_ts, 1),
                                               text_val(&x->sides[1 - me])}) < 0)
                        return -1;
                }
            }
        }
    }
    if (acks_fin && own_fin) {
        char side[64];
        if (say_more(s, E_C_TIME_WAIT,
                     (const Val[]){capital_side(side, &x->sides[me]), num(k, p->sport)}) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ the packet */

/* capital(text) of the sentence written from mark: its first character upper case
 * (str.upper(); ASCII here, any other through Python) */
static int capital_at(Engine *e, size_t mark) {
    Buf *b = &e->out;
    if (mark >= b->len) return 0;
    unsigned char c0 = (unsigned char)b->p[mark];
    if (c0 < 0x80) {
        if (c0 >= 'a' && c0 <= 'z') b->p[mark] = (char)(c0 - 32);
        return 0;
    }
    size_t n = c0 >= 0xF0 ? 4 : c0 >= 0xE0 ? 3 : 2;
    if (mark + n > b->len) return 0;
    PyObject *ch = PyUnicode_DecodeUTF8(b->p + mark, (Py_ssize_t)n, "strict");
    PyObject *up = ch ? PyObject_CallMethod(ch, "upper", NULL) : NULL;
    Py_XDECREF(ch);
    if (!up) return -1;
    Py_ssize_t un;
    const char *us = PyUnicode_AsUTF8AndSize(up, &un);
    int rc = -1;
    if (us && buf_reserve(b, (size_t)un) == 0) {
        size_t tail = b->len - mark - n;
        memmove(b->p + mark + un, b->p + mark + n, tail);
        memcpy(b->p + mark, us, (size_t)un);
        b->len = mark + (size_t)un + tail;
        rc = 0;
    }
    Py_DECREF(up);
    return rc;
}

/* PacketExplainer.explain, under the packet's line: "      " + the sentence + "\n"
 * (nothing for a packet outside a conversation). */
static int explain_packet(Engine *e, const Pkt *p, const Ann *a) {
    Conv *c = a->conv;
    if (!c) return 0;
    Buf *b = &e->out;
    if (buf_reserve(b, 6) < 0) return -1;
    put(b, "      ", 6);
    size_t mark = b->len;
    Seg s;
    s.e = e;
    s.p = p;
    s.a = a;
    s.opts_read = 0;
    s.nums.n = 0;
    if (c->proto != 6) { /* UDP */
        if (SAY(&s, E_UDP, side_val(&s), num(&s.nums, p->payload_len), pkt_preview(s.prev, p)) < 0)
            return -1;
    } else {
        if (!c->ex && !(c->ex = PyMem_Calloc(1, sizeof(ConvExplain)))) { PyErr_NoMemory(); return -1; }
        ConvExplain *cx = c->ex;
        if (!cx->seen) {
            cx->seen = 1;
            for (int i = 0; i < 2; i++) {
                XSide *d = &cx->side[i];
                d->data_seq = d->fin_seq = d->acked = d->win = -1;
            }
        }
        zeek_tcp(cx, p, a);
        s.own = &cx->side[a->from_client ? 0 : 1];
        s.peer = &cx->side[a->from_client ? 1 : 0];
        s.kinds = ex_kinds(p, a);
        int64_t ip_id = ex_ip_id(p);
        int why = tcp_sentence(&s, ip_id);
        if (why < 0) return -1;
        e->explain->counts[why]++;
        if (capital_at(e, mark) < 0) return -1;
        mark = b->len; /* the confusions' sentences keep their own capitals */
        if (why != W_COPY) {
            int acks_fin = (p->flags & F_ACK) && !(p->flags & F_FIN) && s.peer->fin_seq >= 0 &&
                           a->ack == s.peer->fin_seq + 1 && s.own->acked != a->ack;
            s.nums.n = 0;
            if (confusions(&s, c, cx, s.own->fin_seq >= 0, acks_fin) < 0) return -1;
        }
        s.nums.n = 0;
        if (remember(&s, why, ip_id) < 0) return -1;
    }
    if (c->proto != 6 && capital_at(e, mark) < 0) return -1;
    if (buf_reserve(b, 1) < 0) return -1;
    put(b, "\n", 1);
    return 0;
}

/* The packet's sentence (explain_packet); in colour, its line wrapped in the explain
 * style's sequences as the view styles it (PacketView.styled: EXPLAIN_STYLE), after the
 * packet's own lines and --hex rows. */
static int explain_line(Engine *e, const Pkt *p, const Ann *a) {
    size_t start = e->out.len;
    if (explain_packet(e, p, a) < 0) return -1;
    if (!e->color || e->out.len == start) return 0;
    return wrap_lines(e, start, 0, &e->palette->code[COLOR_EXPLAIN], NULL);
}

/* Engine.explained(): {"counts": [per W_*], "partial": n, "larger": n, "nagle": n} */
static PyObject *Engine_explained(Engine *e, PyObject *unused) {
    Explain *x = e->explain;
    if (!x) { PyErr_SetString(PyExc_RuntimeError, "no explain= given"); return NULL; }
    PyObject *counts = PyList_New(W_COUNT);
    if (!counts) return NULL;
    for (int i = 0; i < W_COUNT; i++) {
        PyObject *n = PyLong_FromUnsignedLongLong(x->counts[i]);
        if (!n) { Py_DECREF(counts); return NULL; }
        PyList_SET_ITEM(counts, i, n);
    }
    return Py_BuildValue("{sNsKsKsK}", "counts", counts, "partial", (unsigned long long)x->partial,
                         "larger", (unsigned long long)x->larger, "nagle",
                         (unsigned long long)x->nagle);
}

static int rows_of_queue(Engine *e, Ring *r) {
    for (size_t i = 0; i < r->len; i++)
        if (explain_row(e, r->items[(r->head + i) % r->cap]) < 0) return -1;
    return 0;
}

static void endpoint_of(char *out, int *len, int fam, const uint8_t *addr, int64_t port) {
    Conv c;
    char text[2][64];
    c.ep_text = text;
    c.client.fam = fam;
    memcpy(c.client.addr, addr, 16);
    c.client.port = port;
    endpoint_text(&c, 0);
    memcpy(out, text[0], c.ep_len[0]);
    *len = c.ep_len[0];
}

/* Engine.explain_rows(start) -> (next, [(stream, client, server, state, no_synack, syn)])
 * from TCP stream ``start`` on, at most 4096 rows a call (next -1: the last); the
 * conversations still held are given their rows at the first call. */
static PyObject *Engine_explain_rows(Engine *e, PyObject *arg) {
    Explain *x = e->explain;
    if (!x) { PyErr_SetString(PyExc_RuntimeError, "no explain= given"); return NULL; }
    long long start = PyLong_AsLongLong(arg);
    if (start == -1 && PyErr_Occurred()) return NULL;
    if (start == 0) {
        for (size_t i = 0; i < e->nbuckets; i++)
            if (e->table[i].conv && explain_row(e, e->table[i].conv) < 0) return NULL;
        if (rows_of_queue(e, &e->ended) < 0 || rows_of_queue(e, &e->open) < 0) return NULL;
    }
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    long long s = start < 0 ? 0 : start;
    for (; s <= x->max_stream && PyList_GET_SIZE(list) < 4096; s++) {
        XRow *r = row_at(&x->rows, sizeof(XRow), s);
        if (!r && PyErr_Occurred()) { Py_DECREF(list); return NULL; } /* not read back */
        unsigned shift = row_shift(&x->rows);
        if (!r) { s = (long long)((((size_t)s >> shift) + 1) << shift) - 1; continue; }
        if (!r->set) continue;
        char ct[64], st[64];
        int cn, sn;
        endpoint_of(ct, &cn, r->fam, r->caddr, r->cport);
        endpoint_of(st, &sn, r->fam, r->saddr, r->sport);
        PyObject *row = Py_BuildValue("(Ls#s#iOO)", s, ct, (Py_ssize_t)cn, st, (Py_ssize_t)sn,
                                      (int)r->state, (r->seen & 1) ? Py_True : Py_False,
                                      (r->seen & 2) ? Py_True : Py_False);
        if (!row || PyList_Append(list, row) < 0) { Py_XDECREF(row); Py_DECREF(list); return NULL; }
        Py_DECREF(row);
    }
    return Py_BuildValue("(LN)", s > x->max_stream ? -1LL : s, list);
}

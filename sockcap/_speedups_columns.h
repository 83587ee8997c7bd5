/* The export's columns: the packets table filled by the engine in batches, and Zeek's
 * conn.log state kept beside each conversation (included by _speedups.c, whose types and
 * helpers it uses; everything here is static).
 *
 * Why: ``sockcap export`` ran the pure loop, a dict a packet (``show --json``'s record)
 * and then a tuple a row that pyarrow turned back into columns: ~40 CPU s for a million
 * packets, 4x tshark -T json (bench/RESULTS.md). Here each packet the engine files is
 * appended field by field into per-column buffers (numbers as typed little-endian arrays,
 * text and bytes as int32 offsets + data, lists as offsets into a child column, nulls in
 * a validity bitmap: Arrow's own layout), which Python hands to pyarrow with
 * ``Array.from_buffers`` — no Python object a row. The pure twin
 * (sockcap.pipeline.engine.PureEngine, sockcap.pipeline.columns) makes the same buffers
 * from the reference row (sockcap.render.tables.packet_row); tests/test_export_columns.py
 * requires them byte for byte equal.
 *
 * The API (both twins): ``columns(flag_names, phase_values, kind_texts, dupack, on_forget,
 * batch_rows, batch_bytes)`` turns the mode on (the packets' text is not made; each
 * conversation is handed to ``on_forget`` when the tracker forgets it, whether or not it
 * was viewed; pcap()/pcapng() stop taking records once a batch holds batch_rows rows or
 * batch_bytes of payload, so the caller takes it before the next frame);
 * ``held() -> (rows, payload bytes, packets read)``; ``batch() -> (rows, columns)`` takes
 * the rows held (see sockcap/pipeline/columns.py for the layout of a column);
 * ``zeek(conversation) -> (history, originator state, responder state)``;
 * ``finish()``: the conversations still live handed to ``on_forget``, by protocol and
 * stream, as at the end of the input. ``on_forget`` may be None: the export passes None
 * and turns on the conversations table's own columns (``conversation_columns()``,
 * _speedups_convcols.h), which then take each conversation in on_forget's place.
 *
 * Zeek's letters and endpoint states are sockcap/analysis/zeek.py's ZeekConn, transcribed
 * (that module is the reference); its conn_state() is transcribed in _speedups_convcols.h.
 */

/* The packets table's columns, in sockcap.render.tables.PACKET_COLUMNS' order (the
 * Python side checks the order and kinds against PACKET_COLUMN_KINDS). */
enum { PC_NO, PC_TIME, PC_TS, PC_SRC, PC_SPORT, PC_DST, PC_DPORT, PC_PROTO, PC_FLAGS, PC_SEQ,
       PC_ACK, PC_WIN, PC_LEN, PC_PHASE, PC_PAYLOAD, PC_STREAM, PC_FROM, PC_FRAME_LEN,
       PC_CAPTURED_LEN, PC_TRUNCATED, PC_NOTES, PC_TUNNEL, PC_COUNT };
/* q int64, i int32, d float64, s string, b binary, L list<string> */
static const char PACKET_COLUMN_KINDS[] = "qddsisisLqqqqsbqsqqsLs";
_Static_assert(sizeof PACKET_COLUMN_KINDS == PC_COUNT + 1, "a kind a column");

typedef struct {
    char kind;
    Buf data;   /* values (numbers), or the bytes of the strings (child strings: lists) */
    Buf offs;   /* int32 offsets (strings; lists: into the child strings) */
    Buf coffs;  /* lists: the child strings' int32 offsets */
    Buf valid;  /* the validity bitmap, a bit a row (least significant first) */
    size_t nulls;
} Col;

typedef struct Cols {
    Col c[PC_COUNT];
    size_t rows, payload;
    size_t batch_rows, batch_bytes; /* pcap()/pcapng() stop taking records at either */
    PyObject *on_forget;        /* NULL: conversations go to conv's columns instead */
    struct ConvCols *conv;      /* the conversations table (_speedups_convcols.h), or NULL */
    Text flag_names[9];
    Text phases[PH_COUNT];
    Text kinds[N_KINDS];
    Text dup_before, dup_after; /* "duplicate ACK #{n}" around {n} */
    Text num_before[2], num_after[2]; /* the same of N_LARGER_THAN_MTU and N_NAGLE_STALL */
} Cols;

/* Zeek's letters (ZeekConn): once-only letters A D I Q, s h f r by sequence number, t w g
 * logarithmically; upper case from the originator. */
typedef struct Zeek {
    uint8_t states[2];
    uint8_t seq_set;      /* bit: last_seq[k] holds a value (S H F R, then s h f r) */
    uint8_t reported;     /* handed to on_forget by finish() */
    uint16_t once;        /* bit: once-only letter written (A D I Q, then a d i q) */
    int64_t last_seq[8];
    uint64_t counts[6];   /* T W G, then t w g */
    uint32_t len, cap;
    char letters[];
} Zeek;

enum { Z_INACTIVE, Z_SYN_SENT, Z_SYN_ACK_SENT, Z_PARTIAL, Z_ESTABLISHED, Z_CLOSED, Z_RESET,
       Z_ACTIVE };

static int zeek_put(Conv *c, char letter) {
    Zeek *z = c->zeek;
    if (z->len == z->cap) {
        if (z->cap > (1u << 30)) { PyErr_NoMemory(); return -1; }
        Zeek *n = PyMem_Realloc(z, sizeof *z + 2 * (size_t)z->cap);
        if (!n) { PyErr_NoMemory(); return -1; }
        n->cap *= 2;
        c->zeek = z = n;
    }
    z->letters[z->len++] = letter;
    return 0;
}

static inline char zcase(char letter, int orig) { return orig ? letter : (char)(letter + 32); }

static int zeek_once(Conv *c, int which, char letter, int orig) {
    uint16_t bit = (uint16_t)(1u << (which + (orig ? 0 : 4)));
    if (c->zeek->once & bit) return 0;
    c->zeek->once |= bit;
    return zeek_put(c, zcase(letter, orig));
}

static int zeek_seq(Conv *c, int which, char letter, int orig, int64_t seq) {
    Zeek *z = c->zeek;
    int k = which + (orig ? 0 : 4);
    if ((z->seq_set >> k & 1) && z->last_seq[k] == seq) return 0;
    z->seq_set |= (uint8_t)(1u << k);
    z->last_seq[k] = seq;
    return zeek_put(c, zcase(letter, orig));
}

static int zeek_log(Conv *c, int which, char letter, int orig) {
    uint64_t n = ++c->zeek->counts[which + (orig ? 0 : 3)];
    while (n % 10 == 0) n /= 10;
    return n == 1 ? zeek_put(c, zcase(letter, orig)) : 0;
}

/* A note's letter: 'T' for the retransmission notes, 'G' for a lost segment, else 0. */
static char zeek_note_letter(int kind) {
    if (kind == N_RETRANSMISSION || kind == N_FAST_RETRANSMISSION ||
        kind == N_SPURIOUS_RETRANSMISSION)
        return 'T';
    return kind == N_LOST_SEGMENT ? 'G' : 0;
}

typedef struct {
    int kind;          /* the note's kind, or -1 (a decoder's note, or a counted one) */
    const char *s;     /* its JSON text */
    Py_ssize_t n;
    PyObject *owner;   /* a decoder's note: the str it was read from (borrowed) */
} NoteOut;
#define STACK_NOTES 48 /* notes of a packet held on the stack; more: on the heap */
/* the analysis', a duplicate ACK, own, the confusions */
#define ENGINE_NOTES (N_FLAG_NOTES + 2 + N_KINDS - N_FIRST_CONFUSION)

/* ZeekConn.see */
static int zeek_see(Engine *e, const Pkt *p, const Ann *a, const NoteOut *notes, int n_notes) {
    Conv *c = a->conv;
    if (!c->zeek) {
        c->zeek = PyMem_Calloc(1, sizeof(Zeek) + 16);
        if (!c->zeek) { PyErr_NoMemory(); return -1; }
        c->zeek->cap = 16;
    }
    int orig = a->from_client;
    if (!c->zeek->len && !orig && zeek_put(c, '^') < 0) return -1;
    if (c->proto != 6) {
        c->zeek->states[orig ? 0 : 1] = Z_ACTIVE;
        if (p->payload_len > 0) return zeek_once(c, 1, 'D', orig);
        return 0;
    }
    int f = p->flags;
    if ((f & F_SYN) && zeek_seq(c, (f & F_ACK) ? 1 : 0, (f & F_ACK) ? 'H' : 'S', orig, p->seq) < 0)
        return -1;
    if ((f & F_FIN) && zeek_seq(c, 2, 'F', orig, p->seq) < 0) return -1;
    if ((f & F_RST) && zeek_seq(c, 3, 'R', orig, p->seq) < 0) return -1;
    if ((f & F_SYN) && (f & (F_FIN | F_RST)) && zeek_once(c, 3, 'Q', orig) < 0) return -1;
    if ((f & F_FIN) && (f & F_RST) && zeek_once(c, 2, 'I', orig) < 0) return -1;
    if (p->payload_len > 0) { if (zeek_once(c, 1, 'D', orig) < 0) return -1; }
    else if ((f & F_ACK) && !(f & (F_SYN | F_FIN | F_RST)) && zeek_once(c, 0, 'A', orig) < 0)
        return -1;
    if (p->window == 0 && !(f & F_RST) && zeek_log(c, 1, 'W', orig) < 0) return -1;
    Cols *k = e->cols;
    for (int i = 0; i < n_notes; i++) {
        int kind = notes[i].kind;
        if (kind < 0) { /* a decoder's note: by its text */
            for (int j = 0; j < N_KINDS; j++)
                if (zeek_note_letter(j) && notes[i].n == k->kinds[j].n &&
                    !memcmp(notes[i].s, k->kinds[j].s, (size_t)notes[i].n)) {
                    kind = j;
                    break;
                }
        }
        char letter = kind >= 0 ? zeek_note_letter(kind) : 0;
        if (letter && zeek_log(c, letter == 'T' ? 0 : 2, letter, orig) < 0) return -1;
    }
    /* ZeekConn._tcp_state */
    int i = orig ? 0 : 1;
    uint8_t *st = c->zeek->states;
    uint8_t own = st[i], peer = st[1 - i];
    if (f & F_RST) own = Z_RESET;
    else if (f & F_FIN) own = Z_CLOSED;
    else if (f & F_SYN) { if (own == Z_INACTIVE) own = (f & F_ACK) ? Z_SYN_ACK_SENT : Z_SYN_SENT; }
    else if (own == Z_INACTIVE) own = Z_PARTIAL;
    else if ((own == Z_SYN_SENT || own == Z_SYN_ACK_SENT) && (f & F_ACK) && peer != Z_INACTIVE) {
        own = Z_ESTABLISHED;
        if (peer == Z_SYN_SENT || peer == Z_SYN_ACK_SENT) st[1 - i] = Z_ESTABLISHED;
    }
    st[i] = own;
    return 0;
}

/* ---------------------------------------------------------------- column buffers */

static int col_check(const Buf *b) {
    if (b->len > (size_t)INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "a column batch over 2 GiB: take batches sooner");
        return -1;
    }
    return 0;
}

/* A column's buffers for an empty batch: the offsets start at 0. */
static int col_reset(Col *c) {
    c->data.len = c->offs.len = c->coffs.len = c->valid.len = 0;
    c->nulls = 0;
    int32_t zero = 0;
    if (c->kind == 's' || c->kind == 'b' || c->kind == 'L') {
        if (buf_reserve(&c->offs, 4) < 0) return -1;
        put(&c->offs, (const char *)&zero, 4);
    }
    if (c->kind == 'L') {
        if (buf_reserve(&c->coffs, 4) < 0) return -1;
        put(&c->coffs, (const char *)&zero, 4);
    }
    return 0;
}

static inline int col_bit(Col *c, size_t row, int ok) {
    if (!(row & 7)) {
        if (buf_reserve(&c->valid, 1) < 0) return -1;
        c->valid.p[c->valid.len++] = 0;
    }
    if (ok) c->valid.p[row >> 3] |= (char)(1u << (row & 7));
    else c->nulls++;
    return 0;
}

static inline int col_num(Col *c, size_t row, int ok, const void *v, size_t n) {
    static const char zeros[8] = {0};
    if (col_bit(c, row, ok) < 0 || buf_reserve(&c->data, n) < 0) return -1;
    put(&c->data, ok ? v : zeros, n);
    return 0;
}

static inline int col_i64(Col *c, size_t row, int ok, int64_t v) { return col_num(c, row, ok, &v, 8); }
static inline int col_i32(Col *c, size_t row, int ok, int32_t v) { return col_num(c, row, ok, &v, 4); }
static inline int col_f64(Col *c, size_t row, int ok, double v) { return col_num(c, row, ok, &v, 8); }

static inline int col_str(Col *c, size_t row, int ok, const char *s, size_t n) {
    if (!ok) n = 0;
    if (col_bit(c, row, ok) < 0 || buf_reserve(&c->data, n) < 0 || buf_reserve(&c->offs, 4) < 0)
        return -1;
    if (n) put(&c->data, s, n);
    if (col_check(&c->data) < 0) return -1;
    int32_t end = (int32_t)c->data.len;
    put(&c->offs, (const char *)&end, 4);
    return 0;
}

static inline int col_item(Col *c, const char *s, size_t n) {
    if (buf_reserve(&c->data, n) < 0 || buf_reserve(&c->coffs, 4) < 0) return -1;
    if (n) put(&c->data, s, n);
    if (col_check(&c->data) < 0) return -1;
    int32_t end = (int32_t)c->data.len;
    put(&c->coffs, (const char *)&end, 4);
    return 0;
}

static inline int col_list_end(Col *c) {
    if (buf_reserve(&c->offs, 4) < 0) return -1;
    int32_t end = (int32_t)(c->coffs.len / 4 - 1);
    put(&c->offs, (const char *)&end, 4);
    return 0;
}

static int col_pystr(Col *c, size_t row, PyObject *s) {
    Py_ssize_t n = 0;
    const char *t = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (!t && PyUnicode_Check(s)) return -1;
    return col_str(c, row, t && n > 0, t, (size_t)n); /* "" or not text: null */
}

static void convcols_free(Cols *k);
static int convcols_row(Engine *e, Conv *c);

static void cols_free(Engine *e) {
    Cols *k = e->cols;
    if (!k) return;
    convcols_free(k);
    for (int i = 0; i < PC_COUNT; i++) {
        PyMem_Free(k->c[i].data.p);
        PyMem_Free(k->c[i].offs.p);
        PyMem_Free(k->c[i].coffs.p);
        PyMem_Free(k->c[i].valid.p);
    }
    for (int i = 0; i < 9; i++) PyMem_Free(k->flag_names[i].s);
    for (int i = 0; i < PH_COUNT; i++) PyMem_Free(k->phases[i].s);
    for (int i = 0; i < N_KINDS; i++) PyMem_Free(k->kinds[i].s);
    PyMem_Free(k->dup_before.s);
    PyMem_Free(k->dup_after.s);
    for (int i = 0; i < 2; i++) {
        PyMem_Free(k->num_before[i].s);
        PyMem_Free(k->num_after[i].s);
    }
    Py_XDECREF(k->on_forget);
    PyMem_Free(k);
    e->cols = NULL;
}

/* A batch is full: the reader's loop gets the next record back, and its caller can take
 * the batch before handing it (so a batch never holds more than batch_rows rows, nor
 * much more than batch_bytes of payload, whatever the reader's buffer holds). */
static int cols_conv_full(const struct ConvCols *k);
static int cols_full(const Engine *e) {
    const Cols *k = e->cols;
    return k && (k->rows >= k->batch_rows || k->payload >= k->batch_bytes ||
                 (k->conv && cols_conv_full(k->conv)));
}

/* ---------------------------------------------------------------- a packet's row */

/* round((ts - first) / 1e9, 9), as json_record computes "time". Below 2**22 seconds the
 * double nearest to the nanosecond count / 1e9 is its own rounding to 9 places (its ulp is
 * under 1e-9), so round() changes nothing; beyond that Python's round is asked. */
static int time_value(i128 diff, double *out) {
    if (diff > -((i128)1 << 52) && diff < ((i128)1 << 52) &&
        (diff < 0 ? -diff : diff) < (i128)4000000LL * NS_PER_SEC) {
        *out = (double)(int64_t)diff / 1e9;
        return 0;
    }
    PyObject *f = PyFloat_FromDouble((double)diff / 1e9);
    PyObject *r = f ? PyObject_CallMethod(f, "__round__", "i", 9) : NULL;
    Py_XDECREF(f);
    if (!r) return -1;
    *out = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return PyErr_Occurred() ? -1 : 0;
}

static int addr_col(Col *c, size_t row, int fam, const uint8_t *addr) {
    char text[INET6_ADDRSTRLEN];
    int n;
    if (fam == 6) { inet_ntop(AF_INET6, addr, text, sizeof text); n = (int)strlen(text); }
    else n = snprintf(text, sizeof text, "%u.%u.%u.%u", addr[0], addr[1], addr[2], addr[3]);
    return col_str(c, row, 1, text, (size_t)n);
}

/* The notes of the packet's row, in the tracker's order: the decoder's, the analysis'
 * (expert.notes_of: its flag order, a SYN's retransmission as SYN_RETRANSMITTED, then a
 * duplicate ACK with its number), the connection's own, a confusion's. */
static int row_notes(Engine *e, const Pkt *p, const Ann *a, NoteOut *out, char *dup, size_t dupcap) {
    Cols *k = e->cols;
    int n = 0;
    if (p->notes) {
        Py_ssize_t m = PyTuple_GET_SIZE(p->notes);
        for (Py_ssize_t i = 0; i < m; i++) { /* the caller made room for them all */
            PyObject *s = PyTuple_GET_ITEM(p->notes, i);
            if (!PyUnicode_Check(s)) { PyErr_SetString(PyExc_TypeError, "a note: str expected"); return -1; }
            out[n].s = PyUnicode_AsUTF8AndSize(s, &out[n].n);
            if (!out[n].s) return -1;
            out[n].kind = -1;
            out[n++].owner = s;
        }
    }
    if (a->bits) {
        for (int i = 0; i < N_FLAG_NOTES; i++)
            if (a->bits & FLAG_NOTES[i][0]) {
                int kind = FLAG_NOTES[i][1];
                if (kind == N_RETRANSMISSION && (p->flags & F_SYN)) kind = N_SYN_RETRANSMITTED;
                out[n].kind = kind;
                out[n].s = k->kinds[kind].s;
                out[n].n = k->kinds[kind].n;
                out[n++].owner = NULL;
            }
        if (a->bits & A_DUPLICATE_ACK) {
            int m = snprintf(dup, dupcap, "%s%lld%s", k->dup_before.s, (long long)a->dupacks,
                             k->dup_after.s);
            out[n].kind = -1; /* counted: not one of the kinds' plain texts */
            out[n].s = dup;
            out[n].n = m < (int)dupcap ? m : (int)dupcap - 1;
            out[n++].owner = NULL;
        }
    }
    if (a->own >= 0) {
        out[n].kind = a->own;
        out[n].s = k->kinds[a->own].s;
        out[n].n = k->kinds[a->own].n;
        out[n++].owner = NULL;
    }
    size_t used = 0; /* dup holds the counted texts one after the other */
    for (int i = 0; i < n; i++)
        if (out[i].s == dup) used = (size_t)out[i].n + 1;
    for (int kind = N_FIRST_CONFUSION; a->told && kind < N_KINDS; kind++) {
        if (!(a->told & CONFUSION_BIT(kind))) continue;
        if (kind == N_LARGER_THAN_MTU || kind == N_NAGLE_STALL) {
            int j = kind == N_NAGLE_STALL;
            size_t room = used < dupcap ? dupcap - used : 0;
            int m = room ? snprintf(dup + used, room, "%s%lld%s", k->num_before[j].s,
                                    (long long)(j ? a->stall_ms : a->segments),
                                    k->num_after[j].s) : 0;
            if (m < 0 || (size_t)m >= room) {
                PyErr_SetString(PyExc_RuntimeError, "a counted note longer than its room");
                return -1;
            }
            out[n].kind = -1; /* counted: not one of the kinds' plain texts */
            out[n].s = dup + used;
            out[n].n = m;
            out[n++].owner = NULL;
            used += (size_t)m + 1;
            continue;
        }
        out[n].kind = kind;
        out[n].s = k->kinds[kind].s;
        out[n].n = k->kinds[kind].n;
        out[n++].owner = NULL;
    }
    return n;
}

static int cols_row(Engine *e, const Pkt *p, const Ann *a, const NoteOut *notes, int n_notes);

/* One packet's row appended (process() calls this instead of rendering). */
static int cols_packet(Engine *e, const Pkt *p, const Ann *a) {
    NoteOut stack[STACK_NOTES], *notes = stack;
    Py_ssize_t room = (p->notes ? PyTuple_GET_SIZE(p->notes) : 0) + ENGINE_NOTES;
    if (room > STACK_NOTES && !(notes = PyMem_Malloc((size_t)room * sizeof *notes)))
        return PyErr_NoMemory(), -1;
    char dup[768];
    int n_notes = row_notes(e, p, a, notes, dup, sizeof dup);
    int rc = n_notes < 0 ? -1 : cols_row(e, p, a, notes, n_notes);
    if (notes != stack) PyMem_Free(notes);
    return rc;
}

static int cols_row(Engine *e, const Pkt *p, const Ann *a, const NoteOut *notes, int n_notes) {
    Cols *k = e->cols;
    Col *c = k->c;
    size_t r = k->rows;
    int py = p->notes != NULL; /* decoded in Python: its Packet is at hand */
    if (a->conv && zeek_see(e, p, a, notes, n_notes) < 0) return -1;
    int tcp = a->seq >= 0, ported = p->sport >= 0, timed = p->ts >= 0;
    double t = 0;
    if (timed && time_value(p->ts - e->first, &t) < 0) return -1;
    if (col_i64(&c[PC_NO], r, 1, e->count) < 0 ||
        col_f64(&c[PC_TIME], r, timed, t) < 0 ||
        col_f64(&c[PC_TS], r, timed, timed ? (double)p->ts / 1e9 : 0) < 0)
        return -1;
    if (py) {
        if (col_pystr(&c[PC_SRC], r, PyTuple_GET_ITEM(p->packet, PACKET_SRC)) < 0) return -1;
    } else if (addr_col(&c[PC_SRC], r, p->fam, p->src) < 0) return -1;
    if (col_i32(&c[PC_SPORT], r, ported, (int32_t)p->sport) < 0) return -1;
    if (py) {
        if (col_pystr(&c[PC_DST], r, PyTuple_GET_ITEM(p->packet, PACKET_DST)) < 0) return -1;
    } else if (addr_col(&c[PC_DST], r, p->fam, p->dst) < 0) return -1;
    if (col_i32(&c[PC_DPORT], r, p->dport >= 0, (int32_t)p->dport) < 0) return -1;
    if (py && p->proto_name && PyUnicode_Check(p->proto_name)) {
        if (col_pystr(&c[PC_PROTO], r, p->proto_name) < 0) return -1;
    } else if (col_str(&c[PC_PROTO], r, 1, p->proto == 6 ? "TCP" : "UDP", 3) < 0) return -1;
    if (tcp)
        for (int i = 0; i < 9; i++)
            if ((p->flags >> i & 1) &&
                col_item(&c[PC_FLAGS], k->flag_names[i].s, (size_t)k->flag_names[i].n) < 0)
                return -1;
    if (col_list_end(&c[PC_FLAGS]) < 0 ||
        col_i64(&c[PC_SEQ], r, tcp, a->seq) < 0 || col_i64(&c[PC_ACK], r, tcp, a->ack) < 0 ||
        col_i64(&c[PC_WIN], r, tcp, a->win) < 0 ||
        col_i64(&c[PC_LEN], r, 1, ported ? p->payload_len : p->wirelen) < 0)
        return -1;
    const Text *ph = &k->phases[a->phase];
    if (col_str(&c[PC_PHASE], r, ph->n > 0, ph->s, (size_t)ph->n) < 0) return -1;
    size_t from = 0, to = 0;
    if (ported) { /* Packet.payload: data[off:off + len], clipped to what was captured */
        int64_t lo = p->payload_off, hi = p->payload_off + p->payload_len;
        if (lo > p->caplen) lo = p->caplen;
        if (hi > p->caplen) hi = p->caplen;
        if (hi > lo) { from = (size_t)lo; to = (size_t)hi; }
    }
    if (col_str(&c[PC_PAYLOAD], r, 1, (const char *)p->data + from, to - from) < 0) return -1;
    k->payload += to - from;
    if (col_i64(&c[PC_STREAM], r, a->conv != NULL, a->conv ? a->conv->stream : 0) < 0 ||
        col_str(&c[PC_FROM], r, a->conv != NULL, a->from_client ? "client" : "server",
                6) < 0 ||
        col_i64(&c[PC_FRAME_LEN], r, 1, p->wirelen) < 0 ||
        col_i64(&c[PC_CAPTURED_LEN], r, 1, p->caplen) < 0 ||
        col_str(&c[PC_TRUNCATED], r, py && p->trunc_n > 0, p->trunc, (size_t)p->trunc_n) < 0)
        return -1;
    for (int i = 0; i < n_notes; i++)
        if (col_item(&c[PC_NOTES], notes[i].s, (size_t)notes[i].n) < 0) return -1;
    if (col_list_end(&c[PC_NOTES]) < 0) return -1;
    if (py) {
        if (col_pystr(&c[PC_TUNNEL], r, PyTuple_GET_ITEM(p->packet, PACKET_TUNNEL)) < 0) return -1;
    } else if (col_str(&c[PC_TUNNEL], r, 0, NULL, 0) < 0) return -1;
    k->rows++;
    return 0;
}

/* ---------------------------------------------------------------- conversations */

/* The tracker forgets c: its view handed to on_forget (forget() calls this first). */
static int cols_forget(Engine *e, Conv *c) {
    Cols *k = e->cols;
    if (!k || (!k->on_forget && !k->conv) || (c->zeek && c->zeek->reported)) return 0;
    if (c->zeek) c->zeek->reported = 1;
    if (k->conv) return convcols_row(e, c); /* its row, no view */
    PyObject *view = conv_view(e, c);
    if (!view) return -1;
    PyObject *r = PyObject_CallOneArg(k->on_forget, view);
    Py_DECREF(view);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static int conv_order(const void *x, const void *y) {
    const Conv *a = *(Conv *const *)x, *b = *(Conv *const *)y;
    if (a->proto != b->proto) return a->proto < b->proto ? -1 : 1;
    return a->stream < b->stream ? -1 : a->stream > b->stream;
}

/* finish(): every conversation not forgotten yet handed to on_forget, TCP then UDP, each
 * by stream (TableRows.live), once. They are the ones in the table and in the two queues
 * (a conversation whose 5-tuple a new SYN took over is in a queue only). */
static PyObject *Engine_finish(Engine *e, PyObject *unused) {
    if (!e->cols) { PyErr_SetString(PyExc_RuntimeError, "finish() needs columns()"); return NULL; }
    size_t cap = e->nentries + e->ended.len + e->open.len + 1, n = 0, m = 0;
    Conv **live = PyMem_Malloc(cap * sizeof *live);
    if (!live) return PyErr_NoMemory();
    for (size_t i = 0; i < e->nbuckets; i++) {
        Conv *c = e->table[i].conv;
        if (c && !(c->zeek && c->zeek->reported)) live[n++] = c;
    }
    const Ring *rings[2] = {&e->ended, &e->open};
    for (int q = 0; q < 2; q++)
        for (size_t i = 0; i < rings[q]->len; i++) {
            Conv *c = rings[q]->items[(rings[q]->head + i) % rings[q]->cap];
            if (!(c->zeek && c->zeek->reported)) live[n++] = c;
        }
    qsort(live, n, sizeof *live, conv_order);
    for (size_t i = 0; i < n; i++) /* listed under several keys and queues: once */
        if (!m || live[m - 1] != live[i]) live[m++] = live[i];
    n = m;
    for (size_t i = 0; i < n; i++) live[i]->refs++;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc && cols_forget(e, live[i]) < 0) rc = -1;
    }
    for (size_t i = 0; i < n; i++) conv_unref(live[i]);
    PyMem_Free(live);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- Python API */

/* columns(flag_names, phase_values, kind_texts, dupack, on_forget, batch_rows,
 * batch_bytes): the export's mode. */
static PyObject *Engine_columns(Engine *e, PyObject *args) {
    PyObject *flags, *phases, *kinds, *dupack, *on_forget;
    Py_ssize_t batch_rows, batch_bytes;
    if (check_ready(e) < 0) return NULL;
    if (!PyArg_ParseTuple(args, "OOOO!Onn", &flags, &phases, &kinds, &PyTuple_Type, &dupack,
                          &on_forget, &batch_rows, &batch_bytes))
        return NULL;
    if (batch_rows < 1 || batch_bytes < 1) {
        PyErr_SetString(PyExc_ValueError, "columns(): a batch holds at least a row and a byte");
        return NULL;
    }
    if (e->cols || e->view || e->count) {
        PyErr_SetString(PyExc_RuntimeError, "columns() is set once, on a new engine without a view");
        return NULL;
    }
    if ((on_forget != Py_None && !PyCallable_Check(on_forget)) || PyTuple_GET_SIZE(dupack) != 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(dupack, 0)) || !PyUnicode_Check(PyTuple_GET_ITEM(dupack, 1))) {
        PyErr_SetString(PyExc_TypeError, "columns(): on_forget a callable or None, dupack two str");
        return NULL;
    }
    Cols *k = PyMem_Calloc(1, sizeof *k);
    if (!k) return PyErr_NoMemory();
    e->cols = k;
    for (int i = 0; i < PC_COUNT; i++) {
        k->c[i].kind = PACKET_COLUMN_KINDS[i];
        if (col_reset(&k->c[i]) < 0) goto fail;
    }
    if (texts_from(flags, k->flag_names, 9, "flag_names") < 0 ||
        texts_from(phases, k->phases, PH_COUNT, "phase_values") < 0 ||
        texts_from(kinds, k->kinds, N_KINDS, "kind_texts") < 0 ||
        text_set(&k->dup_before, PyTuple_GET_ITEM(dupack, 0)) < 0 ||
        text_set(&k->dup_after, PyTuple_GET_ITEM(dupack, 1)) < 0)
        goto fail;
    /* the confusion notes with a number: codes.CountedNote's text cut around it */
    PyObject *codes_mod = PyImport_ImportModule("sockcap.codes");
    for (int i = 0; i < 2 && codes_mod; i++) {
        PyObject *note = PyObject_CallMethod(codes_mod, "CountedNote", "OL",
                                             PyTuple_GET_ITEM(e->kinds, i ? N_NAGLE_STALL
                                                                          : N_LARGER_THAN_MTU),
                                             987654321LL);
        const char *text = note && PyUnicode_Check(note) ? PyUnicode_AsUTF8(note) : NULL;
        const char *mark = text ? strstr(text, "987654321") : NULL;
        PyObject *before = mark ? PyUnicode_FromStringAndSize(text, mark - text) : NULL;
        PyObject *after = mark ? PyUnicode_FromString(mark + 9) : NULL;
        int ok = before && after && text_set(&k->num_before[i], before) == 0 &&
                 text_set(&k->num_after[i], after) == 0;
        Py_XDECREF(before);
        Py_XDECREF(after);
        Py_XDECREF(note);
        if (!ok) Py_CLEAR(codes_mod);
    }
    if (!codes_mod) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "codes.CountedNote: a note");
        goto fail;
    }
    Py_DECREF(codes_mod);
    if (on_forget != Py_None) {
        Py_INCREF(on_forget);
        k->on_forget = on_forget;
    }
    k->batch_rows = (size_t)batch_rows;
    k->batch_bytes = (size_t)batch_bytes;
    Py_RETURN_NONE;
fail:
    cols_free(e);
    return NULL;
}

/* held() -> (rows, payload bytes, packets read) */
static PyObject *Engine_held(Engine *e, PyObject *unused) {
    if (!e->cols) return Py_BuildValue("nnL", (Py_ssize_t)0, (Py_ssize_t)0, (long long)e->count);
    return Py_BuildValue("nnL", (Py_ssize_t)e->cols->rows, (Py_ssize_t)e->cols->payload,
                         (long long)e->count);
}

static PyObject *buf_bytes(const Buf *b) {
    return PyBytes_FromStringAndSize(b->p ? b->p : "", (Py_ssize_t)b->len);
}

/* batch() -> (rows, columns): each column (validity or None, values) for numbers,
 * (validity or None, offsets, data) for text and bytes, (offsets, child offsets, child
 * data) for lists of text; the engine starts a new batch. */
static PyObject *Engine_batch(Engine *e, PyObject *unused) {
    Cols *k = e->cols;
    if (!k) { PyErr_SetString(PyExc_RuntimeError, "batch() needs columns()"); return NULL; }
    PyObject *cols = PyTuple_New(PC_COUNT);
    if (!cols) return NULL;
    for (int i = 0; i < PC_COUNT; i++) {
        Col *c = &k->c[i];
        PyObject *valid = c->nulls ? buf_bytes(&c->valid) : (Py_INCREF(Py_None), Py_None);
        PyObject *one;
        if (c->kind == 'L') one = Py_BuildValue("(NNN)", buf_bytes(&c->offs), buf_bytes(&c->coffs),
                                                buf_bytes(&c->data));
        else if (c->kind == 's' || c->kind == 'b')
            one = Py_BuildValue("(NNN)", valid, buf_bytes(&c->offs), buf_bytes(&c->data)), valid = NULL;
        else one = Py_BuildValue("(NN)", valid, buf_bytes(&c->data)), valid = NULL;
        Py_XDECREF(valid);
        if (!one) { Py_DECREF(cols); return NULL; }
        PyTuple_SET_ITEM(cols, i, one);
    }
    PyObject *r = Py_BuildValue("(nN)", (Py_ssize_t)k->rows, cols);
    if (!r) return NULL;
    k->rows = k->payload = 0;
    for (int i = 0; i < PC_COUNT; i++)
        if (col_reset(&k->c[i]) < 0) { Py_DECREF(r); return NULL; }
    return r;
}

/* zeek(conversation) -> (history, originator's state, responder's state) */
static PyObject *Engine_zeek(Engine *e, PyObject *view) {
    if (!PyObject_TypeCheck(view, &ConvViewType)) {
        PyErr_SetString(PyExc_TypeError, "zeek(): a conversation of this engine expected");
        return NULL;
    }
    const Zeek *z = ((ConvView *)view)->conv->zeek;
    if (!z) return Py_BuildValue("(sii)", "", Z_INACTIVE, Z_INACTIVE);
    return Py_BuildValue("(s#ii)", z->letters, (Py_ssize_t)z->len, z->states[0], z->states[1]);
}

#include "_speedups_convcols.h"

#define COLUMNS_METHODS \
    CONVCOLS_METHODS \
    {"columns", (PyCFunction)Engine_columns, METH_VARARGS, "the export's columns: the mode on"}, \
    {"held", (PyCFunction)Engine_held, METH_NOARGS, "(rows, payload bytes, packets read)"}, \
    {"batch", (PyCFunction)Engine_batch, METH_NOARGS, "the rows held, as column buffers"}, \
    {"zeek", (PyCFunction)Engine_zeek, METH_O, "a conversation's Zeek history and states"}, \
    {"finish", (PyCFunction)Engine_finish, METH_NOARGS, "the live conversations to on_forget"},

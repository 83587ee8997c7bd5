/* The export's conversations table filled by the engine in batches (included by
 * _speedups_columns.h, whose column buffers and Zeek state it uses; everything here is
 * static).
 *
 * Why: with the packets table in C, the conversations' rows were the export's largest
 * remaining cost (~40 % of its CPU on the bench's 1M file, bench/RESULTS.md): a Python
 * call a conversation (on_forget), its view read attribute by attribute, the stats entry
 * as a dict, two SHA-1s through hashlib, the ZeekConn rebuilt, then a tuple a row that
 * pyarrow turned back into columns. Here the row is appended field by field into Arrow's
 * buffers when the tracker forgets the conversation (and at finish()), as the packets'
 * rows are; the SHA-1 of the uid and of the Community ID is computed here (FIPS 180-4,
 * a few dozen lines: no library to link).
 *
 * The reference is sockcap.render.tables.conversation_row (the pure twin encodes its
 * rows with sockcap.pipeline.columns.encode); tests/test_export_columns.py and
 * fuzz/columns.py require the batches byte for byte equal.
 *
 * API (both twins): ``conversation_columns(capture, conn_states, batch_rows)`` after
 * columns(): forgotten conversations become rows of this table instead of calls to
 * on_forget (capture: the partition's name, hashed into the uid; conn_states: Zeek's
 * ConnState values in CS_* order; pcap()/pcapng() stop taking records once batch_rows
 * rows are held, as they do for the packets' batch, so both twins cut the batches at the
 * same packets); ``conversations_held() -> rows``;
 * ``conversation_batch() -> (rows, columns)``. Column layouts: see
 * sockcap/pipeline/columns.py (kinds 'P' a pair struct, 'M' a map of string to int64).
 */

enum { CC_PROTO, CC_STREAM, CC_CLIENT, CC_SERVER, CC_ROLES, CC_PACKETS, CC_BYTES, CC_PAYLOAD,
       CC_START, CC_DURATION, CC_IRTT, CC_NOTES, CC_ENDED, CC_UID, CC_ORIG_H, CC_ORIG_P,
       CC_RESP_H, CC_RESP_P, CC_ORIG_BYTES, CC_RESP_BYTES, CC_CONN_STATE, CC_HISTORY,
       CC_COMMUNITY_ID, CC_COUNT };
static const char CONVERSATION_COLUMN_KINDS[] = "sqsssPPPdddMsssisiqqsss";
_Static_assert(sizeof CONVERSATION_COLUMN_KINDS == CC_COUNT + 1, "a kind a column");

/* Zeek's conn_state codes, in sockcap.analysis.zeek.ConnState's order */
enum { CS_S0, CS_S1, CS_SF, CS_REJ, CS_S2, CS_S3, CS_RSTO, CS_RSTR, CS_RSTOS0, CS_RSTRH, CS_SH,
       CS_SHR, CS_OTH, CS_COUNT };

typedef struct ConvCols {
    Col c[CC_COUNT];
    Buf second[CC_COUNT]; /* 'P': the server_to_client values; 'M': the map's values */
    size_t rows, batch_rows; /* pcap()/pcapng() stop taking records at batch_rows rows */
    Text capture;
    Text roles[ROLES_COUNT], outcomes[END_COUNT], states[CS_COUNT];
} ConvCols;

/* ---------------------------------------------------------------- SHA-1 (FIPS 180-4) */

static inline uint32_t rol32(uint32_t x, int n) { return x << n | x >> (32 - n); }

static void sha1_block(uint32_t h[5], const uint8_t *b) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (bb & c) | (~bb & d); k = 0x5A827999; }
        else if (i < 40) { f = bb ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (bb & c) | (bb & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = bb ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol32(bb, 30); bb = a; a = t;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e;
}

static void sha1(const uint8_t *data, size_t n, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha1_block(h, data + i);
    uint8_t last[128] = {0};
    size_t rest = n - i;
    memcpy(last, data + i, rest);
    last[rest] = 0x80;
    size_t len = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int j = 0; j < 8; j++) last[len - 1 - j] = (uint8_t)(bits >> (8 * j));
    sha1_block(h, last);
    if (len == 128) sha1_block(h, last + 64);
    for (int j = 0; j < 5; j++) {
        out[4 * j] = (uint8_t)(h[j] >> 24); out[4 * j + 1] = (uint8_t)(h[j] >> 16);
        out[4 * j + 2] = (uint8_t)(h[j] >> 8); out[4 * j + 3] = (uint8_t)h[j];
    }
}

static const char BASE62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* tables.zeek_uid: "C" + base62 of the first 13 bytes of sha1("capture\0proto\0stream"),
 * least significant digit first, 17 digits. */
static int conv_uid(const ConvCols *k, const Conv *c, char out[18]) {
    char tail[48];
    int m = snprintf(tail, sizeof tail, "%d%c%lld", c->proto, 0, (long long)c->stream);
    size_t n = (size_t)k->capture.n + 1 + (size_t)m;
    uint8_t stack[256], *buf = n <= sizeof stack ? stack : PyMem_Malloc(n);
    if (!buf) { PyErr_NoMemory(); return -1; }
    memcpy(buf, k->capture.s, (size_t)k->capture.n);
    buf[k->capture.n] = 0;
    memcpy(buf + k->capture.n + 1, tail, (size_t)m);
    uint8_t d[20];
    sha1(buf, n, d);
    if (buf != stack) PyMem_Free(buf);
    unsigned __int128 v = 0;
    for (int i = 0; i < 13; i++) v = v << 8 | d[i];
    out[0] = 'C';
    for (int i = 0; i < 17; i++) { out[1 + i] = BASE62[(int)(v % 62)]; v /= 62; }
    return 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* flowid.community_id(proto, client, server, ports): "1:" + base64(sha1(...)), 30 chars */
static int conv_community_id(const Conv *c, char out[30]) {
    size_t alen = c->client.fam == 6 ? 16 : 4;
    const uint8_t *a = c->client.addr, *b = c->server.addr;
    int ports = c->client.port >= 0 && c->server.port >= 0;
    int64_t p = ports ? c->client.port : 0, q = ports ? c->server.port : 0;
    int cmp = memcmp(b, a, alen);
    if (cmp < 0 || (cmp == 0 && q < p)) {
        const uint8_t *t = a; a = b; b = t;
        int64_t u = p; p = q; q = u;
    }
    uint8_t data[2 + 32 + 2 + 4];
    size_t n = 0;
    data[n++] = 0; data[n++] = 0; /* seed 0 */
    memcpy(data + n, a, alen); n += alen;
    memcpy(data + n, b, alen); n += alen;
    data[n++] = (uint8_t)c->proto;
    data[n++] = 0;
    if (ports) {
        data[n++] = (uint8_t)(p >> 8); data[n++] = (uint8_t)p;
        data[n++] = (uint8_t)(q >> 8); data[n++] = (uint8_t)q;
    }
    uint8_t d[21] = {0};
    sha1(data, n, d);
    out[0] = '1';
    out[1] = ':';
    for (int i = 0; i < 7; i++) { /* 20 bytes: six groups of three, then two and a pad */
        uint32_t v = (uint32_t)d[3 * i] << 16 | (uint32_t)d[3 * i + 1] << 8 | d[3 * i + 2];
        out[2 + 4 * i] = B64[v >> 18 & 63];
        out[3 + 4 * i] = B64[v >> 12 & 63];
        out[4 + 4 * i] = B64[v >> 6 & 63];
        out[5 + 4 * i] = i < 6 ? B64[v & 63] : '=';
    }
    return 0;
}

/* ZeekConn.conn_state */
static int conv_conn_state(const Conv *c) {
    const Zeek *z = c->zeek;
    int os = z ? z->states[0] : Z_INACTIVE, rs = z ? z->states[1] : Z_INACTIVE;
    if (c->proto != 6) {
        if (os == Z_ACTIVE) return rs == Z_ACTIVE ? CS_SF : CS_S0;
        return rs == Z_ACTIVE ? CS_SHR : CS_OTH;
    }
    int64_t ob = c->dirs[0].payload_bytes, rb = c->dirs[1].payload_bytes;
    int o_inactive = os == Z_INACTIVE || os == Z_PARTIAL, r_inactive = rs == Z_INACTIVE || rs == Z_PARTIAL;
    if (rs == Z_RESET) {
        if (os == Z_SYN_SENT || os == Z_SYN_ACK_SENT || (os == Z_RESET && !ob && !rb)) return CS_REJ;
        return o_inactive ? CS_RSTRH : CS_RSTR;
    }
    if (os == Z_RESET) {
        if (r_inactive) {
            /* RSTOS0_HISTORY, \^?S[^HAFGIQ]*R.* matched whole: after S, an R comes before
             * any of H A F G I Q */
            size_t i = 0, len = z ? z->len : 0;
            if (i < len && z->letters[i] == '^') i++;
            if (i >= len || z->letters[i] != 'S') return CS_OTH;
            for (i++; i < len; i++) {
                char ch = z->letters[i];
                if (ch == 'R') return CS_RSTOS0;
                if (strchr("HAFGIQ", ch)) return CS_OTH;
            }
            return CS_OTH;
        }
        return CS_RSTO;
    }
    if (rs == Z_CLOSED && os == Z_CLOSED) return CS_SF;
    if (os == Z_CLOSED) return r_inactive ? CS_SH : CS_S2;
    if (rs == Z_CLOSED) return o_inactive ? CS_SHR : CS_S3;
    if (os == Z_SYN_SENT && rs == Z_INACTIVE) return CS_S0;
    if (os == Z_ESTABLISHED && rs == Z_ESTABLISHED) return CS_S1;
    return CS_OTH;
}

/* ---------------------------------------------------------------- a conversation's row */

static int cc_reset(ConvCols *k) {
    for (int i = 0; i < CC_COUNT; i++) {
        Col *c = &k->c[i];
        c->data.len = c->offs.len = c->coffs.len = c->valid.len = 0;
        c->nulls = 0;
        k->second[i].len = 0;
        int32_t zero = 0;
        if (c->kind == 's' || c->kind == 'M') {
            if (buf_reserve(&c->offs, 4) < 0) return -1;
            put(&c->offs, (const char *)&zero, 4);
        }
        if (c->kind == 'M') {
            if (buf_reserve(&c->coffs, 4) < 0) return -1;
            put(&c->coffs, (const char *)&zero, 4);
        }
    }
    k->rows = 0;
    return 0;
}

static inline int cc_raw(Buf *b, int64_t v) {
    if (buf_reserve(b, 8) < 0) return -1;
    put(b, (const char *)&v, 8);
    return 0;
}

static int cc_pair(ConvCols *k, int col, int64_t a, int64_t b) {
    return cc_raw(&k->c[col].data, a) < 0 || cc_raw(&k->second[col], b) < 0 ? -1 : 0;
}

static int cc_endpoint(Col *col, size_t r, const Endpoint *ep, int bracket) {
    char addr[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 32];
    if (ep->fam == 6) inet_ntop(AF_INET6, ep->addr, addr, sizeof addr);
    else snprintf(addr, sizeof addr, "%u.%u.%u.%u", ep->addr[0], ep->addr[1], ep->addr[2], ep->addr[3]);
    int n = !bracket ? snprintf(text, sizeof text, "%s", addr)
            : strchr(addr, ':') ? snprintf(text, sizeof text, "[%s]:%lld", addr, (long long)ep->port)
            : snprintf(text, sizeof text, "%s:%lld", addr, (long long)ep->port);
    return col_str(col, r, 1, text, (size_t)n);
}

static inline int cc_text(Col *col, size_t r, const Text *t) {
    return col_str(col, r, t->n > 0, t->s, (size_t)t->n); /* "": null */
}

/* ns / 1e9 as Python's int / float: the int made a double, then divided */
static inline double cc_seconds(i128 ns) {
    return (ns >= INT64_MIN && ns <= INT64_MAX ? (double)(int64_t)ns : (double)ns) / 1e9;
}

/* conversation_row(c, zeek, capture), appended */
static int convcols_row(Engine *e, Conv *c) {
    ConvCols *k = e->cols->conv;
    Cols *pk = e->cols;
    Col *col = k->c;
    size_t r = k->rows;
    int tcp = c->proto == 6;
    i128 duration = c->first_ts >= 0 ? c->last_ts - c->first_ts : -1;
    i128 irtt = tcp && c->first_rtt > 0 && (c->synack_ts >= 0 || c->rtt_answered) ? c->first_rtt : -1;
    if (col_str(&col[CC_PROTO], r, 1, tcp ? "TCP" : "UDP", 3) < 0 ||
        col_i64(&col[CC_STREAM], r, 1, c->stream) < 0 ||
        cc_endpoint(&col[CC_CLIENT], r, &c->client, 1) < 0 ||
        cc_endpoint(&col[CC_SERVER], r, &c->server, 1) < 0 ||
        cc_text(&col[CC_ROLES], r, &k->roles[c->roles]) < 0 ||
        cc_pair(k, CC_PACKETS, c->dirs[0].packets, c->dirs[1].packets) < 0 ||
        cc_pair(k, CC_BYTES, c->dirs[0].bytes, c->dirs[1].bytes) < 0 ||
        cc_pair(k, CC_PAYLOAD, c->dirs[0].payload_bytes, c->dirs[1].payload_bytes) < 0 ||
        col_f64(&col[CC_START], r, c->first_ts >= 0, cc_seconds(c->first_ts)) < 0 ||
        col_f64(&col[CC_DURATION], r, duration >= 0, cc_seconds(duration)) < 0 ||
        col_f64(&col[CC_IRTT], r, irtt >= 0, cc_seconds(irtt)) < 0)
        return -1;
    Col *notes = &col[CC_NOTES]; /* in the order first seen (the Python dict's) */
    for (int i = 0; i < c->n_notes; i++) {
        int kind = c->note_order[i];
        if (col_item(notes, pk->kinds[kind].s, (size_t)pk->kinds[kind].n) < 0 ||
            cc_raw(&k->second[CC_NOTES], (int64_t)c->note_counts[kind]) < 0)
            return -1;
    }
    if (col_list_end(notes) < 0 || cc_text(&col[CC_ENDED], r, &k->outcomes[end_state(c)]) < 0)
        return -1;
    char uid[18], cid[30];
    if (conv_uid(k, c, uid) < 0 || conv_community_id(c, cid) < 0) return -1;
    const Zeek *z = c->zeek;
    const Text *state = &k->states[conv_conn_state(c)];
    if (col_str(&col[CC_UID], r, 1, uid, 18) < 0 ||
        cc_endpoint(&col[CC_ORIG_H], r, &c->client, 0) < 0 ||
        col_i32(&col[CC_ORIG_P], r, 1, (int32_t)c->client.port) < 0 ||
        cc_endpoint(&col[CC_RESP_H], r, &c->server, 0) < 0 ||
        col_i32(&col[CC_RESP_P], r, 1, (int32_t)c->server.port) < 0 ||
        col_i64(&col[CC_ORIG_BYTES], r, 1, c->dirs[0].payload_bytes) < 0 ||
        col_i64(&col[CC_RESP_BYTES], r, 1, c->dirs[1].payload_bytes) < 0 ||
        col_str(&col[CC_CONN_STATE], r, 1, state->s, (size_t)state->n) < 0 ||
        col_str(&col[CC_HISTORY], r, 1, z ? z->letters : "", z ? z->len : 0) < 0 ||
        col_str(&col[CC_COMMUNITY_ID], r, 1, cid, 30) < 0)
        return -1;
    k->rows++;
    return 0;
}

static void convcols_free(Cols *pk) {
    ConvCols *k = pk->conv;
    if (!k) return;
    for (int i = 0; i < CC_COUNT; i++) {
        PyMem_Free(k->c[i].data.p);
        PyMem_Free(k->c[i].offs.p);
        PyMem_Free(k->c[i].coffs.p);
        PyMem_Free(k->c[i].valid.p);
        PyMem_Free(k->second[i].p);
    }
    PyMem_Free(k->capture.s);
    for (int i = 0; i < ROLES_COUNT; i++) PyMem_Free(k->roles[i].s);
    for (int i = 0; i < END_COUNT; i++) PyMem_Free(k->outcomes[i].s);
    for (int i = 0; i < CS_COUNT; i++) PyMem_Free(k->states[i].s);
    PyMem_Free(k);
    pk->conv = NULL;
}

/* The str() of each code of a tuple (the engine's roles and outcomes). */
static int code_texts(PyObject *codes, Text *out, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyObject_Str(PyTuple_GET_ITEM(codes, i));
        int rc = s ? text_set(&out[i], s) : -1;
        Py_XDECREF(s);
        if (rc < 0) return -1;
    }
    return 0;
}

static int cols_conv_full(const ConvCols *k) { return k->rows >= k->batch_rows; }

/* conversation_columns(capture, conn_states, batch_rows) */
static PyObject *Engine_conversation_columns(Engine *e, PyObject *args) {
    PyObject *capture, *states;
    Py_ssize_t batch_rows;
    if (!PyArg_ParseTuple(args, "UOn", &capture, &states, &batch_rows)) return NULL;
    if (batch_rows < 1) {
        PyErr_SetString(PyExc_ValueError, "conversation_columns(): a batch holds at least a row");
        return NULL;
    }
    if (!e->cols || e->cols->conv || e->count) {
        PyErr_SetString(PyExc_RuntimeError, "conversation_columns() is set once, after columns()");
        return NULL;
    }
    ConvCols *k = PyMem_Calloc(1, sizeof *k);
    if (!k) return PyErr_NoMemory();
    e->cols->conv = k;
    k->batch_rows = (size_t)batch_rows;
    for (int i = 0; i < CC_COUNT; i++) k->c[i].kind = CONVERSATION_COLUMN_KINDS[i];
    if (cc_reset(k) < 0 || text_set(&k->capture, capture) < 0 ||
        code_texts(e->roles, k->roles, ROLES_COUNT) < 0 ||
        code_texts(e->outcomes, k->outcomes, END_COUNT) < 0 ||
        texts_from(states, k->states, CS_COUNT, "conn_states") < 0) {
        convcols_free(e->cols);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Engine_conversations_held(Engine *e, PyObject *unused) {
    return PyLong_FromSize_t(e->cols && e->cols->conv ? e->cols->conv->rows : 0);
}

/* conversation_batch() -> (rows, columns) (sockcap/pipeline/columns.py's layouts) */
static PyObject *Engine_conversation_batch(Engine *e, PyObject *unused) {
    ConvCols *k = e->cols ? e->cols->conv : NULL;
    if (!k) {
        PyErr_SetString(PyExc_RuntimeError, "conversation_batch() needs conversation_columns()");
        return NULL;
    }
    PyObject *cols = PyTuple_New(CC_COUNT);
    if (!cols) return NULL;
    for (int i = 0; i < CC_COUNT; i++) {
        Col *c = &k->c[i];
        PyObject *one;
        if (c->kind == 'P') one = Py_BuildValue("(NN)", buf_bytes(&c->data), buf_bytes(&k->second[i]));
        else if (c->kind == 'M')
            one = Py_BuildValue("(NNNN)", buf_bytes(&c->offs), buf_bytes(&c->coffs),
                                buf_bytes(&c->data), buf_bytes(&k->second[i]));
        else {
            PyObject *valid = c->nulls ? buf_bytes(&c->valid) : (Py_INCREF(Py_None), Py_None);
            one = c->kind == 's' ? Py_BuildValue("(NNN)", valid, buf_bytes(&c->offs), buf_bytes(&c->data))
                                 : Py_BuildValue("(NN)", valid, buf_bytes(&c->data));
        }
        if (!one) { Py_DECREF(cols); return NULL; }
        PyTuple_SET_ITEM(cols, i, one);
    }
    PyObject *r = Py_BuildValue("(nN)", (Py_ssize_t)k->rows, cols);
    if (!r) return NULL;
    if (cc_reset(k) < 0) { Py_DECREF(r); return NULL; }
    return r;
}

#define CONVCOLS_METHODS \
    {"conversation_columns", (PyCFunction)Engine_conversation_columns, METH_VARARGS, \
     "the conversations table's columns: the mode on"}, \
    {"conversations_held", (PyCFunction)Engine_conversations_held, METH_NOARGS, \
     "conversation rows held"}, \
    {"conversation_batch", (PyCFunction)Engine_conversation_batch, METH_NOARGS, \
     "the conversation rows held, as column buffers"},

/* sockcap._speedups: the Packet a Python view is handed, made here from this file's own
 * decode (included by _speedups.c just before render()).
 *
 * Why: a view the engine does not write (--explain's sentences, --filters, and JSON,
 * tcpdump's notation, colour while they are Python) is handed each packet as the
 * ``sockcap.decode.records.Packet`` the reference decoder makes (see hand_to_view). Before
 * this file, an engine with a view read no records itself: every frame went through the
 * Python reader's loop and the Python decoder, and Engine.packet read the Packet's fields
 * back (addresses parsed from their text). Now the engine reads records straight from the
 * reader's buffer with a view too (reads_records stays True), decodes them with
 * decode_fast, and makes the Packet only for a packet it hands over, with every field the
 * decoder gives: the same integers, the frame's bytes, "IPv4"/"IPv6", the addresses as
 * text (inet_ntop, as the decoder's inet_ntoa/inet_ntop; a small cache of the texts, as
 * the decoder keeps), the TCP options in wire order with NOP and EOL as records (the
 * decoder's own NOP and EOL objects), no notes, not truncated, not a fragment, no tunnel.
 * A frame decode_fast does not take still goes to the Python decoder and Engine.packet.
 * tests/test_packet_made.py requires packet_made(frame) == decode_frame(frame) for every
 * frame this file decodes (goldens, corpus, hypothesis captures).
 *
 * The record types come from the decoder's own modules (imported once, when an engine
 * with a view is made): the C twin makes the decoder's record, so it takes the decoder's
 * class rather than a copy handed in beside the words.
 */

static PyObject *i128_to_py(i128 v);
static int i128_from_py(PyObject *o, i128 *out);
static int64_t as_i64(PyObject *o, int *err);
static int hand_to_view(Engine *e, const Pkt *p, const Ann *a);

static struct {
    PyTypeObject *packet, *option;  /* Packet, TcpOption (NamedTuples) */
    PyObject *nop, *eol;            /* sockcap.decode.transport.NOP, EOL */
    PyObject *ipv4, *ipv6, *empty_str, *empty_tuple;
} PK;

/* The address texts made so far, direct-mapped by a hash of the address: a capture has
 * few distinct addresses (the decoder keeps 4096; a slot here is replaced on a clash). */
#define ADDR_SLOTS 1024
typedef struct { int fam; uint8_t a[16]; PyObject *text; } AddrSlot;
static AddrSlot ADDR[ADDR_SLOTS];

static int packet_types_load(void) {
    if (PK.packet) return 0;
    PyObject *records = PyImport_ImportModule("sockcap.decode.records");
    PyObject *transport = records ? PyImport_ImportModule("sockcap.decode.transport") : NULL;
    PyObject *packet = NULL, *option = NULL, *nop = NULL, *eol = NULL;
    if (transport) {
        packet = PyObject_GetAttrString(records, "Packet");
        option = packet ? PyObject_GetAttrString(records, "TcpOption") : NULL;
        nop = option ? PyObject_GetAttrString(transport, "NOP") : NULL;
        eol = nop ? PyObject_GetAttrString(transport, "EOL") : NULL;
    }
    Py_XDECREF(records);
    Py_XDECREF(transport);
    int ok = eol && PyType_Check(packet) && PyType_Check(option) &&
             PyType_IsSubtype((PyTypeObject *)packet, &PyTuple_Type) &&
             PyType_IsSubtype((PyTypeObject *)option, &PyTuple_Type);
    if (ok) {
        PK.ipv4 = PyUnicode_InternFromString("IPv4");
        PK.ipv6 = PyUnicode_InternFromString("IPv6");
        PK.empty_str = PyUnicode_InternFromString("");
        PK.empty_tuple = PyTuple_New(0);
        ok = PK.ipv4 && PK.ipv6 && PK.empty_str && PK.empty_tuple;
    }
    if (!ok) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "sockcap.decode.records: Packet and TcpOption "
                                             "(NamedTuples) expected");
        Py_XDECREF(packet); Py_XDECREF(option); Py_XDECREF(nop); Py_XDECREF(eol);
        return -1;
    }
    PK.packet = (PyTypeObject *)packet;
    PK.option = (PyTypeObject *)option;
    PK.nop = nop;
    PK.eol = eol;
    return 0;
}

/* The address as the decoder writes it (a new reference). */
static PyObject *addr_text_of(int fam, const uint8_t *a) {
    size_t n = fam == 6 ? 16 : 4;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ a[i]) * 16777619u;
    h ^= h >> 15;
    AddrSlot *s = &ADDR[(h + (uint32_t)fam) % ADDR_SLOTS];
    if (s->text && s->fam == fam && !memcmp(s->a, a, n)) {
        Py_INCREF(s->text);
        return s->text;
    }
    char txt[64];
    if (!inet_ntop(fam == 6 ? AF_INET6 : AF_INET, a, txt, sizeof txt)) {
        PyErr_SetString(PyExc_ValueError, "address");
        return NULL;
    }
    PyObject *t = PyUnicode_FromString(txt);
    if (!t) return NULL;
    Py_XSETREF(s->text, t);
    Py_INCREF(t);
    s->fam = fam;
    memcpy(s->a, a, n);
    return t;
}

/* The options of a TCP header that decode_fast found well formed, [i, stop), as
 * sockcap.decode.transport.parse_tcp_options gives them (a new tuple). */
static PyObject *options_made(const uint8_t *d, Py_ssize_t i, Py_ssize_t stop) {
    PyObject *items[64];
    int n = 0;
    while (i < stop && n < 64) {
        uint8_t kind = d[i];
        if (kind == OPT_NOP) { Py_INCREF(PK.nop); items[n++] = PK.nop; i++; continue; }
        if (kind == OPT_EOL) { Py_INCREF(PK.eol); items[n++] = PK.eol; break; }
        Py_ssize_t after = i + d[i + 1]; /* checked by tcp_options: 2 <= len, after <= stop */
        PyObject *k = PyLong_FromLong(kind);
        PyObject *v = k ? PyBytes_FromStringAndSize((const char *)d + i + 2, after - i - 2) : NULL;
        PyObject *o = v ? PK.option->tp_alloc(PK.option, OPTION_FIELDS) : NULL;
        if (!o) {
            Py_XDECREF(k); Py_XDECREF(v);
            while (n) Py_DECREF(items[--n]);
            return NULL;
        }
        PyTuple_SET_ITEM(o, OPTION_KIND, k);
        PyTuple_SET_ITEM(o, OPTION_VALUE, v);
        items[n++] = o;
        i = after;
    }
    if (!n) { Py_INCREF(PK.empty_tuple); return PK.empty_tuple; }
    PyObject *t = PyTuple_New(n);
    if (!t) { while (n) Py_DECREF(items[--n]); return NULL; }
    for (int k = 0; k < n; k++) PyTuple_SET_ITEM(t, k, items[k]);
    return t;
}

/* The Packet sockcap.decode.decode_frame makes of a frame decode_fast decoded (a new
 * reference): p->data_obj is the frame's bytes object when there is one (Engine.frame),
 * else the bytes are copied from the reader's buffer. */
static PyObject *packet_made(const Pkt *p) {
    PyObject *v[PACKET_FIELDS] = {0};
    const uint8_t *d = p->data;
    Py_ssize_t ip = p->ip_off;
    int tcp = p->proto == 6;
    v[PACKET_TS_NS] = i128_to_py(p->ts);
    v[PACKET_LINKTYPE] = PyLong_FromLongLong(p->linktype);
    v[PACKET_WIRELEN] = PyLong_FromLongLong(p->wirelen);
    if (p->data_obj) { Py_INCREF(p->data_obj); v[PACKET_DATA] = p->data_obj; }
    else v[PACKET_DATA] = PyBytes_FromStringAndSize((const char *)d, p->caplen);
    v[PACKET_NET] = p->fam == 6 ? PK.ipv6 : PK.ipv4;
    Py_INCREF(v[PACKET_NET]);
    v[PACKET_SRC] = addr_text_of(p->fam, p->src);
    v[PACKET_DST] = addr_text_of(p->fam, p->dst);
    v[PACKET_PROTO] = PyLong_FromLong(p->proto);
    v[PACKET_SPORT] = PyLong_FromLongLong(p->sport);
    v[PACKET_DPORT] = PyLong_FromLongLong(p->dport);
    v[PACKET_SEQ] = PyLong_FromLongLong(p->seq);
    v[PACKET_ACK] = PyLong_FromLongLong(p->ack);
    v[PACKET_FLAGS] = PyLong_FromLong(p->flags);
    v[PACKET_WINDOW] = PyLong_FromLongLong(p->window);
    Py_ssize_t th = ip + (p->fam == 6 ? 40 : 20);
    if (tcp && p->payload_off > th + 20) v[PACKET_OPTIONS] = options_made(d, th + 20, p->payload_off);
    else { Py_INCREF(PK.empty_tuple); v[PACKET_OPTIONS] = PK.empty_tuple; }
    v[PACKET_PAYLOAD_OFF] = PyLong_FromLongLong(p->payload_off);
    v[PACKET_PAYLOAD_LEN] = PyLong_FromLongLong(p->payload_len);
    Py_INCREF(PK.empty_str);
    v[PACKET_TRUNCATED] = PK.empty_str;
    Py_INCREF(PK.empty_tuple);
    v[PACKET_NOTES] = PK.empty_tuple;
    v[PACKET_IP_ID] = PyLong_FromLong(p->fam == 6 ? -1 : (long)be16(d + ip + 4));
    v[PACKET_TTL] = PyLong_FromLong(p->fam == 6 ? d[ip + 7] : d[ip + 8]);
    Py_INCREF(Py_False);
    v[PACKET_FRAGMENT] = Py_False;
    Py_INCREF(PK.empty_str);
    v[PACKET_TUNNEL] = PK.empty_str;
    PyObject *pk = NULL;
    int i;
    for (i = 0; i < PACKET_FIELDS && v[i]; i++) {}
    if (i == PACKET_FIELDS) pk = PK.packet->tp_alloc(PK.packet, PACKET_FIELDS);
    if (!pk) {
        for (i = 0; i < PACKET_FIELDS; i++) Py_XDECREF(v[i]);
        return NULL;
    }
    for (i = 0; i < PACKET_FIELDS; i++) PyTuple_SET_ITEM(pk, i, v[i]);
    return pk;
}

/* hand_to_view for a packet decoded here: its Packet made, no decoder notes. */
static int hand_made_packet(Engine *e, const Pkt *p, const Ann *a) {
    Pkt q = *p;
    q.packet = packet_made(p);
    if (!q.packet) return -1;
    q.notes = PK.empty_tuple;
    int rc = hand_to_view(e, &q, a);
    Py_DECREF(q.packet);
    return rc;
}

/* made(raw_frame) -> Packet or None: the Packet this engine hands a view for a frame it
 * decodes itself (None: the Python decoder's frame). Touches no state. */
static PyObject *Engine_made(Engine *e, PyObject *frame) {
    if (packet_types_load() < 0) return NULL;
    if (!PyTuple_Check(frame) || PyTuple_GET_SIZE(frame) < FRAME_INTERFACE) {
        PyErr_SetString(PyExc_TypeError, "made: a RawFrame expected");
        return NULL;
    }
    PyObject *data = PyTuple_GET_ITEM(frame, FRAME_DATA);
    if (!PyBytes_Check(data)) Py_RETURN_NONE;
    int err = 0;
    int64_t linktype = as_i64(PyTuple_GET_ITEM(frame, FRAME_LINKTYPE), &err);
    int64_t wirelen = as_i64(PyTuple_GET_ITEM(frame, FRAME_WIRELEN), &err);
    if (err) { PyErr_Clear(); Py_RETURN_NONE; }
    Pkt p;
    if (i128_from_py(PyTuple_GET_ITEM(frame, FRAME_TS_NS), &p.ts) < 0) { PyErr_Clear(); Py_RETURN_NONE; }
    p.wirelen = wirelen;
    if (!decode_fast((const uint8_t *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), linktype, &p))
        Py_RETURN_NONE;
    p.data_obj = data;
    return packet_made(&p);
}

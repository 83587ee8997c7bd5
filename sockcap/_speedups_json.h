/* `show --json` written by the engine (contract.Style.JSON): one line a packet, the same
 * bytes as sockcap.render.timeline.json_line, the reference (the pure twin's view).
 *
 * Included by _speedups.c just before render(); static functions only. What it writes:
 *
 *   {"type":"packet","no":N,"time":T,"ts":S,"src":..,"sport":..,"dst":..,"dport":..,
 *    "proto":..,"flags":[..],"seq":..,"ack":..,"win":..,"len":..,"phase":..,
 *    "payload_hex":"..","stream":..,"from":..,"frame_len":..,"captured_len":..,
 *    "truncated":..,"notes":[..],"tunnel":..[,"icmp":{..}]}
 *
 * json.dumps(..., separators=(",", ":"), ensure_ascii=False): strings keep their UTF-8,
 * only '"', '\\' and the control characters below 0x20 are escaped (the short forms
 * \b \f \n \r \t, else \u00xx). Floats are Python's repr:
 * - "ts" (ts_ns / 1e9, a full double): PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0),
 *   which is float.__repr__ itself;
 * - "time", round((ts - first) / 1e9, 9): for |ts - first| < 2**22 s the double's ulp is
 *   under a nanosecond, so rounding it to 9 decimals gives back the exact decimal
 *   (ts - first) / 10**9, and that decimal is the shortest that reads back as the same
 *   double (any other with at most 9 decimals lies a nanosecond away, outside the double's
 *   rounding interval): its digits, trailing zeros cut, placed as repr places them
 *   (scientific below 1e-4). Past that, Python's own round() and repr() are called.
 * The codes (phases, notes, flag names) are JSON strings that never depend on the
 * language: they are taken from the Python definitions once, when the engine is made.
 * An ICMP message's "icmp" object is the one thing asked of Python per packet
 * (timeline.json_icmp: the ICMP decoder and its names live there): ICMP packets come
 * through Engine.packet() from the Python decoder already, and are few.
 */

#define JSON_EXACT_TIME_NS ((int64_t)4194304 * NS_PER_SEC) /* 2**22 s, see above */

typedef struct JsonWords {
    Text flags[512];     /* the "flags" list for each flag set: ["SYN","ACK"] */
    Text phase[PH_COUNT]; /* the "phase" value: "data", or null for Phase.NONE */
    Text note[N_KINDS];  /* each counted kind's JSON string, quoted */
    Text dup_head, dup_tail; /* "duplicate ACK #" {n} "" (quotes included) */
    Text num_head[2], num_tail[2]; /* the same of N_LARGER_THAN_MTU's and N_NAGLE_STALL's */
    PyObject *icmp;      /* sockcap.render.timeline.json_icmp */
} JsonWords;

/* "000102...ff": a byte's two hex digits at 2 * byte (made by json_init) */
static char JSON_HEX2[512];

static void json_free(JsonWords *j) {
    if (!j) return;
    for (int i = 0; i < 512; i++) PyMem_Free(j->flags[i].s);
    for (int i = 0; i < PH_COUNT; i++) PyMem_Free(j->phase[i].s);
    for (int i = 0; i < N_KINDS; i++) PyMem_Free(j->note[i].s);
    PyMem_Free(j->dup_head.s);
    PyMem_Free(j->dup_tail.s);
    for (int i = 0; i < 2; i++) {
        PyMem_Free(j->num_head[i].s);
        PyMem_Free(j->num_tail[i].s);
    }
    Py_XDECREF(j->icmp);
    PyMem_Free(j);
}

/* Which bytes a JSON string writes escaped (json.dumps, ensure_ascii=False). */
static const uint8_t JSON_ESCAPED[256] = {
    PLAIN_16(1), PLAIN_16(1),                                       /* 0x00-0x1f */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                 /* 0x20-0x2f: '"' */
    PLAIN_16(0), PLAIN_16(0),                                       /* 0x30-0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,                 /* 0x50-0x5f: '\\' */
};

/* s[0:n] (UTF-8) as a quoted JSON string. */
static int put_json_string(Buf *b, const char *s, size_t n) {
    if (buf_reserve(b, 6 * n + 2) < 0) return -1;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (!JSON_ESCAPED[c]) { *o++ = (char)c; continue; }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = HEXD[c >> 4];
            o[4] = HEXD[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

/* A str as a JSON string; an empty one (or not a str) as null when ``empty_null``. */
static int put_json_pystr(Buf *b, PyObject *s, int empty_null) {
    Py_ssize_t n = 0;
    const char *c = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (!c) {
        if (PyErr_Occurred()) return -1;
        if (!empty_null) { PyErr_SetString(PyExc_TypeError, "str expected"); return -1; }
    }
    if (!c || (empty_null && n == 0)) {
        if (buf_reserve(b, 4) < 0) return -1;
        put(b, "null", 4);
        return 0;
    }
    return put_json_string(b, c, (size_t)n);
}

/* A text made once: the JSON of a str (quoted), kept in ``t``. */
static int json_text_of(Text *t, PyObject *s) {
    Buf tmp = {0};
    if (!PyUnicode_Check(s)) { PyErr_SetString(PyExc_TypeError, "str expected"); return -1; }
    if (put_json_pystr(&tmp, s, 0) < 0 || buf_reserve(&tmp, 1) < 0) { PyMem_Free(tmp.p); return -1; }
    tmp.p[tmp.len] = 0;
    PyMem_Free(t->s);
    t->s = tmp.p;
    t->n = (Py_ssize_t)tmp.len;
    return 0;
}

static int text_of_bytes(Text *t, const char *s, size_t n) {
    char *c = PyMem_Malloc(n + 1);
    if (!c) { PyErr_NoMemory(); return -1; }
    memcpy(c, s, n);
    c[n] = 0;
    PyMem_Free(t->s);
    t->s = c;
    t->n = (Py_ssize_t)n;
    return 0;
}

/* The JSON words, from the Python definitions (engine_words' phase_codes and notes_of,
 * the counted kinds, timeline.flag_names). */
static int json_init(Engine *e, PyObject *phase_codes, PyObject *notes_of) {
    JsonWords *j = PyMem_Calloc(1, sizeof *j);
    if (!j) { PyErr_NoMemory(); return -1; }
    for (int i = 0; i < 256; i++) {
        JSON_HEX2[2 * i] = HEXD[i >> 4];
        JSON_HEX2[2 * i + 1] = HEXD[i & 15];
    }
    PyObject *timeline = PyImport_ImportModule("sockcap.render.timeline");
    PyObject *names = timeline ? PyObject_GetAttrString(timeline, "flag_names") : NULL;
    if (timeline) j->icmp = PyObject_GetAttrString(timeline, "json_icmp");
    Py_XDECREF(timeline);
    if (!names || !j->icmp) goto fail;
    for (int f = 0; f < 512; f++) {
        PyObject *set = PyObject_CallFunction(names, "i", f);
        if (!set) goto fail;
        Buf tmp = {0};
        int rc = PyTuple_Check(set) && buf_reserve(&tmp, 1) == 0 ? 0 : -1;
        if (rc == 0) put(&tmp, "[", 1);
        for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(set); i++) {
            if (i && (rc = buf_reserve(&tmp, 1)) == 0) put(&tmp, ",", 1);
            if (rc == 0) rc = put_json_pystr(&tmp, PyTuple_GET_ITEM(set, i), 0);
        }
        Py_DECREF(set);
        if (rc == 0 && buf_reserve(&tmp, 1) == 0) put(&tmp, "]", 1);
        else rc = -1;
        if (rc == 0) rc = text_of_bytes(&j->flags[f], tmp.p, tmp.len);
        PyMem_Free(tmp.p);
        if (rc < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "flag_names: tuples of str");
            goto fail;
        }
    }
    Py_CLEAR(names);
    PyObject *codes = PySequence_Fast(phase_codes, "phase_codes");
    if (!codes) goto fail;
    if (PySequence_Fast_GET_SIZE(codes) != PH_COUNT) {
        Py_DECREF(codes);
        PyErr_Format(PyExc_ValueError, "phase_codes: %d items expected", PH_COUNT);
        goto fail;
    }
    for (int i = 0; i < PH_COUNT; i++) {
        PyObject *code = PySequence_Fast_GET_ITEM(codes, i);
        int rc = PyUnicode_Check(code) && PyUnicode_GET_LENGTH(code) == 0
                     ? text_of_bytes(&j->phase[i], "null", 4)
                     : json_text_of(&j->phase[i], code);
        if (rc < 0) { Py_DECREF(codes); goto fail; }
    }
    Py_DECREF(codes);
    for (int k = 0; k < N_KINDS; k++)
        if (json_text_of(&j->note[k], PyTuple_GET_ITEM(e->kinds, k)) < 0) goto fail;
    /* "duplicate ACK #{n}": the CountedNote notes_of makes, cut around a number */
    PyObject *made = PyCallable_Check(notes_of)
        ? PyObject_CallFunction(notes_of, "iLO", A_DUPLICATE_ACK, 987654321LL, Py_False) : NULL;
    Text whole = {0};
    int rc = made && PyTuple_Check(made) && PyTuple_GET_SIZE(made) > 0
                 ? json_text_of(&whole, PyTuple_GET_ITEM(made, PyTuple_GET_SIZE(made) - 1)) : -1;
    Py_XDECREF(made);
    const char *at = rc == 0 ? strstr(whole.s, "987654321") : NULL;
    if (at) {
        rc = text_of_bytes(&j->dup_head, whole.s, (size_t)(at - whole.s));
        if (rc == 0) rc = text_of_bytes(&j->dup_tail, at + 9, strlen(at + 9));
    }
    PyMem_Free(whole.s);
    if (!at || rc < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "notes_of: the duplicate ACK's note");
        goto fail;
    }
    /* the confusion notes with a number: codes.CountedNote's JSON text, cut the same way */
    PyObject *codes_mod = PyImport_ImportModule("sockcap.codes");
    for (int i = 0; i < 2 && codes_mod; i++) {
        PyObject *note = PyObject_CallMethod(codes_mod, "CountedNote", "OL",
                                             PyTuple_GET_ITEM(e->kinds, i ? N_NAGLE_STALL
                                                                          : N_LARGER_THAN_MTU),
                                             987654321LL);
        Text one = {0};
        int ok = note && json_text_of(&one, note) == 0;
        Py_XDECREF(note);
        const char *mark = ok ? strstr(one.s, "987654321") : NULL;
        ok = mark && text_of_bytes(&j->num_head[i], one.s, (size_t)(mark - one.s)) == 0 &&
             text_of_bytes(&j->num_tail[i], mark + 9, strlen(mark + 9)) == 0;
        PyMem_Free(one.s);
        if (!ok) Py_CLEAR(codes_mod);
    }
    if (!codes_mod) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "codes.CountedNote: a note");
        goto fail;
    }
    Py_DECREF(codes_mod);
    json_free(e->json);
    e->json = j;
    return 0;
fail:
    Py_XDECREF(names);
    json_free(j);
    return -1;
}

/* repr(round(d / 1e9, 9)) for |d| < JSON_EXACT_TIME_NS (see the top); room reserved. */
static void put_json_seconds(Buf *b, int64_t d) {
    char *o = b->p + b->len;
    if (d == 0) { memcpy(o, "0.0", 3); b->len += 3; return; }
    if (d < 0) { *o++ = '-'; d = -d; }
    uint64_t n = (uint64_t)d;
    int z = 0;
    while (z < 9 && n % 10 == 0) { n /= 10; z++; }
    char dig[24];
    int nd = count_digits(n);
    digits_before(dig + nd, n);
    int decpt = nd + z - 9; /* the value is 0.DIGITS times 10**decpt */
    if (decpt <= -4) {      /* repr's scientific form: 1.5e-05 */
        *o++ = dig[0];
        if (nd > 1) { *o++ = '.'; memcpy(o, dig + 1, (size_t)nd - 1); o += nd - 1; }
        int x = 1 - decpt;
        *o++ = 'e'; *o++ = '-';
        *o++ = (char)('0' + x / 10);
        *o++ = (char)('0' + x % 10);
    } else if (decpt <= 0) {
        memcpy(o, "0.", 2); o += 2;
        memset(o, '0', (size_t)-decpt); o += -decpt;
        memcpy(o, dig, (size_t)nd); o += nd;
    } else if (decpt >= nd) {
        memcpy(o, dig, (size_t)nd); o += nd;
        memset(o, '0', (size_t)(decpt - nd)); o += decpt - nd;
        memcpy(o, ".0", 2); o += 2;
    } else {
        memcpy(o, dig, (size_t)decpt); o += decpt;
        *o++ = '.';
        memcpy(o, dig + decpt, (size_t)(nd - decpt)); o += nd - decpt;
    }
    b->len = (size_t)(o - b->p);
}

static PyObject *i128_to_py(i128 v);

/* float(v): Python's int -> float, correctly rounded (a new reference). */
static PyObject *json_float_of(i128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return PyFloat_FromDouble((double)(int64_t)v);
    PyObject *i = i128_to_py(v);
    if (!i) return NULL;
    PyObject *f = PyNumber_Float(i);
    Py_DECREF(i);
    return f;
}

/* repr(v) for 1 <= v < 2**52, written (room reserved): 1 when done, 0 when left to
 * put_float_repr's general way (then nothing is written).
 *
 * repr is the shortest decimal that reads back as v, the nearest to v among the shortest.
 * For v >= 1 the shortest has the fewest decimals, and if a decimal with k of them reads
 * back as v, so does the one nearest v; so the first k (0, 1, ...) whose nearest
 * decimal D / 10**k lies in v's rounding interval (half an ulp each side, the ends
 * included when the significand is even, as strtod rounds) gives repr's digits. With
 * v = m * 2**-s exactly, that test is integer arithmetic: |D * 2**s - m * 10**k| against
 * 10**k / 2 (128 bits hold m * 10**17). A timestamp in seconds (ts_ns / 1e9, ~1.8e9) takes
 * 6-7 steps; dtoa's bignum arithmetic, which repr uses, was most of `show --json`'s time
 * (perf). A power of two (an interval narrower below than above) takes the general way.
 * tests/test_engine_json.py holds it to repr over random and adversarial doubles. */
static int put_repr_fast(Buf *b, double v) {
    if (!(v >= 1.0 && v < 4503599627370496.0)) return 0;
    int exp2;
    double fr = frexp(v, &exp2); /* v = fr * 2**exp2, 0.5 <= fr < 1 */
    uint64_t m = (uint64_t)ldexp(fr, 53);
    int s = 53 - exp2;           /* v = m * 2**-s, 1 <= s <= 52 */
    if (m == (uint64_t)1 << 52) return 0;
    u128 mask = ((u128)1 << s) - 1, half = (u128)1 << (s - 1), p10 = 1;
    for (int k = 0; k <= 17; k++, p10 *= 10) {
        u128 x = (u128)m * p10; /* v * 10**k = x / 2**s */
        u128 d = x >> s, rem = x & mask;
        if (rem > half || (rem == half && (d & 1))) d++;
        u128 ds = d << s, dist = ds > x ? ds - x : x - ds;
        if (!(2 * dist < p10 || (2 * dist == p10 && !(m & 1)))) continue;
        if (d >> 63) return 0;
        uint64_t ip = (uint64_t)(d / p10), frac = (uint64_t)(d % p10);
        char *o = b->p + b->len;
        int nd = count_digits(ip);
        digits_before(o + nd, ip);
        o += nd;
        *o++ = '.';
        if (k == 0) *o++ = '0';
        else {
            char tmp[24];
            int nf = count_digits(frac);
            memset(o, '0', (size_t)(k - nf)); /* leading zeros of the fraction */
            digits_before(tmp + nf, frac);
            memcpy(o + k - nf, tmp, (size_t)nf);
            o += k;
        }
        b->len = (size_t)(o - b->p);
        return 1;
    }
    return 0;
}

/* A float's repr (the Python object's), written. */
static int put_float_repr(Buf *b, double v) {
    if (buf_reserve(b, 48) < 0) return -1;
    if (put_repr_fast(b, v)) return 0;
    char *s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!s) return -1;
    size_t n = strlen(s);
    int rc = buf_reserve(b, n);
    if (rc == 0) put(b, s, n);
    PyMem_Free(s);
    return rc;
}

/* "time": round((ts - first) / 1e9, 9), as repr writes it. */
static int put_json_time(Buf *b, i128 diff) {
    if (diff > -JSON_EXACT_TIME_NS && diff < JSON_EXACT_TIME_NS) {
        if (buf_reserve(b, 40) < 0) return -1;
        put_json_seconds(b, (int64_t)diff);
        return 0;
    }
    PyObject *f = json_float_of(diff);
    if (!f) return -1;
    PyObject *q = PyFloat_FromDouble(PyFloat_AS_DOUBLE(f) / 1e9);
    Py_DECREF(f);
    if (!q) return -1;
    PyObject *r = PyObject_CallMethod(q, "__round__", "i", 9);
    Py_DECREF(q);
    if (!r) return -1;
    int rc = PyFloat_Check(r) ? put_float_repr(b, PyFloat_AS_DOUBLE(r)) : -1;
    if (rc < 0 && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "round: a float expected");
    Py_DECREF(r);
    return rc;
}

/* "ts": ts_ns / 1e9 */
static int put_json_ts(Buf *b, i128 ts) {
    if (ts >= INT64_MIN && ts <= INT64_MAX) return put_float_repr(b, (double)(int64_t)ts / 1e9);
    PyObject *f = json_float_of(ts);
    if (!f) return -1;
    int rc = put_float_repr(b, PyFloat_AS_DOUBLE(f) / 1e9);
    Py_DECREF(f);
    return rc;
}

/* A number, or null when negative (the Packet's neutral -1). */
static inline void put_json_port(Buf *b, int64_t v) {
    if (v >= 0) put_i64(b, v, 0);
    else put(b, "null", 4);
}

/* An address decoded here, as the Python decoder writes it (inet_ntoa / inet_ntop). */
static int put_json_addr(Buf *b, int fam, const uint8_t *a) {
    char text[INET6_ADDRSTRLEN];
    if (buf_reserve(b, sizeof text + 2) < 0) return -1;
    if (fam == 6) inet_ntop(AF_INET6, a, text, sizeof text);
    else {
        char *o = text;
        for (int i = 0; i < 4; i++) {
            o = write_i64(o, a[i], 0);
            *o++ = i < 3 ? '.' : 0;
        }
    }
    size_t n = strlen(text);
    put(b, "\"", 1);
    put(b, text, n);
    put(b, "\"", 1);
    return 0;
}

#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

/* The packet's notes: the decoder's, the analysis', the connection's own, a confusion's
 * (the order Engine.packet's view is given them, see view_notes). */
static int put_json_notes(Engine *e, Buf *b, const Pkt *p, const Ann *a) {
    JsonWords *j = e->json;
    int first = 1;
    if (buf_reserve(b, 1) < 0) return -1;
    put(b, "[", 1);
#define SEP() do { if (!first) { if (buf_reserve(b, 1) < 0) return -1; put(b, ",", 1); } first = 0; } while (0)
    if (p->notes)
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(p->notes); i++) {
            SEP();
            if (put_json_pystr(b, PyTuple_GET_ITEM(p->notes, i), 0) < 0) return -1;
        }
    if (a->bits) {
        for (int i = 0; i < N_FLAG_NOTES; i++) {
            if (!(a->bits & FLAG_NOTES[i][0])) continue;
            int kind = FLAG_NOTES[i][1];
            if (kind == N_RETRANSMISSION && (p->flags & F_SYN)) kind = N_SYN_RETRANSMITTED;
            SEP();
            if (put_text(b, &j->note[kind]) < 0) return -1;
        }
        if (a->bits & A_DUPLICATE_ACK) {
            SEP();
            if (put_text(b, &j->dup_head) < 0 || buf_reserve(b, 24) < 0) return -1;
            put_i64(b, a->dupacks, 0);
            if (put_text(b, &j->dup_tail) < 0) return -1;
        }
    }
    if (a->own >= 0) {
        SEP();
        if (put_text(b, &j->note[a->own]) < 0) return -1;
    }
    for (int k = N_FIRST_CONFUSION; a->told && k < N_KINDS; k++) {
        if (!(a->told & CONFUSION_BIT(k))) continue;
        SEP();
        if (k == N_LARGER_THAN_MTU || k == N_NAGLE_STALL) {
            int i = k == N_NAGLE_STALL;
            if (put_text(b, &j->num_head[i]) < 0 || buf_reserve(b, 24) < 0) return -1;
            put_i64(b, i ? a->stall_ms : a->segments, 0);
            if (put_text(b, &j->num_tail[i]) < 0) return -1;
        } else if (put_text(b, &j->note[k]) < 0) return -1;
    }
#undef SEP
    if (buf_reserve(b, 1) < 0) return -1;
    put(b, "]", 1);
    return 0;
}

/* The packet's --json line (timeline.json_line), "\n" after it. */
static int render_json(Engine *e, const Pkt *p, const Ann *a) {
    Buf *b = &e->out;
    JsonWords *j = e->json;
    Conv *c = a->conv;
    PyObject *pk = p->notes ? p->packet : NULL; /* decoded by Python: its Packet */
    int tcp = a->seq >= 0;
    if (buf_reserve(b, 128) < 0) return -1;
    PUT_LIT(b, "{\"type\":\"packet\",\"no\":");
    put_i64(b, e->count, 0);
    PUT_LIT(b, ",\"time\":");
    if (p->ts < 0) PUT_LIT(b, "null,\"ts\":null");
    else {
        if (put_json_time(b, p->ts - e->first) < 0) return -1;
        if (buf_reserve(b, 8) < 0) return -1;
        PUT_LIT(b, ",\"ts\":");
        if (put_json_ts(b, p->ts) < 0) return -1;
    }
    if (buf_reserve(b, 16) < 0) return -1;
    PUT_LIT(b, ",\"src\":");
    if (pk ? put_json_pystr(b, PyTuple_GET_ITEM(pk, PACKET_SRC), 1) : put_json_addr(b, p->fam, p->src))
        return -1;
    if (buf_reserve(b, 64) < 0) return -1;
    PUT_LIT(b, ",\"sport\":");
    put_json_port(b, p->sport);
    PUT_LIT(b, ",\"dst\":");
    if (pk ? put_json_pystr(b, PyTuple_GET_ITEM(pk, PACKET_DST), 1) : put_json_addr(b, p->fam, p->dst))
        return -1;
    if (buf_reserve(b, 64) < 0) return -1;
    PUT_LIT(b, ",\"dport\":");
    put_json_port(b, p->dport);
    PUT_LIT(b, ",\"proto\":");
    int located = p->sport >= 0 && (p->proto == 6 || p->proto == 17);
    if (located || !pk) {
        if (p->proto == 6) PUT_LIT(b, "\"TCP\"");
        else PUT_LIT(b, "\"UDP\"");
    } else if (put_json_pystr(b, p->proto_name, 0) < 0) return -1;
    if (buf_reserve(b, 16) < 0) return -1;
    PUT_LIT(b, ",\"flags\":");
    if (tcp) { if (put_text(b, &j->flags[p->flags]) < 0) return -1; }
    else PUT_LIT(b, "[]");
    if (buf_reserve(b, 160) < 0) return -1;
    if (tcp) {
        PUT_LIT(b, ",\"seq\":");
        put_i64(b, a->seq, 0);
        PUT_LIT(b, ",\"ack\":");
        put_i64(b, a->ack, 0);
        PUT_LIT(b, ",\"win\":");
        put_i64(b, a->win, 0);
    } else PUT_LIT(b, ",\"seq\":null,\"ack\":null,\"win\":null");
    PUT_LIT(b, ",\"len\":");
    put_i64(b, p->sport >= 0 ? p->payload_len : p->wirelen, 0);
    PUT_LIT(b, ",\"phase\":");
    if (put_text(b, &j->phase[a->phase]) < 0) return -1;
    int64_t start = 0, stop = 0;
    if (p->sport >= 0) { /* p.payload: data[off : off + len], as captured */
        start = p->payload_off < p->caplen ? p->payload_off : p->caplen;
        stop = p->payload_off + p->payload_len;
        if (stop > p->caplen) stop = p->caplen;
    }
    if (buf_reserve(b, 16 + (size_t)(stop > start ? 2 * (stop - start) : 0)) < 0) return -1;
    PUT_LIT(b, ",\"payload_hex\":\"");
    if (stop > start) {
        char *o = b->p + b->len;
        for (const uint8_t *s = p->data + start, *end = p->data + stop; s < end; s++, o += 2)
            memcpy(o, JSON_HEX2 + 2 * *s, 2);
        b->len = (size_t)(o - b->p);
    }
    if (buf_reserve(b, 160) < 0) return -1;
    PUT_LIT(b, "\",\"stream\":");
    if (c) {
        put_i64(b, c->stream, 0);
        if (a->from_client) PUT_LIT(b, ",\"from\":\"client\"");
        else PUT_LIT(b, ",\"from\":\"server\"");
    } else PUT_LIT(b, "null,\"from\":null");
    PUT_LIT(b, ",\"frame_len\":");
    put_i64(b, p->wirelen, 0);
    PUT_LIT(b, ",\"captured_len\":");
    put_i64(b, p->caplen, 0);
    PUT_LIT(b, ",\"truncated\":");
    if (p->trunc_n) { if (put_json_string(b, p->trunc, (size_t)p->trunc_n) < 0) return -1; }
    else PUT_LIT(b, "null");
    if (buf_reserve(b, 16) < 0) return -1;
    PUT_LIT(b, ",\"notes\":");
    if (put_json_notes(e, b, p, a) < 0) return -1;
    if (buf_reserve(b, 16) < 0) return -1;
    PUT_LIT(b, ",\"tunnel\":");
    if (pk) { if (put_json_pystr(b, PyTuple_GET_ITEM(pk, PACKET_TUNNEL), 1) < 0) return -1; }
    else PUT_LIT(b, "null");
    if (pk && p->info && p->sport < 0) { /* an ICMP message */
        PyObject *icmp = PyObject_CallOneArg(j->icmp, pk);
        if (!icmp) return -1;
        int rc = 0;
        if (icmp != Py_None) {
            Py_ssize_t n;
            const char *s = PyUnicode_Check(icmp) ? PyUnicode_AsUTF8AndSize(icmp, &n) : NULL;
            if (!s || buf_reserve(b, (size_t)n + 8) < 0) rc = -1;
            else {
                PUT_LIT(b, ",\"icmp\":");
                put(b, s, (size_t)n);
            }
            if (rc < 0 && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "json_icmp: str");
        }
        Py_DECREF(icmp);
        if (rc < 0) return -1;
    }
    if (buf_reserve(b, 2) < 0) return -1;
    PUT_LIT(b, "}\n");
    return 0;
}

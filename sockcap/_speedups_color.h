/* Colour (``show --color always``, or on a terminal): the packet's lines wrapped in the
 * SGR sequences rich writes for the styles the Python view gives them
 * (PacketView.styled, timeline.style_of), byte for byte.
 *
 * The table comes whole from Python (contract.color_table over output.ansi_codes: each
 * style rendered once by rich itself when the engine is made), one opening sequence a
 * slot (COLOR_STYLES: a line of each phase, the client's data, the server's, a line
 * with notes, the dim lines) and the one closing sequence rich ends them all with. No
 * code is written here: a style changed in timeline.py changes the bytes on both twins.
 *
 * The text is written by render() as without colour and then wrapped: each line of the
 * packet (the guessed roles' line, the packet's line, the --hex rows) gets its opening
 * before it and the closing after it, as rich prints ``Text(line, style)`` (a line of no
 * style is written bare, as Output.line writes it). Wrapping afterwards keeps render()
 * and put_hexdump() the one writer of the text (no branch a field), at the cost of one
 * move of the packet's line (~100 bytes, in place) and, under --hex, of its rows
 * (written aside by put_hexdump(), copied back between their sequences).
 *
 * Included by _speedups.c just before render(); uses its Buf, Text and Engine. */

typedef int (*Renderer)(Engine *e, const Pkt *p, const Ann *a);
static int render(Engine *e, const Pkt *p, const Ann *a);
static int render_tcpdump(Engine *e, const Pkt *p, const Ann *a);

/* The table, and a scratch buffer the packet's text is copied to while it is wrapped. */
struct Palette {
    Text code[COLOR_COUNT + 1]; /* each slot's opening; then the closing */
    Buf scratch;
};

static void palette_free(struct Palette *t) {
    if (!t) return;
    for (int i = 0; i <= COLOR_COUNT; i++) PyMem_Free(t->code[i].s);
    PyMem_Free(t->scratch.p);
    PyMem_Free(t);
}

/* Engine(color=): a sequence of COLOR_COUNT + 1 str, or anything false for none. */
static int color_set(Engine *e, PyObject *table) {
    int on = PyObject_IsTrue(table);
    if (on <= 0) {
        e->color = 0;
        return on;
    }
    PyObject *f = PySequence_Fast(table, "color: the colour table (contract.color_table)");
    if (!f) return -1;
    if (PySequence_Fast_GET_SIZE(f) != COLOR_COUNT + 1) {
        PyErr_Format(PyExc_ValueError, "color: %d sequences expected (contract.color_table)",
                     COLOR_COUNT + 1);
        Py_DECREF(f);
        return -1;
    }
    struct Palette *t = PyMem_Calloc(1, sizeof *t);
    if (!t) { Py_DECREF(f); PyErr_NoMemory(); return -1; }
    int rc = 0;
    for (int i = 0; i <= COLOR_COUNT && rc == 0; i++) {
        PyObject *s = PySequence_Fast_GET_ITEM(f, i);
        if (!PyUnicode_Check(s)) {
            PyErr_SetString(PyExc_TypeError, "color: str sequences expected");
            rc = -1;
        } else rc = text_set(&t->code[i], s);
    }
    Py_DECREF(f);
    if (rc == 0 && t->code[COLOR_COUNT].n == 0) {
        PyErr_SetString(PyExc_ValueError, "color: the closing sequence is empty");
        rc = -1;
    }
    if (rc < 0) {
        palette_free(t);
        return -1;
    }
    palette_free(e->palette);
    e->palette = t;
    e->color = 1;
    return 0;
}

static void color_free(Engine *e) {
    palette_free(e->palette);
    e->palette = NULL;
}

/* The slot of the packet's own line: timeline.style_of. */
static int color_slot(const Engine *e, const Pkt *p, const Ann *a) {
    if (a->phase == PH_DATA) return a->from_client ? COLOR_CLIENT : COLOR_SERVER;
    if (e->palette->code[a->phase].n) return a->phase;
    return has_notes(p, a) ? COLOR_NOTES : -1;
}

/* Lines from ``start`` to the end of the buffer (each ended by "\n") wrapped in place:
 * line ``at`` in ``mine``'s sequences, the others in ``other``'s (NULL or "": bare). */
static int wrap_lines(Engine *e, size_t start, size_t at, const Text *mine, const Text *other) {
    Buf *b = &e->out;
    struct Palette *t = e->palette;
    const Text *close = &t->code[COLOR_COUNT];
    size_t n = b->len - start;
    if (n == 0) return 0;
    if (at == 0 && !memchr(b->p + start, '\n', n - 1)) {
        /* one line (the common case): moved right by its opening, closed before "\n" */
        if (!mine || !mine->n) return 0;
        if (buf_reserve(b, (size_t)(mine->n + close->n)) < 0) return -1;
        char *o = b->p + start;
        memmove(o + mine->n, o, n - 1);
        memcpy(o, mine->s, (size_t)mine->n);
        o += mine->n + n - 1;
        memcpy(o, close->s, (size_t)close->n);
        o[close->n] = '\n';
        b->len += (size_t)(mine->n + close->n);
        return 0;
    }
    /* several lines (the guessed roles' line first): copied aside, written back */
    Buf *s = &t->scratch;
    s->len = 0;
    if (buf_reserve(s, n) < 0) return -1;
    memcpy(s->p, b->p + start, n);
    b->len = start;
    const char *q = s->p, *end = s->p + n;
    for (size_t i = 0; q < end; i++) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        size_t len = (size_t)((nl ? nl : end) - q);
        const Text *open = i == at ? mine : other;
        size_t wrap = open && open->n ? (size_t)(open->n + close->n) : 0;
        if (buf_reserve(b, len + wrap + 1) < 0) return -1;
        if (wrap) put(b, open->s, (size_t)open->n);
        put(b, q, len);
        if (wrap) put(b, close->s, (size_t)close->n);
        put(b, "\n", 1);
        q += len + 1;
    }
    return 0;
}

/* A text line's writer (render() for the Wireshark-style line, render_tcpdump() for
 * tcpdump's notation: the view colours both alike) without the --hex rows, its lines
 * wrapped (the packet's own line in its slot's sequences, the guessed roles' line before
 * it dim); then the --hex rows, each dim: put_hexdump() writes them aside and each is
 * copied back between its sequences (one pass, the rows' format stays put_hexdump's
 * alone). */
static int render_color(Engine *e, const Pkt *p, const Ann *a, Renderer text) {
    Buf *b = &e->out;
    struct Palette *t = e->palette;
    const Conv *c = a->conv;
    /* as render() decides it, before the text is made */
    int guessed = c && c->roles == ROLES_GUESSED && c->dirs[0].packets + c->dirs[1].packets == 1;
    int own = color_slot(e, p, a);
    size_t start = b->len;
    int hex = e->hex;
    e->hex = 0;
    int rc = text(e, p, a);
    e->hex = hex;
    if (rc < 0) return -1;
    const Text *close = &t->code[COLOR_COUNT], *dim = &t->code[COLOR_DIM];
    if (wrap_lines(e, start, guessed ? 1 : 0, own >= 0 ? &t->code[own] : NULL, dim) < 0)
        return -1;
    if (!hex) return 0;
    /* the rows render() writes (its --hex branch), into the scratch buffer */
    Buf *s = &t->scratch;
    s->len = 0;
    int64_t count;
    if (p->sport < 0) {
        count = p->caplen;
        rc = put_hexdump(s, p->data, count);
    } else {
        int64_t from = p->payload_off < p->caplen ? p->payload_off : p->caplen;
        int64_t stop = p->payload_off + p->payload_len;
        if (stop > p->caplen) stop = p->caplen;
        count = stop > from ? stop - from : 0;
        rc = count ? put_hexdump(s, p->data + from, count) : 0;
    }
    if (rc < 0) return -1;
    if (s->len == 0) return 0;
    size_t rows = (size_t)(count + 15) / 16;
    size_t wrap = dim->n ? (size_t)(dim->n + close->n) : 0;
    if (buf_reserve(b, s->len + rows * wrap + 1) < 0) return -1;
    b->len--; /* before the packet's "\n": each row is "\n" and the row */
    const char *q = s->p, *end = s->p + s->len;
    while (q < end) {
        const char *row = q + 1;
        const char *nl = memchr(row, '\n', (size_t)(end - row));
        size_t len = (size_t)((nl ? nl : end) - row);
        put(b, "\n", 1);
        if (wrap) put(b, dim->s, (size_t)dim->n);
        put(b, row, len);
        if (wrap) put(b, close->s, (size_t)close->n);
        q = row + len;
    }
    put(b, "\n", 1);
    return 0;
}

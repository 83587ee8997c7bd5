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
 * The text is written by render() as without colour and then wrapped in place: each
 * line of the packet (the guessed roles' line, the packet's line, the --hex rows) gets
 * its opening before it and the closing after it, as rich prints ``Text(line, style)``
 * (a line of no style is written bare, as Output.line writes it). Wrapping afterwards
 * keeps render() one function for both (no branch a field), at the cost of one move of
 * the packet's bytes: a line moved right in place (~100 bytes), or, with more than one
 * line (--hex rows, the guessed roles' line), the packet's text copied aside once and
 * written back a line at a time.
 *
 * Included by _speedups.c just before render(); uses its Buf, Text and Engine. */

static int render(Engine *e, const Pkt *p, const Ann *a);

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
    int has_notes = a->bits || a->own >= 0 || a->told >= 0 ||
                    (p->notes && PyTuple_GET_SIZE(p->notes));
    return has_notes ? COLOR_NOTES : -1;
}

/* render(), then each of the packet's lines (from ``start`` in the buffer) wrapped in its
 * style's sequences: the packet's own line in its slot's, the others (the guessed roles'
 * line before it, the --hex rows under it) dim. */
static int render_color(Engine *e, const Pkt *p, const Ann *a) {
    Buf *b = &e->out;
    struct Palette *t = e->palette;
    const Conv *c = a->conv;
    /* as render() decides it, before the text is made */
    int guessed = c && c->roles == ROLES_GUESSED && c->dirs[0].packets + c->dirs[1].packets == 1;
    int own = color_slot(e, p, a);
    size_t start = b->len;
    if (render(e, p, a) < 0) return -1;
    const Text *close = &t->code[COLOR_COUNT];
    const Text *mine = own >= 0 ? &t->code[own] : NULL;
    size_t n = b->len - start;
    if (n == 0) return 0;
    if (!guessed && !memchr(b->p + start, '\n', n - 1)) {
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
    /* several lines: copied aside, then written back line by line */
    Buf *s = &t->scratch;
    s->len = 0;
    if (buf_reserve(s, n) < 0) return -1;
    memcpy(s->p, b->p + start, n);
    b->len = start;
    const Text *dim = &t->code[COLOR_DIM];
    size_t at = guessed ? 1 : 0; /* the packet's own line */
    const char *q = s->p, *end = s->p + n;
    size_t lines = 0;
    for (const char *r = q; (r = memchr(r, '\n', (size_t)(end - r))) != NULL; r++) lines++;
    /* room for every line wrapped at once (and one more, unended, never written) */
    if (buf_reserve(b, n + 1 + (lines + 1) * (size_t)(t->code[COLOR_DIM].n + close->n) +
                           (mine ? (size_t)(mine->n + close->n) : 0)) < 0)
        return -1;
    for (size_t i = 0; q < end; i++) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        size_t len = (size_t)((nl ? nl : end) - q);
        const Text *open = i == at ? mine : dim;
        size_t wrap = open && open->n ? (size_t)(open->n + close->n) : 0;
        if (wrap) put(b, open->s, (size_t)open->n);
        put(b, q, len);
        if (wrap) put(b, close->s, (size_t)close->n);
        put(b, "\n", 1);
        q += len + 1;
    }
    return 0;
}

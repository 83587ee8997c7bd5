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
 * the packet's bytes (~70 bytes; the rows of --hex are moved once each).
 *
 * Included by _speedups.c just before render(); uses its Buf, Text and Engine. */

static int render(Engine *e, const Pkt *p, const Ann *a);

/* Engine(color=): a sequence of COLOR_COUNT + 1 str, or anything false for none. */
static int color_set(Engine *e, PyObject *table) {
    if (!PyObject_IsTrue(table)) {
        e->color = 0;
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *f = PySequence_Fast(table, "color: the colour table (contract.color_table)");
    if (!f) return -1;
    if (PySequence_Fast_GET_SIZE(f) != COLOR_COUNT + 1) {
        PyErr_Format(PyExc_ValueError, "color: %d sequences expected (contract.color_table)",
                     COLOR_COUNT + 1);
        Py_DECREF(f);
        return -1;
    }
    Text *palette = PyMem_Calloc(COLOR_COUNT + 1, sizeof(Text));
    if (!palette) { Py_DECREF(f); PyErr_NoMemory(); return -1; }
    int rc = 0;
    for (int i = 0; i <= COLOR_COUNT && rc == 0; i++) {
        PyObject *s = PySequence_Fast_GET_ITEM(f, i);
        if (!PyUnicode_Check(s)) {
            PyErr_SetString(PyExc_TypeError, "color: str sequences expected");
            rc = -1;
        } else rc = text_set(&palette[i], s);
    }
    Py_DECREF(f);
    if (rc == 0 && palette[COLOR_COUNT].n == 0) {
        PyErr_SetString(PyExc_ValueError, "color: the closing sequence is empty");
        rc = -1;
    }
    if (rc < 0) {
        for (int i = 0; i <= COLOR_COUNT; i++) PyMem_Free(palette[i].s);
        PyMem_Free(palette);
        return -1;
    }
    if (e->palette) {
        for (int i = 0; i <= COLOR_COUNT; i++) PyMem_Free(e->palette[i].s);
        PyMem_Free(e->palette);
    }
    e->palette = palette;
    e->color = 1;
    return 0;
}

static void color_free(Engine *e) {
    if (!e->palette) return;
    for (int i = 0; i <= COLOR_COUNT; i++) PyMem_Free(e->palette[i].s);
    PyMem_Free(e->palette);
    e->palette = NULL;
}

/* The slot of the packet's own line: timeline.style_of. */
static int color_slot(const Engine *e, const Pkt *p, const Ann *a) {
    if (a->phase == PH_DATA) return a->from_client ? COLOR_CLIENT : COLOR_SERVER;
    if (e->palette[a->phase].n) return a->phase;
    int has_notes = a->bits || a->own >= 0 || a->told >= 0 ||
                    (p->notes && PyTuple_GET_SIZE(p->notes));
    return has_notes ? COLOR_NOTES : -1;
}

/* render(), then each of the packet's lines (from ``start`` in the buffer) wrapped in its
 * style's sequences. ``guessed``: the first line is the guessed roles' (as render()
 * decides it, before the text is made). */
static int render_color(Engine *e, const Pkt *p, const Ann *a) {
    Buf *b = &e->out;
    const Conv *c = a->conv;
    int guessed = c && c->roles == ROLES_GUESSED && c->dirs[0].packets + c->dirs[1].packets == 1;
    int own = color_slot(e, p, a);
    size_t start = b->len;
    if (render(e, p, a) < 0) return -1;
    const Text *close = &e->palette[COLOR_COUNT];
    const Text *dim = &e->palette[COLOR_DIM];
    const Text *mine = own >= 0 ? &e->palette[own] : NULL;
    size_t wd = dim->n ? (size_t)(dim->n + close->n) : 0;
    size_t wo = mine && mine->n ? (size_t)(mine->n + close->n) : 0;
    size_t lines = 0;
    for (const char *q = b->p + start, *end = b->p + b->len;
         (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        lines++;
    if (lines == 0) return 0;
    /* the packet's own line is line `at`; every other line is dim */
    size_t at = guessed ? 1 : 0;
    size_t extra = wo + (lines - 1) * wd;
    if (extra == 0) return 0;
    if (buf_reserve(b, extra) < 0) return -1;
    /* from the last line back, each moved to its place (never over a line not yet moved) */
    size_t src_end = b->len; /* one past the line's "\n" */
    size_t dst_end = b->len + extra;
    for (size_t i = lines; i-- > 0;) {
        size_t src_start = src_end - 1;
        while (src_start > start && b->p[src_start - 1] != '\n') src_start--;
        size_t n = src_end - 1 - src_start; /* the line without its "\n" */
        const Text *open = i == at ? mine : dim;
        char *o = b->p + dst_end - 1;
        *o = '\n';
        if (open && open->n) {
            o -= close->n;
            memcpy(o, close->s, (size_t)close->n);
            o -= n;
            memmove(o, b->p + src_start, n);
            o -= open->n;
            memcpy(o, open->s, (size_t)open->n);
        } else {
            o -= n;
            memmove(o, b->p + src_start, n);
        }
        dst_end = (size_t)(o - b->p);
        src_end = src_start;
    }
    b->len += extra;
    return 0;
}

/* The engine's text handed out without a copy (included by _speedups.c).
 *
 * take() copies the text made so far into a new bytes object, ~140 MB for `show` of the
 * bench's 1M file, and the caller writes that object and drops it: a copy of every byte
 * shown, and fresh megabytes from the allocator each time, made only to be written
 * (~15 % of that run's CPU time). write_to(write) hands write() a memoryview of the
 * engine's own buffer instead.
 *
 * The buffer is lent through a Lent object, the view's exporter: every view of it, and
 * every view of a view, holds a reference to the Lent. When write() returns the view
 * is released; if the engine then holds the only reference, nothing can read the memory
 * any more and the engine takes it back (a write() that kept the view finds it released:
 * ValueError). If anything still views it, the memory stays the Lent's, freed with it
 * when the last view goes, and the engine writes on in a new buffer: it never changes
 * or frees memory someone can still read. While write() runs the buffer is not the
 * engine's (anything made meanwhile goes to a new one), so it cannot move under the
 * view. */

typedef struct {
    PyObject_HEAD
    char *p;          /* NULL once the engine took it back */
    Py_ssize_t len;
} Lent;

static int Lent_getbuffer(Lent *l, Py_buffer *view, int flags) {
    if (!l->p) {
        PyErr_SetString(PyExc_BufferError, "the engine's text is no longer lent");
        return -1;
    }
    return PyBuffer_FillInfo(view, (PyObject *)l, l->p, l->len, 1, flags);
}

static void Lent_dealloc(Lent *l) {
    PyMem_Free(l->p);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyBufferProcs Lent_as_buffer = {(getbufferproc)Lent_getbuffer, NULL};

static PyTypeObject LentType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sockcap._speedups.Lent",
    .tp_basicsize = sizeof(Lent),
    .tp_dealloc = (destructor)Lent_dealloc,
    .tp_as_buffer = &Lent_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "the engine's text lent to a write() (see write_to)",
};

/* write_to(write) -> bytes handed: the text so far, as one memoryview, to write() (not
 * called when there is none); the engine's text starts empty again, as after take(). */
static PyObject *Engine_write_to(Engine *e, PyObject *write) {
    Buf *b = &e->out;
    if (!b->len) return PyLong_FromLong(0);
    if (!(LentType.tp_flags & Py_TPFLAGS_READY) && PyType_Ready(&LentType) < 0) return NULL;
    Lent *l = PyObject_New(Lent, &LentType);
    if (!l) return NULL;
    size_t len = b->len, cap = b->cap;
    l->p = b->p; /* lent: the engine's buffer is empty until it is given back */
    l->len = (Py_ssize_t)len;
    b->p = NULL;
    b->len = b->cap = 0;
    PyObject *view = PyMemoryView_FromObject((PyObject *)l);
    PyObject *r = view ? PyObject_CallOneArg(write, view) : NULL;
    if (view) {
        PyObject *exc_type, *exc, *tb;
        PyErr_Fetch(&exc_type, &exc, &tb); /* write()'s error, if any, is the one raised */
        PyObject *ok = PyObject_CallMethod(view, "release", NULL);
        if (ok) Py_DECREF(ok);
        else PyErr_Clear(); /* a view of it is exported: it stays alive, so does the Lent */
        PyErr_Restore(exc_type, exc, tb);
        Py_DECREF(view);
    }
    if (Py_REFCNT(l) == 1 && !b->p && cap <= ((size_t)8 << 20)) { /* no one views it */
        b->p = l->p; /* given back, and reused (a very large one is let go, as take()) */
        b->cap = cap;
        l->p = NULL;
    }
    Py_DECREF(l); /* frees the memory with it, unless given back */
    if (!r) return NULL;
    Py_DECREF(r);
    return PyLong_FromSize_t(len);
}

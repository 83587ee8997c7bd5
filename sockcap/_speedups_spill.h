/* Rows kept on disk past a budget (issue 23): the RowTable's chunks beyond the ones held
 * in memory, in an unlinked temporary file.
 *
 * ``stats`` keeps a Row (144 bytes) of each conversation and ``show --explain`` an XRow
 * (44 bytes) of each TCP connection until the end of the run, filed by stream number in
 * chunks (RowTable in _speedups.c). Held in memory, that grows with the file (310 MiB
 * peak for 2M conversations). Here a table holds at most ``keep`` chunks in memory: when
 * it needs a new one past that, the lowest chunk in memory (the one furthest behind the
 * newest stream: conversations are forgotten, and their rows made, roughly in stream
 * order) is written to the table's file at offset ``k * chunk bytes`` (a sparse file:
 * chunks never made are holes) and freed. The memory of a table is ``keep`` chunks, a
 * window chunk to read them back and one staged item, whatever the file's size.
 *
 * A row made later for a stream whose chunk is already on disk (a conversation that
 * outlived ``keep`` chunks of later streams, or one still held at the end of the run) is
 * handed out in a staging item (its bytes read back from the file first), and written to
 * its place in the file when the caller has filled it (row_filled), not kept in an
 * overflow table in memory: such a table is bounded by the live conversations at any one
 * time, but its rows stay until the end, so a file where one conversation of every chunk
 * outlives its chunk would make it grow with the file. A write in
 * place costs one pread and one pwrite per such row (few: they are the conversations that
 * outlived ``keep`` chunks of later ones), keeps memory fixed, and leaves nothing to merge
 * when the rows are read back.
 *
 * Reading (row_at) is by stream, as its callers read (stats: a pass for the column widths,
 * then the rows; --explain's summary: one pass): a chunk on disk is read into the window
 * when a stream of it is asked for and the window holds another; any order is right, the
 * sequential one reads each chunk once a pass.
 *
 * The file is made with O_TMPFILE (it never has a name, so nothing is left after any exit,
 * even SIGKILL), or mkstemp and unlink at once where the file system lacks O_TMPFILE, in
 * $TMPDIR or /tmp, only when the first chunk is written (a small capture makes none). An
 * error (no temporary directory, the disk full) is a sockcap.errors.SpillError: one line
 * for the user, never a crash.
 *
 * The budget: Engine(rows_in_memory=N) (sockcap.speedups.rows_in_memory reads
 * SOCKCAP_ROWS_IN_MEMORY; 0: SPILL_DEFAULT_ROWS), rows a table holds in memory. Under
 * two chunks' worth the chunks get smaller (a power of two, at least 1 row), so a test
 * spills on a small capture. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define SPILL_DEFAULT_ROWS ((size_t)16 << ROW_SHIFT) /* 16 chunks: 9 MiB of Row, 2.9 of XRow */

typedef struct Spill {
    size_t size;      /* bytes an item */
    unsigned shift;   /* items a chunk: 1 << shift */
    size_t keep;      /* chunks held in memory at most (>= 1) */
    size_t held;      /* chunks in memory now */
    size_t low;       /* no chunk below it is in memory */
    int fd;           /* the file, -1 until a chunk is written */
    uint8_t *on_disk; /* per chunk (n_disk of them): 1 when it is in the file */
    size_t n_disk;
    char *window;     /* a chunk on disk, read back (window_k), or NULL */
    size_t window_k;  /* SIZE_MAX: none */
    char *stage;      /* an item of a chunk on disk, being filled (stage_s) */
    int64_t stage_s;
} Spill;

/* The table spills past ``rows`` items in memory (0: SPILL_DEFAULT_ROWS); -1 (error set)
 * without memory. Called once, before its first row. */
static int spill_setup(RowTable *t, size_t size, long long rows) {
    if (rows < 0) {
        PyErr_SetString(PyExc_ValueError, "rows_in_memory: 0 or more expected");
        return -1;
    }
    size_t n = rows ? (size_t)rows : SPILL_DEFAULT_ROWS;
    Spill *sp = PyMem_Calloc(1, sizeof *sp);
    if (!sp) { PyErr_NoMemory(); return -1; }
    unsigned shift = ROW_SHIFT;
    if (n < 2 * ROW_CHUNK) /* at least two chunks: the newest and the one before it */
        for (shift = 0; ((size_t)2 << (shift + 1)) <= n; shift++) {}
    sp->size = size;
    sp->shift = shift;
    sp->keep = n >> shift ? n >> shift : 1;
    sp->fd = -1;
    sp->window_k = SIZE_MAX;
    sp->stage_s = -1;
    t->spill = sp;
    return 0;
}

static unsigned row_shift(const RowTable *t) { return t->spill ? t->spill->shift : ROW_SHIFT; }

/* errno ``err`` as a SpillError (sockcap.errors), NULL returned */
static void *spill_fail(int err) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    PyObject *mod = PyImport_ImportModule("sockcap.errors");
    PyObject *cls = mod ? PyObject_GetAttrString(mod, "SpillError") : NULL;
    Py_XDECREF(mod);
    if (!cls) return NULL;
    PyObject *exc = PyObject_CallFunction(cls, "is", err, dir);
    if (exc) PyErr_SetObject(cls, exc);
    Py_XDECREF(exc);
    Py_DECREF(cls);
    return NULL;
}

static int spill_open(Spill *sp) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
#ifdef O_TMPFILE
    sp->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (sp->fd >= 0) return 0;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
        spill_fail(errno);
        return -1;
    }
#endif
    size_t len = strlen(dir);
    char *path = PyMem_Malloc(len + 32);
    if (!path) { PyErr_NoMemory(); return -1; }
    memcpy(path, dir, len);
    memcpy(path + len, "/sockcap-rows-XXXXXX", sizeof "/sockcap-rows-XXXXXX");
    sp->fd = mkstemp(path);
    int err = errno;
    if (sp->fd >= 0) {
        unlink(path);
        fcntl(sp->fd, F_SETFD, FD_CLOEXEC);
    }
    PyMem_Free(path);
    if (sp->fd < 0) { spill_fail(err); return -1; }
    return 0;
}

/* n bytes at ``off`` of the file, written (write=1) or read; -1 (SpillError) on error.
 * Bytes past its end read as zeros (a hole never written). */
static int spill_io(Spill *sp, char *buf, size_t n, off_t off, int write) {
    while (n) {
        ssize_t r = write ? pwrite(sp->fd, buf, n, off) : pread(sp->fd, buf, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || (write && r == 0)) { spill_fail(r < 0 ? errno : ENOSPC); return -1; }
        if (r == 0) { memset(buf, 0, n); return 0; }
        buf += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static int spill_on_disk(const Spill *sp, size_t k) { return k < sp->n_disk && sp->on_disk[k]; }

/* Room for one more chunk in memory: the lowest one held written to the file and freed
 * when ``keep`` are held; -1 (error set) on error. */
static int spill_room(RowTable *t) {
    Spill *sp = t->spill;
    if (sp->held < sp->keep) return 0;
    while (sp->low < t->n_chunks && !t->chunks[sp->low]) sp->low++;
    size_t k = sp->low, bytes = sp->size << sp->shift;
    if (k >= t->n_chunks) return 0; /* (held counts only chunks of the table) */
    if (sp->fd < 0 && spill_open(sp) < 0) return -1;
    if (k >= sp->n_disk) {
        size_t n = sp->n_disk ? sp->n_disk : 16;
        while (n <= k) n *= 2;
        uint8_t *on = PyMem_Realloc(sp->on_disk, n);
        if (!on) { PyErr_NoMemory(); return -1; }
        memset(on + sp->n_disk, 0, n - sp->n_disk);
        sp->on_disk = on;
        sp->n_disk = n;
    }
    if (spill_io(sp, t->chunks[k], bytes, (off_t)(k * bytes), 1) < 0) return -1;
    sp->on_disk[k] = 1;
    PyMem_Free(t->chunks[k]);
    t->chunks[k] = NULL;
    sp->held--;
    sp->low = k + 1;
    return 0;
}

/* Item ``s`` of a chunk on disk, read into the staging item to be filled (row_filled
 * writes it back); NULL (error set) on error. */
static void *spill_stage(RowTable *t, int64_t s) {
    Spill *sp = t->spill;
    if (!sp->stage && !(sp->stage = PyMem_Malloc(sp->size))) return PyErr_NoMemory();
    if (spill_io(sp, sp->stage, sp->size, (off_t)((size_t)s * sp->size), 0) < 0) return NULL;
    sp->stage_s = s;
    return sp->stage;
}

/* The item ``r`` row_slot gave, filled: written to the file if it was staged; -1 (error
 * set) on error. */
static int row_filled(RowTable *t, void *r) {
    Spill *sp = t->spill;
    if (!sp || r != sp->stage || sp->stage_s < 0) return 0;
    size_t s = (size_t)sp->stage_s;
    sp->stage_s = -1;
    if (spill_io(sp, sp->stage, sp->size, (off_t)(s * sp->size), 1) < 0) return -1;
    if (sp->window_k == s >> sp->shift) /* the window's copy too */
        memcpy(sp->window + (s & (((size_t)1 << sp->shift) - 1)) * sp->size, sp->stage, sp->size);
    return 0;
}

/* Item ``s`` of a chunk on disk, read back through the window; NULL (error set) on
 * error. */
static void *spill_read(RowTable *t, size_t k, int64_t s) {
    Spill *sp = t->spill;
    size_t bytes = sp->size << sp->shift;
    if (sp->window_k != k) {
        if (!sp->window && !(sp->window = PyMem_Malloc(bytes))) return PyErr_NoMemory();
        sp->window_k = SIZE_MAX;
        if (spill_io(sp, sp->window, bytes, (off_t)(k * bytes), 0) < 0) return NULL;
        sp->window_k = k;
    }
    return sp->window + ((size_t)s & (((size_t)1 << sp->shift) - 1)) * sp->size;
}

static void spill_free(RowTable *t) {
    Spill *sp = t->spill;
    if (!sp) return;
    if (sp->fd >= 0) close(sp->fd);
    PyMem_Free(sp->on_disk);
    PyMem_Free(sp->window);
    PyMem_Free(sp->stage);
    PyMem_Free(sp);
    t->spill = NULL;
}

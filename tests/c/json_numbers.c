/* The engine's JSON numbers against CPython's own, over many doubles (built by
 * tests/test_json_numbers.py against the engine's source and libpython):
 *   - put_repr_fast (the "ts" key) against float.__repr__ (PyOS_double_to_string 'r');
 *   - put_json_seconds (the "time" key) against repr(round(d / 1e9, 9)).
 * Usage: json_numbers N SEED; prints "checked ... bad 0" and exits 0 when all agree. */
#include "_speedups.c"
#include <stdio.h>
#include <stdlib.h>

static uint64_t state;
static uint64_t rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }

static double some_double(long i) {
    double v;
    switch (i % 4) {
    case 0: { /* any double in [1, 2**53) */
        uint64_t bits = rnd() % (53ULL << 52) + (1023ULL << 52);
        memcpy(&v, &bits, 8);
        return v;
    }
    case 1: return (double)(int64_t)(rnd() >> 1) / 1e9;                  /* ts_ns / 1e9 */
    case 2: return (double)(int64_t)((rnd() >> 4) / 1000 * 1000) / 1e9;  /* microseconds */
    default: /* few significant bits: decimals exactly half-way between two candidates */
        return ldexp((double)((rnd() >> (12 + rnd() % 52)) | 1), (int)(rnd() % 40) - (int)(rnd() % 53));
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    state = argc > 2 ? strtoull(argv[2], NULL, 10) | 1 : 88172645463325252ULL;
    Py_Initialize();
    Buf b = {0};
    long checked = 0, fast = 0, times = 0, bad = 0;
    for (long i = 0; i < n; i++) {
        double v = some_double(i);
        if (buf_reserve(&b, 64) < 0) return 2;
        b.len = 0;
        if (v >= 1.0 && v < 4503599627370496.0) {
            checked++;
            if (put_repr_fast(&b, v)) {
                fast++;
                char *s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
                if (strlen(s) != b.len || memcmp(s, b.p, b.len))
                    if (bad++ < 10) printf("repr %s, engine %.*s\n", s, (int)b.len, b.p);
                PyMem_Free(s);
            }
        }
        /* a time difference in ns below 2**22 s: any, short, whole micro- or milliseconds */
        int64_t d = (int64_t)(rnd() % (uint64_t)JSON_EXACT_TIME_NS);
        if (i % 3 == 1) d %= 100000000;
        if (i % 3 == 2) d = d / 1000000 * (i % 2 ? 1000 : 1000000) % JSON_EXACT_TIME_NS;
        if (rnd() & 1) d = -d;
        b.len = 0;
        put_json_seconds(&b, d);
        PyObject *q = PyFloat_FromDouble((double)d / 1e9);
        PyObject *r = q ? PyObject_CallMethod(q, "__round__", "i", 9) : NULL;
        PyObject *s = r ? PyObject_Repr(r) : NULL;
        const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
        if (!t) return 2;
        times++;
        if (strlen(t) != b.len || memcmp(t, b.p, b.len))
            if (bad++ < 10) printf("round %s, engine %.*s\n", t, (int)b.len, b.p);
        Py_DECREF(q);
        Py_DECREF(r);
        Py_DECREF(s);
    }
    printf("checked %ld doubles (%ld by the engine's own repr), %ld times, bad %ld\n",
           checked, fast, times, bad);
    return bad != 0;
}

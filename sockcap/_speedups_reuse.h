/* Memory of a forgotten conversation, asked of the caches before it is used again
 * (included by _speedups.c just before render(); issue 23: bench/RESULTS.md, "Plain show
 * at 5x tcpdump", -18 ms of 0.30 s on the bench's 1M file).
 *
 * A conversation is forgotten (forget) when it leaves the tracker's queues, thousands of
 * conversations after it ended: its ~900 bytes (and its endpoint texts) are long out of
 * the caches. It is freed then, and the allocator gives that memory back to the next
 * conversation made (glibc's per-thread cache is last freed, first given), whose calloc
 * zeroes all of it: each of its cache lines a miss, one new conversation every few
 * packets on a file of short conversations. Their lines are asked for here, for
 * writing, when the conversation is about to be freed: the next conversation, some
 * packets later, finds them in the cache. A prefetch never faults, and when the
 * allocator gives other memory the only cost is the prefetches themselves. Only where
 * forget frees it: a conversation the open queue still holds is freed at that queue's
 * pop, where the same prefetch measured no gain. */

static inline void prefetch_reuse(const Conv *c, const void *ep_text) {
    const char *b = (const char *)c;
    for (size_t off = 0; off < sizeof(Conv); off += 64) __builtin_prefetch(b + off, 1);
    if (ep_text) {
        __builtin_prefetch(ep_text, 1);
        __builtin_prefetch((const char *)ep_text + 64, 1);
    }
}

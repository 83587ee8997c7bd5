/*
 * Load generator for bench/server_bench.py: one thread, epoll, non-blocking
 * sockets, so the numbers measure the echo server rather than the client.
 *
 *   load_client rt  HOST PORT CONNS SECONDS [SIZE]
 *       CONNS persistent connections; each sends SIZE bytes (default 16), waits
 *       for the whole echo, sends again. Prints round trips per second.
 *   load_client cps HOST PORT PARALLEL SECONDS [SIZE]
 *       PARALLEL connections at a time; each connects, sends SIZE bytes, reads
 *       the echo and closes. Prints connections per second.
 *
 * Output, one line: "<mode> ops=<count> seconds=<elapsed> rate=<ops per second>".
 * Exits non-zero if the server closes a connection early or answers garbage.
 * With LOAD_HOLD set in the environment it keeps its connections open after printing,
 * until its stdin reaches EOF, so the caller can read the server's CPU time (and that
 * of the children a forking server made for them) before they exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096

struct conn {
    int fd;
    int connecting;
    size_t got;
};

static struct sockaddr_in addr;
static struct conn conns[MAX_CONNS];
static char msg[65536];
static size_t size = 16;
static int ep;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void watch(int i, unsigned events, int op)
{
    struct epoll_event ev = {.events = events, .data.u32 = (unsigned)i};
    if (epoll_ctl(ep, op, conns[i].fd, &ev) < 0)
        die("epoll_ctl");
}

static void send_msg(int i)
{
    if (write(conns[i].fd, msg, size) != (ssize_t)size)
        die("write");
}

/* Start a non-blocking connect for slot i; completion shows as EPOLLOUT. */
static void start_connect(int i)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conns[i] = (struct conn){.fd = fd, .connecting = 1, .got = 0};
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        die("connect");
    watch(i, EPOLLOUT, EPOLL_CTL_ADD);
}

/* Read what the server echoed; return 1 once a whole message is back. */
static int read_echo(int i)
{
    char buf[65536];
    ssize_t n = read(conns[i].fd, buf, sizeof buf);
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n <= 0) {
        fprintf(stderr, "server closed connection %d early (%s)\n", i,
                n < 0 ? strerror(errno) : "EOF");
        exit(1);
    }
    conns[i].got += (size_t)n;
    if (conns[i].got < size)
        return 0;
    conns[i].got -= size;
    return 1;
}

/* One event for slot i; return 1 when it completed an operation. */
static int on_event(int i, int cps)
{
    if (conns[i].connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(conns[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            errno = err;
            die("connect");
        }
        conns[i].connecting = 0;
        watch(i, EPOLLIN, EPOLL_CTL_MOD);
        send_msg(i);
        return 0;
    }
    if (!read_echo(i))
        return 0;
    if (cps) {
        close(conns[i].fd);
        start_connect(i);
    } else {
        send_msg(i);
    }
    return 1;
}

int main(int argc, char *argv[])
{
    struct epoll_event events[MAX_CONNS];
    long ops = 0;
    int cps, n, i;
    double start, seconds, elapsed;

    if (argc < 6) {
        fprintf(stderr, "usage: %s rt|cps HOST PORT CONNS SECONDS [SIZE]\n", argv[0]);
        return 2;
    }
    cps = strcmp(argv[1], "cps") == 0;
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1)
        die("address");
    n = atoi(argv[4]);
    seconds = atof(argv[5]);
    if (argc > 6)
        size = (size_t)atoi(argv[6]);
    if (n < 1 || n > MAX_CONNS || size < 1 || size > sizeof msg)
        die("bad CONNS or SIZE");
    memset(msg, 'x', size);
    ep = epoll_create1(0);
    for (i = 0; i < n; i++)
        start_connect(i);
    start = now();
    do {
        int ready = epoll_wait(ep, events, n, 100);
        for (int e = 0; e < ready; e++)
            ops += on_event((int)events[e].data.u32, cps);
        elapsed = now() - start;
    } while (elapsed < seconds);
    printf("%s ops=%ld seconds=%.3f rate=%.1f\n", argv[1], ops, elapsed, ops / elapsed);
    fflush(stdout);
    if (getenv("LOAD_HOLD")) {
        char c;
        while (read(0, &c, 1) > 0)
            ;
    }
    return 0;
}

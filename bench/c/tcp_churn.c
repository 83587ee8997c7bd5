/*
 * Loopback traffic for bench/make_capture.py: the mix a socket course produces, fast.
 *
 * One process, one thread, epoll, non-blocking sockets, playing both sides on 127.0.0.1:
 *
 *   PORT    a TCP echo server; PARALLEL clients at a time each connect, send 1-6 short
 *           messages (1-200 bytes), wait for each echo, then close (the short
 *           conversations that make up most of the file);
 *   PORT+1  a TCP sink; every BULK_EVERY conversations one client sends BULK_KB
 *           kilobytes in 64 KiB writes and closes (on lo, GSO makes ~64 KiB segments);
 *   PORT+2  a UDP echo; every second finished conversation also sends one datagram
 *           there and reads the echo.
 *
 * Usage: tcp_churn PORT SECONDS MAX_CONVS [PARALLEL [RATE [BULK_EVERY [BULK_KB]]]]
 *   RATE: new conversations per second at most (0: as fast as possible), so that a
 *   capture running beside it can keep up without dropping packets.
 *
 * Every loop is bounded: it stops after SECONDS, after MAX_CONVS conversations, or on
 * SIGTERM/SIGINT, whichever comes first, and prints one line of counts. The sequence
 * of sizes comes from a fixed-seed generator, so two runs produce the same mix.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
#define BULK_CHUNK 65536

enum role { FREE, LISTEN_ECHO, LISTEN_SINK, UDP_ECHO, UDP_CLIENT, SERVE_ECHO, SERVE_SINK,
            CLIENT, BULK };

struct sock {
    enum role role;
    int connecting;
    int msgs_left;      /* CLIENT: messages still to send after the current one */
    size_t want, got;   /* CLIENT: bytes of the current echo expected / received */
    size_t left;        /* BULK: bytes still to send */
};

static struct sock socks[MAX_FDS];
static struct sockaddr_in echo_addr, sink_addr, udp_addr;
static char buf[BULK_CHUNK];
static int ep;
static volatile sig_atomic_t stop;
static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static long convs_started, convs_done, bulks, datagrams;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void watch(int fd, enum role role, unsigned events, int op)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (fd >= MAX_FDS)
        die("too many descriptors");
    if (op == EPOLL_CTL_ADD)
        socks[fd] = (struct sock){.role = role};
    if (epoll_ctl(ep, op, fd, &ev) < 0)
        die("epoll_ctl");
}

static void drop(int fd)
{
    socks[fd].role = FREE;
    close(fd);
}

static int bound(int type, struct sockaddr_in *addr)
{
    int one = 1;
    int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0)
        die("bind");
    if (type == SOCK_STREAM && listen(fd, 4096) < 0)
        die("listen");
    return fd;
}

static int start_connect(struct sockaddr_in *addr, enum role role)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS)
        die("connect");
    watch(fd, role, EPOLLOUT, EPOLL_CTL_ADD);
    socks[fd].connecting = 1;
    return fd;
}

static void start_conversation(void)
{
    int fd = start_connect(&echo_addr, CLIENT);
    socks[fd].msgs_left = (int)rnd(6);
    convs_started++;
}

static void start_bulk(size_t kb)
{
    int fd = start_connect(&sink_addr, BULK);
    socks[fd].left = kb * 1024;
    bulks++;
}

static void send_message(int fd)
{
    size_t n = 1 + rnd(200);
    if (write(fd, buf, n) != (ssize_t)n)
        die("write");
    socks[fd].want = n;
    socks[fd].got = 0;
}

static void send_datagram(int fd)
{
    size_t n = 1 + rnd(400);
    if (sendto(fd, buf, n, 0, (struct sockaddr *)&udp_addr, sizeof udp_addr) < 0 &&
        errno != EAGAIN)
        die("sendto");
    datagrams++;
}

static void on_accept(int lfd, enum role role)
{
    int fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
        watch(fd, role, EPOLLIN, EPOLL_CTL_ADD);
    if (errno != EAGAIN)
        die("accept");
}

/* Server side of a connection: echo (or discard) until EOF, then close. */
static void on_serve(int fd)
{
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (socks[fd].role == SERVE_ECHO && write(fd, buf, (size_t)n) != n)
            die("echo write");
    }
    if (n == 0 || errno != EAGAIN)
        drop(fd);
}

static void on_udp_echo(int fd)
{
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    ssize_t n;
    while ((n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len)) >= 0) {
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, len);
        len = sizeof peer;
    }
}

static void on_udp_reply(int fd)
{
    while (recv(fd, buf, sizeof buf, 0) >= 0)
        ;
}

static int connected(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        die("connect");
    }
    socks[fd].connecting = 0;
    return fd;
}

/* Client side of a short conversation; returns 1 when it has just finished. */
static int on_client(int fd)
{
    ssize_t n;
    if (socks[fd].connecting) {
        watch(connected(fd), CLIENT, EPOLLIN, EPOLL_CTL_MOD);
        send_message(fd);
        return 0;
    }
    n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n <= 0)
        die("echo server closed early");
    socks[fd].got += (size_t)n;
    if (socks[fd].got < socks[fd].want)
        return 0;
    if (socks[fd].msgs_left-- > 0) {
        send_message(fd);
        return 0;
    }
    drop(fd);
    convs_done++;
    return 1;
}

/* Bulk sender: write 64 KiB chunks while the socket takes them, close when done. */
static void on_bulk(int fd)
{
    if (socks[fd].connecting) {
        connected(fd);
        socks[fd].role = BULK;
    }
    while (socks[fd].left > 0) {
        size_t n = socks[fd].left < sizeof buf ? socks[fd].left : sizeof buf;
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EAGAIN)
            return;
        if (w <= 0)
            die("bulk write");
        socks[fd].left -= (size_t)w;
    }
    drop(fd);
}

static void dispatch(int fd, int udp_client)
{
    switch (socks[fd].role) {
    case LISTEN_ECHO: on_accept(fd, SERVE_ECHO); break;
    case LISTEN_SINK: on_accept(fd, SERVE_SINK); break;
    case UDP_ECHO: on_udp_echo(fd); break;
    case UDP_CLIENT: on_udp_reply(fd); break;
    case SERVE_ECHO:
    case SERVE_SINK: on_serve(fd); break;
    case CLIENT:
        if (on_client(fd) && convs_done % 2 == 0)
            send_datagram(udp_client);
        break;
    case BULK: on_bulk(fd); break;
    case FREE: break;
    }
}

static void set_addr(struct sockaddr_in *a, int port)
{
    a->sin_family = AF_INET;
    a->sin_port = htons((unsigned short)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int main(int argc, char *argv[])
{
    static struct epoll_event events[1024];
    int port, parallel = 64, bulk_every = 4000, udp_client;
    long max_convs;
    double seconds, rate = 0, start;
    size_t bulk_kb = 4096;
    struct sockaddr_in any = {.sin_family = AF_INET};

    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT SECONDS MAX_CONVS [PARALLEL [RATE [BULK_EVERY "
                        "[BULK_KB]]]]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    seconds = atof(argv[2]);
    max_convs = atol(argv[3]);
    if (argc > 4) parallel = atoi(argv[4]);
    if (argc > 5) rate = atof(argv[5]);
    if (argc > 6) bulk_every = atoi(argv[6]);
    if (argc > 7) bulk_kb = (size_t)atol(argv[7]);
    if (port < 1 || port > 65533 || parallel < 1 || parallel > 4096 || bulk_every < 1)
        die("bad arguments");
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    memset(buf, 'x', sizeof buf);
    set_addr(&echo_addr, port);
    set_addr(&sink_addr, port + 1);
    set_addr(&udp_addr, port + 2);
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ep = epoll_create1(0);
    watch(bound(SOCK_STREAM, &echo_addr), LISTEN_ECHO, EPOLLIN, EPOLL_CTL_ADD);
    watch(bound(SOCK_STREAM, &sink_addr), LISTEN_SINK, EPOLLIN, EPOLL_CTL_ADD);
    watch(bound(SOCK_DGRAM, &udp_addr), UDP_ECHO, EPOLLIN, EPOLL_CTL_ADD);
    udp_client = bound(SOCK_DGRAM, &any);
    watch(udp_client, UDP_CLIENT, EPOLLIN, EPOLL_CTL_ADD);
    start = now();
    while (!stop && convs_done < max_convs) {
        double elapsed = now() - start;
        int ready;
        if (elapsed > seconds)
            break;
        while (convs_started - convs_done < parallel && convs_started < max_convs &&
               (rate <= 0 || convs_started < rate * elapsed + parallel)) {
            if (convs_started % bulk_every == bulk_every / 2)
                start_bulk(bulk_kb);
            start_conversation();
        }
        ready = epoll_wait(ep, events, 1024, 10);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait");
        for (int e = 0; e < ready; e++)
            dispatch(events[e].data.fd, udp_client);
    }
    printf("conversations=%ld bulk=%ld datagrams=%ld seconds=%.3f\n", convs_done, bulks,
           datagrams, now() - start);
    return 0;
}

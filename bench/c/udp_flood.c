/*
 * Bounded UDP sender for bench/capture_bench.py: COUNT datagrams to 127.0.0.1:PORT at
 * RATE packets per second (0: as fast as it can), in sendmmsg batches of 64.
 *
 *   udp_flood PORT RATE COUNT [PAYLOAD] [MAX_SECONDS]
 *       PAYLOAD bytes per datagram (default 22: a 64-byte frame on lo, Ethernet
 *       14 + IPv4 20 + UDP 8 + 22). Stops after COUNT datagrams or MAX_SECONDS
 *       (default 30), whichever comes first.
 *
 * Pacing: before each batch it sleeps until the time that batch is due
 * (clock_nanosleep on an absolute deadline), so the rate holds on average without
 * busy-waiting and without drifting. Datagrams nothing reads are dropped by the
 * kernel after the packet taps saw them, which is all a capture needs: the
 * receiving socket's buffer is not part of the measurement.
 *
 * Output, one line: "sent=<count> seconds=<elapsed> rate=<packets per second>".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PAYLOAD 1400

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_until(double when) {
    struct timespec t;
    t.tv_sec = (time_t)when;
    t.tv_nsec = (long)((when - (double)t.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: udp_flood PORT RATE COUNT [PAYLOAD] [MAX_SECONDS]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]);
    long count = atol(argv[3]);
    int size = argc > 4 ? atoi(argv[4]) : 22;
    double max_seconds = argc > 5 ? atof(argv[5]) : 30.0;
    if (port <= 0 || port > 65535 || count <= 0 || size < 0 || size > MAX_PAYLOAD) {
        fprintf(stderr, "udp_flood: bad argument\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
        perror("connect");
        return 1;
    }
    static char payload[BATCH][MAX_PAYLOAD];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = payload[i];
        iov[i].iov_len = (size_t)size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    long sent = 0;
    double start = now(), deadline = start + max_seconds;
    while (sent < count) {
        if (rate > 0) {
            sleep_until(start + (double)sent / rate);
        }
        if (now() > deadline) {
            break;
        }
        int n = count - sent < BATCH ? (int)(count - sent) : BATCH;
        for (int i = 0; i < n; i++) {
            long seq = sent + i;
            if (size >= (int)sizeof seq) {
                memcpy(payload[i], &seq, sizeof seq);
            }
        }
        int r = sendmmsg(fd, msgs, (unsigned)n, 0);
        if (r < 0) {
            if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED || errno == EINTR) {
                continue;  /* nothing listens: ICMP port unreachable; send again */
            }
            perror("sendmmsg");
            return 1;
        }
        sent += r;
    }
    double elapsed = now() - start;
    printf("sent=%ld seconds=%.3f rate=%.0f\n", sent, elapsed, elapsed > 0 ? sent / elapsed : 0.0);
    close(fd);
    return 0;
}

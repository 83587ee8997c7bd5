/* Echo servers on 127.0.0.1:PORT (argv[1]) whose faults only a careful judge sees.
 *
 * Each -D flag builds one:
 *   -DCLOSE_AFTER=N      TCP: echoes N read()s and closes (with 1: the client had more)
 *   -DLINES              TCP: answers whole lines only (fgets); a message without its
 *                        newline is answered when the client closes
 *   -DSLOW_CLOSE=N       TCP: a correct echo whose child closes N s after read() == 0
 *   -DIDLE_NO_CLOSE      TCP: echoes, and after read() == 0 waits for ever without closing
 *   -DCASE_SECOND        TCP: echoes, but the second read()'s second byte in upper case
 *   -DUDP_ECHO           UDP: a correct echo
 *   -DUDP_WRONG_SOURCE   UDP: replies from a second socket (another port)
 *   -DUDP_WRONG_DEST     UDP: replies to the client's port + 1
 *
 * SO_REUSEADDR is set, as on the course's server.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

#if defined(UDP_ECHO) || defined(UDP_WRONG_SOURCE) || defined(UDP_WRONG_DEST)
int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5001;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = loopback(port);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
#if defined(UDP_WRONG_SOURCE)
    int other = socket(AF_INET, SOCK_DGRAM, 0);  /* bound to an ephemeral port on first send */
#else
    int other = s;
#endif
    printf("listening on port %d\n", port);
    fflush(stdout);
    char buf[2048];
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n < 0) continue;
#if defined(UDP_WRONG_DEST)
        from.sin_port = htons((unsigned short)(ntohs(from.sin_port) + 1));
#endif
        sendto(other, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
    }
}
#else
static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void serve(int fd) {
#if defined(LINES)
    FILE *in = fdopen(dup(fd), "r");
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        if (write_all(fd, line, strlen(line)) < 0) break;
    }
    fclose(in);
#else
    char buf[4096];
    int reads = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        if (++reads == 2 && n > 1 && buf[1] >= 'a' && buf[1] <= 'z') buf[1] -= 'a' - 'A';
#if !defined(CASE_SECOND)
        reads = 0;
#endif
        if (write_all(fd, buf, (size_t)n) < 0) break;
#if defined(CLOSE_AFTER)
        static int echoed = 0;
        if (++echoed == CLOSE_AFTER) break;
#endif
    }
#endif
#if defined(SLOW_CLOSE)
    sleep(SLOW_CLOSE);
#endif
#if defined(IDLE_NO_CLOSE)
    for (;;) pause();
#endif
    close(fd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5001;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback(port);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    listen(s, 64);
    signal(SIGCHLD, SIG_IGN);
    printf("listening on port %d\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        pid_t pid = fork();
        if (pid == 0) {
            close(s);
            serve(c);
            _exit(0);
        }
        close(c);
    }
}
#endif

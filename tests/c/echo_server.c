/* A forking TCP echo server on 127.0.0.1:PORT (argv[1]), as courses hand them out.
 *
 * Built correct by default. Each -D flag plants one bug that sockcap check must find:
 *   -DBUG_NUL      echoes strlen() of a buffer never cleared: bytes of an earlier,
 *                  longer message come back after a shorter one
 *   -DBUG_NO_EOF   never handles read() == 0: the child spins and never closes
 *   -DBUG_RST      closes with SO_LINGER {1, 0}: a reset instead of a FIN
 *   -DBUG_SINGLE   serves one client at a time (no fork): a second client starves
 *   -DBUG_BACKLOG  listen(fd, 1) and a slow accept loop: a burst overflows the backlog
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
#if defined(BUG_NUL)
    static char buf[256];  /* zeroed once, never terminated after a read */
    for (;;) {
        ssize_t n = read(fd, buf, 255);
        if (n <= 0) break;
        if (write_all(fd, buf, strlen(buf)) < 0) break;
    }
#elif defined(BUG_NO_EOF)
    char buf[256];
    for (;;) {
        memset(buf, 0, sizeof buf);
        ssize_t n = read(fd, buf, 255);
        if (n < 0) break;  /* n == 0 (the client closed) loops forever */
        if (n > 0 && write_all(fd, buf, (size_t)n) < 0) break;
    }
#else
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        if (write_all(fd, buf, (size_t)n) < 0) break;
    }
#endif
#if defined(BUG_RST)
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
#endif
    close(fd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5001;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
#if defined(BUG_BACKLOG)
    listen(s, 1);
#else
    listen(s, 64);
#endif
    signal(SIGCHLD, SIG_IGN);  /* no zombies */
    printf("listening on port %d\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
#if defined(BUG_SINGLE)
        serve(c);
#else
        pid_t pid = fork();
        if (pid == 0) {
            close(s);
            serve(c);
            _exit(0);
        }
        close(c);
#endif
#if defined(BUG_BACKLOG)
        usleep(400000);
#endif
    }
}

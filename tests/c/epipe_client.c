/* A client that writes to a connection its peer has closed: ./epipe_client HOST PORT.
 *
 * It reads until the server's FIN (read() returns 0) and then writes anyway: the first
 * write() succeeds (the bytes leave, and the server's kernel, whose socket is gone,
 * answers with RST); the second, after the RST came, fails with EPIPE. SIGPIPE is
 * ignored, so the program lives to print what each write() returned.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s HOST PORT\n", argv[0]); return 2; }
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
    char buf[256];
    while (read(s, buf, sizeof buf) > 0) {}
    for (int i = 0; i < 2; i++) {
        ssize_t n = write(s, "late\n", 5);
        printf("write %d: %zd %s\n", i + 1, n, n < 0 ? strerror(errno) : "ok");
        fflush(stdout);
        usleep(200000);  /* the RST comes back meanwhile */
    }
    close(s);
    return 0;
}

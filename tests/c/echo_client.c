/* A TCP echo client: ./client HOST PORT; sends each line of stdin and prints the echo.
 *
 * Built plain it is correct: it reads each reply whole (however many segments it came
 * in), closes with FIN when stdin ends, and stops with status 1 and a message when the
 * connection is refused or the server closes before answering. Each -D flag plants a bug:
 *   -DBUG_NO_CLOSE       when stdin ends it waits for more from the server, for ever,
 *                        and never closes
 *   -DBUG_RST_CLOSE      closes with SO_LINGER {1, 0}: a reset instead of a FIN
 *   -DBUG_ONE_READ       one read() per line: a reply cut into segments is read in part,
 *                        and the client closes while the rest is still coming
 *   -DBUG_IGNORE_CLOSE   takes read() == 0 for "nothing yet" and tries again, for ever
 *   -DBUG_SILENT         exits with status 0, saying nothing, when anything goes wrong
 *   -DBUG_NO_NEWLINE     sends each line without its newline (what a course may allow)
 *   -DBUG_FIRST_LINE     sends the first line only, then closes
 *   -DBUG_SEND_NUL       sends the line with its terminating NUL byte (strlen + 1)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(BUG_SILENT)
#define FAIL(what) return 0
#else
#define FAIL(what) do { perror(what); return 1; } while (0)
#endif

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s HOST PORT\n", argv[0]); return 2; }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) FAIL("connect");
    char line[1024], reply[1024];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line), got = 0;
#if defined(BUG_NO_NEWLINE)
        if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
#endif
#if defined(BUG_SEND_NUL)
        if (write(s, line, n + 1) != (ssize_t)(n + 1)) FAIL("write");
#else
        if (write(s, line, n) != (ssize_t)n) FAIL("write");
#endif
#if defined(BUG_ONE_READ)
        ssize_t r = read(s, reply, sizeof reply - 1);
        if (r <= 0) FAIL("read");
        got = (size_t)r;
#else
        while (got < n) {
            ssize_t r = read(s, reply + got, sizeof reply - 1 - got);
#if defined(BUG_IGNORE_CLOSE)
            if (r == 0) continue;
#endif
            if (r <= 0) {
#if defined(BUG_SILENT)
                return 0;
#else
                fprintf(stderr, "the server closed the connection before it answered\n");
                return 1;
#endif
            }
            got += (size_t)r;
        }
#endif
        reply[got] = 0;
        printf("echo: %s", reply);
        fflush(stdout);
#if defined(BUG_FIRST_LINE)
        break;
#endif
    }
#if defined(BUG_NO_CLOSE)
    for (;;) {
        if (read(s, reply, sizeof reply) < 0) break;
        sleep(1);
    }
#endif
#if defined(BUG_RST_CLOSE)
    struct linger l = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
#endif
    close(s);
    return 0;
}

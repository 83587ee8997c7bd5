/* A UDP echo client: ./udp_client HOST PORT; sends each line of stdin as one datagram and
 * prints the reply. It waits 300 ms for a reply (SO_RCVTIMEO) and sends again, five times,
 * then stops with status 1 and a message; a datagram that is not the reply to the line it
 * sent (a duplicate of an earlier reply) is read and left aside. Each -D flag plants a bug:
 *   -DBUG_NO_TIMEOUT     no timeout: a lost datagram (or reply) and it waits for ever
 *   -DBUG_ANY_REPLY      takes any datagram for the reply (a duplicate of the last one too)
 *   -DBUG_IN_ORDER       sends every line first, then prints the replies as they arrive,
 *                        as if UDP kept them in order (each waited for 2 s at most); with
 *                        -DMATCH_REPLIES too it is right again: it prints each line's reply
 *                        in the order of the lines, whatever order they came in; with
 *                        -DQUIET too it prints nothing
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s HOST PORT\n", argv[0]); return 2; }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &a.sin_addr);
#if defined(BUG_IN_ORDER)
    struct timeval wait = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    enum { LINES = 16 };
    char text[LINES][256], echo[256], got_reply[LINES] = {0};
    int sent = 0;
    while (sent < LINES && fgets(text[sent], sizeof text[sent], stdin)) {
        sendto(s, text[sent], strlen(text[sent]), 0, (struct sockaddr *)&a, sizeof a);
        sent++;
    }
    for (int i = 0; i < sent; i++) {
        ssize_t got = recvfrom(s, echo, sizeof echo - 1, 0, NULL, NULL);
        if (got < 0) { fprintf(stderr, "no reply\n"); return 1; }
        echo[got] = 0;
#if defined(MATCH_REPLIES)
        for (int k = 0; k < sent; k++)
            if (strcmp(echo, text[k]) == 0) got_reply[k] = 1;
#elif !defined(QUIET)
        printf("echo: %s", echo);
        fflush(stdout);
#endif
    }
#if defined(MATCH_REPLIES)
    for (int k = 0; k < sent; k++)
        if (got_reply[k]) printf("echo: %s", text[k]);
#endif
    (void)got_reply;
    return 0;
#endif
#if !defined(BUG_NO_TIMEOUT)
    struct timeval tv = {0, 300000};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int tries = 5;
#else
    int tries = 1;
#endif
    char line[2048], reply[2048];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        ssize_t r = -1;
        int matched = 0;
        for (int i = 0; i < tries && !matched; i++) {
            sendto(s, line, n, 0, (struct sockaddr *)&a, sizeof a);
            for (;;) {
                r = recvfrom(s, reply, sizeof reply - 1, 0, NULL, NULL);
                if (r < 0) break;  /* the timeout: send again */
#if defined(BUG_ANY_REPLY)
                matched = 1;
#else
                matched = (size_t)r == n && memcmp(reply, line, n) == 0;
#endif
                if (matched) break;
            }
        }
        if (!matched) { fprintf(stderr, "no reply after %d tries\n", tries); return 1; }
        reply[r] = 0;
        printf("echo: %s", reply);
        fflush(stdout);
    }
    return 0;
}

/* A UDP echo server on every address: ./udp_server PORT (as a course's, which a client on
 * another host reaches). Each -D flag plants a bug:
 *   -DBUG_FIRST_ONLY     answers only the first client it heard from; others get nothing
 *   -DBUG_FIRST_ADDRESS  keeps the first client's address and sends every reply there
 *   -DBUG_SMALL_BUFFER   reads into a 1024-byte buffer: a larger datagram is cut
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(BUG_SMALL_BUFFER)
#define BUFFER 1024
#else
#define BUFFER 65536
#endif

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5001;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    printf("listening on UDP port %d\n", port);
    fflush(stdout);
    static char buf[BUFFER];
    struct sockaddr_in first;
    int have_first = 0;
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n < 0) continue;
        if (!have_first) { first = from; have_first = 1; }
        (void)first;
#if defined(BUG_FIRST_ONLY)
        if (from.sin_port != first.sin_port || from.sin_addr.s_addr != first.sin_addr.s_addr) continue;
#endif
#if defined(BUG_FIRST_ADDRESS)
        from = first;
#endif
        sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, sizeof from);
    }
}

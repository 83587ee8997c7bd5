/* A TCP echo client: ./client HOST PORT; sends each line of stdin and prints the echo. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s HOST PORT\n", argv[0]); return 2; }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
    char line[1024], reply[1024];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line), got = 0;
        if (write(s, line, n) != (ssize_t)n) { perror("write"); return 1; }
        while (got < n) {
            ssize_t r = read(s, reply + got, sizeof reply - 1 - got);
            if (r <= 0) { fprintf(stderr, "server closed\n"); return 1; }
            got += (size_t)r;
        }
        reply[got] = 0;
        printf("echo: %s", reply);
    }
    close(s);
    return 0;
}

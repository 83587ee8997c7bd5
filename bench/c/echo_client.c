/*
 * The classic TCP echo client, as in most socket tutorials: connect, then for
 * each word read from stdin write it, read up to 255 bytes back and print them;
 * stop after "quit" (or at end of input).
 *
 * Usage: echo_client HOST PORT  <words
 *
 * Like the original it assumes one read() returns the whole echo, which is true
 * for short words on loopback and is exactly the assumption sockcap's timeline
 * lets a student see break on a real network.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void error(const char *msg)
{
    perror(msg);
    exit(1);
}

int main(int argc, char *argv[])
{
    int sockfd;
    ssize_t n;
    struct sockaddr_in serv_addr;
    char word[256], buffer[256];

    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
        exit(2);
    }
    sockfd = socket(AF_INET, SOCK_STREAM, 0);
    if (sockfd < 0)
        error("ERROR opening socket");
    memset(&serv_addr, 0, sizeof serv_addr);
    serv_addr.sin_family = AF_INET;
    serv_addr.sin_port = htons(atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &serv_addr.sin_addr) != 1)
        error("ERROR bad address");
    if (connect(sockfd, (struct sockaddr *)&serv_addr, sizeof serv_addr) < 0)
        error("ERROR connecting");

    while (scanf("%255s", word) == 1) {
        if (write(sockfd, word, strlen(word)) < 0)
            error("ERROR writing to socket");
        memset(buffer, 0, sizeof buffer);
        n = read(sockfd, buffer, 255);
        if (n < 0)
            error("ERROR reading from socket");
        if (n == 0)
            break;
        printf("%s\n", buffer);
        if (strcmp(word, "quit") == 0)
            break;
    }
    close(sockfd);
    return 0;
}

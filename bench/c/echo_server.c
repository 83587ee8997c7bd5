/*
 * The classic forking TCP echo server, as in most socket tutorials:
 * socket, bind, listen, then accept in a loop and fork one child per client;
 * the child reads into a 256-byte buffer and writes back what it read.
 *
 * Usage: echo_server [PORT]   (default 5001; 0 picks a free port)
 * Prints "listening on port N" once ready, so a test can use port 0.
 *
 * It is the reference sockcap's server is compared with (bench/server_bench.py),
 * kept as plain as the student version. Two lines go beyond it, because a benchmark
 * opens thousands of connections: SO_REUSEADDR (restart without "address in use")
 * and SIGCHLD ignored (children are reaped, no zombies).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
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

static void echo(int sock)
{
    char buffer[256];
    ssize_t n;

    while ((n = read(sock, buffer, sizeof buffer)) > 0) {
        if (write(sock, buffer, (size_t)n) < 0)
            break;
    }
}

int main(int argc, char *argv[])
{
    int sockfd, newsockfd, one = 1;
    struct sockaddr_in serv_addr, cli_addr;
    socklen_t clilen;

    signal(SIGCHLD, SIG_IGN);
    sockfd = socket(AF_INET, SOCK_STREAM, 0);
    if (sockfd < 0)
        error("ERROR opening socket");
    setsockopt(sockfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&serv_addr, 0, sizeof serv_addr);
    serv_addr.sin_family = AF_INET;
    serv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    serv_addr.sin_port = htons(argc > 1 ? atoi(argv[1]) : 5001);
    if (bind(sockfd, (struct sockaddr *)&serv_addr, sizeof serv_addr) < 0)
        error("ERROR on binding");
    listen(sockfd, 128);
    clilen = sizeof serv_addr;
    getsockname(sockfd, (struct sockaddr *)&serv_addr, &clilen);
    printf("listening on port %d\n", ntohs(serv_addr.sin_port));
    fflush(stdout);

    for (;;) {
        clilen = sizeof cli_addr;
        newsockfd = accept(sockfd, (struct sockaddr *)&cli_addr, &clilen);
        if (newsockfd < 0)
            continue;
        if (fork() == 0) {
            close(sockfd);
            echo(newsockfd);
            close(newsockfd);
            exit(0);
        }
        close(newsockfd);
    }
}

/* The floor for a TCP connect sweep on this kernel: non-blocking connects over epoll, a fixed
 * window in flight, each socket closed as soon as its connect ends. No retries, no timers, no
 * report: the least work per port any connect scanner does. bench/costs.sh compares both tools
 * with it.
 *
 *   floor ADDRESS FIRST-PORT LAST-PORT [WINDOW]   (IPv4; prints "open=N closed=N other=N")
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: floor ADDRESS FIRST LAST [WINDOW]\n"); return 2; }
    struct sockaddr_in to = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
    int port = atoi(argv[2]), last = atoi(argv[3]), window = argc > 4 ? atoi(argv[4]) : 1024;
    int ep = epoll_create1(0), flight = 0, open_n = 0, closed = 0, other = 0;
    struct epoll_event events[256];
    while (port <= last || flight > 0) {
        while (port <= last && flight < window) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0) { perror("socket"); return 1; }
            to.sin_port = htons(port++);
            if (connect(fd, (struct sockaddr *)&to, sizeof to) == 0) { open_n++; close(fd); continue; }
            if (errno != EINPROGRESS) { errno == ECONNREFUSED ? closed++ : other++; close(fd); continue; }
            struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            flight++;
        }
        int n = epoll_wait(ep, events, 256, 2000);
        if (n <= 0) break; /* bounded: a silent port would stall the floor, not hang it */
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd, err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err == 0) open_n++; else if (err == ECONNREFUSED) closed++; else other++;
            close(fd); /* close removes it from the epoll set */
            flight--;
        }
    }
    printf("open=%d closed=%d other=%d\n", open_n, closed, other);
    return 0;
}

/* The floor for a keyed (verified) sweep on this kernel: the same five-segment exchange as
 * automate-ports' check against serve, with nothing else. The server listens on every port with
 * TCP_DEFER_ACCEPT and quick-ACK off, accepts a connection when its probe has arrived, reads it,
 * answers with MSG_MORE and closes; the client connects with quick-ACK off, writes a probe when
 * the connect completes, reads the answer and closes. No key, no HMAC, no retries, no timers, no
 * report: the least work per port that proving a port through an answer from user space costs.
 * bench/costs.sh (keyed part) compares automate-ports, nmap -sT and this floor on the same ports.
 *
 *   keyed-floor serve ADDRESS FIRST LAST             (runs until killed; prints "ready")
 *   keyed-floor check ADDRESS FIRST LAST [WINDOW] [THREADS] [reuse]
 *                                                     (prints "verified=N refused=N other=N")
 * ADDRESS is IPv4 or IPv6; THREADS > 1 splits the ports between threads, one epoll each.
 * "reuse" keeps each socket after its exchange: connect(AF_UNSPEC) resets it (the RST a close
 * would send) and returns it to unconnected, and the next port connects it again, so no socket
 * is allocated or freed per port; its epoll registration is one-shot and re-armed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROBE 64
#define REPLY 48

static struct sockaddr_storage addr;
static socklen_t addr_len;
static int family;

static void set_port(struct sockaddr_storage *a, int port) {
    if (family == AF_INET) ((struct sockaddr_in *)a)->sin_port = htons(port);
    else ((struct sockaddr_in6 *)a)->sin6_port = htons(port);
}

static int serve(int first, int last) {
    int ep = epoll_create1(0), one = 1, zero = 0, defer = 1;
    for (int port = first; port <= last; port++) {
        int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_storage a = addr;
        set_port(&a, port);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
        if (bind(fd, (struct sockaddr *)&a, addr_len) || listen(fd, 1024)) { perror("bind/listen"); return 1; }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    printf("ready\n");
    fflush(stdout);
    struct epoll_event events[256];
    char buf[PROBE], reply[REPLY];
    memset(reply, 'r', sizeof reply);
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int c;
            while ((c = accept4(events[i].data.fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                if (read(c, buf, sizeof buf) == PROBE) send(c, reply, sizeof reply, MSG_MORE | MSG_NOSIGNAL);
                close(c);
            }
        }
    }
}

struct job { int first, last, window, reuse, verified, refused, other; };

static void *check(void *arg) {
    struct job *j = arg;
    int ep = epoll_create1(0), port = j->first, flight = 0, zero = 0;
    struct epoll_event events[256];
    char probe[PROBE], buf[REPLY];
    int *spare = malloc(sizeof(int) * (j->window + 1)), spares = 0;
    unsigned oneshot = j->reuse ? EPOLLONESHOT : 0;
    memset(probe, 'p', sizeof probe);
    while (port <= j->last || flight > 0) {
        while (port <= j->last && flight < j->window) {
            int reused = spares > 0;
            int fd = reused ? spare[--spares] : socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0) { perror("socket"); exit(1); }
            setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
            struct sockaddr_storage a = addr;
            set_port(&a, port++);
            if (connect(fd, (struct sockaddr *)&a, addr_len) && errno != EINPROGRESS) {
                errno == ECONNREFUSED ? j->refused++ : j->other++;
                close(fd);
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT | oneshot, .data.u64 = (unsigned)fd};
            epoll_ctl(ep, reused ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
            flight++;
        }
        int n = epoll_wait(ep, events, 256, 2000);
        if (n <= 0) break; /* bounded: a silent port stalls the floor, it does not hang it */
        for (int i = 0; i < n; i++) {
            int fd = (int)(events[i].data.u64 & 0xffffffff), written = events[i].data.u64 >> 32;
            if (!written) {
                if (send(fd, probe, sizeof probe, MSG_NOSIGNAL) == PROBE) {
                    struct epoll_event ev = {.events = EPOLLIN | oneshot, .data.u64 = (1ull << 32) | (unsigned)fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                    continue;
                }
                errno == ECONNREFUSED ? j->refused++ : j->other++;
            } else {
                read(fd, buf, sizeof buf) == REPLY ? j->verified++ : j->other++;
            }
            flight--;
            struct sockaddr unspec = {.sa_family = AF_UNSPEC};
            if (j->reuse && connect(fd, &unspec, sizeof unspec) == 0) spare[spares++] = fd;
            else close(fd);
        }
    }
    free(spare);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: keyed-floor serve|check ADDRESS FIRST LAST [WINDOW] [THREADS]\n");
        return 2;
    }
    memset(&addr, 0, sizeof addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, argv[2], &v4->sin_addr) == 1) {
        family = v4->sin_family = AF_INET;
        addr_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, argv[2], &v6->sin6_addr) == 1) {
        family = v6->sin6_family = AF_INET6;
        addr_len = sizeof *v6;
    } else {
        fprintf(stderr, "bad address\n");
        return 2;
    }
    int first = atoi(argv[3]), last = atoi(argv[4]);
    if (!strcmp(argv[1], "serve")) return serve(first, last);
    int window = argc > 5 ? atoi(argv[5]) : 1024, threads = argc > 6 ? atoi(argv[6]) : 1;
    int reuse = argc > 7 && !strcmp(argv[7], "reuse");
    if (threads < 1 || threads > 8) threads = 1;
    struct job jobs[8];
    pthread_t ids[8];
    int span = (last - first + 1 + threads - 1) / threads;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct job){.first = first + t * span, .last = first + (t + 1) * span - 1, .window = window / threads, .reuse = reuse};
        if (jobs[t].last > last) jobs[t].last = last;
        pthread_create(&ids[t], NULL, check, &jobs[t]);
    }
    int verified = 0, refused = 0, other = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        verified += jobs[t].verified, refused += jobs[t].refused, other += jobs[t].other;
    }
    printf("verified=%d refused=%d other=%d\n", verified, refused, other);
    return 0;
}

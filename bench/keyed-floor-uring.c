/* bench/keyed-floor.c's client through io_uring instead of epoll: is there a floor below the
 * epoll one for a verified sweep on this kernel? Same exchange, same server (keyed-floor serve),
 * same window: each socket runs one linked chain per port, connect -> send the probe -> receive
 * the answer -> connect(AF_UNSPEC) (the reset that returns it to unconnected, as "reuse" does
 * there), and the next port's chain is queued when the last link completes. Completions are
 * reaped in batches and the new chains submitted with the wait for the next ones, so system
 * calls are per batch, not per port. Quick-ACK is turned off per port with setsockopt, as the
 * epoll floor does (the exchange stays five segments).
 *
 *   keyed-floor-uring ADDRESS FIRST LAST [WINDOW] [THREADS]   (prints "verified=N refused=N other=N")
 *
 * Build: gcc -O2 -pthread keyed-floor-uring.c -luring (Debian: liburing-dev).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROBE 64
#define REPLY 48
enum step { CONNECT, SEND, RECV, RESET, STEPS };

static struct sockaddr_storage addr;
static socklen_t addr_len;
static int family;
static const struct sockaddr unspec = {.sa_family = AF_UNSPEC};
static char probe[PROBE];

struct slot { int fd, failed; struct sockaddr_storage to; char buf[REPLY]; };
struct job { int first, last, window, verified, refused, other; };

static void set_port(struct sockaddr_storage *a, int port) {
    if (family == AF_INET) ((struct sockaddr_in *)a)->sin_port = htons(port);
    else ((struct sockaddr_in6 *)a)->sin6_port = htons(port);
}

static struct io_uring_sqe *sqe_for(struct io_uring *ring, unsigned slot, enum step step) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) { io_uring_submit(ring); sqe = io_uring_get_sqe(ring); }
    io_uring_sqe_set_data64(sqe, (unsigned long long)slot * STEPS + step);
    return sqe;
}

/* Queues slot's chain for port; a new socket if the last one failed. */
static void start(struct io_uring *ring, struct slot *s, unsigned slot, int port) {
    int zero = 0;
    if (s->fd < 0 && (s->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0) { perror("socket"); exit(1); }
    setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
    s->failed = 0;
    s->to = addr;
    set_port(&s->to, port);
    struct io_uring_sqe *sqe = sqe_for(ring, slot, CONNECT);
    io_uring_prep_connect(sqe, s->fd, (struct sockaddr *)&s->to, addr_len);
    sqe->flags |= IOSQE_IO_LINK;
    sqe = sqe_for(ring, slot, SEND);
    io_uring_prep_send(sqe, s->fd, probe, PROBE, MSG_NOSIGNAL);
    sqe->flags |= IOSQE_IO_LINK;
    sqe = sqe_for(ring, slot, RECV);
    io_uring_prep_recv(sqe, s->fd, s->buf, REPLY, 0);
    sqe->flags |= IOSQE_IO_LINK;
    sqe = sqe_for(ring, slot, RESET);
    io_uring_prep_connect(sqe, s->fd, &unspec, sizeof unspec);
}

static void *check(void *arg) {
    struct job *j = arg;
    struct io_uring ring;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int err = io_uring_queue_init_params(j->window * STEPS, &ring, &p);
    if (err) { fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-err)); exit(1); }
    struct slot *slots = calloc(j->window, sizeof *slots);
    int port = j->first, flight = 0;
    for (int i = 0; i < j->window && port <= j->last; i++, flight++) {
        slots[i].fd = -1;
        start(&ring, &slots[i], i, port++);
    }
    struct __kernel_timespec bound = {.tv_sec = 2};
    while (flight > 0) {
        struct io_uring_cqe *cqe;
        /* bounded: a silent port stalls the floor, it does not hang it */
        if (io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &bound, NULL) < 0) break;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            unsigned slot = cqe->user_data / STEPS;
            enum step step = cqe->user_data % STEPS;
            struct slot *s = &slots[slot];
            int res = cqe->res;
            if (res == -ECANCELED) { /* a link after a failed one */ }
            else if (step == CONNECT && res < 0) { s->failed = 1; res == -ECONNREFUSED ? j->refused++ : j->other++; }
            else if (step == SEND && res != PROBE) { s->failed = 1; j->other++; }
            else if (step == RECV) { if (res == REPLY) j->verified++; else { s->failed = 1; j->other++; } }
            if (step != RESET) continue;
            /* The chain is over: its reset ran, or was cancelled after a failure. */
            if (s->failed || res < 0) { close(s->fd); s->fd = -1; }
            flight--;
            if (port <= j->last) { start(&ring, s, slot, port++); flight++; }
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    for (int i = 0; i < j->window; i++) if (slots[i].fd >= 0) close(slots[i].fd);
    free(slots);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: keyed-floor-uring ADDRESS FIRST LAST [WINDOW] [THREADS]\n");
        return 2;
    }
    memset(probe, 'p', sizeof probe);
    memset(&addr, 0, sizeof addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, argv[1], &v4->sin_addr) == 1) {
        family = v4->sin_family = AF_INET;
        addr_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, argv[1], &v6->sin6_addr) == 1) {
        family = v6->sin6_family = AF_INET6;
        addr_len = sizeof *v6;
    } else {
        fprintf(stderr, "bad address\n");
        return 2;
    }
    int first = atoi(argv[2]), last = atoi(argv[3]);
    int window = argc > 4 ? atoi(argv[4]) : 1024, threads = argc > 5 ? atoi(argv[5]) : 1;
    if (threads < 1 || threads > 8) threads = 1;
    struct job jobs[8];
    pthread_t ids[8];
    int span = (last - first + 1 + threads - 1) / threads;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct job){.first = first + t * span, .last = first + (t + 1) * span - 1, .window = window / threads};
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

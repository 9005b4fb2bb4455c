/* Issue 8, ingestion: the open-loop heartbeat generator in C (bench/open_loop_c.py drives it).
 *
 * The same open loop as bench/open_loop.py's ``drive``, for the machine's CPU: the server it
 * measures shares the two cores with it. Python prepares everything (the schedule as
 * ``open_loop.schedule`` draws it, each learner's request head, each beat's signed body) into
 * one input file; this program only connects, sends and reads:
 *
 *   - each learner its own non-blocking TCP connection from its own loopback address, kept
 *     alive; all opened before the schedule starts (64 connects at a time);
 *   - one beat in flight per learner: a beat due while the last is unanswered waits in that
 *     learner's queue and is sent the moment the answer is read;
 *   - an answer is cut from the stream by its status line and Content-Length only;
 *   - a kept connection the server closes (an answer came on it) is reopened and the beat in
 *     flight sent once more; a failed connect or a new connection closed unanswered fails the
 *     beat, by kind (the Python exception's name, as open_loop.py counts them);
 *   - after the last beat is sent (and the window has ended) it waits ``drain`` seconds at
 *     most for the answers; a beat unanswered then is written as such.
 *
 * Times are CLOCK_MONOTONIC, which is Python's ``time.perf_counter`` on Linux: the schedule's
 * start comes from the parent on stdin, each beat's answer time goes back in the result file.
 *
 * Input (little-endian): "OLC1", u32 learners, u32 port, u32 beats, f64 span, f64 drain; per
 * learner u32 address (host order), u32 head length, head; per beat f64 due (s from the
 * start), u32 learner, u32 tail length, tail (Content-Length line, blank line, body).
 * Protocol: prints "ready CONNECTIONS" once every connection is open, reads the start (a
 * perf_counter float) from stdin, runs, writes the result file, prints "done".
 * Result: "OLR1", u32 beats, u32 connections, u32 samples, f64 drain end (0: all answered);
 * per beat f64 answered (-1: unanswered), 4 bytes status (3 digits, or 0 and a kind code);
 * per sample u32 beat, u32 length, bytes (the first answers that were not a 200, 300 bytes).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { NONE = 0, CONNECTING = 1, OPEN = 2 };
enum { K_REFUSED = 1, K_RESET, K_PIPE, K_TIMEOUT, K_OSERROR, K_INCOMPLETE, K_VALUE, K_ABORTED };
#define MAX_SAMPLES 8
#define SAMPLE_LEN 300
#define CONNECT_AT_ONCE 64

typedef struct {
    uint32_t addr;
    uint32_t head_len;
    const char *head;
    int fd;
    int state;
    int used;         /* an answer came on this connection */
    int64_t inflight; /* beat index or -1 */
    int64_t qhead, qtail; /* queue of beat indices, linked by next[] */
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    int want_out;
} Learner;

static Learner *L;
static uint32_t n_learners, n_beats, port;
static double span, drain;
static double *due_s;
static uint32_t *owner;
static uint32_t *tail_len;
static const char **tail;
static int64_t *next_in_queue;
static uint8_t *retried;
static double *answered;
static char (*status)[4];
static uint32_t connections;
static int64_t outstanding;
static int ep;
static struct { uint32_t beat; uint32_t len; char body[SAMPLE_LEN]; } samples[MAX_SAMPLES];
static uint32_t n_samples;
static int64_t connecting_now;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int kind_of(int err) {
    switch (err) {
    case ECONNREFUSED: return K_REFUSED;
    case ECONNRESET: return K_RESET;
    case EPIPE: return K_PIPE;
    case ETIMEDOUT: return K_TIMEOUT;
    case ECONNABORTED: return K_ABORTED;
    default: return K_OSERROR;
    }
}

static void finish(int64_t beat, const char *code, const char *body, size_t body_len) {
    answered[beat] = now_s();
    memcpy(status[beat], code, 4);
    if (code[0] && memcmp(code, "200", 3) != 0 && n_samples < MAX_SAMPLES && body_len) {
        samples[n_samples].beat = (uint32_t)beat;
        samples[n_samples].len = body_len < SAMPLE_LEN ? (uint32_t)body_len : SAMPLE_LEN;
        memcpy(samples[n_samples].body, body, samples[n_samples].len);
        n_samples++;
    }
    outstanding--;
}

static void fail(int64_t beat, int kind) {
    char code[4] = {0, (char)kind, 0, 0};
    finish(beat, code, NULL, 0);
}

static void push(Learner *l, int64_t beat, int front) {
    next_in_queue[beat] = -1;
    if (l->qhead < 0) {
        l->qhead = l->qtail = beat;
    } else if (front) {
        next_in_queue[beat] = l->qhead;
        l->qhead = beat;
    } else {
        next_in_queue[l->qtail] = beat;
        l->qtail = beat;
    }
}

static int64_t pop(Learner *l) {
    int64_t beat = l->qhead;
    if (beat >= 0) {
        l->qhead = next_in_queue[beat];
        if (l->qhead < 0) l->qtail = -1;
    }
    return beat;
}

static void lost(Learner *l, int err);
static void connect_learner(Learner *l);

static void set_events(Learner *l, int out) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = l};
    epoll_ctl(ep, EPOLL_CTL_MOD, l->fd, &ev);
    l->want_out = out;
}

static void flush(Learner *l) {
    while (l->out_off < l->out_len) {
        ssize_t n = write(l->fd, l->out + l->out_off, l->out_len - l->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!l->want_out) set_events(l, 1);
                return;
            }
            if (errno == EINTR) continue;
            lost(l, errno);
            return;
        }
        l->out_off += (size_t)n;
    }
    if (l->want_out) set_events(l, 0);
}

static void send_beat(Learner *l, int64_t beat) {
    size_t need = l->head_len + tail_len[beat];
    if (need > l->out_cap) {
        l->out_cap = need;
        l->out = realloc(l->out, need);
    }
    memcpy(l->out, l->head, l->head_len);
    memcpy(l->out + l->head_len, tail[beat], tail_len[beat]);
    l->out_len = need;
    l->out_off = 0;
    l->inflight = beat;
    flush(l);
}

/* The next queued beat, on the connection or on a new one (open_loop.Client._next). */
static void next(Learner *l) {
    if (l->qhead < 0) return;
    if (l->state == OPEN) {
        if (l->inflight < 0) send_beat(l, pop(l));
    } else if (l->state == NONE) {
        connect_learner(l);
    }
}

static void close_conn(Learner *l) {
    if (l->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, l->fd, NULL);
        close(l->fd);
    }
    if (l->state == CONNECTING) connecting_now--;
    l->fd = -1;
    l->state = NONE;
    l->in_len = 0;
    l->out_len = l->out_off = 0;
}

static void connect_failed(Learner *l, int err) {
    close_conn(l);
    int64_t beat = pop(l);
    if (beat >= 0) fail(beat, kind_of(err));
    next(l);
}

static void connect_learner(Learner *l) {
    connections++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(3);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(l->addr)};
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    l->fd = fd;
    l->state = CONNECTING;
    l->used = 0;
    connecting_now++;
    if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
        connect_failed(l, errno);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    l->want_out = 1;
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) connect_failed(l, errno);
}

static void connected(Learner *l) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        connect_failed(l, err);
        return;
    }
    l->state = OPEN;
    connecting_now--;
    set_events(l, 0);
    next(l);
}

/* The connection is gone (open_loop.Client._lost): a kept one's beat in flight goes once more
 * on a new connection; else the beat fails by kind. */
static void lost(Learner *l, int err) {
    int used = l->used;
    close_conn(l);
    int64_t beat = l->inflight;
    l->inflight = -1;
    if (beat >= 0) {
        if (used && !retried[beat]) {
            retried[beat] = 1;
            push(l, beat, 1);
        } else {
            fail(beat, err ? kind_of(err) : K_INCOMPLETE);
        }
    }
    if (l->qhead >= 0) connect_learner(l);
}

static char *find(char *hay, size_t n, const char *needle, size_t m) {
    return memmem(hay, n, needle, m);
}

/* Cut an answer from the bytes read (open_loop._Conn.data_received). */
static void parse(Learner *l) {
    char *data = l->in;
    char *end = find(data, l->in_len, "\r\n\r\n", 4);
    if (!end) return;
    size_t head_len = (size_t)(end - data);
    long length = 0;
    for (size_t i = 0; i + 15 <= head_len; i++) {
        if ((data[i] | 0x20) == 'c' && strncasecmp(data + i, "content-length:", 15) == 0) {
            char *p = data + i + 15, *stop = data + head_len, *eol = find(p, (size_t)(stop - p), "\r\n", 2);
            if (eol) stop = eol;
            while (p < stop && (*p == ' ' || *p == '\t')) p++;
            char *q = stop;
            while (q > p && (q[-1] == ' ' || q[-1] == '\t')) q--;
            int ok = q > p;
            length = 0;
            for (char *c = p; c < q; c++) {
                if (*c < '0' || *c > '9') { ok = 0; break; }
                length = length * 10 + (*c - '0');
            }
            if (!ok) {
                int64_t beat = l->inflight;
                l->inflight = -1;
                if (beat >= 0) fail(beat, K_VALUE);
                close_conn(l);
                if (l->qhead >= 0) connect_learner(l);
                return;
            }
            break;
        }
    }
    size_t stop = head_len + 4 + (size_t)length;
    if (l->in_len < stop) return;
    char code[4] = {0, 0, 0, 0};
    if (head_len >= 12) memcpy(code, data + 9, 3);
    else code[0] = '?';
    l->used = 1;
    int64_t beat = l->inflight;
    l->inflight = -1;
    if (beat >= 0) finish(beat, code, data + head_len + 4, (size_t)length);
    memmove(l->in, l->in + stop, l->in_len - stop);
    l->in_len -= stop;
    next(l);
}

static void readable(Learner *l) {
    for (;;) {
        if (l->in_cap - l->in_len < 4096) {
            l->in_cap = l->in_cap * 2 + 4096;
            l->in = realloc(l->in, l->in_cap);
        }
        ssize_t n = read(l->fd, l->in + l->in_len, l->in_cap - l->in_len);
        if (n > 0) {
            l->in_len += (size_t)n;
            if ((size_t)n < l->in_cap - l->in_len + (size_t)n) break; /* drained the socket */
            continue;
        }
        if (n == 0) {
            parse(l);
            if (l->fd >= 0) lost(l, 0);
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        lost(l, errno);
        return;
    }
    parse(l);
}

static void on_event(struct epoll_event *ev) {
    Learner *l = ev->data.ptr;
    if (l->fd < 0) return;
    if (l->state == CONNECTING) {
        if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) connected(l);
        return;
    }
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        readable(l);
        if (l->fd < 0 || l->state != OPEN) return;
    }
    if (ev->events & EPOLLOUT) flush(l);
}

static const char *take(const char **p, const char *end, size_t n) {
    if ((size_t)(end - *p) < n) {
        fprintf(stderr, "gen: input truncated\n");
        exit(2);
    }
    const char *at = *p;
    *p += n;
    return at;
}

#define GET(T, p, end) ({ T v_; memcpy(&v_, take(p, end, sizeof(T)), sizeof(T)); v_; })

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: gen INPUT RESULT\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    struct stat st;
    fstat(fileno(f), &st);
    char *buf = malloc((size_t)st.st_size);
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) { perror("read"); return 2; }
    fclose(f);
    const char *p = buf, *end = buf + st.st_size;
    if (memcmp(take(&p, end, 4), "OLC1", 4) != 0) { fprintf(stderr, "gen: not an input file\n"); return 2; }
    n_learners = GET(uint32_t, &p, end);
    port = GET(uint32_t, &p, end);
    n_beats = GET(uint32_t, &p, end);
    span = GET(double, &p, end);
    drain = GET(double, &p, end);
    L = calloc(n_learners, sizeof *L);
    for (uint32_t i = 0; i < n_learners; i++) {
        L[i].addr = GET(uint32_t, &p, end);
        L[i].head_len = GET(uint32_t, &p, end);
        L[i].head = take(&p, end, L[i].head_len);
        L[i].fd = -1;
        L[i].inflight = L[i].qhead = L[i].qtail = -1;
    }
    due_s = malloc(n_beats * sizeof *due_s);
    owner = malloc(n_beats * sizeof *owner);
    tail_len = malloc(n_beats * sizeof *tail_len);
    tail = malloc(n_beats * sizeof *tail);
    next_in_queue = malloc(n_beats * sizeof *next_in_queue);
    retried = calloc(n_beats, 1);
    answered = malloc(n_beats * sizeof *answered);
    status = calloc(n_beats, 4);
    for (uint32_t b = 0; b < n_beats; b++) {
        due_s[b] = GET(double, &p, end);
        owner[b] = GET(uint32_t, &p, end);
        tail_len[b] = GET(uint32_t, &p, end);
        tail[b] = take(&p, end, tail_len[b]);
        answered[b] = -1;
        if (owner[b] >= n_learners) { fprintf(stderr, "gen: bad learner\n"); return 2; }
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    enum { EVENTS = 512 };
    struct epoll_event evs[EVENTS];

    /* Every learner's connection before the schedule (open_loop.connect_all). */
    uint32_t opened = 0;
    for (;;) {
        while (opened < n_learners && connecting_now < CONNECT_AT_ONCE) connect_learner(&L[opened++]);
        if (opened == n_learners && connecting_now == 0) break;
        int n = epoll_wait(ep, evs, EVENTS, 1000);
        for (int k = 0; k < n; k++) on_event(&evs[k]);
    }
    printf("ready %u\n", connections);
    fflush(stdout);
    double t0;
    if (scanf("%lf", &t0) != 1) { fprintf(stderr, "gen: no start\n"); return 2; }

    uint32_t at = 0;
    double last_sent = 0, until = 0;
    for (;;) {
        double now = now_s();
        while (at < n_beats && t0 + due_s[at] <= now) {
            Learner *l = &L[owner[at]];
            outstanding++;
            if (l->inflight < 0 && l->state == OPEN && l->qhead < 0) {
                send_beat(l, at);
            } else {
                push(l, at, 0);
                if (l->state == NONE) connect_learner(l);
            }
            at++;
        }
        int timeout;
        if (at < n_beats) {
            double left = t0 + due_s[at] - now_s();
            timeout = left <= 0 ? 0 : (int)(left * 1000) + 1;
        } else {
            if (!until) {
                last_sent = now;
                until = (last_sent > t0 + span ? last_sent : t0 + span) + drain;
            }
            if (!outstanding) break;
            double left = until - now_s();
            if (left <= 0) break;
            timeout = (int)(left * 1000) + 1;
            if (timeout > 100) timeout = 100;
        }
        int n = epoll_wait(ep, evs, EVENTS, timeout);
        for (int k = 0; k < n; k++) on_event(&evs[k]);
    }
    double drain_end = outstanding ? now_s() : 0;

    FILE *out = fopen(argv[2], "wb");
    if (!out) { perror(argv[2]); return 2; }
    fwrite("OLR1", 1, 4, out);
    fwrite(&n_beats, 4, 1, out);
    fwrite(&connections, 4, 1, out);
    fwrite(&n_samples, 4, 1, out);
    fwrite(&drain_end, 8, 1, out);
    for (uint32_t b = 0; b < n_beats; b++) {
        fwrite(&answered[b], 8, 1, out);
        fwrite(status[b], 1, 4, out);
    }
    for (uint32_t s = 0; s < n_samples; s++) {
        fwrite(&samples[s].beat, 4, 1, out);
        fwrite(&samples[s].len, 4, 1, out);
        fwrite(samples[s].body, 1, samples[s].len, out);
    }
    fclose(out);
    for (uint32_t i = 0; i < n_learners; i++) close_conn(&L[i]);
    printf("done\n");
    fflush(stdout);
    return 0;
}

/*
 * portfwd-agent: tells slipway which ports a VM's guest listens on.
 *
 * Theory of operation
 *
 *   Every 250 ms the agent reads /proc/net/tcp, tcp6, udp and udp6 and
 *   collects the TCP sockets in state LISTEN (0A) and the UDP sockets that
 *   are bound to a port and not connected (state 07, remote 0:0). Whenever
 *   that set differs from the one last sent, and right after every
 *   (re)connect, it sends the whole set as one line of JSON:
 *
 *     {"listeners":[{"proto":"tcp","family":4,"address":"0.0.0.0","port":8080},...]}\n
 *
 *   over a TCP connection to GATEWAY:PORT (--gateway 10.0.2.2 --port 7777 by
 *   default), where slipway turns it into forwards. The host never sends
 *   anything; anything it does send is read and discarded, and EOF or an
 *   error means the connection is gone. A failed connect or a dropped
 *   connection is retried after a backoff that starts at 250 ms and doubles
 *   up to 8 s, reset by a successful connect.
 *
 * Limits
 *
 *   - Parsing is bounded: lines longer than kLineMax are skipped, at most
 *     kMaxLinesPerFile lines are read per file and at most kMaxListeners
 *     listeners are kept (the rest are ignored with a note on stderr).
 *   - Connect waits at most 2 s; a send that cannot finish within 2 s drops
 *     the connection.
 *   - A static binary for any Linux guest: plain C, libc only, no name
 *     resolution (the gateway is an address literal).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
  kLineMax = 512,
  kMaxLinesPerFile = 65536,
  kMaxListeners = 4096,
  kScanIntervalMs = 250,
  kBackoffMinMs = 250,
  kBackoffMaxMs = 8000,
  kConnectTimeoutMs = 2000,
  kSendTimeoutMs = 2000,
  kMaxAddressText = 46, /* INET6_ADDRSTRLEN */
};

struct listener {
  int tcp; /* 1: tcp, 0: udp */
  int family; /* 4 or 6 */
  char address[kMaxAddressText];
  unsigned port;
};

struct listener_set {
  struct listener items[kMaxListeners];
  size_t count;
  int truncated;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int signum) {
  (void)signum;
  stop_requested = 1;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1000u);
  ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
  nanosleep(&ts, NULL);
}

/* Parses exactly `digits` hex digits at *p into *out; advances *p. */
static int parse_hex(const char **p, int digits, uint32_t *out) {
  uint32_t value = 0;
  int i;
  for (i = 0; i < digits; i++) {
    char c = (*p)[i];
    uint32_t d;
    if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
    else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
    else return 0;
    value = value << 4 | d;
  }
  *p += digits;
  *out = value;
  return 1;
}

static const char *skip_spaces(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

/*
 * "ADDR:PORT" as the kernel prints it: ADDR is 8 (IPv4) or 32 (IPv6) hex
 * digits, each group of 8 the %08X of one 32-bit word as it lies in memory,
 * so copying the parsed words back into memory restores the address bytes
 * whatever the endianness.
 */
static int parse_socket_address(const char **p, int v6, unsigned char bytes[16], uint32_t *port) {
  int words = v6 ? 4 : 1, i;
  for (i = 0; i < words; i++) {
    uint32_t word;
    if (!parse_hex(p, 8, &word)) return 0;
    memcpy(bytes + 4 * i, &word, 4);
  }
  if (**p != ':') return 0;
  (*p)++;
  return parse_hex(p, 4, port);
}

static int is_all_zero(const unsigned char *bytes, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (bytes[i] != 0) return 0;
  return 1;
}

/* One line of /proc/net/{tcp,udp}[6]: "  0: LOCAL REMOTE ST ...". */
static void parse_line(const char *line, int tcp, int v6, struct listener_set *set) {
  unsigned char local[16] = {0}, remote[16] = {0};
  uint32_t local_port, remote_port, state;
  const char *p = skip_spaces(line);
  struct listener l;
  size_t i;

  while (*p >= '0' && *p <= '9') p++; /* slot number */
  if (*p != ':') return;
  p = skip_spaces(p + 1);
  if (!parse_socket_address(&p, v6, local, &local_port)) return;
  p = skip_spaces(p);
  if (!parse_socket_address(&p, v6, remote, &remote_port)) return;
  p = skip_spaces(p);
  if (!parse_hex(&p, 2, &state)) return;

  if (tcp && state != 0x0A) return; /* TCP_LISTEN */
  if (!tcp && (state != 0x07 || remote_port != 0 || !is_all_zero(remote, v6 ? 16 : 4))) return;
  if (local_port == 0) return;

  memset(&l, 0, sizeof l);
  l.tcp = tcp;
  l.family = v6 ? 6 : 4;
  l.port = local_port;
  if (!inet_ntop(v6 ? AF_INET6 : AF_INET, local, l.address, sizeof l.address)) return;
  for (i = 0; i < set->count; i++) { /* SO_REUSEPORT groups: one entry */
    if (memcmp(&set->items[i], &l, sizeof l) == 0) return;
  }
  if (set->count == kMaxListeners) {
    set->truncated = 1;
    return;
  }
  set->items[set->count++] = l;
}

static void scan_file(const char *path, int tcp, int v6, struct listener_set *set) {
  char line[kLineMax];
  int lines = 0, skipping = 0;
  FILE *f = fopen(path, "re");
  if (!f) return; /* no IPv6, for example */
  while (lines < kMaxLinesPerFile && fgets(line, sizeof line, f)) {
    size_t n = strlen(line);
    int complete = n > 0 && line[n - 1] == '\n';
    if (!skipping && complete && lines > 0) parse_line(line, tcp, v6, set); /* line 0: header */
    if (complete) lines++;
    skipping = !complete; /* an overlong line: skip the rest of it */
  }
  fclose(f);
}

static int compare_listeners(const void *a, const void *b) {
  const struct listener *x = a, *y = b;
  int c;
  if (x->tcp != y->tcp) return y->tcp - x->tcp; /* tcp first */
  if (x->family != y->family) return x->family - y->family;
  if (x->port != y->port) return x->port < y->port ? -1 : 1;
  c = strcmp(x->address, y->address);
  return c;
}

static void scan(struct listener_set *set) {
  set->count = 0;
  set->truncated = 0;
  scan_file("/proc/net/tcp", 1, 0, set);
  scan_file("/proc/net/tcp6", 1, 1, set);
  scan_file("/proc/net/udp", 0, 0, set);
  scan_file("/proc/net/udp6", 0, 1, set);
  qsort(set->items, set->count, sizeof set->items[0], compare_listeners);
}

static int same_set(const struct listener_set *a, const struct listener_set *b) {
  size_t i;
  if (a->count != b->count) return 0;
  for (i = 0; i < a->count; i++)
    if (compare_listeners(&a->items[i], &b->items[i]) != 0) return 0;
  return 1;
}

/* The JSON line into a malloc'd buffer (addresses are hex digits, dots and
 * colons only: nothing to escape). */
static char *format_json(const struct listener_set *set, size_t *length) {
  size_t cap = 32 + set->count * 96, used = 0, i;
  char *out = malloc(cap);
  int n;
  if (!out) return NULL;
  n = snprintf(out, cap, "{\"listeners\":[");
  used = (size_t)n;
  for (i = 0; i < set->count; i++) {
    const struct listener *l = &set->items[i];
    n = snprintf(out + used, cap - used, "%s{\"proto\":\"%s\",\"family\":%d,\"address\":\"%s\",\"port\":%u}",
                 i ? "," : "", l->tcp ? "tcp" : "udp", l->family, l->address, l->port);
    if (n < 0 || (size_t)n >= cap - used) {
      free(out);
      return NULL;
    }
    used += (size_t)n;
  }
  n = snprintf(out + used, cap - used, "]}\n");
  if (n < 0 || (size_t)n >= cap - used) {
    free(out);
    return NULL;
  }
  *length = used + (size_t)n;
  return out;
}

/* Non-blocking connect bounded by kConnectTimeoutMs; returns a blocking
 * socket with a send timeout, or -1. */
static int connect_to(const struct sockaddr_in *gateway) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct pollfd pfd;
  int error = 0, one = 1;
  socklen_t len = sizeof error;
  struct timeval tv;
  if (fd < 0) return -1;
  if (connect(fd, (const struct sockaddr *)gateway, sizeof *gateway) < 0) {
    if (errno != EINPROGRESS) goto fail;
    pfd.fd = fd;
    pfd.events = POLLOUT;
    pfd.revents = 0;
    if (poll(&pfd, 1, kConnectTimeoutMs) != 1) goto fail;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0 || error != 0) goto fail;
  }
  if (fcntl(fd, F_SETFL, 0) < 0) goto fail;
  tv.tv_sec = kSendTimeoutMs / 1000;
  tv.tv_usec = 0;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
fail:
  close(fd);
  return -1;
}

static int send_all(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t n = send(fd, data, length, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    data += n;
    length -= (size_t)n;
  }
  return 1;
}

/* Reads and discards what the host sent; 0 when the connection is gone. */
static int still_connected(int fd) {
  char scratch[512];
  int reads;
  for (reads = 0; reads < 16; reads++) {
    ssize_t n = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0) return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
  return 1;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: portfwd-agent [--gateway ADDR] [--port PORT] [--verbose]\n"
          "Sends this machine's listening TCP/UDP ports to slipway as JSON lines.\n"
          "  --gateway ADDR  IPv4 address of slipway's agent listener (default 10.0.2.2)\n"
          "  --port PORT     its TCP port (default 7777)\n"
          "  --verbose       log connects and updates to stderr\n");
}

static struct listener_set current, sent;

int main(int argc, char **argv) {
  const char *gateway_text = "10.0.2.2";
  long port = 7777;
  int verbose = 0, i, fd = -1, have_sent = 0;
  unsigned backoff = kBackoffMinMs;
  uint64_t next_connect = 0;
  struct sockaddr_in gateway;
  struct sigaction sa;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--gateway") == 0 && i + 1 < argc) {
      gateway_text = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      char *end;
      port = strtol(argv[++i], &end, 10);
      if (*end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "portfwd-agent: invalid port '%s'\n", argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--verbose") == 0) {
      verbose = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  memset(&gateway, 0, sizeof gateway);
  gateway.sin_family = AF_INET;
  gateway.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, gateway_text, &gateway.sin_addr) != 1) {
    fprintf(stderr, "portfwd-agent: invalid gateway address '%s'\n", gateway_text);
    return 2;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  while (!stop_requested) {
    scan(&current);
    if (fd >= 0 && !still_connected(fd)) {
      if (verbose) fprintf(stderr, "portfwd-agent: connection to %s:%ld closed\n", gateway_text, port);
      close(fd);
      fd = -1;
      next_connect = now_ms() + backoff;
    }
    if (fd < 0 && now_ms() >= next_connect) {
      fd = connect_to(&gateway);
      if (fd < 0) {
        next_connect = now_ms() + backoff;
        backoff = backoff * 2 > kBackoffMaxMs ? kBackoffMaxMs : backoff * 2;
      } else {
        if (verbose) fprintf(stderr, "portfwd-agent: connected to %s:%ld\n", gateway_text, port);
        backoff = kBackoffMinMs;
        have_sent = 0;
      }
    }
    if (fd >= 0 && (!have_sent || !same_set(&current, &sent))) {
      size_t length = 0;
      char *json = format_json(&current, &length);
      if (current.truncated) fprintf(stderr, "portfwd-agent: more than %d listeners; the rest are left out\n", kMaxListeners);
      if (json && send_all(fd, json, length)) {
        sent = current;
        have_sent = 1;
        if (verbose) fprintf(stderr, "portfwd-agent: sent %zu listeners\n", current.count);
      } else {
        close(fd);
        fd = -1;
        next_connect = now_ms() + backoff;
      }
      free(json);
    }
    sleep_ms(kScanIntervalMs);
  }
  if (fd >= 0) close(fd);
  return 0;
}

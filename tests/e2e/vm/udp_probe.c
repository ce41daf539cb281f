/* udp_probe: the guest's UDP round-trip check (busybox's nc has no -u).
 *
 * Usage: udp_probe ADDRESS PORT MESSAGE
 * ADDRESS is an IPv4 or IPv6 literal. Sends MESSAGE in one datagram, waits
 * up to 2 s for a reply, up to 3 tries; prints the reply and exits 0, or
 * exits 1. Numeric addresses only (a static binary cannot use NSS). Built
 * statically by build_guest.sh. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: udp_probe ADDRESS PORT MESSAGE\n");
    return 2;
  }
  unsigned short port = htons((unsigned short)atoi(argv[2]));
  struct sockaddr_storage to;
  socklen_t to_len;
  memset(&to, 0, sizeof(to));
  struct sockaddr_in *v4 = (struct sockaddr_in *)&to;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&to;
  if (inet_pton(AF_INET, argv[1], &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = port;
    to_len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, argv[1], &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = port;
    to_len = sizeof(*v6);
  } else {
    fprintf(stderr, "udp_probe: not an IPv4 or IPv6 address: %s\n", argv[1]);
    return 2;
  }
  int fd = socket(to.ss_family, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&to, to_len) != 0) return 1;
  char buf[2048];
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (send(fd, argv[3], strlen(argv[3]), 0) < 0) continue;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 2000) == 1) {
      ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
      if (n >= 0) {
        buf[n] = 0;
        printf("%s\n", buf);
        return 0;
      }
    }
  }
  return 1;
}

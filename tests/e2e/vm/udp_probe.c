/* udp_probe: the guest's UDP round-trip check (busybox's nc has no -u).
 *
 * Usage: udp_probe IPV4 PORT MESSAGE
 * Sends MESSAGE in one datagram, waits up to 2 s for a reply, up to 3 tries;
 * prints the reply and exits 0, or exits 1. Numeric addresses only (a static
 * binary cannot use NSS). Built statically by build_guest.sh. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: udp_probe IPV4 PORT MESSAGE\n");
    return 2;
  }
  struct sockaddr_in to;
  memset(&to, 0, sizeof(to));
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) return 1;
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

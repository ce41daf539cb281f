/* vmm_embed: a toy "VMM" that embeds slipway through its C API.
 *
 * Theory of operation
 *   A real VMM moves Ethernet frames between its guest's virtio-net queues
 *   and slipway: every frame the guest transmits goes to slipway_input(),
 *   and slipway's output callback puts frames into the guest's receive
 *   queue. Here the "guest" is this program itself. On its own libuv loop it
 *     1. sends an ARP request for the gateway (10.0.2.2),
 *     2. when the ARP reply arrives, sends an ICMP echo request to the MAC
 *        address the reply gave,
 *     3. when the echo reply arrives, frees the stack and exits 0.
 *   Every frame slipway sends is printed. A deadline (5 s) makes it exit 1
 *   if a reply never comes.
 *
 *   slipway runs on this program's loop (slipway_new_on_loop), so the
 *   output callback runs on this thread, often inside slipway_input(). The
 *   callback therefore only records what it saw; the next step is taken by
 *   a timer on the loop (slipway_input may not be called from the callback).
 *
 * Build: see examples/README.md (CMake with find_package(slipway), or make
 * with pkg-config).
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX declarations under -std=c99 */

#include <slipway.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t kGuestIp[4] = {10, 0, 2, 15};
static const uint8_t kGatewayIp[4] = {10, 0, 2, 2};
static const uint16_t kEchoId = 0x1234;
static const uint16_t kEchoSeq = 1;

enum step { SEND_ARP, WAIT_ARP, WAIT_ECHO, DONE };

struct vmm {
  uv_loop_t loop;
  uv_timer_t step_timer; /* drives the steps every 10 ms */
  uv_timer_t deadline;
  slipway_t *net;
  enum step step;
  int arp_seen, echo_seen;
  uint8_t gateway_mac[6];
  int exit_code;
};

/* ----------------------------------------------------------- frame helpers */

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/* The Internet checksum (RFC 1071) of len bytes. */
static uint16_t inet_checksum(const uint8_t *p, size_t len) {
  uint32_t sum = 0;
  size_t i;
  for (i = 0; i + 1 < len; i += 2) sum += get16(p + i);
  if (len & 1) sum += (uint32_t)p[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static size_t ethernet_header(uint8_t *f, const uint8_t dst[6], uint16_t ethertype) {
  memcpy(f, dst, 6);
  memcpy(f + 6, kGuestMac, 6);
  put16(f + 12, ethertype);
  return 14;
}

/* An ARP request "who has 10.0.2.2? tell 10.0.2.15", broadcast. */
static size_t build_arp_request(uint8_t *f) {
  static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  size_t n = ethernet_header(f, broadcast, 0x0806);
  uint8_t *a = f + n;
  put16(a, 1);          /* hardware: Ethernet */
  put16(a + 2, 0x0800); /* protocol: IPv4 */
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, 1); /* request */
  memcpy(a + 8, kGuestMac, 6);
  memcpy(a + 14, kGuestIp, 4);
  memset(a + 18, 0, 6);
  memcpy(a + 24, kGatewayIp, 4);
  return n + 28;
}

/* An ICMP echo request to the gateway, with a 32-byte payload. */
static size_t build_echo_request(uint8_t *f, const uint8_t gateway_mac[6]) {
  size_t n = ethernet_header(f, gateway_mac, 0x0800);
  uint8_t *ip = f + n;
  uint8_t *icmp = ip + 20;
  const size_t payload = 32;
  const size_t icmp_len = 8 + payload;
  memset(ip, 0, 20);
  ip[0] = 0x45; /* IPv4, 20-byte header */
  put16(ip + 2, (uint16_t)(20 + icmp_len));
  put16(ip + 6, 0x4000); /* DF */
  ip[8] = 64;            /* TTL */
  ip[9] = 1;             /* ICMP */
  memcpy(ip + 12, kGuestIp, 4);
  memcpy(ip + 16, kGatewayIp, 4);
  put16(ip + 10, inet_checksum(ip, 20));
  icmp[0] = 8; /* echo request */
  icmp[1] = 0;
  put16(icmp + 2, 0);
  put16(icmp + 4, kEchoId);
  put16(icmp + 6, kEchoSeq);
  memset(icmp + 8, 0x5a, payload);
  put16(icmp + 2, inet_checksum(icmp, icmp_len));
  return n + 20 + icmp_len;
}

/* ------------------------------------------------------ slipway -> "guest" */

static void print_frame(const uint8_t *f, size_t len) {
  size_t i;
  printf("out: %zu bytes:", len);
  for (i = 0; i < len && i < 42; ++i) printf(" %02x", f[i]);
  printf("%s\n", len > 42 ? " ..." : "");
}

/* slipway's output callback: a frame for the guest. Only records. */
static void on_frame(void *opaque, const void *frame, size_t len) {
  struct vmm *v = opaque;
  const uint8_t *f = frame;
  print_frame(f, len);
  if (len < 14) return;
  if (get16(f + 12) == 0x0806 && len >= 14 + 28) {
    const uint8_t *a = f + 14;
    if (get16(a + 6) == 2 && memcmp(a + 14, kGatewayIp, 4) == 0) {
      memcpy(v->gateway_mac, a + 8, 6);
      v->arp_seen = 1;
      printf("  ARP reply: 10.0.2.2 is at %02x:%02x:%02x:%02x:%02x:%02x\n", a[8], a[9], a[10], a[11], a[12],
             a[13]);
    }
  } else if (get16(f + 12) == 0x0800 && len >= 14 + 20 + 8) {
    const uint8_t *ip = f + 14;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    const uint8_t *icmp = ip + ihl;
    if (ip[9] == 1 && len >= 14 + ihl + 8 && memcmp(ip + 12, kGatewayIp, 4) == 0 && icmp[0] == 0 &&
        get16(icmp + 4) == kEchoId && get16(icmp + 6) == kEchoSeq) {
      v->echo_seen = 1;
      printf("  ICMP echo reply from 10.0.2.2, id 0x%04x seq %u\n", kEchoId, kEchoSeq);
    }
  }
  fflush(stdout);
}

/* ---------------------------------------------------------------- the loop */

static void finish(struct vmm *v, int code) {
  v->exit_code = code;
  v->step = DONE;
  uv_close((uv_handle_t *)&v->step_timer, NULL);
  uv_close((uv_handle_t *)&v->deadline, NULL);
  slipway_free(v->net); /* closes slipway's handles: uv_run then returns */
  v->net = NULL;
}

static void push(struct vmm *v, const uint8_t *frame, size_t len) {
  int rc = slipway_input(v->net, frame, len);
  if (rc != SLIPWAY_OK) fprintf(stderr, "slipway_input: %s (%s)\n", slipway_strerror(rc), slipway_last_error());
}

static void on_step(uv_timer_t *t) {
  struct vmm *v = t->data;
  uint8_t frame[128];
  switch (v->step) {
    case SEND_ARP:
      printf("in:  ARP request for 10.0.2.2\n");
      push(v, frame, build_arp_request(frame));
      v->step = WAIT_ARP;
      break;
    case WAIT_ARP:
      if (!v->arp_seen) break;
      printf("in:  ICMP echo request to 10.0.2.2\n");
      push(v, frame, build_echo_request(frame, v->gateway_mac));
      v->step = WAIT_ECHO;
      break;
    case WAIT_ECHO:
      if (v->echo_seen) {
        printf("done: ARP and ping answered\n");
        finish(v, 0);
      }
      break;
    case DONE:
      break;
  }
}

static void on_deadline(uv_timer_t *t) {
  struct vmm *v = t->data;
  fprintf(stderr, "timed out: ARP reply %s, echo reply %s\n", v->arp_seen ? "seen" : "missing",
          v->echo_seen ? "seen" : "missing");
  finish(v, 1);
}

int main(void) {
  struct vmm v;
  slipway_config cfg;
  int rc;

  memset(&v, 0, sizeof v);
  v.exit_code = 1;
  printf("slipway %s\n", slipway_version());
  if (uv_loop_init(&v.loop) != 0) return 1;

  slipway_config_init(&cfg); /* 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3 */
  rc = slipway_new_on_loop(&cfg, &v.loop, on_frame, &v, &v.net);
  if (rc != SLIPWAY_OK) {
    fprintf(stderr, "slipway_new_on_loop: %s: %s\n", slipway_strerror(rc), slipway_last_error());
    return 1;
  }

  uv_timer_init(&v.loop, &v.step_timer);
  v.step_timer.data = &v;
  uv_timer_start(&v.step_timer, on_step, 0, 10);
  uv_timer_init(&v.loop, &v.deadline);
  v.deadline.data = &v;
  uv_timer_start(&v.deadline, on_deadline, 5000, 0);

  uv_run(&v.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&v.loop) != 0) fprintf(stderr, "warning: handles left open on the loop\n");
  return v.exit_code;
}

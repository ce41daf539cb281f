/* lwIP options for slipway.
 *
 * lwIP runs single-threaded inside the slipway event loop (NO_SYS=1): the
 * engine feeds it IP packets, drives its timers from a libuv timer, and takes
 * IP packets out through netif->output and output_ip6. lwIP never sees
 * Ethernet, ARP or neighbour discovery: the
 * gateway (netstack/gateway) owns the link layer.
 *
 * Sizing: the virtual link has an MTU of up to 65520 (like slirp4netns and
 * pasta), so the MSS and windows are large and window scaling is on. Memory
 * comes from the C heap (MEM_LIBC_MALLOC, MEMP_MEM_MALLOC); the engine bounds
 * the number of flows and each flow is bounded by TCP_WND and TCP_SND_BUF, so
 * no buffer grows without limit.
 */
#ifndef SLIPWAY_LWIPOPTS_H
#define SLIPWAY_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_TIMERS 1
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#define LWIP_RAW 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_IPV6_FORWARD 0
#define LWIP_IPV6_FRAG 1
#define LWIP_IPV6_REASS 1
#define IPV6_FRAG_COPYHEADER 1  /* needed with 64-bit pointers */
#define LWIP_IPV6_NUM_ADDRESSES 3
#define LWIP_ND6_QUEUEING 0
#define LWIP_ND6_ALLOW_RA_UPDATES 0
#define LWIP_ICMP6 1
#define LWIP_IPV6_SCOPES 0
#define LWIP_ICMP 1
#define LWIP_BROADCAST_PING 0
#define LWIP_MULTICAST_PING 0
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_SINGLE_NETIF 1
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_HAVE_LOOPIF 0
#define LWIP_NETIF_LOOPBACK 0

/* Memory: the C heap, bounded by the engine's flow limit. */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 8
#define MEM_SIZE (1024 * 1024)
#define PBUF_POOL_SIZE 64
#define PBUF_POOL_BUFSIZE 2048
#define MEMP_NUM_TCP_PCB 16384
#define MEMP_NUM_TCP_PCB_LISTEN 4
#define MEMP_NUM_UDP_PCB 8
#define MEMP_NUM_TCP_SEG 65536
#define MEMP_NUM_REASSDATA 64
#define MEMP_NUM_FRAG_PBUF 256
#define MEMP_NUM_SYS_TIMEOUT 16

/* IPv4: reassemble guest fragments; fragment what we send if needed. */
#define IP_FORWARD 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define IP_REASS_MAX_PBUFS 256
#define IP_DEFAULT_TTL 64
#define IP_SOF_BROADCAST 0

/* TCP sized for MTU 65520: MSS = 65520 - 40. Window scaling on. */
#define TCP_MSS 65480
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 6
#define TCP_WND (2 * 1024 * 1024)
#define TCP_SND_BUF (2 * 1024 * 1024)
#define TCP_SND_QUEUELEN 4096
#define TCP_SNDLOWAT (TCP_SND_BUF / 2)
#define TCP_SNDQUEUELOWAT (TCP_SND_QUEUELEN / 2)
#define TCP_OVERSIZE TCP_MSS
/* lwIP's sanity checks assume 16-bit windows (TCP_SNDLOWAT below 0xffff);
 * with LWIP_WND_SCALE the send buffer is 32-bit. The other checks hold for
 * the values above: SND_BUF >= 2*MSS, QUEUELEN >= 2*SND_BUF/MSS,
 * LOWATs below their limits, WND >= MSS. */
#define LWIP_DISABLE_TCP_SANITY_CHECKS 1
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_BYTES TCP_WND
#define TCP_OOSEQ_MAX_PBUFS 512
#define LWIP_TCP_SACK_OUT 1
#define TCP_LISTEN_BACKLOG 0
#define LWIP_TCP_TIMESTAMPS 0
#define TCP_TTL 64
#define TCP_MSL 10000UL
#define TCP_MAXRTX 12
#define TCP_SYNMAXRTX 6
#define LWIP_TCP_KEEPALIVE 1
/* patches/0004-loss-recovery.patch: the TCP timer ticks every 25 ms (the
 * slow timer, which counts retransmission time-outs, every 50 ms) while a
 * connection has a retransmission timer or a delayed ACK running, and
 * sleeps 250 ms at a time otherwise; the RTO is at least 200 ms (Linux's
 * minimum). lwIP's own ticks (250 and 500 ms) gave an RTO of 1 to 1.5 s on
 * a sub-millisecond link. */
#define SLIPWAY_TCP_TIMER 1
#if SLIPWAY_TCP_TIMER
#define TCP_TMR_INTERVAL 25
#define SLIPWAY_TCP_IDLE_MS 250
#define SLIPWAY_TCP_MIN_RTO_MS 200
#endif
/* ... and the sender recovers from loss with the guest's SACK blocks,
 * NewReno's partial ACKs and a loss probe, instead of Reno's one segment
 * per fast recovery. Either macro may be set to 0 (lwIP's own behaviour;
 * the engine's loss-recovery counters then stay 0). */
#define SLIPWAY_TCP_RECOVERY 1
#define LWIP_CALLBACK_API 1
#define LWIP_EVENT_API 0
#define TCP_CALCULATE_EFF_SEND_MSS 1

/* Checksums: generated for everything we send, but the TCP and UDP ones
 * only when the guest's link cannot take them partial (the engine switches
 * them per netif, LwipEngine::set_link_offloads); guest input checked for
 * the IP header only. A guest that sends bad TCP/UDP checksums only corrupts
 * its own data; skipping the check saves a pass over every byte. No
 * checksum-on-copy: with offload there is no checksum to compute at all. */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_UDP 0
#define CHECKSUM_CHECK_TCP 0
#define CHECKSUM_CHECK_ICMP 0
#define LWIP_CHECKSUM_ON_COPY 0

/* Statistics: kept in debug builds only. */
#ifdef NDEBUG
#define LWIP_STATS 0
#else
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#endif
#define LWIP_NOASSERT_ON_ERROR 1

/* slipway's hooks and patches: transparent termination
 * (patches/0001-transparent-termination.patch), a new SYN recycling a
 * TIME-WAIT 4-tuple (patches/0002-timewait-recycle.patch), TSO (0003),
 * loss recovery and finer TCP timers (0004, SLIPWAY_TCP_RECOVERY and
 * SLIPWAY_TCP_TIMER above). */
#define SLIPWAY_TRANSPARENT 1
#define SLIPWAY_TIMEWAIT_RECYCLE 1
/* patches/0003-tso-no-fragment.patch: a TCP segment longer than the MTU is
 * left whole when the guest's link cuts segments itself (TSO). */
#ifdef __cplusplus
extern "C" {
#endif
struct netif;
int slipway_link_segments(const struct netif* netif, unsigned char proto);
#ifdef __cplusplus
}
#endif
#define SLIPWAY_LINK_SEGMENTS(netif, proto) slipway_link_segments((netif), (proto))
#define LWIP_RAND() slipway_lwip_rand()

#endif

// Guest frames (IPv6 over Ethernet) that the IPv6 wire tests dissect and the
// NDP responder tests answer. Built by a separate script; their ICMPv6 and
// UDP checksums confirmed by tshark ("[Checksum Status: Good]"). Guest MAC
// 52:54:00:12:34:56, guest link-local fe80::5054:ff:fe12:3456.
#pragma once

#include "hex.h"

namespace slipway::test {

// NS from fe80::5054:ff:fe12:3456 to ff02::1:ff00:2 for target fd00::2, with
// a source link-layer address option. ICMPv6 checksum 0x73a0.
inline const auto kNsFrame = hex(
    "3333ff000002 525400123456 86dd"
    "6000000000203aff fe80000000000000505400fffe123456 ff0200000000000000000001ff000002"
    "870073a0 00000000 fd000000000000000000000000000002 0101525400123456");

// RS from the guest link-local to ff02::2 with its link-layer address. 0x71b5.
inline const auto kRsFrame = hex(
    "333300000002 525400123456 86dd"
    "6000000000103aff fe80000000000000505400fffe123456 ff020000000000000000000000000002"
    "850071b5 00000000 0101525400123456");

// Echo request fd00::5054:ff:fe12:3456 -> fd00::2, id 0x1234 seq 1 "abcdefgh". 0x5e2a.
inline const auto kEchoFrame = hex(
    "52550a000202 525400123456 86dd"
    "6000000000103a40 fd00000000000000505400fffe123456 fd000000000000000000000000000002"
    "80005e2a 12340001 6162636465666768");

// DHCPv6 INFORMATION-REQUEST, xid 0xabcdef, CLIENTID DUID-LL of the guest,
// ORO (23, 24), ELAPSED_TIME 0; fe80::...:546 -> ff02::1:2:547, hop limit 1.
// UDP checksum 0x196d.
inline const auto kInfoReqFrame = hex(
    "333300010002 525400123456 86dd"
    "6000000000281101 fe80000000000000505400fffe123456 ff020000000000000000000000010002"
    "02220223 0028196d"
    "0babcdef 0001000a00030001525400123456 000600040017 0018 000800020000");

}  // namespace slipway::test

#!/usr/bin/env bash
# A Debian guest in QEMU on slipway's --stream transport: DHCP, ping, DNS,
# HTTP, a 64 MiB download, UDP and an inbound forward; IPv6 set up by the
# guest kernel (SLAAC address and default route from the RA), then ping, DNS
# AAAA, UDP and HTTP over IPv6 (see vm/vm_test.sh).
VM_TRANSPORT=stream
. "$(dirname "$0")/vm/vm_test.sh"
vm_test_main "$@"

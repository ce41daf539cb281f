#!/usr/bin/env bash
# A Debian guest in QEMU on slipway's --dgram transport: DHCP, ping, DNS,
# HTTP, a 64 MiB download, UDP and an inbound forward (see vm/vm_test.sh).
VM_TRANSPORT=dgram
. "$(dirname "$0")/vm/vm_test.sh"
vm_test_main "$@"

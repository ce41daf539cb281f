#!/usr/bin/env python3
"""Checks that every #include "..." between slipway's parts runs downwards.

The parts and what each may include are the layer table of ARCHITECTURE.md
("Layers"); the two change together. A part may include its own headers and
those of the parts listed for it, nothing else. Tests, benchmarks and examples
may include anything. Prints every include that breaks the table and exits 1,
or prints a one-line summary and exits 0.

Usage: scripts/check_layers.py [REPO_ROOT]
"""
import os
import re
import sys

# Part -> path prefixes (first match wins, most specific first).
PARTS = [
    ("programs", ["dns-proxy/main.cc", "portfwd/main.cc"]),
    ("frontends", ["vswitch/main.cc"]),
    ("wire", ["netstack/wire/"]),
    ("sys", ["netstack/sys/"]),
    ("link", ["netstack/link/"]),
    ("engine", ["netstack/engine/"]),
    ("gateway", ["netstack/gateway/"]),
    ("ns", ["netstack/ns/"]),
    ("stack", ["netstack/stack/"]),
    ("config", ["netstack/config/"]),
    ("control", ["netstack/control/"]),
    ("cli", ["netstack/cli/"]),
    ("compat", ["netstack/compat/"]),
    ("capi", ["netstack/capi/", "include/"]),
    ("dns", ["dns-proxy/"]),
    ("portfwd", ["portfwd/"]),
    ("vswitch", ["vswitch/"]),
]

# Part -> the parts it may include (besides itself). Lower layers first.
ALLOWED = {
    "wire": set(),
    "sys": set(),
    "dns": {"wire", "sys"},
    "link": {"wire", "sys"},
    "engine": {"wire", "sys"},
    "ns": {"wire", "sys"},
    "portfwd": {"engine-interface", "wire", "sys"},
    "gateway": {"engine-interface", "link", "wire", "sys"},
    "vswitch": {"link", "wire", "sys"},
    "stack": {"gateway", "engine", "link", "vswitch", "dns", "portfwd", "wire", "sys"},
    "config": {"stack", "gateway", "engine", "link", "vswitch", "dns", "portfwd", "wire", "sys"},
    "control": {"stack", "gateway", "engine", "link", "vswitch", "dns", "portfwd", "wire", "sys"},
    "cli": {"compat-entry", "config", "control", "stack", "gateway", "engine", "link", "vswitch", "ns", "dns",
            "portfwd", "wire", "sys"},
    # The slirp4netns front end reuses the program's option checks
    # (cli/options.h), as the C library does; the program reaches it only
    # through its entry point (COMPAT_ENTRY), for `slipway slirp4netns`.
    "compat": {"cli", "config", "control", "stack", "gateway", "engine", "link", "vswitch", "ns", "dns", "portfwd",
               "wire", "sys"},
    # The vswitch program: like the slipway program, a front end.
    "frontends": {"cli", "config", "control", "stack", "gateway", "engine", "link", "vswitch", "ns", "dns",
                  "portfwd", "wire", "sys"},
    # The C library reuses the program's option checks (cli/options.h).
    "capi": {"cli", "config", "control", "stack", "gateway", "engine", "link", "vswitch", "ns", "dns", "portfwd",
             "wire", "sys"},
    "programs": {"dns", "portfwd", "wire", "sys"},
}

# The engine's interface: what portfwd and the gateway may see of the engine
# (not the lwIP engine, its flows or its sessions).
ENGINE_INTERFACE = {
    "netstack/engine/engine.h",
    "netstack/engine/ip_addr.h",
    "netstack/engine/flow_key.h",
    "netstack/engine/nat.h",
    "netstack/engine/guest_forward.h",
    "netstack/engine/icmp_relay.h",
}

# What the program (cli) may see of the slirp4netns front end.
COMPAT_ENTRY = {"netstack/compat/slirp4netns_main.h"}

SOURCE_DIRS = ["netstack", "dns-proxy", "portfwd", "vswitch", "include"]
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def part_of(path):
    for name, prefixes in PARTS:
        for p in prefixes:
            if path == p or path.startswith(p):
                return name
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    root = os.path.abspath(root)
    problems = []
    checked = 0
    for top in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".h", ".cc", ".c")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, f), root)
                src = part_of(path)
                if src is None:
                    continue
                with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
                    for lineno, line in enumerate(fh, 1):
                        m = INCLUDE_RE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        if target.startswith("lwip/"):
                            if src != "engine":
                                problems.append(f"{path}:{lineno}: includes lwIP ({target}) outside netstack/engine")
                            continue
                        if "/" not in target:
                            target = os.path.relpath(os.path.join(os.path.dirname(path), target), ".")
                            if target == "slipway.h" or not os.path.exists(os.path.join(root, target)):
                                target = "include/" + m.group(1)
                        dst = part_of(target)
                        if dst is None:
                            continue  # a system or generated header
                        checked += 1
                        if dst == src:
                            continue
                        allowed = ALLOWED[src]
                        if dst in allowed:
                            continue
                        if dst == "engine" and "engine-interface" in allowed and target in ENGINE_INTERFACE:
                            continue
                        if dst == "compat" and "compat-entry" in allowed and target in COMPAT_ENTRY:
                            continue
                        problems.append(f"{path}:{lineno}: {src} includes {target} ({dst}), which it may not")
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) break the layer table in ARCHITECTURE.md")
        return 1
    print(f"check_layers: {checked} includes between parts checked, all run downwards")
    return 0


if __name__ == "__main__":
    sys.exit(main())

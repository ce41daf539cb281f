#!/usr/bin/env python3
"""ctl_stats.py CTL [PATH ...]: slipway's counters from its control API (the
`stats` request on the unix socket CTL; README "Control API").

With PATHs (dotted for nested counters: tftp.completed, link.tx_dropped),
prints their values on one line, space-separated, and fails naming a path
that is not there. Without, prints every counter as KEY=VALUE on one line,
a nested one as OUTER_INNER=VALUE; --label LABEL puts LABEL first.

--until-flows N --within S: asks again every 0.1 s until at most N TCP
flows are left or S seconds have passed, then prints
"LABEL_drained_s=SECONDS LABEL_flows_left=FLOWS"."""
import argparse
import json
import socket
import sys
import time


def stats(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(b'{"op":"stats"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)["stats"]


def lookup(st, dotted):
    v = st
    for key in dotted.split("."):
        if not isinstance(v, dict) or key not in v:
            sys.exit(f"ctl_stats: no counter '{dotted}' in the stats")
        v = v[key]
    return v


def flat(st):
    out = {}
    for k, v in st.items():
        if isinstance(v, dict):
            out.update({f"{k}_{k2}": v2 for k2, v2 in v.items()})
        else:
            out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ctl")
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--label", default="")
    ap.add_argument("--until-flows", type=int)
    ap.add_argument("--within", type=float, default=15)
    a = ap.parse_args()
    if a.until_flows is not None:
        t0 = time.time()
        while True:
            n = stats(a.ctl)["tcp_flows"]
            if n <= a.until_flows or time.time() - t0 > a.within:
                break
            time.sleep(0.1)
        print(f"{a.label}_drained_s={time.time() - t0:.1f} {a.label}_flows_left={n}")
        return
    st = stats(a.ctl)
    if a.paths:
        print(" ".join(str(lookup(st, p)) for p in a.paths))
        return
    words = [f"{k}={v}" for k, v in flat(st).items()]
    print(" ".join(([a.label] if a.label else []) + words))


main()

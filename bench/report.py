#!/usr/bin/env python3
"""Records and the final report for bench/run.sh.

bench/run.sh appends one JSON object per figure and system to a raw file
(results.jsonl) with the `add-*` commands below, then `report` turns it into
the table (stdout and table.txt), results.json and chart.png in the results
directory.

  report.py add-value  RAW FIGURE SYSTEM VALUE UNIT COMMAND [EXTRA_JSON]
  report.py add-status RAW FIGURE SYSTEM skip|fail|n/a REASON [COMMAND]
  report.py add-iperf  RAW FIGURE SYSTEM COMMAND JSON_FILE [EXTRA_JSON]
  report.py add-sockperf RAW FIGURE SYSTEM COMMAND OUTPUT_FILE
  report.py add-wrk    RAW PREFIX SYSTEM COMMAND OUTPUT_FILE WINDOWS
  report.py add-udp    RAW FIGURE SYSTEM COMMAND OUTPUT_FILE
  report.py report     RAW META_JSON OUT_DIR

A parser that cannot read its tool's output records the figure as "fail"
with the reason (the tool's error line) instead.
"""
import json
import math
import os
import re
import sys

SYSTEMS = ["loopback", "veth", "slirp4netns", "pasta", "slipway", "slipway_slirp"]
PEERS = ["slirp4netns", "pasta"]

# Every figure: key -> (label, unit, higher is better, target or None).
# A target is a list of conditions on slipway's value, all of which must hold:
#   ("veth", op, factor)   slipway op factor * veth
#   ("slirp4netns", op, factor)
#   ("abs", op, value)
FIGURES = {}


def fig(key, label, unit, higher, target=None, family=None):
    FIGURES[key] = dict(label=label, unit=unit, higher=higher, target=target, family=family)


for mtu, tgt in (("65520", [("veth", ">=", 0.8)]), ("1500", [("veth", ">=", 0.5), ("slirp4netns", ">=", 3.0)])):
    fig(f"bulk_up_{mtu}", f"TCP bulk guest->host, MTU {mtu}", "Gbit/s", True, tgt, "bulk")
    fig(f"bulk_down_{mtu}", f"TCP bulk host->guest, MTU {mtu}", "Gbit/s", True, tgt, "bulk")
for mtu in ("65520", "1500"):
    fig(f"cpu_machine_{mtu}", f"CPU/GB machine (/proc/stat), {mtu}", "s/GB", False, None, "cpu")
    fig(f"cpu_bench_{mtu}", f"CPU/GB bench processes, {mtu}", "s/GB", False, None, "cpu")
    fig(f"cpu_tool_{mtu}", f"CPU/GB tool process, {mtu}", "s/GB", False, None, "cpu")
fig("rr_tcp", "TCP request/response, median RTT", "us", False, [("veth", "<=", 1.2)], "latency")
fig("rr_udp", "UDP request/response, median RTT", "us", False, None, "latency")
for pfx, what in (("conn4", "IPv4 -c16"), ("conn6", "IPv6 -c16"), ("conn256", "IPv4 -c256")):
    fig(f"{pfx}_rate", f"HTTP conn/s, {what}", "conn/s", True, [("slirp4netns", ">=", 2.0)], "conn")
    fig(f"{pfx}_stability", f"  slowest/fastest second, {what}", "ratio", True, [("abs", ">=", 0.8)], "stability")
    fig(f"{pfx}_errors", f"  wrk socket errors, {what}", "count", False, [("abs", "==", 0)], None)
fig("udp_up", "UDP 64 B datagrams guest->host", "pkt/s", True, None, "udp")
fig("udp_down", "UDP 64 B datagrams host->guest", "pkt/s", True, None, "udp")
fig("in_bulk_up", "Inbound TCP bulk client->guest", "Gbit/s", True, None, "inbound")
fig("in_bulk_down", "Inbound TCP bulk guest->client (-R)", "Gbit/s", True, None, "inbound")
fig("in_conn_rate", "Inbound HTTP conn/s, -c16", "conn/s", True, None, "conn")
fig("in_conn_errors", "  inbound wrk socket errors", "count", False, None, None)
fig("in_rr_tcp", "Inbound TCP RR, median RTT", "us", False, None, "latency")
for n in ("10k", "100k"):
    fig(f"scale_open_{n}", f"Idle TCP conns open (of {n})", "conns", True, None, None)
    fig(f"scale_rss_{n}", f"  tool RSS growth per conn, {n}", "KiB", False, [("abs", "<=", 2.0)], "scale")


def append(raw, obj):
    with open(raw, "a") as f:
        f.write(json.dumps(obj) + "\n")


def add_value(raw, figure, system, value, unit, command, extra=None):
    append(raw, dict(figure=figure, system=system, status="ok", value=float(value), unit=unit,
                     command=command, **(extra or {})))


def add_status(raw, figure, system, status, reason, command=""):
    append(raw, dict(figure=figure, system=system, status=status, reason=reason, command=command))


def last_line(path):
    try:
        lines = [l.strip() for l in open(path, errors="replace") if l.strip()]
    except OSError:
        return "no output"
    return lines[-1][:200] if lines else "no output"


def cmd_add_iperf(raw, figure, system, command, path, extra="{}"):
    extra = json.loads(extra)
    try:
        d = json.load(open(path))
    except (OSError, ValueError):
        return add_status(raw, figure, system, "fail", f"iperf3: {last_line(path + '.err')}", command)
    if "error" in d or "sum_received" not in d.get("end", {}):
        return add_status(raw, figure, system, "fail", f"iperf3: {d.get('error', 'no result')}", command)
    r = d["end"]["sum_received"]
    s = d["end"].get("sum_sent", {})
    extra.update(bytes=r["bytes"], seconds=r["seconds"], retransmits=s.get("retransmits"))
    add_value(raw, figure, system, r["bits_per_second"] / 1e9, "Gbit/s", command, extra)


def cmd_add_sockperf(raw, figure, system, command, path):
    text = open(path, errors="replace").read() if os.path.exists(path) else ""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    med = re.search(r"percentile 50\.000 =\s*([0-9.]+)", text)
    avg = re.search(r"avg-rtt=([0-9.]+)", text)
    p99 = re.search(r"percentile 99\.000 =\s*([0-9.]+)", text)
    obs = re.search(r"Total (\d+) observations", text)
    if not med:
        return add_status(raw, figure, system, "fail", f"sockperf: {last_line(path)}", command)
    add_value(raw, figure, system, float(med.group(1)), "us", command,
              dict(mean_us=float(avg.group(1)) if avg else None, p99_us=float(p99.group(1)) if p99 else None,
                   observations=int(obs.group(1)) if obs else None))


def cmd_add_wrk(raw, prefix, system, command, path, windows):
    windows = int(windows)
    text = open(path, errors="replace").read() if os.path.exists(path) else ""
    m = re.search(r"^WINDOWS (\{.*\})$", text, re.M)
    if not m:
        for f in ("rate", "stability", "errors"):
            add_status(raw, f"{prefix}_{f}", system, "fail", f"wrk: {last_line(path)}", command)
        return
    d = json.loads(m.group(1))
    counts = d["counts"][1:-1][:windows]  # whole seconds only
    errors = sum(d["errors"][k] for k in ("connect", "read", "write", "timeout"))
    extra = dict(windows=counts, requests=d["requests"], errors=d["errors"],
                 non_2xx=d["errors"]["status"])
    if not counts:
        add_status(raw, f"{prefix}_rate", system, "fail", f"wrk: fewer than one whole second ({d['counts']})", command)
        add_status(raw, f"{prefix}_stability", system, "fail", "no whole second", command)
    else:
        add_value(raw, f"{prefix}_rate", system, sum(counts) / len(counts), "conn/s", command, extra)
        fastest = max(counts)
        add_value(raw, f"{prefix}_stability", system, min(counts) / fastest if fastest else 0.0, "ratio",
                  command, dict(windows=counts))
    add_value(raw, f"{prefix}_errors", system, errors, "count", command, dict(errors=d["errors"]))


def cmd_add_udp(raw, figure, system, command, path):
    text = open(path, errors="replace").read() if os.path.exists(path) else ""
    m = re.search(r"packets=(\d+) seconds=([0-9.]+) pps=([0-9.]+)", text)
    if not m or int(m.group(1)) == 0:
        return add_status(raw, figure, system, "fail", f"udp_pps: {last_line(path)}", command)
    add_value(raw, figure, system, float(m.group(3)), "pkt/s", command,
              dict(packets=int(m.group(1)), seconds=float(m.group(2))))


# ------------------------------------------------------------------ report

def load(raw):
    recs = []
    if os.path.exists(raw):
        for line in open(raw):
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    return recs


def derive_cpu(recs):
    """CPU seconds per GB from the bulk runs' extras, both directions summed."""
    out = []
    by = {}
    for r in recs:
        if r["status"] == "ok" and r["figure"].startswith("bulk_"):
            mtu = r["figure"].rsplit("_", 1)[1]
            by.setdefault((mtu, r["system"]), []).append(r)
    for (mtu, system), rs in by.items():
        gb = sum(r["bytes"] for r in rs) / 1e9
        if gb <= 0:
            continue
        runs = [r["figure"] for r in rs]
        for kind, field in (("machine", "machine_cpu_s"), ("bench", "bench_cpu_s"), ("tool", "tool_cpu_s")):
            vals = [r.get(field) for r in rs]
            if any(v is None for v in vals):
                if kind == "tool":
                    out.append(dict(figure=f"cpu_tool_{mtu}", system=system, status="n/a",
                                    reason="no tool process"))
                continue
            out.append(dict(figure=f"cpu_{kind}_{mtu}", system=system, status="ok", value=sum(vals) / gb,
                            unit="s/GB", command="derived from " + ", ".join(runs),
                            cpu_s=sum(vals), gigabytes=gb))
    return out


def fmt(v, unit):
    if v is None:
        return "-"
    if unit in ("count", "conns"):
        return f"{v:.0f}"
    if unit == "ratio":
        return f"{v:.2f}"
    if unit in ("conn/s", "pkt/s"):
        return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def check_target(target, vals):
    """-> (text, met True/False/None)."""
    if not target:
        return "", None
    sw = vals.get("slipway")
    texts, met = [], True
    for ref, op, k in target:
        if ref == "abs":
            texts.append(f"{op}{k:g}")
            bound = k
        else:
            texts.append(f"{op}{k:g}x {ref}")
            if vals.get(ref) is None:
                met = None if met is not False else False
                continue
            bound = k * vals[ref]
        if sw is None:
            met = None if met is not False else False
            continue
        ok = {">=": sw >= bound, "<=": sw <= bound, "==": sw == bound}[op]
        if not ok:
            met = False
    return " & ".join(texts), met


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def build_rows(recs, systems):
    cells = {}  # (figure, system) -> record
    for r in recs:
        cells[(r["figure"], r["system"])] = r
    rows = []
    for key, meta in FIGURES.items():
        if not any((key, s) in cells for s in systems):
            continue
        vals, shown = {}, {}
        for s in systems:
            r = cells.get((key, s))
            if r is None:
                shown[s] = ""
            elif r["status"] == "ok":
                vals[s] = r["value"]
                shown[s] = fmt(r["value"], meta["unit"])
            else:
                shown[s] = r["status"]
        peers = [vals[p] for p in PEERS if p in vals]
        best = (max(peers) if meta["higher"] else min(peers)) if peers else None
        tgt_text, met = check_target(meta["target"], vals)
        rows.append(dict(figure=key, label=meta["label"], unit=meta["unit"], higher_is_better=meta["higher"],
                         values=vals, shown=shown,
                         slipway_vs_veth=ratio(vals.get("slipway"), vals.get("veth")),
                         slipway_vs_best_peer=ratio(vals.get("slipway"), best),
                         target=tgt_text, met=met))
    return rows


def table(rows, systems, meta):
    w = [36, 7] + [11] * len(systems) + [8, 8, 26, 7]
    head = ["figure", "unit"] + systems + ["sw/veth", "sw/peer", "target (slipway)", "met"]
    out = []
    out.append(f"slipway benchmark suite, {meta.get('started', '')}, {meta.get('cpus', '?')} CPUs, "
               f"kernel {meta.get('kernel', '?')}, {'QUICK' if meta.get('quick') else 'full'} run")

    def line(cols):
        s = ""
        for i, (c, width) in enumerate(zip(cols, w)):
            s += (c.ljust(width) if i == 0 else c.rjust(width)) + " "
        return s.rstrip()

    out.append(line(head))
    out.append("-" * (sum(w) + len(w)))
    for r in rows:
        rv = lambda v: "-" if v is None else f"{v:.2f}"
        met = "" if not r["target"] else {True: "met", False: "not met", None: "n/a"}[r["met"]]
        out.append(line([r["label"], r["unit"]] + [r["shown"][s] or "" for s in systems] +
                        [rv(r["slipway_vs_veth"]), rv(r["slipway_vs_best_peer"]), r["target"], met]))
    return out


def notes(recs, meta):
    out = ["", "Notes:"]
    seen = {}
    for r in recs:
        if r["status"] in ("skip", "fail", "n/a"):
            seen.setdefault((r["system"], r["status"], r["reason"]), []).append(r["figure"])
    for (system, status, reason), figs in seen.items():
        out.append(f"  {system}: {status}: {reason} [{', '.join(figs)}]")
    for n in meta.get("notes", []):
        out.append(f"  {n}")
    return out


def chart(rows, systems, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"no chart: {e} (Debian package python3-matplotlib)"
    by_key = {r["figure"]: r for r in rows}
    # (title, [(figure, short label)], normalize to, reference line, log scale)
    panels = [
        ("TCP bulk, Gbit/s relative to veth",
         [("bulk_up_65520", "up\n65520"), ("bulk_down_65520", "down\n65520"), ("bulk_up_1500", "up\n1500"),
          ("bulk_down_1500", "down\n1500"), ("in_bulk_up", "inbound\nup"), ("in_bulk_down", "inbound\ndown (-R)")],
         "veth", None, False),
        ("Request/response median RTT relative to veth (lower is better; target TCP <= 1.2)",
         [("rr_tcp", "TCP"), ("rr_udp", "UDP"), ("in_rr_tcp", "inbound TCP")], "veth", 1.2, False),
        ("HTTP connections/s relative to veth",
         [("conn4_rate", "IPv4 -c16"), ("conn6_rate", "IPv6 -c16"), ("conn256_rate", "IPv4 -c256"),
          ("in_conn_rate", "inbound -c16")], "veth", None, False),
        ("Slowest / fastest second (target >= 0.8)",
         [("conn4_stability", "IPv4 -c16"), ("conn6_stability", "IPv6 -c16"), ("conn256_stability", "IPv4 -c256")],
         None, 0.8, False),
        ("UDP 64-byte datagrams/s relative to veth", [("udp_up", "guest->host"), ("udp_down", "host->guest")],
         "veth", None, False),
        ("CPU seconds per GB in the bulk runs (lower is better)",
         [("cpu_machine_65520", "machine\n65520"), ("cpu_bench_65520", "bench procs\n65520"),
          ("cpu_tool_65520", "tool\n65520"), ("cpu_machine_1500", "machine\n1500"),
          ("cpu_bench_1500", "bench procs\n1500"), ("cpu_tool_1500", "tool\n1500")], None, None, False),
        ("Tool RSS growth per idle connection, KiB, log scale (target <= 2)",
         [("scale_rss_10k", "10k"), ("scale_rss_100k", "100k (or as many as opened)")], None, 2.0, True),
    ]
    panels = [p for p in panels if any(k in by_key for k, _ in p[1])]
    if not panels:
        return "no chart: no figures"
    cols = 2
    nrows = math.ceil(len(panels) / cols)
    fig_, axes = plt.subplots(nrows, cols, figsize=(15, 4.2 * nrows), squeeze=False)
    colors = {"loopback": "#9e9e9e", "veth": "#4c72b0", "slirp4netns": "#dd8452", "pasta": "#55a868",
              "slipway": "#c44e52", "slipway_slirp": "#8172b3"}
    for ax, (title, items, norm, line, log) in zip(axes.flat, panels):
        items = [(k, label) for k, label in items if k in by_key]
        width = 0.8 / len(systems)
        for i, s in enumerate(systems):
            ys = []
            for k, _ in items:
                v = by_key[k]["values"].get(s)
                if v is not None and norm:
                    ref = by_key[k]["values"].get(norm)
                    v = v / ref if ref else None
                ys.append(v if v is not None else 0.0)
            xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(items))]
            ax.bar(xs, ys, width, label=s, color=colors.get(s))
        if norm:
            ax.axhline(1.0, color="#4c72b0", lw=0.8, ls=":")
        if line:
            ax.axhline(line, color="black", lw=0.8, ls="--")
        if log:
            ax.set_yscale("log")
        ax.set_xticks(range(len(items)))
        ax.set_xticklabels([label for _, label in items], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig_.suptitle("slipway vs peers and the kernel (missing bar: skipped, failed or not applicable)", fontsize=10)
    fig_.tight_layout(rect=(0, 0, 1, 0.97))
    fig_.savefig(path, dpi=110)
    return None


def cmd_report(raw, meta_path, out_dir):
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    recs = load(raw) + []
    recs += derive_cpu(recs)
    systems = [s for s in SYSTEMS if s in meta.get("systems", SYSTEMS)]
    rows = build_rows(recs, systems)
    lines = table(rows, systems, meta) + notes(recs, meta)
    try:
        chart_error = chart(rows, systems, os.path.join(out_dir, "chart.png"))
    except Exception as e:  # the table and the JSON matter more than the picture
        chart_error = f"no chart: {type(e).__name__}: {e}"
    if chart_error:
        lines.append(f"  {chart_error}")
    lines.append(f"  results: {os.path.join(out_dir, 'results.json')}, "
                 f"{os.path.join(out_dir, 'chart.png') if not chart_error else '(no chart)'}")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out_dir, "table.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(dict(meta=meta, figures={k: dict(label=v["label"].strip(), unit=v["unit"],
                                                    higher_is_better=v["higher"]) for k, v in FIGURES.items()},
                       records=recs, summary=rows), f, indent=1)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    table_ = {
        "add-value": add_value, "add-status": add_status, "add-iperf": cmd_add_iperf,
        "add-sockperf": cmd_add_sockperf, "add-wrk": cmd_add_wrk, "add-udp": cmd_add_udp,
        "report": cmd_report,
    }
    if cmd not in table_:
        sys.exit(__doc__)
    if cmd == "add-value" and len(args) > 6:
        args = args[:6] + [json.loads(args[6])]
    table_[cmd](*args)


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Many idle TCP connections, for bench/run.sh (figure "scale").

  idle_conns.py serve --ports-file F --count N --seconds S
      listens on N ephemeral ports of 0.0.0.0 (written to F, comma-separated,
      once all listen), one process per port, accepts every connection and
      holds it; a connection the peer closes is closed. Exits after S seconds
      or on SIGTERM.

  idle_conns.py open --host ADDR --ports P1,P2,... --steps 10000,100000
                     --step-seconds S1,S2 --status-file F --go-file G --seconds S
      opens connections to ADDR, round-robin over the ports (one port admits
      only ~28,000 source ports from one address), at most 512 connects in
      flight per worker, each given 10 s. After each step (its count reached, its time
      S1/S2 over, or 2,000 connects failed) it writes one line to F:
          step=K target=N open=E failed=X dropped=D seconds=T
      (open: established and not closed by the other side since; dropped:
      established, then closed or reset; failed: refused, reset or timed
      out before established, counted over all steps) and, but after the
      last step, waits until G holds K before the next. After the last step
      it waits until G holds "close", closes everything and exits. Every
      wait is bounded by --seconds overall.

A process may hold only RLIMIT_NOFILE descriptors (its hard limit is all we
can raise it to; without CAP_SYS_RESOURCE it cannot go higher), so both
sides spread the connections over as many processes as that needs: the
server one per port, the client one per (hard limit - 200) connections,
each worker opening its share of every step at the same time.
Connections are idle: nothing is sent after the handshake.
"""
import argparse
import errno
import math
import os
import resource
import select
import signal
import socket
import sys
import time

CONNECT_TIMEOUT = 10.0  # seconds for one connect
MAX_IN_FLIGHT = 512     # connects not yet answered, per worker
MAX_FAILED = 2000       # a step gives up after this many failed connects
FD_MARGIN = 200         # descriptors a worker keeps for everything else


def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ------------------------------------------------------------------ server

def serve_one(listener, stop):
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns = {}
    while time.monotonic() < stop:
        for fd, _ in ep.poll(0.5, 1024):
            if fd == listener.fileno():
                for _ in range(256):  # bounded accepts per wake-up
                    try:
                        c, _ = listener.accept()
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            print(f"serve: accept: {e}", file=sys.stderr)
                            time.sleep(0.1)
                        break
                    c.setblocking(False)
                    conns[c.fileno()] = c
                    ep.register(c.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
            else:
                c = conns.pop(fd, None)
                if c is not None:
                    ep.unregister(fd)
                    c.close()


def serve(args):
    raise_nofile()
    stop = time.monotonic() + args.seconds
    listeners = []
    for _ in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 0))
        s.listen(4096)
        s.setblocking(False)
        listeners.append(s)
    children = []
    for s in listeners:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            serve_one(s, stop)
            os._exit(0)
        children.append(pid)
    write_atomic(args.ports_file, ",".join(str(s.getsockname()[1]) for s in listeners))
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(p, signal.SIGTERM) for p in children])
    for pid in children:
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


# ------------------------------------------------------------------ client

def write_atomic(path, line):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(line + "\n")
    os.rename(tmp, path)


def wait_go(path, want, stop):
    while time.monotonic() < stop:
        try:
            with open(path) as f:
                if f.read().strip() == want:
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return False


class Opener:
    """One worker's connections: opens up to a target, counts what failed."""

    def __init__(self, host, ports, first, in_flight, max_failed):
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host, self.ports, self.nth = host, ports, first
        self.in_flight, self.max_failed = in_flight, max_failed
        self.ep = select.epoll()
        self.watch = select.epoll()  # established: any event means closed or reset
        self.pending = {}  # fd -> (socket, started)
        self.established = []
        self.failed = 0

    def step(self, target, stop):
        failed0 = self.failed
        while (len(self.established) < target and self.failed - failed0 < self.max_failed
               and time.monotonic() < stop):
            while len(self.pending) < self.in_flight and len(self.established) + len(self.pending) < target:
                s = socket.socket(self.family, socket.SOCK_STREAM)
                s.setblocking(False)
                port = self.ports[self.nth % len(self.ports)]
                self.nth += 1
                try:
                    s.connect((self.host, port))
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    self.failed += 1
                    continue
                self.pending[s.fileno()] = (s, time.monotonic())
                self.ep.register(s.fileno(), select.EPOLLOUT)
            for fd, _ in self.ep.poll(0.2, 1024):
                s, _ = self.pending.pop(fd)
                self.ep.unregister(fd)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    self.established.append(s)
                    self.watch.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
                else:
                    s.close()
                    self.failed += 1
            now = time.monotonic()
            for fd, (s, started) in list(self.pending.items()):
                if now - started > CONNECT_TIMEOUT:
                    del self.pending[fd]
                    self.ep.unregister(fd)
                    s.close()
                    self.failed += 1
        # Connects still in flight when the step ends do not count.
        for fd, (s, _) in self.pending.items():
            self.ep.unregister(fd)
            s.close()
        self.pending.clear()
        dropped = len(self.watch.poll(0, max(1, len(self.established))))
        return len(self.established) - dropped, self.failed, dropped

    def close(self):
        for s in self.established:
            s.close()


def worker(args, index, workers, cmd_r, res_w):
    """Runs steps the parent sends ("TARGET STOP" or "close") on a pipe."""
    ports = [int(p) for p in args.ports.split(",")]
    opener = Opener(args.host, ports, index, MAX_IN_FLIGHT, max(1, MAX_FAILED // workers))
    cmds = os.fdopen(cmd_r)
    results = os.fdopen(res_w, "w")
    for line in cmds:
        if line.strip() == "close":
            break
        target, stop = line.split()
        open_, failed, dropped = opener.step(int(target), float(stop))
        results.write(f"{open_} {failed} {dropped}\n")
        results.flush()
    opener.close()


def open_conns(args):
    hard = raise_nofile()
    stop = time.monotonic() + args.seconds
    steps = [int(n) for n in args.steps.split(",")]
    step_seconds = [float(s) for s in args.step_seconds.split(",")]
    per_worker = max(100, hard - FD_MARGIN)
    n = max(1, math.ceil(max(steps) / per_worker), args.processes)
    workers = []  # (pid, command pipe, result pipe)
    for i in range(n):
        cr, cw = os.pipe()
        rr, rw = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(cw)
            os.close(rr)
            worker(args, i, n, cr, rw)
            os._exit(0)
        os.close(cr)
        os.close(rw)
        workers.append((pid, os.fdopen(cw, "w"), os.fdopen(rr)))
    for k, target in enumerate(steps, 1):
        t0 = time.monotonic()
        step_stop = min(stop, t0 + step_seconds[min(k - 1, len(step_seconds) - 1)])
        for i, (_, cmd, _) in enumerate(workers):
            share = target // n + (1 if i < target % n else 0)
            cmd.write(f"{share} {step_stop}\n")
            cmd.flush()
        totals = [0, 0, 0]
        for _, _, res in workers:
            line = res.readline().split()
            if len(line) == 3:
                totals = [a + int(b) for a, b in zip(totals, line)]
        write_atomic(args.status_file,
                     f"step={k} target={target} open={totals[0]} failed={totals[1]} dropped={totals[2]} "
                     f"seconds={time.monotonic() - t0:.1f} processes={n}")
        if k < len(steps) and not wait_go(args.go_file, str(k), stop):
            break
    wait_go(args.go_file, "close", stop)
    for pid, cmd, _ in workers:
        try:
            cmd.write("close\n")
            cmd.close()
        except OSError:
            pass
    for pid, _, _ in workers:
        os.waitpid(pid, 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--ports-file", required=True)
    s.add_argument("--count", type=int, default=8)
    s.add_argument("--seconds", type=float, required=True)
    o = sub.add_parser("open")
    o.add_argument("--host", required=True)
    o.add_argument("--ports", required=True)
    o.add_argument("--steps", required=True)
    o.add_argument("--step-seconds", required=True)
    o.add_argument("--status-file", required=True)
    o.add_argument("--go-file", required=True)
    o.add_argument("--seconds", type=float, required=True)
    o.add_argument("--processes", type=int, default=1, help="at least this many workers")
    args = p.parse_args()
    serve(args) if args.cmd == "serve" else open_conns(args)


if __name__ == "__main__":
    main()

"""A fixed-rate (open-loop) HTTP/1.1 load generator in the manner of wrk2, for bench/run.

Request n is due at n/rate seconds after the start, whatever happened to the others; it goes
out on the first idle keep-alive connection (at most one request in flight per connection, no
pipelining), and its latency counts from when it was due, not from when it went out: a server
that stalls cannot hide the requests that queued behind the stall (coordinated omission). The
loop busy-polls its own core (epoll with no timeout), so a request leaves within microseconds of
its due time instead of a timer tick later. Responses must carry Content-Length.
"""

from __future__ import annotations

import gc
import json
import os
import re
import select
import socket
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Outcome:
    """What one fixed-rate run saw; times in milliseconds."""

    offered: int  # requests due during the run
    answered: int
    errors: int  # non-2xx answers and requests never answered (dropped connection, timeout)
    p50_ms: float  # latency from when the request was due
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    late_p99_ms: float  # how late requests went out (waiting for an idle connection counts)


def _percentile(ordered: list[int], q: float) -> float:
    return ordered[round(q * (len(ordered) - 1))] / 1e6 if ordered else float("nan")


def request_bytes(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One POST with Content-Length, as it goes over the wire."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def run(address: tuple[str, int], request: bytes, rate: int, seconds: int,
        connections: int) -> Outcome:
    """Offer `rate` requests/s for `seconds` over `connections` keep-alive connections; wait up
    to 5 s more for the last answers."""
    socks = {sock.fileno(): sock for sock in (_connect(address) for _ in range(connections))}
    poller = select.epoll()
    for fd in socks:
        poller.register(fd, select.EPOLLIN)
    idle, waiting = deque(socks), deque[int]()
    in_flight: dict[int, int] = {}  # fd -> due time of its request
    buffers = {fd: b"" for fd in socks}
    latencies, lateness, failed = list[int](), list[int](), 0
    total, due_count, second = rate * seconds, 0, 1_000_000_000
    gc.disable()
    start = time.perf_counter_ns() + second // 100
    deadline = start + (seconds + 5) * second
    try:
        while (due_count < total or waiting or in_flight) and time.perf_counter_ns() < deadline:
            now = time.perf_counter_ns()
            while due_count < total and start + due_count * second // rate <= now:
                waiting.append(start + due_count * second // rate)
                due_count += 1
            while waiting and idle:
                fd, due = idle.popleft(), waiting.popleft()
                socks[fd].sendall(request)  # a few hundred bytes: the socket buffer takes them
                in_flight[fd] = due
                lateness.append(time.perf_counter_ns() - due)
            for fd, _ in poller.poll(0):
                data = socks[fd].recv(65536)
                done = time.perf_counter_ns()
                if not data:  # the server hung up: its request is lost; open another connection
                    poller.unregister(fd)
                    socks.pop(fd).close()
                    in_flight.pop(fd, None)
                    if fd in idle:
                        idle.remove(fd)
                    sock = _connect(address)
                    socks[sock.fileno()], buffers[sock.fileno()] = sock, b""
                    poller.register(sock.fileno(), select.EPOLLIN)
                    idle.append(sock.fileno())
                    continue
                buffer = buffers[fd] + data
                head_end = buffer.find(b"\r\n\r\n")
                length = _LENGTH.search(buffer, 0, head_end) if head_end >= 0 else None
                if length is None or len(buffer) < head_end + 4 + int(length.group(1)):
                    buffers[fd] = buffer
                    continue
                buffers[fd] = buffer[head_end + 4 + int(length.group(1)):]
                failed += not buffer.startswith(b"HTTP/1.1 2")
                latencies.append(done - in_flight.pop(fd))
                idle.append(fd)
    finally:
        gc.enable()
        poller.close()
        for sock in socks.values():
            sock.close()
    latencies.sort()
    lateness.sort()
    p50, p90, p99, p999, longest = (_percentile(latencies, q) for q in (0.5, 0.9, 0.99, 0.999, 1))
    return Outcome(total, len(latencies), failed + total - len(latencies), p50, p90, p99, p999,
                   longest, _percentile(lateness, 0.99))


def main(argv: list[str]) -> int:
    """`python -m bench.fixedrate URL RATE SECONDS CONNECTIONS`, headers `Name: value` and the
    body from the environment (BENCH_AUTH, BENCH_FORM); prints the Outcome as JSON."""
    url, rate, seconds, connections = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = request_bytes(f"{host}:{port}", parts.path, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": os.environ["BENCH_AUTH"]}, os.environ["BENCH_FORM"].encode())
    print(json.dumps(asdict(run((host, port), request, rate, seconds, connections))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

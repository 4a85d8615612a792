"""The big burst: many SSE and WebSocket subscribers, one fast burst of events, and a
check that every subscriber received every event, complete and in order.

    burst.py http://127.0.0.1:PORT [--sse 500] [--ws 500] [--events 10000] ...

Clients pushbench did not write: SSE is read with a raw asyncio socket (HTTP/1.1,
chunked decoding and event-stream parsing done here), WebSockets with the Python
`websockets` library (half text frames, half binary envelopes). Subscribers are spread
over --procs worker processes; the publisher is the main process, sending POSTs as fast
as it can over --publishers keep-alive HTTP/1.1 connections, each its own stream of
counters. Every event body is {"p": publisher, "c": counter, "pad": "..."}.

Checks, per subscriber: exactly --events events, seq 1..N without a hole, duplicate
or reordering; each publisher's counters strictly increasing and complete; the bytes
of every event identical to the log the server keeps (one CRC over all events in seq
order, compared with the log read back by short polls). Prints a summary and exits
non-zero on any failure.
"""

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import urllib.request
import zlib
from urllib.parse import urlsplit

# --- checking one subscriber's stream -------------------------------------------


class Tally:
    """What one subscriber saw, checked as it arrives."""

    __slots__ = ("closed", "counters", "crc", "done_at", "errors", "kind", "last_seq", "n", "want")

    def __init__(self, kind, want):
        self.kind = kind
        self.want = want
        self.n = 0
        self.last_seq = 0
        self.crc = 0
        self.errors = []
        self.counters = {}
        self.done_at = None
        self.closed = None

    def event(self, seq, data):
        self.n += 1
        if seq != self.last_seq + 1 and len(self.errors) < 5:
            self.errors.append(f"seq {seq} after {self.last_seq}")
        self.last_seq = seq
        self.crc = zlib.crc32(data, self.crc)
        # The counter is read without a full JSON parse: bodies start {"p":P,"c":C,
        if not data.startswith(b'{"p":'):
            self.errors.append(f"seq {seq}: unexpected body {data[:40]!r}")
            return
        comma = data.index(b",", 5)
        p = int(data[5:comma])
        end = data.index(b",", comma + 5)
        c = int(data[comma + 5 : end])
        if c != self.counters.get(p, -1) + 1 and len(self.errors) < 5:
            self.errors.append(f"publisher {p}: counter {c} after {self.counters.get(p, -1)}")
        self.counters[p] = c
        if self.n == self.want:
            self.done_at = time.time()

    def other(self, what):
        if len(self.errors) < 5:
            self.errors.append(what)

    def summary(self):
        return {
            "kind": self.kind,
            "n": self.n,
            "last_seq": self.last_seq,
            "crc": self.crc,
            "errors": self.errors,
            "counters": self.counters,
            "done_at": self.done_at,
            "closed": self.closed,
        }


# --- subscribers ----------------------------------------------------------------


async def sse_subscriber(host, port, topic, tally, opened, stop):
    """HTTP/1.1 GET of the SSE stream on a raw socket; chunked decoding and event-stream
    framing done by hand (no HTTP library between us and the bytes)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET /topics/{topic}/sse?since=0 HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if not lines[0].startswith("HTTP/1.1 200") or headers.get("content-type") != "text/event-stream":
            tally.other(f"bad response head {lines[0]!r} {headers}")
            return
        chunked = headers.get("transfer-encoding") == "chunked"
        opened()
        raw = bytearray()  # bytes off the socket (chunk framing included)
        sse = bytearray()  # the event stream after de-chunking
        while tally.n < tally.want and not stop.is_set():
            data = await reader.read(1 << 16)
            if not data:
                tally.other(f"stream ended after {tally.n} events")
                return
            if chunked:
                raw += data
                pos = 0
                while True:
                    eol = raw.find(b"\r\n", pos)
                    if eol < 0:
                        break
                    size = int(raw[pos:eol].split(b";")[0], 16)
                    if size == 0:
                        tally.other("stream ended (last chunk)")
                        return
                    if len(raw) < eol + 2 + size + 2:
                        break
                    sse += raw[eol + 2 : eol + 2 + size]
                    pos = eol + 2 + size + 2
                del raw[:pos]
            else:
                sse += data
            pos = 0
            while True:
                end = sse.find(b"\n\n", pos)
                if end < 0:
                    break
                block = bytes(sse[pos:end])
                pos = end + 2
                if block.startswith(b"id: "):
                    nl = block.index(b"\n")
                    if block[nl + 1 : nl + 7] != b"data: ":
                        tally.other(f"event without data: {block[:60]!r}")
                        continue
                    tally.event(int(block[4:nl]), block[nl + 7 :])
                elif block.startswith((b":", b"retry: ")):
                    pass
                else:
                    tally.other(f"unexpected SSE block {block[:80]!r}")
            del sse[:pos]
    finally:
        writer.close()


async def ws_subscriber(url, topic, binary, tally, opened, stop):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    prefix_len = len(b'{"seq":')
    async with connect(
        f"{url}/topics/{topic}/ws?since=0&format={'binary' if binary else 'text'}",
        ping_interval=None,  # the server pings; the library answers
        compression=None,
        max_queue=None,
    ) as ws:
        opened()
        while tally.n < tally.want and not stop.is_set():
            msg = await ws.recv(decode=False)
            if binary:
                if msg[0] != 1:
                    tally.other(f"unexpected binary frame type {msg[0]}")
                    continue
                tally.event(int.from_bytes(msg[1:9], "big"), msg[9:])
            else:
                # {"seq":N,"data":<data>}
                comma = msg.find(b",", prefix_len)
                if not msg.startswith(b'{"seq":') or msg[comma : comma + 8] != b',"data":' or msg[-1:] != b"}":
                    tally.other(f"unexpected text frame {msg[:60]!r}")
                    continue
                tally.event(int(msg[prefix_len:comma]), msg[comma + 8 : -1])
        # Everything arrived; note whether the server has already closed the socket
        # (a close frame queued behind the events), and with which code.
        try:
            await asyncio.wait_for(ws.recv(), 0.5)
        except TimeoutError:
            pass
        except ConnectionClosed as e:
            tally.closed = e.rcvd.code if e.rcvd else "no close frame"


def worker(index, args, n_sse, n_ws, ready_q, out_q):
    """One process holding n_sse SSE and n_ws WebSocket subscribers. Niced, so the
    publisher (and the server) get the CPU first and the burst stays a burst."""
    os.nice(10)
    asyncio.run(worker_main(index, args, n_sse, n_ws, ready_q, out_q))


async def worker_main(index, args, n_sse, n_ws, ready_q, out_q):
    u = urlsplit(args.base)
    ws_url = "ws://" + u.netloc
    stop = asyncio.Event()
    tallies = []
    opened = 0

    def on_open():
        nonlocal opened
        opened += 1

    tasks = []
    for i in range(n_sse + n_ws):
        kind = "sse" if i < n_sse else ("ws-binary" if (i - n_sse + index) % 2 else "ws-text")
        t = Tally(kind, args.events)
        tallies.append(t)
        if kind == "sse":
            coro = sse_subscriber(u.hostname, u.port, args.topic, t, on_open, stop)
        else:
            coro = ws_subscriber(ws_url, args.topic, kind == "ws-binary", t, on_open, stop)
        tasks.append(asyncio.create_task(guard(coro, t)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not flood the accept queue
    deadline = time.monotonic() + 60
    while opened < n_sse + n_ws and time.monotonic() < deadline and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    ready_q.put((index, opened))
    # Wait for every subscriber to finish, or the run's deadline.
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), args.timeout)
    except TimeoutError:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    out_q.put([t.summary() for t in tallies])


async def guard(coro, tally):
    try:
        await coro
    except asyncio.CancelledError:
        tally.other(f"timed out after {tally.n} events")
    except Exception as e:  # noqa: BLE001 -- a failed subscriber is a counted outcome
        tally.other(f"{type(e).__name__}: {e} after {tally.n} events")


# --- publisher --------------------------------------------------------------------


async def publisher(host, port, topic, p, counters, pad, window):
    """One keep-alive HTTP/1.1 connection posting its own counters in order, with up to
    `window` requests in flight (HTTP/1.1 pipelining: answers come back in order)."""
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST /topics/{topic}/events HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    slots = asyncio.Semaphore(window)

    async def send():
        for c in counters:
            await slots.acquire()
            body = f'{{"p":{p},"c":{c},"pad":"{pad}"}}'.encode()
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()

    async def receive():
        for _ in counters:
            status = await reader.readuntil(b"\r\n")
            if not status.startswith(b"HTTP/1.1 201"):
                raise RuntimeError(f"publish answered {status!r}")
            hdrs = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in hdrs.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            slots.release()

    try:
        await asyncio.gather(send(), receive())
    finally:
        writer.close()


async def publish_burst(args):
    u = urlsplit(args.base)
    pad = "x" * max(0, args.payload - 40)
    per = [range(p, args.events, args.publishers) for p in range(args.publishers)]
    # Publisher p sends counters 0, 1, 2, ... (its own sequence) for its share.
    await asyncio.gather(
        *(
            publisher(u.hostname, u.port, args.topic, p, range(len(per[p])), pad, args.pipeline)
            for p in range(args.publishers)
        )
    )


# --- the run ------------------------------------------------------------------------


def get(url):
    with urllib.request.urlopen(url, timeout=30) as res:
        return res.read()


def metrics(base):
    out = {}
    for line in get(f"{base}/metrics").decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def reference_log(base, topic, n):
    """The server's own log, read back by short polls: (crc over data in seq order, counts)."""
    crc, seq, events = 0, 0, []
    while seq < n:
        page = json.loads(get(f"{base}/topics/{topic}/events?since={seq}&limit=1000"))
        if not page["events"]:
            break
        for e in page["events"]:
            if e["seq"] != seq + 1:
                raise RuntimeError(f"log has seq {e['seq']} after {seq}")
            seq = e["seq"]
            events.append(e["data"])
    # Re-encode as the server stores it (compact JSON, keys in the order sent).
    for d in events:
        crc = zlib.crc32(json.dumps(d, separators=(",", ":")).encode(), crc)
    return crc, seq, events


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="pushbench base URL, http://127.0.0.1:PORT")
    ap.add_argument("--sse", type=int, default=500)
    ap.add_argument("--ws", type=int, default=500)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--payload", type=int, default=100, help="approximate event body bytes")
    ap.add_argument("--publishers", type=int, default=4, help="keep-alive publishing connections")
    ap.add_argument("--pipeline", type=int, default=16, help="requests in flight per publishing connection")
    ap.add_argument("--procs", type=int, default=2, help="subscriber worker processes")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed for delivery")
    args = ap.parse_args()
    base = args.base.rstrip("/")
    args.base = base
    # A fresh topic, so the subscribers' since=0 means exactly this burst.
    args.topic = f"burst-{int(time.time())}-{os.getpid()}"
    with urllib.request.urlopen(f"{base}/topics/{args.topic}/latest", timeout=10) as res:
        if res.status != 204:
            sys.exit(f"topic {args.topic} is not empty")

    ctx = mp.get_context("fork")
    ready_q, out_q = ctx.Queue(), ctx.Queue()
    procs = []
    for i in range(args.procs):
        n_sse = args.sse // args.procs + (1 if i < args.sse % args.procs else 0)
        n_ws = args.ws // args.procs + (1 if i < args.ws % args.procs else 0)
        pr = ctx.Process(target=worker, args=(i, args, n_sse, n_ws, ready_q, out_q), daemon=True)
        pr.start()
        procs.append(pr)
    t0 = time.time()
    opened = sum(ready_q.get(timeout=120)[1] for _ in procs)
    m0 = metrics(base)
    sse_open = m0.get('pushbench_subscribers_open{strategy="sse"}')
    ws_open = m0.get('pushbench_subscribers_open{strategy="websocket"}')
    print(
        f"subscribers connected: {opened} of {args.sse + args.ws} in {time.time() - t0:.1f} s "
        f"(server says sse {sse_open:.0f}, websocket {ws_open:.0f})",
        flush=True,
    )

    start = time.time()
    asyncio.run(publish_burst(args))
    published_at = time.time()
    pub_s = published_at - start
    print(
        f"published {args.events} events over {args.publishers} keep-alive connections "
        f"({args.pipeline} pipelined requests in flight each) in "
        f"{pub_s:.2f} s ({args.events / pub_s:.0f} events/s)",
        flush=True,
    )

    results = []
    for _ in procs:
        results += out_q.get(timeout=args.timeout + 120)
    for pr in procs:
        pr.join(30)
    m1 = metrics(base)

    crc, log_n, events = reference_log(base, args.topic, args.events)
    log_ok = log_n == args.events
    # Each publisher's counters appear in the log in order and complete.
    expect_counts = [len(range(p, args.events, args.publishers)) for p in range(args.publishers)]
    seen = [-1] * args.publishers
    for d in events:
        if d["c"] != seen[d["p"]] + 1:
            log_ok = False
        seen[d["p"]] = d["c"]
    log_ok = log_ok and [c + 1 for c in seen] == expect_counts

    bad = [
        r
        for r in results
        if r["errors"]
        or r["n"] != args.events
        or r["crc"] != crc
        or r["last_seq"] != args.events
        or [r["counters"].get(p, -1) + 1 for p in range(args.publishers)] != expect_counts
    ]
    by_kind = {}
    for r in results:
        by_kind.setdefault(r["kind"], []).append(r)
    for kind, rs in sorted(by_kind.items()):
        good = sum(r["n"] == args.events and r not in bad for r in rs)
        done = sorted(r["done_at"] - start for r in rs if r["done_at"])
        line = f"{kind:10} {good} of {len(rs)} subscribers received all {args.events} events, in order, bytes intact"
        if done:
            line += f"; last event after p50 {done[len(done) // 2]:.1f} s, max {done[-1]:.1f} s"
        print(line)
        closes = {}
        for r in rs:
            if r["closed"] is not None:
                closes[r["closed"]] = closes.get(r["closed"], 0) + 1
        if closes:
            print(
                f"{'':10} closed by the server right after the last event: "
                + ", ".join(f"{n} with code {c}" for c, n in sorted(closes.items(), key=str))
            )
    delivered = sum(r["n"] for r in results)
    print(
        f"events delivered: {delivered} of {args.events * len(results)}; "
        f"server log read back: {log_n} events, publisher counters {'in order' if log_ok else 'WRONG'}"
    )
    keys = [
        'pushbench_deliveries_total{strategy="sse"}',
        'pushbench_deliveries_total{strategy="websocket"}',
        "pushbench_slow_consumer_closes_total",
        "pushbench_heartbeat_timeouts_total",
        "pushbench_gaps_total",
    ]
    print(
        "server metrics: " + ", ".join(f"{k.replace('pushbench_', '')} {m1.get(k, 0) - m0.get(k, 0):.0f}" for k in keys)
    )
    print(
        f"server cpu {m1.get('process_cpu_seconds_total', 0) - m0.get('process_cpu_seconds_total', 0):.1f} s during the burst, "
        f"rss {m1.get('process_resident_memory_bytes', 0) / 2**20:.0f} MiB at the end"
    )
    for r in bad[:10]:
        print(f"  BAD {r['kind']}: n={r['n']} last_seq={r['last_seq']} crc_ok={r['crc'] == crc} errors={r['errors']}")
    ok = not bad and log_ok and opened == args.sse + args.ws and len(results) == args.sse + args.ws
    print("BURST OK" if ok else f"BURST FAILED: {len(bad)} subscribers incomplete or out of order")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

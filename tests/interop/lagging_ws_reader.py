"""Reproduces a server finding (not part of run.sh, which it would fail): a WebSocket
client that is alive and reading steadily, but has a backlog, is closed as dead.

    pushbench serve --addr 127.0.0.1:8080 --ws-ping 1s --ws-pong-timeout 2s &
    lagging_ws_reader.py http://127.0.0.1:8080          # about 15 s

Publishes 5,000 events of 1 kB to a new topic, then subscribes with since=0 using the
`websockets` library with its default flow control (it stops reading the socket while
16 messages wait in its queue) and reads about 400 events/s. The server's pings sit
behind the backlog in the TCP buffers, so they reach the client seconds late; the
server gives up after ping + pong timeout and closes with 4000, and its close frame,
queued behind the same backlog, is dropped after a second, so the client sees the
connection end with no close frame (1006) partway through the backlog. Exit status 0
when all events are read, 1 when the connection was cut.
"""

import asyncio
import http.client
import json
import sys
import time
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

N = 5000


async def main(base):
    u = urlsplit(base)
    topic = f"lagging-{int(time.time())}"
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    body = json.dumps({"pad": "x" * 1000})
    for _ in range(N):
        c.request("POST", f"/topics/{topic}/events", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 201, r.status
    async with connect(f"ws://{u.netloc}/topics/{topic}/ws?since=0", ping_interval=None) as ws:
        t0 = time.monotonic()
        pings = []
        inner = ws.process_event

        def process_event(event):
            if event.opcode is Opcode.PING:
                pings.append(round(time.monotonic() - t0, 1))
            inner(event)

        ws.process_event = process_event
        n = 0
        try:
            while n < N:
                await asyncio.wait_for(ws.recv(), 30)
                n += 1
                await asyncio.sleep(0.002)  # the work a real client does per event
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else "none (1006)"
            print(
                f"CUT: connection ended after {time.monotonic() - t0:.1f} s having read {n} of {N} events; "
                f"close frame received: {code}; server pings first seen at {pings} s"
            )
            return 1
    print(f"OK: read all {N} events in {time.monotonic() - t0:.1f} s; server pings seen at {pings} s")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(asyncio.run(main(sys.argv[1].rstrip("/"))))

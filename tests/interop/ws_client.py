"""WebSocket interop checks against `pushbench serve`, with the Python `websockets`
library (a client pushbench did not write).

    ws_client.py checks   http://127.0.0.1:PORT   # formats, resume, pings, publish, 1009
    ws_client.py shutdown http://127.0.0.1:PORT   # prints "ready", then expects close 1001

Prints one line per check, "ok   <what>" or "FAIL <what>: <why>", which run.sh counts.
The server is expected to run with --max-body 4096, --ws-ping 1s, --ws-pong-timeout 2s.
"""

import asyncio
import json
import sys
import time
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

STEP = 5.0  # seconds any single receive may take


def ok(name):
    print(f"ok   {name}", flush=True)


def fail(name, why):
    print(f"FAIL {name}: {why}", flush=True)


def publish(http, topic, data):
    req = urllib.request.Request(
        f"{http}/topics/{topic}/events",
        data=json.dumps(data).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=STEP) as res:
        assert res.status == 201, res.status
        return json.load(res)["seq"]


def poll(http, topic, since=0):
    with urllib.request.urlopen(f"{http}/topics/{topic}/events?since={since}", timeout=STEP) as res:
        return json.load(res)


def decode_binary(frame):
    """`0x01`, seq u64 big-endian, data; `0x02` + three u64 is a gap notice."""
    if frame[0] != 0x01:
        raise ValueError(f"unexpected binary frame type {frame[0]:#x}")
    return int.from_bytes(frame[1:9], "big"), json.loads(frame[9:])


async def recv_events(ws, n, binary=False):
    """The next n event frames as (seq, data), skipping nothing: any other frame fails."""
    out = []
    for _ in range(n):
        frame = await asyncio.wait_for(ws.recv(), STEP)
        if binary:
            if not isinstance(frame, bytes):
                raise ValueError(f"expected a binary frame, got text {frame!r}")
            out.append(decode_binary(frame))
        else:
            if not isinstance(frame, str):
                raise ValueError(f"expected a text frame, got {len(frame)} bytes")
            msg = json.loads(frame)
            out.append((msg["seq"], msg["data"]))
    return out


async def check(name, coro):
    try:
        why = await asyncio.wait_for(coro, 20)
    except Exception as e:  # noqa: BLE001 -- any exception is a failed check
        why = f"{type(e).__name__}: {e}"
    if why:
        fail(name, why)
    else:
        ok(name)


async def text_format(ws_base, http):
    for i in range(1, 4):
        publish(http, "ws-text", {"i": i})
    async with connect(f"{ws_base}/topics/ws-text/ws?since=0&format=text") as ws:
        got = await recv_events(ws, 3)
        for i in range(4, 6):
            publish(http, "ws-text", {"i": i})
        got += await recv_events(ws, 2)
    want = [(i, {"i": i}) for i in range(1, 6)]
    return None if got == want else f"got {got}, want {want}"


async def binary_format(ws_base, http):
    async with connect(f"{ws_base}/topics/ws-text/ws?since=0&format=binary") as ws:
        got = await recv_events(ws, 5, binary=True)
    want = [(i, {"i": i}) for i in range(1, 6)]
    return None if got == want else f"got {got}, want {want}"


async def since_resume(ws_base, http):
    async with connect(f"{ws_base}/topics/ws-text/ws?since=3") as ws:
        got = await recv_events(ws, 2)
        publish(http, "ws-text", {"i": 6})
        got += await recv_events(ws, 1)
    want = [(4, {"i": 4}), (5, {"i": 5}), (6, {"i": 6})]
    return None if got == want else f"got {got}, want {want}"


async def no_since_means_new_only(ws_base, http):
    async with connect(f"{ws_base}/topics/ws-text/ws") as ws:
        await asyncio.sleep(0.2)
        publish(http, "ws-text", {"i": 7})
        got = await recv_events(ws, 1)
    return None if got == [(7, {"i": 7})] else f"got {got}, want only the new seq 7"


async def app_ping(ws_base, http):
    async with connect(f"{ws_base}/topics/ws-ping/ws") as ws:
        await ws.send("ping")
        got = await asyncio.wait_for(ws.recv(), STEP)
    return None if got == "pong" else f"got {got!r}, want 'pong'"


async def protocol_ping(ws_base, http):
    async with connect(f"{ws_base}/topics/ws-ping/ws") as ws:
        waiter = await ws.ping(b"interop")
        await asyncio.wait_for(waiter, STEP)


def count_pings(ws):
    """Wraps the connection's frame handler to count the ping frames the server sends."""
    seen = {"pings": 0}
    inner = ws.process_event

    def process_event(event):
        if event.opcode is Opcode.PING:
            seen["pings"] += 1
        inner(event)

    ws.process_event = process_event
    return seen


async def server_pings(ws_base, http):
    # The client sends nothing (no pings of its own); the server pings every 1 s and
    # gives up after 2 s without a pong. websockets answers pings by itself, so the
    # socket must have seen pings and still be open and serving after 3.5 s.
    async with connect(f"{ws_base}/topics/ws-idle/ws", ping_interval=None) as ws:
        seen = count_pings(ws)
        try:
            frame = await asyncio.wait_for(ws.recv(), 3.5)
            return f"unexpected frame while idle: {frame!r}"
        except TimeoutError:
            pass
        publish(http, "ws-idle", {"still": "here"})
        got = await recv_events(ws, 1)
    if seen["pings"] < 2:
        return f"saw {seen['pings']} server pings in 3.5 s with --ws-ping 1s"
    print(f"     ({seen['pings']} server pings in 3.5 s)", flush=True)
    return None if got == [(1, {"still": "here"})] else f"got {got}"


async def deaf_peer(ws_base, http):
    # A peer that never answers pings (its pongs are dropped before they are sent):
    # the server must close it with 4000 after --ws-ping 1s + --ws-pong-timeout 2s.
    async with connect(f"{ws_base}/topics/ws-idle/ws", ping_interval=None) as ws:
        send_frame = ws.protocol.send_frame
        ws.protocol.send_frame = lambda f: None if f.opcode is Opcode.PONG else send_frame(f)
        start = time.monotonic()
        try:
            frame = await asyncio.wait_for(ws.recv(), 8)
            return f"got a frame instead of a close: {frame!r}"
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            reason = e.rcvd.reason if e.rcvd else ""
    took = time.monotonic() - start
    if code != 4000:
        return f"close code {code} ({reason!r}) after {took:.1f} s, want 4000"
    print(f"     (closed 4000 after {took:.1f} s: {reason})", flush=True)
    return None if 2.5 < took < 5 else f"closed after {took:.1f} s, want about 3 s"


async def publish_over_socket(ws_base, http):
    async with connect(f"{ws_base}/topics/ws-pub/ws?since=0") as ws:
        for i in range(3):
            await ws.send(json.dumps({"type": "publish", "data": {"via": "ws", "i": i}}))
        got = await recv_events(ws, 3)
    want = [(i + 1, {"via": "ws", "i": i}) for i in range(3)]
    if got != want:
        return f"socket got {got}, want {want}"
    polled = [(e["seq"], e["data"]) for e in poll(http, "ws-pub")["events"]]
    return None if polled == want else f"HTTP poll got {polled}"


async def fragmented_publish(ws_base, http):
    # One publish message sent as three frames (text + 2 continuations).
    async with connect(f"{ws_base}/topics/ws-frag/ws?since=0") as ws:
        await ws.send(['{"type":"publish",', '"data":{"fragmented":', "true}}"])
        got = await recv_events(ws, 1)
    return None if got == [(1, {"fragmented": True})] else f"got {got}"


async def client_close(ws_base, http):
    # The client starts the closing handshake; the server must answer it (not just drop).
    async with connect(f"{ws_base}/topics/ws-frag/ws") as ws:
        await ws.close(1000, "bye")
        sent = ws.protocol.close_rcvd
    if sent is None:
        return "no close frame came back from the server"
    return None if sent.code == 1000 else f"server answered close with {sent.code}"


async def bad_message(ws_base, http):
    async with connect(f"{ws_base}/topics/ws-pub/ws") as ws:
        await ws.send("hello?")
        got = json.loads(await asyncio.wait_for(ws.recv(), STEP))
        await ws.send("ping")
        pong = await asyncio.wait_for(ws.recv(), STEP)
    if got.get("type") != "error" or got.get("error") != "bad_message" or not got.get("detail"):
        return f"got {got}"
    return None if pong == "pong" else f"socket did not keep serving: {pong!r}"


async def too_big(ws_base, http):
    async with connect(f"{ws_base}/topics/ws-big/ws") as ws:
        await ws.send("x" * 5000)  # --max-body 4096
        try:
            frame = await asyncio.wait_for(ws.recv(), STEP)
            return f"got a frame instead of a close: {frame!r:.80}"
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            reason = e.rcvd.reason if e.rcvd else ""
            if code != 1009:
                return f"close code {code} ({reason!r}), want 1009"
            print(f"     (close 1009 reason: {reason})", flush=True)
    return None


async def many_in_order(ws_base, http):
    # 300 events published while subscribed, over both formats at once.
    async with (
        connect(f"{ws_base}/topics/ws-many/ws?format=text") as t,
        connect(f"{ws_base}/topics/ws-many/ws?format=binary") as b,
    ):
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()

        def burst():
            for i in range(300):
                publish(http, "ws-many", {"k": i})

        pub = loop.run_in_executor(None, burst)
        got_t = await recv_events(t, 300)
        got_b = await recv_events(b, 300, binary=True)
        await pub
    want = [(i + 1, {"k": i}) for i in range(300)]
    if got_t != want:
        return "text frames out of order or incomplete"
    return None if got_b == want else "binary frames out of order or incomplete"


async def checks(http):
    ws_base = "ws" + http[len("http") :]
    for name, fn in [
        ("ws text: since=0 replays 1..3, then 4..5 live, in order", text_format),
        ("ws binary: 0x01 + seq u64 BE + JSON data, 1..5 in order", binary_format),
        ("ws since=3 resumes at 4", since_resume),
        ("ws without since: only new events", no_since_means_new_only),
        ("ws app heartbeat: text 'ping' -> 'pong'", app_ping),
        ("ws ping frame answered with a pong frame", protocol_ping),
        ("ws server pings answered by the client keep an idle socket open (3.5 s)", server_pings),
        ("ws peer that never answers pings: close 4000 after ping + pong timeout", deaf_peer),
        ("ws publish over the socket: echoed to subscribers and in the log", publish_over_socket),
        ("ws publish sent as a fragmented message (3 frames) is reassembled", fragmented_publish),
        ("ws client-initiated close 1000 is answered with a close frame", client_close),
        ("ws bad client message: JSON error frame, socket stays up", bad_message),
        ("ws 300 events published while subscribed: text and binary complete, in order", many_in_order),
        ("ws oversize message (5000 > --max-body 4096): close 1009", too_big),
    ]:
        await check(name, fn(ws_base, http))


async def shutdown(http):
    ws_base = "ws" + http[len("http") :]
    name = "ws server shutdown (SIGTERM): close 1001 'server shutting down'"
    try:
        async with connect(f"{ws_base}/topics/ws-shutdown/ws") as ws:
            print("ready", flush=True)
            start = time.monotonic()
            try:
                frame = await asyncio.wait_for(ws.recv(), 15)
                fail(name, f"got a frame: {frame!r}")
                return
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
                reason = e.rcvd.reason if e.rcvd else ""
        took = time.monotonic() - start
        if code == 1001:
            ok(f"{name} (reason {reason!r})")
        else:
            fail(name, f"close code {code} reason {reason!r} after {took:.1f} s")
    except Exception as e:  # noqa: BLE001
        fail(name, f"{type(e).__name__}: {e}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("checks", "shutdown"):
        sys.exit(__doc__)
    http = sys.argv[2].rstrip("/")
    asyncio.run(checks(http) if sys.argv[1] == "checks" else shutdown(http))


if __name__ == "__main__":
    main()

"""Browser interop checks: headless Chromium's own EventSource, WebSocket, fetch and
sendBeacon against `pushbench serve`, driven over the DevTools protocol (with the
`websockets` library; no npm, no webdriver).

    browser_check.py --bin target/debug/pushbench [--chromium /usr/bin/chromium]

The page (browser/page.html) is served by Python's http.server on one loopback port and
pushbench listens on another, so every request is cross-origin (CORS and the Origin
checks are exercised). This script starts and stops its own pushbench servers (it
restarts one to watch EventSource resume). Prints "ok   <what>" / "FAIL <what>: <why>".
"""

import argparse
import asyncio
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

HERE = Path(__file__).resolve().parent
PASSED = []
FAILED = []


def result(name, why):
    if why:
        FAILED.append(name)
        print(f"FAIL {name}: {why}", flush=True)
    else:
        PASSED.append(name)
        print(f"ok   {name}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def publish(base, topic, data):
    req = urllib.request.Request(
        f"{base}/topics/{topic}/events",
        data=json.dumps(data).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as res:
        return json.load(res)["seq"]


def metric(base, name):
    _, body = http_get(f"{base}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Pushbench:
    """One `pushbench serve` process on a fixed port (so it can be restarted on it)."""

    def __init__(self, binary, port, *extra):
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [
                binary,
                "serve",
                "--addr",
                f"127.0.0.1:{port}",
                "--sse-retry",
                "300ms",
                "--sse-heartbeat",
                "1s",
                "--shutdown-deadline",
                "2s",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                if http_get(f"{self.base}/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"pushbench did not start on {self.base}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Cdp:
    """A minimal DevTools protocol client: calls by id, events kept in a list."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending = {}
        self.events = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            else:
                self.events.append(msg)

    async def call(self, method, params=None, timeout=20):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        msg = await asyncio.wait_for(fut, timeout)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]

    async def eval(self, expr, timeout=20):
        r = await self.call(
            "Runtime.evaluate",
            {"expression": expr, "awaitPromise": True, "returnByValue": True},
            timeout,
        )
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise RuntimeError(d.get("exception", {}).get("description") or d.get("text"))
        return r["result"].get("value")


async def start_chromium(chromium, profile):
    proc = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    port_file = Path(profile) / "DevToolsActivePort"
    for _ in range(300):
        if port_file.exists() and port_file.read_text().strip():
            break
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError("chromium did not open its DevTools port within 30 s")
    port = int(port_file.read_text().split()[0])
    for _ in range(50):
        _, body = http_get(f"http://127.0.0.1:{port}/json/list")
        pages = [t for t in json.loads(body) if t.get("type") == "page"]
        if pages:
            return proc, pages[0]["webSocketDebuggerUrl"]
        await asyncio.sleep(0.1)
    raise RuntimeError("chromium has no page target")


def serve_page():
    handler = functools.partial(QuietHandler, directory=str(HERE / "browser"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def events_ok(got, want):
    got = [(e["seq"], e["data"]) for e in got]
    return None if got == want else f"got {len(got)} events {got[:5]}..., want {len(want)} {want[:5]}..."


async def run(args):
    page_server = serve_page()
    origin = f"http://127.0.0.1:{page_server.server_address[1]}"
    port = free_port()
    pb = Pushbench(args.bin, port)
    RUNNING.append(pb)
    base = pb.base
    profile = tempfile.mkdtemp(prefix="pushbench-chromium.")
    chrome = None
    try:
        chrome, ws_url = await start_chromium(args.chromium, profile)
        CHROME.append(chrome)
        async with connect(ws_url, max_size=None, ping_interval=None) as ws:
            cdp = Cdp(ws)
            await cdp.call("Network.enable")
            await cdp.call("Log.enable")
            await cdp.call("Page.navigate", {"url": f"{origin}/page.html"})
            for _ in range(100):
                if await cdp.eval("document.readyState === 'complete' && typeof startStreams === 'function'"):
                    break
                await asyncio.sleep(0.1)
            print(
                f"     (page {origin}/page.html, pushbench {base}, {await cdp.eval('navigator.userAgent')})", flush=True
            )
            await checks(cdp, args, pb, base, port, origin)
    finally:
        if chrome is not None:
            try:
                os.killpg(chrome.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                chrome.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(chrome.pid, signal.SIGKILL)
                chrome.wait()
        page_server.shutdown()
        for server in RUNNING:
            server.stop()
        shutil.rmtree(profile, ignore_errors=True)


RUNNING = []  # pushbench servers now running
CHROME = []  # the Chromium process, once started


async def checks(cdp, args, pb, base, port, origin):
    topic = "browser"
    log = await cdp.eval(f"startStreams({json.dumps(base)}, {json.dumps(topic)})")
    result(
        "browser: EventSource and WebSockets (text, binary) open from another origin",
        None if log["esOpens"] >= 1 and log["wsOpen"] and log["wsbOpen"] else f"log {log}",
    )

    want = [(k + 1, {"i": k}) for k in range(50)]
    for k in range(50):
        publish(base, topic, {"i": k})
    log = await cdp.eval("until(() => log.es.length >= 50 && log.ws.length >= 50 && log.wsb.length >= 50, 10000)")
    result("browser: EventSource got 50 events in order (id = seq, data intact)", events_ok(log["es"], want))
    result("browser: WebSocket text got 50 events in order", events_ok(log["ws"], want))
    result("browser: WebSocket binary (arraybuffer) got 50 events in order", events_ok(log["wsb"], want))

    r = await cdp.eval(
        f"fetch({json.dumps(base + '/topics/browser/events?since=10&limit=5')})"
        ".then(r => r.json().then(j => ({status: r.status, etag: r.headers.get('ETag'), j})))"
    )
    seqs = [e["seq"] for e in r["j"]["events"]]
    result(
        "browser: fetch() short poll from another origin (CORS): 200, seq 11..15, ETag readable",
        None if r["status"] == 200 and seqs == [11, 12, 13, 14, 15] and r["etag"] else f"got {r}",
    )
    r = await cdp.eval(
        f"fetch({json.dumps(base + '/topics/browser/events')}, {{method: 'POST', "
        "headers: {'Content-Type': 'application/json'}, body: JSON.stringify({i: 50})})"
        ".then(r => r.json().then(j => ({status: r.status, j})))"
    )
    log = await cdp.eval("until(() => log.es.length >= 51 && log.ws.length >= 51 && log.wsb.length >= 51, 5000)")
    want.append((51, {"i": 50}))
    streams_ok = all(events_ok(log[k], want) is None for k in ("es", "ws", "wsb"))
    result(
        "browser: fetch() publish with a CORS preflight: 201 {seq: 51}, seen on all three streams",
        None if r == {"status": 201, "j": {"seq": 51}} and streams_ok else f"got {r}, streams ok {streams_ok}",
    )

    # The app-level heartbeat browsers need (they cannot send ping frames), and a
    # publish over the socket, which every stream then sees as seq 52.
    log = await cdp.eval(
        "ws.send('ping'), ws.send(JSON.stringify({type: 'publish', data: {i: 51}})),"
        " until(() => log.pongs >= 1 && log.es.length >= 52 && log.ws.length >= 52 && log.wsb.length >= 52, 5000)"
    )
    want.append((52, {"i": 51}))
    result(
        "browser: WebSocket text 'ping' is answered 'pong'; a publish sent over it reaches all three streams",
        None
        if log["pongs"] == 1 and all(events_ok(log[k], want) is None for k in ("es", "ws", "wsb"))
        else f"pongs {log['pongs']}, counts {[len(log[k]) for k in ('es', 'ws', 'wsb')]}",
    )

    text = "beacon from a browser"
    sent = await cdp.eval(f"navigator.sendBeacon({json.dumps(base + '/beacon')}, {json.dumps(text)})")
    count = None
    for _ in range(30):
        count = metric(base, "pushbench_beacons_total")
        if count == 1:
            break
        await asyncio.sleep(0.1)
    result(
        f"browser: navigator.sendBeacon() is accepted and counted (pushbench_beacons_total 1, {len(text)} bytes)",
        None
        if sent and count == 1 and metric(base, "pushbench_beacon_bytes_total") == len(text)
        else f"sendBeacon returned {sent}, count {count}",
    )

    # Restart: the WebSockets get 1001, the EventSource reconnects by itself and sends
    # Last-Event-ID: 52. The new server's log is empty, so it answers with event: gap
    # naming requested=52, then streams the new log from seq 1.
    rc = pb.stop()
    RUNNING.remove(pb)
    log = await cdp.eval("until(() => log.wsClose && log.wsbClose, 5000)")
    result(
        "browser: WebSockets see close 1001 when the server shuts down",
        None
        if rc == 0 and log["wsClose"] and log["wsClose"]["code"] == 1001 and log["wsbClose"]["code"] == 1001
        else f"server status {rc}, closes {log['wsClose']} {log['wsbClose']}",
    )
    pb2 = Pushbench(args.bin, port)
    RUNNING.append(pb2)
    log = await cdp.eval("until(() => log.esGaps.length >= 1, 10000)")
    gap = log["esGaps"][0] if log["esGaps"] else None
    result(
        "browser: EventSource reconnects after a server restart and sends Last-Event-ID: 52 "
        "(the new, empty log answers event: gap requested=52)",
        None
        if gap == {"type": "gap", "requested": 52, "first_seq": 1, "last_seq": 0} and log["esOpens"] >= 2
        else f"gaps {log['esGaps']}, opens {log['esOpens']}, errors {log['esErrors']}",
    )
    for k in range(3):
        publish(base, topic, {"i": 100 + k})
    log = await cdp.eval("until(() => log.es.length >= 55, 5000)")
    result(
        "browser: ... and then receives the restarted log's events 1..3",
        events_ok(log["es"][52:], [(k + 1, {"i": 100 + k}) for k in range(3)]),
    )
    await cdp.eval("es.close(), true")

    # --allow-origin naming some other origin: this page's streams are refused with 403.
    pb2.stop()
    RUNNING.remove(pb2)
    other = "http://some-other-origin.example"
    port3 = free_port()
    pb3 = Pushbench(args.bin, port3, "--allow-origin", other)
    RUNNING.append(pb3)
    base3 = pb3.base
    cdp.events.clear()
    r = await cdp.eval(f"probeRefused({json.dumps(base3)}, 'browser')")
    if os.environ.get("DEBUG_CDP"):
        for e in cdp.events:
            print("     ", json.dumps(e)[:600])
    # The refused response has no Access-Control-Allow-Origin, so the browser reports it
    # as a CORS failure; DevTools still shows the status it got (responseReceivedExtraInfo).
    sse_ids = {
        e["params"]["requestId"]
        for e in cdp.events
        if e.get("method") == "Network.requestWillBeSent" and "/topics/browser/sse" in e["params"]["request"]["url"]
    }
    statuses = [
        e["params"]["statusCode"]
        for e in cdp.events
        if e.get("method") == "Network.responseReceivedExtraInfo" and e["params"]["requestId"] in sse_ids
    ]
    console = [e["params"]["errorMessage"] for e in cdp.events if e.get("method") == "Network.webSocketFrameError"]
    result(
        "browser: with --allow-origin <other>, EventSource is refused with 403 (readyState CLOSED, never open)",
        None
        if statuses and set(statuses) == {403} and r["esState"] == 2 and not r["esOpened"]
        else f"statuses {statuses}, probe {r}",
    )
    result(
        "browser: with --allow-origin <other>, WebSocket handshake is refused with 403 (never open, close 1006)",
        None
        if not r["wsOpened"]
        and r["wsClose"]
        and r["wsClose"]["code"] == 1006
        and any("Unexpected response code: 403" in c for c in console)
        else f"probe {r}, DevTools errors {console}",
    )
    status, body = http_get(f"{base3}/topics/browser/sse", {"Origin": origin})
    refused = status == 403 and json.loads(body).get("error") == "origin_not_allowed"
    errors = metric(base3, "pushbench_client_errors_total")
    result(
        "allow-origin: the page's Origin gets 403 origin_not_allowed; server counted the browser's 2 refusals",
        None if refused and errors is not None and errors >= 3 else f"got {status} {body[:200]!r}, 4xx count {errors}",
    )
    r = await cdp.eval(
        f"fetch({json.dumps(base3 + '/topics/browser/events')}).then(r => 'read ' + r.status, e => 'blocked: ' + e)"
    )
    result(
        "browser: with --allow-origin <other>, a fetch() poll from this page is blocked by CORS",
        None if r.startswith("blocked") else f"got {r}",
    )
    pb3.stop()
    RUNNING.remove(pb3)

    # ... and with --allow-origin naming this page's origin, the same page is served.
    pb4 = Pushbench(args.bin, free_port(), "--allow-origin", other, "--allow-origin", origin)
    RUNNING.append(pb4)
    log = await cdp.eval(f"startStreams({json.dumps(pb4.base)}, 'allowed')")
    publish(pb4.base, "allowed", {"i": 0})
    log = await cdp.eval("until(() => log.es.length >= 1 && log.ws.length >= 1 && log.wsb.length >= 1, 5000)")
    r = await cdp.eval(
        f"fetch({json.dumps(pb4.base + '/topics/allowed/events')})"
        ".then(r => r.json().then(j => ({status: r.status, n: j.events.length})), e => 'blocked: ' + e)"
    )
    result(
        "browser: with --allow-origin <this page>, EventSource, WebSockets and fetch() all work",
        None
        if all(events_ok(log[k], [(1, {"i": 0})]) is None for k in ("es", "ws", "wsb")) and r == {"status": 200, "n": 1}
        else f"log {log}, fetch {r}",
    )
    await cdp.eval("es.close(), ws.close(), wsb.close(), true")


def on_term(*_):
    """SIGTERM (from `timeout`): stop Chromium and the servers started here, then exit."""
    if CHROME:
        try:
            os.killpg(CHROME[0].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for server in RUNNING:
        server.proc.kill()
    os._exit(143)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the pushbench binary")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    try:
        asyncio.run(asyncio.wait_for(run(args), 100))
    except Exception as e:  # noqa: BLE001 -- report, do not hide, a broken harness
        result("browser checks ran to the end", f"{type(e).__name__}: {e}")
    raise SystemExit(1 if FAILED else 0)


if __name__ == "__main__":
    main()

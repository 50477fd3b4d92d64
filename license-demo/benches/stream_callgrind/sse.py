# One of the callgrind harness's raw SSE readers (see run.sh): N connections to /realtime/stream,
# counting frames; prints "UNIX_TIME FRAMES" every 0.25 s for SECS seconds.
# usage: sse.py HOST PORT N SECS
import asyncio, sys, time
host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
frames = 0
async def client():
    global frames
    r, w = await asyncio.open_connection(host, port)
    w.write(f"GET /realtime/stream HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await w.drain()
    end = time.time() + secs
    while time.time() < end:
        try:
            data = await asyncio.wait_for(r.read(65536), timeout=max(0.01, end - time.time()))
        except asyncio.TimeoutError:
            break
        if not data: break
        frames += data.count(b"\nid: ") + data.startswith(b"id: ")
    w.close()
async def ticker():
    end = time.time() + secs
    while time.time() < end:
        print(f"{time.time():.3f} {frames}", flush=True)
        await asyncio.sleep(0.25)
async def main():
    await asyncio.gather(ticker(), *[client() for _ in range(n)])
asyncio.run(main())

#!/usr/bin/env python3
"""A TCP proxy on loopback that counts the bytes going each way, for the benchmarks.

    count_proxy.py TARGET_HOST:PORT STATS_FILE

Listens on 127.0.0.1 on a free port and prints `listening on ADDR` as its first line; every
connection is forwarded to TARGET. STATS_FILE always holds one line, `UP DOWN OPEN`: the bytes
sent by clients (master to agent) and by the target (agent to master) since the start, and the
connections still open. Counted are the bytes of the TCP streams (gRPC with its HTTP/2 framing,
TLS if any), without the TCP/IP headers.
"""
import asyncio
import os
import sys

host, port = sys.argv[1].rsplit(":", 1)
stats = sys.argv[2]
counts = {"up": 0, "down": 0, "open": 0}


def dump():
    with open(stats + ".tmp", "w") as f:
        f.write(f"{counts['up']} {counts['down']} {counts['open']}\n")
    os.replace(stats + ".tmp", stats)


async def pipe(reader, writer, direction):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            counts[direction] += len(data)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def handle(client_reader, client_writer):
    counts["open"] += 1
    dump()
    try:
        target_reader, target_writer = await asyncio.open_connection(host, int(port))
    except OSError:
        client_writer.close()
        counts["open"] -= 1
        dump()
        return
    await asyncio.gather(
        pipe(client_reader, target_writer, "up"),
        pipe(target_reader, client_writer, "down"),
    )
    client_writer.close()
    target_writer.close()
    counts["open"] -= 1
    dump()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    address = server.sockets[0].getsockname()
    dump()
    print(f"listening on {address[0]}:{address[1]}", flush=True)
    await server.serve_forever()


asyncio.run(main())

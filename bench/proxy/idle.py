# SPDX-License-Identifier: Apache-2.0
"""Idle connections against serve-local, driven by idle.sh.

  idle.py HOST PORT COUNT RATE SOURCES STATUS_FILE

Opens COUNT connections to HOST:PORT, RATE a second (at most 256 connecting at once, 5 s each),
from SOURCES loopback source addresses (1: the system's choice; else 127.0.0.2 … round robin,
so that a per-address connection cap does not refuse them), sends each a partial request head
with no token ("POST /v1/messages HTTP/1.1\\r\\nHost: x\\r\\n", never finished) and then nothing,
and holds them until SIGTERM. A connection the server closes (or answers) counts as closed.
Every 0.2 s STATUS_FILE is replaced by one JSON line: opened, held (open now), failed (could
not connect), closed (by the server), answered (the server sent bytes first, e.g. a 408) and
done (every connection attempted). asyncio on epoll: 10 000 idle sockets cost no CPU.
"""
import asyncio
import json
import os
import resource
import signal
import sys
import time

HEAD = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"


class Holder:
    def __init__(self):
        self.opened = self.failed = self.closed = self.answered = 0
        self.done = False

    def status(self):
        return {"opened": self.opened, "held": self.opened - self.closed, "failed": self.failed,
                "closed": self.closed, "answered": self.answered, "done": self.done}

    async def hold(self, host, port, source, gate):
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, local_addr=source), 5)
                writer.write(HEAD)
                await writer.drain()
            except (OSError, asyncio.TimeoutError):
                self.failed += 1
                return
        self.opened += 1
        try:
            answered = False
            while await reader.read(4096):
                answered = True
            self.answered += answered
        except OSError:
            pass
        self.closed += 1
        writer.close()


async def write_status(holder, path):
    while True:
        with open(path + ".tmp", "w") as out:
            out.write(json.dumps(holder.status()) + "\n")
        os.replace(path + ".tmp", path)
        await asyncio.sleep(0.2)


async def run(host, port, count, rate, sources, path):
    holder, gate, tasks = Holder(), asyncio.Semaphore(256), []
    status = asyncio.create_task(write_status(holder, path))
    start = time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        source = (f"127.0.0.{2 + i % sources}", 0) if sources > 1 else None
        tasks.append(asyncio.create_task(holder.hold(host, port, source, gate)))
    while holder.opened + holder.failed < count:
        await asyncio.sleep(0.05)
    holder.done = True
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    status.cancel()


def main():
    if len(sys.argv) != 7:
        sys.exit(f"usage: {sys.argv[0]} HOST PORT COUNT RATE SOURCES STATUS_FILE")
    host, port, count, rate, sources, path = sys.argv[1:]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(run(host, int(port), int(count), float(rate), int(sources), path))


if __name__ == "__main__":
    main()

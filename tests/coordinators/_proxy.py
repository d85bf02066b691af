"""A TCP proxy on loopback between beat and a real server: added latency, and stalls.

``delay`` seconds are added to every chunk in each direction (order kept), like a network
round trip of ``2 * delay``. :meth:`LatencyProxy.hold` stalls all traffic (bytes are kept,
not dropped) until :meth:`LatencyProxy.release`, which makes "a claim that is still on its
way" a state a test can hold on to.
"""

from __future__ import annotations

import asyncio
import contextlib


class LatencyProxy:
    def __init__(self, target_port: int, *, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> LatencyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def hold(self) -> None:
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                await self._flowing.wait()
                sink.write(chunk)
                await sink.drain()

        delivering = loop.create_task(deliver())
        try:
            while chunk := await source.read(65536):
                queue.put_nowait((loop.time() + self.delay, chunk))
            queue.put_nowait((0.0, b""))
            await delivering
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            delivering.cancel()
            with contextlib.suppress(BaseException):
                await delivering
            sink.close()

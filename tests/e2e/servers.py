"""Real `handoff serve` processes for the end-to-end tests that need several (replicas, races)."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.e2e.test_cli import HANDOFF

SERVING = re.compile(r"handoff serving on http://\S+:(\d+) ")


class Replica:
    def __init__(
        self,
        process: asyncio.subprocess.Process,
        url: str,
        output: list[str],
        reader: asyncio.Task[None],
    ) -> None:
        self.process, self.url, self.output = process, url, output
        self.reader = reader  # done when the server's output reached its end (no writer left)


@asynccontextmanager
async def replica(env: dict[str, str], cwd: Path) -> AsyncIterator[Replica]:
    """A `handoff serve` on a free port until the block ends (then SIGTERM, or kill after
    30 s); its process, base URL and output so far."""
    process = await asyncio.create_subprocess_exec(
        *HANDOFF,
        "serve",
        env={**env, "HOST": "127.0.0.1", "PORT": "0"},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            output.append(raw.decode(errors="replace"))
            found = SERVING.search(output[-1])
            if found and not port.done():
                port.set_result(int(found.group(1)))
        if not port.done():
            port.set_exception(AssertionError("handoff serve exited:\n" + "".join(output)))

    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(60):
            url = f"http://127.0.0.1:{await port}"
        yield Replica(process, url, output, reader)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await process.wait()
                await reader
        finally:
            if process.returncode is None:
                process.kill()

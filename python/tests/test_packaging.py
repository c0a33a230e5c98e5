"""The package as users get it: mypy --strict clean, and installed with pip
into fresh virtual environments without a package index."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import PYTHON_DIR, Server


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p  # type: ignore[no-any-return]


def test_mypy_strict(tmp_path: Path) -> None:
    # The package with --strict as is; the locustfile too, except that
    # locust's own between() and User.__init__ carry no annotations.
    cache = str(tmp_path / "mypy-cache")  # not in the source tree
    for args in (["net001"], ["--allow-untyped-calls", "locustfile.py"]):
        p = run(
            [sys.executable, "-m", "mypy", "--strict", "--cache-dir", cache, *args],
            cwd=PYTHON_DIR,
        )
        assert "Success: no issues found" in p.stdout, p.stdout


USE_IT = textwrap.dedent(
    """
    import asyncio, sys
    import net001
    from net001 import BinaryProtocolClient
    from net001.sync import BinaryProtocolClient as SyncClient

    port = int(sys.argv[1])

    async def main() -> None:
        async with BinaryProtocolClient("127.0.0.1", port) as a, \\
                BinaryProtocolClient("127.0.0.1", port) as b:
            pong = await a.ping()
            assert pong.latency_ms > 0
            assert await a.echo(b"installed") == b"installed"
            await b.ping()
            await a.broadcast(b"to b")
            assert await b.next_broadcast(10) == b"to b"

    asyncio.run(main())
    with SyncClient("127.0.0.1", port) as s:
        assert s.echo(b"sync") == b"sync"
    print(net001.__file__)
    """
)


def check_installed(venv: Path, server: Server, tmp: Path) -> None:
    py = venv / "bin" / "python"
    script = tmp / "use_it.py"
    script.write_text(USE_IT)
    # Run outside the checkout: the installed copy must be the one used.
    p = run([str(py), str(script), str(server.port)], cwd=tmp)
    where = Path(p.stdout.strip().splitlines()[-1]).resolve()
    assert where.is_relative_to(venv.resolve()), where
    assert (where.parent / "py.typed").is_file()
    show = run([str(py), "-m", "pip", "show", "net001"], cwd=tmp).stdout
    assert "Version: 0.1.0" in show and "Requires: \n" in show + "\n", show


def test_pip_install_no_build_isolation(server: Server, tmp_path: Path) -> None:
    # The README's form: Debian's hatchling seen through the system site.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    run(
        [str(venv / "bin" / "pip"), "install", "--no-index", "--no-build-isolation",
         str(PYTHON_DIR)],
        cwd=tmp_path,
    )
    check_installed(venv, server, tmp_path)


def test_wheel_into_isolated_venv(server: Server, tmp_path: Path) -> None:
    # A wheel built by hatchling, installed where nothing else is: the
    # client needs nothing outside the standard library.
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=PYTHON_DIR)
    wheels = list(dist.glob("net001-0.1.0-py3-none-any.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    venv = tmp_path / "isolated"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "--no-index", str(wheels[0])], cwd=tmp_path)
    check_installed(venv, server, tmp_path)

"""The ``phix`` command line (the serve command itself runs in tests/e2e)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from phix.cli import build_parser, main


def test_serve_arguments() -> None:
    args = build_parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--port", "8181", "--data-dir", "/tmp/x", "--workers", "2", "--demo"]
    )
    assert args.command == "serve"
    assert (args.host, args.port, args.data_dir, args.workers, args.demo) == (
        "0.0.0.0",
        8181,
        Path("/tmp/x"),
        2,
        True,
    )
    defaults = build_parser().parse_args(["serve"])
    assert (defaults.host, defaults.port, defaults.data_dir, defaults.workers, defaults.demo) == (
        None,
        None,
        None,
        None,
        False,
    )


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "serve" in capsys.readouterr().err


def test_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "eighty"])
    assert exit_.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--data-dir", "--workers", "--demo"):
        assert option in out


def test_serve_gives_up_with_a_clear_error_when_the_external_database_stays_unreachable(
    tmp_path: Path,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = closed.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHIX_")}
        env["PHIX_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{port}/phix"
        env["PHIX_DB__CONNECT_WAIT"] = "1"  # default 60 s: a database starting after phix is waited for
        result = subprocess.run(
            [sys.executable, "-m", "phix.cli", "serve", "--port", "1", "--data-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"phix: database 127.0.0.1:{port}/phix not reachable after 1 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pg").exists()  # no embedded server was started

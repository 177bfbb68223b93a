"""``python -m gateway``: the gateway's process, which `wastebank gateway` becomes (it execs this
module with its arguments). Typer reads a command's values through pydantic; started here, the
gateway that runs for months on a Pi imports neither (~12 MB, docs/scaling.md).

Options: ``--config/-c FILE`` (or ``$WASTEBANK_CONFIG``), ``--verbose``, ``--log-format text|json``.
Settings that do not load are one message and exit status 2, as for every `wastebank` command.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from wastebank.errors import WastebankError
from wastebank.process import FAILED, private_files, setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wastebank gateway",
        description="Jalankan gateway bank sampah / run a waste-bank gateway: serial scale -> "
        "outbox -> MQTT.",
    )
    parser.add_argument(
        "--config", "-c", type=Path, help="TOML settings file (or WASTEBANK_CONFIG)"
    )
    parser.add_argument("--verbose", action="store_true", help="log DEBUG lines too")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text, or json: one JSON object per line (for a log collector)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the gateway until it is stopped; the exit status."""
    args = _parser().parse_args(argv)
    private_files()
    setup_logging(args.verbose, json=args.log_format == "json")
    from gateway.run import run
    from gateway.settings import GatewaySettings
    from wastebank.config import load_settings

    try:
        settings = load_settings(GatewaySettings, args.config)
        asyncio.run(run(settings))
    except WastebankError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())

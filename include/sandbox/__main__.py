"""CLI: `python -m sandbox serve [--host H] [--port P] [--scenario PATH] [--port-file PATH]`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from sandbox.scenario import DEFAULT_SCENARIO_PATH
from sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local stand-in for SaaS audit log APIs.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--scenario", default=DEFAULT_SCENARIO_PATH, help="YAML/JSON scenario file")
    serve.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    serve.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    with SandboxServer(args.scenario, args.host, args.port) as server:
        if args.port_file:
            tmp = f"{args.port_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(f"{server.port}\n")
            os.replace(tmp, args.port_file)
        print(f"sandbox listening on {server.url}", flush=True)
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

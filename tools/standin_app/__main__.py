"""``python -m standin_app --appsettings PATH --port N [--host H] [--pidfile F]``.

Exit status: 0 after SIGTERM/SIGINT, 2 when the configuration is missing or invalid (nothing is
served then). A database that cannot be reached does not stop it from starting: ``/health``
answers 503 until it can, as an ASP.NET application's health check would.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from standin_app.config import ConfigurationError, load_configuration, resolve
from standin_app.server import StandinWebApi, make_server

PROG = "standin-webapi"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Stand-in for the ClassifiedAds WebAPI: products and audit entries over HTTP.",
        epilog="Connection strings: Modules:<Module>:ConnectionStrings:Default (one database per module) or "
               "ConnectionStrings:Default (one database, a schema per module) from --appsettings, overridden by "
               "environment variables such as ConnectionStrings__Default, as .NET's configuration does.")
    parser.add_argument("--appsettings", metavar="PATH", help="appsettings.json to read (optional: env only)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    parser.add_argument("--pidfile", metavar="FILE", help="write the process id here once listening")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = resolve(load_configuration(args.appsettings, os.environ))
    except ConfigurationError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    server = make_server(StandinWebApi(config), args.host, args.port)
    for key, store in config.public_view()["stores"].items():
        print(f"{PROG}: {config.layout} layout, {key} store: {store['host']}:{store['port']} database "
              f"{store['database']} schema {store['schema']} as {store['username']} "
              f"(from {store['connection_string_from']})", flush=True)

    def stop(_signum, _frame):
        # shutdown() waits for serve_forever() to return: it must not run on the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pidfile = Path(args.pidfile) if args.pidfile else None
    if pidfile:
        partial = pidfile.with_name(pidfile.name + ".partial")
        partial.write_text(f"{os.getpid()}\n")
        partial.replace(pidfile)
    print(f"Now listening on: http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if pidfile and pidfile.is_file() and pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink()
    print(f"{PROG}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

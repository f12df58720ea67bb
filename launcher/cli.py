"""The ``lvi`` command: run one component, the whole stack, or manage models.

lvi worker NAME [--host H] [--port P]    (NAME: a worker of lvi.registry)
lvi gateway [--host H] [--port P]
lvi frontend [--host H] [--port P]
lvi models build-tiny [DIR] [--only NAME ...]
lvi models pull [--profile P] [--only WORKER ...] [--check]
lvi up [--profile auto|P] [--host H] [--port-offset N] [--ephemeral-store] [--single-user]
lvi users hash-password [--stdin] [--user NAME [--principal P]]
lvi users add NAME [--principal P] --file F [--stdin]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from launcher.serve import serve
from lvi import registry

WORKERS: tuple[str, ...] = registry.WORKER_NAMES
"""The ``lvi worker`` choices: every worker of :mod:`lvi.registry`."""


def _settings(ref: str, component: str, args: argparse.Namespace, **overrides: Any) -> Any:
    """The settings class ``ref`` built with the command's ``--host``/``--port`` (and any
    other ``overrides``) on top of the environment; logging configured from them."""
    from lvi.logs import configure_logging

    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = registry.load(ref)(**overrides)
    configure_logging(component, settings.log_level, settings.log_json)
    return settings


def cmd_worker(args: argparse.Namespace) -> int:
    spec = registry.get(args.name)
    profile = {"profile": args.profile} if args.profile else {}
    settings = _settings(spec.settings, args.name, args, **profile)
    app = registry.load(spec.app)(settings)
    return serve(app, settings.host, settings.port, settings.log_level, worker=True)


def cmd_gateway(args: argparse.Namespace) -> int:
    settings = _settings("gateway.settings:GatewaySettings", "gateway", args)
    create_app = registry.load("gateway.app:create_app")
    # The app trusts X-Forwarded-For only from GATEWAY_FORWARDED_ALLOW_IPS, not uvicorn's default.
    app = create_app(settings)
    return serve(app, settings.host, settings.port, settings.log_level, proxy_headers=False)


def cmd_frontend(args: argparse.Namespace) -> int:
    settings = _settings("frontend.settings:FrontendSettings", "frontend", args)
    # One line per gateway call is noise at INFO; failures still reach the user and the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    create_server = registry.load("frontend.app:create_server")
    return serve(create_server(settings), settings.host, settings.port, settings.log_level)


def cmd_build_tiny(args: argparse.Namespace) -> int:
    from lvi import tiny
    from lvi.settings import default_cache_dir

    root = Path(args.dir) if args.dir else default_cache_dir() / "tiny"
    built = tiny.build_all(root, args.only or None)
    for name, path in built.items():
        print(f"{name}\t{path}")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from launcher.models import pull
    from lvi.settings import default_profile

    return pull(args.profile or default_profile(), args.only or None, check_only=args.check)


def cmd_up(args: argparse.Namespace) -> int:
    from launcher.supervisor import UpOptions, up

    options = UpOptions(
        profile=args.profile,
        host=args.host,
        port_offset=args.port_offset,
        timeout=args.timeout,
        grace=args.grace,
        only=args.only or None,
        ephemeral_store=args.ephemeral_store,
        single_user=args.single_user,
        max_crashes=args.max_crashes,
        crash_window_s=args.crash_window,
    )
    return up(options)


def cmd_users(args: argparse.Namespace) -> int:
    from launcher import users

    try:
        password = users.read_password(args.stdin)
        if args.users_command == "add":
            users.add_user(Path(args.file), args.name, password, args.principal)
            print(f"added {args.name} to {args.file}", file=sys.stderr)
        else:
            print(users.entry(password, args.user, args.principal))
    except users.UsersError as e:
        print(f"lvi users: {e}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lvi", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="run one model worker")
    w.add_argument("name", choices=WORKERS)
    w.add_argument("--host")
    w.add_argument("--port", type=int)
    w.add_argument("--profile", choices=registry.PROFILE_NAMES)
    w.set_defaults(func=cmd_worker)

    g = sub.add_parser("gateway", help="run the gateway (the public API)")
    g.add_argument("--host")
    g.add_argument("--port", type=int)
    g.set_defaults(func=cmd_gateway)

    f = sub.add_parser("frontend", help="run the Gradio UI (talks only to the gateway)")
    f.add_argument("--host")
    f.add_argument("--port", type=int)
    f.set_defaults(func=cmd_frontend)

    m = sub.add_parser("models", help="build or download models")
    msub = m.add_subparsers(dest="models_command", required=True)
    bt = msub.add_parser("build-tiny", help="build the tiny random-weight models")
    bt.add_argument("dir", nargs="?", help="target folder (default: $LVI_CACHE_DIR/tiny)")
    bt.add_argument("--only", action="append", help="build only this model (repeatable)")
    bt.set_defaults(func=cmd_build_tiny)
    mp = msub.add_parser(
        "pull",
        help="download the profile's weights into the Hugging Face cache (then run offline)",
    )
    mp.add_argument("--profile", choices=registry.PROFILE_NAMES, help="default: $LVI_PROFILE")
    mp.add_argument("--only", action="append", choices=WORKERS, help="one worker")
    mp.add_argument(
        "--check", action="store_true", help="only report what is missing (no network); exit 1"
    )
    mp.set_defaults(func=cmd_models_pull)

    u = sub.add_parser("up", help="run the whole stack locally (Redis, workers, gateway, UI)")
    u.add_argument(
        "--profile",
        choices=registry.LAUNCH_PROFILES,
        help="default: $LVI_PROFILE, else auto (gpu with CUDA and its weights cached, else "
        "local: GrabCut and OpenCV, tiny chat and generation)",
    )
    u.add_argument(
        "--host", default="127.0.0.1", help="where the gateway and UI listen (workers: loopback)"
    )
    u.add_argument(
        "--port-offset", type=int, default=0, help="add this to every default port (8000 -> 8100)"
    )
    u.add_argument(
        "--timeout", type=float, default=600.0, help="seconds each component may take to be ready"
    )
    u.add_argument(
        "--grace", type=float, default=15.0, help="seconds to wait for a clean stop before SIGKILL"
    )
    u.add_argument("--only", action="append", help="run only this component (repeatable)")
    u.add_argument(
        "--ephemeral-store",
        action="store_true",
        help="a throwaway Redis (default: sessions kept in $LVI_CACHE_DIR/redis across runs)",
    )
    u.add_argument(
        "--single-user",
        action="store_true",
        help="no sign-in in the UI: every visitor acts with the local API key (your own machine only)",
    )
    u.add_argument(
        "--max-crashes",
        type=int,
        default=5,
        help="give up when one component crashes this many times within --crash-window",
    )
    u.add_argument("--crash-window", type=float, default=60.0, help="seconds (see --max-crashes)")
    u.set_defaults(func=cmd_up)

    us = sub.add_parser("users", help="password users of the gateway (GATEWAY_USERS[_FILE])")
    usub = us.add_subparsers(dest="users_command", required=True)
    hp = usub.add_parser("hash-password", help="print a password's hash for GATEWAY_USERS")
    hp.add_argument("--user", help="print a whole GATEWAY_USERS entry for this username")
    ua = usub.add_parser("add", help="append a user to a users file (GATEWAY_USERS_FILE, 0600)")
    ua.add_argument("name", help="the username")
    ua.add_argument("--file", required=True, help="the users file (created if missing)")
    for p in (hp, ua):
        p.add_argument("--principal", help="the principal (default: the username)")
        p.add_argument("--stdin", action="store_true", help="read the password from stdin")
        p.set_defaults(func=cmd_users)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        code = 130
    logging.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())

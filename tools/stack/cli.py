"""`stack`: the project's command line. `stack --help` lists the commands, `stack up --help` one of them.

Commands live in their own modules; each has `register(subcommands)`, which adds its argparse
sub-parser(s) and sets `run` to a function taking the parsed arguments and returning an exit code.
"""

import argparse
import importlib
import sys
from pathlib import Path

from testkit.compose import ComposeError

# To add a command: write a module with `register(subcommands)` and list it here.
COMMAND_MODULES = [
    "stack.up",
    "stack.jobs",
]


def find_compose_file(name: str = "docker-compose.yml") -> Path:
    """`name` in the current directory or the nearest parent that has it (like `docker compose`)."""
    candidate = Path(name)
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    for directory in Path.cwd().resolve().parents:
        if (directory / name).exists():
            return directory / name
    raise SystemExit(f"stack: no {name} in {Path.cwd()} or its parents")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stack",
        description="Run docker-compose.yml's Nameko services as local processes, without Docker.",
    )
    parser.add_argument(
        "-f", "--file", default="docker-compose.yml", help="the compose file (default: %(default)s)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where `stack up` keeps logs and state (default: .stack next to the file)",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.compose_file = find_compose_file(args.file)
    args.state_dir = (args.state_dir or args.compose_file.parent / ".stack").resolve()
    try:
        return args.run(args) or 0
    except ComposeError as error:  # the file as compose rejects it, or no compose: its message only
        print(f"stack: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

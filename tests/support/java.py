"""The real Apache Kafka Java clients and tools, built from tests/interop/java.

`mvn package` there leaves target/classes (kraft.interop.Client) and target/lib (kafka-clients,
kafka-tools and their dependencies). `JavaClient.run("produce", [...])` runs a Client subcommand;
`JavaClient.run(TOPIC_COMMAND, [...])` runs a Kafka tool by its main class. Client subcommands
print one JSON object per line; see Client.java for their options and exit codes.

`build()` (and `python -m tests.support.build_java`, which tests/run calls) builds it offline
first, which is quick when ~/.m2 has everything, and online otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from tests.support import processes

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO_ROOT / "tests" / "interop" / "java"
TARGET_DIR = PROJECT_DIR / "target"
# Written after a successful build; sources newer than it mean the build is stale.
BUILD_STAMP = TARGET_DIR / "kraft-build.stamp"

CLIENT_MAIN = "kraft.interop.Client"
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
GET_OFFSET_SHELL = "org.apache.kafka.tools.GetOffsetShell"

# Client exit codes (Client.java).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3

BUILD_TIMEOUT_S = 900.0
RUN_TIMEOUT_S = 60.0
OUTPUT_TAIL_CHARS = 4000
# Short-lived client JVMs start faster with the C1 compiler only and the serial collector.
DEFAULT_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx512m")


class JavaUnavailable(Exception):
    """java or mvn is not installed: tests that need them skip with this reason."""


class JavaBuildError(RuntimeError):
    """Maven ran and failed; the message carries its output."""


class JavaRunError(AssertionError):
    """A Java program timed out, or exited non-zero when the caller required success."""


def tail(text: str | None, chars: int = OUTPUT_TAIL_CHARS) -> str:
    text = text or ""
    return text if len(text) <= chars else "..." + text[-chars:]


def classpath() -> str:
    """target/classes and every jar in target/lib, in the form `java -cp` takes."""
    return os.pathsep.join([str(TARGET_DIR / "classes"), str(TARGET_DIR / "lib" / "*")])


def lib_jars() -> list[Path]:
    return sorted((TARGET_DIR / "lib").glob("*.jar"))


def find_class(class_name: str) -> Path | None:
    """The jar (or classes directory) on the classpath that holds `class_name`, if any."""
    entry = class_name.replace(".", "/") + ".class"
    if (TARGET_DIR / "classes" / entry).is_file():
        return TARGET_DIR / "classes"
    for jar in lib_jars():
        with zipfile.ZipFile(jar) as archive:
            if entry in archive.namelist():
                return jar
    return None


def is_built() -> bool:
    """True when a build finished after the last change to the pom or the sources."""
    if not BUILD_STAMP.is_file():
        return False
    sources = [PROJECT_DIR / "pom.xml", *(p for p in (PROJECT_DIR / "src").rglob("*") if p.is_file())]
    newest_source = max(p.stat().st_mtime for p in sources)
    return BUILD_STAMP.stat().st_mtime >= newest_source


def tool_paths() -> tuple[str, str]:
    """Paths of java and mvn, or JavaUnavailable naming the missing one."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if java is None:
        raise JavaUnavailable("java is not installed (a JDK 17 or newer runs the Kafka Java clients)")
    if mvn is None:
        raise JavaUnavailable("mvn is not installed (Maven builds tests/interop/java)")
    return java, mvn


def build(timeout_s: float = BUILD_TIMEOUT_S) -> str:
    """Builds the project within `timeout_s` unless it is up to date; returns how: 'up to date', 'offline', 'online'."""
    _, mvn = tool_paths()
    if is_built():
        return "up to date"
    attempts = [("offline", [mvn, "-B", "-q", "-o", "package"]), ("online", [mvn, "-B", "-q", "package"])]
    failures = []
    deadline = time.monotonic() + timeout_s
    for how, command in attempts:
        result = _run_bounded(command, cwd=PROJECT_DIR, timeout_s=max(0.0, deadline - time.monotonic()))
        if result.returncode == 0:
            BUILD_STAMP.touch()
            return how
        failures.append(f"$ {' '.join(command)}  (exit {result.returncode})\n{tail(result.stdout)}{tail(result.stderr)}")
    raise JavaBuildError("building tests/interop/java failed:\n" + "\n".join(failures))


class JavaClient:
    """Runs kraft.interop.Client subcommands and Kafka tool main classes on the built classpath."""

    def __init__(self, java: str, jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS) -> None:
        self.java = java
        self.jvm_options = list(jvm_options)

    def command(self, target: str, args: Sequence[str] = ()) -> list[str]:
        """A main class if `target` has a dot (org.apache.kafka.tools.X), else a Client subcommand."""
        main = [target] if "." in target else [CLIENT_MAIN, target]
        return [self.java, *self.jvm_options, "-cp", classpath(), *main, *map(str, args)]

    def run(
        self, target: str, args: Sequence[str] = (), *, timeout_s: float = RUN_TIMEOUT_S,
        check: bool = False, input_text: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Runs to completion within `timeout_s` (else kills it and raises JavaRunError)."""
        command = self.command(target, args)
        result = _run_bounded(command, timeout_s=timeout_s, input_text=input_text)
        if result.returncode is None:
            raise JavaRunError(
                f"expected {target} to finish within {timeout_s} s, it did not and was killed\n"
                f"command: {command}\nstdout:\n{tail(result.stdout)}\nstderr:\n{tail(result.stderr)}"
            )
        if check and result.returncode != 0:
            raise JavaRunError(
                f"expected {target} to exit 0, it exited {result.returncode}\n"
                f"command: {command}\nstdout:\n{tail(result.stdout)}\nstderr:\n{tail(result.stderr)}"
            )
        return result

    def start(self, target: str, args: Sequence[str] = (), **popen_kwargs) -> subprocess.Popen:
        """Starts in the background; the test's finalizer kills it if it is still running."""
        popen_kwargs.setdefault("stdout", subprocess.PIPE)
        popen_kwargs.setdefault("stderr", subprocess.PIPE)
        popen_kwargs.setdefault("text", True)
        return processes.spawn(self.command(target, args), **popen_kwargs)


def json_lines(stdout: str) -> list[dict]:
    """The JSON objects a Client subcommand printed, one per line, in order."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _run_bounded(
    command: Sequence[str], *, timeout_s: float, cwd: Path | None = None, input_text: str | None = None,
) -> subprocess.CompletedProcess:
    """Runs a command in its own process group; on timeout kills the group, returncode None."""
    process = processes.spawn(
        command, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
    )
    try:
        stdout, stderr = process.communicate(input_text, timeout=timeout_s)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    except subprocess.TimeoutExpired:
        processes.signal_group(process, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return subprocess.CompletedProcess(command, None, stdout, stderr)
    except BaseException:
        processes.kill(process)
        raise

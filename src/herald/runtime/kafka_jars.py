"""Apache Kafka's jars and a Java to run them: Maven resolves them once into ``<home>/kafka/``,
or an unpacked Apache Kafka distribution is used where ``KAFKA_HOME`` points."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from herald.errors import BrokerError

logger = logging.getLogger(__name__)

# The compose file's apache/kafka image runs this version too: both engines run one Kafka.
KAFKA_VERSION = "4.1.1"
# Kafka 4.1 is built with this log4j; its SLF4J 1.x binding is pinned beside it so that the
# broker's own log lines (all of them go through SLF4J) reach the log file.
LOG4J_VERSION = "2.24.3"
MIN_JAVA = 17  # Kafka 4 brokers are Java 17 bytecode

JAVA_MISSING = (
    "Apache Kafka needs Java {min}+ and no `java` was found (PATH, JAVA_HOME): install a "
    "JDK {min}+ (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME to one"
)
JAVA_TOO_OLD = (
    "Apache Kafka needs Java {min}+ but {java} is Java {found}: install a JDK {min}+ "
    "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME to one"
)
MAVEN_MISSING = (
    "Apache Kafka's jars are fetched with Maven and no `mvn` was found on PATH: install "
    "Maven 3.8+ (Debian: apt-get install maven), or set KAFKA_HOME to an unpacked Apache "
    "Kafka distribution (its libs/ folder is used as it is)"
)

_POM = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by herald: the jars an Apache Kafka {kafka} broker needs at run time. -->
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>herald.local</groupId>
  <artifactId>apache-kafka-runtime</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <!-- Pinned side by side so that Maven cannot mix two log4j releases. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_COMPLETE = "lib.complete"


@dataclass(frozen=True)
class KafkaRuntime:
    """A Java and a folder of Kafka jars that run a broker."""

    java: str
    lib: Path
    version: str

    @property
    def classpath(self) -> str:
        return str(self.lib / "*")

    @property
    def storage_tool(self) -> str:
        """The main class of Kafka's storage tool (it moved out of the Scala core in some 4.x)."""
        core = next(self.lib.glob("kafka_2.13-*.jar"))
        with zipfile.ZipFile(core) as jar:
            if "kafka/tools/StorageTool.class" in jar.namelist():
                return "kafka.tools.StorageTool"
        return "org.apache.kafka.tools.StorageTool"  # pragma: no cover - later 4.x layout


def pom_xml(version: str = KAFKA_VERSION, log4j: str = LOG4J_VERSION) -> str:
    """The pom whose runtime dependencies are a broker's class path."""
    return _POM.format(kafka=version, log4j=log4j)


def find_java(environ: Mapping[str, str]) -> str:
    """``$JAVA_HOME/bin/java``, else ``java`` on PATH, checked to be Java 17 or newer."""
    java_home = environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate is not None and candidate.is_file():
        java = str(candidate)
    else:
        found = shutil.which("java", path=environ.get("PATH", ""))
        if found is None:
            raise BrokerError(JAVA_MISSING.format(min=MIN_JAVA))
        java = found
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise BrokerError(JAVA_TOO_OLD.format(min=MIN_JAVA, java=java, found=major))
    return java


def java_major_version(java: str) -> int:
    """The feature release of ``java`` (8 for 1.8.0_x, 17 for 17.0.15)."""
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise BrokerError(f"cannot tell the Java version of {java}: {out.stderr.strip()[:200]}")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major


def from_kafka_home(kafka_home: Path, java: str) -> KafkaRuntime:
    """The jars of an unpacked Apache Kafka distribution (``$KAFKA_HOME/libs``)."""
    lib = kafka_home / "libs"
    cores = sorted(lib.glob("kafka_2.13-*.jar"))
    cores = [c for c in cores if not c.stem.endswith(("-test", "-sources", "-javadoc"))]
    if not cores:
        raise BrokerError(
            f"KAFKA_HOME={kafka_home} is not an unpacked Apache Kafka distribution "
            "(no libs/kafka_2.13-*.jar)"
        )
    return KafkaRuntime(java=java, lib=lib, version=cores[0].stem.removeprefix("kafka_2.13-"))


def resolve(
    *,
    home: Path,
    version: str = KAFKA_VERSION,
    kafka_home: Path | None = None,
    environ: Mapping[str, str],
    timeout: float = 900.0,
) -> KafkaRuntime:
    """A Java and Kafka's jars: ``kafka_home``'s, else Maven's, resolved once under ``home``."""
    java = find_java(environ)
    if kafka_home is not None:
        return from_kafka_home(kafka_home, java)
    base = home.resolve() / "kafka" / version  # absolute: Maven runs in this folder
    lib = base / "lib"
    if (base / _COMPLETE).is_file():
        return KafkaRuntime(java=java, lib=lib, version=version)
    mvn = shutil.which("mvn", path=environ.get("PATH", ""))
    if mvn is None:
        raise BrokerError(MAVEN_MISSING)
    base.mkdir(parents=True, exist_ok=True)
    # One resolver at a time per version; whoever waited finds the marker and is done.
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / _COMPLETE).is_file():
            _copy_dependencies(mvn, base, version, environ, timeout)
    return KafkaRuntime(java=java, lib=lib, version=version)


def _copy_dependencies(
    mvn: str, base: Path, version: str, environ: Mapping[str, str], timeout: float
) -> None:
    pom = base / "pom.xml"
    pom.write_text(pom_xml(version), encoding="utf-8")
    staging = Path(tempfile.mkdtemp(prefix="lib.partial-", dir=base))
    log_path = base / "maven.log"
    logger.info("fetching Apache Kafka %s jars with Maven (once; log in %s)", version, log_path)
    started = time.monotonic()
    try:
        with open(log_path, "wb") as log:
            try:
                done = subprocess.run(
                    [
                        mvn,
                        "--batch-mode",
                        "--no-transfer-progress",
                        "--file",
                        str(pom),
                        "dependency:copy-dependencies",
                        "-DincludeScope=runtime",
                        f"-DoutputDirectory={staging}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=dict(environ),
                    cwd=base,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise BrokerError(
                    f"Maven did not resolve Apache Kafka {version} in {timeout:g}s; its output "
                    f"ends:\n{_tail(log_path)}"
                ) from None
        if done.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
            raise BrokerError(
                f"Maven could not resolve org.apache.kafka:kafka_2.13:{version} (exit "
                f"{done.returncode}); its output ends:\n{_tail(log_path)}"
            )
        lib = base / "lib"
        if lib.exists():  # left by an attempt that died before writing the marker
            shutil.rmtree(lib)
        staging.rename(lib)
        (base / _COMPLETE).write_text(f"{version}\n", encoding="utf-8")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    jars = list((base / "lib").glob("*.jar"))
    size_mb = sum(j.stat().st_size for j in jars) / 1e6
    logger.info(
        "Apache Kafka %s: %d jars (%.0f MB) in %.1fs",
        version,
        len(jars),
        size_mb,
        time.monotonic() - started,
    )


def _tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])
    return "(no output)"  # pragma: no cover - the log was just written

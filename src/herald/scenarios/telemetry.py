"""Spacecraft telemetry: scheduled battery streams over UDP, ingested into Kafka and Postgres.

* **A schedule** (``POST /api/telemetry/schedules``) says which ship streams, from when, for how
  long, how often and where to: ``ship``, ``start_at``, ``duration_s``, ``rate_hz``, ``host``,
  ``port``. It is a row in Postgres and a due item the scheduler publishes at ``start_at``: a
  :class:`StreamCommand` on ``herald.telemetry.commands`` (keyed by schedule id, so a stop
  goes to the spaceship that runs the stream). Past its ``not_after`` it is never started
  (``expired``).
* **A spaceship** runs each stream it is told to start: ``rate_hz × duration_s`` samples of
  its battery, one datagram each, sent at their time (never a thread per stream). With
  ``loss`` it drops that fraction of them before sending, and counts them: a lossy link.
  It reports each stream's start, its progress and its end on ``herald.telemetry.streams``
  (:class:`StreamEvent`, with the packets sent). A stream outlives the spaceship that runs
  it: on a rebalance it is handed off and its next owner resumes it at the packet then due
  (those in between are ``missed``); so is a stream whose spaceship was killed.
* **A datagram** is a CCSDS space packet: the 6-byte primary header (version 0, telemetry,
  no secondary header, the ship's APID, unsegmented, a 14-bit sequence count, the data
  length) and the sample as its data field (:func:`pack`, :func:`unpack`).
* **The battery** (:class:`Battery`) is a model, not noise: a pack of Li-ion cells on a
  spacecraft in a circular orbit with a sunlit and an eclipse phase. In sunlight the solar
  array feeds the load and charges the pack; in eclipse the pack feeds the load alone. The
  state of charge follows by coulomb counting; the bus voltage is the open-circuit voltage
  at that state of charge less the current times the internal resistance; the temperature
  lags the environment's (first order) with the resistive heating I²R on top. Each ship's
  battery (initial charge, orbit phase, load) is drawn from the seed and the ship's name.
* **An ingestor** decodes and checks each datagram (a malformed one goes to ``herald.dlq``
  with the reason and the sender's address), numbers it within its stream from the sequence
  counts (which also tell loss and reordering), and publishes a :class:`TelemetryFrame` on
  ``herald.telemetry.frames``, keyed by ship. The recorder stores each frame once.

See docs/telemetry.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import random
import re
import struct
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct
from pydantic import Field, field_validator, model_validator

from herald.contracts import MessageId, RunId, RunRequest, Timestamp, Topic
from herald.errors import ConfigError
from herald.scenarios.base import CountSource, Example, Parameters, Scenario, checked
from herald.scenarios.retail import parse_duration

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from herald.config import Settings

# -- parameters ---------------------------------------------------------------------------------

SHIP_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"
SCHEDULE_ID_PATTERN: Final = r"^[0-9a-f]{32}$"
_SHIP = re.compile(SHIP_PATTERN)


class TelemetrySettings(Parameters):
    """Spacecraft telemetry (`herald.scenarios.telemetry`; docs/telemetry.md)."""

    ships: int = Field(5, ge=1, le=1000, description="Ships `sim.run` schedules a stream for.")
    duration: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="How long each of `sim.run`'s streams lasts (`30s`, `2m`, seconds).",
    )
    rate_hz: float = Field(
        20.0, gt=0, le=1000, description="Samples a second of `sim.run`'s streams."
    )
    start_delay_secs: float = Field(
        3.0,
        ge=0,
        le=3600,
        description="`sim.run` schedules its streams to start this long after its services are up.",
    )
    loss: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="The fraction of datagrams `sim.run`'s streams drop before sending (a lossy "
        "link, on purpose); counted, and reported against what arrived.",
    )
    host: str = Field(
        "127.0.0.1", min_length=1, max_length=253, description="Where `sim.run` sends its streams."
    )
    port_min: int = Field(
        47100, ge=1, le=65535, description="First UDP port an ingestor listens on."
    )
    port_max: int = Field(
        47101, ge=1, le=65535, description="Last UDP port an ingestor listens on (inclusive)."
    )
    allowed_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="The networks a schedule's `host` may be in (the API refuses any other: "
        "a spaceship sends where it is told).",
    )
    start_grace_secs: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="A schedule whose `start_at` is at most this far in the past is accepted "
        "(and starts at once).",
    )
    not_after_secs: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="A stream not started this long after its `start_at` is never started "
        "(`expired`).",
    )
    max_duration_secs: float = Field(
        86_400.0, gt=0, le=7 * 86_400, description="The longest stream the API accepts."
    )
    max_rate_hz: float = Field(
        1000.0, gt=0, le=100_000, description="The highest sample rate the API accepts."
    )
    max_streams: int = Field(
        5000, ge=1, le=1_000_000, description="Streams one spaceship runs at once at most."
    )
    progress_secs: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="How often a spaceship reports each running stream's packets sent and "
        "dropped (a `progress` event): after a spaceship is killed, Postgres's figures of "
        "its stream lag by at most this long, and the packets it sent meanwhile count as "
        "`missed`.",
    )
    orbit_secs: float = Field(
        5400.0, gt=0, le=1e6, description="The orbit's period, simulated seconds (90 minutes)."
    )
    eclipse_fraction: float = Field(
        0.35, ge=0, lt=1, description="The fraction of each orbit spent in the Earth's shadow."
    )
    model_speed: float = Field(
        60.0,
        gt=0,
        le=1e5,
        description="Simulated battery seconds per wall second of a stream (60: a 30 s stream "
        "covers half an hour of orbit, through sunlight and eclipse).",
    )

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network (like 127.0.0.0/8)") from None
        return value

    @model_validator(mode="after")
    def _port_range(self) -> TelemetrySettings:
        if self.port_max < self.port_min:
            raise ValueError(f"port_max {self.port_max} is below port_min {self.port_min}")
        return self

    @property
    def ports(self) -> range:
        """The ingestors' UDP ports."""
        return range(self.port_min, self.port_max + 1)


ShipName = Annotated[
    str, Meta(pattern=SHIP_PATTERN, description="The ship's name", examples=["voyager-1"])
]
ScheduleId = Annotated[str, Meta(pattern=SCHEDULE_ID_PATTERN, description="Schedule id")]
Port = Annotated[int, Meta(ge=1, le=65535)]
Host = Annotated[str, Meta(min_length=1, max_length=253, description="Host name or address")]


class TelemetryRun(RunRequest, kw_only=True, forbid_unknown_fields=True):
    """A simulated ground pass (`sim.run --scenario telemetry`): one stream per ship. Its
    streams are schedules that the scheduler starts; the request only records the run."""

    scenario: Annotated[Literal["telemetry"], Meta(description="The workload")] = "telemetry"
    ships: Annotated[list[ShipName], Meta(min_length=1, max_length=1000)]
    start_at: Annotated[Timestamp, Meta(description="When the streams start")]
    duration_s: Annotated[float, Meta(gt=0, le=7 * 86_400)]
    rate_hz: Annotated[float, Meta(gt=0, le=100_000)]
    loss: Annotated[float, Meta(ge=0, lt=1)] = 0.0
    host: Host = "127.0.0.1"
    ports: Annotated[list[Port], Meta(min_length=1, description="The ingestors' ports")]

    @property
    def packets_per_stream(self) -> int:
        return packets(self.duration_s, self.rate_hz)

    @property
    def duration_secs(self) -> float | None:
        return self.duration_s


def packets(duration_s: float, rate_hz: float) -> int:
    """Samples in a stream of ``duration_s`` at ``rate_hz``: ``rate × duration``, rounded."""
    return max(1, round(duration_s * rate_hz))


# -- topics and contracts -----------------------------------------------------------------------


class StreamCommand(Struct, kw_only=True, forbid_unknown_fields=True):
    """Start a stream (the scheduler, at its ``start_at``) or stop one (the API's DELETE)."""

    action: Literal["start", "stop"]
    schedule_id: ScheduleId
    ship: ShipName
    host: Host
    port: Port
    rate_hz: Annotated[float, Meta(gt=0, le=100_000, description="Samples a second")]
    duration_s: Annotated[float, Meta(gt=0, le=7 * 86_400, description="Seconds of streaming")]
    start_at: Annotated[Timestamp, Meta(description="When the first sample is due")]
    loss: Annotated[
        float, Meta(ge=0, lt=1, description="Fraction of datagrams dropped before sending")
    ] = 0.0
    seed: Annotated[int, Meta(ge=0, description="The battery model's seed")] = 0
    run_id: RunId | None = None


StreamState = Literal["started", "progress", "handed_off", "finished", "stopped", "failed"]
ENDS: Final = frozenset({"finished", "stopped", "failed"})


class StreamEvent(Struct, kw_only=True, forbid_unknown_fields=True):
    """A spaceship's account of one segment of a stream (the packets one spaceship sent of
    it, from ``first_k`` on): it started, how far it got (``progress``), it gave the stream
    up in a rebalance (``handed_off``: the next owner resumes it), or the stream ended."""

    schedule_id: ScheduleId
    ship: ShipName
    event: StreamState
    packets_sent: Annotated[
        int, Meta(ge=0, description="Datagrams sent so far in this segment")
    ] = 0
    dropped: Annotated[
        int, Meta(ge=0, description="Datagrams dropped on purpose (loss) in this segment")
    ] = 0
    first_k: Annotated[
        int,
        Meta(
            ge=0,
            description="The segment's first packet: 0 for the stream's start; for a stream "
            "resumed after a hand-off or a crash, the first packet still due then (those "
            "before it that no one sent are counted as missed)",
        ),
    ] = 0
    spaceship: Annotated[str, Meta(max_length=255, description="The instance streaming it")]
    at: Timestamp
    reason: Annotated[str, Meta(max_length=500)] | None = None


class TelemetryFrame(Struct, kw_only=True, forbid_unknown_fields=True):
    """One datagram as the ingestor received it: the packet's header and sample, its place
    in the stream, and where and when it came from."""

    id: MessageId  # "<schedule id>:<n>"
    schedule_id: ScheduleId
    ship: ShipName
    apid: Annotated[int, Meta(ge=0, le=2047, description="The packet's APID (the ship's)")]
    seq: Annotated[int, Meta(ge=0, le=16383, description="The packet's 14-bit sequence count")]
    n: Annotated[int, Meta(ge=0, description="Its number in the stream, from 0 (seq unwrapped)")]
    t: Annotated[float, Meta(ge=0, description="Sample time, epoch seconds")]
    voltage: Annotated[float, Meta(description="Bus voltage, V")]
    current: Annotated[float, Meta(description="Battery current, A (> 0: discharging)")]
    temperature: Annotated[float, Meta(description="Battery temperature, °C")]
    soc: Annotated[float, Meta(ge=0, le=1, description="State of charge, 0 to 1")]
    sunlit: bool
    reordered: Annotated[bool, Meta(description="It came after a later packet of its stream")]
    sender: Annotated[str, Meta(max_length=300, description="host:port it came from")]
    ingestor: Annotated[str, Meta(max_length=255, description="The ingestor that took it")]
    received_at: Timestamp


COMMANDS: Final = Topic(
    "herald.telemetry.commands",
    "schedule id",
    StreamCommand,
    "Start and stop commands of telemetry streams: the scheduler's at a schedule's start, the "
    "API's to stop one (work).",
    "work",
)
STREAMS: Final = Topic(
    "herald.telemetry.streams",
    "schedule id",
    StreamEvent,
    "Each telemetry stream's start, progress, hand-offs and end, with the packets each "
    "spaceship sent of it (facts).",
    "facts",
)
FRAMES: Final = Topic(
    "herald.telemetry.frames",
    "ship",
    TelemetryFrame,
    "Telemetry frames as the ingestors received them, keyed by ship (facts).",
    "facts",
)


# -- packets: CCSDS space packets (CCSDS 133.0-B-2) ------------------------------------------------

HEADER: Final = struct.Struct(">HHH")
# The data field: schedule id (16 bytes), sample time (epoch s), voltage, current, temperature,
# state of charge, flags (bit 0: sunlit), then the ship's name (UTF-8, 1 to 32 bytes).
SAMPLE: Final = struct.Struct(">16sdffffB")
MIN_PACKET: Final = HEADER.size + SAMPLE.size + 1
MAX_PACKET: Final = HEADER.size + SAMPLE.size + 32
SEQ_MODULO: Final = 1 << 14
IDLE_APID: Final = 0x7FF  # reserved for idle packets


def apid_of(ship: str) -> int:
    """The ship's Application Process Identifier: stable, 0 to 2046 (2047 is idle)."""
    return int.from_bytes(hashlib.sha256(ship.encode()).digest()[:4], "big") % IDLE_APID


@dataclass(frozen=True)
class Sample:
    """One reading of a battery."""

    t: float  # epoch seconds
    voltage: float
    current: float
    temperature: float
    soc: float
    sunlit: bool


@dataclass(frozen=True)
class Packet:
    """A decoded space packet."""

    apid: int
    seq: int
    schedule_id: str
    ship: str
    sample: Sample


class PacketError(ValueError):
    """A datagram that is not a valid telemetry packet; the message says why."""


def pack(ship: str, schedule_id: str, seq: int, sample: Sample) -> bytes:
    """The space packet of one sample: ``seq`` taken modulo 2¹⁴."""
    name = ship.encode()
    data = (
        SAMPLE.pack(
            bytes.fromhex(schedule_id),
            sample.t,
            sample.voltage,
            sample.current,
            sample.temperature,
            sample.soc,
            1 if sample.sunlit else 0,
        )
        + name
    )
    # version 0 (3 bits), type 0 = telemetry, no secondary header, APID (11 bits)
    first = apid_of(ship) & 0x7FF
    # sequence flags 0b11: an unsegmented packet; 14-bit sequence count
    second = (0b11 << 14) | (seq % SEQ_MODULO)
    return HEADER.pack(first, second, len(data) - 1) + data


def unpack(datagram: bytes) -> Packet:
    """The packet in ``datagram``, checked (:class:`PacketError` says what is wrong)."""
    first, second = _header(datagram)
    raw_id, t, voltage, current, temperature, soc, flags = SAMPLE.unpack_from(datagram, HEADER.size)
    try:
        ship = datagram[HEADER.size + SAMPLE.size :].decode()
    except UnicodeDecodeError:
        raise PacketError("the ship's name is not UTF-8") from None
    if not _SHIP.match(ship):
        raise PacketError(f"ship name {ship!r} does not match {SHIP_PATTERN}")
    apid = first & 0x7FF
    if apid != apid_of(ship):
        raise PacketError(f"APID {apid} is not ship {ship}'s ({apid_of(ship)})")
    values = {"t": t, "voltage": voltage, "current": current, "temperature": temperature}
    for name, value in values.items():
        if not math.isfinite(value):
            raise PacketError(f"{name} is {value}")
    if t < 0:
        raise PacketError(f"sample time {t} is negative")
    if not 0.0 <= soc <= 1.0:
        raise PacketError(f"state of charge {soc} is outside [0, 1]")
    if flags > 1:
        raise PacketError(f"flags {flags:#04x}: only bit 0 (sunlit) is defined")
    sample = Sample(t, voltage, current, temperature, soc, bool(flags))
    return Packet(apid, second & (SEQ_MODULO - 1), raw_id.hex(), ship, sample)


def _header(datagram: bytes) -> tuple[int, int]:
    """The primary header's first two words, checked against the datagram."""
    if len(datagram) < MIN_PACKET:
        raise PacketError(f"too short: {len(datagram)} bytes, a packet has at least {MIN_PACKET}")
    if len(datagram) > MAX_PACKET:
        raise PacketError(f"too long: {len(datagram)} bytes, a packet has at most {MAX_PACKET}")
    first, second, length = HEADER.unpack_from(datagram)
    version, kind, secondary = first >> 13, (first >> 12) & 1, (first >> 11) & 1
    if version != 0:
        raise PacketError(f"packet version {version}, not 0")
    if kind != 0:
        raise PacketError("a telecommand packet, not telemetry")
    if secondary:
        raise PacketError("a secondary header, which these packets do not have")
    if second >> 14 != 0b11:
        raise PacketError(f"sequence flags {second >> 14:02b}, not 11 (unsegmented)")
    if length + 1 != len(datagram) - HEADER.size:
        raise PacketError(
            f"data length field says {length + 1} bytes, the datagram has "
            f"{len(datagram) - HEADER.size}"
        )
    return first, second


class StreamOrder:
    """A stream's packets as they arrive: each one's number from its 14-bit count (unwrapped
    around the highest seen), whether it came late, and the duplicates."""

    def __init__(self) -> None:
        self.highest = -1
        self.received = 0
        self.reordered = 0

    def place(self, seq: int) -> tuple[int, bool]:
        """The packet's number in the stream (from 0) and whether it is out of order."""
        if self.highest < 0:
            n = seq
        else:
            # The number nearest to the highest seen with this count (within half the modulo).
            base = self.highest - self.highest % SEQ_MODULO
            n = base + seq
            if n - self.highest > SEQ_MODULO // 2:
                n -= SEQ_MODULO
            elif self.highest - n > SEQ_MODULO // 2:
                n += SEQ_MODULO
            n = max(n, 0)
        late = n < self.highest
        self.received += 1
        if late:
            self.reordered += 1
        else:
            self.highest = n
        return n, late


# -- the battery ----------------------------------------------------------------------------------

CELLS: Final = 8  # in series
CAPACITY_AH: Final = 40.0
RESISTANCE_OHM: Final = 0.08  # the pack's internal resistance
CELL_EMPTY_V, CELL_FULL_V = 3.0, 4.2  # open-circuit voltage at 0 and 1 state of charge
LOAD_A: Final = 8.0  # the bus's mean load
LOAD_RANGE_A: Final = (4.0, 12.0)
SOLAR_A: Final = 20.0  # the array's current in sunlight
SUN_C, SHADE_C = 20.0, -5.0  # the battery's surroundings, in sunlight and in eclipse
THERMAL_TAU_S: Final = 1800.0  # time constant of the temperature's lag
THERMAL_MASS_J_PER_K: Final = 3000.0
# The bus voltage's range: empty at the highest discharge, full at the highest charge.
VOLTAGE_RANGE: Final = (
    CELLS * CELL_EMPTY_V - LOAD_RANGE_A[1] * RESISTANCE_OHM,
    CELLS * CELL_FULL_V + (SOLAR_A - LOAD_RANGE_A[0]) * RESISTANCE_OHM,
)


def open_circuit_voltage(soc: float) -> float:
    """The pack's open-circuit voltage at ``soc``: rising from 3.0 V a cell (empty) to 4.2 V
    (full), flat in the middle as a Li-ion cell's is."""
    cell = CELL_EMPTY_V + 0.7 * soc - 0.5 * soc * soc + 1.0 * soc**3
    return CELLS * cell


def ship_rng(seed: int, ship: str) -> random.Random:
    """The random source of one ship's battery: the same seed and name, the same battery."""
    digest = hashlib.sha256(f"{seed}:{ship}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class Battery:
    """A spacecraft's battery over its orbit (see the module docstring); :meth:`step` advances
    it by simulated seconds and returns the reading then."""

    def __init__(
        self,
        ship: str,
        seed: int,
        *,
        orbit_secs: float = 5400.0,
        eclipse_fraction: float = 0.35,
        soc: float | None = None,
        phase: float | None = None,
    ) -> None:
        self._rng = ship_rng(seed, ship)
        self.orbit_secs = orbit_secs
        self.eclipse_secs = orbit_secs * eclipse_fraction
        self.soc = self._rng.uniform(0.55, 0.9) if soc is None else soc
        self.elapsed = orbit_secs * (self._rng.random() if phase is None else phase)
        self.temperature = self._rng.uniform(10.0, 18.0)
        self.load = self._rng.uniform(LOAD_RANGE_A[0] + 2, LOAD_RANGE_A[1] - 2)

    @property
    def sunlit(self) -> bool:
        """Whether the spacecraft is in sunlight (the orbit begins with its eclipse)."""
        return self.elapsed % self.orbit_secs >= self.eclipse_secs

    def step(self, dt: float) -> tuple[float, float, float, float, bool]:
        """Advance ``dt`` simulated seconds: (voltage, current, temperature, soc, sunlit)."""
        self.elapsed += dt
        sunlit = self.sunlit
        # The load wanders around its mean (a random walk pulled back), within its range.
        self.load += 0.1 * (LOAD_A - self.load) + self._rng.gauss(0.0, 0.2)
        self.load = min(max(self.load, LOAD_RANGE_A[0]), LOAD_RANGE_A[1])
        current = self.load - (SOLAR_A if sunlit else 0.0)
        if current < 0 and self.soc >= 1.0:
            current = 0.0  # full: the shunt regulator dumps the array's surplus
        if current > 0 and self.soc <= 0.0:
            current = 0.0  # empty: the undervoltage cut-off sheds the load
        self.soc = min(1.0, max(0.0, self.soc - current * dt / 3600.0 / CAPACITY_AH))
        heat = current * current * RESISTANCE_OHM
        ambient = SUN_C if sunlit else SHADE_C
        settled = ambient + heat * THERMAL_TAU_S / THERMAL_MASS_J_PER_K
        self.temperature = settled + (self.temperature - settled) * math.exp(-dt / THERMAL_TAU_S)
        voltage = open_circuit_voltage(self.soc) - current * RESISTANCE_OHM
        return voltage, current, self.temperature, self.soc, sunlit


def samples(
    command: StreamCommand,
    *,
    orbit_secs: float,
    eclipse_fraction: float,
    model_speed: float,
    first: int = 0,
) -> Iterator[Sample]:
    """A stream's samples in order from sample ``first``: sample ``k`` is due at
    ``start_at + k / rate_hz``. A stream resumed at ``first`` has the very samples it would
    have had (the model is stepped through the ones before, a few microseconds each)."""
    battery = Battery(
        command.ship, command.seed, orbit_secs=orbit_secs, eclipse_fraction=eclipse_fraction
    )
    start = command.start_at.timestamp()
    dt = model_speed / command.rate_hz
    for k in range(packets(command.duration_s, command.rate_hz)):
        voltage, current, temperature, soc, sunlit = battery.step(dt)
        if k >= first:
            yield Sample(start + k / command.rate_hz, voltage, current, temperature, soc, sunlit)


def resume_point(command: StreamCommand, now: float) -> int:
    """The first packet still due at ``now`` (epoch s) of a stream resumed then:
    ``ceil((now − start_at) × rate_hz)``, from 0 before its start to its size after its end."""
    total = packets(command.duration_s, command.rate_hz)
    elapsed = now - command.start_at.timestamp()
    return min(total, max(0, math.ceil(elapsed * command.rate_hz)))


# -- checks a schedule must pass beyond its schema ---------------------------------------------


def host_refusal(host: str, allowed: list[str]) -> str | None:
    """Why a stream may not be sent to ``host`` (an address, or ``localhost``), or None."""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"{host!r} is not an IP address (or localhost)"
    networks = [ipaddress.ip_network(n, strict=False) for n in allowed]
    if not any(address in net for net in networks):
        return f"{address} is outside the allowed networks ({', '.join(allowed)})"
    return None


def new_schedule_id() -> str:
    """A schedule id (also its start's timer id): a UUID's 32 hex digits."""
    return uuid.uuid4().hex


def schedule_rows(
    settings: Settings,
    *,
    ship: str,
    start_at: datetime,
    duration_s: float,
    rate_hz: float,
    host: str,
    port: int,
    loss: float = 0.0,
    seed: int | None = None,
    run_id: str | None = None,
    now: datetime,
    schedule_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new schedule's row (``telemetry_schedules``) and its start's due item (``timers``:
    the start command, published by the scheduler at ``start_at``, never after
    ``telemetry.not_after_secs`` past it)."""
    from herald import timers

    sid = schedule_id or new_schedule_id()
    seed = seed if seed is not None else int.from_bytes(bytes.fromhex(sid)[:7], "big")
    not_after = start_at + timedelta(seconds=settings.telemetry.not_after_secs)
    command = StreamCommand(
        action="start",
        schedule_id=sid,
        ship=ship,
        host=host,
        port=port,
        rate_hz=rate_hz,
        duration_s=duration_s,
        start_at=start_at,
        loss=loss,
        seed=seed,
        run_id=run_id,
    )
    row = {
        "id": sid,
        "ship": ship,
        "run_id": run_id,
        "start_at": start_at,
        "not_after": not_after,
        "duration_s": duration_s,
        "rate_hz": rate_hz,
        "host": host,
        "port": port,
        "loss": loss,
        "seed": seed,
        "packets_expected": packets(duration_s, rate_hz),
        "state": "scheduled",
        "created_at": now,
    }
    timer = timers.scheduled_row(
        settings,
        kind="publish",
        topic=COMMANDS.name,
        key=sid,
        payload=msgspec.json.encode(command),
        due_at=start_at,
        now=now,
        item_id=sid,
        not_after=not_after,
    )
    return row, timer


def stop_command(row: Any) -> StreamCommand:
    """The command that stops the stream of a schedule's row."""
    return StreamCommand(
        action="stop",
        schedule_id=row.id,
        ship=row.ship,
        host=row.host,
        port=row.port,
        rate_hz=row.rate_hz,
        duration_s=row.duration_s,
        start_at=row.start_at,
        loss=row.loss,
        seed=row.seed,
        run_id=row.run_id,
    )


# -- the scenario ------------------------------------------------------------------------------

_EXAMPLE_TIME: Final = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
_EXAMPLE_ID: Final = "5e0c7a1d9b3f4e2a8c6d0f1b3a5c7e9d"


class Telemetry(Scenario):
    """Spacecraft telemetry."""

    name = "telemetry"
    title = "spacecraft telemetry"
    request_type = TelemetryRun
    topics = (COMMANDS, STREAMS, FRAMES)
    facts = ()  # frames and stream events go to the scenario's own tables, not outcomes
    records = (STREAMS, FRAMES)
    rate_param = "rate_hz"
    run_services = ("scheduler",)
    statuses = MappingProxyType({"received": True})
    worker_label = "spaceship"
    clocked = True
    sim_defaults = MappingProxyType({"ships": 5, "duration": 30.0, "rate_hz": 20.0})
    # Its streams are schedules (the schedules API), not runs of the producer: sim.run
    # stores them and follows them with herald.streams.
    runs_api = False
    sim_runner = "herald.streams"

    def make_request(self, settings: Settings, **params: Any) -> TelemetryRun:
        cfg: TelemetrySettings = settings.telemetry
        requested: datetime = params["requested_at"]
        fields: dict[str, Any] = {
            "ships": [f"ship-{i + 1}" for i in range(cfg.ships)],
            "start_at": requested + timedelta(seconds=cfg.start_delay_secs),
            "duration_s": cfg.duration,
            "rate_hz": cfg.rate_hz,
            "loss": cfg.loss,
            "host": cfg.host,
            "ports": list(cfg.ports),
        }
        fields.update(params)
        unknown = sorted(set(fields) - set(TelemetryRun.__struct_fields__))
        if unknown:
            raise ConfigError(f"the telemetry scenario has no parameter {', '.join(unknown)}")
        try:
            return checked(TelemetryRun(**fields))
        except (TypeError, ValueError, msgspec.ValidationError) as exc:
            raise ConfigError(f"invalid telemetry run: {exc}") from None

    def source(self, request: RunRequest) -> CountSource:
        # The scheduler starts a telemetry run's streams (its schedules); the producer has
        # nothing to publish for it.
        return CountSource(total=0, rate=None, records=lambda _start, _count: iter(()))

    def record(self, conn: Connection, topic: Topic, values: list[Any]) -> None:
        from herald.db import store

        if topic is FRAMES:
            store.write_frames(conn, values)
        else:
            store.record_stream_events(conn, values)

    def examples(self) -> Mapping[str, list[Example]]:
        start = StreamCommand(
            action="start",
            schedule_id=_EXAMPLE_ID,
            ship="voyager-1",
            host="127.0.0.1",
            port=47100,
            rate_hz=20.0,
            duration_s=30.0,
            start_at=_EXAMPLE_TIME,
            seed=7,
        )
        battery = Battery("voyager-1", 7)
        voltage, current, temperature, soc, sunlit = battery.step(3.0)
        frame = TelemetryFrame(
            id=f"{_EXAMPLE_ID}:0",
            schedule_id=_EXAMPLE_ID,
            ship="voyager-1",
            apid=apid_of("voyager-1"),
            seq=0,
            n=0,
            t=_EXAMPLE_TIME.timestamp(),
            voltage=round(voltage, 3),
            current=round(current, 3),
            temperature=round(temperature, 3),
            soc=round(soc, 4),
            sunlit=sunlit,
            reordered=False,
            sender="127.0.0.1:52114",
            ingestor="ingestor@ground-1:4711",
            received_at=_EXAMPLE_TIME + timedelta(milliseconds=2),
        )
        finished = StreamEvent(
            schedule_id=_EXAMPLE_ID,
            ship="voyager-1",
            event="finished",
            packets_sent=600,
            spaceship="spaceship@ground-1:4702",
            at=_EXAMPLE_TIME + timedelta(seconds=30),
        )
        run = TelemetryRun(
            run_id="9d2b4f6a8c0e",
            seed=7,
            requested_at=_EXAMPLE_TIME,
            ships=["ship-1", "ship-2"],
            start_at=_EXAMPLE_TIME + timedelta(seconds=3),
            duration_s=30.0,
            rate_hz=20.0,
            ports=[47100, 47101],
        )
        return {
            "TelemetryRun": [Example("two-ships", "Two ships, 30 s at 20 Hz", checked(run))],
            "StreamCommand": [Example("start", "Start voyager-1's stream", checked(start))],
            "StreamEvent": [Example("finished", "A stream ended", checked(finished))],
            "TelemetryFrame": [Example("frame", "The stream's first frame", checked(frame))],
        }


SCENARIO: Final = Telemetry()

"""The telemetry scenario's pieces without a broker or a database: the battery model, the
CCSDS packets, the sequence counts, the settings and the checks a schedule must pass."""

from __future__ import annotations

import itertools
import struct
from datetime import UTC, datetime

import pytest

from herald.config import load_settings
from herald.errors import ConfigError
from herald.scenarios import base, telemetry
from herald.scenarios.telemetry import (
    VOLTAGE_RANGE,
    Battery,
    PacketError,
    Sample,
    StreamCommand,
    StreamOrder,
    apid_of,
    pack,
    unpack,
)

SCHEDULE = "0123456789abcdef0123456789abcdef"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _orbits(battery: Battery, orbits: int, dt: float = 5.0) -> list[tuple[float, ...]]:
    steps = round(orbits * battery.orbit_secs / dt)
    return [battery.step(dt) for _ in range(steps)]


@pytest.mark.parametrize("seed", range(12))
def test_the_battery_stays_within_physical_bounds_over_many_orbits(seed: int) -> None:
    battery = Battery(f"ship-{seed}", seed)
    readings = _orbits(battery, 20, dt=30.0)
    assert len(readings) == 3600
    for voltage, current, temperature, soc, _sunlit in readings:
        assert 0.0 <= soc <= 1.0
        assert VOLTAGE_RANGE[0] <= voltage <= VOLTAGE_RANGE[1]
        assert -16.0 <= current <= 12.0
        # Between the colder surroundings and the warmer one plus the hottest I²R heating.
        assert -5.0 - 1e-9 <= temperature <= 20.0 + 144 * 0.08 * 1800 / 3000 + 1e-9


def test_the_battery_drains_in_eclipse_and_charges_in_sunlight() -> None:
    # Phase 0: the orbit starts with its eclipse (35% of 5,400 s = 1,890 s).
    battery = Battery("voyager-1", 3, phase=0.0, soc=0.6)
    assert not battery.sunlit
    eclipse = [battery.step(10.0) for _ in range(188)]
    assert all(not r[4] and r[1] > 0 for r in eclipse)  # discharging throughout
    socs = [r[3] for r in eclipse]
    assert all(b < a for a, b in itertools.pairwise(socs))
    drained = socs[0] - socs[-1]
    # Coulomb counting: 4 to 12 A for 1,870 s out of 40 Ah.
    assert 4 * 1870 / 3600 / 40 < drained < 12 * 1880 / 3600 / 40
    battery.step(20.0)
    sun = [battery.step(10.0) for _ in range(300)]
    assert all(r[4] and r[1] < 0 for r in sun)
    assert sun[-1][3] > sun[0][3] > socs[-1]
    # The voltage sags under load and rises on charge: V = OCV(SoC) - I·R.
    for voltage, current, _t, soc, _s in (*eclipse[:3], *sun[:3]):
        assert voltage == pytest.approx(
            telemetry.open_circuit_voltage(soc) - current * telemetry.RESISTANCE_OHM
        )
    assert eclipse[-1][0] < telemetry.open_circuit_voltage(eclipse[-1][3]) < sun[0][0]


def test_a_full_battery_stops_charging_and_an_empty_one_sheds_its_load() -> None:
    full = Battery("full", 1, phase=0.5, soc=1.0)  # sunlit
    voltage, current, _t, soc, sunlit = full.step(1.0)
    assert (sunlit, current, soc) == (True, 0.0, 1.0)
    assert voltage == pytest.approx(telemetry.open_circuit_voltage(1.0))
    empty = Battery("empty", 1, phase=0.0, soc=0.0)  # in eclipse
    _v, current, _t, soc, sunlit = empty.step(1.0)
    assert (sunlit, current, soc) == (False, 0.0, 0.0)


def test_the_temperature_lags_its_surroundings_and_is_heated_by_the_current() -> None:
    battery = Battery("hot", 5, phase=0.0, soc=0.8)
    start = battery.temperature
    readings = [battery.step(60.0) for _ in range(30)]  # 30 min of eclipse, -5 °C outside
    temps = [r[2] for r in readings]
    assert temps[0] < start and all(b < a for a, b in itertools.pairwise(temps))
    # After one time constant, it has gone about 63% of the way; I²R keeps it above -5 °C.
    assert -5.0 < temps[-1] < start - 0.5 * (start + 5.0)


def test_each_ship_has_its_own_battery_the_same_for_the_same_seed() -> None:
    a1, a2, b = Battery("ship-1", 9), Battery("ship-1", 9), Battery("ship-2", 9)
    assert _orbits(a1, 1, 60.0) == _orbits(a2, 1, 60.0)
    assert Battery("ship-1", 9).soc != b.soc
    assert Battery("ship-1", 10).soc != Battery("ship-1", 9).soc


def test_a_stream_has_rate_times_duration_samples_at_their_times() -> None:
    command = StreamCommand(
        action="start",
        schedule_id=SCHEDULE,
        ship="ship-1",
        host="127.0.0.1",
        port=47100,
        rate_hz=20.0,
        duration_s=1.5,
        start_at=START,
        seed=4,
    )
    got = list(telemetry.samples(command, orbit_secs=5400, eclipse_fraction=0.35, model_speed=60))
    assert len(got) == 30
    assert [s.t for s in got[:3]] == [START.timestamp() + k / 20 for k in range(3)]
    assert telemetry.packets(0.01, 10) == 1 and telemetry.packets(30, 20) == 600


def _sample() -> Sample:
    return Sample(START.timestamp(), 28.5, 7.25, 14.5, 0.625, True)


def test_a_packet_round_trips_with_its_ccsds_primary_header() -> None:
    datagram = pack("voyager-1", SCHEDULE, 16385, _sample())
    first, second, length = struct.unpack(">HHH", datagram[:6])
    assert first >> 13 == 0 and (first >> 12) & 1 == 0 and (first >> 11) & 1 == 0
    assert first & 0x7FF == apid_of("voyager-1") != 0x7FF
    assert second >> 14 == 0b11 and second & 0x3FFF == 1  # 16,385 mod 2¹⁴
    assert length == len(datagram) - 7
    packet = unpack(datagram)
    assert (packet.apid, packet.seq, packet.schedule_id, packet.ship) == (
        apid_of("voyager-1"),
        1,
        SCHEDULE,
        "voyager-1",
    )
    assert packet.sample == _sample()  # float32-exact values survive unchanged


def _with_header(datagram: bytes, first: int | None = None, second: int | None = None) -> bytes:
    f, s, n = struct.unpack(">HHH", datagram[:6])
    return (
        struct.pack(">HHH", f if first is None else first, s if second is None else second, n)
        + (datagram[6:])
    )


def test_malformed_packets_are_refused_with_the_reason() -> None:
    good = pack("ship-1", SCHEDULE, 5, _sample())
    f, s, _n = struct.unpack(">HHH", good[:6])
    bad = {
        b"hello": "too short: 5 bytes, a packet has at least 48",
        good + b"x" * 40: "too long: 93 bytes, a packet has at most 79",
        _with_header(good, first=f | 0x2000): "packet version 1, not 0",
        _with_header(good, first=f | 0x1000): "a telecommand packet, not telemetry",
        _with_header(good, first=f | 0x0800): "a secondary header",
        _with_header(good, second=s & 0x3FFF): "sequence flags 00, not 11 (unsegmented)",
        good[:-1] + b"!": "ship name 'ship-!' does not match",
        good[:-2] + b"\xff\xfe": "the ship's name is not UTF-8",
        _with_header(good, first=(apid_of("ship-1") + 1) % 2047): "APID",
        good[:6] + good[6:-1]: "data length field says 47 bytes, the datagram has 46",
        pack("ship-1", SCHEDULE, 5, Sample(1.0, float("nan"), 1, 1, 0.5, False)): "voltage is nan",
        pack("ship-1", SCHEDULE, 5, Sample(-1.0, 1, 1, 1, 0.5, False)): "sample time -1.0",
        pack("ship-1", SCHEDULE, 5, Sample(1.0, 1, 1, 1, 1.5, False)): "state of charge 1.5",
    }
    flags = bytearray(good)
    flags[6 + 16 + 8 + 16] = 4
    bad[bytes(flags)] = "flags 0x04"
    for datagram, reason in bad.items():
        with pytest.raises(PacketError) as info:
            unpack(datagram)
        assert str(info.value).startswith(reason), (datagram, str(info.value))


def test_the_sequence_count_is_unwrapped_and_late_packets_are_counted() -> None:
    order = StreamOrder()
    counts = [0, 1, 3, 2, 4, *range(5, 16384), 0, 1]  # wraps after 16,383
    placed = [order.place(c) for c in counts]
    assert placed[:5] == [(0, False), (1, False), (3, False), (2, True), (4, False)]
    assert placed[-2:] == [(16384, False), (16385, False)]
    assert (order.received, order.reordered, order.highest) == (len(counts), 1, 16385)
    # A late packet from before the wrap still gets its own number.
    assert order.place(16383) == (16383, True)


def test_the_settings_section_and_its_rules() -> None:
    cfg = load_settings(overrides={"telemetry": {"duration": "2m", "port_max": 47103}}).telemetry
    assert (cfg.duration, list(cfg.ports)) == (120.0, [47100, 47101, 47102, 47103])
    with pytest.raises(ConfigError, match="port_max 47000 is below port_min 47100"):
        load_settings(overrides={"telemetry": {"port_max": 47000}})
    with pytest.raises(ConfigError, match="'nowhere' is not a network"):
        load_settings(overrides={"telemetry": {"allowed_networks": ["nowhere"]}})


def test_a_host_must_be_an_address_in_the_allowed_networks() -> None:
    allowed = ["127.0.0.0/8", "::1/128"]
    assert telemetry.host_refusal("127.0.0.1", allowed) is None
    assert telemetry.host_refusal("localhost", allowed) is None
    assert telemetry.host_refusal("::1", allowed) is None
    assert telemetry.host_refusal("10.0.0.8", allowed) == (
        "10.0.0.8 is outside the allowed networks (127.0.0.0/8, ::1/128)"
    )
    assert telemetry.host_refusal("example.org", allowed) == (
        "'example.org' is not an IP address (or localhost)"
    )


def test_a_telemetry_run_is_a_plan_of_streams_the_producer_has_nothing_for() -> None:
    settings = load_settings(overrides={"telemetry": {"ships": 3, "rate_hz": 10}})
    scenario = base.get("telemetry")
    request = scenario.make_request(settings, run_id="r1", seed=1, requested_at=START, config={})
    assert isinstance(request, telemetry.TelemetryRun)
    assert request.ships == ["ship-1", "ship-2", "ship-3"]
    assert (request.packets_per_stream, request.duration_secs) == (300, 30.0)
    assert (request.start_at - START).total_seconds() == 3.0
    assert scenario.source(request).total == 0
    assert not scenario.runs_api
    with pytest.raises(ConfigError, match="no parameter nope"):
        scenario.make_request(settings, run_id="r1", seed=1, requested_at=START, nope=1)
    with pytest.raises(ConfigError, match="invalid telemetry run"):
        scenario.make_request(settings, run_id="r1", seed=1, requested_at=START, ships=[])


def test_sim_flags_fit_the_telemetry_scenario_and_leave_the_others_rate_alone() -> None:
    from herald.services import registry
    from herald.sim import SimOptions, settings_for

    chosen = settings_for(
        SimOptions(scenario="telemetry", ships=3, duration="4s", rate=25.0, params=("loss=0.1",))
    )
    cfg = chosen.telemetry
    assert (cfg.ships, cfg.duration, cfg.rate_hz, cfg.loss) == (3, 4.0, 25.0, 0.1)
    assert chosen.producer.rate is None  # --rate is the streams' rate here
    assert settings_for(SimOptions(rate=250.0)).producer.rate == 250.0  # and the SMS producer's
    names = [i.name for i in registry.instances(chosen, scenario="telemetry")]
    assert names == ["producer", "monitor", "recorder", "scheduler", "spaceship", "ingestor"]

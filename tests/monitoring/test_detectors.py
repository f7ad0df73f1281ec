"""The pure detectors: divergence, plateau, stall and resource rules, and the plug-in contract."""

from __future__ import annotations

import math
import random

import pytest
from pydantic import BaseModel

from neurfly.core.detectors import (
    DetectorContext,
    DeviceSample,
    DivergenceDetector,
    DivergenceSettings,
    Finding,
    FindingKind,
    MonitoringSpec,
    PlateauDetector,
    PlateauSettings,
    ResourceDetector,
    ResourceSample,
    ResourceSettings,
    StallDetector,
    StallSettings,
    build_detectors,
    check_monitoring,
    detectors,
)
from neurfly.core.spec import parse_spec
from neurfly.errors import SpecError
from support import make_spec

MINIMISE = DetectorContext(objective="loss", maximize=False, report_timeout_s=600.0)
MAXIMISE = DetectorContext(objective="accuracy", maximize=True, report_timeout_s=600.0)


def _feed(detector, metric: str, values: list[float], first_step: int = 1) -> dict[int, list[Finding]]:
    """Report ``values`` at consecutive steps; return the findings by step."""
    return {step: detector.observe(step, {metric: value}, float(step))
            for step, value in enumerate(values, start=first_step)}


def _fired_at(findings: dict[int, list[Finding]]) -> list[int]:
    return [step for step, found in findings.items() if any(f.active for f in found)]


# -- divergence ---------------------------------------------------------------------------------


def test_nan_loss_diverges_at_once() -> None:
    divergence = DivergenceDetector(DivergenceSettings(), MINIMISE)
    plateau = PlateauDetector(PlateauSettings(patience=2), MINIMISE)
    losses = [1.0, 0.8, math.nan, math.nan, math.nan, math.nan]

    diverged = _feed(divergence, "loss", losses)
    plateaued = _feed(plateau, "loss", losses)

    assert _fired_at(diverged) == [3]
    assert diverged[3][0].rule == "non_finite"
    assert diverged[3][0].evidence["metrics"] == {"loss": "nan"}
    assert _fired_at(plateaued) == []


def test_infinite_other_metric_diverges() -> None:
    divergence = DivergenceDetector(DivergenceSettings(), MINIMISE)

    found = divergence.observe(1, {"loss": 0.5, "grad_norm": math.inf}, 1.0)

    assert [f.rule for f in found] == ["non_finite"]
    assert found[0].evidence["metrics"] == {"grad_norm": "inf"}


def test_spike_needs_consecutive_reports() -> None:
    settings = DivergenceSettings(factor=10.0, patience=3)
    divergence = DivergenceDetector(settings, MINIMISE)

    found = _feed(divergence, "loss", [1.0, 0.1, 2.0, 2.0, 0.5, 2.0, 2.0, 2.0, 2.0])

    assert _fired_at(found) == [8]
    assert found[8][0].evidence["best"] == 0.1
    assert found[8][0].evidence["limit"] == pytest.approx(1.0)


def test_spike_at_limit_is_not_divergence() -> None:
    divergence = DivergenceDetector(DivergenceSettings(factor=10.0, patience=1), MINIMISE)

    found = _feed(divergence, "loss", [0.1, 1.0, 1.0, 1.0])

    assert _fired_at(found) == []


def test_negative_loss_spike_scaled_by_magnitude() -> None:
    divergence = DivergenceDetector(DivergenceSettings(factor=2.0, patience=1), MINIMISE)

    found = _feed(divergence, "loss", [-4.0, -0.5, 0.5])

    assert _fired_at(found) == [3]


def test_divergence_defaults_to_minimised_objective() -> None:
    context = DetectorContext(objective="nll", maximize=False, report_timeout_s=60.0)
    divergence = DivergenceDetector(DivergenceSettings(patience=1), context)

    found = _feed(divergence, "nll", [1.0, 50.0])

    assert _fired_at(found) == [2]


def test_maximised_objective_has_no_spike_rule() -> None:
    divergence = DivergenceDetector(DivergenceSettings(patience=1), MAXIMISE)

    found = _feed(divergence, "accuracy", [0.01, 0.9, 0.95])

    assert _fired_at(found) == []


# -- plateau ------------------------------------------------------------------------------------


def test_maximised_accuracy_plateaus_exactly() -> None:
    settings = PlateauSettings(mode="absolute", threshold=0.01, patience=3)
    plateau = PlateauDetector(settings, MAXIMISE)
    # Best 0.70 at step 3; 0.705 and 0.709 do not beat it by more than 0.01.
    accuracy = [0.5, 0.6, 0.70, 0.705, 0.709, 0.70, 0.708, 0.65]

    found = _feed(plateau, "accuracy", accuracy)

    assert _fired_at(found) == [6]
    evidence = found[6][0].evidence
    assert evidence["best"] == 0.70
    assert evidence["best_step"] == 3
    assert evidence["direction"] == "maximize"


def test_accuracy_improvement_restarts_window() -> None:
    plateau = PlateauDetector(PlateauSettings(mode="absolute", threshold=0.01, patience=3), MAXIMISE)

    found = _feed(plateau, "accuracy", [0.5, 0.5, 0.5, 0.52, 0.52, 0.52, 0.52])

    assert _fired_at(found) == [7]


def test_negative_log_likelihood_plateaus_exactly() -> None:
    context = DetectorContext(objective="nll", maximize=False, report_timeout_s=600.0)
    plateau = PlateauDetector(PlateauSettings(mode="relative", threshold=0.01, patience=4), context)
    # Best -2.0 at step 3; an improvement must go below -2.0 - 0.01 * 2.0 = -2.02.
    nll = [-1.0, -1.5, -2.0, -2.01, -2.019, -1.9, -2.015, -2.0]

    found = _feed(plateau, "nll", nll)

    assert _fired_at(found) == [7]
    assert found[7][0].evidence["best"] == -2.0
    assert found[7][0].evidence["best_step"] == 3


def test_negative_values_improve_toward_minus() -> None:
    context = DetectorContext(objective="nll", maximize=False, report_timeout_s=600.0)
    plateau = PlateauDetector(PlateauSettings(mode="relative", threshold=0.01, patience=2), context)

    found = _feed(plateau, "nll", [-2.0, -2.03, -2.07, -2.1, -2.2])

    assert _fired_at(found) == []


def test_spike_then_recovery_is_not_plateau() -> None:
    plateau = PlateauDetector(PlateauSettings(patience=3), MINIMISE)
    divergence = DivergenceDetector(DivergenceSettings(), MINIMISE)
    losses = [1.0, 0.5, 4.0, 3.0, 0.4, 0.3, 0.2]

    plateaued = _feed(plateau, "loss", losses)
    diverged = _feed(divergence, "loss", losses)

    assert _fired_at(plateaued) == []
    assert _fired_at(diverged) == []


def test_plateau_fires_once_per_episode() -> None:
    plateau = PlateauDetector(PlateauSettings(mode="absolute", threshold=0.0, patience=2), MINIMISE)

    found = _feed(plateau, "loss", [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5])

    assert _fired_at(found) == [3, 8]


def test_plateau_skips_steps_between_reports() -> None:
    plateau = PlateauDetector(PlateauSettings(patience=10), MINIMISE)

    first = plateau.observe(5, {"loss": 1.0}, 5.0)
    early = plateau.observe(10, {"loss": 1.0}, 10.0)
    due = plateau.observe(15, {"loss": 1.0}, 15.0)

    assert first == []
    assert early == []
    assert [f.step for f in due] == [15]


def test_plateau_of_other_metric_uses_its_direction() -> None:
    settings = PlateauSettings(metric="auc", direction="maximize", mode="absolute", threshold=0.0, patience=1)
    plateau = PlateauDetector(settings, MINIMISE)

    found = _feed(plateau, "auc", [0.6, 0.7, 0.65])

    assert _fired_at(found) == [3]


# -- stall --------------------------------------------------------------------------------------


def test_stall_fires_after_timeout_and_clears() -> None:
    stall = StallDetector(StallSettings(timeout_s=60.0), MINIMISE)
    stall.start_attempt(1000.0)

    before = stall.check(1059.0)
    fired = stall.check(1060.0)
    repeated = stall.check(1200.0)
    cleared = stall.observe(1, {"loss": 1.0}, 1201.0)
    quiet = stall.check(1250.0)
    again = stall.check(1261.0)

    assert before == []
    assert [f.active for f in fired] == [True]
    assert fired[0].evidence["timeout_s"] == 60.0
    assert repeated == []
    assert [f.active for f in cleared] == [False]
    assert quiet == []
    assert [f.active for f in again] == [True]


def test_stall_timeout_defaults_to_half_report_timeout() -> None:
    context = DetectorContext(objective="loss", maximize=False, report_timeout_s=100.0)
    stall = StallDetector(StallSettings(), context)
    stall.start_attempt(0.0)

    assert stall.check(49.0) == []
    assert len(stall.check(50.0)) == 1


# -- resources ----------------------------------------------------------------------------------


def _sample(at: float, utilisation: float = 0.9, memory: int = 1 << 30, limit: int = 8 << 30, cpu: float = 90.0,
            read: float | None = 0.0, write: float | None = 0.0, blocked: bool = False,
            device_memory: tuple[int, int] | None = None) -> ResourceSample:
    used, total = device_memory if device_memory else (None, None)
    devices = (DeviceSample(0, utilisation, used, total),)
    return ResourceSample(1, at, cpu, memory, limit, read, write, blocked, devices)


def test_idle_devices_fire_after_window() -> None:
    detector = ResourceDetector(ResourceSettings(idle_utilisation=0.05, idle_for_s=30.0), MINIMISE)

    busy = detector.observe_resources(_sample(0.0, utilisation=0.5))
    start = detector.observe_resources(_sample(10.0, utilisation=0.01))
    early = detector.observe_resources(_sample(39.0, utilisation=0.0))
    due = detector.observe_resources(_sample(40.0, utilisation=0.02))
    later = detector.observe_resources(_sample(80.0, utilisation=0.0))

    assert busy == start == early == []
    assert [f.rule for f in due] == ["idle_devices"]
    assert due[0].evidence["idle_for_s"] == 30.0
    assert later == []


def test_memory_near_limit_fires_once() -> None:
    detector = ResourceDetector(ResourceSettings(memory_fraction=0.9), MINIMISE)

    low = detector.observe_resources(_sample(0.0, memory=7 << 30))
    high = detector.observe_resources(_sample(5.0, memory=int(7.5 * 2**30)))
    still = detector.observe_resources(_sample(10.0, memory=int(7.6 * 2**30)))

    assert low == []
    assert [f.rule for f in high] == ["memory"]
    assert high[0].evidence["ratio"] == pytest.approx(7.5 / 8, abs=1e-4)
    assert still == []


def test_device_memory_near_total_fires() -> None:
    detector = ResourceDetector(ResourceSettings(memory_fraction=0.9), MINIMISE)

    found = detector.observe_resources(_sample(0.0, device_memory=(int(0.95 * 80e9), int(80e9))))

    assert [f.rule for f in found] == ["device_memory"]


def test_io_stall_needs_earlier_io() -> None:
    settings = ResourceSettings(io_stall_for_s=20.0, idle_for_s=1000.0)
    never = ResourceDetector(settings, MINIMISE)
    stalled = ResourceDetector(settings, MINIMISE)

    quiet = [never.observe_resources(_sample(t, cpu=0.0, utilisation=0.5)) for t in (0.0, 10.0, 30.0)]
    stalled.observe_resources(_sample(0.0, read=5e6))
    found = [stalled.observe_resources(_sample(t, cpu=0.0, utilisation=0.5, read=0.0)) for t in (10.0, 20.0, 30.0)]

    assert quiet == [[], [], []]
    assert found[0] == found[1] == []
    assert [f.rule for f in found[2]] == ["io_stalled"]


def test_blocked_on_io_stalls() -> None:
    detector = ResourceDetector(ResourceSettings(io_stall_for_s=5.0), MINIMISE)

    first = detector.observe_resources(_sample(0.0, blocked=True))
    due = detector.observe_resources(_sample(5.0, blocked=True))

    assert first == []
    assert [f.rule for f in due] == ["io_stalled"]


# -- spec and plug-ins --------------------------------------------------------------------------


def test_spec_monitoring_defaults() -> None:
    spec, _ = parse_spec(make_spec())

    assert spec.monitoring.stop_diverged is False
    assert spec.monitoring.divergence.factor == 10.0
    assert spec.monitoring.plateau.patience == 10
    assert spec.monitoring.stall.timeout_s is None


def test_spec_monitoring_rejects_unknown_field() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(make_spec(monitoring={"plateau": {"patiense": 3}}))

    assert "monitoring.plateau.patiense: unknown field" in str(caught.value)


def test_spec_monitoring_rejects_bad_value() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(make_spec(monitoring={"divergence": {"factor": 0.5}}))

    assert "monitoring.divergence.factor" in str(caught.value)


def test_plugin_options_checked() -> None:
    spec = MonitoringSpec(detectors={"plateau": {}, "no-such": {}})

    problems = check_monitoring(spec, detectors.names())

    assert any("monitoring.detectors.plateau: plateau is built in" in p for p in problems)
    assert any("monitoring.detectors.no-such: unknown detector" in p for p in problems)


def test_disabled_detector_not_built() -> None:
    spec = MonitoringSpec(plateau=PlateauSettings(enabled=False))

    built = build_detectors(spec, MINIMISE)

    assert sorted(d.name for d in built) == ["divergence", "resources", "stall"]


def test_detector_rejects_wrong_settings() -> None:
    with pytest.raises(TypeError, match="PlateauSettings"):
        PlateauDetector(StallSettings(), MINIMISE)


@pytest.mark.parametrize("name", detectors.names())
def test_detector_contract(name: str) -> None:
    plugin = detectors.get(name)
    assert plugin.name == name
    assert issubclass(plugin.settings_model, BaseModel)
    settings = plugin.settings_model()

    def run() -> list[Finding]:
        rng = random.Random(7)
        detector = plugin(settings, MINIMISE)
        detector.start_attempt(0.0)
        found: list[Finding] = []
        for step in range(1, 200):
            value = rng.choice([rng.uniform(-5, 5), math.nan, math.inf, -math.inf, 1.0])
            found += detector.observe(step, {"loss": value, "accuracy": rng.random()}, float(step * 10))
            sample = ResourceSample(1, float(step * 10), rng.uniform(0, 400), rng.randrange(1 << 34), rng.choice([None, 1 << 33]),
                                    rng.choice([None, 0.0, 1e6]), rng.choice([None, 0.0]), rng.random() < 0.5,
                                    (DeviceSample(0, rng.random(), rng.choice([None, 1 << 30]), 1 << 31),))
            found += detector.observe_resources(sample)
            found += detector.check(float(step * 10 + rng.uniform(0, 5000)))
        return found

    first, second = run(), run()

    assert all(isinstance(f, Finding) for f in first)
    assert first == second
    assert all(f.kind in FindingKind for f in first)


@pytest.mark.parametrize("name", detectors.names())
def test_detector_steady_condition_fires_once(name: str) -> None:
    plugin = detectors.get(name)
    detector = plugin(plugin.settings_model(), MINIMISE)
    detector.start_attempt(0.0)
    found: list[Finding] = []
    for step in range(1, 100):
        found += detector.observe(step, {"loss": math.nan}, float(step))
        found += detector.observe_resources(_sample(float(step * 1000), utilisation=0.0, memory=8 << 30, blocked=True))
        found += detector.check(float(step * 100000))

    firing: set[tuple[FindingKind, str]] = set()
    for finding in found:
        rule = (finding.kind, finding.rule)
        if finding.active:
            assert rule not in firing, f"{rule} fired again before it cleared"
            firing.add(rule)
        else:
            firing.discard(rule)


def test_submission_rejects_unknown_plugin() -> None:
    from types import SimpleNamespace

    from neurfly.monitoring.service import MonitoringService

    search = SimpleNamespace(spec=make_spec(monitoring={"detectors": {"gradient-noise": {"window": 5}}}))

    problems = MonitoringService().check_submission(None, search)

    assert problems == [f"monitoring.detectors.gradient-noise: unknown detector; registered: {', '.join(detectors.names())}"]

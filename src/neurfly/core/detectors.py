"""Detectors: pure rules that watch one trial's metric and resource streams.

A detector gets a trial's reports (``observe``), its resource samples
(``observe_resources``) and the passing time (``check``) and returns
``Finding`` values: divergence, plateau, stall, resource anomalies. It does no
I/O, so the monitoring service, the simulator and tests drive the same code.
The ``monitoring:`` section of a search spec (``MonitoringSpec``) configures
the built-in detectors per search, with safe defaults.
"""

from __future__ import annotations

import math
from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurfly.registry import Registry

# A memory alert re-arms once usage falls this far (as a fraction of the limit) below its threshold.
MEMORY_HYSTERESIS = 0.05


class FindingKind(str, Enum):
    """Kind of a finding; the values match the alert categories."""

    DIVERGENCE = "divergence"
    PLATEAU = "plateau"
    STALL = "stall"
    RESOURCE = "resource"


class FindingSeverity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Finding:
    """One result of a detector.

    Attributes:
        kind: The category of the finding.
        detector: Registry name of the detector that returned it.
        rule: Short identifier of the rule within the detector (``non_finite``,
            ``idle_devices``); findings of one trial are deduplicated by kind and rule.
        severity: How urgent it is.
        message: One sentence that names the values and what to check.
        step: The report step it refers to, if any.
        evidence: The values that triggered it, JSON-serialisable.
        active: ``False`` when the condition has cleared (reports resumed),
            so the alert raised for it can be resolved.
    """

    kind: FindingKind
    detector: str
    rule: str
    severity: FindingSeverity
    message: str
    step: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    active: bool = True


@dataclass(frozen=True)
class DetectorContext:
    """Settings of the search whose trial a detector watches.

    Attributes:
        objective: Name of the objective metric.
        maximize: Whether the objective is maximised.
        report_timeout_s: Silence after which the controller kills a trial.
    """

    objective: str
    maximize: bool
    report_timeout_s: float


@dataclass(frozen=True)
class DeviceSample:
    """Load of one device held by an attempt.

    Attributes:
        index: The device slot.
        utilisation: Busy fraction from 0.0 to 1.0.
        memory_used_bytes: Device memory in use, or ``None`` where the device has none of its own.
        memory_total_bytes: Device memory, or ``None``.
    """

    index: int
    utilisation: float
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None


@dataclass(frozen=True)
class ResourceSample:
    """Resource use of one attempt's worker (and its child processes) at one moment.

    Attributes:
        attempt_id: The attempt.
        at: Seconds since the epoch.
        cpu_percent: CPU use, 100 per fully used core.
        memory_bytes: Resident memory.
        memory_limit_bytes: The lowest memory limit that applies to the
            worker (its rlimit, its cgroup, or the host's memory).
        read_bytes_per_s: Disk read rate since the previous sample, ``None`` on the first.
        write_bytes_per_s: Disk write rate since the previous sample, ``None`` on the first.
        blocked_on_io: The worker waits in uninterruptible I/O (Linux state ``D``).
        devices: One entry per device slot the attempt holds.
    """

    attempt_id: int
    at: float
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int | None = None
    read_bytes_per_s: float | None = None
    write_bytes_per_s: float | None = None
    blocked_on_io: bool = False
    devices: tuple[DeviceSample, ...] = ()

    @property
    def device_utilisation(self) -> float | None:
        """Mean utilisation of the attempt's devices, ``None`` without a device reading."""
        if not self.devices:
            return None
        return sum(d.utilisation for d in self.devices) / len(self.devices)


# -- settings -----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlateauMode(str, Enum):
    RELATIVE = "relative"
    ABSOLUTE = "absolute"


class DivergenceSettings(_Strict):
    """A trial diverges when a metric is NaN or infinite, or its loss stays far above its best.

    ``metric`` defaults to ``loss`` when the trial reports it, else to the
    objective when the objective is minimised. A report counts as a spike
    when ``value > best + (factor - 1) * max(|best|, min_scale)``, which is
    ``value > factor * best`` for a positive best.
    """

    enabled: bool = True
    metric: str | None = None
    factor: float = Field(default=10.0, gt=1.0, description="multiple of the best loss that counts as a spike")
    patience: int = Field(default=3, ge=1, description="consecutive spiking reports before the trial counts as diverged")
    min_scale: float = Field(default=1e-8, gt=0.0, description="smallest |best| used to scale the spike threshold")


class PlateauSettings(_Strict):
    """A trial plateaus when its metric has not improved for ``patience`` steps.

    An improvement beats the best value so far by more than ``threshold``
    (``mode: absolute``) or by more than ``threshold * |best|`` (``mode:
    relative``). Only an improvement moves the best value and restarts the
    window, as in PyTorch's ``ReduceLROnPlateau``. ``metric`` defaults to the
    objective and ``direction`` to the objective's direction.
    """

    enabled: bool = True
    metric: str | None = None
    direction: Literal["minimize", "maximize"] | None = None
    mode: PlateauMode = PlateauMode.RELATIVE
    threshold: float = Field(default=1e-3, ge=0.0)
    patience: int = Field(default=10, ge=1, description="steps without improvement")


class StallSettings(_Strict):
    """A trial stalls when it sends no report for ``timeout_s``.

    ``None`` means half of ``budget.report_timeout_s``, so the alert comes
    before the controller kills the silent trial.
    """

    enabled: bool = True
    timeout_s: float | None = Field(default=None, gt=0.0)


class ResourceSettings(_Strict):
    """Thresholds of resource anomalies, judged on the executor's samples."""

    enabled: bool = True
    idle_utilisation: float = Field(default=0.05, ge=0.0, le=1.0, description="device utilisation at or below which a device counts as idle")
    idle_for_s: float = Field(default=600.0, gt=0.0, description="seconds of idle devices before an alert")
    memory_fraction: float = Field(default=0.9, gt=0.0, le=1.0, description="fraction of the memory limit that raises an alert")
    io_stall_for_s: float = Field(default=600.0, gt=0.0, description="seconds of stalled I/O before an alert")


class MonitoringSpec(_Strict):
    """The ``monitoring:`` section of a search spec.

    Attributes:
        stop_diverged: Stop a diverged trial at once (as pruned) and free its devices.
        detectors: Options of detector plug-ins by registered name; a plug-in
            runs only when it is named here.
    """

    stop_diverged: bool = False
    divergence: DivergenceSettings = Field(default_factory=DivergenceSettings)
    plateau: PlateauSettings = Field(default_factory=PlateauSettings)
    stall: StallSettings = Field(default_factory=StallSettings)
    resources: ResourceSettings = Field(default_factory=ResourceSettings)
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict)


BUILTIN_DETECTORS = ("divergence", "plateau", "stall", "resources")


# -- the extension point ------------------------------------------------------------------------


class Detector(ABC):
    """Base class of detectors; every hook is a no-op by default.

    Contract:
        * ``name`` is the registry name. ``settings_model`` is a pydantic
          model whose every field has a default; the constructor takes one
          instance of it and a ``DetectorContext``.
        * One instance watches one trial. The monitoring service creates it
          when an attempt starts and replays the trial's stored reports up to
          the attempt's start step, so a detector keeps no state it cannot
          rebuild from those reports.
        * ``observe`` gets reports in the order the trial sent them; steps
          increase within an attempt. Values may be NaN or infinite.
        * ``start_attempt(at)`` marks the start of an attempt (time-based rules restart there).
        * Every hook is pure and deterministic: no I/O, no clock reads, no
          randomness; time comes only from the arguments.
        * A rule returns an active finding once when its condition starts
          and not again until the condition has cleared, so a steady
          condition does not repeat. It may return an inactive finding when
          the condition clears.
        * Hooks raise nothing for any finite or non-finite input.
    """

    name: ClassVar[str] = ""
    settings_model: ClassVar[type[BaseModel]] = _Strict

    def __init__(self, settings: BaseModel, context: DetectorContext) -> None:
        if not isinstance(settings, self.settings_model):
            raise TypeError(f"{type(self).__name__} takes {self.settings_model.__name__} settings, got {type(settings).__name__}")
        self.settings = settings
        self.context = context

    def start_attempt(self, at: float) -> None:
        """Note that an attempt of the trial started at ``at``."""

    def observe(self, step: int, metrics: Mapping[str, float], at: float) -> list[Finding]:
        """Look at one report of the trial."""
        return []

    def observe_resources(self, sample: ResourceSample) -> list[Finding]:
        """Look at one resource sample of the trial's running attempt."""
        return []

    def check(self, now: float) -> list[Finding]:
        """Look at the passing time (no report came)."""
        return []


detectors: Registry[Detector] = Registry("neurfly.detectors", "detector")


def _better(value: float, best: float, maximize: bool) -> bool:
    return value > best if maximize else value < best


# -- divergence ---------------------------------------------------------------------------------


class DivergenceDetector(Detector):
    """Fires at once on a NaN or infinite metric, and on a loss stuck far above its best."""

    name = "divergence"
    settings_model = DivergenceSettings

    def __init__(self, settings: DivergenceSettings, context: DetectorContext) -> None:
        super().__init__(settings, context)
        self.best: float | None = None
        self.spikes = 0
        self.fired = False

    def observe(self, step: int, metrics: Mapping[str, float], at: float) -> list[Finding]:
        if self.fired:
            return []

        bad = {name: repr(value) for name, value in metrics.items() if not _finite(value)}
        if bad:
            self.fired = True
            names = ", ".join(sorted(bad))
            return [self._finding("non_finite", step, f"metric {names} is not finite at step {step}; "
                                  "lower the learning rate or clip gradients", {"metrics": bad})]

        metric = self._metric(metrics)
        if metric is None:
            return []
        return self._check_spike(step, metric, float(metrics[metric]))

    def _metric(self, metrics: Mapping[str, float]) -> str | None:
        if self.settings.metric is not None:
            return self.settings.metric if self.settings.metric in metrics else None
        if "loss" in metrics:
            return "loss"
        if not self.context.maximize and self.context.objective in metrics:
            return self.context.objective
        return None

    def _check_spike(self, step: int, metric: str, value: float) -> list[Finding]:
        if self.best is None or value < self.best:
            self.best = value
            self.spikes = 0
            return []

        limit = self.best + (self.settings.factor - 1.0) * max(abs(self.best), self.settings.min_scale)
        if value <= limit:
            self.spikes = 0
            return []

        self.spikes += 1
        if self.spikes < self.settings.patience:
            return []
        self.fired = True
        evidence = {"metric": metric, "value": value, "best": self.best, "limit": limit, "reports": self.spikes}
        message = (f"{metric} = {value:.6g} at step {step} stayed above {limit:.6g} ({self.settings.factor:g} x its best "
                   f"{self.best:.6g}) for {self.spikes} reports; lower the learning rate")
        return [self._finding("spike", step, message, evidence)]

    def _finding(self, rule: str, step: int, message: str, evidence: dict[str, Any]) -> Finding:
        return Finding(FindingKind.DIVERGENCE, self.name, rule, FindingSeverity.WARNING, message, step, evidence)


# -- plateau ------------------------------------------------------------------------------------


class PlateauDetector(Detector):
    """Fires when a metric has not improved beyond a threshold for ``patience`` steps.

    Non-finite values are ignored: they are the divergence detector's concern.
    """

    name = "plateau"
    settings_model = PlateauSettings

    def __init__(self, settings: PlateauSettings, context: DetectorContext) -> None:
        super().__init__(settings, context)
        self.metric = settings.metric or context.objective
        if settings.direction is not None:
            self.maximize = settings.direction == "maximize"
        else:
            self.maximize = context.maximize if self.metric == context.objective else False
        self.best: float | None = None
        self.best_step = 0
        self.fired = False

    def observe(self, step: int, metrics: Mapping[str, float], at: float) -> list[Finding]:
        value = metrics.get(self.metric)
        if value is None or not _finite(value):
            return []

        value = float(value)
        if self.best is None or self._improves(value):
            self.best, self.best_step, self.fired = value, step, False
            return []
        if self.fired or step - self.best_step < self.settings.patience:
            return []

        self.fired = True
        direction = "maximize" if self.maximize else "minimize"
        evidence = {"metric": self.metric, "value": value, "best": self.best, "best_step": self.best_step,
                    "patience": self.settings.patience, "threshold": self.settings.threshold,
                    "mode": self.settings.mode.value, "direction": direction}
        message = (f"{self.metric} has not improved beyond {self.best:.6g} (step {self.best_step}) for "
                   f"{step - self.best_step} steps; consider stopping the trial or changing its schedule")
        return [Finding(FindingKind.PLATEAU, self.name, "no_improvement", FindingSeverity.INFO, message, step, evidence)]

    def _improves(self, value: float) -> bool:
        margin = self.settings.threshold
        if self.settings.mode is PlateauMode.RELATIVE:
            margin *= abs(self.best)
        if self.maximize:
            return value > self.best + margin
        return value < self.best - margin


# -- stall --------------------------------------------------------------------------------------


class StallDetector(Detector):
    """Fires when an attempt sends no report for ``timeout_s``; clears on the next report."""

    name = "stall"
    settings_model = StallSettings

    def __init__(self, settings: StallSettings, context: DetectorContext) -> None:
        super().__init__(settings, context)
        self.timeout_s = settings.timeout_s if settings.timeout_s is not None else context.report_timeout_s / 2
        self.last_at: float | None = None
        self.last_step: int | None = None
        self.fired = False

    def start_attempt(self, at: float) -> None:
        self.last_at = at
        self.fired = False

    def observe(self, step: int, metrics: Mapping[str, float], at: float) -> list[Finding]:
        self.last_at, self.last_step = at, step
        if not self.fired:
            return []
        self.fired = False
        return [Finding(FindingKind.STALL, self.name, "silent", FindingSeverity.WARNING,
                        f"reports resumed at step {step}", step, {"resumed_at": at}, active=False)]

    def check(self, now: float) -> list[Finding]:
        if self.last_at is None or self.fired:
            return []

        silent = now - self.last_at
        if silent < self.timeout_s:
            return []
        self.fired = True
        evidence = {"silent_s": round(silent, 3), "timeout_s": self.timeout_s, "last_step": self.last_step}
        message = (f"no report for {silent:.0f} s (stall timeout {self.timeout_s:.0f} s, last step {self.last_step}); "
                   "check the trial's logs for a hang or a slow data source")
        return [Finding(FindingKind.STALL, self.name, "silent", FindingSeverity.WARNING, message, self.last_step, evidence)]


# -- resources ----------------------------------------------------------------------------------


class ResourceDetector(Detector):
    """Finds idle devices, memory close to its limit and stalled I/O in resource samples.

    * idle devices: the mean utilisation of the attempt's devices stays at
      or below ``idle_utilisation`` in every sample for ``idle_for_s``;
    * memory: resident memory reaches ``memory_fraction`` of the limit, or
      device memory reaches that fraction of the device's memory;
    * stalled I/O: for ``io_stall_for_s`` every sample shows the worker
      blocked on I/O, or idle (CPU below ``idle_utilisation`` x 100 %) with
      no reads or writes after it did I/O earlier in the attempt.
    """

    name = "resources"
    settings_model = ResourceSettings

    def __init__(self, settings: ResourceSettings, context: DetectorContext) -> None:
        super().__init__(settings, context)
        self.idle_since: float | None = None
        self.io_since: float | None = None
        self.did_io = False
        self.fired: set[str] = set()

    def start_attempt(self, at: float) -> None:
        self.idle_since, self.io_since, self.did_io = None, None, False
        self.fired.clear()

    def observe_resources(self, sample: ResourceSample) -> list[Finding]:
        findings = []
        for check in (self._idle, self._memory, self._device_memory, self._io):
            finding = check(sample)
            if finding is not None:
                findings.append(finding)
        return findings

    def _idle(self, sample: ResourceSample) -> Finding | None:
        utilisation = sample.device_utilisation
        if utilisation is None or utilisation > self.settings.idle_utilisation:
            self.idle_since = None
            self.fired.discard("idle_devices")
            return None

        self.idle_since = sample.at if self.idle_since is None else self.idle_since
        idle_for = sample.at - self.idle_since
        if idle_for < self.settings.idle_for_s or "idle_devices" in self.fired:
            return None
        self.fired.add("idle_devices")
        evidence = {"utilisation": utilisation, "idle_for_s": round(idle_for, 3), "devices": [d.index for d in sample.devices]}
        message = (f"the trial holds {len(sample.devices)} device(s) at {utilisation:.0%} utilisation for {idle_for:.0f} s; "
                   "check its data loading, or release the devices")
        return self._finding("idle_devices", message, evidence)

    def _memory(self, sample: ResourceSample) -> Finding | None:
        limit = sample.memory_limit_bytes
        if not limit:
            return None
        return self._near_limit("memory", sample.memory_bytes, limit,
                                f"memory {sample.memory_bytes / 2**30:.2f} GiB is {sample.memory_bytes / limit:.0%} of the limit "
                                f"{limit / 2**30:.2f} GiB; reduce the batch size or ask for more memory")

    def _device_memory(self, sample: ResourceSample) -> Finding | None:
        used = sum(d.memory_used_bytes or 0 for d in sample.devices)
        total = sum(d.memory_total_bytes or 0 for d in sample.devices if d.memory_used_bytes is not None)
        if not total:
            return None
        return self._near_limit("device_memory", used, total,
                                f"device memory {used / 2**30:.2f} GiB is {used / total:.0%} of {total / 2**30:.2f} GiB; "
                                "reduce the batch size or the model size")

    def _near_limit(self, rule: str, used: int, limit: int, message: str) -> Finding | None:
        ratio = used / limit
        if ratio < self.settings.memory_fraction - MEMORY_HYSTERESIS:
            self.fired.discard(rule)
        if ratio < self.settings.memory_fraction or rule in self.fired:
            return None
        self.fired.add(rule)
        return self._finding(rule, message, {"used_bytes": used, "limit_bytes": limit, "ratio": round(ratio, 4)})

    def _io(self, sample: ResourceSample) -> Finding | None:
        moved = (sample.read_bytes_per_s or 0.0) + (sample.write_bytes_per_s or 0.0)
        idle_cpu = sample.cpu_percent <= self.settings.idle_utilisation * 100.0
        stalled = sample.blocked_on_io or (self.did_io and moved == 0.0 and idle_cpu and sample.read_bytes_per_s is not None)
        self.did_io = self.did_io or moved > 0.0
        if not stalled:
            self.io_since = None
            self.fired.discard("io_stalled")
            return None

        self.io_since = sample.at if self.io_since is None else self.io_since
        stalled_for = sample.at - self.io_since
        if stalled_for < self.settings.io_stall_for_s or "io_stalled" in self.fired:
            return None
        self.fired.add("io_stalled")
        evidence = {"stalled_for_s": round(stalled_for, 3), "blocked_on_io": sample.blocked_on_io, "cpu_percent": sample.cpu_percent}
        message = f"the trial's I/O has stalled for {stalled_for:.0f} s; check its storage or network file system"
        return self._finding("io_stalled", message, evidence)

    def _finding(self, rule: str, message: str, evidence: dict[str, Any]) -> Finding:
        return Finding(FindingKind.RESOURCE, self.name, rule, FindingSeverity.WARNING, message, None, evidence)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def build_detectors(monitoring: MonitoringSpec, context: DetectorContext) -> list[Detector]:
    """Create the enabled detectors of a search for one trial.

    Raises:
        NotFoundError: A plug-in named in ``monitoring.detectors`` is not registered.
        pydantic.ValidationError: A plug-in's options do not match its settings model.
    """
    built: list[Detector] = []
    for name in BUILTIN_DETECTORS:
        settings = getattr(monitoring, name)
        if settings.enabled:
            built.append(detectors.get(name)(settings, context))
    for name, options in monitoring.detectors.items():
        plugin = detectors.get(name)
        built.append(plugin(plugin.settings_model.model_validate(options), context))
    return built


def check_monitoring(monitoring: MonitoringSpec, registered: list[str]) -> list[str]:
    """Return the problems of the ``monitoring.detectors`` plug-in options; empty when valid."""
    problems = []
    for name, options in monitoring.detectors.items():
        if name in BUILTIN_DETECTORS:
            problems.append(f"monitoring.detectors.{name}: {name} is built in; configure it under monitoring.{name}")
        elif name not in registered:
            problems.append(f"monitoring.detectors.{name}: unknown detector; registered: {', '.join(registered)}")
        else:
            problems.extend(_check_options(name, options))
    return problems


def _check_options(name: str, options: Any) -> list[str]:
    plugin = detectors.get(name)
    try:
        plugin.settings_model.model_validate(options)
    except ValidationError as exc:
        return [f"monitoring.detectors.{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                for e in exc.errors()]
    return []


__all__ = [
    "BUILTIN_DETECTORS",
    "Detector",
    "DetectorContext",
    "DeviceSample",
    "DivergenceDetector",
    "DivergenceSettings",
    "Finding",
    "FindingKind",
    "FindingSeverity",
    "MonitoringSpec",
    "PlateauDetector",
    "PlateauMode",
    "PlateauSettings",
    "ResourceDetector",
    "ResourceSample",
    "ResourceSettings",
    "StallDetector",
    "StallSettings",
    "build_detectors",
    "check_monitoring",
    "detectors",
]

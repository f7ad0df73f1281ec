"""Trace-driven scheduling simulator: replays job traces against the production policy code.

The simulator calls the same ``SchedulingPolicy.schedule`` as the live
controller and applies its decisions with the controller's semantics, so a
comparison of policies here measures what production runs.
"""

from neurfly.sim.automl import AutoMLWorkload, generate_automl_trace
from neurfly.sim.derive import Derivation, DerivationRule, derive_missing
from neurfly.sim.engine import PolicyContractError, SimulationConfig, Simulator
from neurfly.sim.metrics import PolicyMetrics, jain_index, summarize
from neurfly.sim.philly import read_philly
from neurfly.sim.results import JobOutcome, JobRecord, SimulationResult
from neurfly.sim.runner import load_cluster, load_trace, run_policies
from neurfly.sim.trace import TraceError, TraceJob, read_trace, write_trace

__all__ = [
    "AutoMLWorkload",
    "Derivation",
    "DerivationRule",
    "JobOutcome",
    "JobRecord",
    "PolicyContractError",
    "PolicyMetrics",
    "SimulationConfig",
    "SimulationResult",
    "Simulator",
    "TraceError",
    "TraceJob",
    "derive_missing",
    "generate_automl_trace",
    "jain_index",
    "load_cluster",
    "load_trace",
    "read_philly",
    "read_trace",
    "run_policies",
    "summarize",
    "write_trace",
]

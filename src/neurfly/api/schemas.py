"""Request and response bodies of the REST API.

Values that may be NaN or infinite (objective values, metrics) are sent as a
number when finite and as the string ``"nan"``, ``"inf"`` or ``"-inf"``
otherwise, because JSON has no such numbers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurfly.auth.roles import Role
from neurfly.core.spec import Direction
from neurfly.core.states import AttemptState, SearchState, TrialState
from neurfly.governance.models import ArtifactKind, DataRole, Sensitivity
from neurfly.monitoring.failures import FailureCategory

NonFinite = Literal["nan", "inf", "-inf"]
MetricValue = float | NonFinite | None
CurvePoint = tuple[int, MetricValue]

NAME_REGEX = r"^[a-z0-9][a-z0-9._-]{0,62}$"
KEY_ID_REGEX = r"^[a-z2-7]{12}$"
TOKEN_NAME_REGEX = r"^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,62}$"
MAX_ID = 2**31 - 1

Name = Annotated[str, Field(pattern=NAME_REGEX, min_length=1, max_length=63)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorResponse(_Model):
    """An error with a message that names the value and what to do next."""

    detail: str


# -- searches -------------------------------------------------------------------------------------


class Objective(_Model):
    metric: str
    direction: Direction


class TrialRow(_Model):
    id: int
    search_id: int
    number: int
    state: TrialState
    value: MetricValue = Field(description="Objective value of an ended trial; null while it runs.")
    params: dict[str, Any]
    step: int = Field(description="Last step the trial reported.")
    attempts: int = Field(description="Number of attempts so far.")
    message: str | None


class AttemptRow(_Model):
    id: int
    search_id: int
    trial_id: int
    trial_number: int
    number: int
    state: AttemptState
    pool: str
    node: str
    slots: list[int]
    devices: int
    started_at: float
    ended_at: float | None
    start_step: int
    end_step: int | None
    stop_requested: str | None
    reason: str | None
    failure_kind: str | None
    progress_lost: int = Field(description="Steps done since the last checkpoint that a stop threw away.")
    data_versions: dict[str, Any]
    traceback: str | None


class TrialDetail(_Model):
    id: int
    search_id: int
    number: int
    state: TrialState
    value: MetricValue
    params: dict[str, Any]
    step: int
    message: str | None
    attempts: list[AttemptRow]
    curves: dict[str, list[CurvePoint]] = Field(description="Metric name to [step, value] pairs, by step.")


class SearchSummary(_Model):
    id: int
    team: str
    name: str
    state: SearchState
    strategy: str
    priority: str
    objective: Objective
    max_trials: int
    trials: dict[str, int] = Field(description="Trial state to the number of trials in it; states with none are left out.")
    best: TrialRow | None
    cancel_requested: bool
    created_at: float
    finished_at: float | None
    message: str | None


class SearchDetail(SearchSummary):
    spec: dict[str, Any] = Field(description="The spec document as submitted.")


class SearchPage(_Model):
    items: list[SearchSummary]
    total: int
    limit: int
    offset: int


class TrialPage(_Model):
    items: list[TrialRow]
    total: int
    limit: int
    offset: int


class SubmitRequest(_Model):
    """A spec as a JSON document in ``spec``, or as YAML text in ``spec_yaml``; exactly one of them."""

    spec: dict[str, Any] | None = Field(default=None, description="The search spec document, as `neurfly run` reads it from YAML.")
    spec_yaml: str | None = Field(default=None, description="The search spec as YAML text; anchors and aliases are not accepted.")
    new: bool = Field(default=False, description="Start another search even if one of this team and name exists.")

    @model_validator(mode="after")
    def _one_spec(self) -> SubmitRequest:
        if (self.spec is None) == (self.spec_yaml is None):
            raise ValueError("give the spec either as 'spec' (a JSON object) or as 'spec_yaml' (YAML text), not both or neither")
        return self


class SubmitResponse(_Model):
    search: SearchSummary
    resumed: bool = Field(description="True when a running search of the same team, name and spec was returned.")
    finished: bool = Field(description="True when that search has already ended; nothing new runs.")
    warnings: list[str]


class CancelResponse(_Model):
    search_id: int
    state: SearchState
    cancel_requested: bool
    message: str


class MetricPoint(_Model):
    attempt_id: int
    step: int
    name: str
    value: MetricValue
    reported_at: float


class TrialCurve(_Model):
    id: int
    number: int
    state: TrialState
    value: MetricValue
    points: list[CurvePoint]


class SearchCurves(_Model):
    metric: str
    direction: Direction
    trials: list[TrialCurve]


class EventRow(_Model):
    id: int
    at: float
    kind: str
    trial_id: int | None
    attempt_id: int | None
    message: str
    data: dict[str, Any]


# -- users, teams and tokens ----------------------------------------------------------------------


class TeamRole(_Model):
    team: str
    role: Role


class MeResponse(_Model):
    user: str
    platform_admin: bool
    teams: list[TeamRole]
    token_id: str


class TokenInfo(_Model):
    key_id: str
    user: str
    name: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None
    active: bool


class TokenCreated(TokenInfo):
    token: str = Field(description="The token; this is the only time it is shown.")


class TokenRequest(_Model):
    name: str = Field(default="default", pattern=TOKEN_NAME_REGEX, description="Label to tell tokens apart.")
    expires_in_days: int | None = Field(default=90, ge=1, le=3650, description="Lifetime in days; null for no expiry.")


class TeamInfo(_Model):
    name: str
    created_at: float
    role: Role | None = Field(description="The caller's role; admin for platform admins.")
    weight: float = Field(description="Fair-share weight in the cluster.")
    quota: dict[str, int] = Field(description="Nominal devices per pool.")
    borrowing_limit: dict[str, int] = Field(description="Devices per pool beyond the quota; a pool left out has no limit.")


class TeamRequest(_Model):
    name: Name


class MemberInfo(_Model):
    user: str
    role: Role


class MemberRequest(_Model):
    role: Role


class UserInfo(_Model):
    name: str
    platform_admin: bool
    disabled: bool
    created_at: float
    teams: list[TeamRole]


class UserRequest(_Model):
    name: Name
    platform_admin: bool = False


# -- cluster --------------------------------------------------------------------------------------


class SlotUse(_Model):
    slot: int
    attempt_id: int | None = Field(description="Null when the attempt belongs to a team the caller cannot see.")
    search_id: int | None
    team: str | None = Field(description="Null when the caller cannot see that team.")


class NodeState(_Model):
    name: str
    devices: int
    in_use: list[SlotUse]


class PoolState(_Model):
    name: str
    region: str
    hardware: str
    price_per_device_hour: float
    devices: int
    devices_in_use: int
    nodes: list[NodeState]


class TeamUsage(_Model):
    team: str | None = Field(description="Null for the sum over teams the caller cannot see.")
    devices_in_use: dict[str, int] = Field(description="Pool to devices held now.")
    device_seconds: dict[str, float] = Field(description="Pool to device-seconds of attempts in the window.")


class ControllerStatus(_Model):
    running: bool = Field(description="Whether a live controller holds the lease of this store.")
    holder: str | None = Field(description="host:pid of the controller; shown to platform admins only.")
    in_this_process: bool


class ClusterState(_Model):
    now: float
    window_s: float
    pools: list[PoolState]
    usage: list[TeamUsage]
    running_attempts: list[AttemptRow]
    controller: ControllerStatus


class UsageSeries(_Model):
    team: str | None = Field(description="Null for the sum over teams the caller cannot see.")
    pool: str
    devices: list[float] = Field(description="Average devices in use in each bucket.")


class Utilisation(_Model):
    since: float
    until: float
    bucket_s: float
    buckets: list[float] = Field(description="Start time of each bucket, seconds since the epoch.")
    capacity: dict[str, int] = Field(description="Pool to its devices.")
    series: list[UsageSeries]


# -- alerts ---------------------------------------------------------------------------------------


class AlertRow(_Model):
    id: int
    category: str
    severity: str
    state: str
    owner: str
    team: str | None
    search_id: int | None
    trial_id: int | None
    message: str
    evidence: dict[str, Any]
    count: int
    first_at: float
    last_at: float


# -- costs and budgets ----------------------------------------------------------------------------
# Amounts are decimal text with six decimals, as neurfly.accounting reports them, so no
# rounding happens on the way. Keys that accounting adds later are dropped, not rejected.


class _Report(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TeamCost(_Report):
    team: str
    device_hours: str
    usage: str
    running: str
    idle_share: str
    total: str
    waste_device_hours: str
    waste: str


class SearchCost(_Report):
    team: str
    search_id: int | None
    search: str | None
    device_hours: str
    cost: str
    running: str
    waste: str
    attempts: int


class PoolCost(_Report):
    pool: str
    hardware: str | None
    devices: int
    price_per_device_hour: str
    capacity_device_hours: str
    used_device_hours: str
    idle_device_hours: str
    capacity: str
    used: str
    idle: str


class UsageCost(_Report):
    team: str
    search_id: int | None
    search: str | None
    pool: str
    device_hours: str
    cost: str
    running: str
    waste_device_hours: str
    waste: str
    attempts: int


class WasteCost(_Report):
    team: str
    reason: str
    cause_team: str | None
    cause_priority: str | None
    device_hours: str
    cost: str
    attempts: int


class CostReportOut(_Report):
    since: str
    until: str
    end: str
    now: str
    idle_cost_policy: str
    total: str
    platform_idle: str
    teams: list[TeamCost]
    searches: list[SearchCost]
    pools: list[PoolCost]
    usage: list[UsageCost]
    waste: list[WasteCost]
    warnings: list[str]


class BudgetOut(_Report):
    id: int
    scope: str
    team: str
    search_id: int | None
    amount: str
    period: str
    period_start: str | None
    period_end: str | None
    thresholds: list[float]
    soft_limit_percent: float | None
    hard_limit_percent: float | None
    updated_at: str
    updated_by: str | None


class BudgetStatusOut(BudgetOut):
    active: bool = Field(description="False when the budget's custom period does not cover now.")
    current_period: dict[str, str] | None = None
    spent: str | None = None
    running: str | None = None
    committed: str | None = None
    run_rate_per_hour: str | None = None
    forecast: str | None = None
    percent_spent: float | None = None
    percent_forecast: float | None = None
    level: str | None = None
    crossed: list[str] = Field(default_factory=list)
    recorded_level: str | None = None
    recorded_at: str | None = None


class BudgetRequest(_Model):
    amount: str = Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,6})?$", description="Limit per period, in the pools' currency.")
    search_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Budget of one search of the team instead of the team.")
    period: Literal["month", "custom"] | None = Field(default=None, description="Calendar month (UTC), or the custom period given by period_start and period_end; unchanged when null.")
    period_start: float | None = Field(default=None, ge=0, le=1e11, description="Start of a custom period, seconds since the epoch.")
    period_end: float | None = Field(default=None, ge=0, le=1e11, description="End of a custom period, seconds since the epoch.")
    thresholds: list[Annotated[float, Field(gt=0, le=1000)]] | None = Field(default=None, max_length=20, description="Alert thresholds, percent of the amount.")
    soft_limit_percent: float | None = Field(default=None, gt=0, le=1000, description="Percent at which new searches are held.")
    hard_limit_percent: float | None = Field(default=None, gt=0, le=1000, description="Percent at which running trials are stopped.")
    reason: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00-\x1f]*$")


# -- data governance ------------------------------------------------------------------------------


class DatasetVersionOut(_Model):
    id: int
    algorithm: str
    digest: str
    source: str
    uri: str | None
    format: str | None
    rows: int | None
    size_bytes: int | None
    created_at: float
    created_by: str


class DatasetOut(_Model):
    ref: str = Field(description="team/name of the dataset.")
    team: str
    name: str
    sensitivity: str
    tags: list[str]
    regions: list[str] = Field(description="Regions the data may be processed in; empty means any.")
    description: str
    created_at: float
    created_by: str
    versions: list[DatasetVersionOut] | None = Field(default=None, description="Newest first; only when one dataset is shown.")


class GrantOut(_Model):
    id: int
    resource_kind: str
    resource: str
    owner_team: str
    grantee_team: str
    roles: list[str]
    expires_at: float | None
    granted_by: str
    granted_at: float
    reason: str
    revoked_at: float | None
    revoked_by: str | None


class LineageOut(_Report):
    subject: str
    kind: str
    data: list[dict[str, Any]] = Field(description="Each dataset version the subject saw, with its role and the artifacts it came through.")
    attempts: list[dict[str, Any]] = Field(description="Attempts with their inputs and outputs.")


# Tags are upper-cased by the registry, so PII and pii name one tag.
TAG_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
# A free text field: any printable text, no control characters.
TEXT_REGEX = r"^[^\x00-\x1f\x7f]*$"
RELATIVE_PATH_REGEX = r"^[^\x00-\x1f\x7f]{1,1024}$"
ARTIFACT_VERSION_REGEX = r"^[A-Za-z0-9:._-]{1,80}$"


class FileSource(_Model):
    """A CSV or Parquet file on the server, under one of its data roots; its SHA-256 is the version."""

    source: Literal["file"]
    path: str = Field(pattern=RELATIVE_PATH_REGEX, description="Absolute path, or a path relative to the first data root.")
    label: str | None = Field(default=None, min_length=1, max_length=255, pattern=TEXT_REGEX, description="Label column; default: label, target, y or class, else the last column.")


class SklearnSource(_Model):
    """A scikit-learn set bundled with NeurFly; the hash of its arrays is the version."""

    source: Literal["sklearn"]
    name: str = Field(pattern=r"^(sklearn:)?[a-z_]{1,40}$", description="digits, breast_cancer, iris or wine.")


class DvcSource(_Model):
    """A file tracked by DVC in a git repository on the server, under one of its data roots; the md5 DVC recorded is the version."""

    source: Literal["dvc"]
    repo: str = Field(pattern=RELATIVE_PATH_REGEX, description="The git repository: absolute, or relative to the first data root.")
    path: str = Field(pattern=RELATIVE_PATH_REGEX, description="The tracked file, relative to the repository root.")
    rev: str = Field(default="HEAD", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/^~-]{0,199}$", description="Git revision to read the DVC entry at.")
    label: str | None = Field(default=None, min_length=1, max_length=255, pattern=TEXT_REGEX)


class LakefsSource(_Model):
    """An object in lakeFS at a full commit id; the commit id is the version."""

    source: Literal["lakefs"]
    uri: str = Field(pattern=r"^lakefs://[^\x00-\x20\x7f]{1,1024}$", description="lakefs://REPOSITORY/COMMIT_ID/PATH.")
    label: str | None = Field(default=None, min_length=1, max_length=255, pattern=TEXT_REGEX)


VersionSourceRequest = Annotated[FileSource | SklearnSource | DvcSource | LakefsSource, Field(discriminator="source")]


class DatasetRequest(_Model):
    """A new dataset of the team, with its first version."""

    name: Name
    sensitivity: Sensitivity
    tags: list[Annotated[str, Field(pattern=TAG_REGEX)]] = Field(default_factory=list, max_length=20, description="Tags such as PII or PHI.")
    regions: list[Name] = Field(default_factory=list, max_length=20, description="Regions the data may be processed in; empty means any.")
    description: str = Field(default="", max_length=2000, pattern=TEXT_REGEX)
    version: VersionSourceRequest


class DatasetVersionRequest(_Model):
    """A new version of an existing dataset of the team."""

    version: VersionSourceRequest


class GrantRequest(_Model):
    """Let another team use a dataset or an artifact of the team."""

    resource_kind: Literal["dataset", "artifact"] = "dataset"
    resource: Name = Field(description="Name of the team's dataset or artifact.")
    version: str | None = Field(default=None, pattern=ARTIFACT_VERSION_REGEX, description="Artifact digest or digest prefix; default: its newest version. Datasets take none.")
    grantee_team: Name
    roles: list[DataRole] = Field(default_factory=list, max_length=3, description="training, validation or warm_start; artifacts take only warm_start, which is the default for them.")
    expires: str | None = Field(default=None, max_length=40, pattern=r"^[0-9A-Za-z:.+ -]+$", description="A duration (30d, 12h) or an ISO date (2027-01-31); default 90 days.")
    reason: str = Field(default="", max_length=500, pattern=TEXT_REGEX, description="Why the grant is given, for the audit log.")


class AuditRecordOut(_Model):
    id: int
    at: float
    actor: str = Field(description="The user who made the request.")
    team: str = Field(description="The team the request acted for.")
    action: str
    resource_kind: str
    resource: str
    version: str | None
    decision: str
    reason: str
    search_id: int | None
    data: dict[str, Any]


class ArtifactRequest(_Model):
    """Publish the final checkpoint of an ended trial of the team."""

    trial_id: int = Field(ge=1, le=MAX_ID)
    name: Name
    kind: ArtifactKind = ArtifactKind.CHECKPOINT
    description: str = Field(default="", max_length=2000, pattern=TEXT_REGEX)


class ArtifactOut(_Model):
    ref: str = Field(description="team/name of the artifact.")
    team: str
    name: str
    version: str = Field(description="Digest of the checkpoint.")
    kind: ArtifactKind
    uri: str
    search_id: int
    trial_id: int
    step: int
    provenance: list[dict[str, Any]] = Field(description="Each dataset version behind the checkpoint, with its role and the artifacts it came through.")
    description: str
    created_at: float
    created_by: str


# -- budget history, failures ---------------------------------------------------------------------


class BudgetChangeOut(_Report):
    id: int
    budget_id: int
    scope: str
    action: str
    actor: str
    at: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None


class BudgetActionOut(_Model):
    id: int
    at: float
    kind: str = Field(description="budget.level (the budget reached or left a limit) or attempt.preempting (a hard limit stopped an attempt).")
    search_id: int | None
    trial_id: int | None
    attempt_id: int | None
    message: str
    data: dict[str, Any]


class BudgetHistoryOut(_Model):
    scope: str = Field(description="team:<team> or search:<id>.")
    changes: list[BudgetChangeOut] = Field(description="Audited changes, oldest first.")
    alerts: list[AlertRow] = Field(description="Threshold alerts the budget raised, newest first.")
    actions: list[BudgetActionOut] = Field(description="Level changes and stopped attempts, oldest first.")


class FailureRow(_Model):
    attempt_id: int
    search_id: int
    trial_id: int
    team: str
    category: FailureCategory
    cause: str
    owner: str = Field(description="The party responsible for acting on it, from the responsibility file.")
    reason: str | None = Field(description="The error message or how the process ended.")
    evidence: dict[str, Any]
    classified_at: float


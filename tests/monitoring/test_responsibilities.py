"""The responsibility file: RACI per category, placeholders, routes and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurfly.monitoring.responsibilities import (
    RaciCategory,
    ResponsibilityError,
    find_responsibility_file,
    load_responsibilities,
)
from support import run_cli


def test_defaults_assign_owners() -> None:
    defaults = load_responsibilities(None)

    infrastructure = defaults.raci(RaciCategory.INFRASTRUCTURE, "team-a")
    user_code = defaults.raci(RaciCategory.USER_CODE, "team-a")
    data = defaults.raci(RaciCategory.DATA, "team-a", "data-team")

    assert (infrastructure.responsible, infrastructure.accountable, infrastructure.informed) == ("platform", "platform", ("team-a",))
    assert (user_code.responsible, user_code.accountable) == ("team-a", "team-a")
    assert (data.responsible, data.consulted) == ("data-team", ("team-a",))
    assert [r.notifier for r in defaults.routes("anyone", "team-a")] == ["log"]


def test_file_overrides_and_expands(write_responsibilities) -> None:
    path = write_responsibilities({
        "platform_team": "sre",
        "notifiers": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/x"}, "log": {"type": "log"}},
        "parties": {"sre": {"routes": [{"notifier": "hook"}]}, "$team": {"routes": [{"notifier": "log", "min_severity": "warning"}]}},
        "categories": {"infrastructure": {"responsible": "$platform", "accountable": "cto", "informed": ["$team", "finance"]}},
        "datasets": {"s3://shared/images": "data-eng"},
        "alerting": {"repeat_interval_s": 60, "ack_timeout_s": 120},
    })

    loaded = load_responsibilities(path)
    raci = loaded.raci(RaciCategory.INFRASTRUCTURE, "team-a")

    assert (raci.responsible, raci.accountable, raci.informed) == ("sre", "cto", ("team-a", "finance"))
    assert [r.notifier for r in loaded.routes("sre", "team-a")] == ["hook"]
    assert [r.min_severity.value for r in loaded.routes("team-a", "team-a")] == ["warning"]
    assert loaded.data_owner("s3://shared/images", "team-a") == "data-eng"
    assert loaded.data_owner("sklearn:digits", "team-a") == "team-a"
    assert loaded.alerting.repeat_interval_s == 60


def test_unknown_route_notifier_rejected(write_responsibilities) -> None:
    path = write_responsibilities({"parties": {"sre": {"routes": [{"notifier": "pager"}]}}})

    with pytest.raises(ResponsibilityError) as caught:
        load_responsibilities(path)

    assert "parties.sre.routes[0].notifier: 'pager' is not under 'notifiers'" in str(caught.value)
    assert str(caught.value).startswith(f"invalid responsibility file {path}")


def test_invalid_notifier_options_rejected(write_responsibilities) -> None:
    path = write_responsibilities({"notifiers": {"hook": {"type": "webhook", "url": "ftp://x"}, "fax": {"type": "fax"}}})

    with pytest.raises(ResponsibilityError) as caught:
        load_responsibilities(path)

    message = str(caught.value)
    assert "notifiers.hook.url" in message
    assert "notifiers.fax.type: notifier 'fax' not found" in message


def test_unknown_category_rejected(write_responsibilities) -> None:
    path = write_responsibilities({"categories": {"weather": {"responsible": "a", "accountable": "b"}}})

    with pytest.raises(ResponsibilityError, match="categories.weather"):
        load_responsibilities(path)


def test_file_lookup_order(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "responsibilities.yaml").write_text("{}\n")

    assert find_responsibility_file() == home / "responsibilities.yaml"
    assert find_responsibility_file(cluster_path="/etc/c.yaml") == Path("/etc/c.yaml")
    monkeypatch.setenv("NEURFLY_RESPONSIBILITIES", str(tmp_path / "env.yaml"))
    assert find_responsibility_file(cluster_path="/etc/c.yaml") == tmp_path / "env.yaml"
    assert find_responsibility_file(tmp_path / "explicit.yaml") == tmp_path / "explicit.yaml"


def test_cli_shows_raci(home: Path, write_responsibilities) -> None:
    path = write_responsibilities({"categories": {"data": {"responsible": "data-eng", "accountable": "cdo"}}})

    result = run_cli(home, "responsibilities", str(path), "--team", "team-a", "--json")

    assert result.returncode == 0, result.stderr
    rows = {row["category"]: row for row in json.loads(result.stdout)["raci"]}
    assert rows["data"]["responsible"] == "data-eng"
    assert rows["user_code"]["accountable"] == "team-a"


def test_missing_file_reported(tmp_path: Path) -> None:
    with pytest.raises(ResponsibilityError, match="file not found"):
        load_responsibilities(tmp_path / "absent.yaml")

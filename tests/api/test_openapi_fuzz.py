"""Schemathesis walks the OpenAPI document in process: no input may get a 500 or break the schema.

Every operation gets a bounded number of generated requests, valid ones
(positive) and invalid ones (negative), sent with a platform admin's token.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from neurfly.api import create_app
from neurfly.core.cluster import default_cluster
from neurfly.store import Store
from api.conftest import World

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, negative_data_rejection]
EXAMPLES_PER_MODE = 12


def test_api_conforms_to_its_schema(seeded_template: tuple[Path, World], tmp_path: Path) -> None:
    template, world = seeded_template
    path = tmp_path / "store.db"
    shutil.copyfile(template, path)
    store = Store(f"sqlite:///{path}")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(store, default_cluster()))
    headers = {"Authorization": f"Bearer {world.tokens['root']}"}
    started = time.monotonic()

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                # An operation with no parameters and no body has no invalid request to generate.
                assert mode is GenerationMode.NEGATIVE, operation.label
    store.dispose()
    assert time.monotonic() - started < 120

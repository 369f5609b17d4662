"""Schemathesis over the whole OpenAPI against a real server with a write token.

Every operation gets valid (positive) and invalid (negative) generated requests; the test
asserts no 5xx, no status code the schema does not document, and no response that breaks
its documented schema, content type or headers. Counts are printed (``-s``).
"""

from __future__ import annotations

import collections
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.embedded import EmbeddedService  # noqa: E402
from service.settings import Settings  # noqa: E402
from studies.store import open_store  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLES_PER_MODE = 60  # x 2 modes x 13 operations: over 1,000 cases
MIN_CASES = 1_000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    db = f"sqlite:///{Path(tmp_path_factory.mktemp('st')) / 'st.db'}"
    store = open_store(db)
    store.create_schema()
    _, secret = store.create_token("fuzzer", ("read", "write"))
    settings = Settings(db_url=db, port=0, local_mode=False)
    with EmbeddedService(settings, store=store, with_worker=False) as svc:
        yield svc.url, secret
    store.close()


def test_schemathesis_whole_api(server: tuple[str, str]) -> None:
    url, secret = server
    schema = schemathesis.openapi.from_url(f"{url}/v1/openapi.json")
    headers = {"Authorization": f"Bearer {secret}"}
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    failures: dict[str, list[str]] = collections.defaultdict(list)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]

    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_MODE,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            )
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=url, headers=headers, timeout=30)
                statuses[(case.operation.label, response.status_code)] += 1
                try:
                    case.validate_response(response, checks=CHECKS, headers=headers)
                except Exception as exc:  # a check failed: keep going, report them all
                    failures[type(exc).__name__].append(
                        f"{case.operation.label} -> {response.status_code}: {str(exc)[:600]}"
                    )

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    run()
                except hypothesis.errors.Unsatisfiable:
                    # no parameter or body to break (e.g. GET /v1/catalog): no negative case
                    assert mode == GenerationMode.NEGATIVE, op.label

    total = sum(statuses.values())
    server_errors = sum(n for (_, code), n in statuses.items() if code >= 500)
    by_code = collections.Counter()
    for (_, code), n in statuses.items():
        by_code[code] += n
    print(f"\nschemathesis: {total} cases over {len(operations)} operations; "
          f"statuses {dict(sorted(by_code.items()))}; server errors {server_errors}; "
          f"failed checks {sum(len(v) for v in failures.values())}")  # fmt: skip
    assert total >= MIN_CASES
    assert server_errors == 0
    assert not failures, "\n".join(f for fs in failures.values() for f in fs[:20])

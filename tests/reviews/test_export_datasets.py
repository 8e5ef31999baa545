"""A campaign's export loads, as written, in pyarrow and in Hugging Face `datasets`."""

import atexit
import io
import json
import os
import shutil
import tempfile

# Read by `datasets` when it is imported: load local files only, never reach the Hub, and keep
# its caches in a folder of this run.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="marlin-hf-")

import datasets
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

from reviews.export import FIELDS
from tasks.models import Candidate, ValidatorResult
from tests.reviews.helpers import reviewers
from tests.reviews.results_helpers import judged_task

atexit.register(shutil.rmtree, os.environ["HF_HOME"], ignore_errors=True)

pytestmark = pytest.mark.django_db

MESSAGE = {"role", "content"}


@pytest.fixture
def exported(api, make_user, live_campaign, tmp_path):
    """Three tasks (A preferred over two turns, B preferred, a tie) exported in both formats."""
    people = reviewers(3)
    tasks = [
        judged_task(api, live_campaign, (-2, -1, -3), people=people, turns=2),
        judged_task(api, live_campaign, (2, 1, 3), people=people),
        judged_task(api, live_campaign, (0, 0, 0), people=people),
    ]
    client = api.as_user(make_user("lead"))
    files = {}
    for name in ("jsonl", "parquet"):
        response = client.get(f"/api/v1/campaigns/{live_campaign.pk}/export/", {"format": name})
        assert response.status_code == 200
        files[name] = tmp_path / f"preferences.{name}"
        files[name].write_bytes(b"".join(response.streaming_content))
    return tasks, files


def output(task, turn, slot):
    return Candidate.objects.get(turn__task=task, turn__index=turn, slot__label=slot).output


def check_rows(rows, tasks):
    """Four rows (two turns, then one each), every field present, texts from the candidates."""
    two_turns, b_preferred, tie = tasks
    assert [(r["task"], r["turn"]) for r in rows] == [
        (two_turns.pk, 1),
        (two_turns.pk, 2),
        (b_preferred.pk, 1),
        (tie.pk, 1),
    ]
    for row in rows:
        assert set(FIELDS) <= set(row)
        for column in ("prompt", "chosen", "rejected"):
            assert all(set(message) == MESSAGE for message in row[column])
        assert [m["role"] for m in row["chosen"]] == ["assistant"]
        assert [m["role"] for m in row["rejected"]] == ["assistant"]
        assert row["prompt"][-1] == {"role": "user", "content": row["prompt_text"]}
    first, second, b_row, tie_row = rows
    assert first["chosen"][0]["content"] == output(two_turns, 1, "A")
    assert first["rejected"][0]["content"] == output(two_turns, 1, "B")
    assert [m["role"] for m in second["prompt"]] == ["user", "assistant", "user"]
    assert second["prompt"][1]["content"] == output(two_turns, 1, "A")
    assert second["chosen"][0]["content"] == output(two_turns, 2, "A")
    assert (b_row["chosen_slot"], b_row["margin"], b_row["tie"]) == ("B", 2.0, False)
    assert b_row["chosen"][0]["content"] == output(b_preferred, 1, "B")
    assert (tie_row["tie"], tie_row["margin"]) == (True, 0.0)
    assert {s["criterion"] for s in first["scores_chosen"]} == {
        "correctness",
        "security",
        "reliability",
        "maintainability",
    }


def test_the_export_reads_back_with_pyarrow(exported):
    tasks, files = exported
    parquet = pq.read_table(files["parquet"])
    jsonl = pa_json.read_json(files["jsonl"])
    assert parquet.num_rows == jsonl.num_rows == 4
    assert parquet.column_names == FIELDS
    check_rows(parquet.to_pylist(), tasks)
    check_rows(jsonl.to_pylist(), tasks)


def test_the_parquet_keeps_statistics_for_numbers_only(exported):
    # Statistics of the text columns would be copies of prompts and answers in every footer.
    group = pq.ParquetFile(exported[1]["parquet"]).metadata.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert columns["task"].statistics.has_min_max
    assert columns["preference"].statistics.has_min_max
    assert columns["prompt_text"].statistics is None
    assert columns["scenario_title"].statistics is None


@pytest.mark.parametrize("builder", ["json", "parquet"])
def test_the_export_loads_in_hugging_face_datasets(exported, builder, tmp_path):
    tasks, files = exported
    path = files["jsonl" if builder == "json" else "parquet"]
    loaded = datasets.load_dataset(
        builder, data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache")
    )
    assert loaded.num_rows == 4
    assert set(FIELDS) <= set(loaded.column_names)
    message = datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})
    for column in ("prompt", "chosen", "rejected"):
        assert loaded.features[column] == message
    assert loaded.features["tie"] == datasets.Value("bool")
    rows = loaded.to_list()
    check_rows(rows, tasks)
    assert json.loads(rows[0]["agreement"])["preference_signs_agree"] is True


def test_an_empty_export_still_loads_with_pyarrow(api, make_user, live_campaign):
    client = api.as_user(make_user("auditor"))
    response = client.get(f"/api/v1/campaigns/{live_campaign.pk}/export/", {"format": "parquet"})
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert table.num_rows == 0 and table.column_names == FIELDS


def test_each_row_carries_the_sandboxed_evidence_of_both_answers(api, make_user, live_campaign):
    task = judged_task(api, live_campaign, (-2, -1, -3), people=reviewers(3))  # A preferred
    for label, passed in (("A", True), ("B", False)):
        candidate = Candidate.objects.get(turn__task=task, slot__label=label)
        ValidatorResult.objects.create(
            task=task,
            candidate=candidate,
            key="evidence.tests",
            passed=passed,
            severity=ValidatorResult.Severity.ADVISORY,
            message="3 passed" if passed else "2 failed, 1 passed",
        )
    response = api.as_user(make_user("lead")).get(
        f"/api/v1/campaigns/{live_campaign.pk}/export/", {"format": "jsonl"}
    )
    (row,) = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]

    assert row["evidence_chosen"] == [
        {"check": "tests", "passed": True, "message": "3 passed", "bears_on": "correctness"}
    ]
    assert row["evidence_rejected"] == [
        {
            "check": "tests",
            "passed": False,
            "message": "2 failed, 1 passed",
            "bears_on": "correctness",
        }
    ]

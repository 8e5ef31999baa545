import csv
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from tasks.catalogue import ImportReport, read_rows, repositories_import
from tasks.models import Repository

pytestmark = pytest.mark.django_db

COLUMNS = ["full_name", "url", "default_branch", "language", "license", "active"]
ROWS = [
    {
        "full_name": "psf/requests",
        "url": "https://github.com/psf/requests",
        "default_branch": "main",
        "language": "Python",
        "license": "Apache-2.0",
        "active": "true",
    },
    {
        "full_name": "golang/go",
        "url": "https://github.com/golang/go",
        "default_branch": "master",
        "language": "Go",
        "license": "BSD-3-Clause",
        "active": "true",
    },
    {
        "full_name": "old-org/retired",
        "url": "http://example.org/retired",
        "default_branch": "trunk",
        "language": "",
        "license": "",
        "active": "false",
    },
]


def write_csv(path, rows, columns=COLUMNS):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path, rows):
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def import_file(path, **kwargs) -> ImportReport:
    return repositories_import(rows=read_rows(path), **kwargs)


def run_command(*args, capsys) -> str:
    call_command("import_repositories", *[str(arg) for arg in args])
    return capsys.readouterr().out


def repository_events():
    return AuditEvent.objects.filter(object_type="tasks.repository")


@pytest.mark.parametrize(
    ("name", "write"),
    [("repos.csv", write_csv), ("repos.json", write_json), ("repos.jsonl", write_jsonl)],
)
def test_each_format_creates_the_repositories(tmp_path, capsys, name, write):
    path = write(tmp_path / name, ROWS)

    out = run_command(path, capsys=capsys)

    assert "created 3, updated 0, unchanged 0, rejected 0" in out
    stored = {r.full_name: r for r in Repository.objects.all()}
    assert set(stored) == {"psf/requests", "golang/go", "old-org/retired"}
    retired = stored["old-org/retired"]
    assert (retired.default_branch, retired.language, retired.active) == ("trunk", "", False)
    assert stored["golang/go"].language == "Go" and stored["golang/go"].active is True
    assert repository_events().filter(action="repository.created").count() == 3


def test_json_values_may_be_native_booleans_and_optional_fields_default(tmp_path):
    path = write_json(
        tmp_path / "repos.json",
        [
            {"full_name": "a/one", "url": "https://example.org/one", "active": False},
            {"full_name": "a/two", "url": "https://example.org/two", "language": None},
        ],
    )

    assert import_file(path).created == 2

    one, two = Repository.objects.order_by("full_name")
    assert (one.default_branch, one.language, one.license, one.active) == ("main", "", "", False)
    assert (two.default_branch, two.active) == ("main", True)


def test_a_second_import_of_the_same_file_changes_nothing(tmp_path, capsys):
    path = write_csv(tmp_path / "repos.csv", ROWS)
    run_command(path, capsys=capsys)
    last_event = AuditEvent.objects.order_by("id").last().id
    stamps = dict(Repository.objects.values_list("full_name", "updated_at"))

    out = run_command(path, capsys=capsys)

    assert "created 0, updated 0, unchanged 3, rejected 0" in out
    assert not AuditEvent.objects.filter(id__gt=last_event).exists()
    assert dict(Repository.objects.values_list("full_name", "updated_at")) == stamps


def test_a_changed_row_is_updated_and_audited_once(tmp_path, capsys):
    path = tmp_path / "repos.csv"
    write_csv(path, ROWS)
    run_command(path, capsys=capsys)
    last_event = AuditEvent.objects.order_by("id").last().id
    write_csv(path, [ROWS[0], {**ROWS[1], "language": "Rust"}, ROWS[2]])

    out = run_command(path, capsys=capsys)

    assert "created 0, updated 1, unchanged 2, rejected 0" in out
    go = Repository.objects.get(full_name="golang/go")
    assert go.language == "Rust"
    (entry,) = AuditEvent.objects.filter(id__gt=last_event)
    assert (entry.action, entry.object_type, entry.object_id) == (
        "repository.updated",
        "tasks.repository",
        str(go.id),
    )
    assert entry.changes["language"] == ["Go", "Rust"]
    assert set(entry.changes) == {"language", "updated_at"}
    assert entry.reason == "repository import from repos.csv"


def test_bad_rows_are_rejected_with_their_lines_and_the_good_rows_still_land(tmp_path, capsys):
    path = tmp_path / "repos.csv"
    path.write_text(
        "full_name,url,default_branch,language,license,active\n"
        "psf/requests,https://github.com/psf/requests,main,Python,Apache-2.0,true\n"
        "not a name,https://example.org/x,,,,\n"
        "\n"
        "a/ftp,ftp://example.org/a,,,,\n"
        ",https://example.org/nameless,,,,\n"
        "a/no-url,,,,,\n"
        f"a/long,https://example.org/long,,{'x' * 65},,\n"
        "a/maybe,https://example.org/maybe,,,,maybe\n"
        "a/extra,https://example.org/extra,,,,,surplus\n"
        "golang/go,https://github.com/golang/go,master,Go,BSD-3-Clause,yes\n",
        encoding="utf-8",
    )

    report = import_file(path)

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert [line for line, _ in report.rejected] == [3, 5, 6, 7, 8, 9, 10]
    reasons = dict(report.rejected)
    assert "owner/name" in reasons[3]
    assert "http(s)" in reasons[5]
    assert reasons[6] == "full_name is required"
    assert reasons[7] == "url is required"
    assert "longer than 64" in reasons[8]
    assert "active" in reasons[9]
    assert "7 fields" in reasons[10]
    assert set(Repository.objects.values_list("full_name", flat=True)) == {
        "psf/requests",
        "golang/go",
    }

    out = run_command(path, capsys=capsys)
    assert "rejected 7" in out
    assert "line 3: full_name 'not a name' is not of the form owner/name" in out


def test_rejections_in_json_name_the_line_of_the_object(tmp_path):
    path = write_json(
        tmp_path / "repos.json",
        [
            {"full_name": "a/good", "url": "https://example.org/good"},
            {"full_name": "a/typed", "url": "https://example.org/typed", "language": 3},
            {"full_name": "a/unknown", "url": "https://example.org/u", "stars": 10},
            "not an object",
        ],
    )
    # json.dumps(indent=2) puts each object's "{" on lines 2, 6, 11 and the string on 16.

    report = import_file(path)

    assert report.created == 1
    assert report.rejected == [
        (6, "language must be text, not int"),
        (11, "unknown field(s) stars"),
        (16, "item 4 is not an object"),
    ]


def test_the_command_lists_only_the_first_twenty_rejections(tmp_path, capsys):
    bad = [{"full_name": f"bad name {i}", "url": "https://example.org"} for i in range(25)]
    path = write_jsonl(tmp_path / "repos.jsonl", bad)

    out = run_command(path, capsys=capsys)

    assert "created 0, updated 0, unchanged 0, rejected 25" in out
    assert "line 20:" in out and "line 21:" not in out
    assert "and 5 more" in out


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("repos.json", '[{"full_name": "a/b", "url": "https://x.org"},\n{"full_name": ', "line 2"),
        ("repos.json", '{"full_name": "a/b"}', "expected a JSON list"),
        ("repos.jsonl", '{"full_name": "a/b", "url": "https://x.org"}\n{oops}\n', "line 2"),
        ("repos.csv", "full_name,url,langauge\na/b,https://x.org,Go\n", "langauge"),
        ("repos.csv", "full_name,language\na/b,Go\n", "missing column"),
        ("repos.csv", 'full_name,url\na/b,"https://x.org\n', "malformed CSV"),
        ("repos.csv", "", "empty file"),
        ("repos.xml", "<repositories/>", "unsupported file type"),
    ],
)
def test_a_malformed_file_is_a_command_error_and_writes_nothing(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    with pytest.raises(CommandError, match=message):
        call_command("import_repositories", str(path))

    assert not Repository.objects.exists()


def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_repositories", str(tmp_path / "absent.csv"))


def test_a_non_utf8_file_is_a_command_error(tmp_path):
    path = tmp_path / "repos.csv"
    path.write_bytes(b"full_name,url,language\na/b,https://x.org,Caf\xe9\n")

    with pytest.raises(CommandError, match="line 2: not UTF-8"):
        call_command("import_repositories", str(path))


def test_duplicates_within_a_file_are_merged_case_insensitively_and_the_last_wins(tmp_path):
    path = write_csv(
        tmp_path / "repos.csv",
        [
            {**ROWS[1], "language": "Go"},
            {**ROWS[0]},
            {**ROWS[1], "full_name": "GoLang/Go", "language": "Rust"},
            {**ROWS[1], "full_name": "golang/GO", "url": "not a url"},  # rejected: not a candidate
        ],
    )

    report = import_file(path)

    assert (report.created, report.updated, report.unchanged, report.duplicates) == (2, 0, 0, 1)
    assert [line for line, _ in report.rejected] == [5]
    (go,) = Repository.objects.filter(full_name__iexact="golang/go")
    assert (go.full_name, go.language) == ("GoLang/Go", "Rust")


def test_a_name_differing_only_in_case_updates_the_existing_repository(tmp_path):
    existing = Repository.objects.create(
        full_name="psf/requests", url="https://github.com/psf/requests", language="Python"
    )
    path = write_jsonl(
        tmp_path / "repos.jsonl",
        [{"full_name": "PSF/Requests", "url": existing.url, "language": "Python 3"}],
    )

    report = import_file(path)

    assert (report.created, report.updated) == (0, 1)
    (repository,) = Repository.objects.all()
    assert (repository.id, repository.full_name) == (existing.id, "psf/requests")
    assert repository.language == "Python 3"


def test_fields_a_file_leaves_out_keep_their_stored_values(tmp_path):
    import_file(write_csv(tmp_path / "full.csv", ROWS))
    events = repository_events().count()
    slim = [{"full_name": row["full_name"], "url": row["url"]} for row in ROWS]

    report = import_file(write_csv(tmp_path / "slim.csv", slim, columns=["full_name", "url"]))

    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert repository_events().count() == events
    retired = Repository.objects.get(full_name="old-org/retired")
    assert (retired.default_branch, retired.active) == ("trunk", False)


def test_rows_are_written_one_statement_per_batch(tmp_path):
    rows = [
        {"full_name": f"org/repo-{i}", "url": f"https://example.org/{i}", "language": "Go"}
        for i in range(5)
    ]
    path = write_jsonl(tmp_path / "repos.jsonl", rows)

    with CaptureQueriesContext(connection) as queries:
        report = import_file(path, batch_size=2)

    # One INSERT per batch (its audit context goes with it in the same round trip).
    writes = [q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(writes) == 3
    assert (report.created, report.unchanged) == (5, 0)
    assert Repository.objects.count() == 5


def test_the_batch_size_must_be_positive(tmp_path):
    path = write_csv(tmp_path / "repos.csv", ROWS)
    with pytest.raises(CommandError, match="batch_size"):
        call_command("import_repositories", str(path), batch_size=0)

"""`flowspec contacts import | opt-out | opt-in` through the real CLI, checked in database rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler_helpers import invoke, read


def contacts(url: str, organization: str = "default") -> dict[str, dict[str, Any]]:
    rows = read(url, "SELECT * FROM contacts WHERE organization = :o ORDER BY id", o=organization)
    out = {}
    for row in rows:
        for key in ("attributes", "tags"):
            if isinstance(row[key], str):  # SQLite's JSON comes back as text through sa.text
                row[key] = json.loads(row[key])
        row["opted_out"] = bool(row["opted_out"])
        out[row["id"]] = row
    return out


def csv_file(tmp_path: Path, text: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_writes_phone_tags_attributes_and_opt_out(db_url: str, tmp_path: Path) -> None:
    """Columns land where they belong: phone normalised to E.164, tags split on ';' and
    trimmed, other columns as attributes, opted_out as a boolean."""
    path = csv_file(tmp_path, (
        "id,phone,first_name,city,tags,opted_out\n"
        "c-1,+55 11 99999-0001,Ana,São Paulo,vip; early ;vip,false\n"
        "c-2,+5511999990002,Bruno,,early,TRUE\n"
    ))
    result = invoke("contacts", "import", str(path), "--db", db_url)
    assert result.code == 0, result.output
    assert "2 created, 0 updated, 0 unchanged" in result.out
    rows = contacts(db_url)
    assert rows["c-1"]["phone"] == "+5511999990001"
    assert rows["c-1"]["tags"] == ["vip", "early"]
    assert rows["c-1"]["attributes"] == {"first_name": "Ana", "city": "São Paulo"}
    assert rows["c-1"]["opted_out"] is False
    assert rows["c-2"]["attributes"] == {"first_name": "Bruno"}  # an empty cell is no value
    assert rows["c-2"]["opted_out"] is True


def test_reimport_upserts_by_id(db_url: str, tmp_path: Path) -> None:
    """A second import updates by id: given columns replace (an empty cell clears), columns
    the file lacks are kept, identical rows count as unchanged."""
    first = csv_file(tmp_path, "id,phone,first_name,city,tags\n"
                               "c-1,+5511999990001,Ana,Rio,vip\nc-2,+5511999990002,Bruno,Recife,\n")
    assert invoke("contacts", "import", str(first), "--db", db_url).code == 0
    second = csv_file(tmp_path, "id,first_name,tags\nc-1,Ana,vip\nc-2,,gold\nc-3,Carla,\n", "b.csv")
    result = invoke("contacts", "import", str(second), "--db", db_url)
    assert result.code == 0, result.output
    assert "1 created, 1 updated, 1 unchanged" in result.out
    rows = contacts(db_url)
    assert rows["c-1"]["attributes"] == {"first_name": "Ana", "city": "Rio"}
    assert rows["c-2"]["attributes"] == {"city": "Recife"}
    assert rows["c-2"]["tags"] == ["gold"]
    assert rows["c-2"]["phone"] == "+5511999990002"  # no phone column: kept
    assert rows["c-3"]["phone"] is None


def test_bad_rows_are_reported_with_line_numbers_and_skipped(db_url: str, tmp_path: Path) -> None:
    """Each bad row is named by file and line (a quoted cell spanning lines counts its lines),
    the good rows are written, and the command exits 1."""
    path = csv_file(tmp_path, (
        "id,phone,note,opted_out\n"
        'c-1,+5511999990001,"two\nlines",false\n'
        "c-2,11999990002,no plus,false\n"
        ",+5511999990003,no id,false\n"
        "c-4,+5511999990004,bad flag,maybe\n"
        "c-5,+5511999990005,too,many,values\n"
        "c-1,+5511999990006,dup,false\n"
        "c-7,+5511999990007,fine,no\n"
    ))
    result = invoke("contacts", "import", str(path), "--db", db_url)
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if ": error: " in line]
    assert [e.split(": error: ")[0] for e in errors] == [
        f"{path}:4", f"{path}:5", f"{path}:6", f"{path}:7", f"{path}:8",
    ]
    assert "not E.164" in errors[0] and "id is empty" in errors[1]
    assert "opted_out 'maybe'" in errors[2]
    assert "row has 5 values but the header has 4 columns" in errors[3]
    assert "duplicate id 'c-1' (first on line 2)" in errors[4]
    assert "5 bad rows skipped" in result.out
    assert sorted(contacts(db_url)) == ["c-1", "c-7"]
    assert contacts(db_url)["c-1"]["attributes"] == {"note": "two\nlines"}


def test_strict_writes_nothing_when_a_row_is_bad(sqlite_url: str, tmp_path: Path) -> None:
    """--strict turns one bad row into no write at all."""
    path = csv_file(tmp_path, "id,phone\nc-1,+5511999990001\nc-2,+0123\n")
    result = invoke("contacts", "import", str(path), "--strict", "--db", sqlite_url)
    assert result.code == 1
    assert f"{path}:3: error: phone '+0123' is not E.164" in result.err
    assert "nothing written" in result.err
    assert contacts(sqlite_url) == {}


def test_file_level_problems_fail_cleanly(sqlite_url: str, tmp_path: Path) -> None:
    """A missing file, a header without id, a duplicated column or non-UTF-8 bytes exit 1 with
    a message naming the file, never a traceback, before the database is even created."""
    cases = {
        "missing.csv": None,
        "noid.csv": b"phone,name\n+5511999990001,Ana\n",
        "dupcol.csv": b"id,name,name\nc-1,a,b\n",
        "latin1.csv": "id,name\nc-1,S\u00e3o\n".encode("latin-1"),
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        result = invoke("contacts", "import", str(path), "--db", sqlite_url)
        assert result.code == 1, name
        assert "Traceback" not in result.output and str(path) in result.err, result.output
    assert not (tmp_path / "fresh.db").exists()


def test_opt_out_and_opt_in(db_url: str, tmp_path: Path) -> None:
    """opt-out and opt-in flip the flag, say so when already set, and change nothing when
    any id is unknown."""
    path = csv_file(tmp_path, "id,phone\nc-1,+5511999990001\nc-2,+5511999990002\n")
    assert invoke("contacts", "import", str(path), "--db", db_url).code == 0
    result = invoke("contacts", "opt-out", "c-1", "--db", db_url)
    assert result.code == 0 and "c-1: opted out" in result.out
    assert invoke("contacts", "opt-out", "c-1", "--db", db_url).out.strip() == "c-1: already opted out"
    bad = invoke("contacts", "opt-out", "c-2", "c-404", "--db", db_url)
    assert bad.code == 1 and "no contact 'c-404'" in bad.err
    assert {k: v["opted_out"] for k, v in contacts(db_url).items()} == {"c-1": True, "c-2": False}
    assert invoke("contacts", "opt-in", "c-1", "--db", db_url).code == 0
    assert contacts(db_url)["c-1"]["opted_out"] is False


def test_import_never_opts_a_contact_back_in(db_url: str, tmp_path: Path) -> None:
    """opted_out=false in a re-imported file leaves an opted-out contact opted out, and says so."""
    path = csv_file(tmp_path, "id,phone,opted_out\nc-1,+5511999990001,false\n")
    assert invoke("contacts", "import", str(path), "--db", db_url).code == 0
    assert invoke("contacts", "opt-out", "c-1", "--db", db_url).code == 0
    result = invoke("contacts", "import", str(path), "--db", db_url)
    assert result.code == 0
    assert "stays opted out" in result.err
    assert contacts(db_url)["c-1"]["opted_out"] is True


def test_contacts_are_scoped_by_organization(db_url: str, tmp_path: Path) -> None:
    """The same id in two organizations is two contacts; opting out one leaves the other."""
    acme = csv_file(tmp_path, "id,first_name\nc-1,Ana\n", "acme.csv")
    globex = csv_file(tmp_path, "id,first_name\nc-1,Gus\n", "globex.csv")
    assert invoke("contacts", "import", str(acme), "--organization", "acme", "--db", db_url).code == 0
    assert invoke("contacts", "import", str(globex), "--organization", "globex", "--db", db_url).code == 0
    assert invoke("contacts", "opt-out", "c-1", "--organization", "acme", "--db", db_url).code == 0
    assert contacts(db_url, "acme")["c-1"]["opted_out"] is True
    assert contacts(db_url, "globex")["c-1"]["opted_out"] is False
    assert contacts(db_url, "globex")["c-1"]["attributes"] == {"first_name": "Gus"}
    assert contacts(db_url) == {}
    bad = invoke("contacts", "import", str(acme), "--organization", "Acme Inc", "--db", db_url)
    assert bad.code == 1 and "not an organization name" in bad.output

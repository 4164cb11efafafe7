"""Reading a config folder: files, hidden folders, ConfigMap symlinks, documents, YAML errors and
fingerprints."""

from __future__ import annotations

from pathlib import Path

from peers.kubelet import write_configmap

from mixerd.config import fingerprint, read_documents
from mixerd.config.loader import config_files, read_folder, split_documents

RULE = "apiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata: {name: %s}\n"


def test_yaml_files_recursively_in_path_order_hidden_ones_left_out(tmp_path: Path) -> None:
    for rel in ("b.yaml", "a/c.yml", "a/d.txt", ".hidden.yaml", ".git/x.yaml", "z/.e.yaml", "z/f.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(RULE % "r")
    assert [p.relative_to(tmp_path).as_posix() for p in config_files(tmp_path)] == [
        "a/c.yml",
        "b.yaml",
        "z/f.yaml",
    ]


def test_a_configmap_mount_is_read_once_through_its_symlinks(tmp_path: Path) -> None:
    write_configmap(
        tmp_path, "2026_11_20_10_00_00.1", {"rules.yaml": RULE % "one", "more.yaml": RULE % "two"}
    )
    documents, errors = read_documents(tmp_path)
    assert errors == []
    assert [(d.file, d.data["metadata"]["name"]) for d in documents] == [
        ("more.yaml", "two"),
        ("rules.yaml", "one"),
    ]


def test_fingerprint_changes_when_the_configmap_symlink_is_swapped(tmp_path: Path) -> None:
    write_configmap(tmp_path, "2026_11_20_10_00_00.1", {"rules.yaml": RULE % "one"})
    before = fingerprint(tmp_path)
    assert before == fingerprint(tmp_path)
    # same size, and possibly the same mtime: only the symlink target tells the versions apart
    write_configmap(tmp_path, "2026_11_20_10_05_00.2", {"rules.yaml": RULE % "two"})
    after = fingerprint(tmp_path)
    assert after != before
    assert [entry[1] for entry in after] == [
        str((tmp_path / "..2026_11_20_10_05_00.2" / "rules.yaml").resolve())
    ]
    documents, _ = read_documents(tmp_path)
    assert [d.data["metadata"]["name"] for d in documents] == ["two"]


def test_a_symlink_loop_is_walked_once(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "r.yaml").write_text(RULE % "r")
    (tmp_path / "sub" / "again").symlink_to(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in config_files(tmp_path)] == ["sub/r.yaml"]


def test_an_unreadable_file_is_reported_and_the_others_still_read(tmp_path: Path) -> None:
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "gone.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (tmp_path / "ok.yaml").write_text(RULE % "ok")
    documents, errors = read_documents(tmp_path)
    assert [d.file for d in documents] == ["ok.yaml"]
    assert [(e.file, e.reason.split(":")[0]) for e in errors] == [
        ("dangling.yaml", "a broken symlink"),
        ("latin1.yaml", "cannot read the file"),
    ]


def test_windows_line_endings_read_as_text_mode_reads_them(tmp_path: Path) -> None:
    (tmp_path / "crlf.yaml").write_bytes(b"a: 1\r\n---\r\nb: 2\r\n")
    documents, errors = read_documents(tmp_path)
    assert errors == []
    assert [(d.number, d.data) for d in documents] == [(1, {"a": 1}), (2, {"b": 2})]


def test_documents_are_numbered_as_in_the_file_and_empty_ones_skipped() -> None:
    text = "# leading comment\n---\na: 1\n---\n# only a comment\n---\n\n--- {b: 2}\n...\n"
    errors: list = []
    docs = split_documents("f.yaml", text, errors)
    assert errors == []
    assert [(d.number, d.data) for d in docs] == [(1, {"a": 1}), (4, {"b": 2})]
    # `...` makes the file be parsed whole; cut at its `---` lines it numbers the same
    assert split_documents("f.yaml", text.removesuffix("...\n"), errors) == docs
    # the same without a leading `---`: the first document starts at the top
    docs = split_documents("f.yaml", "a: 1\n---\nb: 2\n", errors)
    assert [(d.number, d.data) for d in docs] == [(1, {"a": 1}), (2, {"b": 2})]


def test_a_syntax_error_spoils_only_its_document() -> None:
    text = "a: 1\n---\nb: [1, 2\nc: 3\n---\nd: 4\n"
    errors: list = []
    docs = split_documents("f.yaml", text, errors)
    assert [(d.number, d.data) for d in docs] == [(1, {"a": 1}), (3, {"d": 4})]
    assert [str(e) for e in errors] == [
        "f.yaml (document 2): YAML syntax error: line 4 column 2: did not find expected ',' or ']'"
    ]


def test_a_key_given_twice_is_an_error_but_merge_keys_work() -> None:
    errors: list = []
    docs = split_documents("f.yaml", "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n  y: 3\n", errors)
    assert docs == []
    assert [str(e) for e in errors] == [
        "f.yaml (document 1): YAML syntax error: line 5 column 3: key 'y' is given twice in one mapping "
        "(first on line 4)"
    ]
    docs = split_documents("f.yaml", "base: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n", errors)
    assert docs[0].data["m"] == {"x": 2}


def test_each_document_keeps_its_text_as_written() -> None:
    text = "# a comment\nkind: a   # why\n---\n--- {b: 2}\n---\n\nc:\n  - 3\n\n"
    docs = split_documents("f.yaml", text, [])
    assert [d.text for d in docs] == ["# a comment\nkind: a   # why\n", "{b: 2}\n", "c:\n  - 3\n"]
    # A file parsed whole (it has a `...` or a directive): each document's own lines.
    docs = split_documents("f.yaml", "a: 1\n...\n---\nb:\n  c: 2\n...\n", [])
    assert [d.text for d in docs] == ["a: 1\n", "b:\n  c: 2\n"]


def test_read_folder_tells_each_file_read_with_its_size_and_time(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\n---\nb: 2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yml").write_text("")
    read = read_folder(tmp_path)
    assert [(f.path, f.size) for f in read.files] == [("a.yaml", 14), ("sub/c.yml", 0)]
    assert read.files[0].mtime_ns == (tmp_path / "a.yaml").stat().st_mtime_ns
    assert (len(read.documents), read.errors) == (2, [])

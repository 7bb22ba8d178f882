"""Readers for line-aligned parallel text and NNNNNN_<field>.txt folders/tarballs."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from evalharness.data.loader import load_examples
from evalharness.errors import DataError
from evalharness.spec.loader import load_task

PARALLEL_TASK = """\
version: 1
kind: generation
data:
  local:
    files: [src.de, ref.A.en, ref.B.en]
    format: parallel_text
metrics: [bleu]
"""

INDEXED_TASK = """\
version: 1
kind: generation
data:
  local:
    files: [{articles}, {references}]
    format: indexed_text
    columns: {{source: article, references: reference}}
metrics: [rouge1]
"""


def _task(tmp_path: Path, text: str):
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return load_task(path, "tmp/task")


def _write_tar(path: Path, folder: str, members: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        directory = tarfile.TarInfo(folder)
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_parallel_text_ids_are_line_numbers_and_references_a_list(tmp_path):
    (tmp_path / "src.de").write_text("Hallo Welt\nGuten Morgen\n\n", encoding="utf-8")
    (tmp_path / "ref.A.en").write_text("Hello world\nGood morning\n\n", encoding="utf-8")
    (tmp_path / "ref.B.en").write_text("Hi world\nMorning\nempty source\n", encoding="utf-8")
    data = load_examples(_task(tmp_path, PARALLEL_TASK), tmp_path)
    assert [e.id for e in data.examples] == ["0", "1", "2"]
    assert data.examples[1].fields == {"source": "Guten Morgen", "references": ["Good morning", "Morning"]}
    assert data.examples[2]["references"] == ["", "empty source"]
    assert "ref.B.en" in data.location


def test_parallel_text_line_count_mismatch_names_the_file(tmp_path):
    (tmp_path / "src.de").write_text("a\nb\nc\n")
    (tmp_path / "ref.A.en").write_text("a\nb\nc\n")
    (tmp_path / "ref.B.en").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"ref\.B\.en: 2 lines, but the source file .*src\.de has 3"):
        load_examples(_task(tmp_path, PARALLEL_TASK), tmp_path)


def test_indexed_text_from_tarballs_and_folders_is_the_same(tmp_path):
    articles = {f"{i:06d}_article.txt": f"article {i} text ." for i in range(12)}
    references = {f"{i:06d}_reference.txt": f"summary {i} .\nsecond line ." for i in range(12)}
    _write_tar(tmp_path / "articles.tar.gz", "articles", articles)
    _write_tar(tmp_path / "reference.tar.gz", "reference", references)
    task = _task(tmp_path, INDEXED_TASK.format(articles="articles.tar.gz", references="reference.tar.gz"))
    from_tar = load_examples(task, tmp_path)
    assert [e.id for e in from_tar.examples] == [f"{i:06d}" for i in range(12)]
    assert from_tar.examples[3].fields == {"source": "article 3 text .", "references": ["summary 3 .\nsecond line ."]}
    for folder, members in (("articles", articles), ("reference", references)):
        (tmp_path / folder).mkdir()
        for name, text in members.items():
            (tmp_path / folder / name).write_text(text)
    from evalharness.data.readers import READERS, read_files

    reader = READERS["indexed_text"]
    rows = read_files([tmp_path / "articles", tmp_path / "reference"], reader, reader.options())
    assert rows == [{"id": e.id, "article": e["source"], "reference": e["references"][0]} for e in from_tar.examples]


def test_indexed_text_missing_members_and_bad_names_are_errors(tmp_path):
    _write_tar(tmp_path / "articles.tar.gz", "articles", {f"{i:06d}_article.txt": "x" for i in range(4)})
    _write_tar(tmp_path / "reference.tar.gz", "reference", {f"{i:06d}_reference.txt": "y" for i in (0, 1)})
    task = _task(tmp_path, INDEXED_TASK.format(articles="articles.tar.gz", references="reference.tar.gz"))
    with pytest.raises(DataError, match=r"2 of 4 examples have no 'reference' file \(e\.g\. 000002, 000003\)"):
        load_examples(task, tmp_path)
    _write_tar(tmp_path / "reference.tar.gz", "reference", {"notes.md": "hello"})
    with pytest.raises(DataError, match="member 'reference/notes.md' is not named NNNNNN_<field>.txt"):
        load_examples(task, tmp_path)


@pytest.mark.shared_data
def test_cnndm_see_release_reads_all_11490_examples_quickly(shared_data):
    from evalharness.spec.catalog import TaskCatalog

    started = time.perf_counter()
    data = load_examples(TaskCatalog().load("summarization/cnn_dailymail"), shared_data)
    seconds = time.perf_counter() - started
    assert len(data.examples) == 11490 and data.source == "local"
    assert data.examples[0].id == "000000" and data.examples[-1].id == "011489"
    first = data.examples[0]["references"]
    assert len(first) == 1 and first[0].startswith("in an interview with the new york times , president obama")
    assert first[0].count("\n") == 2  # three highlight sentences, one per line
    # Generous bound for a loaded 2-core machine; typical is ~3 s for 23k tar members.
    assert seconds < 60


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("task", "n", "n_refs"),
    [("translation/wmt21_de_en", 1000, 2), ("translation/wmt21_en_de", 1002, 3), ("translation/wmt23_de_en", 549, 1), ("translation/wmt23_en_de", 557, 1)],
)
def test_wmt_tasks_load_with_all_references(shared_data, task, n, n_refs):
    from evalharness.spec.catalog import TaskCatalog

    data = load_examples(TaskCatalog().load(task), shared_data)
    assert len(data.examples) == n
    assert {len(e["references"]) for e in data.examples} == {n_refs}
    assert data.examples[-1].id == str(n - 1)

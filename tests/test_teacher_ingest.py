"""Caption manifests in three formats, and bad ones named precisely."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cotvtm.errors import CotvtmError
from cotvtm.teacher.ingest import CaptionItem, read_caption_manifest, read_caption_manifests
from helpers import write_jsonl as _write_jsonl

ROWS = [
    {"id": "img-1", "caption": "A dog runs on a beach.", "image": "images/dog.jpg"},
    {"id": 2, "caption": "  A quiet forest.  ", "video": "s3://bucket/forest.mp4"},
    {"id": "emo-3", "caption": "A sad, rainy street.", "media": "/abs/street.png"},
    {"id": "t-4", "caption": "Just text."},
]


def _expected(base):
    return [
        CaptionItem("img-1", "A dog runs on a beach.", str((base / "images/dog.jpg").resolve()), "m"),
        CaptionItem("2", "A quiet forest.", "s3://bucket/forest.mp4", "m"),
        CaptionItem("emo-3", "A sad, rainy street.", "/abs/street.png", "m"),
        CaptionItem("t-4", "Just text.", None, "m"),
    ]


def _write_csv(path, rows):
    columns = ["id", "caption", "image", "video", "media"]
    lines = [",".join(columns)] + [",".join(f'"{r.get(c, "")}"' for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_parquet(path, rows):
    table = pa.table({
        "id": [str(r["id"]) for r in rows], "caption": [r["caption"] for r in rows],
        "image": [r.get("image") for r in rows], "video": [r.get("video") for r in rows],
        "media": [r.get("media") for r in rows],
    })
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("writer, suffix", [(_write_jsonl, "jsonl"), (_write_csv, "csv"), (_write_parquet, "parquet")])
def test_three_formats_give_the_same_items(tmp_path, writer, suffix):
    path = writer(tmp_path / f"m.{suffix}", ROWS)
    items = read_caption_manifest(path)
    expected = [CaptionItem(i.id, i.caption, i.media, f"m.{suffix}") for i in _expected(tmp_path)]
    assert items == expected


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('\n{"id": "a", "caption": "x"}\n\n')
    assert [i.id for i in read_caption_manifest(path)] == ["a"]


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", '{"id": "a", "caption": "x"}\n{"id": "b", caption: "y"}\n', "bad.jsonl line 2: not valid JSON"),
    ("bad.jsonl", '{"id": "a"}\n', "bad.jsonl line 1: no 'caption', and no image or video to caption"),
    ("bad.jsonl", '["a", "b"]\n', "bad.jsonl line 1: expected a JSON object, found list"),
    ("bad.jsonl", '{"id": "a", "caption": "   "}\n', "bad.jsonl line 1: no 'caption', and no image or video"),
    ("bad.jsonl", '{"id": "a", "caption": 5}\n', "bad.jsonl line 1: column 'caption' must be text, not int"),
    ("bad.jsonl", '{"id": [1], "caption": "x"}\n', "bad.jsonl line 1: column 'id' must be a string or an integer"),
    ("bad.csv", "id,text\n1,hello\n", "bad.csv: missing column 'caption' (found: id, text)"),
    ("bad.csv", "id,caption\n1,ok\n2,\"\"\n", "bad.csv line 3: no 'caption', and no image or video"),
    ("bad.csv", "id,caption\n1,ok,extra\n", "bad.csv line 2: more fields than the header has (2)"),
    ("bad.txt", "hello", "unsupported manifest type '.txt' (use .jsonl, .csv or .parquet)"),
    ("bad.parquet", "not parquet", "bad.parquet: not a readable Parquet file"),
])
def test_bad_manifests_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CotvtmError) as err:
        read_caption_manifest(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_parquet_missing_column_and_bad_row(tmp_path):
    pq.write_table(pa.table({"id": ["a"], "text": ["x"]}), tmp_path / "a.parquet")
    with pytest.raises(CotvtmError, match=r"a.parquet: missing column 'caption' \(found: id, text\)"):
        read_caption_manifest(tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": ["a", "b"], "caption": ["x", None]}), tmp_path / "b.parquet")
    with pytest.raises(CotvtmError, match=r"b.parquet row 1: no 'caption', and no image or video"):
        read_caption_manifest(tmp_path / "b.parquet")


def test_missing_file_and_duplicate_ids(tmp_path):
    with pytest.raises(CotvtmError, match="nope.jsonl: manifest not found"):
        read_caption_manifest(tmp_path / "nope.jsonl")
    a = _write_jsonl(tmp_path / "a.jsonl", [{"id": "x", "caption": "one"}])
    b = _write_jsonl(tmp_path / "b.jsonl", [{"id": "x", "caption": "two"}])
    with pytest.raises(CotvtmError, match="duplicate caption id 'x'"):
        read_caption_manifests([a, b])


def test_non_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,caption\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(CotvtmError, match="latin.csv: not UTF-8 text"):
        read_caption_manifest(path)

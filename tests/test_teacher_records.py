"""The label store: sharded, append-only, latest record wins, resumable."""

import pytest

from cotvtm.errors import CotvtmError
from cotvtm.teacher.records import LabelRecord, ShardWriter, done_ids, labels_dir, model_slug, read_labels, shards


def rec(ident: str, status: str = "ok", **kw) -> LabelRecord:
    base = dict(id=ident, caption=f"caption {ident}", media=None, source="m.jsonl", teacher="openai",
                model="gpt-4o", prompt_version="cot-v1", status=status,
                reason="" if status == "ok" else "timed out", x_mt="music" if status == "ok" else "")
    return LabelRecord(**{**base, **kw})


def test_directory_name_holds_prompt_version_and_model(tmp_path):
    assert labels_dir(tmp_path, "cot-v1", "meta-llama/Llama-3.1-8B-Instruct") == \
        tmp_path / "labels-cot-v1-meta-llama-llama-3.1-8b-instruct"
    assert model_slug("gpt-4o-2024-08-06") == "gpt-4o-2024-08-06"
    assert model_slug("///") == "model"


def test_shards_roll_and_reruns_add_new_parts(tmp_path):
    with ShardWriter(tmp_path, shard_size=3) as writer:
        writer.write_many([rec(str(i)).to_json() for i in range(7)])
    assert [p.name for p in shards(tmp_path)] == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    assert [len(p.read_text().splitlines()) for p in shards(tmp_path)] == [3, 3, 1]
    before = {p: p.read_text() for p in shards(tmp_path)}
    with ShardWriter(tmp_path, shard_size=3) as writer:
        writer.write(rec("7").to_json())
    assert shards(tmp_path)[-1].name == "part-00003.jsonl"
    assert all(p.read_text() == text for p, text in before.items())  # nothing rewritten
    assert [r.id for r in read_labels(tmp_path)] == [str(i) for i in range(8)]


def test_latest_record_per_id_wins_and_status_filters(tmp_path):
    with ShardWriter(tmp_path) as writer:
        writer.write_many([r.to_json() for r in (rec("a"), rec("b", "failed"), rec("c", "failed"))])
    with ShardWriter(tmp_path) as writer:
        writer.write(rec("b", x_mt="retried").to_json())
    assert {r.id: r.x_mt for r in read_labels(tmp_path)} == {"a": "music", "b": "retried"}
    assert [r.id for r in read_labels(tmp_path, status="failed")] == ["c"]
    assert sorted(r.id for r in read_labels(tmp_path, status=None)) == ["a", "b", "c"]
    assert done_ids(tmp_path) == {"a", "b", "c"}  # failures are not re-sent by default
    assert done_ids(tmp_path, retry_failed=True) == {"a", "b"}
    with pytest.raises(CotvtmError, match="status must be one of"):
        list(read_labels(tmp_path, status="done"))


def test_a_line_cut_off_by_a_crash_is_ignored_but_corruption_is_reported(tmp_path):
    part = tmp_path / "part-00000.jsonl"
    part.write_text(rec("a").to_json() + "\n" + rec("b").to_json()[:40])
    assert [r.id for r in read_labels(tmp_path)] == ["a"]
    part.write_text("garbage\n" + rec("a").to_json() + "\n")
    with pytest.raises(CotvtmError, match=r"part-00000.jsonl line 1: not a label record"):
        list(read_labels(tmp_path))


def test_missing_directory_is_empty(tmp_path):
    assert list(read_labels(tmp_path / "none")) == [] and done_ids(tmp_path / "none") == set()


def test_other_files_are_not_shards(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".part-00000.jsonl.tmp").write_text("x")
    assert shards(tmp_path) == []

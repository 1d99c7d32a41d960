"""The chain-of-thought teacher and the training-caption dataset builder.

    prompt.py   the CoT prompt (five parts), the direct baseline prompt, the scene writer prompt
    schema.py   the JSON answer, tolerant extraction, X_rt / X_mt
    client.py   the LLM teacher (openai client, retries, repair turns, limits, usage)
    limiter.py  requests/tokens per minute
    offline.py  the rule-based teacher (no LLM), the default without an endpoint
    scenes.py   generated scene descriptions (templates over variable lists)
    bank.py     retrieval banks written from scenes or labels (the prior reads them)
    captioner.py captions for the teacher: a vision endpoint, BLIP, or CLIP retrieval
    ingest.py   caption manifests (JSONL, CSV, Parquet)
    records.py  labelled records on disk: read_labels, done_ids (the interface consumers use)
    stage.py    the Ray Data labelling stages (caption, label)
    settings.py the teacher endpoint's settings (every command's --teacher-*) and the build's
    build.py    the build driver (``cotvtm label``: cotvtm/commands/label.py)
    inference.py the teacher at soundtrack time (--conditioning teacher)
"""

from cotvtm.teacher.records import LabelRecord, done_ids, labels_dir, read_labels

__all__ = ["LabelRecord", "done_ids", "labels_dir", "read_labels"]

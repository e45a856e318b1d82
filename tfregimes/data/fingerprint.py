"""What a dataset's content is, recorded by every run (RUN/data.json) and evaluation so that a rerun or a resume on
data that changed under the same flags is refused instead of reporting, or mixing in, numbers of other data.

A fingerprint is a JSON-able dict: `kind` and what identifies the content of that kind,
  files      each file's size and SHA-256 (npz:PATH, the Fashion-MNIST IDX files, scikit-learn's digits file)
  tfds       the TFDS builder's name, version and split sizes
  generated  the generator's name, version and parameters (mnist1d, synthetic)
plus `dataset` (the name asked for), `location` (where the files were found: shown, not compared) and `digest`
(16 hex digits of the compared part, the `data` column of `python -m tfregimes.results`).
Each source registers its fingerprint function beside its loader; `dataset_fingerprint` (tfregimes.data.registry)
looks it up by the same name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tfregimes.base.file_digest import cached_sha256
from tfregimes.base.registry import Registry

# name -> function (data_dir or None) -> fingerprint without `dataset` and `digest`
FINGERPRINTS: Registry[Callable[[str | None], dict[str, Any]]] = Registry("dataset fingerprint")
# prefix -> function (argument after the colon, data_dir or None) -> fingerprint
PREFIX_FINGERPRINTS: Registry[Callable[[str, str | None], dict[str, Any]]] = Registry("dataset prefix fingerprint")
_NOT_COMPARED = frozenset({"dataset", "location", "digest"})


def files_fingerprint(paths: Sequence[str | os.PathLike], **identity: Any) -> dict[str, Any]:
    """Size and SHA-256 of each file, by base name (moving the files changes nothing; `location` says where they
    were); `identity`: what else decides the arrays made of them (e.g. the split of a set that has none)."""
    files = {os.path.basename(path): {"size": os.path.getsize(path), "sha256": cached_sha256(path)}
             for path in paths}
    locations = sorted({os.path.dirname(os.path.realpath(path)) for path in paths})
    return {"kind": "files", "files": files, **identity, "location": ", ".join(locations)}


def generated_fingerprint(generator: str, parameters: Mapping[str, Any], version: str = "") -> dict[str, Any]:
    """Data made by `generator` (a dotted name) from `parameters`; `version` of its package, if not ours."""
    return {"kind": "generated", "generator": generator, "version": version, "parameters": _plain(parameters)}


def _plain(value: Any) -> Any:
    """Tuples as lists, as JSON reads them back, so that a recorded fingerprint equals a fresh one."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def compared(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fingerprint.items() if key not in _NOT_COMPARED}


def finish(dataset: str, fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """`fingerprint` with the dataset name and its digest."""
    fingerprint = _plain(fingerprint)
    text = json.dumps(compared(fingerprint), sort_keys=True)
    return {"dataset": dataset, **fingerprint, "digest": hashlib.sha256(text.encode()).hexdigest()[:16]}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}/{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _shown(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:  # A SHA-256: its start tells two apart.
        return value[:12] + "…"
    return repr(value) if value is not None else "none"


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two fingerprints, one `field: recorded X, now Y` per field (`location` aside)."""
    old, new = _flat(compared(recorded)), _flat(compared(current))
    return [f"{key}: recorded {_shown(old.get(key))}, now {_shown(new.get(key))}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]

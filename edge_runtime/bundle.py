"""The model bundle: one versioned zip file per model, shared by host and gateway.

A bundle (``*.ewb``) is a zip archive::

    manifest.json           what the model is and how to use it (schema below)
    manifest.sig            optional Ed25519 signature over manifest.json
    model_float32.tflite    float reference model
    model_int8.tflite       full-integer model the gateway runs by default
    model_int8_edgetpu.tflite, model_float16.tflite   optional targets
    keras_model.h5          host-only: the trained Keras model, for re-export
    reference_windows.npz   host-only: scaled training/validation windows for
                            quantization and the parity gate

Every member except ``manifest.json`` and ``manifest.sig`` is listed in
``manifest["members"]`` with its sha256 and size, so signing the manifest
signs the whole bundle. Bundles are written atomically (temp file, fsync,
rename): a reader never sees a half-written bundle.

Manifest keys (schema version 1)::

    schema_version      int
    model               {id, version, type, created, edgewatch_version, params}
    channels            [{name, unit}]            model input order
    sample_rate_hz      float | null
    window, stride      int
    scaler              {kind: "standard", mean: [...], scale: [...]}
    score               {method: "mse"|"mae", reduce: "mean"|"max", channel_weights: [...]|null}
    threshold           {value, method, scores_from, history: [...]}
    calibration         {scores: [...], model}     validation scores of normal data
    runtime             {model: member name the gateway runs}
    models              {member: {precision, target, input: {...}, output: {...}, ops: [...]}}
    training            {data_fingerprint, sources, rows, windows, ...}
    metrics, parity     free-form figures shown by ``edgewatch info``
    categorical         optional {columns, vocabulary: {column: [values]}}; one-hot
                        channels named "column=value" follow the numeric ones
    members             {name: {sha256, size}}
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import BundleError, ConfigError

__all__ = ["Bundle", "SCHEMA_VERSION", "BUNDLE_SUFFIX", "sha256_hex"]

SCHEMA_VERSION = 1
BUNDLE_SUFFIX = ".ewb"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_UNLISTED = frozenset({MANIFEST, SIGNATURE})

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "model": dict,
    "channels": list,
    "window": int,
    "stride": int,
    "scaler": dict,
    "score": dict,
    "threshold": dict,
    "runtime": dict,
    "members": dict,
}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Bundle:
    """An edgewatch model bundle held in memory.

    Load with :meth:`load` (verifies schema and member hashes), change the
    manifest or members, and :meth:`save` to write a new file atomically.

    Example
    -------
    >>> b = Bundle.load("models/cmapss-fd001-conv.ewb")      # doctest: +SKIP
    >>> b.window, b.channel_names[:2], b.threshold             # doctest: +SKIP
    (30, ['s2', 's3'], 0.93)
    """

    def __init__(self, manifest: Mapping[str, Any], members: Mapping[str, bytes],
                 signature: bytes | None = None, path: Path | None = None) -> None:
        self.manifest: dict[str, Any] = copy.deepcopy(dict(manifest))
        self._members: dict[str, bytes] = dict(members)
        self.signature = signature
        self.path = path

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, verify: bool = True) -> Bundle:
        """Read a bundle file; with ``verify`` check schema and every member's sha256."""
        path = Path(path)
        if not path.exists():
            raise BundleError(f"{path}: no such bundle file; pass the path of a .ewb file written by 'edgewatch train'")
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                if MANIFEST not in names:
                    raise BundleError(f"{path}: not an edgewatch bundle (no {MANIFEST} inside); pass a .ewb file written by 'edgewatch train'")
                raw_manifest = zf.read(MANIFEST)
                members = {n: zf.read(n) for n in names if n not in _UNLISTED}
                signature = zf.read(SIGNATURE) if SIGNATURE in names else None
        except zipfile.BadZipFile as err:
            raise BundleError(f"{path}: not an edgewatch bundle (not a zip archive: {err}); pass a .ewb file written by 'edgewatch train'") from err
        except (OSError, zipfile.LargeZipFile) as err:
            raise BundleError(f"{path}: cannot read bundle ({err})") from err
        try:
            manifest = json.loads(raw_manifest)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BundleError(f"{path}: {MANIFEST} is not valid JSON ({err}); the bundle is corrupt, re-export it") from err
        bundle = cls(manifest, members, signature, path)
        bundle.raw_manifest = raw_manifest
        if verify:
            bundle.verify()
        return bundle

    raw_manifest: bytes | None = None

    def manifest_bytes(self) -> bytes:
        """The canonical manifest.json bytes, with member hashes refreshed."""
        self._refresh_member_table()
        return (json.dumps(self.manifest, indent=1, sort_keys=True) + "\n").encode()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the bundle atomically to ``path`` and return it.

        A signature is kept only if the manifest is unchanged since it was made;
        any change (new threshold, new member) drops it, and the bundle must be
        signed again.
        """
        path = Path(path)
        manifest_bytes = self.manifest_bytes()
        if self.signature is not None and manifest_bytes != self.raw_manifest:
            self.signature = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as err:
            raise ConfigError(f"cannot write bundle {str(path)!r}: {err.strerror or err}; choose a writable location") from err
        try:
            with os.fdopen(fd, "wb") as fh:
                with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    zf.writestr(MANIFEST, manifest_bytes)
                    if self.signature is not None:
                        zf.writestr(SIGNATURE, self.signature)
                    for name in sorted(self._members):
                        zf.writestr(name, self._members[name])
                fh.flush()
                os.fsync(fh.fileno())
            # mkstemp creates 0600; a bundle is read by the runtime's own user.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.raw_manifest = manifest_bytes
        self.path = path
        return path

    # -------------------------------------------------------------- members
    def member_names(self) -> list[str]:
        return sorted(self._members)

    def has(self, name: str) -> bool:
        return name in self._members

    def read(self, name: str) -> bytes:
        try:
            return self._members[name]
        except KeyError:
            raise BundleError(
                f"{self._where()}: member {name!r} is missing; it has {', '.join(self.member_names())}"
            ) from None

    def put(self, name: str, data: bytes) -> None:
        """Add or replace a member (its hash is recorded on save)."""
        if name in _UNLISTED or "/" in name:
            raise ValueError(f"invalid member name {name!r}")
        self._members[name] = bytes(data)
        self._refresh_member_table()

    def remove(self, name: str) -> None:
        self._members.pop(name, None)
        self._refresh_member_table()

    def put_arrays(self, name: str, **arrays: NDArray[Any]) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        self.put(name, buf.getvalue())

    def read_arrays(self, name: str) -> dict[str, NDArray[Any]]:
        with np.load(io.BytesIO(self.read(name)), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}

    def _refresh_member_table(self) -> None:
        self.manifest["members"] = {
            name: {"sha256": sha256_hex(data), "size": len(data)}
            for name, data in sorted(self._members.items())
        }

    # ----------------------------------------------------------- validation
    def _where(self) -> str:
        return str(self.path) if self.path else "bundle"

    def verify(self) -> None:
        """Check schema version, required keys and every member's sha256."""
        where = self._where()
        m = self.manifest
        if not isinstance(m, dict):
            raise BundleError(f"{where}: manifest is not a JSON object; the bundle is corrupt, re-export it")
        version = m.get("schema_version")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise BundleError(
                f"{where}: manifest schema_version {version} is newer than this edgewatch reads "
                f"({SCHEMA_VERSION}); upgrade edgewatch on this machine"
            )
        for key, kind in _REQUIRED.items():
            if key not in m:
                raise BundleError(f"{where}: manifest lacks required field {key!r}; the bundle is incomplete, re-export it")
            if not isinstance(m[key], kind) or isinstance(m[key], bool):
                raise BundleError(f"{where}: manifest field {key!r} has the wrong type ({type(m[key]).__name__}); re-export the bundle")
        self._verify_fields(where)
        listed = m["members"]
        for name, data in self._members.items():
            entry = listed.get(name)
            if entry is None:
                raise BundleError(f"{where}: member {name!r} is not listed in the manifest; the bundle was altered, re-export or re-sign it")
            if sha256_hex(data) != entry.get("sha256"):
                raise BundleError(
                    f"{where}: member {name!r} sha256 does not match the manifest; the bundle is corrupt or was altered, re-export it"
                )
        for name in listed:
            if name not in self._members:
                raise BundleError(f"{where}: member {name!r} is listed in the manifest but missing from the archive; re-export the bundle")
        runtime_model = m["runtime"].get("model")
        if runtime_model not in self._members:
            raise BundleError(f"{where}: runtime model {runtime_model!r} is not in the bundle; re-export it with 'edgewatch export'")
        if len(m["scaler"].get("mean", [])) != len(m["channels"]):
            raise BundleError(f"{where}: scaler has {len(m['scaler'].get('mean', []))} channels but the manifest lists {len(m['channels'])}; re-train the bundle")

    def _verify_fields(self, where: str) -> None:
        """The nested fields every reader relies on, so a hand-edited manifest fails here, clearly."""
        m = self.manifest

        def bad(field: str, expected: str) -> BundleError:
            return BundleError(f"{where}: manifest field {field} must be {expected}; the bundle was edited or is corrupt, re-export it")

        value = m["threshold"].get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
            raise bad("threshold.value", f"a finite number (got {value!r})")
        if not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in m["channels"]) or not m["channels"]:
            raise bad("channels", "a non-empty list of {name, unit} objects")
        if not isinstance(m["runtime"].get("model"), str):
            raise bad("runtime.model", "a member name")
        if m["window"] < 1 or m["stride"] < 1:
            raise bad("window/stride", f"at least 1 (got {m['window']!r}/{m['stride']!r})")
        for name, entry in m["members"].items():
            if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
                raise bad(f"members[{name!r}]", "an object with a sha256")
        scaler = m["scaler"]
        if not all(isinstance(scaler.get(k), list) for k in ("mean", "scale")):
            raise bad("scaler", "an object with mean and scale lists")

    # ------------------------------------------------------------ accessors
    @property
    def model_id(self) -> str:
        return str(self.manifest["model"].get("id", "model"))

    @property
    def version(self) -> int:
        return int(self.manifest["model"].get("version", 1))

    @property
    def model_type(self) -> str:
        return str(self.manifest["model"].get("type", "?"))

    @property
    def channel_names(self) -> list[str]:
        return [c["name"] for c in self.manifest["channels"]]

    @property
    def window(self) -> int:
        return int(self.manifest["window"])

    @property
    def stride(self) -> int:
        return int(self.manifest["stride"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"]["value"])

    @property
    def runtime_model(self) -> str:
        return str(self.manifest["runtime"]["model"])

    @property
    def calibration_scores(self) -> NDArray[np.float64]:
        return np.asarray(self.manifest.get("calibration", {}).get("scores", []), dtype=np.float64)

    @property
    def sha256(self) -> str:
        """Identity of this bundle: the hash of its canonical manifest."""
        return sha256_hex(self.manifest_bytes())

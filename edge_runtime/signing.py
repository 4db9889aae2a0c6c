"""Ed25519 signatures over bundles and remote commands (``cryptography`` package).

A bundle's ``manifest.sig`` member is a small JSON document::

    {"alg": "ed25519", "key_id": "<16 hex>", "sig": "<base64 of 64 bytes>"}

signed over the exact ``manifest.json`` bytes. The manifest lists the sha256 of
every other member and :meth:`Bundle.load` checks them, so a valid signature
over the manifest covers the whole bundle.

A signed command is a JSON object with a ``sig`` field (same layout) over the
canonical JSON of the object without ``sig``: ``json.dumps(obj, sort_keys=True,
separators=(",", ":"))``. It names the device and the command, so it cannot be
replayed on another device or as another command.

``key_id`` is the first 16 hex digits of sha256 of the raw 32-byte public key;
it lets an error say *which* key signed, not only that the key is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from edge_runtime.errors import BundleError, ConfigError, require

__all__ = ["load_private_key", "load_public_key", "key_id", "sign_bytes", "verify_bytes", "sign_bundle",
           "verify_bundle_signature", "sign_command", "verify_command", "canonical_json", "generate_keypair",
           "SignatureError", "check_bundle"]


class SignatureError(BundleError):
    """A signature is missing, malformed, made by another key, or does not match."""


def _crypto() -> Any:
    require("cryptography", "ops")
    from cryptography.hazmat.primitives.asymmetric import ed25519
    return ed25519


def _serialization() -> Any:
    from cryptography.hazmat.primitives import serialization
    return serialization


def generate_keypair(stem: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``STEM.key`` (PKCS#8 PEM, mode 0600) and ``STEM.pub``; never overwrite."""
    ed25519 = _crypto()
    ser = _serialization()
    stem = Path(stem)
    private, public = stem.with_name(stem.name + ".key"), stem.with_name(stem.name + ".pub")
    for p in (private, public):
        if p.exists():
            raise ConfigError(f"{str(p)!r} already exists; choose another --out or move the old key away first "
                              "(keys are never overwritten)")
    if not stem.parent.is_dir():
        raise ConfigError(f"--out {str(stem)!r}: directory {str(stem.parent)!r} does not exist; create it first")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def load_private_key(path: str | os.PathLike[str]) -> Any:
    ed25519 = _crypto()
    ser = _serialization()
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"--key {str(path)!r}: cannot read it ({err.strerror}); pass the .key file from "
                          "'edgewatch keys generate'") from err
    try:
        key = ser.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"--key {str(path)!r} is not an unencrypted PEM private key ({err}); pass the .key file "
                          "from 'edgewatch keys generate'") from err
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"--key {str(path)!r} is a {type(key).__name__}, expected an Ed25519 key; "
                          "make one with 'edgewatch keys generate'")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Any:
    ed25519 = _crypto()
    ser = _serialization()
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"public key {str(path)!r}: cannot read it ({err.strerror}); pass the .pub file from "
                          "'edgewatch keys generate'") from err
    try:
        key = ser.load_pem_public_key(data)
    except ValueError as err:
        raise ConfigError(f"public key {str(path)!r} is not a PEM public key ({err}); pass the .pub file from "
                          "'edgewatch keys generate'") from err
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"public key {str(path)!r} is a {type(key).__name__}, expected Ed25519")
    return key


def key_id(public_key: Any) -> str:
    ser = _serialization()
    raw = public_key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_bytes(private_key: Any, data: bytes) -> dict[str, str]:
    return {"alg": "ed25519", "key_id": key_id(private_key.public_key()),
            "sig": base64.b64encode(private_key.sign(data)).decode()}


def verify_bytes(public_key: Any, data: bytes, signature: Any, what: str) -> None:
    """Raise :class:`SignatureError` unless ``signature`` (the JSON dict) is ``public_key``'s over ``data``."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(signature, dict) or signature.get("alg") != "ed25519" or not isinstance(signature.get("sig"), str):
        raise SignatureError(f"{what}: signature is malformed (expected {{alg: ed25519, key_id, sig}}, got {signature!r})")
    want = key_id(public_key)
    if signature.get("key_id") != want:
        raise SignatureError(f"{what}: signed by key {signature.get('key_id')!r}, but this device trusts key {want!r}; "
                             "sign with the matching private key")
    try:
        raw = base64.b64decode(signature["sig"], validate=True)
        public_key.verify(raw, data)
    except (InvalidSignature, ValueError) as err:
        raise SignatureError(f"{what}: signature does not match the content (key {want}); it was altered after "
                             "signing: re-sign it") from err


def sign_bundle(bundle: Any, private_key: Any) -> dict[str, str]:
    """Sign the canonical manifest bytes and attach the signature; ``bundle.save`` keeps it."""
    manifest = bundle.manifest_bytes()
    sig = sign_bytes(private_key, manifest)
    bundle.raw_manifest = manifest
    bundle.signature = json.dumps(sig, sort_keys=True).encode()
    return sig


def verify_bundle_signature(bundle: Any, public_key: Any) -> str:
    """Check ``bundle.signature`` over the manifest bytes as stored; return the key id."""
    where = str(bundle.path or "bundle")
    if bundle.signature is None:
        raise SignatureError(f"{where}: bundle is unsigned, but this device only runs bundles signed by key "
                             f"{key_id(public_key)}; sign it with 'edgewatch sign {where} --key KEY'")
    try:
        sig = json.loads(bundle.signature)
    except (UnicodeDecodeError, ValueError) as err:
        raise SignatureError(f"{where}: manifest.sig is not JSON ({err}); re-sign the bundle") from err
    data = bundle.raw_manifest if bundle.raw_manifest is not None else bundle.manifest_bytes()
    verify_bytes(public_key, data, sig, where)
    return key_id(public_key)


def check_bundle(bundle: Any, public_key_path: str | os.PathLike[str] | None) -> None:
    """The runtime's policy: with a configured public key, refuse unsigned or tampered bundles."""
    if public_key_path is None:
        return
    verify_bundle_signature(bundle, load_public_key(public_key_path))


def canonical_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def sign_command(payload: dict[str, Any], private_key: Any) -> dict[str, Any]:
    body = {k: v for k, v in payload.items() if k != "sig"}
    return {**body, "sig": sign_bytes(private_key, canonical_json(body))}


def verify_command(payload: dict[str, Any], public_key: Any, what: str = "command") -> None:
    if "sig" not in payload:
        raise SignatureError(f"{what} is unsigned, but this device requires commands signed by key "
                             f"{key_id(public_key)}; pass --key to the edgewatch command")
    body = {k: v for k, v in payload.items() if k != "sig"}
    verify_bytes(public_key, canonical_json(body), payload["sig"], what)

"""``edgewatch keys generate|verify`` and ``edgewatch sign``: Ed25519 bundle signatures.

Import-light: ``cryptography`` and numpy load inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["keys", "sign"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def keys() -> None:
    """Generate Ed25519 keys and check bundle signatures."""


@keys.command("generate")
@click.option("--out", "stem", default="edgewatch", show_default=True, metavar="STEM",
              help="Writes STEM.key (private, mode 0600) and STEM.pub.")
def generate(stem: str) -> None:
    """Make a key pair: keep the .key on the signing machine, copy the .pub to gateways."""
    from edge_runtime.signing import generate_keypair, key_id, load_public_key

    private, public = generate_keypair(stem)
    click.echo(f"private key {private} (keep it secret; it signs bundles and commands)")
    click.echo(f"public key  {public} (key id {key_id(load_public_key(public))}; install it on gateways as "
               "security.bundle_public_key / security.command_public_key)")


@keys.command("verify")
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--public-key", default=None, type=click.Path(dir_okay=False),
              help="Trusted Ed25519 public key (PEM); without it only the hashes are checked.")
@click.option("--sha256", "file_sha256", default=None, help="Also require the bundle file to have this sha256.")
def verify(bundle: str, public_key: str | None, file_sha256: str | None) -> None:
    """Check BUNDLE's member hashes and its signature; exit 2 when it fails."""
    from edge_runtime.bundle import Bundle, sha256_hex
    from edge_runtime.errors import BundleError
    from edge_runtime.signing import load_public_key, verify_bundle_signature

    if file_sha256 is not None:
        actual = sha256_hex(Path(bundle).read_bytes()) if Path(bundle).is_file() else None
        if actual != file_sha256.lower():
            raise BundleError(f"{bundle}: file sha256 is {actual!r}, expected {file_sha256!r}; the copy is "
                              "incomplete or altered, copy it again")
    b = Bundle.load(bundle)
    signed = "signature not checked (no --public-key)"
    if public_key is not None:
        signed = f"signed by key {verify_bundle_signature(b, load_public_key(public_key))}"
    click.echo(f"{bundle}: OK, model {b.model_id} v{b.version}, manifest sha256 {b.sha256[:16]}, {signed}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), help="Ed25519 private key (PEM).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the signed bundle here (default: in place).")
def sign(bundle: str, key_path: str, out: str | None) -> None:
    """Sign BUNDLE's manifest (which lists every member's sha256) with KEY."""
    from edge_runtime.bundle import Bundle
    from edge_runtime.signing import load_private_key, sign_bundle

    key = load_private_key(key_path)
    b = Bundle.load(bundle)
    sig = sign_bundle(b, key)
    path = b.save(out or bundle)
    click.echo(f"signed {path}: model {b.model_id} v{b.version}, manifest sha256 {b.sha256[:16]}, key {sig['key_id']}")

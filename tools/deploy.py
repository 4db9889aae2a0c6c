"""``edgewatch deploy``: flash a bundle onto a gateway, watch it come up, roll back if it does not.

Layout on the target (the runtime's ``bundle`` is ``PATH/current/bundle.ewb``)::

    PATH/releases/20250101T120000Z-v3-1a2b3c4d5e6f/bundle.ewb    one slot per deploy
    PATH/current -> releases/<slot>                              switched atomically (rename of a symlink)

Steps: copy into a new slot (temp name, then rename) -> verify on the target
(file sha256, member hashes, and the signature when --public-key names the
target's trusted key) -> switch ``current`` -> make the runtime reload (an
MQTT ``reload`` command, or ``--restart`` = ``systemctl restart``) -> watch
``<root>/<device>/status`` for the new manifest sha256 -> on timeout switch
``current`` back to the previous slot and reload again.

Exit codes: 0 deployed and seen running; 2 bad input or a bundle that fails
verification (nothing was switched); 1 operational failure: target
unreachable, or the new bundle did not come up and was rolled back.

Targets: a local directory, or ``ssh://user@host[:port]/path`` through the
system ``ssh``/``scp`` (BatchMode: keys, no password prompts); on an ssh
target the verification runs there, with the target's own edgewatch.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from edge_runtime.errors import BundleError, ConfigError, EdgewatchError, TransportError

__all__ = ["deploy", "DeployError", "LocalTarget", "SshTarget", "parse_target"]

BUNDLE_NAME = "bundle.ewb"


class DeployError(EdgewatchError):
    """The new bundle did not come up and was rolled back (exit 1)."""


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class LocalTarget:
    """A release directory on this machine."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser()
        self.where = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--to {root!r} is a file; pass the directory the runtime's bundle lives under")
        try:
            (self.root / "releases").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"--to {root!r}: cannot create {self.root / 'releases'} ({err.strerror}); pass a writable directory") from err

    def current(self) -> str | None:
        link = self.root / "current"
        return os.readlink(link) if link.is_symlink() else None

    def upload(self, bundle: Path, slot: str) -> None:
        d = self.root / "releases" / slot
        d.mkdir(parents=True)
        tmp = d / (BUNDLE_NAME + ".tmp")
        with open(bundle, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, d / BUNDLE_NAME)

    def verify(self, slot: str, file_sha256: str, public_key: str | None) -> str:
        from edge_runtime.bundle import Bundle
        from edge_runtime.signing import load_public_key, verify_bundle_signature

        path = self.root / "releases" / slot / BUNDLE_NAME
        actual = _file_sha256(path)
        if actual != file_sha256:
            raise BundleError(f"{path}: sha256 on the target is {actual[:16]}, expected {file_sha256[:16]}; the copy is damaged")
        b = Bundle.load(path)
        if public_key is None:
            return "hashes OK (no --public-key: signature not checked)"
        return f"hashes OK, signed by key {verify_bundle_signature(b, load_public_key(public_key))}"

    def switch(self, rel: str) -> None:
        tmp = self.root / ".current.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(rel, tmp)
        os.replace(tmp, self.root / "current")

    def remove(self, slot: str) -> None:
        shutil.rmtree(self.root / "releases" / slot, ignore_errors=True)

    def slots(self) -> list[str]:
        return sorted(p.name for p in (self.root / "releases").iterdir() if p.is_dir())

    def restart(self, service: str) -> None:
        _run(["systemctl", "restart", service], f"restarting {service}")


def _run(argv: list[str], what: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as err:
        raise ConfigError(f"{what}: {argv[0]!r} is not installed on this machine ({err}); install it") from err
    except subprocess.TimeoutExpired as err:
        raise TransportError(f"{what}: no answer within {timeout:g} s; check the network and the target") from err
    if proc.returncode != 0:
        raise TransportError(f"{what} failed (exit {proc.returncode}): {_last_line(proc.stderr)}")
    return proc


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


class SshTarget:
    """A release directory on a gateway, through the system ssh/scp (BatchMode, so no password prompts)."""

    def __init__(self, url: str, remote_edgewatch: str, connect_timeout: int = 10) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.hostname or port == -1 or not parts.path or parts.path == "/":
            raise ConfigError(f"--to {url!r} is invalid; use ssh://user@host[:port]/absolute/path")
        self.where = url
        self.dest = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        self.port = port or 22
        self.root = parts.path.rstrip("/")
        self.edgewatch = remote_edgewatch
        self.opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}"]

    def sh(self, script: str, what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["ssh", *self.opts, "-p", str(self.port), self.dest, script]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
        except FileNotFoundError as err:
            raise ConfigError(f"{what}: the 'ssh' client is not installed here; install openssh-client") from err
        except subprocess.TimeoutExpired as err:
            raise TransportError(f"{what} on {self.where}: no answer within 180 s") from err
        if proc.returncode == 255:
            raise TransportError(f"cannot reach {self.dest} port {self.port} over ssh ({_last_line(proc.stderr)}); "
                                 "check the host name, the network and that your ssh key is authorized")
        if check and proc.returncode != 0:
            raise TransportError(f"{what} on {self.where} failed (exit {proc.returncode}): {_last_line(proc.stderr)}")
        return proc

    def prepare(self) -> None:
        self.sh(f"mkdir -p {shlex.quote(self.root + '/releases')}", "creating the release directory")

    def current(self) -> str | None:
        p = self.sh(f"readlink {shlex.quote(self.root + '/current')} || true", "reading the current link")
        return p.stdout.strip() or None

    def upload(self, bundle: Path, slot: str) -> None:
        d = f"{self.root}/releases/{slot}"
        self.sh(f"mkdir {shlex.quote(d)}", "creating the release slot")
        _run(["scp", *self.opts, "-P", str(self.port), "-q", str(bundle), f"{self.dest}:{d}/{BUNDLE_NAME}.tmp"],
             f"copying the bundle to {self.dest}")
        self.sh(f"sync && mv {shlex.quote(d + '/' + BUNDLE_NAME + '.tmp')} {shlex.quote(d + '/' + BUNDLE_NAME)}",
                "finishing the copy")

    def verify(self, slot: str, file_sha256: str, public_key: str | None) -> str:
        path = f"{self.root}/releases/{slot}/{BUNDLE_NAME}"
        cmd = [self.edgewatch, "keys", "verify", path, "--sha256", file_sha256]
        if public_key:
            cmd += ["--public-key", public_key]
        p = self.sh(" ".join(shlex.quote(c) for c in cmd), "verifying the bundle", check=False)
        if p.returncode == 2:
            raise BundleError(f"verification on {self.dest} refused the bundle: {_last_line(p.stderr)}")
        if p.returncode != 0:
            raise TransportError(f"verification on {self.dest} failed (exit {p.returncode}): {_last_line(p.stderr)}; "
                                 f"is edgewatch installed at {self.edgewatch!r}? (--remote-edgewatch)")
        return _last_line(p.stdout)

    def switch(self, rel: str) -> None:
        tmp, cur = shlex.quote(self.root + "/.current.tmp"), shlex.quote(self.root + "/current")
        self.sh(f"ln -sfn {shlex.quote(rel)} {tmp} && mv -Tf {tmp} {cur}", "switching the current link")

    def remove(self, slot: str) -> None:
        self.sh(f"rm -rf {shlex.quote(self.root + '/releases/' + slot)}", "removing the slot", check=False)

    def slots(self) -> list[str]:
        p = self.sh(f"ls -1 {shlex.quote(self.root + '/releases')}", "listing slots")
        return sorted(s for s in p.stdout.split() if s)

    def restart(self, service: str) -> None:
        self.sh(f"sudo -n systemctl restart {shlex.quote(service)}", f"restarting {service}")


def parse_target(to: str, remote_edgewatch: str) -> LocalTarget | SshTarget:
    if to.startswith("ssh://"):
        return SshTarget(to, remote_edgewatch)
    if "://" in to:
        raise ConfigError(f"--to {to!r}: unknown scheme; use a local directory or ssh://user@host/path")
    return LocalTarget(to)


def _watch(client: Any, topic: str, sha: str, deadline: float) -> dict[str, Any] | None:
    """The first status message on ``topic`` that says online with model ``sha``; None at the deadline."""
    import json

    while (m := client.next_message(deadline)) is not None:
        if m.topic != topic:
            continue
        try:
            doc = json.loads(m.payload)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("state") == "online" and doc.get("model_sha256") == sha:
            return doc
    return None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--to", "to", required=True, metavar="PATH|ssh://user@host/path", help="Release directory on the target.")
@click.option("--public-key", default=None, help="Trusted public key, as a path on the target: the signature is checked there.")
@click.option("--restart", is_flag=True, help="Restart the service (systemctl) instead of a hot reload over MQTT.")
@click.option("--service", default="edgewatch", show_default=True, help="systemd unit to restart with --restart.")
@click.option("--device", default=None, help="Device id whose status to watch (needs --mqtt).")
@click.option("--mqtt", "mqtt_url", default=None, metavar="URL", help="Broker to watch the device on (and send reload).")
@click.option("--username", default=None)
@click.option("--password-file", type=click.Path(dir_okay=False), default=None)
@click.option("--tls-ca", type=click.Path(dir_okay=False), default=None)
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None)
@click.option("--root", default="edgewatch", show_default=True, help="Topic root.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), default=None, help="Sign the reload command with this key.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds for the new model to show up on the status topic before rolling back.")
@click.option("--keep", type=click.IntRange(min=2), default=5, show_default=True, help="Release slots to keep.")
@click.option("--remote-edgewatch", default="/opt/edgewatch/venv/bin/edgewatch", show_default=True,
              help="edgewatch on an ssh target (it verifies the bundle there).")
def deploy(bundle_path: str, to: str, public_key: str | None, restart: bool, service: str, device: str | None,
           mqtt_url: str | None, key_path: str | None, timeout: float, keep: int, remote_edgewatch: str,
           **mqtt: Any) -> None:
    """Copy BUNDLE into a new release slot, verify it there, switch `current`, watch it come up, roll back if not."""
    from edge_runtime.bundle import Bundle

    if (device is None) != (mqtt_url is None):
        raise ConfigError("--device and --mqtt go together: the device's status topic is watched on that broker")
    bundle = Bundle.load(bundle_path)          # refuse a broken bundle before touching the target
    sha, file_sha = bundle.sha256, _file_sha256(Path(bundle_path))
    target = parse_target(to, remote_edgewatch)
    if isinstance(target, SshTarget):
        target.prepare()
    client = None
    if mqtt_url is not None:
        # Connect before touching the target: a wrong broker URL or password
        # must not leave a release slot behind.
        from tools.remote import operator_client_from

        client = operator_client_from({"mqtt_url": mqtt_url, **mqtt}).__enter__()
    try:
        previous = target.current()
        slot = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-v{bundle.version}-{sha[:12]}"
        target.upload(Path(bundle_path), slot)
        try:
            verdict = target.verify(slot, file_sha, public_key)
        except EdgewatchError:
            target.remove(slot)
            raise
        click.echo(f"copied     {bundle_path} -> {target.where}/releases/{slot}: {verdict}")
        status_topic = f"{mqtt['root']}/{device}/status"
        if client is not None:
            client.subscribe(status_topic)
        target.switch(f"releases/{slot}")
        click.echo(f"switched   {target.where}/current -> releases/{slot} (was {previous or 'none'})")
        try:
            _trigger(target, client, device, restart, service, mqtt["root"], key_path, timeout)
        except EdgewatchError as err:
            # The switch happened but the runtime was not told (or refused):
            # put `current` back so the next restart cannot pick the new slot.
            if previous is not None:
                target.switch(previous)
                click.echo(f"rollback   reload failed ({err}); {target.where}/current -> {previous}")
            raise
        if client is None:
            click.echo("note       no --device/--mqtt: not watching the device; the runtime picks the bundle up on reload/restart")
            _prune(target, keep, slot, previous)
            return
        up = _watch(client, status_topic, sha, time.monotonic() + timeout)
        if up is not None:
            click.echo(f"running    {device}: model {up.get('model_id')} v{up.get('model_version')} sha256 {sha[:12]}, "
                       f"threshold {up.get('threshold')}")
            _prune(target, keep, slot, previous)
            return
        # Roll back: the device did not report the new model in time.
        if previous is None:
            raise DeployError(f"{device} did not report model sha256 {sha[:12]} within {timeout:g} s and there is no previous "
                              f"release to roll back to; check the device's log (journalctl -u {service})")
        target.switch(previous)
        click.echo(f"rollback   {device} did not come up with sha256 {sha[:12]} within {timeout:g} s; "
                   f"{target.where}/current -> {previous}")
        _trigger(target, client, device, restart, service, mqtt["root"], key_path)
        raise DeployError(f"{device} did not run the new bundle {Path(bundle_path).name} (sha256 {sha[:12]}) within "
                          f"{timeout:g} s; rolled back to {previous} (slot {slot} kept for inspection); check the device's "
                          f"log (journalctl -u {service}) for why it refused the bundle")
    finally:
        if client is not None:
            client.__exit__()


def _trigger(target: Any, client: Any, device: str | None, restart: bool, service: str, root: str,
             key_path: str | None, timeout: float = 15.0) -> None:
    if restart:
        target.restart(service)
        click.echo(f"restarted  {service} on {target.where}")
    elif client is not None:
        from tools.remote import send_command

        send_command(client, str(device), "reload", {"reason": "edgewatch deploy"}, root=root, key_path=key_path,
                     timeout=min(timeout, 15.0))
        click.echo(f"reload     {device} acknowledged the reload command")


def _prune(target: Any, keep: int, slot: str, previous: str | None) -> None:
    protect = {slot, (previous or "").rsplit("/", 1)[-1]}
    old = [s for s in target.slots() if s not in protect]
    for s in old[: max(0, len(old) - (keep - len(protect)))]:
        target.remove(s)

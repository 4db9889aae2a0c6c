"""The one ``edgewatch`` command.

Subcommands are registered here by dotted path and imported only when they
run, so ``edgewatch --help`` and the gateway commands never pull TensorFlow
(``tests/test_imports.py`` keeps that honest). Each command module must itself
be import-light: heavy imports go inside the command function.

Errors: an :class:`edge_runtime.errors.EdgewatchError` escaping a command is
printed as one ``Error: ...`` line with the error's exit code (2 for bad input);
``edgewatch --debug ...`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from edge_runtime import __version__
from edge_runtime.errors import EdgewatchError

#: name -> (import path "module:attribute", one-line help shown by --help).
#: The help text lives here so that listing commands imports none of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tools.demo:demo", "Run the whole kit end to end on bundled data."),
    "train": ("trainer.cli:train", "Train an autoencoder on healthy data and write a bundle."),
    "export": ("trainer.cli:export", "(Re)export a bundle's model to TFLite with a parity gate."),
    "evaluate": ("trainer.cli:evaluate", "Evaluate a bundle on labelled data, with baselines and plots."),
    "score": ("edge_runtime.score_cli:score", "Score a data file with a bundle (no TensorFlow)."),
    "info": ("edge_runtime.score_cli:info", "Show a bundle's manifest, ops and parity figures."),
    "run": ("edge_runtime.cli:run", "Run the gateway pipeline: serial -> model -> alarms -> MQTT."),
    "simulate": ("firmware_bridge.cli:simulate", "Play sensor data into a pseudo-terminal or serial port."),
    "capture": ("firmware_bridge.cli:capture", "Record raw serial bytes with host timestamps."),
    "synth": ("firmware_bridge.cli:synth", "Write synthetic rotating-machine vibration data to CSV."),
    "threshold": ("tools.threshold:threshold", "See what a threshold means; change it locally or on a device."),
    "devices": ("tools.remote:devices", "List devices seen on the broker with their model and state."),
    "keys": ("tools.signing:keys", "Generate Ed25519 keys for signing bundles."),
    "sign": ("tools.signing:sign", "Sign a bundle with an Ed25519 private key."),
    "deploy": ("tools.deploy:deploy", "Flash a bundle onto a gateway with verification and rollback."),
    "drift": ("tools.drift:drift", "Compare new data's scores with the bundle's calibration."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        # An ImportError here is our bug, not a missing extra: command modules
        # import their heavy dependencies lazily and say which extra to install.
        module = importlib.import_module(module_name)
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgewatchError as err:
            if ctx.find_root().params.get("debug"):
                raise
            raise _CommandFailed(err) from err


class _CommandFailed(click.ClickException):
    """Carries an EdgewatchError to click's one-line error output."""

    def __init__(self, err: EdgewatchError) -> None:
        super().__init__(str(err))
        self.exit_code = err.exit_code


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="edgewatch")
def cli(debug: bool) -> None:
    """edgewatch: anomaly detection on industrial sensors, from training to the gateway."""


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="edgewatch", auto_envvar_prefix="EDGEWATCH")


if __name__ == "__main__":  # pragma: no cover - python -m tools.cli
    main(sys.argv[1:])

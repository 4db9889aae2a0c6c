"""``edgewatch demo``: the kit end to end on data that ships in the repository.

1. Train a conv autoencoder on healthy C-MAPSS FD001 engines (1-80) and export
   it to an int8 bundle that passes the parity gate.
2. Evaluate it on engines 81-100 against IsolationForest and PCA; write a
   report with plots.
3. The gateway loop: a simulated pump board (3-axis vibration + motor
   current, a bearing fault developing half way, a noisy line) plays into a
   pseudo-terminal; ``edgewatch run`` reads it with the shipped
   ``models/pump-vibration-conv.ewb``, scores windows with LiteRT, and
   publishes alarm events over MQTT; a subscriber standing in for the plant
   prints what arrives. The broker is Mosquitto on localhost:1883 when one is
   running, else an embedded amqtt broker.

Everything goes to ``--out`` (default ``demo-out/``).
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["demo"]

DATA_DIR = Path(__file__).resolve().parent / "data"
CMAPSS = DATA_DIR / "train_FD001.txt"
PUMP_BUNDLE = Path(__file__).resolve().parent.parent / "models" / "pump-vibration-conv.ewb"
#: The simulated pump is the machine models/pump-vibration-conv.ewb was trained on
#: (tools/build_models.py): the generator's seed is the machine.
PUMP_SEED = 11
DEVICE_ID = "demo-pump"


@click.command()
@click.option("--out", "out_dir", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the bundle, the report and logs.")
@click.option("--model", default="conv", show_default=True, type=click.Choice(["conv", "lstm", "dense"]))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--mqtt", "mqtt_url", default=None, help="Broker for the live loop (default: localhost:1883 if up, else embedded).")
@click.option("--skip-training", is_flag=True, help="Only run the live gateway loop.")
def demo(out_dir: str, model: str, seed: int, mqtt_url: str | None, skip_training: bool) -> None:
    """Train, export and evaluate on bundled C-MAPSS data, then run the live gateway loop."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not skip_training:
        _train_and_evaluate(out, model, seed)
    click.secho("\n== 3. gateway loop: simulated pump -> pty -> edgewatch run -> MQTT -> plant ==", bold=True)
    _live_loop(out, mqtt_url)


def _train_and_evaluate(out: Path, model: str, seed: int) -> None:
    from edge_runtime.scoring import ScoreConfig
    from trainer.api import DataSpec, train_bundle
    from trainer.evaluate import evaluate_bundle

    bundle_path = out / f"fd001-{model}.ewb"
    click.secho("== 1. train on healthy engines 1-80 (RUL > 125), export int8 ==", bold=True)
    train_bundle(
        DataSpec((str(CMAPSS),), "cmapss", units="1-80", min_rul=125),
        bundle_path, model=model, window=30, seed=seed, verbose=0,
        # C-MAPSS sensors drift slowly under heavy noise: average the residual
        # over 5 cycles before squaring (see edge_runtime/scoring.py).
        score=ScoreConfig(smooth=5),
        check=DataSpec((str(CMAPSS),), "cmapss", units="81-100", label_column="label"),
        log=click.echo,
    )
    click.secho("\n== 2. evaluate on engines 81-100 against baselines ==", bold=True)
    evaluate_bundle(str(bundle_path), [str(CMAPSS)], label_column="label", fmt="cmapss", units="81-100",
                    report_dir=str(out / "report"), log=click.echo)
    click.echo(f"bundle: {bundle_path} (inspect with: edgewatch info {bundle_path}); report: {out / 'report' / 'report.md'}")


def _live_loop(out: Path, mqtt_url: str | None) -> None:
    import contextlib
    import json
    import os
    import subprocess
    import sys
    import threading
    import time

    from edge_runtime.errors import require
    from firmware_bridge.simulator import LineFaults, Simulator
    from firmware_bridge.sources import load_source
    from tools.embedded_broker import EmbeddedBroker, broker_reachable

    mqtt = require("paho.mqtt.client", "edge")
    with contextlib.ExitStack() as stack:
        if mqtt_url is None:
            if broker_reachable("127.0.0.1", 1883):
                mqtt_url = "mqtt://127.0.0.1:1883"
                click.echo("broker: Mosquitto (or another broker) on 127.0.0.1:1883")
            else:
                mqtt_url = stack.enter_context(EmbeddedBroker()).url
                click.echo(f"broker: none running, started an embedded amqtt broker at {mqtt_url}")
        host, _, port = mqtt_url.split("://", 1)[1].partition(":")
        events: list[dict] = []
        got_event = threading.Event()
        plant = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgewatch-demo-plant-{os.getpid()}")

        def on_message(_c: object, _u: object, msg: object) -> None:
            topic, payload = msg.topic, msg.payload  # type: ignore[attr-defined]
            if topic.endswith("/events"):
                ev = json.loads(payload)
                events.append(ev)
                got_event.set()
                top = ", ".join(f"{c['channel']} {c['contribution']:.0%}" for c in ev.get("top_channels", []))
                click.secho(f"  plant <- {topic}: {ev.get('state')}, score {ev.get('score', 0):.3g} (threshold {ev.get('threshold', 0):.3g}), top channels: {top}", fg="red" if ev.get("state") == "raised" else "green")
            elif topic.endswith("/status"):
                st = json.loads(payload) if payload.startswith(b"{") else {"state": payload.decode()}
                earlier = " (retained from an earlier run)" if msg.retain else ""  # type: ignore[attr-defined]
                click.echo(f"  plant <- {topic}: {st.get('state', st)} model {st.get('model_id', '')} v{st.get('model_version', '')} "
                           f"delegate {st.get('delegate', '')}{earlier}")

        plant.on_message = on_message
        plant.connect(host, int(port or 1883))
        plant.subscribe(f"edgewatch/{DEVICE_ID}/#", qos=1)
        plant.loop_start()
        stack.callback(plant.loop_stop)
        stack.callback(plant.disconnect)

        source = load_source("synthetic", seconds=40, rate_hz=1000.0, fault="bearing", fault_start=0.5, seed=PUMP_SEED)
        faults = LineFaults(bit_error_rate=1e-6, drop_rate=0.002)
        sim = stack.enter_context(Simulator(source, realtime=False, faults=faults, seed=3, device_id=DEVICE_ID))
        click.echo(f"simulator: 40 s of pump data at 1 kHz, bearing fault from 20 s, on {sim.port_path} "
                   "(0.2% of frames dropped, rare bit errors)")
        state = out / "gateway-state"
        cmd = [sys.executable, "-m", "tools.cli", "run", "--bundle", str(PUMP_BUNDLE), "--serial", sim.port_path,
               "--mqtt", mqtt_url, "--device-id", DEVICE_ID, "--state-dir", str(state), "--metrics-interval", "2",
               "--summary", str(out / "gateway-summary.json")]
        click.echo("gateway: " + " ".join(cmd[3:]))
        log = (out / "gateway.log").open("w")
        stack.callback(log.close)
        runtime = subprocess.Popen(cmd, stdout=log, stderr=log)
        try:
            sim.start()
            if not sim.done.wait(120):
                click.echo("simulator did not finish within 120 s")
            got_event.wait(10)
            time.sleep(1.0)  # let the last windows drain into events before stopping
        finally:
            runtime.terminate()
            try:
                runtime.wait(30)
            except subprocess.TimeoutExpired:
                runtime.kill()
        summary = {}
        if (out / "gateway-summary.json").exists():
            summary = json.loads((out / "gateway-summary.json").read_text())
        click.echo(f"gateway: {summary.get('windows', '?')} windows scored, {summary.get('lost_frames', '?')} lost frames "
                   f"(simulator dropped {sim.truth.get('frames_dropped', '?')}), {len(events)} events received; "
                   f"log in {out / 'gateway.log'}")
        if not any(e.get("state") == "raised" for e in events):
            raise click.ClickException(f"no alarm event reached the plant; see {out / 'gateway.log'}")
    click.secho("\nDone.", bold=True)

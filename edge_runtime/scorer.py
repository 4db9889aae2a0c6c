"""Scoring a bundle with LiteRT, the same code on host and gateway.

``BundleScorer`` = scaler -> TFLite model (int8 quantize/dequantize from the
model's own tensor parameters) -> :mod:`edge_runtime.scoring`. ``edgewatch
score``, ``evaluate``, the export parity gate and the gateway runtime all go
through it, so the same rows give the same scores everywhere.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.bundle import Bundle
from edge_runtime.errors import ConfigError, MissingDependencyError, ModelIncompatibleError
from edge_runtime.preprocess import Standardizer
from edge_runtime.scoring import ScoreConfig, anomaly_scores, channel_contributions
from edge_runtime.windows import sliding_windows

__all__ = ["BundleScorer", "TFLiteModel", "ScoredWindows", "DELEGATES", "load_interpreter_class"]

log = logging.getLogger(__name__)

DELEGATES = ("auto", "cpu", "xnnpack", "edgetpu", "gpu")
EDGETPU_LIBRARY = "libedgetpu.so.1"
EDGETPU_MEMBER = "model_int8_edgetpu.tflite"


def load_interpreter_class() -> tuple[Any, Any, str]:
    """(Interpreter, load_delegate, package name) from LiteRT, else tflite_runtime."""
    try:
        from ai_edge_litert import interpreter as mod  # type: ignore[import-untyped]

        return mod.Interpreter, mod.load_delegate, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as mod  # type: ignore[import-not-found,no-redef]

        return mod.Interpreter, mod.load_delegate, "tflite-runtime"
    except ImportError as err:
        raise MissingDependencyError(
            "no TFLite interpreter is installed; install the edge extra: pip install 'edgewatch[edge]' "
            "(on 32-bit ARM, where ai-edge-litert has no wheel: pip install tflite-runtime)"
        ) from err


def _parse_delegate(spec: str) -> tuple[str, str | None]:
    name, _, arg = spec.partition(":")
    if name not in DELEGATES:
        raise ConfigError(f"delegate {spec!r} is unknown; use one of auto, cpu, xnnpack, edgetpu, gpu[:LIBRARY_PATH]")
    return name, arg or None


class TFLiteModel:
    """One TFLite model with batch-1 input: windows in, reconstructions out (float32).

    ``backend`` says what actually runs it (``cpu``, ``xnnpack``, ``edgetpu``,
    ``gpu``); ``fallback`` says why a requested delegate was not used.
    """

    def __init__(self, model: bytes, *, delegate: str = "auto", num_threads: int = 1,
                 delegate_library: str | None = None, name: str = "model") -> None:
        Interpreter, load_delegate, self.package = load_interpreter_class()
        self.name = name
        self.fallback: str | None = None
        delegates = []
        self.backend = "xnnpack"
        kind, _ = _parse_delegate(delegate)
        if kind in ("edgetpu", "gpu"):
            library = delegate_library or (EDGETPU_LIBRARY if kind == "edgetpu" else None)
            try:
                if library is None:
                    raise ValueError("no delegate library path given (use gpu:/path/to/libtensorflowlite_gpu_delegate.so)")
                # Probe the library first: when LiteRT's load_delegate fails it
                # leaves a half-built Delegate whose __del__ raises at exit.
                ctypes.CDLL(library)
                delegates = [load_delegate(library)]
                self.backend = kind
            except (ValueError, OSError, RuntimeError) as err:
                self.fallback = f"{kind} delegate not loaded ({err}); running on CPU"
                log.warning("%s: %s", name, self.fallback)
        kwargs: dict[str, Any] = {"model_content": bytes(model), "num_threads": num_threads}
        if delegates:
            kwargs["experimental_delegates"] = delegates
        if kind == "cpu":
            # The reference kernels, without the XNNPACK delegate LiteRT adds by default.
            from_mod = __import__(Interpreter.__module__, fromlist=["OpResolverType"])
            resolver = getattr(from_mod, "OpResolverType", None)
            if resolver is not None:
                kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            self.backend = "cpu"
        try:
            self._interp = Interpreter(**kwargs)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelIncompatibleError(f"{name}: not a loadable TFLite model ({err}); the member is corrupt, re-export the bundle") from err
        inp = self._interp.get_input_details()[0]
        out, latent = _pick_outputs(self._interp.get_output_details(), tuple(int(v) for v in inp["shape"]), name)
        self.input_index, self.output_index = inp["index"], out["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.input_dtype = np.dtype(inp["dtype"])
        self.output_dtype = np.dtype(out["dtype"])
        self.input_quant = tuple(inp["quantization"])  # (scale, zero_point); (0.0, 0) when float
        self.output_quant = tuple(out["quantization"])
        # Variational models have a second output, [code mean, code log-variance].
        self.latent_index: int | None = None if latent is None else latent["index"]
        self.latent_dtype = None if latent is None else np.dtype(latent["dtype"])
        self.latent_quant = None if latent is None else tuple(latent["quantization"])
        self.latent_width = 0 if latent is None else int(latent["shape"][-1])

    @property
    def has_latent(self) -> bool:
        return self.latent_index is not None

    def ops(self) -> list[str]:
        """Operator names in the model, in execution order."""
        return [d["op_name"] for d in self._interp._get_ops_details()]

    def tensor_details(self) -> dict[str, Any]:
        return {
            "input": {"shape": list(self.input_shape), "dtype": self.input_dtype.name,
                      "scale": float(self.input_quant[0]), "zero_point": int(self.input_quant[1])},
            "output": {"dtype": self.output_dtype.name,
                       "scale": float(self.output_quant[0]), "zero_point": int(self.output_quant[1])},
            **({} if self.latent_quant is None or self.latent_dtype is None else {"latent": {
                "width": self.latent_width, "dtype": self.latent_dtype.name,
                "scale": float(self.latent_quant[0]), "zero_point": int(self.latent_quant[1])}}),
        }

    def _quantize(self, x: NDArray[np.float32]) -> NDArray[Any]:
        if self.input_dtype == np.float32:
            return x.astype(np.float32)
        scale, zero = self.input_quant
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input_dtype)

    def _dequantize(self, y: NDArray[Any], dtype: Any = None, quant: Any = None) -> NDArray[np.float32]:
        dtype = self.output_dtype if dtype is None else dtype
        if dtype == np.float32:
            return y.astype(np.float32)
        scale, zero = self.output_quant if quant is None else quant
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)

    def reconstruct(self, windows: NDArray[Any]) -> NDArray[np.float32]:
        """Reconstruct scaled windows (n, window, channels), one invoke per window."""
        return self.predict(windows)[0]

    def predict(self, windows: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """(reconstructions, latent stats or None) of scaled windows, one invoke per window.

        Latent stats are (n, 2 * latent) = [mean, log_var] for variational models.
        """
        windows = np.asarray(windows, dtype=np.float32)
        batch = self.input_shape[0]
        if windows.shape[1:] != self.input_shape[1:]:
            raise ModelIncompatibleError(
                f"{self.name} expects windows of shape {self.input_shape[1:]}, got {windows.shape[1:]}; "
                "the data's window or channels disagree with the model"
            )
        out = np.empty(windows.shape, dtype=np.float32)
        lat = np.empty((len(windows), self.latent_width), dtype=np.float32) if self.has_latent else None
        q = self._quantize(windows)
        for i in range(0, len(q), batch):
            chunk = q[i:i + batch]
            n = len(chunk)
            if n < batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
            # Fused LSTM ops keep their hidden and cell state in variable
            # tensors that survive an invoke; every window must start from
            # zero state, as in Keras, or it inherits the previous window's.
            self._interp.reset_all_variables()
            self._interp.set_tensor(self.input_index, chunk)
            self._interp.invoke()
            out[i:i + n] = self._dequantize(self._interp.get_tensor(self.output_index))[:n]
            if lat is not None:
                raw = self._interp.get_tensor(self.latent_index)
                lat[i:i + n] = self._dequantize(raw, self.latent_dtype, self.latent_quant).reshape(batch, -1)[:n]
        return out, lat


def _pick_outputs(details: list[dict[str, Any]], input_shape: tuple[int, ...],
                  name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(reconstruction, latent stats or None), told apart by shape: the converter's output order is not the model's."""
    if len(details) == 1:
        return details[0], None
    recon = [d for d in details if tuple(int(v) for v in d["shape"][1:]) == input_shape[1:]]
    latent = [d for d in details if len(d["shape"]) == 2 and int(d["shape"][-1]) % 2 == 0]
    if len(details) != 2 or len(recon) != 1 or len(latent) != 1:
        shapes = [tuple(int(v) for v in d["shape"]) for d in details]
        raise ModelIncompatibleError(
            f"{name}: outputs {shapes} are not a reconstruction of shape {input_shape} plus one (1, 2*latent) "
            "latent output; re-export the bundle with this edgewatch"
        )
    return recon[0], latent[0]


@dataclass(frozen=True)
class ScoredWindows:
    """Scores of the windows cut from a table of rows."""

    end_rows: NDArray[np.int64]           # row index of each window's last row
    scores: NDArray[np.float64]
    contributions: NDArray[np.float64]    # (n_windows, n_channels)


class BundleScorer:
    """Scores raw sensor rows with a bundle's model, exactly as the gateway does.

    Example
    -------
    >>> scorer = BundleScorer(Bundle.load("models/cmapss-fd001-conv.ewb"))  # doctest: +SKIP
    >>> scorer.score_rows(values).scores                                     # doctest: +SKIP
    """

    def __init__(self, bundle: Bundle, *, member: str | None = None, delegate: str = "auto",
                 num_threads: int = 1) -> None:
        self.bundle = bundle
        self.scaler = Standardizer.from_manifest(bundle.manifest["scaler"])
        self.config = ScoreConfig.from_manifest(bundle.manifest["score"])
        self.threshold = bundle.threshold
        self.window = bundle.window
        self.channels = bundle.channel_names
        kind, library = _parse_delegate(delegate)
        default = member or bundle.runtime_model
        name = default
        # The compiled Edge TPU model is only a variant of the int8 runtime
        # model: after a re-export to another precision it no longer matches
        # the threshold, so it is used only while int8 is the runtime model.
        tpu_ok = member is None and bundle.has(EDGETPU_MEMBER) and bundle.runtime_model == "model_int8.tflite"
        if kind == "auto" and tpu_ok:
            kind = "edgetpu"
        if kind == "edgetpu" and tpu_ok:
            name = EDGETPU_MEMBER
        if kind == "gpu" and member is None:
            name = "model_float16.tflite" if bundle.has("model_float16.tflite") else "model_float32.tflite"
        self.member = name
        where = f"{bundle.path or 'bundle'}:{name}"
        try:
            self.model = TFLiteModel(bundle.read(name), delegate=kind, delegate_library=library,
                                     num_threads=num_threads, name=where)
            fallback = self.model.fallback
        except ModelIncompatibleError as err:
            if name == default:
                raise
            # An Edge TPU model is mostly one custom op that only the TPU runs.
            fallback = f"{kind} model {name} cannot run here ({err}); running {default} on CPU"
        if fallback and name != default:
            self.member = default
            where = f"{bundle.path or 'bundle'}:{default}"
            self.model = TFLiteModel(bundle.read(default), delegate="auto", num_threads=num_threads, name=where)
            self.model.fallback = fallback
        expected = (self.window, len(self.channels))
        if self.config.latent != "none" and not self.model.has_latent:
            raise ModelIncompatibleError(
                f"{where}: the manifest scores with latent {self.config.latent!r} but the model has no latent "
                "output; re-export the bundle from its variational Keras model"
            )
        if self.model.input_shape[1:] != expected:
            raise ModelIncompatibleError(
                f"{where} expects input of shape {self.model.input_shape[1:]}, but the manifest says "
                f"window={self.window} with {len(self.channels)} channels; re-export the bundle"
            )

    @property
    def backend(self) -> str:
        return self.model.backend

    def score_scaled(self, windows: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(scores, contributions) of already-scaled windows."""
        recon, latent = self.model.predict(windows)
        return anomaly_scores(windows, recon, latent, self.config), channel_contributions(windows, recon, self.config)

    def score_windows(self, windows: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(scores, contributions) of raw windows (n, window, channels) in engineering units."""
        return self.score_scaled(self.scaler.transform(windows))

    def score_rows(self, values: NDArray[Any], segments: NDArray[Any] | None = None, stride: int = 1) -> ScoredWindows:
        """Score every window of a table (n_rows, channels); windows never cross segments."""
        windows, ends = sliding_windows(self.scaler.transform(values), self.window, stride, segments)
        if len(windows) == 0:
            empty = np.empty(0)
            return ScoredWindows(ends, empty, np.empty((0, len(self.channels))))
        scores, contrib = self.score_scaled(windows)
        return ScoredWindows(ends, scores, contrib)

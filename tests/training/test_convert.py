"""Keras -> TFLite conversion of the recurrent models: the converted model starts every input
from a zero state, as Keras does.

TFLite's fused LSTM keeps its hidden and cell state in variable tensors that persist between
``invoke`` calls. Before the fix, each window started from the previous window's final state:
harmless for a freshly initialised LSTM (small forget gates forget it within a few steps), but a
trained LSTM with open forget gates carries it through the whole window, and the float32 TFLite
model disagreed with Keras (``bilstm34`` on 52 % of clips). The weights below open the forget
gates, so the mechanism shows at once without training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser_edge.bundle import Normalization, save_bundle
from ser_edge.inputs import InputConfig
from ser_edge.runtime import Classifier
from ser_edge.training.export import tflite_probabilities, to_tflite
from ser_edge.training.models import build

STEPS, DIM, LABELS = 40, 12, 4


def _remembering(name: str, shape: tuple[int, ...], **hp: int) -> object:
    """Model ``name`` with the forget-gate biases of every LSTM at +6 (sigmoid 0.998: the state
    survives the whole window) and larger recurrent weights, as after long training."""
    model = build(name, shape, LABELS, **hp)
    for layer in model.layers:
        cells = [getattr(layer, "cell", None)] + [
            getattr(getattr(layer, d, None), "cell", None) for d in ("forward_layer", "backward_layer")
        ]
        for cell in [c for c in cells if c is not None and hasattr(c, "recurrent_kernel")]:
            u = cell.units
            bias = cell.bias.numpy()
            bias[u : 2 * u] = 6.0
            cell.bias.assign(bias)
            cell.recurrent_kernel.assign(cell.recurrent_kernel.numpy() * 3.0)
    return model


def _inputs(shape: tuple[int, ...], n: int = 6) -> np.ndarray:
    x = np.random.default_rng(1).normal(size=(n, *shape)).astype(np.float32)
    x[::2] *= 3.0  # alternate loud and quiet windows: very different final states
    return x


RECURRENT = [
    ("lstm", (STEPS, DIM), {"units": 16}),
    ("bilstm34", (STEPS, DIM), {"units": 16}),
    ("cnn_lstm", (STEPS, DIM), {"units": 16, "filters": [8, 8]}),
    ("cnn_lstm_wave", (4096,), {"units": 16, "filters": [8, 8, 8]}),
]


@pytest.mark.parametrize("name,shape,hp", RECURRENT, ids=[r[0] for r in RECURRENT])
def test_float32_tflite_equals_keras_window_after_window(name: str, shape: tuple[int, ...], hp: dict) -> None:
    model = _remembering(name, shape, **hp)
    x = _inputs(shape)
    keras = np.asarray(model.predict(x, verbose=0))
    lite = tflite_probabilities(to_tflite(model, "float32", input_shape=shape), x)
    assert keras.shape == lite.shape == (len(x), LABELS)
    # the old path: every row started from the state the previous invoke left (max difference 0.09-0.19)
    np.testing.assert_allclose(lite, keras, atol=1e-4)


def test_int8_bundle_is_stateless_on_the_device_path(tmp_path: Path) -> None:
    """Through the runtime's Classifier (what predict/listen run), an int8 window's output does
    not depend on the windows before it (int8 vs Keras on trained models: docs/results.md)."""
    quantization = "int8"
    config = InputConfig(features=InputConfig().features, deltas=0, pooling="sequence", seq_frames=STEPS, vad_db=None)
    shape = config.input_shape
    model = _remembering("lstm", shape, units=16)
    x = _inputs(shape)
    blob = to_tflite(model, quantization, input_shape=shape, representative=x)
    d = config.n_frame_features
    bundle = save_bundle(
        tmp_path / "b",
        tflite=blob,
        name="lstm-test",
        labels=["neutral", "happy", "sad", "angry"][:LABELS],
        input=config,
        normalization=Normalization(np.zeros(d), np.ones(d)),
        quantization=quantization,
    )
    clf = Classifier(bundle)
    together = clf.probabilities(x)
    alone = np.stack([clf.probabilities(x[i : i + 1])[0] for i in reversed(range(len(x)))][::-1])
    np.testing.assert_array_equal(together, alone)  # one by one, in reverse order
    np.testing.assert_array_equal(clf.probabilities(x[::-1])[::-1], together)


def _numpy_lstm(x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Final hidden state of a Keras-layout LSTM (gates i, f, c, o) in float64, from zeros."""
    u = recurrent.shape[0]
    k, r, b = (np.asarray(a, np.float64) for a in (kernel, recurrent, bias))
    out = []
    for seq in np.asarray(x, np.float64):
        h, c = np.zeros(u), np.zeros(u)
        for xt in seq:
            z = xt @ k + h @ r + b
            i, f, o = (1 / (1 + np.exp(-z[s])) for s in (slice(0, u), slice(u, 2 * u), slice(3 * u, 4 * u)))
            c = f * c + i * np.tanh(z[2 * u : 3 * u])
            h = o * np.tanh(c)
        out.append(h)
    return np.array(out)


def test_saturated_lstm_matches_a_float64_reference() -> None:
    """Gates driven deep into saturation (random biases, standard deviation 10): the converted
    LSTM equals an independent float64 LSTM as closely as Keras does (no clipping, no
    approximate activations); only the state leak made it differ."""
    import tf_keras as K

    inp = K.Input((STEPS, DIM))
    model = K.Model(inp, K.layers.LSTM(16)(inp))
    kernel, recurrent, _ = model.get_weights()
    bias = (np.random.default_rng(2).normal(size=64) * 10).astype(np.float32)
    model.set_weights([kernel, recurrent, bias])
    x = _inputs((STEPS, DIM), 4)
    want = _numpy_lstm(x, kernel, recurrent, bias)
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), want, atol=1e-5)
    np.testing.assert_allclose(
        tflite_probabilities(to_tflite(model, "float32", input_shape=(STEPS, DIM)), x), want, atol=1e-5
    )


def test_cell_state_beyond_the_converters_clip_of_ten() -> None:
    """Input and forget gates open; the candidate follows the input: +1 for 30 steps (the cell
    state climbs to ~30), then -1 for 10 (down to ~20). The converter writes cell_clip=10 into the
    fused LSTM, Keras never clips: clipped, the state would climb to 10 and fall to ~0. The float32
    and dynamic-range models must follow Keras."""
    import tf_keras as K

    inp = K.Input((STEPS, DIM))
    model = K.Model(inp, K.layers.LSTM(8)(inp))
    kernel = np.zeros((DIM, 32), np.float32)
    kernel[0, 16:24] = 6.0  # candidate = tanh(6 x0) ~ +-1
    bias = np.zeros(32, np.float32)
    bias[:16] = 8.0  # input and forget gates open
    model.layers[1].set_weights([kernel, np.zeros((8, 32), np.float32), bias])
    x = np.zeros((2, STEPS, DIM), np.float32)
    x[:, :30, 0], x[:, 30:, 0] = 1.0, -1.0
    x[1] *= 0.5  # the second sequence: a smaller step
    keras = np.asarray(model.predict(x, verbose=0))
    assert keras.min() > 0.45  # tanh(~20) / 2: the unclipped state is still ~20 (clipped: ~0)
    for q in ("float32", "dynamic"):
        np.testing.assert_allclose(
            tflite_probabilities(to_tflite(model, q, input_shape=(STEPS, DIM)), x),
            keras,
            atol=1e-4 if q == "float32" else 0.02,
        )

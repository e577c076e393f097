"""The models one trainer builds (``--model NAME``), in tf_keras (Keras 2: its fused LSTM
converts to int8 TFLite, where Keras 3's LSTM int8 calibration crashes).

========  ==========================================================================  ===========
name      what                                                                        input
========  ==========================================================================  ===========
mlp       the default. Dropout 0.1 + Gaussian noise 0.1 -> Dense 128 -> BN -> ReLU ->  stats 1055
          Dropout 0.3 -> Dense 64 (same) -> softmax; L2 1e-4; label smoothing 0.1.
          ``members=M`` (with e.g. ``units=(64, 32)``): M such networks side by side,
          each trained on its own loss, output = their mean probability
knn       k = 5 nearest training vectors (Euclidean) vote; the training set is stored  stats 1055
          in the model (``fit`` memorises it; exports to TFLite as constants)
lstm      LSTM 128 -> Dropout 0.3 -> Dense 128 -> Dense 64 -> softmax                 sequence
cnn1d     3 x (Conv1D 5 -> BN -> ReLU -> MaxPool 2 -> Dropout 0.2), 64/96/128          sequence
          filters, then global average+max pooling -> Dense 64 -> softmax
cnn_lstm  Conv1D front end (2 x Conv1D 5 -> BN -> ReLU -> MaxPool 2; 64/96 filters)   sequence
          then LSTM 96 -> Dense 64 -> softmax
bilstm34  Bi-LSTM 64 on 34 frame features in 100 ms windows (50 ms hop) ->           sequence34
          Dense 64 -> softmax
cnn2d     log-mel image (200 frames x (64 mel + log-RMS)): 3 x (Conv2D 3x3 -> BN ->   logmel
          ReLU -> MaxPool 2x2), 16/32/64 filters -> global average pooling -> Dense 64 ->
          softmax
cnn_lstm  raw waveform: Conv1D 32, kernel 80, stride 4 -> BN -> ReLU -> MaxPool 4,     wave 16000
_wave     then 2 x (Conv1D 3 -> BN -> ReLU -> MaxPool 4), 32/64 filters (62 steps
          for 1 s) -> LSTM 64 -> Dropout 0.3 -> Dense 64 -> softmax
========  ==========================================================================  ===========

Inputs: "stats 1055" is the default :class:`InputConfig` (211 frame features, 5 statistics);
"sequence" is 200 frames x 211 features (2 s, centre crop / zero padding); "sequence34" is
80 windows x 34 features; "logmel" is 200 frames x 65. All are speaker-normalised frames.
"wave 16000" is 1 s of raw, loudness-normalised audio at 16 kHz: a waveform
:class:`~ser_edge.inputs.InputConfig` (:data:`WAVE_INPUT`; chunking and pooling of the chunks'
probabilities in :class:`~ser_edge.waveform.WaveformConfig`), trained by ``wave.py`` and run by
the same bundle/runtime code as every other model.
Measured figures: docs/results.md.

:func:`default_input` gives each model's :class:`~ser_edge.inputs.InputConfig`; :func:`build`
returns a compiled model. TensorFlow is imported when a model is built, not when this module is.
"""

from __future__ import annotations

from typing import Any

from ser_edge.features import FeatureConfig
from ser_edge.inputs import InputConfig
from ser_edge.waveform import WaveformConfig

MODELS = ("mlp", "knn", "lstm", "cnn1d", "cnn_lstm", "bilstm34", "cnn2d", "cnn_lstm_wave")
#: Models that read raw waveform chunks (``wave.py``), not InputConfig frame features.
WAVE_MODELS = ("cnn_lstm_wave",)
SEQUENCE_FRAMES = 200  # 2 s at a 10 ms hop
#: The ``mlp`` hyperparameters' defaults (also those of the numpy trainer, ``ser_edge.fl.numpy_mlp``).
MLP_DEFAULTS: dict[str, Any] = {
    "members": 1,
    "units": (128, 64),
    "dropout": 0.3,
    "l2": 1e-4,
    "noise": 0.1,
    "input_dropout": 0.1,
}

#: The 34 frame features of the Bi-LSTM recipe (pyAudioAnalysis' short-term set; spectral
#: flatness stands in for its chroma deviation): 100 ms windows, 50 ms hop.
FEATURES34 = FeatureConfig(
    sr=16000,
    n_fft=2048,
    win_length=1600,
    hop_length=800,
    n_mfcc=13,
    n_mels=40,
    features=(
        "zero_crossing_rate",
        "rms",
        "energy_entropy",
        "spectral_centroid",
        "spectral_bandwidth",
        "spectral_entropy",
        "spectral_flux",
        "spectral_rolloff",
        "mfcc",
        "chroma_stft",
        "spectral_flatness",
    ),
)
#: The raw-waveform models' input: 1 s chunks every 0.5 s at 16 kHz, mean of the chunks' probabilities.
WAVE_INPUT = InputConfig(
    features=FeatureConfig(sr=16000, features=("rms",)),
    deltas=0,
    vad_db=None,
    pooling="sequence",
    normalization="global",
    waveform=WaveformConfig(),
)
LOGMEL = FeatureConfig(
    sr=16000, n_fft=1024, win_length=800, hop_length=160, n_mels=64, fmax=8000.0, features=("log_melspectrogram", "rms")
)


#: The quantisation a family ships as when none is asked for: full int8, except the LSTM families
#: whose full-integer TFLite kernel is slow or inexact (``lstm``: 47-79 ms a window and +1.6 points
#: of UAR; ``bilstm34``: 85.8 % agreement with Keras; ``cnn_lstm_wave``: 95.4 %), and ``knn`` (its
#: memory is the model): those ship as dynamic range (int8 weights, float activations; docs/results.md).
DEFAULT_QUANTIZATION = {"lstm": "dynamic", "bilstm34": "dynamic", "cnn_lstm_wave": "dynamic", "knn": "dynamic"}


def default_quantization(name: str) -> str:
    """The quantisation model ``name`` ships as (:data:`DEFAULT_QUANTIZATION`, else ``int8``)."""
    _check(name)
    return DEFAULT_QUANTIZATION.get(name, "int8")


def default_input(name: str) -> InputConfig:
    """The input configuration model ``name`` is trained with."""
    _check(name)
    if name in WAVE_MODELS:
        return WAVE_INPUT
    if name in ("mlp", "knn"):
        return InputConfig()
    if name == "bilstm34":
        return InputConfig(features=FEATURES34, deltas=0, pooling="sequence", seq_frames=80)
    if name == "cnn2d":
        return InputConfig(features=LOGMEL, deltas=0, pooling="sequence", seq_frames=SEQUENCE_FRAMES)
    return InputConfig(pooling="sequence", seq_frames=SEQUENCE_FRAMES)


def build(name: str, input_shape: tuple[int, ...], n_labels: int, **hparams: Any) -> Any:
    """A compiled tf_keras model ``name`` for inputs ``input_shape`` (no batch axis) and
    ``n_labels`` softmax outputs. ``hparams``: ``lr`` (1e-3), ``seed`` (0), ``label_smoothing``
    (0.1), ``k`` (knn, 5), ``units``/``dropout`` where the model has them."""
    _check(name)
    import tf_keras as K

    K.utils.set_random_seed(int(hparams.pop("seed", 0)))
    lr = float(hparams.pop("lr", 1e-3))
    smoothing = float(hparams.pop("label_smoothing", 0.1))
    if name == "knn":
        model = _knn(K, tuple(input_shape), n_labels, k=int(hparams.pop("k", 5)))
        _no_more(name, hparams)
        return model
    model = _BUILDERS[name](K, tuple(input_shape), n_labels, hparams)
    _no_more(name, hparams)
    model.compile(
        optimizer=K.optimizers.Adam(lr),
        loss=K.losses.CategoricalCrossentropy(label_smoothing=smoothing),
        metrics=["accuracy"],
    )
    return model


def _check(name: str) -> None:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def _no_more(name: str, hparams: dict[str, Any]) -> None:
    if hparams:
        raise ValueError(f"model {name!r} has no hyperparameters {', '.join(sorted(hparams))}")


def _mlp(K: Any, shape: tuple[int, ...], n: int, hp: dict[str, Any]) -> Any:
    d = MLP_DEFAULTS
    members = int(hp.pop("members", d["members"]))
    units = tuple(int(u) for u in hp.pop("units", d["units"]))
    dropout = float(hp.pop("dropout", d["dropout"]))
    l2 = float(hp.pop("l2", d["l2"]))
    noise, input_dropout = float(hp.pop("noise", d["noise"])), float(hp.pop("input_dropout", d["input_dropout"]))
    if members < 1:
        raise ValueError(f"members={members} must be >= 1")
    inp = K.Input(shape)
    outs = []
    for _ in range(members):
        h = K.layers.GaussianNoise(noise)(K.layers.Dropout(input_dropout)(inp))
        for u in units:
            h = K.layers.Dense(u, kernel_regularizer=K.regularizers.l2(l2))(h)
            h = K.layers.Dropout(dropout)(K.layers.ReLU()(K.layers.BatchNormalization()(h)))
        outs.append(K.layers.Dense(n, activation="softmax")(h))
    if members == 1:
        return K.Model(inp, outs[0], name="mlp")
    return _ensemble(K, inp, outs)


def _ensemble(K: Any, inp: Any, outs: list[Any]) -> Any:
    """Members trained independently (each on its own loss, in one pass); the model's output is
    the mean of their probabilities."""
    import tensorflow as tf

    class Ensemble(K.Model):
        def train_step(self, data: Any) -> Any:
            x, y, w = K.utils.unpack_x_y_sample_weight(data)
            with tf.GradientTape() as tape:
                probs = self.members_model(x, training=True)
                loss = tf.add_n([self.compiled_loss(y, p, w) for p in probs]) / len(probs)
                total = loss + tf.add_n(self.losses) if self.losses else loss
            self.optimizer.minimize(total, self.trainable_variables, tape=tape)
            self.compiled_metrics.update_state(y, tf.add_n(probs) / len(probs), w)
            return {"loss": total, **{m.name: m.result() for m in self.metrics if m.name != "loss"}}

    model = Ensemble(inp, K.layers.Average()(outs), name="mlp")
    model.members_model = K.Model(inp, outs)
    return model


def _lstm(K: Any, shape: tuple[int, ...], n: int, hp: dict[str, Any]) -> Any:
    inp = K.Input(shape)
    h = K.layers.LSTM(int(hp.pop("units", 128)))(K.layers.Masking(0.0)(inp) if hp.pop("mask", False) else inp)
    h = K.layers.Dropout(float(hp.pop("dropout", 0.3)))(h)
    h = K.layers.Dense(64, activation="relu")(K.layers.Dense(128, activation="relu")(h))
    return K.Model(inp, K.layers.Dense(n, activation="softmax")(h), name="lstm")


def _conv_block(K: Any, h: Any, filters: int, dropout: float) -> Any:
    h = K.layers.Conv1D(filters, 5, padding="same", use_bias=False)(h)
    h = K.layers.MaxPooling1D(2)(K.layers.ReLU()(K.layers.BatchNormalization()(h)))
    return K.layers.Dropout(dropout)(h) if dropout else h


def _cnn1d(K: Any, shape: tuple[int, ...], n: int, hp: dict[str, Any]) -> Any:
    dropout = float(hp.pop("dropout", 0.2))
    inp = K.Input(shape)
    h = inp
    for f in hp.pop("filters", (64, 96, 128)):
        h = _conv_block(K, h, int(f), dropout)
    h = K.layers.Concatenate()([K.layers.GlobalAveragePooling1D()(h), K.layers.GlobalMaxPooling1D()(h)])
    h = K.layers.Dense(64, activation="relu")(K.layers.Dropout(0.3)(h))
    return K.Model(inp, K.layers.Dense(n, activation="softmax")(h), name="cnn1d")


def _cnn_lstm(K: Any, shape: tuple[int, ...], n: int, hp: dict[str, Any]) -> Any:
    inp = K.Input(shape)
    h = inp
    for f in hp.pop("filters", (64, 96)):
        h = _conv_block(K, h, int(f), 0.0)
    h = K.layers.Dropout(float(hp.pop("dropout", 0.3)))(K.layers.LSTM(int(hp.pop("units", 96)))(h))
    h = K.layers.Dense(64, activation="relu")(h)
    return K.Model(inp, K.layers.Dense(n, activation="softmax")(h), name="cnn_lstm")


def _bilstm34(K: Any, shape: tuple[int, ...], n: int, hp: dict[str, Any]) -> Any:
    inp = K.Input(shape)
    h = K.layers.Bidirectional(K.layers.LSTM(int(hp.pop("units", 64))))(inp)
    h = K.layers.Dense(64, activation="relu")(K.layers.Dropout(float(hp.pop("dropout", 0.3)))(h))
    return K.Model(inp, K.layers.Dense(n, activation="softmax")(h), name="bilstm34")


def _cnn2d(K: Any, shape: tuple[int, ...], n: int, hp: dict[str, Any]) -> Any:
    inp = K.Input(shape)
    h = K.layers.Reshape((*shape, 1))(inp)
    for f in hp.pop("filters", (16, 32, 64)):
        h = K.layers.Conv2D(int(f), 3, padding="same", use_bias=False)(h)
        h = K.layers.MaxPooling2D(2)(K.layers.ReLU()(K.layers.BatchNormalization()(h)))
    h = K.layers.Dropout(float(hp.pop("dropout", 0.3)))(K.layers.GlobalAveragePooling2D()(h))
    h = K.layers.Dense(64, activation="relu")(h)
    return K.Model(inp, K.layers.Dense(n, activation="softmax")(h), name="cnn2d")


def _cnn_lstm_wave(K: Any, shape: tuple[int, ...], n: int, hp: dict[str, Any]) -> Any:
    """``cnn_lstm`` on raw samples (input ``(n_samples,)``): a strided Conv1D front end (kernel
    80, stride 4: 5 ms receptive field at 16 kHz), two more conv blocks, LSTM, softmax."""
    if len(shape) != 1 or shape[0] < 1024:
        raise ValueError(f"cnn_lstm_wave reads (n_samples,) with n_samples >= 1024; got {shape}")
    filters = [int(f) for f in hp.pop("filters", (32, 32, 64))]
    kernel, stride = int(hp.pop("kernel", 80)), int(hp.pop("stride", 4))
    inp = K.Input(shape)
    h = K.layers.Reshape((shape[0], 1))(inp)
    h = K.layers.Conv1D(filters[0], kernel, strides=stride, use_bias=False)(h)
    h = K.layers.MaxPooling1D(4)(K.layers.ReLU()(K.layers.BatchNormalization()(h)))
    for f in filters[1:]:
        h = K.layers.Conv1D(f, 3, padding="same", use_bias=False)(h)
        h = K.layers.MaxPooling1D(4)(K.layers.ReLU()(K.layers.BatchNormalization()(h)))
    h = K.layers.Dropout(float(hp.pop("dropout", 0.3)))(K.layers.LSTM(int(hp.pop("units", 64)))(h))
    h = K.layers.Dense(64, activation="relu")(h)
    return K.Model(inp, K.layers.Dense(n, activation="softmax")(h), name="cnn_lstm_wave")


def _knn(K: Any, shape: tuple[int, ...], n: int, k: int) -> Any:
    import numpy as np
    import tensorflow as tf

    class KNN(K.Model):
        """k nearest neighbours; ``fit`` stores the training set, ``call`` returns vote shares."""

        def __init__(self) -> None:
            super().__init__(name="knn")
            self.k, self.n_labels, self.memory, self.memory_labels = k, n, None, None

        def fit(self, x: Any, y: Any = None, **_: Any) -> Any:  # noqa: D401 - keras API
            x = np.asarray(x, np.float32).reshape(len(x), -1)
            labels = np.asarray(y)
            labels = labels.argmax(1) if labels.ndim == 2 else labels.astype(int)
            self.memory = tf.constant(x)
            self.memory_sq = tf.constant((x**2).sum(1))
            self.memory_onehot = tf.constant(np.eye(self.n_labels, dtype=np.float32)[labels])
            return K.callbacks.History()

        def call(self, x: Any, training: Any = None) -> Any:
            if self.memory is None:
                raise ValueError("knn: fit() the model before using it")
            x = tf.reshape(tf.cast(x, tf.float32), (-1, int(np.prod(shape))))
            d = (
                tf.reduce_sum(x * x, 1, keepdims=True)
                - 2.0 * tf.matmul(x, self.memory, transpose_b=True)
                + self.memory_sq[None, :]
            )
            kk = min(self.k, int(self.memory.shape[0]))
            _, idx = tf.math.top_k(-d, k=kk)
            return tf.reduce_mean(tf.gather(self.memory_onehot, idx), axis=1)

        def predict(self, x: Any, **_: Any) -> Any:
            return (
                np.concatenate([self(np.asarray(x[i : i + 256], np.float32)).numpy() for i in range(0, len(x), 256)])
                if len(x)
                else np.zeros((0, n), np.float32)
            )

    return KNN()


_BUILDERS = {
    "mlp": _mlp,
    "lstm": _lstm,
    "cnn1d": _cnn1d,
    "cnn_lstm": _cnn_lstm,
    "bilstm34": _bilstm34,
    "cnn2d": _cnn2d,
    "cnn_lstm_wave": _cnn_lstm_wave,
}

__all__ = [
    "DEFAULT_QUANTIZATION",
    "MODELS",
    "WAVE_INPUT",
    "WAVE_MODELS",
    "build",
    "default_input",
    "default_quantization",
]

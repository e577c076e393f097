"""Keras model -> TFLite bytes (float32, dynamic-range or full int8) -> model bundle.

The model is converted from a concrete function with a batch of 1 (a dynamic-batch LSTM does not
convert). ``int8`` quantises weights and activations with a representative set of training
inputs, and the model's input and output tensors are int8 (the runtime scales them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from ser_edge.bundle import QUANTIZATIONS, Bundle, Normalization, save_bundle
from ser_edge.inputs import InputConfig

PathLike = Union[str, "os.PathLike[str]"]
REPRESENTATIVE_SAMPLES = 300


def to_tflite(
    model: Any,
    quantization: str,
    *,
    input_shape: Sequence[int],
    representative: np.ndarray | None = None,
    seed: int = 0,
) -> bytes:
    """TFLite flatbuffer of ``model``. ``representative`` (model inputs from the training set,
    shaped ``(n, *input_shape)``) is required for ``int8``; up to 300 of them are used."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization={quantization!r}; choose from {', '.join(QUANTIZATIONS)}")
    import tensorflow as tf

    shape = [1, *[int(s) for s in input_shape]]
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if quantization in ("dynamic", "int8"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("int8 quantization needs representative inputs from the training set")
        rep = np.asarray(representative, np.float32)
        if rep.shape[1:] != tuple(shape[1:]):
            raise ValueError(f"representative inputs are shaped {rep.shape[1:]}; the model reads {tuple(shape[1:])}")
        pick = np.random.default_rng(seed).permutation(len(rep))[:REPRESENTATIVE_SAMPLES]
        conv.representative_dataset = lambda: ([rep[i : i + 1]] for i in pick)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    blob = bytes(conv.convert())
    return blob if quantization == "int8" else unclip_lstm_cells(blob)


def unclip_lstm_cells(tflite: bytes) -> bytes:
    """The model with the cell-state clip of its fused LSTM ops turned off. The converter writes
    ``cell_clip = 10`` into every ``UNIDIRECTIONAL_SEQUENCE_LSTM``, but Keras never clips the cell
    state, and a trained LSTM's cell state can exceed 10 (the 128-unit ``lstm`` reached 133 on
    RAVDESS: the float32 model then disagreed with Keras by up to 0.27). Float and dynamic-range
    kernels run unclipped; the full-int8 kernel keeps the clip (its 16-bit cell state needs a range)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
    lstm = {
        schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM,
        schema.BuiltinOperator.BIDIRECTIONAL_SEQUENCE_LSTM,
        schema.BuiltinOperator.LSTM,
    }
    changed = False
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            clip = getattr(op.builtinOptions, "cellClip", None)
            if max(code.builtinCode, code.deprecatedBuiltinCode) in lstm and clip:
                op.builtinOptions.cellClip = 0.0
                changed = True
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else tflite


def export_bundle(
    model: Any,
    out_dir: PathLike,
    *,
    name: str,
    labels: Sequence[str],
    input: InputConfig,
    normalization: Normalization,
    quantization: str = "int8",
    representative: np.ndarray | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Bundle:
    """Converts ``model`` and writes the bundle (``model.tflite`` + ``bundle.json``) to ``out_dir``.
    ``representative``: standardised training inputs (required for ``int8``)."""
    if len(labels) != int(model.output_shape[-1]):
        raise ValueError(f"{len(labels)} labels for a model with {model.output_shape[-1]} outputs")
    tflite = to_tflite(model, quantization, input_shape=input.input_shape, representative=representative)
    return save_bundle(
        out_dir,
        tflite=tflite,
        name=name,
        labels=list(labels),
        input=input,
        normalization=normalization,
        quantization=quantization,
        training=training or {},
        metrics=metrics or {},
    )


def tflite_probabilities(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """Runs a TFLite model (bytes) on inputs ``x`` (float32, batch axis first) with the edge
    runtime's interpreter and :func:`ser_edge.runtime.run_one` (int8 scaling, recurrent state
    reset before every input), exactly as a bundle runs on the device; used for parity checks."""
    return tflite_run(tflite, x)[0]


def tflite_run(tflite: bytes, x: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`tflite_probabilities` and the median seconds of one input (one thread)."""
    import time

    from ser_edge.runtime import load_interpreter, run_one

    it = load_interpreter(tflite, num_threads=1)
    (i,), (o,) = it.get_input_details(), it.get_output_details()
    out, seconds = [], []
    for row in np.asarray(x, np.float32):
        t0 = time.perf_counter()
        out.append(run_one(it, i, o, row))
        seconds.append(time.perf_counter() - t0)
    probs = np.array(out, np.float32).reshape(len(out), -1)
    return probs, float(np.median(seconds)) if seconds else float("nan")


__all__ = ["export_bundle", "tflite_probabilities", "tflite_run", "to_tflite", "unclip_lstm_cells"]

"""Training: corpora, model inputs, models, speaker-independent evaluation and bundle export.

Needs the ``train`` extra (TensorFlow, tf_keras, scikit-learn, matplotlib, tqdm). Importing this
package, and any module here, is light: TensorFlow is imported only when a model is built,
trained or converted.

- ``corpora``: ``load_corpus(name, data_dir) -> list[Clip]`` (labels, speakers, genders from
  file names), ``grouped(clips, grouping)``;
- ``dataset``: frames (cached), speaker/population statistics and model inputs, all through
  :class:`ser_edge.inputs.InputConfig`;
- ``augment``: preprocessing (loudness, trim, pad/crop, sliding windows) and train-only
  augmentation of waveforms; ``denoise``: optional spectral-gating noise reduction;
- ``models``: ``build(name, input_shape, n_labels, **hparams)``, ``default_input(name)``;
- ``trainer``: ``fit``, speaker-independent ``splits``, ``evaluate_split`` (optionally on sliding
  windows of each clip, scored per clip);
- ``wave``: raw-waveform chunks for ``cnn_lstm_wave`` (evaluated in training only);
- ``export``: ``to_tflite``, ``export_bundle``;
- ``evaluate``: ``evaluate_bundle`` (a bundle on a corpus through the edge runtime);
- ``metrics``: UAR, confusion, figures; ``recipe``: TOML recipes, ``run``, checkpoints;
- ``cli``: ``ser-edge train``, ``evaluate``, ``export``.
"""

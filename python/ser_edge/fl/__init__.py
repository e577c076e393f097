"""Federated learning with Flower (Message API): devices train the model on their own labelled
clips and share only weights; FedAvg averages them; the global model becomes an int8 bundle that
``ser-edge listen`` hot-reloads.

Modules: ``task`` (a client's clips, model inputs and local training), ``client_app`` /
``server_app`` (the Flower apps; ``deploy/fl/app/pyproject.toml`` declares them for ``flwr run``),
``strategy`` (rejection of unsound updates), ``simulate`` (Simulation Runtime), ``label``
(labelling recorded clips), ``cli`` (``ser-edge fl``), ``bench`` (the figures in
docs/federated.md). Importing this package imports nothing heavy.
"""

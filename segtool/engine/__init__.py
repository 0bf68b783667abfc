"""Training, evaluation and prediction.

config (TrainConfig and its layers) -> launch (data source, resume target, run dir) -> train (the
loop, built from builders / loaders / schedules / speed / checkpoint / run_dir / signals /
distributed) ; evaluate and predict reuse inference (padding, sliding window) and checkpoint.
"""

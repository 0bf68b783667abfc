"""From a checkpoint to deployment: what a model costs, exported files, and running them.

    source = resolve_source("runs/voc/best.pt")               # or a model name: resolve_source("fcn8")
    count_costs("tv:fcn_resnet50", 21, (520, 520))             # params, MACs, FLOPs, activation bytes
    profile_model(source, (512, 512), torch.device("cpu"))     # + latency, images/s, peak memory
    export_checkpoint(source, "model.onnx")                    # ONNX / .pt2 / TorchScript, verified first
    predictor, palette, meta = onnx_predictor("model.onnx")    # label images with onnxruntime alone

(modules: source, costs, timing, profile, graph, trace, export, onnx_model, predictors)

Layering: this package may import engine, models, ops and core; nothing below it imports it.
"""

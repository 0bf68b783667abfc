"""From a checkpoint to deployment: what a model costs, exported files, and running them.

    costs.count_costs("tv:fcn_resnet50", 21, (520, 520))   # params, MACs, FLOPs, activation bytes
    profile.profile_model(source, (512, 512), device)       # + latency, images/s, peak memory
    export.export_checkpoint(ckpt, "model.onnx")            # ONNX / ExportedProgram / TorchScript, verified
    onnx_predictor.OnnxPredictor.from_file("model.onnx")    # label images with onnxruntime alone

Layering: this package may import engine, models, ops and core; nothing below it imports it.
"""

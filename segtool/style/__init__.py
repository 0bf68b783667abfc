"""Neural style transfer (Gatys et al.; the d2l recipe by default) on a frozen VGG-19.

    from segtool.style import StyleConfig, stylize
    result = stylize("content.jpg", ["style.jpg"], StyleConfig(steps=300), device="cuda")
    result.image.save("out.png"); print(result.losses)

Region-guided (``segtool stylize --mask``): ``plan_regions`` + ``stylize_regions`` (segtool.style.guided).

``segtool stylize`` is a thin wrapper around both.
"""

from segtool.style.config import D2L_CONTENT_LAYERS, D2L_STYLE_LAYERS, StyleConfig
from segtool.style.guided import stylize_regions
from segtool.style.regions import RegionPlan, plan_regions, read_mask
from segtool.style.transfer import StepReport, StyleResult, plan_sizes, stylize
from segtool.style.vgg import VGG19_LAYERS, VGGFeatures, load_vgg19

__all__ = ["D2L_CONTENT_LAYERS", "D2L_STYLE_LAYERS", "VGG19_LAYERS", "RegionPlan", "StepReport", "StyleConfig",
           "StyleResult", "VGGFeatures", "load_vgg19", "plan_regions", "plan_sizes", "read_mask", "stylize",
           "stylize_regions"]

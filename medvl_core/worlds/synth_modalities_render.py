"""The eight `synth-modalities` renderers by dataset name (`RENDERERS`).

X-ray, CT, MR and ultrasound are drawn in `synth_modalities_radiology` (the X-ray by SynthCXR's renderer,
`synth_cxr_render`), histology and cytology in `synth_modalities_microscopy`, fundus and dermoscopy in
`synth_modalities_photo`; the `Scene` and the drawing primitives they share are in `synth_modalities_draw`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .synth_modalities_draw import Scene
from .synth_modalities_microscopy import cytology, histology
from .synth_modalities_photo import dermoscopy, fundus
from .synth_modalities_radiology import ct, mr, ultrasound, xray

RENDERERS: dict[str, Callable[[Scene], np.ndarray]] = {
    "xray": xray, "ct": ct, "mr": mr, "ultrasound": ultrasound,
    "histology": histology, "cytology": cytology, "fundus": fundus, "dermoscopy": dermoscopy,
}

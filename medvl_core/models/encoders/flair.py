"""flair:PATH: FLAIR's ResNet-50 image encoder and vision projection from its released checkpoint, at FLAIR's 512 px
input with pixel values in [0, 1]."""

from __future__ import annotations

from torch import nn

from ...errors import UnknownSpecError
from .base import ImageEncoder
from .local_checkpoints import ProjectedTower, linear_from_state, load_checkpoint, strip_prefix
from .preprocess import RGB


class _ResNetTower(ProjectedTower):
    """A torchvision ResNet without fc: pooled = global average of layer4 (then the projection, if any)."""

    def pooled(self, x):
        return self.tower(x)

    def forward_grid(self, x):
        m = self.tower
        return m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))


def flair_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """flair:PATH: FLAIR's ResNet-50 (`vision_model.model.*`) + vision projection (`vision_model.projection_head_vision.*`),
    at FLAIR's 512 px input, pixel values in [0, 1] (FLAIR applies no mean/std normalisation)."""
    import torchvision
    from torchvision import transforms as T

    state = load_checkpoint(spec, name, "flair")
    tower_state = strip_prefix(state, "vision_model.model.")
    if not tower_state:
        raise UnknownSpecError(f"{spec}: no 'vision_model.model.*' weights; is this a FLAIR checkpoint?")
    tower = torchvision.models.resnet50(weights=None)
    tower.fc = nn.Identity()
    tower.load_state_dict({k: v for k, v in tower_state.items() if not k.startswith("fc.")})
    projection = linear_from_state(state, "vision_model.projection_head_vision.projection.")
    preprocess = RGB(T.Compose([T.Resize((512, 512), antialias=True), T.ToTensor()]))
    return _ResNetTower(spec, tower, 2048, preprocess, 512, projection)

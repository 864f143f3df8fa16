"""Which training-time augmentations are on (the augment_* settings): the flags the pipeline of fcn8s.batches reads."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Which training-time augmentations are on; each keeps image, label and ignored area aligned."""
    flip: bool = True       # mirror left-right with probability 1/2
    color: bool = True      # contrast x U(0.8, 1.2) about the image mean, brightness + U(-20, 20) levels
    scale: bool = True      # zoom by U(1, 1.25) about a random point, cropped back to the same size

"""The seeded validation split of a dataset's training pairs, stratified over its categories (KITTI's um, umm, uu)."""
import numpy as np

from fcn8s.errors import SettingError


def split_training_pairs(pairs, val_count, seed, strata, stratum_of):
    """Split [(image path, label path)] into (train_pairs, val_pairs), stratified over strata (KITTI's um, umm, uu):
    stratum_of(image path) is the stratum of a pair, one of strata.

    Each stratum gives a share of the val_count validation pairs proportional to its size (largest
    remainders first); the choice within a stratum is seeded. Both lists keep the input order.
    """
    if not 0 <= val_count < len(pairs):
        raise SettingError(f'--val-count {val_count} must lie in 0..{len(pairs) - 1}: there are {len(pairs)} training '
                           'images')
    stratum_of_pair = [stratum_of(image_path) for image_path, _ in pairs]
    sizes = np.array([stratum_of_pair.count(stratum) for stratum in strata])
    quotas = sizes * val_count / len(pairs)
    shares = np.floor(quotas).astype(int)
    shares[np.argsort(shares - quotas, kind='stable')[:val_count - shares.sum()]] += 1
    rng = np.random.default_rng(seed)
    val_indices = set()
    for stratum, share in zip(strata, shares):
        members = [index for index, name in enumerate(stratum_of_pair) if name == stratum]
        val_indices.update(rng.choice(members, size=share, replace=False).tolist())
    train_pairs = [pair for index, pair in enumerate(pairs) if index not in val_indices]
    val_pairs = [pair for index, pair in enumerate(pairs) if index in val_indices]
    return train_pairs, val_pairs

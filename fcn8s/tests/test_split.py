"""Tests of fcn8s/split.py: the validation split, stratified over KITTI's categories, seeded, disjoint."""
import os

import pytest

from fcn8s.datasets import DATASETS
from fcn8s.errors import SettingError
from fcn8s.kitti import KITTI_CATEGORIES
from fcn8s.split import split_training_pairs

KITTI = DATASETS['kitti_road']


def test_split_is_stratified_seeded_and_disjoint():
    pairs = [(f'image_2/{category}_{index:06d}.png', f'gt_image_2/{category}_road_{index:06d}.png')
             for category, count in (('um', 95), ('umm', 96), ('uu', 98)) for index in range(count)]
    train_pairs, val_pairs = split_training_pairs(pairs, 48, 7, KITTI_CATEGORIES, KITTI.category)
    categories = [os.path.basename(image).split('_')[0] for image, _ in val_pairs]
    assert len(val_pairs) == 48 and len(train_pairs) == 289 - 48
    assert {category: categories.count(category) for category in KITTI_CATEGORIES} == {'um': 16, 'umm': 16, 'uu': 16}
    assert sorted(train_pairs + val_pairs) == sorted(pairs)
    assert split_training_pairs(pairs, 48, 7, KITTI_CATEGORIES, KITTI.category) == (train_pairs, val_pairs)
    assert split_training_pairs(pairs, 48, 8, KITTI_CATEGORIES, KITTI.category)[1] != val_pairs
    assert split_training_pairs(pairs, 0, 7, KITTI_CATEGORIES, KITTI.category) == (pairs, [])
    with pytest.raises(SettingError, match='--val-count 289'):
        split_training_pairs(pairs, 289, 0, KITTI_CATEGORIES, KITTI.category)

"""Tests of fcn8s/summaries.py: every dataset's scores become TensorBoard scalar tags."""
from fcn8s.summaries import validation_scalars


def test_validation_scalars_flatten_kitti_and_cityscapes_scores():
    kitti_scores = {'overall': {'MaxF': 0.9, 'images': 12}, 'bev': {'um': {'MaxF': 0.5, 'images': 4}}}
    assert validation_scalars(kitti_scores) == {'validation/overall/MaxF': 0.9, 'validation/bev/um/MaxF': 0.5}
    cityscapes_scores = {'classes': {'road': 0.75, 'wall': None}, 'mIoU': 0.75, 'categories': {'flat': 0.8},
                         'category_mIoU': 0.8, 'pixel_accuracy': 0.9, 'images': 6}
    assert validation_scalars(cityscapes_scores) == {
        'validation/classes/road': 0.75, 'validation/mIoU': 0.75, 'validation/categories/flat': 0.8,
        'validation/category_mIoU': 0.8, 'validation/pixel_accuracy': 0.9}

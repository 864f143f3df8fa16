"""The shared fixtures (fcn8s/tests/fixtures.py) for every test of the package."""
from fcn8s.tests.fixtures import (  # noqa: F401  (pytest finds fixtures by name)
    cityscapes_run, exported_run, fresh_graph, hed_package, hed_package_absent, keras_cache_in_tmp, keras_vgg16,
    kitti_copy, kitti_tflite_run, tiny_demo_data, tiny_vgg_path)

from fcn8s.distribute import split_cpu  # noqa: E402

# Two logical CPU devices for the replicated graphs of test_distribute, made before any test starts TensorFlow.
split_cpu(2)

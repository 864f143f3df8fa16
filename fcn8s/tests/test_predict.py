"""Tests of fcn8s/predict.py: the exported model gives the training session's probabilities; one predictor a graph."""
import os
import subprocess
import sys

import numpy as np
import pytest

import main
from fcn8s.datasets import DATASETS
from fcn8s.predict import export_model, saved_model_road_predictor, session_predictor
from fcn8s.tests.fixtures import PROJECT_DIR, TINY_INPUT_SHAPE, decisive_network
from fcn8s.tf1 import tf


# Run by a separate Python: plain TensorFlow 2 in eager mode, as a user of the exported model would load it.
# Arguments: the model folder, images .npy ([batch, height, width, 3] float32 RGB 0..255) and the .npy to write.
RELOAD_EXPORTED_MODEL_SCRIPT = '''
import sys

import numpy as np
import tensorflow as tf

model_dir, images_path, road_prob_path = sys.argv[1:]
serving = tf.saved_model.load(model_dir).signatures['serving_default']
np.save(road_prob_path, serving(images=tf.constant(np.load(images_path)))['road_prob'].numpy())
'''


def test_exported_model_reloads_in_plain_tensorflow_with_the_sessions_probabilities(exported_run, tmp_path):
    run_dir, image, session_road_prob = exported_run
    assert session_road_prob.shape == (37, 61)
    assert session_road_prob.std() > 0.2 and 0.1 < (session_road_prob > 0.5).mean() < 0.9, 'too uniform to compare'
    images_path, road_prob_path = str(tmp_path / 'images.npy'), str(tmp_path / 'road_prob.npy')
    np.save(images_path, image[None].astype(np.float32))
    completed = subprocess.run([sys.executable, '-c', RELOAD_EXPORTED_MODEL_SCRIPT, os.path.join(run_dir, 'model'),
                                images_path, road_prob_path], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(np.load(road_prob_path)[0], session_road_prob, atol=1e-5)
    loaded_road_prob, = saved_model_road_predictor(os.path.join(run_dir, 'model'))([image])
    np.testing.assert_allclose(loaded_road_prob, session_road_prob, atol=1e-5)
    exported_names = {name for name, _ in tf.train.list_variables(os.path.join(run_dir, 'model', 'variables', 'variables'))}
    assert {'conv1_1/weights', 'fc7/biases', 'score_fr/weights', 'upscore8/weights'} <= exported_names
    assert not [name for name in exported_names if 'Adam' in name or 'power' in name], 'optimizer state was exported'


def test_a_training_graph_holds_one_predictor_however_often_it_is_asked_for(tiny_vgg_path):
    image = np.random.default_rng(3).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    with tf.Session() as sess:
        image_input, keep_prob, layer3_out, layer4_out, layer7_out = main.load_vgg(sess, tiny_vgg_path)
        logits = tf.reshape(main.layers(layer3_out, layer4_out, layer7_out, 2), (-1, 2), name='logits')
        main.initialize_new_variables(sess)
        first = session_predictor(sess, logits, keep_prob, image_input, TINY_INPUT_SHAPE, DATASETS['kitti_road'])
        op_count = len(sess.graph.get_operations())
        second = session_predictor(sess, logits, keep_prob, image_input, TINY_INPUT_SHAPE, DATASETS['kitti_road'])
        assert len(sess.graph.get_operations()) == op_count
        first_road_prob, = first([image])
        second_road_prob, = second([image])
    assert first_road_prob.shape == (40, 70)
    np.testing.assert_array_equal(first_road_prob, second_road_prob)
    assert sum(op.name.startswith('road_predictor/logits/') for op in sess.graph.get_operations()) > 0


CLASS_IDS_IN_A_FRESH_PROCESS = '''
import sys
import numpy as np
from fcn8s.predict import model_dataset_name, saved_model_predictor
class_ids, = saved_model_predictor(sys.argv[1], None, 'class_id')([np.load(sys.argv[2])])
np.save(sys.argv[3], class_ids)
print(model_dataset_name(sys.argv[1]))
'''


@pytest.mark.slow
def test_an_exported_multi_class_model_gives_the_sessions_class_ids_in_a_fresh_process(tiny_vgg_path, tmp_path):
    image = np.random.default_rng(5).integers(0, 256, (45, 83, 3), dtype=np.uint8)
    with tf.Session() as sess:
        image_input, keep_prob, logits = decisive_network(sess, tiny_vgg_path, 5, seed=4)
        export_model(sess, image_input, keep_prob, logits, TINY_INPUT_SHAPE, str(tmp_path / 'model'),
                     DATASETS['cityscapes'])
        session_class_ids, = session_predictor(sess, logits, keep_prob, image_input, TINY_INPUT_SHAPE,
                                               DATASETS['cityscapes'])([image])
    assert session_class_ids.shape == (45, 83) and len(np.unique(session_class_ids)) > 1
    np.save(tmp_path / 'image.npy', image)
    finished = subprocess.run([sys.executable, '-c', CLASS_IDS_IN_A_FRESH_PROCESS, str(tmp_path / 'model'),
                               str(tmp_path / 'image.npy'), str(tmp_path / 'class_ids.npy')],
                              cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.split() == ['cityscapes']
    np.testing.assert_array_equal(np.load(tmp_path / 'class_ids.npy'), session_class_ids)
    with tf.Session(graph=tf.Graph()) as sess:
        signature = tf.saved_model.loader.load(sess, ['serve'], str(tmp_path / 'model')).signature_def['serving_default']
        assert sorted(signature.outputs) == ['class_id', 'class_prob']  # no road_prob: not a road model
        class_prob, class_ids = sess.run([signature.outputs['class_prob'].name, signature.outputs['class_id'].name],
                                         {signature.inputs['images'].name: image[None].astype(np.float32)})
    assert class_prob.shape == (1, 45, 83, 5) and np.allclose(class_prob.sum(axis=-1), 1, atol=1e-5)
    np.testing.assert_array_equal(class_ids[0], session_class_ids)

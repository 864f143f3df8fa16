"""Tests of fcn8s/png.py: every kind of whole PNG passes, one whose pixel data ends early is named."""
import numpy as np
import pytest
from PIL import Image

from fcn8s.errors import DataError
from fcn8s.images import load_image
from fcn8s.png import png_rows_bytes
from fcn8s.tests.fixtures import cut_png_rows


def test_load_image_names_a_png_whose_pixel_data_ends_early_and_reads_every_kind_of_whole_png(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    whole = {'rgb': Image.fromarray(pixels), 'grey': Image.fromarray(pixels[..., 0]),
             'rgba': Image.fromarray(np.dstack([pixels, pixels[..., :1]])),
             'grey16': Image.fromarray(pixels[..., 0].astype(np.uint16) * 257),
             'palette': Image.fromarray(pixels).quantize(4), 'bits': Image.fromarray(pixels[..., 0] > 127)}
    for name, image in whole.items():
        for interlace in (0, 1):  # Adam7's passes have rows of their own
            path = tmp_path / f'{name}_{interlace}.png'
            image.save(path, interlace=interlace, bits=2 if name == 'palette' else None)
            assert load_image(str(path)).shape == (37, 53, 3), path
    path = tmp_path / 'cut.png'
    Image.fromarray(pixels).save(path)
    cut_png_rows(path)
    with pytest.raises(DataError) as cut:
        load_image(str(path))
    assert str(cut.value) == (f'{path} holds {18 * (1 + 53 * 3)} of the {37 * (1 + 53 * 3)} bytes of pixel data that its '
                              '53x37 pixels need: it ends after about row 18, and the rows after it would be read as '
                              "black. Replace it with a good copy from the dataset's zip, or remove it (and its label).")


def test_the_rows_of_an_interlaced_png_are_those_of_its_seven_passes():
    assert png_rows_bytes(8, 8, 24, interlaced=False) == 8 * (1 + 24)
    # Adam7 on 8x8: passes of 1x1, 1x1, 2x1, 2x2, 4x2, 4x4 and 8x4 pixels
    assert png_rows_bytes(8, 8, 24, interlaced=True) == sum(rows * (1 + 3 * columns) for columns, rows in (
        (1, 1), (1, 1), (2, 1), (2, 2), (4, 2), (4, 4), (8, 4)))
    assert png_rows_bytes(3, 1, 1, interlaced=False) == 1 + 1  # 3 one-bit pixels fill one byte

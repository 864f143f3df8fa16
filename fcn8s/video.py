"""Videos: reading one (moviepy, ffmpeg), and writing it again with every frame painted by a predictor."""
import errno
import os
import shutil

import imageio_ffmpeg
from moviepy import VideoFileClip
from tqdm import tqdm

from fcn8s.errors import DataError, UnwritableOutput
from fcn8s.files import written_whole


def open_video(path):
    """The video file at path as a moviepy VideoFileClip; raises DataError naming path when ffmpeg cannot read it."""
    try:
        return VideoFileClip(path)
    except (OSError, KeyError) as error:
        raise DataError(f'cannot read video {path}: {str(error).strip()}\n'
                        'Give a video file that ffmpeg reads, such as an MP4.') from error


def paint_video(predict, paint, clip, output_path, batch_size=8):
    """Write clip (open_video) to output_path with every frame painted by paint(frame, prediction); returns the count.

    predict is a predictor of fcn8s.predict (or fcn8s.litert); paint is its dataset's Dataset.paint.

    fps, frame size and audio stay as they are; the codec follows output_path's extension (moviepy's
    write_videofile: H.264 for .mp4). moviepy asks for the frames in order, one at a time: the first
    request past the painted frames reads that frame and the next batch_size - 1, and paints them all
    with one predict call.
    """
    frame_count = int(clip.duration * clip.fps)  # as many frames as write_videofile writes
    painted = {}
    with tqdm(total=frame_count, desc='Painting video frames', unit='frame') as bar:

        def painted_frame(get_frame, time_s):
            frame_index = round(time_s * clip.fps)
            if frame_index not in painted:
                batch_indices = range(frame_index, max(frame_index + 1, min(frame_index + batch_size, frame_count)))
                frames = [get_frame(index / clip.fps) for index in batch_indices]
                painted.clear()
                painted.update(zip(batch_indices, map(paint, frames, predict(frames))))
                bar.update(len(frames))
            return painted[frame_index]

        output_dir = os.path.dirname(os.path.abspath(output_path))
        partial_path = os.path.join(output_dir, '.partial-' + os.path.basename(output_path))  # same extension
        with written_whole(output_path, partial_path, discard_partial_on_error=True):
            clip.transform(painted_frame).write_videofile(partial_path, fps=clip.fps, temp_audiofile_path=output_dir,
                                                          logger=None)
            require_frames(partial_path, frame_count, output_path)
    return frame_count


def require_frames(video_path, frame_count, output_path):
    """Check that the video file at video_path, written for output_path, holds frame_count frames (one less at most,
    as duration times frame rate rounds) as ffmpeg reads it.

    ffmpeg, fed by moviepy, can end without an error after a write failed: a full disk leaves an empty
    or cut file. Raises OSError ENOSPC when the disk has less than a megabyte free (files.writing_into names
    it), else UnwritableOutput naming output_path.
    """
    try:
        frames_read = imageio_ffmpeg.count_frames_and_secs(video_path)[0]
    except RuntimeError:
        frames_read = 0
    if frames_read >= frame_count - 1 and (frames_read or not frame_count):  # a frame more or less: rounding
        return
    if shutil.disk_usage(os.path.dirname(os.path.abspath(video_path))).free < 2 ** 20:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    raise UnwritableOutput(f'ffmpeg wrote {output_path} with {frames_read} frames readable of {frame_count} painted: '
                           'give an OUT_VIDEO of a common format (.mp4) in a folder with space')

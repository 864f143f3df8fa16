"""The chief's bookkeeping of a training run: its folder, each epoch kept as it ends, why it stopped, its last files."""
import os

from fcn8s import run_folder, workers
from fcn8s.checkpoints import EpochCheckpoints, LossWatch, StopSignal, finishing_run
from fcn8s.config import save_config
from fcn8s.errors import DiskFull, RunStopped, TrainingDiverged, TrainingInterrupted, WorkerLost
from fcn8s.options import command_line
from fcn8s.plots import save_loss_curve
from fcn8s.predict import export_model, session_predictor
from fcn8s.summaries import RunSummaries


class ChiefRun:
    """The run folder that the chief (the only process, or worker 0 of several) writes as it trains fcn in sess.

    Made, it is config.runs_dir/<timestamp>/ (or resume_dir, a resumed run's) holding config.json, split.json and
    loss.csv up to start_epoch, the epoch that training starts from (1 + the last finished epoch, restored into sess
    by every worker), and the input pipeline get_batches_fn is started there. end_epoch keeps every epoch as it
    ends, train says why training stopped, and finish writes loss.png, model/ and overlays/. fcn is main.build_graph's
    FCN8s; dataset (fcn8s.datasets) validates and paints; split and val_pairs are run_folder.run_split's; vgg16 is
    the weights record of the VGG16 the run starts from (vgg.read_weights_record).
    """

    def __init__(self, sess, fcn, config, dataset, replicas, get_batches_fn, split, val_pairs, vgg16, resume_dir=None):
        self.sess, self.fcn, self.config, self.dataset, self.replicas = sess, fcn, config, dataset, replicas
        self.run_dir = resume_dir or run_folder.new_run_dir(config, vgg16)
        self.checkpoints = EpochCheckpoints(os.path.join(self.run_dir, 'checkpoint'), fcn.trained_variables)
        self.start_epoch = workers.agreed_start_epoch(sess, replicas, self.checkpoints, self.run_dir, bool(resume_dir))
        self.steps_per_epoch = get_batches_fn.steps_per_epoch(config.batch_size)
        self.loss_csv_path = os.path.join(self.run_dir, 'loss.csv')
        run_folder.restart_loss_csv(self.loss_csv_path, self.start_epoch, self.steps_per_epoch)
        run_folder.save_split(self.run_dir, split)
        self.loss_watch = LossWatch(config.divergence_ratio, run_folder.read_loss_csv(self.loss_csv_path))
        if resume_dir:
            save_config(config, self.run_dir)  # --epochs, --replicas or --data-dir may have changed
            print(f'Resuming {self.run_dir} after epoch {self.start_epoch - 1} of {config.epochs}')
        else:
            print(f'Run folder: {self.run_dir}')
        get_batches_fn.start(sess, self.start_epoch)
        predict = session_predictor(sess, fcn.logits, fcn.keep_prob, fcn.image_input, config.image_shape, dataset)
        self.validate = run_folder.validator(dataset, predict, val_pairs, config, self.run_dir, self.start_epoch)
        self.summaries = RunSummaries(
            os.path.join(self.run_dir, 'tensorboard'), sess.graph, self.steps_per_epoch, self.start_epoch, predict,
            dataset.summary_images(dataset.path(config.dataset_dir), config.image_shape), dataset)
        self.restart = command_line(config)  # a new run of these settings, for when --resume has nothing to go on from

    def end_epoch(self, epoch, epoch_loss_rows):
        """train_nn's on_epoch_end: the loss watch, validation when due, the loss rows and summaries, then the
        checkpoint: the epoch is kept."""
        self.loss_watch.check(epoch, epoch_loss_rows)
        scores = self.validate(epoch, epoch_loss_rows)
        run_folder.append_loss_rows(epoch_loss_rows, self.loss_csv_path)
        learning_rate = self.config.learning_rate_at(self.steps_per_epoch, epoch, len(epoch_loss_rows))
        self.summaries.add_epoch(epoch, epoch_loss_rows, learning_rate, scores)
        val_score = None if scores is None else self.dataset.ranking_score(scores)
        self.checkpoints.save(self.sess, epoch, val_score=val_score)

    def train(self, train_epochs):
        """train_epochs(on_epoch_end=, start_epoch=, stop_requested=), main.train_nn on the graph, from start_epoch.

        Ctrl-C or SIGTERM (StopSignal, voted on by every worker) stops it before the next step: the weights after
        the steps done in the stopped epoch are saved and what to run next is printed. A stop raises the error that
        says what is kept and what to do: TrainingDiverged (a diverging loss), DiskFull, or RunStopped for a lost
        worker (exit status 1) or a stop request (128 + the signal's number).
        """
        with self.summaries, StopSignal() as stop_signal:
            try:
                train_epochs(on_epoch_end=self.end_epoch, start_epoch=self.start_epoch,
                             stop_requested=self.replicas.stop_test(self.sess, stop_signal.requested))
            except TrainingDiverged as divergence:
                raise TrainingDiverged(f'{divergence}. {self.checkpoints.describe_last()} Start a new run with a lower '
                                       f'--learning-rate (this run had {self.config.learning_rate:g}).'
                                       ) from divergence
            except DiskFull as disk_full:
                raise DiskFull(f'{disk_full}. Free some space there. '
                               f'{self.checkpoints.how_to_go_on(self.run_dir, self.restart)}') from disk_full
            except TrainingInterrupted as interruption:
                if interruption.steps_done:
                    saved = self.checkpoints.save_interrupted(self.sess, interruption.epoch, interruption.steps_done)
                    print(f'Stopped in epoch {interruption.epoch} after step {interruption.steps_done}; the weights '
                          f'after that step are in {saved}.')
                print(self.checkpoints.how_to_go_on(self.run_dir, self.restart))
                if isinstance(interruption, WorkerLost):
                    raise RunStopped(str(interruption)) from interruption
                raise RunStopped(exit_status=stop_signal.exit_status) from interruption

    def finish(self, paint_overlays):
        """Write loss.png, model/ (the exported SavedModel) and overlays/, which paint_overlays paints (the classic
        helper.save_inference_samples). A stop or a full disk meanwhile raises RunStopped (finishing_run)."""
        sess, fcn, config = self.sess, self.fcn, self.config
        with finishing_run(self.run_dir, self.checkpoints, config.epochs, self.restart):
            save_loss_curve(run_folder.read_loss_csv(self.loss_csv_path), os.path.join(self.run_dir, 'loss.png'))
            made_from = export_model(sess, fcn.image_input, fcn.keep_prob, fcn.logits, config.image_shape,
                                     os.path.join(self.run_dir, 'model'), self.dataset, epoch=config.epochs)
            paint_overlays(self.run_dir, config.dataset_dir, sess, config.image_shape, fcn.logits, fcn.keep_prob,
                           fcn.image_input, 'overlays', self.dataset, made_from)

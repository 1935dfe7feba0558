"""StackRec Studio's trainer: pure PyTorch, no Django or Celery.

The public surface other packages (the web app, the benchmarks) use:

- data: :func:`trainer.runs.prepare_split` with a :class:`trainer.runs.DataSpec`
- models: :func:`trainer.models.build_model`, :func:`trainer.models.model_config`
- training: :class:`trainer.training.TrainConfig`, :func:`trainer.training.fit`
- stacking: :class:`trainer.schedule.StackingSchedule`, :func:`trainer.schedule.run_schedule`,
  :func:`trainer.stacking.stack`
- evaluation: :func:`trainer.evaluation.evaluate`, :func:`trainer.evaluation.evaluate_popularity`
- checkpoints: :func:`trainer.checkpoint.save_checkpoint`, :func:`trainer.checkpoint.load_checkpoint`
"""

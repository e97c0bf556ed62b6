from __future__ import annotations

import torch

from actsearch.models.build import build_model
from actsearch.models.layout import Candidate, parse_layout
from actsearch.training import trainers
from actsearch.training.fit import evaluate, fit, recipe_for
from actsearch.training.trainers import Job, SequentialTrainer


def _fit(space, data, candidate: Candidate, seed: int):
    torch.manual_seed(seed)
    model = build_model(space.model, candidate.layout, data.input_shape, data.n_classes,
                        candidate.norm).double()
    result = fit(model, data, recipe_for(space, candidate), seed)
    return result, evaluate(model, data.x_test, data.y_test)


def _run(trainer: SequentialTrainer, job: Job):
    member, answers = trainer.add(job), []
    while trainer.active:
        answers.append(trainer.train_epoch())
    return member, answers


def test_sequential_trainer_follows_fit(space, data) -> None:
    candidate = Candidate(parse_layout("elu(0.40) | selu"), "none", space.train.lr)
    ref, (test_loss, test_acc) = _fit(space, data, candidate, 5)
    member, answers = _run(SequentialTrainer(space, data), Job(candidate, 5, "tag"))
    assert answers == [[member]] * space.train.epochs and member.tag == "tag"
    assert member.result.status == "complete" and member.model is not None
    assert [(h.epoch, h.train_loss, h.val_loss, h.val_acc) for h in member.result.history] == \
           [(h.epoch, h.train_loss, h.val_loss, h.val_acc) for h in ref.history]
    assert (member.test_loss, member.test_acc) == (test_loss, test_acc)


def test_sequential_trainer_fails_a_member_and_takes_the_next(space, data,
                                                              monkeypatch) -> None:
    real, calls = trainers.build_candidate, []

    def build_failing(*args, **kwargs):
        model = real(*args, **kwargs)

        def hook(module, inputs, output):
            calls.append(1)
            if len(calls) == 10:  # a step of the second epoch
                raise RuntimeError("boom in the model")

        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(trainers, "build_candidate", build_failing)
    candidate = Candidate(parse_layout("relu | elu(1.30)"), "none", space.train.lr)
    trainer = SequentialTrainer(space, data)
    failing, answers = _run(trainer, Job(candidate, 3))
    assert answers[-1] == [failing] and len(answers) == 2
    assert failing.result.status == "failed" and failing.epochs_done == 1
    assert failing.error == "RuntimeError: boom in the model"
    assert "in hook" in failing.traceback and failing.model is None
    # The next member trains as if nothing had happened.
    monkeypatch.setattr(trainers, "build_candidate", real)
    member, _ = _run(trainer, Job(candidate, 4))
    ref, _ = _fit(space, data, candidate, 4)
    assert member.result.status == "complete"
    assert [h.val_loss for h in member.result.history] == [h.val_loss for h in ref.history]

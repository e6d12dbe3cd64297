"""Knowledge distillation: train a small, fast tagger on a large teacher's tag distributions.

Why: a teacher's full distribution says more than its best tag (``NN`` 0.6 / ``NNP`` 0.4 tells the
student the word is ambiguous), so a student a quarter the size can match an ensemble it could not
match from gold labels alone (Hinton et al. 2015; Kim and Rush 2016 for sequence models). The loss
per column is ``weight`` x cross-entropy to the teacher's distribution + (1 - ``weight``) x the gold
loss; columns the teacher does not predict (lemma, FEATS) are learned from gold alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lstmtag.batch import Batch, Vocabs
from lstmtag.contract import TaggingModel
from lstmtag.data import Sentence
from lstmtag.predict import Predictor
from lstmtag.tagger import Tagger

Targets = dict[str, torch.Tensor]  # column -> (T, num_student_tags) teacher probabilities, float16


def teacher_targets(teacher: Predictor, sentences: Sequence[Sentence], student: Vocabs) -> list[Targets]:
    """The teacher's tag distribution for every token, in the student's tag order, one dict a sentence.

    Only columns both predict are kept. A student tag the teacher does not know gets probability 0.
    Computed once before training (EWT train: about a minute), stored as float16.
    """
    shared = [name for name in teacher.bundle.vocabs.labels if name in student.labels]  # heads, feats:Number too
    if not shared:
        raise ValueError(
            f"the teacher predicts {list(teacher.bundle.vocabs.labels)} and the student {list(student.labels)}: "
            "no column in common"
        )
    maps = {}
    for name in shared:
        student_ids = student.labels[name].stoi
        teacher_tags = teacher.bundle.vocabs.labels[name].itos
        maps[name] = (
            torch.tensor([i for i, tag in enumerate(teacher_tags) if tag in student_ids]),
            torch.tensor([student_ids[tag] for tag in teacher_tags if tag in student_ids]),
        )
    targets: list[Targets] = []
    for sentence, probs in zip(sentences, teacher.distributions(sentences), strict=True):
        row = {}
        for name, (from_teacher, to_student) in maps.items():
            full = torch.zeros(len(sentence.words), len(student.labels[name]), dtype=torch.float16)
            full[:, to_student] = probs[name][:, from_teacher].half()
            row[name] = full
        targets.append(row)
    return targets


def loss(model: Tagger, batch: Batch, targets: Sequence[Targets], *, weight: float) -> torch.Tensor:
    """Distillation loss of ``model`` on ``batch``; ``targets`` align with the batch's sentences."""
    emissions = model(batch)  # name -> (B, T, C)
    total = torch.zeros((), device=batch.mask.device)
    for name, scores in emissions.items():
        gold = model.heads[name].loss(scores, batch.labels[name], batch.mask)
        if not targets or name not in targets[0]:
            total = total + gold
            continue
        soft = torch.zeros_like(scores)
        for row, target in enumerate(targets):
            soft[row, : target[name].shape[0]] = target[name].float()
        log_probs = scores.log_softmax(-1)
        teacher = -(soft * log_probs).sum(-1)[batch.mask].mean()
        total = total + weight * teacher + (1 - weight) * gold
    return total


class DistillLoss(nn.Module):
    """The distillation objective, ``forward(batch, targets) -> loss``, for the training loop."""

    def __init__(self, tagger: Tagger, *, weight: float) -> None:
        super().__init__()
        self.tagger, self.weight = tagger, weight

    def forward(self, batch: Batch, targets: Sequence[Targets]) -> torch.Tensor:
        return loss(self.tagger, batch, targets, weight=self.weight)


def check_student(model: TaggingModel) -> None:
    """Students are softmax taggers: a CRF's scores are not per-token distributions to match."""
    if not (model.capabilities.trained and model.capabilities.distributions):
        raise ValueError("a distilled student must be an LSTM tagger with softmax heads (model.head = 'softmax')")

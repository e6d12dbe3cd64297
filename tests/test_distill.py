import pytest
import torch

from lstmtag.batch import make_batch
from lstmtag.distill import loss, teacher_targets
from lstmtag.lemma import with_scripts
from lstmtag.models import build_tagger, load_tagger
from lstmtag.predict import Predictor
from lstmtag.train import build_vocabs, train_tagger
from tests.conftest import DATA, tiny_config


@pytest.fixture(scope="module")
def with_lemmas():
    from lstmtag.data import load_labelled

    return load_labelled(DATA / "ewt_sample.conllu", "conllu", ["upos", "xpos", "lemma"])


@pytest.fixture(scope="module")
def teacher(sample, tmp_path_factory):
    """A tiny tagger that has memorised the sample: its distributions are the targets."""
    out = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    train_tagger(sample[:12], sample[:12], tiny_config("train.epochs=60", "train.patience=60", "train.seed=3"), out)
    return Predictor.load(out)


def test_targets_are_the_teachers_distributions_in_the_students_tag_order(teacher, with_lemmas):
    config = tiny_config("data.columns=upos,xpos,lemma")
    data = with_scripts(with_lemmas[:12])
    vocabs = build_vocabs(data, config)
    targets = teacher_targets(teacher, data, vocabs)
    assert set(targets[0]) == {"upos", "xpos"}  # the teacher predicts no lemma
    predicted = teacher.predict(data)
    for sentence, target, tagged in zip(data, targets, predicted, strict=True):
        for name in ("upos", "xpos"):
            assert target[name].shape == (len(sentence.words), len(vocabs.labels[name]))
            assert torch.allclose(target[name].float().sum(-1), torch.ones(len(sentence.words)), atol=1e-2)
            best = [vocabs.labels[name].itos[i] for i in target[name].float().argmax(-1).tolist()]
            assert best == tagged.tags[name]


def test_loss_is_gold_loss_at_weight_zero_and_teacher_loss_at_one(teacher, sample):
    config = tiny_config()
    vocabs = build_vocabs(sample[:12], config)
    torch.manual_seed(0)
    student = build_tagger(config, vocabs).eval()
    targets = teacher_targets(teacher, sample[:4], vocabs)
    batch = make_batch(sample[:4], vocabs)
    assert loss(student, batch, targets, weight=0.0).item() == pytest.approx(student.loss(batch).item(), rel=1e-5)
    # Targets equal to the gold one-hot tags make the teacher term the gold loss too.
    one_hot = [
        {
            name: torch.nn.functional.one_hot(batch.labels[name][row, : len(s.words)], len(vocabs.labels[name])).half()
            for name in ("upos", "xpos")
        }
        for row, s in enumerate(sample[:4])
    ]
    assert loss(student, batch, one_hot, weight=1.0).item() == pytest.approx(student.loss(batch).item(), rel=1e-4)


def test_student_learns_from_the_teacher_and_the_gold_lemmas(teacher, with_lemmas, tmp_path):
    out = tmp_path / "student.safetensors"
    data = with_lemmas[:12]
    config = tiny_config("data.columns=upos,xpos,lemma", "train.epochs=60", "train.patience=60", "train.seed=5")
    train_tagger(data, data, config, out, teacher=teacher)
    student = load_tagger(out)
    assert list(student.vocabs.labels) == ["upos", "xpos", "lemma"]
    tagged = Predictor(student).predict(data)
    teacher_tags = teacher.predict(data)
    scripted = with_scripts(data)  # scripts seen once are no class: those lemmas cannot be learned
    learnable = 0
    for sentence, edits, mine, theirs in zip(data, scripted, tagged, teacher_tags, strict=True):
        assert mine.tags["upos"] == theirs.tags["upos"]
        for lemma, edit, predicted in zip(
            sentence.labels["lemma"], edits.labels["lemma"], mine.tags["lemma"], strict=True
        ):
            if edit:  # lemma strings, rebuilt from the predicted edit scripts
                assert predicted == lemma
                learnable += 1
    assert learnable > 100


def test_crf_student_is_refused(teacher, sample, tmp_path):
    with pytest.raises(ValueError, match="softmax"):
        train_tagger(sample[:4], sample[:4], tiny_config("model.head=crf"), tmp_path / "s.safetensors", teacher=teacher)


def test_per_feature_heads_are_learned_from_a_teacher_that_has_them(teacher, per_feature_tagger, feats_sample):
    from lstmtag.train import prepare

    config = tiny_config("data.columns=upos,xpos,feats", "data.feats_heads=per_feature")
    data = prepare(feats_sample[:8], config)
    vocabs = build_vocabs(data, config)
    features = {name for name in vocabs.labels if name.startswith("feats:")}
    assert features and "feats" not in vocabs.labels
    with_heads = teacher_targets(Predictor.load(per_feature_tagger), data, vocabs)
    assert set(with_heads[0]) == {"upos", "xpos", *features}  # every head the teacher has, by its own name
    without = teacher_targets(teacher, data, vocabs)
    assert set(without[0]) == {"upos", "xpos"}  # the rest are learned from gold

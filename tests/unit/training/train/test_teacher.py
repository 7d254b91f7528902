"""EMA teachers: head-only shares the student's backbone, full keeps its own; the EMA moves by the momentum."""

from __future__ import annotations

import pytest
import torch

from training.data.pretrain import Batch
from training.tipsv2.model import create_model
from training.train.student import Student, StudentSpec
from training.train.teacher import EMATeacher

SPEC = StudentSpec(head_hidden_dim=32, head_bottleneck_dim=16, num_prototypes=24)


def make_student(spec: StudentSpec = SPEC) -> Student:
    return Student(create_model("tipsv2-tiny", seed=0), spec).init_heads(torch.Generator().manual_seed(1))


def make_batch(masked_view: bool) -> Batch:
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(2, 3, 16, dtype=torch.bool)
    if masked_view:
        masks[1, :, :5] = True
    ids = torch.randint(2, 100, (3, 6), generator=g)
    views = torch.rand(2, 3, 3, 56, 56, generator=g)
    return Batch(torch.arange(3), views, None, masks, ids, ids, torch.zeros(3, dtype=torch.long))


def test_head_only_teacher_features_equal_the_student_backbone_on_intact_views() -> None:
    student = make_student()
    teacher = EMATeacher(student, "head")
    batch = make_batch(masked_view=True)
    with torch.no_grad():
        out = student(batch)
        tokens, patches = teacher.features(student, batch, out)
        intact = student.model.visual(batch.global_views.flatten(0, 1))
    assert torch.equal(tokens[0], out.cls1[0])  # unmasked view 0: the student's own features, reused
    assert torch.allclose(tokens.flatten(0, 1), intact.cls1, atol=1e-6)  # masked view 1: recomputed intact
    assert torch.allclose(patches.flatten(0, 1), intact.patch_tokens, atol=1e-6)
    assert not torch.allclose(out.cls1[1], intact.cls1[3:], atol=1e-4)  # the student did see the masks


def test_full_ema_teacher_keeps_its_own_backbone_and_counts_it() -> None:
    student = make_student()
    head_only, full = EMATeacher(student, "head"), EMATeacher(student, "full")
    backbone = sum(p.numel() for p in student.model.visual.parameters())
    assert full.num_ema_parameters() == head_only.num_ema_parameters() + backbone
    assert full.backbone is not None and head_only.backbone is None
    assert all(not p.requires_grad for p in full.parameters())


def test_ema_update_moves_teacher_by_one_minus_momentum() -> None:
    student = make_student()
    teacher = EMATeacher(student, "full")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    teacher.update(student, momentum=0.75)
    for key, value in teacher.state_dict().items():
        assert torch.allclose(value, before[key] + 0.25, atol=1e-6), key


def test_a_shared_head_is_one_module_in_student_and_teacher() -> None:
    student = make_student(StudentSpec(head_hidden_dim=32, head_bottleneck_dim=16, num_prototypes=24, shared_head=True))
    teacher = EMATeacher(student, "head")
    assert student.ibot_head is student.dino_head and teacher.ibot_head is teacher.dino_head
    assert teacher.num_ema_parameters() == sum(p.numel() for p in student.dino_head.parameters())  # type: ignore[union-attr]


def test_unknown_ema_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown EMA mode"):
        EMATeacher(make_student(), "none")  # type: ignore[arg-type]

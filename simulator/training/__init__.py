"""Training of the semantic link's models: ``semlink train CONFIG.yaml``.

Phases train stage A (reconstruction), the encoder and stage B (diffusion loss on channel-noisy
embeddings, the paper's recipe); see :mod:`semlink.training.loop`.
"""
from semlink.training.checkpoint import CHECKPOINT_FILE, EMA, load_checkpoint, save_checkpoint
from semlink.training.conditioning import NoisyConditioning
from semlink.training.config import (
    TRAINABLE_PARTS,
    ConditioningConfig,
    DataConfig,
    ModelConfig,
    PhaseConfig,
    TrainConfig,
    ValidationConfig,
    load_train_config,
    parse_train_config,
    train_config_hash,
)
from semlink.training.data import TrainImages
from semlink.training.loop import LOG_FILE, VALIDATION_FILE, train, train_main
from semlink.training.models import TrainingModels, build_training_models
from semlink.training.report import evaluate_bundle, image_grid, load_trained_models
from semlink.training.validation import constant_colour_psnr_db, reconstruct, validate

__all__ = [
    "CHECKPOINT_FILE", "EMA", "load_checkpoint", "save_checkpoint", "NoisyConditioning",
    "TRAINABLE_PARTS", "ConditioningConfig", "DataConfig", "ModelConfig", "PhaseConfig",
    "TrainConfig", "ValidationConfig", "load_train_config", "parse_train_config",
    "train_config_hash", "TrainImages", "LOG_FILE", "VALIDATION_FILE", "train", "train_main",
    "TrainingModels", "build_training_models", "constant_colour_psnr_db", "reconstruct", "validate",
    "evaluate_bundle", "image_grid", "load_trained_models",
]

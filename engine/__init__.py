"""Training and inference engine: one loop trains every registered variant on every dataset.

    engine.config      TrainConfig: every training hyperparameter, defaults -> dataset row -> YAML -> flags
    engine.schedule    AdamW parameter groups (backbone vs head LR) and poly LR with linear warm-up
    engine.checkpoint  atomic checkpoint.pt (resume) and model.pt (what inference needs)
    engine.train       python -m engine.train ...   (resumable, deterministic on CPU, DDP under torchrun)
    engine.infer       python -m engine.infer ...   (PRED/<video>/<frame>.png, one atomic folder)
    engine.fps         python -m engine.fps ...     (docs/protocol.md FPS)

Threads: every CLI takes --threads N; without it $VSS_THREADS, else the cores the process may run on.
"""
